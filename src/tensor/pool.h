/* pool.h - 2-D max and average pooling kernels over `planes` independent [H, W] images
 * (planes = N*C for an NCHW tensor), with the window geometry of im2col.h (channels ignored).
 *
 * Max pooling treats padding as -infinity and records, for every output, the flat index
 * (h*W + w) of the winning input in its plane, which is all the backward pass needs; NaN wins,
 * as in PyTorch. Average pooling counts the padding in the divisor (count_include_pad=true), so
 * every window divides by kernel_h*kernel_w. Fast kernels run planes in parallel; the naive ones
 * are the tests' oracle. Backward kernels ACCUMULATE.
 */
#ifndef SW_POOL_H
#define SW_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "im2col.h"

/* y [planes, Ho, Wo], argmax [planes, Ho, Wo] from x [planes, H, W]. */
void sw_maxpool2d_forward(float *y, int32_t *argmax, const float *x, long planes,
                          const sw_conv_geom *g);
void sw_maxpool2d_forward_naive(float *y, int32_t *argmax, const float *x, long planes,
                                const sw_conv_geom *g);
/* dx[plane, argmax] += dy; with accumulate false each plane of dx is zeroed first (while it
 * is in cache) instead of being read. */
void sw_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax, long planes,
                           const sw_conv_geom *g, bool accumulate);

void sw_avgpool2d_forward(float *y, const float *x, long planes, const sw_conv_geom *g);
void sw_avgpool2d_forward_naive(float *y, const float *x, long planes, const sw_conv_geom *g);
void sw_avgpool2d_backward(float *dx, const float *dy, long planes, const sw_conv_geom *g);
void sw_avgpool2d_backward_naive(float *dx, const float *dy, long planes, const sw_conv_geom *g);

#endif
