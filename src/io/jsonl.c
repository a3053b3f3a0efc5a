#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "io/jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

snlvk_status snlvk_jsonl_open(snlvk_jsonl *l, const char *path)
{
    l->fd = -1;
    l->path = NULL;
    if (!path || !path[0]) return snlvk_fail(SNLVK_E_INVALID, "JSON lines log: empty path");
    size_t n = strlen(path);
    l->path = malloc(n + 1);
    if (!l->path) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);
    memcpy(l->path, path, n + 1);
    l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (l->fd < 0) {
        int e = errno;
        free(l->path);
        l->path = NULL;
        return snlvk_fail(SNLVK_E_IO, "%s: cannot open for appending: %s", path, strerror(e));
    }
    return SNLVK_OK;
}

/* Writes text + '\n' in one write() (retried on a partial write or EINTR). */
static snlvk_status write_line(snlvk_jsonl *l, const char *text, size_t len)
{
    if (!l || l->fd < 0) return snlvk_fail(SNLVK_E_INVALID, "JSON lines log: not open");
    if (len > SIZE_MAX - 1) return snlvk_fail(SNLVK_E_OOM, "%s: line too long", l->path);
    char *line = malloc(len + 1);
    if (!line) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", l->path);
    memcpy(line, text, len);
    line[len] = '\n';
    size_t done = 0, total = len + 1;
    while (done < total) {
        ssize_t k = write(l->fd, line + done, total - done);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(line);
            return snlvk_fail(SNLVK_E_IO, "%s: cannot append: %s", l->path, strerror(e));
        }
        if (k == 0) {
            free(line);
            return snlvk_fail(SNLVK_E_IO, "%s: cannot append: no progress", l->path);
        }
        done += (size_t)k;
    }
    free(line);
    return SNLVK_OK;
}

snlvk_status snlvk_jsonl_write(snlvk_jsonl *l, snlvk_jw *w)
{
    const char *path = l && l->path ? l->path : "JSON lines log";
    if (w->indent) return snlvk_fail(SNLVK_E_INVALID, "%s: a JSON line must be compact (indent 0)", path);
    const char *text;
    size_t len;
    SNLVK_TRY(snlvk_jw_finish(w, &text, &len));
    if (len == 0 || text[0] != '{') return snlvk_fail(SNLVK_E_INVALID, "%s: a JSON line must be an object", path);
    SNLVK_TRY(write_line(l, text, len));
    snlvk_jw_reset(w);
    return SNLVK_OK;
}

snlvk_status snlvk_jsonl_write_text(snlvk_jsonl *l, const char *json, size_t len)
{
    const char *path = l && l->path ? l->path : "JSON lines log";
    if (!json) return snlvk_fail(SNLVK_E_INVALID, "%s: no text", path);
    if (memchr(json, '\n', len) || memchr(json, '\r', len))
        return snlvk_fail(SNLVK_E_INVALID, "%s: a JSON line must not contain a newline", path);
    snlvk_json *v;
    SNLVK_TRY(snlvk_json_parse(json, len, path, &v));
    int is_object = v->type == SNLVK_JSON_OBJECT;
    snlvk_json_free(v);
    if (!is_object) return snlvk_fail(SNLVK_E_INVALID, "%s: a JSON line must be an object", path);
    return write_line(l, json, len);
}

snlvk_status snlvk_jsonl_close(snlvk_jsonl *l)
{
    snlvk_status s = SNLVK_OK;
    if (l->fd >= 0 && close(l->fd) != 0)
        s = snlvk_fail(SNLVK_E_IO, "%s: cannot close: %s", l->path ? l->path : "JSON lines log", strerror(errno));
    free(l->path);
    l->path = NULL;
    l->fd = -1;
    return s;
}

snlvk_status snlvk_jsonl_append(const char *path, snlvk_jw *w)
{
    snlvk_jsonl l;
    SNLVK_TRY(snlvk_jsonl_open(&l, path));
    snlvk_status s = snlvk_jsonl_write(&l, w);
    snlvk_status c = snlvk_jsonl_close(&l);
    return s != SNLVK_OK ? s : c;
}
