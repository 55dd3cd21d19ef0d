/* app.h - the workbench application: a model, its data, training and files, over a terminal.
 *
 * One thread owns everything (DESIGN.md, "The UI and long work"): the main loop waits for keys
 * and redraws; long work (training, compressing) runs inside a key handler and calls the
 * evaluator's poll hook at every step boundary, which drains keys, redraws (right after a key,
 * otherwise at most every SW_TUI_FRAME_SECONDS) and returns true to stop. Pausing loops inside that hook, so the screen
 * stays live while the model sits at a consistent step boundary.
 *
 * The terminal is reached only through sw_tui_io, so tests drive the whole application with
 * scripted keys and read the screen from the canvas it presents.
 */
#ifndef SW_TUI_APP_H
#define SW_TUI_APP_H

#include "../data/dataset.h"
#include "canvas.h"
#include "state.h"

/* Redraws during work. New metrics alone redraw at most 5 times a second, and less often when a
 * frame is slow, so that drawing (ours, and the terminal's, which runs on the same cores as the
 * training) costs at most about SW_TUI_DRAW_SHARE of the time: at 20 frames a second under tmux
 * training was measured 14% slower than headless. A key redraws at once (at most every
 * SW_TUI_KEY_FRAME_SECONDS), so moving around stays immediate while training runs. */
#define SW_TUI_FRAME_SECONDS 0.2
#define SW_TUI_KEY_FRAME_SECONDS 0.03
#define SW_TUI_DRAW_SHARE 0.01

/* What the application needs from a terminal. */
typedef struct sw_tui_io {
    void *ctx;
    /* The next key, waiting up to timeout_ms (0: do not wait); SW_KEY_NONE when none came. */
    int (*read_key)(void *ctx, int timeout_ms);
    void (*size)(void *ctx, int *w, int *h);
    /* Shows a rendered canvas. */
    void (*present)(void *ctx, const sw_tui_canvas *c);
    /* A termination signal caught since start (SIGINT, SIGTERM, SIGHUP), or 0. */
    int (*pending_signal)(void *ctx);
} sw_tui_io;

typedef struct sw_tui_app_config {
    const char *data_dir; /* NULL: the dataset's default folder */
    const char *dataset;  /* "fashion-mnist" (default), "mnist", "cifar10" */
    int subset;           /* training images to load (0: all) */
    int test_subset;      /* test images (0: all) */
    unsigned long seed;
    const char *replay_log; /* a metrics log to open at start, or NULL */
    const char *record_log; /* also write the workbench's runs as JSON lines here, or NULL */
    const char *recipe;     /* a Lua recipe to run at start, with live metrics, or NULL */
    bool utf8;
    int eval_batch; /* images per evaluation batch (0: the evaluator's default, 512) */
} sw_tui_app_config;

typedef struct sw_tui_app sw_tui_app;

/* Creates the application over `model` (ownership taken, also on failure). Strings in cfg are
 * borrowed for the application's lifetime. */
sw_status sw_tui_app_new(sw_model *model, const sw_tui_app_config *cfg, sw_tui_app **out);
void sw_tui_app_free(sw_tui_app *app);

/* Uses these datasets instead of loading (borrowed; for tests and embedding). */
void sw_tui_app_set_data(sw_tui_app *app, const sw_dataset *train, const sw_dataset *test);

/* Runs until the user quits or a signal arrives. Returns 0, or the signal number that ended it.
 * Failures of actions (a missing file, a bad log) are shown in the log pane, not returned. */
int sw_tui_app_run(sw_tui_app *app, const sw_tui_io *io);

/* The state (for messages before the run, and for tests). */
sw_tui_state *sw_tui_app_state(sw_tui_app *app);
/* The model (for tests). */
sw_model *sw_tui_app_model(sw_tui_app *app);

#endif
