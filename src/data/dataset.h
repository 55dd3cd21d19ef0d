/* dataset.h - labelled image datasets in memory, and mini-batches drawn from them.
 *
 * Sources: Fashion-MNIST and MNIST in IDX format (plain or .gz), CIFAR-10 binary batches.
 * Images are stored as float32 [N, C, H, W] already scaled to [0, 1] and normalised per channel
 * with the dataset's mean/std; labels are class indices.
 */
#ifndef SW_DATASET_H
#define SW_DATASET_H

#include <stdbool.h>
#include <stdint.h>

#include "../tensor/rng.h"
#include "../tensor/tensor.h"

#define SW_FASHION_MNIST_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

typedef enum sw_dataset_kind {
    SW_DATASET_FASHION_MNIST,
    SW_DATASET_MNIST,
    SW_DATASET_CIFAR10,
} sw_dataset_kind;

typedef enum sw_split {
    SW_SPLIT_TRAIN,
    SW_SPLIT_TEST,
} sw_split;

typedef struct sw_dataset {
    int n;                 /* number of examples */
    int channels, height, width;
    int n_classes;
    float *images;         /* owned: [n, channels, height, width], normalised */
    uint8_t *labels;       /* owned: [n] */
    float mean[3], std[3]; /* the per-channel normalisation applied */
    char name[32];         /* "fashion-mnist", "mnist", "cifar10" */
} sw_dataset;

/* Loads a split from `dir` (NULL = the default folder of the kind: Fashion-MNIST from
 * SW_FASHION_MNIST_DEFAULT_DIR; MNIST and CIFAR-10 have no default and need a folder).
 * File names are the standard ones (train-images-idx3-ubyte[.gz], ..., data_batch_1.bin ...).
 * `subset` > 0 keeps the first `subset` examples. A missing or corrupt file is an error naming
 * the file and how to get it (apt-get install dataset-fashion-mnist). Caller owns *out. */
sw_status sw_dataset_load(sw_dataset_kind kind, const char *dir, sw_split split, int subset,
                          sw_dataset **out);
void sw_dataset_free(sw_dataset *ds);
/* "fashion-mnist" | "mnist" | "cifar10" -> kind. */
sw_status sw_dataset_kind_from_name(const char *name, sw_dataset_kind *out);

/* Augmentation applied when batches are drawn (training only). */
typedef struct sw_augment {
    int crop_padding;     /* random crop with zero padding of this many pixels; 0 = off */
    bool horizontal_flip; /* flip with probability 1/2 */
} sw_augment;

/* Draws mini-batches from a dataset, reshuffled each epoch from a seeded generator.
 * Batch memory is allocated once (batch_size examples) and reused. */
typedef struct sw_loader {
    const sw_dataset *ds; /* borrowed */
    int batch_size;
    bool shuffle;
    bool drop_last;
    sw_augment augment;
    sw_rng rng;
    int *order;       /* owned permutation of [0, n) */
    int cursor;       /* next position in order */
    float *x_data;    /* owned [batch_size, C, H, W] */
    int *y_data;      /* owned [batch_size] */
} sw_loader;

/* The batch just drawn: x [b, C, H, W] and labels y[b] (views into the loader). */
typedef struct sw_batch {
    sw_tensor x;
    const int *y;
    int size;
} sw_batch;

sw_status sw_loader_init(sw_loader *loader, const sw_dataset *ds, int batch_size, bool shuffle,
                         bool drop_last, const sw_augment *augment, uint64_t seed);
void sw_loader_deinit(sw_loader *loader);
/* Number of batches in one epoch. */
int sw_loader_batches_per_epoch(const sw_loader *loader);
/* Starts a new epoch (reshuffles when shuffle is on). */
void sw_loader_reset(sw_loader *loader);
/* Fills *batch with the next batch; returns false at the end of the epoch. */
bool sw_loader_next(sw_loader *loader, sw_batch *batch);

#endif
