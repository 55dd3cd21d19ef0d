/* state.c - the workbench's key handling and metric listener (no terminal here). */
#include "state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sw_tui_help_line help_lines[] = {
    {NULL, "Move around"},
    {"Up/k Down/j", "move the cursor"},
    {"PgUp PgDn g G", "page up / down, first / last"},
    {"Left/h Right/l", "collapse or go to parent / expand or go to child"},
    {"Enter", "expand or collapse a container"},
    {"+ -", "expand / collapse everything"},
    {"space", "mark a module (several for attach)"},
    {"u", "clear the marks"},
    {"/ n N", "search module names; next / previous match"},
    {"Tab", "switch focus: modules / log (arrows scroll it)"},
    {NULL, "Work"},
    {"t", "train: epochs, steps, lr, batch, subset"},
    {"a", "attach a compressor to the selected modules"},
    {"d", "detach the newest compressor"},
    {"c", "compress with the attached chain (trains when the chain does)"},
    {"S", "sensitivity scan: L1Norm alone at 25-90% per selected module"},
    {"p", "pause / resume at the next step"},
    {"s", "stop at the next step boundary (or the scan after its cell)"},
    {NULL, "Files and view"},
    {"o", "open a metrics log (JSON lines) and chart it"},
    {"e", "export: model, masks, calibration, sped-up model + before/after"},
    {"w", "save the set-up as a Lua recipe (shrinkwrap run)"},
    {"[ ]", "previous / next charts when not all fit"},
    {"Ctrl-L", "redraw the screen"},
    {"?", "this help"},
    {"q", "quit (asks first while work runs)"},
    {NULL, "In forms"},
    {"Tab Up Down", "next / previous field"},
    {"Left Right", "move in the text; cycle a choice"},
    {"Enter Esc", "apply (only when valid) / cancel"},
};

const sw_tui_help_line *sw_tui_help_lines(int *n) {
    *n = (int)(sizeof help_lines / sizeof help_lines[0]);
    return help_lines;
}

sw_status sw_tui_state_init(sw_tui_state *st, const sw_model *model, bool utf8) {
    memset(st, 0, sizeof *st);
    st->model = model;
    st->utf8 = utf8;
    st->dirty = true;
    st->inspector_entry = -2;
    st->inspector_version = -1;
    sw_tui_log_init(&st->log);
    SW_TRY(sw_tui_tree_init(&st->tree, model));
    sw_status s = sw_tui_history_init(&st->history);
    if (s != SW_OK) {
        sw_tui_tree_deinit(&st->tree);
        return s;
    }
    st->badges = calloc((size_t)(model->n_nodes > 0 ? model->n_nodes : 1), sizeof *st->badges);
    if (!st->badges) {
        sw_tui_history_deinit(&st->history);
        sw_tui_tree_deinit(&st->tree);
        return SW_FAIL(SW_ERR_NOMEM, "workbench: no memory for the badges");
    }
    st->defaults = (sw_tui_defaults){.epochs = 1, .steps = -1, .lr = 0.05, .batch = 128};
    snprintf(st->defaults.export_path, sizeof st->defaults.export_path, "%s.trained.safetensors",
             model->arch ? model->arch : "model");
    snprintf(st->defaults.masks_path, sizeof st->defaults.masks_path, "%s.masks.safetensors",
             model->arch ? model->arch : "model");
    snprintf(st->defaults.log_path, sizeof st->defaults.log_path, "metrics.jsonl");
    snprintf(st->defaults.recipe_path, sizeof st->defaults.recipe_path, "%s.recipe.lua",
             model->arch ? model->arch : "model");
    snprintf(st->title, sizeof st->title, "%s", model->arch ? model->arch : "model");
    snprintf(st->data_desc, sizeof st->data_desc, "data not loaded");
    return SW_OK;
}

void sw_tui_state_deinit(sw_tui_state *st) {
    free(st->badges);
    sw_tui_history_deinit(&st->history);
    sw_tui_tree_deinit(&st->tree);
}

void sw_tui_state_model_changed(sw_tui_state *st) {
    st->model_version++;
    sw_tui_tree_update_zeros(&st->tree);
    st->dirty = true;
}

const sw_tui_inspector *sw_tui_state_inspector(sw_tui_state *st) {
    int entry = st->tree.cursor;
    if (entry != st->inspector_entry || st->model_version != st->inspector_version) {
        sw_tui_inspect(&st->tree, entry, &st->inspector);
        if (st->inspect_extra && entry >= 0 && st->tree.mt.entries[entry].node >= 0) {
            /* Compression rows go first: they are what changes while compressing. */
            sw_tui_inspector extra = {0};
            st->inspect_extra(st->inspect_ctx, st->tree.mt.entries[entry].node, &extra);
            int n = extra.n;
            if (n > 0) {
                int keep = st->inspector.n + n > SW_TUI_INSPECT_ROWS ? SW_TUI_INSPECT_ROWS - n
                                                                     : st->inspector.n;
                memmove(st->inspector.rows + n, st->inspector.rows,
                        sizeof(sw_tui_inspect_row) * (size_t)keep);
                memcpy(st->inspector.rows, extra.rows, sizeof(sw_tui_inspect_row) * (size_t)n);
                st->inspector.n = keep + n;
            }
        }
        st->inspector_entry = entry;
        st->inspector_version = st->model_version;
    }
    return &st->inspector;
}

/* ---- forms -------------------------------------------------------------------------------- */

/* Training needs a length: epochs or steps. */
static bool train_rule(sw_tui_form *f) {
    long epochs = sw_tui_form_int(f, "epochs", 0), steps = sw_tui_form_int(f, "steps", 0);
    if (epochs <= 0 && steps <= 0) {
        snprintf(f->error, sizeof f->error,
                 "give epochs or steps (or both: the first reached ends)");
        return false;
    }
    return true;
}

static void fmt_long(char *buf, size_t size, long v, bool unset_blank) {
    if (unset_blank && v < 0)
        buf[0] = '\0';
    else
        snprintf(buf, size, "%ld", v);
}

void sw_tui_state_open_form(sw_tui_state *st, sw_tui_form_id id) {
    sw_tui_form *f = &st->form;
    sw_tui_defaults *d = &st->defaults;
    char a[32], b[32];
    switch (id) {
    case SW_TUI_FORM_TRAIN:
        sw_tui_form_init(f, id, "Train");
        fmt_long(a, sizeof a, d->epochs, false);
        sw_tui_form_add_int(f, "epochs", "epochs", a, 0, 10000, true)->hint =
            "full passes over the training subset (0 or empty: steps decide)";
        fmt_long(b, sizeof b, d->steps, true);
        sw_tui_form_add_int(f, "steps", "steps", b, 0, 100000000, true)->hint =
            "optimizer steps at most (empty: epochs decide)";
        snprintf(a, sizeof a, "%g", d->lr);
        sw_tui_form_add_float(f, "lr", "learning rate", a, 1e-8, 10)->hint =
            "SGD, momentum 0.9, cosine schedule";
        fmt_long(a, sizeof a, d->batch, false);
        sw_tui_form_add_int(f, "batch", "batch size", a, 1, 4096, false)->hint =
            "images per optimizer step";
        fmt_long(a, sizeof a, d->subset, false);
        sw_tui_form_add_int(f, "subset", "train subset", a, 0, 100000000, false)->hint =
            "first N training images (0: all)";
        fmt_long(a, sizeof a, d->test_subset, false);
        sw_tui_form_add_int(f, "test_subset", "test subset", a, 0, 100000000, false)->hint =
            "first N test images for the evaluation after each epoch (0: all)";
        f->rule = train_rule;
        break;
    case SW_TUI_FORM_COMPRESS:
        sw_tui_form_init(f, id, "Compress with the attached chain");
        /* A chain that trains starts from the training form's length; a one-shot one empty. */
        a[0] = b[0] = '\0';
        if (st->chain_needs_limits) {
            fmt_long(a, sizeof a, d->epochs, true);
            fmt_long(b, sizeof b, d->steps, true);
            if (d->epochs <= 0) a[0] = '\0';
        }
        sw_tui_form_add_int(f, "epochs", "epochs", a, 0, 10000, true)->hint =
            st->chain_needs_limits
                ? "training epochs during compression (this chain trains: give epochs or steps)"
                : "training epochs during compression (empty with steps empty: one-shot)";
        sw_tui_form_add_int(f, "steps", "steps", b, 0, 100000000, true)->hint =
            "optimizer steps at most (empty: epochs decide)";
        break;
    case SW_TUI_FORM_OPEN_LOG:
        sw_tui_form_init(f, id, "Open a metrics log");
        sw_tui_form_add_text(f, "path", "file", SW_FIELD_PATH_IN, d->log_path)->hint =
            "JSON lines from `shrinkwrap train --log FILE`";
        break;
    case SW_TUI_FORM_EXPORT:
        sw_tui_form_init(f, id, "Export");
        sw_tui_form_add_text(f, "path", "model file", SW_FIELD_PATH_OUT, d->export_path)->hint =
            "safetensors model, written atomically";
        if (st->chain_has_pruner) {
            sw_tui_field *m =
                sw_tui_form_add_text(f, "masks", "masks file", SW_FIELD_PATH_OUT, d->masks_path);
            m->optional = true;
            m->hint = "the chain's masks as safetensors (empty: none)";
            sw_tui_field_check(m);
        }
        if (st->chain_has_quantizer) {
            sw_tui_field *q = sw_tui_form_add_text(f, "calibration", "calibration",
                                                   SW_FIELD_PATH_OUT, d->calibration_path);
            q->optional = true;
            q->hint = "the newest quantizer's scales and zero points as JSON (empty: none)";
            sw_tui_field_check(q);
        }
        if (st->chain_has_pruner) {
            sw_tui_field *p = sw_tui_form_add_text(f, "speedup", "sped-up model", SW_FIELD_PATH_OUT,
                                                   d->speedup_path);
            p->optional = true;
            p->hint = "the masks' channels removed for real, then a before/after view "
                      "(empty: none)";
            sw_tui_field_check(p);
        }
        break;
    case SW_TUI_FORM_RECIPE:
        sw_tui_form_init(f, id, "Save the set-up as a Lua recipe");
        sw_tui_form_add_text(f, "path", "recipe", SW_FIELD_PATH_OUT, d->recipe_path)->hint =
            "rebuilds this chain with from_compressor; the model's weights go beside it";
        break;
    case SW_TUI_FORM_ATTACH:
        break; /* built by the algorithm's own form function (see the PICK mode) */
    }
    st->mode = SW_TUI_MODE_FORM;
    st->dirty = true;
}

/* Remembers what was submitted as the next defaults. */
static void keep_defaults(sw_tui_state *st, const sw_tui_form *f) {
    sw_tui_defaults *d = &st->defaults;
    switch (f->id) {
    case SW_TUI_FORM_TRAIN:
        d->epochs = (int)sw_tui_form_int(f, "epochs", 0);
        d->steps = sw_tui_form_int(f, "steps", -1);
        d->lr = sw_tui_form_float(f, "lr", d->lr);
        d->batch = (int)sw_tui_form_int(f, "batch", d->batch);
        d->subset = (int)sw_tui_form_int(f, "subset", 0);
        d->test_subset = (int)sw_tui_form_int(f, "test_subset", 0);
        break;
    case SW_TUI_FORM_OPEN_LOG:
        snprintf(d->log_path, sizeof d->log_path, "%s", sw_tui_form_text(f, "path"));
        break;
    case SW_TUI_FORM_EXPORT:
        snprintf(d->export_path, sizeof d->export_path, "%s", sw_tui_form_text(f, "path"));
        if (sw_tui_form_field((sw_tui_form *)f, "masks"))
            snprintf(d->masks_path, sizeof d->masks_path, "%s", sw_tui_form_text(f, "masks"));
        if (sw_tui_form_field((sw_tui_form *)f, "calibration"))
            snprintf(d->calibration_path, sizeof d->calibration_path, "%s",
                     sw_tui_form_text(f, "calibration"));
        if (sw_tui_form_field((sw_tui_form *)f, "speedup"))
            snprintf(d->speedup_path, sizeof d->speedup_path, "%s", sw_tui_form_text(f, "speedup"));
        break;
    case SW_TUI_FORM_RECIPE:
        snprintf(d->recipe_path, sizeof d->recipe_path, "%s", sw_tui_form_text(f, "path"));
        break;
    default:
        break;
    }
}

static int form_key(sw_tui_state *st, int key, sw_tui_action *act) {
    int flags;
    sw_tui_form_result r = sw_tui_form_key(&st->form, key, &flags);
    if (r == SW_TUI_FORM_CANCEL) {
        st->mode = SW_TUI_MODE_NORMAL;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    }
    if (r != SW_TUI_FORM_SUBMIT) return flags;
    st->mode = SW_TUI_MODE_NORMAL;
    keep_defaults(st, &st->form);
    act->form = &st->form;
    switch (st->form.id) {
    case SW_TUI_FORM_TRAIN:
        act->kind = SW_TUI_ACT_TRAIN;
        break;
    case SW_TUI_FORM_COMPRESS:
        act->kind = SW_TUI_ACT_COMPRESS;
        break;
    case SW_TUI_FORM_OPEN_LOG:
        act->kind = SW_TUI_ACT_OPEN_LOG;
        break;
    case SW_TUI_FORM_EXPORT:
        act->kind = SW_TUI_ACT_EXPORT;
        break;
    case SW_TUI_FORM_ATTACH:
        act->kind = SW_TUI_ACT_ATTACH;
        act->algo = st->pick;
        break;
    case SW_TUI_FORM_RECIPE:
        act->kind = SW_TUI_ACT_RECIPE;
        break;
    }
    return SW_TUI_HANDLED | SW_TUI_REDRAW | SW_TUI_ACTION;
}

/* ---- modes -------------------------------------------------------------------------------- */

static int search_key(sw_tui_state *st, int key) {
    size_t n = strlen(st->search);
    if (key == SW_KEY_ESC) {
        st->tree.cursor = st->search_origin;
        st->tree.query[0] = '\0';
        sw_tui_tree_refresh(&st->tree);
        st->mode = SW_TUI_MODE_NORMAL;
    } else if (key == SW_KEY_ENTER || key == '\r') {
        st->mode = SW_TUI_MODE_NORMAL;
        if (st->search[0] && !sw_tui_tree_search(&st->tree, st->search, 1, true))
            sw_tui_log_add(&st->log, SW_TUI_LOG_WARN, "no module matches \"%s\"", st->search);
    } else if (key == SW_KEY_BACKSPACE || key == 8) {
        if (n > 0) st->search[n - 1] = '\0';
    } else if (key == SW_KEY_CTRL_U) {
        st->search[0] = '\0';
    } else if (key >= 0x20 && key < 0x7F) {
        if (n + 1 < sizeof st->search) {
            st->search[n] = (char)key;
            st->search[n + 1] = '\0';
        }
    } else {
        return SW_TUI_IGNORED;
    }
    if (st->mode == SW_TUI_MODE_SEARCH) {
        /* Incremental: the first match from where the search began. */
        st->tree.cursor = st->search_origin;
        if (st->search[0])
            sw_tui_tree_search(&st->tree, st->search, 1, true);
        else
            st->tree.query[0] = '\0';
    }
    return SW_TUI_HANDLED | SW_TUI_REDRAW;
}

static int help_key(sw_tui_state *st, int key) {
    switch (key) {
    case SW_KEY_DOWN:
    case 'j':
        st->help_scroll++;
        break;
    case SW_KEY_UP:
    case 'k':
        if (st->help_scroll > 0) st->help_scroll--;
        break;
    case SW_KEY_PGDN:
        st->help_scroll += 10;
        break;
    case SW_KEY_PGUP:
        st->help_scroll = st->help_scroll > 10 ? st->help_scroll - 10 : 0;
        break;
    default: /* any other key closes the help, like less's q */
        st->mode = SW_TUI_MODE_NORMAL;
    }
    return SW_TUI_HANDLED | SW_TUI_REDRAW;
}

static int confirm_key(sw_tui_state *st, int key, sw_tui_action *act) {
    if (key == 'y' || key == 'Y') {
        st->mode = SW_TUI_MODE_NORMAL;
        if (st->work != SW_TUI_WORK_IDLE) {
            st->work = SW_TUI_WORK_STOPPING;
            act->kind = SW_TUI_ACT_STOP;
            return SW_TUI_HANDLED | SW_TUI_REDRAW | SW_TUI_QUIT | SW_TUI_ACTION;
        }
        return SW_TUI_HANDLED | SW_TUI_QUIT;
    }
    if (key == 'n' || key == 'N' || key == SW_KEY_ESC || key == 'q') {
        st->mode = SW_TUI_MODE_NORMAL;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    }
    return SW_TUI_HANDLED; /* the question stays until answered */
}

/* The before/after view: any key closes it. */
static int compare_key(sw_tui_state *st) {
    st->mode = SW_TUI_MODE_NORMAL;
    return SW_TUI_HANDLED | SW_TUI_REDRAW;
}

/* The sensitivity table: s stops a running scan after the cell in progress; once it is over
 * any key closes the table. */
static int sens_key(sw_tui_state *st, int key, sw_tui_action *act) {
    if (st->work == SW_TUI_WORK_IDLE) {
        st->mode = SW_TUI_MODE_NORMAL;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    }
    if (key == 's' || key == SW_KEY_ESC) {
        if (st->work != SW_TUI_WORK_STOPPING) {
            st->work = SW_TUI_WORK_STOPPING;
            sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "stopping the scan after this cell");
        }
        act->kind = SW_TUI_ACT_STOP;
        return SW_TUI_HANDLED | SW_TUI_REDRAW | SW_TUI_ACTION;
    }
    if (key == 'q') {
        st->mode = SW_TUI_MODE_CONFIRM;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    }
    return SW_TUI_HANDLED;
}

static int pick_key(sw_tui_state *st, int key) {
    switch (key) {
    case SW_KEY_DOWN:
    case 'j':
        if (st->pick < st->n_algos - 1) st->pick++;
        break;
    case SW_KEY_UP:
    case 'k':
        if (st->pick > 0) st->pick--;
        break;
    case SW_KEY_ENTER:
    case '\r':
        sw_tui_form_init(&st->form, SW_TUI_FORM_ATTACH, "");
        snprintf(st->form.title, sizeof st->form.title, "Attach %s %s", st->algos[st->pick].name,
                 st->algos[st->pick].kind);
        if (st->algos[st->pick].form) st->algos[st->pick].form(&st->form);
        st->mode = SW_TUI_MODE_FORM;
        break;
    case SW_KEY_ESC:
    case 'q':
        st->mode = SW_TUI_MODE_NORMAL;
        break;
    default:
        return SW_TUI_HANDLED;
    }
    return SW_TUI_HANDLED | SW_TUI_REDRAW;
}

static bool busy(sw_tui_state *st, const char *what) {
    if (st->work == SW_TUI_WORK_IDLE) return false;
    sw_tui_log_add(&st->log, SW_TUI_LOG_WARN, "cannot %s while work is running (p pauses, s stops)",
                   what);
    return true;
}

/* Keys of the normal mode that act on the focused pane. */
static int pane_key(sw_tui_state *st, int key) {
    if (st->focus == SW_TUI_FOCUS_LOG) {
        switch (key) {
        case SW_KEY_UP:
        case 'k':
            sw_tui_log_scroll(&st->log, 1);
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        case SW_KEY_DOWN:
        case 'j':
            sw_tui_log_scroll(&st->log, -1);
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        case SW_KEY_PGUP:
            sw_tui_log_scroll(&st->log, 5);
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        case SW_KEY_PGDN:
            sw_tui_log_scroll(&st->log, -5);
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        case SW_KEY_HOME:
        case 'g':
            sw_tui_log_scroll(&st->log, st->log.n);
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        case SW_KEY_END:
        case 'G':
            st->log.scroll = 0;
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        default:
            return SW_TUI_IGNORED;
        }
    }
    sw_tui_tree *t = &st->tree;
    switch (key) {
    case SW_KEY_UP:
    case 'k':
        sw_tui_tree_move(t, -1);
        break;
    case SW_KEY_DOWN:
    case 'j':
        sw_tui_tree_move(t, 1);
        break;
    case SW_KEY_PGUP:
        sw_tui_tree_move(t, -10);
        break;
    case SW_KEY_PGDN:
        sw_tui_tree_move(t, 10);
        break;
    case SW_KEY_HOME:
    case 'g':
        sw_tui_tree_home(t);
        break;
    case SW_KEY_END:
    case 'G':
        sw_tui_tree_end(t);
        break;
    case SW_KEY_LEFT:
    case 'h':
        sw_tui_tree_left(t);
        break;
    case SW_KEY_RIGHT:
    case 'l':
        sw_tui_tree_right(t);
        break;
    case SW_KEY_ENTER:
    case '\r':
        sw_tui_tree_toggle(t);
        break;
    case ' ':
        sw_tui_tree_toggle_mark(t);
        sw_tui_tree_move(t, 1);
        break;
    case '+':
        sw_tui_tree_expand_all(t, true);
        break;
    case '-':
        sw_tui_tree_expand_all(t, false);
        break;
    case 'u':
        sw_tui_tree_clear_marks(t);
        break;
    default:
        return SW_TUI_IGNORED;
    }
    return SW_TUI_HANDLED | SW_TUI_REDRAW;
}

static int normal_key(sw_tui_state *st, int key, sw_tui_action *act) {
    switch (key) {
    case 'q':
        if (st->work != SW_TUI_WORK_IDLE) {
            st->mode = SW_TUI_MODE_CONFIRM;
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        }
        return SW_TUI_HANDLED | SW_TUI_QUIT;
    case '?':
        st->mode = SW_TUI_MODE_HELP;
        st->help_scroll = 0;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case '/':
        st->mode = SW_TUI_MODE_SEARCH;
        st->focus = SW_TUI_FOCUS_TREE;
        st->search[0] = '\0';
        st->search_origin = st->tree.cursor;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'n':
    case 'N':
        if (!st->tree.query[0])
            sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "no search yet: press / to search");
        else if (!sw_tui_tree_search(&st->tree, st->tree.query, key == 'n' ? 1 : -1, false))
            sw_tui_log_add(&st->log, SW_TUI_LOG_WARN, "no module matches \"%s\"", st->tree.query);
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case SW_KEY_TAB:
    case SW_KEY_BTAB:
        st->focus = st->focus == SW_TUI_FOCUS_TREE ? SW_TUI_FOCUS_LOG : SW_TUI_FOCUS_TREE;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 't':
        if (!busy(st, "start training")) sw_tui_state_open_form(st, SW_TUI_FORM_TRAIN);
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'c':
        if (busy(st, "start compressing")) return SW_TUI_HANDLED | SW_TUI_REDRAW;
        if (st->n_chain == 0)
            sw_tui_log_add(&st->log, SW_TUI_LOG_WARN,
                           "nothing to compress with: attach a "
                           "compressor first (a)");
        else
            sw_tui_state_open_form(st, SW_TUI_FORM_COMPRESS);
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'a':
        if (busy(st, "attach")) return SW_TUI_HANDLED | SW_TUI_REDRAW;
        if (st->n_algos == 0) {
            sw_tui_log_add(&st->log, SW_TUI_LOG_WARN,
                           "no compression algorithm is built into this version yet");
        } else {
            if (st->pick >= st->n_algos) st->pick = 0;
            st->mode = SW_TUI_MODE_PICK;
        }
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'd':
        if (busy(st, "detach")) return SW_TUI_HANDLED | SW_TUI_REDRAW;
        if (st->n_chain == 0) {
            sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "no compressor is attached");
            return SW_TUI_HANDLED | SW_TUI_REDRAW;
        }
        act->kind = SW_TUI_ACT_DETACH;
        return SW_TUI_HANDLED | SW_TUI_REDRAW | SW_TUI_ACTION;
    case 'p':
        if (st->work == SW_TUI_WORK_RUNNING) {
            st->work = SW_TUI_WORK_PAUSED;
            sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "paused at step %ld (p resumes)",
                           st->history.step);
        } else if (st->work == SW_TUI_WORK_PAUSED) {
            st->work = SW_TUI_WORK_RUNNING;
            sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "resumed");
        } else {
            sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "nothing is running");
        }
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 's':
        if (st->work == SW_TUI_WORK_RUNNING || st->work == SW_TUI_WORK_PAUSED) {
            st->work = SW_TUI_WORK_STOPPING;
            sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "stopping at the next step boundary");
            act->kind = SW_TUI_ACT_STOP;
            return SW_TUI_HANDLED | SW_TUI_REDRAW | SW_TUI_ACTION;
        }
        sw_tui_log_add(&st->log, SW_TUI_LOG_INFO,
                       st->work == SW_TUI_WORK_STOPPING
                           ? "already stopping at the next step boundary"
                           : "nothing is running");
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'o':
        if (!busy(st, "open a log")) sw_tui_state_open_form(st, SW_TUI_FORM_OPEN_LOG);
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'e':
        sw_tui_state_open_form(st, SW_TUI_FORM_EXPORT);
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'w':
        if (!busy(st, "save a recipe")) sw_tui_state_open_form(st, SW_TUI_FORM_RECIPE);
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case 'S':
        if (busy(st, "start a sensitivity scan")) return SW_TUI_HANDLED | SW_TUI_REDRAW;
        act->kind = SW_TUI_ACT_SENSITIVITY;
        return SW_TUI_HANDLED | SW_TUI_REDRAW | SW_TUI_ACTION;
    case ']':
        st->chart_page++;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case '[':
        if (st->chart_page > 0) st->chart_page--;
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    case SW_KEY_CTRL_L:
    case SW_KEY_RESIZE:
        return SW_TUI_HANDLED | SW_TUI_REDRAW;
    default:
        return pane_key(st, key);
    }
}

int sw_tui_state_key(sw_tui_state *st, int key, sw_tui_action *act) {
    *act = (sw_tui_action){.kind = SW_TUI_ACT_NONE};
    int flags;
    if (key == SW_KEY_RESIZE) {
        flags = SW_TUI_HANDLED | SW_TUI_REDRAW;
    } else {
        switch (st->mode) {
        case SW_TUI_MODE_SEARCH:
            flags = search_key(st, key);
            break;
        case SW_TUI_MODE_FORM:
            flags = form_key(st, key, act);
            break;
        case SW_TUI_MODE_HELP:
            flags = help_key(st, key);
            break;
        case SW_TUI_MODE_CONFIRM:
            flags = confirm_key(st, key, act);
            break;
        case SW_TUI_MODE_PICK:
            flags = pick_key(st, key);
            break;
        case SW_TUI_MODE_COMPARE:
            flags = compare_key(st);
            break;
        case SW_TUI_MODE_SENS:
            flags = sens_key(st, key, act);
            break;
        default:
            flags = normal_key(st, key, act);
        }
    }
    /* The screen manager redraws on this; the flag also covers work-time redraws. */
    if (flags & SW_TUI_REDRAW) st->dirty = true;
    return flags;
}

/* ---- metric events ------------------------------------------------------------------------ */

void sw_tui_state_on_metric(void *ctx, const sw_metric_event *ev) {
    sw_tui_state *st = ctx;
    sw_tui_history *h = &st->history;
    /* The session's own runs do not continue the charts of a replayed log. */
    if (ev->kind == SW_METRIC_BEGIN && st->replay[0]) {
        sw_tui_history_clear(h);
        st->replay[0] = '\0';
    }
    sw_tui_history_on_event(h, ev);
    const char *phase = ev->phase ? ev->phase : "train";
    switch (ev->kind) {
    case SW_METRIC_BEGIN:
        sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "%s: %ld steps, %d epoch%s", phase,
                       ev->total_steps, ev->total_epochs, ev->total_epochs == 1 ? "" : "s");
        break;
    case SW_METRIC_EVAL:
        sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "eval at step %ld: accuracy %.2f%%, loss %.4f",
                       ev->step, 100.0 * ev->accuracy, ev->loss);
        break;
    case SW_METRIC_END: {
        char t[16];
        sw_tui_log_add(&st->log,
                       h->status == SW_TUI_RUN_COMPLETED ? SW_TUI_LOG_OK
                       : h->status == SW_TUI_RUN_STOPPED ? SW_TUI_LOG_WARN
                                                         : SW_TUI_LOG_ERROR,
                       "%s %s at step %ld of %ld after %s", phase,
                       ev->message ? ev->message : "ended", ev->step, h->total_steps,
                       sw_tui_format_duration(h->elapsed, t, sizeof t));
        break;
    }
    case SW_METRIC_MESSAGE:
        sw_tui_log_add(&st->log, SW_TUI_LOG_INFO, "%s", ev->message ? ev->message : "");
        break;
    default:
        break;
    }
    st->dirty = true;
}
