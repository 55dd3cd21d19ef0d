/* layer.c - layer creation, kind names, defaults. The kinds themselves live in layers/. */
#include "layer.h"

#include <stdlib.h>
#include <string.h>

static const sw_layer_ops *const ops_by_kind[SW_LAYER_KIND_COUNT] = {
    [SW_LAYER_LINEAR] = &sw_linear_ops,
    [SW_LAYER_CONV2D] = &sw_conv2d_ops,
    [SW_LAYER_BATCHNORM2D] = &sw_batchnorm2d_ops,
    [SW_LAYER_BATCHNORM1D] = &sw_batchnorm1d_ops,
    [SW_LAYER_RELU] = &sw_relu_ops,
    [SW_LAYER_RELU6] = &sw_relu6_ops,
    [SW_LAYER_MAXPOOL2D] = &sw_maxpool2d_ops,
    [SW_LAYER_AVGPOOL2D] = &sw_avgpool2d_ops,
    [SW_LAYER_GLOBAL_AVGPOOL] = &sw_global_avgpool_ops,
    [SW_LAYER_FLATTEN] = &sw_flatten_ops,
    [SW_LAYER_ADD] = &sw_add_ops,
    [SW_LAYER_CONCAT] = &sw_concat_ops,
    [SW_LAYER_DROPOUT] = &sw_dropout_ops,
    [SW_LAYER_IDENTITY] = &sw_identity_ops,
};

sw_layer_hparams sw_layer_hparams_default(sw_layer_kind kind) {
    sw_layer_hparams hp = {
        .stride = {1, 1},
        .dilation = {1, 1},
        .groups = 1,
        .bias = true,
        .eps = 1e-5f,
        .momentum = 0.1f,
        .p = 0.5f,
    };
    /* Pools default to stride = kernel (PyTorch's stride=None); the layers read 0 that way. */
    if (kind == SW_LAYER_MAXPOOL2D || kind == SW_LAYER_AVGPOOL2D) hp.stride[0] = hp.stride[1] = 0;
    return hp;
}

sw_status sw_layer_new(sw_layer_kind kind, const sw_layer_hparams *hp, sw_layer **out) {
    if ((int)kind < 0 || kind >= SW_LAYER_KIND_COUNT)
        return SW_FAIL(SW_ERR_ARG, "unknown layer kind %d", (int)kind);
    sw_layer *layer = calloc(1, sizeof *layer);
    if (!layer) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate a layer");
    layer->kind = kind;
    layer->ops = ops_by_kind[kind];
    layer->hp = *hp;
    if (layer->ops->init) {
        sw_status st = layer->ops->init(layer);
        if (st != SW_OK) {
            free(layer);
            return st;
        }
    }
    *out = layer;
    return SW_OK;
}

void sw_layer_free(sw_layer *layer) { free(layer); }

const char *sw_layer_kind_name(sw_layer_kind kind) {
    if ((int)kind < 0 || kind >= SW_LAYER_KIND_COUNT) return "?";
    return ops_by_kind[kind]->type_name;
}

sw_status sw_layer_kind_from_name(const char *name, sw_layer_kind *out) {
    for (int k = 0; k < SW_LAYER_KIND_COUNT; k++) {
        if (strcmp(ops_by_kind[k]->type_name, name) == 0) {
            *out = (sw_layer_kind)k;
            return SW_OK;
        }
    }
    return SW_FAIL(SW_ERR_NOT_FOUND, "unknown layer type \"%s\"", name);
}

int sw_layer_param_index(const sw_layer *layer, const char *name) {
    for (int i = 0; i < layer->n_params; i++)
        if (strcmp(layer->params[i].name, name) == 0) return i;
    return -1;
}
