/* bn_fold.h - module fusion for quantization (`fuse_names`, reference §4.8).
 *
 * A fuse tuple names a computing module and the modules it absorbs:
 *   (Conv2d, BatchNorm2d), (Conv2d, BatchNorm2d, ReLU), (Conv2d, ReLU),
 *   (Linear, BatchNorm1d), (Linear, BatchNorm1d, ReLU), (Linear, ReLU), (BatchNorm, ReLU).
 * Each absorbed module must be the single consumer of the one before it, must not be
 * configured by any compressor, and becomes an identity; the first module's weight must be a
 * target of the quantizer when a BatchNorm is folded, its output when a ReLU is.
 *
 * Folding, at every forward of the first module (conv stands for Conv2d or Linear):
 *   training: conv(x) with the raw weight and bias feeds the BatchNorm's running statistics
 *             (mean, unbiased variance, the layer's momentum), as NNI runs the BN in train mode;
 *   then      W' = W * g / sqrt(var + eps)             per output channel,
 *             b' = (b - mean) * g / sqrt(var + eps) + beta   (b = 0 without a conv bias),
 *   with the running mean and variance, g and beta the BN's affine parameters. W' (and b',
 * when the conv has a bias) then go through the weight's (and bias's) chain: observers see the
 * folded values, fake-quantization and masks follow. Without a conv bias b' is added to the
 * conv's output before its output chain. A fused ReLU is applied to the output, again before
 * the output's observers. Gradients reach W and b through the fold and g and beta through W' and
 * b' (the running statistics are buffers); the absorbed modules pass values and gradients
 * unchanged (their own computation is discarded and their statistics left as the fold set them).
 *
 * Deviation from NNI: the statistics are computed from the conv's input before the input's own
 * fake-quantization (NNI folds after quantizing the input); the weights do not depend on it in
 * eval mode, where both use the running statistics.
 *
 * In eval mode the folded conv equals conv followed by BatchNorm in eval mode, up to rounding.
 */
#ifndef SW_BN_FOLD_H
#define SW_BN_FOLD_H

#include "quant_setting.h"

typedef struct sw_quantizer sw_quantizer;
typedef struct sw_bn_fold sw_bn_fold;

/* Checks the tuples and attaches the folding transforms (owned by q). On failure nothing is
 * left attached by this call beyond what q's teardown detaches. */
sw_status sw_bn_fold_setup(sw_quantizer *q, const sw_quant_fuse *fuses, int n_fuses);
void sw_bn_fold_free(sw_bn_fold *f);

/* One fused group, for inspection and int8 conversion: node indices, -1 when absent. */
typedef struct sw_bn_fold_info {
    int first; /* Conv2d, Linear or BatchNorm */
    int bn;    /* folded BatchNorm, or -1 */
    int relu;  /* fused ReLU, or -1 */
} sw_bn_fold_info;

int sw_bn_fold_count(const sw_bn_fold *f);
sw_bn_fold_info sw_bn_fold_get(const sw_bn_fold *f, int i);

/* Eval-mode folding of a Conv2d/Linear node `first` with BatchNorm node `bn` of `model`:
 * w_out gets W' (numel of the weight), b_out b' (out channels). */
void sw_bn_fold_eval(const sw_model *model, int first, int bn, float *w_out, float *b_out);

#endif
