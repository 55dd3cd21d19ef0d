/* test_optim.c - optimizers against PyTorch 1.13 (golden fixtures) and by hand. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "io/safetensors.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/zoo.h"
#include "train/optim.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static sw_safetensors *load_golden(const char *name) {
    char rel[128], path[512];
    snprintf(rel, sizeof rel, "golden/%s.safetensors", name);
    sw_safetensors *st = NULL;
    sw_status s = sw_safetensors_read_file(sw_test_data_path(rel, path, sizeof path), &st);
    if (s != SW_OK) fail_msg("%s: %s", path, sw_error_message());
    return st;
}

static double meta_number(const sw_safetensors *st, const char *key) {
    const char *v = sw_safetensors_meta(st, key);
    if (!v) fail_msg("metadata key \"%s\" missing", key);
    return strtod(v, NULL);
}

static bool meta_bool(const sw_safetensors *st, const char *key) {
    const char *v = sw_safetensors_meta(st, key);
    if (!v) fail_msg("metadata key \"%s\" missing", key);
    return strcmp(v, "true") == 0 || strcmp(v, "True") == 0;
}

/* Loads tensor `name` into an owning tensor (fails the test when absent). */
static void get(const sw_safetensors *st, const char *name, sw_tensor *out) {
    sw_status s = sw_safetensors_get_f32(st, name, out);
    if (s != SW_OK) fail_msg("%s: %s", name, sw_error_message());
}

/* Replays a golden optimizer file: the stored gradients of each step go through our optimizer,
 * and the parameters after each update must equal torch's. */
static void check_optim_golden(const char *name, sw_optim_kind kind) {
    sw_safetensors *st = load_golden(name);
    sw_optim_config cfg = sw_optim_config_default(kind);
    cfg.lr = (float)meta_number(st, "lr");
    cfg.weight_decay = (float)meta_number(st, "weight_decay");
    if (kind == SW_OPTIM_SGD) {
        cfg.momentum = (float)meta_number(st, "momentum");
        cfg.dampening = (float)meta_number(st, "dampening");
        cfg.nesterov = meta_bool(st, "nesterov");
    } else {
        cfg.beta1 = (float)meta_number(st, "beta1");
        cfg.beta2 = (float)meta_number(st, "beta2");
        cfg.eps = (float)meta_number(st, "eps");
    }
    int steps = (int)meta_number(st, "steps");
    assert_true(steps >= 2);

    sw_tensor w, b, gw, gb;
    get(st, "init/weight", &w);
    get(st, "init/bias", &b);
    assert_int_equal(sw_tensor_init(&gw, &w.shape), SW_OK);
    assert_int_equal(sw_tensor_init(&gb, &b.shape), SW_OK);

    sw_optim opt;
    assert_int_equal(sw_optim_init(&opt, &cfg), SW_OK);
    /* Two groups: the weight and the bias, as torch's one group of two tensors. */
    assert_int_equal(sw_optim_add_group(&opt, w.data, gw.data, w.numel), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, b.data, gb.data, b.numel), SW_OK);
    for (int k = 1; k <= steps; k++) {
        char key[64];
        sw_tensor ref_gw, ref_gb, ref_w, ref_b;
        snprintf(key, sizeof key, "step%d/grad_weight", k);
        get(st, key, &ref_gw);
        snprintf(key, sizeof key, "step%d/grad_bias", k);
        get(st, key, &ref_gb);
        snprintf(key, sizeof key, "step%d/weight", k);
        get(st, key, &ref_w);
        snprintf(key, sizeof key, "step%d/bias", k);
        get(st, key, &ref_b);
        sw_optim_zero_grad(&opt);
        assert_float_equal(gw.data[0], 0.0f, 0.0f);
        assert_int_equal(sw_tensor_copy(&gw, &ref_gw), SW_OK);
        assert_int_equal(sw_tensor_copy(&gb, &ref_gb), SW_OK);
        sw_optim_step(&opt, cfg.lr);
        snprintf(key, sizeof key, "%s step %d weight", name, k);
        sw_test_assert_close(w.data, ref_w.data, w.numel, 1e-7f, 2e-6f, key);
        snprintf(key, sizeof key, "%s step %d bias", name, k);
        sw_test_assert_close(b.data, ref_b.data, b.numel, 1e-7f, 2e-6f, key);
        sw_tensor_deinit(&ref_gw);
        sw_tensor_deinit(&ref_gb);
        sw_tensor_deinit(&ref_w);
        sw_tensor_deinit(&ref_b);
    }
    assert_int_equal(opt.step, steps);
    sw_optim_deinit(&opt);
    sw_tensor_deinit(&w);
    sw_tensor_deinit(&b);
    sw_tensor_deinit(&gw);
    sw_tensor_deinit(&gb);
    sw_safetensors_free(st);
}

/* ---- golden ------------------------------------------------------------------------------- */

/* SGD with momentum and L2 weight decay follows torch 1.13 for three steps. */
static void test_optim_sgd_momentum_matches_torch(void **state) {
    (void)state;
    check_optim_golden("optim_sgd_momentum", SW_OPTIM_SGD);
}

/* Adam (L2 decay in the gradient, torch's bias correction) follows torch 1.13 for three steps. */
static void test_optim_adam_matches_torch(void **state) {
    (void)state;
    check_optim_golden("optim_adam", SW_OPTIM_ADAM);
}

/* AdamW (decoupled decay before the moments) follows torch 1.13 for three steps. */
static void test_optim_adamw_matches_torch(void **state) {
    (void)state;
    check_optim_golden("optim_adamw", SW_OPTIM_ADAMW);
}

/* ---- by hand ------------------------------------------------------------------------------ */

/* SGD: the momentum buffer starts as the first gradient, dampening scales later gradients,
 * Nesterov adds momentum * buf to the step (values worked out by hand). */
static void test_optim_sgd_hand_values(void **state) {
    (void)state;
    sw_optim_config c = sw_optim_config_default(SW_OPTIM_SGD);
    c.lr = 0.5f;
    c.momentum = 0.5f;
    c.dampening = 0.5f;
    float p = 1.0f, g = 2.0f;
    sw_optim opt;
    assert_int_equal(sw_optim_init(&opt, &c), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, &p, &g, 1), SW_OK);
    sw_optim_step(&opt, c.lr);
    /* buf = 2; p = 1 - 0.5 * 2 = 0 */
    assert_float_equal(p, 0.0f, 1e-7f);
    sw_optim_step(&opt, c.lr);
    /* buf = 0.5 * 2 + 0.5 * 2 = 2; p = 0 - 0.5 * 2 = -1 */
    assert_float_equal(p, -1.0f, 1e-7f);
    sw_optim_deinit(&opt);

    c.dampening = 0.0f;
    c.nesterov = true;
    c.weight_decay = 0.25f;
    p = 2.0f;
    g = 1.0f;
    assert_int_equal(sw_optim_init(&opt, &c), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, &p, &g, 1), SW_OK);
    sw_optim_step(&opt, c.lr);
    /* d = 1 + 0.25 * 2 = 1.5; buf = 1.5; d = 1.5 + 0.5 * 1.5 = 2.25; p = 2 - 1.125 = 0.875 */
    assert_float_equal(p, 0.875f, 1e-7f);
    sw_optim_step(&opt, c.lr);
    /* d = 1 + 0.25 * 0.875 = 1.21875; buf = 0.75 + 1.21875 = 1.96875;
     * d = 1.21875 + 0.984375 = 2.203125; p = 0.875 - 1.1015625 = -0.2265625 */
    assert_float_equal(p, -0.2265625f, 1e-6f);
    sw_optim_deinit(&opt);
}

/* Adam's first step moves every parameter by lr * sign(g) (bias correction makes m/sqrt(v)
 * exactly |g|/g), whatever the gradient's size. */
static void test_optim_adam_first_step_is_lr_sign(void **state) {
    (void)state;
    sw_optim_config c = sw_optim_config_default(SW_OPTIM_ADAM);
    c.lr = 0.1f;
    c.eps = 0.0f;
    float p[3] = {1.0f, 1.0f, 1.0f};
    float g[3] = {1e-3f, -50.0f, 7.0f};
    sw_optim opt;
    assert_int_equal(sw_optim_init(&opt, &c), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, p, g, 3), SW_OK);
    sw_optim_step(&opt, c.lr);
    assert_float_equal(p[0], 0.9f, 1e-6f);
    assert_float_equal(p[1], 1.1f, 1e-6f);
    assert_float_equal(p[2], 0.9f, 1e-6f);
    sw_optim_deinit(&opt);
}

/* AdamW with a zero gradient only decays: p *= 1 - lr * wd per step. */
static void test_optim_adamw_decay_is_decoupled(void **state) {
    (void)state;
    sw_optim_config c = sw_optim_config_default(SW_OPTIM_ADAMW);
    c.lr = 0.1f;
    c.weight_decay = 0.5f;
    float p = 2.0f, g = 0.0f;
    sw_optim opt;
    assert_int_equal(sw_optim_init(&opt, &c), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, &p, &g, 1), SW_OK);
    sw_optim_step(&opt, c.lr);
    assert_float_equal(p, 1.9f, 1e-6f);
    sw_optim_step(&opt, c.lr);
    assert_float_equal(p, 1.805f, 1e-6f);
    sw_optim_deinit(&opt);
}

/* lr_scale multiplies the rate of its group only. */
static void test_optim_group_lr_scale(void **state) {
    (void)state;
    sw_optim_config c = sw_optim_config_default(SW_OPTIM_SGD);
    float a = 1.0f, b = 1.0f, g = 1.0f;
    sw_optim opt;
    assert_int_equal(sw_optim_init(&opt, &c), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, &a, &g, 1), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, &b, &g, 1), SW_OK);
    opt.groups[1].lr_scale = 10.0f;
    sw_optim_step(&opt, 0.01f);
    assert_float_equal(a, 0.99f, 1e-7f);
    assert_float_equal(b, 0.9f, 1e-7f);
    sw_optim_deinit(&opt);
}

/* Names map to kinds; bad names and bad hyper-parameters are errors that say what to use. */
static void test_optim_names_and_config_errors(void **state) {
    (void)state;
    sw_optim_kind k;
    assert_int_equal(sw_optim_kind_from_name("adamw", &k), SW_OK);
    assert_int_equal(k, SW_OPTIM_ADAMW);
    assert_int_equal(sw_optim_kind_from_name("rmsprop", &k), SW_ERR_NOT_FOUND);
    assert_non_null(strstr(sw_error_message(), "sgd, adam or adamw"));

    sw_optim opt;
    sw_optim_config c = sw_optim_config_default(SW_OPTIM_SGD);
    c.nesterov = true; /* without momentum */
    assert_int_equal(sw_optim_init(&opt, &c), SW_ERR_CONFIG);
    assert_non_null(strstr(sw_error_message(), "Nesterov"));
    c = sw_optim_config_default(SW_OPTIM_ADAM);
    c.beta2 = 1.0f;
    assert_int_equal(sw_optim_init(&opt, &c), SW_ERR_CONFIG);
    c = sw_optim_config_default(SW_OPTIM_SGD);
    c.lr = -1.0f;
    assert_int_equal(sw_optim_init(&opt, &c), SW_ERR_CONFIG);
    c = sw_optim_config_default(SW_OPTIM_ADAMW);
    assert_float_equal(c.weight_decay, 0.01f, 0.0f);
    assert_float_equal(c.lr, 1e-3f, 0.0f);
}

/* ---- fmnist_cnn: two SGD steps of the whole model ---------------------------------------- */

static uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

/* The fixtures' bit-exact weight generator (golden/README.md). */
static void fmix_uniform(float *w, size_t n, uint32_t seed, uint32_t stream, float bound) {
    uint32_t base = fmix32(seed * 0x9E3779B9u + stream);
    for (uint32_t i = 0; i < (uint32_t)n; i++) {
        uint32_t u = fmix32(base + i) >> 8;
        float t = 2.0f * ((float)u * 0x1p-24f) - 1.0f;
        w[i] = t * bound;
    }
}

typedef struct param_lookup {
    const char *name;
    sw_param *found;
} param_lookup;

static void find_param(void *ctx, const sw_node *node, sw_param *param, const char *full_name) {
    (void)node;
    param_lookup *l = ctx;
    if (strcmp(full_name, l->name) == 0) l->found = param;
}

static sw_param *model_param(sw_model *m, const char *name) {
    param_lookup l = {name, NULL};
    sw_model_visit_params(m, find_param, &l);
    if (!l.found) fail_msg("model has no parameter %s", name);
    return l.found;
}

/* Sets every weight and bias from param_streams (the metadata), as the fixture's torch run did. */
static void init_from_streams(sw_model *m, const sw_safetensors *st) {
    static const char *const names[] = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                                        "fc1.weight",   "fc1.bias",   "fc2.weight",   "fc2.bias"};
    uint32_t seed = (uint32_t)meta_number(st, "param_seed");
    const char *streams = sw_safetensors_meta(st, "param_streams");
    assert_non_null(streams);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        /* The entry's "stream" and "bound_hex" fields, read from the JSON text directly. */
        char key[64];
        snprintf(key, sizeof key, "\"%s\"", names[i]);
        const char *at = strstr(streams, key);
        assert_non_null(at);
        const char *s = strstr(at, "\"stream\":");
        const char *h = strstr(at, "\"bound_hex\": \"");
        assert_non_null(s);
        assert_non_null(h);
        uint32_t stream = (uint32_t)strtoul(s + strlen("\"stream\":"), NULL, 10);
        float bound = (float)strtod(h + strlen("\"bound_hex\": \""), NULL);
        sw_param *p = model_param(m, names[i]);
        fmix_uniform(p->value.data, p->value.numel, seed, stream, bound);
    }
}

/* Compares a model tensor with the reference, to 1e-5 * max|ref| (golden/README.md). */
static void check_tensor(const sw_tensor *got, const sw_safetensors *st, const char *key) {
    sw_tensor ref;
    get(st, key, &ref);
    assert_int_equal(ref.numel, got->numel);
    float mx = 0;
    for (size_t i = 0; i < ref.numel; i++) mx = fmaxf(mx, fabsf(ref.data[i]));
    sw_test_assert_close(got->data, ref.data, ref.numel, 1e-5f * mx + 1e-7f, 0.0f, key);
    sw_tensor_deinit(&ref);
}

/* fc1.weight is only summarised in the fixtures: strided samples and per-row sums. */
static void check_fc1_summary(const sw_tensor *w, const sw_safetensors *st, const char *prefix,
                              size_t stride) {
    char key[96];
    sw_tensor sample, row_sum, row_sumsq;
    snprintf(key, sizeof key, "%s/fc1.weight:sample", prefix);
    get(st, key, &sample);
    snprintf(key, sizeof key, "%s/fc1.weight:row_sum", prefix);
    get(st, key, &row_sum);
    snprintf(key, sizeof key, "%s/fc1.weight:row_sumsq", prefix);
    get(st, key, &row_sumsq);
    float *picked = malloc(sample.numel * sizeof *picked);
    float mx = 0;
    for (size_t i = 0; i < sample.numel; i++) {
        picked[i] = w->data[i * stride];
        mx = fmaxf(mx, fabsf(sample.data[i]));
    }
    snprintf(key, sizeof key, "%s/fc1.weight:sample", prefix);
    sw_test_assert_close(picked, sample.data, sample.numel, 1e-5f * mx, 0.0f, key);
    int rows = w->shape.dims[0], cols = w->shape.dims[1];
    assert_int_equal(row_sum.numel, (size_t)rows);
    float *sums = malloc((size_t)rows * 2 * sizeof *sums);
    for (int r = 0; r < rows; r++) {
        double s = 0, s2 = 0;
        for (int c = 0; c < cols; c++) {
            double v = w->data[(size_t)r * cols + c];
            s += v;
            s2 += v * v;
        }
        sums[r] = (float)s;
        sums[rows + r] = (float)s2;
    }
    /* A row sum adds 3136 values of about 1e-2: compare on the scale of those values. */
    snprintf(key, sizeof key, "%s/fc1.weight:row_sum", prefix);
    sw_test_assert_close(sums, row_sum.data, (size_t)rows, 1e-5f * mx * 56.0f, 0.0f, key);
    snprintf(key, sizeof key, "%s/fc1.weight:row_sumsq", prefix);
    sw_test_assert_close(sums + rows, row_sumsq.data, (size_t)rows, 0.0f, 1e-4f, key);
    free(sums);
    free(picked);
    sw_tensor_deinit(&sample);
    sw_tensor_deinit(&row_sum);
    sw_tensor_deinit(&row_sumsq);
}

static void check_step_params(sw_model *m, const sw_safetensors *st, int k, size_t stride) {
    static const char *const names[] = {
        "conv1.weight",     "conv1.bias",      "bn1.weight", "bn1.bias",   "bn1.running_mean",
        "bn1.running_var",  "conv2.weight",    "conv2.bias", "bn2.weight", "bn2.bias",
        "bn2.running_mean", "bn2.running_var", "fc1.bias",   "fc2.weight", "fc2.bias"};
    char key[96], prefix[16];
    snprintf(prefix, sizeof prefix, "step%d", k);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(key, sizeof key, "%s/%s", prefix, names[i]);
        check_tensor(&model_param(m, names[i])->value, st, key);
    }
    check_fc1_summary(&model_param(m, "fc1.weight")->value, st, prefix, stride);
}

/* Two SGD(momentum) steps of the whole fmnist_cnn in train mode (forward, cross-entropy,
 * backward, update, BatchNorm running statistics) reproduce torch 1.13's numbers. */
static void test_optim_fmnist_cnn_sgd_matches_torch(void **state) {
    (void)state;
    sw_safetensors *init = load_golden("fmnist_cnn_sgd_init");
    sw_safetensors *steps[2] = {load_golden("fmnist_cnn_sgd_step1"),
                                load_golden("fmnist_cnn_sgd_step2")};
    sw_model *m = NULL;
    if (sw_zoo_build("fmnist_cnn", 0, &m) != SW_OK) fail_msg("%s", sw_error_message());
    init_from_streams(m, init);
    /* The generator must agree with the stored initial tensors. */
    check_tensor(&model_param(m, "conv2.weight")->value, init, "init/conv2.weight");
    check_tensor(&model_param(m, "fc2.bias")->value, init, "init/fc2.bias");
    check_tensor(&model_param(m, "bn1.running_var")->value, init, "init/bn1.running_var");
    size_t stride = (size_t)meta_number(init, "fc1_sample_stride");
    check_fc1_summary(&model_param(m, "fc1.weight")->value, init, "init", stride);

    sw_tensor x, target;
    get(init, "input", &x);
    get(init, "target", &target);
    int n = x.shape.dims[0];
    int *labels = malloc((size_t)n * sizeof *labels);
    for (int i = 0; i < n; i++) labels[i] = (int)target.data[i];

    sw_optim_config c = sw_optim_config_default(SW_OPTIM_SGD);
    c.lr = (float)meta_number(init, "lr");
    c.momentum = (float)meta_number(init, "momentum");
    c.dampening = (float)meta_number(init, "dampening");
    c.weight_decay = (float)meta_number(init, "weight_decay");
    c.nesterov = meta_bool(init, "nesterov");
    sw_optim opt;
    assert_int_equal(sw_optim_init(&opt, &c), SW_OK);
    assert_int_equal(sw_optim_add_group(&opt, m->param_data, m->grad_data, m->n_param_floats),
                     SW_OK);
    sw_model_set_training(m, true);
    sw_shape out_shape = sw_shape_2d(n, 10);
    sw_tensor dlogits;
    assert_int_equal(sw_tensor_init(&dlogits, &out_shape), SW_OK);
    for (int k = 1; k <= 2; k++) {
        const sw_safetensors *st = steps[k - 1];
        char key[64];
        sw_optim_zero_grad(&opt);
        const sw_tensor *logits = NULL;
        if (sw_model_forward(m, &x, &logits) != SW_OK) fail_msg("%s", sw_error_message());
        snprintf(key, sizeof key, "step%d/logits", k);
        check_tensor(logits, st, key);
        double loss = 0;
        assert_int_equal(sw_loss_cross_entropy(logits, labels, 1.0f, &loss, &dlogits), SW_OK);
        snprintf(key, sizeof key, "step%d/loss", k);
        sw_tensor ref_loss;
        get(st, key, &ref_loss);
        assert_float_equal(loss, ref_loss.data[0], 1e-5 * fabs(ref_loss.data[0]));
        sw_tensor_deinit(&ref_loss);
        if (sw_model_backward(m, &dlogits) != SW_OK) fail_msg("%s", sw_error_message());
        sw_optim_step(&opt, c.lr);
        check_step_params(m, st, k, stride);
    }
    sw_optim_deinit(&opt);
    sw_tensor_deinit(&dlogits);
    free(labels);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&target);
    sw_model_free(m);
    sw_safetensors_free(init);
    sw_safetensors_free(steps[0]);
    sw_safetensors_free(steps[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optim_sgd_momentum_matches_torch),
        cmocka_unit_test(test_optim_adam_matches_torch),
        cmocka_unit_test(test_optim_adamw_matches_torch),
        cmocka_unit_test(test_optim_sgd_hand_values),
        cmocka_unit_test(test_optim_adam_first_step_is_lr_sign),
        cmocka_unit_test(test_optim_adamw_decay_is_decoupled),
        cmocka_unit_test(test_optim_group_lr_scale),
        cmocka_unit_test(test_optim_names_and_config_errors),
        cmocka_unit_test(test_optim_fmnist_cnn_sgd_matches_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
