/* attach.c - the attach list (every pruner, quantizer and distiller) and the fused chain. */
#include "attach.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../compress/masks_io.h"
#include "../compress/distillation/distillers.h"
#include "../compress/pruning/pruners.h"
#include "../compress/pruning/trained_pruners.h"
#include "../compress/quantization/quantizers.h"

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

/* Slim and Taylor learn their metric over training_steps optimizer steps. */
static void training_steps_field(sw_tui_form *f) {
    sw_tui_form_add_int(f, "training_steps", "training_steps", "2", 1, 100000000, false)->hint =
        "optimizer steps the metric is learned over before the masks are made";
}

static void slim_form(sw_tui_form *f) {
    ratio_form(f);
    training_steps_field(f);
    sw_tui_form_add_float(f, "regular_scale", "regular_scale", "1", 0, 1000)->hint =
        "weight of the L1 penalty on the scaling factors";
}

static void taylor_form(sw_tui_form *f) {
    ratio_form(f);
    training_steps_field(f);
}

static void movement_form(sw_tui_form *f) {
    ratio_form(f);
    sw_tui_form_add_int(f, "warmup_step", "warmup_step", "1", 0, 100000000, false)->hint =
        "optimizer steps before pruning starts (goals are 0 until then)";
    sw_tui_form_add_int(f, "cooldown_begin_step", "cooldown_step", "3", 1, 100000000, false)->hint =
        "step at which the goals reach the configured ratio (must exceed warmup)";
    sw_tui_form_add_float(f, "regular_scale", "regular_scale", "1", 0, 1000)->hint =
        "weight of the score penalty (sparse_threshold targets only)";
}

static const char *const scheduled_inner[] = {"L1Norm", "L2Norm", "FPGM", "Level"};

static void scheduled_form(sw_tui_form *f) {
    sw_tui_form_add_choice(f, "pruner", "pruner", scheduled_inner, 4, 0)->hint =
        "the one-shot pruner whose goals the schedule raises";
    ratio_form(f);
    sw_tui_form_add_int(f, "interval_steps", "interval_steps", "2", 1, 100000000, false)->hint =
        "optimizer steps between two mask updates";
    sw_tui_form_add_int(f, "total_times", "total_times", "2", 1, 10000, false)->hint =
        "mask updates; compress must cover interval_steps x total_times steps";
}

/* Quantizers: NNI's quantization keys, then each algorithm's own. */
static const char *const dtypes[] = {"int8", "int4", "int2", "uint8", "uint4", "null"};
static const char *const schemes[] = {"affine", "symmetric", "null"};
static const char *const quant_granularities[] = {"default", "out_channel"};
static const char *const quant_targets[] = {"weight", "_input_ weight", "_input_ weight _output_",
                                            "_output_"};

static void quant_fields(sw_tui_form *f, int dtype, int scheme, int granularity) {
    sw_tui_form_add_choice(f, "quant_dtype", "quant_dtype", dtypes, 6, dtype)->hint =
        "integer type of the simulated quantization (null: int8)";
    sw_tui_form_add_choice(f, "quant_scheme", "quant_scheme", schemes, 3, scheme)->hint =
        "affine: zero point follows the range; symmetric: centred";
    sw_tui_form_add_choice(f, "granularity", "granularity", quant_granularities,
                           granularity < 0 ? 1 : 2, granularity < 0 ? 0 : granularity)
        ->hint = "default: one scale per tensor; out_channel: one per filter / row";
    sw_tui_form_add_choice(f, "target_names", "target_names", quant_targets, 4, 1)->hint =
        "which values of each module are quantized";
}

static void qat_form(sw_tui_form *f) {
    quant_fields(f, 0, 0, 0);
    sw_tui_form_add_int(f, "quant_start_step", "start_step", "0", 0, 100000000, false)->hint =
        "optimizer steps observed before fake-quantization starts (quant_start_step)";
}
static const char *const lsq_inits[] = {"nni", "data"};
static void lsq_form(sw_tui_form *f) {
    quant_fields(f, 0, 1, 0);
    sw_tui_form_add_choice(f, "init", "scale init", lsq_inits, 2, 0)->hint =
        "nni: 0.01; data: 2 mean|x| / sqrt(qmax), the LSQ paper's (for 2-4 bits)";
}
static void lsqplus_form(sw_tui_form *f) {
    quant_fields(f, 0, 0, 0);
}
static void ptq_form(sw_tui_form *f) {
    quant_fields(f, 0, 0, 0);
}
/* DoReFa and BNN work per tensor only. */
static void dorefa_form(sw_tui_form *f) {
    quant_fields(f, 0, 0, -1);
    sw_tui_form_add_choice(f, "quantize_gradients", "quant_grads", on_off, 2, 0)->hint =
        "on: also quantize output gradients, with noise (quantize_gradients)";
}
static void bnn_form(sw_tui_form *f) {
    quant_fields(f, 5, 2, -1);
}

/* Distillers: the teacher is a clone of the model taken when attaching. */
static const char *const distill_methods[] = {"mse", "kl"};

static void distill_form(sw_tui_form *f) {
    sw_tui_form_add_choice(f, "apply_method", "apply_method", distill_methods, 2, 0)->hint =
        "mse on the values, or kl (temperature 2) on the last dim (logits)";
    sw_tui_form_add_float(f, "lambda", "lambda", "1", 0, 1e6)->hint =
        "weight of each target's distillation loss";
    sw_tui_field *link = sw_tui_form_add_text(f, "link", "link", SW_FIELD_TEXT, "auto");
    link->hint = "teacher module to learn from (auto: the module of the same name)";
    sw_tui_form_add_float(f, "origin_loss_lambda", "origin_lambda", "1", 0, 1e6)->hint =
        "weight of the task loss next to the distillation terms (origin_loss_lambda)";
}

/* The config list's first entry with op_names; NULL on no memory. */
static cJSON *names_entry(const char *const *modules, int n, cJSON **list) {
    *list = cJSON_CreateArray();
    cJSON *entry = cJSON_CreateObject();
    cJSON *names = cJSON_CreateStringArray(modules, n);
    if (!*list || !entry || !names) {
        cJSON_Delete(*list);
        cJSON_Delete(entry);
        cJSON_Delete(names);
        *list = NULL;
        return NULL;
    }
    cJSON_AddItemToObject(entry, "op_names", names);
    cJSON_AddItemToArray(*list, entry);
    return entry;
}

/* [{"op_names": [...], "sparse_ratio": r, ("granularity": ...)}] */
static sw_status ratio_config(const sw_tui_form *f, const char *const *modules, int n,
                              cJSON **out) {
    cJSON *list = NULL, *entry = names_entry(modules, n, &list);
    if (!entry) return SW_FAIL(SW_ERR_NOMEM, "attach: no memory for the config list");
    cJSON_AddNumberToObject(entry, "sparse_ratio", sw_tui_form_float(f, "sparse_ratio", 0.5));
    const char *g = sw_tui_form_text(f, "granularity");
    if (g[0] && strcmp(g, "default") != 0) {
        if (strcmp(g, "element") == 0)
            cJSON_AddNullToObject(entry, "granularity");
        else
            cJSON_AddStringToObject(entry, "granularity", g);
    }
    *out = list;
    return SW_OK;
}

/* A key whose value is a string, or null when the form says "null". */
static void add_string_or_null(cJSON *entry, const char *key, const char *value) {
    if (strcmp(value, "null") == 0)
        cJSON_AddNullToObject(entry, key);
    else
        cJSON_AddStringToObject(entry, key, value);
}

/* [{"op_names", "target_names", "quant_dtype", "quant_scheme", ("granularity")}] */
static sw_status quant_config(const sw_tui_form *f, const char *const *modules, int n,
                              cJSON **out) {
    cJSON *list = NULL, *entry = names_entry(modules, n, &list);
    if (!entry) return SW_FAIL(SW_ERR_NOMEM, "attach: no memory for the config list");
    cJSON *targets = cJSON_AddArrayToObject(entry, "target_names");
    char words[64];
    snprintf(words, sizeof words, "%s", sw_tui_form_text(f, "target_names"));
    for (char *save = NULL, *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save))
        cJSON_AddItemToArray(targets, cJSON_CreateString(w));
    add_string_or_null(entry, "quant_dtype", sw_tui_form_text(f, "quant_dtype"));
    add_string_or_null(entry, "quant_scheme", sw_tui_form_text(f, "quant_scheme"));
    const char *g = sw_tui_form_text(f, "granularity");
    if (g[0] && strcmp(g, "default") != 0) cJSON_AddStringToObject(entry, "granularity", g);
    *out = list;
    return SW_OK;
}

/* [{"op_names", "apply_method", "lambda", ("link")}] */
static sw_status distill_config(const sw_tui_form *f, const char *const *modules, int n,
                                cJSON **out) {
    cJSON *list = NULL, *entry = names_entry(modules, n, &list);
    if (!entry) return SW_FAIL(SW_ERR_NOMEM, "attach: no memory for the config list");
    cJSON_AddStringToObject(entry, "apply_method", sw_tui_form_text(f, "apply_method"));
    cJSON_AddNumberToObject(entry, "lambda", sw_tui_form_float(f, "lambda", 1.0));
    const char *link = sw_tui_form_text(f, "link");
    if (link[0] && strcmp(link, "auto") != 0) cJSON_AddStringToObject(entry, "link", link);
    *out = list;
    return SW_OK;
}

/* ---- constructors --------------------------------------------------------------------------
 * Each builds the item's compressor alone (the chain's first) or from_compressor on the newest,
 * with the form's algorithm-specific arguments. */

static sw_status build_slim(const sw_tui_build *b, sw_tui_chain_item *it) {
    long steps = sw_tui_form_int(b->form, "training_steps", 2);
    double scale = sw_tui_form_float(b->form, "regular_scale", SW_SLIM_REGULAR_SCALE_DEFAULT);
    if (!b->previous) return sw_pruner_slim_new(b->ch->ws, b->config, b->ev, steps, scale, &it->c);
    return sw_pruner_slim_from_compressor(b->previous, b->config, steps, scale, b->ev, &it->c);
}

static sw_status build_taylor(const sw_tui_build *b, sw_tui_chain_item *it) {
    long steps = sw_tui_form_int(b->form, "training_steps", 2);
    if (!b->previous) return sw_pruner_taylor_new(b->ch->ws, b->config, b->ev, steps, &it->c);
    return sw_pruner_taylor_from_compressor(b->previous, b->config, steps, b->ev, &it->c);
}

static sw_status build_movement(const sw_tui_build *b, sw_tui_chain_item *it) {
    long warm = sw_tui_form_int(b->form, "warmup_step", 1);
    long cool = sw_tui_form_int(b->form, "cooldown_begin_step", 3);
    double scale = sw_tui_form_float(b->form, "regular_scale", SW_MOVEMENT_REGULAR_SCALE_DEFAULT);
    if (!b->previous)
        return sw_pruner_movement_new(b->ch->ws, b->config, b->ev, warm, cool, scale, &it->c);
    return sw_pruner_movement_from_compressor(b->previous, b->config, warm, cool, scale, b->ev,
                                              &it->c);
}

/* Linear/AGP: the chosen one-shot pruner is built first (alone or from_compressor, as NNI
 * requires), then wrapped by the schedule; later items build on the combo. */
static sw_status build_scheduled(const sw_tui_build *b, sw_tui_chain_item *it, bool agp) {
    const sw_tui_algo *inner = sw_tui_algo_find(sw_tui_form_text(b->form, "pruner"));
    if (!inner || !inner->create)
        return SW_FAIL(SW_ERR_ARG, "attach: choose the pruner the schedule drives");
    sw_status s = b->previous ? inner->create_from(b->previous, b->config, b->ev, &it->inner)
                              : inner->create(b->ch->ws, b->config, b->ev, &it->inner);
    if (s != SW_OK) return s;
    long interval = sw_tui_form_int(b->form, "interval_steps", 2);
    int times = (int)sw_tui_form_int(b->form, "total_times", 2);
    s = agp ? sw_pruner_agp_new(it->inner, interval, times, b->ev, &it->c)
            : sw_pruner_linear_new(it->inner, interval, times, b->ev, &it->c);
    if (s != SW_OK) {
        sw_compressor_free(it->inner);
        it->inner = NULL;
    }
    return s;
}
static sw_status build_agp(const sw_tui_build *b, sw_tui_chain_item *it) {
    return build_scheduled(b, it, true);
}
static sw_status build_linear(const sw_tui_build *b, sw_tui_chain_item *it) {
    return build_scheduled(b, it, false);
}

static sw_status build_qat(const sw_tui_build *b, sw_tui_chain_item *it) {
    long start = sw_tui_form_int(b->form, "quant_start_step", 0);
    if (!b->previous) return sw_quantizer_qat_new(b->ch->ws, b->config, b->ev, start, &it->c);
    return sw_quantizer_qat_from_compressor(b->previous, b->config, start, b->ev, &it->c);
}
static sw_status build_lsq(const sw_tui_build *b, sw_tui_chain_item *it) {
    SW_TRY(b->previous ? sw_quantizer_lsq_from_compressor(b->previous, b->config, b->ev, &it->c)
                       : sw_quantizer_lsq_new(b->ch->ws, b->config, b->ev, &it->c));
    if (strcmp(sw_tui_form_text(b->form, "init"), "data") != 0) return SW_OK;
    sw_status st = sw_quantizer_lsq_set_data_init(it->c, true);
    if (st != SW_OK) {
        sw_compressor_free(it->c);
        it->c = NULL;
    }
    return st;
}
static sw_status build_lsqplus(const sw_tui_build *b, sw_tui_chain_item *it) {
    if (!b->previous) return sw_quantizer_lsqplus_new(b->ch->ws, b->config, b->ev, &it->c);
    return sw_quantizer_lsqplus_from_compressor(b->previous, b->config, b->ev, &it->c);
}
static sw_status build_ptq(const sw_tui_build *b, sw_tui_chain_item *it) {
    if (!b->previous) return sw_quantizer_ptq_new(b->ch->ws, b->config, b->ev, &it->c);
    return sw_quantizer_ptq_from_compressor(b->previous, b->config, b->ev, &it->c);
}
static sw_status build_dorefa(const sw_tui_build *b, sw_tui_chain_item *it) {
    bool grads = strcmp(sw_tui_form_text(b->form, "quantize_gradients"), "on") == 0;
    uint64_t seed = b->ev ? b->ev->cfg.seed : 0;
    it->seed = (unsigned long)seed;
    if (!b->previous)
        return sw_quantizer_dorefa_new(b->ch->ws, b->config, b->ev, grads, seed, &it->c);
    return sw_quantizer_dorefa_from_compressor(b->previous, b->config, grads, seed, b->ev, &it->c);
}
static sw_status build_bnn(const sw_tui_build *b, sw_tui_chain_item *it) {
    if (!b->previous) return sw_quantizer_bnn_new(b->ch->ws, b->config, b->ev, &it->c);
    return sw_quantizer_bnn_from_compressor(b->previous, b->config, b->ev, &it->c);
}

/* Distillers teach the student from a clone of the model as it is now, owned by the item (a
 * clone copies the raw weights: the teacher is the dense model even after a pruner). */
static sw_status build_distiller(const sw_tui_build *b, sw_tui_chain_item *it, bool adaptive) {
    SW_TRY(sw_model_clone(b->ch->model, &it->teacher));
    double lambda = sw_tui_form_float(b->form, "origin_loss_lambda", 1.0);
    sw_status s;
    if (adaptive)
        s = b->previous
                ? sw_distiller_adaptive1d_from_compressor(b->previous, b->config, it->teacher, NULL,
                                                          NULL, lambda, b->ev, &it->c)
                : sw_distiller_adaptive1d_new(b->ch->ws, b->config, b->ev, it->teacher, NULL, NULL,
                                              lambda, &it->c);
    else
        s = b->previous ? sw_distiller_dynamic_from_compressor(b->previous, b->config, it->teacher,
                                                               NULL, NULL, lambda, b->ev, &it->c)
                        : sw_distiller_dynamic_new(b->ch->ws, b->config, b->ev, it->teacher, NULL,
                                                   NULL, lambda, &it->c);
    if (s != SW_OK) {
        sw_model_free(it->teacher);
        it->teacher = NULL;
    }
    return s;
}
static sw_status build_dynamic(const sw_tui_build *b, sw_tui_chain_item *it) {
    return build_distiller(b, it, false);
}
static sw_status build_adaptive1d(const sw_tui_build *b, sw_tui_chain_item *it) {
    return build_distiller(b, it, true);
}

/* ---- Lua constructor calls (for recipes) ------------------------------------------------ */

/* "sw.<Class>(model, cfg, evaluator<extra>)" or "sw.<Class>.from_compressor(prev, cfg<extra>)" */
static int lua_call(const sw_tui_chain_item *it, const char *prev, const char *cfg,
                    const char *extra, char *buf, size_t size) {
    if (prev)
        return snprintf(buf, size, "sw.%s.from_compressor(%s, %s%s)", it->c->ops->name, prev, cfg,
                        extra);
    return snprintf(buf, size, "sw.%s(model, %s, evaluator%s)", it->c->ops->name, cfg, extra);
}
static int lua_plain(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                     size_t size) {
    return lua_call(it, prev, cfg, "", buf, size);
}
static int lua_slim(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                    size_t size) {
    char extra[96];
    snprintf(extra, sizeof extra, ", %ld, %.17g", sw_tui_form_int(&it->params, "training_steps", 2),
             sw_tui_form_float(&it->params, "regular_scale", 1));
    return lua_call(it, prev, cfg, extra, buf, size);
}
static int lua_taylor(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                      size_t size) {
    char extra[64];
    snprintf(extra, sizeof extra, ", %ld", sw_tui_form_int(&it->params, "training_steps", 2));
    return lua_call(it, prev, cfg, extra, buf, size);
}
static int lua_movement(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                        size_t size) {
    char extra[128];
    snprintf(extra, sizeof extra, ", %ld, %ld, %.17g",
             sw_tui_form_int(&it->params, "warmup_step", 1),
             sw_tui_form_int(&it->params, "cooldown_begin_step", 3),
             sw_tui_form_float(&it->params, "regular_scale", 1));
    return lua_call(it, prev, cfg, extra, buf, size);
}
/* sw.AGPPruner(<inner pruner call>, interval_steps, total_times, evaluator) */
static int lua_scheduled(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                         size_t size) {
    const char *inner = it->inner ? it->inner->ops->name : "L1NormPruner";
    char call[256];
    if (prev)
        snprintf(call, sizeof call, "sw.%s.from_compressor(%s, %s)", inner, prev, cfg);
    else
        snprintf(call, sizeof call, "sw.%s(model, %s, evaluator)", inner, cfg);
    return snprintf(buf, size, "sw.%s(%s, %ld, %ld, evaluator)", it->c->ops->name, call,
                    sw_tui_form_int(&it->params, "interval_steps", 2),
                    sw_tui_form_int(&it->params, "total_times", 2));
}
static int lua_qat(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                   size_t size) {
    char extra[64];
    snprintf(extra, sizeof extra, ", %ld", sw_tui_form_int(&it->params, "quant_start_step", 0));
    return lua_call(it, prev, cfg, extra, buf, size);
}
static int lua_lsq(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                   size_t size) {
    char extra[32];
    snprintf(extra, sizeof extra, ", \"%s\"", sw_tui_form_text(&it->params, "init"));
    return lua_call(it, prev, cfg, extra, buf, size);
}
static int lua_dorefa(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                      size_t size) {
    const char *g = sw_tui_form_text(&it->params, "quantize_gradients");
    char extra[64];
    snprintf(extra, sizeof extra, ", %s, %lu", strcmp(g, "on") == 0 ? "true" : "false", it->seed);
    return lua_call(it, prev, cfg, extra, buf, size);
}
/* Distillers: the teacher is a clone of the model taken when the distiller is built. */
static int lua_distiller(const sw_tui_chain_item *it, const char *prev, const char *cfg, char *buf,
                         size_t size) {
    char extra[96];
    snprintf(extra, sizeof extra, ", model:clone(), nil, %.17g",
             sw_tui_form_float(&it->params, "origin_loss_lambda", 1));
    return lua_call(it, prev, cfg, extra, buf, size);
}

#define PRUNER(name, badge, summary, form, fn)                                                     \
    {                                                                                              \
        {name, "pruner", summary, form}, badge, SW_TUI_PRUNER, SW_TUI_ONE_SHOT, weight_layers,     \
            "a Conv2d or Linear", ratio_config, sw_pruner_##fn##_new,                              \
            sw_pruner_##fn##_from_compressor, NULL, lua_plain                                      \
    }
#define TRAINED(name, kind, badge, k, training, summary, form, accepts, what, config, build, lua)  \
    {                                                                                              \
        {name, kind, summary, form}, badge, k, training, accepts, what, config, NULL, NULL, build, \
            lua                                                                                    \
    }

static const sw_tui_algo algos[] = {
    PRUNER("L1Norm", "P:L1", "smallest L1-norm filters/rows first (one-shot)", norm_form, l1norm),
    PRUNER("L2Norm", "P:L2", "smallest L2-norm filters/rows first (one-shot)", norm_form, l2norm),
    PRUNER("FPGM", "P:FPGM", "filters nearest the geometric median first", norm_form, fpgm),
    PRUNER("Level", "P:Lv", "smallest |w| single weights first (one-shot)", level_form, level),
    TRAINED("Slim", "pruner", "P:Slim", SW_TUI_PRUNER, SW_TUI_OWN_LENGTH,
            "learned channel factors, L1 penalty (trains)", slim_form, weight_layers,
            "a Conv2d or Linear", ratio_config, build_slim, lua_slim),
    TRAINED("Taylor", "pruner", "P:Tay", SW_TUI_PRUNER, SW_TUI_OWN_LENGTH,
            "Taylor importance (w * grad)^2 (trains)", taylor_form, weight_layers,
            "a Conv2d or Linear", ratio_config, build_taylor, lua_taylor),
    TRAINED("Linear", "pruner", "P:Lin", SW_TUI_PRUNER, SW_TUI_NEEDS_LIMITS,
            "a one-shot pruner, ratio raised linearly", scheduled_form, weight_layers,
            "a Conv2d or Linear", ratio_config, build_linear, lua_scheduled),
    TRAINED("AGP", "pruner", "P:AGP", SW_TUI_PRUNER, SW_TUI_NEEDS_LIMITS,
            "a one-shot pruner, cubic ratio schedule", scheduled_form, weight_layers,
            "a Conv2d or Linear", ratio_config, build_agp, lua_scheduled),
    TRAINED("Movement", "pruner", "P:Mov", SW_TUI_PRUNER, SW_TUI_NEEDS_LIMITS,
            "learned movement scores (trains)", movement_form, weight_layers, "a Conv2d or Linear",
            ratio_config, build_movement, lua_movement),
    TRAINED("QAT", "quantizer", "Q", SW_TUI_QUANTIZER, SW_TUI_NEEDS_LIMITS,
            "EMA ranges, fake-quant from a start step", qat_form, weight_layers,
            "a Conv2d or Linear", quant_config, build_qat, lua_qat),
    TRAINED("LSQ", "quantizer", "Q", SW_TUI_QUANTIZER, SW_TUI_NEEDS_LIMITS,
            "trainable scales (symmetric)", lsq_form, weight_layers, "a Conv2d or Linear",
            quant_config, build_lsq, lua_lsq),
    TRAINED("LSQ+", "quantizer", "Q", SW_TUI_QUANTIZER, SW_TUI_NEEDS_LIMITS,
            "trainable scales and zero points (affine)", lsqplus_form, weight_layers,
            "a Conv2d or Linear", quant_config, build_lsqplus, lua_plain),
    TRAINED("PTQ", "quantizer", "Q", SW_TUI_QUANTIZER, SW_TUI_NEEDS_LIMITS,
            "calibration passes set the ranges", ptq_form, weight_layers, "a Conv2d or Linear",
            quant_config, build_ptq, lua_plain),
    TRAINED("DoReFa", "quantizer", "Q", SW_TUI_QUANTIZER, SW_TUI_NEEDS_LIMITS,
            "tanh-normalised weights, per tensor", dorefa_form, weight_layers, "a Conv2d or Linear",
            quant_config, build_dorefa, lua_dorefa),
    TRAINED("BNN", "quantizer", "Q", SW_TUI_QUANTIZER, SW_TUI_NEEDS_LIMITS,
            "sign(x), weights clamped to [-1, 1]", bnn_form, weight_layers, "a Conv2d or Linear",
            quant_config, build_bnn, lua_plain),
    TRAINED("Dynamic", "distiller", "D", SW_TUI_DISTILLER, SW_TUI_NEEDS_LIMITS,
            "layer-wise from a teacher clone (nearest link)", distill_form, NULL, "a module",
            distill_config, build_dynamic, lua_distiller),
    TRAINED("Adaptive1d", "distiller", "D", SW_TUI_DISTILLER, SW_TUI_NEEDS_LIMITS,
            "layer-wise via a trained Linear adapter", distill_form, NULL, "a module",
            distill_config, build_adaptive1d, lua_distiller),
};

const sw_tui_algo *sw_tui_algos(int *n) {
    *n = (int)(sizeof algos / sizeof algos[0]);
    return algos;
}

const sw_tui_algo *sw_tui_algo_find(const char *name) {
    int n;
    const sw_tui_algo *a = sw_tui_algos(&n);
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].entry.name, name) == 0) return &a[i];
    return NULL;
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

/* Frees one item: the scheduler before the pruner it drives, the teacher last (the distiller
 * borrows it). */
static void item_free(sw_tui_chain_item *it) {
    sw_compressor_free(it->c);
    sw_compressor_free(it->inner);
    sw_model_free(it->teacher);
    free(it->config);
    memset(it, 0, sizeof *it);
}

void sw_tui_chain_deinit(sw_tui_chain *ch) {
    if (ch->deps_state == 1) sw_dependency_groups_deinit(&ch->deps);
    ch->deps_state = 0;
    /* Newest first, so each free unlinks the end of the chain. */
    for (int i = ch->n - 1; i >= 0; i--) item_free(&ch->items[i]);
    ch->n = 0;
    sw_model_free(ch->origin);
    ch->origin = NULL;
    sw_wrapper_set_release(ch->ws);
    ch->ws = NULL;
}

/* The badge of a new item: the row's for pruners, the dtype for quantizers ("Q:int8", BNN's
 * null dtype as "Q:bin"), the loss for distillers ("D:kl"). */
static void item_badge(sw_tui_chain_item *it) {
    const char *dtype = sw_tui_form_text(&it->params, "quant_dtype");
    switch (it->algo->kind) {
    case SW_TUI_QUANTIZER:
        if (strcmp(it->algo->entry.name, "BNN") == 0)
            snprintf(it->badge, sizeof it->badge, "Q:bin");
        else
            snprintf(it->badge, sizeof it->badge, "Q:%s",
                     strcmp(dtype, "null") == 0 || !dtype[0] ? "int8" : dtype);
        break;
    case SW_TUI_DISTILLER:
        snprintf(it->badge, sizeof it->badge, "D:%s",
                 sw_tui_form_text(&it->params, "apply_method"));
        break;
    default:
        snprintf(it->badge, sizeof it->badge, "%s", it->algo->badge);
    }
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
                       "attach %s: none of the %d selected modules is %s; move to one (or "
                       "mark several with space) and try again",
                       algo->entry.name, n_nodes, algo->accepts_what);
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
    /* What a recipe starts from: the weights before anything of this chain ran. */
    if (ch->n == 0) {
        sw_model_free(ch->origin);
        ch->origin = NULL;
        s = sw_model_clone(ch->model, &ch->origin);
        if (s != SW_OK) {
            cJSON_Delete(config);
            return s;
        }
    }
    sw_tui_chain_item *it = &ch->items[ch->n];
    memset(it, 0, sizeof *it);
    it->algo = algo;
    it->params = *params;
    sw_compressor *previous = ch->n ? ch->items[ch->n - 1].c : NULL;
    if (algo->build) {
        sw_tui_build b = {
            .ch = ch, .previous = previous, .config = config, .form = params, .ev = ev};
        s = algo->build(&b, it);
    } else if (previous) {
        s = algo->create_from(previous, config, ev, &it->c);
    } else {
        s = algo->create(ch->ws, config, ev, &it->c);
    }
    if (s == SW_OK) {
        it->config = cJSON_PrintUnformatted(config);
        if (!it->config) s = SW_FAIL(SW_ERR_NOMEM, "attach: no memory for the config text");
    } else {
        sw_error_prefix("attach %s", algo->entry.name);
    }
    cJSON_Delete(config);
    if (s != SW_OK) {
        item_free(it);
        return s;
    }
    item_badge(it);
    ch->n++;
    return SW_OK;
}

sw_status sw_tui_chain_detach(sw_tui_chain *ch) {
    if (ch->n == 0) return SW_FAIL(SW_ERR_ARG, "detach: no compressor is attached");
    item_free(&ch->items[--ch->n]);
    return SW_OK;
}

bool sw_tui_chain_needs_limits(const sw_tui_chain *ch) {
    if (ch->n == 1) return ch->items[0].algo->training == SW_TUI_NEEDS_LIMITS;
    /* Fused, Slim and Taylor train under the chain's limits too. */
    for (int i = 0; i < ch->n; i++)
        if (ch->items[i].algo->training != SW_TUI_ONE_SHOT) return true;
    return false;
}

bool sw_tui_chain_has(const sw_tui_chain *ch, sw_tui_algo_kind kind) {
    for (int i = 0; i < ch->n; i++)
        if (ch->items[i].algo->kind == kind) return true;
    return false;
}

sw_compressor *sw_tui_chain_quantizer(const sw_tui_chain *ch) {
    for (int i = ch->n - 1; i >= 0; i--)
        if (ch->items[i].algo->kind == SW_TUI_QUANTIZER) return ch->items[i].c;
    return NULL;
}

sw_status sw_tui_chain_compress(sw_tui_chain *ch, long max_steps, int max_epochs) {
    if (ch->n == 0) return SW_FAIL(SW_ERR_ARG, "compress: attach a compressor first (a)");
    ch->last_steps = max_steps;
    ch->last_epochs = max_epochs;
    ch->compressed = true;
    return sw_compressor_compress(ch->items[ch->n - 1].c, max_steps, max_epochs);
}

sw_status sw_tui_chain_export_masks(sw_tui_chain *ch, const char *path) {
    if (!sw_tui_chain_has(ch, SW_TUI_PRUNER))
        return SW_FAIL(SW_ERR_ARG, "export masks: no pruner is attached");
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

sw_status sw_tui_chain_speedup(const sw_tui_chain *ch, sw_model **fast, sw_speedup_check *check,
                               bool *checked) {
    *fast = NULL;
    *checked = false;
    if (!sw_tui_chain_has(ch, SW_TUI_PRUNER))
        return SW_FAIL(SW_ERR_ARG, "speedup: no pruner is attached, so nothing can be removed");
    sw_masks masks;
    sw_masks_init(&masks);
    sw_mask_set *ms = NULL;
    sw_model *clone = NULL;
    sw_speedup *sp = NULL;
    /* The clone has the raw weights and no wrappers: speedup applies the masks itself. */
    sw_status s = sw_pruner_get_masks(ch->items[ch->n - 1].c, &masks);
    if (s == SW_OK) s = sw_mask_set_from_masks(&masks, &ms);
    if (s == SW_OK) s = sw_model_clone(ch->model, &clone);
    if (s == SW_OK) s = sw_speedup_new(clone, NULL, ms, NULL, &sp);
    if (s == SW_OK) {
        s = sw_speedup_model(sp, fast);
        const sw_speedup_report *r = sw_speedup_get_report(sp);
        if (r->checked) {
            *check = r->check;
            *checked = true;
        }
    }
    sw_speedup_free(sp);
    sw_model_free(clone);
    sw_mask_set_free(ms);
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

/* A picture of which output channels of a weight's mask are kept, one character per channel
 * ('#' kept, '.' pruned), in rows of SW_MASK_PICTURE_WIDTH; beyond two rows each character
 * stands for a group of channels ('+' where the group is partly kept). */
#define SW_MASK_PICTURE_WIDTH 48
static void inspect_mask_picture(const sw_target *t, const sw_wrapper_set *ws,
                                 sw_tui_inspector *out) {
    if (t->kind != SW_TARGET_PARAM || strcmp(t->name, "weight") != 0 || t->shape.ndim < 2) return;
    size_t n;
    float *m = target_mask(t, ws, &n);
    if (!m) return;
    int channels = t->shape.dims[0];
    size_t per_channel = n / (size_t)channels;
    bool *kept = malloc((size_t)channels * sizeof *kept); /* owned here: per output channel */
    if (!kept) {
        free(m);
        return;
    }
    int kept_total = 0;
    for (int c = 0; c < channels; c++) {
        kept[c] = false;
        for (size_t k = 0; k < per_channel && !kept[c]; k++)
            kept[c] = m[(size_t)c * per_channel + k] != 0;
        kept_total += kept[c];
    }
    free(m);
    int group = 1;
    if (channels > 2 * SW_MASK_PICTURE_WIDTH)
        group = (channels + 2 * SW_MASK_PICTURE_WIDTH - 1) / (2 * SW_MASK_PICTURE_WIDTH);
    int cells = (channels + group - 1) / group;
    char row[SW_MASK_PICTURE_WIDTH + 1], label[32];
    snprintf(label, sizeof label, "kept %d/%d", kept_total, channels);
    for (int first = 0; first < cells; first += SW_MASK_PICTURE_WIDTH) {
        int at = 0;
        for (int cell = first; cell < cells && at < SW_MASK_PICTURE_WIDTH; cell++) {
            int k = 0, total = 0;
            for (int c = cell * group; c < channels && c < (cell + 1) * group; c++, total++)
                k += kept[c];
            row[at++] = k == total ? '#' : k == 0 ? '.' : '+';
        }
        row[at] = '\0';
        sw_tui_inspect_add(out, first == 0 ? label : "", SW_STYLE_OK, "%s", row);
    }
    if (group > 1) sw_tui_inspect_add(out, "", SW_STYLE_DIM, "one character per %d channels", group);
    free(kept);
}

/* The chain item that attached transform `tf`, or NULL. */
static const sw_tui_chain_item *owner_of(const sw_tui_chain *ch, const sw_transform *tf) {
    for (int i = 0; i < ch->n; i++)
        if (tf->owner == (const void *)ch->items[i].c ||
            (ch->items[i].inner && tf->owner == (const void *)ch->items[i].inner))
            return &ch->items[i];
    return NULL;
}

/* True when item `it` has a transform on any target of wrapper `w`; *weight_sparsity is the
 * zero share of the weight mask when it masks the weight (-1 otherwise). */
static bool item_touches(const sw_tui_chain *ch, const sw_tui_chain_item *it, const sw_wrapper *w,
                         double *weight_sparsity) {
    bool touches = false;
    *weight_sparsity = -1;
    for (int k = 0; k < w->n_targets; k++) {
        const sw_target *t = &w->targets[k];
        for (int j = 0; j < t->n_tf; j++) {
            if (owner_of(ch, t->tf[j]) != it) continue;
            touches = true;
            if (it->algo->kind == SW_TUI_PRUNER && t->kind == SW_TARGET_PARAM &&
                strcmp(t->name, "weight") == 0)
                *weight_sparsity = mask_sparsity(t, ch->ws);
        }
    }
    return touches;
}

void sw_tui_chain_publish(const sw_tui_chain *ch, sw_tui_state *st) {
    st->n_chain = ch->n;
    st->chain_needs_limits = ch->n > 0 && sw_tui_chain_needs_limits(ch);
    st->chain_has_pruner = sw_tui_chain_has(ch, SW_TUI_PRUNER);
    st->chain_has_quantizer = sw_tui_chain_has(ch, SW_TUI_QUANTIZER);
    for (int i = 0; i < ch->n; i++)
        snprintf(st->chain[i], sizeof st->chain[i], "%.40s %.110s", ch->items[i].c->ops->name,
                 ch->items[i].config);
    for (int node = 0; node < st->model->n_nodes; node++) {
        st->badges[node][0] = '\0';
        if (!ch->ws) continue;
        const sw_wrapper *w = &ch->ws->wrappers[node];
        int at = 0;
        for (int i = 0; i < ch->n && at < SW_TUI_BADGE_MAX; i++) {
            double sp;
            if (!item_touches(ch, &ch->items[i], w, &sp)) continue;
            if (sp >= 0)
                at += snprintf(st->badges[node] + at, (size_t)(SW_TUI_BADGE_MAX - at),
                               "%s%s %.0f%%", at ? " " : "", ch->items[i].badge, 100 * sp);
            else
                at += snprintf(st->badges[node] + at, (size_t)(SW_TUI_BADGE_MAX - at), "%s%s",
                               at ? " " : "", ch->items[i].badge);
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

/* "0.0123" for one block, "0.001..0.02 (64)" for several: the range over the blocks. */
static void block_range(const float *v, size_t n, char *buf, size_t size) {
    float lo = v[0], hi = v[0];
    for (size_t i = 1; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    if (n == 1)
        snprintf(buf, size, "%.4g", (double)lo);
    else
        snprintf(buf, size, "%.3g..%.3g (%zu)", (double)lo, (double)hi, n);
}

/* One row per target of `node` that a quantizer of the chain claims: dtype and scheme, scale,
 * zero point and the tracked range (per block: the range over the blocks and their count). */
static void inspect_quantizers(const sw_tui_chain *ch, int node, sw_tui_inspector *out) {
    for (int i = 0; i < ch->n; i++) {
        const sw_quantizer *q = sw_quantizer_of_const(ch->items[i].c);
        if (!q) continue;
        for (int k = 0; k < q->n_targets; k++) {
            const sw_quant_target *t = &q->targets[k];
            if (t->node != node) continue;
            char label[24], scale[48], zp[48], lo[48], hi[48];
            snprintf(label, sizeof label, "q %.18s", t->name);
            if (!t->has_scale) {
                sw_tui_inspect_add(out, label, SW_STYLE_DIM, "%s %s %s: scale unset (compress)",
                                   t->setting.dtype.name, sw_quant_scheme_name(t->setting.scheme),
                                   sw_quant_method_name(t->method));
                continue;
            }
            block_range(t->scale, t->n_blocks, scale, sizeof scale);
            block_range(t->zero_point, t->n_blocks, zp, sizeof zp);
            if (t->has_tracked) {
                block_range(t->tracked_min, t->n_blocks, lo, sizeof lo);
                block_range(t->tracked_max, t->n_blocks, hi, sizeof hi);
            } else {
                snprintf(lo, sizeof lo, "-");
                snprintf(hi, sizeof hi, "-");
            }
            sw_tui_inspect_add(out, label, SW_STYLE_OK, "%s %s scale %s zp %s min %s max %s",
                               t->setting.dtype.name, sw_quant_scheme_name(t->setting.scheme),
                               scale, zp, lo, hi);
        }
    }
}

/* One row per distillation capture on `node`: the loss, the teacher module it is linked to (the
 * link chosen at the last step when there are several) and the current term. */
static void inspect_distillers(const sw_tui_chain *ch, int node, sw_tui_inspector *out) {
    for (int i = 0; i < ch->n; i++) {
        sw_distiller *d = sw_distiller_of(ch->items[i].c);
        if (!d) continue;
        for (int k = 0; k < d->n_targets; k++) {
            const sw_distill_target *t = &d->targets[k];
            if (t->node != node) continue;
            int link = t->last_link >= 0 ? t->last_link : 0;
            const char *teacher = "?";
            sw_distiller_teacher_shape(d, t, link, &teacher);
            char label[24];
            snprintf(label, sizeof label, "d %.18s", t->name);
            sw_tui_inspect_add(out, label, SW_STYLE_OK, "%s x%.3g <- teacher %s%s, term %.4g",
                               ch->items[i].badge + 2, t->lambda, teacher,
                               t->n_links > 1 ? " (nearest)" : "", t->last_loss);
        }
    }
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
        if (sp >= 0) inspect_mask_picture(t, ch->ws, out);
    }
    inspect_quantizers(ch, node, out);
    inspect_distillers(ch, node, out);
}
