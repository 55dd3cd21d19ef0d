/* status.h - the error model of shrinkwrap.
 *
 * Every fallible library function returns an sw_status and writes its results through
 * out-parameters. The detail of the last failure on this thread (what went wrong, where, and
 * what to do about it) is kept in a thread-local message that the caller reads with
 * sw_error_message(). The library never prints and never exits.
 */
#ifndef SW_STATUS_H
#define SW_STATUS_H

#include <stdarg.h>

/* X-macro list: enum value, short description. */
#define SW_STATUS_LIST(X)                                     \
    X(SW_OK, "ok")                                            \
    X(SW_ERR_NOMEM, "out of memory")                          \
    X(SW_ERR_IO, "input/output error")                        \
    X(SW_ERR_FORMAT, "malformed file")                        \
    X(SW_ERR_SHAPE, "shape mismatch")                         \
    X(SW_ERR_ARG, "invalid argument")                         \
    X(SW_ERR_CONFIG, "invalid configuration")                 \
    X(SW_ERR_NOT_FOUND, "not found")                          \
    X(SW_ERR_NUMERIC, "numerical failure (NaN or infinity)")  \
    X(SW_ERR_INTERRUPTED, "interrupted")                      \
    X(SW_ERR_UNSUPPORTED, "unsupported")

typedef enum sw_status {
#define SW_STATUS_ENUM(name, text) name,
    SW_STATUS_LIST(SW_STATUS_ENUM)
#undef SW_STATUS_ENUM
} sw_status;

/* Short, static description of a status code. Never NULL. */
const char *sw_status_str(sw_status status);

/* Records a failure on this thread and returns `status`, so that a failing path reads
 * `return SW_FAIL(SW_ERR_SHAPE, "conv1: expected %d channels, got %d", a, b);`.
 * The message is formatted printf-style; file and line are kept separately. */
sw_status sw_error_set(sw_status status, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define SW_FAIL(status, ...) sw_error_set((status), __FILE__, __LINE__, __VA_ARGS__)

/* Prepends context to the current message ("loading m.safetensors: <old message>"). */
void sw_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last message set on this thread ("" when none). Valid until the next sw_error_* call. */
const char *sw_error_message(void);
/* Where the last message was set ("src/io/safetensors.c:120"), for debugging. */
const char *sw_error_location(void);
/* Forgets the last message. */
void sw_error_clear(void);

/* Programmer errors only (broken invariants), never for bad input: aborts with a message. */
#define SW_ASSERT(cond)                                                        \
    do {                                                                       \
        if (!(cond)) sw_assert_fail(#cond, __FILE__, __LINE__);                \
    } while (0)
_Noreturn void sw_assert_fail(const char *expr, const char *file, int line);

/* Propagates a failure: `SW_TRY(sw_foo(...));` returns the status if it is not SW_OK. */
#define SW_TRY(expr)                                                           \
    do {                                                                       \
        sw_status sw_try_status_ = (expr);                                     \
        if (sw_try_status_ != SW_OK) return sw_try_status_;                    \
    } while (0)

#endif
