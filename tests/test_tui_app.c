/* test_tui_app.c - the whole workbench driven by scripted keys through a fake terminal:
 * training with live redraws, pause/resume/stop at step boundaries, quitting while work runs,
 * signals, export, replaying a metrics log, and attaching + compressing + exporting a pruner. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "compress/masks_io.h"
#include "io/model_file.h"
#include "nn/zoo.h"
#include "cjson/cJSON.h"
#include "compress/masks.h"
#include "lua/sw_lua.h"
#include "tui/app.h"
#include "tui/attach.h"

/* ---- a fake terminal ---------------------------------------------------------------------- */

typedef struct fake_term {
    int keys[1024];
    int n_keys, next;
    int w, h;
    int frames;          /* canvases presented */
    char *last;          /* the last frame as text */
    long steps_seen[64]; /* the app's step counter at each frame during work */
    int n_steps_seen;
    sw_tui_app *app;
    int signal_after;  /* report SIGTERM after this many key reads (0: never) */
    int eval_frames;   /* frames drawn while an evaluation pass was in progress */
    const char *watch; /* frames containing this text are counted in watch_hits */
    int watch_hits;
    int reads;
} fake_term;

static int fake_read_key(void *ctx, int timeout_ms) {
    fake_term *t = ctx;
    t->reads++;
    if (t->next < t->n_keys) return t->keys[t->next++];
    /* The script is over: work goes on undisturbed (its poll does not wait), and the next
     * wait for a key quits (confirming, should work still be running). */
    if (timeout_ms == 0) return SW_KEY_NONE;
    return t->next++ % 2 == 0 ? 'q' : 'y';
}

static void fake_size(void *ctx, int *w, int *h) {
    fake_term *t = ctx;
    *w = t->w;
    *h = t->h;
}

static void fake_present(void *ctx, const sw_tui_canvas *c) {
    fake_term *t = ctx;
    t->frames++;
    free(t->last);
    t->last = sw_tui_canvas_to_text(c);
    if (strstr(t->last, "evaluating")) t->eval_frames++;
    if (t->watch && strstr(t->last, t->watch)) t->watch_hits++;
    sw_tui_state *st = sw_tui_app_state(t->app);
    if (st->work != SW_TUI_WORK_IDLE && t->n_steps_seen < 64)
        t->steps_seen[t->n_steps_seen++] = st->history.step;
}

static int fake_signal(void *ctx) {
    fake_term *t = ctx;
    return t->signal_after > 0 && t->reads > t->signal_after ? SIGTERM : 0;
}

static void keys(fake_term *t, const int *k, int n) {
    for (int i = 0; i < n; i++) t->keys[t->n_keys++] = k[i];
}
static void key(fake_term *t, int k) {
    t->keys[t->n_keys++] = k;
}
static void text(fake_term *t, const char *s) {
    for (; *s; s++) key(t, (unsigned char)*s);
}

/* ---- fixture: a small MLP and a synthetic dataset ----------------------------------------- */

typedef struct fixture {
    sw_dataset *train, *test;
    sw_tui_app *app;
    fake_term term;
    sw_tui_io io;
} fixture;

/* 64 images of 1x28x28 whose class is written into their brightness, so training learns. */
static sw_dataset *synthetic(int n, uint64_t seed) {
    sw_dataset *ds = calloc(1, sizeof *ds);
    ds->n = n;
    ds->channels = 1;
    ds->height = ds->width = 28;
    ds->n_classes = 10;
    ds->images = malloc(sizeof(float) * (size_t)n * 784);
    ds->labels = malloc((size_t)n);
    snprintf(ds->name, sizeof ds->name, "synthetic");
    sw_rng rng;
    sw_rng_init(&rng, seed, 0);
    for (int i = 0; i < n; i++) {
        ds->labels[i] = (uint8_t)(i % 10);
        for (int k = 0; k < 784; k++)
            ds->images[(size_t)i * 784 + k] =
                (float)(i % 10) * 0.2f - 1.0f + 0.1f * sw_rng_uniform(&rng);
    }
    return ds;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    sw_model *model = NULL;
    if (sw_zoo_build("fmnist_mlp", 3, &model) != SW_OK) return -1;
    sw_tui_app_config cfg = {.utf8 = true, .seed = 1};
    if (sw_tui_app_new(model, &cfg, &f->app) != SW_OK) return -1;
    f->train = synthetic(64, 1);
    f->test = synthetic(32, 2);
    sw_tui_app_set_data(f->app, f->train, f->test);
    f->term = (fake_term){.w = 80, .h = 24, .app = f->app};
    f->io = (sw_tui_io){.ctx = &f->term,
                        .read_key = fake_read_key,
                        .size = fake_size,
                        .present = fake_present,
                        .pending_signal = fake_signal};
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    sw_tui_app_free(f->app);
    sw_dataset_free(f->train);
    sw_dataset_free(f->test);
    free(f->term.last);
    free(f);
    return 0;
}

/* Opens the training form and sets batch 16 (4 steps an epoch over 64 images). */
static void open_train_form(fake_term *t) {
    const int k[] = {'t', SW_KEY_DOWN, SW_KEY_DOWN, SW_KEY_DOWN, SW_KEY_CTRL_U, '1', '6'};
    keys(t, k, 7);
}

static bool log_contains(sw_tui_app *app, const char *needle) {
    const sw_tui_state *st = sw_tui_app_state(app);
    for (int i = 0; i < st->log.n; i++)
        if (strstr(sw_tui_log_at(&st->log, i)->text, needle)) return true;
    return false;
}

/* ---- tests -------------------------------------------------------------------------------- */

/* A training run started from the form completes, redraws as steps go by (the step counter on
 * screen increases), fills the charts and ends with an evaluation; q then quits with 0. */
static void test_tui_app_trains_with_live_redraws(void **state) {
    fixture *f = *state;
    open_train_form(&f->term);
    key(&f->term, SW_KEY_CTRL_U); /* overwrite batch: 16 -> 8 below */
    text(&f->term, "8");
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->history.status, SW_TUI_RUN_COMPLETED);
    assert_int_equal(st->history.step, 8);
    assert_int_equal(st->history.series[0].n, 8);
    assert_int_equal(st->history.series[1].n, 1); /* one evaluation */
    assert_int_equal(st->work, SW_TUI_WORK_IDLE);
    assert_true(f->term.n_steps_seen >= 2);
    assert_true(f->term.steps_seen[f->term.n_steps_seen - 1] > f->term.steps_seen[0]);
    assert_non_null(strstr(f->term.last, "completed in"));
    assert_true(log_contains(f->app, "train completed at step 8 of 8"));
}

/* s during training stops it at the next step boundary, leaving a consistent model. */
static void test_tui_app_stop_at_step_boundary(void **state) {
    fixture *f = *state;
    open_train_form(&f->term);
    key(&f->term, SW_KEY_ENTER);
    key(&f->term, 's'); /* read by the poll hook after the first step */
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->history.status, SW_TUI_RUN_STOPPED);
    assert_int_equal(st->history.step, 1);
    assert_true(log_contains(f->app, "training stopped at a step boundary"));
    /* The weights are finite after the stop. */
    sw_model *m = sw_tui_app_model(f->app);
    for (size_t i = 0; i < m->n_param_floats; i++) assert_true(isfinite(m->param_data[i]));
}

/* p pauses inside the poll hook, where keys still work and frames are still drawn; p again
 * resumes and the run completes. */
static void test_tui_app_pause_keeps_the_screen_live(void **state) {
    fixture *f = *state;
    open_train_form(&f->term);
    key(&f->term, SW_KEY_ENTER);
    const int k[] = {'p', 'j', 'j', '?', SW_KEY_ESC, 'p'};
    keys(&f->term, k, 6);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->history.status, SW_TUI_RUN_COMPLETED);
    assert_int_equal(st->history.step, 4);
    assert_string_equal(st->tree.mt.entries[st->tree.cursor].path, "relu1");
    assert_true(log_contains(f->app, "paused at step 1"));
    assert_true(log_contains(f->app, "resumed"));
    /* Frames drawn while paused show it. */
    bool saw_paused = false;
    for (int i = 0; i < f->term.n_steps_seen; i++) saw_paused |= f->term.steps_seen[i] == 1;
    assert_true(saw_paused);
}

/* q while training asks; y stops the run and leaves the main loop with 0. */
static void test_tui_app_quit_while_running(void **state) {
    fixture *f = *state;
    open_train_form(&f->term);
    key(&f->term, SW_KEY_ENTER);
    key(&f->term, 'q');
    key(&f->term, 'y');
    key(&f->term, 'j'); /* never read: the app has quit */
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->history.status, SW_TUI_RUN_STOPPED);
    assert_int_equal(st->history.step, 1);
    assert_int_equal(f->term.next, f->term.n_keys - 1);
}

/* A termination signal during training stops it at a step boundary and ends the session with
 * the signal's number, through the normal path. */
static void test_tui_app_signal_ends_the_session(void **state) {
    fixture *f = *state;
    open_train_form(&f->term);
    key(&f->term, SW_KEY_ENTER);
    f->term.signal_after = f->term.n_keys; /* once training polls for keys */
    assert_int_equal(sw_tui_app_run(f->app, &f->io), SIGTERM);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->history.status, SW_TUI_RUN_STOPPED);
    assert_in_range(st->history.step, 1, 3); /* of 4 */
}

/* A signal that arrives before training starts (during the data loading) ends the session
 * without starting the run. */
static void test_tui_app_signal_before_work_skips_it(void **state) {
    fixture *f = *state;
    open_train_form(&f->term);
    key(&f->term, SW_KEY_ENTER);
    f->term.signal_after = f->term.n_keys - 1; /* pending once Enter is read */
    assert_int_equal(sw_tui_app_run(f->app, &f->io), SIGTERM);
    assert_int_equal(sw_tui_app_state(f->app)->history.status, SW_TUI_RUN_NONE);
    assert_int_equal(sw_tui_app_state(f->app)->history.runs, 0);
}

/* e writes the model atomically to the given path; the file loads back to the same weights. */
static void test_tui_app_export_writes_a_loadable_model(void **state) {
    fixture *f = *state;
    char path[512];
    snprintf(path, sizeof path, "%s/exported.safetensors", sw_test_tmpdir());
    key(&f->term, 'e');
    key(&f->term, SW_KEY_CTRL_U);
    text(&f->term, path);
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_model *loaded = NULL;
    assert_int_equal(sw_model_load(path, &loaded), SW_OK);
    sw_model *m = sw_tui_app_model(f->app);
    assert_int_equal(loaded->n_param_floats, m->n_param_floats);
    assert_memory_equal(loaded->param_data, m->param_data, sizeof(float) * m->n_param_floats);
    sw_model_free(loaded);
    assert_true(log_contains(f->app, "saved"));
}

/* o replays a JSON-lines log into the charts as if the run had happened here; a log cut short
 * shows what it holds and says where it stops. */
static void test_tui_app_open_log_replays_charts(void **state) {
    fixture *f = *state;
    char path[512], bad[512];
    snprintf(path, sizeof path, "%s/run.jsonl", sw_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/cut.jsonl", sw_test_tmpdir());
    sw_jsonl_log log;
    assert_int_equal(sw_jsonl_log_open(&log, path), SW_OK);
    sw_metric_event e = {
        .kind = SW_METRIC_BEGIN, .phase = "train", .total_steps = 6, .total_epochs = 1};
    sw_jsonl_log_listener(&log, &e);
    for (int i = 1; i <= 6; i++) {
        e = (sw_metric_event){.kind = SW_METRIC_STEP,
                              .phase = "train",
                              .step = i,
                              .total_steps = 6,
                              .loss = 1.0 / i,
                              .lr = 0.1,
                              .images_per_sec = 9};
        sw_jsonl_log_listener(&log, &e);
    }
    e = (sw_metric_event){.kind = SW_METRIC_EVAL, .phase = "train", .step = 6, .accuracy = 0.5};
    sw_jsonl_log_listener(&log, &e);
    e = (sw_metric_event){
        .kind = SW_METRIC_END, .phase = "train", .step = 6, .message = "completed"};
    sw_jsonl_log_listener(&log, &e);
    sw_jsonl_log_close(&log);
    FILE *fp = fopen(bad, "w");
    fputs("{\"event\": \"begin\", \"phase\": \"train\", \"elapsed\": 0, \"total_steps\": 9}\n"
          "{\"event\": \"step\", \"phase\": \"train\", \"elapsed\": 1, \"step\": 1, \"loss\": 2}\n"
          "{\"event\": \"step\", \"pha",
          fp);
    fclose(fp);

    key(&f->term, 'o');
    key(&f->term, SW_KEY_CTRL_U);
    text(&f->term, path);
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->history.series[0].n, 6);
    assert_int_equal(st->history.status, SW_TUI_RUN_COMPLETED);
    assert_float_equal(st->history.accuracy, 0.5, 0);
    assert_non_null(strstr(f->term.last, "accuracy 50.00%"));
    assert_non_null(strstr(f->term.last, "Metrics: run.jsonl (replay, 1 run)"));
    assert_true(log_contains(f->app, "events, 1 run"));

    f->term.n_keys = f->term.next = 0;
    key(&f->term, 'o');
    key(&f->term, SW_KEY_CTRL_U);
    text(&f->term, bad);
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    assert_int_equal(st->history.series[0].n, 1); /* the earlier log was replaced */
    assert_int_equal(st->history.status, SW_TUI_RUN_FAILED);
    assert_string_equal(st->history.end_reason, "log ends here");
    assert_true(log_contains(f->app, "cut.jsonl:3"));
}

/* a attaches L1Norm to the marked Linear layers (a ReLU among them is left out), c compresses
 * one-shot, and e exports a model whose pruned rows are zero plus a masks file that loads. */
static void test_tui_app_attach_compress_export(void **state) {
    fixture *f = *state;
    char model_path[512], masks_path[512];
    snprintf(model_path, sizeof model_path, "%s/pruned.safetensors", sw_test_tmpdir());
    snprintf(masks_path, sizeof masks_path, "%s/pruned.masks.safetensors", sw_test_tmpdir());
    /* The tree is flatten, fc1, relu1, fc2, relu2, fc3: mark fc1, relu1, fc2. */
    const int k[] = {'j', ' ', ' ', ' ',          'a', SW_KEY_ENTER, SW_KEY_CTRL_U, '0',
                     '.', '2', '5', SW_KEY_ENTER, 'c', SW_KEY_ENTER, 'e',           SW_KEY_CTRL_U};
    keys(&f->term, k, (int)(sizeof k / sizeof k[0]));
    text(&f->term, model_path);
    key(&f->term, SW_KEY_DOWN);
    key(&f->term, SW_KEY_CTRL_U);
    text(&f->term, masks_path);
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->n_chain, 1);
    assert_non_null(strstr(st->chain[0], "L1NormPruner"));
    assert_non_null(strstr(st->chain[0], "\"op_names\":[\"fc1\",\"fc2\"]"));
    assert_true(log_contains(f->app, "1 selected module left out"));
    assert_string_equal(st->badges[1], "P:L1 25%"); /* fc1 */
    assert_string_equal(st->badges[2], "");         /* relu1 */
    assert_non_null(strstr(f->term.last, "P:L1 25%"));

    sw_model *loaded = NULL;
    assert_int_equal(sw_model_load(model_path, &loaded), SW_OK);
    int fc1 = sw_model_find(loaded, "fc1");
    const sw_tensor *w = &loaded->nodes[fc1].layer->params[0].value; /* [256, 784] */
    int zero_rows = 0;
    for (int r = 0; r < 256; r++) {
        bool all_zero = true;
        for (int c = 0; c < 784; c++) all_zero &= w->data[r * 784 + c] == 0.0f;
        zero_rows += all_zero;
    }
    assert_int_equal(zero_rows, 64);
    sw_model_free(loaded);
    /* The live model keeps its dense weights: the masks apply through the wrappers. */
    sw_model *m = sw_tui_app_model(f->app);
    const sw_tensor *live = &m->nodes[fc1].layer->params[0].value;
    size_t zeros = 0;
    for (size_t i = 0; i < live->numel; i++) zeros += live->data[i] == 0.0f;
    assert_true(zeros < live->numel / 100);

    sw_masks masks;
    assert_int_equal(sw_masks_load(masks_path, &masks), SW_OK);
    const sw_tensor *mask = sw_masks_find(&masks, "fc1", "weight");
    assert_non_null(mask);
    assert_float_equal(sw_mask_sparsity(mask), 0.25, 1e-9);
    assert_non_null(sw_masks_find(&masks, "fc2", "weight"));
    sw_masks_deinit(&masks);

    /* d detaches it again. */
    f->term.n_keys = f->term.next = 0;
    key(&f->term, 'd');
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    assert_int_equal(st->n_chain, 0);
    assert_string_equal(st->badges[1], "");
}

/* The tree entry of module `path`, or -1. */
static int entry_of(sw_tui_state *st, const char *path) {
    for (int i = 0; i < st->tree.mt.n; i++)
        if (strcmp(st->tree.mt.entries[i].path, path) == 0) return i;
    return -1;
}

/* The inspector of module `path` (moves the cursor there). */
static const sw_tui_inspector *inspect_module(sw_tui_state *st, const char *path) {
    st->tree.cursor = entry_of(st, path);
    return sw_tui_state_inspector(st);
}

static bool inspector_has(const sw_tui_inspector *in, const char *label, const char *needle) {
    for (int i = 0; i < in->n; i++)
        if (strncmp(in->rows[i].label, label, strlen(label)) == 0 &&
            strstr(in->rows[i].value, needle))
            return true;
    return false;
}

/* Makes training-dependent compression short: 4 steps of 16 images. */
static void short_training(sw_tui_app *app) {
    sw_tui_state *st = sw_tui_app_state(app);
    st->defaults.epochs = 0;
    st->defaults.steps = 4;
    st->defaults.batch = 16;
}

/* Every row of the attach list attaches to fc1 with its default form, compresses (one-shot,
 * its own training length, or 4 training steps as the training form says) without an error in
 * the log, and leaves its badge on fc1. */
static void test_tui_app_attach_every_algorithm(void **state) {
    (void)state;
    int n_algos;
    const sw_tui_algo *algos = sw_tui_algos(&n_algos);
    assert_true(n_algos >= 17);
    for (int a = 0; a < n_algos; a++) {
        void *fs = NULL;
        assert_int_equal(setup(&fs), 0);
        fixture *f = fs;
        short_training(f->app);
        key(&f->term, 'j'); /* fc1 */
        key(&f->term, 'a');
        for (int i = 0; i < a; i++) key(&f->term, SW_KEY_DOWN);
        const int k[] = {SW_KEY_ENTER, SW_KEY_ENTER, 'c', SW_KEY_ENTER};
        keys(&f->term, k, 4);
        int rc = sw_tui_app_run(f->app, &f->io);
        if (rc != 0) fail_msg("%s: run returned %d", algos[a].entry.name, rc);
        sw_tui_state *st = sw_tui_app_state(f->app);
        for (int i = 0; i < st->log.n; i++) {
            const char *line = sw_tui_log_at(&st->log, i)->text;
            if (sw_tui_log_at(&st->log, i)->level == SW_TUI_LOG_ERROR)
                fail_msg("%s: %s", algos[a].entry.name, line);
        }
        assert_int_equal(st->n_chain, 1);
        assert_true(log_contains(f->app, "masks are in effect"));
        const char *badge = st->badges[1];
        if (algos[a].kind == SW_TUI_PRUNER) assert_true(badge[0] == 'P');
        if (algos[a].kind == SW_TUI_QUANTIZER) assert_true(badge[0] == 'Q');
        if (algos[a].kind == SW_TUI_DISTILLER) assert_string_equal(badge, "D:mse");
        /* Trained rows ran their steps (PTQ alone calibrates without a training run). */
        bool ptq = strcmp(algos[a].entry.name, "PTQ") == 0;
        if (algos[a].training == SW_TUI_NEEDS_LIMITS && !ptq &&
            st->history.status != SW_TUI_RUN_COMPLETED)
            fail_msg("%s: run status %d", algos[a].entry.name, (int)st->history.status);
        /* Quantizers have their scales once compressed. */
        if (algos[a].kind == SW_TUI_QUANTIZER &&
            !inspector_has(inspect_module(st, "fc1"), "q weight", "scale "))
            fail_msg("%s: no scale on fc1.weight", algos[a].entry.name);
        teardown(&fs);
    }
}

/* L1Norm (half of fc1) -> QAT (fc1, fc2; int8) -> Dynamic distiller (fc3, kl) compress as one
 * fused chain of 4 training steps: the badges show each, the inspector shows the mask, the
 * quantizer's scale and tracked range, and the distillation capture with its teacher. */
static void test_tui_app_three_way_chain(void **state) {
    fixture *f = *state;
    short_training(f->app);
    int n_algos;
    const sw_tui_algo *algos = sw_tui_algos(&n_algos);
    int qat = (int)(sw_tui_algo_find("QAT") - algos);
    int dyn = (int)(sw_tui_algo_find("Dynamic") - algos);
    /* L1Norm 0.5 on fc1. */
    const int k1[] = {'j', 'a', SW_KEY_ENTER, SW_KEY_ENTER};
    keys(&f->term, k1, 4);
    /* QAT on fc1 and fc2 (cursor back on fc1: mark it and fc2). */
    const int k2[] = {' ', 'j', ' ', 'a'};
    keys(&f->term, k2, 4);
    for (int i = 0; i < qat; i++) key(&f->term, SW_KEY_DOWN);
    key(&f->term, SW_KEY_ENTER);
    key(&f->term, SW_KEY_ENTER);
    /* Dynamic on fc3 with kl. */
    key(&f->term, 'G'); /* fc3, the last module */
    key(&f->term, 'a');
    for (int i = 0; i < dyn - qat; i++) key(&f->term, SW_KEY_DOWN);
    key(&f->term, SW_KEY_ENTER);
    key(&f->term, SW_KEY_RIGHT); /* apply_method: kl */
    key(&f->term, SW_KEY_ENTER);
    const int k3[] = {'c', SW_KEY_ENTER};
    keys(&f->term, k3, 2);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->n_chain, 3);
    assert_non_null(strstr(st->chain[1], "QATQuantizer"));
    assert_non_null(strstr(st->chain[2], "DynamicLayerwiseDistiller"));
    assert_non_null(strstr(st->chain[2], "\"apply_method\":\"kl\""));
    assert_int_equal(st->history.status, SW_TUI_RUN_COMPLETED);
    assert_int_equal(st->history.step, 4);
    sw_model *m = sw_tui_app_model(f->app);
    int fc1 = sw_model_find(m, "fc1"), fc2 = sw_model_find(m, "fc2");
    int fc3 = sw_model_find(m, "fc3");
    assert_string_equal(st->badges[fc1], "P:L1 50% Q:int8");
    assert_string_equal(st->badges[fc2], "Q:int8");
    assert_string_equal(st->badges[fc3], "D:kl");
    const sw_tui_inspector *in = inspect_module(st, "fc1");
    assert_true(inspector_has(in, "> weight", "50.0% zero"));
    assert_true(inspector_has(in, "q weight", "int8 affine scale"));
    assert_true(inspector_has(in, "q _input_0", "min"));
    /* The mask's picture: 128 of fc1's 256 rows kept, 3 rows a character over two lines. */
    assert_true(inspector_has(in, "kept 128/256", ""));
    assert_true(inspector_has(in, "", "one character per 3 channels"));
    for (int i = 0; i < in->n; i++)
        if (strcmp(in->rows[i].label, "kept 128/256") == 0)
            assert_int_equal(strspn(in->rows[i].value, "#.+"), 48);
    in = inspect_module(st, "fc3");
    assert_true(inspector_has(in, "d _output_0", "kl x1 <- teacher fc3"));
    assert_true(inspector_has(in, "d _output_0", "term"));
    /* The distillation loss got a chart of its own. */
    assert_true(log_contains(f->app, "compress completed at step 4"));
}

/* Types a path into the focused form field (clearing it first), then moves to the next. */
static void field_path(fake_term *t, const char *path) {
    key(t, SW_KEY_CTRL_U);
    text(t, path);
    key(t, SW_KEY_DOWN);
}

/* e with L1Norm (half of fc1's rows) -> QAT fused on it writes the baked model, the masks, the
 * quantizer's calibration JSON and the sped-up model, then shows the before/after view: fewer
 * parameters and FLOPs after, the same accuracy (the sped-up model computes the masked one). */
static void test_tui_app_export_speedup_and_calibration(void **state) {
    fixture *f = *state;
    short_training(f->app);
    int n_algos;
    const sw_tui_algo *algos = sw_tui_algos(&n_algos);
    int qat = (int)(sw_tui_algo_find("QAT") - algos);
    char paths[4][512];
    const char *names[4] = {"exp.safetensors", "exp.masks.safetensors", "exp.calibration.json",
                            "exp.fast.safetensors"};
    for (int i = 0; i < 4; i++)
        snprintf(paths[i], sizeof paths[i], "%s/%s", sw_test_tmpdir(), names[i]);
    const int k1[] = {'j', 'a', SW_KEY_ENTER, SW_KEY_ENTER, 'a'};
    keys(&f->term, k1, 5);
    for (int i = 0; i < qat; i++) key(&f->term, SW_KEY_DOWN);
    const int k2[] = {SW_KEY_ENTER, SW_KEY_ENTER, 'c', SW_KEY_ENTER, 'e'};
    keys(&f->term, k2, 5);
    for (int i = 0; i < 4; i++) field_path(&f->term, paths[i]);
    key(&f->term, SW_KEY_ENTER);
    f->term.watch = "Before / after speedup: exp.fast.safetensors";
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    assert_int_equal(st->n_chain, 2);
    assert_true(log_contains(f->app, "saved calibration"));
    assert_true(log_contains(f->app, "self-check"));
    /* The before/after view was shown and holds consistent numbers. */
    assert_true(f->term.watch_hits >= 1);
    const sw_tui_compare *cmp = &st->compare;
    assert_true(cmp->params[1] < cmp->params[0]);
    assert_true(cmp->flops[1] < cmp->flops[0]);
    assert_true(cmp->lat1[0] > 0 && cmp->lat1[1] > 0 && cmp->lat64[0] > 0 && cmp->lat64[1] > 0);
    assert_int_equal(cmp->test_n, 32);
    assert_true(cmp->acc[0] >= 0 && cmp->acc[1] >= 0);
    assert_float_equal(cmp->acc[0], cmp->acc[1], 1.0 / 32);
    assert_true(cmp->rel_diff <= 1e-4);

    /* The files load: the model (half of fc1's rows zero), the masks, the sped-up model (64 of
     * 256 fc1 rows... 128 kept), the calibration JSON with fc1's weight scale. */
    sw_model *dense = NULL, *fast = NULL;
    assert_int_equal(sw_model_load(paths[0], &dense), SW_OK);
    assert_int_equal(sw_model_load(paths[3], &fast), SW_OK);
    assert_int_equal((double)sw_model_param_count(dense), cmp->params[0]);
    assert_int_equal((double)sw_model_param_count(fast), cmp->params[1]);
    int fc1 = sw_model_find(fast, "fc1");
    assert_int_equal(fast->nodes[fc1].layer->params[0].value.shape.dims[0], 128);
    sw_model_free(dense);
    sw_model_free(fast);
    sw_masks masks;
    assert_int_equal(sw_masks_load(paths[1], &masks), SW_OK);
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&masks, "fc1", "weight")), 0.5, 1e-9);
    sw_masks_deinit(&masks);
    FILE *fp = fopen(paths[2], "rb");
    assert_non_null(fp);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    cJSON *cal = cJSON_Parse(buf);
    assert_non_null(cal);
    const cJSON *w = cJSON_GetObjectItem(cJSON_GetObjectItem(cal, "fc1"), "weight");
    assert_non_null(w);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(w, "scale")));
    assert_string_equal(cJSON_GetObjectItem(w, "quant_dtype")->valuestring, "int8");
    cJSON_Delete(cal);

    /* Any key closes the view. */
    f->term.n_keys = f->term.next = 0;
    key(&f->term, 'x');
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    assert_int_equal(st->mode, SW_TUI_MODE_NORMAL);
}

/* Runs a recipe file with arguments through the Lua runner, as `shrinkwrap run` does. */
static sw_status run_recipe(const char *path, int argc, char *const *argv) {
    sw_lua *lua = NULL;
    sw_lua_options opt = sw_lua_options_default();
    SW_TRY(sw_lua_new(&opt, &lua));
    sw_status s = sw_lua_set_args(lua, path, argc, argv);
    if (s == SW_OK) s = sw_lua_run_file(lua, path);
    if (s != SW_OK) print_error("recipe: %s\n", sw_lua_last_error(lua));
    sw_lua_free(lua);
    return s;
}

/* w saves the set-up (L1Norm 0.5 on conv2 of the CNN, compressed one-shot) as a recipe; the
 * Lua runner reproduces it headless and its masks equal the workbench's export bit for bit. */
static void test_tui_app_recipe_round_trip(void **state) {
    fixture *f = *state;
    sw_model *cnn = NULL;
    assert_int_equal(sw_zoo_build("fmnist_cnn", 5, &cnn), SW_OK);
    sw_tui_app *app = NULL;
    sw_tui_app_config cfg = {.utf8 = true, .seed = 1};
    assert_int_equal(sw_tui_app_new(cnn, &cfg, &app), SW_OK);
    sw_tui_app_set_data(app, f->train, f->test);
    f->term.app = app;
    char masks[512], recipe[512], replay[512];
    snprintf(masks, sizeof masks, "%s/wb.masks.safetensors", sw_test_tmpdir());
    snprintf(recipe, sizeof recipe, "%s/wb.recipe.lua", sw_test_tmpdir());
    snprintf(replay, sizeof replay, "%s/replay.masks.safetensors", sw_test_tmpdir());
    sw_tui_state *st = sw_tui_app_state(app);
    st->tree.cursor = entry_of(st, "conv2");
    const int k[] = {'a', SW_KEY_ENTER, SW_KEY_ENTER, 'c', SW_KEY_ENTER, 'e', SW_KEY_DOWN};
    keys(&f->term, k, 7);
    field_path(&f->term, masks);
    key(&f->term, SW_KEY_ENTER);
    key(&f->term, 'w');
    key(&f->term, SW_KEY_CTRL_U);
    text(&f->term, recipe);
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(app, &f->io), 0);
    assert_true(log_contains(app, "saved recipe"));
    sw_tui_app_free(app);
    f->term.app = f->app;

    char *argv[] = {"--masks", replay};
    assert_int_equal(run_recipe(recipe, 2, argv), SW_OK);
    sw_masks a, b;
    assert_int_equal(sw_masks_load(masks, &a), SW_OK);
    assert_int_equal(sw_masks_load(replay, &b), SW_OK);
    assert_int_equal(a.n, b.n);
    assert_true(a.n >= 2); /* conv2.weight, conv2.bias */
    for (int i = 0; i < a.n; i++) {
        const sw_tensor *m = sw_masks_find(&b, a.items[i].module, a.items[i].target);
        assert_non_null(m);
        assert_int_equal(m->numel, a.items[i].mask.numel);
        assert_memory_equal(m->data, a.items[i].mask.data, sizeof(float) * m->numel);
    }
    assert_float_equal(sw_mask_sparsity(sw_masks_find(&a, "conv2", "weight")), 0.5, 1e-9);
    sw_masks_deinit(&a);
    sw_masks_deinit(&b);
}

/* A recipe of a trained chain (QAT fused on L1Norm) names its data, evaluator and limits. */
static void test_tui_app_recipe_of_a_trained_chain(void **state) {
    fixture *f = *state;
    short_training(f->app);
    int n_algos;
    const sw_tui_algo *algos = sw_tui_algos(&n_algos);
    int qat = (int)(sw_tui_algo_find("QAT") - algos);
    char recipe[512];
    snprintf(recipe, sizeof recipe, "%s/trained.recipe.lua", sw_test_tmpdir());
    const int k1[] = {'j', 'a', SW_KEY_ENTER, SW_KEY_ENTER, 'a'};
    keys(&f->term, k1, 5);
    for (int i = 0; i < qat; i++) key(&f->term, SW_KEY_DOWN);
    const int k2[] = {SW_KEY_ENTER, SW_KEY_ENTER, 'w', SW_KEY_CTRL_U};
    keys(&f->term, k2, 4);
    text(&f->term, recipe);
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    FILE *fp = fopen(recipe, "rb");
    assert_non_null(fp);
    char buf[1 << 14];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "local c1 = sw.L1NormPruner(model, config1, evaluator)"));
    assert_non_null(strstr(buf, "local c2 = sw.QATQuantizer.from_compressor(c1, config2, 0)"));
    assert_non_null(strstr(buf, "sw.data.fashion_mnist{ split = \"train\" }"));
    assert_non_null(strstr(buf, "batch_size = 16"));
    assert_non_null(strstr(buf, "last:compress(4)"));
    assert_non_null(strstr(buf, "assert(c2:export(calibration_out))"));
    assert_non_null(strstr(buf, "[{\"op_names\":[\"fc1\"],\"sparse_ratio\":0.5}]"));
}

/* S scans the marked modules: every cell (2 modules x 4 ratios) gets an accuracy, the table
 * is drawn while it fills, evaluation passes redraw between their batches, and the live
 * model is left as it was. */
static void test_tui_app_sensitivity_scan(void **state) {
    fixture *f = *state;
    sw_model *m = sw_tui_app_model(f->app);
    int fc1 = sw_model_find(m, "fc1");
    open_train_form(&f->term);
    key(&f->term, SW_KEY_ENTER); /* one epoch, so accuracy is above chance */
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    float before = m->nodes[fc1].layer->params[0].value.data[7];
    f->term.n_keys = f->term.next = 0;
    const int k[] = {'j', ' ', 'j', ' ', 'S'};
    keys(&f->term, k, 5);
    f->term.watch = "Sensitivity: L1Norm alone, accuracy drop (8/8)";
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(f->app);
    const sw_tui_sensitivity *sn = &st->sens;
    assert_int_equal(sn->n, 2);
    assert_string_equal(sn->names[0], "fc1");
    assert_string_equal(sn->names[1], "fc2");
    assert_int_equal(sn->done, 8);
    assert_false(sn->stopped);
    assert_false(isnan(sn->baseline));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < SW_TUI_SENS_RATIOS; j++)
            assert_true(sn->acc[i][j] >= 0 && sn->acc[i][j] <= 1);
    assert_true(log_contains(f->app, "sensitivity done: 8 cells"));
    assert_true(f->term.watch_hits >= 1);
    assert_float_equal(m->nodes[fc1].layer->params[0].value.data[7], before, 0);
    assert_int_equal(st->n_chain, 0);
}

/* s during the scan stops it after the cell in progress; the table says so. */
static void test_tui_app_sensitivity_stops(void **state) {
    fixture *f = *state;
    const int k[] = {'j', ' ', 'j', ' ', 'S', 's'};
    keys(&f->term, k, 6);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    const sw_tui_sensitivity *sn = &sw_tui_app_state(f->app)->sens;
    assert_int_equal(sn->done, 1);
    assert_true(sn->stopped);
    assert_true(isnan(sn->acc[0][1]));
    assert_true(log_contains(f->app, "sensitivity stopped after 1 of 8 cells"));
}

/* With evaluation batches smaller than the test set, the end-of-epoch evaluation redraws
 * between its batches and the header says it is evaluating. */
static void test_tui_app_evaluation_redraws(void **state) {
    fixture *f = *state;
    sw_model *model = NULL;
    assert_int_equal(sw_zoo_build("fmnist_mlp", 3, &model), SW_OK);
    sw_tui_app *app = NULL;
    sw_tui_app_config cfg = {.utf8 = true, .seed = 1, .eval_batch = 1};
    assert_int_equal(sw_tui_app_new(model, &cfg, &app), SW_OK);
    sw_tui_app_set_data(app, f->train, f->test);
    f->term.app = app;
    open_train_form(&f->term);
    key(&f->term, SW_KEY_ENTER);
    assert_int_equal(sw_tui_app_run(app, &f->io), 0);
    assert_true(log_contains(app, "eval at step 4"));
    assert_true(f->term.eval_frames >= 1);
    assert_int_equal(sw_tui_app_state(app)->eval_total, 0); /* over: the header is back */
    sw_tui_app_free(app);
    f->term.app = f->app;
}

/* Writes an MNIST-format folder (uncompressed IDX files) of n images per split whose class
 * is written into their brightness. */
static void write_idx(const char *dir, const char *prefix, int n) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    const unsigned char head[16] = {0, 0, 8, 3, 0, 0, (unsigned char)(n >> 8), (unsigned char)n,
                                    0, 0, 0, 28, 0, 0, 0, 28};
    fwrite(head, 1, 16, f);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 784; k++) fputc((i % 10) * 25 + (k % 3), f);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    f = fopen(path, "wb");
    assert_non_null(f);
    const unsigned char lhead[8] = {0, 0, 8, 1, 0, 0, (unsigned char)(n >> 8), (unsigned char)n};
    fwrite(lhead, 1, 8, f);
    for (int i = 0; i < n; i++) fputc(i % 10, f);
    fclose(f);
}

/* A recipe of its own (training through sw.Evaluator, printing) for --recipe; returns its
 * path in `path`. */
static void write_training_recipe(char *path, size_t size) {
    const char *dir = sw_test_tmpdir();
    write_idx(dir, "train", 64);
    write_idx(dir, "t10k", 32);
    snprintf(path, size, "%s/live.lua", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "local sw = require \"shrinkwrap\"\n"
            "local train = assert(sw.data.mnist{ split = \"train\", dir = \"%s\" })\n"
            "local test = assert(sw.data.mnist{ split = \"test\", dir = \"%s\" })\n"
            "local ev = sw.Evaluator{ train = train, test = test, batch_size = 16, seed = 1 }\n"
            "local model = sw.models.fmnist_mlp{ seed = 1 }\n"
            "print(\"hello from the recipe\")\n"
            "ev:train(model, 8)\n"
            "print((\"recipe accuracy %%.2f\"):format(100 * ev:evaluate(model)))\n",
            dir, dir);
    fclose(f);
}

/* --recipe runs a recipe inside the workbench: its training reaches the charts live (frames
 * drawn mid-run), its print output reaches the log pane, and it ends with a note. */
static void test_tui_app_runs_a_recipe(void **state) {
    fixture *f = *state;
    char recipe[600];
    write_training_recipe(recipe, sizeof recipe);
    sw_model *model = NULL;
    assert_int_equal(sw_zoo_build("fmnist_mlp", 3, &model), SW_OK);
    sw_tui_app *app = NULL;
    sw_tui_app_config cfg = {.utf8 = true, .seed = 1, .recipe = recipe};
    assert_int_equal(sw_tui_app_new(model, &cfg, &app), SW_OK);
    f->term.app = app;
    assert_int_equal(sw_tui_app_run(app, &f->io), 0);
    sw_tui_state *st = sw_tui_app_state(app);
    assert_true(log_contains(app, "hello from the recipe"));
    assert_true(log_contains(app, "recipe accuracy"));
    assert_true(log_contains(app, "finished"));
    assert_int_equal(st->history.status, SW_TUI_RUN_COMPLETED);
    assert_int_equal(st->history.step, 8);
    assert_true(f->term.n_steps_seen >= 1);
    sw_tui_app_free(app);
    f->term.app = f->app;
}

/* s while a recipe trains stops it at a step boundary; the log says so. */
static void test_tui_app_stops_a_recipe(void **state) {
    fixture *f = *state;
    char recipe[600];
    write_training_recipe(recipe, sizeof recipe);
    sw_model *model = NULL;
    assert_int_equal(sw_zoo_build("fmnist_mlp", 3, &model), SW_OK);
    sw_tui_app *app = NULL;
    sw_tui_app_config cfg = {.utf8 = true, .seed = 1, .recipe = recipe};
    assert_int_equal(sw_tui_app_new(model, &cfg, &app), SW_OK);
    f->term.app = app;
    key(&f->term, 's');
    assert_int_equal(sw_tui_app_run(app, &f->io), 0);
    assert_true(log_contains(app, "stopped"));
    assert_false(log_contains(app, "recipe accuracy"));
    assert_true(sw_tui_app_state(app)->history.step < 8);
    sw_tui_app_free(app);
    f->term.app = f->app;
}

/* The recipe of every row of the attach list (alone on fc1, the training form's 4 steps when
 * it trains) runs through the Lua runner: each constructor call it writes is valid. */
static void test_tui_app_recipe_of_every_algorithm(void **state) {
    fixture *f = *state;
    const char *dir = sw_test_tmpdir();
    write_idx(dir, "train", 64);
    write_idx(dir, "t10k", 32);
    int n_algos;
    const sw_tui_algo *algos = sw_tui_algos(&n_algos);
    for (int a = 0; a < n_algos; a++) {
        sw_model *model = NULL;
        assert_int_equal(sw_zoo_build("fmnist_mlp", 3, &model), SW_OK);
        sw_tui_app *app = NULL;
        sw_tui_app_config cfg = {.utf8 = true, .seed = 1, .dataset = "mnist", .data_dir = dir};
        assert_int_equal(sw_tui_app_new(model, &cfg, &app), SW_OK);
        sw_tui_app_set_data(app, f->train, f->test);
        short_training(app);
        free(f->term.last);
        f->term = (fake_term){.w = 80, .h = 24, .app = app};
        char recipe[600], masks[600], cal[600];
        snprintf(recipe, sizeof recipe, "%s/every.lua", dir);
        snprintf(masks, sizeof masks, "%s/every.masks.safetensors", dir);
        snprintf(cal, sizeof cal, "%s/every.calibration.json", dir);
        key(&f->term, 'j');
        key(&f->term, 'a');
        for (int i = 0; i < a; i++) key(&f->term, SW_KEY_DOWN);
        const int k[] = {SW_KEY_ENTER, SW_KEY_ENTER, 'w', SW_KEY_CTRL_U};
        keys(&f->term, k, 4);
        text(&f->term, recipe);
        key(&f->term, SW_KEY_ENTER);
        assert_int_equal(sw_tui_app_run(app, &f->io), 0);
        if (!log_contains(app, "saved recipe")) fail_msg("%s: no recipe", algos[a].entry.name);
        sw_tui_app_free(app);
        char *argv[] = {"--masks", masks, "--calibration", cal};
        if (run_recipe(recipe, 4, argv) != SW_OK)
            fail_msg("%s: the recipe failed", algos[a].entry.name);
    }
    free(f->term.last);
    f->term = (fake_term){.w = 80, .h = 24, .app = f->app};
}

/* Errors of actions go to the log pane, not out of the program: attaching to a module that
 * cannot be pruned, exporting into a folder that does not exist is refused in the form. */
static void test_tui_app_errors_go_to_the_log(void **state) {
    fixture *f = *state;
    /* The cursor is on flatten: nothing to prune there. */
    const int k[] = {'a', SW_KEY_ENTER, SW_KEY_ENTER, 'e', SW_KEY_CTRL_U};
    keys(&f->term, k, 5);
    text(&f->term, "/no/such/folder/m.safetensors");
    key(&f->term, SW_KEY_ENTER); /* refused: the form stays open */
    key(&f->term, SW_KEY_ESC);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    assert_true(log_contains(f->app, "none of the 1 selected modules is a Conv2d or Linear"));
    assert_false(log_contains(f->app, "saved"));
    assert_int_equal(sw_tui_app_state(f->app)->n_chain, 0);
}

/* The screen is drawn at any size the terminal reports, including too small ones. */
static void test_tui_app_draws_at_any_size(void **state) {
    fixture *f = *state;
    f->term.w = 40;
    f->term.h = 10;
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    assert_non_null(strstr(f->term.last, "terminal too small: 40x10"));
    f->term.w = 200;
    f->term.h = 60;
    f->term.next = 0;
    key(&f->term, SW_KEY_RESIZE);
    assert_int_equal(sw_tui_app_run(f->app, &f->io), 0);
    assert_non_null(strstr(f->term.last, "Inspector: flatten (Flatten)"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tui_app_trains_with_live_redraws, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_stop_at_step_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_pause_keeps_the_screen_live, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_quit_while_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_signal_ends_the_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_signal_before_work_skips_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_export_writes_a_loadable_model, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_open_log_replays_charts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_attach_compress_export, setup, teardown),
        cmocka_unit_test(test_tui_app_attach_every_algorithm),
        cmocka_unit_test_setup_teardown(test_tui_app_three_way_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_export_speedup_and_calibration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_recipe_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_recipe_of_a_trained_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_sensitivity_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_sensitivity_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_evaluation_redraws, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_recipe_of_every_algorithm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_runs_a_recipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_stops_a_recipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_errors_go_to_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_draws_at_any_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
