/* gradcheck.c - a one-layer harness and a central-difference gradient checker. */
#include "gradcheck.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

static float uniform(sw_rng *rng, float lo, float hi) {
    return lo + (hi - lo) * sw_rng_uniform(rng);
}

/* Gives every declared parameter owned storage: value filled as the header says, grad zeroed
 * (buffers get none). */
static sw_status attach_params(sw_layer *layer, uint64_t seed) {
    sw_rng rng;
    sw_rng_init(&rng, seed, 11);
    bool bn = layer->kind == SW_LAYER_BATCHNORM2D || layer->kind == SW_LAYER_BATCHNORM1D;
    for (int p = 0; p < layer->n_params; p++) {
        sw_param *par = &layer->params[p];
        SW_TRY(sw_tensor_init(&par->value, &layer->param_shapes[p]));
        if (par->trainable) SW_TRY(sw_tensor_init(&par->grad, &layer->param_shapes[p]));
        float lo = -1.0f, hi = 1.0f;
        if (bn && strcmp(par->name, "weight") == 0) lo = 0.5f, hi = 1.5f;
        if (strcmp(par->name, "running_mean") == 0) lo = -0.5f, hi = 0.5f;
        if (strcmp(par->name, "running_var") == 0) lo = 0.5f, hi = 1.5f;
        for (size_t i = 0; i < par->value.numel; i++) par->value.data[i] = uniform(&rng, lo, hi);
    }
    return SW_OK;
}

static void detach_params(sw_layer *layer) {
    for (int p = 0; p < layer->n_params; p++) {
        sw_tensor_deinit(&layer->params[p].value);
        sw_tensor_deinit(&layer->params[p].grad);
    }
}

sw_status sw_harness_init(sw_harness *h, sw_layer *layer, sw_tensor *const *inputs, int n_in,
                          bool training, uint64_t seed) {
    *h = (sw_harness){.layer = layer, .n_in = n_in, .training = training, .rng_seed = seed};
    sw_arena_init(&h->arena);
    sw_shape in_shapes[SW_MAX_INPUTS], out_shape, batched;
    for (int i = 0; i < n_in; i++) {
        h->in[i] = inputs[i];
        const sw_shape *s = &inputs[i]->shape;
        in_shapes[i] = sw_shape_make(s->ndim - 1, s->dims + 1);
    }
    SW_TRY(layer->ops->infer_shape(layer, in_shapes, n_in, &out_shape));
    SW_TRY(sw_shape_batched(&out_shape, inputs[0]->shape.dims[0], &batched));
    SW_TRY(sw_tensor_init(&h->out, &batched));
    SW_TRY(attach_params(layer, seed));
    return SW_OK;
}

void sw_harness_deinit(sw_harness *h) {
    if (h->layer) detach_params(h->layer);
    sw_tensor_deinit(&h->out);
    sw_arena_deinit(&h->arena);
    *h = (sw_harness){0};
}

sw_status sw_harness_forward(sw_harness *h) {
    sw_arena_reset(&h->arena);
    sw_rng_init(&h->rng, h->rng_seed, 3);
    h->saved = NULL;
    h->io = (sw_layer_io){.n_in = h->n_in,
                          .out = &h->out,
                          .saved = &h->saved,
                          .arena = &h->arena,
                          .rng = &h->rng,
                          .training = h->training};
    for (int i = 0; i < h->n_in; i++) h->io.in[i] = h->in[i];
    for (int p = 0; p < h->layer->n_params; p++) h->io.params[p] = &h->layer->params[p].value;
    return h->layer->ops->forward(h->layer, &h->io);
}

sw_status sw_harness_backward(sw_harness *h, const sw_tensor *dout, sw_tensor *const *din,
                              sw_tensor *const *dparams) {
    const sw_layer_ops *ops = h->layer->ops;
    SW_TRY(ops->backward_input(h->layer, &h->io, dout, din));
    if (ops->backward_params) SW_TRY(ops->backward_params(h->layer, &h->io, dout, dparams));
    return SW_OK;
}

sw_gradcheck_opts sw_gradcheck_defaults(void) {
    return (sw_gradcheck_opts){
        .eps = 1e-2, .atol = 1e-4, .rtol = 1e-3, .max_checks = 0, .seed = 99};
}

/* f = sum(out * dout), accumulated in double, after a fresh forward. */
static double objective(sw_harness *h, const sw_tensor *dout) {
    sw_status st = sw_harness_forward(h);
    if (st != SW_OK) fail_msg("forward failed during the gradient check: %s", sw_error_message());
    double f = 0.0;
    for (size_t i = 0; i < dout->numel; i++) f += (double)h->out.data[i] * dout->data[i];
    return f;
}

/* Compares analytic[i] with the central difference of f in target[i] for a spread of i. */
static double check_tensor(sw_harness *h, const sw_tensor *dout, sw_tensor *target,
                           const float *analytic, const char *what, const sw_gradcheck_opts *o) {
    size_t n = target->numel;
    size_t step = 1;
    if (o->max_checks > 0 && n > (size_t)o->max_checks) step = n / (size_t)o->max_checks;
    double worst = 0.0;
    for (size_t i = 0; i < n; i += step) {
        float keep = target->data[i];
        target->data[i] = (float)(keep + o->eps);
        /* the step actually taken, after rounding to float */
        double up = (double)target->data[i] - keep;
        double fp = objective(h, dout);
        target->data[i] = (float)(keep - o->eps);
        double down = (double)keep - target->data[i];
        double fm = objective(h, dout);
        target->data[i] = keep;
        double numeric = (fp - fm) / (up + down);
        double a = analytic[i];
        double err = fabs(a - numeric);
        double tol = o->atol + o->rtol * fmax(fabs(a), fabs(numeric));
        if (err > worst) worst = err;
        if (!(err <= tol))
            fail_msg("%s: gradient of %s[%zu]: analytic %.7g, numeric %.7g (|diff| %.3g > %.3g)",
                     h->layer->ops->type_name, what, i, a, numeric, err, tol);
    }
    return worst;
}

double sw_gradcheck_run(sw_harness *h, const sw_gradcheck_opts *o) {
    sw_layer *layer = h->layer;
    sw_rng rng;
    sw_rng_init(&rng, o->seed, 5);
    sw_tensor dout, din[SW_MAX_INPUTS], base_in[SW_MAX_INPUTS], base_p[SW_MAX_PARAMS];
    sw_tensor *din_ptr[SW_MAX_INPUTS] = {0}, *dp_ptr[SW_MAX_PARAMS] = {0};
    if (sw_harness_forward(h) != SW_OK) fail_msg("forward failed: %s", sw_error_message());
    assert_int_equal(sw_tensor_init(&dout, &h->out.shape), SW_OK);
    for (size_t i = 0; i < dout.numel; i++) dout.data[i] = uniform(&rng, -1.0f, 1.0f);
    /* Gradients start non-zero so that "accumulates" is part of what is checked. */
    for (int i = 0; i < h->n_in; i++) {
        assert_int_equal(sw_tensor_init(&din[i], &h->in[i]->shape), SW_OK);
        for (size_t k = 0; k < din[i].numel; k++) din[i].data[k] = uniform(&rng, -1.0f, 1.0f);
        base_in[i] = (sw_tensor){0};
        assert_int_equal(sw_tensor_init(&base_in[i], &din[i].shape), SW_OK);
        memcpy(base_in[i].data, din[i].data, din[i].numel * sizeof(float));
        din_ptr[i] = &din[i];
    }
    for (int p = 0; p < layer->n_params; p++) {
        base_p[p] = (sw_tensor){0};
        if (!layer->params[p].trainable) continue;
        sw_tensor *g = &layer->params[p].grad;
        for (size_t k = 0; k < g->numel; k++) g->data[k] = uniform(&rng, -1.0f, 1.0f);
        assert_int_equal(sw_tensor_init(&base_p[p], &g->shape), SW_OK);
        memcpy(base_p[p].data, g->data, g->numel * sizeof(float));
        dp_ptr[p] = g;
    }
    if (sw_harness_backward(h, &dout, din_ptr, dp_ptr) != SW_OK)
        fail_msg("backward failed: %s", sw_error_message());
    /* analytic = accumulated - starting value */
    for (int i = 0; i < h->n_in; i++)
        for (size_t k = 0; k < din[i].numel; k++) din[i].data[k] -= base_in[i].data[k];
    for (int p = 0; p < layer->n_params; p++)
        if (dp_ptr[p])
            for (size_t k = 0; k < dp_ptr[p]->numel; k++) dp_ptr[p]->data[k] -= base_p[p].data[k];

    double worst = 0.0;
    char what[64];
    for (int i = 0; i < h->n_in; i++) {
        snprintf(what, sizeof what, "input %d", i);
        worst = fmax(worst, check_tensor(h, &dout, h->in[i], din[i].data, what, o));
    }
    for (int p = 0; p < layer->n_params; p++) {
        if (!dp_ptr[p]) continue;
        worst = fmax(worst, check_tensor(h, &dout, &layer->params[p].value, dp_ptr[p]->data,
                                         layer->params[p].name, o));
    }
    for (int i = 0; i < h->n_in; i++) {
        sw_tensor_deinit(&din[i]);
        sw_tensor_deinit(&base_in[i]);
    }
    for (int p = 0; p < layer->n_params; p++) sw_tensor_deinit(&base_p[p]);
    sw_tensor_deinit(&dout);
    return worst;
}

double sw_gradcheck_layer(sw_layer *layer, sw_tensor *const *inputs, int n_in, bool training,
                          const sw_gradcheck_opts *opts) {
    sw_harness h;
    if (sw_harness_init(&h, layer, inputs, n_in, training, opts->seed) != SW_OK)
        fail_msg("cannot set up %s: %s", layer->ops->type_name, sw_error_message());
    double worst = sw_gradcheck_run(&h, opts);
    sw_harness_deinit(&h);
    return worst;
}
