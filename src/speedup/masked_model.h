/* masked_model.h - the masked model, simulated: the reference a sped-up model must match.
 *
 * This is what the pruning issue says a mask means, computed without the compression wrappers
 * (speedup must not depend on src/compress) on a private copy of the model:
 *   - every parameter mask multiplies its parameter (weight, bias, BatchNorm scale/shift);
 *   - every _input_<j> mask multiplies that input on its way into the node;
 *   - every _output_0 mask multiplies the node's output;
 *   - every dead channel (channel_analysis.h, step 1) is zeroed in the node's output, so that a
 *     pruned channel's bias or BatchNorm shift does not leak downstream.
 * Forward runs in evaluation mode (BatchNorm on running statistics, Dropout off).
 */
#ifndef SW_SPEEDUP_MASKED_MODEL_H
#define SW_SPEEDUP_MASKED_MODEL_H

#include "channel_analysis.h"

typedef struct sw_masked_model sw_masked_model;

/* Builds the simulation of `model` under `masks`; `a` is the analysis of the same pair and
 * supplies the dead channels. Copies the model (the original is not touched); borrows nothing
 * after returning. Caller owns *out. */
sw_status sw_masked_model_new(const sw_model *model, const sw_mask_set *masks,
                              const sw_channel_analysis *a, sw_masked_model **out);
void sw_masked_model_free(sw_masked_model *mm);

/* Runs the masked model on x [N, input_shape...]. *out is the output node's activation, owned
 * by the simulation and valid until its next forward. */
sw_status sw_masked_model_forward(sw_masked_model *mm, const sw_tensor *x, const sw_tensor **out);

/* After a forward: node i's output [N, sample...] (valid until the next forward). */
const sw_tensor *sw_masked_model_node_output(const sw_masked_model *mm, int i);

#endif
