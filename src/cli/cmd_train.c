/* cmd_train.c - `shrinkwrap train`: train a zoo model or a model file, save it atomically. */
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "io/model_file.h"

#define DEFAULT_EPOCHS 5

enum { OPT_MODEL = SW_OPT_FIRST_COMMAND, OPT_OUT };

static const struct option train_own_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"out", required_argument, NULL, OPT_OUT},
    {0, 0, 0, 0},
};

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap train [--model NAME|FILE] [--epochs N] [--out FILE] [OPTIONS]\n\n"
            "Trains a model with cross-entropy on the training split, evaluates it on the test\n"
            "split after each epoch, and writes it to --out (atomically: an interrupted run\n"
            "leaves no file). Ctrl-C stops at the next step boundary without writing.\n\n"
            "  --model NAME|FILE    zoo model (fmnist_mlp, fmnist_cnn, fmnist_resnet) or a\n"
            "                       .safetensors model to train further (default fmnist_cnn)\n"
            "  --out FILE           where to save the trained model (.safetensors)\n\n");
    sw_print_training_help(out, DEFAULT_EPOCHS);
    fputc('\n', out);
    sw_print_common_help(out);
}

/* Checks that the data fits the model before any work starts. */
static sw_status check_data_fits(const sw_model *model, const sw_dataset *ds) {
    sw_shape want = model->input_shape;
    sw_shape have = sw_shape_3d(ds->channels, ds->height, ds->width);
    sw_shape out = sw_model_output_shape(model);
    if (!sw_shape_equal(&want, &have)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "model \"%s\" takes inputs of shape %s but %s images are %s",
                       model->arch, sw_shape_format(&want, a, sizeof a), ds->name,
                       sw_shape_format(&have, b, sizeof b));
    }
    if (out.ndim != 1 || out.dims[0] != ds->n_classes)
        return SW_FAIL(SW_ERR_SHAPE, "model \"%s\" has %d outputs but %s has %d classes",
                       model->arch, out.dims[0], ds->name, ds->n_classes);
    return SW_OK;
}

int sw_cmd_train(int argc, char **argv) {
    const char *cmd = "train";
    sw_cli_common common;
    sw_training_plan plan;
    const char *model_spec = "fmnist_cnn", *out_path = NULL;
    sw_cli_common_defaults(&common);
    sw_training_plan_defaults(&plan, DEFAULT_EPOCHS);

    struct option options[64];
    const struct option *tables[] = {train_own_options, sw_training_options, sw_common_options};
    sw_options_join(options, 64, tables, 3);
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        int handled;
        switch (id) {
        case SW_OPT_HELP:
            print_help(stdout);
            return SW_EXIT_OK;
        case OPT_MODEL:
            model_spec = optarg;
            continue;
        case OPT_OUT:
            out_path = optarg;
            continue;
        case '?':
            return sw_cli_usage_error(cmd, "unknown or incomplete option");
        default:
            handled = sw_common_option(cmd, id, optarg, &common);
            if (handled == 0) handled = sw_training_option(cmd, id, optarg, &plan);
            if (handled < 0) return SW_EXIT_USAGE;
        }
    }
    if (optind < argc) return sw_cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (plan.epochs == 0 && plan.steps < 0) plan.steps = 0;

    sw_cli_common_apply(&common);
    sw_cli_install_interrupt();
    plan.cfg.seed = common.seed;

    int rc = SW_EXIT_FAIL;
    sw_dataset *train = NULL, *test = NULL;
    sw_model *model = NULL;
    sw_evaluator ev;
    bool ev_ready = false;
    sw_jsonl_log log = {0};
    sw_progress progress;

    if (sw_cli_load_data(&common, &train, &test) != SW_OK) {
        rc = sw_cli_report("loading data");
        goto done;
    }
    if (sw_cli_load_model(model_spec, common.seed, &model) != SW_OK) {
        rc = sw_cli_report(model_spec);
        goto done;
    }
    if (check_data_fits(model, train) != SW_OK) {
        rc = sw_cli_report(NULL);
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

    char params[32];
    fprintf(stderr, "model %s: %s parameters, %s FLOPs per image; %d training images, %s\n",
            model->arch, sw_cli_human((double)sw_model_param_count(model), params, sizeof params),
            sw_cli_human(sw_model_flops(model), (char[32]){0}, 32), train->n, train->name);

    double accuracy = 0, loss = 0;
    if (plan.steps != 0) {
        sw_status st = sw_evaluator_train(&ev, model, plan.steps, plan.epochs);
        if (st == SW_ERR_INTERRUPTED) {
            fprintf(stderr, "shrinkwrap: training interrupted; %s\n",
                    out_path ? "nothing was written" : "no output requested");
            rc = SW_EXIT_INTERRUPTED;
            goto done;
        }
        if (st != SW_OK) {
            rc = sw_cli_report("training");
            goto done;
        }
    }
    if (sw_evaluator_evaluate(&ev, model, &accuracy, &loss) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }
    printf("test accuracy: %.2f%% (loss %.4f, %d images)\n", accuracy * 100, loss, test->n);
    if (out_path) {
        char acc_text[32], epochs_text[32], seed_text[32];
        snprintf(acc_text, sizeof acc_text, "%.4f", accuracy);
        snprintf(epochs_text, sizeof epochs_text, "%d", plan.epochs);
        snprintf(seed_text, sizeof seed_text, "%lu", common.seed);
        const char *meta[] = {"test_accuracy", acc_text, "trained_epochs", epochs_text,
                              "seed", seed_text, "dataset", train->name, NULL};
        if (sw_model_save(model, out_path, meta) != SW_OK) {
            rc = sw_cli_report(out_path);
            goto done;
        }
        printf("saved %s\n", out_path);
    }
    rc = SW_EXIT_OK;
done:
    if (common.log_path) sw_jsonl_log_close(&log);
    if (ev_ready) sw_evaluator_deinit(&ev);
    sw_model_free(model);
    sw_dataset_free(train);
    sw_dataset_free(test);
    return rc;
}
