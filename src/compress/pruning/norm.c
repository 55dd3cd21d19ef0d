/* norm.c - compress behaviour and the scheduled trigger of the one-shot norm pruners. */
#include "norm.h"

#include <stdlib.h>

const sw_tensor *sw_prune_target_value(const sw_pruner *p, const sw_prune_target *t) {
    return &p->base.model->nodes[t->node].layer->params[t->param_index].value;
}

/* NNI's optimizer task: count steps; regenerate when the count reaches the interval; restart
 * the count while generations remain. */
static sw_status trigger_after_step(void *ctx, sw_train_state *st) {
    sw_norm_pruner *n = ctx;
    (void)st;
    n->current_step++;
    if ((n->is_first_step && n->first_step_gen) || n->current_step == n->interval_steps) {
        SW_TRY(sw_pruner_generate_masks(&n->p));
        if (n->remaining > 0) n->remaining--;
    }
    if (n->current_step == n->interval_steps && n->remaining != 0) n->current_step = 0;
    n->is_first_step = false;
    return SW_OK;
}

/* Alone and unscheduled: one generation from the current weights, no training. */
sw_status sw_norm_pruner_single_compress(sw_compressor *c, long max_steps, int max_epochs) {
    sw_norm_pruner *n = (sw_norm_pruner *)c;
    /* Scheduled by Linear/AGP: masks change during training, the fused procedure. */
    if (n->interval_steps > 0) return sw_compressor_compress_fused(c, max_steps, max_epochs);
    if (max_steps >= 0 || max_epochs >= 0)
        return SW_FAIL(SW_ERR_ARG,
                       "%s is one-shot: compress takes no max_steps or max_epochs (pass -1); "
                       "fine-tune afterwards with the evaluator, or fuse it with a "
                       "training-aware compressor",
                       c->ops->name);
    return sw_pruner_generate_masks(&n->p);
}

sw_status sw_norm_pruner_fuse_preprocess(sw_compressor *c) {
    sw_norm_pruner *n = (sw_norm_pruner *)c;
    if (n->interval_steps > 0) {
        n->current_step = 0;
        n->is_first_step = true;
        n->remaining = n->total_times;
        c->hooks.after_step = trigger_after_step;
        return SW_OK;
    }
    /* Not scheduled: NNI's trigger would never fire; we generate once, before training. */
    c->hooks.after_step = NULL;
    return sw_pruner_generate_masks(&n->p);
}

/* Only a schedule makes a norm pruner depend on training steps. */
bool sw_norm_pruner_needs_training(const sw_compressor *c) {
    return ((const sw_norm_pruner *)c)->interval_steps > 0;
}

void sw_norm_pruner_set_schedule(sw_pruner *p, long interval_steps, int total_times) {
    sw_norm_pruner *n = (sw_norm_pruner *)p;
    n->interval_steps = interval_steps;
    n->total_times = total_times;
}

void sw_norm_pruner_free(sw_compressor *c) {
    sw_norm_pruner *n = (sw_norm_pruner *)c;
    sw_pruner_deinit(&n->p);
    free(n);
}

sw_status sw_norm_pruner_new(const sw_compressor_ops *ops, const sw_pruner_ops *pops,
                             sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                             sw_evaluator *ev, sw_compressor **out) {
    if (!config_list) return SW_FAIL(SW_ERR_ARG, "%s: no config list", ops->name);
    sw_norm_pruner *n = calloc(1, sizeof *n);
    if (!n) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %s", ops->name);
    sw_status st = previous ? sw_pruner_init_from(&n->p, ops, pops, previous, config_list, ev)
                            : sw_pruner_init(&n->p, ops, pops, ws, config_list, ev);
    if (st != SW_OK) {
        free(n);
        sw_error_prefix("%s", ops->name);
        return st;
    }
    n->interval_steps = -1;
    n->total_times = 1;
    *out = &n->p.base;
    return SW_OK;
}
