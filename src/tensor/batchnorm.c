/* batchnorm.c - per-channel statistics, normalisation and its gradient over x [N, C, S].
 *
 * Threads take whole channels, one at a time as they come free (dynamic schedule: channels are
 * independent, so the result does not depend on who ran which); each channel is finished
 * before the next, so its N planes
 * (N*S values, a few hundred KB for a CNN's early layers) are read from memory once and re-read
 * from cache. Inner loops run over one contiguous plane and carry `omp simd` (with reduction
 * clauses for sums): without it the compiler must keep float additions in source order, which
 * serialises them on the adder's latency. Each plane sums in float, the planes in double.
 */
#include "batchnorm.h"

#include <math.h>
#include <stddef.h>

/* Plane (n, c) of x [N, C, S] starts at (n*C + c)*S. */
static inline size_t plane(int n, int c, int ch, int s) {
    return ((size_t)n * ch + c) * s;
}

/* Mean and biased variance of channel ch, in two passes (mean, then centred squares), which
 * avoids the cancellation of E[x^2] - E[x]^2; the second pass hits cache. */
static void channel_stats(const float *x, int n, int c, int s, int ch, float *mean, double *var) {
    const double m = (double)n * s;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = x + plane(i, ch, c, s);
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < s; j++) acc += row[j];
        sum += acc;
    }
    const float mu = (float)(sum / m);
    double sq = 0.0;
    for (int i = 0; i < n; i++) {
        const float *row = x + plane(i, ch, c, s);
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int j = 0; j < s; j++) {
            float dlt = row[j] - mu;
            acc += dlt * dlt;
        }
        sq += acc;
    }
    *mean = mu;
    *var = sq / m;
}

void sw_batchnorm_forward(float *y, float *mean, float *invstd, float *var_biased, const float *x,
                          const float *gamma, const float *beta, int batch_stats, int n, int c,
                          int s, float eps) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++) {
        if (batch_stats) {
            double var;
            channel_stats(x, n, c, s, ch, &mean[ch], &var);
            invstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
            if (var_biased) var_biased[ch] = (float)var;
        }
        /* y = x*a + b with a = gamma*invstd, b = beta - mean*a: one multiply-add a value */
        const float a = invstd[ch] * (gamma ? gamma[ch] : 1.0f);
        const float b = (beta ? beta[ch] : 0.0f) - mean[ch] * a;
        for (int i = 0; i < n; i++) {
            const float *xr = x + plane(i, ch, c, s);
            float *yr = y + plane(i, ch, c, s);
#pragma omp simd
            for (int j = 0; j < s; j++) yr[j] = xr[j] * a + b;
        }
    }
}

/* Derivation of the training-mode input gradient (per channel, M values, xhat = (x-mu)*r,
 * r = invstd, y = gamma*xhat + beta): mu and r depend on every x, with d mu/d x_i = 1/M and
 * d r/d x_i = -r^3 (x_i - mu)/M, which gives
 *   dx_i = gamma*r * (dy_i - mean(dy) - xhat_i * mean(dy * xhat)).
 * With fixed (running) statistics only the first term remains. */
void sw_batchnorm_backward(float *dx, float *sum_dy, float *sum_dy_xhat, const float *dy,
                           const float *x, const float *mean, const float *invstd,
                           const float *gamma, int batch_stats, int n, int c, int s,
                           bool accumulate) {
    const float inv_m = 1.0f / ((float)n * (float)s);
#pragma omp parallel for schedule(dynamic, 1)
    for (int ch = 0; ch < c; ch++) {
        const float mu = mean[ch];
        double g = 0.0, gx = 0.0;
        for (int i = 0; i < n; i++) {
            const float *xr = x + plane(i, ch, c, s);
            const float *dr = dy + plane(i, ch, c, s);
            float a = 0.0f, b = 0.0f;
#pragma omp simd reduction(+ : a, b)
            for (int j = 0; j < s; j++) {
                a += dr[j];
                b += dr[j] * (xr[j] - mu);
            }
            g += a;
            gx += b;
        }
        sum_dy[ch] = (float)g;
        sum_dy_xhat[ch] = (float)(gx * invstd[ch]); /* invstd factored out of the loop */
        if (!dx) continue;                          /* parameter gradients only */
        const float k = invstd[ch] * (gamma ? gamma[ch] : 1.0f);
        /* dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * invstd,
         * rewritten as dx = k*dy + (x - mean)*p + q: one pass of multiply-adds */
        const float p = batch_stats ? -k * invstd[ch] * sum_dy_xhat[ch] * inv_m : 0.0f;
        const float q = batch_stats ? -k * sum_dy[ch] * inv_m : 0.0f;
        for (int i = 0; i < n; i++) {
            const float *xr = x + plane(i, ch, c, s);
            const float *dr = dy + plane(i, ch, c, s);
            float *out = dx + plane(i, ch, c, s);
            if (accumulate) {
#pragma omp simd
                for (int j = 0; j < s; j++) out[j] += k * dr[j] + (xr[j] - mu) * p + q;
            } else {
#pragma omp simd
                for (int j = 0; j < s; j++) out[j] = k * dr[j] + (xr[j] - mu) * p + q;
            }
        }
    }
}

/* Oracles: the formulas term by term in double, one channel after the other. */
void sw_batchnorm_stats_naive(float *mean, float *invstd, float *var_biased, const float *x, int n,
                              int c, int s, float eps) {
    const double m = (double)n * s;
    for (int ch = 0; ch < c; ch++) {
        double sum = 0.0, sq = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s; j++) sum += x[plane(i, ch, c, s) + j];
        double mu = sum / m;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s; j++) {
                double dlt = x[plane(i, ch, c, s) + j] - mu;
                sq += dlt * dlt;
            }
        mean[ch] = (float)mu;
        invstd[ch] = (float)(1.0 / sqrt(sq / m + (double)eps));
        if (var_biased) var_biased[ch] = (float)(sq / m);
    }
}

void sw_batchnorm_backward_naive(float *dx, float *sum_dy, float *sum_dy_xhat, const float *dy,
                                 const float *x, const float *mean, const float *invstd,
                                 const float *gamma, int batch_stats, int n, int c, int s) {
    const double m = (double)n * s;
    for (int ch = 0; ch < c; ch++) {
        double g = 0.0, gx = 0.0;
        const double k = (double)invstd[ch] * (gamma ? gamma[ch] : 1.0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s; j++) {
                size_t idx = plane(i, ch, c, s) + j;
                g += dy[idx];
                gx += (double)dy[idx] * (((double)x[idx] - mean[ch]) * invstd[ch]);
            }
        sum_dy[ch] = (float)g;
        sum_dy_xhat[ch] = (float)gx;
        if (!dx) continue;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s; j++) {
                size_t idx = plane(i, ch, c, s) + j;
                double xhat = ((double)x[idx] - mean[ch]) * invstd[ch];
                double v = batch_stats ? k * (dy[idx] - g / m - xhat * gx / m) : k * dy[idx];
                dx[idx] += (float)v;
            }
    }
}
