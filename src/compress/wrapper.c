/* wrapper.c - the wrapper set: targets, transform chains, executor hooks, unwrap.
 *
 * Memory: everything a wrapper computes during a step (effective parameters, copies of
 * transformed inputs, saved transform inputs, gradients of effective parameters) comes from the
 * model's arena, which the executor resets at each forward. A wrapped training step therefore
 * allocates nothing once the arena has grown to its peak, like a bare one.
 *
 * The executor keeps the io record of a node's last forward for its backward (model.h); the
 * hooks rely on that: io->params[] and io->in[] still point at the effective tensors in
 * backward, so a layer's backward sees exactly the values its forward used. */
#include "wrapper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dead_channels.h"

/* ---- the executor hooks ------------------------------------------------------------------ */

/* A tensor of `shape` in step memory (the model's arena, reset at each forward). */
static sw_status arena_tensor(sw_arena *arena, const sw_shape *shape, bool zero, sw_tensor *out) {
    size_t n = sw_shape_numel(shape);
    float *data = zero ? sw_arena_floats(arena, n) : sw_arena_alloc(arena, n * sizeof(float));
    if (!data) return SW_FAIL(SW_ERR_NOMEM, "out of step memory for a wrapper (%zu floats)", n);
    *out = sw_tensor_view(data, shape);
    return SW_OK;
}

/* Runs a target's chain forward from x into y (y may alias x: outputs are done in place).
 * Keeps each transform's input when its backward needs it: x itself when x is stable for the
 * whole step (a raw parameter or another node's output), otherwise a copy. */
static sw_status chain_forward(sw_target *t, const sw_transform_call *call, const sw_tensor *x,
                               sw_tensor *y, sw_arena *arena) {
    const sw_tensor *cur = x;
    for (int i = 0; i < t->n_tf; i++) {
        sw_transform *tf = t->tf[i];
        if (tf->ops->needs_input) {
            if (cur == x && x != y) {
                tf->saved = *cur;
            } else {
                SW_TRY(arena_tensor(arena, &cur->shape, false, &tf->saved));
                memcpy(tf->saved.data, cur->data, cur->numel * sizeof(float));
            }
        }
        if (tf->ops->observer) {
            if (tf->ops->forward) SW_TRY(tf->ops->forward(tf, call, cur, NULL));
            continue;
        }
        SW_TRY(tf->ops->forward(tf, call, cur, y));
        cur = y;
    }
    return SW_OK;
}

/* Runs a target's chain backward, in place on the gradient g, last transform first. */
static sw_status chain_backward(sw_target *t, const sw_transform_call *call, sw_tensor *g) {
    for (int i = t->n_tf - 1; i >= 0; i--) {
        sw_transform *tf = t->tf[i];
        if (tf->ops->observer || !tf->ops->backward) continue;
        SW_TRY(tf->ops->backward(tf, call, tf->ops->needs_input ? &tf->saved : NULL, g));
    }
    return SW_OK;
}

/* Parameters and inputs: run their chains and substitute the effective tensors in io. Output
 * chains wait for after_forward. */
static sw_status hook_before_forward(void *ctx, sw_node *node, sw_layer_io *io) {
    sw_wrapper *w = ctx;
    (void)node;
    for (int k = 0; k < w->n_targets; k++) {
        sw_target *t = &w->targets[k];
        if (t->n_tf == 0 || t->kind == SW_TARGET_OUTPUT) continue;
        sw_transform_call call = {.wrapper = w, .target = t, .training = io->training, .batch = 1};
        if (t->kind == SW_TARGET_PARAM) {
            const sw_tensor *raw = io->params[t->index];
            if (t->n_active == 0) {
                SW_TRY(chain_forward(t, &call, raw, NULL, io->arena));
                continue;
            }
            /* W' goes to step memory; the raw W stays the trainable copy. */
            SW_TRY(arena_tensor(io->arena, &raw->shape, false, &t->eff));
            SW_TRY(chain_forward(t, &call, raw, &t->eff, io->arena));
            io->params[t->index] = &t->eff;
        } else {
            const sw_tensor *x = io->in[t->index];
            call.batch = x->shape.dims[0];
            if (t->n_active == 0) {
                SW_TRY(chain_forward(t, &call, x, NULL, io->arena));
                continue;
            }
            /* A copy: other consumers of the producer must see its untransformed output. */
            SW_TRY(arena_tensor(io->arena, &x->shape, false, &t->eff));
            SW_TRY(chain_forward(t, &call, x, &t->eff, io->arena));
            io->in[t->index] = &t->eff;
        }
    }
    return SW_OK;
}

/* Output chains, in place on the node's output: consumers read the transformed value. */
static sw_status hook_after_forward(void *ctx, sw_node *node, sw_layer_io *io) {
    sw_wrapper *w = ctx;
    (void)node;
    for (int k = 0; k < w->n_targets; k++) {
        sw_target *t = &w->targets[k];
        if (t->n_tf == 0 || t->kind != SW_TARGET_OUTPUT) continue;
        sw_transform_call call = {
            .wrapper = w, .target = t, .training = io->training, .batch = io->out->shape.dims[0]};
        SW_TRY(chain_forward(t, &call, io->out, t->n_active ? io->out : NULL, io->arena));
    }
    return SW_OK;
}

/* dL/d(output') arrives in dout: the output chains map it to dL/d(output) in place before the
 * layer sees it. Parameters with active chains get a zeroed scratch gradient so that what the
 * layer accumulates there is exactly dL/dW' of this step, whatever the raw gradient held. */
static sw_status hook_before_backward(void *ctx, sw_node *node, sw_layer_io *io, sw_tensor *dout,
                                      sw_tensor **dparams) {
    sw_wrapper *w = ctx;
    (void)node;
    for (int k = 0; k < w->n_targets; k++) {
        sw_target *t = &w->targets[k];
        t->raw_grad = NULL;
        if (t->n_active == 0) continue;
        if (t->kind == SW_TARGET_OUTPUT) {
            sw_transform_call call = {
                .wrapper = w, .target = t, .training = io->training, .batch = dout->shape.dims[0]};
            SW_TRY(chain_backward(t, &call, dout));
        } else if (t->kind == SW_TARGET_PARAM && dparams[t->index]) {
            /* The layer writes dL/dW' here; after_backward maps it onto dL/dW. */
            t->raw_grad = dparams[t->index];
            SW_TRY(arena_tensor(io->arena, &t->raw_grad->shape, true, &t->eff_grad));
            dparams[t->index] = &t->eff_grad;
        }
    }
    return SW_OK;
}

/* dL/dW' -> dL/dW through the parameter chains, accumulated into the raw gradient (backward
 * accumulates, by the layers' contract); this node's dL/dx' -> dL/dx through the input chains
 * (the executor hands over this node's contribution alone and sums it afterwards). */
static sw_status hook_after_backward(void *ctx, sw_node *node, sw_layer_io *io, sw_tensor **din,
                                     sw_tensor **dparams) {
    sw_wrapper *w = ctx;
    (void)node;
    (void)dparams;
    for (int k = 0; k < w->n_targets; k++) {
        sw_target *t = &w->targets[k];
        if (t->n_active == 0) continue;
        sw_transform_call call = {.wrapper = w, .target = t, .training = io->training, .batch = 1};
        if (t->kind == SW_TARGET_PARAM && t->raw_grad) {
            SW_TRY(chain_backward(t, &call, &t->eff_grad));
            float *dst = t->raw_grad->data;
            const float *src = t->eff_grad.data;
            for (size_t i = 0; i < t->eff_grad.numel; i++) dst[i] += src[i];
            t->raw_grad = NULL;
        } else if (t->kind == SW_TARGET_INPUT && din[t->index]) {
            call.batch = din[t->index]->shape.dims[0];
            SW_TRY(chain_backward(t, &call, din[t->index]));
        }
    }
    return SW_OK;
}

/* ---- targets and the set --------------------------------------------------------------- */

sw_target_kind sw_target_kind_of(const char *name) {
    if (strncmp(name, "_input_", 7) == 0) return SW_TARGET_INPUT;
    if (strncmp(name, "_output_", 8) == 0) return SW_TARGET_OUTPUT;
    return SW_TARGET_PARAM;
}

/* Appends a target record; a node has at most SW_WRAPPER_MAX_TARGETS of them. */
static void add_target(sw_wrapper *w, const char *name, sw_target_kind kind, int index,
                       const sw_shape *shape) {
    SW_ASSERT(w->n_targets < SW_WRAPPER_MAX_TARGETS);
    sw_target *t = &w->targets[w->n_targets++];
    *t = (sw_target){.kind = kind, .index = index, .shape = *shape};
    snprintf(t->name, sizeof t->name, "%s", name);
}

/* The wrapper of node i: hooks bound to it (installed only while it has transforms) and one
 * target per trainable parameter, per input, and for the output. Buffers (BatchNorm running
 * statistics) are not targets: nothing trains or prunes them. */
static void init_wrapper(sw_wrapper_set *ws, int i) {
    sw_model *m = ws->model;
    sw_node *node = &m->nodes[i];
    sw_wrapper *w = &ws->wrappers[i];
    *w = (sw_wrapper){.set = ws, .node = i};
    w->hooks = (sw_node_hooks){.ctx = w,
                               .before_forward = hook_before_forward,
                               .after_forward = hook_after_forward,
                               .before_backward = hook_before_backward,
                               .after_backward = hook_after_backward};
    sw_layer *l = node->layer;
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].trainable)
            add_target(w, l->params[p].name, SW_TARGET_PARAM, p, &l->param_shapes[p]);
    for (int j = 0; j < node->n_inputs; j++) {
        char name[SW_TARGET_NAME_MAX];
        snprintf(name, sizeof name, "_input_%d", j);
        const sw_shape *s = node->inputs[j] == SW_NODE_INPUT ? &m->input_shape
                                                             : &m->nodes[node->inputs[j]].out_shape;
        add_target(w, name, SW_TARGET_INPUT, j, s);
    }
    add_target(w, "_output_0", SW_TARGET_OUTPUT, 0, &node->out_shape);
}

sw_status sw_wrapper_set_new(sw_model *model, sw_wrapper_set **out) {
    if (!model->finalized) SW_TRY(sw_model_finalize(model));
    for (int i = 0; i < model->n_nodes; i++)
        if (model->nodes[i].hooks)
            return SW_FAIL(SW_ERR_ARG,
                           "node \"%s\" already has hooks: the model is wrapped by another "
                           "wrapper set; build further compressors with from_compressor",
                           model->nodes[i].name);
    sw_wrapper_set *ws = calloc(1, sizeof *ws);
    if (!ws) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a wrapper set");
    ws->model = model;
    ws->refs = 1;
    ws->zero_downstream = true;
    ws->n_wrappers = model->n_nodes;
    ws->wrappers = calloc((size_t)model->n_nodes, sizeof *ws->wrappers);
    sw_warnings_init(&ws->warnings);
    if (!ws->wrappers) {
        free(ws);
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %d wrappers", model->n_nodes);
    }
    for (int i = 0; i < model->n_nodes; i++) init_wrapper(ws, i);
    *out = ws;
    return SW_OK;
}

void sw_wrapper_set_retain(sw_wrapper_set *ws) {
    ws->refs++;
}

/* Releases a transform's state through its ops, then the record. */
static void free_transform(sw_transform *t) {
    if (t->ops->free) t->ops->free(t);
    free(t);
}

/* Detaches every transform, without refreshing derived masks. */
static void detach_all(sw_wrapper_set *ws) {
    for (int i = 0; i < ws->n_wrappers; i++) {
        sw_wrapper *w = &ws->wrappers[i];
        for (int k = 0; k < w->n_targets; k++) {
            sw_target *t = &w->targets[k];
            for (int j = 0; j < t->n_tf; j++) free_transform(t->tf[j]);
            free(t->tf);
            t->tf = NULL;
            t->n_tf = t->cap_tf = t->n_active = 0;
        }
        w->n_tf = 0;
        ws->model->nodes[i].hooks = NULL;
    }
}

void sw_wrapper_set_release(sw_wrapper_set *ws) {
    if (!ws || --ws->refs > 0) return;
    detach_all(ws);
    sw_dead_channels_clear(ws);
    free(ws->wrappers);
    free(ws->claims);
    sw_warnings_deinit(&ws->warnings);
    free(ws);
}

sw_wrapper *sw_wrapper_set_get(sw_wrapper_set *ws, int node) {
    SW_ASSERT(node >= 0 && node < ws->n_wrappers);
    return &ws->wrappers[node];
}

sw_target *sw_wrapper_target(sw_wrapper *w, const char *name) {
    for (int k = 0; k < w->n_targets; k++)
        if (strcmp(w->targets[k].name, name) == 0) return &w->targets[k];
    return NULL;
}

/* The zero-overhead rule: a node has hooks exactly while its wrapper has transforms. */
static void sync_hooks(sw_wrapper *w) {
    w->set->model->nodes[w->node].hooks = w->n_tf > 0 ? &w->hooks : NULL;
    /* Only input chains need the executor's per-node input-gradient buffers. */
    w->hooks.transforms_inputs = false;
    for (int k = 0; k < w->n_targets; k++)
        if (w->targets[k].kind == SW_TARGET_INPUT && w->targets[k].n_tf > 0)
            w->hooks.transforms_inputs = true;
}

sw_status sw_wrapper_set_attach(sw_wrapper_set *ws, int node, const char *target,
                                const sw_transform_ops *ops, int stage, const void *owner,
                                void *state, sw_transform **out) {
    /* `state` is ours from here on: every failure below releases it through ops->free. */
    sw_transform tmp = {.ops = ops, .stage = stage, .owner = owner, .state = state};
    if (node < 0 || node >= ws->n_wrappers) {
        if (ops->free) ops->free(&tmp);
        return SW_FAIL(SW_ERR_ARG, "node index %d is not in the model", node);
    }
    if (!ops->observer && !ops->forward) {
        if (ops->free) ops->free(&tmp);
        return SW_FAIL(SW_ERR_ARG, "transform \"%s\" changes values but has no forward",
                       ops->name ? ops->name : "?");
    }
    sw_wrapper *w = &ws->wrappers[node];
    sw_target *t = sw_wrapper_target(w, target);
    if (!t) {
        if (ops->free) ops->free(&tmp);
        return SW_FAIL(SW_ERR_NOT_FOUND, "\"%s\" (%s) has no target \"%s\"",
                       ws->model->nodes[node].name, ws->model->nodes[node].layer->ops->type_name,
                       target);
    }
    sw_transform *tf = malloc(sizeof *tf);
    if (t->n_tf == t->cap_tf && tf) {
        int cap = t->cap_tf ? 2 * t->cap_tf : 4;
        sw_transform **grown = realloc(t->tf, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(tf);
            tf = NULL;
        } else {
            t->tf = grown;
            t->cap_tf = cap;
        }
    }
    if (!tf) {
        if (ops->free) ops->free(&tmp);
        return SW_FAIL(SW_ERR_NOMEM, "cannot attach a transform");
    }
    *tf = tmp;
    /* Stable insertion by stage: after every transform of a lower or equal stage. */
    int at = t->n_tf;
    while (at > 0 && t->tf[at - 1]->stage > stage) at--;
    memmove(&t->tf[at + 1], &t->tf[at], (size_t)(t->n_tf - at) * sizeof *t->tf);
    t->tf[at] = tf;
    t->n_tf++;
    if (!ops->observer) t->n_active++;
    w->n_tf++;
    sync_hooks(w);
    if (out) *out = tf;
    return SW_OK;
}

/* Removes transform `tf` from whichever target holds it; returns false when not found. */
static bool remove_transform(sw_wrapper_set *ws, sw_transform *tf) {
    for (int i = 0; i < ws->n_wrappers; i++) {
        sw_wrapper *w = &ws->wrappers[i];
        for (int k = 0; k < w->n_targets; k++) {
            sw_target *t = &w->targets[k];
            for (int j = 0; j < t->n_tf; j++) {
                if (t->tf[j] != tf) continue;
                memmove(&t->tf[j], &t->tf[j + 1], (size_t)(t->n_tf - j - 1) * sizeof *t->tf);
                t->n_tf--;
                if (!tf->ops->observer) t->n_active--;
                w->n_tf--;
                sync_hooks(w);
                free_transform(tf);
                return true;
            }
        }
    }
    return false;
}

void sw_wrapper_set_detach(sw_wrapper_set *ws, sw_transform *t) {
    if (t) remove_transform(ws, t);
}

void sw_wrapper_set_detach_owner(sw_wrapper_set *ws, const void *owner) {
    bool removed = false;
    for (int i = 0; i < ws->n_wrappers; i++) {
        sw_wrapper *w = &ws->wrappers[i];
        for (int k = 0; k < w->n_targets; k++) {
            sw_target *t = &w->targets[k];
            int kept = 0;
            for (int j = 0; j < t->n_tf; j++) {
                sw_transform *tf = t->tf[j];
                if (tf->owner != owner) {
                    t->tf[kept++] = tf;
                    continue;
                }
                if (!tf->ops->observer) t->n_active--;
                w->n_tf--;
                free_transform(tf);
                removed = true;
            }
            t->n_tf = kept;
        }
        sync_hooks(w);
    }
    int kept = 0;
    for (int c = 0; c < ws->n_claims; c++)
        if (ws->claims[c].owner != owner) ws->claims[kept++] = ws->claims[c];
    ws->n_claims = kept;
    /* Masks changed: what is dead downstream may have changed too. */
    if (removed && owner != (const void *)ws) sw_dead_channels_refresh(ws);
}

int sw_wrapper_set_transform_count(const sw_wrapper_set *ws) {
    int n = 0;
    for (int i = 0; i < ws->n_wrappers; i++) n += ws->wrappers[i].n_tf;
    return n;
}

bool sw_wrapper_set_claim(sw_wrapper_set *ws, int node, const char *target, int mode,
                          const void *owner, const void **holder) {
    for (int c = 0; c < ws->n_claims; c++) {
        sw_target_claim *cl = &ws->claims[c];
        if (cl->node == node && cl->mode == mode && strcmp(cl->target, target) == 0) {
            if (holder) *holder = cl->owner;
            return cl->owner == owner;
        }
    }
    if (ws->n_claims == ws->cap_claims) {
        int cap = ws->cap_claims ? 2 * ws->cap_claims : 16;
        sw_target_claim *grown = realloc(ws->claims, (size_t)cap * sizeof *grown);
        /* Without memory the claim is simply not recorded: a later duplicate is then not
         * detected, which costs a warning, not correctness of this compressor. */
        if (!grown) return true;
        ws->claims = grown;
        ws->cap_claims = cap;
    }
    sw_target_claim *cl = &ws->claims[ws->n_claims++];
    *cl = (sw_target_claim){.node = node, .mode = mode, .owner = owner};
    snprintf(cl->target, sizeof cl->target, "%s", target);
    return true;
}

/* Masks of one target combine by product (AND for 0/1 values): a mask loaded from a file, a
 * pruner's mask and a derived mask on the same parameter all apply. */
bool sw_target_mask(const sw_target *t, const sw_wrapper_set *ws, bool include_derived,
                    float *out) {
    size_t n = sw_shape_numel(&t->shape);
    bool any = false;
    for (int j = 0; j < t->n_tf; j++) {
        const sw_transform *tf = t->tf[j];
        if (!tf->ops->mask || (!include_derived && tf->owner == (const void *)ws)) continue;
        const float *m = tf->ops->mask(tf);
        if (!m) continue;
        if (!any)
            memcpy(out, m, n * sizeof(float));
        else
            for (size_t i = 0; i < n; i++) out[i] *= m[i];
        any = true;
    }
    return any;
}

/* ---- unwrap: bake masks into the weights ------------------------------------------------ */

/* Per-channel values of a per-sample mask [C, ...]: keep[c] = 1/0. False when some channel
 * is only partly masked (then it cannot be expressed by zeroing whole channels). */
static bool channel_values(const float *mask, const sw_shape *shape, float *keep) {
    int c_n = shape->dims[0];
    size_t per = sw_shape_numel(shape) / (size_t)c_n;
    for (int c = 0; c < c_n; c++) {
        const float *m = mask + (size_t)c * per;
        keep[c] = m[0] != 0.0f ? 1.0f : 0.0f;
        for (size_t i = 1; i < per; i++)
            if ((m[i] != 0.0f) != (keep[c] != 0.0f)) return false;
    }
    return true;
}

/* Zeroes output channel c of a Conv2d/Linear/BatchNorm: its weight row and its bias. */
static void zero_out_channel(sw_layer *l, int c) {
    for (int p = 0; p < l->n_params; p++) {
        sw_param *par = &l->params[p];
        if (!par->trainable) continue;
        size_t per = par->value.numel / (size_t)par->value.shape.dims[0];
        memset(par->value.data + (size_t)c * per, 0, per * sizeof(float));
    }
}

/* Zeroes what reads input channel c of a Conv2d (groups respected) or input feature c of a
 * Linear. */
static void zero_in_channel(sw_layer *l, int c) {
    int w = sw_layer_param_index(l, "weight");
    sw_tensor *wt = &l->params[w].value;
    if (l->kind == SW_LAYER_LINEAR) {
        int out = wt->shape.dims[0], in = wt->shape.dims[1];
        for (int o = 0; o < out; o++) wt->data[(size_t)o * (size_t)in + (size_t)c] = 0.0f;
        return;
    }
    /* Conv2d weight [O, I/groups, kh, kw]: channel c belongs to group c / (I/groups). */
    int groups = l->hp.groups, o_n = wt->shape.dims[0], i_g = wt->shape.dims[1];
    size_t k = (size_t)wt->shape.dims[2] * (size_t)wt->shape.dims[3];
    int g = c / i_g, ci = c % i_g, o_per = o_n / groups;
    for (int o = g * o_per; o < (g + 1) * o_per; o++)
        memset(wt->data + ((size_t)o * (size_t)i_g + (size_t)ci) * k, 0, k * sizeof(float));
}

static bool is_weighted(sw_layer_kind k) {
    return k == SW_LAYER_CONV2D || k == SW_LAYER_LINEAR || k == SW_LAYER_BATCHNORM2D ||
           k == SW_LAYER_BATCHNORM1D;
}

/* Bakes the masks of one activation target; warns when that is impossible. */
static sw_status bake_activation(sw_wrapper_set *ws, sw_wrapper *w, sw_target *t,
                                 const float *mask) {
    sw_node *node = &ws->model->nodes[w->node];
    sw_layer *l = node->layer;
    int c_n = t->shape.ndim ? t->shape.dims[0] : 1;
    float *keep = malloc((size_t)c_n * sizeof *keep);
    if (!keep) return SW_FAIL(SW_ERR_NOMEM, "unwrap: out of memory");
    bool channelwise = t->shape.ndim > 0 && channel_values(mask, &t->shape, keep);
    bool out_ok = t->kind == SW_TARGET_OUTPUT && is_weighted(l->kind);
    bool in_ok = t->kind == SW_TARGET_INPUT &&
                 ((l->kind == SW_LAYER_LINEAR && t->shape.ndim == 1) || l->kind == SW_LAYER_CONV2D);
    if (!channelwise || !(out_ok || in_ok)) {
        bool all_ones = true;
        size_t n = sw_shape_numel(&t->shape);
        for (size_t i = 0; i < n && all_ones; i++) all_ones = mask[i] != 0.0f;
        if (!all_ones)
            sw_warnings_add(&ws->warnings,
                            "unwrap: the mask on %s.%s (%s) cannot be expressed in the weights; "
                            "it is dropped",
                            node->name, t->name, l->ops->type_name);
        free(keep);
        return SW_OK;
    }
    for (int c = 0; c < c_n; c++) {
        if (keep[c] != 0.0f) continue;
        if (out_ok)
            zero_out_channel(l, c);
        else
            zero_in_channel(l, c);
    }
    free(keep);
    return SW_OK;
}

/* Bake first (every transform is still attached, so the masks read are the ones in effect),
 * then detach everything in one sweep. Only masks are baked: fake-quantization and other
 * transforms are simulation and leave with their chains. */
sw_status sw_wrapper_set_unwrap(sw_wrapper_set *ws) {
    sw_status st = SW_OK;
    float *mask = NULL;
    size_t cap = 0;
    for (int i = 0; i < ws->n_wrappers && st == SW_OK; i++) {
        sw_wrapper *w = &ws->wrappers[i];
        sw_layer *l = ws->model->nodes[i].layer;
        for (int k = 0; k < w->n_targets && st == SW_OK; k++) {
            sw_target *t = &w->targets[k];
            size_t n = sw_shape_numel(&t->shape);
            if (t->n_tf == 0) continue;
            if (n > cap) {
                float *grown = realloc(mask, n * sizeof *grown);
                if (!grown) {
                    st = SW_FAIL(SW_ERR_NOMEM, "unwrap: out of memory");
                    break;
                }
                mask = grown;
                cap = n;
            }
            if (!sw_target_mask(t, ws, true, mask)) continue;
            if (t->kind == SW_TARGET_PARAM) {
                sw_tensor *v = &l->params[t->index].value;
                for (size_t e = 0; e < n; e++) v->data[e] *= mask[e];
            } else {
                st = bake_activation(ws, w, t, mask);
            }
        }
    }
    free(mask);
    if (st != SW_OK) return st;
    detach_all(ws);
    ws->n_claims = 0;
    ws->generation++;
    sw_dead_channels_clear(ws);
    return SW_OK;
}
