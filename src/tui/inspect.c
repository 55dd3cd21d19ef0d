/* inspect.c - what the inspector shows for a module. */
#include "inspect.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *sw_tui_human(double value, char *buf, int size) {
    static const char *const units[] = {"", "k", "M", "G", "T"};
    int u = 0;
    while (fabs(value) >= 1000.0 && u < 4) {
        value /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, (size_t)size, "%.0f", value);
    else
        snprintf(buf, (size_t)size,
                 fabs(value) < 10    ? "%.2f%s"
                 : fabs(value) < 100 ? "%.1f%s"
                                     : "%.0f%s",
                 value, units[u]);
    return buf;
}

void sw_tui_inspect_add(sw_tui_inspector *out, const char *label, sw_tui_style style,
                        const char *fmt, ...) {
    if (out->n >= SW_TUI_INSPECT_ROWS) return;
    sw_tui_inspect_row *r = &out->rows[out->n++];
    snprintf(r->label, sizeof r->label, "%s", label);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->value, sizeof r->value, fmt, ap);
    va_end(ap);
    r->style = style;
}

/* The hyper-parameters that define a layer, in PyTorch's words. */
static void layer_hparams(const sw_layer *l, char *buf, size_t size) {
    const sw_layer_hparams *hp = &l->hp;
    switch (l->kind) {
    case SW_LAYER_LINEAR:
        snprintf(buf, size, "in %d -> out %d%s", hp->in_features, hp->out_features,
                 hp->bias ? "" : ", no bias");
        break;
    case SW_LAYER_CONV2D:
        snprintf(buf, size, "%d -> %d, kernel %dx%d, stride %d, pad %d%s%s", hp->in_channels,
                 hp->out_channels, hp->kernel[0], hp->kernel[1], hp->stride[0], hp->padding[0],
                 hp->groups > 1 ? (hp->groups == hp->in_channels ? ", depthwise" : ", grouped")
                                : "",
                 hp->bias ? "" : ", no bias");
        break;
    case SW_LAYER_BATCHNORM2D:
    case SW_LAYER_BATCHNORM1D:
        snprintf(buf, size, "%d features, eps %g, momentum %g", hp->num_features, (double)hp->eps,
                 (double)hp->momentum);
        break;
    case SW_LAYER_MAXPOOL2D:
    case SW_LAYER_AVGPOOL2D:
        snprintf(buf, size, "kernel %dx%d, stride %d, pad %d", hp->kernel[0], hp->kernel[1],
                 hp->stride[0], hp->padding[0]);
        break;
    case SW_LAYER_DROPOUT:
        snprintf(buf, size, "p %g", (double)hp->p);
        break;
    default:
        buf[0] = '\0';
    }
}

/* Fraction of zeros and mean |value| of a tensor. */
static void tensor_stats(const sw_tensor *v, double *sparsity, double *mean_abs) {
    size_t zeros = 0;
    double sum = 0;
    for (size_t k = 0; k < v->numel; k++) {
        zeros += v->data[k] == 0.0f;
        sum += fabs((double)v->data[k]);
    }
    *sparsity = v->numel ? (double)zeros / (double)v->numel : 0;
    *mean_abs = v->numel ? sum / (double)v->numel : 0;
}

static void inspect_leaf(const sw_tui_tree *t, const sw_module_entry *e, sw_tui_inspector *out) {
    const sw_model *m = t->model;
    const sw_node *node = &m->nodes[e->node];
    const sw_layer *l = node->layer;
    char a[64], b[32], c[32];
    snprintf(out->title, sizeof out->title, "%s (%s)", e->path, sw_layer_kind_name(l->kind));
    char hp[160];
    layer_hparams(l, hp, sizeof hp);
    if (hp[0]) sw_tui_inspect_add(out, "layer", SW_STYLE_NORMAL, "%s", hp);
    sw_tui_inspect_add(out, "output", SW_STYLE_NORMAL, "%s",
                       sw_shape_format(&node->out_shape, a, sizeof a));
    double total_params = (double)sw_model_param_count(m), total_flops = sw_model_flops(m);
    sw_tui_inspect_add(out, "params", SW_STYLE_NORMAL, "%s (%.1f%% of model)",
                       sw_tui_human((double)e->param_count, b, sizeof b),
                       total_params > 0 ? 100.0 * (double)e->param_count / total_params : 0.0);
    sw_tui_inspect_add(out, "FLOPs", SW_STYLE_NORMAL, "%s per image (%.1f%%)",
                       sw_tui_human(e->flops, c, sizeof c),
                       total_flops > 0 ? 100.0 * e->flops / total_flops : 0.0);
    for (int p = 0; p < l->n_params; p++) {
        const sw_param *prm = &l->params[p];
        double sp = 0, mean = 0;
        if (prm->value.data) tensor_stats(&prm->value, &sp, &mean);
        if (prm->trainable)
            sw_tui_inspect_add(out, prm->name, SW_STYLE_NORMAL, "%s %zu, %.1f%% zero, mean|w| %.3g",
                               sw_shape_format(&l->param_shapes[p], a, sizeof a),
                               sw_shape_numel(&l->param_shapes[p]), 100.0 * sp, mean);
        else
            sw_tui_inspect_add(out, prm->name, SW_STYLE_DIM, "%s buffer",
                               sw_shape_format(&l->param_shapes[p], a, sizeof a));
    }
    /* Graph neighbours: where the inputs come from and who reads the output. */
    char list[200];
    int at = 0;
    list[0] = '\0';
    for (int i = 0; i < node->n_inputs && at < (int)sizeof list; i++) {
        int src = node->inputs[i];
        at += snprintf(list + at, sizeof list - (size_t)at, "%s%s", i ? ", " : "",
                       src == SW_NODE_INPUT ? "input" : m->nodes[src].name);
    }
    sw_tui_inspect_add(out, "inputs", SW_STYLE_DIM, "%s", list);
    at = 0;
    list[0] = '\0';
    for (int j = e->node + 1; j < m->n_nodes && at < (int)sizeof list; j++)
        for (int i = 0; i < m->nodes[j].n_inputs; i++)
            if (m->nodes[j].inputs[i] == e->node) {
                at += snprintf(list + at, sizeof list - (size_t)at, "%s%s", at ? ", " : "",
                               m->nodes[j].name);
                break;
            }
    sw_tui_inspect_add(out, "feeds", SW_STYLE_DIM, "%s", at ? list : "(model output)");
}

static void inspect_container(const sw_tui_tree *t, int entry, const sw_module_entry *e,
                              sw_tui_inspector *out) {
    const sw_model *m = t->model;
    char b[32], c[32];
    snprintf(out->title, sizeof out->title, "%s (container)", e->path);
    int leaves = 0;
    for (int i = entry + 1; i < t->mt.n && t->mt.entries[i].depth > e->depth; i++)
        leaves += t->mt.entries[i].node >= 0;
    sw_tui_inspect_add(out, "holds", SW_STYLE_NORMAL, "%d children, %d layers", e->n_children,
                       leaves);
    double total_params = (double)sw_model_param_count(m), total_flops = sw_model_flops(m);
    sw_tui_inspect_add(out, "params", SW_STYLE_NORMAL, "%s (%.1f%% of model)",
                       sw_tui_human((double)e->param_count, b, sizeof b),
                       total_params > 0 ? 100.0 * (double)e->param_count / total_params : 0.0);
    sw_tui_inspect_add(out, "FLOPs", SW_STYLE_NORMAL, "%s per image (%.1f%%)",
                       sw_tui_human(e->flops, c, sizeof c),
                       total_flops > 0 ? 100.0 * e->flops / total_flops : 0.0);
    sw_tui_inspect_add(out, "sparsity", SW_STYLE_NORMAL, "%.1f%% of its weights are zero",
                       100.0 * sw_tui_tree_sparsity(t, entry));
}

void sw_tui_inspect(const sw_tui_tree *t, int entry, sw_tui_inspector *out) {
    out->n = 0;
    out->title[0] = '\0';
    if (entry < 0 || entry >= t->mt.n) return;
    const sw_module_entry *e = &t->mt.entries[entry];
    if (e->node >= 0)
        inspect_leaf(t, e, out);
    else
        inspect_container(t, entry, e, out);
}
