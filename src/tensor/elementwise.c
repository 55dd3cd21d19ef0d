/* elementwise.c - flat loops, parallel above a size where a fork-join costs less than it saves.
 *
 * Loops carry `omp simd` so they vectorise under the project's -O2 (whose cost model would
 * otherwise leave some of them scalar), and they are written without branches (selects, not
 * ifs): an unpredictable branch per element costs more than the arithmetic.
 */
#include "elementwise.h"

#include <string.h>

/* A fork-join costs a few microseconds; below ~64K floats (256 KB, cache-resident) one thread
 * finishes first. Above it, threads take 16K-float chunks as they come free rather than fixed
 * halves: on a busy machine a preempted thread then delays nobody. */
#define SW_PAR_MIN 65536
#define SW_PAR_CHUNK 16384

void sw_vec_copy(float *dst, const float *src, size_t n) {
    if (n < SW_PAR_MIN) {
        memcpy(dst, src, n * sizeof *dst);
        return;
    }
    const long blocks = (long)((n + SW_PAR_MIN - 1) / SW_PAR_MIN);
#pragma omp parallel for schedule(dynamic, 1)
    for (long b = 0; b < blocks; b++) {
        size_t lo = (size_t)b * SW_PAR_MIN, len = n - lo < SW_PAR_MIN ? n - lo : SW_PAR_MIN;
        memcpy(dst + lo, src + lo, len * sizeof *dst);
    }
}

void sw_vec_add(float *restrict dst, const float *restrict src, size_t n) {
#pragma omp parallel for simd schedule(dynamic, SW_PAR_CHUNK) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] += src[i];
}

void sw_vec_sum2(float *restrict dst, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(dynamic, SW_PAR_CHUNK) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] = a[i] + b[i];
}

void sw_vec_sum2_relu(float *restrict dst, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd schedule(dynamic, SW_PAR_CHUNK) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = a[i] + b[i];
        dst[i] = v < 0.0f ? 0.0f : v; /* NaN passes, as sw_vec_clamp lets it */
    }
}

void sw_vec_axpy(float *restrict dst, float s, const float *restrict src, size_t n) {
#pragma omp parallel for simd schedule(dynamic, SW_PAR_CHUNK) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] += s * src[i];
}

void sw_vec_clamp(float *y, const float *x, float lo, float hi, size_t n) {
    /* Comparisons that let NaN through (x < lo and x > hi are both false), as torch.clamp
     * does. y may be x (in place), so no restrict here. */
#pragma omp parallel for simd schedule(dynamic, SW_PAR_CHUNK) if (n >= SW_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}

void sw_vec_clamp_backward(float *restrict dx, const float *restrict dy, const float *restrict x,
                           float lo, float hi, size_t n, bool accumulate) {
    /* & (not &&) and an unconditional load of dy: the body has no branch to vectorise around.
     * A select, not a multiply by 0/1, so an infinite dy stays out of the result. */
    if (accumulate) {
#pragma omp parallel for simd schedule(dynamic, SW_PAR_CHUNK) if (n >= SW_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = dy[i];
            int pass = (x[i] > lo) & (x[i] < hi);
            dx[i] += pass ? g : 0.0f;
        }
    } else {
        /* (a conditional load of dy here compiled to a branch: 7x slower on random signs) */
#pragma omp parallel for simd schedule(dynamic, SW_PAR_CHUNK) if (n >= SW_PAR_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = dy[i];
            int pass = (x[i] > lo) & (x[i] < hi);
            dx[i] = pass ? g : 0.0f;
        }
    }
}
