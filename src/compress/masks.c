/* masks.c - the module -> target -> mask collection.
 *
 * A flat array searched linearly: a model has tens of masked targets, and the collection is
 * built once per get_masks or load. */
#include "masks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_masks_init(sw_masks *m) {
    *m = (sw_masks){0};
}

void sw_masks_deinit(sw_masks *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->items[i].module);
        sw_tensor_deinit(&m->items[i].mask);
    }
    free(m->items);
    *m = (sw_masks){0};
}

static sw_masks_entry *find(const sw_masks *m, const char *module, const char *target) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->items[i].module, module) == 0 && strcmp(m->items[i].target, target) == 0)
            return &m->items[i];
    return NULL;
}

sw_status sw_masks_add(sw_masks *m, const char *module, const char *target, const sw_tensor *mask) {
    sw_masks_entry *e = find(m, module, target);
    if (e) {
        if (!sw_shape_equal(&e->mask.shape, &mask->shape))
            return SW_FAIL(SW_ERR_SHAPE, "masks of %s.%s disagree in shape", module, target);
        for (size_t i = 0; i < mask->numel; i++)
            e->mask.data[i] = (e->mask.data[i] != 0.0f && mask->data[i] != 0.0f) ? 1.0f : 0.0f;
        return SW_OK;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        sw_masks_entry *grown = realloc(m->items, (size_t)cap * sizeof *grown);
        if (!grown) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        m->items = grown;
        m->cap = cap;
    }
    e = &m->items[m->n];
    *e = (sw_masks_entry){0};
    e->module = strdup(module);
    if (!e->module) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    snprintf(e->target, sizeof e->target, "%s", target);
    sw_status st = sw_tensor_init(&e->mask, &mask->shape);
    if (st != SW_OK) {
        free(e->module);
        return st;
    }
    memcpy(e->mask.data, mask->data, mask->numel * sizeof(float));
    m->n++;
    return SW_OK;
}

const sw_tensor *sw_masks_find(const sw_masks *m, const char *module, const char *target) {
    sw_masks_entry *e = find(m, module, target);
    return e ? &e->mask : NULL;
}

double sw_mask_sparsity(const sw_tensor *mask) {
    if (mask->numel == 0) return 0.0;
    size_t zeros = 0;
    for (size_t i = 0; i < mask->numel; i++) zeros += mask->data[i] == 0.0f;
    return (double)zeros / (double)mask->numel;
}
