#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "io/safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic_file.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[SNLVK_ST_DTYPE_COUNT] = {
    [SNLVK_ST_F32] = {"F32", 4},     [SNLVK_ST_F64] = {"F64", 8},         [SNLVK_ST_F16] = {"F16", 2},
    [SNLVK_ST_BF16] = {"BF16", 2},   [SNLVK_ST_I64] = {"I64", 8},         [SNLVK_ST_I32] = {"I32", 4},
    [SNLVK_ST_I16] = {"I16", 2},     [SNLVK_ST_I8] = {"I8", 1},           [SNLVK_ST_U64] = {"U64", 8},
    [SNLVK_ST_U32] = {"U32", 4},     [SNLVK_ST_U16] = {"U16", 2},         [SNLVK_ST_U8] = {"U8", 1},
    [SNLVK_ST_BOOL] = {"BOOL", 1},   [SNLVK_ST_F8_E4M3] = {"F8_E4M3", 1}, [SNLVK_ST_F8_E5M2] = {"F8_E5M2", 1},
};

static const char META_KEY[] = "__metadata__";

const char *snlvk_st_dtype_name(snlvk_st_dtype d)
{
    return (unsigned)d < SNLVK_ST_DTYPE_COUNT ? dtypes[d].name : "?";
}

size_t snlvk_st_dtype_size(snlvk_st_dtype d) { return (unsigned)d < SNLVK_ST_DTYPE_COUNT ? dtypes[d].size : 0; }

int snlvk_st_dtype_parse(const char *name, snlvk_st_dtype *out)
{
    if (!name) return 0;
    for (int i = 0; i < SNLVK_ST_DTYPE_COUNT; i++)
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = (snlvk_st_dtype)i;
            return 1;
        }
    return 0;
}

char *snlvk_st_shape_str(const uint64_t *shape, int ndim, char *buf, size_t size)
{
    if (!size) return buf;
    size_t n = 0;
    buf[0] = '\0';
    int k = snprintf(buf, size, "[");
    n = (size_t)k;
    for (int i = 0; i < ndim && n < size; i++) {
        k = snprintf(buf + n, size - n, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
        if (k < 0) break;
        n += (size_t)k;
    }
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

static int host_little_endian(void)
{
    const uint16_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static snlvk_status not_le(const char *path)
{
    return snlvk_fail(SNLVK_E_UNSUPPORTED, "%s: safetensors needs a little-endian host", path);
}

/* a*b into *out unless it overflows */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ====================================================================== reading */

static snlvk_status tfail(const snlvk_st *st, const char *tensor, const char *field, const char *fmt, ...)
    SNLVK_PRINTF(4, 5);
static snlvk_status tfail(const snlvk_st *st, const char *tensor, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *path = st && st->path ? st->path : "safetensors";
    if (field) return snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field '%s': %s", path, tensor, field, msg);
    return snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': %s", path, tensor, msg);
}

/* "an array", "-3", "true", the string "abc"..., ... */
static const char *desc(const snlvk_json *v, char buf[48])
{
    if (v->type != SNLVK_JSON_STRING) return snlvk_json_describe(v, buf);
    snprintf(buf, 48, "the string \"%.24s%s\"", v->u.string, v->n > 24 ? "..." : "");
    return buf;
}

static int cmp_name(const void *a, const void *b)
{
    const snlvk_st_tensor *x = *(const snlvk_st_tensor *const *)a, *y = *(const snlvk_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const snlvk_st_tensor *x = *(const snlvk_st_tensor *const *)a, *y = *(const snlvk_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* A non-negative integer that fits in uint64 (JSON integers here are int64). */
static int get_uint(const snlvk_json *v, uint64_t *out)
{
    if (v->type != SNLVK_JSON_NUMBER || !v->is_int || v->u.num.integer < 0) return 0;
    *out = (uint64_t)v->u.num.integer;
    return 1;
}

static snlvk_status parse_tensor(snlvk_st *st, snlvk_st_tensor *t, const snlvk_json *v)
{
    char b[48], b2[64];
    const char *name = t->name;
    if (v->type != SNLVK_JSON_OBJECT) return tfail(st, name, NULL, "expected an object, got %s", desc(v, b));

    const snlvk_json *dv = snlvk_json_get(v, "dtype");
    if (!dv) return tfail(st, name, "dtype", "missing");
    if (dv->type != SNLVK_JSON_STRING) return tfail(st, name, "dtype", "expected a string, got %s", desc(dv, b));
    if (strlen(dv->u.string) != dv->n || !snlvk_st_dtype_parse(dv->u.string, &t->dtype))
        return tfail(st, name, "dtype", "unknown dtype '%.40s'", dv->u.string);

    const snlvk_json *sv = snlvk_json_get(v, "shape");
    if (!sv) return tfail(st, name, "shape", "missing");
    if (sv->type != SNLVK_JSON_ARRAY)
        return tfail(st, name, "shape", "expected an array of non-negative integers, got %s", desc(sv, b));
    if (sv->n > SNLVK_ST_MAX_DIMS)
        return tfail(st, name, "shape", "%zu dimensions, more than the %d supported", sv->n, SNLVK_ST_MAX_DIMS);
    t->ndim = (int)sv->n;
    uint64_t numel = 1;
    for (size_t j = 0; j < sv->n; j++) {
        const snlvk_json *d = &sv->u.c.items[j];
        if (d->type == SNLVK_JSON_NUMBER && d->is_int && d->u.num.integer < 0)
            return tfail(st, name, "shape", "dimension %zu is negative (%lld)", j, (long long)d->u.num.integer);
        if (!get_uint(d, &t->shape[j]))
            return tfail(st, name, "shape", "dimension %zu: expected a non-negative integer, got %s", j, desc(d, b));
        if (!mul_ok(numel, t->shape[j], &numel))
            return tfail(st, name, "shape", "the element count of %s overflows",
                         snlvk_st_shape_str(t->shape, (int)j + 1, b2, sizeof b2));
    }
    t->numel = numel;
    if (!mul_ok(numel, snlvk_st_dtype_size(t->dtype), &t->nbytes))
        return tfail(st, name, "shape", "the byte size of %s overflows", snlvk_st_shape_str(t->shape, t->ndim, b2, sizeof b2));

    const snlvk_json *ov = snlvk_json_get(v, "data_offsets");
    if (!ov) return tfail(st, name, "data_offsets", "missing");
    if (ov->type != SNLVK_JSON_ARRAY || ov->n != 2) {
        if (ov->type == SNLVK_JSON_ARRAY)
            return tfail(st, name, "data_offsets", "expected [begin, end], got an array of %zu", ov->n);
        return tfail(st, name, "data_offsets", "expected [begin, end], got %s", desc(ov, b));
    }
    if (!get_uint(&ov->u.c.items[0], &t->begin))
        return tfail(st, name, "data_offsets", "begin: expected a non-negative integer, got %s", desc(&ov->u.c.items[0], b));
    if (!get_uint(&ov->u.c.items[1], &t->end))
        return tfail(st, name, "data_offsets", "end: expected a non-negative integer, got %s", desc(&ov->u.c.items[1], b));
    if (t->begin > t->end)
        return tfail(st, name, "data_offsets", "begin %llu is after end %llu", (unsigned long long)t->begin,
                     (unsigned long long)t->end);
    if (t->end > st->data_size)
        return tfail(st, name, "data_offsets", "end %llu is past the data (%llu bytes)", (unsigned long long)t->end,
                     (unsigned long long)st->data_size);
    if (t->end - t->begin != t->nbytes)
        return tfail(st, name, "data_offsets", "[%llu, %llu] holds %llu bytes, but shape %s of %s needs %llu",
                     (unsigned long long)t->begin, (unsigned long long)t->end,
                     (unsigned long long)(t->end - t->begin), snlvk_st_shape_str(t->shape, t->ndim, b2, sizeof b2),
                     snlvk_st_dtype_name(t->dtype), (unsigned long long)t->nbytes);
    return SNLVK_OK;
}

/* Parses and validates the header; the tensors' data pointers are set later. */
static snlvk_status parse_header(snlvk_st *st, const char *hdr, size_t n)
{
    char b[48];
    size_t pl = strlen(st->path);
    char *jname = malloc(pl + 9);
    if (!jname) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", st->path);
    memcpy(jname, st->path, pl);
    memcpy(jname + pl, ": header", 9);
    snlvk_json_limits lim = {64, SNLVK_ST_MAX_HEADER, 0};
    snlvk_status s = snlvk_json_parse_ex(hdr, n, jname, &lim, &st->header_, NULL);
    free(jname);
    SNLVK_TRY(s);
    const snlvk_json *root = st->header_;
    if (root->type != SNLVK_JSON_OBJECT)
        return snlvk_fail(SNLVK_E_INVALID, "%s: header: expected a JSON object, got %s", st->path, desc(root, b));

    const snlvk_json *meta = NULL;
    for (size_t i = 0; i < root->n; i++)
        if (root->u.c.keys[i].len == sizeof META_KEY - 1 && memcmp(root->u.c.keys[i].s, META_KEY, sizeof META_KEY) == 0)
            meta = &root->u.c.items[i];
    size_t nt = root->n - (meta ? 1 : 0);
    if (meta) {
        if (meta->type != SNLVK_JSON_OBJECT)
            return snlvk_fail(SNLVK_E_INVALID, "%s: field '%s': expected an object of strings, got %s", st->path, META_KEY,
                              desc(meta, b));
        if (meta->n) {
            st->meta = calloc(meta->n, sizeof *st->meta);
            if (!st->meta) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", st->path);
        }
        for (size_t i = 0; i < meta->n; i++) {
            const snlvk_json *v = &meta->u.c.items[i];
            if (v->type != SNLVK_JSON_STRING)
                return snlvk_fail(SNLVK_E_INVALID, "%s: field '%s': key '%s': expected a string, got %s", st->path,
                                  META_KEY, meta->u.c.keys[i].s, desc(v, b));
            st->meta[i].key = meta->u.c.keys[i].s;
            st->meta[i].value = v->u.string;
        }
        st->n_meta = meta->n;
    }
    if (nt) {
        st->tensors = calloc(nt, sizeof *st->tensors);
        st->by_name_ = calloc(nt, sizeof *st->by_name_);
        if (!st->tensors || !st->by_name_) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", st->path);
    }
    size_t k = 0;
    for (size_t i = 0; i < root->n; i++) {
        const snlvk_json *v = &root->u.c.items[i];
        if (v == meta) continue;
        snlvk_st_tensor *t = &st->tensors[k];
        t->name = root->u.c.keys[i].s;
        SNLVK_TRY(parse_tensor(st, t, v));
        st->by_name_[k] = t;
        k++;
    }
    st->n_tensors = nt;

    /* Overlaps: in data order, every non-empty tensor must start at or after the end of
     * every earlier one. Reuses by_name_ as scratch before it is sorted by name. */
    if (nt > 1) qsort(st->by_name_, nt, sizeof *st->by_name_, cmp_offset);
    const snlvk_st_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    for (size_t i = 0; i < nt; i++) {
        const snlvk_st_tensor *t = st->by_name_[i];
        if (t->nbytes == 0) continue;
        if (last && t->begin < last->end)
            return tfail(st, t->name, "data_offsets", "[%llu, %llu] overlaps tensor '%s' [%llu, %llu]",
                         (unsigned long long)t->begin, (unsigned long long)t->end, last->name,
                         (unsigned long long)last->begin, (unsigned long long)last->end);
        if (!last || t->end > last->end) last = t;
    }
    if (nt > 1) qsort(st->by_name_, nt, sizeof *st->by_name_, cmp_name);
    return SNLVK_OK;
}

static uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static snlvk_status st_begin(snlvk_st *st, const char *path)
{
    memset(st, 0, sizeof *st);
    if (!path) path = "(null)";
    if (!host_little_endian()) return not_le(path);
    size_t pl = strlen(path);
    st->path = malloc(pl + 1);
    if (!st->path) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);
    memcpy(st->path, path, pl + 1);
    return SNLVK_OK;
}

/* Checks the header length against the size; sets header_len and data_size. */
static snlvk_status st_sizes(snlvk_st *st, uint64_t size, const unsigned char first8[8])
{
    uint64_t n = le64(first8);
    if (n > size - 8)
        return snlvk_fail(SNLVK_E_INVALID, "%s: header length %llu is past the end of the file (%llu bytes)", st->path,
                          (unsigned long long)n, (unsigned long long)size);
    if (n > SNLVK_ST_MAX_HEADER)
        return snlvk_fail(SNLVK_E_INVALID, "%s: header length %llu is larger than the limit (%u bytes)", st->path,
                          (unsigned long long)n, SNLVK_ST_MAX_HEADER);
    st->header_len = n;
    st->data_size = size - 8 - n;
    if (st->data_size > SIZE_MAX - 16)
        return snlvk_fail(SNLVK_E_OOM, "%s: %llu bytes of data do not fit in memory", st->path,
                          (unsigned long long)st->data_size);
    return SNLVK_OK;
}

static snlvk_status st_alloc_data(snlvk_st *st)
{
    st->data_ = malloc(st->data_size ? (size_t)st->data_size : 1);
    if (!st->data_)
        return snlvk_fail(SNLVK_E_OOM, "%s: out of memory for %llu bytes of data", st->path,
                          (unsigned long long)st->data_size);
    return SNLVK_OK;
}

static void st_set_pointers(snlvk_st *st)
{
    for (size_t i = 0; i < st->n_tensors; i++) st->tensors[i].data = st->data_ + st->tensors[i].begin;
}

static snlvk_status st_too_short(const snlvk_st *st, uint64_t size)
{
    return snlvk_fail(SNLVK_E_INVALID, "%s: file of %llu bytes is too short for a safetensors header (8 bytes at least)",
                      st->path, (unsigned long long)size);
}

static snlvk_status read_file(snlvk_st *st, FILE *f)
{
    const char *path = st->path;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) return snlvk_fail(SNLVK_E_IO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return snlvk_fail(SNLVK_E_IO, "%s: not a regular file", path);
    uint64_t size = sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
    if (size < 8) return st_too_short(st, size);
    unsigned char first8[8];
    if (fread(first8, 1, 8, f) != 8)
        return snlvk_fail(SNLVK_E_IO, "%s: cannot read the header length: %s", path, ferror(f) ? strerror(errno) : "file shrank");
    SNLVK_TRY(st_sizes(st, size, first8));
    size_t n = (size_t)st->header_len;
    char *hdr = malloc(n ? n : 1);
    if (!hdr) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory for a header of %zu bytes", path, n);
    if (fread(hdr, 1, n, f) != n) {
        int e = ferror(f) ? errno : 0;
        free(hdr);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot read the header: %s", path, e ? strerror(e) : "file shrank");
    }
    snlvk_status s = parse_header(st, hdr, n);
    free(hdr);
    SNLVK_TRY(s);
    SNLVK_TRY(st_alloc_data(st));
    size_t dn = (size_t)st->data_size;
    if (fread(st->data_, 1, dn, f) != dn) {
        int e = ferror(f) ? errno : 0;
        return snlvk_fail(SNLVK_E_IO, "%s: cannot read %zu bytes of data: %s", path, dn, e ? strerror(e) : "file shrank");
    }
    st_set_pointers(st);
    return SNLVK_OK;
}

snlvk_status snlvk_st_read(const char *path, snlvk_st *st)
{
    SNLVK_TRY(st_begin(st, path));
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snlvk_st_free(st);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    snlvk_status s = read_file(st, f);
    fclose(f);
    if (s != SNLVK_OK) snlvk_st_free(st);
    return s;
}

snlvk_status snlvk_st_parse(const void *buf, size_t len, const char *name, snlvk_st *st)
{
    SNLVK_TRY(st_begin(st, name));
    const unsigned char *p = buf;
    snlvk_status s;
    if (!p && len) s = snlvk_fail(SNLVK_E_INVALID, "%s: no buffer", st->path);
    else if (len < 8) s = st_too_short(st, len);
    else if ((s = st_sizes(st, len, p)) == SNLVK_OK &&
             (s = parse_header(st, (const char *)p + 8, (size_t)st->header_len)) == SNLVK_OK &&
             (s = st_alloc_data(st)) == SNLVK_OK) {
        memcpy(st->data_, p + 8 + st->header_len, (size_t)st->data_size);
        st_set_pointers(st);
    }
    if (s != SNLVK_OK) snlvk_st_free(st);
    return s;
}

void snlvk_st_free(snlvk_st *st)
{
    if (!st) return;
    free(st->path);
    free(st->tensors);
    free(st->meta);
    free(st->data_);
    free(st->by_name_);
    snlvk_json_free(st->header_);
    memset(st, 0, sizeof *st);
}

const snlvk_st_tensor *snlvk_st_find(const snlvk_st *st, const char *name)
{
    if (!st || !name || !st->by_name_) return NULL;
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->by_name_[mid]->name);
        if (c == 0) return st->by_name_[mid];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

snlvk_status snlvk_st_get(const snlvk_st *st, const char *name, snlvk_st_dtype dtype, int ndim, const uint64_t *shape,
                          const snlvk_st_tensor **out)
{
    *out = NULL;
    const snlvk_st_tensor *t = snlvk_st_find(st, name);
    if (!t) return tfail(st, name, NULL, "missing");
    if (t->dtype != dtype)
        return tfail(st, name, "dtype", "expected %s, got %s", snlvk_st_dtype_name(dtype), snlvk_st_dtype_name(t->dtype));
    if (ndim >= 0) {
        int same = ndim == t->ndim;
        for (int i = 0; same && i < ndim; i++) same = shape[i] == t->shape[i];
        if (!same) {
            char a[256], b[256];
            return tfail(st, name, "shape", "expected %s, got %s",
                         snlvk_st_shape_str(shape, ndim < SNLVK_ST_MAX_DIMS ? ndim : SNLVK_ST_MAX_DIMS, a, sizeof a),
                         snlvk_st_shape_str(t->shape, t->ndim, b, sizeof b));
        }
    }
    *out = t;
    return SNLVK_OK;
}

snlvk_status snlvk_st_copy(const snlvk_st *st, const snlvk_st_tensor *t, void *dst, size_t dst_bytes)
{
    if (t->nbytes != dst_bytes)
        return tfail(st, t->name, NULL, "holds %llu bytes, but the destination holds %zu", (unsigned long long)t->nbytes,
                     dst_bytes);
    if (dst_bytes) memcpy(dst, t->data, dst_bytes);
    return SNLVK_OK;
}

const char *snlvk_st_meta_get(const snlvk_st *st, const char *key)
{
    if (!st || !key) return NULL;
    for (size_t i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

/* ====================================================================== writing */

#define HB_LIT(b, lit) snlvk_sb_put((b), (lit), sizeof(lit) - 1)

static void hb_str(snlvk_strbuf *b, const char *s) { snlvk_json_put_string(b, s, strlen(s)); }

static void hb_u64(snlvk_strbuf *b, uint64_t v) { snlvk_sb_printf(b, "%llu", (unsigned long long)v); }

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a duplicate among n strings (sorted copy); returns it or NULL. *oom on failure. */
static const char *find_duplicate(const char **names, size_t n, int *oom)
{
    *oom = 0;
    if (n < 2) return NULL;
    const char **tmp = malloc(n * sizeof *tmp);
    if (!tmp) {
        *oom = 1;
        return NULL;
    }
    memcpy(tmp, names, n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(tmp[i - 1], tmp[i]) == 0) dup = tmp[i];
    free(tmp);
    return dup;
}

static snlvk_status wfail(const char *path, const char *tensor, const char *fmt, ...) SNLVK_PRINTF(3, 4);
static snlvk_status wfail(const char *path, const char *tensor, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (tensor) return snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': %s", path, tensor, msg);
    return snlvk_fail(SNLVK_E_INVALID, "%s: %s", path, msg);
}

/* Validates everything and builds the padded header; *sizes gets each tensor's bytes. */
static snlvk_status build_header(const char *path, const snlvk_st_entry *t, size_t nt, const snlvk_st_meta *meta,
                                 size_t nm, snlvk_strbuf *h, uint64_t *sizes)
{
    for (size_t i = 0; i < nm; i++) {
        if (!meta[i].key || !meta[i].value) return wfail(path, NULL, "metadata entry %zu has no key or value", i);
        if (!snlvk_json_utf8_valid(meta[i].key, strlen(meta[i].key)))
            return wfail(path, NULL, "metadata key %zu is not valid UTF-8", i);
        if (!snlvk_json_utf8_valid(meta[i].value, strlen(meta[i].value)))
            return wfail(path, NULL, "metadata '%s': the value is not valid UTF-8", meta[i].key);
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < nt; i++) {
        const snlvk_st_entry *e = &t[i];
        if (!e->name) return wfail(path, NULL, "tensor %zu has no name", i);
        if (!snlvk_json_utf8_valid(e->name, strlen(e->name)))
            return wfail(path, NULL, "tensor %zu: the name is not valid UTF-8", i);
        if (strcmp(e->name, META_KEY) == 0) return wfail(path, e->name, "this name is reserved for the metadata");
        if ((unsigned)e->dtype >= SNLVK_ST_DTYPE_COUNT) return wfail(path, e->name, "unknown dtype %d", (int)e->dtype);
        if (e->ndim < 0 || e->ndim > SNLVK_ST_MAX_DIMS)
            return wfail(path, e->name, "%d dimensions (0 to %d are supported)", e->ndim, SNLVK_ST_MAX_DIMS);
        uint64_t numel = 1, nb;
        for (int d = 0; d < e->ndim; d++)
            if (!mul_ok(numel, e->shape[d], &numel)) return wfail(path, e->name, "the element count overflows");
        if (!mul_ok(numel, snlvk_st_dtype_size(e->dtype), &nb) || nb > UINT64_MAX - offset || nb > SIZE_MAX)
            return wfail(path, e->name, "the byte size overflows");
        if (nb && !e->data) return wfail(path, e->name, "no data for %llu bytes", (unsigned long long)nb);
        sizes[i] = nb;
        offset += nb;
    }
    int oom;
    size_t most = nt > nm ? nt : nm;
    const char **names = most < SIZE_MAX / sizeof *names ? malloc(most * sizeof *names + 1) : NULL;
    if (!names) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);
    for (size_t i = 0; i < nt; i++) names[i] = t[i].name;
    const char *dup = find_duplicate(names, nt, &oom);
    if (!dup && !oom) {
        for (size_t i = 0; i < nm; i++) names[i] = meta[i].key;
        const char *mdup = find_duplicate(names, nm, &oom);
        if (mdup) {
            snlvk_status s = wfail(path, NULL, "metadata key '%s' appears twice", mdup);
            free(names);
            return s;
        }
    }
    if (dup) {
        snlvk_status s = wfail(path, dup, "the name appears twice");
        free(names);
        return s;
    }
    free(names);
    if (oom) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);

    HB_LIT(h, "{");
    if (nm) {
        hb_str(h, META_KEY);
        HB_LIT(h, ":{");
        for (size_t i = 0; i < nm; i++) {
            if (i) HB_LIT(h, ",");
            hb_str(h, meta[i].key);
            HB_LIT(h, ":");
            hb_str(h, meta[i].value);
        }
        HB_LIT(h, "}");
    }
    offset = 0;
    for (size_t i = 0; i < nt; i++) {
        const snlvk_st_entry *e = &t[i];
        if (i || nm) HB_LIT(h, ",");
        hb_str(h, e->name);
        HB_LIT(h, ":{\"dtype\":");
        hb_str(h, snlvk_st_dtype_name(e->dtype));
        HB_LIT(h, ",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            if (d) HB_LIT(h, ",");
            hb_u64(h, e->shape[d]);
        }
        HB_LIT(h, "],\"data_offsets\":[");
        hb_u64(h, offset);
        HB_LIT(h, ",");
        hb_u64(h, offset + sizes[i]);
        HB_LIT(h, "]}");
        offset += sizes[i];
    }
    HB_LIT(h, "}");
    while (!h->oom && h->n % 8) HB_LIT(h, " ");
    if (h->oom) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory for the header", path);
    if (h->n > SNLVK_ST_MAX_HEADER)
        return wfail(path, NULL, "header of %zu bytes is larger than the format allows (%u)", h->n, SNLVK_ST_MAX_HEADER);
    return SNLVK_OK;
}

snlvk_status snlvk_st_write(const char *path, const snlvk_st_entry *tensors, size_t n_tensors,
                            const snlvk_st_meta *meta, size_t n_meta)
{
    if (!path) return snlvk_fail(SNLVK_E_INVALID, "safetensors: no path to write");
    if (!host_little_endian()) return not_le(path);
    if ((n_tensors && !tensors) || (n_meta && !meta)) return wfail(path, NULL, "no tensor or metadata list");
    if (n_tensors > SIZE_MAX / sizeof(uint64_t)) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);
    uint64_t *sizes = malloc(n_tensors * sizeof *sizes + 1);
    if (!sizes) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);
    snlvk_strbuf h = {0};
    snlvk_status s = build_header(path, tensors, n_tensors, meta, n_meta, &h, sizes);
    if (s != SNLVK_OK) {
        free(sizes);
        snlvk_sb_free(&h);
        return s;
    }
    snlvk_atomic_file af;
    s = snlvk_atomic_open(&af, path);
    if (s == SNLVK_OK) {
        unsigned char len8[8];
        uint64_t n = h.n;
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(n >> (8 * i));
        int ok = fwrite(len8, 1, 8, af.f) == 8 && fwrite(h.s, 1, h.n, af.f) == h.n;
        for (size_t i = 0; ok && i < n_tensors; i++)
            if (sizes[i]) ok = fwrite(tensors[i].data, 1, (size_t)sizes[i], af.f) == sizes[i];
        if (!ok) {
            int e = errno;
            snlvk_atomic_abort(&af);
            s = snlvk_fail(SNLVK_E_IO, "%s: cannot write: %s", path, strerror(e ? e : EIO));
        } else
            s = snlvk_atomic_commit(&af);
    }
    free(sizes);
    snlvk_sb_free(&h);
    return s;
}

void snlvk_st_builder_init(snlvk_st_builder *b) { memset(b, 0, sizeof *b); }

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static snlvk_status builder_add(snlvk_st_builder *b, const char *name, snlvk_st_dtype dtype, int ndim,
                                const uint64_t *shape, const void *data, int copy)
{
    if (!name) return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: a tensor without a name");
    if (ndim < 0 || ndim > SNLVK_ST_MAX_DIMS)
        return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: tensor '%s': %d dimensions (0 to %d are supported)",
                          name, ndim, SNLVK_ST_MAX_DIMS);
    if ((unsigned)dtype >= SNLVK_ST_DTYPE_COUNT)
        return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim && !shape) return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: tensor '%s': no shape", name);
    uint64_t numel = 1, nb;
    for (int d = 0; d < ndim; d++)
        if (!mul_ok(numel, shape[d], &numel))
            return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: tensor '%s': the element count overflows", name);
    if (!mul_ok(numel, snlvk_st_dtype_size(dtype), &nb) || nb > SIZE_MAX)
        return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: tensor '%s': the byte size overflows", name);
    if (nb && !data) return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: tensor '%s': no data", name);
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        snlvk_st_entry *t = realloc(b->t, nc * sizeof *t);
        if (!t) return snlvk_fail(SNLVK_E_OOM, "safetensors builder: out of memory");
        b->t = t;
        void **o = realloc(b->owned, nc * sizeof *o);
        if (!o) return snlvk_fail(SNLVK_E_OOM, "safetensors builder: out of memory");
        b->owned = o;
        b->cap = nc;
    }
    char *nm = dup_str(name);
    void *own = NULL;
    if (nm && copy && nb) {
        own = malloc((size_t)nb);
        if (own) memcpy(own, data, (size_t)nb);
    }
    if (!nm || (copy && nb && !own)) {
        free(nm);
        free(own);
        return snlvk_fail(SNLVK_E_OOM, "safetensors builder: out of memory");
    }
    snlvk_st_entry *e = &b->t[b->n];
    memset(e, 0, sizeof *e);
    e->name = nm;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->data = copy ? own : data;
    b->owned[b->n] = own;
    b->n++;
    return SNLVK_OK;
}

snlvk_status snlvk_st_builder_add(snlvk_st_builder *b, const char *name, snlvk_st_dtype dtype, int ndim,
                                  const uint64_t *shape, const void *data)
{
    return builder_add(b, name, dtype, ndim, shape, data, 0);
}

snlvk_status snlvk_st_builder_add_copy(snlvk_st_builder *b, const char *name, snlvk_st_dtype dtype, int ndim,
                                       const uint64_t *shape, const void *data)
{
    return builder_add(b, name, dtype, ndim, shape, data, 1);
}

snlvk_status snlvk_st_builder_meta(snlvk_st_builder *b, const char *key, const char *value)
{
    if (!key || !value) return snlvk_fail(SNLVK_E_INVALID, "safetensors builder: metadata without a key or value");
    char *v = dup_str(value);
    if (!v) return snlvk_fail(SNLVK_E_OOM, "safetensors builder: out of memory");
    for (size_t i = 0; i < b->n_meta; i++)
        if (strcmp(b->meta[i].key, key) == 0) {
            free((void *)b->meta[i].value);
            b->meta[i].value = v;
            return SNLVK_OK;
        }
    if (b->n_meta == b->cap_meta) {
        size_t nc = b->cap_meta ? b->cap_meta * 2 : 8;
        snlvk_st_meta *m = realloc(b->meta, nc * sizeof *m);
        if (!m) {
            free(v);
            return snlvk_fail(SNLVK_E_OOM, "safetensors builder: out of memory");
        }
        b->meta = m;
        b->cap_meta = nc;
    }
    char *k = dup_str(key);
    if (!k) {
        free(v);
        return snlvk_fail(SNLVK_E_OOM, "safetensors builder: out of memory");
    }
    b->meta[b->n_meta].key = k;
    b->meta[b->n_meta].value = v;
    b->n_meta++;
    return SNLVK_OK;
}

snlvk_status snlvk_st_builder_write(const snlvk_st_builder *b, const char *path)
{
    return snlvk_st_write(path, b->t, b->n, b->meta, b->n_meta);
}

void snlvk_st_builder_free(snlvk_st_builder *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free((void *)b->t[i].name);
        free(b->owned[i]);
    }
    for (size_t i = 0; i < b->n_meta; i++) {
        free((void *)b->meta[i].key);
        free((void *)b->meta[i].value);
    }
    free(b->t);
    free(b->owned);
    free(b->meta);
    memset(b, 0, sizeof *b);
}
