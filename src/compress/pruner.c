/* pruner.c - pruner targets, mask generation and exchange.
 *
 * A target record keeps three views of its mask: the block mask (one value per block of the
 * granularity, what the rules produce), the applied mask (full parameter shape, or NNI's
 * compact broadcastable shape for activations) that the mask transform borrows, and the metric
 * of the last generation (for inspection and tests). Records live in one array allocated once
 * per pruner, so the applied masks keep their addresses for the transforms that borrow them. */
#include "pruner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dead_channels.h"
#include "mask_transform.h"
#include "masks_io.h"
#include "pruning/sparsity.h"

static size_t numel(const sw_shape *s) {
    return sw_shape_numel(s);
}

/* A grid broadcasts onto its shape when every dim is 1 or the full size (kernels of 1 or -1);
 * then the grid itself is the compact mask NNI keeps for activations. */
static bool grid_broadcasts(const sw_shape *grid, const sw_shape *shape) {
    for (int d = 0; d < shape->ndim; d++)
        if (grid->dims[d] != 1 && grid->dims[d] != shape->dims[d]) return false;
    return true;
}

/* Frees every target's buffers and the array (transforms must be detached already). */
static void free_targets(sw_pruner *p) {
    for (int i = 0; i < p->n_targets; i++) {
        free(p->targets[i].metric);
        free(p->targets[i].block_mask);
        sw_tensor_deinit(&p->targets[i].mask);
    }
    free(p->targets);
    p->targets = NULL;
    p->n_targets = 0;
}

void sw_pruner_deinit(sw_pruner *p) {
    free_targets(p);
}

/* Every pruning-mode compressor embeds sw_pruner first (pruner.h), so the cast is the
 * downcast. */
sw_pruner *sw_pruner_of(sw_compressor *c) {
    return c && c->ops->mode == SW_MODE_PRUNING ? (sw_pruner *)c : NULL;
}

sw_prune_target *sw_pruner_find(sw_pruner *p, const char *module, const char *target) {
    for (int i = 0; i < p->n_targets; i++)
        if (strcmp(p->targets[i].module, module) == 0 && strcmp(p->targets[i].name, target) == 0)
            return &p->targets[i];
    return NULL;
}

/* Fills one target record from a resolved config item; attaches its mask transform. */
static sw_status setup_target(sw_pruner *p, const sw_config_target *ct, sw_prune_target *t) {
    sw_wrapper_set *ws = p->base.ws;
    const sw_node *node = &ws->model->nodes[ct->node];
    sw_target *wt = sw_wrapper_target(&ws->wrappers[ct->node], ct->target);
    SW_ASSERT(wt != NULL);
    *t = (sw_prune_target){.node = ct->node,
                           .module = node->name,
                           .kind = wt->kind,
                           .param_index = wt->kind == SW_TARGET_PARAM ? wt->index : -1,
                           .entry = ct->entry};
    snprintf(t->name, sizeof t->name, "%s", ct->target);
    SW_TRY(sw_prune_setting_from_json(ct->setting, &t->setting));
    bool is_param = wt->kind == SW_TARGET_PARAM;
    /* NNI resolves "default" per algorithm: out_channel for parameters (element-wise for
     * Level), per_channel for activations. */
    if (t->setting.granularity.kind == SW_GRANULARITY_DEFAULT)
        t->setting.granularity.kind =
            is_param ? p->pops->default_param_granularity : SW_GRANULARITY_PER_CHANNEL;
    t->configured = t->setting;
    bool active = sw_prune_setting_active(&t->setting);
    if (is_param) {
        t->shape = wt->shape;
    } else {
        if (wt->shape.ndim >= SW_MAX_DIMS)
            return SW_FAIL(SW_ERR_SHAPE, "%s.%s: a %d-d activation cannot be masked", t->module,
                           t->name, wt->shape.ndim);
        /* Activations are scaled as NNI tracks them, batched; a batch of 1 gives the block
         * grid without knowing the batch size (kernels of -1 or 1 on dim 0). */
        SW_TRY(sw_shape_batched(&wt->shape, 1, &t->shape));
        if (active && !p->pops->activation_metrics)
            return SW_FAIL(SW_ERR_CONFIG,
                           "%s.%s: %s ranks parameters only; prune inputs and outputs with align "
                           "(target_settings: {\"%s\": {\"align\": {...}}})",
                           t->module, t->name, p->base.ops->name, t->name);
    }
    SW_TRY(sw_granularity_scaling(&t->setting.granularity, is_param, &t->has_scaling, &t->scaling));
    if (active && p->pops->needs_blocks && !t->has_scaling)
        return SW_FAIL(SW_ERR_CONFIG,
                       "%s.%s: %s compares blocks with each other; element-wise granularity "
                       "(null) is not supported",
                       t->module, t->name, p->base.ops->name);
    t->grid = t->shape;
    if (t->has_scaling) SW_TRY(sw_scaling_grid(&t->scaling, &t->shape, &t->grid, NULL));
    /* Parameters keep full-shape masks; activations NNI's compact broadcastable form. */
    sw_shape mshape = t->shape;
    if (!is_param && t->has_scaling && grid_broadcasts(&t->grid, &t->shape)) mshape = t->grid;
    t->block_mask = malloc(numel(&t->grid) * sizeof(float));
    if (active) t->metric = malloc(numel(&t->grid) * sizeof(double));
    if (!t->block_mask || (active && !t->metric))
        return SW_FAIL(SW_ERR_NOMEM, "out of memory for %s.%s", t->module, t->name);
    for (size_t i = 0; i < numel(&t->grid); i++) t->block_mask[i] = 1.0f;
    SW_TRY(sw_tensor_init(&t->mask, &mshape));
    sw_tensor_fill(&t->mask, 1.0f);
    return sw_mask_attach(ws, t->node, t->name, &t->mask, t->setting.apply_method, p, &t->tf);
}

/* Early, readable errors for groups (the sparsity rules re-check at generation). */
static sw_status check_groups(sw_pruner *p) {
    for (int i = 0; i < p->n_targets; i++) {
        const sw_prune_target *a = &p->targets[i];
        const sw_prune_setting *sa = &a->setting;
        if (sa->has_dependency && !sa->has_ratio)
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d]: %s.%s is in dependency_group_id \"%s\" without a "
                           "sparse_ratio; every member needs the group's sparse_ratio",
                           a->entry, a->module, a->name, sa->dependency_label);
        for (int j = i + 1; j < p->n_targets; j++) {
            const sw_prune_target *b = &p->targets[j];
            const sw_prune_setting *sb = &b->setting;
            if (sa->has_dependency && sb->has_dependency &&
                strcmp(sa->dependency_group, sb->dependency_group) == 0) {
                if (sb->has_ratio && sa->sparse_ratio != sb->sparse_ratio)
                    return SW_FAIL(SW_ERR_CONFIG,
                                   "config_list[%d]: dependency_group_id \"%s\": %s.%s asks for "
                                   "sparse_ratio %g, %s.%s for %g; a group shares one",
                                   b->entry, sa->dependency_label, a->module, a->name,
                                   sa->sparse_ratio, b->module, b->name, sb->sparse_ratio);
                if (numel(&a->grid) != numel(&b->grid))
                    return SW_FAIL(SW_ERR_CONFIG,
                                   "config_list[%d]: dependency_group_id \"%s\": %s.%s has %zu "
                                   "blocks, %s.%s has %zu; members need the same number",
                                   b->entry, sa->dependency_label, a->module, a->name,
                                   numel(&a->grid), b->module, b->name, numel(&b->grid));
            }
            if (sa->has_global && sb->has_global && !sa->has_dependency && !sb->has_dependency &&
                strcmp(sa->global_group, sb->global_group) == 0 && sa->has_ratio && sb->has_ratio &&
                sa->sparse_ratio != sb->sparse_ratio)
                return SW_FAIL(SW_ERR_CONFIG,
                               "config_list[%d]: global_group_id \"%s\": %s.%s asks for "
                               "sparse_ratio %g, %s.%s for %g; a global group shares one",
                               b->entry, sa->global_label, a->module, a->name, sa->sparse_ratio,
                               b->module, b->name, sb->sparse_ratio);
        }
    }
    return SW_OK;
}

/* Warnings for configurations that prune nothing. */
static void warn_inert(sw_pruner *p, int n_entries) {
    for (int e = 0; e < n_entries; e++) {
        bool any = false, active = false;
        for (int i = 0; i < p->n_targets; i++) {
            if (p->targets[i].entry != e) continue;
            any = true;
            active = active || sw_prune_setting_active(&p->targets[i].setting);
        }
        if (any && !active)
            sw_warnings_add(&p->base.warnings,
                            "config_list[%d]: neither sparse_ratio nor sparse_threshold is set; "
                            "its targets stay unpruned unless they align to pruned ones",
                            e);
    }
    for (int i = 0; i < p->n_targets; i++) {
        const sw_prune_target *t = &p->targets[i];
        const sw_align *a = &t->setting.align;
        if (!a->set || sw_prune_setting_active(&t->setting)) continue;
        const char *module = a->module[0] ? a->module : t->module;
        if (!sw_pruner_find(p, module, a->target))
            sw_warnings_add(&p->base.warnings,
                            "%s.%s aligns to %s.%s, which %s does not configure; it stays "
                            "unmasked",
                            t->module, t->name, module, a->target, p->base.ops->name);
    }
}

/* Config resolution, claims, one target record and one mask transform per claimed target,
 * group checks, warnings; then the dead-channel state of the set is brought up to date. */
static sw_status setup(sw_pruner *p, const sw_pruner_ops *pops, const cJSON *config_list) {
    p->pops = pops;
    sw_wrapper_set *ws = p->base.ws;
    sw_config_resolved r;
    SW_TRY(sw_config_resolve(ws->model, config_list, &sw_prune_config_mode, &p->base.warnings, &r));
    sw_status st = SW_OK;
    p->targets = calloc((size_t)(r.n ? r.n : 1), sizeof *p->targets);
    if (!p->targets) st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r.n && st == SW_OK; i++) {
        const sw_config_target *ct = &r.items[i];
        const void *holder = NULL;
        if (!sw_wrapper_set_claim(ws, ct->node, ct->target, SW_MODE_PRUNING, p, &holder)) {
            const sw_compressor *h = holder;
            sw_warnings_add(&p->base.warnings,
                            "config_list[%d]: %s.%s is already pruned by %s (an earlier "
                            "compressor of this model); this config is ignored for it (first "
                            "config wins)",
                            ct->entry, ws->model->nodes[ct->node].name, ct->target,
                            h ? h->ops->name : "another pruner");
            continue;
        }
        /* Counted before setup so that a half-built target is freed on failure. */
        st = setup_target(p, ct, &p->targets[p->n_targets++]);
        if (st != SW_OK) sw_error_prefix("config_list[%d]", ct->entry);
    }
    if (st == SW_OK) st = check_groups(p);
    if (st == SW_OK) warn_inert(p, cJSON_GetArraySize(config_list));
    sw_config_resolved_deinit(&r);
    if (st == SW_OK) st = sw_dead_channels_refresh(ws);
    return st;
}

sw_status sw_pruner_init(sw_pruner *p, const sw_compressor_ops *ops, const sw_pruner_ops *pops,
                         sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev) {
    memset(p, 0, sizeof *p);
    SW_TRY(sw_compressor_init(&p->base, ops, ws, ev));
    sw_status st = setup(p, pops, config_list);
    if (st != SW_OK) {
        sw_compressor_deinit(&p->base);
        free_targets(p);
    }
    return st;
}

sw_status sw_pruner_init_from(sw_pruner *p, const sw_compressor_ops *ops, const sw_pruner_ops *pops,
                              sw_compressor *previous, const cJSON *config_list, sw_evaluator *ev) {
    memset(p, 0, sizeof *p);
    SW_TRY(sw_compressor_init_from(&p->base, ops, previous, ev));
    sw_status st = setup(p, pops, config_list);
    if (st != SW_OK) {
        sw_compressor_deinit(&p->base);
        free_targets(p);
    }
    return st;
}

/* One target from a given mask: no goals, element-wise, applied as is. */
static sw_status setup_fixed_target(sw_pruner *p, const sw_masks_entry *e, sw_prune_target *t) {
    sw_wrapper_set *ws = p->base.ws;
    int node = sw_model_find(ws->model, e->module);
    if (node < 0)
        return SW_FAIL(SW_ERR_NOT_FOUND, "mask %s.%s: \"%s\" is not a module of the model",
                       e->module, e->target, e->module);
    sw_target *wt = sw_wrapper_target(&ws->wrappers[node], e->target);
    if (!wt)
        return SW_FAIL(SW_ERR_NOT_FOUND, "mask %s.%s: \"%s\" (%s) has no target \"%s\"", e->module,
                       e->target, e->module, ws->model->nodes[node].layer->ops->type_name,
                       e->target);
    bool expand;
    if (!sw_mask_shape_fits(&e->mask.shape, &wt->shape, wt->kind == SW_TARGET_PARAM, &expand)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "mask %s.%s has shape %s; the target is %s", e->module,
                       e->target, sw_shape_format(&e->mask.shape, a, sizeof a),
                       sw_shape_format(&wt->shape, b, sizeof b));
    }
    *t = (sw_prune_target){.node = node,
                           .module = ws->model->nodes[node].name,
                           .kind = wt->kind,
                           .param_index = wt->kind == SW_TARGET_PARAM ? wt->index : -1,
                           .entry = -1};
    snprintf(t->name, sizeof t->name, "%s", e->target);
    t->setting = (sw_prune_setting){.apply_method = SW_APPLY_MUL};
    t->setting.granularity.kind = SW_GRANULARITY_ELEMENT;
    t->configured = t->setting;
    if (wt->kind == SW_TARGET_PARAM)
        t->shape = wt->shape;
    else
        SW_TRY(sw_shape_batched(&wt->shape, 1, &t->shape));
    t->grid = e->mask.shape;
    t->block_mask = malloc(e->mask.numel * sizeof(float));
    if (!t->block_mask) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    SW_TRY(sw_tensor_init(&t->mask, &e->mask.shape));
    for (size_t i = 0; i < e->mask.numel; i++)
        t->block_mask[i] = t->mask.data[i] = e->mask.data[i] != 0.0f ? 1.0f : 0.0f;
    return sw_mask_attach(ws, node, t->name, &t->mask, SW_APPLY_MUL, p, &t->tf);
}

sw_status sw_pruner_init_with_masks(sw_pruner *p, const sw_compressor_ops *ops,
                                    const sw_pruner_ops *pops, sw_wrapper_set *ws,
                                    sw_compressor *previous, const sw_masks *masks) {
    memset(p, 0, sizeof *p);
    SW_TRY(previous ? sw_compressor_init_from(&p->base, ops, previous, NULL)
                    : sw_compressor_init(&p->base, ops, ws, NULL));
    p->pops = pops;
    sw_status st = SW_OK;
    p->targets = calloc((size_t)(masks->n ? masks->n : 1), sizeof *p->targets);
    if (!p->targets) st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < masks->n && st == SW_OK; i++) {
        const sw_masks_entry *e = &masks->items[i];
        int node = sw_model_find(p->base.model, e->module);
        const void *holder = NULL;
        if (node >= 0 &&
            !sw_wrapper_set_claim(p->base.ws, node, e->target, SW_MODE_PRUNING, p, &holder)) {
            const sw_compressor *h = holder;
            sw_warnings_add(&p->base.warnings,
                            "mask %s.%s: the target is already pruned by %s; this mask is "
                            "ignored (first config wins)",
                            e->module, e->target, h ? h->ops->name : "another pruner");
            continue;
        }
        st = setup_fixed_target(p, e, &p->targets[p->n_targets++]);
    }
    if (st == SW_OK) st = sw_dead_channels_refresh(p->base.ws);
    if (st != SW_OK) {
        sw_compressor_deinit(&p->base);
        free_targets(p);
    }
    return st;
}

/* Writes a target's applied mask from its block mask and tells the transform. */
static sw_status apply_block_mask(sw_prune_target *t) {
    if (sw_shape_equal(&t->mask.shape, &t->grid)) {
        memcpy(t->mask.data, t->block_mask, t->mask.numel * sizeof(float));
    } else {
        SW_TRY(sw_scaling_expand(&t->scaling, t->block_mask, &t->mask.shape, t->mask.data));
    }
    return t->tf ? sw_mask_refresh(t->tf) : SW_OK;
}

/* Metrics of the active targets -> sparsity rules -> applied masks -> dead channels. A target
 * that no rule generated this round (inactive, or aligned to a source that was not generated)
 * keeps its previous mask, as NNI's update_masks leaves absent targets alone. */
sw_status sw_pruner_generate_masks(sw_pruner *p) {
    if (sw_compressor_is_detached(&p->base))
        return SW_FAIL(SW_ERR_ARG, "%s: the model was unwrapped; masks can no longer be applied",
                       p->base.ops->name);
    sw_sparsity_target *st = calloc((size_t)(p->n_targets ? p->n_targets : 1), sizeof *st);
    if (!st) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    sw_status s = SW_OK;
    for (int i = 0; i < p->n_targets && s == SW_OK; i++) {
        sw_prune_target *t = &p->targets[i];
        bool active = sw_prune_setting_active(&t->setting) && t->metric;
        if (active) {
            s = p->pops->metric(p, t, t->metric);
            if (s != SW_OK) sw_error_prefix("metric of %s.%s", t->module, t->name);
        }
        st[i] = (sw_sparsity_target){.module = t->module,
                                     .name = t->name,
                                     .setting = &t->setting,
                                     .shape = t->shape,
                                     .has_scaling = t->has_scaling,
                                     .scaling = t->scaling,
                                     .grid = t->grid,
                                     .metric = active ? t->metric : NULL,
                                     .block_mask = t->block_mask};
    }
    if (s == SW_OK) s = sw_sparsity_generate(st, p->n_targets);
    for (int i = 0; i < p->n_targets && s == SW_OK; i++)
        if (st[i].generated) s = apply_block_mask(&p->targets[i]);
    free(st);
    if (s == SW_OK) s = sw_dead_channels_refresh(p->base.ws);
    return s;
}

sw_status sw_pruner_update_masks(sw_pruner *p, const sw_masks *masks) {
    if (sw_compressor_is_detached(&p->base))
        return SW_FAIL(SW_ERR_ARG, "%s: the model was unwrapped; masks can no longer be applied",
                       p->base.ops->name);
    for (int i = 0; i < masks->n; i++) {
        const sw_masks_entry *e = &masks->items[i];
        sw_prune_target *t = sw_pruner_find(p, e->module, e->target);
        if (!t) {
            sw_warnings_add(&p->base.warnings,
                            "update_masks: %s.%s is not a target of %s; its "
                            "mask is ignored",
                            e->module, e->target, p->base.ops->name);
            continue;
        }
        if (!sw_shape_equal(&e->mask.shape, &t->mask.shape)) {
            char a[64], b[64];
            return SW_FAIL(SW_ERR_SHAPE, "update_masks: %s.%s: mask of shape %s, expected %s",
                           e->module, e->target, sw_shape_format(&e->mask.shape, a, sizeof a),
                           sw_shape_format(&t->mask.shape, b, sizeof b));
        }
        for (size_t k = 0; k < t->mask.numel; k++)
            t->mask.data[k] = e->mask.data[k] != 0.0f ? 1.0f : 0.0f;
        if (t->tf) SW_TRY(sw_mask_refresh(t->tf));
    }
    return sw_dead_channels_refresh(p->base.ws);
}

/* NNI returns the masks of every shared wrapper; ours are exactly those of the pruners in the
 * chain (compressors of other modes have no masks). Walking from the oldest keeps the order
 * stable whichever member is asked. */
sw_status sw_pruner_get_masks(const sw_compressor *c, sw_masks *out) {
    sw_masks_init(out);
    const sw_compressor *first = c;
    while (first->previous) first = first->previous;
    for (const sw_compressor *m = first; m; m = m->next) {
        if (m->ops->mode != SW_MODE_PRUNING) continue;
        const sw_pruner *p = (const sw_pruner *)m;
        for (int i = 0; i < p->n_targets; i++) {
            sw_status st =
                sw_masks_add(out, p->targets[i].module, p->targets[i].name, &p->targets[i].mask);
            if (st != SW_OK) {
                sw_masks_deinit(out);
                return st;
            }
        }
    }
    return SW_OK;
}

/* Scales from the configured goals, not the current ones: a schedule sets absolute levels
 * (k/T of the goal), it does not compound. */
void sw_pruner_scale_goals(sw_pruner *p, double factor) {
    for (int i = 0; i < p->n_targets; i++) {
        sw_prune_setting *s = &p->targets[i].setting;
        const sw_prune_setting *c = &p->targets[i].configured;
        if (c->has_ratio) s->sparse_ratio = c->sparse_ratio * factor;
        if (c->has_threshold) s->sparse_threshold = c->sparse_threshold * factor;
        if (c->has_min) s->min_sparse_ratio = c->min_sparse_ratio * factor;
        if (c->has_max) s->max_sparse_ratio = c->max_sparse_ratio * factor;
    }
}

sw_status sw_pruner_set_schedule(sw_pruner *p, long interval_steps, int total_times) {
    if (!p->pops->set_schedule)
        return SW_FAIL(SW_ERR_UNSUPPORTED, "%s cannot be scheduled", p->base.ops->name);
    p->pops->set_schedule(p, interval_steps, total_times);
    return SW_OK;
}

sw_status sw_pruner_export(sw_compressor *c, const char *path) {
    sw_masks m;
    SW_TRY(sw_pruner_get_masks(c, &m));
    const char *meta[] = {"pruner", c->ops->name, "arch", c->model->arch, NULL};
    sw_status st = sw_masks_save(&m, path, meta);
    sw_masks_deinit(&m);
    return st;
}
