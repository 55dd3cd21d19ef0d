/* dead_channels.c - dead-channel propagation and the derived parameter masks. */
#include "dead_channels.h"

#include <stdlib.h>
#include <string.h>

#include "mask_transform.h"

/* Per node: output channel count, liveness, and the same liveness viewed as a [C] tensor
 * that the derived parameter masks borrow. */
struct sw_dead_channels {
    int n_nodes;
    int *n_ch;
    float **alive;
    sw_tensor *view;
};

void sw_dead_channels_clear(sw_wrapper_set *ws) {
    struct sw_dead_channels *d = ws->dead;
    if (!d) return;
    for (int i = 0; i < d->n_nodes; i++) free(d->alive[i]);
    free(d->alive);
    free(d->n_ch);
    free(d->view);
    free(d);
    ws->dead = NULL;
}

/* Allocated on the first refresh: a set that never prunes carries none of this. */
static sw_status ensure_state(sw_wrapper_set *ws) {
    if (ws->dead) return SW_OK;
    int n = ws->n_wrappers;
    struct sw_dead_channels *d = calloc(1, sizeof *d);
    if (!d) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate dead-channel state");
    ws->dead = d;
    d->n_nodes = n;
    d->n_ch = calloc((size_t)n, sizeof *d->n_ch);
    d->alive = calloc((size_t)n, sizeof *d->alive);
    d->view = calloc((size_t)n, sizeof *d->view);
    if (!d->n_ch || !d->alive || !d->view) goto nomem;
    for (int i = 0; i < n; i++) {
        const sw_shape *s = &ws->model->nodes[i].out_shape;
        int c = s->ndim ? s->dims[0] : 1;
        d->n_ch[i] = c;
        d->alive[i] = malloc((size_t)c * sizeof(float));
        if (!d->alive[i]) goto nomem;
        /* [C]: the shape of a Conv2d/Linear bias and of a BatchNorm's scale and shift, the
         * parameters the derived masks act on. */
        sw_shape v = sw_shape_1d(c);
        d->view[i] = sw_tensor_view(d->alive[i], &v);
    }
    return SW_OK;
nomem:
    sw_dead_channels_clear(ws);
    return SW_FAIL(SW_ERR_NOMEM, "cannot allocate dead-channel state");
}

const float *sw_dead_channels_alive(const sw_wrapper_set *ws, int node, int *n) {
    if (!ws->dead || node < 0 || node >= ws->dead->n_nodes) return NULL;
    *n = ws->dead->n_ch[node];
    return ws->dead->alive[node];
}

/* The derived transform on target `name` of a node, or NULL. */
static sw_transform *find_derived(sw_wrapper_set *ws, int node, const char *name) {
    sw_target *t = sw_wrapper_target(&ws->wrappers[node], name);
    if (!t) return NULL;
    for (int j = 0; j < t->n_tf; j++)
        if (t->tf[j]->owner == (const void *)ws) return t->tf[j];
    return NULL;
}

/* Derived masks live only on Conv2d/Linear biases and BatchNorm scales/shifts. */
static void remove_all_derived(sw_wrapper_set *ws) {
    for (int i = 0; i < ws->n_wrappers; i++)
        for (int k = 0; k < 2; k++) {
            sw_transform *tf = find_derived(ws, i, k ? "weight" : "bias");
            if (tf) sw_wrapper_set_detach(ws, tf);
        }
}

/* zero[c] = 1 when every value of channel c of a per-sample mask [C, ...] is 0. */
static void zero_channels(const float *mask, const sw_shape *shape, int c_n, unsigned char *zero) {
    size_t per = sw_shape_numel(shape) / (size_t)c_n;
    for (int c = 0; c < c_n; c++) {
        const float *m = mask + (size_t)c * per;
        bool all_zero = true;
        for (size_t i = 0; i < per && all_zero; i++) all_zero = m[i] == 0.0f;
        zero[c] = all_zero;
    }
}

/* Channel-zero pattern of a target's compressor masks (derived ones excluded), or all 0
 * when the target has no mask. */
static sw_status target_zero(sw_wrapper_set *ws, sw_target *t, int c_n, unsigned char *zero,
                             bool *has) {
    memset(zero, 0, (size_t)c_n);
    *has = false;
    if (!t || t->n_tf == 0 || t->shape.ndim == 0 || t->shape.dims[0] != c_n) return SW_OK;
    float *m = malloc(sw_shape_numel(&t->shape) * sizeof *m);
    if (!m) return SW_FAIL(SW_ERR_NOMEM, "cannot compute dead channels");
    if (sw_target_mask(t, ws, false, m)) {
        zero_channels(m, &t->shape, c_n, zero);
        *has = true;
    }
    free(m);
    return SW_OK;
}

/* Layers that map a zero channel to a zero channel (pools: a window of zeros has max and mean
 * zero; padding only pads with zeros or -inf around them). */
static bool zero_preserving(sw_layer_kind k) {
    return k == SW_LAYER_RELU || k == SW_LAYER_RELU6 || k == SW_LAYER_MAXPOOL2D ||
           k == SW_LAYER_AVGPOOL2D || k == SW_LAYER_GLOBAL_AVGPOOL || k == SW_LAYER_DROPOUT ||
           k == SW_LAYER_IDENTITY;
}

/* Dead channels of input j of node i (all alive for the model input). */
static const float *input_alive(struct sw_dead_channels *d, const sw_node *node, int j, int *n) {
    int src = node->inputs[j];
    if (src == SW_NODE_INPUT) return NULL;
    *n = d->n_ch[src];
    return d->alive[src];
}

/* Computes liveness of node i into d->alive[i]; *needs says whether the derived mask must
 * be applied (some dead channel is not zero by itself). */
static sw_status compute_node(sw_wrapper_set *ws, int i, unsigned char *dead, unsigned char *nat,
                              unsigned char *tmp, bool *needs) {
    struct sw_dead_channels *d = ws->dead;
    sw_node *node = &ws->model->nodes[i];
    sw_layer_kind kind = node->layer->kind;
    sw_wrapper *w = &ws->wrappers[i];
    int c_n = d->n_ch[i];
    memset(dead, 0, (size_t)c_n);
    memset(nat, 1, (size_t)c_n);
    *needs = false;
    bool has;
    /* Dead by an output mask configured by a compressor: zero by itself. */
    SW_TRY(target_zero(ws, sw_wrapper_target(w, "_output_0"), c_n, tmp, &has));
    bool weighted = kind == SW_LAYER_CONV2D || kind == SW_LAYER_LINEAR ||
                    kind == SW_LAYER_BATCHNORM2D || kind == SW_LAYER_BATCHNORM1D;
    if (weighted) {
        bool bn = kind == SW_LAYER_BATCHNORM2D || kind == SW_LAYER_BATCHNORM1D;
        unsigned char *w_zero = malloc((size_t)c_n * 2);
        if (!w_zero) return SW_FAIL(SW_ERR_NOMEM, "cannot compute dead channels");
        unsigned char *b_zero = w_zero + c_n;
        bool has_w, has_b;
        sw_status st = target_zero(ws, sw_wrapper_target(w, "weight"), c_n, w_zero, &has_w);
        sw_target *bias = sw_wrapper_target(w, "bias");
        if (st == SW_OK) st = target_zero(ws, bias, c_n, b_zero, &has_b);
        if (st != SW_OK) {
            free(w_zero);
            return st;
        }
        int n_in = 0;
        const float *in = bn ? input_alive(d, node, 0, &n_in) : NULL;
        for (int c = 0; c < c_n; c++) {
            bool in_dead = in && n_in == c_n && in[c] == 0.0f;
            dead[c] = w_zero[c] || tmp[c] || in_dead;
            /* Zero without help: the output mask zeroes it, or weight and bias (BatchNorm:
             * scale and shift) are both masked. A dead input alone leaves bias/shift. */
            nat[c] = tmp[c] || (w_zero[c] && (!bias || b_zero[c]));
        }
        free(w_zero);
    } else if (zero_preserving(kind) || kind == SW_LAYER_FLATTEN) {
        int n_in = 0;
        const float *in = input_alive(d, node, 0, &n_in);
        if (in && kind != SW_LAYER_FLATTEN && n_in == c_n) {
            for (int c = 0; c < c_n; c++) dead[c] = in[c] == 0.0f;
        } else if (in && kind == SW_LAYER_FLATTEN && n_in > 0 && c_n % n_in == 0) {
            /* [C, H, W] -> [C*H*W]: feature f comes from channel f / (H*W). */
            int per = c_n / n_in;
            for (int f = 0; f < c_n; f++) dead[f] = in[f / per] == 0.0f;
        }
        for (int c = 0; c < c_n; c++) dead[c] = dead[c] || tmp[c];
    } else if (kind == SW_LAYER_ADD) {
        for (int c = 0; c < c_n; c++) dead[c] = 1;
        for (int j = 0; j < node->n_inputs; j++) {
            int n_in = 0;
            const float *in = input_alive(d, node, j, &n_in);
            for (int c = 0; c < c_n; c++)
                if (!in || n_in != c_n || in[c] != 0.0f) dead[c] = 0;
        }
        for (int c = 0; c < c_n; c++) dead[c] = dead[c] || tmp[c];
    } else if (kind == SW_LAYER_CONCAT) {
        int at = 0;
        for (int j = 0; j < node->n_inputs && at < c_n; j++) {
            int src = node->inputs[j];
            const sw_shape *s =
                src == SW_NODE_INPUT ? &ws->model->input_shape : &ws->model->nodes[src].out_shape;
            int n_in = s->ndim ? s->dims[0] : 1;
            int n_alive = 0;
            const float *in = input_alive(d, node, j, &n_alive);
            for (int c = 0; c < n_in && at + c < c_n; c++)
                dead[at + c] = in && n_alive == n_in && in[c] == 0.0f;
            at += n_in;
        }
        for (int c = 0; c < c_n; c++) dead[c] = dead[c] || tmp[c];
    } else {
        /* Unknown propagation: only a configured output mask kills channels here. */
        for (int c = 0; c < c_n; c++) dead[c] = tmp[c];
    }
    for (int c = 0; c < c_n; c++) {
        d->alive[i][c] = dead[c] ? 0.0f : 1.0f;
        if (dead[c] && !nat[c]) *needs = true;
    }
    return SW_OK;
}

/* One pass in node order (a topological order): every node's inputs are decided before it. */
sw_status sw_dead_channels_refresh(sw_wrapper_set *ws) {
    if (!ws->zero_downstream) {
        remove_all_derived(ws);
        return SW_OK;
    }
    SW_TRY(ensure_state(ws));
    int max_c = 1;
    for (int i = 0; i < ws->n_wrappers; i++)
        if (ws->dead->n_ch[i] > max_c) max_c = ws->dead->n_ch[i];
    unsigned char *buf = malloc((size_t)max_c * 3);
    if (!buf) return SW_FAIL(SW_ERR_NOMEM, "cannot compute dead channels");
    sw_status st = SW_OK;
    for (int i = 0; i < ws->n_wrappers && st == SW_OK; i++) {
        bool needs = false;
        st = compute_node(ws, i, buf, buf + max_c, buf + 2 * max_c, &needs);
        if (st != SW_OK) break;
        /* Where a dead channel is not zero by itself, zero its parameters: a Conv2d/Linear
         * bias, a BatchNorm's scale and shift (0 * x_hat + 0 is exactly 0 in both modes, and
         * the masked parameters pass no gradient, as an output mask would). Parameter masks of
         * [C] floats cost nothing next to masking a [N, C, H, W] activation twice a step. */
        sw_layer_kind kind = ws->model->nodes[i].layer->kind;
        bool bn = kind == SW_LAYER_BATCHNORM2D || kind == SW_LAYER_BATCHNORM1D;
        for (int k = 0; k < 2 && st == SW_OK; k++) {
            const char *name = k ? "weight" : "bias";
            if (k == 1 && !bn) continue;
            if (!sw_wrapper_target(&ws->wrappers[i], name)) continue;
            sw_transform *tf = find_derived(ws, i, name);
            if (needs && !tf)
                st = sw_mask_attach(ws, i, name, &ws->dead->view[i], SW_APPLY_MUL, ws, NULL);
            else if (needs && tf)
                st = sw_mask_refresh(tf);
            else if (!needs && tf)
                sw_wrapper_set_detach(ws, tf);
        }
    }
    free(buf);
    return st;
}

sw_status sw_wrapper_set_zero_downstream(sw_wrapper_set *ws, bool on) {
    ws->zero_downstream = on;
    return sw_dead_channels_refresh(ws);
}
