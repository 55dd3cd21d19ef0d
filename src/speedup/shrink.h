/* shrink.h - building the physically smaller model from a channel analysis.
 *
 * Every node that survives the analysis becomes a node of the same name, reading the same
 * (surviving) inputs, with its layer shrunk to the kept channels:
 *   Conv2d      in/out_channels = kept input/output channels; groups = kept groups;
 *               weight[o', j'] = effective weight[kept_out[o'], kept_in[j']] (within the group)
 *   Linear      in/out_features likewise
 *   BatchNorm   num_features = kept channels; scale, shift, running mean and variance selected
 *   Add         left with one input: an Identity of the same name
 *   others      unchanged hyper-parameters (their shapes follow from their inputs)
 * Effective weights carry the masks, so fine-grained zeros inside kept channels stay zero.
 * Kept dead channels get a zero row and bias (BatchNorm: zero scale and shift); folded channels
 * get zero weight columns in their consumers. The result is finalised, in the original model's
 * training mode, and its arch is "<arch>-speedup".
 */
#ifndef SW_SPEEDUP_SHRINK_H
#define SW_SPEEDUP_SHRINK_H

#include "channel_analysis.h"

/* Builds the sped-up model of analysis `a` (whose model must still be alive). Caller owns
 * *out. Fails only on memory, or with SW_ERR_SHAPE naming the node if the rebuilt graph does
 * not fit together (which would be a bug of the analysis). */
sw_status sw_shrink_build(const sw_channel_analysis *a, sw_model **out);

#endif
