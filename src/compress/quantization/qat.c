/* qat.c - QATQuantizer (reference §4.3): EMA range observers and fake-quantization with a
 * clipping-aware straight-through estimator.
 *
 * Per target and block, on every TRAINING forward:
 *   tracked = current min/max           on the first observation,
 *   tracked = 0.99 * tracked + 0.01 * current   afterwards;
 *   from optimizer step quant_start_step on: scale, zero point = f(tracked) (§4.1).
 * Targets pass through (bypass) until the step counter reaches quant_start_step, then use
 * qat_clamp_round. Eval forwards neither observe nor update: they use the last training
 * forward's scale and zero point (so after training, the scale in effect is the one computed
 * before the last weight update, as in NNI). */
#include <stdlib.h>

#include "quantizers.h"

typedef struct qat {
    sw_quantizer q; /* first */
    long start;     /* quant_start_step */
} qat;

static sw_status qat_observe(sw_quantizer *q, sw_quant_target *t, const sw_transform_call *call,
                             const sw_tensor *x) {
    if (!call->training) return SW_OK;
    sw_arena *arena = sw_quantizer_call_arena(call);
    float *lo = sw_arena_alloc(arena, 2 * t->n_blocks * sizeof *lo);
    if (!lo) return SW_FAIL(SW_ERR_NOMEM, "out of step memory");
    float *hi = lo + t->n_blocks;
    SW_TRY(sw_quantizer_block_minmax(t, x, arena, lo, hi));
    for (size_t b = 0; b < t->n_blocks; b++) {
        t->tracked_min[b] = t->has_tracked ? sw_fq_ema(t->tracked_min[b], lo[b]) : lo[b];
        t->tracked_max[b] = t->has_tracked ? sw_fq_ema(t->tracked_max[b], hi[b]) : hi[b];
    }
    t->has_tracked = true;
    if (q->step >= ((qat *)q)->start) sw_quantizer_scale_from_tracked(t);
    return SW_OK;
}

static sw_status qat_after_step(sw_quantizer *q, sw_train_state *st) {
    (void)st;
    if (q->step == ((qat *)q)->start) sw_quantizer_set_method(q, SW_QUANT_QAT_CLAMP_ROUND);
    return SW_OK;
}

static sw_quant_method qat_initial(const sw_quantizer *q, const sw_quant_target *t) {
    (void)t;
    return q->step >= ((const qat *)q)->start ? SW_QUANT_QAT_CLAMP_ROUND : SW_QUANT_BYPASS;
}

static const sw_quantizer_ops qat_qops = {
    .observe = qat_observe,
    .after_step = qat_after_step,
    .initial_method = qat_initial,
};

static const sw_compressor_ops qat_ops = {
    .name = "QATQuantizer",
    .mode = SW_MODE_QUANTIZATION,
    .needs_training = sw_quantizer_needs_training,
    .export_file = sw_quantizer_export_file,
    .free = sw_quantizer_free,
};

static sw_status make(sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                      sw_evaluator *ev, long start, sw_compressor **out) {
    qat *a = calloc(1, sizeof *a);
    if (a) a->start = start > 0 ? start : 0;
    return sw_quantizer_build(a ? &a->q : NULL, &qat_ops, &qat_qops, ws, previous, config_list, ev,
                              out);
}

sw_status sw_quantizer_qat_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               long quant_start_step, sw_compressor **out) {
    return make(ws, NULL, config_list, ev, quant_start_step, out);
}

sw_status sw_quantizer_qat_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           long quant_start_step, sw_evaluator *ev,
                                           sw_compressor **out) {
    return make(NULL, previous, config_list, ev, quant_start_step, out);
}
