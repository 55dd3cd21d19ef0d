/* cmd_prune.c - `shrinkwrap prune`: any of the nine pruners from a JSON config list, then
 * optional fine-tuning with the masks held; prints accuracies, per-module sparsity and what
 * speedup would remove, and writes the masks (and optionally the pruned model) atomically.
 *
 * Also home of the helpers other commands use to read masks and config lists: info --masks
 * (per-module sparsity) and bench --prune (a wrapped model to time). */
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "compress/dead_channels.h"
#include "compress/dependency.h"
#include "compress/masks_io.h"
#include "compress/pruning/prune_setting.h"
#include "compress/pruning/pruners.h"
#include "compress/pruning/trained_pruners.h"
#include "io/model_file.h"
#include "speedup/speedup.h"

/* Fine-tuning starts from a trained model: a smaller step than training from scratch. */
#define DEFAULT_FINETUNE_LR 0.01f
/* parse()'s results besides an exit code: go on, or help was printed. */
#define PARSE_GO (-1)
#define PARSE_HELP (-2)

enum {
    OPT_MODEL = SW_OPT_FIRST_COMMAND,
    OPT_PRUNER,
    OPT_CONFIG,
    OPT_OUT,
    OPT_FINETUNE_EPOCHS,
    OPT_FINETUNE_STEPS,
    OPT_SAVE_MODEL,
    OPT_TRAINING_STEPS,
    OPT_REGULAR_SCALE,
    OPT_INTERVAL_STEPS,
    OPT_TOTAL_TIMES,
    OPT_SUB_PRUNER,
    OPT_WARMUP_STEP,
    OPT_COOLDOWN_BEGIN_STEP,
    OPT_AUTO_DEPENDENCY,
};

static const struct option prune_own_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"pruner", required_argument, NULL, OPT_PRUNER},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"out", required_argument, NULL, OPT_OUT},
    {"finetune-epochs", required_argument, NULL, OPT_FINETUNE_EPOCHS},
    {"finetune-steps", required_argument, NULL, OPT_FINETUNE_STEPS},
    {"save-model", required_argument, NULL, OPT_SAVE_MODEL},
    {"training-steps", required_argument, NULL, OPT_TRAINING_STEPS},
    {"regular-scale", required_argument, NULL, OPT_REGULAR_SCALE},
    {"interval-steps", required_argument, NULL, OPT_INTERVAL_STEPS},
    {"total-times", required_argument, NULL, OPT_TOTAL_TIMES},
    {"sub-pruner", required_argument, NULL, OPT_SUB_PRUNER},
    {"warmup-step", required_argument, NULL, OPT_WARMUP_STEP},
    {"cooldown-begin-step", required_argument, NULL, OPT_COOLDOWN_BEGIN_STEP},
    {"auto-dependency", no_argument, NULL, OPT_AUTO_DEPENDENCY},
    {0, 0, 0, 0},
};

/* How a pruner produces its masks, which decides the options it takes and how it compresses. */
typedef enum pruner_kind {
    KIND_ONE_SHOT,  /* level, l1norm, l2norm, fpgm: masks from the weights, no training */
    KIND_TRAINED,   /* slim, taylor: train exactly --training-steps, then masks */
    KIND_SCHEDULER, /* linear, agp: a schedule over a sub-pruner, trains through it */
    KIND_MOVEMENT,  /* movement: scores learned over a cubic schedule */
} pruner_kind;

typedef sw_status (*one_shot_new_fn)(sw_wrapper_set *, const cJSON *, sw_evaluator *,
                                     sw_compressor **);

static const struct pruner_info {
    const char *name;
    pruner_kind kind;
    one_shot_new_fn make; /* one-shot pruners only */
} pruner_table[] = {
    {"level", KIND_ONE_SHOT, sw_pruner_level_new},
    {"l1norm", KIND_ONE_SHOT, sw_pruner_l1norm_new},
    {"l2norm", KIND_ONE_SHOT, sw_pruner_l2norm_new},
    {"fpgm", KIND_ONE_SHOT, sw_pruner_fpgm_new},
    {"slim", KIND_TRAINED, NULL},
    {"taylor", KIND_TRAINED, NULL},
    {"linear", KIND_SCHEDULER, NULL},
    {"agp", KIND_SCHEDULER, NULL},
    {"movement", KIND_MOVEMENT, NULL},
};
#define N_PRUNERS (sizeof pruner_table / sizeof pruner_table[0])

static const struct pruner_info *find_pruner(const char *name) {
    for (size_t i = 0; i < N_PRUNERS; i++)
        if (strcmp(pruner_table[i].name, name) == 0) return &pruner_table[i];
    return NULL;
}

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap prune --model FILE|NAME --pruner NAME --config CFG --out MASKS\n"
            "                        [--finetune-epochs N] [--save-model FILE] [OPTIONS]\n\n"
            "Prunes a model with one of NNI 3.0's pruners configured by a config list, then\n"
            "optionally fine-tunes it with the masks held (a pruned channel stays zero\n"
            "downstream: through its bias, its BatchNorm and its activation). Prints the test\n"
            "accuracy before pruning, after masking and after fine-tuning, the sparsity of\n"
            "every pruned module, and the parameters and FLOPs that `shrinkwrap speedup` would\n"
            "remove. Writes the masks to --out (and the model with the masks baked in to\n"
            "--save-model) atomically, at the end: Ctrl-C stops at the next step boundary,\n"
            "writes nothing and exits with 130.\n\n"
            "  --model FILE|NAME        the model to prune (.safetensors or a zoo name)\n"
            "  --pruner NAME            level, l1norm, l2norm, fpgm (one-shot: masks from the\n"
            "                           weights), slim, taylor (train, then prune), linear, agp\n"
            "                           (a schedule over --sub-pruner), movement (learned\n"
            "                           scores)\n"
            "  --config CFG             the config list, in NNI's keys: a JSON file, or the\n"
            "                           JSON text ('[{\"op_names\": [\"conv1\"],\n"
            "                           \"sparse_ratio\": 0.5}]')\n"
            "  --auto-dependency        add NNI's dependency groups to the config list (convs\n"
            "                           whose outputs meet at an Add prune the same channels)\n"
            "  --out FILE               where to write the masks (.safetensors, one tensor per\n"
            "                           module.target)\n"
            "  --finetune-epochs N      fine-tune N epochs after pruning, masks held (default 0)\n"
            "  --finetune-steps N       stop fine-tuning after N optimizer steps (alone: fine-\n"
            "                           tune N steps)\n"
            "  --save-model FILE        also write the pruned model, masks baked into weights\n\n"
            "pruner options (each only where it applies):\n"
            "  --training-steps N       slim, taylor: optimizer steps of training before the\n"
            "                           masks are generated (required; under linear/agp it\n"
            "                           defaults to --interval-steps)\n"
            "  --regular-scale X        slim: weight of the L1 term on the factors; movement:\n"
            "                           weight of the score regulariser (default %g)\n"
            "  --interval-steps N       linear, agp: optimizer steps between mask updates\n"
            "  --total-times T          linear, agp: number of mask updates\n"
            "  --sub-pruner NAME        linear, agp: the scheduled pruner: level, l1norm\n"
            "                           (default), l2norm, fpgm, slim or taylor\n"
            "  --warmup-step N          movement: steps before pruning starts (default 0)\n"
            "  --cooldown-begin-step N  movement: step at which the goals are reached\n"
            "                           (required)\n\n",
            SW_SLIM_REGULAR_SCALE_DEFAULT);
    sw_print_training_help(out, 0);
    fprintf(out,
            "  In prune, --epochs and --steps bound the pruning run of linear, agp and movement\n"
            "  (NNI's compress(max_steps, max_epochs)); 0 or unset: exactly the steps their\n"
            "  schedule needs. Fine-tuning uses the same optimizer options. --lr defaults to\n"
            "  %g here (a trained model is fine-tuned).\n\n",
            (double)DEFAULT_FINETUNE_LR);
    sw_print_common_help(out);
    fprintf(out, "\ndocs/PRUNING.md (\"Command line\") has examples of every pruner.\n");
}

/* ---- helpers shared with info and bench ------------------------------------------------- */

sw_status sw_cli_load_config_list(const char *arg, cJSON **out) {
    const char *p = arg;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p == '[' || *p == '{') return sw_config_list_parse(arg, out);
    FILE *f = fopen(arg, "rb");
    if (!f)
        return SW_FAIL(SW_ERR_IO,
                       "cannot open the config list \"%s\" (give a JSON file or JSON "
                       "text starting with '[')",
                       arg);
    char *text = NULL;
    size_t len = 0, cap = 0;
    sw_status st = SW_OK;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *grown = realloc(text, cap);
            if (!grown) {
                st = SW_FAIL(SW_ERR_NOMEM, "out of memory reading \"%s\"", arg);
                break;
            }
            text = grown;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got < 4096) break;
    }
    if (st == SW_OK && ferror(f)) st = SW_FAIL(SW_ERR_IO, "cannot read \"%s\"", arg);
    fclose(f);
    if (st == SW_OK) {
        text[len] = '\0';
        st = sw_config_list_parse(text, out);
        if (st != SW_OK) sw_error_prefix("%s", arg);
    }
    free(text);
    return st;
}

void sw_cli_node_masks_of(const sw_wrapper_set *ws, const sw_masks *masks, int node,
                          sw_cli_node_masks *out) {
    const char *name = ws->model->nodes[node].name;
    *out = (sw_cli_node_masks){.weight_sparsity = -1};
    for (int i = 0; i < masks->n; i++)
        if (strcmp(masks->items[i].module, name) == 0) out->n_masks++;
    const sw_tensor *w = sw_masks_find(masks, name, "weight");
    if (w) out->weight_sparsity = sw_mask_sparsity(w);
    /* Liveness comes from the wrapper set's last refresh: it already follows dead channels
     * through BatchNorm, activations, pools and Flatten. */
    int n = 0;
    const float *alive = sw_dead_channels_alive(ws, node, &n);
    if (!alive) return;
    out->channels = n;
    for (int c = 0; c < n; c++) out->channels_kept += alive[c] != 0.0f;
}

sw_status sw_cli_prune_spec(sw_model *model, const char *spec, sw_compressor **out) {
    const char *colon = strchr(spec, ':');
    char name[16];
    size_t len = colon ? (size_t)(colon - spec) : 0;
    if (!colon || len == 0 || len >= sizeof name)
        return SW_FAIL(SW_ERR_ARG, "\"%s\" is not NAME:CONFIG (e.g. l1norm:cfg.json)", spec);
    memcpy(name, spec, len);
    name[len] = '\0';
    const struct pruner_info *info = find_pruner(name);
    if (!info || info->kind != KIND_ONE_SHOT)
        return SW_FAIL(SW_ERR_ARG, "\"%s\": the pruner is level, l1norm, l2norm or fpgm", name);
    cJSON *cfg = NULL;
    sw_wrapper_set *ws = NULL;
    sw_compressor *c = NULL;
    sw_status st = sw_cli_load_config_list(colon + 1, &cfg);
    if (st == SW_OK) st = sw_wrapper_set_new(model, &ws);
    if (st == SW_OK) st = info->make(ws, cfg, NULL, &c);
    if (st == SW_OK) st = sw_compressor_compress(c, -1, -1);
    /* The pruner holds its own reference on the set. */
    sw_wrapper_set_release(ws);
    cJSON_Delete(cfg);
    if (st != SW_OK) {
        sw_compressor_free(c);
        return st;
    }
    *out = c;
    return SW_OK;
}

/* ---- options ------------------------------------------------------------------------------ */

/* Options that only some pruners take: remembered so that the others refuse them. */
enum {
    GIVEN_TRAINING_STEPS = 1 << 0,
    GIVEN_REGULAR_SCALE = 1 << 1,
    GIVEN_INTERVAL = 1 << 2,
    GIVEN_TOTAL_TIMES = 1 << 3,
    GIVEN_SUB_PRUNER = 1 << 4,
    GIVEN_WARMUP = 1 << 5,
    GIVEN_COOLDOWN = 1 << 6,
};

typedef struct prune_args {
    const char *model, *pruner, *sub_pruner, *config, *out, *save;
    const struct pruner_info *info, *sub; /* sub: linear/agp only */
    int finetune_epochs;                  /* 0 = none */
    long finetune_steps;                  /* -1 = unset */
    long training_steps;
    double regular_scale;
    long interval_steps;
    int total_times;
    long warmup_step, cooldown_begin_step;
    bool auto_dependency;
    unsigned given; /* GIVEN_* */
} prune_args;

/* Checks which pruner options apply to the chosen pruner; a usage error names the first that
 * does not, or a required one that is missing. Returns PARSE_GO or an exit code. */
static int check_pruner_options(const char *cmd, prune_args *a, const sw_training_plan *plan) {
    pruner_kind kind = a->info->kind;
    const char *name = a->pruner;
    bool scheduler = kind == KIND_SCHEDULER;
    if (scheduler) {
        a->sub = find_pruner(a->sub_pruner);
        if (!a->sub || a->sub->kind == KIND_SCHEDULER || a->sub->kind == KIND_MOVEMENT)
            return sw_cli_usage_error(cmd,
                                      "--sub-pruner is level, l1norm, l2norm, fpgm, slim or "
                                      "taylor, not \"%s\"",
                                      a->sub_pruner);
        if (!(a->given & GIVEN_INTERVAL) || !(a->given & GIVEN_TOTAL_TIMES))
            return sw_cli_usage_error(cmd, "%s needs --interval-steps N and --total-times T", name);
    } else if (a->given & (GIVEN_INTERVAL | GIVEN_TOTAL_TIMES | GIVEN_SUB_PRUNER)) {
        return sw_cli_usage_error(cmd,
                                  "--interval-steps, --total-times and --sub-pruner are for "
                                  "linear and agp, not %s",
                                  name);
    }
    /* The pruner that takes --training-steps / --regular-scale: itself or the scheduled one. */
    const char *inner = scheduler ? a->sub->name : name;
    bool takes_training = strcmp(inner, "slim") == 0 || strcmp(inner, "taylor") == 0;
    bool takes_scale = strcmp(inner, "slim") == 0 || kind == KIND_MOVEMENT;
    if ((a->given & GIVEN_TRAINING_STEPS) && !takes_training)
        return sw_cli_usage_error(cmd,
                                  "--training-steps is for slim and taylor (alone or under "
                                  "linear/agp), not %s",
                                  inner);
    if ((a->given & GIVEN_REGULAR_SCALE) && !takes_scale)
        return sw_cli_usage_error(cmd, "--regular-scale is for slim and movement, not %s", inner);
    if (kind == KIND_TRAINED && !(a->given & GIVEN_TRAINING_STEPS))
        return sw_cli_usage_error(cmd, "%s trains before it prunes: give --training-steps N", name);
    if (scheduler && takes_training && !(a->given & GIVEN_TRAINING_STEPS))
        a->training_steps = a->interval_steps; /* NNI's examples: one generation per interval */
    if (kind == KIND_MOVEMENT) {
        if (!(a->given & GIVEN_COOLDOWN))
            return sw_cli_usage_error(cmd, "movement needs --cooldown-begin-step N");
        if (a->warmup_step >= a->cooldown_begin_step)
            return sw_cli_usage_error(cmd,
                                      "--warmup-step (%ld) must be below "
                                      "--cooldown-begin-step (%ld)",
                                      a->warmup_step, a->cooldown_begin_step);
    } else if (a->given & (GIVEN_WARMUP | GIVEN_COOLDOWN)) {
        return sw_cli_usage_error(cmd,
                                  "--warmup-step and --cooldown-begin-step are for movement, "
                                  "not %s",
                                  name);
    }
    bool limits = plan->epochs > 0 || plan->steps > 0;
    if (limits && (kind == KIND_ONE_SHOT || kind == KIND_TRAINED))
        return sw_cli_usage_error(cmd,
                                  "--epochs and --steps bound the pruning run of linear, agp "
                                  "and movement; %s %s (fine-tune with --finetune-epochs)",
                                  name,
                                  kind == KIND_TRAINED ? "trains --training-steps steps"
                                                       : "prunes without training");
    return PARSE_GO;
}

/* Options into a, common and plan; PARSE_GO, PARSE_HELP or an exit code (usage error). */
static int parse(int argc, char **argv, prune_args *a, sw_cli_common *common,
                 sw_training_plan *plan) {
    const char *cmd = "prune";
    struct option options[64];
    const struct option *tables[] = {prune_own_options, sw_training_options, sw_common_options};
    sw_options_join(options, 64, tables, 3);
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        long v;
        int handled;
        switch (id) {
        case SW_OPT_HELP:
            print_help(stdout);
            return PARSE_HELP;
        case OPT_MODEL:
            a->model = optarg;
            continue;
        case OPT_PRUNER:
            a->pruner = optarg;
            continue;
        case OPT_CONFIG:
            a->config = optarg;
            continue;
        case OPT_OUT:
            a->out = optarg;
            continue;
        case OPT_SAVE_MODEL:
            a->save = optarg;
            continue;
        case OPT_FINETUNE_EPOCHS:
            if (!sw_cli_parse_int(cmd, "--finetune-epochs", optarg, 0, 100000, &v))
                return SW_EXIT_USAGE;
            a->finetune_epochs = (int)v;
            continue;
        case OPT_FINETUNE_STEPS:
            if (!sw_cli_parse_int(cmd, "--finetune-steps", optarg, 1, 1000000000L,
                                  &a->finetune_steps))
                return SW_EXIT_USAGE;
            continue;
        case OPT_TRAINING_STEPS:
            if (!sw_cli_parse_int(cmd, "--training-steps", optarg, 1, 1000000000L,
                                  &a->training_steps))
                return SW_EXIT_USAGE;
            a->given |= GIVEN_TRAINING_STEPS;
            continue;
        case OPT_REGULAR_SCALE:
            if (!sw_cli_parse_float(cmd, "--regular-scale", optarg, 0, 1e9, &a->regular_scale))
                return SW_EXIT_USAGE;
            a->given |= GIVEN_REGULAR_SCALE;
            continue;
        case OPT_INTERVAL_STEPS:
            if (!sw_cli_parse_int(cmd, "--interval-steps", optarg, 1, 1000000000L,
                                  &a->interval_steps))
                return SW_EXIT_USAGE;
            a->given |= GIVEN_INTERVAL;
            continue;
        case OPT_TOTAL_TIMES:
            if (!sw_cli_parse_int(cmd, "--total-times", optarg, 1, 1000000, &v))
                return SW_EXIT_USAGE;
            a->total_times = (int)v;
            a->given |= GIVEN_TOTAL_TIMES;
            continue;
        case OPT_SUB_PRUNER:
            a->sub_pruner = optarg;
            a->given |= GIVEN_SUB_PRUNER;
            continue;
        case OPT_WARMUP_STEP:
            if (!sw_cli_parse_int(cmd, "--warmup-step", optarg, 0, 1000000000L, &a->warmup_step))
                return SW_EXIT_USAGE;
            a->given |= GIVEN_WARMUP;
            continue;
        case OPT_COOLDOWN_BEGIN_STEP:
            if (!sw_cli_parse_int(cmd, "--cooldown-begin-step", optarg, 1, 1000000000L,
                                  &a->cooldown_begin_step))
                return SW_EXIT_USAGE;
            a->given |= GIVEN_COOLDOWN;
            continue;
        case OPT_AUTO_DEPENDENCY:
            a->auto_dependency = true;
            continue;
        case '?':
            return sw_cli_usage_error(cmd, "unknown or incomplete option");
        default:
            handled = sw_common_option(cmd, id, optarg, common);
            if (handled == 0) handled = sw_training_option(cmd, id, optarg, plan);
            if (handled < 0) return SW_EXIT_USAGE;
        }
    }
    if (optind < argc) return sw_cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (!a->model) return sw_cli_usage_error(cmd, "--model is required");
    if (!a->pruner) return sw_cli_usage_error(cmd, "--pruner is required");
    if (!a->config) return sw_cli_usage_error(cmd, "--config (the config list) is required");
    if (!a->out) return sw_cli_usage_error(cmd, "--out (the masks file) is required");
    a->info = find_pruner(a->pruner);
    if (!a->info)
        return sw_cli_usage_error(cmd,
                                  "--pruner is level, l1norm, l2norm, fpgm, slim, taylor, "
                                  "linear, agp or movement, not \"%s\"",
                                  a->pruner);
    int rc = check_pruner_options(cmd, a, plan);
    if (rc != PARSE_GO) return rc;
    if (!plan->lr_given) plan->cfg.optim.lr = DEFAULT_FINETUNE_LR;
    return PARSE_GO;
}

/* ---- the run ------------------------------------------------------------------------------ */

/* Prints each warning of a compressor on stderr. */
static void print_warnings(const sw_warnings *w) {
    for (int i = 0; i < sw_warnings_count(w); i++)
        fprintf(stderr, "shrinkwrap: warning: %s\n", sw_warnings_get(w, i));
}

/* The pruner `info` over ws (not a scheduler). */
static sw_status build_pruner(const struct pruner_info *info, const prune_args *a,
                              sw_wrapper_set *ws, const cJSON *cfg, sw_evaluator *ev,
                              sw_compressor **out) {
    if (info->kind == KIND_ONE_SHOT) return info->make(ws, cfg, ev, out);
    if (strcmp(info->name, "slim") == 0)
        return sw_pruner_slim_new(ws, cfg, ev, a->training_steps, a->regular_scale, out);
    if (strcmp(info->name, "taylor") == 0)
        return sw_pruner_taylor_new(ws, cfg, ev, a->training_steps, out);
    return sw_pruner_movement_new(ws, cfg, ev, a->warmup_step, a->cooldown_begin_step,
                                  a->regular_scale, out);
}

/* Optimizer steps a scheduled pruning run needs when --steps/--epochs leave it open. */
static long schedule_steps(const prune_args *a) {
    if (a->info->kind == KIND_SCHEDULER) return a->interval_steps * a->total_times;
    return a->cooldown_begin_step;
}

/* The share of masked elements over every parameter mask, and the counts behind it. */
static double masked_fraction(const sw_masks *m, double *zeros_out, double *total_out) {
    double zeros = 0, total = 0;
    for (int i = 0; i < m->n; i++) {
        if (sw_target_kind_of(m->items[i].target) != SW_TARGET_PARAM) continue;
        zeros += sw_mask_sparsity(&m->items[i].mask) * (double)m->items[i].mask.numel;
        total += (double)m->items[i].mask.numel;
    }
    *zeros_out = zeros;
    *total_out = total;
    return total > 0 ? zeros / total : 0;
}

/* Per-module table: every node the masks touch or whose channels died downstream. */
static void print_sparsity(const sw_wrapper_set *ws, const sw_masks *masks) {
    const sw_model *model = ws->model;
    printf("\n%-28s %-18s %16s %14s\n", "module", "type", "weight sparsity", "channels kept");
    for (int i = 0; i < model->n_nodes; i++) {
        sw_cli_node_masks s;
        sw_cli_node_masks_of(ws, masks, i, &s);
        bool dead = s.channels > 0 && s.channels_kept < s.channels;
        if (s.n_masks == 0 && !dead) continue;
        char sparsity[16] = "-", channels[32] = "-";
        if (s.weight_sparsity >= 0)
            snprintf(sparsity, sizeof sparsity, "%.1f%%", 100 * s.weight_sparsity);
        if (s.channels > 0)
            snprintf(channels, sizeof channels, "%d/%d", s.channels_kept, s.channels);
        printf("%-28s %-18s %16s %14s\n", model->nodes[i].name,
               sw_layer_kind_name(model->nodes[i].layer->kind), sparsity, channels);
    }
    double zeros, total;
    double frac = masked_fraction(masks, &zeros, &total);
    char z[32], t[32];
    printf("masked: %s of %s parameters under masks (%.1f%%), %d mask tensors\n",
           sw_cli_human(zeros, z, sizeof z), sw_cli_human(total, t, sizeof t), 100 * frac,
           masks->n);
}

/* What speedup would remove, from its analysis and rebuild on a small probe (cheap for the
 * zoo's models). Masks speedup cannot honour are reported, not fatal: the masked model still
 * computes what the masks say. */
static void print_speedup_estimate(const sw_model *model, const sw_masks *masks) {
    sw_mask_set *ms = NULL;
    sw_speedup *s = NULL;
    sw_model *fast = NULL;
    sw_speedup_options opt = sw_speedup_options_default();
    opt.probe_batch = 2;
    opt.force = true; /* only the counts are wanted here */
    sw_status st = sw_mask_set_from_masks(masks, &ms);
    if (st == SW_OK) st = sw_speedup_new(model, NULL, ms, &opt, &s);
    if (st == SW_OK) st = sw_speedup_model(s, &fast);
    if (st != SW_OK) {
        printf("speedup: these masks cannot be shrunk (%s)\n", sw_error_message());
    } else {
        const sw_speedup_report *r = sw_speedup_get_report(s);
        char a[32], b[32], c[32], d[32];
        double pb = (double)r->params_before, pa = (double)r->params_after;
        printf("speedup would remove %s of %s parameters (%.1f%%) and %s of %s FLOPs per image "
               "(%.1f%%)\n",
               sw_cli_human(pb - pa, a, sizeof a), sw_cli_human(pb, b, sizeof b),
               pb > 0 ? 100 * (pb - pa) / pb : 0.0,
               sw_cli_human(r->flops_before - r->flops_after, c, sizeof c),
               sw_cli_human(r->flops_before, d, sizeof d),
               r->flops_before > 0 ? 100 * (r->flops_before - r->flops_after) / r->flops_before
                                   : 0.0);
    }
    sw_model_free(fast);
    sw_speedup_free(s);
    sw_mask_set_free(ms);
}

/* --auto-dependency: validates the config list against the model first, so that errors carry
 * the user's own entry numbers, then rewrites it with NNI's dependency groups (one entry per
 * module). Replaces *cfg on success. */
static sw_status add_dependency_groups(const sw_model *model, cJSON **cfg) {
    sw_config_resolved r;
    sw_config_resolved_init(&r);
    sw_status st = sw_config_resolve(model, *cfg, &sw_prune_config_mode, NULL, &r);
    sw_config_resolved_deinit(&r);
    cJSON *grouped = NULL;
    if (st == SW_OK) st = sw_config_list_with_dependency_groups(model, *cfg, &grouped);
    if (st != SW_OK) return st;
    cJSON_Delete(*cfg);
    *cfg = grouped;
    return SW_OK;
}

/* "--config FILE" or "--config" (JSON text) for messages about the config list. */
static const char *config_context(const char *config, char *buf, size_t size) {
    const char *p = config;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p == '[' || *p == '{')
        snprintf(buf, size, "--config");
    else
        snprintf(buf, size, "--config %s", config);
    return buf;
}

/* Runs one evaluation; prints "test accuracy <what>: X%". */
static sw_status evaluate(sw_evaluator *ev, sw_model *model, const char *what, double *acc) {
    double loss = 0;
    SW_TRY(sw_evaluator_evaluate(ev, model, acc, &loss));
    printf("test accuracy %s: %.2f%% (loss %.4f, %d images)\n", what, *acc * 100, loss,
           ev->test_set->n);
    fflush(stdout);
    return SW_OK;
}

int sw_cmd_prune(int argc, char **argv) {
    sw_cli_common common;
    sw_training_plan plan;
    prune_args a = {.sub_pruner = "l1norm",
                    .finetune_steps = -1,
                    .regular_scale = SW_SLIM_REGULAR_SCALE_DEFAULT};
    sw_cli_common_defaults(&common);
    sw_training_plan_defaults(&plan, 0);
    int prc = parse(argc, argv, &a, &common, &plan);
    if (prc == PARSE_HELP) return SW_EXIT_OK;
    if (prc != PARSE_GO) return prc;
    if (a.info->kind == KIND_MOVEMENT && !(a.given & GIVEN_REGULAR_SCALE))
        a.regular_scale = SW_MOVEMENT_REGULAR_SCALE_DEFAULT;

    sw_cli_common_apply(&common);
    sw_cli_install_interrupt();
    plan.cfg.seed = common.seed;
    bool finetunes = a.finetune_epochs > 0 || a.finetune_steps > 0;
    bool prune_trains = a.info->kind != KIND_ONE_SHOT;

    int rc = SW_EXIT_FAIL;
    sw_dataset *train = NULL, *test = NULL;
    sw_model *model = NULL;
    cJSON *cfg = NULL;
    char *cfg_text = NULL;
    sw_wrapper_set *ws = NULL;
    sw_compressor *inner = NULL, *top = NULL; /* top == inner unless linear/agp */
    sw_evaluator ev;
    bool ev_ready = false;
    sw_jsonl_log log = {0};
    sw_progress progress;
    sw_masks masks;
    sw_masks_init(&masks);
    char ctx[512];
    config_context(a.config, ctx, sizeof ctx);

    if (sw_cli_load_model(a.model, common.seed, &model) != SW_OK) {
        rc = sw_cli_report(a.model);
        goto done;
    }
    if (sw_cli_load_config_list(a.config, &cfg) != SW_OK) {
        rc = sw_cli_report("--config");
        goto done;
    }
    if (a.auto_dependency && add_dependency_groups(model, &cfg) != SW_OK) {
        rc = sw_cli_report(ctx);
        goto done;
    }
    cfg_text = cJSON_PrintUnformatted(cfg);
    if (sw_cli_load_data(&common, prune_trains || finetunes ? &train : NULL, &test) != SW_OK) {
        rc = sw_cli_report("loading data");
        goto done;
    }
    if (sw_evaluator_init(&ev, train, test, &plan.cfg) != SW_OK) {
        rc = sw_cli_report("setting up training");
        goto done;
    }
    ev_ready = true;
    if (sw_cli_attach_listeners(&ev, &common, &progress, &log) != SW_OK) {
        rc = sw_cli_report("--log");
        goto done;
    }

    /* The pruner: built before any work, so that config errors come first. */
    const struct pruner_info *base = a.info->kind == KIND_SCHEDULER ? a.sub : a.info;
    if (sw_wrapper_set_new(model, &ws) != SW_OK ||
        build_pruner(base, &a, ws, cfg, &ev, &inner) != SW_OK) {
        rc = sw_cli_report(ctx);
        goto done;
    }
    print_warnings(sw_compressor_warnings(inner));
    top = inner;
    if (a.info->kind == KIND_SCHEDULER) {
        sw_status st =
            strcmp(a.info->name, "agp") == 0
                ? sw_pruner_agp_new(inner, a.interval_steps, a.total_times, &ev, &top)
                : sw_pruner_linear_new(inner, a.interval_steps, a.total_times, &ev, &top);
        if (st != SW_OK) {
            top = NULL;
            rc = sw_cli_report(a.info->name);
            goto done;
        }
        print_warnings(sw_compressor_warnings(top));
    }

    char buf[2][32];
    fprintf(stderr, "model %s: %s parameters, %s FLOPs per image; %s%s%s\n", model->arch,
            sw_cli_human((double)sw_model_param_count(model), buf[0], sizeof buf[0]),
            sw_cli_human(sw_model_flops(model), buf[1], sizeof buf[1]), top->ops->name,
            top != inner ? " over " : "", top != inner ? inner->ops->name : "");

    double acc_dense = 0, acc_masked = 0, acc_final = 0;
    if (evaluate(&ev, model, "before pruning", &acc_dense) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }

    /* Pruning. One-shot pruners and slim/taylor alone take no limits; the schedules run
     * exactly the steps they need unless --steps/--epochs say otherwise. */
    long max_steps = -1;
    int max_epochs = -1;
    if (a.info->kind == KIND_SCHEDULER || a.info->kind == KIND_MOVEMENT) {
        max_steps = plan.steps > 0 ? plan.steps : -1;
        max_epochs = plan.epochs > 0 ? plan.epochs : -1;
        if (max_steps < 0 && max_epochs < 0) max_steps = schedule_steps(&a);
    }
    ev.cfg.phase = "prune";
    double t0 = sw_cli_now();
    sw_status st = sw_compressor_compress(top, max_steps, max_epochs);
    sw_progress_finish(&progress);
    if (st == SW_ERR_INTERRUPTED || (st == SW_OK && sw_cli_interrupted())) {
        fprintf(stderr, "shrinkwrap: pruning interrupted; nothing was written\n");
        rc = SW_EXIT_INTERRUPTED;
        goto done;
    }
    if (st != SW_OK) {
        rc = sw_cli_report("pruning");
        goto done;
    }
    double prune_seconds = sw_cli_now() - t0;
    if (sw_pruner_get_masks(top, &masks) != SW_OK) {
        rc = sw_cli_report("reading the masks");
        goto done;
    }
    if (evaluate(&ev, model, "after masking", &acc_masked) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }
    acc_final = acc_masked;

    /* Fine-tuning: plain training of the wrapped model, the masks held by their transforms. */
    if (finetunes) {
        ev.cfg.phase = "finetune";
        st = sw_evaluator_train(&ev, model, a.finetune_steps,
                                a.finetune_epochs > 0 ? a.finetune_epochs : -1);
        sw_progress_finish(&progress);
        if (st == SW_ERR_INTERRUPTED) {
            fprintf(stderr, "shrinkwrap: fine-tuning interrupted; nothing was written\n");
            rc = SW_EXIT_INTERRUPTED;
            goto done;
        }
        if (st != SW_OK) {
            rc = sw_cli_report("fine-tuning");
            goto done;
        }
        if (evaluate(&ev, model, "after fine-tuning", &acc_final) != SW_OK) {
            rc = sw_cli_report("evaluation");
            goto done;
        }
    }
    if (sw_cli_interrupted()) {
        fprintf(stderr, "shrinkwrap: interrupted; nothing was written\n");
        rc = SW_EXIT_INTERRUPTED;
        goto done;
    }

    print_sparsity(ws, &masks);
    print_speedup_estimate(model, &masks);
    printf("pruning took %.1f s; test accuracy %.2f%% dense -> %.2f%% masked", prune_seconds,
           100 * acc_dense, 100 * acc_masked);
    if (finetunes) printf(" -> %.2f%% fine-tuned", 100 * acc_final);
    printf("\n");

    char acc_text[32], dense_text[32], seed_text[32], pruner_text[96];
    snprintf(acc_text, sizeof acc_text, "%.4f", acc_final);
    snprintf(dense_text, sizeof dense_text, "%.4f", acc_dense);
    snprintf(seed_text, sizeof seed_text, "%lu", common.seed);
    if (top != inner)
        snprintf(pruner_text, sizeof pruner_text, "%s(%s)", top->ops->name, inner->ops->name);
    else
        snprintf(pruner_text, sizeof pruner_text, "%s", top->ops->name);
    /* Masks files name the architecture; model files have their own "arch" (meta + 2). */
    const char *meta[] = {"arch",
                          model->arch,
                          "pruner",
                          pruner_text,
                          "config_list",
                          cfg_text ? cfg_text : "",
                          "dense_test_accuracy",
                          dense_text,
                          "test_accuracy",
                          acc_text,
                          "seed",
                          seed_text,
                          NULL};
    if (sw_masks_save(&masks, a.out, meta) != SW_OK) {
        rc = sw_cli_report(a.out);
        goto done;
    }
    printf("masks: %s (%d tensors)\n", a.out, masks.n);
    if (a.save) {
        /* Unwrapping bakes the masks into the weights: the file holds the pruned model. */
        if (sw_compressor_unwrap_model(top) != SW_OK) {
            rc = sw_cli_report("baking the masks in");
            goto done;
        }
        print_warnings(sw_compressor_warnings(top));
        if (sw_model_save(model, a.save, meta + 2) != SW_OK) {
            rc = sw_cli_report(a.save);
            goto done;
        }
        printf("saved %s\n", a.save);
    }
    rc = SW_EXIT_OK;
done:
    sw_masks_deinit(&masks);
    /* The combo borrows the pruner it schedules: free it first. */
    if (top != inner) sw_compressor_free(top);
    sw_compressor_free(inner);
    sw_wrapper_set_release(ws);
    if (common.log_path) sw_jsonl_log_close(&log);
    if (ev_ready) sw_evaluator_deinit(&ev);
    cJSON_free(cfg_text);
    cJSON_Delete(cfg);
    sw_model_free(model);
    sw_dataset_free(train);
    sw_dataset_free(test);
    return rc;
}
