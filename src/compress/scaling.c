/* scaling.c - block shrink/expand over tensors of up to 4 dims (reference §1.4).
 *
 * NNI reshapes to [d0/k0, k0, d1/k1, k1, ...], permutes the k axes to the end and reduces the
 * last axis. Here one loop nest over the tensor computes, for every element, its block index
 * (row-major over the grid) and its index inside the block (row-major over the kernel dims) -
 * the same two numbers the permutation produces - so shrink, gather and expand are each a single
 * pass without temporary copies. */
#include "scaling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sw_scaling sw_scaling_make(int n, const int *kernel, sw_scaling_pad pad_mode, int pad_value) {
    SW_ASSERT(n >= 0 && n <= SW_MAX_DIMS);
    sw_scaling s = {.n = n, .pad_mode = pad_mode, .pad_value = pad_value};
    for (int i = 0; i < n; i++) s.kernel[i] = kernel[i];
    return s;
}

/* Front padding aligns the kernel with the trailing dims ([4, 4] tiles the last two); back
 * padding with the leading dims ([1] then -1s: one block per output channel). */
sw_status sw_scaling_kernel_for(const sw_scaling *s, int ndim, int kernel[SW_MAX_DIMS]) {
    if (s->n > ndim)
        return SW_FAIL(SW_ERR_SHAPE, "a block kernel of %d entries does not fit a %d-d tensor",
                       s->n, ndim);
    int pad = ndim - s->n;
    for (int d = 0; d < ndim; d++) {
        if (s->pad_mode == SW_SCALING_PAD_FRONT)
            kernel[d] = d < pad ? s->pad_value : s->kernel[d - pad];
        else
            kernel[d] = d < s->n ? s->kernel[d] : s->pad_value;
    }
    return SW_OK;
}

/* Per-dim block sizes (a FULL entry becomes the dim size) for `shape`, checked. */
static sw_status block_sizes(const sw_scaling *s, const sw_shape *shape, int blk[SW_MAX_DIMS]) {
    int kernel[SW_MAX_DIMS];
    SW_TRY(sw_scaling_kernel_for(s, shape->ndim, kernel));
    for (int d = 0; d < shape->ndim; d++) {
        int k = kernel[d] == SW_SCALING_FULL ? shape->dims[d] : kernel[d];
        if (k <= 0 || shape->dims[d] % k != 0) {
            char buf[64];
            return SW_FAIL(SW_ERR_SHAPE,
                           "block size %d does not divide dim %d of a tensor of shape %s",
                           kernel[d], d, sw_shape_format(shape, buf, sizeof buf));
        }
        blk[d] = k;
    }
    return SW_OK;
}

sw_status sw_scaling_grid(const sw_scaling *s, const sw_shape *shape, sw_shape *grid,
                          size_t *block_numel) {
    int blk[SW_MAX_DIMS];
    SW_TRY(block_sizes(s, shape, blk));
    size_t per = 1;
    grid->ndim = shape->ndim;
    for (int d = 0; d < shape->ndim; d++) {
        grid->dims[d] = shape->dims[d] / blk[d];
        per *= (size_t)blk[d];
    }
    if (block_numel) *block_numel = per;
    return SW_OK;
}

/* The geometry shared by shrink, gather and expand: for every flat element index of a tensor,
 * which block it falls in and where inside that block. Shapes are padded to 4 dims with
 * leading 1s so one loop nest serves every rank. */
typedef struct block_walk {
    int dims[SW_MAX_DIMS]; /* tensor dims, left-padded to 4 */
    int blk[SW_MAX_DIMS];  /* block sizes, left-padded with 1 */
    int grid[SW_MAX_DIMS]; /* dims / blk */
    size_t block_numel;
} block_walk;

static sw_status walk_init(const sw_scaling *s, const sw_shape *shape, block_walk *w) {
    int blk[SW_MAX_DIMS];
    SW_TRY(block_sizes(s, shape, blk));
    int pad = SW_MAX_DIMS - shape->ndim;
    w->block_numel = 1;
    for (int d = 0; d < SW_MAX_DIMS; d++) {
        w->dims[d] = d < pad ? 1 : shape->dims[d - pad];
        w->blk[d] = d < pad ? 1 : blk[d - pad];
        w->grid[d] = w->dims[d] / w->blk[d];
        w->block_numel *= (size_t)w->blk[d];
    }
    return SW_OK;
}

/* Calls visit(ctx, flat_index, block_index, index_in_block) for every element, in row-major
 * order of the tensor. A macro-free loop nest: 4 dims are the most we ever have. */
typedef void (*visit_fn)(void *ctx, size_t flat, size_t block, size_t inner);

static void walk(const block_walk *w, visit_fn visit, void *ctx) {
    size_t flat = 0;
    for (int a = 0; a < w->dims[0]; a++)
        for (int b = 0; b < w->dims[1]; b++)
            for (int c = 0; c < w->dims[2]; c++)
                for (int e = 0; e < w->dims[3]; e++, flat++) {
                    size_t block =
                        (((size_t)(a / w->blk[0]) * (size_t)w->grid[1] + (size_t)(b / w->blk[1])) *
                             (size_t)w->grid[2] +
                         (size_t)(c / w->blk[2])) *
                            (size_t)w->grid[3] +
                        (size_t)(e / w->blk[3]);
                    size_t inner =
                        (((size_t)(a % w->blk[0]) * (size_t)w->blk[1] + (size_t)(b % w->blk[1])) *
                             (size_t)w->blk[2] +
                         (size_t)(c % w->blk[2])) *
                            (size_t)w->blk[3] +
                        (size_t)(e % w->blk[3]);
                    visit(ctx, flat, block, inner);
                }
}

typedef struct shrink_ctx {
    const float *x;
    double *acc;
    sw_reduce reduce;
} shrink_ctx;

/* Accumulates one element into its block; MIN/MAX take the block's first element as the
 * starting value (inner == 0), so no sentinel values are needed. */
static void shrink_visit(void *ctx, size_t flat, size_t block, size_t inner) {
    shrink_ctx *s = ctx;
    double v = s->x[flat];
    double *a = &s->acc[block];
    switch (s->reduce) {
    case SW_REDUCE_MEAN:
    case SW_REDUCE_SUM:
        *a += v;
        break;
    case SW_REDUCE_L1:
        *a += fabs(v);
        break;
    case SW_REDUCE_L2:
        *a += v * v;
        break;
    case SW_REDUCE_MIN:
        *a = inner == 0 || v < *a ? v : *a;
        break;
    case SW_REDUCE_MAX:
        *a = inner == 0 || v > *a ? v : *a;
        break;
    case SW_REDUCE_ABSMAX:
        *a = inner == 0 || fabs(v) > *a ? fabs(v) : *a;
        break;
    case SW_REDUCE_ANY:
        *a = (*a != 0.0 || v != 0.0) ? 1.0 : 0.0;
        break;
    }
}

sw_status sw_scaling_shrink(const sw_scaling *s, const sw_tensor *t, sw_reduce reduce,
                            double *out) {
    block_walk w;
    SW_TRY(walk_init(s, &t->shape, &w));
    size_t n_blocks = t->numel / w.block_numel;
    memset(out, 0, n_blocks * sizeof *out);
    shrink_ctx ctx = {.x = t->data, .acc = out, .reduce = reduce};
    walk(&w, shrink_visit, &ctx);
    for (size_t b = 0; b < n_blocks; b++) {
        if (reduce == SW_REDUCE_MEAN) out[b] /= (double)w.block_numel;
        if (reduce == SW_REDUCE_L2) out[b] = sqrt(out[b]);
    }
    return SW_OK;
}

typedef struct gather_ctx {
    const float *x;
    double *rows;
    size_t block_numel;
} gather_ctx;

static void gather_visit(void *ctx, size_t flat, size_t block, size_t inner) {
    gather_ctx *g = ctx;
    g->rows[block * g->block_numel + inner] = g->x[flat];
}

sw_status sw_scaling_gather(const sw_scaling *s, const sw_tensor *t, double *rows) {
    block_walk w;
    SW_TRY(walk_init(s, &t->shape, &w));
    gather_ctx ctx = {.x = t->data, .rows = rows, .block_numel = w.block_numel};
    walk(&w, gather_visit, &ctx);
    return SW_OK;
}

typedef struct expand_ctx {
    const float *grid;
    float *out;
} expand_ctx;

static void expand_visit(void *ctx, size_t flat, size_t block, size_t inner) {
    expand_ctx *e = ctx;
    (void)inner;
    e->out[flat] = e->grid[block];
}

sw_status sw_scaling_expand(const sw_scaling *s, const float *grid_values, const sw_shape *shape,
                            float *out) {
    block_walk w;
    SW_TRY(walk_init(s, shape, &w));
    expand_ctx ctx = {.grid = grid_values, .out = out};
    walk(&w, expand_visit, &ctx);
    return SW_OK;
}

/* NNI's register_scalers: the granularity names map to fixed kernels; lists are kernels. */
sw_status sw_granularity_scaling(const sw_granularity *g, bool is_param, bool *has_scaling,
                                 sw_scaling *out) {
    static const int one[1] = {1};
    static const int full_one[2] = {SW_SCALING_FULL, 1};
    *has_scaling = true;
    switch (g->kind) {
    case SW_GRANULARITY_DEFAULT:
        return SW_FAIL(SW_ERR_ARG, "granularity \"default\" must be resolved by the algorithm");
    case SW_GRANULARITY_ELEMENT:
        *has_scaling = false;
        return SW_OK;
    case SW_GRANULARITY_OUT_CHANNEL:
    case SW_GRANULARITY_IN_CHANNEL:
        if (!is_param)
            return SW_FAIL(SW_ERR_CONFIG,
                           "granularity \"%s\" applies to parameters only; use "
                           "\"per_channel\" for inputs and outputs",
                           g->kind == SW_GRANULARITY_OUT_CHANNEL ? "out_channel" : "in_channel");
        /* out_channel: [1] back-padded with -1; in_channel: [-1, 1] back-padded with -1. */
        if (g->kind == SW_GRANULARITY_OUT_CHANNEL)
            *out = sw_scaling_make(1, one, SW_SCALING_PAD_BACK, SW_SCALING_FULL);
        else
            *out = sw_scaling_make(2, full_one, SW_SCALING_PAD_BACK, SW_SCALING_FULL);
        return SW_OK;
    case SW_GRANULARITY_PER_CHANNEL:
        if (is_param)
            return SW_FAIL(SW_ERR_CONFIG, "granularity \"per_channel\" applies to inputs and "
                                          "outputs; use \"out_channel\" or \"in_channel\" for "
                                          "parameters");
        /* Dim 0 is the batch, dim 1 the channel (NNI's choice, also for [B, T, C]). */
        *out = sw_scaling_make(2, full_one, SW_SCALING_PAD_BACK, SW_SCALING_FULL);
        return SW_OK;
    case SW_GRANULARITY_KERNEL:
        *out = g->kernel;
        return SW_OK;
    }
    return SW_FAIL(SW_ERR_ARG, "unknown granularity kind %d", (int)g->kind);
}

const char *sw_granularity_format(const sw_granularity *g, char *buf, size_t size) {
    switch (g->kind) {
    case SW_GRANULARITY_DEFAULT:
        snprintf(buf, size, "\"default\"");
        break;
    case SW_GRANULARITY_ELEMENT:
        snprintf(buf, size, "null");
        break;
    case SW_GRANULARITY_OUT_CHANNEL:
        snprintf(buf, size, "\"out_channel\"");
        break;
    case SW_GRANULARITY_IN_CHANNEL:
        snprintf(buf, size, "\"in_channel\"");
        break;
    case SW_GRANULARITY_PER_CHANNEL:
        snprintf(buf, size, "\"per_channel\"");
        break;
    case SW_GRANULARITY_KERNEL: {
        size_t used = (size_t)snprintf(buf, size, "[");
        for (int i = 0; i < g->kernel.n && used < size; i++)
            used +=
                (size_t)snprintf(buf + used, size - used, i ? ", %d" : "%d", g->kernel.kernel[i]);
        if (used < size) snprintf(buf + used, size - used, "]");
        break;
    }
    }
    return buf;
}
