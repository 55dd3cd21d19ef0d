/* compressor.c - base construction, fused compress, unwrap, free.
 *
 * The chain is a doubly linked list through previous/next, newest at the end. NNI keeps a list
 * of fused compressors on the newest one; a linked list lets any member be freed first (its
 * neighbours are joined) without leaving dangling entries behind. */
#include "compressor.h"

#include "pruner.h"

#include <stdlib.h>

sw_status sw_compressor_init(sw_compressor *c, const sw_compressor_ops *ops, sw_wrapper_set *ws,
                             sw_evaluator *ev) {
    if (!ws)
        return SW_FAIL(SW_ERR_ARG, "%s: no wrapper set (create one with sw_wrapper_set_new)",
                       ops->name);
    *c = (sw_compressor){
        .ops = ops, .ws = ws, .model = ws->model, .ev = ev, .generation = ws->generation};
    sw_wrapper_set_retain(ws);
    sw_warnings_init(&c->warnings);
    c->hooks.ctx = c;
    c->hooks.name = ops->name;
    return SW_OK;
}

sw_status sw_compressor_init_from(sw_compressor *c, const sw_compressor_ops *ops,
                                  sw_compressor *previous, sw_evaluator *ev) {
    if (!previous)
        return SW_FAIL(SW_ERR_ARG, "%s.from_compressor: no previous compressor", ops->name);
    if (previous->next)
        return SW_FAIL(SW_ERR_ARG,
                       "%s.from_compressor: %s already has a successor (%s); build on the newest "
                       "compressor of the chain",
                       ops->name, previous->ops->name, previous->next->ops->name);
    if (sw_compressor_is_detached(previous))
        return SW_FAIL(SW_ERR_ARG,
                       "%s.from_compressor: %s was unwrapped; its model no longer carries "
                       "compressors to fuse with",
                       ops->name, previous->ops->name);
    sw_evaluator *use = previous->ev ? previous->ev : ev;
    SW_TRY(sw_compressor_init(c, ops, previous->ws, use));
    if (previous->ev && ev && ev != previous->ev)
        sw_warnings_add(&c->warnings,
                        "%s.from_compressor: %s already has an evaluator; the one given is "
                        "ignored",
                        ops->name, previous->ops->name);
    c->previous = previous;
    previous->next = c;
    return SW_OK;
}

void sw_compressor_deinit(sw_compressor *c) {
    if (!c->ws) return;
    sw_wrapper_set_detach_owner(c->ws, c);
    if (c->previous) c->previous->next = c->next;
    if (c->next) c->next->previous = c->previous;
    c->previous = c->next = NULL;
    sw_warnings_deinit(&c->warnings);
    sw_wrapper_set_release(c->ws);
    c->ws = NULL;
}

bool sw_compressor_is_detached(const sw_compressor *c) {
    return c->ws->generation != c->generation;
}

int sw_compressor_chain_length(const sw_compressor *c) {
    int n = 0;
    for (; c; c = c->previous) n++;
    return n;
}

const sw_warnings *sw_compressor_warnings(const sw_compressor *c) {
    return &c->warnings;
}

/* Compressors without callbacks are not registered: the evaluator has a fixed number of
 * hook slots, and an empty record would only cost a loop iteration per callback per step. */
static bool has_callbacks(const sw_train_hooks *h) {
    return h->on_train_begin || h->loss_terms || h->before_step || h->after_step ||
           h->on_epoch_end || h->on_train_end;
}

/* NNI's _fusion_compress over the chain ending at c, newest first. */
sw_status sw_compressor_compress_fused(sw_compressor *c, long max_steps, int max_epochs) {
    bool training = max_steps >= 0 || max_epochs >= 0;
    for (sw_compressor *m = c; m; m = m->previous) {
        if (sw_compressor_is_detached(m))
            return SW_FAIL(SW_ERR_ARG, "%s: the model was unwrapped; build a new compressor",
                           m->ops->name);
        if (m->ops->needs_training && m->ops->needs_training(m)) {
            if (!training)
                return SW_FAIL(SW_ERR_ARG,
                               "%s trains while it compresses: give max_steps or max_epochs to "
                               "compress",
                               m->ops->name);
        }
    }
    /* A chain that needs no training and gets no limits only pre- and post-processes: a chain
     * of one-shot pruners compresses without an evaluator (NNI would demand one). */
    if (training && !c->ev)
        return SW_FAIL(SW_ERR_ARG,
                       "%s: compress(%ld steps, %d epochs) trains, but no evaluator was given to "
                       "any compressor of the chain",
                       c->ops->name, max_steps, max_epochs);
    for (sw_compressor *m = c; m; m = m->previous)
        if (m->ops->fuse_preprocess) {
            sw_status st = m->ops->fuse_preprocess(m);
            if (st != SW_OK) {
                sw_error_prefix("%s", m->ops->name);
                return st;
            }
        }
    sw_status st = SW_OK;
    if (training) {
        for (sw_compressor *m = c; m && st == SW_OK; m = m->previous)
            if (has_callbacks(&m->hooks)) st = sw_evaluator_add_hooks(c->ev, &m->hooks);
        if (st == SW_OK) st = sw_evaluator_train(c->ev, c->model, max_steps, max_epochs);
        for (sw_compressor *m = c; m; m = m->previous) sw_evaluator_remove_hooks(c->ev, &m->hooks);
        /* A stop at a step boundary leaves a consistent model: post-process it anyway. */
        if (st != SW_OK && st != SW_ERR_INTERRUPTED) return st;
    }
    for (sw_compressor *m = c; m; m = m->previous)
        if (m->ops->fuse_postprocess) {
            sw_status pst = m->ops->fuse_postprocess(m);
            if (pst != SW_OK) {
                sw_error_prefix("%s", m->ops->name);
                return pst;
            }
        }
    return st;
}

sw_status sw_compressor_compress(sw_compressor *c, long max_steps, int max_epochs) {
    if (sw_compressor_is_detached(c))
        return SW_FAIL(SW_ERR_ARG, "%s: the model was unwrapped; build a new compressor",
                       c->ops->name);
    if (!c->previous && c->ops->single_compress) {
        sw_status st = c->ops->single_compress(c, max_steps, max_epochs);
        if (st != SW_OK) sw_error_prefix("%s", c->ops->name);
        return st;
    }
    return sw_compressor_compress_fused(c, max_steps, max_epochs);
}

/* The set's warnings accumulate over its life; only what this unwrap added is copied. */
sw_status sw_compressor_unwrap_model(sw_compressor *c) {
    int before = sw_warnings_count(&c->ws->warnings);
    SW_TRY(sw_wrapper_set_unwrap(c->ws));
    /* The transforms are gone: pruners of the chain forget their pointers to them, so that
     * nothing can reach a freed transform through a target record. */
    const sw_compressor *first = c;
    while (first->previous) first = first->previous;
    for (const sw_compressor *m = first; m; m = m->next) {
        if (m->ops->mode != SW_MODE_PRUNING) continue;
        sw_pruner *p = (sw_pruner *)m;
        for (int i = 0; i < p->n_targets; i++) p->targets[i].tf = NULL;
    }
    for (int i = before; i < sw_warnings_count(&c->ws->warnings); i++)
        sw_warnings_add(&c->warnings, "%s", sw_warnings_get(&c->ws->warnings, i));
    return SW_OK;
}

sw_status sw_compressor_export(sw_compressor *c, const char *path) {
    if (!c->ops->export_file)
        return SW_FAIL(SW_ERR_UNSUPPORTED, "%s has nothing to export", c->ops->name);
    return c->ops->export_file(c, path);
}

void sw_compressor_free(sw_compressor *c) {
    if (!c) return;
    sw_compressor_deinit(c);
    c->ops->free(c);
}
