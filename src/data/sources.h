/* sources.h - what the dataset readers share (private to src/data).
 *
 * sw_dataset_load dispatches to one reader per file format; every reader allocates its result
 * with sw_dataset_alloc, which fills in the kind's shape, classes and normalisation, and converts
 * bytes with the table from sw_dataset_pixel_lut.
 */
#ifndef SW_DATA_SOURCES_H
#define SW_DATA_SOURCES_H

#include "dataset.h"
#include "pixels.h"

/* The largest dataset we agree to hold, in values (n * C * H * W): 2^31 floats = 8 GiB. A header
 * declaring more is corrupt, not big. */
#define SW_DATASET_MAX_VALUES ((size_t)1 << 31)

/* Large arrays (images, raw records) are faulted in on 2 MiB pages when the kernel allows it.
 * Filling fresh memory is the slowest part of a load after inflating, and nearly all of it is
 * page faults: on the project's machines (Linux VMs, transparent huge pages in "madvise" mode)
 * writing 188 MB measured about 0.7 s in 4 KiB pages against 0.03 s (memory the process already
 * had) to 0.5 s (memory new to the VM) in 2 MiB pages. */
#define SW_DATA_HUGE_PAGE ((size_t)2 << 20)

/* Marks [p, p + bytes) for transparent huge pages (a no-op below 2 MiB or where unsupported). */
void sw_data_advise_huge(void *p, size_t bytes);

/* Human-readable name of a kind for messages ("Fashion-MNIST"). */
const char *sw_dataset_kind_title(sw_dataset_kind kind);

/* Allocates a dataset of n examples [n, C, height, width] with C, n_classes, mean/std and name
 * set from the kind; images and labels are allocated, not filled. Caller owns *out. */
sw_status sw_dataset_alloc(sw_dataset_kind kind, int n, int height, int width, sw_dataset **out);

/* The byte-to-float table for ds's channels, mean and std. */
void sw_dataset_pixel_lut(const sw_dataset *ds, sw_pixel_lut *lut);

/* Fashion-MNIST and MNIST: a pair of IDX files per split. dir is never NULL here. */
sw_status sw_dataset_load_idx(sw_dataset_kind kind, const char *dir, sw_split split, int subset,
                              sw_dataset **out);
/* CIFAR-10 binary batches. dir is never NULL here. */
sw_status sw_dataset_load_cifar10(const char *dir, sw_split split, int subset, sw_dataset **out);

#endif
