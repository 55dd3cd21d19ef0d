/* shrink.c - the sped-up model: shrunk layers, selected parameters. */
#include "shrink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kept channel lists of every node, [n_nodes + 1] (the last is the model input). */
typedef struct kept_lists {
    int **idx;
    int *count;
} kept_lists;

static void kept_lists_free(kept_lists *k, int n) {
    if (k->idx)
        for (int i = 0; i <= n; i++) free(k->idx[i]);
    free(k->idx);
    free(k->count);
}

static sw_status kept_lists_build(const sw_channel_analysis *a, kept_lists *k) {
    int n = a->n_nodes;
    k->idx = calloc((size_t)n + 1, sizeof *k->idx);
    k->count = calloc((size_t)n + 1, sizeof *k->count);
    if (!k->idx || !k->count) return SW_FAIL(SW_ERR_NOMEM, "cannot list kept channels");
    for (int i = 0; i <= n; i++) {
        k->idx[i] = malloc((size_t)a->n_ch[i] * sizeof **k->idx);
        if (!k->idx[i]) return SW_FAIL(SW_ERR_NOMEM, "cannot list kept channels");
        k->count[i] = sw_channel_analysis_kept(a, i, k->idx[i]);
    }
    return SW_OK;
}

/* The shrunk layer of node n: kind and hyper-parameters. */
static void shrunk_layer(const sw_channel_analysis *a, const kept_lists *k, int n, int n_active,
                         sw_layer_kind *kind, sw_layer_hparams *hp) {
    const sw_layer *l = a->model->nodes[n].layer;
    int s0 = sw_channel_analysis_source(a, n, 0);
    *kind = l->kind;
    *hp = l->hp;
    switch (a->role[n]) {
    case SW_ROLE_CUT:
    case SW_ROLE_GROUPED:
        if (l->kind == SW_LAYER_CONV2D) {
            hp->in_channels = k->count[s0];
            hp->out_channels = k->count[n];
            if (a->role[n] == SW_ROLE_GROUPED) hp->groups = a->group_count[n];
        } else {
            hp->in_features = k->count[s0];
            hp->out_features = k->count[n];
        }
        break;
    case SW_ROLE_TIED:
        if (l->kind == SW_LAYER_BATCHNORM2D || l->kind == SW_LAYER_BATCHNORM1D)
            hp->num_features = k->count[n];
        break;
    case SW_ROLE_ADD:
        /* An Add left with one input adds nothing: it becomes an Identity of the same name. */
        if (n_active == 1) {
            *kind = SW_LAYER_IDENTITY;
            *hp = sw_layer_hparams_default(SW_LAYER_IDENTITY);
        }
        break;
    default:
        break;
    }
}

/* Appends the shrunk twin of node n to `fast`. */
static sw_status add_node(const sw_channel_analysis *a, const kept_lists *k, int n,
                          sw_model *fast) {
    const sw_model *m = a->model;
    const sw_node *node = &m->nodes[n];
    const char *inputs[SW_MAX_INPUTS];
    int n_in = 0;
    for (int j = 0; j < node->n_inputs; j++) {
        if (!a->active[n * SW_MAX_INPUTS + j]) continue;
        int s = node->inputs[j];
        inputs[n_in++] = s == SW_NODE_INPUT ? "input" : m->nodes[s].name;
    }
    sw_layer_kind kind;
    sw_layer_hparams hp;
    shrunk_layer(a, k, n, n_in, &kind, &hp);
    sw_layer *layer = NULL;
    sw_status st = sw_layer_new(kind, &hp, &layer);
    if (st == SW_OK) st = sw_model_add(fast, node->name, layer, inputs, n_in, NULL);
    if (st != SW_OK) {
        sw_error_prefix("speedup: rebuilding %s", node->name);
        return st;
    }
    const sw_shape *got = &fast->nodes[fast->n_nodes - 1].out_shape;
    int channels = got->ndim ? got->dims[0] : 1;
    if (channels != k->count[n])
        return SW_FAIL(SW_ERR_SHAPE,
                       "speedup: rebuilt %s has %d channels but the analysis keeps %d (an "
                       "internal inconsistency; please report it with the masks)",
                       node->name, channels, k->count[n]);
    return SW_OK;
}

/* Weight and bias of a shrunk Conv2d/Linear (CUT or GROUPED). Shapes: original weight
 * [O, Iw, kh, kw] (Linear [O, I]), new [k_out, Iw', kh, kw]; row o' takes original row
 * kept_out[o'] and, within it, the kept input channels of its group. */
static void copy_conv_linear(const sw_channel_analysis *a, const kept_lists *k, int n,
                             sw_layer *dst) {
    const sw_layer *src = a->model->nodes[n].layer;
    int s0 = sw_channel_analysis_source(a, n, 0);
    const sw_shape *ws = &src->param_shapes[0];
    int o_n = ws->dims[0], iw = ws->dims[1];
    size_t kk = sw_shape_numel(ws) / ((size_t)o_n * (size_t)iw);
    int groups = src->kind == SW_LAYER_CONV2D ? src->hp.groups : 1;
    int og = o_n / groups;
    bool grouped = a->role[n] == SW_ROLE_GROUPED;
    int in_k = grouped ? a->group_in[n] : k->count[s0];
    int out_k = grouped ? a->group_out[n] : k->count[n];
    const float *w = a->eff[n * SW_MAX_PARAMS];
    const float *b = src->hp.bias ? a->eff[n * SW_MAX_PARAMS + 1] : NULL;
    float *nw = dst->params[0].value.data;
    float *nb = src->hp.bias ? dst->params[1].value.data : NULL;
    const unsigned char *zero_col = a->zero_col[n];
    for (int o2 = 0; o2 < k->count[n]; o2++) {
        int o = k->idx[n][o2];
        bool zero_row = a->zero[a->base[n] + o];
        int g = o / og;
        /* New group of row o2, and where its inputs start in the kept input list. */
        int first_in = grouped ? (o2 / out_k) * in_k : 0;
        for (int j2 = 0; j2 < in_k; j2++) {
            int i = k->idx[s0][first_in + j2]; /* original input channel */
            int j = i - g * iw;                /* its column within the group */
            float *to = nw + ((size_t)o2 * in_k + j2) * kk;
            SW_ASSERT(j >= 0 && j < iw); /* balanced groups keep inputs of the row's group */
            if (zero_row || (zero_col && zero_col[i]))
                memset(to, 0, kk * sizeof *to);
            else
                memcpy(to, w + ((size_t)o * iw + j) * kk, kk * sizeof *to);
        }
        if (nb) nb[o2] = zero_row ? 0.0f : b[o];
    }
}

/* BatchNorm: scale and shift (masked) and running statistics of the kept channels. */
static void copy_batchnorm(const sw_channel_analysis *a, const kept_lists *k, int n,
                           sw_layer *dst) {
    const sw_layer *src = a->model->nodes[n].layer;
    for (int p = 0; p < src->n_params; p++) {
        const float *from =
            src->params[p].trainable ? a->eff[n * SW_MAX_PARAMS + p] : src->params[p].value.data;
        float *to = dst->params[p].value.data;
        for (int c2 = 0; c2 < k->count[n]; c2++) {
            int c = k->idx[n][c2];
            /* A kept dead channel outputs 0 * xhat + 0 = 0, whatever its statistics. */
            bool zero = src->params[p].trainable && a->zero[a->base[n] + c];
            to[c2] = zero ? 0.0f : from[c];
        }
    }
}

/* Parameters of a node whose shapes did not change (an opaque Linear): masked values. */
static void copy_same(const sw_channel_analysis *a, int n, sw_layer *dst) {
    const sw_layer *src = a->model->nodes[n].layer;
    for (int p = 0; p < src->n_params; p++) {
        const float *from = a->eff[n * SW_MAX_PARAMS + p] ? a->eff[n * SW_MAX_PARAMS + p]
                                                          : src->params[p].value.data;
        memcpy(dst->params[p].value.data, from, src->params[p].value.numel * sizeof(float));
    }
}

/* Graph first (shape inference checks that the shrunk layers fit together), then the
 * parameters into the finalised flat storage. Surviving nodes keep their relative order, so
 * the sped-up model's node `at` is the at-th surviving original node. */
static sw_status build(const sw_channel_analysis *a, const kept_lists *k, sw_model *fast) {
    const sw_model *m = a->model;
    for (int n = 0; n < a->n_nodes; n++)
        if (a->reach[n]) SW_TRY(add_node(a, k, n, fast)); /* removed nodes are skipped */
    SW_TRY(sw_model_finalize(fast));
    int at = 0;
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n]) continue;
        sw_layer *dst = fast->nodes[at++].layer;
        const sw_layer *src = m->nodes[n].layer;
        if (dst->n_params == 0) continue;
        if (a->role[n] == SW_ROLE_CUT || a->role[n] == SW_ROLE_GROUPED)
            copy_conv_linear(a, k, n, dst);
        else if (src->kind == SW_LAYER_BATCHNORM2D || src->kind == SW_LAYER_BATCHNORM1D)
            copy_batchnorm(a, k, n, dst);
        else
            copy_same(a, n, dst);
    }
    sw_model_set_training(fast, m->training);
    return SW_OK;
}

sw_status sw_shrink_build(const sw_channel_analysis *a, sw_model **out) {
    /* A sped-up model is no longer the zoo architecture it came from: say so in its name
     * (once, when a sped-up model is sped up again). */
    char arch[160];
    const char *suffix = "-speedup";
    size_t len = strlen(a->model->arch), sl = strlen(suffix);
    bool already = len >= sl && strcmp(a->model->arch + len - sl, suffix) == 0;
    snprintf(arch, sizeof arch, "%s%s", a->model->arch, already ? "" : suffix);
    kept_lists k = {0};
    sw_model *fast = NULL;
    sw_status st = kept_lists_build(a, &k);
    if (st == SW_OK) st = sw_model_new(arch, &a->model->input_shape, &fast);
    if (st == SW_OK) st = build(a, &k, fast);
    kept_lists_free(&k, a->n_nodes);
    if (st != SW_OK) {
        sw_model_free(fast);
        return st;
    }
    *out = fast;
    return SW_OK;
}
