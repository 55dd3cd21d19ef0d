/* prune_setting.c - pruning keys, templates and typed settings.
 *
 * The key checks below are the pruning schema; the phrases they write are completed by
 * config_list.c into "config_list[i].key: <phrase>". Ranges follow NNI's schema where it has
 * one (max_sparse_ratio in (0, 1], min_sparse_ratio in [0, 1)) and the rule where NNI
 * only asks for a float (sparse_ratio in [0, 1): a ratio of 1 would remove whole layers). */
#include "prune_setting.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool is_number(const cJSON *v, char *why, size_t size) {
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) return true;
    snprintf(why, size, "expected a number");
    return false;
}

/* [lo, hi) or (lo, hi] ranges with a message in the config's own terms. */
static bool in_range(const cJSON *v, double lo, bool lo_closed, double hi, bool hi_closed,
                     char *why, size_t size) {
    if (!is_number(v, why, size)) return false;
    double x = v->valuedouble;
    bool ok = (lo_closed ? x >= lo : x > lo) && (hi_closed ? x <= hi : x < hi);
    if (!ok)
        snprintf(why, size, "%g is not in %c%g, %g%c", x, lo_closed ? '[' : '(', lo, hi,
                 hi_closed ? ']' : ')');
    return ok;
}

static bool check_ratio(const cJSON *v, char *why, size_t size) {
    return in_range(v, 0, true, 1, false, why, size);
}
static bool check_max(const cJSON *v, char *why, size_t size) {
    return in_range(v, 0, false, 1, true, why, size);
}
static bool check_threshold(const cJSON *v, char *why, size_t size) {
    return is_number(v, why, size);
}
static bool check_group(const cJSON *v, char *why, size_t size) {
    char buf[SW_GROUP_KEY_MAX];
    if (sw_config_group_key(v, buf, sizeof buf)) return true;
    snprintf(why, size, "expected an int or a string");
    return false;
}
static bool check_block(const cJSON *v, char *why, size_t size) {
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(int)v->valuedouble && v->valueint > 0)
        return true;
    snprintf(why, size, "expected a positive int (the number of groups)");
    return false;
}
static bool check_granularity(const cJSON *v, char *why, size_t size) {
    sw_granularity g;
    return sw_granularity_from_json(v, &g, why, size);
}
static bool check_apply(const cJSON *v, char *why, size_t size) {
    sw_apply_method m;
    if (cJSON_IsString(v) && sw_apply_method_from_name(v->valuestring, &m) == SW_OK) return true;
    snprintf(why, size, "expected \"mul\", \"add\" or \"bypass\"");
    return false;
}
static bool check_align(const cJSON *v, char *why, size_t size) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "module_name");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(v, "target_name");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(v, "dims");
    if (!cJSON_IsObject(v) || !m || !t || !d) {
        snprintf(why, size,
                 "expected {\"module_name\": <name or null>, \"target_name\": "
                 "\"weight\", \"dims\": [0]}");
        return false;
    }
    if (!(cJSON_IsNull(m) || cJSON_IsString(m)) || !cJSON_IsString(t) || !cJSON_IsArray(d) ||
        cJSON_GetArraySize(d) < 1 || cJSON_GetArraySize(d) > SW_MAX_DIMS) {
        snprintf(why, size,
                 "module_name is a string or null, target_name a string, dims a list "
                 "of 1 to %d ints",
                 SW_MAX_DIMS);
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, d) {
        if (!cJSON_IsNumber(it) || it->valueint < -SW_MAX_DIMS || it->valueint >= SW_MAX_DIMS) {
            snprintf(why, size, "dims are ints in [-%d, %d)", SW_MAX_DIMS, SW_MAX_DIMS);
            return false;
        }
    }
    return true;
}

static const sw_config_key prune_keys[] = {
    {"sparse_ratio", check_ratio},
    {"sparse_threshold", check_threshold},
    {"max_sparse_ratio", check_max},
    {"min_sparse_ratio", check_ratio},
    {"global_group_id", check_group},
    {"dependency_group_id", check_group},
    {"internal_metric_block", check_block},
    {"granularity", check_granularity},
    {"align", check_align},
    {"apply_method", check_apply},
};

/* NNI's PruningSetting.default_setting, as JSON text parsed per module (small, rare). */
static const char weighted_template[] =
    "{\"weight\": {\"sparse_ratio\": null, \"max_sparse_ratio\": null, "
    "\"min_sparse_ratio\": null, \"sparse_threshold\": null, \"global_group_id\": null, "
    "\"dependency_group_id\": null, \"granularity\": \"default\", "
    "\"internal_metric_block\": null, \"apply_method\": \"mul\"}, "
    "\"bias\": {\"align\": {\"module_name\": null, \"target_name\": \"weight\", \"dims\": [0]}, "
    "\"apply_method\": \"mul\"}}";

static const char *prune_template(sw_layer_kind kind) {
    switch (kind) {
    case SW_LAYER_LINEAR:
    case SW_LAYER_CONV2D:
    case SW_LAYER_BATCHNORM1D:
    case SW_LAYER_BATCHNORM2D:
        return weighted_template;
    default:
        return NULL;
    }
}

/* Reads a numeric key; false when absent or null (unset). */
static bool set_number(const cJSON *s, const char *key, double *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(s, key);
    if (!it || !cJSON_IsNumber(it)) return false;
    *v = it->valuedouble;
    return true;
}

static bool prune_check_setting(const cJSON *s, const char **key, char *why, size_t size) {
    double r, t, lo, hi;
    bool has_r = set_number(s, "sparse_ratio", &r), has_t = set_number(s, "sparse_threshold", &t);
    if (has_r && has_t) {
        *key = "sparse_threshold";
        snprintf(why, size,
                 "contradicts sparse_ratio: give one of sparse_ratio (a fraction to "
                 "prune) and sparse_threshold (a metric cut), not both");
        return false;
    }
    if (set_number(s, "min_sparse_ratio", &lo) && set_number(s, "max_sparse_ratio", &hi) &&
        lo > hi) {
        *key = "min_sparse_ratio";
        snprintf(why, size, "%g is above max_sparse_ratio %g", lo, hi);
        return false;
    }
    return true;
}

const sw_config_mode sw_prune_config_mode = {
    .mode = SW_MODE_PRUNING,
    .keys = prune_keys,
    .n_keys = (int)(sizeof prune_keys / sizeof prune_keys[0]),
    .template_for = prune_template,
    .check_setting = prune_check_setting,
};

/* A group id as the user wrote it, for messages. */
static void label_of(const cJSON *v, char *buf, size_t size) {
    if (cJSON_IsString(v))
        snprintf(buf, size, "%s", v->valuestring);
    else
        snprintf(buf, size, "%lld", (long long)v->valuedouble);
}

sw_status sw_prune_setting_from_json(const cJSON *s, sw_prune_setting *out) {
    *out = (sw_prune_setting){.apply_method = SW_APPLY_MUL};
    out->granularity.kind = SW_GRANULARITY_ELEMENT;
    out->has_ratio = set_number(s, "sparse_ratio", &out->sparse_ratio);
    out->has_threshold = set_number(s, "sparse_threshold", &out->sparse_threshold);
    out->has_max = set_number(s, "max_sparse_ratio", &out->max_sparse_ratio);
    out->has_min = set_number(s, "min_sparse_ratio", &out->min_sparse_ratio);
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(s, "global_group_id");
    if (g && !cJSON_IsNull(g)) {
        out->has_global = sw_config_group_key(g, out->global_group, sizeof out->global_group);
        label_of(g, out->global_label, sizeof out->global_label);
    }
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(s, "dependency_group_id");
    if (d && !cJSON_IsNull(d)) {
        out->has_dependency =
            sw_config_group_key(d, out->dependency_group, sizeof out->dependency_group);
        label_of(d, out->dependency_label, sizeof out->dependency_label);
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(s, "internal_metric_block");
    if (b && cJSON_IsNumber(b)) out->internal_metric_block = b->valueint;
    /* A setting without a granularity key (the bias template) is element-wise; "default" is
     * resolved by the pruner. */
    const cJSON *gr = cJSON_GetObjectItemCaseSensitive(s, "granularity");
    if (gr) {
        char why[160];
        if (!sw_granularity_from_json(gr, &out->granularity, why, sizeof why))
            return SW_FAIL(SW_ERR_CONFIG, "granularity: %s", why);
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(s, "align");
    if (a && cJSON_IsObject(a)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(a, "module_name");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(a, "target_name");
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(a, "dims");
        out->align.set = true;
        if (m && cJSON_IsString(m))
            snprintf(out->align.module, sizeof out->align.module, "%s", m->valuestring);
        if (t && cJSON_IsString(t))
            snprintf(out->align.target, sizeof out->align.target, "%s", t->valuestring);
        const cJSON *it;
        cJSON_ArrayForEach(it, dims) {
            if (out->align.n_dims < SW_MAX_DIMS)
                out->align.dims[out->align.n_dims++] = it->valueint;
        }
    }
    const cJSON *ap = cJSON_GetObjectItemCaseSensitive(s, "apply_method");
    if (ap && cJSON_IsString(ap))
        SW_TRY(sw_apply_method_from_name(ap->valuestring, &out->apply_method));
    return SW_OK;
}

bool sw_prune_setting_active(const sw_prune_setting *s) {
    return s->has_ratio || s->has_threshold;
}
