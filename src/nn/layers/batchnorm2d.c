/* batchnorm2d.c - BatchNorm2d, and the forward/backward it shares with BatchNorm1d.
 *
 * Shapes: x [N, C, S] (S = H*W here), weight (gamma) [C], bias (beta) [C], buffers
 * running_mean [C] and running_var [C]. Training normalises each channel with its batch mean
 * and biased variance, and moves the running statistics towards the batch ones:
 *     running = (1 - momentum) * running + momentum * batch,
 * using the unbiased variance (M / (M - 1), M = N*S) for running_var, as PyTorch does.
 * Evaluation normalises with the running statistics. Forward keeps (mean, invstd) of whichever
 * statistics it used, and whether they came from the batch, which decides the input gradient.
 */
#include "layer_common.h"

#include <math.h>

#include "tensor/batchnorm.h"

#define TYPE "BatchNorm2d"

/* What forward keeps for backward (arena memory). */
typedef struct bn_saved {
    int batch_stats; /* statistics came from the batch (training): they depend on x */
    float *mean;     /* [C] */
    float *invstd;   /* [C] 1 / sqrt(var + eps) */
    /* [2C] sum dy and sum dy*xhat. backward_input needs them and backward_params is exactly
     * them, so the input pass leaves them here tagged with the dout they came from; the
     * executor calls backward_params next with the same, unmodified dout, which then costs
     * nothing. Any other dout (or no input pass) recomputes. */
    float *sums;
    const float *sums_for;
} bn_saved;

sw_status sw_batchnorm_layer_init(sw_layer *layer, const char *type) {
    const sw_layer_hparams *hp = &layer->hp;
    SW_TRY(layer_check_min(type, "num_features", hp->num_features, 1));
    if (!(hp->eps > 0.0f) || !isfinite(hp->eps))
        return SW_FAIL(SW_ERR_CONFIG, "%s: eps must be a positive number, got %g", type,
                       (double)hp->eps);
    if (!(hp->momentum >= 0.0f && hp->momentum <= 1.0f))
        return SW_FAIL(SW_ERR_CONFIG, "%s: momentum must be in [0, 1], got %g", type,
                       (double)hp->momentum);
    sw_shape c = sw_shape_1d(hp->num_features);
    layer_declare_param(layer, 0, "weight", true, c);
    layer_declare_param(layer, 1, "bias", true, c);
    layer_declare_param(layer, 2, "running_mean", false, c);
    layer_declare_param(layer, 3, "running_var", false, c);
    return SW_OK;
}

/* The [N, C, S] view of a batched input: [N, C, H, W] or [N, C] or [N, C, L]. */
static void bn_layout(const sw_tensor *x, int *n, int *c, int *s) {
    *n = x->shape.dims[0];
    *c = x->shape.dims[1];
    *s = (int)(x->numel / ((size_t)*n * (size_t)*c));
}

sw_status sw_batchnorm_layer_forward(const sw_layer *layer, const sw_layer_io *io) {
    const sw_tensor *x = io->in[0];
    int n, c, s;
    bn_layout(x, &n, &c, &s);
    const float *gamma = io->params[0]->data, *beta = io->params[1]->data;
    float *run_mean = io->params[2]->data, *run_var = io->params[3]->data;
    bn_saved *sv = sw_arena_alloc(io->arena, sizeof *sv);
    float *stats;
    if (!sv)
        return SW_FAIL(SW_ERR_NOMEM, "%s: no arena memory for saved statistics",
                       layer->ops->type_name);
    SW_TRY(layer_scratch(io->arena, 5 * (size_t)c, "BatchNorm statistics", &stats));
    sv->mean = stats;
    sv->invstd = stats + c;
    sv->sums = stats + 3 * c; /* stats + 2c holds the batch variance */
    sv->sums_for = NULL;
    sv->batch_stats = io->training;
    if (io->training) {
        const size_t m = (size_t)n * (size_t)s;
        if (m < 2) {
            char buf[64];
            return SW_FAIL(SW_ERR_SHAPE,
                           "%s: training needs more than one value per channel, got input %s "
                           "(use a batch of 2 or more, or evaluation mode)",
                           layer->ops->type_name, sw_shape_format(&x->shape, buf, sizeof buf));
        }
        float *var = stats + 2 * c;
        sw_batchnorm_forward(io->out->data, sv->mean, sv->invstd, var, x->data, gamma, beta, 1, n,
                             c, s, layer->hp.eps);
        /* PyTorch's update: the running mean follows the batch mean, the running variance the
         * unbiased batch variance (M / (M - 1) times the biased one used to normalise). */
        const float mom = layer->hp.momentum;
        const float unbias = (float)((double)m / (double)(m - 1));
        for (int ch = 0; ch < c; ch++) {
            run_mean[ch] = (1.0f - mom) * run_mean[ch] + mom * sv->mean[ch];
            run_var[ch] = (1.0f - mom) * run_var[ch] + mom * var[ch] * unbias;
        }
    } else {
        /* evaluation: normalise with the running statistics, which stay as they are */
        for (int ch = 0; ch < c; ch++) {
            sv->mean[ch] = run_mean[ch];
            sv->invstd[ch] = (float)(1.0 / sqrt((double)run_var[ch] + (double)layer->hp.eps));
        }
        sw_batchnorm_forward(io->out->data, sv->mean, sv->invstd, NULL, x->data, gamma, beta, 0, n,
                             c, s, layer->hp.eps);
    }
    *io->saved = sv;
    return SW_OK;
}

sw_status sw_batchnorm_layer_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                            const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    if (!din[0]) return SW_OK;
    bn_saved *sv = *io->saved;
    int n, c, s;
    bn_layout(io->in[0], &n, &c, &s);
    sw_batchnorm_backward(din[0]->data, sv->sums, sv->sums + c, dout->data, io->in[0]->data,
                          sv->mean, sv->invstd, io->params[0]->data, sv->batch_stats, n, c, s,
                          !io->din_fresh[0]);
    sv->sums_for = dout->data;
    return SW_OK;
}

sw_status sw_batchnorm_layer_backward_params(const sw_layer *layer, const sw_layer_io *io,
                                             const sw_tensor *dout, sw_tensor *const *dparams) {
    (void)layer;
    if (!dparams || (!dparams[0] && !dparams[1])) return SW_OK;
    bn_saved *sv = *io->saved;
    int n, c, s;
    bn_layout(io->in[0], &n, &c, &s);
    if (sv->sums_for != dout->data)
        sw_batchnorm_backward(NULL, sv->sums, sv->sums + c, dout->data, io->in[0]->data, sv->mean,
                              sv->invstd, NULL, sv->batch_stats, n, c, s, true);
    sv->sums_for = NULL; /* used once: a later call recomputes */
    /* d gamma = sum dy * xhat, d beta = sum dy */
    if (dparams[0])
        for (int ch = 0; ch < c; ch++) dparams[0]->data[ch] += sv->sums[c + ch];
    if (dparams[1])
        for (int ch = 0; ch < c; ch++) dparams[1]->data[ch] += sv->sums[ch];
    return SW_OK;
}

double sw_batchnorm_layer_flops(const sw_layer *layer, const sw_shape *in, int n_in,
                                const sw_shape *out) {
    (void)layer;
    (void)n_in;
    (void)out;
    /* one multiply-add per value once the statistics are folded into a scale and a shift */
    return 2.0 * (double)sw_shape_numel(in);
}

static sw_status bn2d_init(sw_layer *layer) {
    return sw_batchnorm_layer_init(layer, TYPE);
}

static sw_status bn2d_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                  sw_shape *out) {
    (void)n_in;
    char buf[64];
    SW_TRY(layer_expect_ndim(TYPE, in, 3, "[C, H, W]"));
    if (in->dims[0] != layer->hp.num_features)
        return SW_FAIL(SW_ERR_SHAPE, "BatchNorm2d(num_features=%d) got %d channels (%s)",
                       layer->hp.num_features, in->dims[0], sw_shape_format(in, buf, sizeof buf));
    *out = *in;
    return SW_OK;
}

const sw_layer_ops sw_batchnorm2d_ops = {
    .overwrites_din = true,
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .init = bn2d_init,
    .infer_shape = bn2d_infer_shape,
    .forward = sw_batchnorm_layer_forward,
    .backward_input = sw_batchnorm_layer_backward_input,
    .backward_params = sw_batchnorm_layer_backward_params,
    .flops = sw_batchnorm_layer_flops,
};
