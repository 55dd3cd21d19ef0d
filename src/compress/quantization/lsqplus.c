/* lsqplus.c - LsqPlusQuantizer (reference §4.4, "LSQ+"): LSQ with a trainable zero point.
 *
 * Scale and zero point are both trainable (one optimizer group), initialised per block to 0.01
 * and (qmax - qmin) / 2 at every forward until the first optimizer step. The zero point stays a
 * real number while training. Forward lsq_plus_clamp_round; gradients in fake_quant.h: the
 * scale's is scaled by LSQ's g, the zero point's is -s where the value is clipped. */
#include <stdlib.h>

#include "quantizers.h"

#define LSQ_INIT_SCALE 0.01f

static sw_status lsqplus_observe(sw_quantizer *q, sw_quant_target *t, const sw_transform_call *call,
                                 const sw_tensor *x) {
    (void)call;
    (void)x;
    if (q->initialised) return SW_OK;
    float zp = (float)((double)(t->qmax - t->qmin) / 2.0);
    for (size_t b = 0; b < t->n_blocks; b++) {
        t->scale[b] = LSQ_INIT_SCALE;
        t->zero_point[b] = zp;
    }
    t->has_scale = true;
    return SW_OK;
}

/* Every target uses the LSQ+ method from the start. */
static sw_quant_method lsqplus_initial(const sw_quantizer *q, const sw_quant_target *t) {
    (void)q;
    (void)t;
    return SW_QUANT_LSQ_PLUS_CLAMP_ROUND;
}

/* NNI only warns: LSQ+ learns a zero point, which a symmetric scheme would not have. */
static sw_status lsqplus_check(sw_quantizer *q, const sw_quant_target *t) {
    if (t->setting.scheme != SW_QUANT_SCHEME_AFFINE)
        sw_warnings_add(&q->base.warnings,
                        "%s.%s: LsqPlusQuantizer supports the affine scheme only, got %s",
                        t->module, t->name, sw_quant_scheme_name(t->setting.scheme));
    return SW_OK;
}

static const sw_quantizer_ops lsqplus_qops = {
    .observe = lsqplus_observe,
    .initial_method = lsqplus_initial,
    .learnable_scale = true,
    .learnable_zero_point = true,
    .check_target = lsqplus_check,
};

static const sw_compressor_ops lsqplus_ops = {
    .name = "LsqPlusQuantizer",
    .mode = SW_MODE_QUANTIZATION,
    .needs_training = sw_quantizer_needs_training,
    .export_file = sw_quantizer_export_file,
    .free = sw_quantizer_free,
};

sw_status sw_quantizer_lsqplus_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                   sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(sw_quantizer)), &lsqplus_ops, &lsqplus_qops, ws,
                              NULL, config_list, ev, out);
}

sw_status sw_quantizer_lsqplus_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                               sw_evaluator *ev, sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(sw_quantizer)), &lsqplus_ops, &lsqplus_qops, NULL,
                              previous, config_list, ev, out);
}
