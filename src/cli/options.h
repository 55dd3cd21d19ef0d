/* options.h - long options shared by several subcommands (getopt_long tables and handlers).
 *
 * A subcommand builds its table from its own options plus the shared groups, then passes each
 * parsed option to the group handlers; a handler returns 1 (handled), 0 (not mine) or -1
 * (invalid value; a usage error was printed).
 */
#ifndef SW_CLI_OPTIONS_H
#define SW_CLI_OPTIONS_H

#include <getopt.h>

#include "cli/cli.h"
#include "train/evaluator.h"

enum {
    SW_OPT_HELP = 'h',
    SW_OPT_FIRST_SHARED = 1000,
    /* common */
    SW_OPT_THREADS,
    SW_OPT_SEED,
    SW_OPT_DATA,
    SW_OPT_DATASET,
    SW_OPT_SUBSET,
    SW_OPT_TEST_SUBSET,
    SW_OPT_LOG,
    SW_OPT_QUIET,
    /* training */
    SW_OPT_EPOCHS,
    SW_OPT_STEPS,
    SW_OPT_BATCH_SIZE,
    SW_OPT_OPTIMIZER,
    SW_OPT_LR,
    SW_OPT_MOMENTUM,
    SW_OPT_WEIGHT_DECAY,
    SW_OPT_NESTEROV,
    SW_OPT_NO_NESTEROV,
    SW_OPT_SCHEDULE,
    SW_OPT_WARMUP,
    SW_OPT_STEP_SIZE,
    SW_OPT_GAMMA,
    SW_OPT_AUGMENT,
    SW_OPT_FIRST_COMMAND = 2000, /* subcommands number their own options from here */
};

extern const struct option sw_common_options[];   /* terminated by a zero entry */
extern const struct option sw_training_options[]; /* terminated by a zero entry */

/* Concatenates option tables (each zero-terminated) into dst (room for `cap` entries incl. the
 * terminator). Aborts on overflow (a programming error). */
void sw_options_join(struct option *dst, int cap, const struct option *const *tables, int n);

int sw_common_option(const char *cmd, int id, const char *arg, sw_cli_common *c);

/* Training plan: the evaluator's config plus the run length. */
typedef struct sw_training_plan {
    sw_train_config cfg;
    int epochs;     /* -1 = unset */
    long steps;     /* -1 = unset */
    bool lr_given;
} sw_training_plan;

void sw_training_plan_defaults(sw_training_plan *plan, int default_epochs);
int sw_training_option(const char *cmd, int id, const char *arg, sw_training_plan *plan);

void sw_print_common_help(FILE *out);
void sw_print_training_help(FILE *out, int default_epochs);

#endif
