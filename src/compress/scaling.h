/* scaling.h - NNI's Scaling: cutting a tensor into blocks, reducing each block to one value
 * (shrink) and repeating block values back over their blocks (expand).
 *
 * Every granularity in shrinkwrap goes through here: a pruning metric per output filter, a mask
 * per 4x4 tile, a per-channel quantization scale, a Slim factor or a Movement score per block
 * (reference §1.4).
 *
 * A kernel lists one block size per dimension: k > 0 cuts that dimension into runs of k
 * consecutive indices (the size must be divisible by k); SW_SCALING_FULL (-1) makes the whole
 * dimension one block. A kernel shorter than the tensor's rank is padded: at the front with
 * `pad_value` (default 1: "one block per index" on the leading dims), or at the back (default
 * -1: "reduce the trailing dims"). Examples on a conv weight [O, I, kh, kw]:
 *
 *   out_channel = kernel [1], back-padded with -1  -> [1, -1, -1, -1]: grid [O, 1, 1, 1]
 *   in_channel  = kernel [-1, 1], back-padded      -> [-1, 1, -1, -1]: grid [1, I, 1, 1]
 *   [3, 3]      = front-padded with 1              -> [1, 1, 3, 3]:    grid [O, I, kh/3, kw/3]
 *
 * Grids keep the tensor's rank ("keepdim"): fully reduced dims stay as size 1, so a grid
 * broadcasts back onto its tensor. Reductions accumulate in double.
 */
#ifndef SW_COMPRESS_SCALING_H
#define SW_COMPRESS_SCALING_H

#include <stdbool.h>
#include <stddef.h>

#include "../tensor/tensor.h"

#define SW_SCALING_FULL (-1)

typedef enum sw_scaling_pad {
    SW_SCALING_PAD_FRONT,
    SW_SCALING_PAD_BACK,
} sw_scaling_pad;

typedef struct sw_scaling {
    int n;                   /* kernel entries given (1..SW_MAX_DIMS) */
    int kernel[SW_MAX_DIMS]; /* k > 0 or SW_SCALING_FULL */
    sw_scaling_pad pad_mode;
    int pad_value; /* what padding inserts (1 or -1 usually) */
} sw_scaling;

/* A scaling from `n` kernel entries. */
sw_scaling sw_scaling_make(int n, const int *kernel, sw_scaling_pad pad_mode, int pad_value);

/* The kernel padded to `ndim` entries. Fails (SW_ERR_SHAPE) when the kernel is longer than
 * ndim. */
sw_status sw_scaling_kernel_for(const sw_scaling *s, int ndim, int kernel[SW_MAX_DIMS]);

/* The block grid of a tensor of `shape` (keepdim: same rank) and the elements per block.
 * Fails with a message naming the dimension when a size is not divisible by its block. */
sw_status sw_scaling_grid(const sw_scaling *s, const sw_shape *shape, sw_shape *grid,
                          size_t *block_numel);

typedef enum sw_reduce {
    SW_REDUCE_MEAN, /* NNI's default reduce */
    SW_REDUCE_SUM,
    SW_REDUCE_L1, /* sum |x| */
    SW_REDUCE_L2, /* sqrt(sum x^2) */
    SW_REDUCE_MIN,
    SW_REDUCE_MAX,
    SW_REDUCE_ABSMAX, /* max |x| */
    SW_REDUCE_ANY,    /* 1 if any element is non-zero, else 0 */
} sw_reduce;

/* Reduces each block of `t` to one value: out[grid numel], grid in row-major order. */
sw_status sw_scaling_shrink(const sw_scaling *s, const sw_tensor *t, sw_reduce reduce, double *out);

/* Lays the blocks of `t` out as rows: rows[b * block_numel + e] is element e (row-major inside
 * the block) of block b (row-major over the grid). For reductions that compare whole blocks
 * with each other (FPGM). rows holds grid numel x block_numel doubles. */
sw_status sw_scaling_gather(const sw_scaling *s, const sw_tensor *t, double *rows);

/* Repeats each grid value over its block: out has the numel of `shape`. */
sw_status sw_scaling_expand(const sw_scaling *s, const float *grid_values, const sw_shape *shape,
                            float *out);

/* ---- granularity: the config_list spelling of a scaling ---------------------------------- */

typedef enum sw_granularity_kind {
    SW_GRANULARITY_DEFAULT,     /* "default": the algorithm decides */
    SW_GRANULARITY_ELEMENT,     /* null: element-wise (pruning) / per-tensor (quantization) */
    SW_GRANULARITY_OUT_CHANNEL, /* parameters: one block per index of dim 0 */
    SW_GRANULARITY_IN_CHANNEL,  /* parameters: one block per index of dim 1 */
    SW_GRANULARITY_PER_CHANNEL, /* activations: one block per index of dim 1 (dim 0 = batch) */
    SW_GRANULARITY_KERNEL,      /* an explicit kernel */
} sw_granularity_kind;

typedef struct sw_granularity {
    sw_granularity_kind kind;
    sw_scaling kernel; /* SW_GRANULARITY_KERNEL only */
} sw_granularity;

/* The scaling a granularity stands for on a parameter (is_param) or an activation target.
 * *has_scaling is false for element-wise; DEFAULT must have been resolved before. Fails with
 * SW_ERR_CONFIG for out_channel/in_channel on an activation or per_channel on a parameter. */
sw_status sw_granularity_scaling(const sw_granularity *g, bool is_param, bool *has_scaling,
                                 sw_scaling *out);

/* Writes a granularity as config_list text ("out_channel", "[4, 4]", "null") into buf. */
const char *sw_granularity_format(const sw_granularity *g, char *buf, size_t size);

#endif
