/* im2col.c - patch unfolding for convolutions (fast row-wise version and the naive oracle).
 *
 * Layout of col: row r = (c*kh + ki)*kw + kj holds, for every output position (oh, ow) in
 * row-major order, the input value under kernel tap (ki, kj) of channel c. So one row is a
 * shifted (and, with stride, subsampled) copy of the channel, and the fast version fills it
 * output row by output row: zeros where the tap falls in the padding, a straight copy (stride
 * 1) or a strided gather in between. The valid span of each output row is computed once per
 * tap instead of testing every element.
 */
#include "im2col.h"

#include <string.h>

/* PyTorch's output size: the number of window positions whose dilated extent fits in the
 * padded input. A negative span means not even one position fits. */
int sw_conv_geom_resolve(sw_conv_geom *g) {
    int eff_h = g->dil_h * (g->kernel_h - 1) + 1; /* extent of the dilated window */
    int eff_w = g->dil_w * (g->kernel_w - 1) + 1;
    int span_h = g->height + 2 * g->pad_h - eff_h;
    int span_w = g->width + 2 * g->pad_w - eff_w;
    if (span_h < 0 || span_w < 0 || g->stride_h < 1 || g->stride_w < 1) {
        g->out_h = g->out_w = 0;
        return 0;
    }
    g->out_h = span_h / g->stride_h + 1;
    g->out_w = span_w / g->stride_w + 1;
    return 1;
}

int sw_conv_geom_is_pointwise(const sw_conv_geom *g) {
    return g->kernel_h == 1 && g->kernel_w == 1 && g->stride_h == 1 && g->stride_w == 1 &&
           g->pad_h == 0 && g->pad_w == 0;
}

void sw_conv_span(int out_len, int stride, int offset, int size, int *lo, int *hi) {
    /* i = o*stride + offset >= 0  <=>  o >= ceil(-offset / stride) */
    int a = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
    /* i <= size - 1  <=>  o <= floor((size - 1 - offset) / stride) */
    int top = size - 1 - offset;
    int b = top < 0 ? 0 : top / stride + 1;
    if (a > out_len) a = out_len;
    if (b > out_len) b = out_len;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

/* im2col for one tap (ki, kj) when stride is 1 and out_w == width ("same" width, e.g. 3x3
 * with padding 1): output row oh reads input row oh + dh at columns ow + dw, so the whole
 * block of output rows that fall inside the image is the input plane shifted by dh*W + dw,
 * read flat. One long vectorised copy replaces out_h short ones (rows are only 7 to 28 values
 * in the zoo's models, where per-row overhead dominated). The entries whose column wrapped
 * around a row edge (ow + dw outside [0, W)) are padding and are zeroed afterwards; reads are
 * clipped to the plane, so nothing outside it is touched. */
static void im2col_tap_flat(const float *xc, const sw_conv_geom *g, int dh, int dw, float *row) {
    const int w = g->width, out_h = g->out_h;
    const long plane = (long)g->height * w;
    int oh_lo = dh < 0 ? -dh : 0; /* first output row whose input row is >= 0 */
    int oh_hi = g->height - dh;   /* one past the last whose input row is < H */
    if (oh_lo > out_h) oh_lo = out_h;
    if (oh_hi > out_h) oh_hi = out_h;
    if (oh_hi < oh_lo) oh_hi = oh_lo;
    memset(row, 0, (size_t)oh_lo * w * sizeof *row);
    memset(row + (size_t)oh_hi * w, 0, (size_t)(out_h - oh_hi) * w * sizeof *row);
    float *dst = row + (size_t)oh_lo * w;
    const long start = (long)(oh_lo + dh) * w + dw; /* flat source of dst[0] */
    const long n = (long)(oh_hi - oh_lo) * w;
    long i0 = start < 0 ? -start : 0;
    long i1 = start + n > plane ? plane - start : n;
    if (i0 > n) i0 = n;
    if (i1 < i0) i1 = i0;
    for (long i = 0; i < i0; i++) dst[i] = 0.0f;
    const float *src = xc + (start + i0); /* in the plane: start + i0 >= 0 */
#pragma omp simd
    for (long i = i0; i < i1; i++) dst[i] = src[i - i0];
    for (long i = i1; i < n; i++) dst[i] = 0.0f;
    /* the wrapped columns: the first -dw of every row, or the last dw */
    int z0 = dw < 0 ? 0 : w - dw, z1 = dw < 0 ? -dw : w;
    if (z0 < 0) z0 = 0;
    if (z1 > w) z1 = w;
    if (dw != 0)
        for (int r = 0; r < oh_hi - oh_lo; r++)
            for (int ow = z0; ow < z1; ow++) dst[(size_t)r * w + ow] = 0.0f;
}

void sw_im2col(const float *x, const sw_conv_geom *g, float *col) {
    sw_im2col_ld(x, g, col, (size_t)g->out_h * g->out_w);
}

void sw_im2col_ld(const float *x, const sw_conv_geom *g, float *col, size_t ld) {
    const int flat = g->stride_h == 1 && g->stride_w == 1 && g->out_w == g->width;
    for (int c = 0; c < g->channels; c++) {
        const float *xc = x + (size_t)c * g->height * g->width;
        for (int ki = 0; ki < g->kernel_h; ki++) {
            for (int kj = 0; kj < g->kernel_w; kj++) {
                float *row = col + ((size_t)(c * g->kernel_h + ki) * g->kernel_w + kj) * ld;
                int off_w = kj * g->dil_w - g->pad_w;
                if (flat) {
                    im2col_tap_flat(xc, g, ki * g->dil_h - g->pad_h, off_w, row);
                    continue;
                }
                int lo, hi;
                sw_conv_span(g->out_w, g->stride_w, off_w, g->width, &lo, &hi);
                for (int oh = 0; oh < g->out_h; oh++) {
                    float *dst = row + (size_t)oh * g->out_w;
                    int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                    if (ih < 0 || ih >= g->height) {
                        memset(dst, 0, (size_t)g->out_w * sizeof *dst);
                        continue;
                    }
                    /* src points at the input of the first valid column, never before xc */
                    const float *src = xc + (size_t)ih * g->width + (off_w + lo * g->stride_w);
                    const int sw = g->stride_w;
                    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    /* Rows are short (tens of values), so a vectorised loop beats a memcpy
                     * call; omp simd because -O2 will not vectorise a loop whose pointers might
                     * alias without being told. */
                    if (sw == 1) {
#pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow - lo];
                    } else {
#pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[ow] = src[(ow - lo) * sw];
                    }
                    for (int ow = hi; ow < g->out_w; ow++) dst[ow] = 0.0f;
                }
            }
        }
    }
}

/* The definition, one bounds check per element. */
void sw_im2col_naive(const float *x, const sw_conv_geom *g, float *col) {
    size_t r = 0;
    for (int c = 0; c < g->channels; c++)
        for (int ki = 0; ki < g->kernel_h; ki++)
            for (int kj = 0; kj < g->kernel_w; kj++)
                for (int oh = 0; oh < g->out_h; oh++)
                    for (int ow = 0; ow < g->out_w; ow++) {
                        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                        int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
                        int inside = ih >= 0 && ih < g->height && iw >= 0 && iw < g->width;
                        col[r++] = inside ? x[((size_t)c * g->height + ih) * g->width + iw] : 0.0f;
                    }
}

/* The adjoint of sw_im2col, walking col in the same order: every entry read from x at
 * (c, ih, iw) is added back there. Taps of neighbouring windows overlap, so a pixel receives
 * up to kh*kw contributions; within one channel they land in a plane of H*W floats that stays
 * in L1 while its kh*kw rows of col stream past. */
void sw_col2im(const float *col, const sw_conv_geom *g, float *dx) {
    const int hw_out = g->out_h * g->out_w;
    for (int c = 0; c < g->channels; c++) {
        float *dxc = dx + (size_t)c * g->height * g->width;
        for (int ki = 0; ki < g->kernel_h; ki++) {
            for (int kj = 0; kj < g->kernel_w; kj++) {
                const float *row =
                    col + ((size_t)(c * g->kernel_h + ki) * g->kernel_w + kj) * hw_out;
                int off_w = kj * g->dil_w - g->pad_w;
                int lo, hi;
                sw_conv_span(g->out_w, g->stride_w, off_w, g->width, &lo, &hi);
                for (int oh = 0; oh < g->out_h; oh++) {
                    int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                    if (ih < 0 || ih >= g->height) continue; /* padding takes no gradient */
                    const float *src = row + (size_t)oh * g->out_w;
                    float *dst = dxc + (size_t)ih * g->width + (off_w + lo * g->stride_w);
                    const int sw = g->stride_w;
                    if (sw == 1) {
#pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[ow - lo] += src[ow];
                    } else {
                        /* strided scatter: distinct targets, but no gain from vectors */
                        for (int ow = lo; ow < hi; ow++) dst[(ow - lo) * sw] += src[ow];
                    }
                }
            }
        }
    }
}

/* The adjoint by definition: the same index arithmetic as sw_im2col_naive, with += instead
 * of =. */
void sw_col2im_naive(const float *col, const sw_conv_geom *g, float *dx) {
    size_t r = 0;
    for (int c = 0; c < g->channels; c++)
        for (int ki = 0; ki < g->kernel_h; ki++)
            for (int kj = 0; kj < g->kernel_w; kj++)
                for (int oh = 0; oh < g->out_h; oh++)
                    for (int ow = 0; ow < g->out_w; ow++, r++) {
                        int ih = oh * g->stride_h - g->pad_h + ki * g->dil_h;
                        int iw = ow * g->stride_w - g->pad_w + kj * g->dil_w;
                        if (ih >= 0 && ih < g->height && iw >= 0 && iw < g->width)
                            dx[((size_t)c * g->height + ih) * g->width + iw] += col[r];
                    }
}
