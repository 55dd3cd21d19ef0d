/* conv.h - 2-D convolution kernels on raw float arrays (NCHW), with groups and dilation.
 *
 * Shapes: x [N, C, H, W], w [O, C/groups, kh, kw], b [O] (may be NULL), y [N, O, Ho, Wo].
 * The fast kernels lower each sample and group to one matrix multiply over im2col columns (or,
 * for dense stride-1 layers on wide images, one per kernel tap: conv_taps.h) and
 * run the samples in parallel, one sgemm per sample on one thread (OpenBLAS's OpenMP build does
 * not fan out again inside our parallel region). Pointwise (1x1, stride 1, no padding) layers
 * multiply the image directly. The naive kernels are the textbook seven loops accumulated in
 * double, kept as the tests' oracle.
 *
 * The fast kernels need caller scratch (sw_conv2d_scratch_floats): the library never allocates
 * in forward/backward, so the layer takes it from the step arena. Backward kernels ACCUMULATE.
 * Results do not depend on the thread count when the batch has at least as many samples as
 * threads (every sgemm then runs on one thread, and the weight gradient adds fixed per-chunk
 * partial sums in a fixed order); a smaller batch uses OpenBLAS's own threads, whose rounding
 * may differ from its single-threaded path.
 */
#ifndef SW_CONV_H
#define SW_CONV_H

#include <stddef.h>

#include "epilogue.h"
#include "im2col.h"

typedef struct sw_conv2d_desc {
    int batch;         /* N */
    int out_channels;  /* O */
    int groups;        /* divides both C and O */
    sw_conv_geom geom; /* geom.channels = C (all groups); resolved (out_h, out_w set) */
} sw_conv2d_desc;

/* The kernels that need scratch. */
typedef enum sw_conv2d_pass {
    SW_CONV2D_FORWARD,
    SW_CONV2D_BACKWARD_INPUT,
    SW_CONV2D_BACKWARD_PARAMS
} sw_conv2d_pass;

/* Floats of scratch `pass` needs when it runs on up to sw_conv2d_threads() threads. */
size_t sw_conv2d_scratch_floats(const sw_conv2d_desc *d, sw_conv2d_pass pass);

/* y = conv(x, w) + b, then the epilogue (NULL: none) applied to every output. An epilogue
 * that pools (pool2x2) or adds a residual is for layers sw_conv_tiled_suits takes
 * (conv_tiled.h) only. */
void sw_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                       const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch);
/* dx += conv_transpose(dy, w); with accumulate false, dx = (its contents ignored). */
void sw_conv2d_backward_input(float *dx, const float *dy, const float *w, const sw_conv2d_desc *d,
                              float *scratch, bool accumulate);
/* dw += dy (*) x, db += sum of dy over N, Ho, Wo. dw or db may be NULL to skip it. */
void sw_conv2d_backward_params(float *dw, float *db, const float *dy, const float *x,
                               const sw_conv2d_desc *d, float *scratch);

/* Oracles: same contracts, no scratch, single-threaded. */
void sw_conv2d_forward_naive(float *y, const float *x, const float *w, const float *b,
                             const sw_conv2d_desc *d);
void sw_conv2d_backward_input_naive(float *dx, const float *dy, const float *w,
                                    const sw_conv2d_desc *d);
void sw_conv2d_backward_params_naive(float *dw, float *db, const float *dy, const float *x,
                                     const sw_conv2d_desc *d);

/* The number of threads the fast kernels may use (the OpenMP team size). */
int sw_conv2d_threads(void);

/* The weight gradient sums a batch of `batch` samples in this many fixed chunks, each into its
 * own partial, added in chunk order: the result does not depend on which thread ran what. */
int sw_conv2d_weight_chunks(int batch);

#endif
