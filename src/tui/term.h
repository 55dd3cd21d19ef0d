/* term.h - the terminal: curses set-up and tear-down, keys, drawing a canvas, signals.
 *
 * The only part of the workbench that includes curses (term.c). It hands the application an
 * sw_tui_io (app.h) and guarantees the terminal is restored on every way out: a normal close,
 * exit() (atexit), and SIGINT/SIGTERM/SIGHUP (the first one is turned into a flag that the main
 * loop and the training poll hook check, so the program leaves through its normal path; a
 * second one restores the terminal settings directly and exits at once).
 */
#ifndef SW_TUI_TERM_H
#define SW_TUI_TERM_H

#include <stdbool.h>

#include "app.h"

typedef struct sw_tui_term_options {
    bool utf8;     /* the locale is UTF-8: draw braille and box glyphs */
    bool no_color; /* NO_COLOR is set: plain attributes only */
} sw_tui_term_options;

/* Sets the locale from the environment and tells whether its character set is UTF-8.
 * Numbers keep the C locale (decimal points in files and forms). */
bool sw_tui_locale_init(void);

/* Takes over the terminal (stdin/stdout must be one) and fills *io. One terminal per process.
 * Errors say why (not a terminal, unknown TERM). */
sw_status sw_tui_term_open(const sw_tui_term_options *opt, sw_tui_io *io);
/* Gives the terminal back (idempotent). */
void sw_tui_term_close(void);

#endif
