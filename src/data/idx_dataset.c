/* idx_dataset.c - Fashion-MNIST and MNIST: one IDX file of images and one of labels per split.
 *
 * Files: <dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]. Images [n, 28, 28] bytes become
 * [n, 1, 28, 28] normalised floats; labels [n] bytes are checked against the class count.
 * Images are converted in chunks as they are decompressed, so no byte copy of the whole file
 * is ever held, and a subset stops reading as soon as it has its examples.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_file.h"
#include "idx.h"
#include "sources.h"

/* Bytes decompressed per conversion step: large enough that gzread runs in long stretches,
 * small enough to stay in L2 while it is converted. */
#define CHUNK_BYTES ((size_t)256 * 1024)

/* The missing-file message: which files, and how to get them. */
static sw_status fail_missing(sw_dataset_kind kind, sw_split split, const char *dir,
                              const char *name) {
    const char *split_name = split == SW_SPLIT_TRAIN ? "training" : "test";
    if (kind == SW_DATASET_FASHION_MNIST)
        return SW_FAIL(SW_ERR_NOT_FOUND,
                       "Fashion-MNIST %s split not found: neither %s/%s.gz nor %s/%s exists; "
                       "install the dataset with `apt-get install dataset-fashion-mnist` "
                       "(it fills %s) or pass --data DIR with the standard IDX files",
                       split_name, dir, name, dir, name, SW_FASHION_MNIST_DEFAULT_DIR);
    return SW_FAIL(SW_ERR_NOT_FOUND,
                   "%s %s split not found: neither %s/%s.gz nor %s/%s exists; pass --data DIR "
                   "with the standard files (train-images-idx3-ubyte.gz, "
                   "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                   "t10k-labels-idx1-ubyte.gz)",
                   sw_dataset_kind_title(kind), split_name, dir, name, dir, name);
}

/* Reads n_keep labels and checks each is a valid class. */
static sw_status read_labels(sw_data_file *f, sw_dataset *ds, int n_keep) {
    SW_TRY(sw_data_file_read(f, ds->labels, (size_t)n_keep, "the labels"));
    for (int i = 0; i < n_keep; i++) {
        if (ds->labels[i] >= ds->n_classes)
            return SW_FAIL(SW_ERR_FORMAT,
                           "%s: label %d of example %d is outside 0..%d; the file is corrupt or "
                           "belongs to another dataset",
                           f->path, ds->labels[i], i, ds->n_classes - 1);
    }
    return SW_OK;
}

/* Decompresses n_keep images chunk by chunk, converting each chunk into ds->images. */
static sw_status read_images(sw_data_file *f, sw_dataset *ds, int n_keep) {
    const size_t plane = (size_t)ds->height * (size_t)ds->width;
    size_t per_chunk = CHUNK_BYTES / plane;
    if (per_chunk == 0) per_chunk = 1;
    uint8_t *chunk = malloc(per_chunk * plane);
    if (!chunk) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a read buffer");
    sw_pixel_lut lut;
    sw_dataset_pixel_lut(ds, &lut);
    sw_status st = SW_OK;
    for (size_t first = 0; first < (size_t)n_keep; first += per_chunk) {
        size_t count = (size_t)n_keep - first;
        if (count > per_chunk) count = per_chunk;
        char what[64];
        snprintf(what, sizeof what, "images %zu..%zu", first, first + count - 1);
        st = sw_data_file_read(f, chunk, count * plane, what);
        if (st != SW_OK) break;
        sw_pixel_lut_apply(&lut, chunk, ds->images + first * plane, count, plane);
    }
    free(chunk);
    return st;
}

sw_status sw_dataset_load_idx(sw_dataset_kind kind, const char *dir, sw_split split, int subset,
                              sw_dataset **out) {
    const char *prefix = split == SW_SPLIT_TRAIN ? "train" : "t10k";
    char images_name[64], labels_name[64];
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", prefix);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", prefix);
    char images_path[SW_DATA_PATH_MAX], labels_path[SW_DATA_PATH_MAX];
    if (!sw_data_file_find(dir, images_name, images_path, sizeof images_path))
        return fail_missing(kind, split, dir, images_name);
    if (!sw_data_file_find(dir, labels_name, labels_path, sizeof labels_path))
        return fail_missing(kind, split, dir, labels_name);

    sw_data_file images = {0}, labels = {0};
    sw_dataset *ds = NULL;
    sw_status st;
    sw_idx_header ih, lh;
    if ((st = sw_data_file_open(labels_path, &labels)) != SW_OK) goto fail;
    if ((st = sw_idx_read_header(&labels, 1, &lh)) != SW_OK) goto fail;
    if ((st = sw_data_file_open(images_path, &images)) != SW_OK) goto fail;
    if ((st = sw_idx_read_header(&images, 3, &ih)) != SW_OK) goto fail;
    const int n = ih.dims[0];
    if (n != lh.dims[0]) {
        st = SW_FAIL(SW_ERR_FORMAT,
                     "%s holds %d images but %s holds %d labels; the two files must come from "
                     "the same release",
                     images_path, n, labels_path, lh.dims[0]);
        goto fail;
    }
    const int n_keep = subset > 0 && subset < n ? subset : n;
    if ((st = sw_dataset_alloc(kind, n_keep, ih.dims[1], ih.dims[2], &ds)) != SW_OK) goto fail;
    if ((st = read_labels(&labels, ds, n_keep)) != SW_OK) goto fail;
    if ((st = read_images(&images, ds, n_keep)) != SW_OK) goto fail;
    /* Only a full read can tell whether the file is longer than its header says. */
    if (n_keep == n) {
        if ((st = sw_data_file_expect_end(&labels)) != SW_OK) goto fail;
        if ((st = sw_data_file_expect_end(&images)) != SW_OK) goto fail;
    }
    sw_data_file_close(&images);
    sw_data_file_close(&labels);
    *out = ds;
    return SW_OK;

fail:
    sw_dataset_free(ds);
    sw_data_file_close(&images);
    sw_data_file_close(&labels);
    return st;
}
