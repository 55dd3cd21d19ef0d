/* test_data.c - datasets (IDX, gzip, CIFAR-10 binary), normalisation, loaders, augmentation. */
#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/augment.h"
#include "data/dataset.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers: files in a fresh folder per test
 * ------------------------------------------------------------------------------------------- */

/* A new empty folder <tmpdir>/<name> (each test uses its own name). */
static const char *make_dir(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "%s/%s", sw_test_tmpdir(), name);
    assert_int_equal(mkdir(buf, 0755), 0);
    return buf;
}

/* Writes data to path, plain or as one gzip member; append_member adds a second gzip member
 * to an existing .gz file (a valid gzip file that zlib reads as one stream). */
static void write_bytes_mode(const char *path, const uint8_t *data, size_t n, bool gz,
                             bool append_member) {
    if (gz) {
        gzFile f = gzopen(path, append_member ? "ab" : "wb");
        assert_non_null(f);
        if (n > 0) assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        if (n > 0) assert_int_equal(fwrite(data, 1, n, f), n);
        assert_int_equal(fclose(f), 0);
    }
}

static void write_bytes(const char *path, const uint8_t *data, size_t n, bool gz) {
    write_bytes_mode(path, data, n, gz, false);
}

/* Reads a whole file into a malloc'd buffer (caller frees). */
static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes an IDX file: `magic`, dims, then n_data bytes (which may disagree with the dims, to
 * make broken files). */
static void write_idx(const char *path, uint32_t magic, int ndim, const int *dims,
                      const uint8_t *data, size_t n_data, bool gz) {
    size_t header = 4 + 4 * (size_t)ndim;
    uint8_t *buf = malloc(header + n_data + 1);
    assert_non_null(buf);
    put_be32(buf, magic);
    for (int i = 0; i < ndim; i++) put_be32(buf + 4 + 4 * i, (uint32_t)dims[i]);
    if (n_data) memcpy(buf + header, data, n_data);
    write_bytes(path, buf, header + n_data, gz);
    free(buf);
}

/* A small consistent IDX pair in dir for `prefix` ("train" / "t10k"): n images of h x w whose
 * byte at (i, p) is (i * 37 + p * 11) % 256, labels i % 10. */
typedef struct tiny_idx {
    int n, h, w;
    uint8_t pixels[64 * 8 * 8];
    uint8_t labels[64];
} tiny_idx;

static void tiny_idx_fill(tiny_idx *t, int n, int h, int w) {
    assert_true(n <= 64 && h * w <= 64);
    t->n = n;
    t->h = h;
    t->w = w;
    for (int i = 0; i < n; i++) {
        t->labels[i] = (uint8_t)(i % 10);
        for (int p = 0; p < h * w; p++)
            t->pixels[i * h * w + p] = (uint8_t)((i * 37 + p * 11) % 256);
    }
    /* Both extremes of the byte range appear. */
    t->pixels[0] = 0;
    t->pixels[1] = 255;
}

static void write_tiny_pair(const char *dir, const char *prefix, const tiny_idx *t, bool gz) {
    char path[512];
    const char *ext = gz ? ".gz" : "";
    int idims[3] = {t->n, t->h, t->w};
    int ldims[1] = {t->n};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, ext);
    write_idx(path, 0x803, 3, idims, t->pixels, (size_t)(t->n * t->h * t->w), gz);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, ext);
    write_idx(path, 0x801, 1, ldims, t->labels, (size_t)t->n, gz);
}

/* The normalisation torchvision applies: ToTensor (x / 255) then Normalize, in float32. */
static float normalised(uint8_t v, float mean, float std) {
    return ((float)v / 255.0f - mean) / std;
}

/* Checks ds against the tiny pair it was loaded from (first n examples). */
static void assert_matches_tiny(const sw_dataset *ds, const tiny_idx *t, int n, float mean,
                                float std) {
    assert_int_equal(ds->n, n);
    assert_int_equal(ds->channels, 1);
    assert_int_equal(ds->height, t->h);
    assert_int_equal(ds->width, t->w);
    assert_int_equal(ds->n_classes, 10);
    for (int i = 0; i < n; i++) {
        assert_int_equal(ds->labels[i], t->labels[i]);
        for (int p = 0; p < t->h * t->w; p++) {
            float want = normalised(t->pixels[i * t->h * t->w + p], mean, std);
            assert_float_equal(ds->images[i * t->h * t->w + p], want, 1e-6);
        }
    }
}

/* Loads expecting failure with `status`; checks *out stays NULL and the message contains each
 * of the given fragments. */
static void assert_load_fails(sw_dataset_kind kind, const char *dir, sw_split split,
                              sw_status status, const char *frag1, const char *frag2) {
    sw_dataset *ds = (sw_dataset *)0x1;
    sw_error_clear();
    sw_status st = sw_dataset_load(kind, dir, split, 0, &ds);
    if (st != status)
        fail_msg("expected %s, got %s: %s", sw_status_str(status), sw_status_str(st),
                 sw_error_message());
    assert_null(ds);
    const char *msg = sw_error_message();
    if (frag1 && !strstr(msg, frag1)) fail_msg("message lacks \"%s\": %s", frag1, msg);
    if (frag2 && !strstr(msg, frag2)) fail_msg("message lacks \"%s\": %s", frag2, msg);
}

/* ---------------------------------------------------------------------------------------------
 * IDX datasets
 * ------------------------------------------------------------------------------------------- */

/* Plain IDX files load with their labels and pixels normalised with Fashion-MNIST's mean/std. */
static void test_data_idx_plain_loads_normalised_values(void **state) {
    (void)state;
    char dir[512];
    make_dir("idx_plain", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 7, 3, 4);
    write_tiny_pair(dir, "train", &t, false);
    sw_dataset *ds = NULL;
    assert_int_equal(sw_dataset_load(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, 0, &ds), SW_OK);
    assert_matches_tiny(ds, &t, 7, 0.2860f, 0.3530f);
    assert_string_equal(ds->name, "fashion-mnist");
    assert_float_equal(ds->mean[0], 0.2860f, 0.0f);
    assert_float_equal(ds->std[0], 0.3530f, 0.0f);
    /* The extremes by hand: (0 - 0.286) / 0.353 and (1 - 0.286) / 0.353. */
    assert_float_equal(ds->images[0], -0.8101983f, 1e-6);
    assert_float_equal(ds->images[1], 2.0226629f, 1e-6);
    sw_dataset_free(ds);
}

/* gzip-compressed IDX files load to the same values, and the .gz file wins over a plain one. */
static void test_data_idx_gz_loads_and_is_preferred(void **state) {
    (void)state;
    char dir[512];
    make_dir("idx_gz", dir, sizeof dir);
    tiny_idx t, other;
    tiny_idx_fill(&t, 5, 2, 3);
    tiny_idx_fill(&other, 4, 2, 3);
    write_tiny_pair(dir, "t10k", &t, true);
    write_tiny_pair(dir, "t10k", &other, false); /* a different, plain pair beside it */
    sw_dataset *ds = NULL;
    assert_int_equal(sw_dataset_load(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TEST, 0, &ds), SW_OK);
    assert_matches_tiny(ds, &t, 5, 0.2860f, 0.3530f);
    sw_dataset_free(ds);
}

/* MNIST uses its own statistics (0.1307, 0.3081) and name. */
static void test_data_idx_mnist_uses_mnist_statistics(void **state) {
    (void)state;
    char dir[512];
    make_dir("idx_mnist", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 3, 2, 2);
    write_tiny_pair(dir, "train", &t, true);
    sw_dataset *ds = NULL;
    assert_int_equal(sw_dataset_load(SW_DATASET_MNIST, dir, SW_SPLIT_TRAIN, 0, &ds), SW_OK);
    assert_matches_tiny(ds, &t, 3, 0.1307f, 0.3081f);
    assert_string_equal(ds->name, "mnist");
    assert_float_equal(ds->mean[0], 0.1307f, 0.0f);
    assert_float_equal(ds->std[0], 0.3081f, 0.0f);
    sw_dataset_free(ds);
}

/* subset > 0 keeps exactly the first `subset` examples; a subset above n keeps all of them;
 * a negative subset is an argument error. */
static void test_data_idx_subset_keeps_first_examples(void **state) {
    (void)state;
    char dir[512];
    make_dir("idx_subset", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 9, 3, 3);
    write_tiny_pair(dir, "train", &t, true);
    sw_dataset *ds = NULL;
    assert_int_equal(sw_dataset_load(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, 4, &ds), SW_OK);
    assert_matches_tiny(ds, &t, 4, 0.2860f, 0.3530f);
    sw_dataset_free(ds);
    assert_int_equal(sw_dataset_load(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, 100, &ds),
                     SW_OK);
    assert_matches_tiny(ds, &t, 9, 0.2860f, 0.3530f);
    sw_dataset_free(ds);
    ds = (sw_dataset *)0x1;
    assert_int_equal(sw_dataset_load(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, -1, &ds),
                     SW_ERR_ARG);
    assert_null(ds);
}

/* An images file with the labels' magic number (or any other) is rejected, naming the file. */
static void test_data_idx_bad_magic_is_format_error(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_magic", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 3, 2, 2);
    write_tiny_pair(dir, "train", &t, false);
    int dims[3] = {3, 2, 2};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_idx(path, 0x801, 3, dims, t.pixels, 12, false);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path, "magic");
}

/* Image data shorter than the header declares is reported as truncated, naming the file. */
static void test_data_idx_truncated_images_is_format_error(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_trunc", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 3, 2, 2);
    write_tiny_pair(dir, "train", &t, true);
    int dims[3] = {3, 2, 2};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(path, 0x803, 3, dims, t.pixels, 10, true); /* 12 bytes declared */
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path,
                      "truncated");
    /* A header cut inside the dims is truncated too. */
    uint8_t head[6] = {0, 0, 8, 3, 0, 0};
    write_bytes(path, head, sizeof head, true);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path,
                      "truncated");
}

/* A file longer than its header declares is rejected (its dims are wrong). */
static void test_data_idx_trailing_data_is_format_error(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_trailing", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 4, 2, 2);
    write_tiny_pair(dir, "train", &t, false);
    int dims[1] = {3};
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    /* Labels say 3 but hold 4 bytes; make the images agree on 3 so only the tail is wrong. */
    write_idx(path, 0x801, 1, dims, t.labels, 4, false);
    int idims[3] = {3, 2, 2};
    char ipath[600];
    snprintf(ipath, sizeof ipath, "%s/train-images-idx3-ubyte", dir);
    write_idx(ipath, 0x803, 3, idims, t.pixels, 12, false);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path,
                      "more data than its header");
}

/* A zero dimension in the header is rejected, and so are dims too large to hold. */
static void test_data_idx_bad_dimensions_are_format_errors(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_zero", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 2, 2, 2);
    write_tiny_pair(dir, "train", &t, false);
    int dims[3] = {2, 0, 2};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_idx(path, 0x803, 3, dims, NULL, 0, false);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path,
                      "dimension 1");
    /* Dims whose product would not fit in memory (or in 64 bits) are refused before any
     * allocation; the labels agree on the count so that only the size is wrong. */
    const int huge = 1 << 30;
    int big[3] = {huge, huge, huge};
    write_idx(path, 0x803, 3, big, NULL, 0, false);
    char lpath[600];
    snprintf(lpath, sizeof lpath, "%s/train-labels-idx1-ubyte", dir);
    write_idx(lpath, 0x801, 1, big, NULL, 0, false);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, "Fashion-MNIST",
                      "header is probably corrupt");
}

/* Images and labels files that disagree on the example count are rejected, naming both. */
static void test_data_idx_count_mismatch_is_format_error(void **state) {
    (void)state;
    char dir[512], ipath[600], lpath[600];
    make_dir("idx_count", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 5, 2, 2);
    write_tiny_pair(dir, "train", &t, true);
    int dims[1] = {4};
    snprintf(lpath, sizeof lpath, "%s/train-labels-idx1-ubyte.gz", dir);
    snprintf(ipath, sizeof ipath, "%s/train-images-idx3-ubyte.gz", dir);
    write_idx(lpath, 0x801, 1, dims, t.labels, 4, true);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, ipath, lpath);
}

/* A label outside 0..n_classes-1 is rejected, naming the file and the example. */
static void test_data_idx_label_out_of_range_is_format_error(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_label", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 4, 2, 2);
    t.labels[2] = 10;
    write_tiny_pair(dir, "t10k", &t, false);
    snprintf(path, sizeof path, "%s/t10k-labels-idx1-ubyte", dir);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TEST, SW_ERR_FORMAT, path,
                      "label 10 of example 2");
}

/* A missing Fashion-MNIST file is NOT_FOUND, naming the expected path and the apt-get command. */
static void test_data_idx_missing_fashion_names_file_and_package(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_missing", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_NOT_FOUND, path,
                      "apt-get install dataset-fashion-mnist");
    /* Images present, labels missing: the labels file is named. */
    tiny_idx t;
    tiny_idx_fill(&t, 2, 2, 2);
    int dims[3] = {2, 2, 2};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_idx(path, 0x803, 3, dims, t.pixels, 8, false);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_NOT_FOUND, path,
                      "apt-get install dataset-fashion-mnist");
}

/* MNIST has no default folder, and a missing MNIST file points at --data with the file names. */
static void test_data_idx_missing_mnist_asks_for_data_dir(void **state) {
    (void)state;
    char dir[512], path[600];
    assert_load_fails(SW_DATASET_MNIST, NULL, SW_SPLIT_TRAIN, SW_ERR_ARG, "--data",
                      "train-images-idx3-ubyte");
    make_dir("idx_missing_mnist", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/t10k-images-idx3-ubyte", dir);
    assert_load_fails(SW_DATASET_MNIST, dir, SW_SPLIT_TEST, SW_ERR_NOT_FOUND, path, "--data");
}

/* A .gz file whose deflate data is garbage is reported as corrupt gzip data. */
static void test_data_idx_corrupt_gz_is_format_error(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_corrupt_gz", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 3, 2, 2);
    write_tiny_pair(dir, "train", &t, true);
    /* A valid gzip header (magic, deflate, no flags) followed by an invalid block type. */
    uint8_t bad[32] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memset(bad + 10, 0xff, sizeof bad - 10);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_bytes(path, bad, sizeof bad, false);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path,
                      "corrupt gzip data");
}

/* A gzip stream cut short (an interrupted download) is reported as truncated. */
static void test_data_idx_cut_gz_stream_is_truncated(void **state) {
    (void)state;
    char dir[512], path[600];
    make_dir("idx_cut_gz", dir, sizeof dir);
    tiny_idx t;
    tiny_idx_fill(&t, 60, 8, 8);
    write_tiny_pair(dir, "train", &t, true);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    size_t n = 0;
    uint8_t *whole = read_all(path, &n);
    write_bytes(path, whole, n / 2, false);
    free(whole);
    assert_load_fails(SW_DATASET_FASHION_MNIST, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path,
                      "truncated");
}

/* Dataset names map to kinds; an unknown name lists the valid ones. */
static void test_data_kind_from_name_maps_names(void **state) {
    (void)state;
    sw_dataset_kind k;
    assert_int_equal(sw_dataset_kind_from_name("fashion-mnist", &k), SW_OK);
    assert_int_equal(k, SW_DATASET_FASHION_MNIST);
    assert_int_equal(sw_dataset_kind_from_name("mnist", &k), SW_OK);
    assert_int_equal(k, SW_DATASET_MNIST);
    assert_int_equal(sw_dataset_kind_from_name("cifar10", &k), SW_OK);
    assert_int_equal(k, SW_DATASET_CIFAR10);
    assert_int_equal(sw_dataset_kind_from_name("imagenet", &k), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "fashion-mnist, mnist or cifar10"));
    assert_int_equal(sw_dataset_kind_from_name(NULL, &k), SW_ERR_ARG);
}

/* ---------------------------------------------------------------------------------------------
 * CIFAR-10
 * ------------------------------------------------------------------------------------------- */

#define REC 3073

/* Record r of a synthetic file: label `label`, pixel byte p = (p * 13 + seed) % 256. */
static void fill_record(uint8_t *rec, int label, int seed) {
    rec[0] = (uint8_t)label;
    for (int p = 0; p < 3072; p++) rec[1 + p] = (uint8_t)((p * 13 + seed) % 256);
}

/* Writes `count` records to dir/name; record r gets label (base + r) % 10 and seed base + r.
 * With append, they become a further gzip member of an existing dir/name.gz. */
static void write_cifar_file_mode(const char *dir, const char *name, int base, int count, bool gz,
                                  bool append) {
    uint8_t *buf = malloc((size_t)count * REC);
    assert_non_null(buf);
    for (int r = 0; r < count; r++) fill_record(buf + (size_t)r * REC, (base + r) % 10, base + r);
    char path[600];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    write_bytes_mode(path, buf, (size_t)count * REC, gz, append);
    free(buf);
}

static void write_cifar_file(const char *dir, const char *name, int base, int count, bool gz) {
    write_cifar_file_mode(dir, name, base, count, gz, false);
}

/* A full synthetic CIFAR-10 folder: 5 training files of 2 records, and a gz test file of 3
 * records in two gzip members (2 + 1), whose trailer (the last member's size) understates the
 * content, so the reader must grow past its estimate. */
static void write_cifar_folder(const char *dir) {
    char name[32];
    for (int f = 0; f < 5; f++) {
        snprintf(name, sizeof name, "data_batch_%d.bin", f + 1);
        write_cifar_file(dir, name, 2 * f, 2, false);
    }
    write_cifar_file(dir, "test_batch.bin", 100, 2, true);
    write_cifar_file_mode(dir, "test_batch.bin", 102, 1, true, true);
}

static void assert_cifar_example(const sw_dataset *ds, int i, int label, int seed) {
    static const float mean[3] = {0.4914f, 0.4822f, 0.4465f};
    static const float std[3] = {0.2470f, 0.2435f, 0.2616f};
    assert_int_equal(ds->labels[i], label);
    for (int p = 0; p < 3072; p++) {
        uint8_t v = (uint8_t)((p * 13 + seed) % 256);
        float want = normalised(v, mean[p / 1024], std[p / 1024]);
        assert_float_equal(ds->images[(size_t)i * 3072 + p], want, 1e-6);
    }
}

/* The CIFAR reader finds the cifar-10-batches-bin subfolder, reads every training file in
 * order with per-channel normalisation, reads a gz test file, and honours subset. */
static void test_data_cifar_reads_synthetic_batches(void **state) {
    (void)state;
    char root[512], dir[600];
    make_dir("cifar", root, sizeof root);
    snprintf(dir, sizeof dir, "%s/cifar-10-batches-bin", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    write_cifar_folder(dir);

    sw_dataset *ds = NULL;
    assert_int_equal(sw_dataset_load(SW_DATASET_CIFAR10, root, SW_SPLIT_TRAIN, 0, &ds), SW_OK);
    assert_int_equal(ds->n, 10);
    assert_int_equal(ds->channels, 3);
    assert_int_equal(ds->height, 32);
    assert_int_equal(ds->width, 32);
    assert_string_equal(ds->name, "cifar10");
    assert_float_equal(ds->mean[2], 0.4465f, 0.0f);
    assert_float_equal(ds->std[1], 0.2435f, 0.0f);
    for (int i = 0; i < 10; i++) assert_cifar_example(ds, i, i % 10, i);
    sw_dataset_free(ds);

    assert_int_equal(sw_dataset_load(SW_DATASET_CIFAR10, dir, SW_SPLIT_TEST, 0, &ds), SW_OK);
    assert_int_equal(ds->n, 3);
    for (int i = 0; i < 3; i++) assert_cifar_example(ds, i, (100 + i) % 10, 100 + i);
    sw_dataset_free(ds);

    assert_int_equal(sw_dataset_load(SW_DATASET_CIFAR10, root, SW_SPLIT_TRAIN, 3, &ds), SW_OK);
    assert_int_equal(ds->n, 3);
    for (int i = 0; i < 3; i++) assert_cifar_example(ds, i, i % 10, i);
    sw_dataset_free(ds);
}

/* CIFAR errors: no folder given, no batches, a missing training file, a partial record and a
 * label of 10 are each reported with the file concerned. */
static void test_data_cifar_errors_name_the_file(void **state) {
    (void)state;
    char dir[512], path[600];
    assert_load_fails(SW_DATASET_CIFAR10, NULL, SW_SPLIT_TRAIN, SW_ERR_ARG, "--data",
                      "data_batch_1.bin");
    make_dir("cifar_bad", dir, sizeof dir);
    assert_load_fails(SW_DATASET_CIFAR10, dir, SW_SPLIT_TRAIN, SW_ERR_NOT_FOUND, "data_batch_1.bin",
                      "--data");
    write_cifar_folder(dir);

    snprintf(path, sizeof path, "%s/data_batch_3.bin", dir);
    assert_int_equal(remove(path), 0);
    assert_load_fails(SW_DATASET_CIFAR10, dir, SW_SPLIT_TRAIN, SW_ERR_NOT_FOUND, path, NULL);

    /* One whole record and 100 bytes of the next. */
    uint8_t *buf = calloc(2, REC);
    assert_non_null(buf);
    fill_record(buf, 1, 0);
    write_bytes(path, buf, REC + 100, false);
    assert_load_fails(SW_DATASET_CIFAR10, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path, "truncated");

    fill_record(buf + REC, 10, 0);
    write_bytes(path, buf, 2 * REC, false);
    assert_load_fails(SW_DATASET_CIFAR10, dir, SW_SPLIT_TRAIN, SW_ERR_FORMAT, path,
                      "record 1 has label 10");
    free(buf);
}

/* ---------------------------------------------------------------------------------------------
 * Real Fashion-MNIST (installed by scripts/bootstrap: apt-get install dataset-fashion-mnist)
 * ------------------------------------------------------------------------------------------- */

/* The installed Fashion-MNIST test split has 10000 28x28 images, 1000 of each of 10 classes,
 * and after normalisation with the training statistics its pixels have mean ~0 and std ~1. */
static void test_data_fashion_mnist_real_test_split(void **state) {
    (void)state;
    sw_dataset *ds = NULL;
    sw_status st = sw_dataset_load(SW_DATASET_FASHION_MNIST, NULL, SW_SPLIT_TEST, 0, &ds);
    if (st != SW_OK) fail_msg("%s", sw_error_message());
    assert_int_equal(ds->n, 10000);
    assert_int_equal(ds->channels, 1);
    assert_int_equal(ds->height, 28);
    assert_int_equal(ds->width, 28);
    int counts[10] = {0};
    for (int i = 0; i < ds->n; i++) {
        assert_true(ds->labels[i] < 10);
        counts[ds->labels[i]]++;
    }
    for (int c = 0; c < 10; c++) assert_int_equal(counts[c], 1000);
    double sum = 0.0, sum2 = 0.0;
    size_t values = (size_t)ds->n * 28 * 28;
    for (size_t i = 0; i < values; i++) {
        sum += ds->images[i];
        sum2 += (double)ds->images[i] * ds->images[i];
    }
    double mean = sum / (double)values;
    double std = sqrt(sum2 / (double)values - mean * mean);
    assert_true(fabs(mean) < 0.02);
    assert_true(fabs(std - 1.0) < 0.02);
    sw_dataset_free(ds);
}

/* ---------------------------------------------------------------------------------------------
 * Loader
 * ------------------------------------------------------------------------------------------- */

/* A hand-built dataset of n images [c, h, w]: every pixel of image i is i, label i % 10
 * (mean 0.5, std 0.25, so a zero pixel normalises to -2). */
static sw_dataset *make_index_dataset(int n, int c, int h, int w) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    assert_non_null(ds);
    ds->n = n;
    ds->channels = c;
    ds->height = h;
    ds->width = w;
    ds->n_classes = 10;
    for (int k = 0; k < 3; k++) {
        ds->mean[k] = 0.5f;
        ds->std[k] = 0.25f;
    }
    size_t example = (size_t)c * h * w;
    ds->images = malloc((size_t)n * example * sizeof(float));
    ds->labels = malloc((size_t)n);
    assert_non_null(ds->images);
    assert_non_null(ds->labels);
    for (int i = 0; i < n; i++) {
        ds->labels[i] = (uint8_t)(i % 10);
        for (size_t p = 0; p < example; p++) ds->images[(size_t)i * example + p] = (float)i;
    }
    return ds;
}

/* Runs one epoch, checking each batch's rows and labels agree with the dataset, and writes the
 * example indices in the order drawn. Returns how many examples were drawn. */
static int run_epoch(sw_loader *ld, int *order, int *n_batches) {
    const sw_dataset *ds = ld->ds;
    size_t example = (size_t)ds->channels * ds->height * ds->width;
    sw_batch b;
    int drawn = 0;
    *n_batches = 0;
    while (sw_loader_next(ld, &b)) {
        assert_int_equal(b.x.shape.ndim, 4);
        assert_int_equal(b.x.shape.dims[0], b.size);
        assert_int_equal(b.x.shape.dims[1], ds->channels);
        for (int k = 0; k < b.size; k++) {
            int idx = (int)b.x.data[(size_t)k * example];
            for (size_t p = 0; p < example; p++)
                assert_float_equal(b.x.data[(size_t)k * example + p], (float)idx, 0.0f);
            assert_int_equal(b.y[k], ds->labels[idx]);
            order[drawn++] = idx;
        }
        (*n_batches)++;
    }
    return drawn;
}

/* With shuffling, every example appears exactly once per epoch (last batch partial), each epoch
 * in a new order, and the batch rows and labels belong together. */
static void test_data_loader_each_example_once_per_epoch(void **state) {
    (void)state;
    sw_dataset *ds = make_index_dataset(10, 1, 2, 3);
    sw_loader ld;
    assert_int_equal(sw_loader_init(&ld, ds, 3, true, false, NULL, 42), SW_OK);
    assert_int_equal(sw_loader_batches_per_epoch(&ld), 4);
    int first[10], second[10], nb;
    for (int epoch = 0; epoch < 2; epoch++) {
        int *order = epoch == 0 ? first : second;
        assert_int_equal(run_epoch(&ld, order, &nb), 10);
        assert_int_equal(nb, 4);
        int seen[10] = {0};
        for (int i = 0; i < 10; i++) seen[order[i]]++;
        for (int i = 0; i < 10; i++) assert_int_equal(seen[i], 1);
        /* After the end, next keeps returning false until reset. */
        sw_batch b;
        assert_false(sw_loader_next(&ld, &b));
        sw_loader_reset(&ld);
    }
    assert_memory_not_equal(first, second, sizeof first);
    sw_loader_deinit(&ld);
    sw_dataset_free(ds);
}

/* The same seed gives the same order in every epoch; another seed gives another order;
 * without shuffling the order is 0..n-1. */
static void test_data_loader_seed_fixes_order(void **state) {
    (void)state;
    sw_dataset *ds = make_index_dataset(50, 1, 1, 2);
    int a[2][50], b[2][50], c[50], nb;
    sw_loader la, lb, lc;
    assert_int_equal(sw_loader_init(&la, ds, 8, true, false, NULL, 7), SW_OK);
    assert_int_equal(sw_loader_init(&lb, ds, 8, true, false, NULL, 7), SW_OK);
    assert_int_equal(sw_loader_init(&lc, ds, 8, true, false, NULL, 8), SW_OK);
    for (int e = 0; e < 2; e++) {
        run_epoch(&la, a[e], &nb);
        run_epoch(&lb, b[e], &nb);
        sw_loader_reset(&la);
        sw_loader_reset(&lb);
    }
    run_epoch(&lc, c, &nb);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a[0], c, sizeof c);
    sw_loader_deinit(&la);
    sw_loader_deinit(&lb);
    sw_loader_deinit(&lc);

    sw_loader ln;
    assert_int_equal(sw_loader_init(&ln, ds, 8, false, false, NULL, 7), SW_OK);
    assert_int_equal(run_epoch(&ln, c, &nb), 50);
    for (int i = 0; i < 50; i++) assert_int_equal(c[i], i);
    sw_loader_deinit(&ln);
    sw_dataset_free(ds);
}

/* drop_last drops the final partial batch (and everything when batch > n); without it a batch
 * larger than the dataset yields one batch of all examples. */
static void test_data_loader_drop_last(void **state) {
    (void)state;
    sw_dataset *ds = make_index_dataset(10, 1, 2, 2);
    int order[10], nb;
    sw_loader ld;
    assert_int_equal(sw_loader_init(&ld, ds, 3, true, true, NULL, 1), SW_OK);
    assert_int_equal(sw_loader_batches_per_epoch(&ld), 3);
    assert_int_equal(run_epoch(&ld, order, &nb), 9);
    assert_int_equal(nb, 3);
    int seen[10] = {0};
    for (int i = 0; i < 9; i++) assert_int_equal(seen[order[i]]++, 0);
    sw_loader_deinit(&ld);

    assert_int_equal(sw_loader_init(&ld, ds, 16, true, true, NULL, 1), SW_OK);
    assert_int_equal(sw_loader_batches_per_epoch(&ld), 0);
    assert_int_equal(run_epoch(&ld, order, &nb), 0);
    sw_loader_deinit(&ld);

    assert_int_equal(sw_loader_init(&ld, ds, 16, false, false, NULL, 1), SW_OK);
    assert_int_equal(sw_loader_batches_per_epoch(&ld), 1);
    assert_int_equal(run_epoch(&ld, order, &nb), 10);
    assert_int_equal(nb, 1);
    sw_loader_deinit(&ld);
    sw_dataset_free(ds);
}

/* Bad loader arguments are errors, and a failed init leaves a loader that deinit accepts. */
static void test_data_loader_rejects_bad_arguments(void **state) {
    (void)state;
    sw_dataset *ds = make_index_dataset(4, 1, 3, 3);
    sw_loader ld;
    assert_int_equal(sw_loader_init(&ld, ds, 0, true, false, NULL, 1), SW_ERR_ARG);
    sw_loader_deinit(&ld);
    sw_augment aug = {.crop_padding = -1};
    assert_int_equal(sw_loader_init(&ld, ds, 2, true, false, &aug, 1), SW_ERR_ARG);
    aug.crop_padding = 4;
    assert_int_equal(sw_loader_init(&ld, ds, 2, true, false, &aug, 1), SW_ERR_ARG);
    assert_int_equal(sw_loader_init(&ld, NULL, 2, true, false, NULL, 1), SW_ERR_ARG);
    sw_loader_deinit(&ld);
    sw_dataset_free(ds);
}

/* Hand-computed crop and flip: a 2x3 image padded by 1, window at padded (0, 2):
 * [[P P P] [2 3 P]], and flipped [[P P P] [P 3 2]]. */
static void test_data_augment_apply_hand_computed(void **state) {
    (void)state;
    const float src[6] = {1, 2, 3, 4, 5, 6};
    const float pad[1] = {-9};
    float out[6];
    sw_augment_apply(out, src, 1, 2, 3, pad, 1, (sw_augment_draw){0, 2, false});
    const float want[6] = {-9, -9, -9, 2, 3, -9};
    assert_memory_equal(out, want, sizeof want);
    sw_augment_apply(out, src, 1, 2, 3, pad, 1, (sw_augment_draw){0, 2, true});
    const float want_flip[6] = {-9, -9, -9, -9, 3, 2};
    assert_memory_equal(out, want_flip, sizeof want_flip);
    sw_augment_apply(out, src, 1, 2, 3, pad, 1, (sw_augment_draw){1, 1, true});
    const float mirror[6] = {3, 2, 1, 6, 5, 4};
    assert_memory_equal(out, mirror, sizeof mirror);
}

/* A dataset of one hand-made image [c, h, w] with distinct pixels (value = 1 + index). */
static sw_dataset *make_pattern_dataset(int c, int h, int w) {
    sw_dataset *ds = make_index_dataset(1, c, h, w);
    for (int p = 0; p < c * h * w; p++) ds->images[p] = (float)(1 + p);
    return ds;
}

/* Flip-only augmentation returns either the image or its exact mirror, both over many draws,
 * with the batch shape unchanged. */
static void test_data_loader_flip_mirrors_or_keeps(void **state) {
    (void)state;
    sw_dataset *ds = make_pattern_dataset(2, 3, 4);
    sw_augment aug = {.crop_padding = 0, .horizontal_flip = true};
    sw_loader ld;
    assert_int_equal(sw_loader_init(&ld, ds, 1, true, false, &aug, 3), SW_OK);
    int kept = 0, flipped = 0;
    for (int draw = 0; draw < 64; draw++) {
        sw_batch b;
        sw_loader_reset(&ld);
        assert_true(sw_loader_next(&ld, &b));
        assert_int_equal(b.x.shape.dims[1], 2);
        assert_int_equal(b.x.shape.dims[2], 3);
        assert_int_equal(b.x.shape.dims[3], 4);
        bool same = true, mirror = true;
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++) {
                    float got = b.x.data[(c * 3 + i) * 4 + j];
                    same &= got == ds->images[(c * 3 + i) * 4 + j];
                    mirror &= got == ds->images[(c * 3 + i) * 4 + (3 - j)];
                }
        assert_true(same || mirror);
        kept += same;
        flipped += mirror;
    }
    assert_true(kept > 10 && flipped > 10);
    sw_loader_deinit(&ld);
    sw_dataset_free(ds);
}

/* Crop with padding 1 shifts the image by (sy, sx) in {-1, 0, 1}^2, filling with the normalised
 * zero pixel (0 - mean) / std; all nine shifts occur. */
static void test_data_loader_crop_shifts_with_zero_padding(void **state) {
    (void)state;
    const int h = 4, w = 5;
    sw_dataset *ds = make_pattern_dataset(1, h, w);
    const float pad = (0.0f - 0.5f) / 0.25f;
    sw_augment aug = {.crop_padding = 1, .horizontal_flip = false};
    sw_loader ld;
    assert_int_equal(sw_loader_init(&ld, ds, 1, false, false, &aug, 11), SW_OK);
    int shifts_seen[3][3] = {{0}};
    for (int draw = 0; draw < 200; draw++) {
        sw_batch b;
        sw_loader_reset(&ld);
        assert_true(sw_loader_next(&ld, &b));
        assert_int_equal(b.x.shape.dims[2], h);
        assert_int_equal(b.x.shape.dims[3], w);
        int matches = 0;
        for (int sy = -1; sy <= 1; sy++)
            for (int sx = -1; sx <= 1; sx++) {
                bool ok = true;
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++) {
                        int y = i + sy, x = j + sx;
                        float want =
                            y >= 0 && y < h && x >= 0 && x < w ? ds->images[y * w + x] : pad;
                        ok &= b.x.data[i * w + j] == want;
                    }
                if (ok) {
                    matches++;
                    shifts_seen[sy + 1][sx + 1]++;
                }
            }
        assert_int_equal(matches, 1);
    }
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) assert_true(shifts_seen[y][x] > 0);
    sw_loader_deinit(&ld);
    sw_dataset_free(ds);
}

/* With crop and flip on a 3-channel dataset, batches keep the shape [b, 3, 8, 8], every value is
 * an original pixel or the channel's padding, and the same seed reproduces the same batches. */
static void test_data_loader_augmented_batches_reproducible(void **state) {
    (void)state;
    sw_dataset *ds = make_index_dataset(20, 3, 8, 8);
    ds->mean[1] = 0.25f; /* a different padding value per channel */
    sw_augment aug = {.crop_padding = 2, .horizontal_flip = true};
    sw_loader l1, l2;
    assert_int_equal(sw_loader_init(&l1, ds, 6, true, false, &aug, 5), SW_OK);
    assert_int_equal(sw_loader_init(&l2, ds, 6, true, false, &aug, 5), SW_OK);
    sw_batch b1, b2;
    int batches = 0;
    while (sw_loader_next(&l1, &b1)) {
        assert_true(sw_loader_next(&l2, &b2));
        assert_int_equal(b1.x.shape.dims[0], b1.size);
        assert_int_equal(b1.x.shape.dims[1], 3);
        assert_int_equal(b1.x.shape.dims[2], 8);
        assert_int_equal(b1.x.shape.dims[3], 8);
        assert_memory_equal(b1.x.data, b2.x.data, b1.x.numel * sizeof(float));
        for (int k = 0; k < b1.size; k++) {
            for (int c = 0; c < 3; c++) {
                float padv = (0.0f - ds->mean[c]) / ds->std[c];
                for (int p = 0; p < 64; p++) {
                    float v = b1.x.data[(k * 3 + c) * 64 + p];
                    /* Image i holds the value i everywhere, and its label is i % 10. */
                    assert_true(v == padv || (int)v % 10 == b1.y[k]);
                }
            }
        }
        batches++;
    }
    assert_int_equal(batches, 4);
    sw_loader_deinit(&l1);
    sw_loader_deinit(&l2);
    sw_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_idx_plain_loads_normalised_values),
        cmocka_unit_test(test_data_idx_gz_loads_and_is_preferred),
        cmocka_unit_test(test_data_idx_mnist_uses_mnist_statistics),
        cmocka_unit_test(test_data_idx_subset_keeps_first_examples),
        cmocka_unit_test(test_data_idx_bad_magic_is_format_error),
        cmocka_unit_test(test_data_idx_truncated_images_is_format_error),
        cmocka_unit_test(test_data_idx_trailing_data_is_format_error),
        cmocka_unit_test(test_data_idx_bad_dimensions_are_format_errors),
        cmocka_unit_test(test_data_idx_count_mismatch_is_format_error),
        cmocka_unit_test(test_data_idx_label_out_of_range_is_format_error),
        cmocka_unit_test(test_data_idx_missing_fashion_names_file_and_package),
        cmocka_unit_test(test_data_idx_missing_mnist_asks_for_data_dir),
        cmocka_unit_test(test_data_idx_corrupt_gz_is_format_error),
        cmocka_unit_test(test_data_idx_cut_gz_stream_is_truncated),
        cmocka_unit_test(test_data_kind_from_name_maps_names),
        cmocka_unit_test(test_data_cifar_reads_synthetic_batches),
        cmocka_unit_test(test_data_cifar_errors_name_the_file),
        cmocka_unit_test(test_data_fashion_mnist_real_test_split),
        cmocka_unit_test(test_data_loader_each_example_once_per_epoch),
        cmocka_unit_test(test_data_loader_seed_fixes_order),
        cmocka_unit_test(test_data_loader_drop_last),
        cmocka_unit_test(test_data_loader_rejects_bad_arguments),
        cmocka_unit_test(test_data_augment_apply_hand_computed),
        cmocka_unit_test(test_data_loader_flip_mirrors_or_keeps),
        cmocka_unit_test(test_data_loader_crop_shifts_with_zero_padding),
        cmocka_unit_test(test_data_loader_augmented_batches_reproducible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
