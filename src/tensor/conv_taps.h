/* conv_taps.h - stride-1 convolution as one sgemm per kernel tap over a zero-padded image.
 *
 * Pad a sample to [C, Hp, Wp] and compute the output on the padded width: output (oh, ow) for
 * ow < Wp. Then tap (ki, kj) reads, for every output in row-major order, the padded input at a
 * fixed offset ki*dh*Wp + kj*dw further on: the tap's [C, Ho*Wp] input matrix is a window of
 * the padded image with row stride Hp*Wp, no copy needed. So
 *
 *     y_pad [O, Ho*Wp]  = sum over taps  W_tap [O, C] * window_tap [C, Ho*Wp]
 *     dx_pad windows   += W_tap^T [C, O] * dy_pad [O, Ho*Wp]
 *     dW_tap [O, C]    += dy_pad [O, Ho*Wp] * window_tap^T
 *
 * and the only copies are the padding of x (and of dy, whose extra Wp - Wo columns are zero)
 * and the un-padding of the result: about 2 activations of memory traffic where im2col writes
 * kh*kw (and col2im reads as many back). The price is (kw-1)*dw wasted columns per row and
 * sgemms with K = C instead of C*kh*kw, so it pays on wide images with enough channels
 * (measured on this machine, one thread, per sample, pads and copies included:
 * 32ch 28x28: 135/134/108 GFLOP/s forward/input/weights against im2col+sgemm's 85/91/68;
 * 64ch 14x14: 119/161/112 against 110/116/89; 128ch 7x7: 73/70/103 against 104/106/64).
 * A window overruns its plane by at most (kw-1)*dw floats, only in wasted columns, which
 * multiply zeros of dy_pad or land in discarded outputs; a zero guard after the last plane
 * keeps the overrun inside the buffer.
 *
 * Same contracts as conv.h (backward kernels accumulate, scratch from the caller, results
 * independent of the thread count for batches of at least as many samples as threads).
 */
#ifndef SW_CONV_TAPS_H
#define SW_CONV_TAPS_H

#include <stdbool.h>

#include "conv.h"

/* Whether this layer should take the tap-wise kernels: dense (one group), stride 1, a kernel
 * larger than 1x1, enough channels for a useful sgemm depth, and rows wide enough that the
 * wasted columns stay a small share. The same answer for every pass, so that a layer's
 * gradients come from one formulation. */
bool sw_conv_taps_suits(const sw_conv2d_desc *d);

size_t sw_conv_taps_scratch_floats(const sw_conv2d_desc *d, sw_conv2d_pass pass);
void sw_conv_taps_forward(float *y, const float *x, const float *w, const float *b,
                          const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch);
void sw_conv_taps_backward_input(float *dx, const float *dy, const float *w,
                                 const sw_conv2d_desc *d, float *scratch, bool accumulate);
void sw_conv_taps_backward_params(float *dw, float *db, const float *dy, const float *x,
                                  const sw_conv2d_desc *d, float *scratch);

#endif
