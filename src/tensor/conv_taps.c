/* conv_taps.c - stride-1 convolution, one sgemm per kernel tap (see conv_taps.h). */
#include "conv_taps.h"

#include <string.h>

#include "blas.h"
#include "parallel.h"

/* Below these the tap-wise sgemms are too shallow (K = C) or too narrow (N = Ho*Wp), and the
 * (kw-1)*dw wasted columns too large a share: measured to lose to im2col at 128ch 7x7
 * (N = 63) and to win at 64ch 14x14 (N = 224). */
#define SW_TAPS_MIN_CHANNELS 16
#define SW_TAPS_MIN_COLUMNS 128

typedef struct taps {
    int n, c, o;
    int h, w, ho, wo;     /* input and output size */
    int hp, wp;           /* padded input size */
    int kh, kw, dh, dw, ph, pw;
    int kk;               /* taps, kh*kw */
    size_t plane;         /* Hp*Wp */
    size_t cols;          /* Ho*Wp: columns of the padded output */
    size_t xpad_floats;   /* one padded image and its guard, rounded up */
    size_t ypad_floats;   /* one padded output [O, Ho*Wp], rounded up */
    size_t wt_floats;     /* weights by tap [kk, O, C], rounded up */
} taps;

static size_t round16(size_t n) { return (n + 15) / 16 * 16; } /* 64-byte blocks */

static taps taps_of(const sw_conv2d_desc *d) {
    const sw_conv_geom *g = &d->geom;
    taps t = {.n = d->batch, .c = g->channels, .o = d->out_channels,
              .h = g->height, .w = g->width, .ho = g->out_h, .wo = g->out_w,
              .kh = g->kernel_h, .kw = g->kernel_w, .dh = g->dil_h, .dw = g->dil_w,
              .ph = g->pad_h, .pw = g->pad_w};
    t.hp = t.h + 2 * t.ph;
    t.wp = t.w + 2 * t.pw;
    t.kk = t.kh * t.kw;
    t.plane = (size_t)t.hp * t.wp;
    t.cols = (size_t)t.ho * t.wp;
    /* the guard: a window overruns its plane by up to (kw-1)*dw floats */
    t.xpad_floats = round16((size_t)t.c * t.plane + (size_t)(t.kw - 1) * t.dw);
    t.ypad_floats = round16((size_t)t.o * t.cols);
    t.wt_floats = round16((size_t)t.kk * t.o * t.c);
    return t;
}

bool sw_conv_taps_suits(const sw_conv2d_desc *d) {
    const sw_conv_geom *g = &d->geom;
    if (d->groups != 1 || g->stride_h != 1 || g->stride_w != 1) return false;
    if (g->kernel_h * g->kernel_w == 1 || g->channels < SW_TAPS_MIN_CHANNELS) return false;
    return (long)g->out_h * (g->width + 2 * g->pad_w) >= SW_TAPS_MIN_COLUMNS;
}

static bool parallel_over_samples(const taps *t) {
    return t->n >= sw_conv2d_threads() && t->n > 1;
}

size_t sw_conv_taps_scratch_floats(const sw_conv2d_desc *d, sw_conv2d_pass pass) {
    taps t = taps_of(d);
    size_t threads = (size_t)sw_conv2d_threads();
    size_t per_thread = t.xpad_floats + t.ypad_floats; /* an image and an output, padded */
    switch (pass) {
    case SW_CONV2D_FORWARD:
    case SW_CONV2D_BACKWARD_INPUT:
        return t.wt_floats + threads * per_thread;
    case SW_CONV2D_BACKWARD_PARAMS:
        return threads * per_thread +
               (size_t)sw_conv2d_weight_chunks(t.n) * round16(t.wt_floats + (size_t)t.o);
    }
    return 0;
}

/* Input offset of tap `tap` relative to the output position, in the padded image. */
static size_t tap_offset(const taps *t, int tap) {
    return (size_t)(tap / t->kw) * t->dh * t->wp + (size_t)(tap % t->kw) * t->dw;
}

/* wt [tap, O, C] = w [O, C, tap]: each tap's [O, C] matrix contiguous for sgemm. */
static void weights_by_tap(float *wt, const float *w, const taps *t) {
    for (int o = 0; o < t->o; o++)
        for (int c = 0; c < t->c; c++)
            for (int k = 0; k < t->kk; k++)
                wt[((size_t)k * t->o + o) * t->c + c] = w[((size_t)o * t->c + c) * t->kk + k];
}

/* Rows are 7 to 28 values in the zoo: an inlined vector loop, not a memcpy call per row. */
static inline void copy_row(float *restrict dst, const float *restrict src, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) dst[j] = src[j];
}

/* Copies one sample [C, H, W] into the interior of its padded image; the borders and the guard
 * are zeroed once per buffer and never written. */
static void pad_image(float *xp, const float *x, const taps *t) {
    for (int c = 0; c < t->c; c++) {
        float *dst = xp + (size_t)c * t->plane + (size_t)t->ph * t->wp + t->pw;
        const float *src = x + (size_t)c * t->h * t->w;
        for (int i = 0; i < t->h; i++) copy_row(dst + (size_t)i * t->wp, src + (size_t)i * t->w, t->w);
    }
}

/* Copies one sample's dy [O, Ho, Wo] onto the padded output grid [O, Ho*Wp]; the wasted
 * columns are zeroed once per buffer and never written. */
static void pad_rows(float *dyp, const float *dy, const taps *t) {
    for (int o = 0; o < t->o; o++) {
        float *dst = dyp + (size_t)o * t->cols;
        const float *src = dy + (size_t)o * t->ho * t->wo;
        for (int i = 0; i < t->ho; i++) copy_row(dst + (size_t)i * t->wp, src + (size_t)i * t->wo, t->wo);
    }
}

void sw_conv_taps_forward(float *y, const float *x, const float *w, const float *b,
                          const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch) {
    const taps t = taps_of(d);
    float *wt = scratch;
    weights_by_tap(wt, w, &t);
    float *per_thread = scratch + t.wt_floats;
#pragma omp parallel if (parallel_over_samples(&t))
    {
        float *xp = per_thread + (size_t)sw_thread_id() * (t.xpad_floats + t.ypad_floats);
        float *yp = xp + t.xpad_floats;
        memset(xp, 0, t.xpad_floats * sizeof *xp);
#pragma omp for schedule(dynamic, 1)
        for (int n = 0; n < t.n; n++) {
            pad_image(xp, x + (size_t)n * t.c * t.h * t.w, &t);
            for (int k = 0; k < t.kk; k++)
                sw_sgemm(false, false, t.o, (int)t.cols, t.c, 1.0f, wt + (size_t)k * t.o * t.c, t.c,
                         xp + tap_offset(&t, k), (int)t.plane, k ? 1.0f : 0.0f, yp, (int)t.cols);
            float *yn = y + (size_t)n * t.o * t.ho * t.wo;
            /* un-pad, with the bias and the epilogue on the way */
            for (int o = 0; o < t.o; o++) {
                float a, c;
                sw_epilogue_coeffs(ep, b, o, &a, &c);
                for (int i = 0; i < t.ho; i++)
                    sw_epilogue_apply(yn + ((size_t)o * t.ho + i) * t.wo,
                                      yp + (size_t)o * t.cols + (size_t)i * t.wp, (size_t)t.wo, a,
                                      c, ep && ep->relu);
            }
        }
    }
}

void sw_conv_taps_backward_input(float *dx, const float *dy, const float *w,
                                 const sw_conv2d_desc *d, float *scratch, bool accumulate) {
    const taps t = taps_of(d);
    float *wt = scratch;
    weights_by_tap(wt, w, &t);
    float *per_thread = scratch + t.wt_floats;
#pragma omp parallel if (parallel_over_samples(&t))
    {
        float *dxp = per_thread + (size_t)sw_thread_id() * (t.xpad_floats + t.ypad_floats);
        float *dyp = dxp + t.xpad_floats;
        memset(dyp, 0, t.ypad_floats * sizeof *dyp);
#pragma omp for schedule(dynamic, 1)
        for (int n = 0; n < t.n; n++) {
            pad_rows(dyp, dy + (size_t)n * t.o * t.ho * t.wo, &t);
            memset(dxp, 0, t.xpad_floats * sizeof *dxp);
            /* each tap adds W_tap^T dy_pad onto its window of the padded input gradient */
            for (int k = 0; k < t.kk; k++)
                sw_sgemm(true, false, t.c, (int)t.cols, t.o, 1.0f, wt + (size_t)k * t.o * t.c, t.c,
                         dyp, (int)t.cols, 1.0f, dxp + tap_offset(&t, k), (int)t.plane);
            float *dxn = dx + (size_t)n * t.c * t.h * t.w;
            for (int c = 0; c < t.c; c++)
                for (int i = 0; i < t.h; i++) {
                    const float *src = dxp + (size_t)c * t.plane + (size_t)(i + t.ph) * t.wp + t.pw;
                    float *dst = dxn + ((size_t)c * t.h + i) * t.w;
                    if (accumulate) {
#pragma omp simd
                        for (int j = 0; j < t.w; j++) dst[j] += src[j];
                    } else {
                        copy_row(dst, src, t.w);
                    }
                }
        }
    }
}

void sw_conv_taps_backward_params(float *dw, float *db, const float *dy, const float *x,
                                  const sw_conv2d_desc *d, float *scratch) {
    const taps t = taps_of(d);
    const int chunks = sw_conv2d_weight_chunks(t.n);
    const size_t threads = (size_t)sw_conv2d_threads();
    const size_t part_size = round16(t.wt_floats + (size_t)t.o); /* [kk, O, C] then [O] */
    float *partials = scratch + threads * (t.xpad_floats + t.ypad_floats);
#pragma omp parallel if (parallel_over_samples(&t))
    {
        float *xp = scratch + (size_t)sw_thread_id() * (t.xpad_floats + t.ypad_floats);
        float *dyp = xp + t.xpad_floats;
        memset(xp, 0, (t.xpad_floats + t.ypad_floats) * sizeof *xp);
#pragma omp for schedule(dynamic, 1)
        for (int ch = 0; ch < chunks; ch++) {
            float *dw_c = partials + (size_t)ch * part_size, *db_c = dw_c + t.wt_floats;
            memset(dw_c, 0, part_size * sizeof *dw_c);
            const int n0 = (int)((long)t.n * ch / chunks), n1 = (int)((long)t.n * (ch + 1) / chunks);
            for (int n = n0; n < n1; n++) {
                const float *dyn = dy + (size_t)n * t.o * t.ho * t.wo;
                if (dw) {
                    pad_image(xp, x + (size_t)n * t.c * t.h * t.w, &t);
                    pad_rows(dyp, dyn, &t);
                    /* dW_tap [O, C] += dy_pad [O, Ho*Wp] * window_tap^T */
                    for (int k = 0; k < t.kk; k++)
                        sw_sgemm(false, true, t.o, t.c, (int)t.cols, 1.0f, dyp, (int)t.cols,
                                 xp + tap_offset(&t, k), (int)t.plane, 1.0f,
                                 dw_c + (size_t)k * t.o * t.c, t.c);
                }
                if (db) {
                    const size_t p = (size_t)t.ho * t.wo;
                    for (int o = 0; o < t.o; o++) {
                        const float *row = dyn + (size_t)o * p;
                        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                        for (size_t i = 0; i < p; i++) acc += row[i];
                        db_c[o] += acc;
                    }
                }
            }
        }
        /* implicit barrier: every partial is complete; add them in chunk order, back in the
         * [O, C, kh, kw] layout */
        if (dw) {
            const size_t dw_size = (size_t)t.o * t.c * t.kk;
#pragma omp for schedule(static)
            for (size_t i = 0; i < dw_size; i++) {
                const size_t k = i % (size_t)t.kk, oc = i / (size_t)t.kk; /* oc = o*C + c */
                const size_t at = k * (size_t)t.o * t.c + oc;
                float acc = 0.0f;
                for (int ch = 0; ch < chunks; ch++) acc += partials[(size_t)ch * part_size + at];
                dw[i] += acc;
            }
        }
        if (db) {
#pragma omp for schedule(static)
            for (int o = 0; o < t.o; o++) {
                float acc = 0.0f;
                for (int ch = 0; ch < chunks; ch++)
                    acc += partials[(size_t)ch * part_size + t.wt_floats + (size_t)o];
                db[o] += acc;
            }
        }
    }
}
