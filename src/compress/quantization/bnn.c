/* bnn.c - BNNQuantizer (reference §4.7): binarised weights and activations.
 *
 * Every target becomes sign(x) with sign(0) = +1; scale 1 and zero point 0 are set at every
 * forward until the first optimizer step (they only document the binarisation). Gradients pass
 * unchanged for parameters and inputs; for outputs they are zeroed where |x| > 1 (the hard-tanh
 * straight-through estimator). After each optimizer step the raw values of quantized parameters
 * are clamped to [-1, 1], so that the latent weights cannot drift away from the sign's range. */
#include <stdlib.h>

#include "quantizers.h"

static sw_status bnn_observe(sw_quantizer *q, sw_quant_target *t, const sw_transform_call *call,
                             const sw_tensor *x) {
    (void)call;
    (void)x;
    if (q->initialised) return SW_OK;
    for (size_t b = 0; b < t->n_blocks; b++) {
        t->scale[b] = 1.0f;
        t->zero_point[b] = 0.0f;
    }
    t->has_scale = true;
    return SW_OK;
}

static sw_status bnn_after_step(sw_quantizer *q, sw_train_state *st) {
    (void)st;
    for (int i = 0; i < q->n_targets; i++) {
        const sw_quant_target *t = &q->targets[i];
        if (t->kind != SW_TARGET_PARAM) continue;
        sw_tensor *v = &q->base.model->nodes[t->node].layer->params[t->param_index].value;
        for (size_t k = 0; k < v->numel; k++) {
            if (v->data[k] > 1.0f) v->data[k] = 1.0f;
            if (v->data[k] < -1.0f) v->data[k] = -1.0f;
        }
    }
    return SW_OK;
}

/* Every target is binarised from the first forward. */
static sw_quant_method bnn_initial(const sw_quantizer *q, const sw_quant_target *t) {
    (void)q;
    (void)t;
    return SW_QUANT_BNN;
}

/* NNI refuses granularities and warns about a dtype, which sign() ignores. */
static sw_status bnn_check(sw_quantizer *q, const sw_quant_target *t) {
    if (t->has_scaling)
        return SW_FAIL(SW_ERR_CONFIG,
                       "%s.%s: BNNQuantizer binarises whole tensors; set granularity to "
                       "\"default\" or null",
                       t->module, t->name);
    if (t->setting.dtype.given)
        sw_warnings_add(&q->base.warnings,
                        "%s.%s: BNNQuantizer quantizes to -1 and +1 only; quant_dtype %s has no "
                        "effect (use null)",
                        t->module, t->name, t->setting.dtype.name);
    return SW_OK;
}

static const sw_quantizer_ops bnn_qops = {
    .observe = bnn_observe,
    .after_step = bnn_after_step,
    .initial_method = bnn_initial,
    .check_target = bnn_check,
};

static const sw_compressor_ops bnn_ops = {
    .name = "BNNQuantizer",
    .mode = SW_MODE_QUANTIZATION,
    .needs_training = sw_quantizer_needs_training,
    .export_file = sw_quantizer_export_file,
    .free = sw_quantizer_free,
};

sw_status sw_quantizer_bnn_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(sw_quantizer)), &bnn_ops, &bnn_qops, ws, NULL,
                              config_list, ev, out);
}

sw_status sw_quantizer_bnn_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(sw_quantizer)), &bnn_ops, &bnn_qops, NULL, previous,
                              config_list, ev, out);
}
