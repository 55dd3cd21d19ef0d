/* conv.c - convolution as im2col + sgemm per sample, parallel over samples; naive oracles.
 * Dense stride-1 layers on wide enough images take the tap-wise kernels of conv_taps.c
 * instead, which need no im2col.
 *
 * Notation used in the comments: C input channels, O output channels, G groups, Cg = C/G,
 * Og = O/G, K = Cg*kh*kw (rows of one group's im2col matrix), P = Ho*Wo (its columns).
 *
 * Why per sample: one sample's matrices ([Og, K] x [K, P], a few hundred KB) are already the
 * sizes at which OpenBLAS runs near its peak on one core (measured 75-90 GFLOP/s here for the
 * zoo's layers, no better for one big batch-wide product), and a thread that owns whole samples
 * needs no synchronisation until the weight gradient is reduced. Slabs of output rows sized
 * for L2 were tried and measured slower: sgemm loses more on narrower matrices than the cache
 * saves.
 */
#include "conv.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "blas.h"
#include "conv_taps.h"
#include "conv_tiled.h"
#include "parallel.h"

int sw_conv2d_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* The direct (depthwise) kernels keep one double accumulator per tap on the stack. */
#define SW_CONV_DIRECT_MAX_TAPS 64

/* Sizes shared by every kernel (see the notation above). */
typedef struct dims {
    int n;                   /* batch */
    int c, o, g, cg, og;     /* channels in and out, groups, and per group */
    int k, p, hw;            /* im2col rows and columns, input pixels per channel */
    sw_conv_geom group_geom; /* the geometry of one group's input slice ([Cg, H, W]) */
    int pointwise;           /* 1x1, stride 1, no padding: x itself is the [K, P] matrix */
    int direct;              /* one input channel per group (depthwise): no im2col, no sgemm */
} dims;

static dims dims_of(const sw_conv2d_desc *d) {
    dims s;
    const sw_conv_geom *g = &d->geom;
    s.n = d->batch;
    s.c = g->channels;
    s.o = d->out_channels;
    s.g = d->groups;
    s.cg = s.c / s.g;
    s.og = s.o / s.g;
    s.k = s.cg * g->kernel_h * g->kernel_w;
    s.p = g->out_h * g->out_w;
    s.hw = g->height * g->width;
    s.group_geom = *g;
    s.group_geom.channels = s.cg;
    s.pointwise = sw_conv_geom_is_pointwise(g);
    s.direct = s.cg == 1 && s.og == 1 && s.g > 1 && !s.pointwise &&
               g->kernel_h * g->kernel_w <= SW_CONV_DIRECT_MAX_TAPS;
    return s;
}

/* Samples run in parallel only when there are enough of them to keep every thread busy; a
 * small batch (evaluation of one image) is better served by one multithreaded sgemm. */
static int parallel_over_samples(const dims *s) {
    return s->n >= sw_conv2d_threads() && s->n > 1;
}

/* The weight gradient sums the samples in a fixed number of chunks, each into its own partial
 * gradient, and adds the partials in chunk order. Threads take chunks as they come free (a
 * thread the OS preempts does not hold up the others), yet the result depends neither on which
 * thread ran which chunk nor on the thread count. More chunks than threads lets the dynamic
 * schedule balance; more than 8 would only cost memory and reduction time. */
#define SW_CONV_MAX_CHUNKS 8

int sw_conv2d_weight_chunks(int batch) {
    return batch < SW_CONV_MAX_CHUNKS ? (batch > 0 ? batch : 1) : SW_CONV_MAX_CHUNKS;
}

/* A small image's products are too thin to run well: forward's [Og, K] x [K, P] with P = 49
 * for 7x7, and the weight gradient's product of depth P, which rewrites the whole [Og, K]
 * partial for every sample. nb samples' columns side by side make one product of width (or
 * depth) nb*P, at the cost of scattering the output (forward) or gathering dy (weight
 * gradient). Measured on the ResNet's 128ch 7x7 weight gradient, batch 128, one thread:
 * 19.4 -> 15.6 ms (95 -> 118 GFLOP/s). At most a chunk's share of the batch
 * (SW_CONV_MAX_CHUNKS), so that threads have products to share, and never a function of the
 * thread count: the grouping changes the rounding, and results must not depend on it. */
#define SW_CONV_MIN_PRODUCT_DEPTH 512

static int samples_per_product(const dims *s) {
    if (s->pointwise || s->p * 2 >= SW_CONV_MIN_PRODUCT_DEPTH) return 1;
    int nb = (SW_CONV_MIN_PRODUCT_DEPTH + s->p - 1) / s->p;
    int share = s->n / SW_CONV_MAX_CHUNKS;
    if (nb > share) nb = share;
    return nb > 1 ? nb : 1;
}

/* A thread's scratch when nb samples share one product: their columns side by side and, when
 * nb > 1, their [Og, nb*P] side (dy_g for the weight gradient, the output for forward). */
static size_t side_by_side_floats(const dims *s, int nb) {
    if (s->pointwise) return 0;
    size_t cols = (size_t)s->k * (size_t)s->p * (size_t)nb;
    return nb > 1 ? cols + (size_t)s->og * (size_t)s->p * (size_t)nb : cols;
}

size_t sw_conv2d_scratch_floats(const sw_conv2d_desc *d, sw_conv2d_pass pass) {
    if (sw_conv_tiled_suits(d, pass)) return sw_conv_tiled_scratch_floats(d, pass);
    if (sw_conv_taps_suits(d)) return sw_conv_taps_scratch_floats(d, pass);
    dims s = dims_of(d);
    size_t t = (size_t)sw_conv2d_threads();
    size_t col = s.pointwise ? 0 : (size_t)s.k * (size_t)s.p;
    if (s.direct) return 0;
    switch (pass) {
    case SW_CONV2D_FORWARD:
        return t * side_by_side_floats(&s, samples_per_product(&s));
    case SW_CONV2D_BACKWARD_INPUT:
        return t * col;
    case SW_CONV2D_BACKWARD_PARAMS:
        /* columns per thread, a partial weight [O, K] and bias [O] gradient per chunk */
        return t * side_by_side_floats(&s, samples_per_product(&s)) +
               (size_t)sw_conv2d_weight_chunks(s.n) * ((size_t)s.o * (size_t)s.k + (size_t)s.o);
    }
    return 0;
}

/* ---- depthwise: one input and one output channel per group ------------------------------
 * Then a group's product is [1, kh*kw] x [kh*kw, P], a few taps per output: sgemm's call
 * overhead dominates (one call per sample and channel). These kernels loop over the taps
 * directly instead: for tap (ki, kj), output row oh reads input row oh*sh - ph + ki*dh, and the
 * columns that need no bounds check are one span (sw_conv_span), a multiply-add per value that
 * vectorises for stride 1. Measured 1.2-1.8x faster than im2col+sgemm on depthwise layers;
 * with a depth multiplier (Og > 1) sgemm's reuse of the columns across outputs wins again, so
 * those keep the general path. (Rows of 7-28 values leave these loops overhead-bound; a padded
 * flat layout would be the next step if depthwise models ever matter for speed.) Output
 * channel o reads input channel o / Og. */

/* The column spans [lo[kj], hi[kj]) that need no bounds check, one per kernel column. */
static void direct_spans(const sw_conv_geom *g, int *lo, int *hi) {
    for (int kj = 0; kj < g->kernel_w; kj++)
        sw_conv_span(g->out_w, g->stride_w, kj * g->dil_w - g->pad_w, g->width, &lo[kj], &hi[kj]);
}

/* yp [Ho, Wo] = bias + sum over taps of w_o[tap] * shifted xp [H, W]. */
static void direct_forward_plane(float *yp, const float *xp, const float *wo, float bias,
                                 const sw_conv_geom *g, const int *lo, const int *hi) {
    const int p = g->out_h * g->out_w, sw = g->stride_w;
    for (int i = 0; i < p; i++) yp[i] = bias;
    for (int oh = 0; oh < g->out_h; oh++) {
        float *yr = yp + (size_t)oh * g->out_w;
        for (int ki = 0; ki < g->kernel_h; ki++) {
            const int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
            if (ih < 0 || ih >= g->height) continue;
            const float *xr = xp + (size_t)ih * g->width;
            for (int kj = 0; kj < g->kernel_w; kj++) {
                const float wv = wo[ki * g->kernel_w + kj];
                const int off = kj * g->dil_w - g->pad_w; /* ow*sw + off >= 0 on the span */
                if (sw == 1) {
#pragma omp simd
                    for (int ow = lo[kj]; ow < hi[kj]; ow++) yr[ow] += wv * xr[ow + off];
                } else {
                    for (int ow = lo[kj]; ow < hi[kj]; ow++) yr[ow] += wv * xr[ow * sw + off];
                }
            }
        }
    }
}

/* dxp [H, W] += the transpose of direct_forward_plane applied to dyp [Ho, Wo]. */
static void direct_backward_input_plane(float *dxp, const float *dyp, const float *wo,
                                        const sw_conv_geom *g, const int *lo, const int *hi) {
    const int sw = g->stride_w;
    for (int oh = 0; oh < g->out_h; oh++) {
        const float *dyr = dyp + (size_t)oh * g->out_w;
        for (int ki = 0; ki < g->kernel_h; ki++) {
            const int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
            if (ih < 0 || ih >= g->height) continue;
            float *dxr = dxp + (size_t)ih * g->width;
            for (int kj = 0; kj < g->kernel_w; kj++) {
                const float wv = wo[ki * g->kernel_w + kj];
                const int off = kj * g->dil_w - g->pad_w;
                if (sw == 1) {
#pragma omp simd
                    for (int ow = lo[kj]; ow < hi[kj]; ow++) dxr[ow + off] += wv * dyr[ow];
                } else {
                    for (int ow = lo[kj]; ow < hi[kj]; ow++) dxr[ow * sw + off] += wv * dyr[ow];
                }
            }
        }
    }
}

/* acc[tap] += sum over the plane of dyp * (the input the tap reads); acc[kh*kw] += sum dyp. */
static void direct_backward_params_plane(double *acc, const float *dyp, const float *xp,
                                         const sw_conv_geom *g, const int *lo, const int *hi) {
    const int taps = g->kernel_h * g->kernel_w, p = g->out_h * g->out_w, sw = g->stride_w;
    float bsum = 0.0f;
#pragma omp simd reduction(+ : bsum)
    for (int i = 0; i < p; i++) bsum += dyp[i];
    acc[taps] += bsum;
    for (int ki = 0; ki < g->kernel_h; ki++) {
        for (int kj = 0; kj < g->kernel_w; kj++) {
            const int off = kj * g->dil_w - g->pad_w;
            float t = 0.0f; /* one plane in float, planes in double */
            for (int oh = 0; oh < g->out_h; oh++) {
                const int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                if (ih < 0 || ih >= g->height) continue;
                const float *xr = xp + (size_t)ih * g->width;
                const float *dyr = dyp + (size_t)oh * g->out_w;
                if (sw == 1) {
#pragma omp simd reduction(+ : t)
                    for (int ow = lo[kj]; ow < hi[kj]; ow++) t += dyr[ow] * xr[ow + off];
                } else {
                    for (int ow = lo[kj]; ow < hi[kj]; ow++) t += dyr[ow] * xr[ow * sw + off];
                }
            }
            acc[ki * g->kernel_w + kj] += t;
        }
    }
}

static void direct_forward(float *y, const float *x, const float *w, const float *b,
                           const sw_epilogue *ep, const dims *s, const sw_conv_geom *g) {
    const long planes = (long)s->n * s->o;
    const int taps = g->kernel_h * g->kernel_w;
    int lo[SW_CONV_DIRECT_MAX_TAPS], hi[SW_CONV_DIRECT_MAX_TAPS];
    direct_spans(g, lo, hi);
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1)
    for (long pl = 0; pl < planes; pl++) {
        const int n = (int)(pl / s->o), o = (int)(pl % s->o), ci = o / s->og;
        direct_forward_plane(y + (size_t)pl * s->p, x + ((size_t)n * s->c + ci) * s->hw,
                             w + (size_t)o * taps, b ? b[o] : 0.0f, g, lo, hi);
        if (ep) /* the plane already holds its bias */
            sw_epilogue_apply(y + (size_t)pl * s->p, y + (size_t)pl * s->p, (size_t)s->p,
                              ep->scale ? ep->scale[o] : 1.0f, ep->shift ? ep->shift[o] : 0.0f,
                              ep->relu);
    }
}

static void direct_backward_input(float *dx, const float *dy, const float *w, const dims *s,
                                  const sw_conv_geom *g, bool accumulate) {
    /* one input plane per iteration, gathering its Og output planes: no two threads write the
     * same input pixel */
    const long planes = (long)s->n * s->c;
    const int taps = g->kernel_h * g->kernel_w;
    int lo[SW_CONV_DIRECT_MAX_TAPS], hi[SW_CONV_DIRECT_MAX_TAPS];
    direct_spans(g, lo, hi);
#pragma omp parallel for schedule(dynamic, 4) if (planes > 1)
    for (long pl = 0; pl < planes; pl++) {
        const int n = (int)(pl / s->c), ci = (int)(pl % s->c);
        if (!accumulate) memset(dx + (size_t)pl * s->hw, 0, (size_t)s->hw * sizeof *dx);
        for (int j = 0; j < s->og; j++) {
            const int o = ci * s->og + j;
            direct_backward_input_plane(dx + (size_t)pl * s->hw, dy + ((size_t)n * s->o + o) * s->p,
                                        w + (size_t)o * taps, g, lo, hi);
        }
    }
}

static void direct_backward_params(float *dw, float *db, const float *dy, const float *x,
                                   const dims *s, const sw_conv_geom *g) {
    /* one output channel per iteration, over all samples: each weight has one owner, so the
     * sums need no partial buffers and come out the same for any thread count */
    const int taps = g->kernel_h * g->kernel_w;
    int lo[SW_CONV_DIRECT_MAX_TAPS], hi[SW_CONV_DIRECT_MAX_TAPS];
    direct_spans(g, lo, hi);
#pragma omp parallel for schedule(dynamic, 1) if (s->o > 1)
    for (int o = 0; o < s->o; o++) {
        double acc[SW_CONV_DIRECT_MAX_TAPS + 1] = {0};
        const int ci = o / s->og;
        for (int n = 0; n < s->n; n++)
            direct_backward_params_plane(acc, dy + ((size_t)n * s->o + o) * s->p,
                                         x + ((size_t)n * s->c + ci) * s->hw, g, lo, hi);
        if (dw)
            for (int t = 0; t < taps; t++) dw[(size_t)o * taps + t] += (float)acc[t];
        if (db) db[o] += (float)acc[taps];
    }
}

/* Forward of samples n0.. (up to nb of them, see samples_per_product) as one product
 * per group over their columns side by side; the [Og, m*P] result goes to each sample's
 * output with the bias and epilogue on the way. */
static void forward_side_by_side(float *y, const float *x, const float *w, const float *b,
                                 const sw_epilogue *ep, const dims *s, int n0, float *col) {
    const int nb = samples_per_product(s);
    const int m = s->n - n0 < nb ? s->n - n0 : nb;
    const size_t ld = (size_t)m * s->p;
    float *y_side = col + (size_t)s->k * s->p * nb;
    for (int g = 0; g < s->g; g++) {
        for (int t = 0; t < m; t++)
            sw_im2col_ld(x + ((size_t)(n0 + t) * s->c + (size_t)g * s->cg) * s->hw, &s->group_geom,
                         col + (size_t)t * s->p, ld);
        sw_sgemm(false, false, s->og, (int)ld, s->k, 1.0f, w + (size_t)g * s->og * s->k, s->k, col,
                 (int)ld, 0.0f, y_side, (int)ld);
        for (int o = 0; o < s->og; o++) {
            const int oc = g * s->og + o;
            float a, c;
            sw_epilogue_coeffs(ep, b, oc, &a, &c);
            for (int t = 0; t < m; t++)
                sw_epilogue_apply(y + ((size_t)(n0 + t) * s->o + oc) * s->p,
                                  y_side + o * ld + (size_t)t * s->p, (size_t)s->p, a, c,
                                  ep && ep->relu);
        }
    }
}

void sw_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                       const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch) {
    if (sw_conv_tiled_suits(d, SW_CONV2D_FORWARD)) {
        sw_conv_tiled_forward(y, x, w, b, d, ep, scratch);
        return;
    }
    if (sw_conv_taps_suits(d)) {
        sw_conv_taps_forward(y, x, w, b, d, ep, scratch);
        return;
    }
    const dims s = dims_of(d);
    if (s.direct) {
        direct_forward(y, x, w, b, ep, &s, &d->geom);
        return;
    }
    /* Each thread owns one column buffer of the scratch, indexed by its id. Samples (or groups
     * of nb samples that share one product) are handed out one at a time (dynamic): they cost
     * the same, but a thread the OS preempts on a busy machine then holds nothing up. Every
     * sample is computed the same way wherever it runs, so the output does not depend on the
     * schedule. */
    const int nb = samples_per_product(&s);
    const int n_items = (s.n + nb - 1) / nb;
    const size_t col_size = side_by_side_floats(&s, nb);
#pragma omp parallel if (parallel_over_samples(&s))
    {
        float *col = s.pointwise ? NULL : scratch + (size_t)sw_thread_id() * col_size;
#pragma omp for schedule(dynamic, 1)
        for (int item = 0; item < n_items; item++) {
            if (nb > 1) {
                forward_side_by_side(y, x, w, b, ep, &s, item * nb, col);
                continue;
            }
            const int n = item;
            for (int g = 0; g < s.g; g++) {
                const float *xg = x + ((size_t)n * s.c + (size_t)g * s.cg) * s.hw;
                const float *wg = w + (size_t)g * s.og * s.k;
                float *yg = y + ((size_t)n * s.o + (size_t)g * s.og) * s.p;
                if (s.pointwise) {
                    /* the image already is the [K, P] matrix: y_g [Og, P] = w_g [Og, K] x_g */
                    sw_sgemm(false, false, s.og, s.p, s.k, 1.0f, wg, s.k, xg, s.p, 0.0f, yg, s.p);
                    continue;
                }
                /* y_g [Og, P] = w_g [Og, K] * col [K, P]. (Slabs of rows sized to stay in L2
                 * measured slower here: sgemm loses more on the narrower matrices.) */
                sw_im2col(xg, &s.group_geom, col);
                sw_sgemm(false, false, s.og, s.p, s.k, 1.0f, wg, s.k, col, s.p, 0.0f, yg, s.p);
            }
            if (b || ep) {
                /* the sample's output is still in cache: bias and epilogue in one pass */
                for (int o = 0; o < s.o; o++) {
                    float *yo = y + ((size_t)n * s.o + o) * s.p;
                    float a, c;
                    sw_epilogue_coeffs(ep, b, o, &a, &c);
                    sw_epilogue_apply(yo, yo, (size_t)s.p, a, c, ep && ep->relu);
                }
            }
        }
    }
}

void sw_conv2d_backward_input(float *dx, const float *dy, const float *w, const sw_conv2d_desc *d,
                              float *scratch, bool accumulate) {
    if (sw_conv_tiled_suits(d, SW_CONV2D_BACKWARD_INPUT)) {
        sw_conv_tiled_backward_input(dx, dy, w, d, scratch, accumulate);
        return;
    }
    if (sw_conv_taps_suits(d)) {
        sw_conv_taps_backward_input(dx, dy, w, d, scratch, accumulate);
        return;
    }
    const dims s = dims_of(d);
    if (s.direct) {
        direct_backward_input(dx, dy, w, &s, &d->geom, accumulate);
        return;
    }
    /* The transpose of forward: the column gradient of a sample is w_g^T dy_g, and col2im adds
     * each entry back onto the pixel it was read from (overlapping windows sum). Samples write
     * disjoint parts of dx, so threads never share an output element. */
    const size_t col_size = (size_t)s.k * (size_t)s.p;
#pragma omp parallel if (parallel_over_samples(&s))
    {
        float *dcol = s.pointwise ? NULL : scratch + (size_t)sw_thread_id() * col_size;
#pragma omp for schedule(dynamic, 1)
        for (int n = 0; n < s.n; n++) {
            for (int g = 0; g < s.g; g++) {
                float *dxg = dx + ((size_t)n * s.c + (size_t)g * s.cg) * s.hw;
                const float *dyg = dy + ((size_t)n * s.o + (size_t)g * s.og) * s.p;
                const float *wg = w + (size_t)g * s.og * s.k;
                if (s.pointwise) {
                    /* dx_g [Cg, HW] (+)= w_g^T [Cg, Og] * dy_g [Og, HW] */
                    sw_sgemm(true, false, s.k, s.p, s.og, 1.0f, wg, s.k, dyg, s.p,
                             accumulate ? 1.0f : 0.0f, dxg, s.p);
                    continue;
                }
                /* dcol [K, P] = w_g^T [K, Og] * dy_g [Og, P], then folded onto dx (zeroed first,
                 * while it is about to be in cache anyway, when it holds nothing yet) */
                sw_sgemm(true, false, s.k, s.p, s.og, 1.0f, wg, s.k, dyg, s.p, 0.0f, dcol, s.p);
                if (!accumulate) memset(dxg, 0, (size_t)s.cg * s.hw * sizeof *dxg);
                sw_col2im(dcol, &s.group_geom, dxg);
            }
        }
    }
}

void sw_conv2d_backward_params(float *dw, float *db, const float *dy, const float *x,
                               const sw_conv2d_desc *d, float *scratch) {
    if (sw_conv_taps_suits(d)) {
        sw_conv_taps_backward_params(dw, db, dy, x, d, scratch);
        return;
    }
    const dims s = dims_of(d);
    if (s.direct) {
        direct_backward_params(dw, db, dy, x, &s, &d->geom);
        return;
    }
    const int nb = samples_per_product(&s);
    const size_t col_size = side_by_side_floats(&s, nb);
    const size_t dw_size = (size_t)s.o * (size_t)s.k;
    const size_t part_size = dw_size + (size_t)s.o; /* one partial [O, K] + [O] */
    const int chunks = sw_conv2d_weight_chunks(s.n);
    float *partials = scratch + (size_t)sw_conv2d_threads() * col_size;
#pragma omp parallel if (parallel_over_samples(&s))
    {
        float *col = scratch + (size_t)sw_thread_id() * col_size;
        float *dy_side = col + (size_t)s.k * s.p * nb; /* nb > 1: their dy_g side by side */
#pragma omp for schedule(dynamic, 1)
        for (int ch = 0; ch < chunks; ch++) {
            float *dw_c = partials + (size_t)ch * part_size, *db_c = dw_c + dw_size;
            memset(dw_c, 0, part_size * sizeof(float));
            const int n0 = (int)((long)s.n * ch / chunks),
                      n1 = (int)((long)s.n * (ch + 1) / chunks);
            for (int n = n0; n < n1; n += nb) {
                const int m = n1 - n < nb ? n1 - n : nb; /* samples in this product */
                const size_t ld = (size_t)m * s.p;
                for (int g = 0; g < s.g; g++) {
                    const float *dyg = dy + ((size_t)n * s.o + (size_t)g * s.og) * s.p;
                    float *dwg = dw_c + (size_t)g * s.og * s.k;
                    if (dw && nb == 1) {
                        const float *xg = x + ((size_t)n * s.c + (size_t)g * s.cg) * s.hw;
                        const float *cols = xg; /* pointwise: the image is the [K, P] matrix */
                        if (!s.pointwise) {
                            sw_im2col(xg, &s.group_geom, col);
                            cols = col;
                        }
                        /* dw_g [Og, K] += dy_g [Og, P] * cols^T [P, K] */
                        sw_sgemm(false, true, s.og, s.k, s.p, 1.0f, dyg, s.p, cols, s.p, 1.0f, dwg,
                                 s.k);
                    } else if (dw) {
                        /* dw_g [Og, K] += [dy_g of m samples] [Og, m*P] * [their cols]^T */
                        for (int t = 0; t < m; t++) {
                            const float *xt = x + ((size_t)(n + t) * s.c + (size_t)g * s.cg) * s.hw;
                            const float *dyt = dyg + (size_t)t * s.o * s.p;
                            sw_im2col_ld(xt, &s.group_geom, col + (size_t)t * s.p, ld);
                            for (int o = 0; o < s.og; o++)
                                memcpy(dy_side + o * ld + (size_t)t * s.p, dyt + (size_t)o * s.p,
                                       (size_t)s.p * sizeof(float));
                        }
                        sw_sgemm(false, true, s.og, s.k, (int)ld, 1.0f, dy_side, (int)ld, col,
                                 (int)ld, 1.0f, dwg, s.k);
                    }
                    if (db) {
                        for (int t = 0; t < m; t++)
                            for (int o = 0; o < s.og; o++) {
                                const float *row = dyg + (size_t)t * s.o * s.p + (size_t)o * s.p;
                                float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                                for (int i = 0; i < s.p; i++) acc += row[i];
                                db_c[g * s.og + o] += acc;
                            }
                    }
                }
            }
        }
        /* implicit barrier: every partial is complete; add them in chunk order */
        if (dw) {
#pragma omp for schedule(static)
            for (size_t i = 0; i < dw_size; i++) {
                float acc = 0.0f;
                for (int ch = 0; ch < chunks; ch++) acc += partials[(size_t)ch * part_size + i];
                dw[i] += acc;
            }
        }
        if (db) {
#pragma omp for schedule(static)
            for (int o = 0; o < s.o; o++) {
                float acc = 0.0f;
                for (int ch = 0; ch < chunks; ch++)
                    acc += partials[(size_t)ch * part_size + dw_size + (size_t)o];
                db[o] += acc;
            }
        }
    }
}

/* ---- naive oracles ----------------------------------------------------------------------
 * The definition, term by term, in double: for every output (n, o, oh, ow) and every tap
 * (ci, ki, kj) of its group, one multiply-add when the tap lands inside the image. Slow
 * (no reuse at all) and obviously right, which is what an oracle is for. */

/* x[n, c, ih, iw] for the input pixel under kernel tap (ki, kj) of output (oh, ow), or -1 in
 * the padding. */
static long tap_index(const sw_conv_geom *g, int n, int c, int oh, int ow, int ki, int kj) {
    int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
    int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
    if (ih < 0 || ih >= g->height || iw < 0 || iw >= g->width) return -1;
    return (((long)n * g->channels + c) * g->height + ih) * g->width + iw;
}

void sw_conv2d_forward_naive(float *y, const float *x, const float *w, const float *b,
                             const sw_conv2d_desc *d) {
    const dims s = dims_of(d);
    const sw_conv_geom *g = &d->geom;
    for (int n = 0; n < s.n; n++)
        for (int o = 0; o < s.o; o++) {
            int grp = o / s.og;
            for (int oh = 0; oh < g->out_h; oh++)
                for (int ow = 0; ow < g->out_w; ow++) {
                    double acc = b ? b[o] : 0.0;
                    for (int ci = 0; ci < s.cg; ci++)
                        for (int ki = 0; ki < g->kernel_h; ki++)
                            for (int kj = 0; kj < g->kernel_w; kj++) {
                                long xi = tap_index(g, n, grp * s.cg + ci, oh, ow, ki, kj);
                                if (xi < 0) continue;
                                double wv =
                                    w[((o * s.cg + ci) * g->kernel_h + ki) * g->kernel_w + kj];
                                acc += wv * x[xi];
                            }
                    y[(((size_t)n * s.o + o) * g->out_h + oh) * g->out_w + ow] = (float)acc;
                }
        }
}

void sw_conv2d_backward_input_naive(float *dx, const float *dy, const float *w,
                                    const sw_conv2d_desc *d) {
    const dims s = dims_of(d);
    const sw_conv_geom *g = &d->geom;
    for (int n = 0; n < s.n; n++)
        for (int o = 0; o < s.o; o++) {
            int grp = o / s.og;
            for (int oh = 0; oh < g->out_h; oh++)
                for (int ow = 0; ow < g->out_w; ow++) {
                    float gy = dy[(((size_t)n * s.o + o) * g->out_h + oh) * g->out_w + ow];
                    for (int ci = 0; ci < s.cg; ci++)
                        for (int ki = 0; ki < g->kernel_h; ki++)
                            for (int kj = 0; kj < g->kernel_w; kj++) {
                                long xi = tap_index(g, n, grp * s.cg + ci, oh, ow, ki, kj);
                                if (xi < 0) continue;
                                dx[xi] +=
                                    gy * w[((o * s.cg + ci) * g->kernel_h + ki) * g->kernel_w + kj];
                            }
                }
        }
}

void sw_conv2d_backward_params_naive(float *dw, float *db, const float *dy, const float *x,
                                     const sw_conv2d_desc *d) {
    const dims s = dims_of(d);
    const sw_conv_geom *g = &d->geom;
    for (int o = 0; o < s.o; o++) {
        int grp = o / s.og;
        double bias_acc = 0.0;
        for (int ci = 0; ci < s.cg; ci++)
            for (int ki = 0; ki < g->kernel_h; ki++)
                for (int kj = 0; kj < g->kernel_w; kj++) {
                    double acc = 0.0;
                    for (int n = 0; n < s.n; n++)
                        for (int oh = 0; oh < g->out_h; oh++)
                            for (int ow = 0; ow < g->out_w; ow++) {
                                long xi = tap_index(g, n, grp * s.cg + ci, oh, ow, ki, kj);
                                if (xi < 0) continue;
                                acc +=
                                    (double)dy[(((size_t)n * s.o + o) * g->out_h + oh) * g->out_w +
                                               ow] *
                                    x[xi];
                            }
                    if (dw)
                        dw[((o * s.cg + ci) * g->kernel_h + ki) * g->kernel_w + kj] += (float)acc;
                }
        for (int n = 0; n < s.n; n++)
            for (int i = 0; i < s.p; i++) bias_acc += dy[((size_t)n * s.o + o) * s.p + i];
        if (db) db[o] += (float)bias_acc;
    }
}
