/* mask_transform.h - the pruning mask as a transform: y = x * m (NNI's apply methods).
 *
 * A mask transform sits at SW_STAGE_PRUNE. It borrows its mask tensor from whoever attached it
 * (a pruner's target record, or the wrapper set's dead-channel state), so a pruner rewrites
 * its masks in place and calls sw_mask_refresh; nothing is re-attached when masks change.
 *
 * Mask shapes: a parameter's mask has the parameter's shape. An activation's mask either has
 * the per-sample shape or NNI's compact form with a leading batch dim of 1 that broadcasts
 * onto [1, sample...] ([1, C, 1, 1] for per-channel masks of [C, H, W] activations). Values
 * are 0 or 1.
 */
#ifndef SW_COMPRESS_MASK_TRANSFORM_H
#define SW_COMPRESS_MASK_TRANSFORM_H

#include "wrapper.h"

typedef enum sw_apply_method {
    SW_APPLY_MUL,    /* x * m: the default */
    SW_APPLY_ADD,    /* x + (m == 1 ? 0 : -1000): for scores before a softmax */
    SW_APPLY_BYPASS, /* x: the mask is recorded but not applied */
} sw_apply_method;

/* "mul" | "add" | "bypass" -> method (SW_ERR_NOT_FOUND otherwise). */
sw_status sw_apply_method_from_name(const char *name, sw_apply_method *out);
const char *sw_apply_method_name(sw_apply_method m);

extern const sw_transform_ops sw_mask_transform_ops;

/* Attaches a mask transform on (node, target) for `owner`; `mask` is borrowed and must stay
 * valid (same address) while attached. Fails with SW_ERR_SHAPE when the mask does not fit the
 * target. */
sw_status sw_mask_attach(sw_wrapper_set *ws, int node, const char *target, const sw_tensor *mask,
                         sw_apply_method method, const void *owner, sw_transform **out);

/* Re-reads the borrowed mask after its values changed. */
sw_status sw_mask_refresh(sw_transform *t);

/* True when `shape` (a mask) broadcasts onto a value of per-sample shape `sample` as
 * described above; then *expand_needed says whether it differs from the per-sample shape. */
bool sw_mask_shape_fits(const sw_shape *shape, const sw_shape *sample, bool is_param,
                        bool *expand_needed);

/* Broadcasts a compact activation mask onto the per-sample shape: out has numel(sample). */
void sw_mask_broadcast(const sw_tensor *mask, const sw_shape *sample, float *out);

#endif
