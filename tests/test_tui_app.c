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
#include "tui/app.h"

/* ---- a fake terminal ---------------------------------------------------------------------- */

typedef struct fake_term {
    int keys[256];
    int n_keys, next;
    int w, h;
    int frames;          /* canvases presented */
    char *last;          /* the last frame as text */
    long steps_seen[64]; /* the app's step counter at each frame during work */
    int n_steps_seen;
    sw_tui_app *app;
    int signal_after; /* report SIGTERM after this many key reads (0: never) */
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
        cmocka_unit_test_setup_teardown(test_tui_app_errors_go_to_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tui_app_draws_at_any_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
