/* pool.c - max and average pooling, forward and backward, fast and naive.
 *
 * Every kernel walks planes (one channel of one sample) independently, so threads take planes
 * a few at a time and never write the same memory. The fast paths clip each window to the
 * image once (tap_range) instead of testing every tap, and MaxPool2d(2) - by far the most
 * common pool - has its own branch-free, vectorised row kernel.
 */
#include "pool.h"

#include <string.h>

#include <math.h>
#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h> /* part of the x86-64 baseline: no run-time check needed */
#endif

/* PyTorch's max: a larger value wins, and a NaN wins over any number (the first NaN stays).
 * Bitwise operators keep it branch-free: an unpredictable branch per tap costs more than the
 * comparison. */
static inline int beats(float v, float best) {
    return (v > best) | ((v != v) & (best == best));
}

/* Rows [*lo, *hi) of the window starting at `start` with `k` taps `dil` apart that fall in
 * [0, size): tap t is at start + t*dil. */
static inline void tap_range(int start, int k, int dil, int size, int *lo, int *hi) {
    int a = 0, b = k;
    if (start < 0) a = (-start + dil - 1) / dil;
    int last = size - 1 - start; /* largest admissible offset */
    if (last < 0)
        b = 0;
    else if (last / dil + 1 < b)
        b = last / dil + 1;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

#if defined(__SSE2__)
/* One tap of four 2x2 windows at once: where v beats best, take v and tap offset k. */
static inline void maxpool_step4(__m128 *best, __m128i *off, __m128 v, int32_t k) {
    __m128 nan_v = _mm_and_ps(_mm_cmpunord_ps(v, v), _mm_cmpord_ps(*best, *best));
    __m128 m = _mm_or_ps(_mm_cmpgt_ps(v, *best), nan_v);
    *best = _mm_or_ps(_mm_and_ps(m, v), _mm_andnot_ps(m, *best));
    __m128i mi = _mm_castps_si128(m);
    *off = _mm_or_si128(_mm_and_si128(mi, _mm_set1_epi32(k)), _mm_andnot_si128(mi, *off));
}
#endif

/* One output row of MaxPool2d(2, stride 2) without padding: rows r0, r1 of the input, whose
 * first element has flat index row0 in its plane of width w. Taps are taken in row-major order
 * and a later tap wins only if it beats the current best, as in the general path. Compilers
 * do not vectorise the stride-2 reads, so four windows go through SSE2 by hand (de-interleaving
 * the even and odd columns with shuffles); the scalar loop finishes the row. */
static void maxpool2x2_row(float *yr, int32_t *ar, const float *r0, const float *r1, int out_w,
                           int32_t row0, int32_t w) {
    int ow = 0;
#if defined(__SSE2__)
    const __m128i lane = _mm_setr_epi32(0, 2, 4, 6);
    for (; ow + 4 <= out_w; ow += 4) {
        const float *p0 = r0 + 2 * ow, *p1 = r1 + 2 * ow;
        __m128 a0 = _mm_loadu_ps(p0), a1 = _mm_loadu_ps(p0 + 4);
        __m128 b0 = _mm_loadu_ps(p1), b1 = _mm_loadu_ps(p1 + 4);
        __m128 best = _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0)); /* top-left taps */
        __m128i off = _mm_setzero_si128();
        maxpool_step4(&best, &off, _mm_shuffle_ps(a0, a1, _MM_SHUFFLE(3, 1, 3, 1)), 1);
        maxpool_step4(&best, &off, _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(2, 0, 2, 0)), w);
        maxpool_step4(&best, &off, _mm_shuffle_ps(b0, b1, _MM_SHUFFLE(3, 1, 3, 1)), w + 1);
        _mm_storeu_ps(yr + ow, best);
        __m128i base = _mm_add_epi32(_mm_set1_epi32(row0 + 2 * ow), lane);
        _mm_storeu_si128((__m128i *)(void *)(ar + ow), _mm_add_epi32(base, off));
    }
#endif
    for (; ow < out_w; ow++) {
        const int iw = 2 * ow;
        const float taps[4] = {r0[iw], r0[iw + 1], r1[iw], r1[iw + 1]};
        const int32_t offs[4] = {0, 1, w, w + 1};
        float best = taps[0];
        int32_t at = 0;
        for (int t = 1; t < 4; t++) {
            int win = beats(taps[t], best);
            best = win ? taps[t] : best;
            at = win ? offs[t] : at;
        }
        yr[ow] = best;
        ar[ow] = row0 + iw + at;
    }
}

void sw_maxpool2d_forward(float *y, int32_t *argmax, const float *x, long planes,
                          const sw_conv_geom *g) {
    const size_t in_sz = (size_t)g->height * g->width, out_sz = (size_t)g->out_h * g->out_w;
    const int plain2x2 = g->kernel_h == 2 && g->kernel_w == 2 && g->stride_h == 2 &&
                         g->stride_w == 2 && g->pad_h == 0 && g->pad_w == 0 && g->dil_h == 1 &&
                         g->dil_w == 1;
#pragma omp parallel for schedule(dynamic, 8)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * in_sz;
        float *yp = y + (size_t)pl * out_sz;
        int32_t *ap = argmax + (size_t)pl * out_sz;
        if (plain2x2) {
            /* the common case (every CNN's "MaxPool2d(2)"): no bounds to check */
            for (int oh = 0; oh < g->out_h; oh++) {
                const float *r0 = xp + (size_t)(2 * oh) * g->width;
                maxpool2x2_row(yp + (size_t)oh * g->out_w, ap + (size_t)oh * g->out_w, r0,
                               r0 + g->width, g->out_w, 2 * oh * g->width, g->width);
            }
            continue;
        }
        /* General windows: (h0, w0) is the window's top-left corner in input coordinates
         * (negative inside the padding); only taps [klo, khi) x [llo, lhi) are in the image.
         * Padding never wins (it is -inf), and with padding at most half the kernel every
         * window holds at least one real tap, so `at` always ends up set. */
        for (int oh = 0; oh < g->out_h; oh++) {
            int h0 = oh * g->stride_h - g->pad_h, klo, khi;
            tap_range(h0, g->kernel_h, g->dil_h, g->height, &klo, &khi);
            for (int ow = 0; ow < g->out_w; ow++) {
                int w0 = ow * g->stride_w - g->pad_w, llo, lhi;
                tap_range(w0, g->kernel_w, g->dil_w, g->width, &llo, &lhi);
                float best = -INFINITY;
                int32_t at = -1; /* flat index in the plane of the winner so far */
                for (int ki = klo; ki < khi; ki++) {
                    int ih = h0 + ki * g->dil_h;
                    for (int kj = llo; kj < lhi; kj++) {
                        int iw = w0 + kj * g->dil_w;
                        float v = xp[(size_t)ih * g->width + iw];
                        if (at < 0 || beats(v, best)) {
                            best = v;
                            at = ih * g->width + iw;
                        }
                    }
                }
                yp[(size_t)oh * g->out_w + ow] = best;
                ap[(size_t)oh * g->out_w + ow] = at;
            }
        }
    }
}

/* The definition: every tap of every window, skipping those in the padding. */
void sw_maxpool2d_forward_naive(float *y, int32_t *argmax, const float *x, long planes,
                                const sw_conv_geom *g) {
    for (long pl = 0; pl < planes; pl++)
        for (int oh = 0; oh < g->out_h; oh++)
            for (int ow = 0; ow < g->out_w; ow++) {
                float best = -INFINITY;
                int32_t at = -1;
                for (int ki = 0; ki < g->kernel_h; ki++)
                    for (int kj = 0; kj < g->kernel_w; kj++) {
                        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                        int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
                        if (ih < 0 || ih >= g->height || iw < 0 || iw >= g->width) continue;
                        float v = x[((size_t)pl * g->height + ih) * g->width + iw];
                        if (at < 0 || beats(v, best)) {
                            best = v;
                            at = ih * g->width + iw;
                        }
                    }
                size_t o = ((size_t)pl * g->out_h + oh) * g->out_w + ow;
                y[o] = best;
                argmax[o] = at;
            }
}

/* The gradient of a max is routed to the winner only; -1 (no winner) cannot occur with the
 * padding rule the layer enforces, but is skipped rather than trusted. */
void sw_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax, long planes,
                           const sw_conv_geom *g, bool accumulate) {
    const size_t in_sz = (size_t)g->height * g->width, out_sz = (size_t)g->out_h * g->out_w;
    /* Overlapping windows may route several outputs to one input, but only within a plane,
     * and each plane belongs to one thread. */
#pragma omp parallel for schedule(dynamic, 8)
    for (long pl = 0; pl < planes; pl++) {
        float *dxp = dx + (size_t)pl * in_sz;
        const float *dyp = dy + (size_t)pl * out_sz;
        const int32_t *ap = argmax + (size_t)pl * out_sz;
        if (!accumulate) memset(dxp, 0, in_sz * sizeof *dxp);
        for (size_t i = 0; i < out_sz; i++)
            if (ap[i] >= 0) dxp[ap[i]] += dyp[i];
    }
}

void sw_avgpool2d_forward(float *y, const float *x, long planes, const sw_conv_geom *g) {
    const size_t in_sz = (size_t)g->height * g->width, out_sz = (size_t)g->out_h * g->out_w;
    /* count_include_pad: padded taps count in the divisor, so it is the same for every window
     * (windows never reach past the padding without ceil_mode) */
    const float inv = 1.0f / (float)(g->kernel_h * g->kernel_w);
#pragma omp parallel for schedule(dynamic, 8)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * in_sz;
        float *yp = y + (size_t)pl * out_sz;
        for (int oh = 0; oh < g->out_h; oh++) {
            int h0 = oh * g->stride_h - g->pad_h, klo, khi;
            tap_range(h0, g->kernel_h, g->dil_h, g->height, &klo, &khi);
            for (int ow = 0; ow < g->out_w; ow++) {
                int w0 = ow * g->stride_w - g->pad_w, llo, lhi;
                tap_range(w0, g->kernel_w, g->dil_w, g->width, &llo, &lhi);
                float acc = 0.0f;
                for (int ki = klo; ki < khi; ki++) {
                    const float *row = xp + (size_t)(h0 + ki * g->dil_h) * g->width;
                    for (int kj = llo; kj < lhi; kj++) acc += row[w0 + kj * g->dil_w];
                }
                yp[(size_t)oh * g->out_w + ow] = acc * inv;
            }
        }
    }
}

/* The definition in double: sum of the in-image taps over kh*kw. */
void sw_avgpool2d_forward_naive(float *y, const float *x, long planes, const sw_conv_geom *g) {
    const double div = (double)g->kernel_h * g->kernel_w;
    for (long pl = 0; pl < planes; pl++)
        for (int oh = 0; oh < g->out_h; oh++)
            for (int ow = 0; ow < g->out_w; ow++) {
                double acc = 0.0;
                for (int ki = 0; ki < g->kernel_h; ki++)
                    for (int kj = 0; kj < g->kernel_w; kj++) {
                        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                        int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
                        if (ih < 0 || ih >= g->height || iw < 0 || iw >= g->width) continue;
                        acc += x[((size_t)pl * g->height + ih) * g->width + iw];
                    }
                y[((size_t)pl * g->out_h + oh) * g->out_w + ow] = (float)(acc / div);
            }
}

void sw_avgpool2d_backward(float *dx, const float *dy, long planes, const sw_conv_geom *g) {
    const size_t in_sz = (size_t)g->height * g->width, out_sz = (size_t)g->out_h * g->out_w;
    /* each output spreads dy/(kh*kw) over the taps of its window that lie in the image; what
     * would go to the padding is dropped */
    const float inv = 1.0f / (float)(g->kernel_h * g->kernel_w);
#pragma omp parallel for schedule(dynamic, 8)
    for (long pl = 0; pl < planes; pl++) {
        float *dxp = dx + (size_t)pl * in_sz;
        const float *dyp = dy + (size_t)pl * out_sz;
        for (int oh = 0; oh < g->out_h; oh++) {
            int h0 = oh * g->stride_h - g->pad_h, klo, khi;
            tap_range(h0, g->kernel_h, g->dil_h, g->height, &klo, &khi);
            for (int ow = 0; ow < g->out_w; ow++) {
                int w0 = ow * g->stride_w - g->pad_w, llo, lhi;
                tap_range(w0, g->kernel_w, g->dil_w, g->width, &llo, &lhi);
                float v = dyp[(size_t)oh * g->out_w + ow] * inv;
                for (int ki = klo; ki < khi; ki++) {
                    float *row = dxp + (size_t)(h0 + ki * g->dil_h) * g->width;
                    for (int kj = llo; kj < lhi; kj++) row[w0 + kj * g->dil_w] += v;
                }
            }
        }
    }
}

void sw_avgpool2d_backward_naive(float *dx, const float *dy, long planes, const sw_conv_geom *g) {
    const double div = (double)g->kernel_h * g->kernel_w;
    for (long pl = 0; pl < planes; pl++)
        for (int oh = 0; oh < g->out_h; oh++)
            for (int ow = 0; ow < g->out_w; ow++) {
                double v = dy[((size_t)pl * g->out_h + oh) * g->out_w + ow] / div;
                for (int ki = 0; ki < g->kernel_h; ki++)
                    for (int kj = 0; kj < g->kernel_w; kj++) {
                        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                        int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
                        if (ih < 0 || ih >= g->height || iw < 0 || iw >= g->width) continue;
                        dx[((size_t)pl * g->height + ih) * g->width + iw] += (float)v;
                    }
            }
}
