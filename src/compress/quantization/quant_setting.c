/* quant_setting.c - quantization keys, templates and typed settings.
 *
 * The key checks below are the quantization schema; config_list.c completes their phrases into
 * "config_list[i].key: <phrase>". What a per-key check cannot see (a key that must be present,
 * a key allowed only at the top level, module names inside fuse_names) is checked over the
 * whole list by sw_quant_config_check. */
#include "quant_setting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sw_quant_scheme_name(sw_quant_scheme s) {
    switch (s) {
    case SW_QUANT_SCHEME_AFFINE:
        return "affine";
    case SW_QUANT_SCHEME_SYMMETRIC:
        return "symmetric";
    case SW_QUANT_SCHEME_NONE:
        break;
    }
    return "null";
}

bool sw_quant_dtype_parse(const char *text, sw_quant_dtype *out, char *why, size_t size) {
    *out = (sw_quant_dtype){0};
    if (!text) {
        /* NNI: quant_dtype None means int8. */
        snprintf(out->name, sizeof out->name, "int8");
        out->bits = 8;
        out->qmin = -127;
        out->qmax = 127;
        return true;
    }
    bool is_unsigned = strncmp(text, "uint", 4) == 0;
    const char *digits = is_unsigned ? text + 4 : (strncmp(text, "int", 3) == 0 ? text + 3 : NULL);
    char *end = NULL;
    long bits = digits && *digits ? strtol(digits, &end, 10) : -1;
    int lo = is_unsigned ? 1 : 2;
    if (!digits || !end || *end != '\0' || bits < lo || bits > 16) {
        snprintf(why, size,
                 "\"%s\" is not a quantization dtype: use \"int2\" .. \"int16\" or "
                 "\"uint1\" .. \"uint16\" (null means \"int8\")",
                 text);
        return false;
    }
    out->given = true;
    snprintf(out->name, sizeof out->name, "%s", text);
    out->bits = (int)bits;
    out->is_unsigned = is_unsigned;
    if (is_unsigned) {
        out->qmin = 0;
        out->qmax = (1 << bits) - 1;
    } else {
        /* The restricted range: -(2^(b-1) - 1) .. 2^(b-1) - 1, symmetric around 0. */
        out->qmax = (1 << (bits - 1)) - 1;
        out->qmin = -out->qmax;
    }
    return true;
}

/* Per-key checks: each writes a phrase that config_list.c prefixes with the entry and key. */
static bool check_dtype(const cJSON *v, char *why, size_t size) {
    sw_quant_dtype d;
    if (!cJSON_IsString(v)) {
        snprintf(why, size, "expected a string such as \"int8\" or \"uint4\", or null");
        return false;
    }
    return sw_quant_dtype_parse(v->valuestring, &d, why, size);
}

static bool check_scheme(const cJSON *v, char *why, size_t size) {
    if (cJSON_IsString(v) &&
        (strcmp(v->valuestring, "affine") == 0 || strcmp(v->valuestring, "symmetric") == 0))
        return true;
    if (cJSON_IsString(v))
        snprintf(why, size, "\"%s\" is not a scheme: use \"affine\" or \"symmetric\"",
                 v->valuestring);
    else
        snprintf(why, size, "expected \"affine\", \"symmetric\" or null");
    return false;
}

static bool check_granularity(const cJSON *v, char *why, size_t size) {
    sw_granularity g;
    return sw_granularity_from_json(v, &g, why, size);
}

/* Every apply method NNI's quantizers know; the quantizer picks its own anyway. */
static const char *const quant_methods[] = {
    "bypass",
    "clamp_round",
    "qat_clamp_round",
    "lsq_clamp_round",
    "lsq_plus_clamp_round",
    "dorefa_clamp_round_weight",
    "dorefa_clamp_round_output",
    "bnn_clamp_round",
};

static bool check_apply(const cJSON *v, char *why, size_t size) {
    if (cJSON_IsString(v))
        for (size_t i = 0; i < sizeof quant_methods / sizeof quant_methods[0]; i++)
            if (strcmp(quant_methods[i], v->valuestring) == 0) return true;
    snprintf(why, size, "expected a quantization apply method such as \"clamp_round\"");
    return false;
}

/* [[a, b], [a, b, c], ...] of module names; the names are checked against the model later. */
static bool check_fuse(const cJSON *v, char *why, size_t size) {
    if (!cJSON_IsArray(v)) {
        snprintf(why, size, "expected a list of module-name lists, e.g. [[\"conv1\", \"bn1\"]]");
        return false;
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, v) {
        int n = cJSON_GetArraySize(t);
        if (!cJSON_IsArray(t) || n < 2 || n > SW_QUANT_FUSE_MAX) {
            snprintf(why, size,
                     "each entry is a list of 2 or 3 module names: [conv, bn], "
                     "[conv, bn, relu], [conv, relu], [bn, relu]");
            return false;
        }
        const cJSON *nm;
        cJSON_ArrayForEach(nm, t) {
            if (!cJSON_IsString(nm)) {
                snprintf(why, size, "module names are strings");
                return false;
            }
        }
    }
    return true;
}

/* fuse_names is in the table so that config_list.c accepts it at the top level; templates do
 * not carry it, so it never becomes a target setting. */
static const sw_config_key quant_keys[] = {
    {"quant_dtype", check_dtype},       {"quant_scheme", check_scheme},
    {"granularity", check_granularity}, {"apply_method", check_apply},
    {"fuse_names", check_fuse},
};

#define QUANT_TARGET_TEXT                                                                          \
    "{\"quant_dtype\": null, \"quant_scheme\": null, \"granularity\": \"default\", "               \
    "\"apply_method\": \"clamp_round\"}"

/* NNI's QuantizationSetting templates, as JSON text parsed per module. */
static const char weighted_template[] =
    "{\"_input_\": " QUANT_TARGET_TEXT ", \"weight\": " QUANT_TARGET_TEXT
    ", \"bias\": " QUANT_TARGET_TEXT ", \"_output_\": " QUANT_TARGET_TEXT "}";
static const char activation_template[] =
    "{\"_input_\": " QUANT_TARGET_TEXT ", \"_output_\": " QUANT_TARGET_TEXT "}";

/* NNI registers the weighted layers and the activations it knows; other layer kinds can be
 * quantized by naming their targets in target_settings. */
static const char *quant_template(sw_layer_kind kind) {
    switch (kind) {
    case SW_LAYER_LINEAR:
    case SW_LAYER_CONV2D:
    case SW_LAYER_BATCHNORM1D:
    case SW_LAYER_BATCHNORM2D:
        return weighted_template;
    case SW_LAYER_RELU:
    case SW_LAYER_RELU6:
    case SW_LAYER_MAXPOOL2D:
        return activation_template;
    default:
        return NULL;
    }
}

const sw_config_mode sw_quant_config_mode = {
    .mode = SW_MODE_QUANTIZATION,
    .keys = quant_keys,
    .n_keys = (int)(sizeof quant_keys / sizeof quant_keys[0]),
    .template_for = quant_template,
    .check_setting = NULL,
};

/* The merged setting was validated key by key; this only gives it types. */
sw_status sw_quant_setting_from_json(const cJSON *s, sw_quant_setting *out) {
    *out = (sw_quant_setting){.scheme = SW_QUANT_SCHEME_NONE};
    char why[200] = "";
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "quant_dtype");
    const char *text = d && cJSON_IsString(d) ? d->valuestring : NULL;
    if (!sw_quant_dtype_parse(text, &out->dtype, why, sizeof why))
        return SW_FAIL(SW_ERR_CONFIG, "quant_dtype: %s", why);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(s, "quant_scheme");
    if (sc && cJSON_IsString(sc))
        out->scheme = strcmp(sc->valuestring, "affine") == 0 ? SW_QUANT_SCHEME_AFFINE
                                                             : SW_QUANT_SCHEME_SYMMETRIC;
    out->granularity.kind = SW_GRANULARITY_DEFAULT;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(s, "granularity");
    if (g && !sw_granularity_from_json(g, &out->granularity, why, sizeof why))
        return SW_FAIL(SW_ERR_CONFIG, "granularity: %s", why);
    return SW_OK;
}

/* Appends one tuple's nodes; every name must be a module of the model. */
static sw_status add_fuse(const sw_model *model, const cJSON *tuple, int e, sw_quant_fuse **fuses,
                          int *n_fuses) {
    sw_quant_fuse f = {.entry = e, .n = cJSON_GetArraySize(tuple)};
    for (int k = 0; k < f.n; k++) {
        const char *name = cJSON_GetArrayItem(tuple, k)->valuestring;
        f.nodes[k] = sw_model_find(model, name);
        if (f.nodes[k] < 0)
            return SW_FAIL(SW_ERR_CONFIG,
                           "config_list[%d].fuse_names: \"%s\" is not a module of the model", e,
                           name);
    }
    sw_quant_fuse *grown = realloc(*fuses, (size_t)(*n_fuses + 1) * sizeof *grown);
    if (!grown) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    grown[(*n_fuses)++] = f;
    *fuses = grown;
    return SW_OK;
}

sw_status sw_quant_config_check(const sw_model *model, const cJSON *config_list,
                                sw_quant_fuse **fuses, int *n_fuses) {
    *fuses = NULL;
    *n_fuses = 0;
    if (!cJSON_IsArray(config_list))
        return SW_FAIL(SW_ERR_CONFIG, "config list: expected a JSON array of objects");
    int e = 0;
    const cJSON *entry;
    sw_status st = SW_OK;
    cJSON_ArrayForEach(entry, config_list) {
        if (!cJSON_IsObject(entry)) break; /* config_list.c names this error */
        if (!cJSON_GetObjectItemCaseSensitive(entry, "quant_dtype")) {
            st = SW_FAIL(SW_ERR_CONFIG,
                         "config_list[%d]: quant_dtype is required in every quantization entry "
                         "(e.g. \"quant_dtype\": \"int8\"; null means int8)",
                         e);
            break;
        }
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(entry, "target_settings");
        const cJSON *t;
        if (cJSON_IsObject(ts)) cJSON_ArrayForEach(t, ts) {
                if (cJSON_GetObjectItemCaseSensitive(t, "fuse_names")) {
                    st = SW_FAIL(SW_ERR_CONFIG,
                                 "config_list[%d].target_settings.%s.fuse_names: fuse_names "
                                 "belongs at the top level of the entry",
                                 e, t->string);
                    break;
                }
            }
        if (st != SW_OK) break;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(entry, "fuse_names");
        if (fn && !cJSON_IsNull(fn)) {
            char why[200] = "";
            if (!check_fuse(fn, why, sizeof why)) {
                st = SW_FAIL(SW_ERR_CONFIG, "config_list[%d].fuse_names: %s", e, why);
                break;
            }
            const cJSON *tuple;
            cJSON_ArrayForEach(tuple, fn) {
                st = add_fuse(model, tuple, e, fuses, n_fuses);
                if (st != SW_OK) break;
            }
            if (st != SW_OK) break;
        }
        e++;
    }
    if (st != SW_OK) {
        free(*fuses);
        *fuses = NULL;
        *n_fuses = 0;
    }
    return st;
}
