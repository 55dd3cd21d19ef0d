/* mask_set.h - the masks speedup consumes: a list of (module, target, 0/1 tensor).
 *
 * This is speedup's own input format, so that anything can feed it: a pruner's get_masks(),
 * a masks file written by `shrinkwrap prune` or by NNI-style tooling, or a test. A masks file
 * is a safetensors file with one tensor per "<module>.<target>" (DESIGN.md, "Files written"):
 *     "conv1.weight"   [32, 1, 3, 3]  same shape as the parameter
 *     "conv1.bias"     [32]
 *     "bn1._output_0"  [1, 32, 1, 1]  activation masks: the per-sample shape, or NNI's compact
 *                                     form with a leading 1 and size-1 dims that broadcast
 * Any dtype safetensors.h converts (F32, U8, BOOL, ...) is accepted; every value must be 0 or 1.
 * The module is everything before the last dot, so "layer1.0.conv1.weight" is module
 * "layer1.0.conv1", target "weight".
 *
 * Whether a mask fits a model (module exists, target exists, shapes agree) is checked by
 * sw_mask_set_check, separately from loading: one file can be checked against several models.
 */
#ifndef SW_SPEEDUP_MASK_SET_H
#define SW_SPEEDUP_MASK_SET_H

#include "../compress/masks.h"
#include "../io/safetensors.h"
#include "../nn/model.h"

typedef struct sw_mask_entry {
    char *module;   /* owned: node name, "layer1.0.conv1" */
    char *target;   /* owned: "weight", "bias", "_input_0", "_output_0" */
    sw_tensor mask; /* owned: values 0 or 1 */
} sw_mask_entry;

typedef struct sw_mask_set {
    int n, cap;
    sw_mask_entry *entries; /* owned, in insertion order */
} sw_mask_set;

/* An empty set. Caller owns *out (sw_mask_set_free). */
sw_status sw_mask_set_new(sw_mask_set **out);
void sw_mask_set_free(sw_mask_set *ms);

/* Adds a copy of `mask` for (module, target). Fails with SW_ERR_ARG when that pair is already
 * present or a value is not 0 or 1 (the message names the pair and the value). */
sw_status sw_mask_set_add(sw_mask_set *ms, const char *module, const char *target,
                          const sw_tensor *mask);
/* Same with the joined name "<module>.<target>". */
sw_status sw_mask_set_add_named(sw_mask_set *ms, const char *full_name, const sw_tensor *mask);

/* The mask of (module, target), or NULL. Borrowed from the set. */
const sw_tensor *sw_mask_set_find(const sw_mask_set *ms, const char *module, const char *target);

/* A copy of a compressor's masks (sw_pruner_get_masks, sw_masks_load) as a set. Caller owns
 * *out. */
sw_status sw_mask_set_from_masks(const sw_masks *masks, sw_mask_set **out);

/* Every tensor of a parsed safetensors file as a mask (metadata ignored). Caller owns *out. */
sw_status sw_mask_set_from_safetensors(const sw_safetensors *st, sw_mask_set **out);
/* Reads a masks file; errors name the path. Caller owns *out. */
sw_status sw_mask_set_load(const char *path, sw_mask_set **out);
/* Writes the set as a masks file (F32, "<module>.<target>"), atomically. */
sw_status sw_mask_set_save(const sw_mask_set *ms, const char *path);

/* Checks every mask against `model`: the module is a node, the target is one of its trainable
 * parameters, "_input_<i>" with i < the node's input count, or "_output_0"; a parameter mask has
 * the parameter's shape; an activation mask has the per-sample shape, optionally with a leading
 * 1, and each dim equal to the value's or 1. The error names the mask and what to change. */
sw_status sw_mask_set_check(const sw_mask_set *ms, const sw_model *model);

/* Expands an activation mask (already checked) onto a value of per-sample shape `sample`:
 * writes numel(sample) floats to out. */
void sw_mask_set_broadcast(const sw_tensor *mask, const sw_shape *sample, float *out);

#endif
