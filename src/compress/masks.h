/* masks.h - a collection of masks: module -> target -> 0/1 tensor (NNI's get_masks()).
 *
 * Parameter masks have the parameter's full shape; activation masks have NNI's compact form
 * with a leading batch dim of 1 ([1, C, 1, 1] for a per-channel mask of [C, H, W]), or
 * [1, sample...] when blocks do not broadcast. Entries keep insertion order.
 */
#ifndef SW_COMPRESS_MASKS_H
#define SW_COMPRESS_MASKS_H

#include "../tensor/tensor.h"
#include "wrapper.h"

typedef struct sw_masks_entry {
    char *module; /* owned */
    char target[SW_TARGET_NAME_MAX];
    sw_tensor mask; /* owned */
} sw_masks_entry;

typedef struct sw_masks {
    int n, cap;
    sw_masks_entry *items; /* owned */
} sw_masks;

void sw_masks_init(sw_masks *m);
void sw_masks_deinit(sw_masks *m);
/* Adds a copy of `mask` as module.target; an existing entry is AND-combined with it (shapes
 * must agree). */
sw_status sw_masks_add(sw_masks *m, const char *module, const char *target, const sw_tensor *mask);
/* The mask of module.target, or NULL. */
const sw_tensor *sw_masks_find(const sw_masks *m, const char *module, const char *target);
/* Fraction of zeros in one mask. */
double sw_mask_sparsity(const sw_tensor *mask);

#endif
