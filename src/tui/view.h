/* view.h - drawing the workbench's state into a canvas (no terminal here).
 *
 * The layout is dense and fixed by the size: a header line; the module tree on the left; the
 * inspector above the live metrics (progress, charts) on the right; the log across the bottom;
 * a status line of keys. Overlays (forms, help, the attach list, the quit question) are drawn
 * last. Below SW_TUI_MIN_W x SW_TUI_MIN_H only a message asking for a larger terminal is drawn.
 */
#ifndef SW_TUI_VIEW_H
#define SW_TUI_VIEW_H

#include "canvas.h"
#include "state.h"

#define SW_TUI_MIN_W 64
#define SW_TUI_MIN_H 18

typedef struct sw_tui_layout {
    bool too_small;
    sw_tui_rect header, tree, chain, sep, inspector, metrics, log, status;
} sw_tui_layout;

/* The panes' rectangles for a w x h screen and the current state (the chain view takes rows
 * from the tree when compressors are attached). */
void sw_tui_layout_compute(const sw_tui_state *st, int w, int h, sw_tui_layout *l);

/* Draws everything into `c` (already sized to the screen). Updates view-only state (the tree's
 * scroll position, the inspector cache) and clears st->dirty. */
void sw_tui_render(sw_tui_state *st, sw_tui_canvas *c);

#endif
