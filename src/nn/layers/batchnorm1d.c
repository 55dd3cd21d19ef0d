/* batchnorm1d.c - BatchNorm1d on [N, C] (features) or [N, C, L] (sequences).
 *
 * The arithmetic is BatchNorm2d's with one channel's values laid out as [N, S], S = 1 or L;
 * see batchnorm2d.c. Only the accepted shapes differ.
 */
#include "layer_common.h"

#define TYPE "BatchNorm1d"

static sw_status bn1d_init(sw_layer *layer) {
    return sw_batchnorm_layer_init(layer, TYPE);
}

static sw_status bn1d_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                  sw_shape *out) {
    (void)n_in;
    char buf[64];
    if (in->ndim != 1 && in->ndim != 2)
        return SW_FAIL(SW_ERR_SHAPE, "BatchNorm1d expects a per-sample input [C] or [C, L], got %s",
                       sw_shape_format(in, buf, sizeof buf));
    if (in->dims[0] != layer->hp.num_features)
        return SW_FAIL(SW_ERR_SHAPE, "BatchNorm1d(num_features=%d) got %d features (%s)",
                       layer->hp.num_features, in->dims[0], sw_shape_format(in, buf, sizeof buf));
    *out = *in;
    return SW_OK;
}

const sw_layer_ops sw_batchnorm1d_ops = {
    .overwrites_din = true,
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .init = bn1d_init,
    .infer_shape = bn1d_infer_shape,
    .forward = sw_batchnorm_layer_forward,
    .backward_input = sw_batchnorm_layer_backward_input,
    .backward_params = sw_batchnorm_layer_backward_params,
    .flops = sw_batchnorm_layer_flops,
};
