/* elementwise.h - one-pass kernels over flat float arrays (copies, sums, activations).
 *
 * These are memory-bound: above a size where threads pay off they run as OpenMP loops split
 * in contiguous blocks, below it on the calling thread. Backward kernels ACCUMULATE into dx,
 * the convention of every layer's backward, unless told that dx holds nothing yet.
 */
#ifndef SW_ELEMENTWISE_H
#define SW_ELEMENTWISE_H

#include <stdbool.h>
#include <stddef.h>

/* dst = src. */
void sw_vec_copy(float *dst, const float *src, size_t n);
/* dst += src. */
void sw_vec_add(float *dst, const float *src, size_t n);
/* dst = a + b. */
void sw_vec_sum2(float *dst, const float *a, const float *b, size_t n);
/* dst = max(a + b, 0), NaN kept: an Add and the ReLU after it in one pass. */
void sw_vec_sum2_relu(float *dst, const float *a, const float *b, size_t n);
/* dst += s * src. */
void sw_vec_axpy(float *dst, float s, const float *src, size_t n);

/* y = min(max(x, lo), hi); ReLU is lo = 0, hi = +inf; ReLU6 is lo = 0, hi = 6. NaN passes. */
void sw_vec_clamp(float *y, const float *x, float lo, float hi, size_t n);
/* dx += dy where lo < x < hi (the derivative of clamp, 0 at the kinks as in PyTorch); with
 * accumulate false, dx = that instead (dx's old contents are ignored). */
void sw_vec_clamp_backward(float *dx, const float *dy, const float *x, float lo, float hi,
                           size_t n, bool accumulate);

#endif
