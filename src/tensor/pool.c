/* pool.c - max and average pooling, forward and backward, fast and naive. */
#include "pool.h"

#include <math.h>
#include <stddef.h>

/* PyTorch's max: a larger value wins, and a NaN wins over any number (the first NaN stays). */
static inline int beats(float v, float best) { return v > best || (isnan(v) && !isnan(best)); }

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

void sw_maxpool2d_forward(float *y, int32_t *argmax, const float *x, long planes,
                          const sw_conv_geom *g) {
    const size_t in_sz = (size_t)g->height * g->width, out_sz = (size_t)g->out_h * g->out_w;
    const int plain2x2 = g->kernel_h == 2 && g->kernel_w == 2 && g->stride_h == 2 &&
                         g->stride_w == 2 && g->pad_h == 0 && g->pad_w == 0 && g->dil_h == 1 &&
                         g->dil_w == 1;
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * in_sz;
        float *yp = y + (size_t)pl * out_sz;
        int32_t *ap = argmax + (size_t)pl * out_sz;
        if (plain2x2) {
            /* The common case (every CNN's "MaxPool2d(2)"): no bounds to check. Taps are read
             * in row-major order and a later tap wins only if strictly larger, as in the
             * general path. */
            for (int oh = 0; oh < g->out_h; oh++) {
                const float *r0 = xp + (size_t)(2 * oh) * g->width;
                const float *r1 = r0 + g->width;
                for (int ow = 0; ow < g->out_w; ow++) {
                    int iw = 2 * ow;
                    float best = r0[iw];
                    int32_t at = 2 * oh * g->width + iw;
                    if (beats(r0[iw + 1], best)) best = r0[iw + 1], at = at + 1;
                    if (beats(r1[iw], best)) best = r1[iw], at = (2 * oh + 1) * g->width + iw;
                    if (beats(r1[iw + 1], best))
                        best = r1[iw + 1], at = (2 * oh + 1) * g->width + iw + 1;
                    yp[(size_t)oh * g->out_w + ow] = best;
                    ap[(size_t)oh * g->out_w + ow] = at;
                }
            }
            continue;
        }
        for (int oh = 0; oh < g->out_h; oh++) {
            int h0 = oh * g->stride_h - g->pad_h, klo, khi;
            tap_range(h0, g->kernel_h, g->dil_h, g->height, &klo, &khi);
            for (int ow = 0; ow < g->out_w; ow++) {
                int w0 = ow * g->stride_w - g->pad_w, llo, lhi;
                tap_range(w0, g->kernel_w, g->dil_w, g->width, &llo, &lhi);
                float best = -INFINITY;
                int32_t at = -1;
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

void sw_maxpool2d_backward(float *dx, const float *dy, const int32_t *argmax, long planes,
                           const sw_conv_geom *g) {
    const size_t in_sz = (size_t)g->height * g->width, out_sz = (size_t)g->out_h * g->out_w;
    /* Overlapping windows may route several outputs to one input, but only within a plane,
     * and each plane belongs to one thread. */
#pragma omp parallel for schedule(static)
    for (long pl = 0; pl < planes; pl++) {
        float *dxp = dx + (size_t)pl * in_sz;
        const float *dyp = dy + (size_t)pl * out_sz;
        const int32_t *ap = argmax + (size_t)pl * out_sz;
        for (size_t i = 0; i < out_sz; i++)
            if (ap[i] >= 0) dxp[ap[i]] += dyp[i];
    }
}

void sw_avgpool2d_forward(float *y, const float *x, long planes, const sw_conv_geom *g) {
    const size_t in_sz = (size_t)g->height * g->width, out_sz = (size_t)g->out_h * g->out_w;
    const float inv = 1.0f / (float)(g->kernel_h * g->kernel_w);
#pragma omp parallel for schedule(static)
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
    const float inv = 1.0f / (float)(g->kernel_h * g->kernel_w);
#pragma omp parallel for schedule(static)
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
