/* test_layers.c - every layer kind: finite-difference gradients, PyTorch golden fixtures,
 * fast-vs-naive kernels, BatchNorm statistics and modes, Dropout, FLOPs, and errors for bad
 * hyper-parameters and shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"
#include "gradcheck.h"

#include "io/safetensors.h"
#include "nn/layer.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "tensor/batchnorm.h"
#include "tensor/blas.h"
#include "tensor/conv.h"
#include "tensor/conv_taps.h"
#include "tensor/conv_tiled.h"
#include "tensor/elementwise.h"
#include "tensor/im2col.h"
#include "tensor/pool.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* A new owning tensor of `shape` filled uniformly in [lo, hi). */
static sw_tensor *rand_tensor(sw_shape shape, uint64_t seed, float lo, float hi) {
    sw_tensor *t = NULL;
    assert_int_equal(sw_tensor_new(&shape, &t), SW_OK);
    sw_test_fill_uniform(t, seed, lo, hi);
    return t;
}

static sw_layer *make_layer(sw_layer_kind kind, const sw_layer_hparams *hp) {
    sw_layer *l = NULL;
    sw_status st = sw_layer_new(kind, hp, &l);
    if (st != SW_OK) fail_msg("cannot create %s: %s", sw_layer_kind_name(kind), sw_error_message());
    return l;
}

static sw_layer_hparams conv_hp(int cin, int cout, int kh, int kw, int sh, int sw, int ph, int pw,
                                int dh, int dw, int groups, bool bias) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = cin;
    hp.out_channels = cout;
    hp.kernel[0] = kh, hp.kernel[1] = kw;
    hp.stride[0] = sh, hp.stride[1] = sw;
    hp.padding[0] = ph, hp.padding[1] = pw;
    hp.dilation[0] = dh, hp.dilation[1] = dw;
    hp.groups = groups;
    hp.bias = bias;
    return hp;
}

static sw_layer_hparams pool_hp(sw_layer_kind kind, int k, int s, int p) {
    sw_layer_hparams hp = sw_layer_hparams_default(kind);
    hp.kernel[0] = hp.kernel[1] = k;
    hp.stride[0] = hp.stride[1] = s;
    hp.padding[0] = hp.padding[1] = p;
    return hp;
}

/* Values that are a shuffled arithmetic sequence a step of `gap` apart: no ties, and no two
 * within 2*eps, so max pooling's choice never flips under a finite-difference step. */
static void fill_distinct(sw_tensor *t, uint64_t seed, float gap) {
    int *idx = malloc(t->numel * sizeof *idx);
    assert_non_null(idx);
    for (size_t i = 0; i < t->numel; i++) idx[i] = (int)i;
    sw_rng rng;
    sw_rng_init(&rng, seed, 1);
    sw_rng_shuffle(&rng, idx, (int)t->numel);
    for (size_t i = 0; i < t->numel; i++) t->data[i] = ((float)idx[i] - (float)t->numel / 2) * gap;
    free(idx);
}

/* Moves every value at least `margin` away from each kink in kinks[0..n). */
static void avoid_kinks(sw_tensor *t, const float *kinks, int n, float margin) {
    for (size_t i = 0; i < t->numel; i++)
        for (int k = 0; k < n; k++) {
            float d = t->data[i] - kinks[k];
            if (fabsf(d) < margin) t->data[i] = kinks[k] + (d < 0 ? -margin : margin);
        }
}

/* Gradient check of a layer on one random input of batched `shape`. */
static double check1(sw_layer_kind kind, const sw_layer_hparams *hp, sw_shape shape, bool training,
                     uint64_t seed) {
    sw_layer *l = make_layer(kind, hp);
    sw_tensor *x = rand_tensor(shape, seed, -1.0f, 1.0f);
    sw_gradcheck_opts o = sw_gradcheck_defaults();
    o.seed = seed;
    double worst = sw_gradcheck_layer(l, &x, 1, training, &o);
    sw_tensor_free(x);
    sw_layer_free(l);
    return worst;
}

/* ---- finite-difference gradients -------------------------------------------------------- */

/* Linear's input, weight and bias gradients match central differences, with and without bias
 * and on inputs with extra leading dimensions. */
static void test_layers_linear_gradients(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 5, hp.out_features = 4;
    check1(SW_LAYER_LINEAR, &hp, sw_shape_2d(3, 5), true, 1);
    hp.in_features = 7, hp.out_features = 1, hp.bias = false;
    check1(SW_LAYER_LINEAR, &hp, sw_shape_2d(2, 7), true, 2);
    hp.in_features = 3, hp.out_features = 6, hp.bias = true;
    check1(SW_LAYER_LINEAR, &hp, sw_shape_3d(2, 4, 3), true, 3);
}

/* Conv2d's input, weight and bias gradients match central differences for padding, odd sizes,
 * stride 2, dilation, rectangular kernels, groups, depthwise (with multiplier), 1x1, and
 * batches that take both the per-sample-parallel and the single-sample paths. */
static void test_layers_conv2d_gradients(void **state) {
    (void)state;
    const struct {
        sw_layer_hparams hp;
        sw_shape in;
    } cases[] = {
        {conv_hp(3, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true), {4, {2, 3, 7, 6}}},
        {conv_hp(3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, true), {4, {3, 3, 9, 7}}},
        {conv_hp(2, 3, 3, 3, 1, 1, 2, 2, 2, 2, 1, true), {4, {2, 2, 8, 7}}},
        {conv_hp(4, 6, 3, 3, 1, 1, 0, 0, 1, 1, 2, false), {4, {2, 4, 5, 6}}},
        {conv_hp(4, 4, 3, 3, 2, 2, 1, 1, 1, 1, 4, true), {4, {3, 4, 7, 7}}},
        {conv_hp(3, 6, 3, 3, 1, 1, 1, 1, 1, 1, 3, true), {4, {2, 3, 5, 5}}},
        {conv_hp(3, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1, true), {4, {2, 3, 4, 5}}},
        {conv_hp(2, 3, 2, 3, 2, 1, 1, 0, 1, 2, 1, true), {4, {1, 2, 6, 8}}},
        {conv_hp(2, 2, 1, 1, 2, 2, 0, 0, 1, 1, 1, false), {4, {2, 2, 5, 5}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check1(SW_LAYER_CONV2D, &cases[i].hp, cases[i].in, true, 10 + i);
}

/* BatchNorm2d's gradients match central differences in training (batch statistics, which
 * depend on the input) and in evaluation (running statistics). */
static void test_layers_batchnorm2d_gradients(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 3;
    check1(SW_LAYER_BATCHNORM2D, &hp, sw_shape_4d(2, 3, 3, 5), true, 21);
    check1(SW_LAYER_BATCHNORM2D, &hp, sw_shape_4d(3, 3, 1, 1), true, 22);
    check1(SW_LAYER_BATCHNORM2D, &hp, sw_shape_4d(2, 3, 4, 3), false, 23);
}

/* BatchNorm1d's gradients match central differences on [N, C] and [N, C, L]. */
static void test_layers_batchnorm1d_gradients(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM1D);
    hp.num_features = 4;
    check1(SW_LAYER_BATCHNORM1D, &hp, sw_shape_2d(5, 4), true, 31);
    check1(SW_LAYER_BATCHNORM1D, &hp, sw_shape_3d(2, 4, 3), true, 32);
    check1(SW_LAYER_BATCHNORM1D, &hp, sw_shape_2d(3, 4), false, 33);
}

/* ReLU and ReLU6 gradients match central differences away from their kinks. */
static void test_layers_activation_gradients(void **state) {
    (void)state;
    const float kinks[] = {0.0f, 6.0f};
    sw_gradcheck_opts o = sw_gradcheck_defaults();
    for (int k = 0; k < 2; k++) {
        sw_layer_kind kind = k ? SW_LAYER_RELU6 : SW_LAYER_RELU;
        sw_layer_hparams hp = sw_layer_hparams_default(kind);
        sw_layer *l = make_layer(kind, &hp);
        sw_tensor *x = rand_tensor(sw_shape_4d(2, 3, 3, 5), 40 + k, -2.0f, 8.0f);
        avoid_kinks(x, kinks, 2, 0.1f);
        sw_gradcheck_layer(l, &x, 1, true, &o);
        sw_tensor_free(x);
        sw_layer_free(l);
    }
}

/* MaxPool2d's gradient (routed to each window's winner) matches central differences for 2x2,
 * overlapping 3x3 stride 2 with padding, dilation, and odd sizes. */
static void test_layers_maxpool2d_gradients(void **state) {
    (void)state;
    sw_layer_hparams cases[] = {
        pool_hp(SW_LAYER_MAXPOOL2D, 2, 2, 0), pool_hp(SW_LAYER_MAXPOOL2D, 3, 2, 1),
        pool_hp(SW_LAYER_MAXPOOL2D, 3, 1, 1),
        pool_hp(SW_LAYER_MAXPOOL2D, 2, 0, 0), /* stride 0 = kernel */
    };
    cases[2].dilation[0] = 2;
    sw_shape shapes[] = {sw_shape_4d(2, 2, 6, 6), sw_shape_4d(2, 2, 7, 7), sw_shape_4d(1, 2, 7, 6),
                         sw_shape_4d(2, 1, 5, 7)};
    sw_gradcheck_opts o = sw_gradcheck_defaults();
    for (int i = 0; i < 4; i++) {
        sw_layer *l = make_layer(SW_LAYER_MAXPOOL2D, &cases[i]);
        sw_tensor *x = rand_tensor(shapes[i], 50 + i, 0, 1);
        fill_distinct(x, 50 + i, 0.05f);
        sw_gradcheck_layer(l, &x, 1, true, &o);
        sw_tensor_free(x);
        sw_layer_free(l);
    }
}

/* AvgPool2d and the global average pool match central differences (padding counted). */
static void test_layers_avgpool_gradients(void **state) {
    (void)state;
    sw_layer_hparams a = pool_hp(SW_LAYER_AVGPOOL2D, 2, 2, 0);
    sw_layer_hparams b = pool_hp(SW_LAYER_AVGPOOL2D, 3, 2, 1);
    sw_layer_hparams c = pool_hp(SW_LAYER_AVGPOOL2D, 3, 1, 1);
    c.kernel[1] = 2, c.padding[1] = 0;
    check1(SW_LAYER_AVGPOOL2D, &a, sw_shape_4d(2, 2, 6, 5), true, 61);
    check1(SW_LAYER_AVGPOOL2D, &b, sw_shape_4d(2, 2, 7, 7), true, 62);
    check1(SW_LAYER_AVGPOOL2D, &c, sw_shape_4d(1, 3, 5, 6), true, 63);
    sw_layer_hparams g = sw_layer_hparams_default(SW_LAYER_GLOBAL_AVGPOOL);
    check1(SW_LAYER_GLOBAL_AVGPOOL, &g, sw_shape_4d(2, 3, 4, 5), true, 64);
}

/* Flatten, Identity and Dropout (training with a fixed mask, and evaluation) pass gradients
 * that match central differences. */
static void test_layers_shape_op_gradients(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    check1(SW_LAYER_FLATTEN, &hp, sw_shape_4d(2, 3, 2, 3), true, 71);
    hp = sw_layer_hparams_default(SW_LAYER_IDENTITY);
    check1(SW_LAYER_IDENTITY, &hp, sw_shape_3d(2, 3, 4), true, 72);
    hp = sw_layer_hparams_default(SW_LAYER_DROPOUT);
    hp.p = 0.3f;
    check1(SW_LAYER_DROPOUT, &hp, sw_shape_2d(4, 9), true, 73);
    check1(SW_LAYER_DROPOUT, &hp, sw_shape_2d(4, 9), false, 74);
}

/* Add and Concat give each of several inputs the right gradient. */
static void test_layers_join_gradients(void **state) {
    (void)state;
    sw_gradcheck_opts o = sw_gradcheck_defaults();
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_ADD);
    sw_layer *add = make_layer(SW_LAYER_ADD, &hp);
    sw_tensor *a[3];
    for (int i = 0; i < 3; i++) a[i] = rand_tensor(sw_shape_4d(2, 3, 2, 2), 80 + i, -1, 1);
    sw_gradcheck_layer(add, a, 3, true, &o);
    for (int i = 0; i < 3; i++) sw_tensor_free(a[i]);
    sw_layer_free(add);

    hp = sw_layer_hparams_default(SW_LAYER_CONCAT);
    sw_layer *cat = make_layer(SW_LAYER_CONCAT, &hp);
    sw_tensor *c[3] = {rand_tensor(sw_shape_4d(2, 1, 3, 2), 90, -1, 1),
                       rand_tensor(sw_shape_4d(2, 3, 3, 2), 91, -1, 1),
                       rand_tensor(sw_shape_4d(2, 2, 3, 2), 92, -1, 1)};
    sw_gradcheck_layer(cat, c, 3, true, &o);
    for (int i = 0; i < 3; i++) sw_tensor_free(c[i]);
    sw_layer_free(cat);
}

/* ---- PyTorch golden fixtures ------------------------------------------------------------ */

static int meta_int(const sw_safetensors *st, const char *key, int fallback) {
    const char *v = sw_safetensors_meta(st, key);
    if (!v) return fallback;
    while (*v == '[' || *v == ' ') v++;
    return atoi(v);
}

/* A {h, w} hyper-parameter stored as "3" or "[3, 2]". */
static void meta_pair(const sw_safetensors *st, const char *key, int out[2], int fallback) {
    const char *v = sw_safetensors_meta(st, key);
    out[0] = out[1] = fallback;
    if (!v) return;
    if (*v == '[') {
        if (sscanf(v, "[%d,%d]", &out[0], &out[1]) != 2 &&
            sscanf(v, "[%d, %d]", &out[0], &out[1]) != 2)
            fail_msg("cannot read %s = %s", key, v);
    } else {
        out[0] = out[1] = atoi(v);
    }
}

static bool meta_true(const sw_safetensors *st, const char *key) {
    const char *v = sw_safetensors_meta(st, key);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "True") == 0);
}

static sw_safetensors *open_golden(const char *name) {
    char rel[128], path[512];
    snprintf(rel, sizeof rel, "golden/%s.safetensors", name);
    sw_safetensors *st = NULL;
    if (sw_safetensors_read_file(sw_test_data_path(rel, path, sizeof path), &st) != SW_OK)
        fail_msg("cannot read %s: %s", path, sw_error_message());
    return st;
}

static sw_tensor *golden_tensor(const sw_safetensors *st, const char *name) {
    sw_tensor *t = calloc(1, sizeof *t);
    assert_non_null(t);
    if (sw_safetensors_get_f32(st, name, t) != SW_OK)
        fail_msg("fixture tensor %s: %s", name, sw_error_message());
    return t;
}

static void free_golden_tensor(sw_tensor *t) {
    sw_tensor_deinit(t);
    free(t);
}

/* Fails unless `got` matches fixture tensor `name` within the README's layer tolerance. */
static void expect_golden(const sw_safetensors *st, const char *name, const sw_tensor *got) {
    sw_tensor *want = golden_tensor(st, name);
    assert_int_equal(want->numel, got->numel);
    sw_test_assert_close(got->data, want->data, got->numel, 1e-5f, 1e-4f, name);
    free_golden_tensor(want);
}

/* The layer a fixture describes, hyper-parameters read from its metadata. */
static sw_layer *golden_layer(const sw_safetensors *st, sw_layer_kind kind) {
    sw_layer_hparams hp = sw_layer_hparams_default(kind);
    switch (kind) {
    case SW_LAYER_LINEAR:
        hp.in_features = meta_int(st, "in_features", 0);
        hp.out_features = meta_int(st, "out_features", 0);
        hp.bias = meta_true(st, "bias");
        break;
    case SW_LAYER_CONV2D:
        hp.in_channels = meta_int(st, "in_channels", 0);
        hp.out_channels = meta_int(st, "out_channels", 0);
        hp.groups = meta_int(st, "groups", 1);
        hp.bias = meta_true(st, "bias");
        /* the window hyper-parameters are shared with pooling */
        /* fall through */
    case SW_LAYER_MAXPOOL2D:
    case SW_LAYER_AVGPOOL2D:
        meta_pair(st, "kernel_size", hp.kernel, 1);
        meta_pair(st, "stride", hp.stride, kind == SW_LAYER_CONV2D ? 1 : 0);
        meta_pair(st, "padding", hp.padding, 0);
        meta_pair(st, "dilation", hp.dilation, 1);
        break;
    case SW_LAYER_BATCHNORM2D:
    case SW_LAYER_BATCHNORM1D:
        hp.num_features = meta_int(st, "num_features", 0);
        hp.eps = (float)atof(sw_safetensors_meta(st, "eps"));
        hp.momentum = (float)atof(sw_safetensors_meta(st, "momentum"));
        break;
    default:
        break;
    }
    return make_layer(kind, &hp);
}

/* Runs one fixture: forward on its inputs and parameters, backward with its grad_output, and
 * compares every output, gradient and updated buffer it holds. */
static void run_golden(const char *name, sw_layer_kind kind) {
    sw_safetensors *st = open_golden(name);
    sw_layer *layer = golden_layer(st, kind);
    const char *mode = sw_safetensors_meta(st, "mode");
    bool training = !mode || strcmp(mode, "eval") != 0;
    bool two = sw_safetensors_find(st, "input_a") != NULL;
    const char *in_names[2] = {two ? "input_a" : "input", "input_b"};
    const char *din_names[2] = {two ? "grad_input_a" : "grad_input", "grad_input_b"};
    int n_in = two ? 2 : 1;
    sw_tensor *in[2] = {0}, din[2], *din_ptr[2] = {0};
    for (int i = 0; i < n_in; i++) in[i] = golden_tensor(st, in_names[i]);

    sw_harness h;
    if (sw_harness_init(&h, layer, in, n_in, training, 1) != SW_OK)
        fail_msg("%s: %s", name, sw_error_message());
    for (int p = 0; p < layer->n_params; p++) {
        sw_tensor *v = golden_tensor(st, layer->params[p].name);
        assert_int_equal(v->numel, layer->params[p].value.numel);
        memcpy(layer->params[p].value.data, v->data, v->numel * sizeof(float));
        free_golden_tensor(v);
        if (layer->params[p].trainable) sw_tensor_zero(&layer->params[p].grad);
    }
    if (sw_harness_forward(&h) != SW_OK) fail_msg("%s forward: %s", name, sw_error_message());
    expect_golden(st, "output", &h.out);

    sw_tensor *dout = golden_tensor(st, "grad_output");
    for (int i = 0; i < n_in; i++) {
        assert_int_equal(sw_tensor_init(&din[i], &in[i]->shape), SW_OK);
        din_ptr[i] = &din[i];
    }
    sw_tensor *dparams[SW_MAX_PARAMS] = {0};
    for (int p = 0; p < layer->n_params; p++)
        if (layer->params[p].trainable) dparams[p] = &layer->params[p].grad;
    if (sw_harness_backward(&h, dout, din_ptr, dparams) != SW_OK)
        fail_msg("%s backward: %s", name, sw_error_message());
    for (int i = 0; i < n_in; i++) expect_golden(st, din_names[i], &din[i]);
    for (int p = 0; p < layer->n_params; p++) {
        char key[64];
        if (layer->params[p].trainable) {
            snprintf(key, sizeof key, "grad_%s", layer->params[p].name);
            expect_golden(st, key, &layer->params[p].grad);
        } else if (training) {
            snprintf(key, sizeof key, "%s_after", layer->params[p].name);
            expect_golden(st, key, &layer->params[p].value);
        } else {
            /* evaluation leaves the running statistics alone */
            expect_golden(st, layer->params[p].name, &layer->params[p].value);
        }
    }
    free_golden_tensor(dout);
    for (int i = 0; i < n_in; i++) {
        sw_tensor_deinit(&din[i]);
        free_golden_tensor(in[i]);
    }
    sw_harness_deinit(&h);
    sw_layer_free(layer);
    sw_safetensors_free(st);
}

/* Linear matches PyTorch's output and gradients, with and without bias. */
static void test_layers_golden_linear(void **state) {
    (void)state;
    run_golden("linear_bias", SW_LAYER_LINEAR);
    run_golden("linear_nobias", SW_LAYER_LINEAR);
}

/* Conv2d matches PyTorch for padding, stride, dilation, groups, depthwise, 1x1 and no bias. */
static void test_layers_golden_conv2d(void **state) {
    (void)state;
    const char *names[] = {"conv2d_3x3_pad1", "conv2d_stride2",   "conv2d_dilation2",
                           "conv2d_groups2",  "conv2d_depthwise", "conv2d_1x1",
                           "conv2d_nobias"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        run_golden(names[i], SW_LAYER_CONV2D);
}

/* BatchNorm matches PyTorch's outputs, gradients and running-statistic updates. */
static void test_layers_golden_batchnorm(void **state) {
    (void)state;
    run_golden("batchnorm2d_train", SW_LAYER_BATCHNORM2D);
    run_golden("batchnorm2d_eval", SW_LAYER_BATCHNORM2D);
    run_golden("batchnorm1d_train", SW_LAYER_BATCHNORM1D);
}

/* Activations, pools, flatten and the two joins match PyTorch. */
static void test_layers_golden_elementwise_and_pools(void **state) {
    (void)state;
    run_golden("relu", SW_LAYER_RELU);
    run_golden("relu6", SW_LAYER_RELU6);
    run_golden("maxpool2d_2x2", SW_LAYER_MAXPOOL2D);
    run_golden("maxpool2d_3x3_s2_p1", SW_LAYER_MAXPOOL2D);
    run_golden("avgpool2d_2x2", SW_LAYER_AVGPOOL2D);
    run_golden("adaptive_avgpool2d_1", SW_LAYER_GLOBAL_AVGPOOL);
    run_golden("flatten", SW_LAYER_FLATTEN);
    run_golden("residual_add", SW_LAYER_ADD);
    run_golden("concat_channel", SW_LAYER_CONCAT);
}

/* ---- fast kernels against their naive oracles ------------------------------------------- */

static sw_conv_geom geom(int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
                         int dh, int dw) {
    sw_conv_geom g = {c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, 0, 0};
    assert_true(sw_conv_geom_resolve(&g));
    return g;
}

/* A spread of window geometries: odd sizes, strides 1-3, padding up to the kernel, dilation,
 * and "same"-width stride-1 cases that take im2col's flat-copy path. Columns: C, H, W, kh, kw,
 * sh, sw, ph, pw, dh, dw. */
static const int geoms[][11] = {
    {3, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1},  {2, 9, 7, 3, 3, 2, 2, 1, 1, 1, 1},
    {2, 8, 8, 3, 3, 1, 1, 2, 2, 2, 2},  {1, 5, 11, 2, 4, 3, 2, 0, 2, 1, 1},
    {4, 6, 6, 1, 1, 1, 1, 0, 0, 1, 1},  {2, 4, 4, 5, 5, 1, 2, 3, 3, 1, 1},
    {3, 10, 9, 3, 2, 2, 3, 1, 1, 3, 2}, {1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1},
    {2, 3, 2, 5, 5, 1, 1, 2, 2, 1, 1}, /* shifts as wide as the image */
};
#define N_GEOMS (sizeof geoms / sizeof geoms[0])

static sw_conv_geom geom_at(size_t i) {
    const int *v = geoms[i];
    return geom(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]);
}

/* im2col and col2im equal their one-bounds-check-per-element oracles bit for bit. */
static void test_layers_im2col_matches_naive(void **state) {
    (void)state;
    for (size_t i = 0; i < N_GEOMS; i++) {
        sw_conv_geom g = geom_at(i);
        size_t in = (size_t)g.channels * g.height * g.width;
        size_t cols = (size_t)g.channels * g.kernel_h * g.kernel_w * g.out_h * g.out_w;
        sw_tensor *x = rand_tensor(sw_shape_1d((int)in), 100 + i, -1, 1);
        sw_tensor *c = rand_tensor(sw_shape_1d((int)cols), 200 + i, -1, 1);
        float *a = malloc(cols * sizeof *a), *b = malloc(cols * sizeof *b);
        float *da = calloc(in, sizeof *da), *db = calloc(in, sizeof *db);
        assert_true(a && b && da && db);
        sw_im2col(x->data, &g, a);
        sw_im2col_naive(x->data, &g, b);
        assert_memory_equal(a, b, cols * sizeof *a);
        sw_col2im(c->data, &g, da);
        sw_col2im_naive(c->data, &g, db);
        /* same additions in the same order per pixel */
        sw_test_assert_close(da, db, in, 0, 0, "col2im");
        free(a), free(b), free(da), free(db);
        sw_tensor_free(x), sw_tensor_free(c);
    }
}

/* The fast convolution (im2col+sgemm, or the direct depthwise loops) agrees with the seven
 * loops in forward, input and parameter gradients, for batch sizes below and above the thread
 * count and the weight-gradient chunk count, every geometry, grouping and depth multiplier. */
static void test_layers_conv_fast_matches_naive(void **state) {
    (void)state;
    const int groups_for[] = {1, 2, 4};
    for (size_t i = 0; i < N_GEOMS; i++) {
        for (int gi = 0; gi < 3; gi++) {
            sw_conv_geom g = geom_at(i);
            int groups = groups_for[gi];
            g.channels *= groups; /* keep Cg as in the table */
            /* odd cases: one output per group (with Cg = 1: the direct depthwise kernels) */
            /* 20 samples: small images go 2 side by side in one product, forward and weight
             * gradient, and the weight gradient's chunks of 2 or 3 leave a product of one */
            int batches[] = {1, 5, 3, 4, 20};
            for (int bi = 0; bi < 5; bi++) {
                int per_group = bi < 2 || bi == 4 ? 3 : 1;
                sw_conv2d_desc d = {.batch = batches[bi],
                                    .out_channels = per_group * groups,
                                    .groups = groups,
                                    .geom = g};
                int cg = g.channels / groups;
                size_t nx = (size_t)d.batch * g.channels * g.height * g.width;
                size_t ny = (size_t)d.batch * d.out_channels * g.out_h * g.out_w;
                size_t nw = (size_t)d.out_channels * cg * g.kernel_h * g.kernel_w;
                uint64_t seed = 300 + i * 20 + gi * 4 + bi;
                sw_tensor *x = rand_tensor(sw_shape_1d((int)nx), seed, -1, 1);
                sw_tensor *w = rand_tensor(sw_shape_1d((int)nw), seed + 1, -1, 1);
                sw_tensor *b = rand_tensor(sw_shape_1d(d.out_channels), seed + 2, -1, 1);
                sw_tensor *dy = rand_tensor(sw_shape_1d((int)ny), seed + 3, -1, 1);
                float *scr = malloc((sw_conv2d_scratch_floats(&d, SW_CONV2D_BACKWARD_PARAMS) +
                                     sw_conv2d_scratch_floats(&d, SW_CONV2D_FORWARD) + 1) *
                                    sizeof(float));
                float *y1 = calloc(ny, 4), *y2 = calloc(ny, 4), *dx1 = calloc(nx, 4),
                      *dx2 = calloc(nx, 4), *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4),
                      *db1 = calloc(d.out_channels, 4), *db2 = calloc(d.out_channels, 4);
                assert_true(scr && y1 && y2 && dx1 && dx2 && dw1 && dw2 && db1 && db2);
                sw_conv2d_forward(y1, x->data, w->data, b->data, &d, NULL, scr);
                sw_conv2d_forward_naive(y2, x->data, w->data, b->data, &d);
                sw_test_assert_close(y1, y2, ny, 1e-5f, 1e-5f, "conv forward");
                /* overwriting: dx1's old contents (NaN) must not matter */
                for (size_t k = 0; k < nx; k++) dx1[k] = NAN;
                sw_conv2d_backward_input(dx1, dy->data, w->data, &d, scr, false);
                sw_conv2d_backward_input_naive(dx2, dy->data, w->data, &d);
                sw_test_assert_close(dx1, dx2, nx, 1e-5f, 1e-5f, "conv input gradient");
                /* accumulating: twice the gradient */
                sw_conv2d_backward_input(dx1, dy->data, w->data, &d, scr, true);
                sw_conv2d_backward_input_naive(dx2, dy->data, w->data, &d);
                sw_test_assert_close(dx1, dx2, nx, 1e-5f, 1e-5f, "conv input gradient, added");
                sw_conv2d_backward_params(dw1, db1, dy->data, x->data, &d, scr);
                sw_conv2d_backward_params_naive(dw2, db2, dy->data, x->data, &d);
                sw_test_assert_close(dw1, dw2, nw, 1e-4f, 1e-5f, "conv weight gradient");
                sw_test_assert_close(db1, db2, d.out_channels, 1e-4f, 1e-5f, "conv bias gradient");
                free(scr), free(y1), free(y2), free(dx1), free(dx2), free(dw1), free(dw2);
                free(db1), free(db2);
                sw_tensor_free(x), sw_tensor_free(w), sw_tensor_free(b), sw_tensor_free(dy);
            }
        }
    }
}

/* A fast convolution's forward and input gradient (and, when it has one, weight gradient)
 * called directly, whatever conv.c's dispatcher would pick on this CPU, against the seven
 * loops. Scratch starts as NaN, as the arena hands out garbage. */
typedef struct conv_kernel_set {
    const char *name;
    size_t (*scratch_floats)(const sw_conv2d_desc *d, sw_conv2d_pass pass);
    void (*forward)(float *y, const float *x, const float *w, const float *b,
                    const sw_conv2d_desc *d, const sw_epilogue *ep, float *scratch);
    void (*backward_input)(float *dx, const float *dy, const float *w, const sw_conv2d_desc *d,
                           float *scratch, bool accumulate);
    void (*backward_params)(float *dw, float *db, const float *dy, const float *x,
                            const sw_conv2d_desc *d, float *scratch); /* may be NULL */
    bool pools; /* forward takes an epilogue with pool2x2 */
} conv_kernel_set;

static void check_conv_kernels(const conv_kernel_set *k, const sw_conv2d_desc *d, uint64_t seed,
                               bool with_input_gradient) {
    const sw_conv_geom *g = &d->geom;
    size_t nx = (size_t)d->batch * g->channels * g->height * g->width;
    size_t ny = (size_t)d->batch * d->out_channels * g->out_h * g->out_w;
    size_t nw = (size_t)d->out_channels * g->channels * g->kernel_h * g->kernel_w;
    char what[96];
    sw_tensor *x = rand_tensor(sw_shape_1d((int)nx), seed, -1, 1);
    sw_tensor *w = rand_tensor(sw_shape_1d((int)nw), seed + 1, -1, 1);
    sw_tensor *b = rand_tensor(sw_shape_1d(d->out_channels), seed + 2, -1, 1);
    sw_tensor *dy = rand_tensor(sw_shape_1d((int)ny), seed + 3, -1, 1);
    sw_tensor *scale = rand_tensor(sw_shape_1d(d->out_channels), seed + 4, -2, 2);
    sw_tensor *shift = rand_tensor(sw_shape_1d(d->out_channels), seed + 5, -1, 1);
    size_t n_scr = 0;
    for (int pass = SW_CONV2D_FORWARD; pass <= SW_CONV2D_BACKWARD_PARAMS; pass++) {
        if (pass == SW_CONV2D_BACKWARD_PARAMS && !k->backward_params) continue;
        size_t need = k->scratch_floats(d, (sw_conv2d_pass)pass);
        if (need > n_scr) n_scr = need;
    }
    float *scr = malloc(n_scr * sizeof(float));
    float *y1 = calloc(ny, 4), *y2 = calloc(ny, 4), *dx1 = calloc(nx, 4), *dx2 = calloc(nx, 4),
          *dw1 = calloc(nw, 4), *dw2 = calloc(nw, 4), *db1 = calloc(d->out_channels, 4),
          *db2 = calloc(d->out_channels, 4);
    assert_true(scr && y1 && y2 && dx1 && dx2 && dw1 && dw2 && db1 && db2);
    for (size_t i = 0; i < n_scr; i++) scr[i] = NAN;
    k->forward(y1, x->data, w->data, b->data, d, NULL, scr);
    sw_conv2d_forward_naive(y2, x->data, w->data, b->data, d);
    snprintf(what, sizeof what, "%s forward", k->name);
    sw_test_assert_close(y1, y2, ny, 1e-5f, 1e-5f, what);
    /* with an epilogue: relu((conv + b) * scale + shift) per output channel */
    sw_epilogue ep = {.scale = scale->data, .shift = shift->data, .relu = true};
    k->forward(y1, x->data, w->data, b->data, d, &ep, scr);
    size_t plane = (size_t)g->out_h * g->out_w;
    for (size_t i = 0; i < ny; i++) {
        int o = (int)(i / plane % (size_t)d->out_channels);
        float v = y2[i] * scale->data[o] + shift->data[o];
        y2[i] = v < 0 ? 0 : v;
    }
    snprintf(what, sizeof what, "%s forward with epilogue", k->name);
    sw_test_assert_close(y1, y2, ny, 1e-5f, 1e-5f, what);
    if (k->pools) {
        /* and a 2x2 max-pool after it: an odd last row or column is dropped */
        const int ph = g->out_h / 2, pw = g->out_w / 2;
        size_t np = (size_t)d->batch * d->out_channels * ph * pw;
        float *p1 = malloc(np * sizeof(float)), *p2 = malloc(np * sizeof(float));
        assert_true(p1 && p2);
        ep.pool2x2 = true;
        k->forward(p1, x->data, w->data, b->data, d, &ep, scr);
        for (size_t i = 0; i < np; i++) {
            size_t j = i % (size_t)pw, r = i / (size_t)pw % (size_t)ph;
            size_t plane_i = i / ((size_t)ph * pw);
            const float *top = y2 + plane_i * plane + 2 * r * (size_t)g->out_w + 2 * j;
            float m = top[0];
            if (top[1] > m) m = top[1];
            if (top[g->out_w] > m) m = top[g->out_w];
            if (top[g->out_w + 1] > m) m = top[g->out_w + 1];
            p2[i] = m;
        }
        snprintf(what, sizeof what, "%s forward with epilogue and 2x2 max-pool", k->name);
        sw_test_assert_close(p1, p2, np, 1e-5f, 1e-5f, what);
        free(p1), free(p2);
        /* and a residual added before the ReLU: relu((conv + b) * scale + shift + r) */
        sw_tensor *r = rand_tensor(sw_shape_1d((int)ny), seed + 6, -1, 1);
        sw_epilogue with_skip = {.scale = scale->data, .shift = shift->data, .relu = true,
                                 .residual = r->data};
        k->forward(y1, x->data, w->data, b->data, d, &with_skip, scr);
        sw_conv2d_forward_naive(y2, x->data, w->data, b->data, d);
        for (size_t i = 0; i < ny; i++) {
            int o = (int)(i / plane % (size_t)d->out_channels);
            float v = y2[i] * scale->data[o] + shift->data[o] + r->data[i];
            y2[i] = v < 0 ? 0 : v;
        }
        snprintf(what, sizeof what, "%s forward with epilogue and residual", k->name);
        sw_test_assert_close(y1, y2, ny, 1e-5f, 1e-5f, what);
        sw_tensor_free(r);
    }
    if (with_input_gradient) {
        /* accumulating: start both from the same non-zero values */
        for (size_t i = 0; i < nx; i++) dx1[i] = dx2[i] = 0.5f;
        k->backward_input(dx1, dy->data, w->data, d, scr, true);
        sw_conv2d_backward_input_naive(dx2, dy->data, w->data, d);
        snprintf(what, sizeof what, "%s input gradient", k->name);
        sw_test_assert_close(dx1, dx2, nx, 1e-5f, 1e-5f, what);
        /* overwriting: the gradient alone, whatever dx held */
        for (size_t i = 0; i < nx; i++) dx1[i] = NAN, dx2[i] = 0.0f;
        k->backward_input(dx1, dy->data, w->data, d, scr, false);
        sw_conv2d_backward_input_naive(dx2, dy->data, w->data, d);
        snprintf(what, sizeof what, "%s input gradient, overwritten", k->name);
        sw_test_assert_close(dx1, dx2, nx, 1e-5f, 1e-5f, what);
    }
    if (k->backward_params) {
        k->backward_params(dw1, NULL, dy->data, x->data, d, scr);
        k->backward_params(NULL, db1, dy->data, x->data, d, scr);
        sw_conv2d_backward_params_naive(dw2, db2, dy->data, x->data, d);
        snprintf(what, sizeof what, "%s weight gradient", k->name);
        sw_test_assert_close(dw1, dw2, nw, 1e-4f, 1e-5f, what);
        snprintf(what, sizeof what, "%s bias gradient", k->name);
        sw_test_assert_close(db1, db2, d->out_channels, 1e-4f, 1e-5f, what);
    }
    free(scr), free(y1), free(y2), free(dx1), free(dx2), free(dw1), free(dw2);
    free(db1), free(db2);
    sw_tensor_free(x), sw_tensor_free(w), sw_tensor_free(b), sw_tensor_free(dy);
    sw_tensor_free(scale), sw_tensor_free(shift);
}

/* The tap-wise kernels (dense stride-1 layers with enough channels on wide images) agree with
 * the seven loops, with and without padding, with dilation and non-square kernels, for batches
 * below and above the thread count, and with either parameter gradient skipped. Columns as in
 * geoms[]. */
static void test_layers_conv_taps_matches_naive(void **state) {
    (void)state;
    static const int taps_geoms[][11] = {
        {16, 12, 11, 3, 3, 1, 1, 1, 1, 1, 1}, /* "same" 3x3, as in the zoo */
        {16, 14, 12, 3, 3, 1, 1, 0, 0, 1, 1}, /* no padding: windows overrun into next plane */
        {17, 13, 12, 3, 2, 1, 1, 2, 1, 2, 3}, /* dilation, non-square kernel and padding */
        {20, 11, 14, 5, 5, 1, 1, 2, 2, 1, 1},
    };
    const conv_kernel_set taps = {"taps", sw_conv_taps_scratch_floats, sw_conv_taps_forward,
                                  sw_conv_taps_backward_input, sw_conv_taps_backward_params,
                                  false};
    const int batches[] = {1, 3, 5};
    for (size_t i = 0; i < sizeof taps_geoms / sizeof taps_geoms[0]; i++) {
        const int *v = taps_geoms[i];
        sw_conv_geom g = geom(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]);
        for (int bi = 0; bi < 3; bi++) {
            sw_conv2d_desc d = {.batch = batches[bi], .out_channels = 6 + (int)i, .groups = 1, .geom = g};
            assert_true(sw_conv_taps_suits(&d));
            check_conv_kernels(&taps, &d, 900 + i * 10 + bi, true);
        }
    }
    /* and who does not take them: strided, grouped, 1x1, few channels, narrow images */
    sw_conv2d_desc strided = {.batch = 4, .out_channels = 8, .groups = 1,
                              .geom = geom(16, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1)};
    sw_conv2d_desc grouped = {.batch = 4, .out_channels = 16, .groups = 2,
                              .geom = geom(16, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1)};
    sw_conv2d_desc thin = {.batch = 4, .out_channels = 32, .groups = 1,
                           .geom = geom(1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1)};
    sw_conv2d_desc small = {.batch = 4, .out_channels = 128, .groups = 1,
                            .geom = geom(128, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1)};
    sw_conv2d_desc stage1 = {.batch = 4, .out_channels = 32, .groups = 1,
                             .geom = geom(32, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1)};
    assert_false(sw_conv_taps_suits(&strided));
    assert_false(sw_conv_taps_suits(&grouped));
    assert_false(sw_conv_taps_suits(&thin));
    assert_false(sw_conv_taps_suits(&small));
    assert_true(sw_conv_taps_suits(&stage1));
}

/* Every geometry row (geom()'s columns, then the output channels) at batches 1, 2 and 5: the
 * tiled kernels take its forward, its input gradient when `input_gradient` (and never its
 * weight gradient), and agree with the seven loops. */
static void check_tiled_geoms(const conv_kernel_set *tiled, const int (*rows)[12], size_t n,
                              uint64_t seed, bool input_gradient) {
    const int batches[] = {1, 2, 5};
    for (size_t i = 0; i < n; i++) {
        const int *v = rows[i];
        sw_conv_geom g = geom(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]);
        for (int bi = 0; bi < 3; bi++) {
            sw_conv2d_desc d = {.batch = batches[bi], .out_channels = v[11], .groups = 1, .geom = g};
            assert_true(sw_conv_tiled_suits(&d, SW_CONV2D_FORWARD));
            assert_int_equal(sw_conv_tiled_suits(&d, SW_CONV2D_BACKWARD_INPUT), input_gradient);
            assert_false(sw_conv_tiled_suits(&d, SW_CONV2D_BACKWARD_PARAMS));
            check_conv_kernels(tiled, &d, seed + i * 10 + (uint64_t)bi, input_gradient);
        }
    }
}

/* The register-tiled kernels (AVX-512) agree with the seven loops: a one-channel stem, output
 * channel counts that fill blocks of 8, need a last block of 4 or a padded one, 7x7 images
 * (tiles of 32 columns), no padding, dilation with a non-square kernel, 5x5, and batches that
 * share one sample's tiles among the threads (1) or hand out samples (2, 5); with an
 * epilogue (and one that max-pools, one that adds a residual), and both ways of writing the
 * input gradient; strided forwards through phase planes. On a CPU without AVX-512 nothing may
 * pick them. Columns as in geoms[], then the output channels. */
static void test_layers_conv_tiled_matches_naive(void **state) {
    (void)state;
    sw_conv2d_desc stage1 = {.batch = 4, .out_channels = 32, .groups = 1,
                             .geom = geom(32, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1)};
    if (!sw_conv_tiled_available()) {
        for (int pass = SW_CONV2D_FORWARD; pass <= SW_CONV2D_BACKWARD_PARAMS; pass++)
            assert_false(sw_conv_tiled_suits(&stage1, (sw_conv2d_pass)pass));
        return;
    }
    static const int tiled_geoms[][12] = {
        {1, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 16}, /* the stem */
        {16, 14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 13}, /* a last block of 8 with 3 dropped rows;
                                                   * tiles of two 16-wide rows pool in place */
        {8, 13, 14, 3, 3, 1, 1, 1, 1, 1, 1, 8},   /* the same with an odd last row */
        {5, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 12},    /* 63 columns: tiles of 32; blocks 8 + 4 */
        {6, 12, 11, 3, 3, 1, 1, 0, 0, 1, 1, 3},   /* no padding; a single block of 4 */
        {7, 13, 12, 3, 2, 1, 1, 2, 1, 2, 3, 9},   /* dilation, non-square kernel and padding */
        {4, 11, 14, 5, 5, 1, 1, 2, 2, 1, 1, 8},
    };
    const conv_kernel_set tiled = {"tiled", sw_conv_tiled_scratch_floats, sw_conv_tiled_forward,
                                   sw_conv_tiled_backward_input, NULL, true};
    check_tiled_geoms(&tiled, tiled_geoms, sizeof tiled_geoms / sizeof tiled_geoms[0], 1700,
                      true);
    /* one sample with enough FLOPs that the threads share its blocks of channels */
    sw_conv2d_desc shared = {.batch = 1, .out_channels = 32, .groups = 1,
                             .geom = geom(48, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1)};
    check_conv_kernels(&tiled, &shared, 1780, true);
    /* padding wider than dil*(k-1): the forward is tiled, the input gradient is not */
    sw_conv2d_desc wide_pad = {.batch = 3, .out_channels = 5, .groups = 1,
                               .geom = geom(4, 10, 10, 3, 3, 1, 1, 3, 3, 1, 1)};
    assert_true(sw_conv_tiled_suits(&wide_pad, SW_CONV2D_FORWARD));
    assert_false(sw_conv_tiled_suits(&wide_pad, SW_CONV2D_BACKWARD_INPUT));
    check_conv_kernels(&tiled, &wide_pad, 1790, false);
    /* strided forwards, through phase planes: the ResNet's downsampling 3x3, odd sizes, a
     * stride of (2, 1), dilation, a padding that starts the phases on odd columns; their input
     * gradients are not tiled */
    static const int strided_geoms[][12] = {
        {16, 28, 28, 3, 3, 2, 2, 1, 1, 1, 1, 32},
        {3, 14, 17, 3, 5, 2, 2, 1, 3, 1, 1, 13},
        {5, 13, 11, 3, 3, 2, 2, 1, 1, 1, 1, 9},
        {6, 12, 15, 3, 2, 2, 1, 1, 0, 1, 1, 4},
        {4, 15, 14, 3, 3, 2, 2, 2, 2, 2, 2, 8},
        {4, 30, 30, 3, 3, 2, 2, 1, 1, 1, 1, 5}, /* 16-wide phase rows, 15 of them: pools in place */
    };
    check_tiled_geoms(&tiled, strided_geoms, sizeof strided_geoms / sizeof strided_geoms[0],
                      1800, false);
    /* and who does not take them: stride 3, grouped, 1x1 (strided or not) */
    sw_conv2d_desc strided = {.batch = 4, .out_channels = 8, .groups = 1,
                              .geom = geom(16, 28, 28, 3, 3, 3, 3, 1, 1, 1, 1)};
    sw_conv2d_desc grouped = {.batch = 4, .out_channels = 16, .groups = 2,
                              .geom = geom(16, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1)};
    sw_conv2d_desc pointwise = {.batch = 4, .out_channels = 16, .groups = 1,
                                .geom = geom(16, 28, 28, 1, 1, 1, 1, 0, 0, 1, 1)};
    assert_false(sw_conv_tiled_suits(&strided, SW_CONV2D_FORWARD));
    assert_false(sw_conv_tiled_suits(&grouped, SW_CONV2D_FORWARD));
    assert_false(sw_conv_tiled_suits(&pointwise, SW_CONV2D_FORWARD));
    pointwise.geom = geom(16, 28, 28, 1, 1, 2, 2, 0, 0, 1, 1);
    assert_false(sw_conv_tiled_suits(&pointwise, SW_CONV2D_FORWARD));
    assert_true(sw_conv_tiled_suits(&stage1, SW_CONV2D_FORWARD));
}

/* A Conv2d asked to fold a max-pool or a residual its kernel cannot apply (a grouped layer,
 * which the tiled kernel never takes) refuses with a message, instead of writing something
 * else; so does one asked for both at once. */
static void test_layers_conv_refuses_unfoldable_epilogue(void **state) {
    (void)state;
    sw_layer_hparams hp = conv_hp(4, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, true);
    sw_layer *l = make_layer(SW_LAYER_CONV2D, &hp);
    sw_tensor *x = rand_tensor(sw_shape_4d(2, 4, 6, 6), 950, -1, 1);
    sw_harness h;
    assert_int_equal(sw_harness_init(&h, l, &x, 1, false, 5), SW_OK);
    assert_int_equal(sw_harness_forward(&h), SW_OK); /* sets up h.io */
    sw_epilogue pool = {.pool2x2 = true};
    assert_int_equal(l->ops->forward_fused(l, &h.io, &pool), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "2x2 max-pool"));
    assert_non_null(strstr(sw_error_message(), "please report it"));
    sw_epilogue skip = {.residual = x->data};
    assert_int_equal(l->ops->forward_fused(l, &h.io, &skip), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "residual Add"));
    sw_epilogue both = {.pool2x2 = true, .residual = x->data};
    assert_int_equal(l->ops->forward_fused(l, &h.io, &both), SW_ERR_ARG);
    assert_non_null(strstr(sw_error_message(), "max-pool and a residual Add"));
    sw_harness_deinit(&h);
    sw_tensor_free(x);
    sw_layer_free(l);
}

/* Linear (one sgemm per pass, multithreaded by OpenBLAS at this size) agrees with the triple
 * loop in double for its output and all three gradients. */
static void test_layers_linear_matches_naive(void **state) {
    (void)state;
    const int rows = 67, in = 129, out = 35;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = in, hp.out_features = out;
    sw_layer *l = make_layer(SW_LAYER_LINEAR, &hp);
    sw_tensor *x = rand_tensor(sw_shape_2d(rows, in), 900, -1, 1);
    sw_tensor *dy = rand_tensor(sw_shape_2d(rows, out), 901, -1, 1);
    sw_harness h;
    assert_int_equal(sw_harness_init(&h, l, &x, 1, true, 4), SW_OK);
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    sw_tensor dx;
    assert_int_equal(sw_tensor_init(&dx, &x->shape), SW_OK);
    sw_tensor *dxp = &dx, *dp[SW_MAX_PARAMS] = {&l->params[0].grad, &l->params[1].grad};
    sw_tensor_zero(dp[0]), sw_tensor_zero(dp[1]);
    assert_int_equal(sw_harness_backward(&h, dy, &dxp, dp), SW_OK);
    const float *w = l->params[0].value.data, *b = l->params[1].value.data;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int i = 0; i < in; i++) acc += (double)x->data[r * in + i] * w[o * in + i];
            assert_float_equal(h.out.data[r * out + o], acc, 1e-4);
        }
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < in; i++) {
            double acc = 0;
            for (int o = 0; o < out; o++) acc += (double)dy->data[r * out + o] * w[o * in + i];
            assert_float_equal(dx.data[r * in + i], acc, 1e-4);
        }
    for (int o = 0; o < out; o++) {
        double db = 0;
        for (int r = 0; r < rows; r++) db += dy->data[r * out + o];
        assert_float_equal(dp[1]->data[o], db, 1e-4);
        for (int i = 0; i < in; i++) {
            double acc = 0;
            for (int r = 0; r < rows; r++)
                acc += (double)dy->data[r * out + o] * x->data[r * in + i];
            assert_float_equal(dp[0]->data[o * in + i], acc, 1e-4);
        }
    }
    sw_tensor_deinit(&dx);
    sw_harness_deinit(&h);
    sw_tensor_free(x), sw_tensor_free(dy);
    sw_layer_free(l);
}

/* Pooling kernels agree with their oracles on every geometry (max: values and argmax, also
 * with NaNs, which win as in PyTorch). */
static void test_layers_pool_fast_matches_naive(void **state) {
    (void)state;
    for (size_t i = 0; i < N_GEOMS + 2; i++) {
        /* the last two rounds are the 2x2/2 case that has its own vector path (9 columns:
         * two groups of four and a scalar tail), the second one with NaNs planted */
        sw_conv_geom g = i < N_GEOMS ? geom_at(i) : geom(1, 10, 19, 2, 2, 2, 2, 0, 0, 1, 1);
        if (g.pad_h > g.kernel_h / 2 || g.pad_w > g.kernel_w / 2) continue;
        long planes = 3L * g.channels;
        size_t in = (size_t)planes * g.height * g.width, out = (size_t)planes * g.out_h * g.out_w;
        sw_tensor *x = rand_tensor(sw_shape_1d((int)in), 400 + i, -1, 1);
        sw_tensor *dy = rand_tensor(sw_shape_1d((int)out), 500 + i, -1, 1);
        float *y1 = malloc(out * 4), *y2 = malloc(out * 4);
        int32_t *a1 = malloc(out * 4), *a2 = malloc(out * 4);
        float *dx1 = calloc(in, 4), *dx2 = calloc(in, 4);
        assert_true(y1 && y2 && a1 && a2 && dx1 && dx2);
        if (i == N_GEOMS + 1)
            for (size_t k = 0; k < in; k += 7) x->data[k] = NAN;
        sw_maxpool2d_forward(y1, a1, x->data, planes, &g);
        sw_maxpool2d_forward_naive(y2, a2, x->data, planes, &g);
        assert_memory_equal(a1, a2, out * 4);
        for (size_t k = 0; k < out; k++) {
            assert_true(isnan(y1[k]) == isnan(y2[k]));
            if (!isnan(y2[k])) assert_float_equal(y1[k], y2[k], 0);
        }
        /* max-pool backward: overwriting (dx1 held NaN) equals adding onto zeros */
        for (size_t k = 0; k < in; k++) dx1[k] = NAN;
        sw_maxpool2d_backward(dx1, dy->data, a1, planes, &g, false);
        sw_maxpool2d_backward(dx2, dy->data, a1, planes, &g, true);
        assert_memory_equal(dx1, dx2, in * 4);
        memset(dx1, 0, in * 4), memset(dx2, 0, in * 4);
        bool dilated = g.dil_h != 1 || g.dil_w != 1;
        if (!dilated && i != N_GEOMS + 1) {
            sw_avgpool2d_forward(y1, x->data, planes, &g);
            sw_avgpool2d_forward_naive(y2, x->data, planes, &g);
            sw_test_assert_close(y1, y2, out, 1e-6f, 1e-5f, "avgpool forward");
            sw_avgpool2d_backward(dx1, dy->data, planes, &g);
            sw_avgpool2d_backward_naive(dx2, dy->data, planes, &g);
            sw_test_assert_close(dx1, dx2, in, 1e-6f, 1e-5f, "avgpool backward");
        }
        free(y1), free(y2), free(a1), free(a2), free(dx1), free(dx2);
        sw_tensor_free(x), sw_tensor_free(dy);
    }
}

/* The clamp derivative (ReLU, ReLU6) overwrites when told dx holds nothing: the same values as
 * adding onto zeros, and an infinite or NaN old dx leaves no trace. Above the size where the
 * kernel goes parallel, to take that path too. */
static void test_layers_clamp_backward_overwrites(void **state) {
    (void)state;
    const size_t n = 1 << 18;
    sw_tensor *x = rand_tensor(sw_shape_1d((int)n), 61, -8, 8);
    sw_tensor *dy = rand_tensor(sw_shape_1d((int)n), 62, -1, 1);
    float *a = malloc(n * 4), *b = calloc(n, 4);
    assert_true(a && b);
    for (size_t k = 0; k < n; k++) a[k] = k % 2 ? NAN : INFINITY;
    sw_vec_clamp_backward(a, dy->data, x->data, 0.0f, 6.0f, n, false);
    sw_vec_clamp_backward(b, dy->data, x->data, 0.0f, 6.0f, n, true);
    assert_memory_equal(a, b, n * 4);
    sw_vec_clamp_backward(a, dy->data, x->data, 0.0f, 6.0f, n, true);
    for (size_t k = 0; k < n; k++) assert_true(a[k] == 2.0f * b[k]);
    free(a), free(b);
    sw_tensor_free(x), sw_tensor_free(dy);
}

/* BatchNorm's fused forward (statistics + normalisation) and backward (sums + input gradient)
 * agree with double-precision oracles, in both modes, also for a channel whose values sit far
 * from zero (where a one-pass variance would cancel). */
static void test_layers_batchnorm_fast_matches_naive(void **state) {
    (void)state;
    const int n = 4, c = 3, s = 50;
    const size_t total = (size_t)n * c * s;
    sw_tensor *x = rand_tensor(sw_shape_3d(n, c, s), 600, -1, 1);
    sw_tensor *dy = rand_tensor(sw_shape_3d(n, c, s), 601, -1, 1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < s; j++) x->data[(i * c + 2) * s + j] += 1000.0f;
    float m1[3], m2[3], is1[3], is2[3], v1[3], v2[3], g1[3], g2[3], gx1[3], gx2[3];
    const float gamma[3] = {0.5f, 1.0f, 2.0f}, beta[3] = {0.1f, -0.2f, 0.3f};
    float *y = calloc(total, 4), *dx1 = calloc(total, 4), *dx2 = calloc(total, 4);
    assert_true(y && dx1 && dx2);
    sw_batchnorm_forward(y, m1, is1, v1, x->data, gamma, beta, 1, n, c, s, 1e-5f);
    sw_batchnorm_stats_naive(m2, is2, v2, x->data, n, c, s, 1e-5f);
    sw_test_assert_close(m1, m2, 3, 0, 1e-6f, "mean");
    sw_test_assert_close(v1, v2, 3, 1e-7f, 1e-3f, "variance");
    sw_test_assert_close(is1, is2, 3, 0, 1e-3f, "invstd");
    for (int ch = 0; ch < c; ch++) {
        float xv = x->data[(1 * c + ch) * s + 7],
              want = (xv - m2[ch]) * is2[ch] * gamma[ch] + beta[ch];
        assert_float_equal(y[(1 * c + ch) * s + 7], want, 2e-3);
    }
    for (int mode = 0; mode < 2; mode++) {
        memset(dx2, 0, total * 4);
        for (size_t k = 0; k < total; k++) dx1[k] = NAN; /* overwritten, never read */
        sw_batchnorm_backward(dx1, g1, gx1, dy->data, x->data, m2, is2, gamma, mode, n, c, s,
                              false);
        sw_batchnorm_backward_naive(dx2, g2, gx2, dy->data, x->data, m2, is2, gamma, mode, n, c, s);
        sw_test_assert_close(g1, g2, 3, 1e-5f, 1e-5f, "sum dy");
        sw_test_assert_close(gx1, gx2, 3, 1e-4f, 1e-4f, "sum dy*xhat");
        sw_test_assert_close(dx1, dx2, total, 1e-4f, 1e-3f, "bn input gradient");
        sw_batchnorm_backward(dx1, g1, gx1, dy->data, x->data, m2, is2, gamma, mode, n, c, s,
                              true);
        sw_batchnorm_backward_naive(dx2, g2, gx2, dy->data, x->data, m2, is2, gamma, mode, n, c, s);
        sw_test_assert_close(dx1, dx2, total, 1e-4f, 1e-3f, "bn input gradient, added");
        /* sums alone (no dx) are the same numbers */
        sw_batchnorm_backward(NULL, g1, gx1, dy->data, x->data, m2, is2, gamma, mode, n, c, s,
                              true);
        sw_test_assert_close(gx1, gx2, 3, 1e-4f, 1e-4f, "sum dy*xhat without dx");
    }
    free(y), free(dx1), free(dx2);
    sw_tensor_free(x), sw_tensor_free(dy);
}

/* BatchNorm's parameter gradients are the same whether or not an input pass ran first (the
 * input pass caches the sums for the parameter pass), and a second parameter pass with the
 * same dout accumulates the same amount again. */
static void test_layers_batchnorm_param_grads_without_input_pass(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 3;
    sw_layer *l = make_layer(SW_LAYER_BATCHNORM2D, &hp);
    sw_tensor *x = rand_tensor(sw_shape_4d(2, 3, 4, 5), 610, -1, 1);
    sw_tensor *dy = rand_tensor(sw_shape_4d(2, 3, 4, 5), 611, -1, 1);
    sw_harness h;
    assert_int_equal(sw_harness_init(&h, l, &x, 1, true, 3), SW_OK);
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    sw_tensor *dp[SW_MAX_PARAMS] = {&l->params[0].grad, &l->params[1].grad};
    float alone[6], twice[6], with_input[6];
    sw_tensor_zero(dp[0]), sw_tensor_zero(dp[1]);
    assert_int_equal(l->ops->backward_params(l, &h.io, dy, dp), SW_OK);
    memcpy(alone, dp[0]->data, 12), memcpy(alone + 3, dp[1]->data, 12);
    assert_int_equal(l->ops->backward_params(l, &h.io, dy, dp), SW_OK);
    memcpy(twice, dp[0]->data, 12), memcpy(twice + 3, dp[1]->data, 12);
    sw_tensor dx;
    assert_int_equal(sw_tensor_init(&dx, &x->shape), SW_OK);
    sw_tensor *dxp = &dx;
    sw_tensor_zero(dp[0]), sw_tensor_zero(dp[1]);
    assert_int_equal(sw_harness_backward(&h, dy, &dxp, dp), SW_OK);
    memcpy(with_input, dp[0]->data, 12), memcpy(with_input + 3, dp[1]->data, 12);
    for (int i = 0; i < 6; i++) {
        assert_float_equal(with_input[i], alone[i], 1e-6);
        assert_float_equal(twice[i], 2 * alone[i], 1e-5);
    }
    sw_tensor_deinit(&dx);
    sw_harness_deinit(&h);
    sw_tensor_free(x), sw_tensor_free(dy);
    sw_layer_free(l);
}

/* ---- BatchNorm statistics and modes ----------------------------------------------------- */

/* Two training forwards move the running statistics by momentum towards the batch mean and the
 * unbiased batch variance, and the output is normalised with the biased batch variance; an
 * evaluation forward then uses the running statistics and leaves them unchanged. */
static void test_layers_batchnorm_running_stats_and_modes(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 2;
    hp.momentum = 0.25f;
    sw_layer *l = make_layer(SW_LAYER_BATCHNORM2D, &hp);
    /* channel 0 holds 1..8, channel 1 holds 8 copies of 2 with one 10 */
    sw_tensor *x = rand_tensor(sw_shape_4d(2, 2, 2, 2), 1, 0, 1);
    for (int n = 0; n < 2; n++)
        for (int j = 0; j < 4; j++) {
            x->data[(n * 2 + 0) * 4 + j] = (float)(n * 4 + j + 1);
            x->data[(n * 2 + 1) * 4 + j] = (n == 1 && j == 3) ? 10.0f : 2.0f;
        }
    sw_harness h;
    assert_int_equal(sw_harness_init(&h, l, &x, 1, true, 5), SW_OK);
    float *gamma = l->params[0].value.data, *beta = l->params[1].value.data;
    float *rm = l->params[2].value.data, *rv = l->params[3].value.data;
    gamma[0] = gamma[1] = 1.0f, beta[0] = beta[1] = 0.0f;
    rm[0] = rm[1] = 0.0f, rv[0] = rv[1] = 1.0f;
    /* channel 0: mean 4.5, biased var 5.25, unbiased 6; channel 1: mean 3, biased 7, unbiased 8 */
    const double mean[2] = {4.5, 3.0}, var_b[2] = {5.25, 7.0}, var_u[2] = {6.0, 8.0};
    double em[2] = {0, 0}, ev[2] = {1, 1};
    for (int step = 0; step < 2; step++) {
        assert_int_equal(sw_harness_forward(&h), SW_OK);
        for (int c = 0; c < 2; c++) {
            em[c] = 0.75 * em[c] + 0.25 * mean[c];
            ev[c] = 0.75 * ev[c] + 0.25 * var_u[c];
            assert_float_equal(rm[c], em[c], 1e-5);
            assert_float_equal(rv[c], ev[c], 1e-5);
        }
        float want = (float)((1.0 - 4.5) / sqrt(5.25 + 1e-5)); /* x[0,0,0,0] = 1 */
        assert_float_equal(h.out.data[0], want, 1e-5);
    }
    h.training = false;
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    assert_float_equal(rm[0], em[0], 1e-6);
    assert_float_equal(rv[1], ev[1], 1e-6);
    for (int c = 0; c < 2; c++) {
        float xv = x->data[c * 4];
        float want = (float)((xv - em[c]) / sqrt(ev[c] + 1e-5));
        assert_float_equal(h.out.data[c * 4], want, 1e-5);
    }
    (void)var_b;
    sw_harness_deinit(&h);
    sw_tensor_free(x);
    sw_layer_free(l);
}

/* Training BatchNorm on one value per channel is an error (PyTorch refuses it too); in
 * evaluation the same input is fine. */
static void test_layers_batchnorm_single_value_rejected(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM1D);
    hp.num_features = 3;
    sw_layer *l = make_layer(SW_LAYER_BATCHNORM1D, &hp);
    sw_tensor *x = rand_tensor(sw_shape_2d(1, 3), 1, -1, 1);
    sw_harness h;
    assert_int_equal(sw_harness_init(&h, l, &x, 1, true, 1), SW_OK);
    assert_int_equal(sw_harness_forward(&h), SW_ERR_SHAPE);
    assert_non_null(strstr(sw_error_message(), "more than one value"));
    h.training = false;
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    sw_harness_deinit(&h);
    sw_tensor_free(x);
    sw_layer_free(l);
}

/* ---- Dropout ---------------------------------------------------------------------------- */

/* Training Dropout zeroes about p of the values, scales the rest by 1/(1-p), repeats itself for
 * the same seed, and its gradient uses the same mask; evaluation is the identity; p = 1 zeroes
 * everything. */
static void test_layers_dropout_behaviour(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_DROPOUT);
    hp.p = 0.25f;
    sw_layer *l = make_layer(SW_LAYER_DROPOUT, &hp);
    sw_tensor *x = rand_tensor(sw_shape_2d(40, 100), 7, 1, 2);
    sw_harness h;
    assert_int_equal(sw_harness_init(&h, l, &x, 1, true, 42), SW_OK);
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    int zeros = 0;
    for (size_t i = 0; i < x->numel; i++) {
        if (h.out.data[i] == 0.0f)
            zeros++;
        else
            assert_float_equal(h.out.data[i], x->data[i] / 0.75f, 1e-6);
    }
    /* 4000 draws, p = 0.25: the count is 1000 +- 27 (one sigma) */
    assert_true(zeros > 880 && zeros < 1120);
    float first = h.out.data[0];
    sw_tensor dy, dx;
    assert_int_equal(sw_tensor_init(&dy, &x->shape), SW_OK);
    assert_int_equal(sw_tensor_init(&dx, &x->shape), SW_OK);
    sw_tensor_fill(&dy, 1.0f);
    sw_tensor *dxp = &dx;
    assert_int_equal(sw_harness_backward(&h, &dy, &dxp, NULL), SW_OK);
    for (size_t i = 0; i < x->numel; i++)
        assert_float_equal(dx.data[i], h.out.data[i] == 0.0f ? 0.0f : 1.0f / 0.75f, 1e-6);
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    assert_float_equal(h.out.data[0], first, 0);
    h.training = false;
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    assert_memory_equal(h.out.data, x->data, x->numel * sizeof(float));
    sw_harness_deinit(&h);
    sw_layer_free(l);

    hp.p = 1.0f;
    l = make_layer(SW_LAYER_DROPOUT, &hp);
    assert_int_equal(sw_harness_init(&h, l, &x, 1, true, 42), SW_OK);
    assert_int_equal(sw_harness_forward(&h), SW_OK);
    for (size_t i = 0; i < x->numel; i++) assert_float_equal(h.out.data[i], 0.0f, 0);
    sw_harness_deinit(&h);
    sw_layer_free(l);
    sw_tensor_deinit(&dy);
    sw_tensor_deinit(&dx);
    sw_tensor_free(x);
}

/* ---- declarations, shapes, FLOPs, errors ------------------------------------------------ */

/* Layers declare PyTorch's parameter names and shapes; BatchNorm's running statistics are
 * buffers (not trainable). */
static void test_layers_param_declarations(void **state) {
    (void)state;
    sw_layer_hparams hp = conv_hp(6, 8, 3, 2, 1, 1, 0, 0, 1, 1, 2, true);
    sw_layer *l = make_layer(SW_LAYER_CONV2D, &hp);
    assert_int_equal(l->n_params, 2);
    assert_string_equal(l->params[0].name, "weight");
    assert_string_equal(l->params[1].name, "bias");
    assert_int_equal(l->param_shapes[0].ndim, 4);
    assert_int_equal(l->param_shapes[0].dims[0], 8);
    assert_int_equal(l->param_shapes[0].dims[1], 3);
    assert_int_equal(l->param_shapes[0].dims[2], 3);
    assert_int_equal(l->param_shapes[0].dims[3], 2);
    sw_layer_free(l);
    hp.bias = false;
    l = make_layer(SW_LAYER_CONV2D, &hp);
    assert_int_equal(l->n_params, 1);
    sw_layer_free(l);

    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 5;
    l = make_layer(SW_LAYER_BATCHNORM2D, &hp);
    assert_int_equal(l->n_params, 4);
    const char *names[] = {"weight", "bias", "running_mean", "running_var"};
    for (int p = 0; p < 4; p++) {
        assert_string_equal(l->params[p].name, names[p]);
        assert_int_equal(l->params[p].trainable, p < 2);
        assert_int_equal(l->param_shapes[p].dims[0], 5);
    }
    sw_layer_free(l);

    hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 3, hp.out_features = 2;
    l = make_layer(SW_LAYER_LINEAR, &hp);
    assert_int_equal(l->param_shapes[0].dims[0], 2);
    assert_int_equal(l->param_shapes[0].dims[1], 3);
    sw_layer_free(l);
}

/* infer_shape gives PyTorch's output sizes and FLOPs count a multiply-add as 2. */
static void test_layers_shapes_and_flops(void **state) {
    (void)state;
    sw_shape out;
    sw_layer_hparams hp = conv_hp(32, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, true);
    sw_layer *l = make_layer(SW_LAYER_CONV2D, &hp);
    sw_shape in = sw_shape_3d(32, 14, 14);
    assert_int_equal(l->ops->infer_shape(l, &in, 1, &out), SW_OK);
    assert_int_equal(out.dims[0], 64);
    assert_int_equal(out.dims[1], 14);
    assert_int_equal(out.dims[2], 14);
    assert_float_equal(l->ops->flops(l, &in, 1, &out), 64.0 * 196 * (2 * 288 + 1), 0.5);
    sw_layer_free(l);

    hp = conv_hp(3, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, false); /* (9 + 4 - 4 - 1)/2 + 1 = 5 */
    l = make_layer(SW_LAYER_CONV2D, &hp);
    in = sw_shape_3d(3, 9, 10);
    assert_int_equal(l->ops->infer_shape(l, &in, 1, &out), SW_OK);
    assert_int_equal(out.dims[1], 5);
    assert_int_equal(out.dims[2], 5);
    sw_layer_free(l);

    hp = pool_hp(SW_LAYER_MAXPOOL2D, 3, 2, 1);
    l = make_layer(SW_LAYER_MAXPOOL2D, &hp);
    in = sw_shape_3d(2, 7, 8);
    assert_int_equal(l->ops->infer_shape(l, &in, 1, &out), SW_OK);
    assert_int_equal(out.dims[1], 4);
    assert_int_equal(out.dims[2], 4);
    sw_layer_free(l);

    hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 3136, hp.out_features = 256;
    l = make_layer(SW_LAYER_LINEAR, &hp);
    in = sw_shape_1d(3136);
    assert_int_equal(l->ops->infer_shape(l, &in, 1, &out), SW_OK);
    assert_float_equal(l->ops->flops(l, &in, 1, &out), 2.0 * 3136 * 256 + 256, 0.5);
    sw_layer_free(l);

    hp = sw_layer_hparams_default(SW_LAYER_CONCAT);
    l = make_layer(SW_LAYER_CONCAT, &hp);
    sw_shape ins[2] = {sw_shape_3d(3, 4, 4), sw_shape_3d(5, 4, 4)};
    assert_int_equal(l->ops->infer_shape(l, ins, 2, &out), SW_OK);
    assert_int_equal(out.dims[0], 8);
    sw_layer_free(l);
}

/* Expects sw_layer_new to fail with `status` and a message containing `needle`. */
static void expect_bad_hp(sw_layer_kind kind, const sw_layer_hparams *hp, const char *needle) {
    sw_layer *l = NULL;
    sw_error_clear();
    sw_status st = sw_layer_new(kind, hp, &l);
    if (st == SW_OK)
        fail_msg("%s accepted bad hyper-parameters (%s)", sw_layer_kind_name(kind), needle);
    assert_int_equal(st, SW_ERR_CONFIG);
    if (!strstr(sw_error_message(), needle))
        fail_msg("message \"%s\" does not mention \"%s\"", sw_error_message(), needle);
}

/* Out-of-range hyper-parameters are refused with a message naming the parameter and value. */
static void test_layers_bad_hparams_rejected(void **state) {
    (void)state;
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 0, hp.out_features = 3;
    expect_bad_hp(SW_LAYER_LINEAR, &hp, "in_features must be >= 1, got 0");
    hp.in_features = 3, hp.out_features = -2;
    expect_bad_hp(SW_LAYER_LINEAR, &hp, "out_features");

    hp = conv_hp(4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 4, true);
    expect_bad_hp(SW_LAYER_CONV2D, &hp, "groups=4");
    hp = conv_hp(4, 6, 3, 3, 0, 1, 1, 1, 1, 1, 1, true);
    expect_bad_hp(SW_LAYER_CONV2D, &hp, "stride[0]");
    hp = conv_hp(4, 6, 3, 0, 1, 1, 1, 1, 1, 1, 1, true);
    expect_bad_hp(SW_LAYER_CONV2D, &hp, "kernel[1]");
    hp = conv_hp(4, 6, 3, 3, 1, 1, -1, 1, 1, 1, 1, true);
    expect_bad_hp(SW_LAYER_CONV2D, &hp, "padding[0]");
    hp = conv_hp(4, 6, 3, 3, 1, 1, 1, 1, 1, 0, 1, true);
    expect_bad_hp(SW_LAYER_CONV2D, &hp, "dilation[1]");
    hp = conv_hp(0, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, true);
    expect_bad_hp(SW_LAYER_CONV2D, &hp, "in_channels");

    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 0;
    expect_bad_hp(SW_LAYER_BATCHNORM2D, &hp, "num_features");
    hp.num_features = 3, hp.eps = 0.0f;
    expect_bad_hp(SW_LAYER_BATCHNORM1D, &hp, "eps");
    hp.eps = 1e-5f, hp.momentum = 1.5f;
    expect_bad_hp(SW_LAYER_BATCHNORM2D, &hp, "momentum");

    hp = pool_hp(SW_LAYER_MAXPOOL2D, 2, 2, 2);
    expect_bad_hp(SW_LAYER_MAXPOOL2D, &hp, "padding[0]=2");
    hp = pool_hp(SW_LAYER_AVGPOOL2D, 0, 2, 0);
    expect_bad_hp(SW_LAYER_AVGPOOL2D, &hp, "kernel[0]");
    hp = pool_hp(SW_LAYER_AVGPOOL2D, 2, 2, 0);
    hp.dilation[0] = 2;
    expect_bad_hp(SW_LAYER_AVGPOOL2D, &hp, "dilation");

    hp = sw_layer_hparams_default(SW_LAYER_DROPOUT);
    hp.p = 1.5f;
    expect_bad_hp(SW_LAYER_DROPOUT, &hp, "p must be");
    hp.p = NAN;
    expect_bad_hp(SW_LAYER_DROPOUT, &hp, "p must be");
}

/* Expects infer_shape to fail with SW_ERR_SHAPE and a message containing `needle`. */
static void expect_bad_shape(sw_layer *l, const sw_shape *in, int n_in, const char *needle) {
    sw_shape out;
    sw_error_clear();
    assert_int_equal(l->ops->infer_shape(l, in, n_in, &out), SW_ERR_SHAPE);
    if (!strstr(sw_error_message(), needle))
        fail_msg("message \"%s\" does not mention \"%s\"", sw_error_message(), needle);
}

/* Inputs that do not fit a layer are refused with both shapes in the message, also when the
 * layer is added to a model (the message then names the node). */
static void test_layers_bad_shapes_rejected(void **state) {
    (void)state;
    sw_layer_hparams hp = conv_hp(3, 4, 5, 5, 1, 1, 0, 0, 1, 1, 1, true);
    sw_layer *conv = make_layer(SW_LAYER_CONV2D, &hp);
    sw_shape s = sw_shape_3d(2, 8, 8);
    expect_bad_shape(conv, &s, 1, "in_channels=3");
    s = sw_shape_3d(3, 4, 8);
    expect_bad_shape(conv, &s, 1, "smaller than the dilated kernel");
    s = sw_shape_1d(3);
    expect_bad_shape(conv, &s, 1, "[C, H, W]");

    hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 10, hp.out_features = 2;
    sw_layer *lin = make_layer(SW_LAYER_LINEAR, &hp);
    s = sw_shape_3d(1, 28, 28);
    expect_bad_shape(lin, &s, 1, "[1, 28, 28]");

    hp = sw_layer_hparams_default(SW_LAYER_ADD);
    sw_layer *add = make_layer(SW_LAYER_ADD, &hp);
    sw_shape two[2] = {sw_shape_3d(3, 4, 4), sw_shape_3d(3, 4, 5)};
    expect_bad_shape(add, two, 2, "[3, 4, 5]");
    hp = sw_layer_hparams_default(SW_LAYER_CONCAT);
    sw_layer *cat = make_layer(SW_LAYER_CONCAT, &hp);
    expect_bad_shape(cat, two, 2, "outside the channel dimension");
    sw_shape out;
    assert_int_equal(add->ops->infer_shape(add, two, 1, &out), SW_ERR_ARG); /* one input */
    assert_int_equal(cat->ops->infer_shape(cat, two, 0, &out), SW_ERR_ARG);
    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 4;
    sw_layer *bn = make_layer(SW_LAYER_BATCHNORM2D, &hp);
    expect_bad_shape(bn, two, 1, "num_features=4");
    hp = pool_hp(SW_LAYER_MAXPOOL2D, 3, 3, 0);
    sw_layer *pool = make_layer(SW_LAYER_MAXPOOL2D, &hp);
    s = sw_shape_3d(2, 2, 9);
    expect_bad_shape(pool, &s, 1, "smaller than the 3x3 window");

    /* through a model: the node is named, the model survives */
    sw_model *m = NULL;
    sw_shape input = sw_shape_3d(1, 28, 28);
    assert_int_equal(sw_model_new("t", &input, &m), SW_OK);
    assert_int_equal(sw_model_add(m, "fc", lin, NULL, 0, NULL), SW_ERR_SHAPE);
    assert_non_null(strstr(sw_error_message(), "fc"));
    sw_model_free(m);
    sw_layer_free(conv), sw_layer_free(add), sw_layer_free(cat), sw_layer_free(bn);
    sw_layer_free(pool);
}

/* ---- through a model -------------------------------------------------------------------- */

/* Adds node `name` of `kind` on `inputs` (NULL: the previous node) to a model under test. */
static void add_node(sw_model *m, const char *name, sw_layer_kind kind, const sw_layer_hparams *hp,
                     const char *const *inputs, int n_inputs) {
    if (sw_model_add(m, name, make_layer(kind, hp), inputs, n_inputs, NULL) != SW_OK)
        fail_msg("adding %s: %s", name, sw_error_message());
}

/* In a small model where one BatchNorm output feeds three consumers (a 1x1 conv, a residual
 * Add and a Concat), trained with cross-entropy, the executor's parameter gradients match
 * central differences of the loss: the layers' accumulating backward passes compose. The model
 * is smooth (no ReLU or max), so no finite-difference step can cross a kink. */
static void test_layers_model_gradients(void **state) {
    (void)state;
    sw_model *m = NULL;
    sw_shape input = sw_shape_3d(2, 6, 6);
    assert_int_equal(sw_model_new("tiny", &input, &m), SW_OK);
    sw_layer_hparams hp = conv_hp(2, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, true);
    add_node(m, "conv", SW_LAYER_CONV2D, &hp, NULL, 0);
    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 4;
    add_node(m, "bn", SW_LAYER_BATCHNORM2D, &hp, NULL, 0);
    hp = conv_hp(4, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1, false);
    add_node(m, "proj", SW_LAYER_CONV2D, &hp, NULL, 0);
    const char *add_in[] = {"bn", "proj"};
    hp = sw_layer_hparams_default(SW_LAYER_ADD);
    add_node(m, "add", SW_LAYER_ADD, &hp, add_in, 2);
    const char *cat_in[] = {"add", "bn"};
    hp = sw_layer_hparams_default(SW_LAYER_CONCAT);
    add_node(m, "cat", SW_LAYER_CONCAT, &hp, cat_in, 2);
    hp = pool_hp(SW_LAYER_AVGPOOL2D, 2, 2, 0);
    add_node(m, "pool", SW_LAYER_AVGPOOL2D, &hp, NULL, 0);
    hp = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    add_node(m, "flat", SW_LAYER_FLATTEN, &hp, NULL, 0);
    hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = 72, hp.out_features = 3;
    add_node(m, "fc", SW_LAYER_LINEAR, &hp, NULL, 0);
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_init_params(m, 3);
    sw_tensor *x = rand_tensor(sw_shape_4d(4, 2, 6, 6), 700, -1, 1);
    const int labels[4] = {0, 2, 1, 2};
    sw_tensor dlogits;
    const sw_tensor *out;
    double loss;
    assert_int_equal(sw_model_forward(m, x, &out), SW_OK);
    assert_int_equal(sw_tensor_init(&dlogits, &out->shape), SW_OK);
    assert_int_equal(sw_loss_cross_entropy(out, labels, 1.0f, &loss, &dlogits), SW_OK);
    sw_model_zero_grad(m);
    assert_int_equal(sw_model_backward(m, &dlogits), SW_OK);
    float *analytic = malloc(m->n_param_floats * sizeof(float));
    assert_non_null(analytic);
    memcpy(analytic, m->grad_data, m->n_param_floats * sizeof(float));
    for (size_t i = 0; i < m->n_param_floats; i++) {
        float keep = m->param_data[i];
        double f[2], step[2];
        for (int side = 0; side < 2; side++) {
            m->param_data[i] = keep + (side ? -1e-2f : 1e-2f);
            step[side] = fabs((double)m->param_data[i] - keep);
            assert_int_equal(sw_model_forward(m, x, &out), SW_OK);
            assert_int_equal(sw_loss_cross_entropy(out, labels, 1.0f, &f[side], NULL), SW_OK);
        }
        m->param_data[i] = keep;
        double numeric = (f[0] - f[1]) / (step[0] + step[1]);
        double err = fabs(numeric - analytic[i]);
        if (err > 1e-4 + 1e-2 * fabs(numeric))
            fail_msg("param %zu: analytic %.6g numeric %.6g", i, (double)analytic[i], numeric);
    }
    free(analytic);
    sw_tensor_deinit(&dlogits);
    sw_tensor_free(x);
    sw_model_free(m);
}

/* Runs one forward/backward of `m` on x with `threads` threads and returns a copy of the
 * gradients followed by the output (caller frees). */
static float *step_snapshot(sw_model *m, const sw_tensor *x, const int *labels, int threads) {
    sw_threads_set(threads);
    const sw_tensor *out;
    sw_tensor dl;
    double loss;
    assert_int_equal(sw_model_forward(m, x, &out), SW_OK);
    assert_int_equal(sw_tensor_init(&dl, &out->shape), SW_OK);
    assert_int_equal(sw_loss_cross_entropy(out, labels, 1.0f, &loss, &dl), SW_OK);
    sw_model_zero_grad(m);
    assert_int_equal(sw_model_backward(m, &dl), SW_OK);
    float *snap = malloc((m->n_param_floats + out->numel) * sizeof(float));
    assert_non_null(snap);
    memcpy(snap, m->grad_data, m->n_param_floats * sizeof(float));
    memcpy(snap + m->n_param_floats, out->data, out->numel * sizeof(float));
    sw_tensor_deinit(&dl);
    return snap;
}

/* A training step through our own parallel kernels (conv, BatchNorm, pooling) gives
 * bit-identical outputs and gradients on every run and for 1 or 2 threads: samples are
 * independent in forward, and the weight gradient adds its per-chunk partial sums in a fixed
 * order whichever thread computed them. (No Linear: OpenBLAS's own multithreaded sgemm rounds
 * differently from its single-threaded one.) */
static void test_layers_results_independent_of_threads(void **state) {
    (void)state;
    sw_model *m = NULL;
    sw_shape input = sw_shape_3d(3, 10, 10);
    assert_int_equal(sw_model_new("det", &input, &m), SW_OK);
    sw_layer_hparams hp = conv_hp(3, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, true);
    add_node(m, "conv", SW_LAYER_CONV2D, &hp, NULL, 0);
    hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = 8;
    add_node(m, "bn", SW_LAYER_BATCHNORM2D, &hp, NULL, 0);
    hp = sw_layer_hparams_default(SW_LAYER_RELU);
    add_node(m, "relu", SW_LAYER_RELU, &hp, NULL, 0);
    hp = pool_hp(SW_LAYER_MAXPOOL2D, 2, 2, 0);
    add_node(m, "pool", SW_LAYER_MAXPOOL2D, &hp, NULL, 0);
    hp = conv_hp(8, 8, 3, 3, 1, 1, 1, 1, 1, 1, 2, false);
    add_node(m, "conv2", SW_LAYER_CONV2D, &hp, NULL, 0);
    hp = sw_layer_hparams_default(SW_LAYER_GLOBAL_AVGPOOL);
    add_node(m, "gap", SW_LAYER_GLOBAL_AVGPOOL, &hp, NULL, 0);
    hp = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    add_node(m, "flat", SW_LAYER_FLATTEN, &hp, NULL, 0);
    assert_int_equal(sw_model_finalize(m), SW_OK);
    sw_model_init_params(m, 9);
    sw_tensor *x = rand_tensor(sw_shape_4d(13, 3, 10, 10), 800, -1, 1);
    int labels[13];
    for (int i = 0; i < 13; i++) labels[i] = i % 8;
    size_t n = m->n_param_floats + 13 * 8;
    int before = sw_threads_get();
    float *a = step_snapshot(m, x, labels, 1);
    float *b = step_snapshot(m, x, labels, 2);
    float *c = step_snapshot(m, x, labels, 2);
    sw_threads_set(before);
    assert_memory_equal(a, b, n * sizeof(float));
    assert_memory_equal(b, c, n * sizeof(float));
    free(a), free(b), free(c);
    sw_tensor_free(x);
    sw_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers_linear_gradients),
        cmocka_unit_test(test_layers_conv2d_gradients),
        cmocka_unit_test(test_layers_batchnorm2d_gradients),
        cmocka_unit_test(test_layers_batchnorm1d_gradients),
        cmocka_unit_test(test_layers_activation_gradients),
        cmocka_unit_test(test_layers_maxpool2d_gradients),
        cmocka_unit_test(test_layers_avgpool_gradients),
        cmocka_unit_test(test_layers_shape_op_gradients),
        cmocka_unit_test(test_layers_join_gradients),
        cmocka_unit_test(test_layers_golden_linear),
        cmocka_unit_test(test_layers_golden_conv2d),
        cmocka_unit_test(test_layers_golden_batchnorm),
        cmocka_unit_test(test_layers_golden_elementwise_and_pools),
        cmocka_unit_test(test_layers_im2col_matches_naive),
        cmocka_unit_test(test_layers_conv_fast_matches_naive),
        cmocka_unit_test(test_layers_conv_taps_matches_naive),
        cmocka_unit_test(test_layers_conv_tiled_matches_naive),
        cmocka_unit_test(test_layers_conv_refuses_unfoldable_epilogue),
        cmocka_unit_test(test_layers_clamp_backward_overwrites),
        cmocka_unit_test(test_layers_linear_matches_naive),
        cmocka_unit_test(test_layers_pool_fast_matches_naive),
        cmocka_unit_test(test_layers_batchnorm_fast_matches_naive),
        cmocka_unit_test(test_layers_batchnorm_param_grads_without_input_pass),
        cmocka_unit_test(test_layers_batchnorm_running_stats_and_modes),
        cmocka_unit_test(test_layers_batchnorm_single_value_rejected),
        cmocka_unit_test(test_layers_dropout_behaviour),
        cmocka_unit_test(test_layers_param_declarations),
        cmocka_unit_test(test_layers_shapes_and_flops),
        cmocka_unit_test(test_layers_bad_hparams_rejected),
        cmocka_unit_test(test_layers_bad_shapes_rejected),
        cmocka_unit_test(test_layers_model_gradients),
        cmocka_unit_test(test_layers_results_independent_of_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
