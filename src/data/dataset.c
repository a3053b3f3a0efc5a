/* snlvk_dataset_load dispatch, freeing, and the helpers the readers share: paths, directory
 * listings, warnings, and (gzip-transparent) file reading with every size checked. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* stat, opendir, sysconf, pthreads under -std=c11 */
#endif
#include "data/data_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

snlvk_status data_join(char *dst, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int slash = la > 0 && a[la - 1] == '/';
    if (la + lb + 2 > DATA_PATH_MAX)
        return snlvk_fail(SNLVK_E_INVALID, "%s: path too long: expected at most %d bytes with '%s' appended",
                          a, DATA_PATH_MAX - 1, b);
    memmove(dst, a, la);
    if (!slash) dst[la++] = '/';
    memcpy(dst + la, b, lb + 1);
    return SNLVK_OK;
}

int data_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int data_is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

snlvk_status data_require_dir(const char *path, const char *what)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return snlvk_fail(SNLVK_E_IO, "%s: cannot open the %s directory: %s", path, what, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return snlvk_fail(SNLVK_E_IO, "%s: expected the %s directory, got a file that is not a directory", path, what);
    return SNLVK_OK;
}

snlvk_status data_warn(snlvk_dataset *d, const char *fmt, ...)
{
    if (d->n_warnings >= SNLVK_DATASET_MAX_WARNINGS) return SNLVK_OK;
    char msg[DATA_PATH_MAX + 512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!d->warnings) {
        d->warnings = calloc(SNLVK_DATASET_MAX_WARNINGS, sizeof *d->warnings);
        if (!d->warnings) return snlvk_fail(SNLVK_E_OOM, "out of memory for the list of dataset warnings");
    }
    char *copy = malloc(strlen(msg) + 1);
    if (!copy) return snlvk_fail(SNLVK_E_OOM, "out of memory for a dataset warning");
    strcpy(copy, msg);
    d->warnings[d->n_warnings++] = copy;
    return SNLVK_OK;
}

/* ---- gzip-transparent reading ---- */

snlvk_status data_gz_open(const char *path, gzFile *out)
{
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        if (errno == 0) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory opening the file", path);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    gzbuffer(f, 1u << 17);
    *out = f;
    return SNLVK_OK;
}

/* gzerror's message without the "<path>: " zlib puts in front of it. */
static const char *gz_message(gzFile f, const char *path, int *err)
{
    const char *msg = gzerror(f, err);
    if (!msg) return NULL;
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ') msg += n + 2;
    return msg;
}

/* Explains a gzread failure (ret < 0) or a short read. */
static snlvk_status gz_failure(gzFile f, const char *path, const char *field, size_t want, size_t got)
{
    int err = Z_OK;
    const char *msg = gz_message(f, path, &err);
    if (err == Z_ERRNO)
        return snlvk_fail(SNLVK_E_IO, "%s: read error in field '%s': %s", path, field, strerror(errno));
    if (err == Z_MEM_ERROR) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory decompressing", path);
    if (err == Z_BUF_ERROR)
        return snlvk_fail(SNLVK_E_INVALID,
                          "%s: field '%s': expected %zu bytes, got %zu: truncated gzip stream (%s)",
                          path, field, want, got, msg ? msg : "unexpected end of file");
    if (err != Z_OK)
        return snlvk_fail(SNLVK_E_INVALID, "%s: field '%s': corrupt gzip data: %s", path, field,
                          msg ? msg : "unknown zlib error");
    return snlvk_fail(SNLVK_E_INVALID, "%s: field '%s': expected %zu bytes, got %zu: the file is truncated", path,
                      field, want, got);
}

snlvk_status data_gz_exact(gzFile f, const char *path, const char *field, void *dst, size_t n)
{
    uint8_t *p = dst;
    size_t got = 0;
    while (got < n) {
        size_t chunk = n - got;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(f, p + got, (unsigned)chunk);
        if (r <= 0) return gz_failure(f, path, field, n, got);
        got += (size_t)r;
    }
    return SNLVK_OK;
}

snlvk_status data_gz_expect_end(gzFile f, const char *path, size_t expected)
{
    uint8_t extra;
    int r = gzread(f, &extra, 1);
    if (r == 1)
        return snlvk_fail(SNLVK_E_INVALID, "%s: file size: expected %zu bytes (from the header), the file is longer",
                          path, expected);
    int err = Z_OK;
    const char *msg = gz_message(f, path, &err);
    if (r < 0 || (err != Z_OK && err != Z_STREAM_END)) {
        if (err == Z_ERRNO) return snlvk_fail(SNLVK_E_IO, "%s: read error: %s", path, strerror(errno));
        if (err == Z_BUF_ERROR)
            return snlvk_fail(SNLVK_E_INVALID, "%s: gzip trailer: expected CRC and length, got a truncated stream",
                              path);
        return snlvk_fail(SNLVK_E_INVALID, "%s: gzip trailer: corrupt gzip data: %s", path,
                          msg ? msg : "unknown zlib error");
    }
    return SNLVK_OK;
}

snlvk_status data_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    gzFile f = NULL;
    SNLVK_TRY(data_gz_open(path, &f));
    size_t cap = 1u << 20, n = 0;
    uint8_t *b = malloc(cap);
    if (!b) {
        gzclose(f);
        return snlvk_fail(SNLVK_E_OOM, "%s: out of memory reading the file", path);
    }
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes + 1) {
                free(b);
                gzclose(f);
                return snlvk_fail(SNLVK_E_INVALID, "%s: file size: expected at most %zu bytes, the file is larger",
                                  path, max_bytes);
            }
            size_t nc = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
            if (nc > max_bytes + 1) nc = max_bytes + 1;
            uint8_t *nb = realloc(b, nc);
            if (!nb) {
                free(b);
                gzclose(f);
                return snlvk_fail(SNLVK_E_OOM, "%s: out of memory reading the file (%zu bytes)", path, nc);
            }
            b = nb;
            cap = nc;
        }
        size_t chunk = cap - n;
        if (chunk > (1u << 30)) chunk = 1u << 30;
        int r = gzread(f, b + n, (unsigned)chunk);
        if (r < 0) {
            snlvk_status s = gz_failure(f, path, "data", n + chunk, n);
            free(b);
            gzclose(f);
            return s;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    int err = Z_OK;
    const char *msg = gz_message(f, path, &err);
    if (err != Z_OK && err != Z_STREAM_END) {
        snlvk_status s;
        if (err == Z_BUF_ERROR)
            s = snlvk_fail(SNLVK_E_INVALID, "%s: truncated gzip stream: the file ends inside the compressed data "
                           "(after %zu bytes of output)", path, n);
        else if (err == Z_ERRNO)
            s = snlvk_fail(SNLVK_E_IO, "%s: read error: %s", path, strerror(errno));
        else
            s = snlvk_fail(SNLVK_E_INVALID, "%s: corrupt gzip data: %s", path, msg ? msg : "unknown zlib error");
        free(b);
        gzclose(f);
        return s;
    }
    gzclose(f);
    if (n > max_bytes) {
        free(b);
        return snlvk_fail(SNLVK_E_INVALID, "%s: file size: expected at most %zu bytes, the file is larger", path,
                          max_bytes);
    }
    *buf = b;
    *len = n;
    return SNLVK_OK;
}

/* ---- name lists and directory listings ---- */

snlvk_status data_names_push(data_names *l, const char *s)
{
    if (l->n == l->cap) {
        if (l->cap > INT_MAX / 2) return snlvk_fail(SNLVK_E_OOM, "too many directory entries");
        int nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, (size_t)nc * sizeof *nv);
        if (!nv) return snlvk_fail(SNLVK_E_OOM, "out of memory for a list of names");
        l->v = nv;
        l->cap = nc;
    }
    size_t len = strlen(s);
    char *c = malloc(len + 1);
    if (!c) return snlvk_fail(SNLVK_E_OOM, "out of memory for a list of names");
    memcpy(c, s, len + 1);
    l->v[l->n++] = c;
    return SNLVK_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void data_names_sort(data_names *l)
{
    if (l->n > 1) qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_str);
}

void data_names_free(data_names *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

snlvk_status data_list_dir(const char *dir, int dirs_only, data_names *out)
{
    memset(out, 0, sizeof *out);
    errno = 0;
    DIR *dp = opendir(dir);
    if (!dp) return snlvk_fail(SNLVK_E_IO, "%s: cannot open the directory: %s", dir, strerror(errno));
    char path[DATA_PATH_MAX];
    snlvk_status s = SNLVK_OK;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ".", "..", hidden files */
        if ((s = data_join(path, dir, e->d_name)) != SNLVK_OK) break;
        struct stat st;
        if (stat(path, &st) != 0) continue; /* dangling link */
        int is_dir = S_ISDIR(st.st_mode), is_reg = S_ISREG(st.st_mode);
        if (dirs_only == 1 && !is_dir) continue;
        if (dirs_only == 0 && !is_reg) continue;
        if (dirs_only == -1 && !is_dir && !is_reg) continue;
        if ((s = data_names_push(out, e->d_name)) != SNLVK_OK) break;
    }
    closedir(dp);
    if (s != SNLVK_OK) {
        data_names_free(out);
        return s;
    }
    data_names_sort(out);
    return SNLVK_OK;
}

/* ---- the public entry points ---- */

void snlvk_dataset_free(snlvk_dataset *d)
{
    if (!d) return;
    free(d->images);
    free(d->labels);
    if (d->class_names)
        for (int i = 0; i < d->n_class_names; i++) free(d->class_names[i]);
    free(d->class_names);
    if (d->warnings)
        for (int i = 0; i < d->n_warnings; i++) free(d->warnings[i]);
    free(d->warnings);
    memset(d, 0, sizeof *d);
}

static void set_norm(snlvk_dataset *d, const float mean[3], const float std[3])
{
    for (int i = 0; i < 3; i++) {
        d->mean[i] = mean[i];
        d->std[i] = std[i];
    }
}

static const struct {
    const char *alias, *name;
} kinds[] = {
    {"fashion-mnist", "fashion-mnist"}, {"fashion_mnist", "fashion-mnist"}, {"fashionmnist", "fashion-mnist"},
    {"fmnist", "fashion-mnist"},        {"mnist", "mnist"},                 {"cifar10", "cifar10"},
    {"cifar-10", "cifar10"},            {"cifar100", "cifar100"},           {"cifar-100", "cifar100"},
    {"imagefolder", "imagefolder"},     {"image-folder", "imagefolder"},    {"tiny-imagenet", "tiny-imagenet"},
    {"tinyimagenet", "tiny-imagenet"},  {"tiny_imagenet", "tiny-imagenet"},
};

snlvk_status snlvk_dataset_load(const char *kind, const char *root, int train, long limit, int image_size,
                                snlvk_dataset *out)
{
    if (!out) return snlvk_fail(SNLVK_E_INVALID, "snlvk_dataset_load: out is NULL");
    memset(out, 0, sizeof *out);
    if (!kind || !root) return snlvk_fail(SNLVK_E_INVALID, "snlvk_dataset_load: kind and root must not be NULL");
    const char *name = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kind, kinds[i].alias) == 0) name = kinds[i].name;
    if (!name)
        return snlvk_fail(SNLVK_E_INVALID,
                          "dataset kind: expected one of fashion-mnist, mnist, cifar10, cifar100, imagefolder, "
                          "tiny-imagenet, got '%s'",
                          kind);
    if (image_size < 0 || image_size > 4096)
        return snlvk_fail(SNLVK_E_INVALID, "%s: image_size: expected 0 (native) or 1..4096, got %d", root, image_size);
    snlvk_status s = data_require_dir(root, name);
    if (s != SNLVK_OK) return s;

    if (strcmp(name, "fashion-mnist") == 0 || strcmp(name, "mnist") == 0)
        s = data_load_idx(name, root, train, limit, out);
    else if (strcmp(name, "cifar10") == 0)
        s = data_load_cifar(0, root, train, limit, out);
    else if (strcmp(name, "cifar100") == 0)
        s = data_load_cifar(1, root, train, limit, out);
    else if (strcmp(name, "imagefolder") == 0)
        s = data_load_imagefolder(root, train, limit, image_size, out);
    else
        s = data_load_tinyimagenet(root, train, limit, image_size, out);
    if (s != SNLVK_OK) {
        snlvk_dataset_free(out);
        return s;
    }
    snprintf(out->name, sizeof out->name, "%s", name);

    /* grey datasets: the one constant in all three slots */
    static const float fm_mean[3] = {0.28604f, 0.28604f, 0.28604f}, fm_std[3] = {0.35302f, 0.35302f, 0.35302f};
    static const float mn_mean[3] = {0.1307f, 0.1307f, 0.1307f}, mn_std[3] = {0.3081f, 0.3081f, 0.3081f};
    static const float cf_mean[3] = {0.4914f, 0.4822f, 0.4465f}, cf_std[3] = {0.2023f, 0.1994f, 0.2010f};
    static const float ti_mean[3] = {0.480f, 0.448f, 0.398f}, ti_std[3] = {0.277f, 0.269f, 0.282f};
    static const float in_mean[3] = {0.485f, 0.456f, 0.406f}, in_std[3] = {0.229f, 0.224f, 0.225f};
    static const float half[3] = {0.5f, 0.5f, 0.5f};
    out->augment = 0;
    out->crop_pad = 0;
    if (strcmp(name, "fashion-mnist") == 0) set_norm(out, fm_mean, fm_std);
    else if (strcmp(name, "mnist") == 0) set_norm(out, mn_mean, mn_std);
    else if (strcmp(name, "cifar10") == 0 || strcmp(name, "cifar100") == 0) {
        set_norm(out, cf_mean, cf_std);
        out->augment = train ? 1 : 0;
        out->crop_pad = train ? 4 : 0;
    } else if (strcmp(name, "tiny-imagenet") == 0) {
        set_norm(out, ti_mean, ti_std);
        out->augment = train ? 1 : 0;
        out->crop_pad = train ? (out->h >= 64 ? 8 : 4) : 0;
    } else if (out->c == 1) set_norm(out, half, half);
    else set_norm(out, in_mean, in_std);
    return SNLVK_OK;
}
