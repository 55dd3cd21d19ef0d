/* tree.h - the module tree pane's state: expansion, cursor, marks, search, scrolling.
 *
 * Built over sw_module_tree (names split on dots, pre-order). Entries are addressed by their
 * index in that tree; `visible` lists the entries whose ancestors are all expanded, in order,
 * and is what the pane draws row by row. The tree also keeps each entry's count of zero
 * parameters (its sparsity), refreshed when the weights change (after training, after a
 * compressor's masks are applied).
 */
#ifndef SW_TUI_TREE_H
#define SW_TUI_TREE_H

#include <stdbool.h>
#include <stddef.h>

#include "../nn/module_tree.h"

#define SW_TUI_QUERY_MAX 64

typedef struct sw_tui_tree {
    const sw_model *model; /* borrowed */
    sw_module_tree mt;     /* owned */
    bool *expanded;        /* owned [mt.n] */
    bool *marked;          /* owned [mt.n] */
    size_t *zeros;         /* owned [mt.n]: zero values in "weight" parameters, aggregated */
    size_t *weights;       /* owned [mt.n]: values in "weight" parameters, aggregated */
    int *visible;          /* owned [mt.n]: entry indices shown */
    int n_visible;
    int cursor;                   /* entry index under the cursor (-1 for an empty model) */
    int top;                      /* first visible row on screen */
    char query[SW_TUI_QUERY_MAX]; /* the last search, "" for none */
} sw_tui_tree;

/* Builds the tree of `model` (borrowed; must outlive the tree) with top-level entries expanded
 * and everything deeper collapsed. */
sw_status sw_tui_tree_init(sw_tui_tree *t, const sw_model *model);
void sw_tui_tree_deinit(sw_tui_tree *t);

/* Recomputes `visible` after expansion changes (keeps the cursor on a visible entry). */
void sw_tui_tree_refresh(sw_tui_tree *t);
/* Row of the cursor in `visible`, or -1. */
int sw_tui_tree_cursor_row(const sw_tui_tree *t);

/* Moves the cursor by `delta` visible rows (clamped). */
void sw_tui_tree_move(sw_tui_tree *t, int delta);
void sw_tui_tree_home(sw_tui_tree *t);
void sw_tui_tree_end(sw_tui_tree *t);
/* Expands or collapses one container entry; no-op for leaves. */
void sw_tui_tree_set_expanded(sw_tui_tree *t, int entry, bool on);
/* Enter: toggles the cursor's entry. */
void sw_tui_tree_toggle(sw_tui_tree *t);
/* Left: collapses an expanded container, else moves to the parent. */
void sw_tui_tree_left(sw_tui_tree *t);
/* Right: expands a collapsed container, else moves to its first child. */
void sw_tui_tree_right(sw_tui_tree *t);
void sw_tui_tree_expand_all(sw_tui_tree *t, bool on);
/* Space: toggles the mark of the cursor's entry. */
void sw_tui_tree_toggle_mark(sw_tui_tree *t);
void sw_tui_tree_clear_marks(sw_tui_tree *t);
int sw_tui_tree_marked_count(const sw_tui_tree *t);

/* The graph nodes the user has selected, in graph order: the leaves of every marked entry
 * (a marked container stands for its whole subtree), or the cursor's leaves when nothing is
 * marked. Returns the count (at most cap are written). */
int sw_tui_tree_selection(const sw_tui_tree *t, int *nodes, int cap);

/* True when the entry's path contains `query` (case-insensitive). */
bool sw_tui_tree_matches(const sw_tui_tree *t, int entry, const char *query);
/* Moves the cursor to the next (dir = 1) or previous (dir = -1) entry matching `query` in
 * pre-order, starting after (dir=1) / before the cursor, or at the cursor itself when
 * `include_cursor`; wraps around; expands the ancestors of the match. Remembers the query.
 * Returns false (cursor unchanged) when nothing matches. */
bool sw_tui_tree_search(sw_tui_tree *t, const char *query, int dir, bool include_cursor);

/* Keeps the cursor inside a window of `height` rows by moving `top`. */
void sw_tui_tree_scroll(sw_tui_tree *t, int height);

/* Recounts zero parameters (call after the weights changed). */
void sw_tui_tree_update_zeros(sw_tui_tree *t);
/* Fraction of zeros among the values of an entry's "weight" parameters (0 when it has none):
 * the sparsity pruning creates (biases and BatchNorm shifts start at zero and are not counted). */
double sw_tui_tree_sparsity(const sw_tui_tree *t, int entry);

#endif
