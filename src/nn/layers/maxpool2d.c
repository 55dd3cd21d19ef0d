/* maxpool2d.c - MaxPool2d: the largest value of each window, padding acting as -infinity.
 *
 * Shapes: x [N, C, H, W] -> y [N, C, Ho, Wo], Ho = floor((H + 2*pad - dil*(k-1) - 1) / stride) + 1.
 * A stride of 0 means "the kernel size" (PyTorch's stride=None). Forward keeps the index of
 * each window's winner (int32 [N, C, Ho, Wo]); backward routes dy there and nowhere else.
 */
#include "layer_common.h"

#include "tensor/pool.h"

#define TYPE "MaxPool2d"

/* Shared by MaxPool2d and AvgPool2d: window sizes valid, padding at most half the kernel (a
 * window made only of padding would have no value). */
static sw_status pool_check(sw_layer *layer, const char *type) {
    sw_layer_hparams *hp = &layer->hp;
    SW_TRY(layer_check_pair(type, "kernel", hp->kernel, 1));
    for (int i = 0; i < 2; i++)
        if (hp->stride[i] == 0) hp->stride[i] = hp->kernel[i];
    SW_TRY(layer_check_pair(type, "stride", hp->stride, 1));
    SW_TRY(layer_check_pair(type, "padding", hp->padding, 0));
    SW_TRY(layer_check_pair(type, "dilation", hp->dilation, 1));
    for (int i = 0; i < 2; i++)
        if (hp->padding[i] > hp->kernel[i] / 2)
            return SW_FAIL(SW_ERR_CONFIG,
                           "%s: padding[%d]=%d must be at most half the kernel size %d", type, i,
                           hp->padding[i], hp->kernel[i]);
    return SW_OK;
}

static sw_status maxpool_init(sw_layer *layer) {
    return pool_check(layer, TYPE);
}

/* The window sweep over one [H, W] plane (the kernels run plane by plane). */
static sw_conv_geom pool_geom(const sw_layer_hparams *hp, int h, int w) {
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
        .dil_h = hp->dilation[0],
        .dil_w = hp->dilation[1],
    };
    sw_conv_geom_resolve(&g);
    return g;
}

static sw_status maxpool_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                     sw_shape *out) {
    (void)n_in;
    char buf[64];
    SW_TRY(layer_expect_ndim(TYPE, in, 3, "[C, H, W]"));
    sw_conv_geom g = pool_geom(&layer->hp, in->dims[1], in->dims[2]);
    if (g.out_h < 1 || g.out_w < 1)
        return SW_FAIL(SW_ERR_SHAPE, "MaxPool2d: input %s is smaller than the %dx%d window",
                       sw_shape_format(in, buf, sizeof buf), layer->hp.kernel[0],
                       layer->hp.kernel[1]);
    *out = sw_shape_3d(in->dims[0], g.out_h, g.out_w);
    return SW_OK;
}

/* y and the winners' indices; the indices (arena memory) are all backward needs, so the
 * input may be overwritten by anything after this layer without harm. */
static sw_status maxpool_forward(const sw_layer *layer, const sw_layer_io *io) {
    const sw_shape *s = &io->in[0]->shape;
    sw_conv_geom g = pool_geom(&layer->hp, s->dims[2], s->dims[3]);
    int32_t *argmax = sw_arena_alloc(io->arena, io->out->numel * sizeof *argmax);
    if (!argmax) return SW_FAIL(SW_ERR_NOMEM, "MaxPool2d: no arena memory for argmax indices");
    sw_maxpool2d_forward(io->out->data, argmax, io->in[0]->data, (long)s->dims[0] * s->dims[1], &g);
    *io->saved = argmax;
    return SW_OK;
}

/* dx[winner] += dy for every window: a scatter through the saved indices. */
static sw_status maxpool_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                        const sw_tensor *dout, sw_tensor *const *din) {
    if (!din[0]) return SW_OK;
    const sw_shape *s = &io->in[0]->shape;
    sw_conv_geom g = pool_geom(&layer->hp, s->dims[2], s->dims[3]);
    sw_maxpool2d_backward(din[0]->data, dout->data, *io->saved, (long)s->dims[0] * s->dims[1], &g,
                          !io->din_fresh[0]);
    return SW_OK;
}

static double maxpool_flops(const sw_layer *layer, const sw_shape *in, int n_in,
                            const sw_shape *out) {
    (void)in;
    (void)n_in;
    /* one comparison per window tap */
    return (double)sw_shape_numel(out) * layer->hp.kernel[0] * layer->hp.kernel[1];
}

const sw_layer_ops sw_maxpool2d_ops = {
    .overwrites_din = true,
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .init = maxpool_init,
    .infer_shape = maxpool_infer_shape,
    .forward = maxpool_forward,
    .backward_input = maxpool_backward_input,
    .flops = maxpool_flops,
};
