/* capture.c - the capture transform: remember the final value, add the distillation gradient. */
#include "capture.h"

#include <stdlib.h>
#include <string.h>

static sw_status capture_forward(sw_transform *t, const sw_transform_call *call, const sw_tensor *x,
                                 sw_tensor *y) {
    sw_distill_capture *c = t->state;
    (void)call;
    /* Outputs run in place (y == x); inputs run into the executor's copy. */
    if (y->data != x->data) memcpy(y->data, x->data, x->numel * sizeof(float));
    c->value = sw_tensor_view(y->data, &y->shape);
    c->has_value = true;
    /* A gradient computed for an earlier forward belongs to a value that no longer exists. */
    c->grad_ready = false;
    return SW_OK;
}

static sw_status capture_backward(sw_transform *t, const sw_transform_call *call,
                                  const sw_tensor *x, sw_tensor *g) {
    sw_distill_capture *c = t->state;
    (void)call;
    (void)x;
    if (!c->grad_ready) return SW_OK;
    if (c->grad_view.numel != g->numel) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE,
                       "distillation capture: the gradient of the loss is %s but the value's "
                       "gradient is %s",
                       sw_shape_format(&c->grad_view.shape, a, sizeof a),
                       sw_shape_format(&g->shape, b, sizeof b));
    }
    /* The distillation terms join the gradient that flows back from the rest of the model. */
    const float *d = c->grad_view.data;
    for (size_t i = 0; i < g->numel; i++) g->data[i] += d[i];
    c->grad_ready = false;
    return SW_OK;
}

const sw_transform_ops sw_distill_capture_ops = {
    .name = "distill_capture", .forward = capture_forward, .backward = capture_backward,
    /* Not an observer: its backward has work to do. The state is the distiller's. */
};

sw_status sw_distill_capture_attach(sw_wrapper_set *ws, int node, const char *target,
                                    sw_distill_capture *capture, const void *owner) {
    capture->tf = NULL;
    sw_distill_capture_reset(capture);
    return sw_wrapper_set_attach(ws, node, target, &sw_distill_capture_ops, SW_STAGE_CAPTURE, owner,
                                 capture, &capture->tf);
}

sw_status sw_distill_capture_grad(sw_distill_capture *capture, sw_tensor **grad) {
    size_t n = capture->value.numel;
    if (n > capture->grad_cap) {
        float *grown = realloc(capture->grad, n * sizeof *grown);
        if (!grown)
            return SW_FAIL(SW_ERR_NOMEM, "distillation: cannot allocate a gradient of %zu floats",
                           n);
        capture->grad = grown;
        capture->grad_cap = n;
    }
    capture->grad_view = sw_tensor_view(capture->grad, &capture->value.shape);
    capture->grad_ready = false;
    *grad = &capture->grad_view;
    return SW_OK;
}

void sw_distill_capture_clear(sw_distill_capture *capture) {
    capture->has_value = false;
    capture->value = (sw_tensor){0};
}

void sw_distill_capture_reset(sw_distill_capture *capture) {
    sw_distill_capture_clear(capture);
    capture->grad_ready = false;
}

void sw_distill_capture_deinit(sw_distill_capture *capture) {
    free(capture->grad);
    *capture = (sw_distill_capture){0};
}
