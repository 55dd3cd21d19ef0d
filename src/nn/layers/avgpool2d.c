/* avgpool2d.c - AvgPool2d with count_include_pad=true: every window sums its taps (padding
 * counting as zero) and divides by kernel_h * kernel_w.
 *
 * Shapes: x [N, C, H, W] -> y [N, C, Ho, Wo], Ho = floor((H + 2*pad - k) / stride) + 1. A
 * stride of 0 means "the kernel size" (PyTorch's stride=None). Nothing is saved: the gradient
 * of an average only needs the geometry.
 */
#include "layer_common.h"

#include "tensor/pool.h"

#define TYPE "AvgPool2d"

/* Mirrors torch's checks; the one difference from MaxPool2d is that PyTorch's AvgPool2d has no
 * dilation, so anything but 1 is refused rather than silently ignored. */
static sw_status avgpool_init(sw_layer *layer) {
    sw_layer_hparams *hp = &layer->hp;
    SW_TRY(layer_check_pair(TYPE, "kernel", hp->kernel, 1));
    for (int i = 0; i < 2; i++)
        if (hp->stride[i] == 0) hp->stride[i] = hp->kernel[i];
    SW_TRY(layer_check_pair(TYPE, "stride", hp->stride, 1));
    SW_TRY(layer_check_pair(TYPE, "padding", hp->padding, 0));
    for (int i = 0; i < 2; i++) {
        if (hp->dilation[i] != 1)
            return SW_FAIL(SW_ERR_CONFIG,
                           "AvgPool2d has no dilation: dilation[%d] must be 1, got %d", i,
                           hp->dilation[i]);
        if (hp->padding[i] > hp->kernel[i] / 2)
            return SW_FAIL(SW_ERR_CONFIG,
                           "AvgPool2d: padding[%d]=%d must be at most half the kernel size %d", i,
                           hp->padding[i], hp->kernel[i]);
    }
    return SW_OK;
}

/* The window sweep over one [H, W] plane (the kernels run plane by plane). */
static sw_conv_geom avgpool_geom(const sw_layer_hparams *hp, int h, int w) {
    sw_conv_geom g = {
        .channels = 1,
        .height = h,
        .width = w,
        .kernel_h = hp->kernel[0],
        .kernel_w = hp->kernel[1],
        .stride_h = hp->stride[0],
        .stride_w = hp->stride[1],
        .pad_h = hp->padding[0],
        .pad_w = hp->padding[1],
        .dil_h = 1,
        .dil_w = 1,
    };
    sw_conv_geom_resolve(&g);
    return g;
}

static sw_status avgpool_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                     sw_shape *out) {
    (void)n_in;
    char buf[64];
    SW_TRY(layer_expect_ndim(TYPE, in, 3, "[C, H, W]"));
    sw_conv_geom g = avgpool_geom(&layer->hp, in->dims[1], in->dims[2]);
    if (g.out_h < 1 || g.out_w < 1)
        return SW_FAIL(SW_ERR_SHAPE, "AvgPool2d: input %s is smaller than the %dx%d window",
                       sw_shape_format(in, buf, sizeof buf), layer->hp.kernel[0],
                       layer->hp.kernel[1]);
    *out = sw_shape_3d(in->dims[0], g.out_h, g.out_w);
    return SW_OK;
}

/* Planes are N*C independent [H, W] images. */
static sw_status avgpool_forward(const sw_layer *layer, const sw_layer_io *io) {
    const sw_shape *s = &io->in[0]->shape;
    sw_conv_geom g = avgpool_geom(&layer->hp, s->dims[2], s->dims[3]);
    sw_avgpool2d_forward(io->out->data, io->in[0]->data, (long)s->dims[0] * s->dims[1], &g);
    return SW_OK;
}

static sw_status avgpool_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                        const sw_tensor *dout, sw_tensor *const *din) {
    if (!din[0]) return SW_OK;
    const sw_shape *s = &io->in[0]->shape;
    sw_conv_geom g = avgpool_geom(&layer->hp, s->dims[2], s->dims[3]);
    sw_avgpool2d_backward(din[0]->data, dout->data, (long)s->dims[0] * s->dims[1], &g);
    return SW_OK;
}

static double avgpool_flops(const sw_layer *layer, const sw_shape *in, int n_in,
                            const sw_shape *out) {
    (void)in;
    (void)n_in;
    /* one addition per window tap (the final scaling is folded in) */
    return (double)sw_shape_numel(out) * layer->hp.kernel[0] * layer->hp.kernel[1];
}

const sw_layer_ops sw_avgpool2d_ops = {
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .init = avgpool_init,
    .infer_shape = avgpool_infer_shape,
    .forward = avgpool_forward,
    .backward_input = avgpool_backward_input,
    .flops = avgpool_flops,
};
