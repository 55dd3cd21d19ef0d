/* warnings.h - a list of warning messages a caller can read.
 *
 * The library never prints. Where NNI logs a warning and carries on (a config entry that
 * selects nothing, a target configured twice, an evaluator given twice), shrinkwrap appends a
 * sentence to a warning list owned by the object concerned; the CLI, the workbench and the Lua
 * binding show them as they see fit.
 */
#ifndef SW_COMPRESS_WARNINGS_H
#define SW_COMPRESS_WARNINGS_H

#include <stddef.h>

#include "../tensor/status.h"

typedef struct sw_warnings {
    int n, cap;
    char **items; /* owned strings, oldest first */
} sw_warnings;

void sw_warnings_init(sw_warnings *w);
void sw_warnings_deinit(sw_warnings *w);
/* Appends a printf-formatted message. Out of memory drops the message silently: a warning
 * must never turn a working call into a failing one. */
void sw_warnings_add(sw_warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends copies of every message of `src`. */
void sw_warnings_extend(sw_warnings *w, const sw_warnings *src);
void sw_warnings_clear(sw_warnings *w);
int sw_warnings_count(const sw_warnings *w);
/* The i-th message (0 = oldest), or NULL when out of range. */
const char *sw_warnings_get(const sw_warnings *w, int i);

#endif
