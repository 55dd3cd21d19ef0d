/* logbuf.h - the log pane's lines: a ring of the newest messages with their severity. */
#ifndef SW_TUI_LOGBUF_H
#define SW_TUI_LOGBUF_H

#include <stdarg.h>

#define SW_TUI_LOG_LINES 400
#define SW_TUI_LOG_LINE_MAX 256

typedef enum sw_tui_log_level {
    SW_TUI_LOG_INFO,
    SW_TUI_LOG_OK,
    SW_TUI_LOG_WARN,
    SW_TUI_LOG_ERROR,
} sw_tui_log_level;

typedef struct sw_tui_log_line {
    char text[SW_TUI_LOG_LINE_MAX];
    sw_tui_log_level level;
} sw_tui_log_line;

typedef struct sw_tui_log {
    sw_tui_log_line lines[SW_TUI_LOG_LINES];
    int n;      /* lines held */
    int head;   /* ring index of the oldest */
    long total; /* lines ever added */
    int scroll; /* lines scrolled back from the newest (0 = follow) */
} sw_tui_log;

void sw_tui_log_init(sw_tui_log *log);
/* Adds a message; embedded newlines split it into several lines. */
void sw_tui_log_add(sw_tui_log *log, sw_tui_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sw_tui_log_vadd(sw_tui_log *log, sw_tui_log_level level, const char *fmt, va_list ap);
/* The i-th oldest line held, 0 <= i < n. */
const sw_tui_log_line *sw_tui_log_at(const sw_tui_log *log, int i);
/* The newest line, or NULL. */
const sw_tui_log_line *sw_tui_log_last(const sw_tui_log *log);
/* Scrolls back (delta > 0) or forward; clamped to what is held. */
void sw_tui_log_scroll(sw_tui_log *log, int delta);

#endif
