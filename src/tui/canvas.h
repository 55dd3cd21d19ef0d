/* canvas.h - a grid of character cells that the views draw into, without a terminal.
 *
 * The views render the whole screen into a canvas; the terminal layer copies it to curses
 * (which sends only what changed), and tests read it back as text. Cells hold one Unicode code
 * point and a style (a role such as "pane title" or "chart 2"); the terminal decides what a
 * role looks like (a colour pair, or plain bold/reverse under NO_COLOR).
 */
#ifndef SW_TUI_CANVAS_H
#define SW_TUI_CANVAS_H

#include <stdbool.h>
#include <stdint.h>

#include "../tensor/status.h"

typedef enum sw_tui_style {
    SW_STYLE_NORMAL,
    SW_STYLE_HEADER,      /* the top line */
    SW_STYLE_TITLE,       /* a pane's title line */
    SW_STYLE_TITLE_FOCUS, /* the focused pane's title line */
    SW_STYLE_CURSOR,      /* the selected row of the focused pane */
    SW_STYLE_CURSOR_DIM,  /* the selected row of another pane */
    SW_STYLE_MARKED,      /* rows marked with space */
    SW_STYLE_MATCH,       /* search matches */
    SW_STYLE_DIM,         /* secondary text */
    SW_STYLE_KEY,         /* key names in the status line and help */
    SW_STYLE_ERROR,
    SW_STYLE_WARN,
    SW_STYLE_OK,
    SW_STYLE_CHART1,
    SW_STYLE_CHART2,
    SW_STYLE_CHART3,
    SW_STYLE_CHART4,
    SW_STYLE_BAR,         /* the filled part of a progress bar */
    SW_STYLE_FIELD,       /* a form field */
    SW_STYLE_FIELD_FOCUS, /* the form field being edited */
    SW_STYLE_BOX,         /* overlay frames and text */
    SW_STYLE_COUNT
} sw_tui_style;

typedef struct sw_tui_cell {
    uint32_t ch; /* Unicode code point; ' ' for blank */
    uint8_t style;
} sw_tui_cell;

typedef struct sw_tui_canvas {
    int w, h;
    sw_tui_cell *cells; /* owned: [h][w] */
} sw_tui_canvas;

/* A rectangle on the canvas; drawing is clipped to it by the callers. */
typedef struct sw_tui_rect {
    int x, y, w, h;
} sw_tui_rect;

void sw_tui_canvas_init(sw_tui_canvas *c);
/* Resizes (contents are cleared). */
sw_status sw_tui_canvas_resize(sw_tui_canvas *c, int w, int h);
void sw_tui_canvas_deinit(sw_tui_canvas *c);
void sw_tui_canvas_clear(sw_tui_canvas *c);

/* One cell; out-of-range coordinates are ignored. */
void sw_tui_canvas_put(sw_tui_canvas *c, int x, int y, uint32_t ch, sw_tui_style style);
/* Fills a rectangle with one character. */
void sw_tui_canvas_fill(sw_tui_canvas *c, sw_tui_rect r, uint32_t ch, sw_tui_style style);
/* Sets the style of a rectangle, keeping its characters. */
void sw_tui_canvas_restyle(sw_tui_canvas *c, sw_tui_rect r, sw_tui_style style);
/* Writes UTF-8 text from (x, y), at most `max` cells (clipped to the canvas); returns the number
 * of cells written. Control characters become spaces; invalid UTF-8 bytes become '?'. */
int sw_tui_canvas_text(sw_tui_canvas *c, int x, int y, int max, const char *utf8,
                       sw_tui_style style);
/* Same with printf formatting. */
int sw_tui_canvas_printf(sw_tui_canvas *c, int x, int y, int max, sw_tui_style style,
                         const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The canvas as UTF-8 text, one line per row, trailing blanks trimmed, each line ending in
 * '\n'. Caller frees. */
char *sw_tui_canvas_to_text(const sw_tui_canvas *c);
/* Row y as UTF-8 (trailing blanks trimmed) into buf. */
const char *sw_tui_canvas_row(const sw_tui_canvas *c, int y, char *buf, int size);

/* Decodes one UTF-8 sequence at s; writes the code point and returns the bytes used (1 for an
 * invalid byte, whose code point is '?'). */
int sw_tui_utf8_decode(const char *s, uint32_t *cp);
/* Encodes a code point; returns bytes written (buf needs 4). */
int sw_tui_utf8_encode(uint32_t cp, char *buf);
/* Display cells of a UTF-8 string (one per code point: the workbench writes no wide glyphs). */
int sw_tui_utf8_width(const char *s);

#endif
