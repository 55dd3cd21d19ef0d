/* config_list.c - validation, module selection and per-target settings (reference §2, §1.5).
 *
 * Resolution runs entry by entry, in three passes over each entry:
 *   1. check_entry: every key is known to the selection keys or to the mode's table, every value
 *      passes its check, and the top-level settings do not contradict each other. NNI validates
 *      each entry against a schema before selecting anything; doing the same here means an
 *      error points at the entry even when that entry would select nothing;
 *   2. sw_config_select: the selection algebra, over node names and layer type names;
 *   3. resolve_module, per selected node: template, shortcuts, target_settings, target_names,
 *      then "first config wins" against what earlier entries configured.
 * Settings stay cJSON objects here: each mode reads its own typed view of them (pruning:
 * prune_setting.c), so this file knows no mode's keys beyond their names and checks. */
#include "config_list.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sw_compress_mode_name(sw_compress_mode mode) {
    switch (mode) {
    case SW_MODE_PRUNING:
        return "pruning";
    case SW_MODE_QUANTIZATION:
        return "quantization";
    case SW_MODE_DISTILLATION:
        return "distillation";
    }
    return "?";
}

void sw_config_resolved_init(sw_config_resolved *r) {
    *r = (sw_config_resolved){0};
}

void sw_config_resolved_deinit(sw_config_resolved *r) {
    for (int i = 0; i < r->n; i++) cJSON_Delete(r->items[i].setting);
    free(r->items);
    *r = (sw_config_resolved){0};
}

sw_status sw_config_list_parse(const char *json, cJSON **out) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        size_t at = end ? (size_t)(end - json) : 0;
        return SW_FAIL(SW_ERR_CONFIG,
                       "config list: not valid JSON at character %zu (near \"%.20s\")", at,
                       end ? end : "");
    }
    if (!cJSON_IsArray(root)) {
        cJSON_Delete(root);
        return SW_FAIL(SW_ERR_CONFIG, "config list: expected a JSON array of objects, e.g. "
                                      "[{\"op_types\": [\"Conv2d\"], \"sparse_ratio\": 0.5}]");
    }
    *out = root;
    return SW_OK;
}

/* ---- keys ---------------------------------------------------------------------------------- */

static const char *const selection_keys[] = {
    "op_types",
    "op_names",
    "op_names_re",
    "exclude_op_names",
    "exclude_op_names_re",
    "exclude_op_types",
    "target_names",
    "target_settings",
};
#define N_SELECTION_KEYS ((int)(sizeof selection_keys / sizeof selection_keys[0]))

/* NNI 2.x spellings: translated by NNI, refused here with the 3.0 spelling to use. */
static const struct {
    const char *key, *hint;
} legacy_keys[] = {
    {"sparsity", "NNI 3.0 spells it \"sparse_ratio\""},
    {"sparsity_per_layer", "NNI 3.0 spells it \"sparse_ratio\""},
    {"total_sparsity", "use \"sparse_ratio\" with a shared \"global_group_id\""},
    {"max_sparsity_per_layer", "NNI 3.0 spells it \"max_sparse_ratio\""},
    {"op_partial_names", "use \"op_names_re\": [\".*name.*\"]"},
    {"exclude", "use \"exclude_op_names\" / \"exclude_op_types\" in the entries"},
    {"quant_types", "use \"target_names\" (\"_input_\", \"weight\", \"_output_\")"},
    {"quant_bits", "use \"quant_dtype\": \"int8\""},
    {"sparse_granularity", "NNI 3.0 spells it \"granularity\""},
};

/* The record of key `name` in the mode's table, or NULL. */
static const sw_config_key *mode_key(const sw_config_mode *mode, const char *name) {
    for (int i = 0; i < mode->n_keys; i++)
        if (strcmp(mode->keys[i].name, name) == 0) return &mode->keys[i];
    return NULL;
}

/* Selection keys choose modules and targets; every other top-level key is a setting. */
static bool is_selection_key(const char *name) {
    for (int i = 0; i < N_SELECTION_KEYS; i++)
        if (strcmp(selection_keys[i], name) == 0) return true;
    return false;
}

/* "a, b, c" of the mode's keys, for messages. */
static void list_mode_keys(const sw_config_mode *mode, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < mode->n_keys && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %s" : "%s", mode->keys[i].name);
}

/* Validates one setting key's value at `path` ("config_list[1]" or
 * "config_list[1].target_settings.weight"). */
static sw_status check_setting_key(const sw_config_mode *mode, const cJSON *item,
                                   const char *path) {
    const char *name = item->string;
    for (size_t i = 0; i < sizeof legacy_keys / sizeof legacy_keys[0]; i++)
        if (strcmp(legacy_keys[i].key, name) == 0)
            return SW_FAIL(SW_ERR_CONFIG, "%s.%s: an NNI 2.x key; %s", path, name,
                           legacy_keys[i].hint);
    const sw_config_key *key = mode_key(mode, name);
    if (!key) {
        char keys[512];
        list_mode_keys(mode, keys, sizeof keys);
        return SW_FAIL(SW_ERR_CONFIG, "%s: unknown key \"%s\" (%s keys: %s)", path, name,
                       sw_compress_mode_name(mode->mode), keys);
    }
    /* null is how templates spell "unset", and a user may write it too. */
    char why[256] = "";
    if (!cJSON_IsNull(item) && key->check && !key->check(item, why, sizeof why))
        return SW_FAIL(SW_ERR_CONFIG, "%s.%s: %s", path, name, why);
    return SW_OK;
}

/* op_types, op_names, ... and target_names are lists of strings. */
static bool is_string_array(const cJSON *v) {
    if (!cJSON_IsArray(v)) return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsString(it)) return false;
    }
    return true;
}

/* Structural checks of one entry: key names, value types, values. */
static sw_status check_entry(const sw_config_mode *mode, const cJSON *entry, int e) {
    char path[64];
    snprintf(path, sizeof path, "config_list[%d]", e);
    if (!cJSON_IsObject(entry))
        return SW_FAIL(SW_ERR_CONFIG,
                       "%s: expected an object such as {\"op_types\": "
                       "[\"Conv2d\"], ...}",
                       path);
    const cJSON *item;
    cJSON_ArrayForEach(item, entry) {
        const char *name = item->string;
        if (!is_selection_key(name)) {
            SW_TRY(check_setting_key(mode, item, path));
            continue;
        }
        if (strcmp(name, "target_settings") == 0) {
            if (!cJSON_IsObject(item))
                return SW_FAIL(SW_ERR_CONFIG,
                               "%s.target_settings: expected an object "
                               "{\"<target>\": {...}}",
                               path);
            const cJSON *ts;
            cJSON_ArrayForEach(ts, item) {
                char sub[160];
                snprintf(sub, sizeof sub, "%s.target_settings.%s", path, ts->string);
                if (!cJSON_IsObject(ts))
                    return SW_FAIL(SW_ERR_CONFIG, "%s: expected an object of settings", sub);
                const cJSON *k;
                cJSON_ArrayForEach(k, ts) {
                    SW_TRY(check_setting_key(mode, k, sub));
                }
            }
        } else if (!is_string_array(item)) {
            return SW_FAIL(SW_ERR_CONFIG, "%s.%s: expected a list of strings", path, name);
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(entry, "op_types") &&
        !cJSON_GetObjectItemCaseSensitive(entry, "op_names") &&
        !cJSON_GetObjectItemCaseSensitive(entry, "op_names_re"))
        return SW_FAIL(SW_ERR_CONFIG,
                       "%s: selects no module: give op_types, op_names or "
                       "op_names_re",
                       path);
    /* Contradictions among the top-level keys themselves. */
    if (mode->check_setting) {
        const char *key = NULL;
        char why[256] = "";
        if (!mode->check_setting(entry, &key, why, sizeof why))
            return SW_FAIL(SW_ERR_CONFIG, "%s.%s: %s", path, key ? key : "?", why);
    }
    return SW_OK;
}

/* ---- selection ------------------------------------------------------------------------------
 *
 * NNI selects among named_modules(); our graph's nodes are exactly the leaf modules, so node
 * names play that part. A name that is not in the model is an error here even when op_types
 * would have intersected it away (NNI's documentation says unknown names are ignored, its code
 * raises without op_types): a typo in a config silently pruning nothing, or pruning a module
 * the user meant to exclude, is worse than an error that lists the module names. */

/* "conv1, bn1, ..." for messages, cut with "..." when the buffer is full. */
static void list_modules(const sw_model *model, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < model->n_nodes && used + 8 < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ", %s" : "%s", model->nodes[i].name);
    if (used + 8 >= size && size > 4) snprintf(buf + size - 5, 5, "...");
}

/* Every name of `list` must be a node of the model. */
static sw_status names_in_model(const sw_model *model, const cJSON *list, const char *path,
                                const char *key) {
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        if (sw_model_find(model, it->valuestring) >= 0) continue;
        char mods[400];
        list_modules(model, mods, sizeof mods);
        return SW_FAIL(SW_ERR_CONFIG, "%s.%s: \"%s\" is not a module of the model (modules: %s)",
                       path, key, it->valuestring, mods);
    }
    return SW_OK;
}

/* Every type of `list` must be a layer kind shrinkwrap knows (the error lists them). A known
 * type absent from this model is fine: it selects nothing. */
static sw_status known_types(const cJSON *list, const char *path, const char *key) {
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        sw_layer_kind kind;
        if (sw_layer_kind_from_name(it->valuestring, &kind) == SW_OK) continue;
        char types[400];
        size_t used = 0;
        for (int k = 0; k < SW_LAYER_KIND_COUNT && used < sizeof types; k++)
            used += (size_t)snprintf(types + used, sizeof types - used, k ? ", %s" : "%s",
                                     sw_layer_kind_name((sw_layer_kind)k));
        return SW_FAIL(SW_ERR_CONFIG, "%s.%s: \"%s\" is not a layer type shrinkwrap knows (%s)",
                       path, key, it->valuestring, types);
    }
    return SW_OK;
}

/* Marks (value = mark) every node whose name matches one of the regexes at its start. */
static sw_status match_regexes(const sw_model *model, const cJSON *list, const char *path,
                               const char *key, bool *sel, bool mark) {
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        /* re.match anchors at the start only: "^(re)" without a trailing "$". */
        size_t n = strlen(it->valuestring) + 4;
        char *pattern = malloc(n);
        if (!pattern) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
        snprintf(pattern, n, "^(%s)", it->valuestring);
        regex_t re;
        int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
        free(pattern);
        if (rc != 0) {
            char why[128];
            regerror(rc, &re, why, sizeof why);
            return SW_FAIL(SW_ERR_CONFIG,
                           "%s.%s: \"%s\" is not a POSIX extended regular "
                           "expression: %s",
                           path, key, it->valuestring, why);
        }
        for (int i = 0; i < model->n_nodes; i++)
            if (regexec(&re, model->nodes[i].name, 0, NULL, 0) == 0) sel[i] = mark;
        regfree(&re);
    }
    return SW_OK;
}

/* True when the node's PyTorch class name is in `list`. */
static bool type_listed(const cJSON *list, const sw_node *node) {
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        if (strcmp(it->valuestring, node->layer->ops->type_name) == 0) return true;
    }
    return false;
}

sw_status sw_config_select(const sw_model *model, const cJSON *entry, int e, bool *selected) {
    char path[64];
    snprintf(path, sizeof path, "config_list[%d]", e);
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(entry, "op_names");
    const cJSON *names_re = cJSON_GetObjectItemCaseSensitive(entry, "op_names_re");
    const cJSON *types = cJSON_GetObjectItemCaseSensitive(entry, "op_types");
    const cJSON *ex_names = cJSON_GetObjectItemCaseSensitive(entry, "exclude_op_names");
    const cJSON *ex_re = cJSON_GetObjectItemCaseSensitive(entry, "exclude_op_names_re");
    const cJSON *ex_types = cJSON_GetObjectItemCaseSensitive(entry, "exclude_op_types");
    if (names) SW_TRY(names_in_model(model, names, path, "op_names"));
    if (ex_names) SW_TRY(names_in_model(model, ex_names, path, "exclude_op_names"));
    if (types) SW_TRY(known_types(types, path, "op_types"));
    if (ex_types) SW_TRY(known_types(ex_types, path, "exclude_op_types"));
    int n = model->n_nodes;
    for (int i = 0; i < n; i++) selected[i] = false;
    if (names || names_re) {
        const cJSON *it;
        if (names)
            cJSON_ArrayForEach(it, names) selected[sw_model_find(model, it->valuestring)] = true;
        if (names_re) SW_TRY(match_regexes(model, names_re, path, "op_names_re", selected, true));
        if (types)
            for (int i = 0; i < n; i++)
                selected[i] = selected[i] && type_listed(types, &model->nodes[i]);
    } else if (types) {
        for (int i = 0; i < n; i++) selected[i] = type_listed(types, &model->nodes[i]);
    }
    if (ex_names) {
        const cJSON *it;
        cJSON_ArrayForEach(it, ex_names) selected[sw_model_find(model, it->valuestring)] = false;
    }
    if (ex_re) SW_TRY(match_regexes(model, ex_re, path, "exclude_op_names_re", selected, false));
    if (ex_types)
        for (int i = 0; i < n; i++)
            if (type_listed(ex_types, &model->nodes[i])) selected[i] = false;
    return SW_OK;
}

/* Mirrors the targets a wrapper gives a node (wrapper.c): trainable parameters, one input
 * target per graph input, one output. Works on the bare model, before any wrapper exists. */
bool sw_config_node_has_target(const sw_model *model, int node, const char *name) {
    const sw_node *nd = &model->nodes[node];
    const sw_layer *l = nd->layer;
    switch (sw_target_kind_of(name)) {
    case SW_TARGET_INPUT: {
        char *end = NULL;
        long j = strtol(name + 7, &end, 10);
        return end && *end == '\0' && end != name + 7 && j >= 0 && j < nd->n_inputs;
    }
    case SW_TARGET_OUTPUT:
        return strcmp(name, "_output_0") == 0;
    case SW_TARGET_PARAM: {
        int p = sw_layer_param_index(l, name);
        return p >= 0 && l->params[p].trainable;
    }
    }
    return false;
}

/* ---- per-module settings ------------------------------------------------------------------ */

/* "_input_" -> "_input_0", "_output_" -> "_output_0"; others unchanged. */
static void canonical_target(const char *name, char *out, size_t size) {
    if (strcmp(name, "_input_") == 0)
        snprintf(out, size, "_input_0");
    else if (strcmp(name, "_output_") == 0)
        snprintf(out, size, "_output_0");
    else
        snprintf(out, size, "%s", name);
}

/* Applies the entry's shortcut keys to every template target that has them. A key absent from
 * a template target is ignored for it: that is what keeps a top-level sparse_ratio off the
 * bias, whose template only aligns it to the weight. */
static sw_status apply_shortcuts(const sw_config_mode *mode, const cJSON *entry, cJSON *tmpl) {
    const cJSON *item;
    cJSON_ArrayForEach(item, entry) {
        if (is_selection_key(item->string) || !mode_key(mode, item->string)) continue;
        cJSON *target;
        cJSON_ArrayForEach(target, tmpl) {
            if (!cJSON_GetObjectItemCaseSensitive(target, item->string)) continue;
            cJSON *copy = cJSON_Duplicate(item, 1);
            if (!copy || !cJSON_ReplaceItemInObjectCaseSensitive(target, item->string, copy)) {
                cJSON_Delete(copy);
                return SW_FAIL(SW_ERR_NOMEM, "out of memory");
            }
        }
    }
    return SW_OK;
}

/* Merges target_settings over the template: keys of known targets are replaced or added, new
 * targets are added whole. */
static sw_status merge_target_settings(const cJSON *ts, cJSON *tmpl) {
    const cJSON *t;
    cJSON_ArrayForEach(t, ts) {
        char name[SW_TARGET_NAME_MAX];
        /* Kept as given ("_output_" too): resolution below looks generic names up. */
        snprintf(name, sizeof name, "%s", t->string);
        cJSON *dst = cJSON_GetObjectItemCaseSensitive(tmpl, name);
        if (!dst) {
            cJSON *copy = cJSON_Duplicate(t, 1);
            if (!copy) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
            cJSON_AddItemToObject(tmpl, name, copy);
            continue;
        }
        const cJSON *k;
        cJSON_ArrayForEach(k, t) {
            cJSON *copy = cJSON_Duplicate(k, 1);
            if (!copy) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
            if (cJSON_GetObjectItemCaseSensitive(dst, k->string))
                cJSON_ReplaceItemInObjectCaseSensitive(dst, k->string, copy);
            else
                cJSON_AddItemToObject(dst, k->string, copy);
        }
    }
    return SW_OK;
}

/* The setting of target `name` from a merged template: its own entry, else the generic
 * "_input_"/"_output_" one for activation targets. NULL when none. */
static const cJSON *setting_for(const cJSON *tmpl, const char *name) {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(tmpl, name);
    if (s) return s;
    switch (sw_target_kind_of(name)) {
    case SW_TARGET_INPUT:
        return cJSON_GetObjectItemCaseSensitive(tmpl, "_input_");
    case SW_TARGET_OUTPUT:
        return cJSON_GetObjectItemCaseSensitive(tmpl, "_output_");
    case SW_TARGET_PARAM:
        break;
    }
    return NULL;
}

static void list_targets(const sw_model *model, int node, char *buf, size_t size) {
    const sw_node *nd = &model->nodes[node];
    size_t used = 0;
    buf[0] = '\0';
    for (int p = 0; p < nd->layer->n_params; p++)
        if (nd->layer->params[p].trainable)
            used += (size_t)snprintf(buf + used, size - used, "%s, ", nd->layer->params[p].name);
    for (int j = 0; j < nd->n_inputs && used < size; j++)
        used += (size_t)snprintf(buf + used, size - used, "_input_%d, ", j);
    if (used < size) snprintf(buf + used, size - used, "_output_0");
}

/* Builds the targets of one selected module and appends them to `out`. */
static sw_status resolve_module(const sw_model *model, const cJSON *entry, int e, int node,
                                const sw_config_mode *mode, sw_warnings *warnings,
                                sw_config_resolved *out) {
    const sw_node *nd = &model->nodes[node];
    const char *text = mode->template_for ? mode->template_for(nd->layer->kind) : NULL;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(entry, "target_settings");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(entry, "target_names");
    if (!text && !ts)
        return SW_FAIL(SW_ERR_CONFIG,
                       "config_list[%d]: \"%s\" is a %s, which has no %s targets by default; "
                       "leave it out (exclude_op_types) or name its targets in target_settings",
                       e, nd->name, nd->layer->ops->type_name, sw_compress_mode_name(mode->mode));
    cJSON *tmpl = text ? cJSON_Parse(text) : cJSON_CreateObject();
    if (!tmpl)
        return SW_FAIL(SW_ERR_NOMEM, "cannot build the %s template", nd->layer->ops->type_name);
    sw_status st = apply_shortcuts(mode, entry, tmpl);
    if (st == SW_OK && ts) st = merge_target_settings(ts, tmpl);
    if (st != SW_OK) {
        cJSON_Delete(tmpl);
        return st;
    }
    /* Target names: the given list, or every target of the merged template (including those
     * target_settings added, as NNI takes the keys after merging). */
    int n_names = names ? cJSON_GetArraySize(names) : cJSON_GetArraySize(tmpl);
    for (int k = 0; k < n_names && st == SW_OK; k++) {
        const cJSON *nm = names ? cJSON_GetArrayItem(names, k) : cJSON_GetArrayItem(tmpl, k);
        const char *given = names ? nm->valuestring : nm->string;
        char target[SW_TARGET_NAME_MAX];
        canonical_target(given, target, sizeof target);
        const cJSON *setting = setting_for(tmpl, target);
        if (!sw_config_node_has_target(model, node, target)) {
            /* A template target the layer lacks (no bias) is skipped, as NNI skips a None
             * parameter; a target the user named explicitly must exist. */
            if (!names) continue;
            char targets[256];
            list_targets(model, node, targets, sizeof targets);
            st = SW_FAIL(SW_ERR_CONFIG,
                         "config_list[%d].target_names: \"%s\" (%s) has no target "
                         "\"%s\" (targets: %s)",
                         e, nd->name, nd->layer->ops->type_name, given, targets);
            break;
        }
        if (!setting) {
            st = SW_FAIL(SW_ERR_CONFIG,
                         "config_list[%d].target_names: \"%s\" has no %s settings "
                         "for \"%s\": add them under target_settings",
                         e, nd->name, sw_compress_mode_name(mode->mode), given);
            break;
        }
        if (mode->check_setting) {
            const char *key = NULL;
            char why[256] = "";
            if (!mode->check_setting(setting, &key, why, sizeof why)) {
                st = SW_FAIL(SW_ERR_CONFIG, "config_list[%d]: %s.%s: %s: %s", e, nd->name, target,
                             key ? key : "?", why);
                break;
            }
        }
        /* First config wins per (module, target): an earlier entry keeps the target. Later
         * compressors of the same mode are filtered the same way by the wrapper set's claims
         * (pruner.c), so one rule covers both "twice in one list" and "twice in a chain". */
        int prev = -1;
        for (int i = 0; i < out->n && prev < 0; i++)
            if (out->items[i].node == node && strcmp(out->items[i].target, target) == 0)
                prev = out->items[i].entry;
        if (prev >= 0) {
            if (warnings)
                sw_warnings_add(warnings,
                                "config_list[%d]: %s.%s is already configured by config_list[%d]; "
                                "this entry is ignored for it (first config wins)",
                                e, nd->name, target, prev);
            continue;
        }
        if (out->n == out->cap) {
            int cap = out->cap ? 2 * out->cap : 16;
            sw_config_target *grown = realloc(out->items, (size_t)cap * sizeof *grown);
            if (!grown) {
                st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
                break;
            }
            out->items = grown;
            out->cap = cap;
        }
        cJSON *copy = cJSON_Duplicate(setting, 1);
        if (!copy) {
            st = SW_FAIL(SW_ERR_NOMEM, "out of memory");
            break;
        }
        sw_config_target *ct = &out->items[out->n++];
        *ct = (sw_config_target){.node = node, .entry = e, .setting = copy};
        snprintf(ct->target, sizeof ct->target, "%s", target);
    }
    cJSON_Delete(tmpl);
    return st;
}

/* Entry by entry: check, select, then build the targets of each selected module in node
 * order. The output order (entry, node, target) is the order NNI's target spaces are created
 * in, which matters where NNI's results depend on order (the global rule's heap). */
sw_status sw_config_resolve(const sw_model *model, const cJSON *config_list,
                            const sw_config_mode *mode, sw_warnings *warnings,
                            sw_config_resolved *out) {
    sw_config_resolved_init(out);
    if (!cJSON_IsArray(config_list))
        return SW_FAIL(SW_ERR_CONFIG, "config list: expected a JSON array of objects");
    bool *sel = calloc((size_t)model->n_nodes + 1, sizeof *sel);
    if (!sel) return SW_FAIL(SW_ERR_NOMEM, "out of memory");
    sw_status st = SW_OK;
    int e = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, config_list) {
        st = check_entry(mode, entry, e);
        if (st == SW_OK) st = sw_config_select(model, entry, e, sel);
        if (st != SW_OK) break;
        int n_sel = 0;
        for (int i = 0; i < model->n_nodes && st == SW_OK; i++) {
            if (!sel[i]) continue;
            n_sel++;
            st = resolve_module(model, entry, e, i, mode, warnings, out);
        }
        if (st != SW_OK) break;
        if (n_sel == 0 && warnings)
            sw_warnings_add(warnings, "config_list[%d] selects no module of the model", e);
        e++;
    }
    free(sel);
    if (st != SW_OK) sw_config_resolved_deinit(out);
    return st;
}

/* ---- value helpers -------------------------------------------------------------------------- */

/* A block kernel: 1 to 4 ints, each positive or -1 (the whole dim). */
static bool int_list(const cJSON *v, int *out, int *n, char *why, size_t size) {
    *n = 0;
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > SW_MAX_DIMS) {
        snprintf(why, size, "a block kernel is a list of 1 to %d ints", SW_MAX_DIMS);
        return false;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v) {
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int)it->valuedouble ||
            (it->valueint <= 0 && it->valueint != SW_SCALING_FULL)) {
            snprintf(why, size, "block sizes are positive ints or -1 (the whole dim)");
            return false;
        }
        out[(*n)++] = it->valueint;
    }
    return true;
}

bool sw_granularity_from_json(const cJSON *v, sw_granularity *out, char *why, size_t size) {
    *out = (sw_granularity){.kind = SW_GRANULARITY_DEFAULT};
    if (cJSON_IsNull(v)) {
        out->kind = SW_GRANULARITY_ELEMENT;
        return true;
    }
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (strcmp(s, "default") == 0)
            out->kind = SW_GRANULARITY_DEFAULT;
        else if (strcmp(s, "out_channel") == 0)
            out->kind = SW_GRANULARITY_OUT_CHANNEL;
        else if (strcmp(s, "in_channel") == 0)
            out->kind = SW_GRANULARITY_IN_CHANNEL;
        else if (strcmp(s, "per_channel") == 0)
            out->kind = SW_GRANULARITY_PER_CHANNEL;
        else {
            snprintf(why, size,
                     "\"%s\" is not one of \"default\", \"out_channel\", "
                     "\"in_channel\", \"per_channel\" or a list of block sizes",
                     s);
            return false;
        }
        return true;
    }
    if (!cJSON_IsArray(v)) {
        snprintf(why, size, "expected a string, null or a list of block sizes");
        return false;
    }
    int kernel[SW_MAX_DIMS], n = 0;
    const cJSON *first = cJSON_GetArrayItem(v, 0);
    out->kind = SW_GRANULARITY_KERNEL;
    if (first && cJSON_IsArray(first)) {
        /* [[kernel], mode(, pad_value)]: NNI pads with 1 unless a value is given. */
        int len = cJSON_GetArraySize(v);
        if (len > 3 || !int_list(first, kernel, &n, why, size)) {
            if (len > 3) snprintf(why, size, "expected [[block sizes], \"front\"|\"back\", pad]");
            return false;
        }
        sw_scaling_pad mode = SW_SCALING_PAD_FRONT;
        int pad = 1;
        const cJSON *m = cJSON_GetArrayItem(v, 1);
        const cJSON *p = cJSON_GetArrayItem(v, 2);
        if (m) {
            if (!cJSON_IsString(m) ||
                (strcmp(m->valuestring, "front") != 0 && strcmp(m->valuestring, "back") != 0)) {
                snprintf(why, size, "the padding mode is \"front\" or \"back\"");
                return false;
            }
            mode = strcmp(m->valuestring, "back") == 0 ? SW_SCALING_PAD_BACK : SW_SCALING_PAD_FRONT;
        }
        if (p) {
            if (!cJSON_IsNumber(p) || (p->valueint != 1 && p->valueint != SW_SCALING_FULL)) {
                snprintf(why, size, "the padding value is 1 or -1");
                return false;
            }
            pad = p->valueint;
        }
        out->kernel = sw_scaling_make(n, kernel, mode, pad);
        return true;
    }
    if (!int_list(v, kernel, &n, why, size)) return false;
    out->kernel = sw_scaling_make(n, kernel, SW_SCALING_PAD_FRONT, 1);
    return true;
}

/* Groups are compared as strings everywhere else; the prefix keeps an int id and a string id
 * with the same digits apart, as Python's dict keys 3 and "3" are. */
bool sw_config_group_key(const cJSON *v, char *buf, size_t size) {
    if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) {
        snprintf(buf, size, "i:%lld", (long long)v->valuedouble);
        return true;
    }
    if (cJSON_IsString(v)) {
        snprintf(buf, size, "s:%s", v->valuestring);
        return true;
    }
    return false;
}
