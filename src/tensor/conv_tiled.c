/* conv_tiled.c - stride-1 dense convolution as register tiles on AVX-512 (see conv_tiled.h). */
#include "conv_tiled.h"

#include <string.h>

#include "conv_taps.h"
#include "parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SW_TILED_X86 1
#endif

/* One computation: `c` channels in, `o` out, over an image padded by (ph, pw). For the forward
 * pass these are the layer's own; for the input gradient the image is dy and the two channel
 * counts swap (see conv_tiled.h). */
typedef struct tiled {
    int n, c, o;
    int h, w, ho, wo;   /* input and output size */
    int ph, pw, hp, wp; /* padding and padded size */
    int kh, kw, dh, dw, kk;
    int nq;             /* 16-float vectors per tile row: 3 or 2, whichever wastes fewer columns */
    int o_pad;          /* o rounded up to whole tiles (see block_channels) */
    size_t plane;       /* Hp*Wp */
    size_t cols;        /* Ho*Wp: columns of the padded output */
    size_t cols_pad;    /* cols rounded up to whole tiles */
    size_t xpad_floats; /* one padded image, with a zero guard for the last tiles' reads */
    size_t ypad_floats; /* one padded output [o_pad, cols_pad] */
    size_t wt_floats;   /* the weights in tile order */
} tiled;

#define SW_TILED_MAX_TAPS 64 /* kernels up to 8x8: the tap offsets live on the stack */

static size_t round16(size_t n) { return (n + 15) / 16 * 16; } /* 64-byte blocks */

static tiled tiled_of(const sw_conv2d_desc *d, sw_conv2d_pass pass) {
    const sw_conv_geom *g = &d->geom;
    tiled t = {.n = d->batch, .kh = g->kernel_h, .kw = g->kernel_w, .dh = g->dil_h,
               .dw = g->dil_w};
    if (pass == SW_CONV2D_BACKWARD_INPUT) {
        /* dx = conv(dy padded by dil*(k-1) - pad, w flipped, channel axes swapped) */
        t.c = d->out_channels, t.o = g->channels;
        t.h = g->out_h, t.w = g->out_w, t.ho = g->height, t.wo = g->width;
        t.ph = t.dh * (t.kh - 1) - g->pad_h, t.pw = t.dw * (t.kw - 1) - g->pad_w;
    } else {
        t.c = g->channels, t.o = d->out_channels;
        t.h = g->height, t.w = g->width, t.ho = g->out_h, t.wo = g->out_w;
        t.ph = g->pad_h, t.pw = g->pad_w;
    }
    t.hp = t.h + 2 * t.ph;
    t.wp = t.w + 2 * t.pw;
    t.kk = t.kh * t.kw;
    t.plane = (size_t)t.hp * t.wp;
    t.cols = (size_t)t.ho * t.wp;
    size_t by48 = (t.cols + 47) / 48 * 48, by32 = (t.cols + 31) / 32 * 32;
    t.nq = by32 < by48 ? 2 : 3;
    t.cols_pad = t.nq == 2 ? by32 : by48;
    /* blocks of 8 channels, the last one of 4 when at most 4 remain */
    int rem = t.o % 8;
    t.o_pad = t.o - rem + (rem == 0 ? 0 : rem <= 4 ? 4 : 8);
    /* the last tile of the last channel reads up to cols_pad - 1 plus the largest tap offset */
    size_t max_off = (size_t)(t.kh - 1) * t.dh * t.wp + (size_t)(t.kw - 1) * t.dw;
    size_t reach = (size_t)(t.c - 1) * t.plane + t.cols_pad + max_off;
    size_t whole = (size_t)t.c * t.plane;
    t.xpad_floats = round16(reach > whole ? reach : whole);
    t.ypad_floats = round16((size_t)t.o_pad * t.cols_pad);
    t.wt_floats = round16((size_t)t.o_pad * t.c * t.kk);
    return t;
}

/* Channels of the tile block starting at output channel o0: 8, or 4 for a last block of at
 * most 4 (rows past t->o are zero weights whose outputs are dropped). */
static int block_channels(const tiled *t, int o0) { return t->o_pad - o0 >= 8 ? 8 : 4; }

bool sw_conv_tiled_available(void) {
#ifdef SW_TILED_X86
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

bool sw_conv_tiled_suits(const sw_conv2d_desc *d, sw_conv2d_pass pass) {
    const sw_conv_geom *g = &d->geom;
    if (pass == SW_CONV2D_BACKWARD_PARAMS || d->groups != 1) return false;
    if (g->stride_h != 1 || g->stride_w != 1) return false;
    if (g->kernel_h * g->kernel_w == 1 || g->kernel_h * g->kernel_w > SW_TILED_MAX_TAPS) return false;
    if (pass == SW_CONV2D_BACKWARD_INPUT &&
        (g->pad_h > g->dil_h * (g->kernel_h - 1) || g->pad_w > g->dil_w * (g->kernel_w - 1)))
        return false;
    return sw_conv_tiled_available();
}

size_t sw_conv_tiled_scratch_floats(const sw_conv2d_desc *d, sw_conv2d_pass pass) {
#ifndef SW_TILED_X86
    return sw_conv_taps_scratch_floats(d, pass); /* what the fallbacks below use */
#endif
    tiled t = tiled_of(d, pass);
    return t.wt_floats + (size_t)sw_conv2d_threads() * (t.xpad_floats + t.ypad_floats);
}

/* The weights of block `blk` (output channels 8*blk on) in tile order, [c][tap][channel of
 * the block], so a tile broadcasts them in sequence; blocks follow each other in wt. Forward:
 * weight (o, c, tap) = w[o][c][tap]; input gradient: w[c][o][kk-1-tap] of the layer (flipped,
 * channel axes swapped). Reads run along w's taps; rows past t->o are zero. */
static void weights_in_tile_order(float *wt, const float *w, const tiled *t, bool flip, int blk) {
    const int o0 = blk * 8, co = block_channels(t, o0);
    float *dst = wt + (size_t)o0 * t->c * t->kk;
    for (int j = 0; j < co; j++) {
        const int o = o0 + j;
        for (int c = 0; c < t->c; c++)
            for (int k = 0; k < t->kk; k++) {
                float v = 0.0f;
                if (o < t->o)
                    v = flip ? w[((size_t)c * t->o + o) * t->kk + (t->kk - 1 - k)]
                             : w[((size_t)o * t->c + c) * t->kk + k];
                dst[((size_t)c * t->kk + k) * co + j] = v;
            }
    }
}

#ifdef SW_TILED_X86
/* acc[CO][NQ] = sum over c, tap of w(o, c, tap) * x[c][q + off[tap] + 16v], stored to
 * y[o * ystride + 16v]. CO and NQ are constants in every instance below, so the accumulators
 * stay in registers (the unroll pragmas make sure of it: without them GCC keeps them on the
 * stack and the kernel runs at a third of the speed). */
__attribute__((target("avx512f"), always_inline)) static inline void
tile_body(float *y, size_t ystride, const float *x, size_t plane, const float *wb, int n_c,
          int kk, const int *off, const int CO, const int NQ) {
    __m512 acc[8][3];
#pragma GCC unroll 8
    for (int o = 0; o < CO; o++)
#pragma GCC unroll 3
        for (int v = 0; v < NQ; v++) acc[o][v] = _mm512_setzero_ps();
    for (int c = 0; c < n_c; c++) {
        const float *xc = x + (size_t)c * plane;
        const float *wc = wb + (size_t)c * kk * CO;
        for (int k = 0; k < kk; k++) {
            const float *xk = xc + off[k];
            __m512 xv[3];
#pragma GCC unroll 3
            for (int v = 0; v < NQ; v++) xv[v] = _mm512_loadu_ps(xk + 16 * v);
#pragma GCC unroll 8
            for (int o = 0; o < CO; o++) {
                __m512 wv = _mm512_set1_ps(wc[k * CO + o]);
#pragma GCC unroll 3
                for (int v = 0; v < NQ; v++) acc[o][v] = _mm512_fmadd_ps(wv, xv[v], acc[o][v]);
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < CO; o++)
#pragma GCC unroll 3
        for (int v = 0; v < NQ; v++) _mm512_storeu_ps(y + o * ystride + 16 * v, acc[o][v]);
}

#define SW_TILE_INSTANCE(CO, NQ)                                                               \
    __attribute__((target("avx512f"))) static void tile_##CO##x##NQ(                           \
        float *y, size_t ystride, const float *x, size_t plane, const float *wb, int n_c,      \
        int kk, const int *off) {                                                              \
        tile_body(y, ystride, x, plane, wb, n_c, kk, off, CO, NQ);                             \
    }
SW_TILE_INSTANCE(8, 3)
SW_TILE_INSTANCE(8, 2)
SW_TILE_INSTANCE(4, 3)
SW_TILE_INSTANCE(4, 2)
#undef SW_TILE_INSTANCE

typedef void (*tile_fn)(float *, size_t, const float *, size_t, const float *, int, int,
                        const int *);

static tile_fn tile_for(int co, int nq) {
    if (co == 8) return nq == 3 ? tile_8x3 : tile_8x2;
    return nq == 3 ? tile_4x3 : tile_4x2;
}

/* Every column tile of block `blk` (output channels 8*blk on) of one sample, into yp. */
static void run_block(float *yp, const float *xp, const float *wt, const tiled *t,
                      const int *off, int blk) {
    const int o0 = blk * 8; /* every block but the last has 8 channels */
    const size_t step = 16 * (size_t)t->nq;
    tile_fn tile = tile_for(block_channels(t, o0), t->nq);
    for (size_t q = 0; q < t->cols_pad; q += step)
        tile(yp + (size_t)o0 * t->cols_pad + q, t->cols_pad, xp + q, t->plane,
             wt + (size_t)o0 * t->c * t->kk, t->c, t->kk, off);
}
#endif

/* Rows are 7 to 30 values in the zoo: an inlined vector loop, not a memcpy call per row. */
static inline void copy_row(float *restrict dst, const float *restrict src, int n) {
#pragma omp simd
    for (int j = 0; j < n; j++) dst[j] = src[j];
}

/* Channel c of one sample [c, h, w] into the interior of its padded plane; the borders (and
 * the guard after the last plane) must be zero already. */
static void pad_channel(float *xp, const float *x, const tiled *t, int c) {
    float *dst = xp + (size_t)c * t->plane + (size_t)t->ph * t->wp + t->pw;
    const float *src = x + (size_t)c * t->h * t->w;
    for (int i = 0; i < t->h; i++) copy_row(dst + (size_t)i * t->wp, src + (size_t)i * t->w, t->w);
}

/* Output channel o of one sample from the padded output: forward applies the bias and the
 * epilogue; the input gradient copies or adds. */
typedef struct tiled_out {
    const float *bias;
    const sw_epilogue *ep;
    bool gradient, accumulate;
} tiled_out;

static bool pooled(const tiled_out *how) { return how->ep && how->ep->pool2x2; }

/* Floats of one sample's output: [o, ho, wo], or [o, ho/2, wo/2] pooled. */
static size_t output_floats(const tiled *t, const tiled_out *how) {
    return pooled(how) ? (size_t)t->o * (t->ho / 2) * (t->wo / 2) : (size_t)t->o * t->ho * t->wo;
}

#ifdef SW_TILED_X86
/* MaxPool2d's comparison on 16 lanes: where v is larger, or a NaN over a number, v wins. */
__attribute__((target("avx512f"))) static inline __m512 max_or_nan16(__m512 best, __m512 v) {
    __mmask16 win = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
                    (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) &
                     _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
    return _mm512_mask_blend_ps(win, best, v);
}

/* relu?(v * a + b) on 16 lanes; a NaN passes the ReLU, as the layer's clamp lets it. */
__attribute__((target("avx512f"))) static inline __m512 epilogue16(__m512 v, __m512 a, __m512 b,
                                                                   bool relu) {
    v = _mm512_fmadd_ps(v, a, b);
    if (relu) v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v,
                                       _mm512_setzero_ps());
    return v;
}

/* Output channel o pooled: each 2x2 window of the epilogue's values (rows 2i, 2i+1 of the
 * padded output), its maximum; an odd last row or column is dropped, as MaxPool2d does. 16
 * windows at a time: the even and odd columns of 32 values are split with two permutes, and
 * the loads and stores of a row's last windows are masked. */
__attribute__((target("avx512f"))) static void
unpad_channel_pooled(float *yn, const float *yp, const tiled *t, const tiled_out *how, int o) {
    float a, b;
    sw_epilogue_coeffs(how->ep, how->bias, o, &a, &b);
    const __m512 av = _mm512_set1_ps(a), bv = _mm512_set1_ps(b);
    const bool relu = how->ep->relu;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const int pw = t->wo / 2, ph = t->ho / 2;
    for (int i = 0; i < ph; i++) {
        const float *r0 = yp + (size_t)o * t->cols_pad + (size_t)(2 * i) * t->wp;
        const float *r1 = r0 + t->wp;
        float *dst = yn + ((size_t)o * ph + i) * pw;
        for (int j = 0; j < pw; j += 16) {
            const int n = pw - j < 16 ? pw - j : 16; /* windows, 2n values per row */
            const __mmask16 lo = (__mmask16)(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
            const __mmask16 hi = (__mmask16)(n <= 8 ? 0 : n == 16 ? 0xFFFF : (1u << (2 * n - 16)) - 1);
            const __mmask16 out = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
            __m512 best = _mm512_setzero_ps();
            for (int r = 0; r < 2; r++) {
                const float *row = (r ? r1 : r0) + 2 * j;
                __m512 v0 = epilogue16(_mm512_maskz_loadu_ps(lo, row), av, bv, relu);
                __m512 v1 = epilogue16(_mm512_maskz_loadu_ps(hi, row + 16), av, bv, relu);
                __m512 left = _mm512_permutex2var_ps(v0, even, v1);
                __m512 right = _mm512_permutex2var_ps(v0, odd, v1);
                /* taps in MaxPool2d's order: top-left, top-right, bottom-left, bottom-right */
                best = r ? max_or_nan16(best, left) : left;
                best = max_or_nan16(best, right);
            }
            _mm512_mask_storeu_ps(dst + j, out, best);
        }
    }
}
#endif

static void unpad_channel(float *yn, const float *yp, const tiled *t, const tiled_out *how,
                          int o) {
#ifdef SW_TILED_X86
    if (pooled(how)) {
        unpad_channel_pooled(yn, yp, t, how, o);
        return;
    }
#endif
    float a = 1.0f, b = 0.0f;
    if (!how->gradient) sw_epilogue_coeffs(how->ep, how->bias, o, &a, &b);
    for (int i = 0; i < t->ho; i++) {
        float *dst = yn + ((size_t)o * t->ho + i) * t->wo;
        const float *src = yp + (size_t)o * t->cols_pad + (size_t)i * t->wp;
        if (!how->gradient) {
            sw_epilogue_apply(dst, src, (size_t)t->wo, a, b, how->ep && how->ep->relu);
        } else if (how->accumulate) {
#pragma omp simd
            for (int j = 0; j < t->wo; j++) dst[j] += src[j];
        } else {
            copy_row(dst, src, t->wo);
        }
    }
}

/* Below this many FLOPs a sample's convolution runs on one thread when there are fewer
 * samples than threads: the two barriers of sharing it cost more (a batch-1 CNN layer). */
#define SW_TILED_SHARE_MIN_FLOPS 4e6

/* out [n, o, ho, wo] from in [n, c, h, w]: samples in parallel when there are enough of them,
 * otherwise one sample at a time with its blocks of output channels shared out. */
static void run(float *out, const float *in, const float *w, bool flip, float *wt,
                const tiled *t, const tiled_out *how, float *per_thread) {
#ifdef SW_TILED_X86
    int off[SW_TILED_MAX_TAPS];
    for (int k = 0; k < t->kk; k++)
        off[k] = (k / t->kw) * t->dh * t->wp + (k % t->kw) * t->dw;
    const size_t in_sz = (size_t)t->c * t->h * t->w, out_sz = output_floats(t, how);
    const int blocks = (t->o_pad + 7) / 8;
    const bool by_sample = t->n >= sw_conv2d_threads() && t->n > 1;
    const double flops = 2.0 * t->o * t->c * t->kk * (double)t->cols;
#pragma omp parallel if (by_sample || flops >= SW_TILED_SHARE_MIN_FLOPS)
    {
        /* the weights in tile order first, a block per thread at a time */
#pragma omp for schedule(static)
        for (int blk = 0; blk < blocks; blk++) weights_in_tile_order(wt, w, t, flip, blk);
        if (by_sample) {
            float *xp = per_thread + (size_t)sw_thread_id() * (t->xpad_floats + t->ypad_floats);
            float *yp = xp + t->xpad_floats;
            memset(xp, 0, t->xpad_floats * sizeof *xp);
#pragma omp for schedule(dynamic, 1)
            for (int n = 0; n < t->n; n++) {
                for (int c = 0; c < t->c; c++) pad_channel(xp, in + (size_t)n * in_sz, t, c);
                for (int blk = 0; blk < blocks; blk++) run_block(yp, xp, wt, t, off, blk);
                for (int o = 0; o < t->o; o++) unpad_channel(out + (size_t)n * out_sz, yp, t, how, o);
            }
        } else {
            /* one shared padded image and output; each block's thread also writes out its
             * channels, so a sample costs two barriers */
            float *xp = per_thread, *yp = per_thread + t->xpad_floats;
#pragma omp single
            memset(xp, 0, t->xpad_floats * sizeof *xp);
            for (int n = 0; n < t->n; n++) {
#pragma omp for schedule(static)
                for (int c = 0; c < t->c; c++) pad_channel(xp, in + (size_t)n * in_sz, t, c);
#pragma omp for schedule(dynamic, 1)
                for (int blk = 0; blk < blocks; blk++) {
                    run_block(yp, xp, wt, t, off, blk);
                    const int o_end = blk * 8 + 8 < t->o ? blk * 8 + 8 : t->o;
                    for (int o = blk * 8; o < o_end; o++)
                        unpad_channel(out + (size_t)n * out_sz, yp, t, how, o);
                }
            }
        }
    }
#else
    (void)out, (void)in, (void)w, (void)flip, (void)wt, (void)t, (void)how, (void)per_thread;
#endif
}

void sw_conv_tiled_forward(float *y, const float *x, const float *w, const float *b,
                           const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch) {
#ifdef SW_TILED_X86
    const tiled t = tiled_of(d, SW_CONV2D_FORWARD);
    const tiled_out how = {.bias = b, .ep = ep};
    run(y, x, w, false, scratch, &t, &how, scratch + t.wt_floats);
#else
    /* not reached: sw_conv_tiled_suits is false without AVX-512 */
    sw_conv_taps_forward(y, x, w, b, d, ep, scratch);
#endif
}

void sw_conv_tiled_backward_input(float *dx, const float *dy, const float *w,
                                  const sw_conv2d_desc *d, float *scratch, bool accumulate) {
#ifdef SW_TILED_X86
    const tiled t = tiled_of(d, SW_CONV2D_BACKWARD_INPUT);
    const tiled_out how = {.gradient = true, .accumulate = accumulate};
    run(dx, dy, w, true, scratch, &t, &how, scratch + t.wt_floats);
#else
    sw_conv_taps_backward_input(dx, dy, w, d, scratch, accumulate);
#endif
}
