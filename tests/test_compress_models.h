/* test_compress_models.h - small models and helpers shared by test_compress.c and
 * test_pruning.c (static functions: each test executable includes it once). */
#ifndef SW_TEST_COMPRESS_MODELS_H
#define SW_TEST_COMPRESS_MODELS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "compress/config_list.h"
#include "io/safetensors.h"
#include "nn/model.h"

/* Fails the test with the library's message unless st is SW_OK. */
#define CHECK_OK(expr)                                                                             \
    do {                                                                                           \
        sw_status st_ = (expr);                                                                    \
        if (st_ != SW_OK) fail_msg("%s: %s (%s)", #expr, sw_status_str(st_), sw_error_message());  \
    } while (0)

static inline sw_layer *tm_layer(sw_layer_kind kind, const sw_layer_hparams *hp) {
    sw_layer *l = NULL;
    CHECK_OK(sw_layer_new(kind, hp, &l));
    return l;
}

static inline void tm_add(sw_model *m, const char *name, sw_layer_kind kind,
                          const sw_layer_hparams *hp, const char *in0, const char *in1) {
    const char *inputs[2] = {in0, in1};
    int n = in1 ? 2 : (in0 ? 1 : 0);
    CHECK_OK(sw_model_add(m, name, tm_layer(kind, hp), inputs, n, NULL));
}

static inline sw_layer_hparams tm_conv(int cin, int cout, int k, int groups, int pad) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = cin;
    hp.out_channels = cout;
    hp.kernel[0] = hp.kernel[1] = k;
    hp.padding[0] = hp.padding[1] = pad;
    hp.groups = groups;
    return hp;
}

static inline sw_layer_hparams tm_bn(int c) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = c;
    return hp;
}

static inline sw_layer_hparams tm_linear(int in, int out) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = in;
    hp.out_features = out;
    return hp;
}

/* NNI's SimpleTorchModel (golden/README.md) on [1, h, w] inputs:
 *   x = bn1(conv1(x)); x = bn2(conv2(x)) + bn3(conv3(x)); x = relu(x);
 *   y = fc2(fc1(flatten(x)))
 * conv1 Conv2d(1,16,3), conv2 Conv2d(16,32,3,groups=4), conv3 Conv2d(16,32,3), no padding;
 * fc1 Linear(32*(h-4)*(w-4), 100), fc2 Linear(100, 10). Finalised, seeded init. */
static inline sw_model *tm_simple_model(int h, int w) {
    sw_model *m = NULL;
    sw_shape in = sw_shape_3d(1, h, w);
    CHECK_OK(sw_model_new("simple", &in, &m));
    sw_layer_hparams hp;
    hp = tm_conv(1, 16, 3, 1, 0);
    tm_add(m, "conv1", SW_LAYER_CONV2D, &hp, "input", NULL);
    hp = tm_bn(16);
    tm_add(m, "bn1", SW_LAYER_BATCHNORM2D, &hp, "conv1", NULL);
    hp = tm_conv(16, 32, 3, 4, 0);
    tm_add(m, "conv2", SW_LAYER_CONV2D, &hp, "bn1", NULL);
    hp = tm_bn(32);
    tm_add(m, "bn2", SW_LAYER_BATCHNORM2D, &hp, "conv2", NULL);
    hp = tm_conv(16, 32, 3, 1, 0);
    tm_add(m, "conv3", SW_LAYER_CONV2D, &hp, "bn1", NULL);
    hp = tm_bn(32);
    tm_add(m, "bn3", SW_LAYER_BATCHNORM2D, &hp, "conv3", NULL);
    hp = sw_layer_hparams_default(SW_LAYER_ADD);
    tm_add(m, "add", SW_LAYER_ADD, &hp, "bn2", "bn3");
    hp = sw_layer_hparams_default(SW_LAYER_RELU);
    tm_add(m, "relu", SW_LAYER_RELU, &hp, "add", NULL);
    hp = sw_layer_hparams_default(SW_LAYER_FLATTEN);
    tm_add(m, "flatten", SW_LAYER_FLATTEN, &hp, "relu", NULL);
    hp = tm_linear(32 * (h - 4) * (w - 4), 100);
    tm_add(m, "fc1", SW_LAYER_LINEAR, &hp, "flatten", NULL);
    hp = tm_linear(100, 10);
    tm_add(m, "fc2", SW_LAYER_LINEAR, &hp, "fc1", NULL);
    CHECK_OK(sw_model_finalize(m));
    sw_model_init_params(m, 7);
    return m;
}

/* A node's parameter by name. */
static inline sw_tensor *tm_param(sw_model *m, const char *node, const char *param) {
    int i = sw_model_find(m, node);
    assert_true(i >= 0);
    int p = sw_layer_param_index(m->nodes[i].layer, param);
    assert_true(p >= 0);
    return &m->nodes[i].layer->params[p].value;
}

static inline void tm_fill_params(sw_model *m, uint64_t seed) {
    for (int i = 0; i < m->n_nodes; i++) {
        sw_layer *l = m->nodes[i].layer;
        for (int p = 0; p < l->n_params; p++) {
            bool var = strcmp(l->params[p].name, "running_var") == 0;
            sw_test_fill_uniform(&l->params[p].value, seed + (uint64_t)(i * 8 + p),
                                 var ? 0.5f : -1.0f, var ? 1.5f : 1.0f);
        }
    }
}

/* Copies every "<prefix><node>.<param>" tensor of a safetensors file into the model. */
static inline void tm_load_params(sw_model *m, const sw_safetensors *st, const char *prefix) {
    for (int i = 0; i < m->n_nodes; i++) {
        sw_layer *l = m->nodes[i].layer;
        for (int p = 0; p < l->n_params; p++) {
            char name[256];
            snprintf(name, sizeof name, "%s%s.%s", prefix, m->nodes[i].name, l->params[p].name);
            sw_tensor t = {0};
            CHECK_OK(sw_safetensors_get_f32(st, name, &t));
            assert_int_equal(t.numel, l->params[p].value.numel);
            memcpy(l->params[p].value.data, t.data, t.numel * sizeof(float));
            sw_tensor_deinit(&t);
        }
    }
}

static inline cJSON *tm_json(const char *text) {
    cJSON *c = NULL;
    CHECK_OK(sw_config_list_parse(text, &c));
    return c;
}

/* Runs an eval-mode forward and copies the output into a new tensor (caller frees). */
static inline sw_tensor *tm_forward(sw_model *m, const sw_tensor *x) {
    const sw_tensor *y = NULL;
    sw_model_set_training(m, false);
    CHECK_OK(sw_model_forward(m, x, &y));
    sw_tensor *copy = NULL;
    CHECK_OK(sw_tensor_clone(y, &copy));
    return copy;
}

#endif
