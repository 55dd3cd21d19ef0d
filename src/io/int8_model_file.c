/* int8_model_file.c - saving and loading int8 models (format in int8_model_file.h).
 *
 * Loading rebuilds the graph from the architecture (sw_model_from_arch_json: every structural
 * check of a model file applies), then reads each node's tensors according to its mode, checking
 * dtype and shape against what the graph says before copying anything. */
#include "int8_model_file.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_file.h"
#include "safetensors.h"

#define FORMAT_NAME "shrinkwrap-int8-model"
#define FORMAT_VERSION "1"
/* Headers are JSON; a model's is a few hundred KiB at most. */
#define MAX_HEADER (64u << 20)

/* ---- saving -------------------------------------------------------------------------- */

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

/* The metadata of one op (tensors are written separately). */
/* Enough to rebuild the op's target: method, dtype, scheme and the granularity's kernel. */
static cJSON *op_json(const sw_i8_op *op) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "target", op->target);
    if (op->kind == SW_I8_OP_MASK) {
        cJSON_AddStringToObject(o, "kind", "mask");
        return o;
    }
    const sw_quant_target *t = &op->quant;
    cJSON_AddStringToObject(o, "kind", "quant");
    cJSON_AddStringToObject(o, "method", sw_quant_method_name(t->method));
    cJSON_AddStringToObject(o, "dtype", t->setting.dtype.name);
    if (t->setting.scheme == SW_QUANT_SCHEME_NONE)
        cJSON_AddNullToObject(o, "scheme");
    else
        cJSON_AddStringToObject(o, "scheme", sw_quant_scheme_name(t->setting.scheme));
    cJSON_AddItemToObject(o, "grid", int_array(t->grid.dims, t->grid.ndim));
    if (t->has_scaling) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddItemToObject(s, "kernel", int_array(t->scaling.kernel, t->scaling.n));
        cJSON_AddStringToObject(s, "pad",
                                t->scaling.pad_mode == SW_SCALING_PAD_BACK ? "back" : "front");
        cJSON_AddNumberToObject(s, "pad_value", t->scaling.pad_value);
        cJSON_AddItemToObject(o, "scaling", s);
    } else {
        cJSON_AddNullToObject(o, "scaling");
    }
    cJSON_AddBoolToObject(o, "dynamic", op->dynamic);
    return o;
}

/* The "quantization" metadata: every node that is not a plain float node. */
/* Float nodes without ops are left out: the common case costs no metadata. */
static char *quantization_json(const sw_int8_model *m) {
    cJSON *root = cJSON_CreateObject(), *nodes = cJSON_CreateObject();
    if (!root || !nodes) {
        cJSON_Delete(root);
        cJSON_Delete(nodes);
        return NULL;
    }
    cJSON_AddItemToObject(root, "nodes", nodes);
    for (int i = 0; i < m->model->n_nodes; i++) {
        const sw_i8_node *n = &m->nodes[i];
        if (n->mode == SW_I8_FLOAT && n->n_ops == 0 && !n->fused_relu) continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "mode", sw_i8_mode_name(n->mode));
        cJSON_AddBoolToObject(o, "fused_relu", n->fused_relu);
        if (n->mode == SW_I8_INT8) {
            cJSON *in = cJSON_CreateObject();
            cJSON_AddNumberToObject(in, "qmin", n->layer->in_qmin);
            cJSON_AddNumberToObject(in, "qmax", n->layer->in_qmax);
            cJSON_AddNumberToObject(in, "offset", n->layer->in_offset);
            cJSON_AddBoolToObject(in, "lsq", n->layer->in_lsq);
            cJSON_AddItemToObject(o, "input", in);
        }
        cJSON *ops = cJSON_CreateArray();
        for (int k = 0; k < n->n_ops; k++) cJSON_AddItemToArray(ops, op_json(&n->ops[k]));
        cJSON_AddItemToObject(o, "ops", ops);
        cJSON_AddItemToObject(nodes, m->model->nodes[i].name, o);
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* Everything the writer references must live until it writes: per-call buffers go here. */
/* The writer borrows tensor data until it writes: copies made here live until then. */
typedef struct keep {
    void **items;
    int n, cap;
} keep;

static void *kept(keep *k, size_t bytes) {
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 16;
        void **g = realloc(k->items, (size_t)cap * sizeof *g);
        if (!g) return NULL;
        k->items = g;
        k->cap = cap;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (p) k->items[k->n++] = p;
    return p;
}

static void keep_free(keep *k) {
    for (int i = 0; i < k->n; i++) free(k->items[i]);
    free(k->items);
}

static sw_status add_f32(sw_st_writer *w, const char *name, const float *data, int ndim,
                         const int *dims) {
    int64_t shape[SW_MAX_DIMS];
    for (int d = 0; d < ndim; d++) shape[d] = dims[d];
    return sw_st_writer_add(w, name, SW_DTYPE_F32, ndim, shape, data);
}

/* The stored integers without their row padding, in the weight's own shape. */
static sw_status write_int8_node(sw_st_writer *w, keep *k, const sw_node *nd,
                                 const sw_i8_layer *l) {
    char name[512];
    const sw_layer *layer = nd->layer;
    const sw_shape *ws = &layer->param_shapes[sw_layer_param_index(layer, "weight")];
    int8_t *wd = kept(k, (size_t)l->out_channels * l->k);
    if (!wd) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    for (int o = 0; o < l->out_channels; o++)
        memcpy(wd + (size_t)o * l->k, l->w + (size_t)o * l->ldk, l->k);
    int64_t shape[SW_MAX_DIMS];
    for (int d = 0; d < ws->ndim; d++) shape[d] = ws->dims[d];
    snprintf(name, sizeof name, "%s.weight", nd->name);
    SW_TRY(sw_st_writer_add(w, name, SW_DTYPE_I8, ws->ndim, shape, wd));
    int o = l->out_channels, one = 1;
    snprintf(name, sizeof name, "%s.weight_scale", nd->name);
    SW_TRY(add_f32(w, name, l->w_scale, 1, &o));
    snprintf(name, sizeof name, "%s.weight_zero_point", nd->name);
    SW_TRY(add_f32(w, name, l->w_zp, 1, &o));
    snprintf(name, sizeof name, "%s.bias", nd->name);
    SW_TRY(add_f32(w, name, l->bias, 1, &o));
    snprintf(name, sizeof name, "%s.input_scale", nd->name);
    SW_TRY(add_f32(w, name, &l->in_scale, 1, &one));
    snprintf(name, sizeof name, "%s.input_zero_point", nd->name);
    return add_f32(w, name, &l->in_zp, 1, &one);
}

static sw_status write_ops(sw_st_writer *w, const sw_model *g, int i, const sw_i8_node *n) {
    char name[512];
    for (int k = 0; k < n->n_ops; k++) {
        const sw_i8_op *op = &n->ops[k];
        if (op->kind == SW_I8_OP_MASK) {
            int len = (int)op->mask_numel;
            snprintf(name, sizeof name, "%s.%s.mask", g->nodes[i].name, op->target);
            SW_TRY(add_f32(w, name, op->mask, 1, &len));
            continue;
        }
        const sw_quant_target *t = &op->quant;
        snprintf(name, sizeof name, "%s.%s.scale", g->nodes[i].name, op->target);
        SW_TRY(add_f32(w, name, t->scale, t->grid.ndim, t->grid.dims));
        snprintf(name, sizeof name, "%s.%s.zero_point", g->nodes[i].name, op->target);
        SW_TRY(add_f32(w, name, t->zero_point, t->grid.ndim, t->grid.dims));
    }
    return SW_OK;
}

sw_status sw_int8_model_save(const sw_int8_model *m, const char *path,
                             const char *const *extra_meta) {
    const sw_model *g = m->model;
    sw_st_writer *w = NULL;
    SW_TRY(sw_st_writer_new(&w));
    keep k = {0};
    char *arch = NULL, *quant = quantization_json(m);
    sw_status st = quant ? SW_OK : SW_FAIL(SW_ERR_NOMEM, "out of memory");
    if (st == SW_OK) st = sw_model_arch_to_json(g, &arch);
    if (st == SW_OK) st = sw_st_writer_meta(w, "format", FORMAT_NAME);
    if (st == SW_OK) st = sw_st_writer_meta(w, "format_version", FORMAT_VERSION);
    if (st == SW_OK) st = sw_st_writer_meta(w, "arch", g->arch ? g->arch : "custom");
    if (st == SW_OK) st = sw_st_writer_meta(w, "architecture", arch);
    if (st == SW_OK) st = sw_st_writer_meta(w, "quantization", quant);
    for (int i = 0; st == SW_OK && extra_meta && extra_meta[i] && extra_meta[i + 1]; i += 2)
        st = sw_st_writer_meta(w, extra_meta[i], extra_meta[i + 1]);
    for (int i = 0; st == SW_OK && i < g->n_nodes; i++) {
        const sw_node *nd = &g->nodes[i];
        const sw_i8_node *n = &m->nodes[i];
        if (n->mode == SW_I8_INT8) {
            st = write_int8_node(w, &k, nd, n->layer);
        } else {
            for (int p = 0; st == SW_OK && p < nd->layer->n_params; p++) {
                char full[512];
                snprintf(full, sizeof full, "%s.%s", nd->name, nd->layer->params[p].name);
                st = sw_st_writer_add_tensor(w, full, &nd->layer->params[p].value);
            }
        }
        if (st == SW_OK) st = write_ops(w, g, i, n);
    }
    if (st == SW_OK) st = sw_st_writer_write(w, path);
    free(arch);
    cJSON_free(quant);
    keep_free(&k);
    sw_st_writer_free(w);
    if (st != SW_OK) sw_error_prefix("saving int8 model \"%s\"", path);
    return st;
}

/* ---- loading ------------------------------------------------------------------------- */

/* An F32 tensor `name` of exactly `numel` elements (and, when dims given, that shape). */
/* Nothing is copied before dtype and size (and shape, when given) are checked. */
static sw_status read_f32(const sw_safetensors *st, const char *name, float *dst, size_t numel,
                          const sw_shape *shape) {
    const sw_st_entry *e = sw_safetensors_find(st, name);
    if (!e) return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\" is missing", name);
    size_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    bool ok = e->dtype == SW_DTYPE_F32 && n == numel;
    if (ok && shape) {
        ok = e->ndim == shape->ndim;
        for (int d = 0; ok && d < e->ndim; d++) ok = e->shape[d] == shape->dims[d];
    }
    if (!ok)
        return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": expected F32 with %zu elements%s", name,
                       numel, shape ? " of the architecture's shape" : "");
    memcpy(dst, sw_safetensors_data(st, e), numel * sizeof(float));
    return SW_OK;
}

/* The input range must fit a byte with its offset, or the integer path would overflow. */
static sw_status load_int8_layer(const sw_safetensors *st, const sw_node *nd, const cJSON *jn,
                                 sw_i8_layer **out) {
    char name[512];
    const sw_layer *layer = nd->layer;
    if (layer->kind != SW_LAYER_CONV2D && layer->kind != SW_LAYER_LINEAR)
        return SW_FAIL(SW_ERR_FORMAT, "node \"%s\" is a %s; only Conv2d and Linear run in int8",
                       nd->name, layer->ops->type_name);
    const sw_shape *ws = &layer->param_shapes[sw_layer_param_index(layer, "weight")];
    int o = ws->dims[0];
    size_t k = sw_shape_numel(ws) / (size_t)o;
    snprintf(name, sizeof name, "%s.weight", nd->name);
    const sw_st_entry *e = sw_safetensors_find(st, name);
    bool ok = e && e->dtype == SW_DTYPE_I8 && e->ndim == ws->ndim;
    for (int d = 0; ok && d < ws->ndim; d++) ok = e->shape[d] == ws->dims[d];
    if (!ok)
        return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\": expected I8 of the weight's shape", name);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(jn, "input");
    const cJSON *qmin = cJSON_GetObjectItemCaseSensitive(in, "qmin");
    const cJSON *qmax = cJSON_GetObjectItemCaseSensitive(in, "qmax");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(in, "offset");
    if (!cJSON_IsNumber(qmin) || !cJSON_IsNumber(qmax) || !cJSON_IsNumber(off) ||
        qmin->valueint > qmax->valueint || qmin->valueint + off->valueint < 0 ||
        qmax->valueint + off->valueint > 255)
        return SW_FAIL(SW_ERR_FORMAT,
                       "node \"%s\": the input range does not fit 8 bits (qmin, qmax, offset)",
                       nd->name);
    sw_i8_layer *l = NULL;
    SW_TRY(sw_i8_layer_new(o, k, &l));
    const int8_t *src = (const int8_t *)sw_safetensors_data(st, e);
    for (int r = 0; r < o; r++) memcpy(l->w + (size_t)r * l->ldk, src + (size_t)r * k, k);
    l->in_qmin = qmin->valueint;
    l->in_qmax = qmax->valueint;
    l->in_offset = off->valueint;
    l->in_lsq = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(in, "lsq"));
    sw_status s = SW_OK;
    const char *fields[] = {"weight_scale", "weight_zero_point", "bias"};
    float *dsts[] = {l->w_scale, l->w_zp, l->bias};
    for (int f = 0; f < 3 && s == SW_OK; f++) {
        snprintf(name, sizeof name, "%s.%s", nd->name, fields[f]);
        s = read_f32(st, name, dsts[f], (size_t)o, NULL);
    }
    if (s == SW_OK) {
        snprintf(name, sizeof name, "%s.input_scale", nd->name);
        s = read_f32(st, name, &l->in_scale, 1, NULL);
    }
    if (s == SW_OK) {
        snprintf(name, sizeof name, "%s.input_zero_point", nd->name);
        s = read_f32(st, name, &l->in_zp, 1, NULL);
    }
    if (s == SW_OK && !(l->in_scale > 0.0f))
        s = SW_FAIL(SW_ERR_FORMAT, "node \"%s\": the input scale must be positive", nd->name);
    if (s != SW_OK) {
        sw_i8_layer_free(l);
        return s;
    }
    l->groups = layer->kind == SW_LAYER_CONV2D ? layer->hp.groups : 1;
    s = sw_i8_layer_finish(l);
    if (s != SW_OK) {
        sw_i8_layer_free(l);
        return s;
    }
    *out = l;
    return SW_OK;
}

static bool method_from_name(const char *name, sw_quant_method *out) {
    for (int m = SW_QUANT_BYPASS; m <= SW_QUANT_BNN; m++)
        if (strcmp(sw_quant_method_name((sw_quant_method)m), name) == 0) {
            *out = (sw_quant_method)m;
            return true;
        }
    return false;
}

static bool int_list(const cJSON *a, int *out, int *n, int max) {
    *n = 0;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) < 1 || cJSON_GetArraySize(a) > max) return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsNumber(it)) return false;
        out[(*n)++] = it->valueint;
    }
    return true;
}

/* The per-sample shape of op target `target` of node i. */
static bool target_sample(const sw_model *g, int i, const char *target, sw_shape *s, int *input) {
    const sw_node *nd = &g->nodes[i];
    if (strcmp(target, "_output_0") == 0) {
        *s = nd->out_shape;
        *input = -1;
        return true;
    }
    if (strncmp(target, "_input_", 7) != 0) return false;
    char *end = NULL;
    long j = strtol(target + 7, &end, 10);
    if (!end || *end || end == target + 7 || j < 0 || j >= nd->n_inputs) return false;
    *input = (int)j;
    *s = nd->inputs[j] == SW_NODE_INPUT ? g->input_shape : g->nodes[nd->inputs[j]].out_shape;
    return true;
}

/* The grid in the file must be what the kernel makes of the target: a file cannot make the
 * executor index past its scales. */
static sw_status load_op(const sw_safetensors *st, const sw_model *g, int i, const cJSON *jo,
                         sw_i8_op *op) {
    const char *node = g->nodes[i].name;
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(jo, "target");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(jo, "kind");
    sw_shape sample;
    if (!cJSON_IsString(target) || !cJSON_IsString(kind) ||
        !target_sample(g, i, target->valuestring, &sample, &op->input))
        return SW_FAIL(SW_ERR_FORMAT, "node \"%s\": an op without a valid target or kind", node);
    snprintf(op->target, sizeof op->target, "%s", target->valuestring);
    char name[512];
    if (strcmp(kind->valuestring, "mask") == 0) {
        op->kind = SW_I8_OP_MASK;
        op->mask_numel = sw_shape_numel(&sample);
        op->mask = malloc(op->mask_numel * sizeof(float));
        if (!op->mask) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        snprintf(name, sizeof name, "%s.%s.mask", node, op->target);
        return read_f32(st, name, op->mask, op->mask_numel, NULL);
    }
    if (strcmp(kind->valuestring, "quant") != 0)
        return SW_FAIL(SW_ERR_FORMAT, "node \"%s\": unknown op kind \"%s\"", node,
                       kind->valuestring);
    op->kind = SW_I8_OP_QUANT;
    sw_quant_target *t = &op->quant;
    *t = (sw_quant_target){.node = i, .module = node, .param_index = -1, .entry = -1};
    snprintf(t->name, sizeof t->name, "%s", op->target);
    t->kind = op->input >= 0 ? SW_TARGET_INPUT : SW_TARGET_OUTPUT;
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(jo, "method");
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(jo, "dtype");
    const cJSON *scheme = cJSON_GetObjectItemCaseSensitive(jo, "scheme");
    char why[200];
    if (!cJSON_IsString(method) || !method_from_name(method->valuestring, &t->method) ||
        !cJSON_IsString(dtype) ||
        !sw_quant_dtype_parse(dtype->valuestring, &t->setting.dtype, why, sizeof why))
        return SW_FAIL(SW_ERR_FORMAT, "node \"%s\" op %s: unknown method or dtype", node,
                       op->target);
    t->setting.scheme = !cJSON_IsString(scheme)                      ? SW_QUANT_SCHEME_NONE
                        : strcmp(scheme->valuestring, "affine") == 0 ? SW_QUANT_SCHEME_AFFINE
                                                                     : SW_QUANT_SCHEME_SYMMETRIC;
    t->qmin = t->setting.dtype.qmin;
    t->qmax = t->setting.dtype.qmax;
    op->dynamic = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jo, "dynamic"));
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(jo, "scaling");
    if (cJSON_IsObject(sc)) {
        int kernel[SW_MAX_DIMS], n;
        const cJSON *pad = cJSON_GetObjectItemCaseSensitive(sc, "pad");
        const cJSON *pv = cJSON_GetObjectItemCaseSensitive(sc, "pad_value");
        if (!int_list(cJSON_GetObjectItemCaseSensitive(sc, "kernel"), kernel, &n, SW_MAX_DIMS) ||
            !cJSON_IsString(pad) || !cJSON_IsNumber(pv))
            return SW_FAIL(SW_ERR_FORMAT, "node \"%s\" op %s: bad scaling", node, op->target);
        for (int d = 0; d < n; d++)
            if (kernel[d] == 0 || kernel[d] < SW_SCALING_FULL)
                return SW_FAIL(SW_ERR_FORMAT, "node \"%s\" op %s: bad kernel", node, op->target);
        t->has_scaling = true;
        t->scaling = sw_scaling_make(n, kernel,
                                     strcmp(pad->valuestring, "back") == 0 ? SW_SCALING_PAD_BACK
                                                                           : SW_SCALING_PAD_FRONT,
                                     pv->valueint);
    }
    /* The grid must be what the scaling makes of a batch of one. */
    sw_shape one, grid = sw_shape_1d(1);
    SW_TRY(sw_shape_batched(&sample, 1, &one));
    if (t->has_scaling) SW_TRY(sw_scaling_grid(&t->scaling, &one, &grid, NULL));
    int dims[SW_MAX_DIMS], nd = 0;
    bool ok = int_list(cJSON_GetObjectItemCaseSensitive(jo, "grid"), dims, &nd, SW_MAX_DIMS) &&
              nd == grid.ndim;
    for (int d = 0; ok && d < nd; d++) ok = dims[d] == grid.dims[d];
    if (!ok)
        return SW_FAIL(SW_ERR_FORMAT, "node \"%s\" op %s: the grid does not fit the target", node,
                       op->target);
    t->grid = grid;
    t->n_blocks = sw_shape_numel(&grid);
    t->store = calloc(4 * t->n_blocks, sizeof(float));
    if (!t->store) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    t->scale = t->store;
    t->zero_point = t->store + t->n_blocks;
    t->tracked_min = t->store + 2 * t->n_blocks;
    t->tracked_max = t->store + 3 * t->n_blocks;
    t->has_scale = true;
    snprintf(name, sizeof name, "%s.%s.scale", node, op->target);
    SW_TRY(read_f32(st, name, t->scale, t->n_blocks, NULL));
    snprintf(name, sizeof name, "%s.%s.zero_point", node, op->target);
    return read_f32(st, name, t->zero_point, t->n_blocks, NULL);
}

/* Float and identity nodes read their parameters as a model file would. */
static sw_status load_node(const sw_safetensors *st, sw_int8_model *m, int i, const cJSON *jn) {
    sw_model *g = m->model;
    sw_node *nd = &g->nodes[i];
    sw_i8_node *n = &m->nodes[i];
    n->mode = SW_I8_FLOAT;
    if (jn) {
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(jn, "mode");
        if (!cJSON_IsString(mode)) return SW_FAIL(SW_ERR_FORMAT, "node \"%s\": no mode", nd->name);
        if (strcmp(mode->valuestring, "int8") == 0)
            n->mode = SW_I8_INT8;
        else if (strcmp(mode->valuestring, "identity") == 0)
            n->mode = SW_I8_IDENTITY;
        else if (strcmp(mode->valuestring, "float") != 0)
            return SW_FAIL(SW_ERR_FORMAT, "node \"%s\": unknown mode \"%s\"", nd->name,
                           mode->valuestring);
        n->fused_relu = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(jn, "fused_relu"));
    }
    if (n->mode == SW_I8_IDENTITY &&
        (nd->n_inputs != 1 ||
         !sw_shape_equal(&nd->out_shape, nd->inputs[0] == SW_NODE_INPUT
                                             ? &g->input_shape
                                             : &g->nodes[nd->inputs[0]].out_shape)))
        return SW_FAIL(SW_ERR_FORMAT, "node \"%s\" cannot be an identity (shapes differ)",
                       nd->name);
    if (n->mode == SW_I8_INT8) {
        SW_TRY(load_int8_layer(st, nd, jn, &n->layer));
    } else {
        for (int p = 0; p < nd->layer->n_params; p++) {
            char full[512];
            snprintf(full, sizeof full, "%s.%s", nd->name, nd->layer->params[p].name);
            sw_tensor *v = &nd->layer->params[p].value;
            SW_TRY(read_f32(st, full, v->data, v->numel, &v->shape));
        }
    }
    const cJSON *ops = jn ? cJSON_GetObjectItemCaseSensitive(jn, "ops") : NULL;
    if (!ops) return SW_OK;
    if (!cJSON_IsArray(ops) || cJSON_GetArraySize(ops) > 64)
        return SW_FAIL(SW_ERR_FORMAT, "node \"%s\": ops is not a list", nd->name);
    n->ops = calloc((size_t)cJSON_GetArraySize(ops) + 1, sizeof *n->ops);
    if (!n->ops) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    const cJSON *jo;
    cJSON_ArrayForEach(jo, ops) {
        /* Counted first: a half-loaded op is still freed with the model. */
        sw_i8_op *op = &n->ops[n->n_ops++];
        SW_TRY(load_op(st, g, i, jo, op));
    }
    return SW_OK;
}

static sw_status from_safetensors(const sw_safetensors *st, sw_int8_model **out) {
    const char *format = sw_safetensors_meta(st, "format");
    if (!format || strcmp(format, FORMAT_NAME) != 0)
        return SW_FAIL(SW_ERR_FORMAT,
                       "not an int8 model file (__metadata__ \"format\" is %s); float model "
                       "files load with sw_model_load",
                       format ? format : "missing");
    const char *version = sw_safetensors_meta(st, "format_version");
    if (!version || strcmp(version, FORMAT_VERSION) != 0)
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "int8 model format version %s; this shrinkwrap reads "
                       "version " FORMAT_VERSION,
                       version ? version : "(missing)");
    const char *arch_json = sw_safetensors_meta(st, "architecture");
    const char *quant_json = sw_safetensors_meta(st, "quantization");
    if (!arch_json || !quant_json)
        return SW_FAIL(SW_ERR_FORMAT, "no \"architecture\" or \"quantization\" in __metadata__");
    sw_model *g = NULL;
    SW_TRY(sw_model_from_arch_json(arch_json, sw_safetensors_meta(st, "arch"), &g));
    sw_int8_model *m = NULL;
    SW_TRY(sw_int8_model_wrap(g, &m));
    cJSON *q = cJSON_Parse(quant_json);
    const cJSON *nodes = q ? cJSON_GetObjectItemCaseSensitive(q, "nodes") : NULL;
    sw_status s =
        cJSON_IsObject(nodes) ? SW_OK : SW_FAIL(SW_ERR_FORMAT, "quantization: no \"nodes\"");
    const cJSON *jn;
    if (s == SW_OK) cJSON_ArrayForEach(jn, nodes) {
            if (sw_model_find(g, jn->string) < 0) {
                s = SW_FAIL(SW_ERR_FORMAT, "quantization: \"%s\" is not a node", jn->string);
                break;
            }
        }
    for (int i = 0; s == SW_OK && i < g->n_nodes; i++)
        s = load_node(st, m, i, cJSON_GetObjectItemCaseSensitive(nodes, g->nodes[i].name));
    cJSON_Delete(q);
    if (s != SW_OK) {
        sw_int8_model_free(m);
        return s;
    }
    *out = m;
    return SW_OK;
}

sw_status sw_int8_model_load(const char *path, sw_int8_model **out) {
    sw_safetensors *st = NULL;
    SW_TRY(sw_safetensors_read_file(path, &st));
    sw_status s = from_safetensors(st, out);
    sw_safetensors_free(st);
    if (s != SW_OK) sw_error_prefix("loading int8 model \"%s\"", path);
    return s;
}

/* Only the header is read: eval and bench call this on every model argument. */
bool sw_int8_model_file_is(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return false;
    unsigned char len[8];
    bool yes = false;
    if (fread(len, 1, 8, fp) == 8) {
        uint64_t n = 0;
        for (int b = 7; b >= 0; b--) n = (n << 8) | len[b];
        char *h = n > 0 && n < MAX_HEADER ? malloc((size_t)n + 1) : NULL;
        if (h && fread(h, 1, (size_t)n, fp) == (size_t)n) {
            h[n] = '\0';
            cJSON *root = cJSON_Parse(h);
            const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(meta, "format");
            yes = cJSON_IsString(f) && strcmp(f->valuestring, FORMAT_NAME) == 0;
            cJSON_Delete(root);
        }
        free(h);
    }
    fclose(fp);
    return yes;
}
