/* conv_tiled.h - dense convolution as register tiles, on CPUs with AVX-512.
 *
 * The layout is conv_taps.h's: a sample padded to [C, Hp, Wp], the output computed on the
 * padded width (Ho*Wp columns, the last Wp - Wo of each row wasted), so that tap (ki, kj) of
 * every output column q reads the padded input at q + ki*dh*Wp + kj*dw. Instead of one sgemm
 * per tap, each tile of 8 (or 4) output channels by 32 or 48 consecutive columns lives in
 * vector registers for the whole sum over channels and taps:
 *
 *     for c, for tap:  x0..x2 = 16 columns each of the padded input at q + offset(tap)
 *                      acc[o][v] += broadcast(w[o][c][tap]) * x_v      (o < 8, v < 3)
 *
 * 24 fused multiply-adds for 3 loads and 8 broadcasts. Each tile vector is then compressed
 * past the wasted columns (which end each row, so the real outputs of a vector are contiguous
 * in the output) and stored once, straight into the layer's output, with the bias and an
 * epilogue applied in registers. An epilogue that max-pools needs two rows at once: a tile
 * that is exactly two rows pools its own sums, otherwise the tiles go through a padded buffer.
 * Where the tap-wise sgemms have depth K = C (16 to 64 here), which OpenBLAS's small-matrix kernels
 * run at well under peak, this keeps the multiply units busy: measured on this machine (2 threads,
 * batch 256, 3x3 pad 1) 239 against 140 GFLOP/s at 16 channels 28x28, 294 against 198 at 32
 * channels 28x28 (docs/ARCHITECTURE.md has the table).
 *
 * A stride of 2 (forward only) splits each padded channel into phase planes, after which every
 * tap is again a fixed offset from the output column (struct tiled in conv_tiled.c).
 *
 * The input gradient is the same computation on dy with the kernel flipped and its two channel
 * axes swapped, padded by dil*(k-1) - pad, so it shares the kernel. The weight gradient stays
 * with conv_taps.c (a reduction over positions, which sgemm's depth suits).
 *
 * Every output value is one tile's sum in a fixed order (channels, then taps), whatever the
 * thread count or schedule, so results do not depend on either.
 */
#ifndef SW_CONV_TILED_H
#define SW_CONV_TILED_H

#include <stdbool.h>

#include "conv.h"

/* Whether this CPU runs the tiled kernels (AVX-512F). */
bool sw_conv_tiled_available(void);

/* Whether `pass` of this layer takes the tiled kernel: the CPU has it, one group, a kernel
 * larger than 1x1 (up to 64 taps); for the forward a stride of 1 or 2 (whose phase planes must
 * hold every tap of the real outputs, true for the usual geometries), for the input gradient
 * stride 1 and a padding of at most dil*(k-1). The weight gradient never does. */
bool sw_conv_tiled_suits(const sw_conv2d_desc *d, sw_conv2d_pass pass);

size_t sw_conv_tiled_scratch_floats(const sw_conv2d_desc *d, sw_conv2d_pass pass);
/* Same contracts as conv.h's. */
void sw_conv_tiled_forward(float *y, const float *x, const float *w, const float *b,
                           const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch);
void sw_conv_tiled_backward_input(float *dx, const float *dy, const float *w,
                                  const sw_conv2d_desc *d, float *scratch, bool accumulate);

#endif
