#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void af_release(snlvk_atomic_file *af)
{
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

snlvk_status snlvk_atomic_open(snlvk_atomic_file *af, const char *path)
{
    memset(af, 0, sizeof *af);
    if (!path || !path[0]) return snlvk_fail(SNLVK_E_INVALID, "atomic write: empty path");
    size_t pl = strlen(path);
    char suffix[40];
    int sl = snprintf(suffix, sizeof suffix, ".tmp.%ld", (long)getpid());
    af->path = malloc(pl + 1);
    af->tmp = malloc(pl + (size_t)sl + 1);
    if (!af->path || !af->tmp) {
        af_release(af);
        return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);
    }
    memcpy(af->path, path, pl + 1);
    memcpy(af->tmp, path, pl);
    memcpy(af->tmp + pl, suffix, (size_t)sl + 1);
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int e = errno;
        snlvk_status s = snlvk_fail(SNLVK_E_IO, "%s: cannot create the temporary file %s: %s", path, af->tmp, strerror(e));
        af_release(af);
        return s;
    }
    return SNLVK_OK;
}

/* fsync of the directory holding `path`, so that the rename itself is durable (best effort). */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (!slash) dir = strdup(".");
    else if (slash == path) dir = strdup("/");
    else {
        dir = malloc((size_t)(slash - path) + 1);
        if (dir) {
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
        }
    }
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

snlvk_status snlvk_atomic_commit(snlvk_atomic_file *af)
{
    if (!af->f) {
        af_release(af);
        return snlvk_fail(SNLVK_E_INVALID, "atomic write: commit without an open file");
    }
    int e = 0;
    const char *what = "write";
    if (ferror(af->f)) e = errno ? errno : EIO;
    if (!e && fflush(af->f) != 0) e = errno;
    if (!e && fsync(fileno(af->f)) != 0) {
        e = errno;
        what = "sync";
    }
    if (fclose(af->f) != 0 && !e) e = errno;
    af->f = NULL;
    if (!e && rename(af->tmp, af->path) != 0) {
        e = errno;
        what = "rename the temporary file over";
    }
    if (e) {
        remove(af->tmp);
        snlvk_status s = snlvk_fail(SNLVK_E_IO, "%s: cannot %s: %s", af->path, what, strerror(e));
        af_release(af);
        return s;
    }
    sync_dir(af->path);
    af_release(af);
    return SNLVK_OK;
}

void snlvk_atomic_abort(snlvk_atomic_file *af)
{
    if (af->f) {
        fclose(af->f);
        af->f = NULL;
        if (af->tmp) remove(af->tmp);
    }
    af_release(af);
}

snlvk_status snlvk_atomic_write(const char *path, const void *data, size_t len)
{
    snlvk_atomic_file af;
    SNLVK_TRY(snlvk_atomic_open(&af, path));
    if (len && fwrite(data, 1, len, af.f) != len) {
        int e = errno;
        snlvk_atomic_abort(&af);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot write: %s", path, strerror(e ? e : EIO));
    }
    return snlvk_atomic_commit(&af);
}

int snlvk_mkdirs(const char *dir)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int snlvk_file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fclose(f);
    return 1;
}
