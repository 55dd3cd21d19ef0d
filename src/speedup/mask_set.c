/* mask_set.c - the mask list, its masks-file form, and its check against a model. */
#include "mask_set.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sw_status sw_mask_set_new(sw_mask_set **out) {
    sw_mask_set *ms = calloc(1, sizeof *ms);
    if (!ms) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a mask set");
    *out = ms;
    return SW_OK;
}

void sw_mask_set_free(sw_mask_set *ms) {
    if (!ms) return;
    for (int i = 0; i < ms->n; i++) {
        free(ms->entries[i].module);
        free(ms->entries[i].target);
        sw_tensor_deinit(&ms->entries[i].mask);
    }
    free(ms->entries);
    free(ms);
}

const sw_tensor *sw_mask_set_find(const sw_mask_set *ms, const char *module, const char *target) {
    for (int i = 0; i < ms->n; i++)
        if (strcmp(ms->entries[i].module, module) == 0 &&
            strcmp(ms->entries[i].target, target) == 0)
            return &ms->entries[i].mask;
    return NULL;
}

sw_status sw_mask_set_add(sw_mask_set *ms, const char *module, const char *target,
                          const sw_tensor *mask) {
    if (!*module || !*target)
        return SW_FAIL(SW_ERR_ARG, "mask \"%s.%s\": module and target must not be empty", module,
                       target);
    if (sw_mask_set_find(ms, module, target))
        return SW_FAIL(SW_ERR_ARG, "mask \"%s.%s\" is given twice", module, target);
    /* A mask is a selection, not a scaling: anything but 0 and 1 is a mistake upstream (a
     * metric or a score saved in place of its mask). */
    for (size_t k = 0; k < mask->numel; k++) {
        float v = mask->data[k];
        if (v != 0.0f && v != 1.0f)
            return SW_FAIL(SW_ERR_ARG,
                           "mask \"%s.%s\" holds %g at flat index %zu; masks hold only 0 and 1",
                           module, target, (double)v, k);
    }
    if (ms->n == ms->cap) {
        int cap = ms->cap ? ms->cap * 2 : 16;
        sw_mask_entry *grown = realloc(ms->entries, (size_t)cap * sizeof *grown);
        if (!grown) return SW_FAIL(SW_ERR_NOMEM, "cannot grow the mask set");
        ms->entries = grown;
        ms->cap = cap;
    }
    sw_mask_entry e = {0};
    e.module = strdup(module);
    e.target = strdup(target);
    sw_status st = (e.module && e.target) ? sw_tensor_init(&e.mask, &mask->shape) : SW_ERR_NOMEM;
    if (st != SW_OK) {
        free(e.module);
        free(e.target);
        return st == SW_ERR_NOMEM
                   ? SW_FAIL(SW_ERR_NOMEM, "cannot copy mask \"%s.%s\"", module, target)
                   : st;
    }
    if (mask->numel) memcpy(e.mask.data, mask->data, mask->numel * sizeof(float));
    ms->entries[ms->n++] = e;
    return SW_OK;
}

sw_status sw_mask_set_add_named(sw_mask_set *ms, const char *full_name, const sw_tensor *mask) {
    const char *dot = strrchr(full_name, '.');
    if (!dot || dot == full_name || !dot[1])
        return SW_FAIL(SW_ERR_ARG,
                       "mask name \"%s\" is not \"<module>.<target>\" (e.g. \"conv1.weight\")",
                       full_name);
    size_t len = (size_t)(dot - full_name);
    char *module = malloc(len + 1);
    if (!module) return SW_FAIL(SW_ERR_NOMEM, "cannot copy mask name");
    memcpy(module, full_name, len);
    module[len] = '\0';
    sw_status st = sw_mask_set_add(ms, module, dot + 1, mask);
    free(module);
    return st;
}

sw_status sw_mask_set_from_safetensors(const sw_safetensors *st, sw_mask_set **out) {
    sw_mask_set *ms = NULL;
    SW_TRY(sw_mask_set_new(&ms));
    sw_status status = SW_OK;
    for (int i = 0; i < st->n_entries && status == SW_OK; i++) {
        sw_tensor t = {0};
        status = sw_safetensors_get_f32(st, st->entries[i].name, &t);
        if (status == SW_OK) status = sw_mask_set_add_named(ms, st->entries[i].name, &t);
        sw_tensor_deinit(&t);
    }
    if (status != SW_OK) {
        sw_mask_set_free(ms);
        return status;
    }
    *out = ms;
    return SW_OK;
}

sw_status sw_mask_set_load(const char *path, sw_mask_set **out) {
    sw_safetensors *st = NULL;
    sw_status status = sw_safetensors_read_file(path, &st);
    if (status == SW_OK) status = sw_mask_set_from_safetensors(st, out);
    sw_safetensors_free(st);
    if (status != SW_OK) sw_error_prefix("masks file %s", path);
    return status;
}

sw_status sw_mask_set_save(const sw_mask_set *ms, const char *path) {
    sw_st_writer *w = NULL;
    SW_TRY(sw_st_writer_new(&w));
    sw_status st = sw_st_writer_meta(w, "format", "shrinkwrap-masks");
    char name[512];
    for (int i = 0; i < ms->n && st == SW_OK; i++) {
        const sw_mask_entry *e = &ms->entries[i];
        int len = snprintf(name, sizeof name, "%s.%s", e->module, e->target);
        if (len < 0 || (size_t)len >= sizeof name)
            st = SW_FAIL(SW_ERR_ARG, "mask name \"%s.%s\" is too long", e->module, e->target);
        else
            st = sw_st_writer_add_tensor(w, name, &e->mask);
    }
    if (st == SW_OK) st = sw_st_writer_write(w, path);
    sw_st_writer_free(w);
    return st;
}

/* True when `mask` broadcasts onto per-sample `sample` (see the header). */
static bool activation_shape_fits(const sw_shape *mask, const sw_shape *sample) {
    int skip = 0;
    if (mask->ndim == sample->ndim + 1 && mask->dims[0] == 1)
        skip = 1;
    else if (mask->ndim != sample->ndim)
        return false;
    for (int d = 0; d < sample->ndim; d++) {
        int m = mask->dims[d + skip];
        if (m != sample->dims[d] && m != 1) return false;
    }
    return true;
}

/* Walks the sample's elements in row-major order and maps each index to the mask's index,
 * size-1 mask dims repeating. Small masks only (per node, once per speedup). */
void sw_mask_set_broadcast(const sw_tensor *mask, const sw_shape *sample, float *out) {
    int skip = mask->shape.ndim == sample->ndim + 1 ? 1 : 0;
    /* Strides of the mask over the sample's dims; a broadcast (size-1) dim has stride 0. */
    size_t stride[SW_MAX_DIMS] = {0}, s = 1;
    for (int d = sample->ndim - 1; d >= 0; d--) {
        int m = mask->shape.dims[d + skip];
        stride[d] = m == 1 ? 0 : s;
        s *= (size_t)m;
    }
    size_t n = sw_shape_numel(sample);
    for (size_t k = 0; k < n; k++) {
        size_t rem = k, at = 0;
        for (int d = sample->ndim - 1; d >= 0; d--) {
            size_t idx = rem % (size_t)sample->dims[d];
            rem /= (size_t)sample->dims[d];
            at += idx * stride[d];
        }
        out[k] = mask->data[at];
    }
}

/* Shape of the value a target of node i names, into *shape; *is_param tells which kind.
 * Only trainable parameters are targets, as in NNI: running statistics are not pruned. */
static sw_status target_shape(const sw_model *model, int i, const char *target, sw_shape *shape,
                              bool *is_param) {
    const sw_node *node = &model->nodes[i];
    const sw_layer *l = node->layer;
    int input = -1;
    char extra;
    *is_param = false;
    if (strcmp(target, "_output_0") == 0) {
        *shape = node->out_shape;
        return SW_OK;
    }
    if (sscanf(target, "_input_%d%c", &input, &extra) == 1) {
        if (input < 0 || input >= node->n_inputs)
            return SW_FAIL(SW_ERR_NOT_FOUND,
                           "mask \"%s.%s\": %s has %d input(s), _input_0.._input_%d", node->name,
                           target, node->name, node->n_inputs, node->n_inputs - 1);
        int src = node->inputs[input];
        *shape = src == SW_NODE_INPUT ? model->input_shape : model->nodes[src].out_shape;
        return SW_OK;
    }
    int p = sw_layer_param_index(l, target);
    if (p < 0 || !l->params[p].trainable) {
        char names[128] = "";
        size_t at = 0;
        for (int q = 0; q < l->n_params; q++) {
            if (!l->params[q].trainable) continue;
            int w =
                snprintf(names + at, sizeof names - at, "%s%s", at ? ", " : "", l->params[q].name);
            if (w > 0 && (size_t)w < sizeof names - at) at += (size_t)w;
        }
        return SW_FAIL(SW_ERR_NOT_FOUND,
                       "mask \"%s.%s\": a %s has no parameter \"%s\"; targets are %s%s_input_N "
                       "and _output_0",
                       node->name, target, l->ops->type_name, target, names, at ? ", " : "");
    }
    *is_param = true;
    *shape = l->param_shapes[p];
    return SW_OK;
}

sw_status sw_mask_set_check(const sw_mask_set *ms, const sw_model *model) {
    for (int e = 0; e < ms->n; e++) {
        const sw_mask_entry *m = &ms->entries[e];
        int i = sw_model_find(model, m->module);
        if (i < 0)
            return SW_FAIL(SW_ERR_NOT_FOUND,
                           "mask \"%s.%s\" names module \"%s\", which model \"%s\" does not have "
                           "(the masks were made for another model?)",
                           m->module, m->target, m->module, model->arch);
        sw_shape want;
        bool is_param;
        SW_TRY(target_shape(model, i, m->target, &want, &is_param));
        bool fits = is_param ? sw_shape_equal(&want, &m->mask.shape)
                             : activation_shape_fits(&m->mask.shape, &want);
        if (!fits) {
            char a[64], b[64];
            return SW_FAIL(SW_ERR_SHAPE, "mask \"%s.%s\" has shape %s, but the %s is %s%s",
                           m->module, m->target, sw_shape_format(&m->mask.shape, a, sizeof a),
                           is_param ? "parameter" : "per-sample value",
                           sw_shape_format(&want, b, sizeof b),
                           is_param ? "" : " (a leading 1 and size-1 dims are allowed)");
        }
    }
    return SW_OK;
}

sw_status sw_mask_set_from_masks(const sw_masks *masks, sw_mask_set **out) {
    sw_mask_set *ms = NULL;
    SW_TRY(sw_mask_set_new(&ms));
    for (int i = 0; i < masks->n; i++) {
        sw_status st = sw_mask_set_add(ms, masks->items[i].module, masks->items[i].target,
                                       &masks->items[i].mask);
        if (st != SW_OK) {
            sw_mask_set_free(ms);
            return st;
        }
    }
    *out = ms;
    return SW_OK;
}
