/* JSON lines logs: one JSON object per line, appended to a file (created if missing).
 * Each line goes out in a single write() on a descriptor opened with O_APPEND, so it is
 * on its way to the file as soon as the call returns (no user-space buffering) and lines
 * from several writers never interleave mid-line.
 *
 *     snlvk_jsonl log;  snlvk_jw w;
 *     SNLVK_TRY(snlvk_jsonl_open(&log, "train.jsonl"));
 *     snlvk_jw_init(&w, 0);
 *     snlvk_jw_begin_object(&w); snlvk_jw_kv_int(&w, "epoch", 3); snlvk_jw_end_object(&w);
 *     s = snlvk_jsonl_write(&log, &w);      // writes {"epoch": 3}\n, then resets w
 *     ...
 *     snlvk_jw_free(&w); snlvk_jsonl_close(&log); */
#ifndef SNLVK_IO_JSONL_H
#define SNLVK_IO_JSONL_H

#include <stddef.h>

#include "core/error.h"
#include "io/json.h"

typedef struct snlvk_jsonl {
    int fd; /* -1 when closed */
    char *path;
} snlvk_jsonl;

/* Opens `path` for appending, creating it (mode 0644 before the umask) if missing. On
 * failure l->fd is -1 and closing is still fine. */
snlvk_status snlvk_jsonl_open(snlvk_jsonl *l, const char *path);
/* Finishes w (compact, indent 0, and an object), appends it with a newline, and resets w
 * for the next line. */
snlvk_status snlvk_jsonl_write(snlvk_jsonl *l, snlvk_jw *w);
/* Appends `len` bytes of JSON text as one line after checking that it parses as one JSON
 * object and holds no raw newline. */
snlvk_status snlvk_jsonl_write_text(snlvk_jsonl *l, const char *json, size_t len);
/* Closes (fine on a closed or failed log); reports a close error. */
snlvk_status snlvk_jsonl_close(snlvk_jsonl *l);
/* open + write + close in one call. */
snlvk_status snlvk_jsonl_append(const char *path, snlvk_jw *w);

#endif
