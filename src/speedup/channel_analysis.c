/* channel_analysis.c - dead channels, channel classes, and the kept-channel fixed point.
 *
 * The order of work (see channel_analysis.h for the rules):
 *   1. activation masks -> per-channel arrays; effective (masked) parameters;
 *   2. dead positions, forward in topological order;
 *   3. Add inputs that are dead everywhere are dropped; reachability from the output;
 *   4. ties -> classes (union-find) over the surviving nodes;
 *   5. the fixed point: forced classes, then reads of kept Conv/Linear outputs (a worklist),
 *      then the at-least-one-channel and group-balancing rules, until nothing changes;
 *   6. empty Concat inputs dropped; zero realisation; dependency groups.
 * Every step only adds kept positions, so the loop ends (at worst with everything kept).
 */
#include "channel_analysis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Scratch of one run, freed before returning. */
typedef struct work {
    sw_channel_analysis *a;
    float **out_mask;     /* [n_nodes] per-channel _output_0 mask, or NULL */
    float **in_mask;      /* [n_nodes * SW_MAX_INPUTS] per-channel _input_j mask, or NULL */
    int *parent;          /* [n_pos] union-find */
    int *head, *next;     /* [n_pos] class member lists: head[root] -> next[p] -> ... -> -1 */
    unsigned char *ckept; /* [n_pos] class (by root) kept */
    int *stack;           /* [n_pos] kept Conv/Linear outputs waiting to be scanned */
    int n_stack;
    unsigned char *need; /* [n_nodes] some consumer needs at least one channel */
} work;

int sw_channel_analysis_source(const sw_channel_analysis *a, int node, int j) {
    int s = a->model->nodes[node].inputs[j];
    return s == SW_NODE_INPUT ? a->n_nodes : s;
}

/* Per-sample shape of node n's output (n_nodes = the model input). */
static const sw_shape *out_shape(const sw_channel_analysis *a, int n) {
    return n == a->n_nodes ? &a->model->input_shape : &a->model->nodes[n].out_shape;
}

static sw_channel_role role_of(const sw_channel_analysis *a, int n) {
    const sw_node *node = &a->model->nodes[n];
    switch (node->layer->kind) {
    case SW_LAYER_CONV2D:
        return node->layer->hp.groups > 1 ? SW_ROLE_GROUPED : SW_ROLE_CUT;
    case SW_LAYER_LINEAR:
        /* Linear works on the last dim; only on a [F] sample is that the channel axis. */
        return out_shape(a, sw_channel_analysis_source(a, n, 0))->ndim == 1 ? SW_ROLE_CUT
                                                                            : SW_ROLE_OPAQUE;
    case SW_LAYER_BATCHNORM2D:
    case SW_LAYER_BATCHNORM1D:
    case SW_LAYER_RELU:
    case SW_LAYER_RELU6:
    case SW_LAYER_MAXPOOL2D:
    case SW_LAYER_AVGPOOL2D:
    case SW_LAYER_GLOBAL_AVGPOOL:
    case SW_LAYER_DROPOUT:
    case SW_LAYER_IDENTITY:
        return SW_ROLE_TIED;
    case SW_LAYER_FLATTEN:
        return SW_ROLE_FLATTEN;
    case SW_LAYER_ADD:
        return SW_ROLE_ADD;
    case SW_LAYER_CONCAT:
        return SW_ROLE_CONCAT;
    default:
        return SW_ROLE_OPAQUE;
    }
}

/* BatchNorm is tied (channel c in, channel c out) but, unlike the other tied layers, has
 * per-channel parameters: a kept dead channel is silenced by a zero scale and shift. */
static bool is_bn(const sw_node *node) {
    return node->layer->kind == SW_LAYER_BATCHNORM2D || node->layer->kind == SW_LAYER_BATCHNORM1D;
}

/* Layers whose output channel can be made exactly zero through their own parameters. */
static bool has_weights(const sw_node *node) {
    return node->layer->kind == SW_LAYER_CONV2D || node->layer->kind == SW_LAYER_LINEAR ||
           is_bn(node);
}

void sw_channel_analysis_free(sw_channel_analysis *a) {
    if (!a) return;
    if (a->eff)
        for (int i = 0; i < a->n_nodes * SW_MAX_PARAMS; i++) free(a->eff[i]);
    if (a->zero_col)
        for (int i = 0; i < a->n_nodes; i++) free(a->zero_col[i]);
    free(a->eff);
    free(a->zero_col);
    free(a->n_ch);
    free(a->base);
    free(a->role);
    free(a->active);
    free(a->reach);
    free(a->node_of);
    free(a->dead);
    free(a->kept);
    free(a->zero);
    free(a->folded);
    free(a->cls);
    free(a->group_in);
    free(a->group_out);
    free(a->group_count);
    free(a->dep_group);
    free(a);
}

static void work_deinit(work *w, int n_nodes) {
    if (w->out_mask)
        for (int i = 0; i < n_nodes; i++) free(w->out_mask[i]);
    if (w->in_mask)
        for (int i = 0; i < n_nodes * SW_MAX_INPUTS; i++) free(w->in_mask[i]);
    free(w->out_mask);
    free(w->in_mask);
    free(w->parent);
    free(w->head);
    free(w->next);
    free(w->ckept);
    free(w->stack);
    free(w->need);
}

int sw_channel_analysis_kept(const sw_channel_analysis *a, int node, int *idx) {
    int k = 0;
    const unsigned char *kept = a->kept + a->base[node];
    for (int c = 0; c < a->n_ch[node]; c++)
        if (kept[c]) {
            if (idx) idx[k] = c;
            k++;
        }
    return k;
}

int sw_channel_analysis_dead_count(const sw_channel_analysis *a, int node) {
    int k = 0;
    for (int c = 0; c < a->n_ch[node]; c++) k += a->dead[a->base[node] + c];
    return k;
}

int sw_channel_analysis_unpruned_count(const sw_channel_analysis *a, int node) {
    int k = 0;
    for (int c = 0; c < a->n_ch[node]; c++) {
        int p = a->base[node] + c;
        k += a->kept[p] && a->dead[p];
    }
    return k;
}

/* ---- step 1: masks -------------------------------------------------------------------- */

/* Reduces an activation mask to one value per channel of `sample`, or fails when a channel is
 * only partly zeroed: speedup removes whole channels, and a partial zero has no sped-up form. */
static sw_status channel_mask(const sw_tensor *mask, const sw_shape *sample, const char *module,
                              const char *target, float **out) {
    size_t n = sw_shape_numel(sample);
    int c_n = sample->ndim ? sample->dims[0] : 1;
    size_t per = n / (size_t)c_n;
    float *full = malloc(n * sizeof *full);
    float *ch = malloc((size_t)c_n * sizeof *ch);
    if (!full || !ch) {
        free(full);
        free(ch);
        return SW_FAIL(SW_ERR_NOMEM, "cannot expand mask \"%s.%s\"", module, target);
    }
    sw_mask_set_broadcast(mask, sample, full);
    for (int c = 0; c < c_n; c++) {
        ch[c] = full[(size_t)c * per];
        for (size_t k = 1; k < per; k++)
            if (full[(size_t)c * per + k] != ch[c]) {
                free(full);
                free(ch);
                return SW_FAIL(SW_ERR_UNSUPPORTED,
                               "mask \"%s.%s\" zeroes part of channel %d but not all of it; "
                               "speedup removes whole channels only (use a per-channel mask, "
                               "e.g. shape [1, C, 1, 1])",
                               module, target, c);
            }
    }
    free(full);
    *out = ch;
    return SW_OK;
}

/* Per-channel activation masks into w->out_mask / w->in_mask. */
static sw_status load_activation_masks(work *w, const sw_mask_set *masks) {
    sw_channel_analysis *a = w->a;
    for (int e = 0; e < masks->n; e++) {
        const sw_mask_entry *m = &masks->entries[e];
        int n = sw_model_find(a->model, m->module);
        const sw_node *node = &a->model->nodes[n];
        int j = -1;
        char extra;
        if (strcmp(m->target, "_output_0") == 0) {
            SW_TRY(channel_mask(&m->mask, &node->out_shape, m->module, m->target, &w->out_mask[n]));
        } else if (sscanf(m->target, "_input_%d%c", &j, &extra) == 1) {
            if (a->role[n] != SW_ROLE_CUT && a->role[n] != SW_ROLE_GROUPED)
                return SW_FAIL(SW_ERR_UNSUPPORTED,
                               "mask \"%s.%s\": speedup honours input masks only on Conv2d and "
                               "Linear (as zeroed weight columns), not on a %s; mask the "
                               "producer's _output_0 instead",
                               m->module, m->target, node->layer->ops->type_name);
            int src = sw_channel_analysis_source(a, n, j);
            SW_TRY(channel_mask(&m->mask, out_shape(a, src), m->module, m->target,
                                &w->in_mask[n * SW_MAX_INPUTS + j]));
        }
    }
    return SW_OK;
}

/* Effective parameters of Conv2d/Linear/BatchNorm: value x mask, and for Conv2d/Linear the
 * columns of channel-masked inputs zeroed (what the masked model's input mask does). */
static sw_status load_effective_params(work *w, const sw_mask_set *masks) {
    sw_channel_analysis *a = w->a;
    for (int n = 0; n < a->n_nodes; n++) {
        const sw_node *node = &a->model->nodes[n];
        if (!has_weights(node)) continue;
        const sw_layer *l = node->layer;
        for (int p = 0; p < l->n_params; p++) {
            if (!l->params[p].trainable) continue;
            const sw_tensor *v = &l->params[p].value;
            float *e = malloc((v->numel ? v->numel : 1) * sizeof *e);
            if (!e) return SW_FAIL(SW_ERR_NOMEM, "cannot copy the parameters of %s", node->name);
            a->eff[n * SW_MAX_PARAMS + p] = e;
            memcpy(e, v->data, v->numel * sizeof *e);
            const sw_tensor *m = sw_mask_set_find(masks, node->name, l->params[p].name);
            if (m)
                for (size_t k = 0; k < v->numel; k++) e[k] *= m->data[k];
        }
        const float *im = w->in_mask[n * SW_MAX_INPUTS];
        if (!im || is_bn(node)) continue;
        /* weight [O, I/groups, kh, kw] (Linear: [O, I]); output o reads input group o / Og. */
        const sw_shape *ws = &l->param_shapes[0];
        int o_n = ws->dims[0], iw = ws->dims[1];
        size_t k = sw_shape_numel(ws) / ((size_t)o_n * (size_t)iw);
        int groups = l->kind == SW_LAYER_CONV2D ? l->hp.groups : 1;
        int og = o_n / groups;
        float *wt = a->eff[n * SW_MAX_PARAMS];
        for (int o = 0; o < o_n; o++)
            for (int j = 0; j < iw; j++)
                if (im[(o / og) * iw + j] == 0.0f)
                    memset(wt + ((size_t)o * iw + j) * k, 0, k * sizeof *wt);
    }
    return SW_OK;
}

/* ---- step 2: dead positions ----------------------------------------------------------- */

/* The masked model's zeros, node by node in topological order. This must match what the
 * pruning issue's masked model (src/compress/dead_channels.c) zeroes: the sped-up model is
 * checked against exactly this semantics (masked_model.c applies the same dead channels). */
static void compute_dead(work *w, const sw_mask_set *masks) {
    sw_channel_analysis *a = w->a;
    for (int n = 0; n < a->n_nodes; n++) {
        const sw_node *node = &a->model->nodes[n];
        unsigned char *d = a->dead + a->base[n];
        int c_n = a->n_ch[n];
        int s0 = sw_channel_analysis_source(a, n, 0);
        const unsigned char *in0 = a->dead + a->base[s0];
        switch (a->role[n]) {
        case SW_ROLE_CUT:
        case SW_ROLE_GROUPED: {
            /* A weight-mask row entirely zero prunes the output channel, bias included. */
            const sw_tensor *m = sw_mask_set_find(masks, node->name, "weight");
            if (!m) break;
            size_t row = m->numel / (size_t)c_n;
            for (int c = 0; c < c_n; c++) {
                bool zero = true;
                for (size_t k = 0; k < row && zero; k++) zero = m->data[(size_t)c * row + k] == 0;
                d[c] = zero;
            }
            break;
        }
        case SW_ROLE_TIED:
            /* ReLU(0) = 0, pools and Dropout of a zero channel are zero; BatchNorm(0) is its
             * shift, which the masked model zeroes on purpose (no leaking constants). */
            for (int c = 0; c < c_n; c++) d[c] = in0[c];
            if (is_bn(node)) {
                const sw_tensor *m = sw_mask_set_find(masks, node->name, "weight");
                for (int c = 0; m && c < c_n; c++) d[c] |= m->data[c] == 0.0f;
            }
            break;
        case SW_ROLE_FLATTEN: {
            int per = c_n / a->n_ch[s0];
            for (int f = 0; f < c_n; f++) d[f] = in0[f / per];
            break;
        }
        case SW_ROLE_ADD:
            /* A sum is zero only where every term is (the model input never is). */
            for (int c = 0; c < c_n; c++) d[c] = 1;
            for (int j = 0; j < node->n_inputs; j++) {
                const unsigned char *in = a->dead + a->base[sw_channel_analysis_source(a, n, j)];
                for (int c = 0; c < c_n; c++) d[c] &= in[c];
            }
            break;
        case SW_ROLE_CONCAT: {
            int at = 0;
            for (int j = 0; j < node->n_inputs; j++) {
                int s = sw_channel_analysis_source(a, n, j);
                memcpy(d + at, a->dead + a->base[s], (size_t)a->n_ch[s]);
                at += a->n_ch[s];
            }
            break;
        }
        case SW_ROLE_OPAQUE:
            break; /* only its own output mask kills channels */
        }
        const float *om = w->out_mask[n];
        for (int c = 0; om && c < c_n; c++) d[c] |= om[c] == 0.0f;
    }
}

/* ---- steps 3-4: edges, reachability, classes ------------------------------------------ */

/* Whether node n's output is zero in every channel (the model input never is). */
static bool all_dead(const sw_channel_analysis *a, int n) {
    for (int c = 0; c < a->n_ch[n]; c++)
        if (!a->dead[a->base[n] + c]) return false;
    return a->n_ch[n] > 0;
}

/* A node survives when some path of active edges leads from it to the output node; nodes are
 * in topological order, so one backward sweep finds them all. */
static void compute_reach(sw_channel_analysis *a) {
    memset(a->reach, 0, (size_t)a->n_nodes);
    a->reach[a->n_nodes - 1] = 1;
    for (int n = a->n_nodes - 1; n >= 0; n--) {
        if (!a->reach[n]) continue;
        for (int j = 0; j < a->model->nodes[n].n_inputs; j++) {
            int s = sw_channel_analysis_source(a, n, j);
            if (a->active[n * SW_MAX_INPUTS + j] && s < a->n_nodes) a->reach[s] = 1;
        }
    }
}

/* Union-find over positions (path halving); the smaller index becomes the root, so a class
 * is named by its earliest position. */
static int uf_find(int *parent, int x) {
    while (parent[x] != x) {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    return x;
}

static void uf_union(int *parent, int x, int y) {
    x = uf_find(parent, x);
    y = uf_find(parent, y);
    if (x == y) return;
    if (x < y)
        parent[y] = x;
    else
        parent[x] = y;
}

/* Ties of the surviving nodes, then member lists. Only surviving nodes tie: a removed node's
 * positions stay singletons and can never keep anything alive. */
static void build_classes(work *w) {
    sw_channel_analysis *a = w->a;
    for (int p = 0; p < a->n_pos; p++) w->parent[p] = p;
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n]) continue;
        const sw_node *node = &a->model->nodes[n];
        int out = a->base[n], c_n = a->n_ch[n];
        int s0 = sw_channel_analysis_source(a, n, 0);
        switch (a->role[n]) {
        case SW_ROLE_TIED:
            for (int c = 0; c < c_n; c++) uf_union(w->parent, a->base[s0] + c, out + c);
            break;
        case SW_ROLE_FLATTEN: {
            /* Channel c and its H*W features live or go together: the Linear after the
             * Flatten then loses whole blocks of input columns. */
            int per = c_n / a->n_ch[s0];
            for (int f = 0; f < c_n; f++) uf_union(w->parent, a->base[s0] + f / per, out + f);
            break;
        }
        case SW_ROLE_ADD:
            for (int j = 0; j < node->n_inputs; j++) {
                if (!a->active[n * SW_MAX_INPUTS + j]) continue;
                int s = a->base[sw_channel_analysis_source(a, n, j)];
                for (int c = 0; c < c_n; c++) uf_union(w->parent, s + c, out + c);
            }
            break;
        case SW_ROLE_CONCAT: {
            /* Input j's channel c is output channel at + c, at = channels of inputs 0..j-1. */
            int at = 0;
            for (int j = 0; j < node->n_inputs; j++) {
                int s = sw_channel_analysis_source(a, n, j);
                for (int c = 0; c < a->n_ch[s]; c++)
                    uf_union(w->parent, a->base[s] + c, out + at + c);
                at += a->n_ch[s];
            }
            break;
        }
        default:
            break;
        }
    }
    /* Member lists, built backwards so that each list is in ascending position order. */
    for (int p = 0; p < a->n_pos; p++) w->head[p] = -1;
    for (int p = a->n_pos - 1; p >= 0; p--) {
        int r = uf_find(w->parent, p);
        a->cls[p] = r;
        w->next[p] = w->head[r];
        w->head[r] = p;
    }
}

/* ---- step 5: the fixed point ---------------------------------------------------------- */

/* Keeps the class of position p; queues its new Conv/Linear outputs for scanning. Returns
 * whether anything changed. */
static bool keep_class(work *w, int p) {
    sw_channel_analysis *a = w->a;
    int r = a->cls[p];
    if (w->ckept[r]) return false;
    w->ckept[r] = 1;
    for (int q = w->head[r]; q >= 0; q = w->next[q]) {
        a->kept[q] = 1;
        int n = a->node_of[q];
        if (n < a->n_nodes && a->reach[n] &&
            (a->role[n] == SW_ROLE_CUT || a->role[n] == SW_ROLE_GROUPED))
            w->stack[w->n_stack++] = q;
    }
    return true;
}

/* A kept output channel o of Conv/Linear node n keeps what it reads: every alive input
 * position with a non-zero effective weight column. */
static void scan_output(work *w, int p) {
    sw_channel_analysis *a = w->a;
    int n = a->node_of[p], o = p - a->base[n];
    const sw_layer *l = a->model->nodes[n].layer;
    const sw_shape *ws = &l->param_shapes[0];
    int o_n = ws->dims[0], iw = ws->dims[1];
    size_t k = sw_shape_numel(ws) / ((size_t)o_n * (size_t)iw);
    int groups = l->kind == SW_LAYER_CONV2D ? l->hp.groups : 1;
    int g = o / (o_n / groups);
    int in_base = a->base[sw_channel_analysis_source(a, n, 0)];
    const float *row = a->eff[n * SW_MAX_PARAMS] + (size_t)o * iw * k;
    for (int j = 0; j < iw; j++) {
        int q = in_base + g * iw + j;
        /* A dead input contributes nothing (zero padding keeps a zero channel zero), so o
         * does not need it; a kept one is already handled. */
        if (a->dead[q] || a->kept[q]) continue;
        const float *col = row + (size_t)j * k;
        for (size_t t = 0; t < k; t++)
            if (col[t] != 0.0f) {
                keep_class(w, q);
                break;
            }
    }
}

/* Runs the backward propagation to its end: every kept output keeps what it reads. */
static void drain(work *w) {
    while (w->n_stack > 0) scan_output(w, w->stack[--w->n_stack]);
}

/* Kept positions among [first, first + count). */
static int count_kept(const sw_channel_analysis *a, int first, int count) {
    int k = 0;
    for (int i = 0; i < count; i++) k += a->kept[first + i];
    return k;
}

/* Every surviving node whose output something other than a Concat consumes keeps a channel:
 * a Conv2d, Linear or Add cannot take an empty input. (A Concat just drops an empty input.) */
static bool rule_at_least_one(work *w) {
    sw_channel_analysis *a = w->a;
    unsigned char *need = w->need;
    bool changed = false;
    memset(need, 0, (size_t)a->n_nodes + 1);
    need[a->n_nodes - 1] = 1;
    for (int m = 0; m < a->n_nodes; m++) {
        if (!a->reach[m] || a->role[m] == SW_ROLE_CONCAT) continue;
        for (int j = 0; j < a->model->nodes[m].n_inputs; j++)
            if (a->active[m * SW_MAX_INPUTS + j]) need[sw_channel_analysis_source(a, m, j)] = 1;
    }
    for (int n = 0; n < a->n_nodes; n++)
        if (a->reach[n] && need[n] && count_kept(a, a->base[n], a->n_ch[n]) == 0)
            changed |= keep_class(w, a->base[n]);
    return changed;
}

/* Keeps positions of [first, first + count) in order until `want` are kept. The extra
 * channels are un-pruned: dead ones will output zeros, alive ones are computed exactly (their
 * producers' reads are followed like any other kept output). */
static bool pad_range(work *w, int first, int count, int want) {
    bool changed = false;
    for (int i = 0; i < count && count_kept(w->a, first, count) < want; i++)
        if (!w->a->kept[first + i]) changed |= keep_class(w, first + i);
    return changed;
}

/* A grouped Conv2d keeps equal input and output counts in every group that keeps anything. */
static bool rule_balance_groups(work *w) {
    sw_channel_analysis *a = w->a;
    bool changed = false;
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n] || a->role[n] != SW_ROLE_GROUPED) continue;
        const sw_layer_hparams *hp = &a->model->nodes[n].layer->hp;
        int groups = hp->groups, ig = hp->in_channels / groups, og = hp->out_channels / groups;
        int in_base = a->base[sw_channel_analysis_source(a, n, 0)], out_base = a->base[n];
        int in_k = 0, out_k = 0;
        for (int g = 0; g < groups; g++) {
            int ki = count_kept(a, in_base + g * ig, ig), ko = count_kept(a, out_base + g * og, og);
            if (ki > in_k) in_k = ki;
            if (ko > out_k) out_k = ko;
        }
        if (in_k == 0 && out_k == 0) continue;
        /* A kept group needs at least one channel on each side to remain a convolution. */
        in_k = in_k ? in_k : 1;
        out_k = out_k ? out_k : 1;
        for (int g = 0; g < groups; g++) {
            int ki = count_kept(a, in_base + g * ig, ig), ko = count_kept(a, out_base + g * og, og);
            if (ki == 0 && ko == 0) continue; /* the group disappears */
            changed |= pad_range(w, in_base + g * ig, ig, in_k);
            changed |= pad_range(w, out_base + g * og, og, out_k);
        }
    }
    return changed;
}

/* Records the balanced group shape of every surviving grouped Conv2d. */
static sw_status record_groups(sw_channel_analysis *a) {
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n] || a->role[n] != SW_ROLE_GROUPED) continue;
        const sw_layer_hparams *hp = &a->model->nodes[n].layer->hp;
        int groups = hp->groups, ig = hp->in_channels / groups, og = hp->out_channels / groups;
        int in_base = a->base[sw_channel_analysis_source(a, n, 0)], out_base = a->base[n];
        int in_k = -1, out_k = -1, count = 0;
        for (int g = 0; g < groups; g++) {
            int ki = count_kept(a, in_base + g * ig, ig), ko = count_kept(a, out_base + g * og, og);
            if (ki == 0 && ko == 0) continue;
            if ((in_k >= 0 && ki != in_k) || (out_k >= 0 && ko != out_k) || ki == 0 || ko == 0)
                return SW_FAIL(SW_ERR_UNSUPPORTED,
                               "%s: could not balance the kept channels of its %d groups "
                               "(an internal inconsistency of speedup; please report it)",
                               a->model->nodes[n].name, groups);
            in_k = ki;
            out_k = ko;
            count++;
        }
        a->group_in[n] = in_k;
        a->group_out[n] = out_k;
        a->group_count[n] = count;
    }
    return SW_OK;
}

/* ---- step 6: realising kept dead channels --------------------------------------------- */

/* Position of node n's channel c in the input that feeds it (Concat: the right input). */
static int feeding_position(const sw_channel_analysis *a, int n, int c) {
    int s0 = sw_channel_analysis_source(a, n, 0);
    if (a->role[n] == SW_ROLE_FLATTEN) return a->base[s0] + c / (a->n_ch[n] / a->n_ch[s0]);
    if (a->role[n] == SW_ROLE_CONCAT) {
        const sw_node *node = &a->model->nodes[n];
        for (int j = 0; j < node->n_inputs; j++) {
            int s = sw_channel_analysis_source(a, n, j);
            if (c < a->n_ch[s]) return a->base[s] + c;
            c -= a->n_ch[s];
        }
    }
    return a->base[s0] + c;
}

/* A dead channel c of a layer without parameters that is not zero by itself (its own output
 * mask): make every consumer ignore it, or fail. */
static sw_status fold_into_consumers(sw_channel_analysis *a, int n, int c) {
    const sw_node *node = &a->model->nodes[n];
    if (n == a->n_nodes - 1)
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "%s (%s) is the model output and its _output_0 mask zeroes channel %d; "
                       "speedup cannot zero the output of this layer type without a mask layer "
                       "(mask the weights of the layer before it instead)",
                       node->name, node->layer->ops->type_name, c);
    for (int m = 0; m < a->n_nodes; m++) {
        if (!a->reach[m]) continue;
        const sw_node *cons = &a->model->nodes[m];
        for (int j = 0; j < cons->n_inputs; j++) {
            if (!a->active[m * SW_MAX_INPUTS + j] || sw_channel_analysis_source(a, m, j) != n)
                continue;
            if (a->role[m] != SW_ROLE_CUT && a->role[m] != SW_ROLE_GROUPED)
                return SW_FAIL(SW_ERR_UNSUPPORTED,
                               "the _output_0 mask of %s (%s) zeroes channel %d, which %s (%s) "
                               "must keep; speedup can realise a zeroed channel there only "
                               "when every consumer is a Conv2d or Linear (mask the weights "
                               "of the layer that produces it instead)",
                               node->name, node->layer->ops->type_name, c, cons->name,
                               cons->layer->ops->type_name);
        }
    }
    for (int m = 0; m < a->n_nodes; m++) {
        /* Every consumer is a Conv2d/Linear here, reading node n as its only input. */
        if (!a->reach[m] || !a->active[m * SW_MAX_INPUTS] ||
            sw_channel_analysis_source(a, m, 0) != n)
            continue;
        if (!a->zero_col[m]) {
            a->zero_col[m] = calloc((size_t)a->n_ch[n], 1);
            if (!a->zero_col[m]) return SW_FAIL(SW_ERR_NOMEM, "cannot record zeroed columns");
        }
        a->zero_col[m][c] = 1;
    }
    a->folded[a->base[n] + c] = 1;
    return SW_OK;
}

/* Every kept position that the masked model zeroes must be exactly zero in the sped-up model
 * too, or be invisible to everything that reads it. Topological order: a tied layer's input
 * position is realised before the layer's own. */
static sw_status realise_dead(sw_channel_analysis *a) {
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n]) continue;
        const sw_node *node = &a->model->nodes[n];
        for (int c = 0; c < a->n_ch[n]; c++) {
            int p = a->base[n] + c;
            if (!a->kept[p] || !a->dead[p]) continue;
            if (has_weights(node) && a->role[n] != SW_ROLE_OPAQUE) {
                a->zero[p] = 1; /* zero weight row and bias, or zero BN scale and shift */
                if (!is_bn(node)) a->n_unpruned++;
                continue;
            }
            bool zero_in = false;
            if (a->role[n] == SW_ROLE_TIED || a->role[n] == SW_ROLE_FLATTEN ||
                a->role[n] == SW_ROLE_CONCAT) {
                zero_in = a->dead[feeding_position(a, n, c)];
            } else if (a->role[n] == SW_ROLE_ADD) {
                zero_in = true;
                for (int j = 0; j < node->n_inputs; j++)
                    if (a->active[n * SW_MAX_INPUTS + j])
                        zero_in &= a->dead[a->base[sw_channel_analysis_source(a, n, j)] + c];
            }
            /* Zero inputs stay zero through these layers (they are kept in the same class and
             * were realised before, in topological order). */
            if (!zero_in) SW_TRY(fold_into_consumers(a, n, c));
        }
    }
    return SW_OK;
}

/* Conv2d/Linear nodes whose output channels share classes form dependency groups. */
static sw_status find_dependency_groups(work *w) {
    sw_channel_analysis *a = w->a;
    int *node_parent = malloc((size_t)a->n_nodes * sizeof *node_parent);
    int *first = malloc((size_t)a->n_pos * sizeof *first);
    int *size = calloc((size_t)a->n_nodes, sizeof *size);
    if (!node_parent || !first || !size) {
        free(node_parent);
        free(first);
        free(size);
        return SW_FAIL(SW_ERR_NOMEM, "cannot compute dependency groups");
    }
    for (int n = 0; n < a->n_nodes; n++) node_parent[n] = n;
    for (int p = 0; p < a->n_pos; p++) first[p] = -1;
    for (int p = 0; p < a->n_pos; p++) {
        int n = a->node_of[p];
        if (n == a->n_nodes || !a->reach[n]) continue;
        if (a->role[n] != SW_ROLE_CUT && a->role[n] != SW_ROLE_GROUPED) continue;
        int r = a->cls[p];
        if (first[r] < 0)
            first[r] = n;
        else
            uf_union(node_parent, first[r], n);
    }
    /* A depthwise conv depends on its producer channel by channel, as NNI counts it. */
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n] || a->role[n] != SW_ROLE_GROUPED) continue;
        const sw_layer_hparams *hp = &a->model->nodes[n].layer->hp;
        if (hp->groups != hp->in_channels) continue;
        int s = sw_channel_analysis_source(a, n, 0);
        for (int c = 0; c < a->n_ch[s]; c++) {
            int r = a->cls[a->base[s] + c];
            if (first[r] >= 0) uf_union(node_parent, first[r], n);
        }
    }
    for (int n = 0; n < a->n_nodes; n++) size[uf_find(node_parent, n)]++;
    int *id = first; /* reuse: group id per root node */
    for (int n = 0; n < a->n_nodes; n++) id[n] = -1;
    a->n_dep_groups = 0;
    for (int n = 0; n < a->n_nodes; n++) {
        int r = uf_find(node_parent, n);
        if (size[r] < 2) {
            a->dep_group[n] = -1;
            continue;
        }
        if (id[r] < 0) id[r] = a->n_dep_groups++;
        a->dep_group[n] = id[r];
    }
    free(node_parent);
    free(first);
    free(size);
    return SW_OK;
}

/* With forbid_union: a pruned Conv2d/Linear channel kept because a group member keeps it. */
static sw_status check_union(work *w) {
    sw_channel_analysis *a = w->a;
    for (int p = 0; p < a->n_pos; p++) {
        int n = a->node_of[p];
        if (!a->zero[p] || (a->role[n] != SW_ROLE_CUT && a->role[n] != SW_ROLE_GROUPED)) continue;
        /* Another Conv2d/Linear (or the model input) of the class keeps the channel alive. */
        for (int q = w->head[a->cls[p]]; q >= 0; q = w->next[q]) {
            int m = a->node_of[q];
            if (a->dead[q] || m == n) continue;
            if (m < a->n_nodes && a->role[m] != SW_ROLE_CUT && a->role[m] != SW_ROLE_GROUPED)
                continue;
            const char *other = m == a->n_nodes ? "the model input" : a->model->nodes[m].name;
            return SW_FAIL(SW_ERR_CONFIG,
                           "dependency group conflict: %s prunes output channel %d but %s keeps "
                           "the channel it is added to; give every member of the group the same "
                           "channel mask (dependency_group_id), or allow the union",
                           a->model->nodes[n].name, p - a->base[n], other);
        }
    }
    return SW_OK;
}

/* ---- the run -------------------------------------------------------------------------- */

/* Everything the analysis and its scratch need; positions are numbered node by node. */
static sw_status allocate(sw_channel_analysis *a, work *w) {
    int n = a->n_nodes;
    a->n_ch = calloc((size_t)n + 1, sizeof *a->n_ch);
    a->base = calloc((size_t)n + 1, sizeof *a->base);
    a->role = calloc((size_t)n, sizeof *a->role);
    a->active = calloc((size_t)n * SW_MAX_INPUTS, 1);
    a->reach = calloc((size_t)n, 1);
    a->eff = calloc((size_t)n * SW_MAX_PARAMS, sizeof *a->eff);
    a->zero_col = calloc((size_t)n, sizeof *a->zero_col);
    a->group_in = calloc((size_t)n, sizeof *a->group_in);
    a->group_out = calloc((size_t)n, sizeof *a->group_out);
    a->group_count = calloc((size_t)n, sizeof *a->group_count);
    a->dep_group = calloc((size_t)n, sizeof *a->dep_group);
    w->need = calloc((size_t)n + 1, 1);
    w->out_mask = calloc((size_t)n, sizeof *w->out_mask);
    w->in_mask = calloc((size_t)n * SW_MAX_INPUTS, sizeof *w->in_mask);
    if (!a->n_ch || !a->base || !a->role || !a->active || !a->reach || !a->eff || !a->zero_col ||
        !a->group_in || !a->group_out || !a->group_count || !a->dep_group || !w->need ||
        !w->out_mask || !w->in_mask)
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate the channel analysis");
    long total = 0;
    for (int i = 0; i <= n; i++) {
        const sw_shape *s = out_shape(a, i);
        a->n_ch[i] = s->ndim ? s->dims[0] : 1;
        a->base[i] = (int)total;
        total += a->n_ch[i];
        if (total > 0x3fffffff) return SW_FAIL(SW_ERR_ARG, "model too large for speedup");
    }
    a->n_pos = (int)total;
    size_t p = (size_t)total;
    a->node_of = malloc(p * sizeof *a->node_of);
    a->dead = calloc(p, 1);
    a->kept = calloc(p, 1);
    a->zero = calloc(p, 1);
    a->folded = calloc(p, 1);
    a->cls = malloc(p * sizeof *a->cls);
    w->parent = malloc(p * sizeof *w->parent);
    w->head = malloc(p * sizeof *w->head);
    w->next = malloc(p * sizeof *w->next);
    w->ckept = calloc(p, 1);
    w->stack = malloc(p * sizeof *w->stack);
    if (!a->node_of || !a->dead || !a->kept || !a->zero || !a->folded || !a->cls || !w->parent ||
        !w->head || !w->next || !w->ckept || !w->stack)
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate the channel analysis (%zu channels)", p);
    for (int i = 0; i <= n; i++)
        for (int c = 0; c < a->n_ch[i]; c++) a->node_of[a->base[i] + c] = i;
    for (int i = 0; i < n; i++) a->role[i] = role_of(a, i);
    return SW_OK;
}

static sw_status analyse(work *w, const sw_mask_set *masks, const sw_channel_options *opt) {
    sw_channel_analysis *a = w->a;
    SW_TRY(allocate(a, w));
    SW_TRY(load_activation_masks(w, masks));
    SW_TRY(load_effective_params(w, masks));
    compute_dead(w, masks);

    /* An Add input that is zero in every channel adds nothing: drop the edge, so that its
     * branch can disappear instead of being kept as zeros. Keep one input at least. */
    for (int n = 0; n < a->n_nodes; n++) {
        const sw_node *node = &a->model->nodes[n];
        bool any = false;
        for (int j = 0; j < node->n_inputs; j++) {
            bool drop =
                a->role[n] == SW_ROLE_ADD && all_dead(a, sw_channel_analysis_source(a, n, j));
            a->active[n * SW_MAX_INPUTS + j] = !drop;
            any |= !drop;
        }
        if (!any) a->active[n * SW_MAX_INPUTS] = 1;
    }
    compute_reach(a);
    build_classes(w);

    /* Forced: the model output and input, and both sides of opaque layers. */
    int out = a->n_nodes - 1;
    for (int c = 0; c < a->n_ch[out]; c++) keep_class(w, a->base[out] + c);
    for (int c = 0; c < a->n_ch[a->n_nodes]; c++) keep_class(w, a->base[a->n_nodes] + c);
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n] || a->role[n] != SW_ROLE_OPAQUE) continue;
        for (int c = 0; c < a->n_ch[n]; c++) keep_class(w, a->base[n] + c);
        for (int j = 0; j < a->model->nodes[n].n_inputs; j++) {
            int s = sw_channel_analysis_source(a, n, j);
            for (int c = 0; c < a->n_ch[s]; c++) keep_class(w, a->base[s] + c);
        }
    }
    /* The fixed point: backward reads, then the structural rules, which may keep more
     * outputs whose reads must be followed in turn. Each round keeps at least one more class
     * or ends the loop. */
    bool changed;
    do {
        drain(w);
        changed = rule_at_least_one(w);
        changed |= rule_balance_groups(w);
    } while (changed || w->n_stack > 0);
    SW_TRY(record_groups(a));

    /* A Concat input left without channels is dropped; its branch may then disappear. */
    for (int n = 0; n < a->n_nodes; n++) {
        if (!a->reach[n] || a->role[n] != SW_ROLE_CONCAT) continue;
        if (count_kept(a, a->base[n], a->n_ch[n]) == 0) continue;
        for (int j = 0; j < a->model->nodes[n].n_inputs; j++) {
            int s = sw_channel_analysis_source(a, n, j);
            if (count_kept(a, a->base[s], a->n_ch[s]) == 0) a->active[n * SW_MAX_INPUTS + j] = 0;
        }
    }
    compute_reach(a);
    for (int n = 0; n < a->n_nodes; n++)
        if (a->reach[n] && count_kept(a, a->base[n], a->n_ch[n]) == 0)
            return SW_FAIL(SW_ERR_UNSUPPORTED,
                           "%s would keep no channel (an internal inconsistency of speedup; "
                           "please report it with the masks)",
                           a->model->nodes[n].name);
    SW_TRY(realise_dead(a));
    SW_TRY(find_dependency_groups(w));
    if (opt && opt->forbid_union) SW_TRY(check_union(w));
    return SW_OK;
}

sw_status sw_channel_analysis_run(const sw_model *model, const sw_mask_set *masks,
                                  const sw_channel_options *opt, sw_channel_analysis **out) {
    if (!model->finalized || model->n_nodes == 0)
        return SW_FAIL(SW_ERR_ARG, "speedup needs a finalised model with at least one node");
    SW_TRY(sw_mask_set_check(masks, model));
    sw_channel_analysis *a = calloc(1, sizeof *a);
    if (!a) return SW_FAIL(SW_ERR_NOMEM, "cannot allocate the channel analysis");
    a->model = model;
    a->n_nodes = model->n_nodes;
    work w = {.a = a};
    sw_status st = analyse(&w, masks, opt);
    work_deinit(&w, a->n_nodes);
    if (st != SW_OK) {
        sw_channel_analysis_free(a);
        return st;
    }
    *out = a;
    return SW_OK;
}
