/* status.c - status strings and the thread-local error message. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Thread-local by design (the one exception to "no global mutable state"): the message belongs
 * to the thread whose call failed, so concurrent callers never see each other's errors. */
static _Thread_local char error_message[1024];
static _Thread_local char error_location[160];

const char *sw_status_str(sw_status status) {
    switch (status) {
#define SW_STATUS_CASE(name, text) \
    case name:                     \
        return text;
        SW_STATUS_LIST(SW_STATUS_CASE)
#undef SW_STATUS_CASE
    }
    return "unknown status";
}

sw_status sw_error_set(sw_status status, const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    snprintf(error_location, sizeof error_location, "%s:%d", file, line);
    return status;
}

void sw_error_prefix(const char *fmt, ...) {
    char combined[sizeof error_message];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(combined, sizeof combined, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    /* "<prefix>: <old message>", cut at the buffer's end. */
    size_t used = (size_t)n < sizeof combined - 1 ? (size_t)n : sizeof combined - 1;
    size_t room = sizeof combined - 1 - used;
    const char sep[] = ": ";
    size_t sep_len = room < 2 ? room : 2;
    memcpy(combined + used, sep, sep_len);
    used += sep_len;
    room -= sep_len;
    size_t old_len = strlen(error_message);
    if (old_len > room) old_len = room;
    memcpy(combined + used, error_message, old_len);
    combined[used + old_len] = '\0';
    memcpy(error_message, combined, used + old_len + 1);
}

const char *sw_error_message(void) { return error_message; }
const char *sw_error_location(void) { return error_location; }

void sw_error_clear(void) {
    error_message[0] = '\0';
    error_location[0] = '\0';
}

void sw_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "shrinkwrap: internal error: assertion `%s` failed at %s:%d\n", expr, file,
            line);
    abort();
}
