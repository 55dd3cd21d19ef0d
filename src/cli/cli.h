/* cli.h - the headless command line: subcommands and what they share.
 *
 * Each subcommand is `int sw_cmd_<name>(int argc, char **argv)` returning a process exit code
 * (0 ok, 1 failure, 2 usage error, 130 interrupted). Only this folder prints to the terminal.
 */
#ifndef SW_CLI_H
#define SW_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "compress/compressor.h"
#include "compress/masks.h"
#include "data/dataset.h"
#include "nn/model.h"
#include "train/evaluator.h"
#include "train/metrics.h"

#define SW_EXIT_OK 0
#define SW_EXIT_FAIL 1
#define SW_EXIT_USAGE 2
#define SW_EXIT_INTERRUPTED 130

int sw_cli_main(int argc, char **argv);

int sw_cmd_train(int argc, char **argv);
int sw_cmd_eval(int argc, char **argv);
int sw_cmd_info(int argc, char **argv);
int sw_cmd_bench(int argc, char **argv);
int sw_cmd_tui(int argc, char **argv);
int sw_cmd_run(int argc, char **argv);
int sw_cmd_speedup(int argc, char **argv);
int sw_cmd_fuse(int argc, char **argv);
int sw_cmd_prune(int argc, char **argv);
int sw_cmd_quantize(int argc, char **argv);

/* Prints "shrinkwrap: error: <context>: <last library message>" to stderr; returns 1. */
int sw_cli_report(const char *context);
/* Prints a usage error and a hint to use --help; returns 2. */
int sw_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A model from a zoo name (fresh weights from `seed`) or a .safetensors file. */
sw_status sw_cli_load_model(const char *spec, uint64_t seed, sw_model **out);

/* Options most subcommands share; filled by sw_cli_common_option. */
typedef struct sw_cli_common {
    int threads;          /* --threads (0 = all cores) */
    unsigned long seed;   /* --seed */
    const char *data_dir; /* --data */
    const char *dataset;  /* --dataset */
    int subset;           /* --subset (training examples) */
    int test_subset;      /* --test-subset */
    const char *log_path; /* --log FILE.jsonl */
    bool quiet;           /* --quiet */
} sw_cli_common;

void sw_cli_common_defaults(sw_cli_common *c);
/* Applies threads (call once, before work). */
void sw_cli_common_apply(const sw_cli_common *c);
/* Loads the train and/or test split named by the options (either pointer may be NULL). */
sw_status sw_cli_load_data(const sw_cli_common *c, sw_dataset **train, sw_dataset **test);

/* Parses a positive integer option value; on failure prints a usage error. */
bool sw_cli_parse_int(const char *cmd, const char *opt, const char *text, long min, long max,
                      long *out);
bool sw_cli_parse_float(const char *cmd, const char *opt, const char *text, double min,
                        double max, double *out);

/* SIGINT/SIGTERM handling for long work: the first Ctrl-C asks for a stop at the next step
 * boundary; a second one exits at once (files in progress are temporaries and are removed). */
void sw_cli_install_interrupt(void);
bool sw_cli_interrupted(void);
/* Poll function for sw_evaluator (ctx unused). */
bool sw_cli_poll_interrupt(void *ctx);

/* Progress display: a bar with rate and ETA on a terminal, plain lines otherwise. */
typedef struct sw_progress {
    FILE *out;
    bool tty;
    bool quiet;
    double last_draw;   /* seconds, monotonic */
    long last_line_step;
    int width;
} sw_progress;
void sw_progress_init(sw_progress *p, FILE *out, bool quiet);
/* Metric listener (ctx = sw_progress*). */
void sw_progress_listener(void *ctx, const sw_metric_event *ev);
/* Finishes a bar in progress (newline). */
void sw_progress_finish(sw_progress *p);

/* ---- masks and config lists (cmd_prune.c; used by prune, info --masks, bench --prune) ---- */

/* A config list from JSON text (starting with '[') or from the JSON file named `arg`. Errors
 * name the file. Caller owns *out (cJSON_Delete). */
sw_status sw_cli_load_config_list(const char *arg, cJSON **out);

/* What the masks on a wrapped model do to one node. */
typedef struct sw_cli_node_masks {
    int n_masks;            /* entries of the masks collection on this node */
    double weight_sparsity; /* masked share of the node's weight; -1 when it has no mask */
    int channels_kept;      /* output channels alive in the masked model (zero downstream) */
    int channels;           /* output channels (features after Flatten); 0 when unknown */
} sw_cli_node_masks;
/* Fills *out for node `node` of ws's model from `masks` (the masks in effect, e.g. get_masks)
 * and the set's dead-channel analysis. */
void sw_cli_node_masks_of(const sw_wrapper_set *ws, const sw_masks *masks, int node,
                          sw_cli_node_masks *out);

/* Attaches a one-shot pruner to `model` from "NAME:CONFIG" (NAME level, l1norm, l2norm or fpgm;
 * CONFIG as sw_cli_load_config_list) and generates its masks. Caller owns *out and frees it
 * (sw_compressor_free) before the model. */
sw_status sw_cli_prune_spec(sw_model *model, const char *spec, sw_compressor **out);

/* ---- int8 model files (cmd_quantize.c; used by eval and bench) ------------------------- */

/* `eval` of an int8 model file (io/int8_model_file.h): accuracy on the test split. */
int sw_cli_eval_int8(const char *path, const sw_cli_common *common, int batch_size);
/* `bench` of an int8 model file: median inference latency at each batch size, of the int8
 * model and of the same graph in float32 (dequantized weights), in one run. */
int sw_cli_bench_int8(const char *path, const sw_cli_common *common, const int *batches,
                      int n_batches, int repeats, bool json);

/* Wires the headless listeners onto an evaluator: Ctrl-C polling (ev->poll), the progress
 * display and, when c->log_path is set, the JSON-lines log, opened here (release with
 * sw_jsonl_log_close, safe on a log that was never opened). `progress` and `log` are the
 * caller's storage and must outlive the evaluator's runs. */
sw_status sw_cli_attach_listeners(sw_evaluator *ev, const sw_cli_common *c,
                                  sw_progress *progress, sw_jsonl_log *log);

/* Monotonic seconds. */
double sw_cli_now(void);
/* "12.3M", "456k" for counts. */
const char *sw_cli_human(double value, char *buf, size_t size);

#endif
