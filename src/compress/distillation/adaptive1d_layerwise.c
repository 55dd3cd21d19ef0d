/* adaptive1d_layerwise.c - Adaptive1dLayerwiseDistiller: one teacher layer per student target,
 * through a trainable Linear when their last dims differ (reference §5).
 *
 * Term of one target: lambda * loss(adapter(s), t), adapter(s) = s W^T + b over the last dim
 * (identity when the widths agree). The gradient of the term reaches the student value
 * through the adapter (ds = da W) and the adapter itself (dW += da^T s, db += sum da), which
 * the student's optimizer updates with the model's parameters. */
#include "distillers.h"

#include <stdlib.h>

/* One link; equal shapes except perhaps the last dim, which sizes the adapter. */
static sw_status adaptive_setup_target(sw_distiller *d, sw_distill_target *t) {
    if (t->n_links != 1)
        return SW_FAIL(SW_ERR_CONFIG,
                       "config_list[%d]: %s.%s has %d links; Adaptive1dLayerwiseDistiller takes "
                       "exactly one (DynamicLayerwiseDistiller takes several)",
                       t->entry, t->module, t->name, t->n_links);
    const char *tm = NULL;
    sw_shape ts = sw_distiller_teacher_shape(d, t, 0, &tm);
    const sw_shape *ss = &t->shape;
    bool fits = ts.ndim == ss->ndim && ss->ndim >= 1;
    for (int i = 0; fits && i < ss->ndim - 1; i++) fits = ts.dims[i] == ss->dims[i];
    if (!fits) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_CONFIG,
                       "config_list[%d]: %s.%s is %s per sample but teacher %s.%s is %s; the "
                       "adapter maps only the last dim, the others must agree",
                       t->entry, t->module, t->name, sw_shape_format(ss, a, sizeof a), tm, t->name,
                       sw_shape_format(&ts, b, sizeof b));
    }
    int ds = ss->dims[ss->ndim - 1], dt = ts.dims[ts.ndim - 1];
    if (ds != dt) {
        t->d_in = ds;
        t->d_out = dt;
    }
    return SW_OK;
}

/* Room for the adapter output and its gradient: 2 * n floats. */
static sw_status reserve_scratch(sw_distill_target *t, size_t n) {
    if (n <= t->scratch_cap) return SW_OK;
    float *grown = realloc(t->scratch, 2 * n * sizeof *grown);
    if (!grown) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate the adapter's %zu floats", 2 * n);
    t->scratch = grown;
    t->scratch_cap = n;
    return SW_OK;
}

static sw_status adaptive_target_loss(sw_distiller *d, sw_distill_target *t, float outer,
                                      double *term) {
    const sw_tensor *s = &t->capture.value;
    sw_tensor tv;
    *term = 0.0;
    if (!sw_distiller_teacher_value(d, t, 0, &tv)) return SW_OK;
    sw_tensor *grad = NULL;
    double loss = 0.0;
    float scale = (float)(outer * t->lambda);
    SW_TRY(sw_distill_capture_grad(&t->capture, &grad));
    if (!t->adapter_w) {
        SW_TRY(sw_distill_pair_loss(t->method, s, &tv, scale, &loss, grad));
    } else {
        /* s [N, ..., d_in] -> a [N, ..., d_out]: the teacher's shape when batches agree. */
        int rows = (int)(s->numel / (size_t)t->d_in);
        size_t n = (size_t)rows * (size_t)t->d_out;
        SW_TRY(reserve_scratch(t, n));
        sw_shape as = s->shape;
        as.dims[as.ndim - 1] = t->d_out;
        sw_tensor a = sw_tensor_view(t->scratch, &as);
        sw_tensor da = sw_tensor_view(t->scratch + t->scratch_cap, &as);
        sw_distill_adapter_forward(s->data, rows, t->d_in, t->adapter_w, t->adapter_b, t->d_out,
                                   a.data);
        SW_TRY(sw_distill_pair_loss(t->method, &a, &tv, scale, &loss, &da));
        sw_distill_adapter_backward(s->data, rows, t->d_in, t->adapter_w, t->d_out, da.data,
                                    grad->data, t->adapter_gw, t->adapter_gb);
    }
    t->capture.grad_ready = true;
    t->last_link = 0;
    t->last_loss = t->lambda * loss;
    *term = t->last_loss;
    return SW_OK;
}

static const sw_distiller_ops adaptive_dops = {
    .setup_target = adaptive_setup_target,
    .target_loss = adaptive_target_loss,
};

static void adaptive_free(sw_compressor *c) {
    sw_distiller *d = (sw_distiller *)c;
    sw_distiller_deinit(d);
    free(d);
}

static const sw_compressor_ops adaptive_ops = {
    .name = "Adaptive1dLayerwiseDistiller",
    .mode = SW_MODE_DISTILLATION,
    .fuse_preprocess = sw_distiller_fuse_preprocess,
    .fuse_postprocess = sw_distiller_fuse_postprocess,
    .needs_training = sw_distiller_needs_training,
    .free = adaptive_free,
};

static sw_status adaptive_new(sw_wrapper_set *ws, sw_compressor *previous, const cJSON *config_list,
                              sw_evaluator *ev, sw_model *teacher, sw_teacher_predict_fn predict,
                              void *predict_ctx, double lambda, sw_compressor **out) {
    sw_distiller *d = calloc(1, sizeof *d);
    if (!d) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate %s", adaptive_ops.name);
    sw_status st = sw_distiller_init(d, &adaptive_ops, &adaptive_dops, ws, previous, config_list,
                                     ev, teacher, predict, predict_ctx, lambda);
    if (st != SW_OK) {
        free(d);
        sw_error_prefix("%s", adaptive_ops.name);
        return st;
    }
    *out = &d->base;
    return SW_OK;
}

sw_status sw_distiller_adaptive1d_new(sw_wrapper_set *ws, const cJSON *config_list,
                                      sw_evaluator *ev, sw_model *teacher,
                                      sw_teacher_predict_fn predict, void *predict_ctx,
                                      double origin_loss_lambda, sw_compressor **out) {
    return adaptive_new(ws, NULL, config_list, ev, teacher, predict, predict_ctx,
                        origin_loss_lambda, out);
}

sw_status sw_distiller_adaptive1d_from_compressor(sw_compressor *previous, const cJSON *config_list,
                                                  sw_model *teacher, sw_teacher_predict_fn predict,
                                                  void *predict_ctx, double origin_loss_lambda,
                                                  sw_evaluator *ev, sw_compressor **out) {
    if (!previous)
        return SW_FAIL(SW_ERR_ARG, "%s.from_compressor: no previous compressor", adaptive_ops.name);
    return adaptive_new(NULL, previous, config_list, ev, teacher, predict, predict_ctx,
                        origin_loss_lambda, out);
}
