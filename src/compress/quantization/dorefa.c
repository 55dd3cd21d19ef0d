/* dorefa.c - DoReFaQuantizer (reference §4.6): DoReFa-Net's weight, activation and gradient
 * quantization.
 *
 *   weights  t = tanh(w), u = t / (2 max|t|) + 0.5 on [0, 1], fake-quantized with the scale
 *            and zero point of the range [0, 1] (affine), y = 2 q(u) - 1;
 *   outputs  clamp(x, 0, 1), fake-quantized on [0, 1] likewise; only for ReLU/ReLU6 modules
 *            or modules with a fused ReLU, whose outputs DoReFa's [0, 1] range fits;
 *   inputs   clamp_round with the scale and zero point of the current batch's range (under the
 *            target's scheme), recomputed at every forward;
 *   gradients  (optional) for a module with a quantized parameter and no quantized output, the
 *            gradient arriving at its output is rewritten per sample n:
 *              M = max|g_n|, u = g_n / (2M) + 0.5 + N_n,  N_n ~ U(-0.5, 0.5) / (2^b - 1),
 *              u fake-quantized on [-0.5/(2^b - 1), 1 + 0.5/(2^b - 1)] (affine, the parameter's
 *              dtype), g_n = (q(u) - 0.5) * 2M.
 * The scales of weights and outputs are set at every forward until the first optimizer step.
 * quant_scheme must be set; per-block granularities are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn_fold.h"
#include "quantizers.h"

typedef struct dorefa {
    sw_quantizer q; /* first */
    bool quantize_gradients;
    sw_rng rng; /* the gradient noise */
} dorefa;

/* Inputs: the range of this very batch, every forward (NNI's update_scale_zp); weights and
 * outputs: the fixed [0, 1] range, until the first optimizer step. */
static sw_status dorefa_observe(sw_quantizer *q, sw_quant_target *t, const sw_transform_call *call,
                                const sw_tensor *x) {
    if (t->kind == SW_TARGET_INPUT) {
        float lo, hi;
        SW_TRY(sw_quantizer_block_minmax(t, x, sw_quantizer_call_arena(call), &lo, &hi));
        sw_fq_scale_from_range(lo, hi, t->qmin, t->qmax, t->setting.scheme, t->scale,
                               t->zero_point);
        t->has_scale = true;
        return SW_OK;
    }
    if (q->initialised) return SW_OK;
    sw_fq_scale_from_range(0.0f, 1.0f, t->qmin, t->qmax, SW_QUANT_SCHEME_AFFINE, t->scale,
                           t->zero_point);
    t->has_scale = true;
    return SW_OK;
}

/* NNI's register_dorefa_apply_method: one method per target kind. */
static sw_quant_method dorefa_initial(const sw_quantizer *q, const sw_quant_target *t) {
    (void)q;
    switch (t->kind) {
    case SW_TARGET_PARAM:
        return SW_QUANT_DOREFA_WEIGHT;
    case SW_TARGET_OUTPUT:
        return SW_QUANT_DOREFA_OUTPUT;
    case SW_TARGET_INPUT:
        break;
    }
    return SW_QUANT_CLAMP_ROUND;
}

/* NNI asserts a scheme and refuses granularities; wrong schemes for [0, 1] are warnings. */
static sw_status dorefa_check(sw_quantizer *q, const sw_quant_target *t) {
    if (t->setting.scheme == SW_QUANT_SCHEME_NONE)
        return SW_FAIL(SW_ERR_CONFIG,
                       "%s.%s: DoReFaQuantizer needs quant_scheme (\"affine\" or \"symmetric\")",
                       t->module, t->name);
    if (t->has_scaling)
        return SW_FAIL(SW_ERR_CONFIG,
                       "%s.%s: DoReFaQuantizer quantizes per tensor; set granularity to "
                       "\"default\" or null",
                       t->module, t->name);
    if (t->kind != SW_TARGET_INPUT && t->setting.scheme != SW_QUANT_SCHEME_AFFINE)
        sw_warnings_add(&q->base.warnings,
                        "%s.%s: DoReFaQuantizer quantizes %s on [0, 1] with the affine scheme; "
                        "%s is ignored",
                        t->module, t->name, t->kind == SW_TARGET_PARAM ? "weights" : "outputs",
                        sw_quant_scheme_name(t->setting.scheme));
    return SW_OK;
}

/* Outputs only where DoReFa's [0, 1] range fits: activation modules, or a fused ReLU. */
static sw_status check_outputs(sw_quantizer *q) {
    const sw_model *m = q->base.model;
    for (int i = 0; i < q->n_targets; i++) {
        const sw_quant_target *t = &q->targets[i];
        if (t->kind != SW_TARGET_OUTPUT) continue;
        sw_layer_kind k = m->nodes[t->node].layer->kind;
        bool ok = k == SW_LAYER_RELU || k == SW_LAYER_RELU6;
        for (int f = 0; !ok && f < sw_bn_fold_count(q->fold); f++) {
            sw_bn_fold_info info = sw_bn_fold_get(q->fold, f);
            ok = info.first == t->node && info.relu >= 0;
        }
        if (!ok)
            return SW_FAIL(SW_ERR_CONFIG,
                           "%s._output_0: DoReFaQuantizer quantizes outputs of activation "
                           "modules (ReLU, ReLU6) or of modules with a fused ReLU; %s is a %s",
                           t->module, t->module, m->nodes[t->node].layer->ops->type_name);
    }
    return SW_OK;
}

/* ---- gradient quantization: a transform on the module's output ------------------------- */

typedef struct grad_state {
    dorefa *d;
    int target; /* the module's first quantized parameter: its dtype sets the levels */
} grad_state;

static void grad_state_free(sw_transform *tf) {
    free(tf->state);
}

/* Forward: the value passes unchanged (in place). */
static sw_status grad_forward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                              sw_tensor *y) {
    (void)tf;
    (void)call;
    if (y->data != x->data) memcpy(y->data, x->data, x->numel * sizeof(float));
    return SW_OK;
}

static sw_status grad_backward(sw_transform *tf, const sw_transform_call *call, const sw_tensor *x,
                               sw_tensor *g) {
    (void)x;
    grad_state *s = tf->state;
    if (!call->training) return SW_OK;
    const sw_quant_target *t = &s->d->q.targets[s->target];
    double levels = ldexp(1.0, t->setting.dtype.bits) - 1.0;
    float half = (float)(0.5 / levels);
    float scale, zp;
    sw_fq_scale_from_range(0.0f - half, 1.0f + half, t->qmin, t->qmax, SW_QUANT_SCHEME_AFFINE,
                           &scale, &zp);
    sw_fq_scale p = {
        .scale = &scale, .zero_point = &zp, .stride = 0, .qmin = t->qmin, .qmax = t->qmax};
    int n_batch = g->shape.dims[0];
    size_t per = g->numel / (size_t)n_batch;
    for (int n = 0; n < n_batch; n++) {
        float *gn = g->data + (size_t)n * per;
        float m = 0.0f;
        for (size_t i = 0; i < per; i++) m = fabsf(gn[i]) > m ? fabsf(gn[i]) : m;
        /* A zero gradient stays zero (NNI would divide by 0). */
        if (!(m > 0.0f)) continue;
        float noise = (sw_rng_uniform(&s->d->rng) - 0.5f) / (float)levels;
        for (size_t i = 0; i < per; i++) {
            float u = gn[i] / (2.0f * m) + 0.5f + noise;
            float q;
            sw_fq_clamp_round(&u, &q, 1, &p);
            gn[i] = (q - 0.5f) * 2.0f * m;
        }
    }
    return SW_OK;
}

static const sw_transform_ops grad_ops = {
    .name = "dorefa_grad_quant",
    .forward = grad_forward,
    .backward = grad_backward,
    .free = grad_state_free,
};

/* Attaches the gradient transform on the output of every module with a quantized parameter
 * and no quantized output. Stage 1: first in the output chain, so in backward it sees the
 * gradient last, right before the layer, as NNI's backward pre-hook on the module does. */
static sw_status attach_gradient_quant(dorefa *d) {
    sw_quantizer *q = &d->q;
    for (int i = 0; i < q->n_targets; i++) {
        const sw_quant_target *t = &q->targets[i];
        if (t->kind != SW_TARGET_PARAM) continue;
        bool seen = false, has_output = false;
        for (int j = 0; j < q->n_targets; j++) {
            if (q->targets[j].node != t->node) continue;
            if (j < i && q->targets[j].kind == SW_TARGET_PARAM) seen = true;
            if (q->targets[j].kind == SW_TARGET_OUTPUT) has_output = true;
        }
        if (seen || has_output) continue;
        grad_state *s = malloc(sizeof *s);
        if (!s) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        *s = (grad_state){.d = d, .target = i};
        SW_TRY(sw_wrapper_set_attach(q->base.ws, t->node, "_output_0", &grad_ops, 1, q, s, NULL));
    }
    return SW_OK;
}

static const sw_quantizer_ops dorefa_qops = {
    .observe = dorefa_observe,
    .initial_method = dorefa_initial,
    .check_target = dorefa_check,
};

static const sw_compressor_ops dorefa_ops = {
    .name = "DoReFaQuantizer",
    .mode = SW_MODE_QUANTIZATION,
    .needs_training = sw_quantizer_needs_training,
    .export_file = sw_quantizer_export_file,
    .free = sw_quantizer_free,
};

static sw_status make(sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                      sw_evaluator *ev, bool quantize_gradients, uint64_t seed,
                      sw_compressor **out) {
    dorefa *d = calloc(1, sizeof *d);
    if (d) {
        d->quantize_gradients = quantize_gradients;
        sw_rng_init(&d->rng, seed, 0xd0fe);
    }
    sw_compressor *c = NULL;
    SW_TRY(sw_quantizer_build(d ? &d->q : NULL, &dorefa_ops, &dorefa_qops, ws, previous,
                              config_list, ev, &c));
    sw_status st = check_outputs(&d->q);
    if (st == SW_OK && quantize_gradients) st = attach_gradient_quant(d);
    if (st != SW_OK) {
        sw_compressor_free(c);
        return st;
    }
    *out = c;
    return SW_OK;
}

sw_status sw_quantizer_dorefa_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                  bool quantize_gradients, uint64_t seed, sw_compressor **out) {
    return make(ws, NULL, config_list, ev, quantize_gradients, seed, out);
}

sw_status sw_quantizer_dorefa_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                              bool quantize_gradients, uint64_t seed,
                                              sw_evaluator *ev, sw_compressor **out) {
    return make(NULL, previous, config_list, ev, quantize_gradients, seed, out);
}
