/* global_avgpool.c - AdaptiveAvgPool2d(1): the mean of each channel's plane.
 *
 * Shapes: x [N, C, H, W] -> y [N, C, 1, 1]. Backward spreads dy / (H*W) over the plane.
 */
#include "layer_common.h"

#define TYPE "AdaptiveAvgPool2d"

/* Any [C, H, W] becomes [C, 1, 1] (the size PyTorch's AdaptiveAvgPool2d(1) keeps). */
static sw_status gap_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                 sw_shape *out) {
    (void)layer;
    (void)n_in;
    SW_TRY(layer_expect_ndim(TYPE, in, 3, "[C, H, W]"));
    *out = sw_shape_3d(in->dims[0], 1, 1);
    return SW_OK;
}

/* One mean per plane. Planes are short (H*W values), so threads split planes, each summed
 * sequentially in float. */
static sw_status gap_forward(const sw_layer *layer, const sw_layer_io *io) {
    (void)layer;
    const sw_shape *s = &io->in[0]->shape;
    const long planes = (long)s->dims[0] * s->dims[1];
    const int hw = s->dims[2] * s->dims[3];
    const float *x = io->in[0]->data;
    float *y = io->out->data;
#pragma omp parallel for schedule(static) if (planes * hw >= 65536)
    for (long pl = 0; pl < planes; pl++) {
        const float *xp = x + (size_t)pl * hw;
        float acc = 0.0f;
        for (int i = 0; i < hw; i++) acc += xp[i];
        y[pl] = acc / (float)hw;
    }
    return SW_OK;
}

/* Every pixel of a plane contributed 1/(H*W) of its mean, so each receives dy/(H*W). */
static sw_status gap_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                    const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    if (!din[0]) return SW_OK;
    const sw_shape *s = &io->in[0]->shape;
    const long planes = (long)s->dims[0] * s->dims[1];
    const int hw = s->dims[2] * s->dims[3];
    float *dx = din[0]->data;
    const float *dy = dout->data;
#pragma omp parallel for schedule(static) if (planes * hw >= 65536)
    for (long pl = 0; pl < planes; pl++) {
        float v = dy[pl] / (float)hw;
        float *dxp = dx + (size_t)pl * hw;
        for (int i = 0; i < hw; i++) dxp[i] += v;
    }
    return SW_OK;
}

static double gap_flops(const sw_layer *layer, const sw_shape *in, int n_in, const sw_shape *out) {
    (void)layer;
    (void)n_in;
    (void)out;
    return (double)sw_shape_numel(in); /* one addition a value */
}

const sw_layer_ops sw_global_avgpool_ops = {
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .infer_shape = gap_infer_shape,
    .forward = gap_forward,
    .backward_input = gap_backward_input,
    .flops = gap_flops,
};
