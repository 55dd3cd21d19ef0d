/* cifar10.c - CIFAR-10 binary batches.
 *
 * Each file is a run of 3073-byte records: one label byte (0..9), then 3072 pixel bytes laid out
 * CHW (1024 red, 1024 green, 1024 blue, each 32x32 row-major), which is already our [C, H, W].
 * Training uses data_batch_1.bin .. data_batch_5.bin (10000 records each), testing
 * test_batch.bin. Files are read in order until `subset` examples are gathered; their record
 * count comes from their length, so any whole number of records is accepted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_file.h"
#include "sources.h"

#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE) /* 3072 */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)                        /* 3073 */
#define CIFAR_SUBDIR "cifar-10-batches-bin"
#define CIFAR_MAX_FILES 5
#define CIFAR_STANDARD_RECORDS 10000 /* per file in the official release */
/* Records read per gzread call: about 1 MiB. */
#define CIFAR_CHUNK_RECORDS 341

static const char *const train_files[] = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
static const char *const test_files[] = {"test_batch.bin"};

/* The raw records of every file read so far: [n_records, 3073] bytes. */
typedef struct record_buf {
    uint8_t *data;
    size_t n_records;
    size_t cap_records;
} record_buf;

/* Grows by doubling from one standard file's worth. glibc moves large blocks with mremap, so
 * growing copies no pixels, and untouched capacity costs address space only. */
static sw_status record_buf_reserve(record_buf *buf, size_t more) {
    if (buf->n_records + more <= buf->cap_records) return SW_OK;
    size_t cap = buf->cap_records ? buf->cap_records : CIFAR_STANDARD_RECORDS;
    while (cap < buf->n_records + more) cap *= 2;
    uint8_t *data = realloc(buf->data, cap * CIFAR_RECORD);
    if (!data) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu CIFAR-10 records", cap);
    buf->data = data;
    buf->cap_records = cap;
    return SW_OK;
}

/* Appends the records of `path` to buf, at most max_records of them. */
static sw_status read_batch_file(const char *path, size_t max_records, record_buf *buf) {
    sw_data_file f = {0};
    sw_status st = sw_data_file_open(path, &f);
    size_t file_records = 0;
    while (st == SW_OK && file_records < max_records) {
        size_t want = max_records - file_records;
        if (want > CIFAR_CHUNK_RECORDS) want = CIFAR_CHUNK_RECORDS;
        if ((st = record_buf_reserve(buf, want)) != SW_OK) break;
        size_t got = 0;
        uint8_t *dst = buf->data + buf->n_records * CIFAR_RECORD;
        if ((st = sw_data_file_read_some(&f, dst, want * CIFAR_RECORD, &got)) != SW_OK) break;
        size_t whole = got / CIFAR_RECORD;
        for (size_t r = 0; r < whole; r++) {
            uint8_t label = dst[r * CIFAR_RECORD];
            if (label >= 10) {
                st = SW_FAIL(SW_ERR_FORMAT,
                             "%s: record %zu has label %d, outside 0..9; the file is corrupt or "
                             "not CIFAR-10 (CIFAR-100 records have two label bytes)",
                             path, file_records + r, label);
                break;
            }
        }
        if (st != SW_OK) break;
        buf->n_records += whole;
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

sw_status sw_dataset_load_cifar10(const char *dir, sw_split split, int subset,
                                  sw_dataset **out) {
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

    record_buf buf = {0};
    sw_dataset *ds = NULL;
    sw_status st = SW_OK;
    const size_t limit = subset > 0 ? (size_t)subset : SW_DATASET_MAX_VALUES / CIFAR_PIXELS;
    for (int i = 0; i < n_files && buf.n_records < limit; i++) {
        if ((st = read_batch_file(paths[i], limit - buf.n_records, &buf)) != SW_OK) goto fail;
    }
    if ((st = sw_dataset_alloc(SW_DATASET_CIFAR10, (int)buf.n_records, CIFAR_SIDE, CIFAR_SIDE,
                               &ds)) != SW_OK)
        goto fail;
    sw_pixel_lut lut;
    sw_dataset_pixel_lut(ds, &lut);
    for (size_t r = 0; r < buf.n_records; r++) {
        const uint8_t *rec = buf.data + r * CIFAR_RECORD;
        ds->labels[r] = rec[0];
        sw_pixel_lut_apply(&lut, rec + 1, ds->images + r * CIFAR_PIXELS, 1,
                           CIFAR_SIDE * CIFAR_SIDE);
    }
    free(buf.data);
    *out = ds;
    return SW_OK;

fail:
    sw_dataset_free(ds);
    free(buf.data);
    return st;
}
