/* Atomic file output: write everything to `PATH.tmp.<pid>` in the same directory, then
 * commit (fflush + fsync + rename over PATH + fsync of the directory) or abort (remove the
 * temporary file). Readers of PATH see either the old file or the complete new one, never
 * a half-written file, and a failed write leaves an existing PATH untouched. */
#ifndef SNLVK_IO_ATOMIC_FILE_H
#define SNLVK_IO_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef struct snlvk_atomic_file {
    FILE *f;    /* write the contents here (binary mode) */
    char *path; /* the final path */
    char *tmp;  /* the temporary path */
} snlvk_atomic_file;

/* Creates the temporary file. On failure (e.g. the directory does not exist) nothing is
 * left behind and *af is zeroed. */
snlvk_status snlvk_atomic_open(snlvk_atomic_file *af, const char *path);
/* Flushes, syncs and renames the temporary file over the path. On any failure (a write
 * error remembered by the stream included) the temporary file is removed, the path is
 * left as it was and SNLVK_E_IO names the path and the reason. *af is released either way. */
snlvk_status snlvk_atomic_commit(snlvk_atomic_file *af);
/* Closes and removes the temporary file; the path is left as it was. Safe on a zeroed,
 * committed or already aborted *af. */
void snlvk_atomic_abort(snlvk_atomic_file *af);

/* Writes `len` bytes to `path` atomically. */
snlvk_status snlvk_atomic_write(const char *path, const void *data, size_t len);

/* Creates the directory `dir` and any missing parents (mkdir -p, mode 0755). Returns 0
 * (also when it already exists), or -1 with errno set. Sets no error message. */
int snlvk_mkdirs(const char *dir);

/* 1 when `path` exists and can be opened for reading. */
int snlvk_file_exists(const char *path);

#endif
