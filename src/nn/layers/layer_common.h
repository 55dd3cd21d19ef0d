/* layer_common.h - small helpers shared by the layer kinds in this folder (private to it).
 *
 * Hyper-parameter checks that name the bad value, shape checks that print both shapes, and
 * the one way layers take scratch from the step arena.
 */
#ifndef SW_LAYER_COMMON_H
#define SW_LAYER_COMMON_H

#include <stdint.h>
#include <string.h>

#include "../layer.h"

/* Fails unless value >= min: "Conv2d: stride[0] must be >= 1, got 0". */
static inline sw_status layer_check_min(const char *type, const char *what, int value, int min) {
    if (value < min)
        return SW_FAIL(SW_ERR_CONFIG, "%s: %s must be >= %d, got %d", type, what, min, value);
    return SW_OK;
}

/* Checks a {height, width} pair against a minimum; `what` is "kernel", "stride", ... */
static inline sw_status layer_check_pair(const char *type, const char *what, const int v[2],
                                         int min) {
    for (int i = 0; i < 2; i++) {
        if (v[i] < min)
            return SW_FAIL(SW_ERR_CONFIG, "%s: %s[%d] (%s) must be >= %d, got %d", type, what, i,
                           i ? "width" : "height", min, v[i]);
    }
    return SW_OK;
}

/* Fails unless the per-sample shape has `ndim` dimensions; `layout` describes them ("[C, H, W]").
 */
static inline sw_status layer_expect_ndim(const char *type, const sw_shape *in, int ndim,
                                          const char *layout) {
    if (in->ndim != ndim) {
        char buf[64];
        return SW_FAIL(SW_ERR_SHAPE, "%s expects a per-sample input %s, got %s", type, layout,
                       sw_shape_format(in, buf, sizeof buf));
    }
    return SW_OK;
}

/* Step-arena floats (not zeroed) for forward/backward scratch; NOMEM names the purpose. */
static inline sw_status layer_scratch(sw_arena *arena, size_t count, const char *what,
                                      float **out) {
    *out = NULL;
    if (count == 0) return SW_OK;
    *out = sw_arena_alloc(arena, count * sizeof(float));
    if (!*out) return SW_FAIL(SW_ERR_NOMEM, "no arena memory for %s (%zu floats)", what, count);
    return SW_OK;
}

/* Declares parameter `i` of a layer. */
static inline void layer_declare_param(sw_layer *layer, int i, const char *name, bool trainable,
                                       sw_shape shape) {
    layer->params[i] = (sw_param){.name = name, .trainable = trainable};
    layer->param_shapes[i] = shape;
    if (layer->n_params < i + 1) layer->n_params = i + 1;
}

/* The batched shape [N, sample...] of a tensor's sample part; io tensors are always batched. */
static inline int layer_batch(const sw_tensor *t) {
    return t->shape.ndim ? t->shape.dims[0] : 0;
}

/* Elements of one sample of a batched tensor. */
static inline size_t layer_sample_numel(const sw_tensor *t) {
    int n = layer_batch(t);
    return n ? t->numel / (size_t)n : 0;
}

/* BatchNorm2d and BatchNorm1d differ only in the layout of one channel's values; both are
 * x [N, C, S] with S = H*W (2d) or 1 or L (1d). batchnorm2d.c holds the shared forward and
 * backward, batchnorm1d.c only its shape rules. */
sw_status sw_batchnorm_layer_init(sw_layer *layer, const char *type);
sw_status sw_batchnorm_layer_forward(const sw_layer *layer, const sw_layer_io *io);
sw_status sw_batchnorm_layer_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                            const sw_tensor *dout, sw_tensor *const *din);
sw_status sw_batchnorm_layer_backward_params(const sw_layer *layer, const sw_layer_io *io,
                                             const sw_tensor *dout, sw_tensor *const *dparams);
double sw_batchnorm_layer_flops(const sw_layer *layer, const sw_shape *in, int n_in,
                                const sw_shape *out);

#endif
