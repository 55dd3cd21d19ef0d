/* batchnorm.c - per-channel statistics, normalisation and its gradient over x [N, C, S]. */
#include "batchnorm.h"

#include <math.h>
#include <stddef.h>

/* Plane (n, c) of x [N, C, S] starts at (n*C + c)*S. */
static inline size_t plane(int n, int c, int ch, int s) { return ((size_t)n * ch + c) * s; }

void sw_batchnorm_stats(float *mean, float *invstd, float *var_biased, const float *x, int n,
                        int c, int s, float eps) {
    const double m = (double)n * s;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        /* Two passes (mean, then centred squares) avoid the cancellation of E[x^2] - E[x]^2;
         * each plane sums in float, the planes in double. */
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            const float *row = x + plane(i, ch, c, s);
            float acc = 0.0f;
            for (int j = 0; j < s; j++) acc += row[j];
            sum += acc;
        }
        const float mu = (float)(sum / m);
        double sq = 0.0;
        for (int i = 0; i < n; i++) {
            const float *row = x + plane(i, ch, c, s);
            float acc = 0.0f;
            for (int j = 0; j < s; j++) {
                float dlt = row[j] - mu;
                acc += dlt * dlt;
            }
            sq += acc;
        }
        double var = sq / m;
        mean[ch] = mu;
        invstd[ch] = (float)(1.0 / sqrt(var + (double)eps));
        if (var_biased) var_biased[ch] = (float)var;
    }
}

void sw_batchnorm_stats_naive(float *mean, float *invstd, float *var_biased, const float *x,
                              int n, int c, int s, float eps) {
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

void sw_batchnorm_apply(float *y, const float *x, const float *mean, const float *invstd,
                        const float *gamma, const float *beta, int n, int c, int s) {
    const long planes = (long)n * c;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        int ch = (int)(pl % c);
        /* y = x*a + b with a = gamma*invstd, b = beta - mean*a: one multiply-add a value */
        float a = invstd[ch] * (gamma ? gamma[ch] : 1.0f);
        float b = (beta ? beta[ch] : 0.0f) - mean[ch] * a;
        const float *xr = x + (size_t)pl * s;
        float *yr = y + (size_t)pl * s;
        for (int j = 0; j < s; j++) yr[j] = xr[j] * a + b;
    }
}

void sw_batchnorm_grad_sums(float *sum_dy, float *sum_dy_xhat, const float *dy, const float *x,
                            const float *mean, const float *invstd, int n, int c, int s) {
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        double g = 0.0, gx = 0.0;
        const float mu = mean[ch];
        for (int i = 0; i < n; i++) {
            const float *xr = x + plane(i, ch, c, s);
            const float *dr = dy + plane(i, ch, c, s);
            float a = 0.0f, b = 0.0f;
            for (int j = 0; j < s; j++) {
                a += dr[j];
                b += dr[j] * (xr[j] - mu);
            }
            g += a;
            gx += b;
        }
        sum_dy[ch] = (float)g;
        sum_dy_xhat[ch] = (float)(gx * invstd[ch]);
    }
}

void sw_batchnorm_grad_sums_naive(float *sum_dy, float *sum_dy_xhat, const float *dy,
                                  const float *x, const float *mean, const float *invstd, int n,
                                  int c, int s) {
    for (int ch = 0; ch < c; ch++) {
        double g = 0.0, gx = 0.0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s; j++) {
                size_t k = plane(i, ch, c, s) + j;
                g += dy[k];
                gx += (double)dy[k] * (((double)x[k] - mean[ch]) * invstd[ch]);
            }
        sum_dy[ch] = (float)g;
        sum_dy_xhat[ch] = (float)gx;
    }
}

void sw_batchnorm_backward_input(float *dx, const float *dy, const float *x, const float *mean,
                                 const float *invstd, const float *gamma, const float *sum_dy,
                                 const float *sum_dy_xhat, int batch_stats, int n, int c, int s) {
    const long planes = (long)n * c;
    const float inv_m = 1.0f / ((float)n * (float)s);
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        int ch = (int)(pl % c);
        const float k = invstd[ch] * (gamma ? gamma[ch] : 1.0f);
        const float *dr = dy + (size_t)pl * s;
        float *out = dx + (size_t)pl * s;
        if (!batch_stats) {
            for (int j = 0; j < s; j++) out[j] += k * dr[j];
            continue;
        }
        /* dx = k * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * invstd;
         * rewritten as dx = k*dy + (x - mean)*p + q to keep one multiply-add per term. */
        const float *xr = x + (size_t)pl * s;
        const float mu = mean[ch];
        const float p = -k * invstd[ch] * sum_dy_xhat[ch] * inv_m;
        const float q = -k * sum_dy[ch] * inv_m;
        for (int j = 0; j < s; j++) out[j] += k * dr[j] + (xr[j] - mu) * p + q;
    }
}

void sw_batchnorm_backward_input_naive(float *dx, const float *dy, const float *x,
                                       const float *mean, const float *invstd,
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
        for (int i = 0; i < n; i++)
            for (int j = 0; j < s; j++) {
                size_t idx = plane(i, ch, c, s) + j;
                double xhat = ((double)x[idx] - mean[ch]) * invstd[ch];
                double v = batch_stats ? k * (dy[idx] - g / m - xhat * gx / m) : k * dy[idx];
                dx[idx] += (float)v;
            }
    }
}
