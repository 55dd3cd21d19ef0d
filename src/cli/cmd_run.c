/* cmd_run.c - `shrinkwrap run RECIPE.lua [--key value ...]`: runs a Lua recipe headless, with
 * progress bars on stderr, Ctrl-C stopping it cleanly, and an optional sandbox. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lua/sw_lua.h"
#include "tensor/blas.h"

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap run [--safe] [--quiet] [--threads N] [--log FILE] RECIPE.lua\n"
            "                      [--key value | --flag | WORD ...]\n\n"
            "Runs a Lua recipe: a script that does `local sw = require \"shrinkwrap\"` and\n"
            "drives models, data, training and compression (docs/LUA.md; examples in recipes/).\n"
            "Training shows progress bars on stderr; Ctrl-C stops the recipe at the next step\n"
            "boundary (or within microseconds of pure Lua work) and exits with 130.\n\n"
            "  --safe        sandbox for recipes from others: no os.execute, io.popen, native\n"
            "                modules or bytecode, no debug library, and files are written only\n"
            "                inside the working directory\n"
            "  --quiet       no progress output (the recipe's own prints stay)\n"
            "  --threads N   threads for the tensor kernels (default: all cores)\n"
            "  --log FILE    also write every metric event as JSON lines to FILE\n\n"
            "These four are shrinkwrap's own wherever they appear. Every other word after the\n"
            "recipe reaches it as sw.args: `--steps 20` sets sw.args.steps = 20 (numbers are\n"
            "converted), `--fast` sets sw.args.fast = true (recipes then run a few steps on a\n"
            "small subset), `--no-x` sets sw.args.x = false, `--max-steps` becomes max_steps,\n"
            "and other words are sw.args[1], sw.args[2], ...\n");
}

int sw_cmd_run(int argc, char **argv) {
    const char *cmd = "run";
    sw_lua_options opts = sw_lua_options_default();
    const char *recipe = NULL, *log_path = NULL;
    bool quiet = false;
    long threads = 0;
    /* Words for sw.args: everything after the recipe except shrinkwrap's own options. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) {
        fprintf(stderr, "shrinkwrap run: out of memory\n");
        return SW_EXIT_FAIL;
    }
    int n_rest = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--safe") == 0) {
            opts.safe = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--threads") == 0 || strcmp(a, "--log") == 0) {
            if (i + 1 >= argc) {
                free(rest);
                return sw_cli_usage_error(cmd, "%s needs a value", a);
            }
            if (a[2] == 'l') {
                log_path = argv[++i];
            } else if (!sw_cli_parse_int(cmd, "--threads", argv[++i], 0, 1024, &threads)) {
                free(rest);
                return SW_EXIT_USAGE;
            }
        } else if (!recipe && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            print_help(stdout);
            free(rest);
            return SW_EXIT_OK;
        } else if (!recipe && a[0] == '-') {
            free(rest);
            return sw_cli_usage_error(cmd, "unknown option \"%s\" before the recipe", a);
        } else if (!recipe) {
            recipe = a;
        } else {
            rest[n_rest++] = argv[i];
        }
    }
    if (!recipe) {
        free(rest);
        return sw_cli_usage_error(cmd, "expects a RECIPE.lua to run");
    }

    sw_threads_set((int)threads);
    sw_cli_install_interrupt();
    int rc = SW_EXIT_FAIL;
    sw_lua *lua = NULL;
    sw_jsonl_log log = {0};
    sw_progress progress;
    sw_progress_init(&progress, stderr, quiet);
    opts.poll = sw_cli_poll_interrupt;
    sw_metric_bus_add(&opts.listeners, sw_progress_listener, &progress);
    if (log_path) {
        if (sw_jsonl_log_open(&log, log_path) != SW_OK) {
            rc = sw_cli_report("--log");
            goto done;
        }
        sw_metric_bus_add(&opts.listeners, sw_jsonl_log_listener, &log);
    }
    if (sw_lua_new(&opts, &lua) != SW_OK || sw_lua_set_args(lua, recipe, n_rest, rest) != SW_OK) {
        rc = sw_cli_report("starting Lua");
        goto done;
    }
    sw_status st = sw_lua_run_file(lua, recipe);
    sw_progress_finish(&progress);
    fflush(stdout);
    if (st == SW_OK) {
        rc = SW_EXIT_OK;
    } else if (st == SW_ERR_INTERRUPTED || sw_cli_interrupted()) {
        fprintf(stderr, "shrinkwrap run: %s was interrupted; files in progress were not "
                        "written\n", recipe);
        rc = SW_EXIT_INTERRUPTED;
    } else {
        fprintf(stderr, "shrinkwrap run: %s\n", sw_lua_last_error(lua));
        rc = SW_EXIT_FAIL;
    }
done:
    sw_lua_free(lua);
    if (log_path && log.fp) sw_jsonl_log_close(&log);
    free(rest);
    return rc;
}
