/* masked_model.c - the masked-model simulation through node hooks on a private copy. */
#include "masked_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sw_masked_model {
    sw_model *model;      /* owned copy, parameter masks baked in */
    sw_node_hooks *hooks; /* [n_nodes], ctx = this */
    /* Per node, a multiplier over one sample (numel of the per-sample shape), NULL = 1:
     * out_mult = _output_0 mask x alive channels; in_mult[i * SW_MAX_INPUTS + j] = _input_j. */
    float **out_mult;
    float **in_mult;
};

/* x[n, k] *= m[k] for every sample n of a batched tensor. */
static void multiply_samples(float *x, const float *m, size_t per, int batch) {
    for (int n = 0; n < batch; n++) {
        float *row = x + (size_t)n * per;
        for (size_t k = 0; k < per; k++) row[k] *= m[k];
    }
}

static int node_index(const sw_masked_model *mm, const sw_node *node) {
    return (int)(node - mm->model->nodes);
}

/* Input masks: the node reads a masked copy; the producer's output stays as it is, since other
 * consumers read it too. */
static sw_status before_forward(void *ctx, sw_node *node, sw_layer_io *io) {
    sw_masked_model *mm = ctx;
    int i = node_index(mm, node);
    for (int j = 0; j < io->n_in; j++) {
        const float *m = mm->in_mult[i * SW_MAX_INPUTS + j];
        if (!m) continue;
        const sw_tensor *x = io->in[j];
        sw_tensor *copy = sw_arena_alloc(io->arena, sizeof *copy);
        float *data = sw_arena_alloc(io->arena, x->numel * sizeof *data);
        if (!copy || !data) return SW_FAIL(SW_ERR_NOMEM, "masked model: no memory for an input");
        memcpy(data, x->data, x->numel * sizeof *data);
        *copy = sw_tensor_view(data, &x->shape);
        int batch = x->shape.dims[0];
        multiply_samples(data, m, x->numel / (size_t)batch, batch);
        io->in[j] = copy;
    }
    return SW_OK;
}

static sw_status after_forward(void *ctx, sw_node *node, sw_layer_io *io) {
    sw_masked_model *mm = ctx;
    const float *m = mm->out_mult[node_index(mm, node)];
    if (m) {
        int batch = io->out->shape.dims[0];
        multiply_samples(io->out->data, m, io->out->numel / (size_t)batch, batch);
    }
    return SW_OK;
}

void sw_masked_model_free(sw_masked_model *mm) {
    if (!mm) return;
    int n = mm->model ? mm->model->n_nodes : 0;
    if (mm->out_mult)
        for (int i = 0; i < n; i++) free(mm->out_mult[i]);
    if (mm->in_mult)
        for (int i = 0; i < n * SW_MAX_INPUTS; i++) free(mm->in_mult[i]);
    free(mm->out_mult);
    free(mm->in_mult);
    free(mm->hooks);
    sw_model_free(mm->model);
    free(mm);
}

/* Expanded multiplier of an activation mask (or all ones) for per-sample `sample`. */
static float *expand(const sw_tensor *mask, const sw_shape *sample) {
    size_t n = sw_shape_numel(sample);
    float *m = malloc((n ? n : 1) * sizeof *m);
    if (!m) return NULL;
    if (mask)
        sw_mask_set_broadcast(mask, sample, m);
    else
        for (size_t k = 0; k < n; k++) m[k] = 1.0f;
    return m;
}

/* Bakes the parameter masks into the private copy and installs one hook pair per node that
 * applies the activation masks and zeroes dead channels. Independent of how the sped-up
 * model is built: only the masks and the dead channels (the semantics) come in. */
static sw_status build(sw_masked_model *mm, const sw_mask_set *masks,
                       const sw_channel_analysis *a) {
    sw_model *m = mm->model;
    /* Parameter masks multiply the parameters. */
    for (int e = 0; e < masks->n; e++) {
        const sw_mask_entry *me = &masks->entries[e];
        int i = sw_model_find(m, me->module);
        int p = sw_layer_param_index(m->nodes[i].layer, me->target);
        if (p < 0) continue; /* an activation mask */
        sw_tensor *v = &m->nodes[i].layer->params[p].value;
        for (size_t k = 0; k < v->numel; k++) v->data[k] *= me->mask.data[k];
    }
    for (int i = 0; i < m->n_nodes; i++) {
        sw_node *node = &m->nodes[i];
        const sw_tensor *om = sw_mask_set_find(masks, node->name, "_output_0");
        /* out_mult = _output_0 mask (broadcast) x 0 on every dead channel. */
        int dead = sw_channel_analysis_dead_count(a, i);
        if (om || dead) {
            float *mult = expand(om, &node->out_shape);
            if (!mult) return SW_FAIL(SW_ERR_NOMEM, "masked model: no memory for masks");
            mm->out_mult[i] = mult;
            size_t per = sw_shape_numel(&node->out_shape) / (size_t)a->n_ch[i];
            for (int c = 0; c < a->n_ch[i]; c++)
                if (a->dead[a->base[i] + c]) memset(mult + (size_t)c * per, 0, per * sizeof *mult);
        }
        for (int j = 0; j < node->n_inputs; j++) {
            char target[24];
            snprintf(target, sizeof target, "_input_%d", j);
            const sw_tensor *im = sw_mask_set_find(masks, node->name, target);
            if (!im) continue;
            int s = node->inputs[j];
            const sw_shape *shape = s == SW_NODE_INPUT ? &m->input_shape : &m->nodes[s].out_shape;
            mm->in_mult[i * SW_MAX_INPUTS + j] = expand(im, shape);
            if (!mm->in_mult[i * SW_MAX_INPUTS + j])
                return SW_FAIL(SW_ERR_NOMEM, "masked model: no memory for masks");
        }
        mm->hooks[i] = (sw_node_hooks){
            .ctx = mm, .before_forward = before_forward, .after_forward = after_forward};
        node->hooks = &mm->hooks[i];
    }
    sw_model_set_training(m, false);
    return SW_OK;
}

sw_status sw_masked_model_new(const sw_model *model, const sw_mask_set *masks,
                              const sw_channel_analysis *a, sw_masked_model **out) {
    sw_masked_model *mm = calloc(1, sizeof *mm);
    if (!mm) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate the masked model");
    sw_status st = sw_model_clone(model, &mm->model);
    if (st == SW_OK) {
        size_t n = (size_t)model->n_nodes;
        mm->hooks = calloc(n, sizeof *mm->hooks);
        mm->out_mult = calloc(n, sizeof *mm->out_mult);
        mm->in_mult = calloc(n * SW_MAX_INPUTS, sizeof *mm->in_mult);
        st = (mm->hooks && mm->out_mult && mm->in_mult)
                 ? build(mm, masks, a)
                 : SW_FAIL(SW_ERR_NOMEM, "cannot allocate the masked model");
    }
    if (st != SW_OK) {
        sw_masked_model_free(mm);
        return st;
    }
    *out = mm;
    return SW_OK;
}

sw_status sw_masked_model_forward(sw_masked_model *mm, const sw_tensor *x, const sw_tensor **out) {
    sw_model_set_training(mm->model, false);
    sw_status st = sw_model_forward(mm->model, x, out);
    if (st != SW_OK) sw_error_prefix("masked model");
    return st;
}

const sw_tensor *sw_masked_model_node_output(const sw_masked_model *mm, int i) {
    return &mm->model->outs[i];
}
