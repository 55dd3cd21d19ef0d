/* zoo.c - builders for the zoo models (see zoo.h for the architectures). */
#include "zoo.h"

#include <stdio.h>
#include <string.h>

/* Small helpers that create a layer and append it; each returns the status of both steps. */
static sw_status add_layer(sw_model *m, const char *name, sw_layer_kind kind,
                           const sw_layer_hparams *hp, const char *const *inputs, int n_inputs) {
    sw_layer *layer = NULL;
    SW_TRY(sw_layer_new(kind, hp, &layer));
    return sw_model_add(m, name, layer, inputs, n_inputs, NULL);
}

static sw_status add_conv(sw_model *m, const char *name, const char *input, int in, int out,
                          int kernel, int stride, int padding, bool bias) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_CONV2D);
    hp.in_channels = in;
    hp.out_channels = out;
    hp.kernel[0] = hp.kernel[1] = kernel;
    hp.stride[0] = hp.stride[1] = stride;
    hp.padding[0] = hp.padding[1] = padding;
    hp.bias = bias;
    return add_layer(m, name, SW_LAYER_CONV2D, &hp, input ? &input : NULL, input ? 1 : 0);
}

static sw_status add_bn(sw_model *m, const char *name, const char *input, int features) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_BATCHNORM2D);
    hp.num_features = features;
    return add_layer(m, name, SW_LAYER_BATCHNORM2D, &hp, input ? &input : NULL, input ? 1 : 0);
}

static sw_status add_simple(sw_model *m, const char *name, sw_layer_kind kind, const char *input) {
    sw_layer_hparams hp = sw_layer_hparams_default(kind);
    return add_layer(m, name, kind, &hp, input ? &input : NULL, input ? 1 : 0);
}

static sw_status add_maxpool(sw_model *m, const char *name, int kernel) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_MAXPOOL2D);
    hp.kernel[0] = hp.kernel[1] = kernel;
    hp.stride[0] = hp.stride[1] = kernel;
    return add_layer(m, name, SW_LAYER_MAXPOOL2D, &hp, NULL, 0);
}

static sw_status add_linear(sw_model *m, const char *name, int in, int out) {
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_LINEAR);
    hp.in_features = in;
    hp.out_features = out;
    return add_layer(m, name, SW_LAYER_LINEAR, &hp, NULL, 0);
}

static sw_status build_mlp(sw_model *m) {
    SW_TRY(add_simple(m, "flatten", SW_LAYER_FLATTEN, NULL));
    SW_TRY(add_linear(m, "fc1", 784, 256));
    SW_TRY(add_simple(m, "relu1", SW_LAYER_RELU, NULL));
    SW_TRY(add_linear(m, "fc2", 256, 128));
    SW_TRY(add_simple(m, "relu2", SW_LAYER_RELU, NULL));
    return add_linear(m, "fc3", 128, 10);
}

static sw_status build_cnn(sw_model *m) {
    SW_TRY(add_conv(m, "conv1", NULL, 1, 32, 3, 1, 1, true));
    SW_TRY(add_bn(m, "bn1", NULL, 32));
    SW_TRY(add_simple(m, "relu1", SW_LAYER_RELU, NULL));
    SW_TRY(add_maxpool(m, "pool1", 2));
    SW_TRY(add_conv(m, "conv2", NULL, 32, 64, 3, 1, 1, true));
    SW_TRY(add_bn(m, "bn2", NULL, 64));
    SW_TRY(add_simple(m, "relu2", SW_LAYER_RELU, NULL));
    SW_TRY(add_maxpool(m, "pool2", 2));
    SW_TRY(add_simple(m, "flatten", SW_LAYER_FLATTEN, NULL));
    SW_TRY(add_linear(m, "fc1", 3136, 256));
    SW_TRY(add_simple(m, "relu3", SW_LAYER_RELU, NULL));
    return add_linear(m, "fc2", 256, 10);
}

/* One torchvision-style BasicBlock named `prefix` ("layer2.0") reading node `input`:
 * conv1-bn1-relu-conv2-bn2, plus the identity or a 1x1-conv+BN downsample shortcut, add, relu.
 * Writes the name of its output node into out_name. */
static sw_status add_basic_block(sw_model *m, const char *prefix, const char *input, int in,
                                 int out, int stride, char *out_name, size_t out_size) {
    char n_conv1[64], n_bn1[64], n_relu1[64], n_conv2[64], n_bn2[64], n_ds0[64], n_ds1[64],
        n_add[64], n_relu[64];
    snprintf(n_conv1, sizeof n_conv1, "%s.conv1", prefix);
    snprintf(n_bn1, sizeof n_bn1, "%s.bn1", prefix);
    snprintf(n_relu1, sizeof n_relu1, "%s.relu1", prefix);
    snprintf(n_conv2, sizeof n_conv2, "%s.conv2", prefix);
    snprintf(n_bn2, sizeof n_bn2, "%s.bn2", prefix);
    snprintf(n_ds0, sizeof n_ds0, "%s.downsample.0", prefix);
    snprintf(n_ds1, sizeof n_ds1, "%s.downsample.1", prefix);
    snprintf(n_add, sizeof n_add, "%s.add", prefix);
    snprintf(n_relu, sizeof n_relu, "%s.relu", prefix);
    SW_TRY(add_conv(m, n_conv1, input, in, out, 3, stride, 1, false));
    SW_TRY(add_bn(m, n_bn1, NULL, out));
    SW_TRY(add_simple(m, n_relu1, SW_LAYER_RELU, NULL));
    SW_TRY(add_conv(m, n_conv2, NULL, out, out, 3, 1, 1, false));
    SW_TRY(add_bn(m, n_bn2, NULL, out));
    const char *shortcut = input;
    if (stride != 1 || in != out) {
        SW_TRY(add_conv(m, n_ds0, input, in, out, 1, stride, 0, false));
        SW_TRY(add_bn(m, n_ds1, NULL, out));
        shortcut = n_ds1;
    }
    const char *add_inputs[2] = {n_bn2, shortcut};
    sw_layer_hparams hp = sw_layer_hparams_default(SW_LAYER_ADD);
    SW_TRY(add_layer(m, n_add, SW_LAYER_ADD, &hp, add_inputs, 2));
    SW_TRY(add_simple(m, n_relu, SW_LAYER_RELU, NULL));
    snprintf(out_name, out_size, "%s", n_relu);
    return SW_OK;
}

static sw_status build_resnet(sw_model *m) {
    SW_TRY(add_conv(m, "conv1", NULL, 1, 32, 3, 1, 1, false));
    SW_TRY(add_bn(m, "bn1", NULL, 32));
    SW_TRY(add_simple(m, "relu", SW_LAYER_RELU, NULL));
    static const int widths[3] = {32, 64, 128};
    char current[64] = "relu";
    int channels = 32;
    for (int stage = 0; stage < 3; stage++) {
        for (int block = 0; block < 2; block++) {
            char prefix[32], out_name[64];
            snprintf(prefix, sizeof prefix, "layer%d.%d", stage + 1, block);
            int stride = (stage > 0 && block == 0) ? 2 : 1;
            SW_TRY(add_basic_block(m, prefix, current, channels, widths[stage], stride, out_name,
                                   sizeof out_name));
            snprintf(current, sizeof current, "%s", out_name);
            channels = widths[stage];
        }
    }
    SW_TRY(add_simple(m, "avgpool", SW_LAYER_GLOBAL_AVGPOOL, NULL));
    SW_TRY(add_simple(m, "flatten", SW_LAYER_FLATTEN, NULL));
    return add_linear(m, "fc", 128, 10);
}

typedef struct zoo_entry {
    const char *name;
    const char *description;
    sw_status (*build)(sw_model *m);
} zoo_entry;

static const zoo_entry zoo[] = {
    {"fmnist_mlp", "MLP 784-256-128-10 for 28x28 grey images", build_mlp},
    {"fmnist_cnn", "two conv+BN+pool stages, then Linear 3136-256-10", build_cnn},
    {"fmnist_resnet", "ResNet with 3 stages of 2 BasicBlocks (32/64/128 channels)", build_resnet},
};
#define ZOO_SIZE (sizeof zoo / sizeof zoo[0])

const char *const *sw_zoo_names(void) {
    static const char *const names[ZOO_SIZE + 1] = {"fmnist_mlp", "fmnist_cnn", "fmnist_resnet",
                                                    NULL};
    return names;
}

const char *sw_zoo_describe(const char *name) {
    for (size_t i = 0; i < ZOO_SIZE; i++)
        if (strcmp(zoo[i].name, name) == 0) return zoo[i].description;
    return NULL;
}

sw_status sw_zoo_build(const char *name, uint64_t seed, sw_model **out) {
    const zoo_entry *entry = NULL;
    for (size_t i = 0; i < ZOO_SIZE; i++)
        if (strcmp(zoo[i].name, name) == 0) entry = &zoo[i];
    if (!entry)
        return SW_FAIL(SW_ERR_NOT_FOUND,
                       "unknown model \"%s\": the zoo has fmnist_mlp, fmnist_cnn and "
                       "fmnist_resnet (or give a .safetensors model file)",
                       name);
    sw_shape input = sw_shape_3d(1, 28, 28);
    sw_model *m = NULL;
    SW_TRY(sw_model_new(name, &input, &m));
    sw_status st = entry->build(m);
    if (st == SW_OK) st = sw_model_finalize(m);
    if (st != SW_OK) {
        sw_model_free(m);
        return st;
    }
    sw_model_init_params(m, seed);
    *out = m;
    return SW_OK;
}
