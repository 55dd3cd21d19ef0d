/* atomic_file.c - write to "<path>.tmp.<pid>", fsync, rename over <path>.
 *
 * rename(2) within one filesystem replaces the destination atomically: a reader sees either the
 * old file or the complete new one. The temporary therefore lives in the destination's own
 * folder (a temporary in /tmp could sit on another filesystem, where rename fails). The data is
 * fsync'ed before the rename so that a crash cannot leave the new name pointing at blocks that
 * were never written, and the folder is fsync'ed after it so that the rename itself is durable.
 */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The folder part of `path` ("." when there is none), for messages and the directory fsync. */
static char *folder_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (!dir) return NULL;
    memcpy(dir, path, n);
    dir[n] = '\0';
    return dir;
}

static void release(sw_atomic_file *f) {
    free(f->path);
    free(f->tmp_path);
    f->fp = NULL;
    f->path = NULL;
    f->tmp_path = NULL;
}

sw_status sw_atomic_open(sw_atomic_file *f, const char *path) {
    *f = (sw_atomic_file){0};
    if (!path || !*path) return SW_FAIL(SW_ERR_ARG, "no file name given");
    size_t n = strlen(path) + 32;
    f->path = strdup(path);
    f->tmp_path = malloc(n);
    if (!f->path || !f->tmp_path) {
        release(f);
        return SW_FAIL(SW_ERR_NOMEM, "cannot allocate file names");
    }
    snprintf(f->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    /* 0666 lets the umask decide, as for any file the user creates. O_TRUNC reuses a stale
     * temporary left by an earlier process that had the same pid. */
    int fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        int err = errno;
        char *dir = folder_of(path);
        sw_status st = SW_FAIL(SW_ERR_IO,
                               "cannot write \"%s\": creating a temporary file in folder \"%s\" "
                               "failed: %s (check that the folder exists and is writable)",
                               path, dir ? dir : "?", strerror(err));
        free(dir);
        release(f);
        return st;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int err = errno;
        close(fd);
        unlink(f->tmp_path);
        release(f);
        return SW_FAIL(SW_ERR_IO, "cannot write \"%s\": %s", path, strerror(err));
    }
    return SW_OK;
}

void sw_atomic_abort(sw_atomic_file *f) {
    if (!f) return;
    if (f->fp) fclose(f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    release(f);
}

sw_status sw_atomic_commit(sw_atomic_file *f) {
    if (!f->fp || !f->path || !f->tmp_path)
        return SW_FAIL(SW_ERR_ARG, "commit of an atomic file that is not open");
    const char *step = NULL;
    int err = 0;
    /* fflush and ferror catch write errors that stdio buffered (ENOSPC, EFBIG, EIO). */
    if (fflush(f->fp) != 0 || ferror(f->fp)) {
        step = "writing";
        err = errno;
    } else if (fsync(fileno(f->fp)) != 0) {
        step = "syncing";
        err = errno;
    }
    /* fclose can report a deferred error too (on NFS, for instance). */
    if (fclose(f->fp) != 0 && !step) {
        step = "closing";
        err = errno;
    }
    f->fp = NULL;
    if (!step && rename(f->tmp_path, f->path) != 0) {
        step = "renaming the temporary file over";
        err = errno;
    }
    if (step) {
        unlink(f->tmp_path);
        sw_status st = SW_FAIL(SW_ERR_IO,
                               "%s \"%s\" failed: %s (the old file, if any, is "
                               "unchanged)",
                               step, f->path, strerror(err ? err : EIO));
        release(f);
        return st;
    }
    /* Make the rename durable. Some filesystems refuse fsync on a folder; the file itself is
     * complete either way, so this step is best effort. */
    char *dir = folder_of(f->path);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    release(f);
    return SW_OK;
}

sw_status sw_atomic_write(const char *path, const void *data, size_t size) {
    sw_atomic_file f;
    SW_TRY(sw_atomic_open(&f, path));
    if (size && fwrite(data, 1, size, f.fp) != size) {
        int err = errno;
        sw_atomic_abort(&f);
        return SW_FAIL(SW_ERR_IO,
                       "writing \"%s\" failed: %s (the old file, if any, is "
                       "unchanged)",
                       path, strerror(err));
    }
    return sw_atomic_commit(&f);
}
