/* data_file.h - reading dataset files that may or may not be gzip-compressed.
 *
 * Datasets ship either as "<name>.gz" (the Debian package, the original downloads) or unpacked
 * as "<name>" (what many users have after `gunzip`). zlib's gz* functions read both: on a file
 * without the gzip magic they pass the bytes through unchanged. This file adds the lookup of
 * which of the two exists and turns zlib's short reads into errors that say whether the file is
 * truncated or corrupt, and which file it is.
 */
#ifndef SW_DATA_FILE_H
#define SW_DATA_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "../tensor/status.h"

#define SW_DATA_PATH_MAX 4096

/* An open dataset file. Caller storage; release with sw_data_file_close. */
typedef struct sw_data_file {
    void *gz;                    /* zlib gzFile (kept opaque so users need not include zlib.h) */
    char path[SW_DATA_PATH_MAX]; /* the path that was opened, for messages */
} sw_data_file;

/* Looks for "<dir>/<name>.gz", then "<dir>/<name>". Returns true and writes the first that exists
 * into path[size]; returns false when neither exists (path then holds "<dir>/<name>"). */
bool sw_data_file_find(const char *dir, const char *name, char *path, size_t size);

/* Opens `path` for reading (gzip or plain). SW_ERR_IO naming the path when it cannot be opened. */
sw_status sw_data_file_open(const char *path, sw_data_file *f);
void sw_data_file_close(sw_data_file *f);

/* Reads exactly n bytes into buf. A clean end of file before n bytes is SW_ERR_FORMAT
 * ("truncated"), broken gzip data is SW_ERR_FORMAT ("corrupt gzip data"); `what` names the part
 * being read ("the header", "image 12") in the message, which also names the file. */
sw_status sw_data_file_read(sw_data_file *f, void *buf, size_t n, const char *what);

/* Reads up to n bytes; *got < n only at the end of the file. Corrupt data is SW_ERR_FORMAT. */
sw_status sw_data_file_read_some(sw_data_file *f, void *buf, size_t n, size_t *got);

/* Fails with SW_ERR_FORMAT when bytes remain after what the header declared: such a file is
 * not the one its header describes (wrong dims, or two files concatenated). */
sw_status sw_data_file_expect_end(sw_data_file *f);

#endif
