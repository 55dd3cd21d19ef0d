/* warnings.c - a growable list of warning strings. */
#include "warnings.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sw_warnings_init(sw_warnings *w) {
    *w = (sw_warnings){0};
}

void sw_warnings_clear(sw_warnings *w) {
    for (int i = 0; i < w->n; i++) free(w->items[i]);
    w->n = 0;
}

void sw_warnings_deinit(sw_warnings *w) {
    sw_warnings_clear(w);
    free(w->items);
    *w = (sw_warnings){0};
}

/* Takes ownership of `msg`; frees it when the list cannot grow. */
static void push(sw_warnings *w, char *msg) {
    if (!msg) return;
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 8;
        char **grown = realloc(w->items, (size_t)cap * sizeof *grown);
        if (!grown) {
            free(msg);
            return;
        }
        w->items = grown;
        w->cap = cap;
    }
    w->items[w->n++] = msg;
}

void sw_warnings_add(sw_warnings *w, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    push(w, strdup(buf));
}

void sw_warnings_extend(sw_warnings *w, const sw_warnings *src) {
    for (int i = 0; i < src->n; i++) push(w, strdup(src->items[i]));
}

int sw_warnings_count(const sw_warnings *w) {
    return w->n;
}

const char *sw_warnings_get(const sw_warnings *w, int i) {
    return i >= 0 && i < w->n ? w->items[i] : NULL;
}
