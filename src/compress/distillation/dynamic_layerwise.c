/* dynamic_layerwise.c - DynamicLayerwiseDistiller: each student target learns from the linked
 * teacher layer it is currently closest to (reference §5).
 *
 * Term of one target: min over its links k of lambda * loss(s, t_k); Python's min keeps the
 * first of equal values, and only the chosen pair carries gradient, as in NNI. */
#include "distillers.h"

#include <stdlib.h>

/* Every link must give a value of the student's shape: mse and kl compare element by
 * element. */
static sw_status dynamic_setup_target(sw_distiller *d, sw_distill_target *t) {
    for (int k = 0; k < t->n_links; k++) {
        const char *tm = NULL;
        sw_shape ts = sw_distiller_teacher_shape(d, t, k, &tm);
        if (sw_shape_equal(&ts, &t->shape)) continue;
        char a[64], b[64];
        return SW_FAIL(SW_ERR_CONFIG,
                       "config_list[%d]: %s.%s is %s per sample but teacher %s.%s is %s; "
                       "DynamicLayerwiseDistiller needs equal shapes (Adaptive1dLayerwise"
                       "Distiller adapts a different last dim)",
                       t->entry, t->module, t->name, sw_shape_format(&t->shape, a, sizeof a), tm,
                       t->name, sw_shape_format(&ts, b, sizeof b));
    }
    return SW_OK;
}

static sw_status dynamic_target_loss(sw_distiller *d, sw_distill_target *t, float outer,
                                     double *term) {
    const sw_tensor *s = &t->capture.value;
    int best = -1;
    double best_term = 0.0;
    sw_tensor best_value = {0};
    /* Values first, without gradients: only the minimum's gradient is needed. */
    for (int k = 0; k < t->n_links; k++) {
        sw_tensor tv;
        if (!sw_distiller_teacher_value(d, t, k, &tv)) continue;
        double loss = 0.0;
        SW_TRY(sw_distill_pair_loss(t->method, s, &tv, 0.0f, &loss, NULL));
        double v = t->lambda * loss;
        if (best < 0 || v < best_term) {
            best = k;
            best_term = v;
            best_value = tv;
        }
    }
    *term = 0.0;
    if (best < 0) return SW_OK;
    sw_tensor *grad = NULL;
    double loss = 0.0;
    SW_TRY(sw_distill_capture_grad(&t->capture, &grad));
    SW_TRY(
        sw_distill_pair_loss(t->method, s, &best_value, (float)(outer * t->lambda), &loss, grad));
    t->capture.grad_ready = true;
    t->last_link = best;
    t->last_loss = best_term;
    *term = best_term;
    return SW_OK;
}

static const sw_distiller_ops dynamic_dops = {
    .setup_target = dynamic_setup_target,
    .target_loss = dynamic_target_loss,
};

static void dynamic_free(sw_compressor *c) {
    sw_distiller *d = (sw_distiller *)c;
    sw_distiller_deinit(d);
    free(d);
}

static const sw_compressor_ops dynamic_ops = {
    .name = "DynamicLayerwiseDistiller",
    .mode = SW_MODE_DISTILLATION,
    .fuse_preprocess = sw_distiller_fuse_preprocess,
    .fuse_postprocess = sw_distiller_fuse_postprocess,
    .needs_training = sw_distiller_needs_training,
    .free = dynamic_free,
};

static sw_status dynamic_new(sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                             sw_evaluator *ev, sw_model *teacher, sw_teacher_predict_fn predict,
                             void *predict_ctx, double lambda, sw_compressor **out) {
    sw_distiller *d = calloc(1, sizeof *d);
    if (!d) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %s", dynamic_ops.name);
    sw_status st = sw_distiller_init(d, &dynamic_ops, &dynamic_dops, ws, previous, config_list, ev,
                                     teacher, predict, predict_ctx, lambda);
    if (st != SW_OK) {
        free(d);
        sw_error_prefix("%s", dynamic_ops.name);
        return st;
    }
    *out = &d->base;
    return SW_OK;
}

sw_status sw_distiller_dynamic_new(sw_wrapper_set *ws, const cJSON *config_list, sw_evaluator *ev,
                                   sw_model *teacher, sw_teacher_predict_fn predict,
                                   void *predict_ctx, double origin_loss_lambda,
                                   sw_compressor **out) {
    return dynamic_new(ws, NULL, config_list, ev, teacher, predict, predict_ctx, origin_loss_lambda,
                       out);
}

sw_status sw_distiller_dynamic_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                               sw_model *teacher, sw_teacher_predict_fn predict,
                                               void *predict_ctx, double origin_loss_lambda,
                                               sw_evaluator *ev, sw_compressor **out) {
    if (!previous)
        return SW_FAIL(SW_ERR_ARG, "%s.from_compressor: no previous compressor", dynamic_ops.name);
    return dynamic_new(NULL, previous, config_list, ev, teacher, predict, predict_ctx,
                       origin_loss_lambda, out);
}
