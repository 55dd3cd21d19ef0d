/* im2col.h - unfolding image patches into matrix columns, and folding them back.
 *
 * A 2-D convolution becomes one matrix multiply once every receptive field is laid out as a
 * column: col[(c, ki, kj), (oh, ow)] = x[c, oh*sh - ph + ki*dh, ow*sw - pw + kj*dw], zero where
 * the index falls in the padding. col2im is the adjoint map (used by the input gradient): it
 * ADDS every column entry back onto the pixel it came from.
 *
 * Each function has a fast version (row-wise copies, the stride-1 inner span as one memcpy) and a
 * naive one (one bounds check per element) kept as the test oracle. Both work on one sample and
 * are single-threaded: the caller parallelises over samples.
 */
#ifndef SW_IM2COL_H
#define SW_IM2COL_H

#include <stddef.h>

/* Geometry of one convolution (or pooling) window sweep over one [channels, height, width]
 * image. out_h/out_w follow PyTorch: floor((in + 2*pad - dil*(k-1) - 1) / stride) + 1. */
typedef struct sw_conv_geom {
    int channels, height, width;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int dil_h, dil_w;
    int out_h, out_w;
} sw_conv_geom;

/* Fills out_h/out_w from the other fields. Returns 0 when the window does not fit (an output
 * size below 1), 1 otherwise. */
int sw_conv_geom_resolve(sw_conv_geom *g);

/* True when im2col would be the identity map (1x1 kernel, stride 1, no padding), so a caller
 * can multiply by the image directly. */
int sw_conv_geom_is_pointwise(const sw_conv_geom *g);

/* The outputs o in [*lo, *hi) (o < out_len) whose input index o*stride + offset lies in
 * [0, size): the part of a row of windows that needs no bounds check, everything outside it
 * reads padding. */
void sw_conv_span(int out_len, int stride, int offset, int size, int *lo, int *hi);

/* x [channels, height, width] -> col [channels*kernel_h*kernel_w, out_h*out_w] (overwritten). */
void sw_im2col(const float *x, const sw_conv_geom *g, float *col);
/* Same, with row r of col at col + r*ld (ld >= out_h*out_w): several images' columns side by
 * side in one matrix. */
void sw_im2col_ld(const float *x, const sw_conv_geom *g, float *col, size_t ld);
void sw_im2col_naive(const float *x, const sw_conv_geom *g, float *col);

/* dx [channels, height, width] += fold(col [channels*kernel_h*kernel_w, out_h*out_w]). */
void sw_col2im(const float *col, const sw_conv_geom *g, float *dx);
void sw_col2im_naive(const float *col, const sw_conv_geom *g, float *dx);

#endif
