/* cmd_eval.c - `shrinkwrap eval MODEL`: test accuracy of a model file or zoo model. */
#include "cli/options.h"
#include "io/int8_model_file.h"

enum { OPT_BATCH = SW_OPT_FIRST_COMMAND };

static const struct option eval_own_options[] = {
    {"batch-size", required_argument, NULL, OPT_BATCH},
    {0, 0, 0, 0},
};

static void print_help(FILE *out) {
    fprintf(out, "usage: shrinkwrap eval MODEL [--batch-size N] [OPTIONS]\n\n"
                 "Prints the test accuracy and mean cross-entropy of MODEL (a .safetensors model\n"
                 "file or a zoo name) on the test split.\n\n"
                 "  --batch-size N       evaluation batch size (default 512)\n\n");
    sw_print_common_help(out);
}

int sw_cmd_eval(int argc, char **argv) {
    const char *cmd = "eval";
    sw_cli_common common;
    sw_cli_common_defaults(&common);
    sw_train_config cfg = sw_train_config_default();
    struct option options[32];
    const struct option *tables[] = {eval_own_options, sw_common_options};
    sw_options_join(options, 32, tables, 2);
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        long v;
        if (id == SW_OPT_HELP) {
            print_help(stdout);
            return SW_EXIT_OK;
        }
        if (id == OPT_BATCH) {
            if (!sw_cli_parse_int(cmd, "--batch-size", optarg, 1, 65536, &v)) return SW_EXIT_USAGE;
            cfg.eval_batch_size = (int)v;
            continue;
        }
        if (id == '?') return sw_cli_usage_error(cmd, "unknown or incomplete option");
        int handled = sw_common_option(cmd, id, optarg, &common);
        if (handled < 0) return SW_EXIT_USAGE;
        if (handled == 0) return sw_cli_usage_error(cmd, "option not available here");
    }
    if (optind != argc - 1) return sw_cli_usage_error(cmd, "expects exactly one MODEL");
    const char *spec = argv[optind];
    sw_cli_common_apply(&common);
    if (sw_int8_model_file_is(spec)) return sw_cli_eval_int8(spec, &common, cfg.eval_batch_size);

    int rc = SW_EXIT_FAIL;
    sw_dataset *test = NULL;
    sw_model *model = NULL;
    sw_evaluator ev;
    bool ev_ready = false;
    if (sw_cli_load_model(spec, common.seed, &model) != SW_OK) {
        rc = sw_cli_report(spec);
        goto done;
    }
    if (sw_cli_load_data(&common, NULL, &test) != SW_OK) {
        rc = sw_cli_report("loading data");
        goto done;
    }
    if (sw_evaluator_init(&ev, NULL, test, &cfg) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }
    ev_ready = true;
    double accuracy = 0, loss = 0, t0 = sw_cli_now();
    if (sw_evaluator_evaluate(&ev, model, &accuracy, &loss) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }
    double seconds = sw_cli_now() - t0;
    printf("%s: test accuracy %.2f%%  loss %.4f  (%d images, %.2fs, %.0f img/s)\n", spec,
           accuracy * 100, loss, test->n, seconds, test->n / (seconds > 0 ? seconds : 1e-9));
    rc = SW_EXIT_OK;
done:
    if (ev_ready) sw_evaluator_deinit(&ev);
    sw_model_free(model);
    sw_dataset_free(test);
    return rc;
}
