/* cmd_tui.c - `shrinkwrap tui`: the curses workbench on a model. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/options.h"
#include "io/model_file.h"
#include "nn/zoo.h"
#include "tui/app.h"
#include "tui/term.h"

#define DEFAULT_ZOO_MODEL "fmnist_cnn"
#define DEFAULT_MODEL_FILE "assets/models/fmnist_cnn.safetensors"

enum { OPT_RECORD = SW_OPT_FIRST_COMMAND, OPT_ASCII, OPT_NO_COLOR, OPT_RECIPE };

static const struct option tui_options[] = {
    {"record", required_argument, NULL, OPT_RECORD},
    {"ascii", no_argument, NULL, OPT_ASCII},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"recipe", required_argument, NULL, OPT_RECIPE},
    {0, 0, 0, 0},
};

static void print_help(FILE *out) {
    fprintf(out,
            "usage: shrinkwrap tui [MODEL] [--data DIR] [--subset N] [--log FILE]\n"
            "                      [--recipe FILE.lua] [OPTIONS]\n\n"
            "Opens the workbench: the module tree, an inspector, live training metrics with\n"
            "charts, and a log. Press ? inside for every key.\n\n"
            "  MODEL                a .safetensors model file or a zoo name (default:\n"
            "                       %s if it exists, else the %s zoo model\n"
            "                       with fresh weights)\n"
            "  --log FILE           open the JSON-lines metrics log of an earlier run\n"
            "                       (`shrinkwrap train --log FILE`) and browse its charts\n"
            "  --record FILE        also write the workbench's own runs to FILE (JSON lines)\n"
            "  --recipe FILE.lua    run a Lua recipe at start with live charts; its output\n"
            "                       goes to the log pane and s stops it\n"
            "  --ascii              ASCII only (the default when the locale is not UTF-8)\n"
            "  --no-color           plain attributes (also when NO_COLOR is set)\n\n"
            "Data is loaded when training first starts (--data, --dataset, --subset and\n"
            "--test-subset set what; the training form can change the subsets).\n\n",
            DEFAULT_MODEL_FILE, DEFAULT_ZOO_MODEL);
    sw_print_common_help(out);
}

/* The default model: the trained file from assets/ (here or beside the sources), else the zoo's
 * fresh one. *note says which, for the log pane. */
static sw_status default_model(unsigned long seed, sw_model **out, char *note, size_t size) {
    char path[4096];
    const char *candidates[] = {DEFAULT_MODEL_FILE, NULL};
    snprintf(path, sizeof path, "%s/%s", SW_SOURCE_DIR, DEFAULT_MODEL_FILE);
    candidates[1] = path;
    for (int i = 0; i < 2; i++) {
        if (access(candidates[i], R_OK) != 0) continue;
        sw_status s = sw_model_load(candidates[i], out);
        if (s == SW_OK) {
            snprintf(note, size, "opened %.400s", candidates[i]);
            return SW_OK;
        }
        return s;
    }
    snprintf(note, size,
             "%s not found: opened the %s zoo model with fresh (untrained) weights "
             "(seed %lu); t trains it",
             DEFAULT_MODEL_FILE, DEFAULT_ZOO_MODEL, seed);
    return sw_zoo_build(DEFAULT_ZOO_MODEL, seed, out);
}

int sw_cmd_tui(int argc, char **argv) {
    const char *cmd = "tui";
    sw_cli_common common;
    sw_cli_common_defaults(&common);
    const char *record = NULL, *recipe = NULL;
    bool ascii = false, no_color = false;

    struct option options[64];
    const struct option *tables[] = {tui_options, sw_common_options};
    sw_options_join(options, 64, tables, 2);
    optind = 1;
    int id;
    while ((id = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        int handled;
        switch (id) {
        case SW_OPT_HELP:
            print_help(stdout);
            return SW_EXIT_OK;
        case OPT_RECORD:
            record = optarg;
            continue;
        case OPT_ASCII:
            ascii = true;
            continue;
        case OPT_NO_COLOR:
            no_color = true;
            continue;
        case OPT_RECIPE:
            recipe = optarg;
            continue;
        case '?':
            return sw_cli_usage_error(cmd, "unknown or incomplete option");
        default:
            handled = sw_common_option(cmd, id, optarg, &common);
            if (handled < 0) return SW_EXIT_USAGE;
            if (handled == 0) return sw_cli_usage_error(cmd, "unknown option");
        }
    }
    if (argc - optind > 1) return sw_cli_usage_error(cmd, "expects at most one MODEL");
    const char *spec = optind < argc ? argv[optind] : NULL;
    if (common.log_path && access(common.log_path, R_OK) != 0)
        return sw_cli_usage_error(cmd,
                                  "--log %s: no such readable file (it names a log to "
                                  "open; --record writes one)",
                                  common.log_path);

    if (recipe && access(recipe, R_OK) != 0)
        return sw_cli_usage_error(cmd, "--recipe %s: no such readable file", recipe);

    bool utf8 = sw_tui_locale_init() && !ascii;
    const char *nc = getenv("NO_COLOR");
    if (nc && *nc) no_color = true;
    sw_cli_common_apply(&common);

    sw_model *model = NULL;
    char note[512] = "";
    sw_status s;
    if (spec) {
        s = sw_cli_load_model(spec, common.seed, &model);
        if (s == SW_OK)
            snprintf(note, sizeof note, "opened %s%s", spec,
                     sw_zoo_describe(spec) ? " (zoo model, fresh weights)" : "");
    } else {
        s = default_model(common.seed, &model, note, sizeof note);
    }
    if (s != SW_OK) return sw_cli_report(spec ? spec : "default model");

    sw_tui_app_config cfg = {.data_dir = common.data_dir,
                             .dataset = common.dataset,
                             .subset = common.subset,
                             .test_subset = common.test_subset,
                             .seed = common.seed,
                             .replay_log = common.log_path,
                             .record_log = record,
                             .recipe = recipe,
                             .utf8 = utf8};
    sw_tui_app *app = NULL;
    if (sw_tui_app_new(model, &cfg, &app) != SW_OK) return sw_cli_report("workbench");
    sw_tui_state *st = sw_tui_app_state(app);
    sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "%s", note);
    sw_tui_log_add(&st->log, SW_TUI_LOG_INFO,
                   "? lists every key; t trains; a attaches a compressor; S scans sensitivity");

    sw_tui_io io;
    sw_tui_term_options topt = {.utf8 = utf8, .no_color = no_color};
    if (sw_tui_term_open(&topt, &io) != SW_OK) {
        sw_tui_app_free(app);
        return sw_cli_report("tui");
    }
    int sig = sw_tui_app_run(app, &io);
    sw_tui_term_close();
    /* The last error, if any, stays visible after the screen is gone. */
    const sw_tui_log_line *last = sw_tui_log_last(&st->log);
    if (last && last->level == SW_TUI_LOG_ERROR)
        fprintf(stderr, "shrinkwrap tui: %s\n", last->text);
    sw_tui_app_free(app);
    if (sig) {
        fprintf(stderr, "shrinkwrap tui: %s, terminal restored\n", strsignal(sig));
        return 128 + sig;
    }
    return SW_EXIT_OK;
}
