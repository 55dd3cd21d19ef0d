/* common.c - what the subcommands share: errors, options, models, data, interrupts. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/model_file.h"
#include "nn/zoo.h"
#include "tensor/blas.h"
#include "tensor/clock.h"
#include "train/evaluator.h"

int sw_cli_report(const char *context) {
    const char *msg = sw_error_message();
    if (context && *context)
        fprintf(stderr, "shrinkwrap: error: %s: %s\n", context, *msg ? msg : "unknown error");
    else
        fprintf(stderr, "shrinkwrap: error: %s\n", *msg ? msg : "unknown error");
    return SW_EXIT_FAIL;
}

int sw_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "shrinkwrap %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run `shrinkwrap %s --help` for the options)\n", cmd);
    return SW_EXIT_USAGE;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

sw_status sw_cli_load_model(const char *spec, uint64_t seed, sw_model **out) {
    if (sw_zoo_describe(spec)) return sw_zoo_build(spec, seed, out);
    if (ends_with(spec, ".safetensors") || strchr(spec, '/') || access(spec, F_OK) == 0) {
        sw_status st = sw_model_load(spec, out);
        return st;
    }
    return sw_zoo_build(spec, seed, out); /* reports the unknown name with the zoo's list */
}

void sw_cli_common_defaults(sw_cli_common *c) {
    *c = (sw_cli_common){.threads = 0, .seed = 0, .dataset = "fashion-mnist"};
}

void sw_cli_common_apply(const sw_cli_common *c) { sw_threads_set(c->threads); }

sw_status sw_cli_load_data(const sw_cli_common *c, sw_dataset **train, sw_dataset **test) {
    sw_dataset_kind kind;
    SW_TRY(sw_dataset_kind_from_name(c->dataset, &kind));
    if (train) {
        sw_status st = sw_dataset_load(kind, c->data_dir, SW_SPLIT_TRAIN, c->subset, train);
        if (st != SW_OK) return st;
    }
    if (test) {
        sw_status st = sw_dataset_load(kind, c->data_dir, SW_SPLIT_TEST, c->test_subset, test);
        if (st != SW_OK) {
            if (train) {
                sw_dataset_free(*train);
                *train = NULL;
            }
            return st;
        }
    }
    return SW_OK;
}

bool sw_cli_parse_int(const char *cmd, const char *opt, const char *text, long min, long max,
                      long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        sw_cli_usage_error(cmd, "%s expects an integer in [%ld, %ld], got \"%s\"", opt, min, max,
                           text);
        return false;
    }
    *out = v;
    return true;
}

bool sw_cli_parse_float(const char *cmd, const char *opt, const char *text, double min,
                        double max, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v) || v < min || v > max) {
        sw_cli_usage_error(cmd, "%s expects a number in [%g, %g], got \"%s\"", opt, min, max,
                           text);
        return false;
    }
    *out = v;
    return true;
}

/* The interrupt flag is process-wide state by necessity: a signal handler can only talk to
 * the program through a volatile sig_atomic_t. It is written only by the handler and read by
 * the poll function between training steps. */
static volatile sig_atomic_t interrupt_count;

static void on_interrupt(int sig) {
    (void)sig;
    interrupt_count++;
    if (interrupt_count >= 2) {
        /* Second Ctrl-C: leave now. Outputs are still temporaries, so nothing half-written
         * takes a real name; _exit is async-signal-safe. */
        static const char msg[] = "\nshrinkwrap: interrupted again, exiting now\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(SW_EXIT_INTERRUPTED);
    }
}

void sw_cli_install_interrupt(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool sw_cli_interrupted(void) { return interrupt_count > 0; }

bool sw_cli_poll_interrupt(void *ctx) {
    (void)ctx;
    return interrupt_count > 0;
}

double sw_cli_now(void) { return sw_clock_seconds(); }

const char *sw_cli_human(double value, char *buf, size_t size) {
    static const char *const units[] = {"", "k", "M", "G", "T"};
    int u = 0;
    while (fabs(value) >= 1000.0 && u < 4) {
        value /= 1000.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f", value);
    else
        snprintf(buf, size, value < 10 ? "%.2f%s" : value < 100 ? "%.1f%s" : "%.0f%s", value,
                 units[u]);
    return buf;
}

sw_status sw_cli_attach_listeners(sw_evaluator *ev, const sw_cli_common *c, sw_progress *progress,
                                  sw_jsonl_log *log) {
    ev->poll = sw_cli_poll_interrupt;
    sw_progress_init(progress, stderr, c->quiet);
    SW_TRY(sw_metric_bus_add(&ev->bus, sw_progress_listener, progress));
    if (!c->log_path) return SW_OK;
    SW_TRY(sw_jsonl_log_open(log, c->log_path));
    return sw_metric_bus_add(&ev->bus, sw_jsonl_log_listener, log);
}
