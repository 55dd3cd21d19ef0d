/* dropout.c - Dropout (inverted): in training each value is zeroed with probability p and the
 * survivors are scaled by 1 / (1 - p), so evaluation is the identity.
 *
 * The keep/drop choices are drawn from io->rng in element order, so a seeded model drops the
 * same values on every run. Forward keeps the mask (one byte a value) for backward.
 */
#include "layer_common.h"

#include "tensor/elementwise.h"

#define TYPE "Dropout"

/* What forward keeps: the mask of the last training forward, or NULL after an eval forward. */
typedef struct dropout_saved {
    uint8_t *keep; /* [numel], 1 = kept */
    float scale;   /* 1 / (1 - p), 0 when p = 1 */
} dropout_saved;

static sw_status dropout_init(sw_layer *layer) {
    float p = layer->hp.p;
    if (!(p >= 0.0f && p <= 1.0f))
        return SW_FAIL(SW_ERR_CONFIG, "Dropout: p must be a probability in [0, 1], got %g",
                       (double)p);
    return SW_OK;
}

static sw_status dropout_infer_shape(const sw_layer *layer, const sw_shape *in, int n_in,
                                     sw_shape *out) {
    (void)layer;
    (void)n_in;
    *out = *in;
    return SW_OK;
}

static sw_status dropout_forward(const sw_layer *layer, const sw_layer_io *io) {
    const size_t n = io->out->numel;
    const float p = layer->hp.p;
    const float *x = io->in[0]->data;
    float *y = io->out->data;
    if (!io->training || p == 0.0f) {
        *io->saved = NULL;
        sw_vec_copy(y, x, n);
        return SW_OK;
    }
    if (!io->rng)
        return SW_FAIL(SW_ERR_ARG,
                       "Dropout: a training forward needs a random generator (io->rng)");
    dropout_saved *sv = sw_arena_alloc(io->arena, sizeof *sv);
    uint8_t *keep = sw_arena_alloc(io->arena, n ? n : 1);
    if (!sv || !keep) return SW_FAIL(SW_ERR_NOMEM, "Dropout: no arena memory for the mask");
    sv->keep = keep;
    sv->scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
    /* Drawn serially: the sequence, not the thread schedule, decides the mask. */
    for (size_t i = 0; i < n; i++) keep[i] = sw_rng_uniform(io->rng) >= p;
    for (size_t i = 0; i < n; i++) y[i] = keep[i] ? x[i] * sv->scale : 0.0f;
    *io->saved = sv;
    return SW_OK;
}

/* The same mask and scale as the forward it follows; after an evaluation (or p = 0) forward
 * the layer was the identity, and so is its gradient. */
static sw_status dropout_backward_input(const sw_layer *layer, const sw_layer_io *io,
                                        const sw_tensor *dout, sw_tensor *const *din) {
    (void)layer;
    if (!din[0]) return SW_OK;
    const dropout_saved *sv = *io->saved;
    if (!sv) {
        sw_vec_add(din[0]->data, dout->data, dout->numel);
        return SW_OK;
    }
    float *dx = din[0]->data;
    const float *dy = dout->data;
    for (size_t i = 0; i < dout->numel; i++)
        if (sv->keep[i]) dx[i] += dy[i] * sv->scale;
    return SW_OK;
}

const sw_layer_ops sw_dropout_ops = {
    .type_name = TYPE,
    .min_inputs = 1,
    .max_inputs = 1,
    .init = dropout_init,
    .infer_shape = dropout_infer_shape,
    .forward = dropout_forward,
    .backward_input = dropout_backward_input,
};
