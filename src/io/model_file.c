/* model_file.c - a model as one safetensors file: weights as tensors, graph as JSON metadata.
 *
 * The architecture JSON lists the nodes in execution order, each with its name, PyTorch type
 * name, inputs and the hyper-parameters its type reads (one table below says which). Loading
 * rebuilds the graph through the ordinary sw_layer_new / sw_model_add / sw_model_finalize path,
 * so every check a hand-built model gets (hyper-parameter ranges, shape inference) applies to
 * a file too. Files come from anywhere, so on top of that:
 *   - every integer is range-checked before it reaches a layer, and every activation is kept
 *     below SW_ARCH_MAX_NUMEL elements, which keeps the layers' int size arithmetic far from
 *     overflow whatever the file says;
 *   - each layer's parameters are checked against the file's tensors (present, F32, same
 *     shape) before the model allocates anything, so a file can only make us allocate about
 *     as much memory as it is large.
 */
#include "model_file.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "safetensors.h"

#define FORMAT_NAME "shrinkwrap-model"
#define FORMAT_VERSION "1"

/* Upper bounds on what an architecture may declare. Far above any model shrinkwrap trains
 * (Fashion-MNIST's largest activation is 32x28x28 = 25088), far below int overflow. */
#define SW_ARCH_MAX_NUMEL (1 << 26)  /* elements of one sample's activation */
#define SW_ARCH_MAX_SIZE (1 << 24)   /* features, channels, groups */
#define SW_ARCH_MAX_WINDOW (1 << 12) /* kernel, stride, padding, dilation */
/* Parameters and buffers of the whole model (256 MiB of floats, about 80 times the zoo's
 * largest model): without a cap, a few bytes of JSON could ask for terabytes. */
#define SW_ARCH_MAX_PARAMS (1 << 26)
/* Node names, in bytes: "<node>.<param>" then always fits the fixed buffers below. */
#define SW_ARCH_MAX_NAME 256

/* ---- the hyper-parameter table ---------------------------------------------------------- */

typedef enum hp_type { HP_INT, HP_PAIR, HP_BOOL, HP_FLOAT } hp_type;

/* One hyper-parameter of a layer kind as it appears in the JSON. */
typedef struct hp_field {
    const char *key;
    hp_type type;
    size_t offset; /* into sw_layer_hparams */
    bool required; /* else PyTorch's default (sw_layer_hparams_default) */
    int min, max;  /* integers and pairs */
} hp_field;

#define HP(key, type, member, required, min, max)                                                  \
    { key, type, offsetof(sw_layer_hparams, member), required, min, max }
#define F_IN_FEATURES HP("in_features", HP_INT, in_features, true, 1, SW_ARCH_MAX_SIZE)
#define F_OUT_FEATURES HP("out_features", HP_INT, out_features, true, 1, SW_ARCH_MAX_SIZE)
#define F_IN_CHANNELS HP("in_channels", HP_INT, in_channels, true, 1, SW_ARCH_MAX_SIZE)
#define F_OUT_CHANNELS HP("out_channels", HP_INT, out_channels, true, 1, SW_ARCH_MAX_SIZE)
#define F_KERNEL HP("kernel_size", HP_PAIR, kernel, true, 1, SW_ARCH_MAX_WINDOW)
#define F_STRIDE HP("stride", HP_PAIR, stride, false, 1, SW_ARCH_MAX_WINDOW)
#define F_PADDING HP("padding", HP_PAIR, padding, false, 0, SW_ARCH_MAX_WINDOW)
#define F_DILATION HP("dilation", HP_PAIR, dilation, false, 1, SW_ARCH_MAX_WINDOW)
#define F_GROUPS HP("groups", HP_INT, groups, false, 1, SW_ARCH_MAX_SIZE)
#define F_BIAS HP("bias", HP_BOOL, bias, false, 0, 0)
#define F_NUM_FEATURES HP("num_features", HP_INT, num_features, true, 1, SW_ARCH_MAX_SIZE)
#define F_EPS HP("eps", HP_FLOAT, eps, false, 0, 0)
#define F_MOMENTUM HP("momentum", HP_FLOAT, momentum, false, 0, 0)
#define F_P HP("p", HP_FLOAT, p, false, 0, 0)
#define F_END                                                                                      \
    { NULL, HP_INT, 0, false, 0, 0 }

#define HP_MAX_FIELDS 10
static const hp_field kind_fields[SW_LAYER_KIND_COUNT][HP_MAX_FIELDS] = {
    [SW_LAYER_LINEAR] = {F_IN_FEATURES, F_OUT_FEATURES, F_BIAS, F_END},
    [SW_LAYER_CONV2D] = {F_IN_CHANNELS, F_OUT_CHANNELS, F_KERNEL, F_STRIDE, F_PADDING, F_DILATION,
                         F_GROUPS, F_BIAS, F_END},
    [SW_LAYER_BATCHNORM2D] = {F_NUM_FEATURES, F_EPS, F_MOMENTUM, F_END},
    [SW_LAYER_BATCHNORM1D] = {F_NUM_FEATURES, F_EPS, F_MOMENTUM, F_END},
    [SW_LAYER_MAXPOOL2D] = {F_KERNEL, F_STRIDE, F_PADDING, F_DILATION, F_END},
    [SW_LAYER_AVGPOOL2D] = {F_KERNEL, F_STRIDE, F_PADDING, F_END},
    [SW_LAYER_DROPOUT] = {F_P, F_END},
    /* ReLU, ReLU6, global pool, Flatten, Add, Concat, Identity: no hyper-parameters. */
};

static int *hp_int(sw_layer_hparams *hp, const hp_field *f) {
    return (int *)((char *)hp + f->offset);
}

static const int *hp_int_c(const sw_layer_hparams *hp, const hp_field *f) {
    return (const int *)((const char *)hp + f->offset);
}

/* ---- writing the architecture ----------------------------------------------------------- */

/* A float as the shortest decimal that converts back to the same float (eps 1e-5 prints as
 * 1e-05, not 9.99999974737875e-06); cJSON prints such a double exactly. The fallback, the
 * float's own double value, may be printed to 15 digits only, which is still far closer than
 * half a float ulp: loading gives back the same float bits either way. */
static double float_for_json(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

static cJSON *json_pair(const int v[2]) {
    return cJSON_CreateIntArray(v, 2);
}

static sw_status node_to_json(const sw_model *model, const sw_node *node, cJSON *out) {
    const sw_layer *layer = node->layer;
    const sw_layer_hparams *hp = &layer->hp;
    bool ok = cJSON_AddStringToObject(out, "name", node->name) &&
              cJSON_AddStringToObject(out, "type", sw_layer_kind_name(layer->kind));
    cJSON *inputs = ok ? cJSON_AddArrayToObject(out, "inputs") : NULL;
    ok = inputs != NULL;
    for (int i = 0; ok && i < node->n_inputs; i++) {
        int src = node->inputs[i];
        const char *name = src == SW_NODE_INPUT ? "input" : model->nodes[src].name;
        ok = cJSON_AddItemToArray(inputs, cJSON_CreateString(name));
    }
    for (const hp_field *f = kind_fields[layer->kind]; ok && f->key; f++) {
        cJSON *v = NULL;
        switch (f->type) {
        case HP_INT:
            v = cJSON_CreateNumber(*hp_int_c(hp, f));
            break;
        case HP_PAIR:
            v = json_pair(hp_int_c(hp, f));
            break;
        case HP_BOOL:
            v = cJSON_CreateBool(*(const bool *)((const char *)hp + f->offset));
            break;
        case HP_FLOAT: {
            float x = *(const float *)((const char *)hp + f->offset);
            if (!isfinite(x))
                return SW_FAIL(SW_ERR_ARG, "node \"%s\": %s is not finite", node->name, f->key);
            v = cJSON_CreateNumber(float_for_json(x));
            break;
        }
        }
        ok = v && cJSON_AddItemToObject(out, f->key, v);
        if (!ok) cJSON_Delete(v);
    }
    return ok ? SW_OK : SW_FAIL(SW_ERR_NOMEM, "cannot describe node \"%s\"", node->name);
}

sw_status sw_model_arch_to_json(const sw_model *model, char **json) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return SW_FAIL(SW_ERR_NOMEM, "cannot build the architecture JSON");
    cJSON *shape = cJSON_CreateIntArray(model->input_shape.dims, model->input_shape.ndim);
    if (!shape || !cJSON_AddItemToObject(root, "input_shape", shape)) {
        cJSON_Delete(shape);
        cJSON_Delete(root);
        return SW_FAIL(SW_ERR_NOMEM, "cannot build the architecture JSON");
    }
    cJSON *nodes = cJSON_AddArrayToObject(root, "nodes");
    if (!nodes) {
        cJSON_Delete(root);
        return SW_FAIL(SW_ERR_NOMEM, "cannot build the architecture JSON");
    }
    for (int i = 0; i < model->n_nodes; i++) {
        cJSON *node = cJSON_CreateObject();
        if (!node || !cJSON_AddItemToArray(nodes, node)) {
            cJSON_Delete(node);
            cJSON_Delete(root);
            return SW_FAIL(SW_ERR_NOMEM, "cannot build the architecture JSON");
        }
        sw_status st = node_to_json(model, &model->nodes[i], node);
        if (st != SW_OK) {
            cJSON_Delete(root);
            return st;
        }
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return SW_FAIL(SW_ERR_NOMEM, "cannot print the architecture JSON");
    *json = text;
    return SW_OK;
}

/* ---- reading the architecture ----------------------------------------------------------- */

/* An integer JSON number in [min, max]. */
static bool json_int_in(const cJSON *item, int min, int max, int *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!isfinite(v) || floor(v) != v || v < min || v > max) return false;
    *out = (int)v;
    return true;
}

/* Reads one hyper-parameter; PyTorch accepts `kernel_size=3` for (3, 3), and so do we. */
static sw_status read_field(const cJSON *v, const hp_field *f, sw_layer_hparams *hp,
                            const char *where) {
    switch (f->type) {
    case HP_INT:
        if (!json_int_in(v, f->min, f->max, hp_int(hp, f)))
            return SW_FAIL(SW_ERR_FORMAT, "%s: \"%s\" must be an integer in [%d, %d]", where,
                           f->key, f->min, f->max);
        return SW_OK;
    case HP_PAIR: {
        int *pair = hp_int(hp, f);
        if (cJSON_IsNumber(v) && json_int_in(v, f->min, f->max, &pair[0])) {
            pair[1] = pair[0];
            return SW_OK;
        }
        if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 &&
            json_int_in(v->child, f->min, f->max, &pair[0]) &&
            json_int_in(v->child->next, f->min, f->max, &pair[1]))
            return SW_OK;
        return SW_FAIL(SW_ERR_FORMAT,
                       "%s: \"%s\" must be an integer or [height, width] of integers in "
                       "[%d, %d]",
                       where, f->key, f->min, f->max);
    }
    case HP_BOOL:
        if (!cJSON_IsBool(v))
            return SW_FAIL(SW_ERR_FORMAT, "%s: \"%s\" must be true or false", where, f->key);
        *(bool *)((char *)hp + f->offset) = cJSON_IsTrue(v);
        return SW_OK;
    case HP_FLOAT: {
        /* The range check comes first: converting a double beyond FLT_MAX is undefined. */
        double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
        float x = isfinite(d) && fabs(d) <= FLT_MAX ? (float)d : NAN;
        if (!isfinite(x))
            return SW_FAIL(SW_ERR_FORMAT, "%s: \"%s\" must be a finite number", where, f->key);
        *(float *)((char *)hp + f->offset) = x;
        return SW_OK;
    }
    }
    return SW_FAIL(SW_ERR_FORMAT, "%s: \"%s\" has an unknown kind", where, f->key);
}

/* Hyper-parameters of one node: known keys only, required ones present, in range. */
static sw_status read_hparams(const cJSON *node, sw_layer_kind kind, sw_layer_hparams *hp,
                              const char *where) {
    *hp = sw_layer_hparams_default(kind);
    const hp_field *fields = kind_fields[kind];
    for (const cJSON *it = node->child; it; it = it->next) {
        if (!strcmp(it->string, "name") || !strcmp(it->string, "type") ||
            !strcmp(it->string, "inputs"))
            continue;
        const hp_field *f = fields;
        while (f->key && strcmp(f->key, it->string) != 0) f++;
        if (!f->key)
            return SW_FAIL(SW_ERR_FORMAT, "%s: unknown key \"%s\" for a %s", where, it->string,
                           sw_layer_kind_name(kind));
        SW_TRY(read_field(it, f, hp, where));
    }
    for (const hp_field *f = fields; f->key; f++)
        if (f->required && !cJSON_GetObjectItemCaseSensitive(node, f->key))
            return SW_FAIL(SW_ERR_FORMAT, "%s: missing \"%s\"", where, f->key);
    /* PyTorch's pools default their stride to the kernel size. */
    if ((kind == SW_LAYER_MAXPOOL2D || kind == SW_LAYER_AVGPOOL2D) &&
        !cJSON_GetObjectItemCaseSensitive(node, "stride")) {
        hp->stride[0] = hp->kernel[0];
        hp->stride[1] = hp->kernel[1];
    }
    return SW_OK;
}

/* Checks that `st` holds the parameters of `layer` (node `name`) with the declared shapes, as
 * F32. Called before the model allocates them. */
static sw_status check_layer_tensors(const sw_safetensors *st, const char *name,
                                     const sw_layer *layer) {
    for (int p = 0; p < layer->n_params; p++) {
        char full[512];
        snprintf(full, sizeof full, "%s.%s", name, layer->params[p].name);
        const sw_st_entry *e = sw_safetensors_find(st, full);
        if (!e)
            return SW_FAIL(SW_ERR_FORMAT,
                           "the architecture needs tensor \"%s\" but the file "
                           "has none",
                           full);
        if (e->dtype != SW_DTYPE_F32)
            return SW_FAIL(SW_ERR_FORMAT, "tensor \"%s\" is %s; model parameters are F32", full,
                           sw_dtype_name(e->dtype));
        const sw_shape *want = &layer->param_shapes[p];
        bool same = e->ndim == want->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == want->dims[d];
        if (!same) {
            char a[96], b[96] = "[";
            size_t used = 1;
            for (int d = 0; d < e->ndim && used < sizeof b; d++)
                used += (size_t)snprintf(b + used, sizeof b - used, d ? ", %lld" : "%lld",
                                         (long long)e->shape[d]);
            if (used < sizeof b) snprintf(b + used, sizeof b - used, "]");
            return SW_FAIL(SW_ERR_SHAPE,
                           "tensor \"%s\" has shape %s but the architecture (%s) gives %s", full, b,
                           sw_layer_kind_name(layer->kind), sw_shape_format(want, a, sizeof a));
        }
    }
    return SW_OK;
}

/* Reads "input_shape": 1 to 3 positive dimensions (a batch dimension is added at run time). */
static sw_status read_input_shape(const cJSON *v, sw_shape *out) {
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > SW_MAX_DIMS - 1)
        return SW_FAIL(SW_ERR_FORMAT,
                       "architecture: \"input_shape\" must be an array of 1 to %d "
                       "dimensions",
                       SW_MAX_DIMS - 1);
    *out = (sw_shape){.ndim = n};
    int i = 0;
    for (const cJSON *d = v->child; d; d = d->next, i++)
        if (!json_int_in(d, 1, SW_ARCH_MAX_NUMEL, &out->dims[i]))
            return SW_FAIL(SW_ERR_FORMAT,
                           "architecture: \"input_shape\"[%d] must be an integer "
                           "in [1, %d]",
                           i, SW_ARCH_MAX_NUMEL);
    if (sw_shape_numel(out) > SW_ARCH_MAX_NUMEL)
        return SW_FAIL(SW_ERR_FORMAT, "architecture: \"input_shape\" has more than %d elements",
                       SW_ARCH_MAX_NUMEL);
    return SW_OK;
}

/* Adds node `index` described by `item` to `model`. When `st` is given, the layer's
 * parameters are checked against it first. */
static sw_status add_node(sw_model *model, const cJSON *item, int index, const sw_safetensors *st,
                          double *total_params) {
    char where[160];
    if (!cJSON_IsObject(item))
        return SW_FAIL(SW_ERR_FORMAT, "architecture: node %d is not an object", index);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(item, "type");
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(item, "inputs");
    if (!cJSON_IsString(name) || !*name->valuestring)
        return SW_FAIL(SW_ERR_FORMAT, "architecture: node %d has no \"name\" string", index);
    if (strlen(name->valuestring) > SW_ARCH_MAX_NAME)
        return SW_FAIL(SW_ERR_FORMAT, "architecture: node %d: the name is longer than %d bytes",
                       index, SW_ARCH_MAX_NAME);
    snprintf(where, sizeof where, "architecture: node %d (\"%.100s\")", index, name->valuestring);
    if (!cJSON_IsString(type)) return SW_FAIL(SW_ERR_FORMAT, "%s: no \"type\" string", where);
    sw_layer_kind kind;
    if (sw_layer_kind_from_name(type->valuestring, &kind) != SW_OK)
        return SW_FAIL(SW_ERR_FORMAT, "%s: unknown layer type \"%s\"", where, type->valuestring);

    /* Inputs: explicit names, each "input" or an earlier node (nodes are stored in execution
     * order, so a reference forward would be a cycle or a misordered file). */
    const char *names[SW_MAX_INPUTS];
    int n_inputs = cJSON_IsArray(inputs) ? cJSON_GetArraySize(inputs) : -1;
    if (n_inputs < 1 || n_inputs > SW_MAX_INPUTS)
        return SW_FAIL(SW_ERR_FORMAT, "%s: \"inputs\" must be an array of 1 to %d node names",
                       where, SW_MAX_INPUTS);
    int k = 0;
    for (const cJSON *in = inputs->child; in; in = in->next, k++) {
        if (!cJSON_IsString(in))
            return SW_FAIL(SW_ERR_FORMAT, "%s: input %d is not a string", where, k);
        names[k] = in->valuestring;
        if (strcmp(names[k], "input") != 0 && sw_model_find(model, names[k]) < 0)
            return SW_FAIL(SW_ERR_FORMAT, "%s: input \"%s\" is not an earlier node", where,
                           names[k]);
    }

    sw_layer_hparams hp;
    SW_TRY(read_hparams(item, kind, &hp, where));
    sw_layer *layer;
    sw_status status = sw_layer_new(kind, &hp, &layer);
    if (status != SW_OK) {
        sw_error_prefix("%s", where);
        return status;
    }
    /* Counted in double: a product of a few ints cannot overflow it, unlike size_t. */
    for (int p = 0; p < layer->n_params; p++) {
        double numel = 1;
        for (int d = 0; d < layer->param_shapes[p].ndim; d++)
            numel *= layer->param_shapes[p].dims[d];
        *total_params += numel;
    }
    if (*total_params > SW_ARCH_MAX_PARAMS) {
        sw_layer_free(layer);
        return SW_FAIL(SW_ERR_FORMAT, "%s: the model would have more than %d parameters", where,
                       SW_ARCH_MAX_PARAMS);
    }
    if (st) {
        status = check_layer_tensors(st, name->valuestring, layer);
        if (status != SW_OK) {
            sw_layer_free(layer);
            return status;
        }
    }
    int at;
    status = sw_model_add(model, name->valuestring, layer, names, n_inputs, &at);
    if (status != SW_OK) {
        sw_error_prefix("architecture");
        return status;
    }
    if (sw_shape_numel(&model->nodes[at].out_shape) > SW_ARCH_MAX_NUMEL)
        return SW_FAIL(SW_ERR_FORMAT, "%s: the output has more than %d elements per sample", where,
                       SW_ARCH_MAX_NUMEL);
    return SW_OK;
}

/* Builds a finalised model from a parsed architecture. */
static sw_status build_model(const cJSON *root, const char *arch, const sw_safetensors *st,
                             sw_model **out) {
    if (!cJSON_IsObject(root))
        return SW_FAIL(SW_ERR_FORMAT, "architecture: the JSON is not an object");
    for (const cJSON *it = root->child; it; it = it->next)
        if (strcmp(it->string, "input_shape") != 0 && strcmp(it->string, "nodes") != 0)
            return SW_FAIL(SW_ERR_FORMAT, "architecture: unknown key \"%s\"", it->string);
    sw_shape input_shape;
    SW_TRY(read_input_shape(cJSON_GetObjectItemCaseSensitive(root, "input_shape"), &input_shape));
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
    if (!cJSON_IsArray(nodes) || !nodes->child)
        return SW_FAIL(SW_ERR_FORMAT, "architecture: \"nodes\" must be a non-empty array");

    sw_model *model;
    SW_TRY(sw_model_new(arch, &input_shape, &model));
    sw_status status = SW_OK;
    int index = 0;
    double total_params = 0;
    for (const cJSON *item = nodes->child; item; item = item->next, index++) {
        status = add_node(model, item, index, st, &total_params);
        if (status != SW_OK) goto fail;
    }
    status = sw_model_finalize(model);
    if (status != SW_OK) goto fail;
    *out = model;
    return SW_OK;
fail:
    sw_model_free(model);
    return status;
}

sw_status sw_model_from_arch_json(const char *json, const char *arch, sw_model **out) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return SW_FAIL(SW_ERR_FORMAT, "architecture: not valid JSON");
    sw_status st = build_model(root, arch ? arch : "custom", NULL, out);
    cJSON_Delete(root);
    return st;
}

/* ---- model files ------------------------------------------------------------------------ */

static const char *const reserved_keys[] = {"format", "format_version", "arch", "architecture"};

sw_status sw_model_save(const sw_model *model, const char *path, const char *const *extra_meta) {
    if (!model->finalized)
        return SW_FAIL(SW_ERR_ARG,
                       "saving \"%s\": the model is not finalised (no parameters "
                       "yet)",
                       path);
    sw_st_writer *w = NULL;
    char *arch_json = NULL;
    sw_status st = sw_st_writer_new(&w);
    if (st != SW_OK) return st;
    st = sw_model_arch_to_json(model, &arch_json);
    if (st == SW_OK) st = sw_st_writer_meta(w, "format", FORMAT_NAME);
    if (st == SW_OK) st = sw_st_writer_meta(w, "format_version", FORMAT_VERSION);
    if (st == SW_OK) st = sw_st_writer_meta(w, "arch", model->arch ? model->arch : "custom");
    if (st == SW_OK) st = sw_st_writer_meta(w, "architecture", arch_json);
    for (int i = 0; st == SW_OK && extra_meta && extra_meta[i]; i += 2) {
        if (!extra_meta[i + 1]) {
            st = SW_FAIL(SW_ERR_ARG, "extra metadata key \"%s\" has no value", extra_meta[i]);
            break;
        }
        for (size_t r = 0; r < sizeof reserved_keys / sizeof reserved_keys[0]; r++)
            if (strcmp(extra_meta[i], reserved_keys[r]) == 0)
                st = SW_FAIL(SW_ERR_ARG,
                             "extra metadata key \"%s\" is reserved for the model "
                             "file format",
                             extra_meta[i]);
        if (st == SW_OK) st = sw_st_writer_meta(w, extra_meta[i], extra_meta[i + 1]);
    }
    /* Parameters and buffers in node and declaration order, as PyTorch's state_dict. */
    for (int i = 0; st == SW_OK && i < model->n_nodes; i++) {
        const sw_node *node = &model->nodes[i];
        /* The loader refuses longer names: better to fail here than write an unreadable file. */
        if (strlen(node->name) > SW_ARCH_MAX_NAME)
            st = SW_FAIL(SW_ERR_ARG, "node name \"%.60s...\" is longer than %d bytes", node->name,
                         SW_ARCH_MAX_NAME);
        for (int p = 0; st == SW_OK && p < node->layer->n_params; p++) {
            char full[512];
            snprintf(full, sizeof full, "%s.%s", node->name, node->layer->params[p].name);
            st = sw_st_writer_add_tensor(w, full, &node->layer->params[p].value);
        }
    }
    if (st == SW_OK) st = sw_st_writer_write(w, path);
    free(arch_json);
    sw_st_writer_free(w);
    if (st != SW_OK) sw_error_prefix("saving model \"%s\"", path);
    return st;
}

/* Builds the model a parsed file describes and copies its tensors in. */
static sw_status model_from_safetensors(const sw_safetensors *st, sw_model **out) {
    const char *format = sw_safetensors_meta(st, "format");
    if (!format || strcmp(format, FORMAT_NAME) != 0)
        return SW_FAIL(SW_ERR_FORMAT,
                       "not a shrinkwrap model file (__metadata__ \"format\" is %s%s%s, not "
                       "\"" FORMAT_NAME "\"); a plain safetensors file holds weights but no "
                       "architecture",
                       format ? "\"" : "", format ? format : "missing", format ? "\"" : "");
    const char *version = sw_safetensors_meta(st, "format_version");
    if (!version || strcmp(version, FORMAT_VERSION) != 0)
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "model file format version %s; this shrinkwrap "
                       "reads version " FORMAT_VERSION,
                       version ? version : "(missing)");
    const char *arch_json = sw_safetensors_meta(st, "architecture");
    if (!arch_json) return SW_FAIL(SW_ERR_FORMAT, "no \"architecture\" in __metadata__");
    const char *arch = sw_safetensors_meta(st, "arch");

    cJSON *root = cJSON_Parse(arch_json);
    if (!root) return SW_FAIL(SW_ERR_FORMAT, "architecture: not valid JSON");
    sw_model *model = NULL;
    sw_status status = build_model(root, arch ? arch : "custom", st, &model);
    cJSON_Delete(root);
    if (status != SW_OK) return status;

    /* Every parameter has its tensor (checked node by node); now nothing may be left over. */
    for (int i = 0; i < st->n_entries; i++) {
        const char *name = st->entries[i].name;
        const char *dot = strrchr(name, '.');
        bool known = false;
        if (dot) {
            for (int n = 0; !known && n < model->n_nodes; n++) {
                const sw_node *node = &model->nodes[n];
                size_t len = strlen(node->name);
                known = len == (size_t)(dot - name) && strncmp(node->name, name, len) == 0 &&
                        sw_layer_param_index(node->layer, dot + 1) >= 0;
            }
        }
        if (!known) {
            sw_model_free(model);
            return SW_FAIL(SW_ERR_FORMAT,
                           "tensor \"%s\" is not a parameter of the "
                           "architecture",
                           name);
        }
    }
    for (int n = 0; n < model->n_nodes; n++) {
        sw_layer *layer = model->nodes[n].layer;
        for (int p = 0; p < layer->n_params; p++) {
            char full[512];
            snprintf(full, sizeof full, "%s.%s", model->nodes[n].name, layer->params[p].name);
            const sw_st_entry *e = sw_safetensors_find(st, full);
            SW_ASSERT(e != NULL); /* check_layer_tensors found it before */
            /* Shape and dtype were checked before allocation; the byte count follows. Floats
             * are little-endian in the file and on every machine shrinkwrap supports. */
            memcpy(layer->params[p].value.data, sw_safetensors_data(st, e), e->end - e->begin);
        }
    }
    *out = model;
    return SW_OK;
}

sw_status sw_model_load_bytes(const unsigned char *bytes, size_t size, sw_model **out) {
    sw_safetensors *st;
    SW_TRY(sw_safetensors_parse(bytes, size, &st));
    sw_status status = model_from_safetensors(st, out);
    sw_safetensors_free(st);
    return status;
}

sw_status sw_model_load(const char *path, sw_model **out) {
    sw_safetensors *st;
    SW_TRY(sw_safetensors_read_file(path, &st));
    sw_status status = model_from_safetensors(st, out);
    sw_safetensors_free(st);
    if (status != SW_OK) sw_error_prefix("loading model \"%s\"", path);
    return status;
}
