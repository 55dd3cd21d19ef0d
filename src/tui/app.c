/* app.c - the workbench's main loop, its poll hook, and the actions behind the keys. */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "../compress/quantization/calibration.h"
#include "../io/model_file.h"
#include "../lua/sw_lua.h"
#include "../nn/latency.h"
#include "../tensor/clock.h"
#include "../train/evaluator.h"
#include "attach.h"
#include "recipe.h"
#include "sensitivity.h"
#include "view.h"

struct sw_tui_app {
    sw_model *model; /* owned */
    sw_tui_app_config cfg;
    sw_tui_state st;
    sw_tui_canvas canvas;
    const sw_tui_io *io;
    double last_draw;
    double draw_cost; /* seconds the last frame took to render and present */

    /* Data: loaded on the first training run (browsing needs none). */
    const sw_dataset *train, *test;   /* in use */
    sw_dataset *own_train, *own_test; /* owned when this application loaded them */
    bool injected;                    /* set by sw_tui_app_set_data */
    int loaded_subset, loaded_test_subset;

    sw_evaluator ev; /* one for the session: compressors borrow it */
    sw_jsonl_log record;
    bool recording;

    sw_tui_chain chain;

    /* While a recipe runs: its print output (file descriptors 1 and 2 point here), and how
     * much of it the log pane has shown. */
    FILE *capture;
    long captured;
    char partial[SW_TUI_LOG_LINE_MAX]; /* a line without its newline yet */

    bool quit;  /* leave the main loop (after any work returns) */
    bool stop;  /* stop the running work at the next step boundary */
    int signal; /* the signal that ended the session */
};


static void log_error(sw_tui_app *app, const char *context) {
    const char *msg = sw_error_message();
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_ERROR, "%s: %s", context, *msg ? msg : "failed");
}

/* ---- set-up ------------------------------------------------------------------------------- */

static bool poll_hook(void *ctx);
static void eval_progress(void *ctx, int done, int total);
static void drain_capture(sw_tui_app *app, bool flush_partial);

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
    if (cfg->eval_batch > 0) tc.eval_batch_size = cfg->eval_batch;
    sw_evaluator_init(&app->ev, NULL, NULL, &tc);
    app->ev.poll = poll_hook;
    app->ev.poll_ctx = app;
    app->ev.eval_progress = eval_progress;
    app->ev.eval_progress_ctx = app;
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
    double t0 = sw_clock_seconds();
    sw_tui_render(&app->st, &app->canvas);
    app->io->present(app->io->ctx, &app->canvas);
    app->last_draw = sw_clock_seconds();
    app->draw_cost = app->last_draw - t0;
}

/* The least time between two metric-driven frames during work: SW_TUI_FRAME_SECONDS, longer
 * when frames are slow enough to cost more than SW_TUI_DRAW_SHARE of the time. */
static double frame_interval(const sw_tui_app *app) {
    double budget = app->draw_cost / SW_TUI_DRAW_SHARE;
    return budget > SW_TUI_FRAME_SECONDS ? budget : SW_TUI_FRAME_SECONDS;
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

/* Parameters, FLOPs, latency at batch 1 and 64 (medians of a few timed forwards) and, when a
 * test set is loaded, accuracy: one column of the before/after view. */
static void measure(sw_tui_app *app, sw_model *m, int col, bool with_accuracy) {
    sw_tui_compare *cmp = &app->st.compare;
    cmp->params[col] = (double)sw_model_param_count(m);
    cmp->flops[col] = sw_model_flops(m);
    cmp->lat1[col] = cmp->lat64[col] = -1;
    cmp->acc[col] = -1;
    if (sw_model_latency(m, 1, 9, app->cfg.seed, &cmp->lat1[col]) != SW_OK ||
        sw_model_latency(m, 64, 5, app->cfg.seed, &cmp->lat64[col]) != SW_OK)
        log_error(app, "timing");
    draw(app);
    double loss;
    if (with_accuracy && sw_evaluator_evaluate(&app->ev, m, &cmp->acc[col], &loss) != SW_OK) {
        cmp->acc[col] = -1;
        log_error(app, "evaluate");
    }
    cmp->test_n = with_accuracy ? app->test->n : 0;
}

/* The sped-up export: speedup of the chain's masks, written atomically, then the before/after
 * view of `dense` (the masks baked into dense weights) against it. A failed self-check refuses
 * the file and logs its numbers. */
static void export_speedup(sw_tui_app *app, const char *path, sw_model *dense) {
    sw_model *fast = NULL;
    sw_speedup_check chk;
    bool checked = false;
    sw_status s = sw_tui_chain_speedup(&app->chain, &fast, &chk, &checked);
    if (checked)
        sw_tui_log_add(&app->st.log, chk.within_tolerance ? SW_TUI_LOG_INFO : SW_TUI_LOG_ERROR,
                       "speedup self-check on %d samples: max |sped-up - masked| %.3g, max "
                       "|masked| %.3g, relative %.3g (tolerance %.3g): %s",
                       chk.batch, (double)chk.max_abs_diff, (double)chk.max_abs_ref,
                       (double)chk.rel_diff, (double)chk.tolerance,
                       chk.within_tolerance ? "ok" : "FAILED");
    if (s != SW_OK) {
        log_error(app, "speedup (nothing written)");
        return;
    }
    char rel[32];
    snprintf(rel, sizeof rel, "%.9g", (double)chk.rel_diff);
    const char *meta[] = {"source", "shrinkwrap workbench", "speedup_rel_diff", rel, NULL};
    if (sw_model_save(fast, path, meta) != SW_OK) {
        log_error(app, "export sped-up model");
        sw_model_free(fast);
        return;
    }
    char a[32], b[32];
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "saved %s (%s -> %s parameters)", path,
                   sw_tui_human((double)sw_model_param_count(dense), a, sizeof a),
                   sw_tui_human((double)sw_model_param_count(fast), b, sizeof b));
    /* The measurements take a few seconds on a large test set: show that they run. */
    sw_tui_compare *cmp = &app->st.compare;
    memset(cmp, 0, sizeof *cmp);
    const char *base = strrchr(path, '/');
    snprintf(cmp->path, sizeof cmp->path, "%s", base ? base + 1 : path);
    cmp->rel_diff = chk.rel_diff;
    /* Accuracy needs the test subset: load the data if nothing has yet. */
    bool with_accuracy =
        ensure_data(app, app->st.defaults.subset, app->st.defaults.test_subset) == SW_OK &&
        app->test && check_fits(app) == SW_OK;
    if (!with_accuracy) log_error(app, "before/after accuracy");
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "measuring before / after...");
    app->st.work = SW_TUI_WORK_RUNNING;
    draw(app);
    measure(app, dense, 0, with_accuracy);
    measure(app, fast, 1, with_accuracy);
    app->st.work = SW_TUI_WORK_IDLE;
    app->st.mode = SW_TUI_MODE_COMPARE;
    app->st.dirty = true;
    sw_model_free(fast);
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
    if (s != SW_OK) {
        sw_model_free(copy);
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
    const char *cal = sw_tui_form_text(f, "calibration");
    sw_compressor *q = sw_tui_chain_quantizer(&app->chain);
    if (q && cal[0]) {
        if (sw_quant_calibration_save(q, cal) != SW_OK)
            log_error(app, "export calibration");
        else
            sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "saved calibration %s (%s)", cal,
                           q->ops->name);
    }
    const char *fast = sw_tui_form_text(f, "speedup");
    if (copy && fast[0]) export_speedup(app, fast, copy);
    sw_model_free(copy);
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
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "%d selected module%s left out (not %s)",
                       skipped, skipped == 1 ? "" : "s", it->algo->accepts_what);
    const sw_warnings *w = sw_compressor_warnings(it->c);
    for (int i = 0; i < sw_warnings_count(w); i++)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN, "%s", sw_warnings_get(w, i));
    sw_tui_tree_clear_marks(&app->st.tree);
    sw_tui_chain_publish(&app->chain, &app->st);
    if (app->st.chain_needs_limits)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO,
                       "c compresses (this chain trains: epochs or steps, as in the training "
                       "form)");
    else
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO,
                       "c compresses (one-shot: leave epochs and steps empty)");
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

/* The sensitivity scan (S): every selected Conv2d/Linear module pruned alone by L1Norm at
 * each ratio on a scratch copy of the raw model (the chain, if any, is left out), accuracy on
 * the test subset. The table fills cell by cell; between cells the poll hook redraws and takes
 * keys, and s stops the scan after the cell in progress. */
static void do_sensitivity(sw_tui_app *app) {
    sw_tui_sensitivity *sn = &app->st.sens;
    int cap = app->model->n_nodes > 0 ? app->model->n_nodes : 1;
    int *nodes = malloc(sizeof(int) * (size_t)cap);
    if (!nodes) {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_ERROR, "sensitivity: out of memory");
        return;
    }
    int n = sw_tui_tree_selection(&app->st.tree, nodes, cap);
    memset(sn, 0, sizeof *sn);
    for (int i = 0; i < n && sn->n < SW_TUI_SENS_MAX; i++) {
        const sw_node *node = &app->model->nodes[nodes[i]];
        if (node->layer->kind != SW_LAYER_CONV2D && node->layer->kind != SW_LAYER_LINEAR) continue;
        sn->nodes[sn->n] = nodes[i];
        snprintf(sn->names[sn->n], sizeof sn->names[sn->n], "%s", node->name);
        sn->n++;
    }
    free(nodes);
    if (sn->n == 0) {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN,
                       "sensitivity: mark Conv2d or Linear modules with space first (or put "
                       "the cursor on one)");
        return;
    }
    if (ensure_data(app, app->st.defaults.subset, app->st.defaults.test_subset) != SW_OK) {
        log_error(app, "loading data");
        return;
    }
    if (!app->test || check_fits(app) != SW_OK) {
        if (app->test) log_error(app, "sensitivity");
        return;
    }
    sw_model *scratch = NULL;
    if (sw_model_clone(app->model, &scratch) != SW_OK) {
        log_error(app, "sensitivity");
        return;
    }
    for (int j = 0; j < SW_TUI_SENS_RATIOS; j++) sn->ratios[j] = sw_tui_sens_ratios[j];
    for (int i = 0; i < sn->n; i++)
        for (int j = 0; j < SW_TUI_SENS_RATIOS; j++) sn->acc[i][j] = NAN;
    sn->baseline = NAN;
    sn->total = sn->n * SW_TUI_SENS_RATIOS;
    sn->test_n = app->test->n;
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO,
                   "sensitivity: %d module%s x %d ratios on %d test images (s stops)", sn->n,
                   sn->n == 1 ? "" : "s", SW_TUI_SENS_RATIOS, sn->test_n);
    app->stop = false;
    app->st.mode = SW_TUI_MODE_SENS;
    app->st.work = SW_TUI_WORK_RUNNING;
    app->st.dirty = true;
    draw(app);
    sw_status s = sw_evaluator_evaluate(&app->ev, scratch, &sn->baseline, NULL);
    int worst_i = -1, worst_j = -1;
    for (int i = 0; i < sn->n && s == SW_OK && !app->stop; i++) {
        for (int j = 0; j < SW_TUI_SENS_RATIOS && s == SW_OK && !app->stop; j++) {
            s = sw_tui_sens_cell(scratch, sn->names[i], sn->ratios[j], &app->ev, &sn->acc[i][j]);
            if (s != SW_OK) break;
            sn->done++;
            if (j == 1 && (worst_i < 0 || sn->acc[i][j] < sn->acc[worst_i][worst_j])) {
                worst_i = i;
                worst_j = j;
            }
            app->st.dirty = true;
            poll_hook(app); /* keys (s) and a redraw between cells */
            /* A quit question answered no leaves the table closed: show it again. */
            if (app->st.mode == SW_TUI_MODE_NORMAL) app->st.mode = SW_TUI_MODE_SENS;
        }
    }
    sw_model_free(scratch);
    sn->stopped = app->stop && sn->done < sn->total;
    app->st.work = SW_TUI_WORK_IDLE;
    app->st.dirty = true;
    if (s != SW_OK) {
        log_error(app, "sensitivity");
    } else if (sn->stopped) {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN, "sensitivity stopped after %d of %d cells",
                       sn->done, sn->total);
    } else {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK,
                       "sensitivity done: %d cells; at 50%% %s costs most (%.2f points)", sn->done,
                       sn->names[worst_i], 100 * (sn->baseline - sn->acc[worst_i][worst_j]));
    }
    if (app->quit) app->st.mode = SW_TUI_MODE_NORMAL;
}

/* w: the chain as a Lua recipe, and beside it the weights it starts from
 * ("<recipe without .lua>.model.safetensors"). */
static void do_recipe(sw_tui_app *app, const char *path) {
    if (app->chain.n == 0) {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN,
                       "recipe: attach a compressor first (a); the recipe rebuilds the chain");
        return;
    }
    char model_path[SW_TUI_FIELD_TEXT_MAX + 32];
    size_t len = strlen(path);
    int stem = len > 4 && strcmp(path + len - 4, ".lua") == 0 ? (int)len - 4 : (int)len;
    snprintf(model_path, sizeof model_path, "%.*s.model.safetensors", stem, path);
    const char *base = strrchr(model_path, '/');
    const char *meta[] = {"source", "shrinkwrap workbench (recipe start)", NULL};
    if (sw_model_save(app->chain.origin, model_path, meta) != SW_OK) {
        log_error(app, "recipe");
        return;
    }
    /* The training settings compress would use now. */
    sw_train_config tc = app->ev.cfg;
    tc.optim.lr = (float)app->st.defaults.lr;
    tc.batch_size = app->st.defaults.batch;
    long steps = -1;
    int epochs = -1;
    if (app->chain.compressed) {
        steps = app->chain.last_steps;
        epochs = app->chain.last_epochs;
    } else if (app->st.chain_needs_limits) {
        steps = app->st.defaults.steps > 0 ? app->st.defaults.steps : -1;
        epochs = app->st.defaults.epochs > 0 ? app->st.defaults.epochs : -1;
    }
    char cal[SW_TUI_FIELD_TEXT_MAX + 32];
    if (app->st.defaults.calibration_path[0])
        snprintf(cal, sizeof cal, "%s", app->st.defaults.calibration_path);
    else
        snprintf(cal, sizeof cal, "%s.calibration.json",
                 app->model->arch ? app->model->arch : "model");
    sw_tui_recipe_info info = {.model_file = base ? base + 1 : model_path,
                               .dataset = app->cfg.dataset,
                               .data_dir = app->cfg.data_dir,
                               .subset = app->st.defaults.subset,
                               .test_subset = app->st.defaults.test_subset,
                               .train = &tc,
                               .steps = steps,
                               .epochs = epochs,
                               .masks_out = app->st.defaults.masks_path,
                               .calibration_out = cal};
    if (sw_tui_recipe_write(&app->chain, &info, path) != SW_OK) {
        log_error(app, "recipe");
        return;
    }
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK,
                   "saved recipe %s (weights in %s): shrinkwrap run %s", path, model_path, path);
    if (app->injected && app->st.chain_needs_limits)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN,
                       "the recipe loads %s; this session's data was given by the host",
                       app->cfg.dataset);
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
        case SW_TUI_ACT_SENSITIVITY:
            do_sensitivity(app);
            break;
        case SW_TUI_ACT_RECIPE:
            do_recipe(app, sw_tui_form_text(act.form, "path"));
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
    drain_capture(app, false);
    /* Drain every key that arrived during the step. */
    bool keyed = false;
    for (int k = 0; k < 64 && !app->quit; k++) {
        int key = app->io->read_key(app->io->ctx, 0);
        if (key == SW_KEY_NONE) break;
        handle_key(app, key);
        keyed = true;
        /* Keys after a pause belong to the paused screen (drawn first, below). */
        if (app->st.work == SW_TUI_WORK_PAUSED) break;
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
    double interval = keyed ? SW_TUI_KEY_FRAME_SECONDS : frame_interval(app);
    if (app->st.dirty && sw_clock_seconds() - app->last_draw >= interval) draw(app);
    return app->stop || app->quit;
}

/* Between evaluation batches: the header shows the pass's progress and the screen redraws at
 * the usual rate. Keys wait until the pass is over (an evaluation has no step boundary to stop
 * at, and actions must not start in the middle of one); a signal is noted here and honoured
 * when it ends. */
static void eval_progress(void *ctx, int done, int total) {
    sw_tui_app *app = ctx;
    if (!app->io) return;
    check_signal(app);
    app->st.eval_done = done;
    app->st.eval_total = done < total ? total : 0;
    app->st.dirty = true;
    /* The first batch of a pass always shows that the pass runs; later ones at the frame rate. */
    bool first = done <= app->ev.cfg.eval_batch_size;
    if (first || sw_clock_seconds() - app->last_draw >= frame_interval(app)) draw(app);
}

/* ---- recipes (--recipe) ------------------------------------------------------------------- */

/* Moves what the recipe printed since the last call into the log pane, line by line. */
static void drain_capture(sw_tui_app *app, bool flush_partial) {
    if (!app->capture) return;
    fflush(stdout);
    fflush(stderr);
    char buf[4096];
    ssize_t n;
    while ((n = pread(fileno(app->capture), buf, sizeof buf, app->captured)) > 0) {
        app->captured += n;
        for (ssize_t i = 0; i < n; i++) {
            size_t len = strlen(app->partial);
            if (buf[i] == '\n' || len + 1 >= sizeof app->partial) {
                sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "%s", app->partial);
                app->partial[0] = '\0';
                if (buf[i] == '\n') continue;
                len = 0;
            }
            if (buf[i] == '\r') continue;
            app->partial[len] = buf[i];
            app->partial[len + 1] = '\0';
        }
        app->st.dirty = true;
    }
    if (flush_partial && app->partial[0]) {
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "%s", app->partial);
        app->partial[0] = '\0';
    }
}

/* Runs a Lua recipe inside the workbench: its evaluators report to the charts (and to --record),
 * the poll hook keeps the screen live and s stops it (the recipe then fails with
 * "interrupted"), and what it prints goes to the log pane. The workbench's own model and chain
 * are not the recipe's: a recipe builds its own. */
static void do_run_recipe(sw_tui_app *app, const char *path) {
    sw_lua_options opt = sw_lua_options_default();
    opt.poll = poll_hook;
    opt.poll_ctx = app;
    sw_metric_bus_add(&opt.listeners, sw_tui_state_on_metric, &app->st);
    if (app->recording) sw_metric_bus_add(&opt.listeners, sw_jsonl_log_listener, &app->record);
    sw_lua *lua = NULL;
    if (sw_lua_new(&opt, &lua) != SW_OK || sw_lua_set_args(lua, path, 0, NULL) != SW_OK) {
        log_error(app, "recipe");
        sw_lua_free(lua);
        return;
    }
    sw_tui_log_add(&app->st.log, SW_TUI_LOG_INFO, "running recipe %s (s stops it)", path);
    /* The screen is drawn through curses's own copy of the terminal (term.c), so descriptors 1
     * and 2 can point at a scratch file while the recipe runs. */
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
    app->capture = tmpfile();
    app->captured = 0;
    app->partial[0] = '\0';
    if (app->capture && saved_out >= 0 && saved_err >= 0) {
        dup2(fileno(app->capture), STDOUT_FILENO);
        dup2(fileno(app->capture), STDERR_FILENO);
    }
    app->stop = false;
    app->st.work = SW_TUI_WORK_RUNNING;
    app->st.dirty = true;
    draw(app);
    sw_status s = sw_lua_run_file(lua, path);
    drain_capture(app, true);
    fflush(stdout);
    fflush(stderr);
    if (saved_out >= 0) dup2(saved_out, STDOUT_FILENO);
    if (saved_err >= 0) dup2(saved_err, STDERR_FILENO);
    if (saved_out >= 0) close(saved_out);
    if (saved_err >= 0) close(saved_err);
    if (app->capture) fclose(app->capture);
    app->capture = NULL;
    app->st.work = SW_TUI_WORK_IDLE;
    if (s == SW_OK)
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_OK, "recipe %s finished", path);
    else if (sw_lua_interrupted(lua))
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_WARN, "recipe %s stopped", path);
    else
        sw_tui_log_add(&app->st.log, SW_TUI_LOG_ERROR, "recipe: %s", sw_lua_last_error(lua));
    sw_lua_free(lua);
    app->st.dirty = true;
}

/* ---- the main loop ------------------------------------------------------------------------ */

int sw_tui_app_run(sw_tui_app *app, const sw_tui_io *io) {
    app->io = io;
    app->quit = false;
    if (app->cfg.replay_log) do_open_log(app, app->cfg.replay_log);
    if (app->cfg.recipe && !check_signal(app)) do_run_recipe(app, app->cfg.recipe);
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
