/* test_tui_state.c - the workbench's plain-data state, without a terminal: the module tree,
 * keys and modes, forms, metric history, chart scaling, the log, and the rendered screen. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

#include "nn/zoo.h"
#include "tui/attach.h"
#include "tui/chart.h"
#include "tui/state.h"
#include "tui/view.h"

/* ---- fixtures ------------------------------------------------------------------------------ */

typedef struct fixture {
    sw_model *model;
    sw_tui_state st;
} fixture;

static int setup_model(void **state, const char *zoo, bool utf8) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (sw_zoo_build(zoo, 1, &f->model) != SW_OK) return -1;
    if (sw_tui_state_init(&f->st, f->model, utf8) != SW_OK) return -1;
    *state = f;
    return 0;
}
static int setup_resnet(void **state) {
    return setup_model(state, "fmnist_resnet", true);
}
static int setup_cnn(void **state) {
    return setup_model(state, "fmnist_cnn", true);
}
static int setup_cnn_ascii(void **state) {
    return setup_model(state, "fmnist_cnn", false);
}

static int teardown(void **state) {
    fixture *f = *state;
    sw_tui_state_deinit(&f->st);
    sw_model_free(f->model);
    free(f);
    return 0;
}

/* Index of the tree entry with this path, or -1. */
static int entry_of(const sw_tui_tree *t, const char *path) {
    for (int i = 0; i < t->mt.n; i++)
        if (strcmp(t->mt.entries[i].path, path) == 0) return i;
    return -1;
}

static const char *cursor_path(const sw_tui_state *st) {
    return st->tree.mt.entries[st->tree.cursor].path;
}

static int press1(sw_tui_state *st, int key) {
    sw_tui_action act;
    return sw_tui_state_key(st, key, &act);
}
static void type(sw_tui_state *st, const char *text) {
    for (const char *p = text; *p; p++) press1(st, (unsigned char)*p);
}

static bool log_contains(const sw_tui_state *st, const char *needle) {
    for (int i = 0; i < st->log.n; i++)
        if (strstr(sw_tui_log_at(&st->log, i)->text, needle)) return true;
    return false;
}

/* Renders the state at w x h; returns the screen as text (caller frees). */
static char *render(sw_tui_state *st, int w, int h) {
    sw_tui_canvas c;
    sw_tui_canvas_init(&c);
    assert_int_equal(sw_tui_canvas_resize(&c, w, h), SW_OK);
    sw_tui_render(st, &c);
    char *text = sw_tui_canvas_to_text(&c);
    sw_tui_canvas_deinit(&c);
    assert_non_null(text);
    return text;
}

/* ---- module tree -------------------------------------------------------------------------- */

/* Top-level containers start expanded, deeper ones collapsed. */
static void test_tui_state_tree_starts_top_level_expanded(void **state) {
    fixture *f = *state;
    sw_tui_tree *t = &f->st.tree;
    int layer1 = entry_of(t, "layer1"), block = entry_of(t, "layer1.0");
    assert_true(layer1 >= 0 && block >= 0);
    assert_true(t->expanded[layer1]);
    assert_false(t->expanded[block]);
    bool block_visible = false, inner_visible = false;
    for (int r = 0; r < t->n_visible; r++) {
        block_visible |= t->visible[r] == block;
        inner_visible |= t->visible[r] == entry_of(t, "layer1.0.conv1");
    }
    assert_true(block_visible);
    assert_false(inner_visible);
    assert_string_equal(cursor_path(&f->st), "conv1");
}

/* The cursor stops at both ends instead of wrapping. */
static void test_tui_state_tree_cursor_clamps(void **state) {
    fixture *f = *state;
    press1(&f->st, SW_KEY_UP);
    assert_string_equal(cursor_path(&f->st), "conv1");
    press1(&f->st, 'G');
    assert_int_equal(f->st.tree.cursor, f->st.tree.visible[f->st.tree.n_visible - 1]);
    press1(&f->st, SW_KEY_DOWN);
    assert_int_equal(f->st.tree.cursor, f->st.tree.visible[f->st.tree.n_visible - 1]);
    press1(&f->st, 'g');
    assert_string_equal(cursor_path(&f->st), "conv1");
}

/* Right expands then enters; left goes to the parent then collapses. */
static void test_tui_state_tree_left_right(void **state) {
    fixture *f = *state;
    sw_tui_tree *t = &f->st.tree;
    t->cursor = entry_of(t, "layer1.0");
    press1(&f->st, 'l');
    assert_true(t->expanded[entry_of(t, "layer1.0")]);
    assert_string_equal(cursor_path(&f->st), "layer1.0");
    press1(&f->st, 'l');
    assert_string_equal(cursor_path(&f->st), "layer1.0.conv1");
    press1(&f->st, 'h');
    assert_string_equal(cursor_path(&f->st), "layer1.0");
    press1(&f->st, 'h');
    assert_false(t->expanded[entry_of(t, "layer1.0")]);
    press1(&f->st, SW_KEY_ENTER);
    assert_true(t->expanded[entry_of(t, "layer1.0")]);
}

/* Collapsing an ancestor moves a hidden cursor up to it. */
static void test_tui_state_tree_collapse_moves_cursor(void **state) {
    fixture *f = *state;
    sw_tui_tree *t = &f->st.tree;
    sw_tui_tree_expand_all(t, true);
    t->cursor = entry_of(t, "layer2.0.downsample.0");
    sw_tui_tree_set_expanded(t, entry_of(t, "layer2"), false);
    assert_string_equal(cursor_path(&f->st), "layer2");
    press1(&f->st, '-');
    assert_int_equal(t->n_visible, 3 + 3 + 3); /* conv1 bn1 relu, layer1..3, avgpool flatten fc */
}

/* Marks select modules; a marked container stands for its leaves; no mark = the cursor's. */
static void test_tui_state_tree_selection(void **state) {
    fixture *f = *state;
    sw_tui_tree *t = &f->st.tree;
    int nodes[64];
    assert_int_equal(sw_tui_tree_selection(t, nodes, 64), 1);
    assert_string_equal(f->model->nodes[nodes[0]].name, "conv1");
    press1(&f->st, ' '); /* marks conv1, moves down */
    assert_string_equal(cursor_path(&f->st), "bn1");
    t->cursor = entry_of(t, "layer1.0");
    press1(&f->st, ' ');
    assert_int_equal(sw_tui_tree_marked_count(t), 2);
    int n = sw_tui_tree_selection(t, nodes, 64);
    assert_int_equal(n, 1 + 7); /* conv1 and the seven nodes of the first block */
    assert_string_equal(f->model->nodes[nodes[1]].name, "layer1.0.conv1");
    for (int i = 1; i < n; i++) assert_true(nodes[i] > nodes[i - 1]); /* graph order */
    press1(&f->st, 'u');
    assert_int_equal(sw_tui_tree_marked_count(t), 0);
}

/* `/` searches as you type, expanding ancestors; n/N go on; Esc puts the cursor back. */
static void test_tui_state_search(void **state) {
    fixture *f = *state;
    sw_tui_tree *t = &f->st.tree;
    press1(&f->st, '/');
    assert_int_equal(f->st.mode, SW_TUI_MODE_SEARCH);
    type(&f->st, "DOWN");
    assert_string_equal(cursor_path(&f->st), "layer2.0.downsample");
    assert_true(t->expanded[entry_of(t, "layer2.0")]);
    press1(&f->st, SW_KEY_ENTER);
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
    press1(&f->st, 'n');
    assert_string_equal(cursor_path(&f->st), "layer2.0.downsample.0");
    press1(&f->st, 'N');
    assert_string_equal(cursor_path(&f->st), "layer2.0.downsample");
    press1(&f->st, '/');
    type(&f->st, "fc");
    assert_string_equal(cursor_path(&f->st), "fc");
    press1(&f->st, SW_KEY_ESC);
    assert_string_equal(cursor_path(&f->st), "layer2.0.downsample");
    press1(&f->st, '/');
    type(&f->st, "nothing-like-this");
    press1(&f->st, SW_KEY_ENTER);
    assert_true(log_contains(&f->st, "no module matches \"nothing-like-this\""));
}

/* ---- modes and work keys ------------------------------------------------------------------ */

/* q quits at once when idle, and asks first while work runs. */
static void test_tui_state_quit_asks_when_running(void **state) {
    fixture *f = *state;
    sw_tui_action act;
    assert_true(press1(&f->st, 'q') & SW_TUI_QUIT);
    f->st.work = SW_TUI_WORK_RUNNING;
    int flags = sw_tui_state_key(&f->st, 'q', &act);
    assert_false(flags & SW_TUI_QUIT);
    assert_int_equal(f->st.mode, SW_TUI_MODE_CONFIRM);
    assert_false(press1(&f->st, 'x') & SW_TUI_QUIT); /* other keys leave the question open */
    assert_int_equal(f->st.mode, SW_TUI_MODE_CONFIRM);
    press1(&f->st, 'n');
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
    sw_tui_state_key(&f->st, 'q', &act);
    flags = sw_tui_state_key(&f->st, 'y', &act);
    assert_true(flags & SW_TUI_QUIT);
    assert_true(flags & SW_TUI_ACTION);
    assert_int_equal(act.kind, SW_TUI_ACT_STOP);
    assert_int_equal(f->st.work, SW_TUI_WORK_STOPPING);
}

/* p pauses and resumes running work; s asks for a stop; neither acts when idle. */
static void test_tui_state_pause_resume_stop(void **state) {
    fixture *f = *state;
    sw_tui_action act;
    press1(&f->st, 'p');
    assert_int_equal(f->st.work, SW_TUI_WORK_IDLE);
    assert_true(log_contains(&f->st, "nothing is running"));
    f->st.work = SW_TUI_WORK_RUNNING;
    press1(&f->st, 'p');
    assert_int_equal(f->st.work, SW_TUI_WORK_PAUSED);
    press1(&f->st, 'p');
    assert_int_equal(f->st.work, SW_TUI_WORK_RUNNING);
    int flags = sw_tui_state_key(&f->st, 's', &act);
    assert_true(flags & SW_TUI_ACTION);
    assert_int_equal(act.kind, SW_TUI_ACT_STOP);
    assert_int_equal(f->st.work, SW_TUI_WORK_STOPPING);
}

/* While work runs, keys that would start other work are refused with a message; navigation
 * and export still work. */
static void test_tui_state_busy_refuses_new_work(void **state) {
    fixture *f = *state;
    f->st.work = SW_TUI_WORK_RUNNING;
    press1(&f->st, 't');
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
    assert_true(log_contains(&f->st, "cannot start training while work is running"));
    press1(&f->st, 'o');
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
    press1(&f->st, 'j');
    assert_string_equal(cursor_path(&f->st), "bn1");
    press1(&f->st, 'e');
    assert_int_equal(f->st.mode, SW_TUI_MODE_FORM);
    assert_int_equal(f->st.form.id, SW_TUI_FORM_EXPORT);
}

/* With no algorithm in the attach list, `a` says so instead of opening an empty list; with
 * algorithms it opens the list and Enter opens the chosen one's form. */
static void test_tui_state_attach_list(void **state) {
    fixture *f = *state;
    press1(&f->st, 'a');
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
    assert_true(log_contains(&f->st, "no compression algorithm"));
    f->st.n_algos = 2;
    f->st.algos[0] = (sw_tui_algo_entry){"First", "pruner", "one", NULL};
    f->st.algos[1] = (sw_tui_algo_entry){"Second", "pruner", "two", NULL};
    press1(&f->st, 'a');
    assert_int_equal(f->st.mode, SW_TUI_MODE_PICK);
    press1(&f->st, 'j');
    press1(&f->st, 'j'); /* stays on the last */
    assert_int_equal(f->st.pick, 1);
    press1(&f->st, SW_KEY_ENTER);
    assert_int_equal(f->st.mode, SW_TUI_MODE_FORM);
    assert_string_equal(f->st.form.title, "Attach Second pruner");
    sw_tui_action act;
    int flags = sw_tui_state_key(&f->st, SW_KEY_ENTER, &act);
    assert_true(flags & SW_TUI_ACTION);
    assert_int_equal(act.kind, SW_TUI_ACT_ATTACH);
    assert_int_equal(act.algo, 1);
    /* c and d need an attached chain. */
    press1(&f->st, 'c');
    assert_true(log_contains(&f->st, "attach a compressor first"));
    press1(&f->st, 'd');
    assert_true(log_contains(&f->st, "no compressor is attached"));
}

/* The forms follow the chain: compress starts from the training length when the chain trains
 * (empty when one-shot); export offers masks and a sped-up model with a pruner and a
 * calibration file with a quantizer; w opens the recipe form; S asks for a scan (refused while
 * work runs). */
static void test_tui_state_forms_follow_the_chain(void **state) {
    fixture *f = *state;
    f->st.defaults.epochs = 3;
    f->st.n_chain = 1;
    press1(&f->st, 'c');
    assert_string_equal(sw_tui_form_field(&f->st.form, "epochs")->text, "");
    press1(&f->st, SW_KEY_ESC);
    f->st.chain_needs_limits = true;
    press1(&f->st, 'c');
    assert_string_equal(sw_tui_form_field(&f->st.form, "epochs")->text, "3");
    press1(&f->st, SW_KEY_ESC);
    press1(&f->st, 'e');
    assert_null(sw_tui_form_field(&f->st.form, "masks"));
    assert_null(sw_tui_form_field(&f->st.form, "calibration"));
    assert_null(sw_tui_form_field(&f->st.form, "speedup"));
    press1(&f->st, SW_KEY_ESC);
    f->st.chain_has_pruner = f->st.chain_has_quantizer = true;
    press1(&f->st, 'e');
    assert_non_null(sw_tui_form_field(&f->st.form, "masks"));
    assert_string_equal(sw_tui_form_field(&f->st.form, "calibration")->text, "");
    assert_string_equal(sw_tui_form_field(&f->st.form, "speedup")->text, "");
    press1(&f->st, SW_KEY_ESC);
    press1(&f->st, 'w');
    assert_int_equal(f->st.mode, SW_TUI_MODE_FORM);
    assert_string_equal(sw_tui_form_field(&f->st.form, "path")->text, "fmnist_cnn.recipe.lua");
    sw_tui_action act;
    int flags = sw_tui_state_key(&f->st, SW_KEY_ENTER, &act);
    assert_true(flags & SW_TUI_ACTION);
    assert_int_equal(act.kind, SW_TUI_ACT_RECIPE);
    flags = sw_tui_state_key(&f->st, 'S', &act);
    assert_int_equal(act.kind, SW_TUI_ACT_SENSITIVITY);
    f->st.work = SW_TUI_WORK_RUNNING;
    flags = sw_tui_state_key(&f->st, 'S', &act);
    assert_int_equal(act.kind, SW_TUI_ACT_NONE);
    assert_true(log_contains(&f->st, "cannot start a sensitivity scan while work is running"));
}

/* The sensitivity table draws its cells as they fill (a dot while unmeasured, the drop in
 * points once measured); s asks the running scan to stop; once idle any key closes it. */
static void test_tui_state_sensitivity_table(void **state) {
    fixture *f = *state;
    sw_tui_sensitivity *sn = &f->st.sens;
    sn->n = 1;
    snprintf(sn->names[0], sizeof sn->names[0], "conv2");
    const double ratios[4] = {0.25, 0.5, 0.75, 0.9};
    for (int j = 0; j < 4; j++) {
        sn->ratios[j] = ratios[j];
        sn->acc[0][j] = NAN;
    }
    sn->baseline = 0.9;
    sn->acc[0][0] = 0.875;
    sn->done = 1;
    sn->total = 4;
    sn->test_n = 64;
    f->st.mode = SW_TUI_MODE_SENS;
    f->st.work = SW_TUI_WORK_RUNNING;
    char *text = render(&f->st, 80, 24);
    assert_non_null(strstr(text, "accuracy drop (1/4)"));
    assert_non_null(strstr(text, "base 90.00%"));
    assert_non_null(strstr(text, "2.5"));
    assert_non_null(strstr(text, "points lost on 64 test images; s stops after this cell"));
    free(text);
    sw_tui_action act;
    sw_tui_state_key(&f->st, 's', &act);
    assert_int_equal(act.kind, SW_TUI_ACT_STOP);
    assert_int_equal(f->st.work, SW_TUI_WORK_STOPPING);
    f->st.work = SW_TUI_WORK_IDLE;
    press1(&f->st, 'x');
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
}

/* The before/after view shows both columns with their ratios; any key closes it. */
static void test_tui_state_compare_view(void **state) {
    fixture *f = *state;
    sw_tui_compare *m = &f->st.compare;
    snprintf(m->path, sizeof m->path, "fast.safetensors");
    m->params[0] = 825000;
    m->params[1] = 412500;
    m->flops[0] = 9.48e6;
    m->flops[1] = 4.74e6;
    m->lat1[0] = 0.004;
    m->lat1[1] = 0.002;
    m->lat64[0] = 0.1;
    m->lat64[1] = 0.05;
    m->acc[0] = 0.9;
    m->acc[1] = 0.9;
    m->test_n = 256;
    f->st.mode = SW_TUI_MODE_COMPARE;
    char *text = render(&f->st, 80, 24);
    assert_non_null(strstr(text, "Before / after speedup: fast.safetensors"));
    assert_non_null(strstr(text, "2.00x"));
    assert_non_null(strstr(text, "4.00 ms"));
    assert_non_null(strstr(text, "+0.00 points"));
    assert_non_null(strstr(text, "accuracy on 256 test images"));
    free(text);
    press1(&f->st, 'q'); /* closes the view, does not quit */
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
}

/* ? opens the help; any other key but scrolling closes it. */
static void test_tui_state_help_opens_and_closes(void **state) {
    fixture *f = *state;
    press1(&f->st, '?');
    assert_int_equal(f->st.mode, SW_TUI_MODE_HELP);
    press1(&f->st, 'j');
    assert_int_equal(f->st.help_scroll, 1);
    assert_int_equal(f->st.mode, SW_TUI_MODE_HELP);
    press1(&f->st, 'x');
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
}

/* Tab moves the arrows to the log, which scrolls back and follows again with End. */
static void test_tui_state_log_focus_scrolls(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 20; i++) sw_tui_log_add(&f->st.log, SW_TUI_LOG_INFO, "line %d", i);
    press1(&f->st, SW_KEY_TAB);
    assert_int_equal(f->st.focus, SW_TUI_FOCUS_LOG);
    press1(&f->st, 'k');
    press1(&f->st, 'k');
    assert_int_equal(f->st.log.scroll, 2);
    assert_string_equal(cursor_path(&f->st), "conv1"); /* the tree did not move */
    press1(&f->st, 'G');
    assert_int_equal(f->st.log.scroll, 0);
    press1(&f->st, SW_KEY_TAB);
    assert_int_equal(f->st.focus, SW_TUI_FOCUS_TREE);
}

/* ---- forms -------------------------------------------------------------------------------- */

/* A bad value shows an error beside its field as it is typed, Enter refuses the form and
 * focuses that field, and a corrected form submits with its values (kept as next defaults). */
static void test_tui_state_train_form_validates_in_place(void **state) {
    fixture *f = *state;
    sw_tui_action act;
    press1(&f->st, 't');
    assert_int_equal(f->st.mode, SW_TUI_MODE_FORM);
    sw_tui_form *form = &f->st.form;
    assert_string_equal(sw_tui_form_field(form, "epochs")->text, "1");
    press1(&f->st, SW_KEY_DOWN);
    press1(&f->st, SW_KEY_DOWN); /* lr */
    press1(&f->st, SW_KEY_CTRL_U);
    type(&f->st, "fast");
    assert_string_equal(sw_tui_form_field(form, "lr")->error, "not a number");
    press1(&f->st, SW_KEY_DOWN); /* batch */
    press1(&f->st, SW_KEY_CTRL_U);
    type(&f->st, "99999");
    assert_string_equal(sw_tui_form_field(form, "batch")->error, "must be in [1, 4096]");
    int flags = sw_tui_state_key(&f->st, SW_KEY_ENTER, &act);
    assert_false(flags & SW_TUI_ACTION);
    assert_int_equal(f->st.mode, SW_TUI_MODE_FORM);
    assert_string_equal(form->fields[form->focus].key, "lr");
    press1(&f->st, SW_KEY_CTRL_U);
    type(&f->st, "0.1");
    assert_string_equal(sw_tui_form_field(form, "lr")->error, "");
    press1(&f->st, SW_KEY_DOWN);
    press1(&f->st, SW_KEY_BACKSPACE);
    press1(&f->st, SW_KEY_BACKSPACE); /* 999 */
    assert_string_equal(sw_tui_form_field(form, "batch")->error, "");
    press1(&f->st, SW_KEY_BACKSPACE); /* 99 */
    flags = sw_tui_state_key(&f->st, SW_KEY_ENTER, &act);
    assert_true(flags & SW_TUI_ACTION);
    assert_int_equal(act.kind, SW_TUI_ACT_TRAIN);
    assert_int_equal(sw_tui_form_int(act.form, "batch", 0), 99);
    assert_float_equal(sw_tui_form_float(act.form, "lr", 0), 0.1, 1e-12);
    assert_int_equal(sw_tui_form_int(act.form, "steps", -1), -1); /* empty = unset */
    assert_int_equal(f->st.defaults.batch, 99);
}

/* Training needs epochs or steps: with both empty the form-wide rule refuses it. */
static void test_tui_state_train_form_needs_a_length(void **state) {
    fixture *f = *state;
    sw_tui_action act;
    press1(&f->st, 't');
    press1(&f->st, SW_KEY_CTRL_U); /* epochs empty */
    int flags = sw_tui_state_key(&f->st, SW_KEY_ENTER, &act);
    assert_false(flags & SW_TUI_ACTION);
    assert_non_null(strstr(f->st.form.error, "give epochs or steps"));
    press1(&f->st, SW_KEY_DOWN);
    type(&f->st, "3");
    flags = sw_tui_state_key(&f->st, SW_KEY_ENTER, &act);
    assert_true(flags & SW_TUI_ACTION);
    assert_int_equal(sw_tui_form_int(act.form, "steps", -1), 3);
    assert_int_equal(sw_tui_form_int(act.form, "epochs", -1), -1);
    /* Esc cancels a form without an action. */
    press1(&f->st, 't');
    flags = sw_tui_state_key(&f->st, SW_KEY_ESC, &act);
    assert_false(flags & SW_TUI_ACTION);
    assert_int_equal(f->st.mode, SW_TUI_MODE_NORMAL);
}

/* Path fields check the file system; choice fields cycle through their choices only. */
static void test_tui_state_form_paths_and_choices(void **state) {
    (void)state;
    sw_tui_form form;
    int flags;
    sw_tui_form_init(&form, 99, "t");
    sw_tui_form_add_text(&form, "in", "in", SW_FIELD_PATH_IN, "/nonexistent/file.jsonl");
    sw_tui_form_add_text(&form, "out", "out", SW_FIELD_PATH_OUT, "/nonexistent-dir/x.safetensors");
    static const char *const ch[] = {"a", "b", "c"};
    sw_tui_form_add_choice(&form, "pick", "pick", ch, 3, 0);
    assert_string_equal(sw_tui_form_field(&form, "in")->error, "no such file");
    assert_non_null(strstr(sw_tui_form_field(&form, "out")->error, "does not exist"));
    assert_false(sw_tui_form_check(&form));
    char path[512];
    snprintf(path, sizeof path, "%s/x.safetensors", sw_test_tmpdir());
    sw_tui_form_set(&form, "out", path);
    assert_string_equal(sw_tui_form_field(&form, "out")->error, "");
    sw_tui_form_set(&form, "in", sw_test_tmpdir());
    assert_string_equal(sw_tui_form_field(&form, "in")->error, "is a folder, not a file");
    form.focus = 2;
    sw_tui_form_key(&form, SW_KEY_LEFT, &flags);
    assert_string_equal(sw_tui_form_text(&form, "pick"), "c");
    sw_tui_form_key(&form, 'z', &flags); /* typing does not edit a choice */
    sw_tui_form_key(&form, SW_KEY_RIGHT, &flags);
    assert_string_equal(sw_tui_form_text(&form, "pick"), "a");
    assert_int_equal(sw_tui_form_field(&form, "pick")->ival, 0);
}

/* ---- metric history and charts ------------------------------------------------------------ */

/* A full ring drops its oldest points and keeps the newest in order. */
static void test_tui_series_ring_keeps_newest(void **state) {
    (void)state;
    sw_tui_series s;
    assert_int_equal(sw_tui_series_init(&s, "x", 4), SW_OK);
    for (int i = 0; i < 6; i++) sw_tui_series_push(&s, i, 10.0 * i);
    sw_tui_series_push(&s, 6, NAN); /* skipped */
    assert_int_equal(s.n, 4);
    assert_int_equal(s.pushed, 6);
    double x, y, lo, hi, ylo, yhi;
    sw_tui_series_at(&s, 0, &x, &y);
    assert_float_equal(x, 2, 0);
    assert_float_equal(y, 20, 0);
    assert_true(sw_tui_series_last(&s, &y));
    assert_float_equal(y, 50, 0);
    assert_true(sw_tui_series_bounds(&s, &lo, &hi, &ylo, &yhi));
    assert_float_equal(lo, 2, 0);
    assert_float_equal(yhi, 50, 0);
    sw_tui_series_clear(&s);
    assert_false(sw_tui_series_last(&s, &y));
    sw_tui_series_deinit(&s);
}

/* Events fill the series, the progress and the ETA; a second run continues the x axis; loss
 * terms get their own series. */
static void test_tui_history_follows_events(void **state) {
    (void)state;
    sw_tui_history h;
    assert_int_equal(sw_tui_history_init(&h), SW_OK);
    sw_metric_event e = {
        .kind = SW_METRIC_BEGIN, .phase = "train", .total_steps = 10, .total_epochs = 2};
    sw_tui_history_on_event(&h, &e);
    assert_int_equal(h.status, SW_TUI_RUN_ACTIVE);
    for (int i = 1; i <= 4; i++) {
        e = (sw_metric_event){.kind = SW_METRIC_STEP,
                              .step = i,
                              .total_steps = 10,
                              .loss = 2.0 / i,
                              .lr = 0.1,
                              .images_per_sec = 100,
                              .elapsed = i * 0.5,
                              .n_terms = 2,
                              .term_names = {"task", "distill"},
                              .term_values = {1.5 / i, 0.5 / i}};
        sw_tui_history_on_event(&h, &e);
    }
    assert_int_equal(h.series[SW_TUI_SERIES_LOSS].n, 4);
    assert_int_equal(h.n_series, SW_TUI_SERIES_TERMS + 2);
    assert_string_equal(h.series[SW_TUI_SERIES_TERMS + 1].name, "loss:distill");
    assert_float_equal(sw_tui_history_fraction(&h), 0.4, 1e-12);
    assert_float_equal(sw_tui_history_eta(&h), 3.0, 1e-9); /* 0.5 s a step, 6 steps left */
    e = (sw_metric_event){.kind = SW_METRIC_EVAL, .step = 4, .accuracy = 0.75, .loss = 0.6};
    sw_tui_history_on_event(&h, &e);
    e = (sw_metric_event){.kind = SW_METRIC_END, .step = 4, .message = "stopped"};
    sw_tui_history_on_event(&h, &e);
    assert_int_equal(h.status, SW_TUI_RUN_STOPPED);
    assert_float_equal(sw_tui_history_eta(&h), -1, 0);
    e = (sw_metric_event){.kind = SW_METRIC_BEGIN, .total_steps = 5};
    sw_tui_history_on_event(&h, &e);
    e = (sw_metric_event){.kind = SW_METRIC_STEP, .step = 1, .loss = 0.3};
    sw_tui_history_on_event(&h, &e);
    double x, y;
    sw_tui_series_at(&h.series[SW_TUI_SERIES_LOSS], 4, &x, &y);
    assert_float_equal(x, 5, 0); /* 4 steps of run 1, then step 1 of run 2 */
    assert_int_equal(h.runs, 2);
    assert_float_equal(h.best_accuracy, 0.75, 0);
    char buf[16];
    assert_string_equal(sw_tui_format_duration(83, buf, sizeof buf), "01:23");
    assert_string_equal(sw_tui_format_duration(3723, buf, sizeof buf), "1:02:03");
    assert_string_equal(sw_tui_format_duration(-1, buf, sizeof buf), "--:--");
    sw_tui_history_deinit(&h);
}

/* Scaling puts the minimum on the bottom dot row and the maximum on the top one, fills the
 * columns between sparse points, and centres a flat line. */
static void test_tui_chart_scale(void **state) {
    (void)state;
    sw_tui_series s;
    sw_tui_series_init(&s, "ramp", 16);
    sw_tui_series_push(&s, 0, 1.0);
    sw_tui_series_push(&s, 10, 3.0);
    sw_tui_plot p;
    sw_tui_plot_scale(&s, 11, 9, 0, 0, &p);
    assert_false(p.empty);
    assert_int_equal(p.level[0], 0);
    assert_int_equal(p.level[10], 8);
    assert_int_equal(p.level[5], 4); /* interpolated halfway */
    assert_float_equal(p.y_lo, 1.0, 0);
    assert_float_equal(p.y_hi, 3.0, 0);
    sw_tui_plot_scale(&s, 11, 9, 0, 10, &p); /* a fixed range */
    assert_int_equal(p.level[10], 2);        /* 3 of 10 on 9 rows: round(0.3 * 8) */
    sw_tui_series_clear(&s);
    sw_tui_series_push(&s, 0, 5.0);
    sw_tui_series_push(&s, 1, 5.0);
    sw_tui_plot_scale(&s, 4, 9, 0, 0, &p);
    assert_int_equal(p.level[0], 4);
    assert_int_equal(p.level[3], 4);
    sw_tui_series_clear(&s);
    sw_tui_plot_scale(&s, 4, 9, 0, 0, &p);
    assert_true(p.empty);
    sw_tui_series_deinit(&s);
}

/* A rising line in braille lights the bottom-left and top-right dots of a 2x1-cell chart; in
 * ASCII it uses only . - ' | characters. */
static void test_tui_chart_draws_braille_and_ascii(void **state) {
    (void)state;
    sw_tui_series s;
    sw_tui_series_init(&s, "up", 8);
    for (int i = 0; i < 4; i++) sw_tui_series_push(&s, i, i);
    sw_tui_canvas c;
    sw_tui_canvas_init(&c);
    sw_tui_canvas_resize(&c, 2, 1);
    int cols, rows;
    sw_tui_plot_dots(2, 1, true, &cols, &rows);
    assert_int_equal(cols, 4);
    assert_int_equal(rows, 4);
    sw_tui_plot p;
    sw_tui_plot_scale(&s, cols, rows, 0, 0, &p);
    sw_tui_plot_draw(&c, (sw_tui_rect){0, 0, 2, 1}, &p, true, SW_STYLE_CHART1);
    /* Dot levels 0, 1, 2, 3 from the bottom. Cell 0: left column bottom dot (0x40), right
     * column third row (0x20). Cell 1: left column second row (0x02), right column top (0x08). */
    assert_int_equal(c.cells[0].ch, 0x2800u + 0x40 + 0x20);
    assert_int_equal(c.cells[1].ch, 0x2800u + 0x02 + 0x08);
    sw_tui_canvas_resize(&c, 4, 2);
    sw_tui_plot_dots(4, 2, false, &cols, &rows);
    sw_tui_plot_scale(&s, cols, rows, 0, 0, &p);
    sw_tui_plot_draw(&c, (sw_tui_rect){0, 0, 4, 2}, &p, false, SW_STYLE_CHART1);
    for (int i = 0; i < 8; i++) assert_non_null(strchr(" .-'|", (int)c.cells[i].ch));
    assert_int_equal(c.cells[4].ch, '.');  /* bottom-left: lowest value */
    assert_int_equal(c.cells[3].ch, '\''); /* top-right: highest value */
    sw_tui_canvas_deinit(&c);
    sw_tui_series_deinit(&s);
}

/* ---- log, canvas, inspector --------------------------------------------------------------- */

/* Newlines split a message into lines; a full log drops the oldest. */
static void test_tui_log_lines_and_ring(void **state) {
    (void)state;
    static sw_tui_log log;
    sw_tui_log_init(&log);
    sw_tui_log_add(&log, SW_TUI_LOG_ERROR, "first\nsecond");
    assert_int_equal(log.n, 2);
    assert_string_equal(sw_tui_log_at(&log, 1)->text, "second");
    assert_int_equal(sw_tui_log_at(&log, 1)->level, SW_TUI_LOG_ERROR);
    for (int i = 0; i < SW_TUI_LOG_LINES + 5; i++) sw_tui_log_add(&log, SW_TUI_LOG_INFO, "n%d", i);
    assert_int_equal(log.n, SW_TUI_LOG_LINES);
    assert_string_equal(sw_tui_log_last(&log)->text, "n404");
    assert_string_equal(sw_tui_log_at(&log, 0)->text, "n5");
}

/* UTF-8 text goes into cells one code point each and comes back out identical. */
static void test_tui_canvas_utf8_round_trip(void **state) {
    (void)state;
    sw_tui_canvas c;
    sw_tui_canvas_init(&c);
    sw_tui_canvas_resize(&c, 10, 2);
    int n = sw_tui_canvas_text(&c, 1, 0, 10,
                               "a\xe2\x94\x82\xe2\xa3\xbf"
                               "b",
                               SW_STYLE_NORMAL);
    assert_int_equal(n, 4);
    assert_int_equal(c.cells[2].ch, 0x2502);
    char row[64];
    assert_string_equal(sw_tui_canvas_row(&c, 0, row, sizeof row), " a\xe2\x94\x82\xe2\xa3\xbf"
                                                                   "b");
    sw_tui_canvas_text(&c, 0, 1, 3,
                       "\xff"
                       "xyz",
                       SW_STYLE_NORMAL); /* bad byte, clipped */
    assert_string_equal(sw_tui_canvas_row(&c, 1, row, sizeof row), "?xy");
    sw_tui_canvas_deinit(&c);
}

/* The inspector describes a conv layer: hyper-parameters, shape, parameters, neighbours. */
static void test_tui_inspect_conv_layer(void **state) {
    fixture *f = *state;
    const sw_tui_inspector *in = sw_tui_state_inspector(&f->st);
    assert_string_equal(in->title, "conv1 (Conv2d)");
    char all[4096] = "";
    for (int i = 0; i < in->n; i++) {
        strcat(all, in->rows[i].label);
        strcat(all, "=");
        strcat(all, in->rows[i].value);
        strcat(all, "\n");
    }
    assert_non_null(strstr(all, "layer=1 -> 32, kernel 3x3, stride 1, pad 1"));
    assert_non_null(strstr(all, "output=[32, 28, 28]"));
    assert_non_null(strstr(all, "params=320"));
    assert_non_null(strstr(all, "weight=[32, 1, 3, 3] 288, 0.0% zero"));
    assert_non_null(strstr(all, "feeds=bn1"));
    /* Zeroed weights show up as sparsity once the model is said to have changed. */
    sw_param *w = &f->model->nodes[0].layer->params[0];
    for (int i = 0; i < 144; i++) w->value.data[i] = 0;
    sw_tui_state_model_changed(&f->st);
    in = sw_tui_state_inspector(&f->st);
    bool found = false;
    for (int i = 0; i < in->n; i++) found |= strstr(in->rows[i].value, "50.0% zero") != NULL;
    assert_true(found);
    assert_float_equal(sw_tui_tree_sparsity(&f->st.tree, 0), 0.5, 1e-12);
}

/* ---- the rendered screen ------------------------------------------------------------------ */

/* At 80x24 every pane is there, with the model's modules and the key hints. */
static void test_tui_view_80x24_shows_every_pane(void **state) {
    fixture *f = *state;
    char *text = render(&f->st, 80, 24);
    assert_non_null(strstr(text, "shrinkwrap | fmnist_cnn"));
    assert_non_null(strstr(text, "Modules"));
    assert_non_null(strstr(text, "Inspector: conv1 (Conv2d)"));
    assert_non_null(strstr(text, "Metrics"));
    assert_non_null(strstr(text, "Log"));
    assert_non_null(strstr(text, "fc1"));
    assert_non_null(strstr(text, "? help"));
    assert_false(f->st.dirty);
    free(text);
}

/* Below the minimum size the screen is only a message saying so (and never a crash). */
static void test_tui_view_too_small_says_so(void **state) {
    fixture *f = *state;
    char *text = render(&f->st, 60, 15);
    assert_non_null(strstr(text, "terminal too small: 60x15"));
    assert_null(strstr(text, "Modules"));
    free(text);
    text = render(&f->st, 1, 1);
    free(text);
    text = render(&f->st, 0, 0);
    free(text);
}

/* Without UTF-8 every cell on screen is ASCII, charts included. */
static void test_tui_view_ascii_without_utf8(void **state) {
    fixture *f = *state;
    sw_metric_event e = {.kind = SW_METRIC_BEGIN, .total_steps = 20, .total_epochs = 1};
    sw_tui_state_on_metric(&f->st, &e);
    for (int i = 1; i <= 20; i++) {
        e = (sw_metric_event){.kind = SW_METRIC_STEP,
                              .step = i,
                              .total_steps = 20,
                              .loss = 1.0 / i,
                              .lr = 0.01 * i,
                              .images_per_sec = 50 + i};
        sw_tui_state_on_metric(&f->st, &e);
    }
    f->st.work = SW_TUI_WORK_RUNNING;
    press1(&f->st, 'p');
    for (int size = 0; size < 2; size++) {
        char *text = render(&f->st, size ? 200 : 80, size ? 60 : 24);
        for (const char *p = text; *p; p++) assert_true((unsigned char)*p < 0x80);
        assert_non_null(strstr(text, "PAUSED"));
        assert_non_null(strstr(text, "20/20"));
        free(text);
    }
}

/* The help overlay lists every key of the help table (at a size where it all fits). */
static void test_tui_view_help_lists_every_key(void **state) {
    fixture *f = *state;
    press1(&f->st, '?');
    char *text = render(&f->st, 100, 50);
    int n;
    const sw_tui_help_line *lines = sw_tui_help_lines(&n);
    for (int i = 0; i < n; i++) {
        const char *what = lines[i].keys ? lines[i].keys : lines[i].text;
        if (!strstr(text, what)) fail_msg("help does not show \"%s\"", what);
    }
    free(text);
}

/* While training runs, the metrics pane shows progress with step, epoch and ETA, and a chart
 * changes as steps arrive. */
static void test_tui_view_progress_and_chart_move(void **state) {
    fixture *f = *state;
    sw_metric_event e = {.kind = SW_METRIC_BEGIN, .total_steps = 40, .total_epochs = 2};
    sw_tui_state_on_metric(&f->st, &e);
    f->st.work = SW_TUI_WORK_RUNNING;
    char *before = NULL, *after = NULL;
    for (int i = 1; i <= 30; i++) {
        e = (sw_metric_event){.kind = SW_METRIC_STEP,
                              .step = i,
                              .total_steps = 40,
                              .total_epochs = 2,
                              .epoch = i / 20,
                              .loss = 2.0 / i + 0.1,
                              .lr = 0.05,
                              .images_per_sec = 100,
                              .elapsed = i * 0.1};
        sw_tui_state_on_metric(&f->st, &e);
        if (i == 10) before = render(&f->st, 80, 24);
    }
    after = render(&f->st, 80, 24);
    assert_non_null(strstr(before, "10/40 ep 1/2 ETA 00:03"));
    assert_non_null(strstr(after, "30/40 ep 2/2 ETA 00:01"));
    assert_non_null(strstr(after, "running 75%"));
    assert_string_not_equal(before, after);
    free(before);
    free(after);
}

/* The session's own training does not continue a replayed log's charts: its BEGIN starts
 * them afresh. */
static void test_tui_state_own_run_replaces_a_replay(void **state) {
    fixture *f = *state;
    sw_metric_event e = {.kind = SW_METRIC_STEP, .step = 7, .loss = 1};
    sw_tui_state_on_metric(&f->st, &e);
    snprintf(f->st.replay, sizeof f->st.replay, "old.jsonl");
    e = (sw_metric_event){.kind = SW_METRIC_BEGIN, .total_steps = 3};
    sw_tui_state_on_metric(&f->st, &e);
    assert_string_equal(f->st.replay, "");
    assert_int_equal(f->st.history.series[SW_TUI_SERIES_LOSS].n, 0);
    assert_int_equal(f->st.history.runs, 1);
    assert_float_equal(f->st.history.x_offset, 0, 0);
}

/* The inspector names the modules that must lose the same channels (residual Adds), and a
 * norm pruner attached with dependency groups on gets NNI's dependency_group_id. */
static void test_tui_attach_dependency_groups(void **state) {
    fixture *f = *state;
    sw_tui_chain ch;
    sw_tui_chain_init(&ch, f->model);
    int conv2 = sw_model_find(f->model, "layer1.0.conv2");
    sw_tui_inspector in = {0};
    sw_tui_chain_inspect(&ch, conv2, &in);
    assert_true(in.n >= 1);
    assert_string_equal(in.rows[0].label, "dep group");
    assert_non_null(strstr(in.rows[0].value, "layer1.1.conv2"));
    assert_non_null(strstr(in.rows[0].value, "conv1"));
    int n_algos;
    const sw_tui_algo *algos = sw_tui_algos(&n_algos);
    assert_true(n_algos >= 4);
    assert_string_equal(algos[0].entry.name, "L1Norm");
    sw_tui_form form;
    sw_tui_form_init(&form, SW_TUI_FORM_ATTACH, "");
    algos[0].entry.form(&form);
    sw_tui_form_set(&form, "dependency", "on");
    assert_true(sw_tui_form_check(&form));
    int nodes[] = {conv2, sw_model_find(f->model, "layer1.0.bn2")};
    int skipped = 0;
    assert_int_equal(sw_tui_chain_attach(&ch, &algos[0], &form, nodes, 2, NULL, &skipped), SW_OK);
    assert_int_equal(skipped, 1);
    assert_non_null(strstr(ch.items[0].config, "\"dependency_group_id\":\"dep"));
    assert_int_equal(sw_tui_chain_compress(&ch, -1, -1), SW_OK);
    sw_tui_chain_publish(&ch, &f->st);
    assert_string_equal(f->st.badges[conv2], "P:L1 50%");
    assert_int_equal(f->st.n_chain, 1);
    assert_int_equal(sw_tui_chain_detach(&ch), SW_OK);
    assert_int_not_equal(sw_tui_chain_detach(&ch), SW_OK); /* nothing left to detach */
    sw_tui_chain_deinit(&ch);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tui_state_tree_starts_top_level_expanded, setup_resnet,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_tree_cursor_clamps, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_tree_left_right, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_tree_collapse_moves_cursor, setup_resnet,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_tree_selection, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_search, setup_resnet, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_quit_asks_when_running, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_pause_resume_stop, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_busy_refuses_new_work, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_attach_list, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_forms_follow_the_chain, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_sensitivity_table, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_compare_view, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_help_opens_and_closes, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_log_focus_scrolls, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_train_form_validates_in_place, setup_cnn,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_train_form_needs_a_length, setup_cnn,
                                        teardown),
        cmocka_unit_test(test_tui_state_form_paths_and_choices),
        cmocka_unit_test(test_tui_series_ring_keeps_newest),
        cmocka_unit_test(test_tui_history_follows_events),
        cmocka_unit_test(test_tui_chart_scale),
        cmocka_unit_test(test_tui_chart_draws_braille_and_ascii),
        cmocka_unit_test(test_tui_log_lines_and_ring),
        cmocka_unit_test(test_tui_canvas_utf8_round_trip),
        cmocka_unit_test_setup_teardown(test_tui_inspect_conv_layer, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_view_80x24_shows_every_pane, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_view_too_small_says_so, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_view_ascii_without_utf8, setup_cnn_ascii,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tui_view_help_lists_every_key, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_view_progress_and_chart_move, setup_cnn, teardown),
        cmocka_unit_test_setup_teardown(test_tui_state_own_run_replaces_a_replay, setup_cnn,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tui_attach_dependency_groups, setup_resnet, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
