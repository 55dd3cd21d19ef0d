/* ptq.c - PtqQuantizer (reference §4.5): post-training quantization from observed ranges.
 *
 * While calibrating, every target passes through (bypass) and its observer keeps the running
 * per-block minimum and maximum (no EMA) of every forward, training or eval. Post-processing
 * runs the evaluator's evaluation once more (observed too, as NNI's _fuse_postprocess does),
 * computes scales and zero points (§4.1) and switches every target to clamp_round; observers
 * stop there.
 *
 * NNI's compress runs the user's training function, so unless the user supplies a
 * calibration-only loop the weights train. Alone, shrinkwrap's PTQ runs forward-only
 * calibration passes instead (calibration.h): no optimizer exists, the weights and BatchNorm
 * statistics do not change. Fused with other compressors, the chain trains as in NNI.
 *
 * NNI's update_scale_zp returns at the first target without a tracked range, leaving later
 * targets unquantized; here such targets are skipped and the others still quantized. Bias
 * correction (NNI's is_bias_correction) is not implemented. */
#include <stdlib.h>

#include "quantizers.h"

typedef struct ptq {
    sw_quantizer q; /* first */
    bool compressed;
} ptq;

static sw_status ptq_observe(sw_quantizer *q, sw_quant_target *t, const sw_transform_call *call,
                             const sw_tensor *x) {
    if (((ptq *)q)->compressed) return SW_OK;
    sw_arena *arena = sw_quantizer_call_arena(call);
    float *lo = sw_arena_alloc(arena, 2 * t->n_blocks * sizeof *lo);
    if (!lo) return SW_FAIL(SW_ERR_NOMEM, "out of step memory");
    float *hi = lo + t->n_blocks;
    SW_TRY(sw_quantizer_block_minmax(t, x, arena, lo, hi));
    for (size_t b = 0; b < t->n_blocks; b++) {
        if (!t->has_tracked || lo[b] < t->tracked_min[b]) t->tracked_min[b] = lo[b];
        if (!t->has_tracked || hi[b] > t->tracked_max[b]) t->tracked_max[b] = hi[b];
    }
    t->has_tracked = true;
    return SW_OK;
}

static sw_quant_method ptq_initial(const sw_quantizer *q, const sw_quant_target *t) {
    (void)t;
    return ((const ptq *)q)->compressed ? SW_QUANT_CLAMP_ROUND : SW_QUANT_BYPASS;
}

/* Evaluation (observed), then scales from the ranges, then clamp_round everywhere. */
static sw_status ptq_postprocess(sw_compressor *c) {
    ptq *p = (ptq *)c;
    if (c->ev && c->ev->test_set && c->ev->test_set->n > 0) {
        double acc = 0, loss = 0;
        SW_TRY(sw_evaluator_evaluate(c->ev, c->model, &acc, &loss));
    }
    for (int i = 0; i < p->q.n_targets; i++)
        if (p->q.targets[i].has_tracked) sw_quantizer_scale_from_tracked(&p->q.targets[i]);
    p->compressed = true;
    sw_quantizer_set_method(&p->q, SW_QUANT_CLAMP_ROUND);
    return SW_OK;
}

/* Alone: calibration passes instead of training, then the same post-processing. */
static sw_status ptq_single(sw_compressor *c, long max_steps, int max_epochs) {
    if (max_steps < 0 && max_epochs < 0)
        return SW_FAIL(SW_ERR_ARG, "calibrates on training batches: give max_steps (batches) "
                                   "or max_epochs to compress");
    if (!c->ev) return SW_FAIL(SW_ERR_ARG, "calibration needs an evaluator with training data");
    SW_TRY(sw_quant_calibrate(c->ev, c->model, max_steps, max_epochs));
    return ptq_postprocess(c);
}

static const sw_quantizer_ops ptq_qops = {
    .observe = ptq_observe,
    .initial_method = ptq_initial,
};

static const sw_compressor_ops ptq_ops = {
    .name = "PtqQuantizer",
    .mode = SW_MODE_QUANTIZATION,
    .single_compress = ptq_single,
    .fuse_postprocess = ptq_postprocess,
    .needs_training = sw_quantizer_needs_training,
    .export_file = sw_quantizer_export_file,
    .free = sw_quantizer_free,
};

sw_status sw_quantizer_ptq_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                               sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(ptq)), &ptq_ops, &ptq_qops, ws, NULL, config_list,
                              ev, out);
}

sw_status sw_quantizer_ptq_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                           sw_evaluator *ev, sw_compressor **out) {
    return sw_quantizer_build(calloc(1, sizeof(ptq)), &ptq_ops, &ptq_qops, NULL, previous,
                              config_list, ev, out);
}
