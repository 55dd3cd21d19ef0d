/* cifar10.c - CIFAR-10 binary batches.
 *
 * Each file is a run of 3073-byte records: one label byte (0..9), then 3072 pixel bytes laid out
 * CHW (1024 red, 1024 green, 1024 blue, each 32x32 row-major), which is already our [C, H, W].
 * Training uses data_batch_1.bin .. data_batch_5.bin (10000 records each), testing
 * test_batch.bin. Files are read in order until `subset` examples are gathered; their record
 * count comes from their length, so any whole number of records is accepted. Records are
 * converted as they are read, straight into the dataset sized from the files' lengths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_file.h"
#include "sources.h"

#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE) /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)                         /* 3073 */
#define CIFAR_SUBDIR "cifar-10-batches-bin"
#define CIFAR_MAX_FILES 5
/* Records read per gzread call: about 1 MiB, converted while still in cache. */
#define CIFAR_CHUNK_RECORDS 341

static const char *const train_files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
static const char *const test_files[] = {"test_batch.bin"};

/* The dataset being filled: ds->n counts the examples converted so far; the arrays hold
 * `capacity` examples. */
typedef struct cifar_fill {
    sw_dataset *ds;
    size_t capacity;
    sw_pixel_lut lut;
    uint8_t *chunk; /* [CIFAR_CHUNK_RECORDS, 3073] read buffer */
} cifar_fill;

/* Number of records a file should hold, to size the dataset before reading: exact from the size
 * of a plain file, from the gzip trailer (uncompressed size mod 2^32) of a .gz file. 0 when
 * unknown; reading then grows the arrays and reports any inconsistency precisely. */
static size_t estimate_records(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size <= 0) return 0;
    size_t len = strlen(path);
    if (len < 3 || strcmp(path + len - 3, ".gz") != 0) return (size_t)st.st_size / CIFAR_RECORD;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    unsigned char t[4];
    size_t got = fseek(f, -4, SEEK_END) == 0 ? fread(t, 1, 4, f) : 0;
    fclose(f);
    if (got != 4) return 0;
    uint32_t size =
        (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    /* A trailer that is not a whole number of records is not trustworthy (multi-member file,
     * damage): fall back to growing. */
    return size % CIFAR_RECORD == 0 ? size / CIFAR_RECORD : 0;
}

/* Makes room for `more` examples beyond ds->n, doubling. Only files that disagree with their
 * estimate get here, so the copy realloc may make is rare. */
static sw_status cifar_fill_reserve(cifar_fill *fill, size_t more) {
    sw_dataset *ds = fill->ds;
    size_t need = (size_t)ds->n + more;
    if (need <= fill->capacity) return SW_OK;
    size_t cap = fill->capacity * 2 > need ? fill->capacity * 2 : need;
    if (cap > SW_DATASET_MAX_VALUES / CIFAR_PIXELS)
        return SW_FAIL(SW_ERR_FORMAT, "CIFAR-10: more than %zu records; the files are corrupt",
                       SW_DATASET_MAX_VALUES / CIFAR_PIXELS);
    float *images = realloc(ds->images, cap * CIFAR_PIXELS * sizeof(float));
    if (!images) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu CIFAR-10 images", cap);
    ds->images = images;
    uint8_t *labels = realloc(ds->labels, cap);
    if (!labels) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu CIFAR-10 labels", cap);
    ds->labels = labels;
    fill->capacity = cap;
    return SW_OK;
}

/* Converts the records of `path` into the dataset, at most max_records of them, one chunk of
 * about 1 MiB at a time. */
static sw_status read_batch_file(const char *path, size_t max_records, cifar_fill *fill) {
    sw_dataset *ds = fill->ds;
    sw_data_file f = {0};
    sw_status st = sw_data_file_open(path, &f);
    size_t file_records = 0;
    while (st == SW_OK && file_records < max_records) {
        size_t want = max_records - file_records;
        if (want > CIFAR_CHUNK_RECORDS) want = CIFAR_CHUNK_RECORDS;
        size_t got = 0;
        if ((st = sw_data_file_read_some(&f, fill->chunk, want * CIFAR_RECORD, &got)) != SW_OK)
            break;
        size_t whole = got / CIFAR_RECORD;
        if ((st = cifar_fill_reserve(fill, whole)) != SW_OK) break;
        for (size_t r = 0; r < whole; r++) {
            const uint8_t *rec = fill->chunk + r * CIFAR_RECORD;
            if (rec[0] >= 10) {
                st = SW_FAIL(SW_ERR_FORMAT,
                             "%s: record %zu has label %d, outside 0..9; the file is corrupt or "
                             "not CIFAR-10 (CIFAR-100 records have two label bytes)",
                             path, file_records + r, rec[0]);
                break;
            }
            /* The record's pixels are already [C, H, W]: one table lookup per byte. */
            ds->labels[ds->n] = rec[0];
            sw_pixel_lut_apply(&fill->lut, rec + 1, ds->images + (size_t)ds->n * CIFAR_PIXELS, 1,
                               CIFAR_SIDE * CIFAR_SIDE);
            ds->n++;
        }
        if (st != SW_OK) break;
        file_records += whole;
        if (got % CIFAR_RECORD != 0) {
            st = SW_FAIL(SW_ERR_FORMAT,
                         "%s: truncated: the file ends %zu bytes into record %zu (records are "
                         "%d bytes); download or extract it again",
                         path, got % CIFAR_RECORD, file_records, CIFAR_RECORD);
            break;
        }
        if (got < want * CIFAR_RECORD) break; /* clean end of file */
    }
    if (st == SW_OK && file_records == 0)
        st = SW_FAIL(SW_ERR_FORMAT, "%s: the file holds no records", path);
    sw_data_file_close(&f);
    return st;
}

/* Finds the folder holding the batches: dir itself or dir/cifar-10-batches-bin. */
static sw_status resolve_folder(const char *dir, const char *first, char *folder, size_t size) {
    char path[SW_DATA_PATH_MAX];
    if (sw_data_file_find(dir, first, path, sizeof path)) {
        snprintf(folder, size, "%s", dir);
        return SW_OK;
    }
    char sub[SW_DATA_PATH_MAX];
    snprintf(sub, sizeof sub, "%s/%s", dir, CIFAR_SUBDIR);
    if (sw_data_file_find(sub, first, path, sizeof path)) {
        snprintf(folder, size, "%s", sub);
        return SW_OK;
    }
    return SW_FAIL(SW_ERR_NOT_FOUND,
                   "CIFAR-10 not found: neither %s/%s nor %s/%s exists; pass --data DIR with the "
                   "binary batches (data_batch_1.bin .. data_batch_5.bin, test_batch.bin: the "
                   "%s folder of cifar-10-binary.tar.gz, or its parent)",
                   dir, first, sub, first, CIFAR_SUBDIR);
}

sw_status sw_dataset_load_cifar10(const char *dir, sw_split split, int subset, sw_dataset **out) {
    const char *const *files = split == SW_SPLIT_TRAIN ? train_files : test_files;
    const int n_files = split == SW_SPLIT_TRAIN ? 5 : 1;
    char folder[SW_DATA_PATH_MAX];
    SW_TRY(resolve_folder(dir, files[0], folder, sizeof folder));
    /* Check every file first, so a broken install is reported whatever the subset. */
    char paths[CIFAR_MAX_FILES][SW_DATA_PATH_MAX];
    for (int i = 0; i < n_files; i++) {
        if (!sw_data_file_find(folder, files[i], paths[i], sizeof paths[i]))
            return SW_FAIL(SW_ERR_NOT_FOUND,
                           "CIFAR-10: %s/%s is missing (the %s split needs %s); extract "
                           "cifar-10-binary.tar.gz again and pass --data DIR",
                           folder, files[i], split == SW_SPLIT_TRAIN ? "training" : "test",
                           split == SW_SPLIT_TRAIN ? "data_batch_1.bin .. data_batch_5.bin"
                                                   : "test_batch.bin");
    }

    const size_t limit = subset > 0 ? (size_t)subset : SW_DATASET_MAX_VALUES / CIFAR_PIXELS;
    size_t expected = 0;
    for (int i = 0; i < n_files; i++) expected += estimate_records(paths[i]);
    if (expected > limit) expected = limit;
    if (expected == 0) expected = 1;

    cifar_fill fill = {0};
    sw_status st;
    if ((st = sw_dataset_alloc(SW_DATASET_CIFAR10, (int)expected, CIFAR_SIDE, CIFAR_SIDE,
                               &fill.ds)) != SW_OK)
        goto fail;
    fill.capacity = expected;
    fill.ds->n = 0;
    sw_dataset_pixel_lut(fill.ds, &fill.lut);
    fill.chunk = malloc((size_t)CIFAR_CHUNK_RECORDS * CIFAR_RECORD);
    if (!fill.chunk) {
        st = SW_FAIL(SW_ERR_NOMEM, "cannot allocate a read buffer");
        goto fail;
    }
    for (int i = 0; i < n_files && (size_t)fill.ds->n < limit; i++) {
        if ((st = read_batch_file(paths[i], limit - (size_t)fill.ds->n, &fill)) != SW_OK) goto fail;
    }
    free(fill.chunk);
    *out = fill.ds;
    return SW_OK;

fail:
    sw_dataset_free(fill.ds);
    free(fill.chunk);
    return st;
}
