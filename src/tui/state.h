/* state.h - the workbench's plain-data state and its key handling, without a terminal.
 *
 * Everything the screen shows lives here: the module tree, the metric history, the log, the
 * open form or overlay, what work is running. sw_tui_state_key handles one key the way htop's
 * panels do: it returns flags (handled, redraw, quit) and, for things only the application can
 * do (train, stop, open a log, export, attach a compressor), fills an sw_tui_action for it to
 * carry out. The application (app.c) owns the model and the work; the views (view.c) draw
 * this state into a canvas; neither needs curses to be tested.
 */
#ifndef SW_TUI_STATE_H
#define SW_TUI_STATE_H

#include <stdbool.h>

#include "form.h"
#include "history.h"
#include "inspect.h"
#include "keys.h"
#include "logbuf.h"
#include "tree.h"

typedef enum sw_tui_mode {
    SW_TUI_MODE_NORMAL,
    SW_TUI_MODE_SEARCH,  /* typing a `/` query */
    SW_TUI_MODE_FORM,    /* a form overlay */
    SW_TUI_MODE_HELP,    /* the key list */
    SW_TUI_MODE_CONFIRM, /* "work is running: quit?" */
    SW_TUI_MODE_PICK,    /* choosing an algorithm to attach */
    SW_TUI_MODE_COMPARE, /* the before/after view of a sped-up export */
    SW_TUI_MODE_SENS,    /* the sensitivity scan's table */
} sw_tui_mode;

typedef enum sw_tui_focus {
    SW_TUI_FOCUS_TREE,
    SW_TUI_FOCUS_LOG,
} sw_tui_focus;

/* Long work, driven by the application; the state only shows it and routes keys. */
typedef enum sw_tui_work {
    SW_TUI_WORK_IDLE,
    SW_TUI_WORK_RUNNING,
    SW_TUI_WORK_PAUSED,
    SW_TUI_WORK_STOPPING, /* a stop was asked; it takes effect at the next step boundary */
} sw_tui_work;

/* Forms the state opens; their submit becomes the action of the same name. */
typedef enum sw_tui_form_id {
    SW_TUI_FORM_TRAIN = 1,
    SW_TUI_FORM_COMPRESS,
    SW_TUI_FORM_OPEN_LOG,
    SW_TUI_FORM_EXPORT,
    SW_TUI_FORM_ATTACH,
    SW_TUI_FORM_RECIPE,
} sw_tui_form_id;

typedef enum sw_tui_action_kind {
    SW_TUI_ACT_NONE,
    SW_TUI_ACT_TRAIN,    /* form: epochs, steps, lr, batch, subset, test_subset */
    SW_TUI_ACT_COMPRESS, /* form: epochs, steps (the attached chain) */
    SW_TUI_ACT_STOP,     /* stop the running work at the next step boundary */
    SW_TUI_ACT_OPEN_LOG, /* form: path */
    SW_TUI_ACT_EXPORT,   /* form: path (model); optional masks, calibration, speedup paths */
    SW_TUI_ACT_ATTACH,   /* form: the algorithm's parameters; algo: its index; nodes: selection */
    SW_TUI_ACT_DETACH,   /* the newest compressor of the chain */
    SW_TUI_ACT_RECIPE,   /* form: path (the Lua recipe to write) */
    SW_TUI_ACT_SENSITIVITY, /* scan the selected modules (L1Norm alone at several ratios) */
} sw_tui_action_kind;

typedef struct sw_tui_action {
    sw_tui_action_kind kind;
    const sw_tui_form *form; /* the submitted form (the state's), when the action has one */
    int algo;                /* SW_TUI_ACT_ATTACH: index into the algorithm list */
} sw_tui_action;

/* One algorithm of the attach list, as the state shows it (attach.h provides the list). */
typedef struct sw_tui_algo_entry {
    const char *name;             /* "L1Norm" */
    const char *kind;             /* "pruner" */
    const char *summary;          /* one line */
    void (*form)(sw_tui_form *f); /* fills the parameter form with defaults */
} sw_tui_algo_entry;

#define SW_TUI_MAX_ALGOS 32
#define SW_TUI_MAX_CHAIN 16
#define SW_TUI_BADGE_MAX 24

/* Defaults the forms open with (the command line's, then the last values used). */
typedef struct sw_tui_defaults {
    int epochs;
    long steps; /* -1 = unset */
    double lr;
    int batch;
    int subset;      /* 0 = the whole training split */
    int test_subset; /* 0 = the whole test split */
    char export_path[SW_TUI_FIELD_TEXT_MAX];
    char masks_path[SW_TUI_FIELD_TEXT_MAX];
    char log_path[SW_TUI_FIELD_TEXT_MAX];
    char calibration_path[SW_TUI_FIELD_TEXT_MAX]; /* "" = none */
    char speedup_path[SW_TUI_FIELD_TEXT_MAX];     /* "" = none */
    char recipe_path[SW_TUI_FIELD_TEXT_MAX];
} sw_tui_defaults;

/* The before/after view of a sped-up export: [0] the masked model (masks baked into dense
 * weights), [1] the sped-up one. */
typedef struct sw_tui_compare {
    char path[96];
    double params[2], flops[2]; /* flops per image */
    double lat1[2], lat64[2];   /* median seconds per forward at batch 1 and 64; < 0 unmeasured */
    double acc[2];              /* test-subset accuracy in [0, 1]; < 0 when there is no data */
    int test_n;                 /* images it was measured on */
    double rel_diff;            /* the speedup self-check's relative difference */
} sw_tui_compare;

/* The sensitivity scan: each selected module pruned alone with L1Norm at each ratio. */
#define SW_TUI_SENS_MAX 24
#define SW_TUI_SENS_RATIOS 4
typedef struct sw_tui_sensitivity {
    int n;                      /* modules */
    int nodes[SW_TUI_SENS_MAX]; /* graph nodes */
    char names[SW_TUI_SENS_MAX][48];
    double ratios[SW_TUI_SENS_RATIOS];               /* 0.25 0.5 0.75 0.9 */
    double acc[SW_TUI_SENS_MAX][SW_TUI_SENS_RATIOS]; /* accuracy; NAN while not measured */
    double baseline;                                 /* accuracy without pruning; NAN before */
    int test_n;                                      /* images evaluated */
    int done, total;                                 /* cells finished / planned */
    bool stopped;                                    /* s ended it early */
} sw_tui_sensitivity;

typedef struct sw_tui_state {
    const sw_model *model; /* borrowed */
    sw_tui_tree tree;
    sw_tui_history history;
    sw_tui_log log;
    sw_tui_form form; /* the open form (mode FORM) */
    sw_tui_mode mode;
    sw_tui_focus focus;
    sw_tui_work work;
    bool utf8;  /* draw braille charts and box glyphs; else ASCII only */
    bool dirty; /* something changed since the last draw */

    char search[SW_TUI_QUERY_MAX]; /* the query being typed */
    int search_origin;             /* cursor entry when the search began */
    int help_scroll;
    int chart_page; /* first chart shown when not all fit */
    int pick;       /* highlighted algorithm in the attach list */

    /* The attach list and the chain view, filled by the application. */
    int n_algos;
    sw_tui_algo_entry algos[SW_TUI_MAX_ALGOS];
    int n_chain;
    char chain[SW_TUI_MAX_CHAIN][160]; /* one line per attached compressor, oldest first */
    char (*badges)[SW_TUI_BADGE_MAX];  /* owned [model->n_nodes]: "P:L1 50% Q:int8", "" */
    bool chain_needs_limits;           /* compressing trains: the form starts from training's */
    bool chain_has_pruner, chain_has_quantizer; /* what the export form offers */

    /* Inspector content for the cursor, cached by (entry, version). */
    sw_tui_inspector inspector;
    int inspector_entry;
    long inspector_version;
    long model_version; /* bumped whenever the weights or the wrappers change */
    /* Adds compression rows for graph node `node` (wrapper targets and their chains). */
    void (*inspect_extra)(void *ctx, int node, sw_tui_inspector *out);
    void *inspect_ctx;

    sw_tui_defaults defaults;
    char title[96];     /* the model's name, shown in the header */
    char data_desc[96]; /* "fashion-mnist: 512 train / 10000 test" or "data not loaded" */
    char replay[96];    /* the metrics log whose charts are shown, "" for the session's own */
    int eval_done, eval_total; /* an evaluation pass in progress (images); total 0: none */
    sw_tui_compare compare;    /* mode COMPARE */
    sw_tui_sensitivity sens;   /* mode SENS */
} sw_tui_state;

/* Initialises the state over `model` (borrowed, must outlive the state). */
sw_status sw_tui_state_init(sw_tui_state *st, const sw_model *model, bool utf8);
void sw_tui_state_deinit(sw_tui_state *st);

/* Handles one key; returns sw_tui_flags. When the result has SW_TUI_ACTION, *act says what the
 * application should do (the form it points to stays valid until the next key). */
int sw_tui_state_key(sw_tui_state *st, int key, sw_tui_action *act);

/* Metric listener (ctx = sw_tui_state*): feeds the history and writes run milestones to the
 * log. */
void sw_tui_state_on_metric(void *ctx, const sw_metric_event *ev);

/* Notes that the weights or the wrappers changed: recounts zeros, refreshes the inspector. */
void sw_tui_state_model_changed(sw_tui_state *st);

/* The inspector for the cursor's entry (recomputed when the cursor or the model changed). */
const sw_tui_inspector *sw_tui_state_inspector(sw_tui_state *st);

/* Opens the form of `id` with the current defaults (used by keys, and by tests). */
void sw_tui_state_open_form(sw_tui_state *st, sw_tui_form_id id);

/* The help overlay's content: key names and what they do, grouped; NULL-terminated pairs. */
typedef struct sw_tui_help_line {
    const char *keys; /* NULL for a group heading */
    const char *text;
} sw_tui_help_line;
const sw_tui_help_line *sw_tui_help_lines(int *n);

#endif
