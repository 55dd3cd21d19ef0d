/* logbuf.c - the log pane's ring of lines. */
#include "logbuf.h"

#include <stdio.h>
#include <string.h>

void sw_tui_log_init(sw_tui_log *log) {
    memset(log, 0, sizeof *log);
}

static void add_line(sw_tui_log *log, sw_tui_log_level level, const char *text, size_t len) {
    int at;
    if (log->n < SW_TUI_LOG_LINES) {
        at = (log->head + log->n) % SW_TUI_LOG_LINES;
        log->n++;
    } else {
        at = log->head;
        log->head = (log->head + 1) % SW_TUI_LOG_LINES;
    }
    if (len >= SW_TUI_LOG_LINE_MAX) len = SW_TUI_LOG_LINE_MAX - 1;
    memcpy(log->lines[at].text, text, len);
    log->lines[at].text[len] = '\0';
    log->lines[at].level = level;
    log->total++;
    /* A reader scrolled back keeps looking at the same lines. */
    if (log->scroll > 0 && log->scroll < log->n - 1) log->scroll++;
}

void sw_tui_log_vadd(sw_tui_log *log, sw_tui_log_level level, const char *fmt, va_list ap) {
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt, ap);
    const char *p = buf;
    for (;;) {
        const char *nl = strchr(p, '\n');
        if (!nl) {
            add_line(log, level, p, strlen(p));
            break;
        }
        add_line(log, level, p, (size_t)(nl - p));
        p = nl + 1;
        if (!*p) break;
    }
}

void sw_tui_log_add(sw_tui_log *log, sw_tui_log_level level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    sw_tui_log_vadd(log, level, fmt, ap);
    va_end(ap);
}

const sw_tui_log_line *sw_tui_log_at(const sw_tui_log *log, int i) {
    return &log->lines[(log->head + i) % SW_TUI_LOG_LINES];
}

const sw_tui_log_line *sw_tui_log_last(const sw_tui_log *log) {
    return log->n ? sw_tui_log_at(log, log->n - 1) : NULL;
}

void sw_tui_log_scroll(sw_tui_log *log, int delta) {
    log->scroll += delta;
    if (log->scroll > log->n - 1) log->scroll = log->n - 1;
    if (log->scroll < 0) log->scroll = 0;
}
