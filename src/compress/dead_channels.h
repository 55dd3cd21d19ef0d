/* dead_channels.h - keeping a pruned channel zero everywhere downstream.
 *
 * In NNI's masked model a pruned filter still leaks: its bias, and the shift of the BatchNorm
 * after it, turn the zeroed channel into a constant that flows on, so the masked model and the
 * sped-up model disagree (reference §6, "Known limitations"). shrinkwrap's rule (docs/
 * PRUNING.md, "What a mask means"): a channel is *dead* when
 *   - it is an output channel of a Conv2d, Linear or BatchNorm whose weight row is entirely
 *     masked, or whose output mask zeroes it;
 *   - it is the same channel after a zero-preserving layer (ReLU, ReLU6, pools, Dropout,
 *     Identity), after a BatchNorm, or the matching features after Flatten;
 *   - it is dead in every input of an Add (dependency groups make residual branches prune
 *     the same channels), or in the input it comes from in a Concat.
 * Conv2d and Linear consume channels: a dead input contributes nothing, so what they output is
 * decided by their own masks only.
 *
 * Where a dead channel would not be zero by itself (a Conv2d/Linear whose bias survives, a
 * BatchNorm whose shift survives, or whose input channel is dead: in eval mode BatchNorm maps 0
 * to beta - gamma * mean / std) the wrapper set attaches its own masks (owner = the set, stage
 * SW_STAGE_PRUNE) on that channel's parameters: the bias of a Conv2d/Linear, the scale and
 * shift of a BatchNorm. 0 * x_hat + 0 is exactly zero in training and in eval mode, and masked
 * parameters pass no gradient back, just as an output mask would, for the price of masking [C]
 * floats instead of a whole [N, C, H, W] activation. These *derived* masks are recomputed
 * whenever masks change, baked into the weights at unwrap like any other mask, and are not
 * part of get_masks(): they are a consequence of the masks, recomputed when a masks file is
 * loaded.
 */
#ifndef SW_COMPRESS_DEAD_CHANNELS_H
#define SW_COMPRESS_DEAD_CHANNELS_H

#include "wrapper.h"

/* Recomputes dead channels from the masks in effect and installs, updates or removes the
 * derived parameter masks. A no-op that removes derived masks when ws->zero_downstream is off.
 * Called by pruners after every mask update and by detach. */
sw_status sw_dead_channels_refresh(sw_wrapper_set *ws);

/* Turns downstream zeroing on or off (default on) and refreshes. */
sw_status sw_wrapper_set_zero_downstream(sw_wrapper_set *ws, bool on);

/* After a refresh: the per-channel liveness (1 alive, 0 dead) of node `node`'s output, with
 * its length in *n; NULL when nothing was computed for the node (no refresh yet). */
const float *sw_dead_channels_alive(const sw_wrapper_set *ws, int node, int *n);

/* Frees the bookkeeping (not the transforms: those belong to the chains). */
void sw_dead_channels_clear(sw_wrapper_set *ws);

#endif
