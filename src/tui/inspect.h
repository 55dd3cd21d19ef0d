/* inspect.h - the inspector pane's content for one module, as labelled rows of text.
 *
 * A leaf shows its layer type, hyper-parameters, output shape, parameter tensors (shape, count,
 * sparsity, mean |w|), FLOPs and its graph neighbours; a container shows what it holds and its
 * share of the model. Compression adds rows for the wrapper's targets (attach.h).
 */
#ifndef SW_TUI_INSPECT_H
#define SW_TUI_INSPECT_H

#include "canvas.h"
#include "tree.h"

#define SW_TUI_INSPECT_ROWS 64

typedef struct sw_tui_inspect_row {
    char label[20];
    char value[200];
    sw_tui_style style;
} sw_tui_inspect_row;

typedef struct sw_tui_inspector {
    char title[128]; /* the module's path and type */
    int n;
    sw_tui_inspect_row rows[SW_TUI_INSPECT_ROWS];
} sw_tui_inspector;

/* Fills `out` for tree entry `entry` (-1: an empty inspector). */
void sw_tui_inspect(const sw_tui_tree *t, int entry, sw_tui_inspector *out);
/* Appends a row (ignored when full). */
void sw_tui_inspect_add(sw_tui_inspector *out, const char *label, sw_tui_style style,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "1.23M", "456k", "12" (three significant digits). */
const char *sw_tui_human(double value, char *buf, int size);

#endif
