/* app.c - the workbench's main loop, its poll hook, and the actions behind the keys. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../io/model_file.h"
#include "../train/evaluator.h"
#include "attach.h"
#include "view.h"

struct sw_tui_app {
    sw_model *model; /* owned */
    sw_tui_app_config cfg;
    sw_tui_state st;
    sw_tui_canvas canvas;
    const sw_tui_io *io;
    double last_draw;

    /* Data: loaded on the first training run (browsing needs none). */
    const sw_dataset *train, *test;   /* in use */
    sw_dataset *own_train, *own_test; /* owned when this application loaded them */
    bool injected;                    /* set by sw_tui_app_set_data */
    int loaded_subset, loaded_test_subset;

    sw_evaluator ev; /* one for the session: compressors borrow it */
    sw_jsonl_log record;
    bool recording;

    sw_tui_chain chain;

    bool quit;  /* leave the main loop (after any work returns) */
    bool stop;  /* stop the running work at the next step boundary */
    int signal; /* the signal that ended the session */
};

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void log_error(sw_tui_app *app, const char *context) {
    const char *msg = sw_error_message();
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_ERROR, "%s: %s", context, *msg ? msg : "failed");
}

/* ---- set-up ------------------------------------------------------------------------------- */

static bool poll_hook(void *ctx);

sw_status sw_tui_app_new(sw_model *model, const sw_tui_app_config *cfg, sw_tui_app **out) {
    sw_tui_app *app = calloc(1, sizeof *app);
    if (!app) {
        sw_model_free(model);
        return SW_FAIL(SW_ERR_NOMEM, "workbench: no memory");
    }
    app->model = model;
    app->cfg = *cfg;
    if (!app->cfg.dataset) app->cfg.dataset = "fashion-mnist";
    sw_tui_canvas_init(&app->canvas);
    sw_status s = sw_tui_state_init(&app->st, model, cfg->utf8);
    if (s != SW_OK) {
        sw_model_free(model);
        free(app);
        return s;
    }
    sw_train_config tc = sw_train_config_default();
    tc.seed = cfg->seed;
    sw_evaluator_init(&app->ev, NULL, NULL, &tc);
    app->ev.poll = poll_hook;
    app->ev.poll_ctx = app;
    sw_metric_bus_add(&app->ev.bus, sw_tui_state_on_metric, &app->st);
    sw_tui_chain_init(&app->chain, model);
    sw_tui_algos_publish(&app->st);
    app->st.inspect_extra = sw_tui_chain_inspect;
    app->st.inspect_ctx = &app->chain;
    app->st.defaults.subset = cfg->subset;
    app->st.defaults.test_subset = cfg->test_subset;
    if (cfg->replay_log)
        snprintf(app->st.defaults.log_path, sizeof app->st.defaults.log_path, "%s",
                 cfg->replay_log);
    if (cfg->record_log) {
        s = sw_jsonl_log_open(&app->record, cfg->record_log);
        if (s != SW_OK) {
            sw_tui_app_free(app);
            return s;
        }
        app->recording = true;
        sw_metric_bus_add(&app->ev.bus, sw_jsonl_log_listener, &app->record);
    }
    *out = app;
    return SW_OK;
}

void sw_tui_app_free(sw_tui_app *app) {
    if (!app) return;
    sw_tui_chain_deinit(&app->chain);
    sw_evaluator_deinit(&app->ev);
    if (app->recording) sw_jsonl_log_close(&app->record);
    sw_dataset_free(app->own_train);
    sw_dataset_free(app->own_test);
    sw_tui_state_deinit(&app->st);
    sw_tui_canvas_deinit(&app->canvas);
    sw_model_free(app->model);
    free(app);
}

sw_tui_state *sw_tui_app_state(sw_tui_app *app) {
    return &app->st;
}
sw_model *sw_tui_app_model(sw_tui_app *app) {
    return app->model;
}

static void describe_data(sw_tui_app *app) {
    if (app->train)
        snprintf(app->st.data_desc, sizeof app->st.data_desc, "%s %d train / %d test",
                 app->train->name, app->train->n, app->test ? app->test->n : 0);
    else
        snprintf(app->st.data_desc, sizeof app->st.data_desc, "data not loaded");
    app->st.dirty = true;
}

void sw_tui_app_set_data(sw_tui_app *app, const sw_dataset *train, const sw_dataset *test) {
    app->train = train;
    app->test = test;
    app->injected = true;
    app->ev.train_set = train;
    app->ev.test_set = test;
    describe_data(app);
}

/* ---- drawing ------------------------------------------------------------------------------ */

static void draw(sw_tui_app *app) {
    int w = 0, h = 0;
    app->io->size(app->io->ctx, &w, &h);
    if (w != app->canvas.w || h != app->canvas.h) {
        if (sw_tui_canvas_resize(&app->canvas, w, h) != SW_OK) return;
    }
    sw_tui_render(&app->st, &app->canvas);
    app->io->present(app->io->ctx, &app->canvas);
    app->last_draw = now_seconds();
}

/* ---- actions ------------------------------------------------------------------------------ */

/* Loads (or reloads, when the subsets changed) the training and test splits. */
static sw_status ensure_data(sw_tui_app *app, int subset, int test_subset) {
    if (app->injected) return SW_OK;
    if (app->train && subset == app->loaded_subset && test_subset == app->loaded_test_subset)
        return SW_OK;
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "loading %s (%s)...", app->cfg.dataset,
                   app->cfg.data_dir ? app->cfg.data_dir : "default folder");
    draw(app);
    sw_dataset_kind kind;
    SW_TRY(sw_dataset_kind_from_name(app->cfg.dataset, &kind));
    sw_dataset *train = NULL, *test = NULL;
    SW_TRY(sw_dataset_load(kind, app->cfg.data_dir, SW_SPLIT_TRAIN, subset, &train));
    sw_status s = sw_dataset_load(kind, app->cfg.data_dir, SW_SPLIT_TEST, test_subset, &test);
    if (s != SW_OK) {
        sw_dataset_free(train);
        return s;
    }
    sw_dataset_free(app->own_train);
    sw_dataset_free(app->own_test);
    app->own_train = train;
    app->own_test = test;
    app->train = train;
    app->test = test;
    app->ev.train_set = train;
    app->ev.test_set = test;
    app->loaded_subset = subset;
    app->loaded_test_subset = test_subset;
    describe_data(app);
    return SW_OK;
}

/* The data's images must be the model's inputs, and its classes the model's outputs. */
static sw_status check_fits(const sw_tui_app *app) {
    const sw_model *m = app->model;
    const sw_dataset *ds = app->train;
    sw_shape have = sw_shape_3d(ds->channels, ds->height, ds->width);
    sw_shape out = sw_model_output_shape(m);
    if (!sw_shape_equal(&m->input_shape, &have)) {
        char a[64], b[64];
        return SW_FAIL(SW_ERR_SHAPE, "the model takes inputs of shape %s but %s images are %s",
                       sw_shape_format(&m->input_shape, a, sizeof a), ds->name,
                       sw_shape_format(&have, b, sizeof b));
    }
    if (out.ndim != 1 || out.dims[0] != ds->n_classes)
        return SW_FAIL(SW_ERR_SHAPE, "the model has %d outputs but %s has %d classes",
                       out.ndim == 1 ? out.dims[0] : -1, ds->name, ds->n_classes);
    return SW_OK;
}

/* Runs long work (training or compressing) with the poll hook live. */
typedef sw_status (*work_fn)(sw_tui_app *app, long steps, int epochs);

static sw_status train_work(sw_tui_app *app, long steps, int epochs) {
    return sw_evaluator_train(&app->ev, app->model, steps, epochs);
}

static sw_status compress_work(sw_tui_app *app, long steps, int epochs) {
    return sw_tui_chain_compress(&app->chain, steps, epochs);
}

static bool check_signal(sw_tui_app *app);

static void run_work(sw_tui_app *app, work_fn fn, const char *what, long steps, int epochs) {
    if (check_signal(app)) return; /* a signal during the data loading: leave instead */
    app->stop = false;
    app->st.work = SW_TUI_WORK_RUNNING;
    app->st.dirty = true;
    draw(app);
    sw_status s = fn(app, steps, epochs);
    app->st.work = SW_TUI_WORK_IDLE;
    if (s == SW_ERR_INTERRUPTED)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN,
                       "%s stopped at a step boundary; the model "
                       "is consistent",
                       what);
    else if (s != SW_OK)
        log_error(app, what);
    sw_tui_chain_publish(&app->chain, &app->st);
    sw_tui_state_model_changed(&app->st);
}

static void do_train(sw_tui_app *app, const sw_tui_form *f) {
    long steps = sw_tui_form_int(f, "steps", -1);
    int epochs = (int)sw_tui_form_int(f, "epochs", -1);
    if (steps == 0) steps = -1;
    if (epochs == 0) epochs = -1;
    if (ensure_data(app, (int)sw_tui_form_int(f, "subset", 0),
                    (int)sw_tui_form_int(f, "test_subset", 0)) != SW_OK) {
        log_error(app, "loading data");
        return;
    }
    if (check_fits(app) != SW_OK) {
        log_error(app, "train");
        return;
    }
    app->ev.cfg.optim.lr = (float)sw_tui_form_float(f, "lr", 0.05);
    app->ev.cfg.batch_size = (int)sw_tui_form_int(f, "batch", 128);
    app->ev.cfg.phase = "train";
    run_work(app, train_work, "training", steps, epochs);
}

static void do_compress(sw_tui_app *app, const sw_tui_form *f) {
    long steps = sw_tui_form_int(f, "steps", -1);
    int epochs = (int)sw_tui_form_int(f, "epochs", -1);
    if (steps == 0) steps = -1;
    if (epochs == 0) epochs = -1;
    if (steps > 0 || epochs > 0) {
        /* Training during compression uses the training form's data settings. */
        if (ensure_data(app, app->st.defaults.subset, app->st.defaults.test_subset) != SW_OK) {
            log_error(app, "loading data");
            return;
        }
        if (check_fits(app) != SW_OK) {
            log_error(app, "compress");
            return;
        }
        app->ev.cfg.optim.lr = (float)app->st.defaults.lr;
        app->ev.cfg.batch_size = app->st.defaults.batch;
    }
    app->ev.cfg.phase = "compress";
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "compressing with %d compressor%s...",
                   app->chain.n, app->chain.n == 1 ? "" : "s");
    run_work(app, compress_work, "compress", steps, epochs);
    app->ev.cfg.phase = "train";
    if (app->st.history.status != SW_TUI_RUN_FAILED)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "masks are in effect; e exports them");
}

static void do_open_log(sw_tui_app *app, const char *path) {
    sw_tui_history_clear(&app->st.history);
    app->st.replay[0] = '\0';
    long before = app->st.history.events;
    sw_status s = sw_jsonl_log_read(path, sw_tui_state_on_metric, &app->st);
    const char *base = strrchr(path, '/');
    snprintf(app->st.replay, sizeof app->st.replay, "%s", base ? base + 1 : path);
    sw_tui_history *h = &app->st.history;
    if (s != SW_OK) {
        log_error(app, "open log");
        if (h->events > before)
            sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN,
                           "showing the %ld events before the "
                           "bad line",
                           h->events - before);
    } else {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "opened %s: %ld events, %ld run%s", path,
                       h->events, h->runs, h->runs == 1 ? "" : "s");
    }
    /* A log that ends mid-run (a killed process) has no END: say so instead of an ETA. */
    if (h->status == SW_TUI_RUN_ACTIVE) {
        h->status = SW_TUI_RUN_FAILED;
        snprintf(h->end_reason, sizeof h->end_reason, "log ends here");
    }
    app->st.dirty = true;
}

static void do_export(sw_tui_app *app, const sw_tui_form *f) {
    const char *path = sw_tui_form_text(f, "path");
    char steps[32];
    snprintf(steps, sizeof steps, "%ld", (long)app->st.history.x_offset + app->st.history.step);
    const char *meta[] = {"source", "shrinkwrap workbench", "trained_steps", steps, NULL};
    sw_model *copy = NULL;
    sw_status s = SW_OK;
    int dropped = 0;
    /* With compressors attached, the file holds what the wrapped model computes: the masks
     * multiplied into a copy of the weights. */
    if (app->chain.n > 0) {
        s = sw_model_clone(app->model, &copy);
        if (s == SW_OK) s = sw_tui_chain_bake(&app->chain, copy, &dropped);
    }
    if (s == SW_OK) s = sw_model_save(copy ? copy : app->model, path, meta);
    sw_model_free(copy);
    if (s != SW_OK) {
        log_error(app, "export");
        return;
    }
    char p[32];
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "saved %s (%s parameters%s)", path,
                   sw_tui_human((double)sw_model_param_count(app->model), p, sizeof p),
                   app->chain.n ? ", masks applied" : "");
    if (dropped)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN,
                       "%d mask%s could not be baked into the "
                       "weights: export the masks file too",
                       dropped, dropped == 1 ? "" : "s");
    const char *masks = sw_tui_form_text(f, "masks");
    if (app->chain.n > 0 && masks[0]) {
        if (sw_tui_chain_export_masks(&app->chain, masks) != SW_OK)
            log_error(app, "export masks");
        else
            sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "saved masks %s", masks);
    }
}

static void do_attach(sw_tui_app *app, int algo_index, const sw_tui_form *f) {
    int n_algos;
    const sw_tui_algo *algos = sw_tui_algos(&n_algos);
    if (algo_index < 0 || algo_index >= n_algos) return;
    int cap = app->model->n_nodes > 0 ? app->model->n_nodes : 1;
    int *nodes = malloc(sizeof(int) * (size_t)cap);
    if (!nodes) {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_ERROR, "attach: out of memory");
        return;
    }
    int n = sw_tui_tree_selection(&app->st.tree, nodes, cap);
    int skipped = 0;
    sw_status s =
        sw_tui_chain_attach(&app->chain, &algos[algo_index], f, nodes, n, &app->ev, &skipped);
    free(nodes);
    if (s != SW_OK) {
        log_error(app, "attach");
        return;
    }
    const sw_tui_chain_item *it = &app->chain.items[app->chain.n - 1];
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "attached %s%s: %s", it->c->ops->name,
                   app->chain.n > 1 ? " (from_compressor)" : "", it->config);
    if (skipped)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO,
                       "%d selected module%s left out (not Conv2d "
                       "or Linear)",
                       skipped, skipped == 1 ? "" : "s");
    const sw_warnings *w = sw_compressor_warnings(it->c);
    for (int i = 0; i < sw_warnings_count(w); i++)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN, "%s", sw_warnings_get(w, i));
    sw_tui_tree_clear_marks(&app->st.tree);
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO,
                   "c compresses (one-shot: leave epochs and "
                   "steps empty)");
    sw_tui_chain_publish(&app->chain, &app->st);
    sw_tui_state_model_changed(&app->st);
}

static void do_detach(sw_tui_app *app) {
    const char *name = app->chain.n ? app->chain.items[app->chain.n - 1].c->ops->name : "";
    char keep[64];
    snprintf(keep, sizeof keep, "%s", name);
    if (sw_tui_chain_detach(&app->chain) != SW_OK) {
        log_error(app, "detach");
        return;
    }
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "detached %s: its masks no longer apply", keep);
    sw_tui_chain_publish(&app->chain, &app->st);
    sw_tui_state_model_changed(&app->st);
}

static void handle_key(sw_tui_app *app, int key) {
    sw_tui_action act;
    int flags = sw_tui_state_key(&app->st, key, &act);
    if (flags & SW_TUI_ACTION) {
        switch (act.kind) {
        case SW_TUI_ACT_TRAIN:
            do_train(app, act.form);
            break;
        case SW_TUI_ACT_COMPRESS:
            do_compress(app, act.form);
            break;
        case SW_TUI_ACT_STOP:
            app->stop = true;
            break;
        case SW_TUI_ACT_OPEN_LOG:
            do_open_log(app, sw_tui_form_text(act.form, "path"));
            break;
        case SW_TUI_ACT_EXPORT:
            do_export(app, act.form);
            break;
        case SW_TUI_ACT_ATTACH:
            do_attach(app, act.algo, act.form);
            break;
        case SW_TUI_ACT_DETACH:
            do_detach(app);
            break;
        default:
            break;
        }
    }
    if (flags & SW_TUI_QUIT) {
        app->quit = true;
        app->stop = true;
    }
}

/* ---- the poll hook: the UI during long work ----------------------------------------------- */

static bool check_signal(sw_tui_app *app) {
    int sig = app->io->pending_signal(app->io->ctx);
    if (sig && !app->signal) {
        app->signal = sig;
        app->quit = true;
        app->stop = true;
    }
    return sig != 0;
}

static bool poll_hook(void *ctx) {
    sw_tui_app *app = ctx;
    if (!app->io) return false;
    check_signal(app);
    /* Drain every key that arrived during the step. */
    for (int k = 0; k < 64 && !app->quit; k++) {
        int key = app->io->read_key(app->io->ctx, 0);
        if (key == SW_KEY_NONE) break;
        handle_key(app, key);
    }
    if (app->st.work == SW_TUI_WORK_PAUSED && !app->stop) {
        /* Paused at a step boundary: the weights are consistent, show their state. */
        sw_tui_state_model_changed(&app->st);
        while (app->st.work == SW_TUI_WORK_PAUSED && !app->stop && !check_signal(app)) {
            if (app->st.dirty) draw(app);
            int key = app->io->read_key(app->io->ctx, 250);
            if (key != SW_KEY_NONE) handle_key(app, key);
        }
    }
    if (app->st.dirty && now_seconds() - app->last_draw >= SW_TUI_FRAME_SECONDS) draw(app);
    return app->stop || app->quit;
}

/* ---- the main loop ------------------------------------------------------------------------ */

int sw_tui_app_run(sw_tui_app *app, const sw_tui_io *io) {
    app->io = io;
    app->quit = false;
    if (app->cfg.replay_log) do_open_log(app, app->cfg.replay_log);
    app->st.dirty = true;
    while (!app->quit) {
        if (check_signal(app)) break;
        if (app->st.dirty) draw(app);
        int key = io->read_key(io->ctx, 250);
        if (key == SW_KEY_NONE) continue;
        handle_key(app, key);
    }
    if (app->recording && app->record.failed)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_ERROR, "could not write every line of %s",
                       app->cfg.record_log);
    app->io = NULL;
    return app->signal;
}
