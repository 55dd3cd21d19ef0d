/* atomic_file.h - all-or-nothing file writes.
 *
 * Every file shrinkwrap writes goes through here: the bytes go to a temporary file beside the
 * destination ("<path>.tmp.<pid>"), are flushed and fsync'ed, and the temporary is renamed over
 * the destination. An interruption leaves the old file (or none), never a truncated one.
 */
#ifndef SW_ATOMIC_FILE_H
#define SW_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "../tensor/status.h"

typedef struct sw_atomic_file {
    FILE *fp;        /* write here */
    char *path;      /* destination (owned) */
    char *tmp_path;  /* temporary (owned) */
} sw_atomic_file;

/* Opens a temporary file for `path`; errors name the folder and the reason. */
sw_status sw_atomic_open(sw_atomic_file *f, const char *path);
/* Flushes, fsyncs and renames into place; on failure removes the temporary. Always releases f. */
sw_status sw_atomic_commit(sw_atomic_file *f);
/* Removes the temporary without touching the destination. Safe on a closed f. */
void sw_atomic_abort(sw_atomic_file *f);
/* Convenience: writes a whole buffer atomically. */
sw_status sw_atomic_write(const char *path, const void *data, size_t size);

#endif
