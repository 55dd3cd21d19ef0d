/* cmd_quantize.c - `shrinkwrap quantize`: quantize a model with one of NNI 3.0's quantizers,
 * then convert it to a real int8 model and write that.
 *
 * Also home of the int8 paths of `eval` and `bench` (an int8 model file is recognised by its
 * metadata and run by the int8 executor instead of the float one). */
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "compress/quantization/quantizers.h"
#include "io/int8_model_file.h"
#include "quantized/int8_gemm.h"
#include "quantized/int8_model.h"
#include "tensor/blas.h"
#include "tensor/rng.h"

/* Quantization-aware training starts from a trained model: a fine-tuning step size. */
#define DEFAULT_QUANT_LR 0.01f
/* PTQ's calibration when neither --steps nor --epochs is given: batches of the training set. */
#define DEFAULT_PTQ_BATCHES 32
#define PARSE_GO (-1)
#define PARSE_HELP (-2)

enum {
    OPT_MODEL = SW_OPT_FIRST_COMMAND,
    OPT_CONFIG,
    OPT_METHOD,
    OPT_OUT,
    OPT_CALIBRATION,
    OPT_LOAD_CALIBRATION,
    OPT_QUANT_START_STEP,
    OPT_LSQ_INIT,
};

static const struct option quantize_own_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"method", required_argument, NULL, OPT_METHOD},
    {"out", required_argument, NULL, OPT_OUT},
    {"calibration", required_argument, NULL, OPT_CALIBRATION},
    {"load-calibration", required_argument, NULL, OPT_LOAD_CALIBRATION},
    {"quant-start-step", required_argument, NULL, OPT_QUANT_START_STEP},
    {"lsq-init", required_argument, NULL, OPT_LSQ_INIT},
    {0, 0, 0, 0},
};

static const char *const METHODS[] = {"qat", "ptq", "lsq", "lsqplus", "dorefa", "bnn"};
#define N_METHODS (sizeof METHODS / sizeof METHODS[0])

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap quantize --model FILE|NAME --config CFG --out INT8.safetensors\n"
            "                           [--method qat|ptq|lsq|lsqplus|dorefa|bnn] [--epochs N]\n"
            "                           [--calibration CALIB.json] [OPTIONS]\n\n"
            "Quantizes MODEL with one of NNI 3.0's quantizers configured by a config list, then\n"
            "converts the result into a real int8 model (int8 weights with per-channel scales,\n"
            "int32 accumulation, requantised activations) and writes it. Prints the test\n"
            "accuracy of the float model, of the fake-quantized model and of the int8 model.\n"
            "`shrinkwrap eval` and `shrinkwrap bench` run the int8 file. Files are written\n"
            "atomically at the end; Ctrl-C stops at the next step, writes nothing, exits 130.\n\n"
            "  --model FILE|NAME        the float model (.safetensors or a zoo name)\n"
            "  --config CFG             the quantization config list: a JSON file or JSON text\n"
            "                           with NNI's keys, e.g. [{\"op_types\": [\"Conv2d\",\n"
            "                           \"Linear\"], \"quant_dtype\": \"int8\", \"quant_scheme\":\n"
            "                           \"symmetric\", \"target_names\": [\"_input_\",\n"
            "                           \"weight\"]}] (docs/QUANTIZATION.md)\n"
            "  --method NAME            qat (default), ptq, lsq, lsqplus, dorefa or bnn\n"
            "  --out FILE               the int8 model to write\n"
            "  --calibration FILE       also write the calibration config (JSON)\n"
            "  --load-calibration FILE  skip the method: quantize with this calibration config\n"
            "                           (from --calibration or a quantizer's export)\n"
            "  --quant-start-step N     qat: optimizer steps before fake-quantization starts\n"
            "                           (default 0)\n"
            "  --lsq-init nni|data      lsq: scales start at 0.01 (NNI, default) or at the LSQ\n"
            "                           paper's 2 mean|x| / sqrt(qmax) of the values seen\n"
            "                           (needed for 2-4 bits on a trained model)\n\n"
            "  Layers run in int8 when their weight and input are quantized with at most 8\n"
            "  bits (qat, ptq or lsq; the input per tensor); others run in float with their\n"
            "  quantized weights. qat, lsq, lsqplus, dorefa and bnn train for --epochs (default\n"
            "  1) or --steps; ptq calibrates on --steps batches (default %d) or --epochs, without\n"
            "  changing the weights.\n\n",
            DEFAULT_PTQ_BATCHES);
    sw_print_training_help(out, 1);
    fprintf(out, "  --lr defaults to %g here (a trained model is fine-tuned).\n\n",
            (double)DEFAULT_QUANT_LR);
    sw_print_common_help(out);
}

typedef struct quantize_args {
    const char *model, *config, *method, *out, *calibration, *load_calibration;
    long quant_start_step;
    bool lsq_data_init; /* --lsq-init data */
} quantize_args;

static int parse(int argc, char **argv, quantize_args *a, sw_cli_common *common,
                 sw_training_plan *plan) {
    const char *cmd = "quantize";
    struct option options[64];
    const struct option *tables[] = {quantize_own_options, sw_training_options, sw_common_options};
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
        case OPT_CONFIG:
            a->config = optarg;
            continue;
        case OPT_METHOD:
            a->method = optarg;
            continue;
        case OPT_OUT:
            a->out = optarg;
            continue;
        case OPT_CALIBRATION:
            a->calibration = optarg;
            continue;
        case OPT_LOAD_CALIBRATION:
            a->load_calibration = optarg;
            continue;
        case OPT_QUANT_START_STEP:
            if (!sw_cli_parse_int(cmd, "--quant-start-step", optarg, 0, 1000000000L,
                                  &a->quant_start_step))
                return SW_EXIT_USAGE;
            continue;
        case OPT_LSQ_INIT:
            if (strcmp(optarg, "nni") != 0 && strcmp(optarg, "data") != 0)
                return sw_cli_usage_error(cmd, "--lsq-init is nni or data, not \"%s\"", optarg);
            a->lsq_data_init = strcmp(optarg, "data") == 0;
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
    if (!a->config) return sw_cli_usage_error(cmd, "--config (the config list) is required");
    if (!a->out) return sw_cli_usage_error(cmd, "--out (the int8 model file) is required");
    bool known = false;
    for (size_t i = 0; i < N_METHODS; i++) known = known || strcmp(METHODS[i], a->method) == 0;
    if (!known)
        return sw_cli_usage_error(cmd,
                                  "--method is qat, ptq, lsq, lsqplus, dorefa or bnn, not "
                                  "\"%s\"",
                                  a->method);
    if (a->quant_start_step > 0 && strcmp(a->method, "qat") != 0)
        return sw_cli_usage_error(cmd, "--quant-start-step is for qat, not %s", a->method);
    if (a->lsq_data_init && strcmp(a->method, "lsq") != 0)
        return sw_cli_usage_error(cmd, "--lsq-init is for lsq, not %s", a->method);
    if (!plan->lr_given) plan->cfg.optim.lr = DEFAULT_QUANT_LR;
    return PARSE_GO;
}

static void print_warnings(const sw_warnings *w) {
    for (int i = 0; i < sw_warnings_count(w); i++)
        fprintf(stderr, "shrinkwrap: warning: %s\n", sw_warnings_get(w, i));
}

static sw_status build_quantizer(const quantize_args *a, sw_wrapper_set *ws, const cJSON *cfg,
                                 sw_evaluator *ev, uint64_t seed, sw_compressor **out) {
    if (a->load_calibration) {
        SW_TRY(sw_quantizer_fixed_new(ws, cfg, out));
        return sw_quant_calibration_load(*out, a->load_calibration);
    }
    const char *m = a->method;
    if (strcmp(m, "qat") == 0) return sw_quantizer_qat_new(ws, cfg, ev, a->quant_start_step, out);
    if (strcmp(m, "ptq") == 0) return sw_quantizer_ptq_new(ws, cfg, ev, out);
    if (strcmp(m, "lsq") == 0) {
        SW_TRY(sw_quantizer_lsq_new(ws, cfg, ev, out));
        return a->lsq_data_init ? sw_quantizer_lsq_set_data_init(*out, true) : SW_OK;
    }
    if (strcmp(m, "lsqplus") == 0) return sw_quantizer_lsqplus_new(ws, cfg, ev, out);
    if (strcmp(m, "dorefa") == 0) return sw_quantizer_dorefa_new(ws, cfg, ev, true, seed, out);
    return sw_quantizer_bnn_new(ws, cfg, ev, out);
}

static sw_status evaluate(sw_evaluator *ev, sw_model *model, const char *what, double *acc) {
    double loss = 0;
    SW_TRY(sw_evaluator_evaluate(ev, model, acc, &loss));
    printf("test accuracy %s: %.2f%% (loss %.4f, %d images)\n", what, *acc * 100, loss,
           ev->test_set->n);
    fflush(stdout);
    return SW_OK;
}

/* "conv1 conv2 fc1" of the nodes in `mode`. */
static void list_nodes(const sw_int8_model *m, sw_i8_mode mode, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->model->n_nodes && used + 2 < size; i++)
        if (m->nodes[i].mode == mode)
            used += (size_t)snprintf(buf + used, size - used, used ? " %s" : "%s",
                                     m->model->nodes[i].name);
    if (!buf[0]) snprintf(buf, size, "-");
}

int sw_cmd_quantize(int argc, char **argv) {
    sw_cli_common common;
    sw_training_plan plan;
    quantize_args a = {.method = "qat"};
    sw_cli_common_defaults(&common);
    sw_training_plan_defaults(&plan, 1);
    int prc = parse(argc, argv, &a, &common, &plan);
    if (prc == PARSE_HELP) return SW_EXIT_OK;
    if (prc != PARSE_GO) return prc;
    sw_cli_common_apply(&common);
    sw_cli_install_interrupt();
    plan.cfg.seed = common.seed;
    bool ptq = strcmp(a.method, "ptq") == 0;
    bool trains = !a.load_calibration;

    int rc = SW_EXIT_FAIL;
    sw_dataset *train = NULL, *test = NULL;
    sw_model *model = NULL;
    cJSON *cfg = NULL;
    sw_wrapper_set *ws = NULL;
    sw_compressor *q = NULL;
    sw_int8_model *i8 = NULL;
    sw_evaluator ev;
    bool ev_ready = false;
    sw_jsonl_log log = {0};
    sw_progress progress;

    if (sw_cli_load_model(a.model, common.seed, &model) != SW_OK) {
        rc = sw_cli_report(a.model);
        goto done;
    }
    if (sw_cli_load_config_list(a.config, &cfg) != SW_OK) {
        rc = sw_cli_report("--config");
        goto done;
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
    if (sw_wrapper_set_new(model, &ws) != SW_OK ||
        build_quantizer(&a, ws, cfg, &ev, common.seed, &q) != SW_OK) {
        rc = sw_cli_report("--config");
        goto done;
    }
    print_warnings(sw_compressor_warnings(q));
    fprintf(stderr, "model %s; %s on %d targets\n", model->arch, q->ops->name,
            sw_quantizer_of(q)->n_targets);

    double acc_float = 0, acc_fake = 0, acc_int8 = 0;
    /* The float accuracy, on an unwrapped clone: some quantizers fake-quantize from the first
     * forward (LSQ's initial scales, a loaded calibration). */
    sw_model *plain = NULL;
    if (sw_model_clone(model, &plain) != SW_OK ||
        evaluate(&ev, plain, "float", &acc_float) != SW_OK) {
        sw_model_free(plain);
        rc = sw_cli_report("evaluation");
        goto done;
    }
    sw_model_free(plain);

    if (trains) {
        long steps = plan.steps > 0 ? plan.steps : -1;
        int epochs = plan.epochs > 0 ? plan.epochs : -1;
        if (steps < 0 && epochs < 0) {
            if (ptq)
                steps = DEFAULT_PTQ_BATCHES;
            else
                epochs = 1;
        }
        ev.cfg.phase = "quantize";
        double t0 = sw_cli_now();
        sw_status st = sw_compressor_compress(q, steps, epochs);
        sw_progress_finish(&progress);
        if (st == SW_ERR_INTERRUPTED || (st == SW_OK && sw_cli_interrupted())) {
            fprintf(stderr, "shrinkwrap: quantization interrupted; nothing was written\n");
            rc = SW_EXIT_INTERRUPTED;
            goto done;
        }
        if (st != SW_OK) {
            rc = sw_cli_report("quantization");
            goto done;
        }
        fprintf(stderr, "%s took %.1f s\n", ptq ? "calibration" : "quantization-aware training",
                sw_cli_now() - t0);
    }
    if (evaluate(&ev, model, "fake-quantized", &acc_fake) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }
    if (sw_int8_model_from_compressor(q, &i8) != SW_OK) {
        rc = sw_cli_report("int8 conversion");
        goto done;
    }
    double loss = 0, t1 = sw_cli_now();
    if (sw_int8_model_evaluate(i8, test, plan.cfg.eval_batch_size, &acc_int8, &loss) != SW_OK) {
        rc = sw_cli_report("int8 evaluation");
        goto done;
    }
    printf("test accuracy int8: %.2f%% (loss %.4f, %d images, %.2f s, kernel %s)\n", acc_int8 * 100,
           loss, test->n, sw_cli_now() - t1, sw_i8_kernel_name(sw_i8_kernel_selected()));
    char nodes[3][512];
    list_nodes(i8, SW_I8_INT8, nodes[0], sizeof nodes[0]);
    list_nodes(i8, SW_I8_IDENTITY, nodes[1], sizeof nodes[1]);
    printf("int8 layers: %s\nfolded into them: %s\n", nodes[0], nodes[1]);
    printf("accuracy: float %.2f%%, fake-quantized %.2f%%, int8 %.2f%% (int8 - fake-quant "
           "%+.2f points)\n",
           100 * acc_float, 100 * acc_fake, 100 * acc_int8, 100 * (acc_int8 - acc_fake));
    if (sw_cli_interrupted()) {
        fprintf(stderr, "shrinkwrap: interrupted; nothing was written\n");
        rc = SW_EXIT_INTERRUPTED;
        goto done;
    }

    char *cfg_text = cJSON_PrintUnformatted(cfg);
    char acc_text[32], fake_text[32];
    snprintf(acc_text, sizeof acc_text, "%.4f", acc_int8);
    snprintf(fake_text, sizeof fake_text, "%.4f", acc_fake);
    const char *meta[] = {"quantizer",
                          q->ops->name,
                          "config_list",
                          cfg_text ? cfg_text : "",
                          "test_accuracy",
                          acc_text,
                          "fake_quant_test_accuracy",
                          fake_text,
                          NULL};
    sw_status st = sw_int8_model_save(i8, a.out, meta);
    cJSON_free(cfg_text);
    if (st != SW_OK) {
        rc = sw_cli_report(a.out);
        goto done;
    }
    printf("int8 model: %s\n", a.out);
    if (a.calibration) {
        if (sw_quant_calibration_save(q, a.calibration) != SW_OK) {
            rc = sw_cli_report(a.calibration);
            goto done;
        }
        printf("calibration: %s\n", a.calibration);
    }
    rc = SW_EXIT_OK;
done:
    sw_int8_model_free(i8);
    sw_compressor_free(q);
    sw_wrapper_set_release(ws);
    if (ev_ready) sw_evaluator_deinit(&ev);
    sw_jsonl_log_close(&log);
    cJSON_Delete(cfg);
    sw_model_free(model);
    sw_dataset_free(train);
    sw_dataset_free(test);
    return rc;
}

/* ---- eval and bench of int8 files ------------------------------------------------------- */

int sw_cli_eval_int8(const char *path, const sw_cli_common *common, int batch_size) {
    sw_int8_model *m = NULL;
    sw_dataset *test = NULL;
    int rc = SW_EXIT_FAIL;
    if (sw_int8_model_load(path, &m) != SW_OK) {
        rc = sw_cli_report(path);
        goto done;
    }
    if (sw_cli_load_data(common, NULL, &test) != SW_OK) {
        rc = sw_cli_report("loading data");
        goto done;
    }
    double acc = 0, loss = 0, t0 = sw_cli_now();
    if (sw_int8_model_evaluate(m, test, batch_size, &acc, &loss) != SW_OK) {
        rc = sw_cli_report("evaluation");
        goto done;
    }
    double seconds = sw_cli_now() - t0;
    printf("%s: test accuracy %.2f%%  loss %.4f  (%d images, %.2fs, %.0f img/s, int8 kernel "
           "%s)\n",
           path, acc * 100, loss, test->n, seconds, test->n / (seconds > 0 ? seconds : 1e-9),
           sw_i8_kernel_name(sw_i8_kernel_selected()));
    rc = SW_EXIT_OK;
done:
    sw_int8_model_free(m);
    sw_dataset_free(test);
    return rc;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median seconds of one forward of m at `batch`. */
static sw_status latency(sw_int8_model *m, int batch, int repeats, uint64_t seed, double *median) {
    sw_shape xs;
    SW_TRY(sw_shape_batched(&m->model->input_shape, batch, &xs));
    sw_tensor x;
    SW_TRY(sw_tensor_init(&x, &xs));
    double *times = malloc((size_t)repeats * sizeof *times);
    if (!times) {
        sw_tensor_deinit(&x);
        return SW_FAIL(SW_ERR_NOMEM, "bench: timings");
    }
    sw_rng rng;
    sw_rng_init(&rng, seed, 4);
    for (size_t i = 0; i < x.numel; i++) x.data[i] = sw_rng_normal(&rng);
    const sw_tensor *out = NULL;
    sw_status st = SW_OK;
    for (int w = 0; w < 3 && st == SW_OK; w++) st = sw_int8_model_forward(m, &x, &out);
    for (int r = 0; r < repeats && st == SW_OK; r++) {
        double t0 = sw_cli_now();
        st = sw_int8_model_forward(m, &x, &out);
        times[r] = sw_cli_now() - t0;
    }
    if (st == SW_OK) {
        qsort(times, (size_t)repeats, sizeof *times, cmp_double);
        *median = times[repeats / 2];
    }
    free(times);
    sw_tensor_deinit(&x);
    return st;
}

int sw_cli_bench_int8(const char *path, const sw_cli_common *common, const int *batches,
                      int n_batches, int repeats, bool json) {
    sw_int8_model *m = NULL, *f = NULL;
    int rc = SW_EXIT_FAIL;
    double lat_i8[8] = {0}, lat_f[8] = {0};
    bool have_float = false;
    if (sw_int8_model_load(path, &m) != SW_OK) {
        rc = sw_cli_report(path);
        goto done;
    }
    /* The same graph in float32 (dequantized weights): the baseline of the same run. */
    if (sw_int8_model_load(path, &f) == SW_OK && sw_int8_model_to_float(f) == SW_OK)
        have_float = true;
    for (int i = 0; i < n_batches && i < 8; i++) {
        if (latency(m, batches[i], repeats, common->seed, &lat_i8[i]) != SW_OK ||
            (have_float && latency(f, batches[i], repeats, common->seed, &lat_f[i]) != SW_OK)) {
            rc = sw_cli_report("bench");
            goto done;
        }
    }
    int counts[3];
    sw_int8_model_counts(m, counts);
    const char *kernel = sw_i8_kernel_name(sw_i8_kernel_selected());
    if (json) {
        printf("{\"model\": \"%s\", \"format\": \"int8\", \"threads\": %d, \"int8_kernel\": "
               "\"%s\", \"int8_layers\": %d, \"latency_ms\": {",
               path, sw_threads_get(), kernel, counts[SW_I8_INT8]);
        for (int i = 0; i < n_batches && i < 8; i++)
            printf("%s\"%d\": %.4f", i ? ", " : "", batches[i], lat_i8[i] * 1e3);
        printf("}");
        if (have_float) {
            printf(", \"float_latency_ms\": {");
            for (int i = 0; i < n_batches && i < 8; i++)
                printf("%s\"%d\": %.4f", i ? ", " : "", batches[i], lat_f[i] * 1e3);
            printf("}");
        }
        printf("}\n");
    } else {
        printf("int8 model %s, %d threads, kernel %s, %d int8 layers\n", path, sw_threads_get(),
               kernel, counts[SW_I8_INT8]);
        for (int i = 0; i < n_batches && i < 8; i++) {
            printf("  inference  batch %d: int8 %.3f ms", batches[i], lat_i8[i] * 1e3);
            if (have_float)
                printf(", float %.3f ms (x%.2f)", lat_f[i] * 1e3,
                       lat_i8[i] > 0 ? lat_f[i] / lat_i8[i] : 0.0);
            printf("\n");
        }
    }
    rc = SW_EXIT_OK;
done:
    sw_int8_model_free(m);
    sw_int8_model_free(f);
    return rc;
}
