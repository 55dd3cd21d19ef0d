/* bn_fold.c - BatchNorm folding and activation fusion as wrapper transforms.
 *
 * The executor always runs every node's layer, so an absorbed module cannot simply be skipped.
 * Instead it is turned into an identity by two transforms around it:
 *   on its input (stage 10):  passes x on; for a BatchNorm, keeps a copy of the running
 *                             statistics the fold has just set;
 *   on its output (stage 10): replaces the layer's result by the node's input and puts the
 *                             statistics back (the layer's own train-mode update is undone).
 * In backward the output transform keeps the incoming gradient and hands the layer zeros (its
 * backward is linear in the gradient: it then contributes nothing to its input or parameters);
 * the input transform puts the kept gradient back. Values and gradients thus pass unchanged.
 *
 * On the computing module (stage 50, before the quantizer's observers at 100):
 *   weight: W' = W * f_c, f_c = g_c / sqrt(var_c + eps); in training, first the running
 *           statistics are updated from conv(x) with the raw parameters;
 *   bias:   b' = (b - mean) * f + beta;   or, without a conv bias, an output transform adding
 *           beta - mean * f per channel;
 *   ReLU:   max(x, 0) on the output (stage 60).
 * Gradients of g and beta are written straight into the BatchNorm's gradients. */
#include "bn_fold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantizer.h"

#define STAGE_IDENTITY 10
#define STAGE_FOLD 50
#define STAGE_RELU 60

/* One fused group and the per-channel values of the fold in effect. */
typedef struct fold_pair {
    sw_model *model; /* borrowed */
    int first, bn, relu;
    int channels;    /* output channels of `first` */
    float *factor;   /* [C] g / sqrt(var + eps), this forward */
    float *sigma;    /* [C] sqrt(var + eps), this forward */
    float *mean;     /* [C] the running mean used */
    float *snap;     /* [2C] BN running mean and var as the fold left them */
    float *stash[2]; /* kept gradients of the absorbed nodes (bn, relu order) */
    size_t stash_cap[2];
} fold_pair;

struct sw_bn_fold {
    int n;
    fold_pair *pairs;
};

/* Transform state: the group and which absorbed node (0 = bn slot, 1 = relu slot). */
typedef struct fold_tf {
    fold_pair *p;
    int slot;
} fold_tf;

static void fold_tf_free(sw_transform *tf) {
    free(tf->state);
}

/* Parameters and buffers by name (BatchNorm: weight, bias, running_mean, running_var). */
static sw_param *param_of(sw_model *m, int node, const char *name) {
    sw_layer *l = m->nodes[node].layer;
    int k = sw_layer_param_index(l, name);
    return k >= 0 ? &l->params[k] : NULL;
}

/* Channel c of a batched [N, C, ...] value: elements n*C*inner + c*inner + [0, inner). */
static size_t inner_of(const sw_tensor *v) {
    size_t inner = 1;
    for (int d = 2; d < v->shape.ndim; d++) inner *= (size_t)v->shape.dims[d];
    return inner;
}

/* Updates the BN's running statistics from conv(x) with the raw parameters (training only). */
static sw_status update_running_stats(fold_pair *p, const sw_transform_call *call) {
    sw_model *m = p->model;
    sw_node *node = &m->nodes[p->first];
    sw_layer *l = node->layer;
    const sw_tensor *x = m->ios[p->first].in[0];
    sw_layer_io io = {.n_in = 1, .arena = &m->arena, .rng = &m->rng, .training = false};
    io.in[0] = x;
    for (int k = 0; k < l->n_params; k++) io.params[k] = &l->params[k].value;
    sw_shape out_shape;
    SW_TRY(sw_shape_batched(&node->out_shape, x->shape.dims[0], &out_shape));
    float *data = sw_arena_alloc(&m->arena, sw_shape_numel(&out_shape) * sizeof(float));
    if (!data) return SW_FAIL(SW_ERR_NOMEM, "out of step memory for BatchNorm folding");
    sw_tensor out = sw_tensor_view(data, &out_shape);
    void *saved = NULL;
    io.out = &out;
    io.saved = &saved;
    SW_TRY(l->ops->forward(l, &io));
    (void)call;
    sw_layer *bn = m->nodes[p->bn].layer;
    float mom = bn->hp.momentum;
    float *rm = param_of(m, p->bn, "running_mean")->value.data;
    float *rv = param_of(m, p->bn, "running_var")->value.data;
    size_t inner = inner_of(&out), n_batch = (size_t)out.shape.dims[0];
    size_t count = n_batch * inner;
    for (int c = 0; c < p->channels; c++) {
        double sum = 0, sq = 0;
        for (size_t b = 0; b < n_batch; b++) {
            const float *v = out.data + (b * (size_t)p->channels + (size_t)c) * inner;
            for (size_t i = 0; i < inner; i++) sum += v[i];
        }
        double mean = sum / (double)count;
        for (size_t b = 0; b < n_batch; b++) {
            const float *v = out.data + (b * (size_t)p->channels + (size_t)c) * inner;
            for (size_t i = 0; i < inner; i++) sq += (v[i] - mean) * (v[i] - mean);
        }
        /* PyTorch updates running_var with the unbiased variance n/(n-1). */
        double var = count > 1 ? sq / (double)(count - 1) : sq;
        rm[c] = (1.0f - mom) * rm[c] + mom * (float)mean;
        rv[c] = (1.0f - mom) * rv[c] + mom * (float)var;
    }
    return SW_OK;
}

/* The per-channel factor, sigma and mean from the BN's current parameters and statistics. */
/* Recomputed at every forward of the conv: the BN's gamma trains and, in training, its
 * statistics have just moved. The values are kept for the backward of the same step. */
static void refresh_factors(fold_pair *p) {
    sw_model *m = p->model;
    float eps = m->nodes[p->bn].layer->hp.eps;
    const float *gamma = param_of(m, p->bn, "weight")->value.data;
    const float *rm = param_of(m, p->bn, "running_mean")->value.data;
    const float *rv = param_of(m, p->bn, "running_var")->value.data;
    for (int c = 0; c < p->channels; c++) {
        p->sigma[c] = sqrtf(rv[c] + eps);
        p->factor[c] = gamma[c] / p->sigma[c];
        p->mean[c] = rm[c];
    }
}

/* W' = W * f per output channel (rows of [O, ...]). */
static sw_status fold_w_forward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                                sw_tensor *y) {
    fold_pair *p = ((fold_tf *)tf->state)->p;
    if (call->training) SW_TRY(update_running_stats(p, call));
    refresh_factors(p);
    size_t per = x->numel / (size_t)p->channels;
    for (int c = 0; c < p->channels; c++)
        for (size_t k = 0; k < per; k++) {
            size_t i = (size_t)c * per + k;
            y->data[i] = x->data[i] * p->factor[c];
        }
    return SW_OK;
}

/* dW = dW' * f; dgamma += sum(dW' * W) / sigma (f = gamma / sigma, sigma a buffer). */
static sw_status fold_w_backward(sw_transform *tf, const sw_transform_call *call,
                                 const sw_tensor *x, sw_tensor *g) {
    (void)call;
    fold_pair *p = ((fold_tf *)tf->state)->p;
    float *dgamma = param_of(p->model, p->bn, "weight")->grad.data;
    size_t per = g->numel / (size_t)p->channels;
    for (int c = 0; c < p->channels; c++) {
        double acc = 0;
        for (size_t k = 0; k < per; k++) {
            size_t i = (size_t)c * per + k;
            acc += (double)g->data[i] * (double)x->data[i];
            g->data[i] *= p->factor[c];
        }
        dgamma[c] += (float)(acc / (double)p->sigma[c]);
    }
    return SW_OK;
}

static const sw_transform_ops fold_w_ops = {
    .name = "bn_fold_weight",
    .forward = fold_w_forward,
    .backward = fold_w_backward,
    .free = fold_tf_free,
    .needs_input = true,
};

/* b' = (b - mean) * f + beta. */
static sw_status fold_b_forward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                                sw_tensor *y) {
    (void)call;
    fold_pair *p = ((fold_tf *)tf->state)->p;
    const float *beta = param_of(p->model, p->bn, "bias")->value.data;
    for (int c = 0; c < p->channels; c++)
        y->data[c] = (x->data[c] - p->mean[c]) * p->factor[c] + beta[c];
    return SW_OK;
}

/* db = db' * f; dgamma += db' (b - mean) / sigma; dbeta += db'. */
static sw_status fold_b_backward(sw_transform *tf, const sw_transform_call *call,
                                 const sw_tensor *x, sw_tensor *g) {
    (void)call;
    fold_pair *p = ((fold_tf *)tf->state)->p;
    float *dgamma = param_of(p->model, p->bn, "weight")->grad.data;
    float *dbeta = param_of(p->model, p->bn, "bias")->grad.data;
    for (int c = 0; c < p->channels; c++) {
        dgamma[c] += g->data[c] * (x->data[c] - p->mean[c]) / p->sigma[c];
        dbeta[c] += g->data[c];
        g->data[c] *= p->factor[c];
    }
    return SW_OK;
}

static const sw_transform_ops fold_b_ops = {
    .name = "bn_fold_bias",
    .forward = fold_b_forward,
    .backward = fold_b_backward,
    .free = fold_tf_free,
    .needs_input = true,
};

/* Without a conv bias: b' = beta - mean * f is added to the output, per channel. */
static sw_status fold_out_forward(sw_transform *tf, const sw_transform_call *call,
                                  const sw_tensor *x, sw_tensor *y) {
    (void)call;
    fold_pair *p = ((fold_tf *)tf->state)->p;
    const float *beta = param_of(p->model, p->bn, "bias")->value.data;
    size_t inner = inner_of(x), n_batch = (size_t)x->shape.dims[0];
    for (size_t b = 0; b < n_batch; b++)
        for (int c = 0; c < p->channels; c++) {
            float shift = (0.0f - p->mean[c]) * p->factor[c] + beta[c];
            size_t base = (b * (size_t)p->channels + (size_t)c) * inner;
            for (size_t i = 0; i < inner; i++) y->data[base + i] = x->data[base + i] + shift;
        }
    return SW_OK;
}

static sw_status fold_out_backward(sw_transform *tf, const sw_transform_call *call,
                                   const sw_tensor *x, sw_tensor *g) {
    (void)call;
    (void)x;
    fold_pair *p = ((fold_tf *)tf->state)->p;
    float *dgamma = param_of(p->model, p->bn, "weight")->grad.data;
    float *dbeta = param_of(p->model, p->bn, "bias")->grad.data;
    size_t inner = inner_of(g), n_batch = (size_t)g->shape.dims[0];
    for (int c = 0; c < p->channels; c++) {
        double sum = 0;
        for (size_t b = 0; b < n_batch; b++) {
            const float *v = g->data + (b * (size_t)p->channels + (size_t)c) * inner;
            for (size_t i = 0; i < inner; i++) sum += v[i];
        }
        dbeta[c] += (float)sum;
        dgamma[c] += (float)(sum * -(double)p->mean[c] / (double)p->sigma[c]);
    }
    return SW_OK;
}

static const sw_transform_ops fold_out_ops = {
    .name = "bn_fold_output_bias",
    .forward = fold_out_forward,
    .backward = fold_out_backward,
    .free = fold_tf_free,
};

/* The fused ReLU, before the output's observers: NNI applies it inside the wrapper. */
static sw_status relu_forward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                              sw_tensor *y) {
    (void)tf;
    (void)call;
    for (size_t i = 0; i < x->numel; i++) y->data[i] = x->data[i] > 0.0f ? x->data[i] : 0.0f;
    return SW_OK;
}

static sw_status relu_backward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                               sw_tensor *g) {
    (void)tf;
    (void)call;
    for (size_t i = 0; i < g->numel; i++)
        if (!(x->data[i] > 0.0f)) g->data[i] = 0.0f;
    return SW_OK;
}

static const sw_transform_ops relu_ops = {
    .name = "fused_relu",
    .forward = relu_forward,
    .backward = relu_backward,
    .free = fold_tf_free,
    .needs_input = true,
};

/* ---- absorbed modules as identities ------------------------------------------------- */

/* Slot 0 is the BatchNorm of the group, slot 1 its ReLU. */
static int absorbed_node(const fold_tf *s) {
    return s->slot == 0 ? s->p->bn : s->p->relu;
}

/* Runs in before_forward of the absorbed node, before its layer. */
static sw_status ident_in_forward(sw_transform *tf, const sw_transform_call *call,
                                  const sw_tensor *x, sw_tensor *y) {
    (void)call;
    fold_tf *s = tf->state;
    fold_pair *p = s->p;
    if (s->slot == 0) {
        /* The BatchNorm's forward is about to update its statistics again: keep the fold's. */
        memcpy(p->snap, param_of(p->model, p->bn, "running_mean")->value.data,
               (size_t)p->channels * sizeof(float));
        memcpy(p->snap + p->channels, param_of(p->model, p->bn, "running_var")->value.data,
               (size_t)p->channels * sizeof(float));
    }
    if (y->data != x->data) memcpy(y->data, x->data, x->numel * sizeof(float));
    return SW_OK;
}

static sw_status ident_in_backward(sw_transform *tf, const sw_transform_call *call,
                                   const sw_tensor *x, sw_tensor *g) {
    (void)call;
    (void)x;
    fold_tf *s = tf->state;
    if (s->p->stash_cap[s->slot] < g->numel)
        return SW_FAIL(SW_ERR_SHAPE, "fused identity: gradient of %zu values, %zu kept", g->numel,
                       s->p->stash_cap[s->slot]);
    memcpy(g->data, s->p->stash[s->slot], g->numel * sizeof(float));
    return SW_OK;
}

static const sw_transform_ops ident_in_ops = {
    .name = "fused_identity_in",
    .forward = ident_in_forward,
    .backward = ident_in_backward,
    .free = fold_tf_free,
};

/* Runs in after_forward, after the layer: its result is replaced by its input. */
static sw_status ident_out_forward(sw_transform *tf, const sw_transform_call *call,
                                   const sw_tensor *x, sw_tensor *y) {
    (void)x;
    fold_tf *s = tf->state;
    fold_pair *p = s->p;
    sw_model *m = call->wrapper->set->model;
    const sw_tensor *in = m->ios[absorbed_node(s)].in[0];
    if (in->numel != y->numel)
        return SW_FAIL(SW_ERR_SHAPE, "fused identity: input of %zu values, output of %zu",
                       in->numel, y->numel);
    memcpy(y->data, in->data, y->numel * sizeof(float));
    if (s->slot == 0) {
        memcpy(param_of(m, p->bn, "running_mean")->value.data, p->snap,
               (size_t)p->channels * sizeof(float));
        memcpy(param_of(m, p->bn, "running_var")->value.data, p->snap + p->channels,
               (size_t)p->channels * sizeof(float));
    }
    return SW_OK;
}

static sw_status ident_out_backward(sw_transform *tf, const sw_transform_call *call,
                                    const sw_tensor *x, sw_tensor *g) {
    (void)call;
    (void)x;
    fold_tf *s = tf->state;
    fold_pair *p = s->p;
    if (p->stash_cap[s->slot] < g->numel) {
        /* Grows with the batch size only: a steady training loop does not allocate here. */
        float *grown = realloc(p->stash[s->slot], g->numel * sizeof(float));
        if (!grown) return SW_FAIL(SW_ERR_NOMEM, "out of memory for a fused identity");
        p->stash[s->slot] = grown;
        p->stash_cap[s->slot] = g->numel;
    }
    memcpy(p->stash[s->slot], g->data, g->numel * sizeof(float));
    memset(g->data, 0, g->numel * sizeof(float));
    return SW_OK;
}

static const sw_transform_ops ident_out_ops = {
    .name = "fused_identity_out",
    .forward = ident_out_forward,
    .backward = ident_out_backward,
    .free = fold_tf_free,
};

/* ---- setup ---------------------------------------------------------------------------- */

void sw_bn_fold_free(sw_bn_fold *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        fold_pair *p = &f->pairs[i];
        free(p->factor);
        free(p->snap);
        free(p->stash[0]);
        free(p->stash[1]);
    }
    free(f->pairs);
    free(f);
}

int sw_bn_fold_count(const sw_bn_fold *f) {
    return f ? f->n : 0;
}

sw_bn_fold_info sw_bn_fold_get(const sw_bn_fold *f, int i) {
    SW_ASSERT(f && i >= 0 && i < f->n);
    return (sw_bn_fold_info){
        .first = f->pairs[i].first, .bn = f->pairs[i].bn, .relu = f->pairs[i].relu};
}

static bool is_bn(sw_layer_kind k) {
    return k == SW_LAYER_BATCHNORM2D || k == SW_LAYER_BATCHNORM1D;
}

/* True when node b reads only node a and nothing else reads a. */
static bool single_consumer(const sw_model *m, int a, int b) {
    if (m->nodes[b].n_inputs != 1 || m->nodes[b].inputs[0] != a) return false;
    for (int i = 0; i < m->n_nodes; i++) {
        if (i == b) continue;
        for (int j = 0; j < m->nodes[i].n_inputs; j++)
            if (m->nodes[i].inputs[j] == a) return false;
    }
    return true;
}

/* The pattern table of §4.8; fills bn / relu from the tuple. */
static bool pattern_ok(const sw_model *m, const sw_quant_fuse *f, int *bn, int *relu) {
    sw_layer_kind k0 = m->nodes[f->nodes[0]].layer->kind;
    sw_layer_kind k1 = m->nodes[f->nodes[1]].layer->kind;
    *bn = *relu = -1;
    bool conv = k0 == SW_LAYER_CONV2D, lin = k0 == SW_LAYER_LINEAR;
    if (f->n == 3) {
        sw_layer_kind k2 = m->nodes[f->nodes[2]].layer->kind;
        if (k2 != SW_LAYER_RELU) return false;
        if (!((conv && k1 == SW_LAYER_BATCHNORM2D) || (lin && k1 == SW_LAYER_BATCHNORM1D)))
            return false;
        *bn = f->nodes[1];
        *relu = f->nodes[2];
        return true;
    }
    if (k1 == SW_LAYER_RELU && (conv || lin || is_bn(k0))) {
        *relu = f->nodes[1];
        return true;
    }
    if ((conv && k1 == SW_LAYER_BATCHNORM2D) || (lin && k1 == SW_LAYER_BATCHNORM1D)) {
        *bn = f->nodes[1];
        return true;
    }
    return false;
}

static bool has_target(sw_quantizer *q, int node, const char *name) {
    for (int i = 0; i < q->n_targets; i++)
        if (q->targets[i].node == node && strcmp(q->targets[i].name, name) == 0) return true;
    return false;
}

static bool claimed(const sw_wrapper_set *ws, int node) {
    for (int c = 0; c < ws->n_claims; c++)
        if (ws->claims[c].node == node) return true;
    return false;
}

/* "(conv1, bn1)" for messages. */
static void tuple_text(const sw_model *m, const sw_quant_fuse *f, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "(");
    for (int k = 0; k < f->n && used < size; k++)
        used += (size_t)snprintf(buf + used, size - used, k ? ", %s" : "%s",
                                 m->nodes[f->nodes[k]].name);
    if (used < size) snprintf(buf + used, size - used, ")");
}

/* Pattern, connectivity, the targets the fusion needs, and absorbed modules left alone. */
static sw_status check_tuple(sw_quantizer *q, const sw_quant_fuse *f, int *bn, int *relu) {
    const sw_model *m = q->base.model;
    char text[200];
    tuple_text(m, f, text, sizeof text);
    if (!pattern_ok(m, f, bn, relu)) {
        char kinds[120];
        size_t used = 0;
        for (int k = 0; k < f->n; k++)
            used += (size_t)snprintf(kinds + used, sizeof kinds - used, k ? ", %s" : "%s",
                                     m->nodes[f->nodes[k]].layer->ops->type_name);
        return SW_FAIL(SW_ERR_CONFIG,
                       "config_list[%d].fuse_names: %s is (%s), not a fusable pattern: a Conv2d "
                       "followed by its BatchNorm2d, a Linear by its BatchNorm1d (each "
                       "optionally then a ReLU), or a Conv2d, Linear or BatchNorm by a ReLU",
                       f->entry, text, kinds);
    }
    for (int k = 0; k + 1 < f->n; k++)
        if (!single_consumer(m, f->nodes[k], f->nodes[k + 1]))
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d].fuse_names: in %s, %s must read only %s and be its "
                           "only consumer (it is not its BatchNorm/activation)",
                           f->entry, text, m->nodes[f->nodes[k + 1]].name,
                           m->nodes[f->nodes[k]].name);
    int first = f->nodes[0];
    if (*bn >= 0 && !has_target(q, first, "weight"))
        return SW_FAIL(SW_ERR_CONFIG,
                       "config_list[%d].fuse_names: %s folds a BatchNorm into %s, whose "
                       "\"weight\" must be a target of this quantizer (add it to target_names)",
                       f->entry, text, m->nodes[first].name);
    if (*relu >= 0 && !has_target(q, first, "_output_0"))
        return SW_FAIL(SW_ERR_CONFIG,
                       "config_list[%d].fuse_names: %s fuses a ReLU into %s, whose \"_output_\" "
                       "must be a target of this quantizer (add it to target_names)",
                       f->entry, text, m->nodes[first].name);
    for (int k = 1; k < f->n; k++)
        if (claimed(q->base.ws, f->nodes[k]))
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d].fuse_names: %s is absorbed into %s and becomes an "
                           "identity; it cannot be compressed itself (remove it from the "
                           "config lists)",
                           f->entry, m->nodes[f->nodes[k]].name, m->nodes[first].name);
    return SW_OK;
}

/* Attaches one transform with a fresh fold_tf state. */
static sw_status attach(sw_quantizer *q, fold_pair *p, int slot, int node, const char *target,
                        const sw_transform_ops *ops, int stage) {
    fold_tf *s = malloc(sizeof *s);
    if (!s) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    *s = (fold_tf){.p = p, .slot = slot};
    return sw_wrapper_set_attach(q->base.ws, node, target, ops, stage, q, s, NULL);
}

/* The transforms of one group (see the header comment for what each does). */
static sw_status setup_pair(sw_quantizer *q, fold_pair *p) {
    sw_model *m = q->base.model;
    sw_layer *l = m->nodes[p->first].layer;
    p->channels = m->nodes[p->first].out_shape.dims[0];
    p->factor = calloc(3 * (size_t)p->channels, sizeof(float));
    p->snap = calloc(2 * (size_t)p->channels, sizeof(float));
    if (!p->factor || !p->snap) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    p->sigma = p->factor + p->channels;
    p->mean = p->factor + 2 * p->channels;
    if (p->bn >= 0) {
        SW_TRY(attach(q, p, 0, p->first, "weight", &fold_w_ops, STAGE_FOLD));
        int b = sw_layer_param_index(l, "bias");
        if (b >= 0 && l->params[b].trainable)
            SW_TRY(attach(q, p, 0, p->first, "bias", &fold_b_ops, STAGE_FOLD));
        else
            SW_TRY(attach(q, p, 0, p->first, "_output_0", &fold_out_ops, STAGE_FOLD));
        SW_TRY(attach(q, p, 0, p->bn, "_input_0", &ident_in_ops, STAGE_IDENTITY));
        SW_TRY(attach(q, p, 0, p->bn, "_output_0", &ident_out_ops, STAGE_IDENTITY));
    }
    if (p->relu >= 0) {
        SW_TRY(attach(q, p, 1, p->first, "_output_0", &relu_ops, STAGE_RELU));
        SW_TRY(attach(q, p, 1, p->relu, "_input_0", &ident_in_ops, STAGE_IDENTITY));
        SW_TRY(attach(q, p, 1, p->relu, "_output_0", &ident_out_ops, STAGE_IDENTITY));
    }
    return SW_OK;
}

sw_status sw_bn_fold_setup(sw_quantizer *q, const sw_quant_fuse *fuses, int n_fuses) {
    sw_model *m = q->base.model;
    for (int i = 0; i < n_fuses; i++)
        for (int j = 0; j < i; j++)
            for (int a = 0; a < fuses[i].n; a++)
                for (int b = 0; b < fuses[j].n; b++)
                    if (fuses[i].nodes[a] == fuses[j].nodes[b])
                        return SW_FAIL(SW_ERR_CONFIG,
                                       "config_list[%d].fuse_names: \"%s\" is in two fuse "
                                       "tuples; a module fuses once",
                                       fuses[i].entry, m->nodes[fuses[i].nodes[a]].name);
    sw_bn_fold *f = calloc(1, sizeof *f);
    if (!f) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    f->pairs = calloc((size_t)n_fuses, sizeof *f->pairs);
    if (!f->pairs) {
        free(f);
        return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    }
    q->fold = f;
    for (int i = 0; i < n_fuses; i++) {
        int bn, relu;
        SW_TRY(check_tuple(q, &fuses[i], &bn, &relu));
        fold_pair *p = &f->pairs[f->n++];
        *p = (fold_pair){.model = m, .first = fuses[i].nodes[0], .bn = bn, .relu = relu};
        SW_TRY(setup_pair(q, p));
    }
    return SW_OK;
}

void sw_bn_fold_eval(const sw_model *model, int first, int bn, float *w_out, float *b_out) {
    sw_model *m = (sw_model *)model;
    sw_layer *l = m->nodes[first].layer;
    const sw_tensor *w = &param_of(m, first, "weight")->value;
    const sw_param *bias = param_of(m, first, "bias");
    bool has_bias = bias && bias->trainable && sw_layer_param_index(l, "bias") >= 0;
    float eps = m->nodes[bn].layer->hp.eps;
    const float *gamma = param_of(m, bn, "weight")->value.data;
    const float *beta = param_of(m, bn, "bias")->value.data;
    const float *rm = param_of(m, bn, "running_mean")->value.data;
    const float *rv = param_of(m, bn, "running_var")->value.data;
    int channels = w->shape.dims[0];
    size_t per = w->numel / (size_t)channels;
    for (int c = 0; c < channels; c++) {
        float sigma = sqrtf(rv[c] + eps), f = gamma[c] / sigma;
        for (size_t k = 0; k < per; k++)
            w_out[(size_t)c * per + k] = w->data[(size_t)c * per + k] * f;
        float b = has_bias ? bias->value.data[c] : 0.0f;
        b_out[c] = (b - rm[c]) * f + beta[c];
    }
}
