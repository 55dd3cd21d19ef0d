/* fake_quant.c - NNI's fake-quantization arithmetic, element by element.
 *
 * Exactness: each forward repeats torch's float32 operations in torch's order (a division
 * x / s rather than a multiplication by 1/s, round half to even via rintf in the default
 * rounding mode, the LSQ "detach" identities (a - b) + b computed as written). The golden
 * fixtures compare fake-quantized values exactly, so none of this may be "simplified".
 * Gradients of learnable scales are accumulated in double: their reference values are compared
 * with a tolerance, and the sums run over whole batches. */
#include "fake_quant.h"

#include <float.h>
#include <math.h>

/* torch.clamp(x, lo, hi) for float32: NaN stays NaN, like fminf/fmaxf would not guarantee. */
static inline float clampf(float v, float lo, float hi) {
    return v < lo ? lo : (v > hi ? hi : v);
}

void sw_fq_scale_from_range(float tracked_min, float tracked_max, int qmin, int qmax,
                            sw_quant_scheme scheme, float *scale, float *zero_point) {
    /* Widened to contain 0, so that 0 (padding, ReLU's floor) is exactly representable. */
    float lo = tracked_min < 0.0f ? tracked_min : 0.0f;
    float hi = tracked_max > 0.0f ? tracked_max : 0.0f;
    float s, zp;
    if (scheme == SW_QUANT_SCHEME_AFFINE) {
        s = (hi - lo) / (float)(qmax - qmin);
        if (!(s > FLT_EPSILON)) s = FLT_EPSILON;
        zp = (float)qmin - rintf(lo / s);
    } else {
        /* NNI divides by float(qmax - qmin) / 2, computed in double and used as a float32. */
        float absmax = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
        s = absmax / (float)((double)(qmax - qmin) / 2.0);
        if (!(s > FLT_EPSILON)) s = FLT_EPSILON;
        /* Python's (qmax + qmin + 1) // 2: 0 for int<b>, 2^(b-1) for uint<b>. */
        int sum = qmax + qmin + 1;
        zp = (float)(sum >= 0 ? sum / 2 : -((-sum + 1) / 2));
    }
    *scale = s;
    *zero_point = clampf(zp, (float)qmin, (float)qmax);
}

float sw_fq_ema(float ema, float current) {
    /* biased_ema * 0.99 + (1 - 0.99) * current; (1 - 0.99) is computed in double by Python
     * and becomes the float32 nearest to 0.01. */
    float a = ema * 0.99f;
    float b = (float)(1.0 - 0.99) * current;
    return a + b;
}

/* One loop serves scalar and per-element scales: stride 0 reads element 0 every time. */
/* Round half to even of a clamped value (|v| <= 2^16): adding and subtracting 1.5 * 2^23 rounds
 * to an integer in the default rounding mode, exactly as rintf does for |v| < 2^22, without a
 * libm call per element (baseline x86-64 has no rounding instruction), so loops vectorize. The
 * one difference, -0.0 becoming +0.0, compares equal and vanishes in (q - zp) * s + ... sums. */
static inline float round_even(float v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (v + magic) - magic;
}

void sw_fq_clamp_round(const float *x, float *y, size_t n, const sw_fq_scale *p) {
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    const float *s = p->scale, *z = p->zero_point;
    /* Elementwise, so threads change nothing in the result; only large activations are worth
     * the threads' start-up. Per tensor (stride 0) gets its own loop: scalars vectorize. */
    const long count = (long)n;
    if (p->stride == 0) {
        const float s0 = s[0], z0 = z[0];
#pragma omp parallel for simd schedule(static) if (count > 65536)
        for (long i = 0; i < count; i++) {
            float q = round_even(clampf(z0 + x[i] / s0, lo, hi));
            y[i] = (q - z0) * s0;
        }
        return;
    }
#pragma omp parallel for simd schedule(static) if (count > 65536)
    for (long i = 0; i < count; i++) {
        float q = round_even(clampf(z[i] + x[i] / s[i], lo, hi));
        y[i] = (q - z[i]) * s[i];
    }
}

/* The mask is recomputed from x rather than kept from the forward: x is kept anyway (the
 * transform needs its input) and the test is two float operations. */
void sw_fq_qat_backward(const float *x, float *g, size_t n, const sw_fq_scale *p) {
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    const size_t k = p->stride;
    for (size_t i = 0; i < n; i++) {
        float t = p->zero_point[i * k] + x[i] / p->scale[i * k];
        if (t < lo || t > hi) g[i] = 0.0f;
    }
}

double sw_fq_lsq_grad_factor(int qmax, size_t numel) {
    double r = sqrt((double)qmax * (double)numel);
    return r != 0.0 ? 1.0 / r : 1.0;
}

float sw_fq_lsq_effective_scale(float scale, double grad_factor) {
    /* grad_scale(s, g): y_out - y_grad detached, plus y_grad, with y_grad = s * g in float32
     * (torch multiplies a float tensor by a Python float in float32). */
    float y_grad = scale * (float)grad_factor;
    return (scale - y_grad) + y_grad;
}

void sw_fq_lsq_forward(const float *x, float *y, size_t n, const sw_fq_scale *p) {
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    const size_t k = p->stride;
    for (size_t i = 0; i < n; i++) {
        float s = p->scale[i * k];
        float v = clampf(x[i] / s, lo, hi);
        /* round_pass: (round(v) - v) detached, plus v. */
        float r = (rintf(v) - v) + v;
        y[i] = r * s;
    }
}

void sw_fq_lsq_backward(const float *x, float *g, size_t n, const sw_fq_scale *p, double *dscale) {
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    const size_t k = p->stride;
    for (size_t i = 0; i < n; i++) {
        float s = p->scale[i * k];
        float u = x[i] / s;
        float v = clampf(u, lo, hi);
        float r = (rintf(v) - v) + v;
        double gi = g[i];
        bool inside = u >= lo && u <= hi; /* torch.clamp passes the gradient at the bounds */
        /* y = r * s with r = x / s inside: dy/ds = r - x/s; clipped: r is constant. */
        dscale[i] = inside ? gi * ((double)r - (double)x[i] / (double)s) : gi * (double)r;
        /* dy/dx = s * (1/s) inside, as torch's chain computes it. */
        g[i] = inside ? (g[i] * s) / s : 0.0f;
    }
}

void sw_fq_lsq_plus_forward(const float *x, float *y, size_t n, const sw_fq_scale *p) {
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    const size_t k = p->stride;
    for (size_t i = 0; i < n; i++) {
        float s = p->scale[i * k], z = p->zero_point[i * k];
        float v = clampf(x[i] / s + z, lo, hi);
        y[i] = (rintf(v) - z) * s;
    }
}

void sw_fq_lsq_plus_backward(const float *x, float *g, size_t n, const sw_fq_scale *p,
                             double *dscale, double *dzp) {
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    const size_t k = p->stride;
    for (size_t i = 0; i < n; i++) {
        float s = p->scale[i * k], z = p->zero_point[i * k];
        float u = x[i] / s + z;
        double gi = g[i];
        if (u >= lo && u <= hi) {
            /* y = (round(u) - zp) * s with round's gradient passed through: dy/ds =
             * round(u) - zp - x/s = round(u) - u; dy/dzp = 0; dy/dx = 1. */
            dscale[i] = gi * ((double)rintf(u) - (double)u);
            dzp[i] = 0.0;
        } else {
            float q = u < lo ? lo : hi;
            dscale[i] = gi * ((double)q - (double)z);
            dzp[i] = -gi * (double)s;
            g[i] = 0.0f;
        }
    }
}

/* The normalisation is global: a first pass finds max|tanh|, a second quantizes. */
void sw_fq_dorefa_weight_forward(const float *x, float *y, size_t n, const sw_fq_scale *p) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float t = fabsf(tanhf(x[i]));
        if (t > m) m = t;
    }
    const float d = 2.0f * m;
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    for (size_t i = 0; i < n; i++) {
        float u = tanhf(x[i]) / d + 0.5f;
        float s = p->scale[i * p->stride], z = p->zero_point[i * p->stride];
        float q = rintf(clampf(z + u / s, lo, hi));
        y[i] = 2.0f * ((q - z) * s) - 1.0f;
    }
}

void sw_fq_dorefa_weight_backward(const float *x, float *g, size_t n) {
    /* u_i = t_i / D + 0.5 with D = 2 max|t|, y = 2 q(u) - 1 and dq/du = 1:
     *   dL/dt_i = 2 g_i / D  +  [i is a maximum] * sign(t_i) * 2 * dL/dD / ties,
     *   dL/dD   = -sum_j 2 g_j t_j / D^2,   dL/dx_i = dL/dt_i * (1 - t_i^2). */
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = fabs((double)tanhf(x[i]));
        if (t > m) m = t;
    }
    size_t ties = 0;
    double dd = 0.0;
    const double d = 2.0 * m;
    for (size_t i = 0; i < n; i++) {
        float t = tanhf(x[i]);
        if (fabs((double)t) == m) ties++;
        dd += -2.0 * (double)g[i] * (double)t / (d * d);
    }
    for (size_t i = 0; i < n; i++) {
        float t = tanhf(x[i]);
        double dt = 2.0 * (double)g[i] / d;
        if (fabs((double)t) == m && ties > 0)
            dt += (t >= 0.0f ? 1.0 : -1.0) * 2.0 * dd / (double)ties;
        g[i] = (float)(dt * (1.0 - (double)t * (double)t));
    }
}

void sw_fq_dorefa_output_forward(const float *x, float *y, size_t n, const sw_fq_scale *p) {
    const float lo = (float)p->qmin, hi = (float)p->qmax;
    for (size_t i = 0; i < n; i++) {
        float c = clampf(x[i], 0.0f, 1.0f);
        float s = p->scale[i * p->stride], z = p->zero_point[i * p->stride];
        float q = rintf(clampf(z + c / s, lo, hi));
        y[i] = (q - z) * s;
    }
}

void sw_fq_dorefa_output_backward(const float *x, float *g, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(x[i] >= 0.0f && x[i] <= 1.0f)) g[i] = 0.0f;
}

/* sign(0) = +1, as NNI overwrites torch.sign's 0. */
void sw_fq_bnn_forward(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? -1.0f : 1.0f;
}

void sw_fq_bnn_output_backward(const float *x, float *g, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (fabsf(x[i]) > 1.0f) g[i] = 0.0f;
}
