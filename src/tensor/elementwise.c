/* elementwise.c - flat loops, parallel above a size where a fork-join costs less than it saves. */
#include "elementwise.h"

#include <string.h>

/* A fork-join costs a few microseconds; below ~64K floats (256 KB, cache-resident) one thread
 * finishes first. */
#define SW_PAR_MIN 65536

void sw_vec_copy(float *dst, const float *src, size_t n) {
    if (n < SW_PAR_MIN) {
        memcpy(dst, src, n * sizeof *dst);
        return;
    }
    const long blocks = (long)((n + SW_PAR_MIN - 1) / SW_PAR_MIN);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        size_t lo = (size_t)b * SW_PAR_MIN, len = n - lo < SW_PAR_MIN ? n - lo : SW_PAR_MIN;
        memcpy(dst + lo, src + lo, len * sizeof *dst);
    }
}

void sw_vec_add(float *dst, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

void sw_vec_sum2(float *dst, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

void sw_vec_axpy(float *dst, float s, const float *src, size_t n) {
#pragma omp parallel for schedule(static) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] += s * src[i];
}

void sw_vec_clamp(float *y, const float *x, float lo, float hi, size_t n) {
    /* Written with comparisons that let NaN through (x < lo and x > hi are both false), as
     * torch.clamp does, and that compile to vector min/max-free blends. */
#pragma omp parallel for schedule(static) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

void sw_vec_clamp_backward(float *dx, const float *dy, const float *x, float lo, float hi,
                           size_t n) {
#pragma omp parallel for schedule(static) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dx[i] += (x[i] > lo && x[i] < hi) ? dy[i] : 0.0f;
}
