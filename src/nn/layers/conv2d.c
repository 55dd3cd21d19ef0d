/* conv2d.c - Conv2d with stride, zero padding, dilation, groups (depthwise included), bias.
 *
 * Shapes: x [N, C, H, W], weight [O, C/groups, kh, kw], bias [O], y [N, O, Ho, Wo] with
 * Ho = floor((H + 2*pad - dil*(kh-1) - 1) / stride) + 1 (likewise Wo), as in PyTorch.
 * The arithmetic is in tensor/conv.c; this file validates, declares and wires scratch memory
 * from the step arena. Nothing is saved: backward rebuilds the im2col columns it needs from the
 * input, which costs less than keeping them (they are kh*kw times the input's size).
 */
#include "layer_common.h"

#include "tensor/conv.h"
#include "tensor/conv_tiled.h"

#define TYPE "Conv2d"

/* PyTorch's own checks: positive sizes, non-negative padding, and groups that split both
 * channel counts evenly (each group maps Cin/groups inputs to Cout/groups outputs). */
static sw_status conv2d_init(sw_layer *layer) {
    const sw_layer_hparams *hp = &layer->hp;
    SW_TRY(layer_check_min(TYPE, "in_channels", hp->in_channels, 1));
    SW_TRY(layer_check_min(TYPE, "out_channels", hp->out_channels, 1));
    SW_TRY(layer_check_pair(TYPE, "kernel", hp->kernel, 1));
    SW_TRY(layer_check_pair(TYPE, "stride", hp->stride, 1));
    SW_TRY(layer_check_pair(TYPE, "padding", hp->padding, 0));
    SW_TRY(layer_check_pair(TYPE, "dilation", hp->dilation, 1));
    SW_TRY(layer_check_min(TYPE, "groups", hp->groups, 1));
    if (hp->in_channels % hp->groups || hp->out_channels % hp->groups)
        return SW_FAIL(SW_ERR_CONFIG,
                       "Conv2d: groups=%d must divide in_channels=%d and out_channels=%d",
                       hp->groups, hp->in_channels, hp->out_channels);
    layer_declare_param(
        layer, 0, "weight", true,
        sw_shape_4d(hp->out_channels, hp->in_channels / hp->groups, hp->kernel[0], hp->kernel[1]));
    if (hp->bias) layer_declare_param(layer, 1, "bias", true, sw_shape_1d(hp->out_channels));
    return SW_OK;
}

/* The window geometry for a per-sample input shape [C, H, W]. */
static sw_conv_geom conv2d_geom(const sw_layer_hparams *hp, int c, int h, int w) {
    sw_conv_geom g = {
        .channels = c,
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

static sw_status conv2d_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                    sw_shape *out) {
    (void)n_in;
    const sw_layer_hparams *hp = &layer->hp;
    char buf[64];
    SW_TRY(layer_expect_ndim(TYPE, in, 3, "[C, H, W]"));
    if (in->dims[0] != hp->in_channels)
        return SW_FAIL(SW_ERR_SHAPE, "Conv2d(in_channels=%d) got an input with %d channels (%s)",
                       hp->in_channels, in->dims[0], sw_shape_format(in, buf, sizeof buf));
    sw_conv_geom g = conv2d_geom(hp, in->dims[0], in->dims[1], in->dims[2]);
    if (g.out_h < 1 || g.out_w < 1)
        return SW_FAIL(SW_ERR_SHAPE,
                       "Conv2d: input %s is smaller than the dilated kernel %dx%d (dilation %dx%d) "
                       "with padding %dx%d",
                       sw_shape_format(in, buf, sizeof buf), hp->kernel[0], hp->kernel[1],
                       hp->dilation[0], hp->dilation[1], hp->padding[0], hp->padding[1]);
    *out = sw_shape_3d(hp->out_channels, g.out_h, g.out_w);
    return SW_OK;
}

/* The kernel descriptor for a batched input x [N, C, H, W]. */
static sw_conv2d_desc conv2d_desc(const sw_layer *layer, const sw_tensor *x) {
    const sw_shape *s = &x->shape;
    return (sw_conv2d_desc){
        .batch = s->dims[0],
        .out_channels = layer->hp.out_channels,
        .groups = layer->hp.groups,
        .geom = conv2d_geom(&layer->hp, s->dims[1], s->dims[2], s->dims[3]),
    };
}

/* y [N, O, Ho, Wo] = conv(x [N, C, H, W], io->params[0]) + io->params[1], then the epilogue
 * (NULL for a plain forward; inference fusion passes one). The parameters are
 * read through io (a wrapper may have substituted masked or fake-quantized copies); scratch
 * for the im2col columns comes from the step arena. */
static sw_status conv2d_forward_fused(const sw_layer *layer, const sw_layer_io *io,
                                      const sw_epilogue *ep) {
    sw_conv2d_desc d = conv2d_desc(layer, io->in[0]);
    /* The fusion plan only folds these into layers the tiled kernel takes, one at a time; if
     * that ever fails, refuse rather than compute something else. */
    if (ep && (ep->pool2x2 || ep->residual) &&
        (!sw_conv_tiled_suits(&d, SW_CONV2D_FORWARD) || (ep->pool2x2 && ep->residual)))
        return SW_FAIL(SW_ERR_ARG, "Conv2d: the inference-fusion plan folded a %s that this "
                                   "layer's kernel cannot apply (a bug: please report it; "
                                   "training-mode forwards are not fused and still work)",
                       ep->pool2x2 && ep->residual ? "max-pool and a residual Add"
                       : ep->pool2x2               ? "2x2 max-pool"
                                                   : "residual Add");
    float *scratch;
    SW_TRY(layer_scratch(io->arena, sw_conv2d_scratch_floats(&d, SW_CONV2D_FORWARD),
                         "Conv2d im2col columns", &scratch));
    const float *b = layer->hp.bias ? io->params[1]->data : NULL;
    sw_conv2d_forward(io->out->data, io->in[0]->data, io->params[0]->data, b, &d, ep, scratch);
    return SW_OK;
}

static sw_status conv2d_forward(const sw_layer *layer, const sw_layer_io *io) {
    return conv2d_forward_fused(layer, io, NULL);
}

/* dx += conv_transpose(dy, W), with the same (possibly substituted) W forward used. */
static sw_status conv2d_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                       const sw_tensor *dout, sw_tensor *const *din) {
    if (!din[0]) return SW_OK;
    sw_conv2d_desc d = conv2d_desc(layer, io->in[0]);
    float *scratch;
    SW_TRY(layer_scratch(io->arena, sw_conv2d_scratch_floats(&d, SW_CONV2D_BACKWARD_INPUT),
                         "Conv2d column gradients", &scratch));
    sw_conv2d_backward_input(din[0]->data, dout->data, io->params[0]->data, &d, scratch,
                             !io->din_fresh[0]);
    return SW_OK;
}

/* dW += dy (*) x and db += sum of dy; either may be skipped (NULL), e.g. a frozen bias. */
static sw_status conv2d_backward_params(const sw_layer *layer, const sw_layer_io *io,
                                        const sw_tensor *dout, sw_tensor *const *dparams) {
    if (!dparams) return SW_OK;
    float *dw = dparams[0] ? dparams[0]->data : NULL;
    float *db = layer->hp.bias && dparams[1] ? dparams[1]->data : NULL;
    if (!dw && !db) return SW_OK;
    sw_conv2d_desc d = conv2d_desc(layer, io->in[0]);
    float *scratch;
    SW_TRY(layer_scratch(io->arena, sw_conv2d_scratch_floats(&d, SW_CONV2D_BACKWARD_PARAMS),
                         "Conv2d weight-gradient partials", &scratch));
    sw_conv2d_backward_params(dw, db, dout->data, io->in[0]->data, &d, scratch);
    return SW_OK;
}

/* Per sample: every output takes (C/groups)*kh*kw multiply-adds, plus one add for the bias. */
static double conv2d_flops(const sw_layer *layer, const sw_shape *in, int n_in,
                           const sw_shape *out) {
    (void)in;
    (void)n_in;
    const sw_layer_hparams *hp = &layer->hp;
    double taps = (double)(hp->in_channels / hp->groups) * hp->kernel[0] * hp->kernel[1];
    double outputs = (double)sw_shape_numel(out);
    return outputs * (2.0 * taps + (hp->bias ? 1.0 : 0.0));
}

const sw_layer_ops sw_conv2d_ops = {
    .overwrites_din = true,
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .init = conv2d_init,
    .infer_shape = conv2d_infer_shape,
    .forward = conv2d_forward,
    .forward_fused = conv2d_forward_fused,
    .backward_input = conv2d_backward_input,
    .backward_params = conv2d_backward_params,
    .flops = conv2d_flops,
};
