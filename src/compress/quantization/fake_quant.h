/* fake_quant.h - the arithmetic of NNI's quantizers on flat float arrays (reference §4.1, §4.2).
 *
 * Every function here is a plain loop over n elements, written to give NNI's float32 results
 * bit for bit where NNI's are defined by float32 arithmetic (the golden fixtures compare the
 * fake-quantized values exactly):
 *
 *   clamp_round      q = round_half_even(clamp(zp + x / s, qmin, qmax)),  y = (q - zp) * s
 *   qat backward     gradient zeroed where zp + x / s lies outside [qmin, qmax]
 *   lsq              s' = (s - s*g) + s*g  (g = 1/sqrt(qmax * numel): LSQ's gradient scale)
 *                    v = clamp(x / s', qmin, qmax),  y = ((round(v) - v) + v) * s'
 *   lsq_plus         v = clamp(x / s' + zp, qmin, qmax),  y = (round(v) - zp) * s'
 *   dorefa weight    t = tanh(x), u = t / (2 max|t|) + 0.5,  y = 2 clamp_round(u) - 1
 *   dorefa output    y = clamp_round(clamp(x, 0, 1))
 *   bnn              y = sign(x) with sign(0) = +1
 *
 * Scales and zero points come as an sw_fq_scale: one value for the whole array (stride 0) or
 * one per element (stride 1, already expanded from the per-block grid by the caller).
 * Backward functions work in place on the gradient g (dL/dy on entry, dL/dx on exit), as
 * wrapper transforms do, and take the forward input x.
 */
#ifndef SW_FAKE_QUANT_H
#define SW_FAKE_QUANT_H

#include <stdbool.h>
#include <stddef.h>

#include "quant_setting.h"

/* Scale and zero point in effect: scalar (stride 0) or per element (stride 1). */
typedef struct sw_fq_scale {
    const float *scale;
    const float *zero_point;
    size_t stride;
    int qmin, qmax;
} sw_fq_scale;

/* Scale and zero point of a tracked range (§4.1): the range is widened to contain 0; symmetric
 * (or no scheme) uses max|.| over half the integer span and the middle zero point (0 for int,
 * 2^(b-1) for uint); affine spreads [lo, hi] over [qmin, qmax]. The scale is at least
 * FLT_EPSILON; the zero point is clamped into [qmin, qmax]. float32 arithmetic as torch's. */
void sw_fq_scale_from_range(float tracked_min, float tracked_max, int qmin, int qmax,
                            sw_quant_scheme scheme, float *scale, float *zero_point);

/* NNI's EMA of a tracked value: ema * 0.99 + 0.01 * current, in float32. */
float sw_fq_ema(float ema, float current);

/* clamp_round forward; y may alias x. */
void sw_fq_clamp_round(const float *x, float *y, size_t n, const sw_fq_scale *p);
/* qat_clamp_round backward: g[i] = 0 where zp + x/s is outside [qmin, qmax]. */
void sw_fq_qat_backward(const float *x, float *g, size_t n, const sw_fq_scale *p);

/* LSQ's gradient scale for a value of `numel` elements: 1/sqrt(qmax * numel), or 1 when that
 * product is 0. */
double sw_fq_lsq_grad_factor(int qmax, size_t numel);
/* The scale as LSQ's forward sees it: (s - s*g) + s*g in float32 (equal to s up to an ulp). */
float sw_fq_lsq_effective_scale(float scale, double grad_factor);
/* LSQ forward with effective scales (zero point ignored). */
void sw_fq_lsq_forward(const float *x, float *y, size_t n, const sw_fq_scale *p);
/* LSQ backward: g becomes dL/dx (0 where x/s' is clipped); dscale[i] receives element i's
 * contribution to dL/ds' BEFORE the gradient factor (callers sum per block and multiply by
 * the factor): g*r - g*x/s' inside, g*r outside, with r the forward's rounded value. */
void sw_fq_lsq_backward(const float *x, float *g, size_t n, const sw_fq_scale *p, double *dscale);

/* LSQ+ forward with effective scales and learnable (real-valued) zero points. */
void sw_fq_lsq_plus_forward(const float *x, float *y, size_t n, const sw_fq_scale *p);
/* LSQ+ backward: g becomes dL/dx; dscale[i] and dzp[i] receive element i's contributions (scale
 * before the gradient factor): inside, dscale = g*(round(v) - v) with v = x/s' + zp and dzp = 0;
 * clipped, dscale = g*(q - zp) and dzp = -g*s'. */
void sw_fq_lsq_plus_backward(const float *x, float *g, size_t n, const sw_fq_scale *p,
                             double *dscale, double *dzp);

/* DoReFa weight forward over the whole tensor (max|tanh| is global). */
void sw_fq_dorefa_weight_forward(const float *x, float *y, size_t n, const sw_fq_scale *p);
/* Its backward: the straight-through estimator passes clamp_round, the rest (tanh, the
 * normalisation by max|tanh|, shared evenly among ties as torch's max does) is differentiated. */
void sw_fq_dorefa_weight_backward(const float *x, float *g, size_t n);
/* DoReFa output forward: clamp to [0, 1], then clamp_round. */
void sw_fq_dorefa_output_forward(const float *x, float *y, size_t n, const sw_fq_scale *p);
/* Its backward: g zeroed where x is outside [0, 1]. */
void sw_fq_dorefa_output_backward(const float *x, float *g, size_t n);

/* BNN forward: +1 for x >= 0, -1 otherwise. */
void sw_fq_bnn_forward(const float *x, float *y, size_t n);
/* BNN backward for outputs (hard-tanh STE): g zeroed where |x| > 1. Parameters and inputs pass
 * the gradient unchanged. */
void sw_fq_bnn_output_backward(const float *x, float *g, size_t n);

#endif
