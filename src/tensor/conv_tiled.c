/* conv_tiled.c - dense convolution as register tiles on AVX-512 (see conv_tiled.h). */
#include "conv_tiled.h"

#include <stdint.h>
#include <string.h>

#include "conv_taps.h"
#include "parallel.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SW_TILED_X86 1
#endif

/* One computation: `c` channels in, `o` out, over an image padded by (ph, pw). For the forward
 * pass these are the layer's own; for the input gradient the image is dy and the two channel
 * counts swap (see conv_tiled.h).
 *
 * A stride s (forward only) splits each padded channel into s*s phase planes of Hq x Wq
 * (Hq = ceil(Hp/s), Wq = ceil(Wp/s)): plane (a, b) holds the padded pixels (s*i + a, s*j + b)
 * at (i, j). Output (oh, ow) then reads, for tap (ki, kj), phase plane (ki*dh % s, kj*dw % s)
 * at (oh + ki*dh / s, ow + kj*dw / s): a stride-1 sweep over the output columns q = oh*Wq + ow,
 * every tap at a fixed offset from q, exactly as with stride 1 (where there is one phase and
 * Wq = Wp). The kernel is the same; only the copy in and the offsets differ. */
typedef struct tiled {
    int n, c, o;
    int h, w, ho, wo;   /* input and output size */
    int ph, pw, hp, wp; /* padding and padded size */
    int sh, sw;         /* stride: phase planes per channel, sh*sw */
    int hq, wq;         /* a phase plane's size; wq is also the padded output's row width */
    int kh, kw, dh, dw, kk;
    int nq;             /* 16-float vectors per tile row: 3 or 2, whichever wastes fewer columns */
    int o_pad;          /* o rounded up to whole tiles (see block_channels) */
    size_t plane;       /* a channel's padded floats: sh*sw*Hq*Wq */
    size_t cols;        /* Ho*Wq: columns of the padded output */
    size_t cols_pad;    /* cols rounded up to whole tiles */
    size_t xpad_floats; /* one padded image, with a zero guard for the last tiles' reads */
    size_t ypad_floats; /* one padded output [o_pad, cols_pad] */
    size_t wt_floats;   /* the weights in tile order */
    size_t aux_floats;  /* the direct stores' map (direct_map) */
} tiled;

/* What a computation writes: the forward's output with the layer's bias and the epilogue, or
 * the input gradient, copied or added. */
typedef struct tiled_out {
    const float *bias;
    const sw_epilogue *ep;
    bool gradient, accumulate;
} tiled_out;

static bool pooled(const tiled_out *how) {
    return how->ep && how->ep->pool2x2;
}

#define SW_TILED_MAX_TAPS 64 /* kernels up to 8x8: the tap offsets live on the stack */

static size_t round16(size_t n) {
    return (n + 15) / 16 * 16;
} /* 64-byte blocks */

/* Where tap k reads, relative to the output column, in a channel's phase planes. */
static size_t tap_offset(const tiled *t, int k) {
    const int a = (k / t->kw) * t->dh, b = (k % t->kw) * t->dw; /* in padded pixels */
    const size_t phase = (size_t)(a % t->sh) * t->sw + (size_t)(b % t->sw);
    return phase * t->hq * t->wq + (size_t)(a / t->sh) * t->wq + (size_t)(b / t->sw);
}

static tiled tiled_of(const sw_conv2d_desc *d, sw_conv2d_pass pass) {
    const sw_conv_geom *g = &d->geom;
    tiled t = {.n = d->batch, .kh = g->kernel_h, .kw = g->kernel_w, .dh = g->dil_h, .dw = g->dil_w};
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
    t.sh = pass == SW_CONV2D_FORWARD ? g->stride_h : 1;
    t.sw = pass == SW_CONV2D_FORWARD ? g->stride_w : 1;
    t.hp = t.h + 2 * t.ph;
    t.wp = t.w + 2 * t.pw;
    t.hq = (t.hp + t.sh - 1) / t.sh;
    t.wq = (t.wp + t.sw - 1) / t.sw;
    t.kk = t.kh * t.kw;
    t.plane = (size_t)t.sh * t.sw * t.hq * t.wq;
    t.cols = (size_t)t.ho * t.wq;
    size_t by48 = (t.cols + 47) / 48 * 48, by32 = (t.cols + 31) / 32 * 32;
    t.nq = by32 < by48 ? 2 : 3;
    t.cols_pad = t.nq == 2 ? by32 : by48;
    /* blocks of 8 channels, the last one of 4 when at most 4 remain */
    int rem = t.o % 8;
    t.o_pad = t.o - rem + (rem == 0 ? 0 : rem <= 4 ? 4 : 8);
    /* the last tile of the last channel reads up to cols_pad - 1 plus the largest tap offset */
    size_t max_off = 0;
    for (int k = 0; k < t.kk; k++) {
        size_t off = tap_offset(&t, k);
        if (off > max_off) max_off = off;
    }
    size_t reach = (size_t)(t.c - 1) * t.plane + t.cols_pad + max_off;
    size_t whole = (size_t)t.c * t.plane;
    t.xpad_floats = round16(reach > whole ? reach : whole);
    t.ypad_floats = round16((size_t)t.o_pad * t.cols_pad);
    t.wt_floats = round16((size_t)t.o_pad * t.c * t.kk);
    t.aux_floats = round16(2 * (t.cols_pad / 16) + 2 * (size_t)t.o_pad);
    return t;
}

/* Channels of the tile block starting at output channel o0: 8, or 4 for a last block of at
 * most 4 (rows past t->o are zero weights whose outputs are dropped). */
static int block_channels(const tiled *t, int o0) {
    return t->o_pad - o0 >= 8 ? 8 : 4;
}

bool sw_conv_tiled_available(void) {
#ifdef SW_TILED_X86
    return __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

/* Whether every valid output column's taps stay inside its phase plane's row: the last output
 * ow = Wo - 1 plus the widest tap's offset (kw-1)*dw / s fits in Wq (and likewise for rows). With
 * stride 1 this always holds; with a larger stride it does for the usual geometries, and a
 * layer for which it does not keeps im2col. */
static bool phases_hold(const sw_conv_geom *g) {
    const int hq = (g->height + 2 * g->pad_h + g->stride_h - 1) / g->stride_h;
    const int wq = (g->width + 2 * g->pad_w + g->stride_w - 1) / g->stride_w;
    return g->out_h - 1 + (g->kernel_h - 1) * g->dil_h / g->stride_h < hq &&
           g->out_w - 1 + (g->kernel_w - 1) * g->dil_w / g->stride_w < wq;
}

bool sw_conv_tiled_suits(const sw_conv2d_desc *d, sw_conv2d_pass pass) {
    const sw_conv_geom *g = &d->geom;
    if (pass == SW_CONV2D_BACKWARD_PARAMS || d->groups != 1) return false;
    const bool strided = g->stride_h != 1 || g->stride_w != 1;
    /* strides 1 and 2; a strided layer's input gradient is not a convolution of dy */
    if (g->stride_h > 2 || g->stride_w > 2 || (strided && pass != SW_CONV2D_FORWARD)) return false;
    if (strided && !phases_hold(g)) return false;
    /* a 1x1 layer is one product of the image (stride 1) or of a subsample of it (conv.c):
     * with a stride, phase planes would copy every pixel to use a quarter of them */
    if (g->kernel_h * g->kernel_w == 1 || g->kernel_h * g->kernel_w > SW_TILED_MAX_TAPS)
        return false;
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
    return t.wt_floats + t.aux_floats +
           (size_t)sw_conv2d_threads() * (t.xpad_floats + t.ypad_floats);
}

#ifdef SW_TILED_X86
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

/* Where a tile's sums go. Buffered (for the pooled epilogue): rows of the padded output, y =
 * yp + o0*cols_pad + q, ystride = cols_pad. Direct: the sample's output itself, y = its channel
 * o0, ystride = Ho*Wo; vector qv of a tile row holds padded-output columns of which the lanes
 * in valid[qv] are real outputs, and (the wasted columns ending each row) those land
 * contiguously from dst_at[qv] on, so each vector is compressed and stored once, with the
 * epilogue (a[o] * v + b[o], ReLU) or the gradient's add applied on the way. */
typedef struct tile_out {
    float *y;
    size_t ystride;
    bool direct;
    int rows;               /* direct: rows of the block that are real channels (< t->o) */
    int qv;                 /* direct: the tile's first vector */
    const uint32_t *valid;  /* direct, per vector of the padded output */
    const int32_t *dst_at;  /* direct, per vector */
    const float *a, *b;     /* direct forward: per-channel affine from o0, else NULL */
    const float *residual;  /* direct forward: the residual's channel o0, like y, or NULL */
    bool relu, accumulate;
    /* direct and max-pooled: a tile is two output rows of 16 columns (pool_in_tiles), pooled
     * in registers into row qv/2 of the [pooled_rows, pooled_w] map; 0 when not pooling */
    int pooled_rows, pooled_w;
} tile_out;

/* max(0, v) on 16 lanes. vmaxps returns its second operand when either is a NaN, so a NaN
 * passes, as the layer's clamp (v < 0 ? 0 : v) lets it, and -0 stays -0 as there. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 relu16(__m512 v) {
    return _mm512_max_ps(_mm512_setzero_ps(), v);
}

/* MaxPool2d's comparison on 16 lanes: where v is larger, or a NaN over a number, v wins. */
__attribute__((target("avx512f"), always_inline)) static inline __m512 max_or_nan16(__m512 best,
                                                                                    __m512 v) {
    __mmask16 win =
        _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ) |
        (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
    return _mm512_mask_blend_ps(win, best, v);
}

__attribute__((target("avx512f"), always_inline)) static inline void
store_direct(const tile_out *out, int o, int v, __m512 r) {
    const int qi = out->qv + v;
    const __mmask16 m = (__mmask16)out->valid[qi];
    if (!m) return;
    if (out->a) r = _mm512_fmadd_ps(r, _mm512_set1_ps(out->a[o]), _mm512_set1_ps(out->b[o]));
    __m512 packed = _mm512_maskz_compress_ps(m, r);
    const __mmask16 head = (__mmask16)((1u << __builtin_popcount(m)) - 1);
    const size_t at = (size_t)o * out->ystride + (size_t)out->dst_at[qi];
    float *d = out->y + at;
    if (out->residual)
        packed = _mm512_add_ps(packed, _mm512_maskz_loadu_ps(head, out->residual + at));
    if (out->relu) packed = relu16(packed);
    if (out->accumulate) packed = _mm512_add_ps(packed, _mm512_maskz_loadu_ps(head, d));
    _mm512_mask_storeu_ps(d, head, packed);
}


/* Output channel o of a tile that holds rows 2i and 2i+1 (16 columns each, wasted ones at the
 * end): the epilogue on both, then each 2x2 window's maximum in MaxPool2d's order (top-left,
 * top-right, bottom-left, bottom-right; a NaN wins), the even and odd columns split by two
 * permutes, into pooled row i. */
__attribute__((target("avx512f"), always_inline)) static inline void
store_pooled(const tile_out *out, int o, __m512 top, __m512 bottom) {
    const int i = out->qv / 2;
    if (i >= out->pooled_rows) return; /* an odd last row: dropped, as MaxPool2d does */
    const __m512 a = _mm512_set1_ps(out->a[o]), b = _mm512_set1_ps(out->b[o]);
    top = _mm512_fmadd_ps(top, a, b);
    bottom = _mm512_fmadd_ps(bottom, a, b);
    if (out->relu) top = relu16(top), bottom = relu16(bottom);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 1, 1, 1, 1, 1, 1, 1, 1);
    __m512 best = _mm512_permutexvar_ps(even, top);
    best = max_or_nan16(best, _mm512_permutexvar_ps(odd, top));
    best = max_or_nan16(best, _mm512_permutexvar_ps(even, bottom));
    best = max_or_nan16(best, _mm512_permutexvar_ps(odd, bottom));
    _mm512_mask_storeu_ps(out->y + (size_t)o * out->ystride + (size_t)i * out->pooled_w,
                          (__mmask16)((1u << out->pooled_w) - 1), best);
}

/* acc[CO][NQ] = sum over c, tap of w(o, c, tap) * x[c][q + off[tap] + 16v], then stored as
 * `out` says. CO and NQ are constants in every instance below, so the accumulators stay in
 * registers (the unroll pragmas make sure of it: without them GCC keeps them on the stack and
 * the kernel runs at a third of the speed). */
__attribute__((target("avx512f"), always_inline)) static inline void
tile_body(const tile_out *out, const float *x, size_t plane, const float *wb, int n_c, int kk,
          const int *off, const int CO, const int NQ) {
    if (out->direct && out->residual) {
        /* the residual is read only at the end, from memory no earlier layer has just
         * touched: ask for it now, so that the sums below hide the wait */
        for (int o = 0; o < CO && o < out->rows; o++)
            for (int v = 0; v < NQ; v++) {
                const float *r = out->residual + (size_t)o * out->ystride + out->dst_at[out->qv + v];
                _mm_prefetch((const char *)r, _MM_HINT_T0);
                _mm_prefetch((const char *)(r + 15), _MM_HINT_T0);
            }
    }
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
    if (!out->direct) {
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++)
#pragma GCC unroll 3
            for (int v = 0; v < NQ; v++)
                _mm512_storeu_ps(out->y + o * out->ystride + 16 * v, acc[o][v]);
        return;
    }
    if (NQ == 2 && out->pooled_w) {
#pragma GCC unroll 8
        for (int o = 0; o < CO; o++)
            if (o < out->rows) store_pooled(out, o, acc[o][0], acc[o][NQ - 1]);
        return;
    }
#pragma GCC unroll 8
    for (int o = 0; o < CO; o++)
        if (o < out->rows)
#pragma GCC unroll 3
            for (int v = 0; v < NQ; v++) store_direct(out, o, v, acc[o][v]);
}

#define SW_TILE_INSTANCE(CO, NQ)                                                                   \
    __attribute__((target("avx512f"))) static void tile_##CO##x##NQ(                               \
        const tile_out *out, const float *x, size_t plane, const float *wb, int n_c, int kk,       \
        const int *off) {                                                                          \
        tile_body(out, x, plane, wb, n_c, kk, off, CO, NQ);                                        \
    }
SW_TILE_INSTANCE(8, 3)
SW_TILE_INSTANCE(8, 2)
SW_TILE_INSTANCE(4, 3)
SW_TILE_INSTANCE(4, 2)
#undef SW_TILE_INSTANCE

typedef void (*tile_fn)(const tile_out *, const float *, size_t, const float *, int, int,
                        const int *);

static tile_fn tile_for(int co, int nq) {
    if (co == 8) return nq == 3 ? tile_8x3 : tile_8x2;
    return nq == 3 ? tile_4x3 : tile_4x2;
}

/* Every column tile of block `blk` (output channels 8*blk on) of one sample: into the padded
 * output yp, or (`how` direct) into the sample's output yn, with the sample's residual rn
 * (NULL: none). */
static void run_block(float *yp, float *yn, const float *rn, const float *xp, const float *wt,
                      const tiled *t, const int *off, int blk, const tile_out *how) {
    const int o0 = blk * 8; /* every block but the last has 8 channels */
    const size_t step = 16 * (size_t)t->nq;
    tile_fn tile = tile_for(block_channels(t, o0), t->nq);
    tile_out out = *how;
    if (how->direct) {
        out.y = yn + (size_t)o0 * how->ystride;
        out.rows = t->o - o0;
        if (how->a) out.a = how->a + o0, out.b = how->b + o0;
        if (rn) out.residual = rn + (size_t)o0 * t->ho * t->wo;
    } else {
        out.ystride = t->cols_pad;
    }
    for (size_t q = 0; q < t->cols_pad; q += step) {
        if (how->direct)
            out.qv = (int)(q / 16);
        else
            out.y = yp + (size_t)o0 * t->cols_pad + q;
        tile(&out, xp + q, t->plane, wt + (size_t)o0 * t->c * t->kk, t->c, t->kk, off);
    }
}

/* Whether a tile is exactly two rows of the padded output (2 vectors, rows of 16: a 14-wide
 * image with a padding of 1), so that it can max-pool its own sums. */
static bool pool_in_tiles(const tiled *t) {
    return t->nq == 2 && t->wq == 16;
}

/* The direct stores' map (tile_out): per vector of the padded output, the lanes that are real
 * outputs and where the first of them goes in a channel's [Ho, Wo] plane (or, pooling in the
 * tiles, the pooled map's size); and the per-channel affine map of the forward's bias and
 * epilogue. In aux, aux_floats of it. */
static tile_out direct_map(float *aux, const tiled *t, const tiled_out *how) {
    const size_t nvec = t->cols_pad / 16;
    uint32_t *valid = (uint32_t *)(void *)aux;
    int32_t *dst_at = (int32_t *)(void *)(aux + nvec);
    for (size_t qi = 0; qi < nvec; qi++) {
        uint32_t m = 0;
        int32_t first = -1;
        for (int l = 0; l < 16; l++) {
            const size_t q = 16 * qi + (size_t)l;
            const int row = (int)(q / (size_t)t->wq), col = (int)(q % (size_t)t->wq);
            if (q >= t->cols || col >= t->wo) continue;
            m |= 1u << l;
            if (first < 0) first = row * t->wo + col;
        }
        valid[qi] = m;
        dst_at[qi] = first < 0 ? 0 : first;
    }
    tile_out out = {.direct = true,
                    .valid = valid,
                    .dst_at = dst_at,
                    .ystride = (size_t)t->ho * t->wo,
                    .accumulate = how->gradient && how->accumulate};
    if (pooled(how)) {
        out.pooled_rows = t->ho / 2, out.pooled_w = t->wo / 2;
        out.ystride = (size_t)out.pooled_rows * out.pooled_w;
    }
    if (!how->gradient) {
        float *a = aux + 2 * nvec, *b = a + t->o_pad;
        for (int o = 0; o < t->o; o++) sw_epilogue_coeffs(how->ep, how->bias, o, &a[o], &b[o]);
        out.a = a, out.b = b, out.relu = how->ep && how->ep->relu;
    }
    return out;
}

/* One row of n values, 16 at a time with the last ones masked: the rows here are 7 to 30
 * values, too short for a memcpy call or a compiler's vector loop (the baseline build's SSE2)
 * to pay. */
__attribute__((target("avx512f"), always_inline)) static inline void
copy_row16(float *dst, const float *src, int n) {
    for (int j = 0; j < n; j += 16) {
        const __mmask16 m = (__mmask16)(n - j >= 16 ? 0xFFFF : (1u << (n - j)) - 1);
        _mm512_mask_storeu_ps(dst + j, m, _mm512_maskz_loadu_ps(m, src + j));
    }
}

/* One input row of w values into the two column phases of a stride-2 padded row (phase planes
 * phase_floats apart): input column j is padded column j + pw, so the even j go to phase pw % 2
 * from index pw / 2 on and the odd j to the other phase from (pw + 1) / 2 on. 32 values at a
 * time, split with two permutes. */
__attribute__((target("avx512f"), always_inline)) static inline void
split_row2(float *row, size_t phase_floats, const float *in, int w, int pw) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    float *to_even = row + (size_t)(pw % 2) * phase_floats + pw / 2;
    float *to_odd = row + (size_t)((pw + 1) % 2) * phase_floats + (pw + 1) / 2;
    for (int j = 0; j < w; j += 32) {
        const int n = w - j < 32 ? w - j : 32;
        const __mmask16 lo = (__mmask16)(n >= 16 ? 0xFFFF : (1u << n) - 1);
        const __mmask16 hi = (__mmask16)(n <= 16 ? 0 : n == 32 ? 0xFFFF : (1u << (n - 16)) - 1);
        const __m512 v0 = _mm512_maskz_loadu_ps(lo, in + j),
                     v1 = _mm512_maskz_loadu_ps(hi, in + j + 16);
        const int n_even = (n + 1) / 2, n_odd = n / 2;
        _mm512_mask_storeu_ps(to_even + j / 2, (__mmask16)((1u << n_even) - 1),
                              _mm512_permutex2var_ps(v0, even, v1));
        _mm512_mask_storeu_ps(to_odd + j / 2, (__mmask16)((1u << n_odd) - 1),
                              _mm512_permutex2var_ps(v0, odd, v1));
    }
}

/* Channel c of one sample [c, h, w] into the interior of its padded plane (its phase planes
 * when strided); the borders (and the guard after the last plane) must be zero already. */
__attribute__((target("avx512f"))) static void pad_channel(float *xp, const float *x,
                                                           const tiled *t, int c) {
    const float *src = x + (size_t)c * t->h * t->w;
    float *chan = xp + (size_t)c * t->plane;
    if (t->sh == 1 && t->sw == 1) {
        float *dst = chan + (size_t)t->ph * t->wp + t->pw;
        for (int i = 0; i < t->h; i++)
            copy_row16(dst + (size_t)i * t->wp, src + (size_t)i * t->w, t->w);
        return;
    }
    const size_t phase_floats = (size_t)t->hq * t->wq;
    for (int i = 0; i < t->h; i++) {
        const int r = i + t->ph; /* padded row */
        float *row =
            chan + (size_t)(r % t->sh) * t->sw * phase_floats + (size_t)(r / t->sh) * t->wq;
        const float *in = src + (size_t)i * t->w;
        if (t->sw == 2) {
            split_row2(row, phase_floats, in, t->w, t->pw);
            continue;
        }
        /* phase b takes the padded columns b, b + sw, ...: input columns from j0 on, sw apart */
        for (int b = 0; b < t->sw; b++) {
            const int j0 = ((b - t->pw) % t->sw + t->sw) % t->sw;
            float *dst = row + (size_t)b * phase_floats + (size_t)((j0 + t->pw) / t->sw);
            for (int j = j0, k = 0; j < t->w; j += t->sw, k++) dst[k] = in[j];
        }
    }
}

/* Floats of one sample's output: [o, ho, wo], or [o, ho/2, wo/2] pooled. */
static size_t output_floats(const tiled *t, const tiled_out *how) {
    return pooled(how) ? (size_t)t->o * (t->ho / 2) * (t->wo / 2) : (size_t)t->o * t->ho * t->wo;
}

/* relu?(v * a + b) on 16 lanes; a NaN passes the ReLU, as the layer's clamp lets it. */
__attribute__((target("avx512f"))) static inline __m512 epilogue16(__m512 v, __m512 a, __m512 b,
                                                                   bool relu) {
    v = _mm512_fmadd_ps(v, a, b);
    if (relu) v = relu16(v);
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
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const int pw = t->wo / 2, ph = t->ho / 2;
    for (int i = 0; i < ph; i++) {
        const float *r0 = yp + (size_t)o * t->cols_pad + (size_t)(2 * i) * t->wq;
        const float *r1 = r0 + t->wq;
        float *dst = yn + ((size_t)o * ph + i) * pw;
        for (int j = 0; j < pw; j += 16) {
            const int n = pw - j < 16 ? pw - j : 16; /* windows, 2n values per row */
            const __mmask16 lo = (__mmask16)(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
            const __mmask16 hi = (__mmask16)(n <= 8    ? 0
                                             : n == 16 ? 0xFFFF
                                                       : (1u << (2 * n - 16)) - 1);
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

/* Below this many FLOPs a sample's convolution runs on one thread when there are fewer
 * samples than threads: the two barriers of sharing it cost more (a batch-1 CNN layer). */
#define SW_TILED_SHARE_MIN_FLOPS 16e6

/* out [n, o, ho, wo] from in [n, c, h, w]: samples in parallel when there are enough of them,
 * otherwise one sample at a time with its blocks of output channels shared out. */
static void run(float *out, const float *in, const float *w, bool flip, float *wt, float *aux,
                const tiled *t, const tiled_out *how, float *per_thread) {
    int off[SW_TILED_MAX_TAPS];
    for (int k = 0; k < t->kk; k++) off[k] = (int)tap_offset(t, k);
    const size_t in_sz = (size_t)t->c * t->h * t->w, out_sz = output_floats(t, how);
    const int blocks = (t->o_pad + 7) / 8;
    const bool by_sample = t->n >= sw_conv2d_threads() && t->n > 1;
    /* pooling needs two rows of the padded output at a time: in the tiles when a tile is two
     * rows, otherwise through yp */
    const tile_out store =
        pooled(how) && !pool_in_tiles(t) ? (tile_out){.direct = false} : direct_map(aux, t, how);
    const float *residual = how->ep && !how->gradient ? how->ep->residual : NULL;
    const double flops = 2.0 * t->o * t->c * t->kk * (double)t->cols;
#pragma omp parallel if (by_sample || flops >= SW_TILED_SHARE_MIN_FLOPS)
    {
        /* Barriers are few on purpose: under OMP_WAIT_POLICY=passive each one puts a thread to
         * sleep and wakes it through the kernel, which costs a small layer a few percent. A
         * thread zeroes its own buffers, the weights go into tile order (the one barrier), and
         * the samples' loop ends at the region's own join. */
        float *xp = per_thread + (size_t)sw_thread_id() * (t->xpad_floats + t->ypad_floats);
        if (by_sample) memset(xp, 0, t->xpad_floats * sizeof *xp);
#pragma omp for schedule(static)
        for (int blk = 0; blk < blocks; blk++) weights_in_tile_order(wt, w, t, flip, blk);
        if (by_sample) {
            float *yp = xp + t->xpad_floats;
#pragma omp for schedule(dynamic, 1) nowait
            for (int n = 0; n < t->n; n++) {
                for (int c = 0; c < t->c; c++) pad_channel(xp, in + (size_t)n * in_sz, t, c);
                float *yn = out + (size_t)n * out_sz;
                const float *rn = residual ? residual + (size_t)n * out_sz : NULL;
                for (int blk = 0; blk < blocks; blk++)
                    run_block(yp, yn, rn, xp, wt, t, off, blk, &store);
                for (int o = 0; !store.direct && o < t->o; o++)
                    unpad_channel_pooled(yn, yp, t, how, o);
            }
        } else {
            /* one shared padded image and output; each block's thread also writes out its
             * channels, so a sample costs two barriers */
            float *shared_x = per_thread, *shared_y = per_thread + t->xpad_floats;
#pragma omp single
            memset(shared_x, 0, t->xpad_floats * sizeof *shared_x);
            for (int n = 0; n < t->n; n++) {
#pragma omp for schedule(static)
                for (int c = 0; c < t->c; c++) pad_channel(shared_x, in + (size_t)n * in_sz, t, c);
#pragma omp for schedule(dynamic, 1)
                for (int blk = 0; blk < blocks; blk++) {
                    float *yn = out + (size_t)n * out_sz;
                    const float *rn = residual ? residual + (size_t)n * out_sz : NULL;
                    run_block(shared_y, yn, rn, shared_x, wt, t, off, blk, &store);
                    const int o_end = blk * 8 + 8 < t->o ? blk * 8 + 8 : t->o;
                    for (int o = blk * 8; !store.direct && o < o_end; o++)
                        unpad_channel_pooled(yn, shared_y, t, how, o);
                }
            }
        }
    }
}

void sw_conv_tiled_forward(float *y, const float *x, const float *w, const float *b,
                           const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch) {
    const tiled t = tiled_of(d, SW_CONV2D_FORWARD);
    const tiled_out how = {.bias = b, .ep = ep};
    run(y, x, w, false, scratch, scratch + t.wt_floats, &t, &how,
        scratch + t.wt_floats + t.aux_floats);
}

void sw_conv_tiled_backward_input(float *dx, const float *dy, const float *w,
                                  const sw_conv2d_desc *d, float *scratch, bool accumulate) {
    const tiled t = tiled_of(d, SW_CONV2D_BACKWARD_INPUT);
    const tiled_out how = {.gradient = true, .accumulate = accumulate};
    run(dx, dy, w, true, scratch, scratch + t.wt_floats, &t, &how,
        scratch + t.wt_floats + t.aux_floats);
}

#else /* no x86-64: sw_conv_tiled_suits is always false, so these are never reached */

void sw_conv_tiled_forward(float *y, const float *x, const float *w, const float *b,
                           const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch) {
    sw_conv_taps_forward(y, x, w, b, d, ep, scratch);
}

void sw_conv_tiled_backward_input(float *dx, const float *dy, const float *w,
                                  const sw_conv2d_desc *d, float *scratch, bool accumulate) {
    sw_conv_taps_backward_input(dx, dy, w, d, scratch, accumulate);
}

#endif
