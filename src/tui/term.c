/* term.c - the workbench's only curses file: set-up, keys, drawing, signals. */
#define NCURSES_WIDECHAR 1
#include "term.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Process-wide by necessity: curses has one screen, and a signal handler can only reach the
 * program through static storage. */
static bool term_active;
static bool term_utf8;
static bool term_color;
static SCREEN *term_screen;
/* Curses writes to its own duplicate of stdout, so the application may point file descriptors
 * 1 and 2 elsewhere for a while (a recipe's print output goes to the log pane). */
static FILE *term_out;
static volatile int term_out_fd = STDOUT_FILENO; /* its descriptor, for the signal handler */
static struct termios saved_tty;
static bool saved_tty_ok;
static volatile sig_atomic_t caught_signal;
static attr_t style_attr[SW_STYLE_COUNT];
static short style_pair[SW_STYLE_COUNT];

bool sw_tui_locale_init(void) {
    setlocale(LC_ALL, "");
    const char *cs = nl_langinfo(CODESET);
    bool utf8 = cs && (strcmp(cs, "UTF-8") == 0 || strcmp(cs, "utf8") == 0);
    /* Files and forms use decimal points whatever the user's locale says. */
    setlocale(LC_NUMERIC, "C");
    return utf8;
}

static void on_signal(int sig) {
    if (caught_signal == 0) {
        caught_signal = sig; /* the main loop or the poll hook leaves through the normal path */
        return;
    }
    /* A second signal: the program did not get out in time (e.g. a long evaluation). Restore
     * the terminal with async-signal-safe calls only and leave. */
    if (saved_tty_ok) tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
    static const char reset[] = "\033[?1049l\033[?25h\033[0m\r\n";
    ssize_t ignored = write(term_out_fd, reset, sizeof reset - 1);
    (void)ignored;
    _exit(128 + sig);
}

static void at_exit_restore(void) {
    sw_tui_term_close();
}

/* ---- styles ------------------------------------------------------------------------------- */

static void set_style(sw_tui_style s, attr_t mono, short fg, short bg, attr_t color_extra) {
    if (term_color) {
        short pair = (short)(s + 1);
        init_pair(pair, fg, bg);
        style_pair[s] = pair;
        style_attr[s] = color_extra;
    } else {
        style_pair[s] = 0;
        style_attr[s] = mono;
    }
}

static void init_styles(void) {
    set_style(SW_STYLE_NORMAL, A_NORMAL, -1, -1, A_NORMAL);
    set_style(SW_STYLE_HEADER, A_REVERSE, COLOR_BLACK, COLOR_CYAN, A_NORMAL);
    set_style(SW_STYLE_TITLE, A_REVERSE, COLOR_WHITE, COLOR_BLUE, A_NORMAL);
    set_style(SW_STYLE_TITLE_FOCUS, A_REVERSE | A_BOLD, COLOR_BLACK, COLOR_GREEN, A_BOLD);
    set_style(SW_STYLE_CURSOR, A_REVERSE, COLOR_BLACK, COLOR_CYAN, A_NORMAL);
    set_style(SW_STYLE_CURSOR_DIM, A_UNDERLINE, COLOR_BLACK, COLOR_WHITE, A_NORMAL);
    set_style(SW_STYLE_MARKED, A_BOLD, COLOR_YELLOW, -1, A_BOLD);
    set_style(SW_STYLE_MATCH, A_UNDERLINE, COLOR_MAGENTA, -1, A_BOLD);
    set_style(SW_STYLE_DIM, A_DIM, -1, -1, A_DIM);
    set_style(SW_STYLE_KEY, A_BOLD, COLOR_CYAN, -1, A_BOLD);
    set_style(SW_STYLE_ERROR, A_BOLD, COLOR_RED, -1, A_BOLD);
    set_style(SW_STYLE_WARN, A_BOLD, COLOR_YELLOW, -1, A_NORMAL);
    set_style(SW_STYLE_OK, A_NORMAL, COLOR_GREEN, -1, A_NORMAL);
    set_style(SW_STYLE_CHART1, A_NORMAL, COLOR_CYAN, -1, A_NORMAL);
    set_style(SW_STYLE_CHART2, A_NORMAL, COLOR_GREEN, -1, A_NORMAL);
    set_style(SW_STYLE_CHART3, A_NORMAL, COLOR_YELLOW, -1, A_NORMAL);
    set_style(SW_STYLE_CHART4, A_NORMAL, COLOR_MAGENTA, -1, A_NORMAL);
    set_style(SW_STYLE_BAR, A_NORMAL, COLOR_GREEN, -1, A_NORMAL);
    set_style(SW_STYLE_FIELD, A_UNDERLINE, COLOR_WHITE, COLOR_BLACK, A_UNDERLINE);
    set_style(SW_STYLE_FIELD_FOCUS, A_UNDERLINE | A_BOLD, COLOR_WHITE, COLOR_BLUE, A_BOLD);
    set_style(SW_STYLE_BOX, A_NORMAL, -1, -1, A_NORMAL);
}

/* ---- the io vtable ------------------------------------------------------------------------ */

static int map_key(int r, wint_t wch) {
    if (r == KEY_CODE_YES) {
        switch (wch) {
        case KEY_UP:
            return SW_KEY_UP;
        case KEY_DOWN:
            return SW_KEY_DOWN;
        case KEY_LEFT:
            return SW_KEY_LEFT;
        case KEY_RIGHT:
            return SW_KEY_RIGHT;
        case KEY_PPAGE:
            return SW_KEY_PGUP;
        case KEY_NPAGE:
            return SW_KEY_PGDN;
        case KEY_HOME:
            return SW_KEY_HOME;
        case KEY_END:
            return SW_KEY_END;
        case KEY_DC:
            return SW_KEY_DELETE;
        case KEY_BTAB:
            return SW_KEY_BTAB;
        case KEY_BACKSPACE:
            return SW_KEY_BACKSPACE;
        case KEY_ENTER:
            return SW_KEY_ENTER;
        case KEY_RESIZE:
            return SW_KEY_RESIZE;
        default:
            return SW_KEY_NONE;
        }
    }
    if (wch == '\r') return SW_KEY_ENTER;
    if (wch == 8) return SW_KEY_BACKSPACE;
    return (int)wch;
}

static int term_read_key(void *ctx, int timeout_ms) {
    (void)ctx;
    if (!term_active) return SW_KEY_NONE;
    timeout(timeout_ms);
    wint_t wch = 0;
    int r = get_wch(&wch);
    if (r == ERR) return SW_KEY_NONE;
    return map_key(r, wch);
}

static void term_size(void *ctx, int *w, int *h) {
    (void)ctx;
    int y, x;
    getmaxyx(stdscr, y, x);
    *w = x;
    *h = y;
}

static void term_present(void *ctx, const sw_tui_canvas *c) {
    (void)ctx;
    if (!term_active) return;
    int h, w;
    getmaxyx(stdscr, h, w);
    for (int y = 0; y < c->h && y < h; y++) {
        for (int x = 0; x < c->w && x < w; x++) {
            const sw_tui_cell *cell = &c->cells[y * c->w + x];
            wchar_t wc[2] = {(wchar_t)cell->ch, 0};
            if (!term_utf8 && (cell->ch > 0x7E || cell->ch < 0x20))
                wc[0] = cell->ch < 0x20 ? L' ' : L'?';
            cchar_t cc;
            int s = cell->style < SW_STYLE_COUNT ? cell->style : 0;
            setcchar(&cc, wc, style_attr[s], style_pair[s], NULL);
            mvadd_wch(y, x, &cc); /* the bottom-right cell reports ERR but is drawn */
        }
    }
    wnoutrefresh(stdscr);
    doupdate();
}

static int term_pending_signal(void *ctx) {
    (void)ctx;
    return caught_signal;
}

sw_status sw_tui_term_open(const sw_tui_term_options *opt, sw_tui_io *io) {
    if (term_active) return SW_FAIL(SW_ERR_ARG, "the terminal is already open");
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "the workbench needs a terminal on stdin and stdout; "
                       "for headless work use `shrinkwrap train` or `shrinkwrap eval`");
    const char *term = getenv("TERM");
    if (!term || !*term || strcmp(term, "dumb") == 0)
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "TERM is %s: the workbench needs a full-screen "
                       "terminal (e.g. TERM=xterm-256color)",
                       term && *term ? term : "unset");
    saved_tty_ok = tcgetattr(STDIN_FILENO, &saved_tty) == 0;

    /* Our handlers first: curses then leaves SIGINT/SIGTERM alone. No SA_RESTART, so a key
     * wait is cut short and the flag is seen at once. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    caught_signal = 0;

    int out_fd = dup(STDOUT_FILENO);
    term_out = out_fd >= 0 ? fdopen(out_fd, "w") : NULL;
    if (!term_out) {
        if (out_fd >= 0) close(out_fd);
        return SW_FAIL(SW_ERR_IO, "cannot duplicate the terminal's output: %s", strerror(errno));
    }
    term_out_fd = out_fd;
    term_screen = newterm(NULL, term_out, stdin);
    if (!term_screen) {
        fclose(term_out);
        term_out = NULL;
        term_out_fd = STDOUT_FILENO;
    }
    if (!term_screen)
        return SW_FAIL(SW_ERR_UNSUPPORTED,
                       "cannot start curses on TERM=%s: is its terminfo "
                       "entry installed (ncurses-term)?",
                       term);
    set_term(term_screen);
    term_active = true;
    static bool atexit_done;
    if (!atexit_done) {
        atexit(at_exit_restore);
        atexit_done = true;
    }
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    /* No typeahead checks during an update: curses would flush what it has so far and poll the
     * keyboard every few cells, one write (and one wake-up of the terminal, e.g. tmux, on the
     * cores that train) per fragment. Measured under tmux: 30-40 writes a frame, each frame
     * step 15 ms slower; one write a frame without. Keys are read between frames anyway. */
    typeahead(-1);
    set_escdelay(25);
    curs_set(0);
    term_utf8 = opt->utf8;
    term_color = !opt->no_color && has_colors();
    if (term_color) {
        start_color();
        use_default_colors();
    }
    init_styles();
    *io = (sw_tui_io){.ctx = NULL,
                      .read_key = term_read_key,
                      .size = term_size,
                      .present = term_present,
                      .pending_signal = term_pending_signal};
    return SW_OK;
}

void sw_tui_term_close(void) {
    if (!term_active) return;
    term_active = false;
    curs_set(1);
    endwin();
    if (term_screen) delscreen(term_screen);
    term_screen = NULL;
    term_out_fd = STDOUT_FILENO;
    if (term_out) fclose(term_out);
    term_out = NULL;
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
}
