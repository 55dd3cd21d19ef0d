/* tensor.h - sw_tensor: a float32 array of up to 4 dimensions, row-major (NCHW for images).
 *
 * A tensor either owns its data (created by sw_tensor_new*, released by sw_tensor_free or
 * sw_tensor_deinit) or borrows it (sw_tensor_view*: the caller keeps the memory alive).
 * Shapes are plain ints; numel is cached.
 */
#ifndef SW_TENSOR_H
#define SW_TENSOR_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define SW_MAX_DIMS 4

/* A shape without data: dims[0..ndim-1]. */
typedef struct sw_shape {
    int ndim;
    int dims[SW_MAX_DIMS];
} sw_shape;

typedef struct sw_tensor {
    float *data;      /* numel floats; owned iff owns_data */
    sw_shape shape;
    size_t numel;
    bool owns_data;
} sw_tensor;

/* Shapes */
sw_shape sw_shape_make(int ndim, const int *dims);
sw_shape sw_shape_1d(int d0);
sw_shape sw_shape_2d(int d0, int d1);
sw_shape sw_shape_3d(int d0, int d1, int d2);
sw_shape sw_shape_4d(int d0, int d1, int d2, int d3);
size_t sw_shape_numel(const sw_shape *shape);
bool sw_shape_equal(const sw_shape *a, const sw_shape *b);
/* Writes "[2, 3, 4]" into buf (always terminated); returns buf. */
char *sw_shape_format(const sw_shape *shape, char *buf, size_t size);
/* Prepends a batch dimension: [C,H,W] -> [n,C,H,W]. Fails when the result exceeds 4 dims. */
sw_status sw_shape_batched(const sw_shape *sample, int n, sw_shape *out);

/* Owning tensors. `_new` allocates zero-filled storage; the caller owns the result and frees it
 * with sw_tensor_free. `_init` fills caller storage; release with sw_tensor_deinit. */
sw_status sw_tensor_new(const sw_shape *shape, sw_tensor **out);
void sw_tensor_free(sw_tensor *t);
sw_status sw_tensor_init(sw_tensor *t, const sw_shape *shape);
void sw_tensor_deinit(sw_tensor *t);
/* Deep copy into a new owning tensor. */
sw_status sw_tensor_clone(const sw_tensor *src, sw_tensor **out);

/* Borrowing view over `data` (not freed by deinit). */
sw_tensor sw_tensor_view(float *data, const sw_shape *shape);
/* Same storage, new shape with the same numel (e.g. flatten). */
sw_tensor sw_tensor_reshaped(const sw_tensor *t, const sw_shape *shape);

/* Elementwise helpers on whole tensors. */
void sw_tensor_fill(sw_tensor *t, float value);
void sw_tensor_zero(sw_tensor *t);
/* dst = src; shapes must have the same numel. */
sw_status sw_tensor_copy(sw_tensor *dst, const sw_tensor *src);
/* True when every element is finite. */
bool sw_tensor_all_finite(const sw_tensor *t);
/* Largest |a - b| over all elements; numel must agree. */
float sw_tensor_max_abs_diff(const sw_tensor *a, const sw_tensor *b);

#endif
