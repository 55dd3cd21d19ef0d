/* cmd_bench.c - `shrinkwrap bench`: training throughput and inference latency of a model on
 * synthetic batches (data loading excluded, as in the PyTorch peer script of tests/bench). */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli/options.h"
#include "io/int8_model_file.h"
#include "nn/latency.h"
#include "nn/loss.h"
#include "tensor/blas.h"
#include "tensor/rng.h"
#include "train/optim.h"

enum {
    OPT_MODEL = SW_OPT_FIRST_COMMAND,
    OPT_BATCH,
    OPT_STEPS,
    OPT_WARMUP,
    OPT_LATENCY_BATCHES,
    OPT_REPEATS,
    OPT_JSON,
    OPT_NO_TRAIN,
    OPT_NO_LATENCY,
    OPT_PRUNE,
    OPT_PROFILE,
};

static const struct option bench_options[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"batch-size", required_argument, NULL, OPT_BATCH},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"latency-batches", required_argument, NULL, OPT_LATENCY_BATCHES},
    {"repeats", required_argument, NULL, OPT_REPEATS},
    {"json", no_argument, NULL, OPT_JSON},
    {"no-train", no_argument, NULL, OPT_NO_TRAIN},
    {"no-latency", no_argument, NULL, OPT_NO_LATENCY},
    {"prune", required_argument, NULL, OPT_PRUNE},
    {"profile", no_argument, NULL, OPT_PROFILE},
    {"threads", required_argument, NULL, SW_OPT_THREADS},
    {"seed", required_argument, NULL, SW_OPT_SEED},
    {"help", no_argument, NULL, SW_OPT_HELP},
    {0, 0, 0, 0},
};

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap bench [MODEL] [OPTIONS]\n\n"
            "Measures training throughput (forward, cross-entropy, backward, SGD step) and\n"
            "inference latency (eval mode) of MODEL (zoo name or .safetensors file; default\n"
            "fmnist_cnn) on random batches.\n\n"
            "  --batch-size N          training batch (default 128)\n"
            "  --steps N               timed training steps (default 30)\n"
            "  --warmup N              untimed steps first (default 5)\n"
            "  --latency-batches LIST  inference batch sizes (default 1,256)\n"
            "  --repeats N             inference repetitions, median reported (default 50)\n"
            "  --no-train, --no-latency  skip a part\n"
            "  --prune NAME:CONFIG     measure the model wrapped, with a one-shot pruner\n"
            "                          attached (level, l1norm, l2norm or fpgm; CONFIG a config\n"
            "                          list file or JSON text), its masks generated first\n"
            "  --profile               also time every node: training forward and backward per\n"
            "                          step, inference forward at the largest latency batch\n"
            "  --json                  one JSON object on stdout\n"
            "  --threads N             threads (default: all cores)\n"
            "  --seed N                seed of weights and data\n");
}

static void fill_random(sw_tensor *t, sw_rng *rng) {
    for (size_t i = 0; i < t->numel; i++) t->data[i] = sw_rng_normal(rng);
}

/* Seconds of CPU time used by the process: on a loaded machine a single-threaded run's
 * images per CPU second stay comparable where wall-clock rates do not. */
static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Images per second of full training steps; with `times` (n_nodes entries) each node's seconds
 * over the timed steps are added to it. */
static sw_status bench_train(sw_model *model, int batch, int warmup, int steps, uint64_t seed,
                             double *images_per_sec, double *images_per_cpu_sec,
                             sw_node_time *times) {
    sw_shape xs;
    SW_TRY(sw_shape_batched(&model->input_shape, batch, &xs));
    sw_tensor x, dlogits;
    SW_TRY(sw_tensor_init(&x, &xs));
    sw_shape out_shape = sw_model_output_shape(model), ls;
    sw_status st = sw_shape_batched(&out_shape, batch, &ls);
    if (st == SW_OK) st = sw_tensor_init(&dlogits, &ls);
    if (st != SW_OK) {
        sw_tensor_deinit(&x);
        return st;
    }
    int *labels = malloc((size_t)batch * sizeof *labels);
    sw_rng rng;
    sw_rng_init(&rng, seed, 3);
    fill_random(&x, &rng);
    for (int i = 0; i < batch && labels; i++)
        labels[i] = (int)sw_rng_below(&rng, (uint32_t)out_shape.dims[0]);
    sw_optim_config oc = sw_optim_config_default(SW_OPTIM_SGD);
    oc.momentum = 0.9f;
    sw_optim opt;
    st = labels ? sw_optim_init(&opt, &oc) : SW_FAIL(SW_ERR_NOMEM, "bench: labels");
    if (st == SW_OK) st = sw_optim_add_group(&opt, model->param_data, model->grad_data,
                                             model->n_param_floats);
    sw_model_set_training(model, true);
    double t0 = 0, c0 = 0;
    for (int s = 0; st == SW_OK && s < warmup + steps; s++) {
        if (s == warmup) {
            t0 = sw_cli_now();
            c0 = cpu_seconds();
            sw_model_set_profile(model, times);
        }
        const sw_tensor *logits = NULL;
        double loss;
        sw_model_zero_grad(model);
        st = sw_model_forward(model, &x, &logits);
        if (st == SW_OK) st = sw_loss_cross_entropy(logits, labels, 1.0f, &loss, &dlogits);
        if (st == SW_OK) st = sw_model_backward(model, &dlogits);
        if (st == SW_OK) sw_optim_step(&opt, 0.01f);
    }
    sw_model_set_profile(model, NULL);
    if (st == SW_OK) {
        *images_per_sec = (double)steps * batch / (sw_cli_now() - t0);
        *images_per_cpu_sec = (double)steps * batch / (cpu_seconds() - c0);
    }
    if (labels) sw_optim_deinit(&opt);
    free(labels);
    sw_tensor_deinit(&x);
    sw_tensor_deinit(&dlogits);
    return st;
}

/* Per-node times of --profile: per training step (forward, backward) and per inference forward
 * at batch `infer_batch`, as a table or as a JSON array. A fused chain is timed as its head. */
typedef struct bench_profile {
    sw_node_time *train, *infer; /* owned, n_nodes entries each */
    int steps, repeats, infer_batch;
} bench_profile;

static void profile_print_table(const sw_model *model, const bench_profile *p, bool train,
                                bool infer) {
    double total[3] = {0, 0, 0};
    printf("  profile    ms per training step (forward, backward), per inference forward\n");
    printf("  %-28s %-12s %9s %9s %9s\n", "node", "type", train ? "train fwd" : "",
           train ? "train bwd" : "", infer ? "infer" : "");
    for (int i = 0; i < model->n_nodes; i++) {
        const sw_node *node = &model->nodes[i];
        double v[3] = {train ? p->train[i].forward * 1e3 / p->steps : 0,
                       train ? p->train[i].backward * 1e3 / p->steps : 0,
                       infer ? p->infer[i].forward * 1e3 / p->repeats : 0};
        printf("  %-28.28s %-12.12s", node->name, node->layer->ops->type_name);
        for (int k = 0; k < 3; k++) {
            total[k] += v[k];
            if ((k < 2 && train) || (k == 2 && infer))
                printf(" %9.3f", v[k]);
            else
                printf(" %9s", "");
        }
        printf("\n");
    }
    printf("  %-28s %-12s", "total", "");
    for (int k = 0; k < 3; k++)
        if ((k < 2 && train) || (k == 2 && infer))
            printf(" %9.3f", total[k]);
        else
            printf(" %9s", "");
    printf("\n");
    if (infer) printf("  (inference at batch %d; a fused chain is timed as its first node)\n",
                      p->infer_batch);
}

/* The profile as a JSON array (owned by the caller, cJSON_free), or NULL without memory. */
static char *profile_json(const sw_model *model, const bench_profile *p, bool train, bool infer) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < model->n_nodes; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddStringToObject(o, "node", model->nodes[i].name);
        cJSON_AddStringToObject(o, "type", model->nodes[i].layer->ops->type_name);
        if (train) {
            cJSON_AddNumberToObject(o, "train_forward_ms", p->train[i].forward * 1e3 / p->steps);
            cJSON_AddNumberToObject(o, "train_backward_ms",
                                    p->train[i].backward * 1e3 / p->steps);
        }
        if (infer) cJSON_AddNumberToObject(o, "infer_ms", p->infer[i].forward * 1e3 / p->repeats);
    }
    char *text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return text;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux reports KiB */
}

int sw_cmd_bench(int argc, char **argv) {
    const char *cmd = "bench";
    sw_cli_common common;
    sw_cli_common_defaults(&common);
    const char *model_spec = "fmnist_cnn", *prune_spec = NULL;
    long batch = 128, steps = 30, warmup = 5, repeats = 50;
    int lat_batches[8] = {1, 256}, n_lat = 2;
    bool json = false, do_train = true, do_latency = true, do_profile = false;
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", bench_options, NULL)) != -1) {
        switch (id) {
        case SW_OPT_HELP:
            print_help(stdout);
            return SW_EXIT_OK;
        case OPT_MODEL:
            model_spec = optarg;
            break;
        case OPT_BATCH:
            if (!sw_cli_parse_int(cmd, "--batch-size", optarg, 1, 65536, &batch))
                return SW_EXIT_USAGE;
            break;
        case OPT_STEPS:
            if (!sw_cli_parse_int(cmd, "--steps", optarg, 1, 1000000, &steps)) return SW_EXIT_USAGE;
            break;
        case OPT_WARMUP:
            if (!sw_cli_parse_int(cmd, "--warmup", optarg, 0, 1000000, &warmup))
                return SW_EXIT_USAGE;
            break;
        case OPT_REPEATS:
            if (!sw_cli_parse_int(cmd, "--repeats", optarg, 1, 1000000, &repeats))
                return SW_EXIT_USAGE;
            break;
        case OPT_LATENCY_BATCHES: {
            n_lat = 0;
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                long v;
                if (n_lat == 8 || !sw_cli_parse_int(cmd, "--latency-batches", tok, 1, 65536, &v))
                    return SW_EXIT_USAGE;
                lat_batches[n_lat++] = (int)v;
            }
            break;
        }
        case OPT_JSON:
            json = true;
            break;
        case OPT_NO_TRAIN:
            do_train = false;
            break;
        case OPT_NO_LATENCY:
            do_latency = false;
            break;
        case OPT_PRUNE:
            prune_spec = optarg;
            break;
        case OPT_PROFILE:
            do_profile = true;
            break;
        case '?':
            return sw_cli_usage_error(cmd, "unknown or incomplete option");
        default:
            if (sw_common_option(cmd, id, optarg, &common) < 0) return SW_EXIT_USAGE;
        }
    }
    if (optind < argc) model_spec = argv[optind++];
    if (optind < argc) return sw_cli_usage_error(cmd, "unexpected argument \"%s\"", argv[optind]);
    if (do_profile && !do_train && !do_latency)
        return sw_cli_usage_error(cmd, "--profile with --no-train and --no-latency has nothing "
                                       "to time: drop one of them");
    sw_cli_common_apply(&common);
    if (sw_int8_model_file_is(model_spec))
        return sw_cli_bench_int8(model_spec, &common, lat_batches, n_lat, (int)repeats, json);

    sw_model *model = NULL;
    if (sw_cli_load_model(model_spec, common.seed, &model) != SW_OK)
        return sw_cli_report(model_spec);
    sw_compressor *pruner = NULL;
    if (prune_spec && sw_cli_prune_spec(model, prune_spec, &pruner) != SW_OK) {
        sw_model_free(model);
        return sw_cli_report("--prune");
    }
    double ips = 0, latency[8] = {0};
    sw_status st = SW_OK;
    double ips_cpu = 0;
    bench_profile prof = {.steps = (int)steps, .repeats = (int)repeats};
    if (do_profile) {
        prof.train = calloc((size_t)model->n_nodes, sizeof *prof.train);
        prof.infer = calloc((size_t)model->n_nodes, sizeof *prof.infer);
        if (!prof.train || !prof.infer) st = SW_FAIL(SW_ERR_NOMEM, "bench: no memory for the profile");
    }
    int profiled_lat = 0; /* the largest latency batch is the one profiled */
    for (int i = 1; i < n_lat; i++)
        if (lat_batches[i] > lat_batches[profiled_lat]) profiled_lat = i;
    prof.infer_batch = lat_batches[profiled_lat];
    if (do_train && st == SW_OK)
        st = bench_train(model, (int)batch, (int)warmup, (int)steps, common.seed, &ips, &ips_cpu,
                         prof.train);
    double rss_train = peak_rss_mib();
    for (int i = 0; do_latency && st == SW_OK && i < n_lat; i++)
        st = sw_model_latency_profiled(model, lat_batches[i], (int)repeats, common.seed,
                                       &latency[i], i == profiled_lat ? prof.infer : NULL);
    char *prof_json = NULL;
    if (st == SW_OK && do_profile && json) {
        prof_json = profile_json(model, &prof, do_train, do_latency);
        if (!prof_json) st = SW_FAIL(SW_ERR_NOMEM, "bench: no memory for the profile's JSON");
    }
    if (st != SW_OK) {
        free(prof.train);
        free(prof.infer);
        sw_compressor_free(pruner);
        sw_model_free(model);
        return sw_cli_report("bench");
    }
    if (json) {
        printf("{\"model\": \"%s\", \"threads\": %d, \"batch\": %ld, \"params\": %zu, "
               "\"flops\": %.0f",
               model->arch, sw_threads_get(), batch, sw_model_param_count(model),
               sw_model_flops(model));
        if (pruner)
            printf(", \"pruner\": \"%s\", \"transforms\": %d", pruner->ops->name,
                   sw_wrapper_set_transform_count(pruner->ws));
        if (do_train) printf(", \"train_images_per_sec\": %.1f, \"peak_rss_mib\": %.1f", ips, rss_train);
        if (do_train) printf(", \"train_images_per_cpu_sec\": %.1f", ips_cpu);
        if (do_latency) {
            printf(", \"latency_ms\": {");
            for (int i = 0; i < n_lat; i++)
                printf("%s\"%d\": %.4f", i ? ", " : "", lat_batches[i], latency[i] * 1e3);
            printf("}");
        }
        if (prof_json) printf(", \"profile\": %s", prof_json);
        printf("}\n");
    } else {
        printf("model %s, %d threads\n", model->arch, sw_threads_get());
        if (pruner)
            printf("  wrapped    %s attached, %d transforms\n", pruner->ops->name,
                   sw_wrapper_set_transform_count(pruner->ws));
        if (do_train)
            printf("  training   batch %ld: %.0f images/s, %.0f per CPU second (peak RSS %.0f "
                   "MiB)\n",
                   batch, ips, ips_cpu, rss_train);
        for (int i = 0; do_latency && i < n_lat; i++)
            printf("  inference  batch %d: %.3f ms\n", lat_batches[i], latency[i] * 1e3);
        if (do_profile) profile_print_table(model, &prof, do_train, do_latency);
    }
    cJSON_free(prof_json);
    free(prof.train);
    free(prof.infer);
    sw_compressor_free(pruner);
    sw_model_free(model);
    return SW_EXIT_OK;
}
