/* cmd_fuse.c - `shrinkwrap fuse`: a one-shot pruner with a distiller fused on it by
 * from_compressor, trained in one run; or, without a distillation config, prune then fine-tune
 * with the masks held. Exports the masks (and optionally the pruned model) atomically. */
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "compress/distillation/distillers.h"
#include "compress/masks_io.h"
#include "compress/pruning/pruners.h"
#include "io/model_file.h"
#include "speedup/speedup.h"

#define DEFAULT_EPOCHS 3
/* parse()'s results besides an exit code: go on, or help was printed. */
#define PARSE_GO (-1)
#define PARSE_HELP (-2)
#define DEFAULT_FINETUNE_LR 0.01f

enum {
    OPT_MODEL = SW_OPT_FIRST_COMMAND,
    OPT_TEACHER,
    OPT_PRUNER,
    OPT_PRUNE_CONFIG,
    OPT_DISTILLER,
    OPT_DISTILL_CONFIG,
    OPT_ORIGIN_LOSS_LAMBDA,
    OPT_OUT,
    OPT_SAVE_MODEL,
    OPT_SPEEDUP_FIRST,
};

static const struct option fuse_own_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"teacher", required_argument, NULL, OPT_TEACHER},
    {"pruner", required_argument, NULL, OPT_PRUNER},
    {"prune-config", required_argument, NULL, OPT_PRUNE_CONFIG},
    {"distiller", required_argument, NULL, OPT_DISTILLER},
    {"distill-config", required_argument, NULL, OPT_DISTILL_CONFIG},
    {"origin-loss-lambda", required_argument, NULL, OPT_ORIGIN_LOSS_LAMBDA},
    {"out", required_argument, NULL, OPT_OUT},
    {"save-model", required_argument, NULL, OPT_SAVE_MODEL},
    {"speedup-first", no_argument, NULL, OPT_SPEEDUP_FIRST},
    {0, 0, 0, 0},
};

/* The one-shot pruners that build from a config list alone. */
typedef sw_status (*pruner_new_fn)(sw_wrapper_set *, const cJSON *, sw_evaluator *,
                                   sw_compressor **);
static const struct {
    const char *name;
    pruner_new_fn make;
} pruners[] = {
    {"level", sw_pruner_level_new},
    {"l1norm", sw_pruner_l1norm_new},
    {"l2norm", sw_pruner_l2norm_new},
    {"fpgm", sw_pruner_fpgm_new},
};
#define N_PRUNERS (sizeof pruners / sizeof pruners[0])

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap fuse --model FILE|NAME --prune-config CFG --out MASKS\n"
            "                       [--distill-config CFG [--teacher FILE|NAME]] [OPTIONS]\n\n"
            "Fusion compression from the command line. Builds a one-shot pruner from a config\n"
            "list; with --distill-config, fuses a distiller on it (from_compressor) whose\n"
            "teacher is --teacher or, by default, a copy of the model as loaded (the dense\n"
            "model), and runs one compress: the masks are generated from the starting weights,\n"
            "then the pruned student trains on origin_loss_lambda * task + distillation.\n"
            "Without --distill-config the masks are generated and the pruned model is\n"
            "fine-tuned for the same budget with the masks held. Then the test accuracy is\n"
            "printed and the masks are written to --out (atomically; Ctrl-C writes nothing).\n\n"
            "  --model FILE|NAME        the model to prune (.safetensors or a zoo name)\n"
            "  --pruner NAME            level, l1norm (default), l2norm or fpgm\n"
            "  --prune-config CFG       pruning config list: a JSON file, or JSON text\n"
            "                           ([{\"op_names\": [\"conv1\"], \"sparse_ratio\": 0.5}])\n"
            "  --distill-config CFG     distillation config list (keys lambda, link,\n"
            "                           apply_method mse|kl): a JSON file or JSON text\n"
            "  --distiller NAME         dynamic (default) or adaptive1d\n"
            "  --teacher FILE|NAME      the teacher (default: a copy of --model as loaded)\n"
            "  --origin-loss-lambda X   weight of the task loss (default %g)\n"
            "  --out FILE               where to write the masks (.safetensors)\n"
            "  --save-model FILE        also write the pruned model, masks baked in\n"
            "  --speedup-first          once the one-shot masks are fixed, remove the pruned\n"
            "                           channels (ModelSpeedup, self-checked) and train the\n"
            "                           small model: it computes what the masked model\n"
            "                           computes, so training follows the same path (up to\n"
            "                           float rounding) at a fraction of the cost; with\n"
            "                           --save-model the sped-up model is written\n\n",
            SW_DISTILL_ORIGIN_LOSS_LAMBDA_DEFAULT);
    sw_print_training_help(out, DEFAULT_EPOCHS);
    fprintf(out, "  (fuse's default --lr is %g: it fine-tunes a trained model)\n\n",
            (double)DEFAULT_FINETUNE_LR);
    sw_print_common_help(out);
    fprintf(out, "\ndocs/DISTILLATION.md has the two pipelines and their results.\n");
}

/* A config list (sw_cli_load_config_list) whose errors also name the option it came from. */
static sw_status load_config(const char *arg, const char *opt, cJSON **out) {
    sw_status st = sw_cli_load_config_list(arg, out);
    if (st != SW_OK) sw_error_prefix("%s", opt);
    return st;
}

/* Prints each warning of a compressor on stderr. */
static void print_warnings(const sw_compressor *c) {
    const sw_warnings *w = sw_compressor_warnings(c);
    for (int i = 0; i < sw_warnings_count(w); i++)
        fprintf(stderr, "shrinkwrap: warning: %s\n", sw_warnings_get(w, i));
}

/* The share of pruned weights over every parameter mask. */
static double masked_fraction(const sw_masks *m) {
    double zeros = 0, total = 0;
    for (int i = 0; i < m->n; i++) {
        zeros += sw_mask_sparsity(&m->items[i].mask) * (double)m->items[i].mask.numel;
        total += (double)m->items[i].mask.numel;
    }
    return total > 0 ? zeros / total : 0;
}

typedef struct fuse_args {
    const char *model, *teacher, *pruner, *prune_cfg, *distiller, *distill_cfg, *out, *save;
    double origin_lambda;
    bool speedup_first; /* train the sped-up model instead of the masked full-width one */
} fuse_args;

/* Options into a, common and plan; PARSE_GO, PARSE_HELP or an exit code (usage error). */
static int parse(int argc, char **argv, fuse_args *a, sw_cli_common *common,
                 sw_training_plan *plan) {
    const char *cmd = "fuse";
    struct option options[64];
    const struct option *tables[] = {fuse_own_options, sw_training_options, sw_common_options};
    sw_options_join(options, 64, tables, 3);
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        int handled;
        switch (id) {
        case SW_OPT_HELP:
            print_help(stdout);
            return PARSE_HELP;
        case OPT_MODEL:
            a->model = optarg;
            continue;
        case OPT_TEACHER:
            a->teacher = optarg;
            continue;
        case OPT_PRUNER:
            a->pruner = optarg;
            continue;
        case OPT_PRUNE_CONFIG:
            a->prune_cfg = optarg;
            continue;
        case OPT_DISTILLER:
            a->distiller = optarg;
            continue;
        case OPT_DISTILL_CONFIG:
            a->distill_cfg = optarg;
            continue;
        case OPT_ORIGIN_LOSS_LAMBDA:
            if (!sw_cli_parse_float(cmd, "--origin-loss-lambda", optarg, 0, 1e6, &a->origin_lambda))
                return SW_EXIT_USAGE;
            continue;
        case OPT_OUT:
            a->out = optarg;
            continue;
        case OPT_SAVE_MODEL:
            a->save = optarg;
            continue;
        case OPT_SPEEDUP_FIRST:
            a->speedup_first = true;
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
    if (!a->prune_cfg) return sw_cli_usage_error(cmd, "--prune-config is required");
    if (!a->out) return sw_cli_usage_error(cmd, "--out (the masks file) is required");
    if (strcmp(a->distiller, "dynamic") != 0 && strcmp(a->distiller, "adaptive1d") != 0)
        return sw_cli_usage_error(cmd, "--distiller is dynamic or adaptive1d, not \"%s\"",
                                  a->distiller);
    bool known = false;
    for (size_t i = 0; i < N_PRUNERS; i++) known = known || strcmp(pruners[i].name, a->pruner) == 0;
    if (!known)
        return sw_cli_usage_error(cmd, "--pruner is level, l1norm, l2norm or fpgm, not \"%s\"",
                                  a->pruner);
    bool trains = plan->epochs != 0 || plan->steps > 0;
    if (a->distill_cfg && !trains)
        return sw_cli_usage_error(cmd, "distillation trains: give --epochs or --steps above 0");
    if (a->teacher && !a->distill_cfg)
        return sw_cli_usage_error(cmd, "--teacher needs --distill-config");
    if (!plan->lr_given) plan->cfg.optim.lr = DEFAULT_FINETUNE_LR;
    return PARSE_GO;
}

/* The distiller of --distiller on a wrapper set (speedup-first) or fused on `previous`. */
static sw_status make_distiller(const fuse_args *a, sw_wrapper_set *ws, sw_compressor *previous,
                                const cJSON *dcfg, sw_evaluator *ev, sw_model *teacher,
                                sw_compressor **out) {
    bool adaptive = strcmp(a->distiller, "adaptive1d") == 0;
    if (previous)
        return adaptive ? sw_distiller_adaptive1d_from_compressor(previous, dcfg, teacher, NULL,
                                                                  NULL, a->origin_lambda, NULL,
                                                                  out)
                        : sw_distiller_dynamic_from_compressor(previous, dcfg, teacher, NULL, NULL,
                                                               a->origin_lambda, NULL, out);
    return adaptive ? sw_distiller_adaptive1d_new(ws, dcfg, ev, teacher, NULL, NULL,
                                                  a->origin_lambda, out)
                    : sw_distiller_dynamic_new(ws, dcfg, ev, teacher, NULL, NULL, a->origin_lambda,
                                               out);
}

/* The model with the channels `masks` prune removed (ModelSpeedup on a clone without wrappers,
 * which refuses when its self-check against the masked model fails). Caller owns *small. */
static sw_status shrink(const sw_model *model, const sw_masks *masks, sw_model **small) {
    sw_mask_set *ms = NULL;
    sw_model *clone = NULL;
    sw_speedup *sp = NULL;
    sw_status st = sw_mask_set_from_masks(masks, &ms);
    if (st == SW_OK) st = sw_model_clone(model, &clone);
    if (st == SW_OK) st = sw_speedup_new(clone, NULL, ms, NULL, &sp);
    if (st == SW_OK) st = sw_speedup_model(sp, small);
    sw_speedup_free(sp);
    sw_model_free(clone);
    sw_mask_set_free(ms);
    if (st != SW_OK) sw_error_prefix("--speedup-first");
    return st;
}

int sw_cmd_fuse(int argc, char **argv) {
    sw_cli_common common;
    sw_training_plan plan;
    fuse_args a = {.pruner = "l1norm",
                   .distiller = "dynamic",
                   .origin_lambda = SW_DISTILL_ORIGIN_LOSS_LAMBDA_DEFAULT};
    sw_cli_common_defaults(&common);
    sw_training_plan_defaults(&plan, DEFAULT_EPOCHS);
    int prc = parse(argc, argv, &a, &common, &plan);
    if (prc == PARSE_HELP) return SW_EXIT_OK;
    if (prc != PARSE_GO) return prc;

    sw_cli_common_apply(&common);
    sw_cli_install_interrupt();
    plan.cfg.seed = common.seed;
    bool trains = plan.epochs != 0 || plan.steps > 0;

    int rc = SW_EXIT_FAIL;
    sw_dataset *train = NULL, *test = NULL;
    sw_model *model = NULL, *teacher = NULL;
    sw_model *small = NULL; /* --speedup-first: the sped-up model that trains */
    cJSON *pcfg = NULL, *dcfg = NULL;
    sw_wrapper_set *ws = NULL, *small_ws = NULL;
    sw_compressor *pruner = NULL, *distiller = NULL;
    sw_evaluator ev;
    bool ev_ready = false;
    sw_jsonl_log log = {0};
    sw_progress progress;
    sw_masks masks;
    sw_masks_init(&masks);

    if (load_config(a.prune_cfg, "--prune-config", &pcfg) != SW_OK ||
        (a.distill_cfg && load_config(a.distill_cfg, "--distill-config", &dcfg) != SW_OK)) {
        rc = sw_cli_report(NULL);
        goto done;
    }
    if (sw_cli_load_model(a.model, common.seed, &model) != SW_OK) {
        rc = sw_cli_report(a.model);
        goto done;
    }
    /* The teacher: a model of its own, or the dense model as loaded, before any mask. */
    if (dcfg) {
        sw_status st = a.teacher ? sw_cli_load_model(a.teacher, common.seed, &teacher)
                                 : sw_model_clone(model, &teacher);
        if (st != SW_OK) {
            rc = sw_cli_report(a.teacher ? a.teacher : "copying the teacher");
            goto done;
        }
    }
    if (sw_cli_load_data(&common, trains ? &train : NULL, &test) != SW_OK) {
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

    /* Compressors: the pruner, then the distiller built from it. */
    pruner_new_fn make = NULL;
    for (size_t i = 0; i < N_PRUNERS; i++)
        if (strcmp(pruners[i].name, a.pruner) == 0) make = pruners[i].make;
    if (sw_wrapper_set_new(model, &ws) != SW_OK || make(ws, pcfg, &ev, &pruner) != SW_OK) {
        rc = sw_cli_report("--prune-config");
        goto done;
    }
    print_warnings(pruner);
    if (dcfg && !a.speedup_first) {
        if (make_distiller(&a, NULL, pruner, dcfg, &ev, teacher, &distiller) != SW_OK) {
            rc = sw_cli_report("--distill-config");
            goto done;
        }
        print_warnings(distiller);
    }

    char buf[2][32];
    const char *distiller_name = !dcfg                                       ? NULL
                                 : strcmp(a.distiller, "adaptive1d") == 0 ? "Adaptive1dLayerwiseDistiller"
                                                                          : "DynamicLayerwiseDistiller";
    fprintf(stderr, "model %s: %s parameters, %s FLOPs per image; %s%s%s%s\n", model->arch,
            sw_cli_human((double)sw_model_param_count(model), buf[0], sizeof buf[0]),
            sw_cli_human(sw_model_flops(model), buf[1], sizeof buf[1]),
            distiller_name ? distiller_name : "fine-tune with masks held",
            distiller_name ? " fused on " : " after ", pruner->ops->name,
            a.speedup_first ? ", training the sped-up model" : "");

    double t0 = sw_cli_now();
    sw_status st = SW_OK;
    const char *stage = distiller_name ? "fused compress" : "prune and fine-tune";
    if (a.speedup_first) {
        /* The masks of a one-shot pruner are final once generated: remove what they prune,
         * then train only what is left (the distiller on the small model's own wrappers). */
        st = sw_compressor_compress(pruner, -1, -1);
        if (st == SW_OK) st = sw_pruner_get_masks(pruner, &masks);
        if (st == SW_OK && (st = shrink(model, &masks, &small)) != SW_OK) stage = "speedup";
        if (st == SW_OK) {
            fprintf(stderr, "sped up: %s parameters, %s FLOPs per image\n",
                    sw_cli_human((double)sw_model_param_count(small), buf[0], sizeof buf[0]),
                    sw_cli_human(sw_model_flops(small), buf[1], sizeof buf[1]));
            if (dcfg) {
                st = sw_wrapper_set_new(small, &small_ws);
                if (st == SW_OK)
                    st = make_distiller(&a, small_ws, NULL, dcfg, &ev, teacher, &distiller);
                if (st == SW_OK) {
                    print_warnings(distiller);
                    st = sw_compressor_compress(distiller, plan.steps, plan.epochs);
                } else {
                    stage = "--distill-config";
                }
            } else if (trains) {
                st = sw_evaluator_train(&ev, small, plan.steps, plan.epochs);
            }
        }
    } else if (distiller) {
        /* (b) one fused compress: masks at the start, then training with distillation. */
        st = sw_compressor_compress(distiller, plan.steps, plan.epochs);
    } else {
        /* (a) one-shot masks, then fine-tuning of the wrapped model: masks stay applied. */
        st = sw_compressor_compress(pruner, -1, -1);
        if (st == SW_OK && trains) st = sw_evaluator_train(&ev, model, plan.steps, plan.epochs);
    }
    double seconds = sw_cli_now() - t0;
    sw_progress_finish(&progress);
    if (st == SW_ERR_INTERRUPTED) {
        fprintf(stderr, "shrinkwrap: fuse interrupted; nothing was written\n");
        rc = SW_EXIT_INTERRUPTED;
        goto done;
    }
    if (st != SW_OK) {
        rc = sw_cli_report(stage);
        goto done;
    }
    double accuracy = 0, loss = 0;
    sw_model *trained = small ? small : model;
    if ((!small && sw_pruner_get_masks(pruner, &masks) != SW_OK) ||
        sw_evaluator_evaluate(&ev, trained, &accuracy, &loss) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }
    printf("test accuracy: %.2f%% (loss %.4f, %d images)\n", accuracy * 100, loss, test->n);
    printf("pruned: %.1f%% of the masked weights; %s in %.1f s\n", 100 * masked_fraction(&masks),
           distiller ? "fused training" : (trains ? "fine-tuning" : "pruning"), seconds);
    if (distiller) {
        sw_distill_losses l;
        if (sw_distiller_losses(distiller, &l) == SW_OK && l.steps > 0)
            printf("last step: task %.4f, distillation %.4f\n", l.task, l.distill);
    }
    char acc_text[32], seed_text[32];
    snprintf(acc_text, sizeof acc_text, "%.4f", accuracy);
    snprintf(seed_text, sizeof seed_text, "%lu", common.seed);
    /* Masks files name the architecture; model files have their own "arch" (meta + 2). */
    const char *meta[] = {"arch",
                          model->arch,
                          "pruner",
                          pruner->ops->name,
                          "distiller",
                          distiller ? distiller->ops->name : "none",
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
        /* Unwrapping bakes the masks into the weights: the file holds the pruned model (with
         * --speedup-first, the sped-up model, whose wrappers hold only distillation captures). */
        sw_compressor *outer = small ? distiller : (distiller ? distiller : pruner);
        if ((outer && sw_compressor_unwrap_model(outer) != SW_OK) ||
            sw_model_save(trained, a.save, meta + 2) != SW_OK) {
            rc = sw_cli_report(a.save);
            goto done;
        }
        printf("saved %s\n", a.save);
    }
    rc = SW_EXIT_OK;
done:
    sw_masks_deinit(&masks);
    sw_compressor_free(distiller);
    sw_compressor_free(pruner);
    sw_wrapper_set_release(small_ws);
    sw_wrapper_set_release(ws);
    sw_model_free(small);
    if (common.log_path) sw_jsonl_log_close(&log);
    if (ev_ready) sw_evaluator_deinit(&ev);
    cJSON_Delete(pcfg);
    cJSON_Delete(dcfg);
    sw_model_free(teacher);
    sw_model_free(model);
    sw_dataset_free(train);
    sw_dataset_free(test);
    return rc;
}
