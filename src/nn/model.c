/* model.c - graph construction, flat parameter storage, and the executor. */
#include "model.h"

#include "../tensor/clock.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sw_status sw_model_new(const char *arch, const sw_shape *input_shape, sw_model **out) {
    sw_model *m = calloc(1, sizeof *m);
    if (!m) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a model");
    m->arch = strdup(arch ? arch : "custom");
    if (!m->arch) {
        free(m);
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a model");
    }
    m->input_shape = *input_shape;
    m->training = true;
    sw_arena_init(&m->arena);
    sw_rng_init(&m->rng, 0, 0x5eed);
    *out = m;
    return SW_OK;
}

void sw_model_free(sw_model *model) {
    if (!model) return;
    for (int i = 0; i < model->n_nodes; i++) {
        free(model->nodes[i].name);
        sw_layer_free(model->nodes[i].layer);
    }
    free(model->nodes);
    free(model->param_data);
    free(model->grad_data);
    free(model->buffer_data);
    free(model->ios);
    free(model->saved);
    free(model->outs);
    free(model->douts);
    sw_grad_plan_free(&model->grad_plan);
    sw_fusion_plan_free(&model->fusion_plan);
    sw_arena_deinit(&model->arena);
    free(model->arch);
    free(model);
}

int sw_model_find(const sw_model *model, const char *name) {
    for (int i = 0; i < model->n_nodes; i++)
        if (strcmp(model->nodes[i].name, name) == 0) return i;
    return -1;
}

sw_shape sw_model_output_shape(const sw_model *model) {
    return model->n_nodes ? model->nodes[model->n_nodes - 1].out_shape : model->input_shape;
}

/* Resolves input names to indices; n == 0 means the previous node. */
static sw_status resolve_inputs(const sw_model *m, const char *name, const char *const *inputs,
                                int n, int *idx, int *n_out) {
    if (n > SW_MAX_INPUTS)
        return SW_FAIL(SW_ERR_ARG, "node \"%s\": %d inputs, at most %d", name, n, SW_MAX_INPUTS);
    if (n == 0) {
        idx[0] = m->n_nodes ? m->n_nodes - 1 : SW_NODE_INPUT;
        *n_out = 1;
        return SW_OK;
    }
    for (int i = 0; i < n; i++) {
        if (strcmp(inputs[i], "input") == 0) {
            idx[i] = SW_NODE_INPUT;
            continue;
        }
        idx[i] = sw_model_find(m, inputs[i]);
        if (idx[i] < 0)
            return SW_FAIL(SW_ERR_NOT_FOUND,
                           "node \"%s\": input \"%s\" is not an earlier node of the model", name,
                           inputs[i]);
    }
    *n_out = n;
    return SW_OK;
}

sw_status sw_model_add(sw_model *model, const char *name, sw_layer *layer,
                       const char *const *inputs, int n_inputs, int *index) {
    sw_status st = SW_OK;
    sw_node node = {0};
    if (model->finalized) {
        st = SW_FAIL(SW_ERR_ARG, "node \"%s\": the model is finalised; nodes cannot be added",
                     name);
        goto fail;
    }
    if (!name || !*name || strcmp(name, "input") == 0 || sw_model_find(model, name) >= 0) {
        st = SW_FAIL(SW_ERR_ARG, "node name \"%s\" is empty, reserved or already used",
                     name ? name : "");
        goto fail;
    }
    st = resolve_inputs(model, name, inputs, n_inputs, node.inputs, &node.n_inputs);
    if (st != SW_OK) goto fail;
    const sw_layer_ops *ops = layer->ops;
    if (node.n_inputs < ops->min_inputs || node.n_inputs > ops->max_inputs) {
        st = SW_FAIL(SW_ERR_ARG, "node \"%s\": %s takes %d to %d inputs, got %d", name,
                     ops->type_name, ops->min_inputs, ops->max_inputs, node.n_inputs);
        goto fail;
    }
    sw_shape in_shapes[SW_MAX_INPUTS];
    for (int i = 0; i < node.n_inputs; i++)
        in_shapes[i] = node.inputs[i] == SW_NODE_INPUT ? model->input_shape
                                                       : model->nodes[node.inputs[i]].out_shape;
    st = ops->infer_shape(layer, in_shapes, node.n_inputs, &node.out_shape);
    if (st != SW_OK) {
        sw_error_prefix("node \"%s\" (%s)", name, ops->type_name);
        goto fail;
    }
    node.flops = ops->flops ? ops->flops(layer, in_shapes, node.n_inputs, &node.out_shape) : 0;
    for (int p = 0; p < layer->n_params; p++)
        if (layer->params[p].trainable) node.param_count += sw_shape_numel(&layer->param_shapes[p]);
    if (model->n_nodes == model->cap_nodes) {
        int cap = model->cap_nodes ? model->cap_nodes * 2 : 16;
        sw_node *grown = realloc(model->nodes, (size_t)cap * sizeof *grown);
        if (!grown) {
            st = SW_FAIL(SW_ERR_NOMEM, "cannot grow the node list");
            goto fail;
        }
        model->nodes = grown;
        model->cap_nodes = cap;
    }
    node.name = strdup(name);
    if (!node.name) {
        st = SW_FAIL(SW_ERR_NOMEM, "cannot copy a node name");
        goto fail;
    }
    node.layer = layer;
    model->nodes[model->n_nodes] = node;
    if (index) *index = model->n_nodes;
    model->n_nodes++;
    return SW_OK;
fail:
    sw_layer_free(layer);
    return st;
}

/* Resets parameters to the values PyTorch gives a fresh layer before random init. */
static void set_constant_params(sw_model *model) {
    for (int i = 0; i < model->n_nodes; i++) {
        sw_layer *l = model->nodes[i].layer;
        for (int p = 0; p < l->n_params; p++) {
            sw_param *par = &l->params[p];
            bool one = (l->kind == SW_LAYER_BATCHNORM2D || l->kind == SW_LAYER_BATCHNORM1D) &&
                       (strcmp(par->name, "weight") == 0 || strcmp(par->name, "running_var") == 0);
            sw_tensor_fill(&par->value, one ? 1.0f : 0.0f);
        }
    }
}

sw_status sw_model_finalize(sw_model *model) {
    if (model->finalized) return SW_OK;
    if (model->n_nodes == 0) return SW_FAIL(SW_ERR_ARG, "a model needs at least one node");
    size_t n_params = 0, n_buffers = 0;
    for (int i = 0; i < model->n_nodes; i++) {
        sw_layer *l = model->nodes[i].layer;
        for (int p = 0; p < l->n_params; p++) {
            size_t n = sw_shape_numel(&l->param_shapes[p]);
            if (l->params[p].trainable)
                n_params += n;
            else
                n_buffers += n;
        }
    }
    model->param_data = calloc(n_params ? n_params : 1, sizeof(float));
    model->grad_data = calloc(n_params ? n_params : 1, sizeof(float));
    model->buffer_data = calloc(n_buffers ? n_buffers : 1, sizeof(float));
    size_t n = (size_t)model->n_nodes;
    model->ios = calloc(n, sizeof *model->ios);
    model->saved = calloc(n, sizeof *model->saved);
    model->outs = calloc(n, sizeof *model->outs);
    model->douts = calloc(n, sizeof *model->douts);
    if (!model->param_data || !model->grad_data || !model->buffer_data || !model->ios ||
        !model->saved || !model->outs || !model->douts)
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %zu parameters", n_params + n_buffers);
    SW_TRY(sw_grad_plan_build(model->nodes, model->n_nodes, &model->grad_plan));
    SW_TRY(sw_fusion_plan_build(model->nodes, model->n_nodes, &model->fusion_plan));
    model->n_param_floats = n_params;
    model->n_buffer_floats = n_buffers;
    size_t at_param = 0, at_buffer = 0;
    for (int i = 0; i < model->n_nodes; i++) {
        sw_layer *l = model->nodes[i].layer;
        for (int p = 0; p < l->n_params; p++) {
            sw_param *par = &l->params[p];
            const sw_shape *shape = &l->param_shapes[p];
            size_t count = sw_shape_numel(shape);
            if (par->trainable) {
                par->value = sw_tensor_view(model->param_data + at_param, shape);
                par->grad = sw_tensor_view(model->grad_data + at_param, shape);
                at_param += count;
            } else {
                par->value = sw_tensor_view(model->buffer_data + at_buffer, shape);
                par->grad = (sw_tensor){0};
                at_buffer += count;
            }
        }
    }
    model->finalized = true;
    set_constant_params(model);
    return SW_OK;
}

/* Fan-in of a weight as PyTorch computes it: shape[1] * receptive field. */
static int weight_fan_in(const sw_shape *w) {
    int fan_in = w->ndim > 1 ? w->dims[1] : 1;
    for (int d = 2; d < w->ndim; d++) fan_in *= w->dims[d];
    return fan_in;
}

void sw_model_init_params(sw_model *model, uint64_t seed) {
    SW_ASSERT(model->finalized);
    set_constant_params(model);
    sw_rng rng;
    sw_rng_init(&rng, seed, 0x1417);
    for (int i = 0; i < model->n_nodes; i++) {
        sw_layer *l = model->nodes[i].layer;
        if (l->kind != SW_LAYER_LINEAR && l->kind != SW_LAYER_CONV2D) continue;
        int w = sw_layer_param_index(l, "weight");
        int b = sw_layer_param_index(l, "bias");
        /* kaiming_uniform_(a = sqrt(5)) gives bound = gain * sqrt(3 / fan_in) with
         * gain = sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in); the bias uses the same bound. */
        float bound = 1.0f / sqrtf((float)weight_fan_in(&l->params[w].value.shape));
        sw_tensor *wt = &l->params[w].value;
        for (size_t k = 0; k < wt->numel; k++)
            wt->data[k] = (2.0f * sw_rng_uniform(&rng) - 1.0f) * bound;
        if (b >= 0) {
            sw_tensor *bt = &l->params[b].value;
            for (size_t k = 0; k < bt->numel; k++)
                bt->data[k] = (2.0f * sw_rng_uniform(&rng) - 1.0f) * bound;
        }
    }
}

void sw_model_set_training(sw_model *model, bool training) { model->training = training; }

void sw_model_set_inference_fusion(sw_model *model, bool on) { model->inference_fusion = on; }

void sw_model_set_profile(sw_model *model, sw_node_time *times) { model->profile = times; }

void sw_model_set_seed(sw_model *model, uint64_t seed) { sw_rng_init(&model->rng, seed, 0x5eed); }

/* Runs `chain` as its head's kernel with the rest as the epilogue, writing io->out (the head's
 * output buffer; the BatchNorm, Add and ReLU outputs alias it) or, when the chain ends in a
 * max-pool, the pool's own smaller output, which the head's kernel writes instead (the head's
 * buffer is then left unwritten: nothing else reads it). x is the model input, which a folded
 * Add may take as its residual. */
static sw_status forward_chain(sw_model *model, const sw_fusion_chain *chain, sw_layer_io *io,
                               const sw_tensor *x) {
    const sw_layer *head = model->nodes[chain->head].layer;
    sw_epilogue ep = {.relu = chain->relu >= 0, .pool2x2 = chain->pool >= 0};
    if (chain->add >= 0)
        ep.residual = chain->residual == SW_NODE_INPUT ? x->data : model->outs[chain->residual].data;
    if (chain->bn >= 0) {
        const sw_layer *bn = model->nodes[chain->bn].layer;
        float *affine = sw_arena_floats(&model->arena, 2 * (size_t)bn->hp.num_features);
        if (!affine) return SW_ERR_NOMEM;
        sw_fusion_bn_affine(bn, affine, affine + bn->hp.num_features);
        ep.scale = affine;
        ep.shift = affine + bn->hp.num_features;
    }
    if (!head->ops->forward_fused)
        return SW_FAIL(SW_ERR_ARG, "%s cannot run an epilogue", head->ops->type_name);
    if (chain->pool >= 0) {
        sw_shape pooled;
        SW_TRY(sw_shape_batched(&model->nodes[chain->pool].out_shape, model->batch, &pooled));
        float *data = sw_arena_floats(&model->arena, sw_shape_numel(&pooled));
        if (!data) return SW_ERR_NOMEM;
        model->outs[chain->pool] = sw_tensor_view(data, &pooled);
        sw_layer_io pool_io = *io;
        pool_io.out = &model->outs[chain->pool];
        SW_TRY(head->ops->forward_fused(head, &pool_io, &ep));
    } else {
        SW_TRY(head->ops->forward_fused(head, io, &ep));
    }
    if (chain->bn >= 0) model->outs[chain->bn] = *io->out;
    if (chain->add >= 0) model->outs[chain->add] = *io->out;
    if (chain->relu >= 0) model->outs[chain->relu] = *io->out;
    model->last_forward_fused = true;
    return SW_OK;
}

sw_status sw_model_forward(sw_model *model, const sw_tensor *x, const sw_tensor **out) {
    if (!model->finalized) SW_TRY(sw_model_finalize(model));
    sw_shape want;
    SW_TRY(sw_shape_batched(&model->input_shape, x->shape.ndim ? x->shape.dims[0] : 0, &want));
    if (!sw_shape_equal(&want, &x->shape)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "model \"%s\" expects input [N, ...] = %s, got %s",
                       model->arch, sw_shape_format(&want, a, sizeof a),
                       sw_shape_format(&x->shape, b, sizeof b));
    }
    int batch = x->shape.dims[0];
    sw_arena_reset(&model->arena);
    model->batch = batch;
    const bool fuse = model->inference_fusion && !model->training;
    const sw_fusion_plan *plan = &model->fusion_plan;
    model->last_forward_fused = false;
    for (int i = 0; i < model->n_nodes; i++) {
        sw_node *node = &model->nodes[i];
        sw_layer *l = node->layer;
        sw_layer_io *io = &model->ios[i];
        model->saved[i] = NULL;
        /* a later node of a chain that ran fused: its output was written (or aliased) then */
        if (fuse && plan->member_of[i] >= 0 &&
            sw_fusion_chain_ready(&plan->chains[plan->member_of[i]], model->nodes))
            continue;
        const sw_fusion_chain *chain = NULL;
        if (fuse && plan->chain_at[i] >= 0 &&
            sw_fusion_chain_ready(&plan->chains[plan->chain_at[i]], model->nodes))
            chain = &plan->chains[plan->chain_at[i]];
        *io = (sw_layer_io){.n_in = node->n_inputs,
                            .arena = &model->arena,
                            .rng = &model->rng,
                            .training = model->training};
        for (int j = 0; j < node->n_inputs; j++)
            io->in[j] = node->inputs[j] == SW_NODE_INPUT ? x : &model->outs[node->inputs[j]];
        for (int p = 0; p < l->n_params; p++) io->params[p] = &l->params[p].value;
        sw_shape out_shape;
        SW_TRY(sw_shape_batched(&node->out_shape, batch, &out_shape));
        float *data = sw_arena_alloc(&model->arena, sw_shape_numel(&out_shape) * sizeof(float));
        if (!data) return sw_error_prefix("forward of \"%s\"", node->name), SW_ERR_NOMEM;
        model->outs[i] = sw_tensor_view(data, &out_shape);
        io->out = &model->outs[i];
        io->saved = &model->saved[i];
        sw_status st = SW_OK;
        double t0 = model->profile ? sw_clock_seconds() : 0.0;
        if (chain) {
            st = forward_chain(model, chain, io, x);
        } else {
            if (node->hooks && node->hooks->before_forward)
                st = node->hooks->before_forward(node->hooks->ctx, node, io);
            if (st == SW_OK) st = l->ops->forward(l, io);
            if (st == SW_OK && node->hooks && node->hooks->after_forward)
                st = node->hooks->after_forward(node->hooks->ctx, node, io);
        }
        if (model->profile) model->profile[i].forward += sw_clock_seconds() - t0;
        if (st != SW_OK) {
            sw_error_prefix("forward of \"%s\"", node->name);
            return st;
        }
    }
    *out = &model->outs[model->n_nodes - 1];
    return SW_OK;
}

/* A zeroed arena tensor shaped like `like`. */
static sw_status arena_zeros_like(sw_arena *arena, const sw_tensor *like, sw_tensor *out) {
    float *data = sw_arena_floats(arena, like->numel);
    if (!data) return SW_ERR_NOMEM;
    *out = sw_tensor_view(data, &like->shape);
    return SW_OK;
}

/* Whether node's input j repeats an earlier input (Add(x, x)). */
static bool input_seen_before(const sw_node *node, int j) {
    for (int p = 0; p < j; p++)
        if (node->inputs[p] == node->inputs[j]) return true;
    return false;
}

static void tensor_add_into(sw_tensor *dst, const sw_tensor *src) {
    for (size_t k = 0; k < dst->numel; k++) dst->data[k] += src->data[k];
}

/* Backward of one node: the gradient of its output is model->douts[i]. */
static sw_status backward_node(sw_model *model, int i) {
    sw_node *node = &model->nodes[i];
    sw_layer *l = node->layer;
    sw_layer_io *io = &model->ios[i];
    sw_tensor *dout = &model->douts[i];
    sw_tensor *din[SW_MAX_INPUTS] = {0};
    sw_tensor scratch_din[SW_MAX_INPUTS];
    sw_tensor *dparams[SW_MAX_PARAMS] = {0};
    bool any_din = false;
    for (int j = 0; j < node->n_inputs; j++) {
        if (node->inputs[j] == SW_NODE_INPUT) continue; /* no gradient for the data */
        din[j] = &model->douts[node->inputs[j]];
        any_din = true;
    }
    for (int p = 0; p < l->n_params; p++)
        if (l->params[p].trainable) dparams[p] = &l->params[p].grad;
    const sw_node_hooks *hooks = node->hooks;
    bool scratch = hooks && hooks->transforms_inputs;
    if (hooks) {
        /* This node's own input contribution goes to scratch first, so the input chains
         * transform exactly it before it joins the other consumers' contributions. */
        for (int j = 0; scratch && j < node->n_inputs; j++) {
            if (!din[j]) continue;
            SW_TRY(arena_zeros_like(&model->arena, din[j], &scratch_din[j]));
        }
        if (hooks->before_backward) SW_TRY(hooks->before_backward(hooks->ctx, node, io, dout, dparams));
    }
    sw_tensor *layer_din[SW_MAX_INPUTS] = {0};
    for (int j = 0; j < node->n_inputs; j++) layer_din[j] = scratch && din[j] ? &scratch_din[j] : din[j];
    if (any_din) SW_TRY(l->ops->backward_input(l, io, dout, layer_din));
    if (l->ops->backward_params) SW_TRY(l->ops->backward_params(l, io, dout, dparams));
    if (hooks) {
        if (hooks->after_backward) SW_TRY(hooks->after_backward(hooks->ctx, node, io, layer_din, dparams));
        for (int j = 0; scratch && j < node->n_inputs; j++)
            if (din[j]) tensor_add_into(din[j], &scratch_din[j]);
    }
    return SW_OK;
}

sw_status sw_model_backward(sw_model *model, const sw_tensor *dout) {
    int last = model->n_nodes - 1;
    if (model->batch == 0 || !model->finalized)
        return SW_FAIL(SW_ERR_ARG, "backward called before forward");
    if (model->last_forward_fused)
        return SW_FAIL(SW_ERR_ARG, "backward after an inference-fused forward (evaluation mode "
                                   "with inference fusion on): run forward in training mode");
    if (!sw_shape_equal(&dout->shape, &model->outs[last].shape)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "output gradient has shape %s, the output is %s",
                       sw_shape_format(&dout->shape, a, sizeof a),
                       sw_shape_format(&model->outs[last].shape, b, sizeof b));
    }
    const sw_grad_plan *plan = &model->grad_plan;
    size_t batch = (size_t)model->batch;
    float *block = sw_arena_alloc(&model->arena, plan->per_sample * batch * sizeof(float));
    if (!block) return SW_FAIL(SW_ERR_NOMEM, "backward: cannot allocate activation gradients");
    for (int i = 0; i < model->n_nodes; i++) {
        model->douts[i] = sw_tensor_view(block + plan->offset[i] * batch, &model->outs[i].shape);
        /* Nothing consumes it: its gradient is zero (the output's is copied in below). */
        if (plan->last_consumer[i] == model->n_nodes) sw_tensor_zero(&model->douts[i]);
    }
    memcpy(model->douts[last].data, dout->data, dout->numel * sizeof(float));
    for (int i = last; i >= 0; i--) {
        /* The first writer of an input's gradient (its last consumer) starts it: a layer that
         * can overwrite does (din_fresh), otherwise it is zeroed here and the layer adds. */
        const sw_node *node = &model->nodes[i];
        sw_layer_io *io = &model->ios[i];
        bool can_overwrite = node->layer->ops->overwrites_din &&
                             !(node->hooks && node->hooks->transforms_inputs);
        for (int j = 0; j < node->n_inputs; j++) {
            int k = node->inputs[j];
            io->din_fresh[j] = false;
            if (k == SW_NODE_INPUT || plan->last_consumer[k] != i || input_seen_before(node, j))
                continue;
            if (can_overwrite)
                io->din_fresh[j] = true;
            else
                sw_tensor_zero(&model->douts[k]);
        }
        double t0 = model->profile ? sw_clock_seconds() : 0.0;
        sw_status st = backward_node(model, i);
        if (model->profile) model->profile[i].backward += sw_clock_seconds() - t0;
        if (st != SW_OK) {
            sw_error_prefix("backward of \"%s\"", model->nodes[i].name);
            return st;
        }
    }
    return SW_OK;
}

void sw_model_zero_grad(sw_model *model) {
    memset(model->grad_data, 0, model->n_param_floats * sizeof(float));
}

size_t sw_model_param_count(const sw_model *model) {
    size_t n = 0;
    for (int i = 0; i < model->n_nodes; i++) n += model->nodes[i].param_count;
    return n;
}

double sw_model_flops(const sw_model *model) {
    double f = 0;
    for (int i = 0; i < model->n_nodes; i++) f += model->nodes[i].flops;
    return f;
}

sw_status sw_model_clone(const sw_model *model, sw_model **out) {
    sw_model *copy = NULL;
    SW_TRY(sw_model_new(model->arch, &model->input_shape, &copy));
    for (int i = 0; i < model->n_nodes; i++) {
        const sw_node *node = &model->nodes[i];
        const char *inputs[SW_MAX_INPUTS];
        for (int j = 0; j < node->n_inputs; j++)
            inputs[j] = node->inputs[j] == SW_NODE_INPUT ? "input"
                                                          : model->nodes[node->inputs[j]].name;
        sw_layer *layer = NULL;
        sw_status st = sw_layer_new(node->layer->kind, &node->layer->hp, &layer);
        if (st == SW_OK) st = sw_model_add(copy, node->name, layer, inputs, node->n_inputs, NULL);
        if (st != SW_OK) {
            sw_model_free(copy);
            return st;
        }
    }
    sw_status st = sw_model_finalize(copy);
    if (st != SW_OK) {
        sw_model_free(copy);
        return st;
    }
    if (model->finalized) {
        memcpy(copy->param_data, model->param_data, model->n_param_floats * sizeof(float));
        memcpy(copy->buffer_data, model->buffer_data, model->n_buffer_floats * sizeof(float));
    }
    copy->training = model->training;
    *out = copy;
    return SW_OK;
}

void sw_model_visit_params(sw_model *model, sw_param_visitor visit, void *ctx) {
    char full[512];
    for (int i = 0; i < model->n_nodes; i++) {
        sw_node *node = &model->nodes[i];
        for (int p = 0; p < node->layer->n_params; p++) {
            snprintf(full, sizeof full, "%s.%s", node->name, node->layer->params[p].name);
            visit(ctx, node, &node->layer->params[p], full);
        }
    }
}
