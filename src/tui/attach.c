/* attach.c - the attach list (the pruners that exist today) and the fused chain. */
#include "attach.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compress/masks_io.h"
#include "../compress/pruning/pruners.h"

/* ---- the algorithms ----------------------------------------------------------------------- */

/* The norm pruners and Level prune the weights of Conv2d and Linear modules. */
static bool weight_layers(const sw_layer *l) {
    return l->kind == SW_LAYER_CONV2D || l->kind == SW_LAYER_LINEAR;
}

static void ratio_form(sw_tui_form *f) {
    sw_tui_form_add_float(f, "sparse_ratio", "sparse_ratio", "0.5", 0, 0.99)->hint =
        "fraction of each selected module's weight to prune (NNI's sparse_ratio)";
}

static const char *const granularities[] = {"default", "out_channel", "element"};

static const char *const on_off[] = {"off", "on"};

static void level_form(sw_tui_form *f) {
    ratio_form(f);
    sw_tui_form_add_choice(f, "granularity", "granularity", granularities, 3, 0)->hint =
        "default: element-wise for Level, filters (out_channel) for the norm pruners";
}

static void norm_form(sw_tui_form *f) {
    ratio_form(f);
    sw_tui_form_add_choice(f, "granularity", "granularity", granularities, 3, 0)->hint =
        "default: out_channel (whole filters / rows); element prunes single weights";
    sw_tui_form_add_choice(f, "dependency", "dep. groups", on_off, 2, 0)->hint =
        "on: modules joined by an Add or a depthwise conv lose the same channels";
}

/* [{"op_names": [...], "sparse_ratio": r, ("granularity": ...)}] */
static sw_status ratio_config(const sw_tui_form *f, const char *const *modules, int n,
                              cJSON **out) {
    cJSON *list = cJSON_CreateArray(), *entry = cJSON_CreateObject();
    cJSON *names = cJSON_CreateStringArray(modules, n);
    if (!list || !entry || !names) {
        cJSON_Delete(list);
        cJSON_Delete(entry);
        cJSON_Delete(names);
        return SW_FAIL(SW_ERR_NOMEM, "attach: no memory for the config list");
    }
    cJSON_AddItemToObject(entry, "op_names", names);
    cJSON_AddNumberToObject(entry, "sparse_ratio", sw_tui_form_float(f, "sparse_ratio", 0.5));
    const char *g = sw_tui_form_text(f, "granularity");
    if (g[0] && strcmp(g, "default") != 0) {
        if (strcmp(g, "element") == 0)
            cJSON_AddNullToObject(entry, "granularity");
        else
            cJSON_AddStringToObject(entry, "granularity", g);
    }
    cJSON_AddItemToArray(list, entry);
    *out = list;
    return SW_OK;
}

static const sw_tui_algo algos[] = {
    {{"L1Norm", "pruner", "smallest L1 norm filters/rows go first (one-shot)", norm_form},
     "P:L1",
     weight_layers,
     ratio_config,
     sw_pruner_l1norm_new,
     sw_pruner_l1norm_from_compressor},
    {{"L2Norm", "pruner", "smallest L2 norm filters/rows go first (one-shot)", norm_form},
     "P:L2",
     weight_layers,
     ratio_config,
     sw_pruner_l2norm_new,
     sw_pruner_l2norm_from_compressor},
    {{"FPGM", "pruner", "filters nearest the geometric median go first", norm_form},
     "P:FPGM",
     weight_layers,
     ratio_config,
     sw_pruner_fpgm_new,
     sw_pruner_fpgm_from_compressor},
    {{"Level", "pruner", "smallest |w| weights go first (element-wise)", level_form},
     "P:Lv",
     weight_layers,
     ratio_config,
     sw_pruner_level_new,
     sw_pruner_level_from_compressor},
};

const sw_tui_algo *sw_tui_algos(int *n) {
    *n = (int)(sizeof algos / sizeof algos[0]);
    return algos;
}

void sw_tui_algos_publish(sw_tui_state *st) {
    int n;
    const sw_tui_algo *a = sw_tui_algos(&n);
    st->n_algos = n < SW_TUI_MAX_ALGOS ? n : SW_TUI_MAX_ALGOS;
    for (int i = 0; i < st->n_algos; i++) st->algos[i] = a[i].entry;
}

/* ---- the chain ---------------------------------------------------------------------------- */

void sw_tui_chain_init(sw_tui_chain *ch, sw_model *model) {
    memset(ch, 0, sizeof *ch);
    ch->model = model;
}

void sw_tui_chain_deinit(sw_tui_chain *ch) {
    if (ch->deps_state == 1) sw_dependency_groups_deinit(&ch->deps);
    ch->deps_state = 0;
    /* Newest first, so each free unlinks the end of the chain. */
    for (int i = ch->n - 1; i >= 0; i--) sw_compressor_free(ch->items[i].c);
    ch->n = 0;
    sw_wrapper_set_release(ch->ws);
    ch->ws = NULL;
}

sw_status sw_tui_chain_attach(sw_tui_chain *ch, const sw_tui_algo *algo, const sw_tui_form *params,
                              const int *nodes, int n_nodes, sw_evaluator *ev, int *skipped) {
    *skipped = 0;
    if (ch->n >= SW_TUI_MAX_CHAIN)
        return SW_FAIL(SW_ERR_ARG,
                       "attach: at most %d compressors can be chained here; detach "
                       "one first (d)",
                       SW_TUI_MAX_CHAIN);
    const char **names = malloc(sizeof(char *) * (size_t)(n_nodes > 0 ? n_nodes : 1));
    if (!names) return SW_FAIL(SW_ERR_NOMEM, "attach: no memory");
    int n = 0;
    for (int i = 0; i < n_nodes; i++) {
        const sw_node *node = &ch->model->nodes[nodes[i]];
        if (algo->accepts && !algo->accepts(node->layer))
            (*skipped)++;
        else
            names[n++] = node->name;
    }
    if (n == 0) {
        free(names);
        return SW_FAIL(SW_ERR_ARG,
                       "attach %s: none of the %d selected modules is a Conv2d or "
                       "Linear; move to one (or mark several with space) and try again",
                       algo->entry.name, n_nodes);
    }
    cJSON *config = NULL;
    sw_status s = algo->config(params, names, n, &config);
    free(names);
    if (s != SW_OK) return s;
    if (strcmp(sw_tui_form_text(params, "dependency"), "on") == 0) {
        /* One entry per module, with the dependency group ids NNI's helper would add. */
        cJSON *grouped = NULL;
        s = sw_config_list_with_dependency_groups(ch->model, config, &grouped);
        cJSON_Delete(config);
        if (s != SW_OK) return s;
        config = grouped;
    }
    if (!ch->ws) {
        s = sw_wrapper_set_new(ch->model, &ch->ws);
        if (s != SW_OK) {
            cJSON_Delete(config);
            return s;
        }
    }
    sw_compressor *c = NULL;
    if (ch->n == 0)
        s = algo->create(ch->ws, config, ev, &c);
    else
        s = algo->create_from(ch->items[ch->n - 1].c, config, ev, &c);
    if (s == SW_OK) {
        sw_tui_chain_item *it = &ch->items[ch->n++];
        it->algo = algo;
        it->c = c;
        char *text = cJSON_PrintUnformatted(config);
        snprintf(it->config, sizeof it->config, "%s", text ? text : "");
        free(text);
    } else {
        sw_error_prefix("attach %s", algo->entry.name);
    }
    cJSON_Delete(config);
    return s;
}

sw_status sw_tui_chain_detach(sw_tui_chain *ch) {
    if (ch->n == 0) return SW_FAIL(SW_ERR_ARG, "detach: no compressor is attached");
    sw_compressor_free(ch->items[--ch->n].c);
    ch->items[ch->n].c = NULL;
    return SW_OK;
}

sw_status sw_tui_chain_compress(sw_tui_chain *ch, long max_steps, int max_epochs) {
    if (ch->n == 0) return SW_FAIL(SW_ERR_ARG, "compress: attach a compressor first (a)");
    return sw_compressor_compress(ch->items[ch->n - 1].c, max_steps, max_epochs);
}

sw_status sw_tui_chain_export_masks(sw_tui_chain *ch, const char *path) {
    if (ch->n == 0) return SW_FAIL(SW_ERR_ARG, "export masks: no compressor is attached");
    sw_masks masks;
    sw_masks_init(&masks);
    sw_status s = sw_pruner_get_masks(ch->items[ch->n - 1].c, &masks);
    if (s == SW_OK) {
        const char *meta[] = {"model", ch->model->arch ? ch->model->arch : "model", "config_list",
                              ch->items[ch->n - 1].config, NULL};
        s = sw_masks_save(&masks, path, meta);
    }
    sw_masks_deinit(&masks);
    return s;
}

/* The mask in effect on a target as a fresh array (caller frees), or NULL when it has none. */
static float *target_mask(const sw_target *t, const sw_wrapper_set *ws, size_t *numel) {
    *numel = sw_shape_numel(&t->shape);
    float *m = malloc(sizeof(float) * (*numel > 0 ? *numel : 1));
    if (!m) return NULL;
    if (!sw_target_mask(t, ws, true, m)) {
        free(m);
        return NULL;
    }
    return m;
}

sw_status sw_tui_chain_bake(const sw_tui_chain *ch, sw_model *copy, int *dropped) {
    *dropped = 0;
    if (ch->n == 0) return SW_OK;
    /* The library's own unwrap does the baking: the chain's masks are loaded onto a wrapper set
     * of the copy (which recomputes the derived downstream masks), then unwrapped into its
     * weights. The live chain is left as it is. */
    sw_masks masks;
    sw_masks_init(&masks);
    sw_wrapper_set *ws = NULL;
    sw_compressor *fixed = NULL;
    sw_status s = sw_pruner_get_masks(ch->items[ch->n - 1].c, &masks);
    if (s == SW_OK) s = sw_wrapper_set_new(copy, &ws);
    if (s == SW_OK) s = sw_pruner_masks_new(ws, &masks, &fixed);
    if (s == SW_OK) s = sw_compressor_unwrap_model(fixed);
    if (s == SW_OK) *dropped = sw_warnings_count(sw_compressor_warnings(fixed));
    sw_compressor_free(fixed);
    sw_wrapper_set_release(ws);
    sw_masks_deinit(&masks);
    return s;
}

/* Zeros in a target's mask, as a fraction; -1 when it has none. */
static double mask_sparsity(const sw_target *t, const sw_wrapper_set *ws) {
    size_t n;
    float *m = target_mask(t, ws, &n);
    if (!m) return -1;
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += m[i] == 0.0f;
    free(m);
    return n ? (double)z / (double)n : 0;
}

/* The chain item that attached transform `tf`, or NULL. */
static const sw_tui_chain_item *owner_of(const sw_tui_chain *ch, const sw_transform *tf) {
    for (int i = 0; i < ch->n; i++)
        if (tf->owner == (const void *)ch->items[i].c) return &ch->items[i];
    return NULL;
}

void sw_tui_chain_publish(const sw_tui_chain *ch, sw_tui_state *st) {
    st->n_chain = ch->n;
    for (int i = 0; i < ch->n; i++)
        snprintf(st->chain[i], sizeof st->chain[i], "%.40s %.110s", ch->items[i].c->ops->name,
                 ch->items[i].config);
    for (int node = 0; node < st->model->n_nodes; node++) {
        st->badges[node][0] = '\0';
        if (!ch->ws) continue;
        sw_wrapper *w = &ch->ws->wrappers[node];
        int at = 0;
        for (int k = 0; k < w->n_targets; k++) {
            const sw_target *t = &w->targets[k];
            if (t->kind != SW_TARGET_PARAM || strcmp(t->name, "weight") != 0) continue;
            for (int j = 0; j < t->n_tf; j++) {
                const sw_tui_chain_item *it = owner_of(ch, t->tf[j]);
                if (!it) continue;
                double sp = mask_sparsity(t, ch->ws);
                at +=
                    snprintf(st->badges[node] + at, (size_t)(SW_TUI_BADGE_MAX - at), "%s%s %.0f%%",
                             at ? " " : "", it->algo->badge, sp < 0 ? 0 : 100 * sp);
                if (at >= SW_TUI_BADGE_MAX) break;
            }
        }
    }
    st->dirty = true;
}

/* Rows for the channel dependency group of `node`, found on first use. */
static void inspect_dependencies(sw_tui_chain *ch, int node, sw_tui_inspector *out) {
    if (ch->deps_state == 0)
        ch->deps_state = sw_compress_auto_dependency_groups(ch->model, &ch->deps) == SW_OK ? 1 : -1;
    if (ch->deps_state != 1 || node < 0 || node >= ch->deps.n_nodes) return;
    int g = ch->deps.group[node];
    if (g >= 0) {
        char list[200];
        int at = 0, others = 0;
        list[0] = '\0';
        for (int j = 0; j < ch->deps.n_nodes; j++) {
            if (j == node || ch->deps.group[j] != g) continue;
            others++;
            if (at < (int)sizeof list - 1)
                at += snprintf(list + at, sizeof list - (size_t)at, "%s%s", at ? ", " : "",
                               ch->model->nodes[j].name);
        }
        if (others)
            sw_tui_inspect_add(out, "dep group", SW_STYLE_WARN, "prunes channels with %s", list);
    }
    if (ch->deps.metric_block[node] > 1)
        sw_tui_inspect_add(out, "blocks", SW_STYLE_WARN, "channels go in blocks of %d (groups)",
                           ch->deps.metric_block[node]);
}

void sw_tui_chain_inspect(void *ctx, int node, sw_tui_inspector *out) {
    sw_tui_chain *ch = ctx;
    inspect_dependencies(ch, node, out);
    if (!ch->ws || node < 0 || node >= ch->ws->n_wrappers) return;
    sw_wrapper *w = &ch->ws->wrappers[node];
    for (int k = 0; k < w->n_targets; k++) {
        const sw_target *t = &w->targets[k];
        if (t->n_tf == 0) continue;
        char line[200];
        int at = 0;
        for (int j = 0; j < t->n_tf && at < (int)sizeof line; j++) {
            const sw_tui_chain_item *it = owner_of(ch, t->tf[j]);
            at += snprintf(line + at, sizeof line - (size_t)at, "%s%s(%s)", j ? " > " : "",
                           t->tf[j]->ops->name, it ? it->algo->entry.name : "set");
        }
        double sp = mask_sparsity(t, ch->ws);
        char label[24];
        snprintf(label, sizeof label, "> %.20s", t->name);
        if (sp >= 0)
            sw_tui_inspect_add(out, label, SW_STYLE_OK, "%s: %.1f%% zero", line, 100 * sp);
        else
            sw_tui_inspect_add(out, label, SW_STYLE_OK, "%s", line);
    }
}
