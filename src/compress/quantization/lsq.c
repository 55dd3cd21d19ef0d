/* lsq.c - LsqQuantizer (reference §4.4): Learned Step Size Quantization.
 *
 * Each target's scale is a trainable parameter (the quantizer's optimizer group), initialised
 * to 0.01 in every block, and re-initialised at every forward until the first optimizer step
 * (NNI 3.0, which comments the paper's initialisation out). The zero point is 0. On request
 * (sw_quantizer_lsq_set_data_init) the scale starts as in the LSQ paper, 2 mean|x| / sqrt(qmax)
 * per block of the value seen: 0.01 clips most of a trained model's weights and activations
 * at 4 bits, and at NNI's learning rates the scaled gradient g moves it too slowly to recover.
 * Forward and gradients are lsq_clamp_round's (fake_quant.h): the scale's gradient is scaled by
 * g = 1/sqrt(qmax * numel(x)). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quantizers.h"

#define LSQ_INIT_SCALE 0.01f

static sw_status lsq_observe(sw_quantizer *q, sw_quant_target *t, const sw_transform_call *call,
                             const sw_tensor *x) {
    if (q->initialised) return SW_OK;
    if (q->data_init) {
        SW_TRY(sw_quantizer_block_mean_abs(t, x, sw_quantizer_call_arena(call), t->scale));
        float factor = 2.0f / sqrtf((float)(t->qmax > 0 ? t->qmax : 1));
        for (size_t b = 0; b < t->n_blocks; b++) {
            /* An all-zero block (a pruned channel) keeps a usable scale: its values stay 0. */
            t->scale[b] = t->scale[b] > 0 ? factor * t->scale[b] : LSQ_INIT_SCALE;
            t->zero_point[b] = 0.0f;
        }
    } else {
        for (size_t b = 0; b < t->n_blocks; b++) {
            t->scale[b] = LSQ_INIT_SCALE;
            t->zero_point[b] = 0.0f;
        }
    }
    t->has_scale = true;
    return SW_OK;
}

/* Every target uses the LSQ method from the start. */
static sw_quant_method lsq_initial(const sw_quantizer *q, const sw_quant_target *t) {
    (void)q;
    (void)t;
    return SW_QUANT_LSQ_CLAMP_ROUND;
}

/* NNI only warns: LSQ ignores the zero point, so affine targets quantize symmetrically. */
static sw_status lsq_check(sw_quantizer *q, const sw_quant_target *t) {
    if (t->setting.scheme != SW_QUANT_SCHEME_SYMMETRIC)
        sw_warnings_add(&q->base.warnings,
                        "%s.%s: LsqQuantizer supports the symmetric scheme only, got %s", t->module,
                        t->name, sw_quant_scheme_name(t->setting.scheme));
    if (t->kind == SW_TARGET_PARAM && t->setting.dtype.is_unsigned)
        sw_warnings_add(&q->base.warnings,
                        "%s.%s: LsqQuantizer quantizes parameters with int dtypes only, got %s",
                        t->module, t->name, t->setting.dtype.name);
    return SW_OK;
}

static const sw_quantizer_ops lsq_qops = {
    .observe = lsq_observe,
    .initial_method = lsq_initial,
    .learnable_scale = true,
    .check_target = lsq_check,
};

static const sw_compressor_ops lsq_ops = {
    .name = "LsqQuantizer",
    .mode = SW_MODE_QUANTIZATION,
    .needs_training = sw_quantizer_needs_training,
    .export_file = sw_quantizer_export_file,
    .free = sw_quantizer_free,
};

sw_status sw_quantizer_lsq_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(sw_quantizer)), &lsq_ops, &lsq_qops, ws, NULL,
                              config_list, ev, out);
}

sw_status sw_quantizer_lsq_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(sw_quantizer)), &lsq_ops, &lsq_qops, NULL, previous,
                              config_list, ev, out);
}

sw_status sw_quantizer_lsq_set_data_init(sw_compressor *lsq, bool on) {
    sw_quantizer *q = sw_quantizer_of(lsq);
    if (!q || strcmp(lsq->ops->name, lsq_ops.name) != 0)
        return SW_FAIL(SW_ERR_ARG, "the data initialisation of scales is an LsqQuantizer option");
    if (q->initialised)
        return SW_FAIL(SW_ERR_ARG, "LsqQuantizer: set the scale initialisation before training");
    q->data_init = on;
    return SW_OK;
}
