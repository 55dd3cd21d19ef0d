/* dataset.c - dataset kinds, their normalisation constants, allocation, and the load dispatch. */
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sources.h"

void sw_data_advise_huge(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
    /* madvise needs a page-aligned start; the few bytes before the first boundary stay as they
     * are. The advice only changes how pages are faulted in: failure is harmless. */
    long page_size = sysconf(_SC_PAGESIZE);
    const uintptr_t page = page_size > 0 ? (uintptr_t)page_size : 4096;
    uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
    uintptr_t end = (uintptr_t)p + bytes;
    if (bytes >= SW_DATA_HUGE_PAGE && end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)bytes;
#endif
}

/* Allocates a large array that free() releases, 2 MiB-aligned so that the huge-page advice
 * covers all of it. */
static void *alloc_large(size_t bytes) {
    if (bytes < SW_DATA_HUGE_PAGE) return malloc(bytes);
    size_t rounded = (bytes + SW_DATA_HUGE_PAGE - 1) / SW_DATA_HUGE_PAGE * SW_DATA_HUGE_PAGE;
    void *p = aligned_alloc(SW_DATA_HUGE_PAGE, rounded);
    if (p) sw_data_advise_huge(p, rounded);
    return p;
}

/* Per-kind facts. The mean/std are the customary per-channel statistics of each training set
 * (pixels scaled to [0, 1]), the values torchvision examples and NNI's tutorials normalise with,
 * so a model trained here sees the same inputs as one trained in PyTorch. */
typedef struct kind_info {
    const char *name;  /* command-line name, also sw_dataset.name */
    const char *title; /* for messages */
    int channels;
    int n_classes;
    float mean[3], std[3];
} kind_info;

static const kind_info kinds[] = {
    [SW_DATASET_FASHION_MNIST] =
        {"fashion-mnist", "Fashion-MNIST", 1, 10, {0.2860f, 0.0f, 0.0f}, {0.3530f, 1.0f, 1.0f}},
    [SW_DATASET_MNIST] = {"mnist", "MNIST", 1, 10, {0.1307f, 0.0f, 0.0f}, {0.3081f, 1.0f, 1.0f}},
    [SW_DATASET_CIFAR10] =
        {"cifar10", "CIFAR-10", 3, 10, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}},
};
#define N_KINDS ((int)(sizeof kinds / sizeof kinds[0]))

static bool kind_valid(sw_dataset_kind kind) {
    return (int)kind >= 0 && (int)kind < N_KINDS;
}

const char *sw_dataset_kind_title(sw_dataset_kind kind) {
    return kind_valid(kind) ? kinds[kind].title : "?";
}

sw_status sw_dataset_kind_from_name(const char *name, sw_dataset_kind *out) {
    if (name) {
        for (int k = 0; k < N_KINDS; k++) {
            if (strcmp(name, kinds[k].name) == 0) {
                *out = (sw_dataset_kind)k;
                return SW_OK;
            }
        }
    }
    return SW_FAIL(SW_ERR_ARG, "unknown dataset '%s': expected fashion-mnist, mnist or cifar10",
                   name ? name : "(null)");
}

sw_status sw_dataset_alloc(sw_dataset_kind kind, int n, int height, int width, sw_dataset **out) {
    SW_ASSERT(kind_valid(kind) && n > 0 && height > 0 && width > 0);
    const kind_info *info = &kinds[kind];
    /* Each dim is below 2^31, so one example's size fits in 64 bits; the count is checked by
     * division so that a header of random bytes cannot overflow the product. */
    size_t example = (size_t)info->channels * (size_t)height * (size_t)width;
    size_t values = example * (size_t)n;
    if (example > SW_DATASET_MAX_VALUES || (size_t)n > SW_DATASET_MAX_VALUES / example)
        return SW_FAIL(SW_ERR_FORMAT,
                       "%s: %d examples of %dx%dx%d are more than the %zu values a dataset may "
                       "hold; the file header is probably corrupt (or use a subset)",
                       info->title, n, info->channels, height, width, SW_DATASET_MAX_VALUES);
    sw_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a dataset");
    ds->n = n;
    ds->channels = info->channels;
    ds->height = height;
    ds->width = width;
    ds->n_classes = info->n_classes;
    memcpy(ds->mean, info->mean, sizeof ds->mean);
    memcpy(ds->std, info->std, sizeof ds->std);
    snprintf(ds->name, sizeof ds->name, "%s", info->name);
    ds->images = alloc_large(values * sizeof(float));
    ds->labels = malloc((size_t)n);
    if (!ds->images || !ds->labels) {
        sw_dataset_free(ds);
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %s: %zu MiB of images", info->title,
                       values * sizeof(float) >> 20);
    }
    *out = ds;
    return SW_OK;
}

void sw_dataset_pixel_lut(const sw_dataset *ds, sw_pixel_lut *lut) {
    sw_pixel_lut_init(lut, ds->channels, ds->mean, ds->std);
}

sw_status sw_dataset_load(sw_dataset_kind kind, const char *dir, sw_split split, int subset,
                          sw_dataset **out) {
    *out = NULL;
    if (!kind_valid(kind)) return SW_FAIL(SW_ERR_ARG, "unknown dataset kind %d", (int)kind);
    if (split != SW_SPLIT_TRAIN && split != SW_SPLIT_TEST)
        return SW_FAIL(SW_ERR_ARG, "unknown split %d (expected train or test)", (int)split);
    if (subset < 0)
        return SW_FAIL(SW_ERR_ARG, "subset must be >= 0 (0 keeps every example), got %d", subset);
    switch (kind) {
    case SW_DATASET_FASHION_MNIST:
        return sw_dataset_load_idx(kind, dir ? dir : SW_FASHION_MNIST_DEFAULT_DIR, split, subset,
                                   out);
    case SW_DATASET_MNIST:
        if (!dir)
            return SW_FAIL(SW_ERR_ARG,
                           "MNIST has no default folder: pass --data DIR with the standard files "
                           "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                           "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; "
                           "unpacked files without .gz work too)");
        return sw_dataset_load_idx(kind, dir, split, subset, out);
    case SW_DATASET_CIFAR10:
        if (!dir)
            return SW_FAIL(SW_ERR_ARG,
                           "CIFAR-10 has no default folder: pass --data DIR with the binary "
                           "batches (data_batch_1.bin .. data_batch_5.bin, test_batch.bin: the "
                           "cifar-10-batches-bin folder of cifar-10-binary.tar.gz)");
        return sw_dataset_load_cifar10(dir, split, subset, out);
    }
    return SW_FAIL(SW_ERR_ARG, "unknown dataset kind %d", (int)kind);
}

void sw_dataset_free(sw_dataset *ds) {
    if (!ds) return;
    free(ds->images);
    free(ds->labels);
    free(ds);
}
