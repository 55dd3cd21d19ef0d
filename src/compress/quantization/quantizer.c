/* quantizer.c - quantizer targets, the observe and fake-quant transforms, training hooks.
 *
 * Block values (scale, zero point, tracked range) live per target in one small allocation,
 * except learnable scales and zero points (LSQ, LSQ+), which live in one array per quantizer so
 * that the optimizer updates them all as one parameter group.
 *
 * Per-block values meet per-element data through a block map: for a value of shape S and the
 * target's kernel, map[i] is the block of element i (row-major over the grid). The map comes
 * from step memory (the model's arena), like every other per-step buffer of a wrapped forward,
 * so a steady-state training step allocates nothing. Per-tensor targets (the common case) need
 * no map at all. */
#include "quantizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fold.h"

const char *sw_quant_method_name(sw_quant_method m) {
    switch (m) {
    case SW_QUANT_BYPASS:
        return "bypass";
    case SW_QUANT_CLAMP_ROUND:
        return "clamp_round";
    case SW_QUANT_QAT_CLAMP_ROUND:
        return "qat_clamp_round";
    case SW_QUANT_LSQ_CLAMP_ROUND:
        return "lsq_clamp_round";
    case SW_QUANT_LSQ_PLUS_CLAMP_ROUND:
        return "lsq_plus_clamp_round";
    case SW_QUANT_DOREFA_WEIGHT:
        return "dorefa_clamp_round_weight";
    case SW_QUANT_DOREFA_OUTPUT:
        return "dorefa_clamp_round_output";
    case SW_QUANT_BNN:
        return "bnn_clamp_round";
    }
    return "?";
}

sw_quantizer *sw_quantizer_of(sw_compressor *c) {
    return c && c->ops->mode == SW_MODE_QUANTIZATION ? (sw_quantizer *)c : NULL;
}

const sw_quantizer *sw_quantizer_of_const(const sw_compressor *c) {
    return c && c->ops->mode == SW_MODE_QUANTIZATION ? (const sw_quantizer *)c : NULL;
}

sw_quant_target *sw_quantizer_find(sw_quantizer *q, const char *module, const char *target) {
    for (int i = 0; i < q->n_targets; i++)
        if (strcmp(q->targets[i].module, module) == 0 && strcmp(q->targets[i].name, target) == 0)
            return &q->targets[i];
    return NULL;
}

void sw_quantizer_set_method(sw_quantizer *q, sw_quant_method m) {
    for (int i = 0; i < q->n_targets; i++) q->targets[i].method = m;
}

void sw_quantizer_scale_from_tracked(sw_quant_target *t) {
    for (size_t b = 0; b < t->n_blocks; b++)
        sw_fq_scale_from_range(t->tracked_min[b], t->tracked_max[b], t->qmin, t->qmax,
                               t->setting.scheme, &t->scale[b], &t->zero_point[b]);
    t->has_scale = true;
}

sw_arena *sw_quantizer_call_arena(const sw_transform_call *call) {
    return &call->wrapper->set->model->arena;
}

/* ---- blocks ------------------------------------------------------------------------------ */

/* map[i] = block of element i for a value of `shape`; checks that the grid is the target's. */
static sw_status block_map(const sw_quant_target *t, const sw_shape *shape, sw_arena *arena,
                           int **out) {
    int kernel[SW_MAX_DIMS];
    SW_TRY(sw_scaling_kernel_for(&t->scaling, shape->ndim, kernel));
    /* Padded to 4 dims at the front so one loop nest serves every rank. */
    int dims[4] = {1, 1, 1, 1}, blk[4] = {1, 1, 1, 1}, gdims[4] = {1, 1, 1, 1};
    int off = 4 - shape->ndim;
    for (int d = 0; d < shape->ndim; d++) {
        int size = shape->dims[d];
        int k = kernel[d] == SW_SCALING_FULL ? size : kernel[d];
        if (k <= 0 || size % k != 0)
            return SW_FAIL(SW_ERR_SHAPE,
                           "%s.%s: dim %d of size %d is not divisible by its block size %d",
                           t->module, t->name, d, size, k);
        dims[off + d] = size;
        blk[off + d] = k;
        gdims[off + d] = size / k;
    }
    size_t blocks = (size_t)gdims[0] * (size_t)gdims[1] * (size_t)gdims[2] * (size_t)gdims[3];
    if (blocks != t->n_blocks)
        return SW_FAIL(SW_ERR_SHAPE,
                       "%s.%s: a value of this shape has %zu quantization blocks, the target "
                       "has %zu (granularity and shape disagree)",
                       t->module, t->name, blocks, t->n_blocks);
    size_t n = sw_shape_numel(shape);
    int *map = sw_arena_alloc(arena, n * sizeof *map);
    if (!map) return SW_FAIL(SW_ERR_NOMEM, "out of step memory for %s.%s", t->module, t->name);
    size_t gs2 = (size_t)gdims[3], gs1 = gs2 * (size_t)gdims[2], gs0 = gs1 * (size_t)gdims[1];
    size_t e = 0;
    for (int a = 0; a < dims[0]; a++) {
        size_t b0 = (size_t)(a / blk[0]) * gs0;
        for (int b = 0; b < dims[1]; b++) {
            size_t b1 = b0 + (size_t)(b / blk[1]) * gs1;
            for (int c = 0; c < dims[2]; c++) {
                size_t b2 = b1 + (size_t)(c / blk[2]) * gs2;
                for (int d = 0; d < dims[3]; d++) map[e++] = (int)(b2 + (size_t)(d / blk[3]));
            }
        }
    }
    *out = map;
    return SW_OK;
}

sw_status sw_quantizer_block_minmax(const sw_quant_target *t, const sw_tensor *x, sw_arena *arena,
                                    float *mins, float *maxs) {
    if (x->numel == 0)
        return SW_FAIL(SW_ERR_SHAPE, "%s.%s: cannot track the range of an empty value", t->module,
                       t->name);
    if (!t->has_scaling) {
        float lo = x->data[0], hi = x->data[0];
        for (size_t i = 1; i < x->numel; i++) {
            float v = x->data[i];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        mins[0] = lo;
        maxs[0] = hi;
        return SW_OK;
    }
    int *map = NULL;
    SW_TRY(block_map(t, &x->shape, arena, &map));
    bool *seen = sw_arena_alloc(arena, t->n_blocks * sizeof *seen);
    if (!seen) return SW_FAIL(SW_ERR_NOMEM, "out of step memory");
    memset(seen, 0, t->n_blocks * sizeof *seen);
    for (size_t i = 0; i < x->numel; i++) {
        int b = map[i];
        float v = x->data[i];
        if (!seen[b]) {
            mins[b] = maxs[b] = v;
            seen[b] = true;
            continue;
        }
        if (v < mins[b]) mins[b] = v;
        if (v > maxs[b]) maxs[b] = v;
    }
    return SW_OK;
}

sw_status sw_quantizer_block_mean_abs(const sw_quant_target *t, const sw_tensor *x,
                                      sw_arena *arena, float *means) {
    if (x->numel == 0)
        return SW_FAIL(SW_ERR_SHAPE, "%s.%s: cannot average an empty value", t->module, t->name);
    if (!t->has_scaling) {
        double sum = 0;
        for (size_t i = 0; i < x->numel; i++) sum += fabsf(x->data[i]);
        means[0] = (float)(sum / (double)x->numel);
        return SW_OK;
    }
    int *map = NULL;
    SW_TRY(block_map(t, &x->shape, arena, &map));
    /* Sums in double: a block of an activation holds up to batch * C * H * W values. */
    double *sums = sw_arena_alloc(arena, t->n_blocks * sizeof *sums);
    size_t *counts = sw_arena_alloc(arena, t->n_blocks * sizeof *counts);
    if (!sums || !counts) return SW_FAIL(SW_ERR_NOMEM, "out of step memory");
    memset(sums, 0, t->n_blocks * sizeof *sums);
    memset(counts, 0, t->n_blocks * sizeof *counts);
    for (size_t i = 0; i < x->numel; i++) {
        sums[map[i]] += fabsf(x->data[i]);
        counts[map[i]]++;
    }
    for (size_t b = 0; b < t->n_blocks; b++)
        means[b] = counts[b] ? (float)(sums[b] / (double)counts[b]) : 0.0f;
    return SW_OK;
}

/* Per-element copies of block values (scale or zero point) for a value of `shape`. */
static sw_status expand(const float *blocks, const int *map, size_t n, sw_arena *arena,
                        float **out) {
    float *e = sw_arena_alloc(arena, n * sizeof *e);
    if (!e) return SW_FAIL(SW_ERR_NOMEM, "out of step memory for per-channel scales");
    for (size_t i = 0; i < n; i++) e[i] = blocks[map[i]];
    *out = e;
    return SW_OK;
}

/* ---- the transforms ------------------------------------------------------------------- */

/* What both transforms of a target know: their quantizer and target index. */
typedef struct tf_state {
    sw_quantizer *q;
    int index;
} tf_state;

static void tf_state_free(sw_transform *tf) {
    free(tf->state);
}

/* Observers run at every forward, training or eval: each algorithm decides what to do with
 * the value (QAT tracks only in training, PTQ always, LSQ/DoReFa/BNN initialise until the first
 * optimizer step). The value itself passes on untouched. */
static sw_status observe_forward(sw_transform *tf, const sw_transform_call *call,
                                 const sw_tensor *x, sw_tensor *y) {
    (void)y;
    tf_state *s = tf->state;
    if (!s->q->qops->observe) return SW_OK;
    return s->q->qops->observe(s->q, &s->q->targets[s->index], call, x);
}

static const sw_transform_ops observe_ops = {
    .name = "quant_observe",
    .forward = observe_forward,
    .free = tf_state_free,
    .observer = true,
};

/* LSQ and LSQ+ read their scale through the gradient-scale identity (s - s*g) + s*g, which
 * depends on the value's size; every other method uses the stored scale as it is. */
static bool learnable_method(sw_quant_method m) {
    return m == SW_QUANT_LSQ_CLAMP_ROUND || m == SW_QUANT_LSQ_PLUS_CLAMP_ROUND;
}

/* The scale and zero point a forward or backward on value x uses: scalars, or per-element
 * copies; LSQ's effective scale (s - s*g) + s*g depends on the value's numel. */
static sw_status params_for(const sw_quant_target *t, const sw_tensor *x, sw_arena *arena,
                            float *scalar_s, float *scalar_z, sw_fq_scale *p, int **map_out) {
    *p = (sw_fq_scale){.qmin = t->qmin, .qmax = t->qmax};
    if (map_out) *map_out = NULL;
    const float *s = t->scale;
    float *eff = NULL;
    if (learnable_method(t->method)) {
        double gf = sw_fq_lsq_grad_factor(t->qmax, x->numel);
        if (t->n_blocks == 1) {
            *scalar_s = sw_fq_lsq_effective_scale(t->scale[0], gf);
            s = scalar_s;
        } else {
            eff = sw_arena_alloc(arena, t->n_blocks * sizeof *eff);
            if (!eff) return SW_FAIL(SW_ERR_NOMEM, "out of step memory");
            for (size_t b = 0; b < t->n_blocks; b++)
                eff[b] = sw_fq_lsq_effective_scale(t->scale[b], gf);
            s = eff;
        }
    }
    /* Per tensor: one scale for the whole value and no block map (the common case). */
    if (!t->has_scaling) {
        *scalar_z = t->zero_point[0];
        if (s != scalar_s) *scalar_s = s[0];
        p->scale = scalar_s;
        p->zero_point = scalar_z;
        p->stride = 0;
        return SW_OK;
    }
    /* Per block: per-element copies, so the kernels see one layout whatever the granularity. */
    int *map = NULL;
    float *es = NULL, *ez = NULL;
    SW_TRY(block_map(t, &x->shape, arena, &map));
    SW_TRY(expand(s, map, x->numel, arena, &es));
    SW_TRY(expand(t->zero_point, map, x->numel, arena, &ez));
    p->scale = es;
    p->zero_point = ez;
    p->stride = 1;
    if (map_out) *map_out = map;
    return SW_OK;
}

sw_status sw_quant_target_apply(const sw_quant_target *t, const sw_tensor *x, sw_tensor *y,
                                sw_arena *arena) {
    if (!t->has_scale || t->method == SW_QUANT_BYPASS) {
        if (y->data != x->data) memcpy(y->data, x->data, x->numel * sizeof(float));
        return SW_OK;
    }
    float ss = 0, sz = 0;
    sw_fq_scale p;
    SW_TRY(params_for(t, x, arena, &ss, &sz, &p, NULL));
    switch (t->method) {
    case SW_QUANT_CLAMP_ROUND:
    case SW_QUANT_QAT_CLAMP_ROUND:
        sw_fq_clamp_round(x->data, y->data, x->numel, &p);
        break;
    case SW_QUANT_LSQ_CLAMP_ROUND:
        sw_fq_lsq_forward(x->data, y->data, x->numel, &p);
        break;
    case SW_QUANT_LSQ_PLUS_CLAMP_ROUND:
        sw_fq_lsq_plus_forward(x->data, y->data, x->numel, &p);
        break;
    case SW_QUANT_DOREFA_WEIGHT:
        sw_fq_dorefa_weight_forward(x->data, y->data, x->numel, &p);
        break;
    case SW_QUANT_DOREFA_OUTPUT:
        sw_fq_dorefa_output_forward(x->data, y->data, x->numel, &p);
        break;
    case SW_QUANT_BNN:
        sw_fq_bnn_forward(x->data, y->data, x->numel);
        break;
    case SW_QUANT_BYPASS:
        break;
    }
    return SW_OK;
}

/* The fake-quant transform: the value in, its fake-quantized copy out (in place for
 * outputs). */
static sw_status quant_forward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                               sw_tensor *y) {
    tf_state *st = tf->state;
    return sw_quant_target_apply(&st->q->targets[st->index], x, y, sw_quantizer_call_arena(call));
}

/* Adds per-element contributions to per-block gradients, times LSQ's gradient factor. Sums
 * run in double (`sums`: n_blocks doubles of scratch), so that a batch's many small terms do not
 * lose precision before the one conversion to float. */
static void sum_blocks(const double *contrib, const int *map, size_t n, double factor, float *grad,
                       size_t n_blocks, double *sums) {
    for (size_t b = 0; b < n_blocks; b++) sums[b] = 0.0;
    if (!map)
        for (size_t i = 0; i < n; i++) sums[0] += contrib[i];
    else
        for (size_t i = 0; i < n; i++) sums[map[i]] += contrib[i];
    for (size_t b = 0; b < n_blocks; b++) grad[b] += (float)(sums[b] * factor);
}

/* Straight-through backward. Methods whose estimator needs no scale (clamp_round passes
 * everything, BNN masks outputs by |x| > 1, DoReFa differentiates its own smooth parts) return
 * early; QAT masks where the value was clipped; LSQ/LSQ+ also accumulate their parameters'
 * gradients, summed per block. */
static sw_status quant_backward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                                sw_tensor *g) {
    tf_state *st = tf->state;
    sw_quant_target *t = &st->q->targets[st->index];
    if (!t->has_scale || t->method == SW_QUANT_BYPASS) return SW_OK;
    sw_arena *arena = sw_quantizer_call_arena(call);
    switch (t->method) {
    case SW_QUANT_CLAMP_ROUND:
        return SW_OK; /* straight through */
    case SW_QUANT_BNN:
        if (t->kind == SW_TARGET_OUTPUT) sw_fq_bnn_output_backward(x->data, g->data, g->numel);
        return SW_OK;
    case SW_QUANT_DOREFA_WEIGHT:
        sw_fq_dorefa_weight_backward(x->data, g->data, g->numel);
        return SW_OK;
    case SW_QUANT_DOREFA_OUTPUT:
        sw_fq_dorefa_output_backward(x->data, g->data, g->numel);
        return SW_OK;
    default:
        break;
    }
    float ss = 0, sz = 0;
    sw_fq_scale p;
    int *map = NULL;
    SW_TRY(params_for(t, x, arena, &ss, &sz, &p, &map));
    if (t->method == SW_QUANT_QAT_CLAMP_ROUND) {
        sw_fq_qat_backward(x->data, g->data, g->numel, &p);
        return SW_OK;
    }
    double *ds = sw_arena_alloc(arena, g->numel * sizeof *ds);
    double *dz = sw_arena_alloc(arena, g->numel * sizeof *dz);
    double *sums = sw_arena_alloc(arena, t->n_blocks * sizeof *sums);
    if (!ds || !dz || !sums) return SW_FAIL(SW_ERR_NOMEM, "out of step memory");
    double gf = sw_fq_lsq_grad_factor(t->qmax, x->numel);
    if (t->method == SW_QUANT_LSQ_CLAMP_ROUND) {
        sw_fq_lsq_backward(x->data, g->data, g->numel, &p, ds);
        sum_blocks(ds, map, g->numel, gf, t->dscale, t->n_blocks, sums);
    } else {
        sw_fq_lsq_plus_backward(x->data, g->data, g->numel, &p, ds, dz);
        sum_blocks(ds, map, g->numel, gf, t->dscale, t->n_blocks, sums);
        if (t->dzero_point) sum_blocks(dz, map, g->numel, 1.0, t->dzero_point, t->n_blocks, sums);
    }
    return SW_OK;
}

static const sw_transform_ops quant_ops = {
    .name = "fake_quant",
    .forward = quant_forward,
    .backward = quant_backward,
    .free = tf_state_free,
    .needs_input = true,
};

/* ---- learnable input scales of the data ---------------------------------------------------
 *
 * The executor computes no gradient for the model's input (it is data), so the input chain of
 * a node reading it never runs backward, and an LSQ scale on that input would never learn
 * (torch does compute it: the scale is a leaf that requires grad). This transform sits first in
 * the node's output chain (stage 0): in backward it runs last, sees exactly the gradient the
 * layer receives, computes the layer's input gradient into scratch and runs the input's
 * fake-quant backward on it, which accumulates the scale's gradient. The data's gradient itself
 * is dropped. */

static sw_status data_grad_forward(sw_transform *tf, const sw_transform_call *call,
                                   const sw_tensor *x, sw_tensor *y) {
    (void)tf;
    (void)call;
    if (y->data != x->data) memcpy(y->data, x->data, x->numel * sizeof(float));
    return SW_OK;
}

static sw_status data_grad_backward(sw_transform *tf, const sw_transform_call *call,
                                    const sw_tensor *x, sw_tensor *g) {
    (void)x;
    tf_state *st = tf->state;
    sw_quant_target *t = &st->q->targets[st->index];
    if (!t->quant_tf || !t->has_scale || t->method == SW_QUANT_BYPASS) return SW_OK;
    sw_model *m = call->wrapper->set->model;
    sw_layer *l = m->nodes[t->node].layer;
    sw_layer_io *io = &m->ios[t->node];
    int j = atoi(t->name + 7); /* "_input_<j>" */
    const sw_tensor *in = io->in[j];
    float *data = sw_arena_floats(&m->arena, in->numel);
    if (!data) return SW_FAIL(SW_ERR_NOMEM, "out of step memory");
    sw_tensor din = sw_tensor_view(data, &in->shape);
    sw_tensor *dins[SW_MAX_INPUTS] = {0};
    dins[j] = &din;
    SW_TRY(l->ops->backward_input(l, io, g, dins));
    return t->quant_tf->ops->backward(t->quant_tf, call, &t->quant_tf->saved, &din);
}

static const sw_transform_ops data_grad_ops = {
    .name = "quant_data_scale_grad",
    .forward = data_grad_forward,
    .backward = data_grad_backward,
    .free = tf_state_free,
};

/* ---- training hooks -------------------------------------------------------------------- */

/* One optimizer group for every learnable value of the quantizer: the evaluator has a fixed
 * number of group slots, and a group per target would exhaust them on a ResNet. */
static sw_status hook_train_begin(void *ctx, sw_train_state *st) {
    sw_quantizer *q = ctx;
    if (q->n_learnable == 0) return SW_OK;
    /* NNI appends the scales to the optimizer's param groups (patch_optim_param_group). */
    return sw_optim_add_group(&st->ev->optim, q->learnable, q->learnable_grad, q->n_learnable);
}

/* NNI's after-step task: count the step, stop initialising, then the algorithm's own work
 * (QAT's switch from bypass, BNN's clamp). */
static sw_status hook_after_step(void *ctx, sw_train_state *st) {
    sw_quantizer *q = ctx;
    q->step++;
    q->initialised = true;
    return q->qops->after_step ? q->qops->after_step(q, st) : SW_OK;
}

/* ---- setup ----------------------------------------------------------------------------- */

/* Everything setup may have allocated; safe on a half-built quantizer. */
static void free_targets(sw_quantizer *q) {
    for (int i = 0; i < q->n_targets; i++) free(q->targets[i].store);
    free(q->targets);
    q->targets = NULL;
    q->n_targets = 0;
    free(q->learnable);
    free(q->learnable_grad);
    q->learnable = q->learnable_grad = NULL;
    q->n_learnable = 0;
    sw_bn_fold_free(q->fold);
    q->fold = NULL;
}

void sw_quantizer_deinit(sw_quantizer *q) {
    free_targets(q);
}

/* Block grid of a target: per tensor [1]; else the kernel's grid over the parameter, or over
 * the activation batched with N = 1 (and N = 2, to be sure the batch dim is one block). */
static sw_status target_grid(sw_quant_target *t, const sw_shape *sample) {
    if (!t->has_scaling) {
        t->grid = sw_shape_1d(1);
        t->n_blocks = 1;
        return SW_OK;
    }
    if (t->kind == SW_TARGET_PARAM) {
        SW_TRY(sw_scaling_grid(&t->scaling, sample, &t->grid, NULL));
    } else {
        sw_shape one, two, g2;
        if (sample->ndim >= SW_MAX_DIMS)
            return SW_FAIL(SW_ERR_SHAPE, "%s.%s: a %d-d activation cannot be scaled per block",
                           t->module, t->name, sample->ndim);
        SW_TRY(sw_shape_batched(sample, 1, &one));
        SW_TRY(sw_shape_batched(sample, 2, &two));
        SW_TRY(sw_scaling_grid(&t->scaling, &one, &t->grid, NULL));
        SW_TRY(sw_scaling_grid(&t->scaling, &two, &g2, NULL));
        if (!sw_shape_equal(&t->grid, &g2))
            return SW_FAIL(SW_ERR_CONFIG,
                           "%s.%s: this granularity cuts the batch dimension into blocks; "
                           "activation scales must cover the whole batch (use \"per_channel\" "
                           "or a kernel starting with -1)",
                           t->module, t->name);
    }
    t->n_blocks = sw_shape_numel(&t->grid);
    return SW_OK;
}

/* Fills one target record from a resolved config item and attaches its transforms. */
static sw_status setup_target(sw_quantizer *q, const sw_config_target *ct, int index) {
    sw_wrapper_set *ws = q->base.ws;
    sw_quant_target *t = &q->targets[index];
    const sw_node *node = &ws->model->nodes[ct->node];
    sw_target *wt = sw_wrapper_target(&ws->wrappers[ct->node], ct->target);
    SW_ASSERT(wt != NULL);
    *t = (sw_quant_target){.node = ct->node,
                           .module = node->name,
                           .kind = wt->kind,
                           .param_index = wt->kind == SW_TARGET_PARAM ? wt->index : -1,
                           .entry = ct->entry};
    snprintf(t->name, sizeof t->name, "%s", ct->target);
    SW_TRY(sw_quant_setting_from_json(ct->setting, &t->setting));
    t->qmin = t->setting.dtype.qmin;
    t->qmax = t->setting.dtype.qmax;
    /* NNI's quantizers resolve "default" to per tensor. */
    sw_granularity g = t->setting.granularity;
    t->has_scaling = false;
    if (g.kind != SW_GRANULARITY_DEFAULT && g.kind != SW_GRANULARITY_ELEMENT)
        SW_TRY(
            sw_granularity_scaling(&g, wt->kind == SW_TARGET_PARAM, &t->has_scaling, &t->scaling));
    SW_TRY(target_grid(t, &wt->shape));
    t->store = calloc(4 * t->n_blocks, sizeof(float));
    if (!t->store) return SW_FAIL(SW_ERR_NOMEM, "out of memory for %s.%s", t->module, t->name);
    t->scale = t->store;
    t->zero_point = t->store + t->n_blocks;
    t->tracked_min = t->store + 2 * t->n_blocks;
    t->tracked_max = t->store + 3 * t->n_blocks;
    t->method = q->qops->initial_method(q, t);
    /* The algorithm's refusals (DoReFa without a scheme, BNN per channel) name the target. */
    if (q->qops->check_target) SW_TRY(q->qops->check_target(q, t));
    tf_state *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b) {
        free(a);
        free(b);
        return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    }
    *a = *b = (tf_state){.q = q, .index = index};
    sw_status st = sw_wrapper_set_attach(ws, t->node, t->name, &observe_ops, SW_STAGE_OBSERVE, q, a,
                                         &t->observe_tf);
    if (st != SW_OK) {
        free(b);
        return st;
    }
    SW_TRY(sw_wrapper_set_attach(ws, t->node, t->name, &quant_ops, SW_STAGE_QUANTIZE, q, b,
                                 &t->quant_tf));
    /* A learnable scale on the model's own input needs the gradient the executor skips. */
    if (q->qops->learnable_scale && t->kind == SW_TARGET_INPUT &&
        node->inputs[wt->index] == SW_NODE_INPUT) {
        tf_state *c = malloc(sizeof *c);
        if (!c) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        *c = (tf_state){.q = q, .index = index};
        SW_TRY(sw_wrapper_set_attach(ws, t->node, "_output_0", &data_grad_ops, 0, q, c, NULL));
    }
    return SW_OK;
}

/* Learnable scales (and zero points) move into one array, the optimizer's group. */
static sw_status setup_learnable(sw_quantizer *q) {
    if (!q->qops->learnable_scale) return SW_OK;
    size_t per = q->qops->learnable_zero_point ? 2 : 1, n = 0;
    for (int i = 0; i < q->n_targets; i++) n += per * q->targets[i].n_blocks;
    if (n == 0) return SW_OK;
    q->learnable = calloc(n, sizeof(float));
    q->learnable_grad = calloc(n, sizeof(float));
    if (!q->learnable || !q->learnable_grad) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    q->n_learnable = n;
    size_t at = 0;
    for (int i = 0; i < q->n_targets; i++) {
        sw_quant_target *t = &q->targets[i];
        t->scale = q->learnable + at;
        t->dscale = q->learnable_grad + at;
        at += t->n_blocks;
        if (per == 2) {
            t->zero_point = q->learnable + at;
            t->dzero_point = q->learnable_grad + at;
            at += t->n_blocks;
        }
    }
    return SW_OK;
}

static sw_status setup(sw_quantizer *q, const sw_quantizer_ops *qops, const cJSON *config_list) {
    q->qops = qops;
    q->base.hooks.on_train_begin = hook_train_begin;
    q->base.hooks.after_step = hook_after_step;
    sw_wrapper_set *ws = q->base.ws;
    sw_quant_fuse *fuses = NULL;
    int n_fuses = 0;
    /* Whole-list checks first (required keys, fuse names), so their errors come before any
     * target is built; then resolution, claims and transforms; learnable storage once every
     * target's block count is known; fusion last, because it checks the targets. */
    SW_TRY(sw_quant_config_check(ws->model, config_list, &fuses, &n_fuses));
    sw_config_resolved r;
    sw_status st =
        sw_config_resolve(ws->model, config_list, &sw_quant_config_mode, &q->base.warnings, &r);
    if (st != SW_OK) {
        free(fuses);
        return st;
    }
    q->targets = calloc((size_t)(r.n ? r.n : 1), sizeof *q->targets);
    if (!q->targets) st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r.n && st == SW_OK; i++) {
        const sw_config_target *ct = &r.items[i];
        const void *holder = NULL;
        if (!sw_wrapper_set_claim(ws, ct->node, ct->target, SW_MODE_QUANTIZATION, q, &holder)) {
            const sw_compressor *h = holder;
            sw_warnings_add(&q->base.warnings,
                            "config_list[%d]: %s.%s is already quantized by %s (an earlier "
                            "compressor of this model); this config is ignored for it (first "
                            "config wins)",
                            ct->entry, ws->model->nodes[ct->node].name, ct->target,
                            h ? h->ops->name : "another quantizer");
            continue;
        }
        /* Counted before setup so that a half-built target is freed on failure. */
        st = setup_target(q, ct, q->n_targets++);
        if (st != SW_OK) sw_error_prefix("config_list[%d]", ct->entry);
    }
    sw_config_resolved_deinit(&r);
    if (st == SW_OK) st = setup_learnable(q);
    if (st == SW_OK && n_fuses > 0) st = sw_bn_fold_setup(q, fuses, n_fuses);
    free(fuses);
    return st;
}

sw_status sw_quantizer_init(sw_quantizer *q, const sw_compressor_ops *ops,
                            const sw_quantizer_ops *qops, sw_wrapper_set *ws,
                            const cJSON *config_list, sw_evaluator *ev) {
    memset(q, 0, sizeof *q);
    SW_TRY(sw_compressor_init(&q->base, ops, ws, ev));
    sw_status st = setup(q, qops, config_list);
    if (st != SW_OK) {
        sw_compressor_deinit(&q->base);
        free_targets(q);
    }
    return st;
}

sw_status sw_quantizer_init_from(sw_quantizer *q, const sw_compressor_ops *ops,
                                 const sw_quantizer_ops *qops, sw_compressor *previous,
                                 const cJSON *config_list, sw_evaluator *ev) {
    memset(q, 0, sizeof *q);
    SW_TRY(sw_compressor_init_from(&q->base, ops, previous, ev));
    sw_status st = setup(q, qops, config_list);
    if (st != SW_OK) {
        sw_compressor_deinit(&q->base);
        free_targets(q);
    }
    return st;
}

sw_status sw_quantizer_build(sw_quantizer *q, const sw_compressor_ops *ops,
                             const sw_quantizer_ops *qops, sw_wrapper_set *ws,
                             sw_compressor *previous, const cJSON *config_list, sw_evaluator *ev,
                             sw_compressor **out) {
    if (!q) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %s", ops->name);
    sw_status st = previous ? sw_quantizer_init_from(q, ops, qops, previous, config_list, ev)
                            : sw_quantizer_init(q, ops, qops, ws, config_list, ev);
    if (st != SW_OK) {
        free(q);
        return st;
    }
    *out = &q->base;
    return SW_OK;
}

void sw_quantizer_free(sw_compressor *c) {
    sw_quantizer_deinit((sw_quantizer *)c);
    free(c);
}

bool sw_quantizer_needs_training(const sw_compressor *c) {
    (void)c;
    return true;
}
