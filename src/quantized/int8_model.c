/* int8_model.c - converting a quantized model to int8, and running it.
 *
 * Integer identity of an INT8 layer. Inputs are stored as a = q_x + off (uint8; off = 128 for
 * signed dtypes so that [-127, 127] fits), weights as w (int8; unsigned dtypes shifted by -128,
 * their zero points with them). With c_x = zp_x + off and z_o the stored weight zero point:
 *
 *   T = sum_k (q_x - zp_x)(q_w - zp_w) = sum_k (a - c_x)(w - z_o)
 *     = sum_k a w  -  z_o sum_k a  -  c_x sum_k w  +  K c_x z_o
 *
 * The first sum is the int32 GEMM; sum_k a is taken per patch while quantizing, sum_k w per
 * output channel at conversion. Padding pixels of a convolution are the quantized zero (a = c_x),
 * exactly what the simulation's zero padding of a fake-quantized input is. T is exact; the
 * output is s_x * s_w[o] * T + b[o].
 *
 * Parallelism: conv layers split the batch over OpenMP threads (each with its own scratch);
 * linear layers split the rows. The float nodes run the float layers, which parallelise
 * themselves. */
#include "int8_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../compress/quantization/bn_fold.h"
#include "../nn/loss.h"
#include "../tensor/im2col.h"
#include <omp.h>
#include "int8_gemm.h"

const char *sw_i8_mode_name(sw_i8_mode m) {
    switch (m) {
    case SW_I8_INT8:
        return "int8";
    case SW_I8_IDENTITY:
        return "identity";
    case SW_I8_FLOAT:
        break;
    }
    return "float";
}

/* ---- records ------------------------------------------------------------------------------ */

sw_status sw_i8_layer_new(int out_channels, size_t k, sw_i8_layer **out) {
    if (k == 0 || k > SW_I8_MAX_K || out_channels <= 0)
        return SW_FAIL(SW_ERR_ARG, "int8 layer of %d x %zu: rows must have 1 to %d values",
                       out_channels, k, SW_I8_MAX_K);
    sw_i8_layer *l = calloc(1, sizeof *l);
    if (!l) return SW_FAIL(SW_ERR_NOMEM, "out of memory for an int8 layer");
    l->out_channels = out_channels;
    l->k = k;
    l->ldk = sw_i8_padded_k(k);
    size_t o = (size_t)out_channels;
    l->w = calloc(o * l->ldk, 1);
    l->w_scale = calloc(o, sizeof *l->w_scale);
    l->w_zp = calloc(o, sizeof *l->w_zp);
    l->w_rowsum = calloc(o, sizeof *l->w_rowsum);
    l->bias = calloc(o, sizeof *l->bias);
    if (!l->w || !l->w_scale || !l->w_zp || !l->w_rowsum || !l->bias) {
        sw_i8_layer_free(l);
        return SW_FAIL(SW_ERR_NOMEM, "out of memory for an int8 layer of %d x %zu", out_channels,
                       k);
    }
    for (size_t i = 0; i < o; i++) l->w_scale[i] = 1.0f;
    l->in_scale = 1.0f;
    l->groups = 1;
    *out = l;
    return SW_OK;
}

void sw_i8_layer_free(sw_i8_layer *l) {
    if (!l) return;
    for (int g = 0; l->packed && g < l->groups; g++) sw_i8_packed_free(l->packed[g]);
    free(l->packed);
    free(l->w);
    free(l->w_scale);
    free(l->w_zp);
    free(l->w_rowsum);
    free(l->bias);
    free(l);
}

sw_status sw_i8_layer_finish(sw_i8_layer *l) {
    for (int o = 0; o < l->out_channels; o++) {
        int32_t s = 0;
        const int8_t *w = l->w + (size_t)o * l->ldk;
        for (size_t k = 0; k < l->k; k++) s += w[k];
        l->w_rowsum[o] = s;
    }
    if (l->groups < 1 || l->out_channels % l->groups != 0)
        return SW_FAIL(SW_ERR_ARG, "int8 layer: %d output channels in %d groups", l->out_channels,
                       l->groups);
    if (l->packed) {
        for (int g = 0; g < l->groups; g++) sw_i8_packed_free(l->packed[g]);
        free(l->packed);
    }
    l->packed = calloc((size_t)l->groups, sizeof *l->packed);
    if (!l->packed) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    int og = l->out_channels / l->groups;
    for (int g = 0; g < l->groups; g++)
        SW_TRY(sw_i8_pack(l->w + (size_t)g * (size_t)og * l->ldk, og, l->k, l->ldk, &l->packed[g]));
    return SW_OK;
}

/* An op owns its target's value store or its mask. */
static void free_op(sw_i8_op *op) {
    free(op->quant.store);
    free(op->mask);
}

static void free_nodes(sw_i8_node *nodes, int n) {
    if (!nodes) return;
    for (int i = 0; i < n; i++) {
        sw_i8_layer_free(nodes[i].layer);
        for (int k = 0; k < nodes[i].n_ops; k++) free_op(&nodes[i].ops[k]);
        free(nodes[i].ops);
    }
    free(nodes);
}

void sw_int8_model_free(sw_int8_model *m) {
    if (!m) return;
    if (m->model) free_nodes(m->nodes, m->model->n_nodes);
    sw_model_free(m->model);
    sw_arena_deinit(&m->arena);
    free(m->outs);
    free(m);
}

sw_status sw_int8_model_wrap(sw_model *model, sw_int8_model **out) {
    sw_int8_model *m = calloc(1, sizeof *m);
    if (!m) {
        sw_model_free(model);
        return SW_FAIL(SW_ERR_NOMEM, "out of memory for an int8 model");
    }
    m->model = model;
    sw_arena_init(&m->arena);
    m->nodes = calloc((size_t)model->n_nodes, sizeof *m->nodes);
    m->outs = calloc((size_t)model->n_nodes, sizeof *m->outs);
    if (!m->nodes || !m->outs) {
        sw_int8_model_free(m);
        return SW_FAIL(SW_ERR_NOMEM, "out of memory for an int8 model");
    }
    *out = m;
    return SW_OK;
}

void sw_int8_model_counts(const sw_int8_model *m, int counts[3]) {
    counts[0] = counts[1] = counts[2] = 0;
    for (int i = 0; i < m->model->n_nodes; i++) counts[m->nodes[i].mode]++;
}

/* Appends an op (zeroed) to node n; returns it through *out. */
/* Ops are few per node (a requantisation and maybe a mask per target): a plain array. */
static sw_status push_op(sw_i8_node *n, sw_i8_op **out) {
    sw_i8_op *grown = realloc(n->ops, (size_t)(n->n_ops + 1) * sizeof *grown);
    if (!grown) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    n->ops = grown;
    *out = &n->ops[n->n_ops++];
    memset(*out, 0, sizeof **out);
    return SW_OK;
}

/* ---- conversion ------------------------------------------------------------------------- */

/* What conversion reads: the chain's quantizers (newest first, as the chain is walked) and
 * the live wrapper set, whose masks are the product of every pruner's. */
typedef struct convert_ctx {
    const sw_compressor *c;
    sw_wrapper_set *ws; /* the live set (masks) */
    sw_quantizer *quants[16];
    int n_quants;
    sw_arena scratch;
} convert_ctx;

/* The quantizer target (node, name) of any quantizer of the chain, or NULL. */
static sw_quant_target *find_qt(convert_ctx *cx, int node, const char *name) {
    for (int k = 0; k < cx->n_quants; k++) {
        sw_quantizer *q = cx->quants[k];
        for (int i = 0; i < q->n_targets; i++)
            if (q->targets[i].node == node && strcmp(q->targets[i].name, name) == 0)
                return &q->targets[i];
    }
    return NULL;
}

/* Folding group whose first module is `node` (or that absorbs it), if any. */
static bool fold_of(convert_ctx *cx, int node, sw_bn_fold_info *info) {
    for (int k = 0; k < cx->n_quants; k++)
        for (int f = 0; f < sw_bn_fold_count(cx->quants[k]->fold); f++) {
            sw_bn_fold_info i = sw_bn_fold_get(cx->quants[k]->fold, f);
            if (i.first == node || i.bn == node || i.relu == node) {
                *info = i;
                return true;
            }
        }
    return false;
}

/* The live mask of (node, target) into buf (numel of the target); false when unmasked. */
static bool live_mask(convert_ctx *cx, int node, const char *name, float *buf) {
    sw_target *t = sw_wrapper_target(&cx->ws->wrappers[node], name);
    return t && sw_target_mask(t, cx->ws, true, buf);
}

/* Methods with an integer form: y = (q - zp) * s with integer q and zp. LSQ+ learns a real
 * zero point, DoReFa and BNN transform before rounding: those stay in float. */
static bool int8_method(sw_quant_method m) {
    return m == SW_QUANT_CLAMP_ROUND || m == SW_QUANT_QAT_CLAMP_ROUND ||
           m == SW_QUANT_LSQ_CLAMP_ROUND;
}

/* The effective value of parameter `p` of node i before its chain's own transforms: the
 * BatchNorm fold for a folded weight/bias, else the raw value (the clone's). */
static void raw_param(convert_ctx *cx, sw_model *clone, int i, const char *pname, float *dst,
                      bool *has) {
    sw_layer *l = clone->nodes[i].layer;
    int p = sw_layer_param_index(l, pname);
    sw_bn_fold_info fi;
    *has = p >= 0;
    if (fold_of(cx, i, &fi) && fi.first == i && fi.bn >= 0) {
        size_t wn = l->params[sw_layer_param_index(l, "weight")].value.numel;
        float *w = malloc(wn * sizeof *w);
        int o = clone->nodes[i].out_shape.dims[0];
        float *b = malloc((size_t)o * sizeof *b);
        if (w && b) {
            sw_bn_fold_eval(clone, i, fi.bn, w, b);
            if (strcmp(pname, "weight") == 0) memcpy(dst, w, wn * sizeof *w);
            if (strcmp(pname, "bias") == 0) memcpy(dst, b, (size_t)o * sizeof *b);
        }
        free(w);
        free(b);
        if (strcmp(pname, "bias") == 0) *has = true; /* the fold always has a bias */
        return;
    }
    if (p >= 0) memcpy(dst, l->params[p].value.data, l->params[p].value.numel * sizeof *dst);
}

/* dst (numel n, shape of the target) = mask * fakequant(dst), the target chain's order. */
static sw_status apply_chain(convert_ctx *cx, int node, const char *name, const sw_shape *shape,
                             float *dst) {
    size_t n = sw_shape_numel(shape);
    sw_quant_target *t = find_qt(cx, node, name);
    if (t && t->has_scale) {
        sw_arena_reset(&cx->scratch);
        sw_tensor v = sw_tensor_view(dst, shape);
        SW_TRY(sw_quant_target_apply(t, &v, &v, &cx->scratch));
    }
    float *mask = malloc(n * sizeof *mask);
    if (!mask) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    if (live_mask(cx, node, name, mask))
        for (size_t e = 0; e < n; e++) dst[e] *= mask[e];
    free(mask);
    return SW_OK;
}

/* Why node i cannot run in int8 ("" when it can). */
/* Every condition for the integer path; the first that fails explains the float fallback. */
static const char *int8_blocker(convert_ctx *cx, const sw_model *m, int i) {
    const sw_node *nd = &m->nodes[i];
    sw_layer_kind k = nd->layer->kind;
    if (k != SW_LAYER_CONV2D && k != SW_LAYER_LINEAR) return "not a Conv2d or Linear";
    if (k == SW_LAYER_LINEAR && m->nodes[i].out_shape.ndim != 1) return "a Linear on >2-d input";
    const sw_quant_target *w = find_qt(cx, i, "weight");
    const sw_quant_target *x = find_qt(cx, i, "_input_0");
    if (!w || !w->has_scale) return "its weight is not quantized";
    if (!x || !x->has_scale) return "its input is not quantized";
    if (!int8_method(w->method) || !int8_method(x->method))
        return "its quantization method has no integer form (clamp_round, qat or lsq only)";
    if (w->setting.dtype.bits > 8 || x->setting.dtype.bits > 8) return "more than 8 bits";
    const sw_shape *ws = &nd->layer->param_shapes[sw_layer_param_index(nd->layer, "weight")];
    size_t row = sw_shape_numel(ws) / (size_t)ws->dims[0];
    if (row > SW_I8_MAX_K) return "its rows are longer than the int32 accumulation allows";
    if (x->n_blocks != 1) return "its input is quantized per channel";
    bool per_out = !w->has_scaling || (w->grid.dims[0] == (int)w->n_blocks);
    if (!per_out) return "its weight granularity is not per tensor or out_channel";
    return "";
}

/* Builds node i's integer layer from the live quantizer state. */
/* The weights are re-quantized from the effective float weight with the target's own scale
 * and zero point, the same rounding the simulation applies, so the integers are exactly the
 * simulation's. A masked weight becomes its zero point: (q - zp) * s is then exactly 0. */
static sw_status build_int8_layer(convert_ctx *cx, sw_model *clone, int i, sw_i8_layer **out) {
    sw_layer *l = clone->nodes[i].layer;
    sw_tensor *wv = &l->params[sw_layer_param_index(l, "weight")].value;
    int o_n = wv->shape.dims[0];
    size_t k = wv->numel / (size_t)o_n;
    sw_i8_layer *il = NULL;
    SW_TRY(sw_i8_layer_new(o_n, k, &il));
    sw_status st = SW_OK;
    float *w = malloc(wv->numel * sizeof *w), *mask = malloc(wv->numel * sizeof *mask);
    bool has_w;
    if (!w || !mask) st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
    if (st == SW_OK) raw_param(cx, clone, i, "weight", w, &has_w);
    const sw_quant_target *wt = find_qt(cx, i, "weight");
    bool masked = st == SW_OK && live_mask(cx, i, "weight", mask);
    int off_w = wt->setting.dtype.is_unsigned ? 128 : 0;
    double gf = sw_fq_lsq_grad_factor(wt->qmax, wv->numel);
    for (int o = 0; st == SW_OK && o < o_n; o++) {
        size_t b = wt->n_blocks == 1 ? 0 : (size_t)o;
        float s = wt->scale[b], z = wt->zero_point[b];
        if (wt->method == SW_QUANT_LSQ_CLAMP_ROUND) {
            s = sw_fq_lsq_effective_scale(s, gf);
            z = 0.0f;
        }
        il->w_scale[o] = s;
        il->w_zp[o] = z - (float)off_w;
        for (size_t e = 0; e < k; e++) {
            size_t idx = (size_t)o * k + e;
            float q = rintf(fminf(fmaxf(z + w[idx] / s, (float)wt->qmin), (float)wt->qmax));
            if (wt->method == SW_QUANT_LSQ_CLAMP_ROUND)
                q = rintf(fminf(fmaxf(w[idx] / s, (float)wt->qmin), (float)wt->qmax));
            if (masked && mask[idx] == 0.0f) q = z; /* (q - zp) * s = 0 exactly */
            il->w[(size_t)o * il->ldk + e] = (int8_t)((int)q - off_w);
        }
    }
    /* The bias: folded or raw, then its own chain (fake-quant, mask). */
    bool has_b = false;
    if (st == SW_OK) raw_param(cx, clone, i, "bias", il->bias, &has_b);
    if (st == SW_OK && has_b && sw_layer_param_index(l, "bias") >= 0) {
        sw_shape bs = sw_shape_1d(o_n);
        st = apply_chain(cx, i, "bias", &bs, il->bias);
    }
    if (!has_b) memset(il->bias, 0, (size_t)o_n * sizeof *il->bias);
    const sw_quant_target *xt = find_qt(cx, i, "_input_0");
    il->in_scale = xt->scale[0];
    il->in_zp = xt->method == SW_QUANT_LSQ_CLAMP_ROUND ? 0.0f : xt->zero_point[0];
    il->in_qmin = xt->qmin;
    il->in_qmax = xt->qmax;
    il->in_offset = xt->qmin < 0 ? 128 : 0;
    il->in_lsq = xt->method == SW_QUANT_LSQ_CLAMP_ROUND;
    il->groups = l->kind == SW_LAYER_CONV2D ? l->hp.groups : 1;
    if (st == SW_OK) st = sw_i8_layer_finish(il);
    free(w);
    free(mask);
    if (st != SW_OK) {
        sw_i8_layer_free(il);
        return st;
    }
    *out = il;
    return SW_OK;
}

/* Copies a quantizer target into a standalone record owning its values. */
/* A snapshot: the int8 model must not follow later changes of the live quantizer. */
static sw_status copy_target(const sw_quant_target *t, sw_quant_target *dst) {
    *dst = *t;
    dst->store = malloc(4 * t->n_blocks * sizeof(float));
    if (!dst->store) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    dst->scale = dst->store;
    dst->zero_point = dst->store + t->n_blocks;
    dst->tracked_min = dst->store + 2 * t->n_blocks;
    dst->tracked_max = dst->store + 3 * t->n_blocks;
    memcpy(dst->scale, t->scale, t->n_blocks * sizeof(float));
    memcpy(dst->zero_point, t->zero_point, t->n_blocks * sizeof(float));
    memcpy(dst->tracked_min, t->tracked_min, t->n_blocks * sizeof(float));
    memcpy(dst->tracked_max, t->tracked_max, t->n_blocks * sizeof(float));
    dst->dscale = dst->dzero_point = NULL;
    dst->observe_tf = dst->quant_tf = NULL;
    dst->module = NULL;
    return SW_OK;
}

/* The requantisation and mask ops of one activation target of node i. */
/* Requantisation then mask, the chain's order (stages QUANTIZE then PRUNE). For an INT8 node
 * the input's requantisation is the layer's own integer quantization and is skipped here. */
static sw_status add_activation_ops(convert_ctx *cx, const sw_model *m, int i, int input,
                                    bool skip_quant, sw_i8_node *n) {
    char name[SW_TARGET_NAME_MAX];
    if (input >= 0)
        snprintf(name, sizeof name, "_input_%d", input);
    else
        snprintf(name, sizeof name, "_output_0");
    const sw_quant_target *t = find_qt(cx, i, name);
    /* DoReFa's inputs take the scale of each batch's range: recomputed at run time. */
    bool dynamic = false;
    for (int k = 0; t && k < cx->n_quants; k++) {
        const sw_quantizer *q = cx->quants[k];
        if (t >= q->targets && t < q->targets + q->n_targets)
            dynamic =
                t->kind == SW_TARGET_INPUT && strcmp(q->base.ops->name, "DoReFaQuantizer") == 0;
    }
    if (t && !skip_quant && (t->has_scale || dynamic)) {
        sw_i8_op *op;
        SW_TRY(push_op(n, &op));
        op->kind = SW_I8_OP_QUANT;
        op->input = input;
        op->dynamic = dynamic;
        snprintf(op->target, sizeof op->target, "%s", name);
        SW_TRY(copy_target(t, &op->quant));
        op->quant.module = m->nodes[i].name;
    }
    sw_shape sample = input >= 0 ? (m->nodes[i].inputs[input] == SW_NODE_INPUT
                                        ? m->input_shape
                                        : m->nodes[m->nodes[i].inputs[input]].out_shape)
                                 : m->nodes[i].out_shape;
    size_t numel = sw_shape_numel(&sample);
    float *mask = malloc(numel * sizeof *mask);
    if (!mask) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    if (!live_mask(cx, i, name, mask)) {
        free(mask);
        return SW_OK;
    }
    sw_i8_op *op;
    sw_status st = push_op(n, &op);
    if (st != SW_OK) {
        free(mask);
        return st;
    }
    op->kind = SW_I8_OP_MASK;
    op->input = input;
    snprintf(op->target, sizeof op->target, "%s", name);
    op->mask = mask;
    op->mask_numel = numel;
    return SW_OK;
}

/* Float nodes: every parameter with a quantization or mask gets its effective value baked in;
 * folded first modules get W' and b'. */
/* Parameters keep their shapes: the float layer runs them as they are. */
static sw_status bake_float_node(convert_ctx *cx, sw_model *clone, int i) {
    sw_layer *l = clone->nodes[i].layer;
    for (int p = 0; p < l->n_params; p++) {
        if (!l->params[p].trainable) continue;
        bool has;
        raw_param(cx, clone, i, l->params[p].name, l->params[p].value.data, &has);
        SW_TRY(apply_chain(cx, i, l->params[p].name, &l->params[p].value.shape,
                           l->params[p].value.data));
    }
    return SW_OK;
}

sw_status sw_int8_model_from_compressor(const sw_compressor *c, sw_int8_model **out) {
    convert_ctx cx = {.c = c, .ws = c->ws};
    for (const sw_compressor *k = c; k; k = k->previous) {
        sw_quantizer *q = sw_quantizer_of((sw_compressor *)k);
        if (q && cx.n_quants < 16) cx.quants[cx.n_quants++] = q;
    }
    if (cx.n_quants == 0)
        return SW_FAIL(SW_ERR_ARG, "int8 conversion: %s's chain has no quantizer", c->ops->name);
    if (sw_compressor_is_detached(c))
        return SW_FAIL(SW_ERR_ARG, "int8 conversion: the model was unwrapped; convert before "
                                   "unwrapping");
    sw_model *clone = NULL;
    SW_TRY(sw_model_clone(c->model, &clone));
    sw_int8_model *m = NULL;
    SW_TRY(sw_int8_model_wrap(clone, &m));
    sw_arena_init(&cx.scratch);
    sw_status st = SW_OK;
    for (int i = 0; i < clone->n_nodes && st == SW_OK; i++) {
        sw_i8_node *n = &m->nodes[i];
        sw_bn_fold_info fi;
        bool folded = fold_of(&cx, i, &fi);
        if (folded && (fi.bn == i || fi.relu == i)) {
            n->mode = SW_I8_IDENTITY;
        } else {
            n->fused_relu = folded && fi.first == i && fi.relu >= 0;
            const char *why = int8_blocker(&cx, clone, i);
            if (why[0] == '\0') {
                n->mode = SW_I8_INT8;
                st = build_int8_layer(&cx, clone, i, &n->layer);
            } else {
                n->mode = SW_I8_FLOAT;
                /* A folded module without a bias parameter has nowhere to keep b'. */
                if (folded && fi.first == i && fi.bn >= 0) {
                    sw_layer *l = clone->nodes[i].layer;
                    if (sw_layer_param_index(l, "bias") < 0 || !l->hp.bias)
                        st = SW_FAIL(SW_ERR_UNSUPPORTED,
                                     "int8 conversion: \"%s\" folds a BatchNorm but cannot run "
                                     "in int8 (%s) and has no bias to hold the folded shift",
                                     clone->nodes[i].name, why);
                }
                if (st == SW_OK) st = bake_float_node(&cx, clone, i);
            }
        }
        for (int j = 0; j < clone->nodes[i].n_inputs && st == SW_OK; j++)
            st = add_activation_ops(&cx, clone, i, j, n->mode == SW_I8_INT8 && j == 0, n);
        if (st == SW_OK) st = add_activation_ops(&cx, clone, i, -1, false, n);
    }
    sw_arena_deinit(&cx.scratch);
    if (st != SW_OK) {
        sw_int8_model_free(m);
        return st;
    }
    *out = m;
    return SW_OK;
}

/* ---- execution --------------------------------------------------------------------------- */

/* Applies one op in place on a batched activation. */
/* Masks broadcast over the batch; requantisations reuse the quantizer's own forward. */
static sw_status run_op(sw_int8_model *m, sw_i8_op *op, sw_tensor *v) {
    if (op->kind == SW_I8_OP_MASK) {
        size_t per = op->mask_numel, n = v->numel / per;
        for (size_t b = 0; b < n; b++)
            for (size_t e = 0; e < per; e++) v->data[b * per + e] *= op->mask[e];
        return SW_OK;
    }
    if (op->dynamic) {
        /* DoReFa inputs: the scale of this batch's range. */
        sw_quant_target *t = &op->quant;
        float lo = v->data[0], hi = v->data[0];
        for (size_t e = 1; e < v->numel; e++) {
            lo = fminf(lo, v->data[e]);
            hi = fmaxf(hi, v->data[e]);
        }
        sw_fq_scale_from_range(lo, hi, t->qmin, t->qmax, t->setting.scheme, t->scale,
                               t->zero_point);
        t->has_scale = true;
    }
    return sw_quant_target_apply(&op->quant, v, v, &m->arena);
}

/* An arena tensor of the batched shape of `sample`. */
static sw_status arena_tensor(sw_arena *a, const sw_shape *sample, int batch, sw_tensor *out) {
    sw_shape s;
    SW_TRY(sw_shape_batched(sample, batch, &s));
    float *d = sw_arena_alloc(a, sw_shape_numel(&s) * sizeof(float));
    if (!d) return SW_FAIL(SW_ERR_NOMEM, "out of memory for int8 activations");
    *out = sw_tensor_view(d, &s);
    return SW_OK;
}

/* Quantizes n floats into stored bytes a = q + offset; returns sum of a. */
/* NNI's rounding (clamp then round half to even), then the storage offset. The sum feeds the
 * zero-point correction of every output of this row or patch. */
static int32_t quantize_bytes(const float *x, size_t n, float s, float zp, int qmin, int qmax,
                              int offset, uint8_t *a) {
    int32_t sum = 0;
    const float lo = (float)qmin, hi = (float)qmax, magic = 12582912.0f; /* 1.5 * 2^23 */
#pragma omp simd reduction(+ : sum)
    for (size_t e = 0; e < n; e++) {
        float t = zp + x[e] / s;
        t = t < lo ? lo : (t > hi ? hi : t);
        /* Round half to even without a libm call (fake_quant.c's round_even). */
        int q = (int)((t + magic) - magic) + offset;
        a[e] = (uint8_t)q;
        sum += q;
    }
    return sum;
}

/* LSQ's gradient-scale identity changes the scale by up to an ulp with the value's size: the
 * simulation used the batch's numel, so the int8 layer does too. */
static float input_scale(const sw_i8_layer *l, size_t numel) {
    if (!l->in_lsq) return l->in_scale;
    return sw_fq_lsq_effective_scale(l->in_scale, sw_fq_lsq_grad_factor(l->in_qmax, numel));
}

/* Per output channel, what turns the int32 product of a row into y (see the file comment):
 *   T = acc + base - z * asum,   y = scale * T + bias,
 * with base = K c_x z - c_x rowsum(w) and scale = s_x s_w. With K <= SW_I8_MAX_K, c_x <= 255 and
 * |z| <= 128 every term and T itself stay below 2^31 in magnitude, so int32 suffices and the
 * loops vectorize. Kept in locals: the loops over rows must not reload them through pointers that
 * might alias the output. */
typedef struct dequant_k {
    float scale, bias;
    int32_t base, z;
} dequant_k;

static inline dequant_k dequant_of(const sw_i8_layer *l, int o, float sx, int32_t cx) {
    int32_t z = (int32_t)l->w_zp[o];
    return (dequant_k){.scale = sx * l->w_scale[o],
                       .bias = l->bias[o],
                       .base = (int32_t)l->k * cx * z - cx * l->w_rowsum[o],
                       .z = z};
}

static inline float dequant(dequant_k d, int32_t acc, int32_t asum) {
    return d.scale * (float)(acc + d.base - d.z * asum) + d.bias;
}

/* Rows are independent: each thread quantizes its rows and multiplies them by every weight
 * row (the packed weights stay in cache across a thread's rows). Scratch comes from the model's
 * arena, reused across calls: no allocation (and no page faults) in steady state. */
static sw_status linear_int8(const sw_i8_layer *l, const sw_tensor *x, sw_tensor *y, bool relu,
                             sw_arena *arena) {
    int n = x->shape.dims[0];
    size_t k = l->k;
    if (x->numel != (size_t)n * k)
        return SW_FAIL(SW_ERR_SHAPE, "int8 Linear: input of %zu values per row, expected %zu",
                       x->numel / (size_t)n, k);
    float sx = input_scale(l, x->numel);
    uint8_t *a = sw_arena_alloc(arena, (size_t)n * l->ldk);
    int32_t *c = sw_arena_alloc(arena, (size_t)n * (size_t)l->out_channels * sizeof *c);
    if (!a || !c) return SW_FAIL(SW_ERR_NOMEM, "out of memory for an int8 Linear");
    memset(a, 0, (size_t)n * l->ldk); /* the row padding must be zero */
    int32_t cx = (int32_t)l->in_zp + l->in_offset;
    (void)sw_i8_kernel_selected(); /* decided here, before any thread calls it */
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n; r++) {
        uint8_t *ar = a + (size_t)r * l->ldk;
        int32_t asum = quantize_bytes(x->data + (size_t)r * k, k, sx, l->in_zp, l->in_qmin,
                                      l->in_qmax, l->in_offset, ar);
        int32_t *cr = c + (size_t)r * l->out_channels;
        sw_i8_gemm(1, ar, l->ldk, l->packed[0], cr, (size_t)l->out_channels);
        float *yr = y->data + (size_t)r * l->out_channels;
        for (int o = 0; o < l->out_channels; o++) {
            float v = dequant(dequant_of(l, o, sx, cx), cr[o], asum);
            yr[o] = relu && !(v > 0.0f) ? 0.0f : v;
        }
    }
    return SW_OK;
}

/* One sample of an int8 convolution: quantize the image into a zero-point-padded copy, gather
 * patches (rows of A) from it, GEMM, dequantize into NCHW. Pixels are quantized once, not
 * kernel_h * kernel_w times, and the padded copy removes the bounds checks from the gather: its
 * border is the quantized zero, exactly what the simulation's zero padding of a fake-quantized
 * input is. Geometry is copied into locals: byte stores may alias anything, and the compiler
 * would otherwise reload every field after each one. */
static void conv_sample(const sw_i8_layer *l, const sw_layer_hparams *hp, const sw_conv_geom *g,
                        const float *x, float *y, float sx, bool relu, uint8_t *img, uint8_t *a,
                        int32_t *asum, int32_t *c) {
    const int cin = g->channels, height = g->height, width = g->width;
    const int kh = g->kernel_h, kw = g->kernel_w, sh = g->stride_h, sw = g->stride_w;
    const int dh = g->dil_h, dw = g->dil_w, out_h = g->out_h, out_w = g->out_w;
    const int hp_ = height + 2 * g->pad_h, wp = width + 2 * g->pad_w;
    const int groups = hp->groups, cg = cin / groups, og = l->out_channels / groups;
    const int m = out_h * out_w;
    const size_t ldk = l->ldk, plane_p = (size_t)hp_ * (size_t)wp;
    const int32_t cx = (int32_t)l->in_zp + l->in_offset;
    memset(img, (int)cx, (size_t)cin * plane_p);
    for (int ci = 0; ci < cin; ci++)
        for (int h = 0; h < height; h++)
            quantize_bytes(x + ((size_t)ci * height + h) * width, (size_t)width, sx, l->in_zp,
                           l->in_qmin, l->in_qmax, l->in_offset,
                           img + ci * plane_p + (size_t)(h + g->pad_h) * wp + g->pad_w);
    for (int gi = 0; gi < groups; gi++) {
        const uint8_t *gimg = img + (size_t)gi * cg * plane_p;
        for (int oh = 0; oh < out_h; oh++)
            for (int ow = 0; ow < out_w; ow++) {
                int row = oh * out_w + ow;
                uint8_t *ar = a + (size_t)row * ldk;
                int32_t s = 0;
                for (int ci = 0; ci < cg; ci++) {
                    const uint8_t *base = gimg + ci * plane_p + (size_t)(oh * sh) * wp + ow * sw;
                    for (int ki = 0; ki < kh; ki++) {
                        const uint8_t *src = base + (size_t)(ki * dh) * wp;
                        for (int kj = 0; kj < kw; kj++) {
                            uint8_t v = src[kj * dw];
                            *ar++ = v;
                            s += v;
                        }
                    }
                }
                asum[row] = s;
            }
        sw_i8_gemm(m, a, ldk, l->packed[gi], c, (size_t)og);
        /* The products come row by row ([m, og]); NCHW wants each channel's rows together.
         * Transposed in cache first, the dequantization below reads and writes contiguously
         * and vectorizes: the output is the large array, and its writes dominate. */
        int32_t *ct = c + (size_t)m * (size_t)og;
        for (int row = 0; row < m; row++)
            for (int o = 0; o < og; o++) ct[(size_t)o * m + row] = c[(size_t)row * og + o];
        for (int o = 0; o < og; o++) {
            int oc = gi * og + o;
            const dequant_k d = dequant_of(l, oc, sx, cx);
            float *restrict yp = y + (size_t)oc * (size_t)m;
            const int32_t *restrict cp = ct + (size_t)o * m;
            if (d.z == 0) {
                /* Symmetric weights (the usual case): no per-row correction, a plain affine map
                 * of the products, with scalar constants the compiler vectorizes. */
                const float sc = d.scale, bi = d.bias;
                const int32_t base = d.base;
#pragma omp simd
                for (int row = 0; row < m; row++) yp[row] = sc * (float)(cp[row] + base) + bi;
            } else {
#pragma omp simd
                for (int row = 0; row < m; row++) yp[row] = dequant(d, cp[row], asum[row]);
            }
            if (relu)
#pragma omp simd
                for (int row = 0; row < m; row++) yp[row] = yp[row] > 0.0f ? yp[row] : 0.0f;
        }
    }
}

/* Samples are independent: one per thread at a time, each thread with its own scratch,
 * sliced from the model's arena before the parallel region (the arena is not thread-safe). */
static sw_status conv_int8(const sw_i8_layer *l, const sw_layer *layer, const sw_tensor *x,
                           sw_tensor *y, bool relu, sw_arena *arena) {
    const sw_layer_hparams *hp = &layer->hp;
    sw_conv_geom g = {.channels = x->shape.dims[1],
                      .height = x->shape.dims[2],
                      .width = x->shape.dims[3],
                      .kernel_h = hp->kernel[0],
                      .kernel_w = hp->kernel[1],
                      .stride_h = hp->stride[0],
                      .stride_w = hp->stride[1],
                      .pad_h = hp->padding[0],
                      .pad_w = hp->padding[1],
                      .dil_h = hp->dilation[0],
                      .dil_w = hp->dilation[1]};
    if (!sw_conv_geom_resolve(&g)) return SW_FAIL(SW_ERR_SHAPE, "int8 Conv2d: window too large");
    int n = x->shape.dims[0], m = g.out_h * g.out_w, og = l->out_channels / hp->groups;
    size_t in_per = (size_t)g.channels * (size_t)g.height * (size_t)g.width;
    size_t padded =
        (size_t)g.channels * (size_t)(g.height + 2 * g.pad_h) * (size_t)(g.width + 2 * g.pad_w);
    size_t out_per = (size_t)l->out_channels * (size_t)m;
    float sx = input_scale(l, x->numel);
    (void)sw_i8_kernel_selected();
    int threads = omp_get_max_threads();
    /* Per thread: the quantized image, the patches (rows padded with zeros), their sums and
     * the int32 products; 64-byte slices keep threads off each other's cache lines. */
    size_t img_b = (padded + 63) / 64 * 64, a_b = (size_t)m * l->ldk;
    size_t sum_b = ((size_t)m * sizeof(int32_t) + 63) / 64 * 64;
    size_t c_b = (2 * (size_t)m * (size_t)og * sizeof(int32_t) + 63) / 64 * 64; /* c and c^T */
    size_t per_thread = img_b + a_b + sum_b + c_b;
    unsigned char *scratch = sw_arena_alloc(arena, (size_t)threads * per_thread + 64);
    if (!scratch) return SW_FAIL(SW_ERR_NOMEM, "out of memory for an int8 Conv2d");
    scratch += (64 - ((uintptr_t)scratch & 63)) & 63;
    for (int t = 0; t < threads; t++) memset(scratch + (size_t)t * per_thread + img_b, 0, a_b);
#pragma omp parallel
    {
        unsigned char *mine = scratch + (size_t)omp_get_thread_num() * per_thread;
        uint8_t *img = mine, *a = mine + img_b;
        int32_t *asum = (int32_t *)(void *)(mine + img_b + a_b);
        int32_t *c = (int32_t *)(void *)(mine + img_b + a_b + sum_b);
#pragma omp for schedule(static)
        for (int b = 0; b < n; b++)
            conv_sample(l, hp, &g, x->data + (size_t)b * in_per, y->data + (size_t)b * out_per, sx,
                        relu, img, a, asum, c);
    }
    return SW_OK;
}

/* The executor mirrors sw_model_forward (nodes in order, activations in one arena reset per
 * call) with the node modes and ops of an int8 model. */
sw_status sw_int8_model_forward(sw_int8_model *m, const sw_tensor *x, const sw_tensor **out) {
    sw_model *g = m->model;
    sw_shape want;
    SW_TRY(sw_shape_batched(&g->input_shape, x->shape.ndim ? x->shape.dims[0] : 0, &want));
    if (!sw_shape_equal(&want, &x->shape)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "int8 model \"%s\" expects input %s, got %s", g->arch,
                       sw_shape_format(&want, a, sizeof a),
                       sw_shape_format(&x->shape, b, sizeof b));
    }
    int batch = x->shape.dims[0];
    sw_arena_reset(&m->arena);
    for (int i = 0; i < g->n_nodes; i++) {
        sw_node *nd = &g->nodes[i];
        sw_i8_node *n = &m->nodes[i];
        const sw_tensor *in[SW_MAX_INPUTS];
        sw_tensor copies[SW_MAX_INPUTS];
        for (int j = 0; j < nd->n_inputs; j++) {
            in[j] = nd->inputs[j] == SW_NODE_INPUT ? x : &m->outs[nd->inputs[j]];
            bool has_ops = false;
            for (int k = 0; k < n->n_ops; k++) has_ops = has_ops || n->ops[k].input == j;
            if (!has_ops) continue;
            /* Inputs are copied before their ops: other consumers see the producer's value. */
            float *d = sw_arena_alloc(&m->arena, in[j]->numel * sizeof(float));
            if (!d) return SW_FAIL(SW_ERR_NOMEM, "out of memory for int8 activations");
            memcpy(d, in[j]->data, in[j]->numel * sizeof(float));
            copies[j] = sw_tensor_view(d, &in[j]->shape);
            for (int k = 0; k < n->n_ops; k++)
                if (n->ops[k].input == j) SW_TRY(run_op(m, &n->ops[k], &copies[j]));
            in[j] = &copies[j];
        }
        bool has_out_ops = false;
        for (int k = 0; k < n->n_ops; k++) has_out_ops = has_out_ops || n->ops[k].input < 0;
        /* An identity without output ops is a view of its input: nothing writes into it (ops of
         * consumers work on copies), so the copy would be pure memory traffic. */
        if (n->mode == SW_I8_IDENTITY && !has_out_ops && !n->fused_relu) {
            m->outs[i] = *in[0];
            continue;
        }
        SW_TRY(arena_tensor(&m->arena, &nd->out_shape, batch, &m->outs[i]));
        sw_tensor *y = &m->outs[i];
        sw_status st = SW_OK;
        switch (n->mode) {
        case SW_I8_IDENTITY:
            memcpy(y->data, in[0]->data, y->numel * sizeof(float));
            break;
        case SW_I8_INT8:
            st = nd->layer->kind == SW_LAYER_CONV2D
                     ? conv_int8(n->layer, nd->layer, in[0], y, n->fused_relu, &m->arena)
                     : linear_int8(n->layer, in[0], y, n->fused_relu, &m->arena);
            break;
        case SW_I8_FLOAT: {
            sw_layer_io io = {.n_in = nd->n_inputs,
                              .arena = &m->arena,
                              .rng = &g->rng,
                              .training = false,
                              .out = y};
            void *saved = NULL;
            io.saved = &saved;
            for (int j = 0; j < nd->n_inputs; j++) io.in[j] = in[j];
            for (int p = 0; p < nd->layer->n_params; p++)
                io.params[p] = &nd->layer->params[p].value;
            st = nd->layer->ops->forward(nd->layer, &io);
            break;
        }
        }
        /* INT8 layers apply a fused ReLU while dequantizing; the others here. */
        if (st == SW_OK && n->fused_relu && n->mode != SW_I8_INT8) {
            float *v = y->data;
            long count = (long)y->numel;
#pragma omp parallel for simd schedule(static) if (count > 65536)
            for (long e = 0; e < count; e++) v[e] = v[e] > 0.0f ? v[e] : 0.0f;
        }
        for (int k = 0; st == SW_OK && k < n->n_ops; k++)
            if (n->ops[k].input < 0) st = run_op(m, &n->ops[k], y);
        if (st != SW_OK) {
            sw_error_prefix("int8 forward of \"%s\"", nd->name);
            return st;
        }
    }
    *out = &m->outs[g->n_nodes - 1];
    return SW_OK;
}

/* Checked for every node before any is changed: a refusal leaves the model as it was. */
sw_status sw_int8_model_to_float(sw_int8_model *m) {
    for (int i = 0; i < m->model->n_nodes; i++) {
        sw_i8_node *n = &m->nodes[i];
        if (n->mode != SW_I8_INT8) continue;
        sw_layer *layer = m->model->nodes[i].layer;
        const sw_i8_layer *l = n->layer;
        int bp = sw_layer_param_index(layer, "bias");
        bool any_bias = false;
        for (int o = 0; o < l->out_channels; o++) any_bias = any_bias || l->bias[o] != 0.0f;
        if (any_bias && (bp < 0 || !layer->hp.bias))
            return SW_FAIL(SW_ERR_UNSUPPORTED,
                           "\"%s\" has a folded bias but no bias parameter to hold it in float",
                           m->model->nodes[i].name);
    }
    for (int i = 0; i < m->model->n_nodes; i++) {
        sw_i8_node *n = &m->nodes[i];
        if (n->mode != SW_I8_INT8) continue;
        sw_layer *layer = m->model->nodes[i].layer;
        sw_i8_layer *l = n->layer;
        float *w = layer->params[sw_layer_param_index(layer, "weight")].value.data;
        for (int o = 0; o < l->out_channels; o++)
            for (size_t e = 0; e < l->k; e++)
                w[(size_t)o * l->k + e] =
                    ((float)l->w[(size_t)o * l->ldk + e] - l->w_zp[o]) * l->w_scale[o];
        int bp = sw_layer_param_index(layer, "bias");
        if (bp >= 0 && layer->hp.bias)
            memcpy(layer->params[bp].value.data, l->bias, (size_t)l->out_channels * sizeof(float));
        /* The input is still requantised, as the int8 layer did internally. */
        sw_i8_op *op;
        SW_TRY(push_op(n, &op));
        op->kind = SW_I8_OP_QUANT;
        op->input = 0;
        snprintf(op->target, sizeof op->target, "_input_0");
        sw_quant_target *t = &op->quant;
        *t = (sw_quant_target){.node = i,
                               .module = m->model->nodes[i].name,
                               .param_index = -1,
                               .entry = -1,
                               .kind = SW_TARGET_INPUT,
                               .qmin = l->in_qmin,
                               .qmax = l->in_qmax,
                               .n_blocks = 1,
                               .has_scale = true};
        t->method = l->in_lsq ? SW_QUANT_LSQ_CLAMP_ROUND : SW_QUANT_CLAMP_ROUND;
        t->grid = sw_shape_1d(1);
        t->store = calloc(4, sizeof(float));
        if (!t->store) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        t->scale = t->store;
        t->zero_point = t->store + 1;
        t->tracked_min = t->store + 2;
        t->tracked_max = t->store + 3;
        t->scale[0] = l->in_scale;
        t->zero_point[0] = l->in_zp;
        /* Input ops run in order: the requantisation goes after any mask (kept first). */
        sw_i8_op tmp = *op;
        int at = 0;
        while (at < n->n_ops - 1 && n->ops[at].input == 0) at++;
        memmove(&n->ops[at + 1], &n->ops[at], (size_t)(n->n_ops - 1 - at) * sizeof *n->ops);
        n->ops[at] = tmp;
        sw_i8_layer_free(l);
        n->layer = NULL;
        n->mode = SW_I8_FLOAT;
    }
    return SW_OK;
}

/* Batches are views of the dataset's contiguous images, reshaped to the model's input. */
sw_status sw_int8_model_evaluate(sw_int8_model *m, const sw_dataset *ds, int batch_size,
                                 double *accuracy, double *loss) {
    if (!ds || ds->n <= 0) return SW_FAIL(SW_ERR_ARG, "evaluate: no test set");
    int bs = batch_size > 0 && batch_size < ds->n ? batch_size : ds->n;
    int *labels = malloc((size_t)bs * sizeof *labels);
    if (!labels) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    size_t per = (size_t)ds->channels * (size_t)ds->height * (size_t)ds->width;
    long correct = 0;
    double loss_sum = 0;
    sw_status st = SW_OK;
    for (int at = 0; at < ds->n && st == SW_OK; at += bs) {
        int b = ds->n - at < bs ? ds->n - at : bs;
        sw_shape s = sw_shape_4d(b, ds->channels, ds->height, ds->width);
        sw_tensor x = sw_tensor_view(ds->images + (size_t)at * per, &s);
        sw_tensor xr = x;
        sw_shape want;
        st = sw_shape_batched(&m->model->input_shape, b, &want);
        if (st == SW_OK && sw_shape_numel(&want) == x.numel) xr = sw_tensor_reshaped(&x, &want);
        for (int i = 0; i < b; i++) labels[i] = ds->labels[at + i];
        const sw_tensor *logits = NULL;
        if (st == SW_OK) st = sw_int8_model_forward(m, &xr, &logits);
        double l = 0;
        if (st == SW_OK) st = sw_loss_cross_entropy(logits, labels, 1.0f, &l, NULL);
        if (st == SW_OK) {
            correct += sw_count_correct(logits, labels);
            loss_sum += l * b;
        }
    }
    free(labels);
    if (st != SW_OK) return st;
    if (accuracy) *accuracy = (double)correct / (double)ds->n;
    if (loss) *loss = loss_sum / (double)ds->n;
    return SW_OK;
}
