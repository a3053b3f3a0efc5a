#include "io/tensorfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20)

static const char *dtype_names[] = {"F32", "F64", "I64", "I32", "U8", "BOOL", "F16"};
static const size_t dtype_sizes[] = {4, 8, 8, 4, 1, 1, 2};

size_t tf_dtype_size(tf_dtype d) { return dtype_sizes[d]; }
const char *tf_dtype_name(tf_dtype d) { return dtype_names[d]; }

/* ---- a strict JSON reader for the header ---- */
typedef struct jp {
    const char *s, *end, *path;
    int depth;
} jp;

static void ws(jp *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')) p->s++;
}

static snlvk_status jerr(jp *p, const char *base, const char *what)
{
    return snlvk_fail(SNLVK_E_INVALID, "%s: header: %s at byte %ld", p->path, what, (long)(p->s - base) + 8);
}

/* Parses a JSON string into a malloc'd UTF-8 string. */
static snlvk_status jstring(jp *p, const char *base, char **out)
{
    ws(p);
    if (p->s >= p->end || *p->s != '"') return jerr(p, base, "expected a string");
    p->s++;
    size_t cap = 32, n = 0;
    char *o = malloc(cap);
    if (!o) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    while (p->s < p->end && *p->s != '"') {
        unsigned c = (unsigned char)*p->s++;
        if (c < 0x20) {
            free(o);
            return jerr(p, base, "control character in a string");
        }
        char buf[4];
        size_t k = 1;
        buf[0] = (char)c;
        if (c == '\\') {
            if (p->s >= p->end) break;
            char e = *p->s++;
            switch (e) {
            case '"': buf[0] = '"'; break;
            case '\\': buf[0] = '\\'; break;
            case '/': buf[0] = '/'; break;
            case 'b': buf[0] = '\b'; break;
            case 'f': buf[0] = '\f'; break;
            case 'n': buf[0] = '\n'; break;
            case 'r': buf[0] = '\r'; break;
            case 't': buf[0] = '\t'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = p->s < p->end ? *p->s++ : 0;
                    v <<= 4;
                    if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
                    else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
                    else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
                    else {
                        free(o);
                        return jerr(p, base, "bad \\u escape");
                    }
                }
                if (v < 0x80) buf[0] = (char)v;
                else if (v < 0x800) buf[0] = (char)(0xc0 | (v >> 6)), buf[1] = (char)(0x80 | (v & 0x3f)), k = 2;
                else buf[0] = (char)(0xe0 | (v >> 12)), buf[1] = (char)(0x80 | ((v >> 6) & 0x3f)),
                     buf[2] = (char)(0x80 | (v & 0x3f)), k = 3;
                break;
            }
            default: free(o); return jerr(p, base, "bad escape");
            }
        }
        if (n + k + 1 > cap) {
            cap = cap * 2 + k;
            char *no = realloc(o, cap);
            if (!no) {
                free(o);
                return snlvk_fail(SNLVK_E_OOM, "out of host memory");
            }
            o = no;
        }
        memcpy(o + n, buf, k);
        n += k;
    }
    if (p->s >= p->end) {
        free(o);
        return jerr(p, base, "unterminated string");
    }
    p->s++;
    o[n] = '\0';
    *out = o;
    return SNLVK_OK;
}

static int jchar(jp *p, char c)
{
    ws(p);
    if (p->s < p->end && *p->s == c) {
        p->s++;
        return 1;
    }
    return 0;
}

/* A non-negative integer that fits in 53 bits. */
static snlvk_status juint(jp *p, const char *base, uint64_t *out)
{
    ws(p);
    if (p->s >= p->end || *p->s < '0' || *p->s > '9') return jerr(p, base, "expected a non-negative integer");
    uint64_t v = 0;
    while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
        v = v * 10 + (uint64_t)(*p->s++ - '0');
        if (v > (1ull << 53)) return jerr(p, base, "integer too large");
    }
    if (p->s < p->end && (*p->s == '.' || *p->s == 'e' || *p->s == 'E')) return jerr(p, base, "expected an integer");
    *out = v;
    return SNLVK_OK;
}

static snlvk_status juint_array(jp *p, const char *base, uint64_t *vals, int max, int *n)
{
    if (!jchar(p, '[')) return jerr(p, base, "expected '['");
    *n = 0;
    if (jchar(p, ']')) return SNLVK_OK;
    do {
        if (*n == max) return jerr(p, base, "too many entries");
        SNLVK_TRY(juint(p, base, &vals[(*n)++]));
    } while (jchar(p, ','));
    if (!jchar(p, ']')) return jerr(p, base, "expected ']'");
    return SNLVK_OK;
}

void tf_free(tf_file *f)
{
    for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->raw);
    memset(f, 0, sizeof *f);
}

static snlvk_status parse_meta(tf_file *f, jp *p, const char *base)
{
    if (!jchar(p, '{')) return snlvk_fail(SNLVK_E_INVALID, "%s: header: '__metadata__' must be an object", f->path);
    if (jchar(p, '}')) return SNLVK_OK;
    do {
        char *k = NULL, *v = NULL;
        SNLVK_TRY(jstring(p, base, &k));
        if (!jchar(p, ':')) {
            free(k);
            return jerr(p, base, "expected ':'");
        }
        ws(p);
        if (p->s < p->end && *p->s != '"') {
            snlvk_status s = snlvk_fail(SNLVK_E_INVALID, "%s: header: '__metadata__' field '%s': expected a string value",
                                        f->path, k);
            free(k);
            return s;
        }
        snlvk_status s = jstring(p, base, &v);
        if (s != SNLVK_OK) {
            free(k);
            return s;
        }
        char **nk = realloc(f->meta_keys, sizeof *nk * (size_t)(f->n_meta + 1));
        if (nk) f->meta_keys = nk;
        char **nv = realloc(f->meta_values, sizeof *nv * (size_t)(f->n_meta + 1));
        if (nv) f->meta_values = nv;
        if (!nk || !nv) {
            free(k);
            free(v);
            return snlvk_fail(SNLVK_E_OOM, "out of host memory");
        }
        f->meta_keys[f->n_meta] = k;
        f->meta_values[f->n_meta++] = v;
    } while (jchar(p, ','));
    if (!jchar(p, '}')) return jerr(p, base, "expected '}'");
    return SNLVK_OK;
}

static snlvk_status parse_tensor(tf_file *f, jp *p, const char *base, char *name, uint64_t data_size)
{
    tf_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    int have_dtype = 0, have_shape = 0, have_off = 0;
    uint64_t off[2] = {0, 0};
    snlvk_status s = SNLVK_OK;
    if (!jchar(p, '{')) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': expected an object", f->path, name);
        goto fail;
    }
    if (!jchar(p, '}')) do {
            char *key = NULL;
            s = jstring(p, base, &key);
            if (s != SNLVK_OK) goto fail;
            if (!jchar(p, ':')) {
                free(key);
                s = jerr(p, base, "expected ':'");
                goto fail;
            }
            if (strcmp(key, "dtype") == 0) {
                char *d = NULL;
                s = jstring(p, base, &d);
                if (s == SNLVK_OK) {
                    int found = -1;
                    for (int i = 0; i < 7; i++)
                        if (strcmp(d, dtype_names[i]) == 0) found = i;
                    if (found < 0)
                        s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field 'dtype': '%s' is not one of F32, F64, "
                                       "I64, I32, U8, BOOL, F16", f->path, name, d);
                    t.dtype = (tf_dtype)found;
                    have_dtype = 1;
                }
                free(d);
            } else if (strcmp(key, "shape") == 0) {
                s = juint_array(p, base, t.shape, TF_MAX_DIMS, &t.ndim);
                if (s != SNLVK_OK)
                    s = snlvk_fail_context(SNLVK_E_INVALID, "%s: tensor '%s': field 'shape'", f->path, name);
                have_shape = 1;
            } else if (strcmp(key, "data_offsets") == 0) {
                int n = 0;
                s = juint_array(p, base, off, 2, &n);
                if (s == SNLVK_OK && n != 2)
                    s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field 'data_offsets': expected [begin, end]",
                                   f->path, name);
                else if (s != SNLVK_OK)
                    s = snlvk_fail_context(SNLVK_E_INVALID, "%s: tensor '%s': field 'data_offsets'", f->path, name);
                have_off = 1;
            } else
                s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': unknown field '%s'", f->path, name, key);
            free(key);
            if (s != SNLVK_OK) goto fail;
        } while (jchar(p, ','));
    if (s == SNLVK_OK && !jchar(p, '}')) s = jerr(p, base, "expected '}'");
    if (s != SNLVK_OK) goto fail;
    if (!have_dtype || !have_shape || !have_off) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field '%s' is missing", f->path, name,
                       !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
        goto fail;
    }
    t.numel = 1;
    for (int i = 0; i < t.ndim; i++) {
        if (t.shape[i] && t.numel > UINT64_MAX / t.shape[i] / 8) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field 'shape': too large", f->path, name);
            goto fail;
        }
        t.numel *= t.shape[i];
    }
    t.bytes = t.numel * dtype_sizes[t.dtype];
    if (off[1] < off[0] || off[1] - off[0] != t.bytes) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field 'data_offsets': [%llu, %llu] holds %llu bytes, the "
                       "shape and dtype need %llu", f->path, name, (unsigned long long)off[0],
                       (unsigned long long)off[1], (unsigned long long)(off[1] - off[0]), (unsigned long long)t.bytes);
        goto fail;
    }
    if (off[1] > data_size) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field 'data_offsets': end %llu is past the data (%llu bytes)",
                       f->path, name, (unsigned long long)off[1], (unsigned long long)data_size);
        goto fail;
    }
    t.data = f->raw + 8 + (f->size - 8 - data_size) + off[0];
    tf_tensor *nt = realloc(f->tensors, sizeof *nt * (size_t)(f->n + 1));
    if (!nt) {
        s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
        goto fail;
    }
    f->tensors = nt;
    f->tensors[f->n++] = t;
    return SNLVK_OK;
fail:
    free(name);
    return s;
}

static int cmp_off(const void *a, const void *b)
{
    const tf_tensor *x = a, *y = b;
    const unsigned char *p = x->data, *q = y->data;
    return (p > q) - (p < q);
}

snlvk_status tf_read(const char *path, tf_file *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    FILE *fp = fopen(path, "rb");
    if (!fp) return snlvk_fail(SNLVK_E_IO, "%s: cannot open: %s", path, strerror(errno));
    long len = -1;
    if (fseek(fp, 0, SEEK_END) == 0) len = ftell(fp);
    if (len < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fclose(fp);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot read: %s", path, strerror(errno));
    }
    out->size = (size_t)len;
    out->raw = malloc(out->size ? out->size : 1);
    if (!out->raw) {
        fclose(fp);
        return snlvk_fail(SNLVK_E_OOM, "%s: out of host memory reading %ld bytes", path, len);
    }
    size_t got = fread(out->raw, 1, out->size, fp);
    fclose(fp);
    if (got != out->size) {
        tf_free(out);
        return snlvk_fail(SNLVK_E_IO, "%s: short read", path);
    }
    if (out->size < 8) {
        size_t n = out->size;
        tf_free(out);
        return snlvk_fail(SNLVK_E_INVALID, "%s: %zu bytes is too short for a safetensors file (an 8-byte header length "
                          "comes first)", path, n);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | out->raw[i];
    if (hl > out->size - 8 || hl > MAX_HEADER || hl < 2) {
        size_t n = out->size;
        tf_free(out);
        return snlvk_fail(SNLVK_E_INVALID, "%s: field 'header length': %llu does not fit the file (%zu bytes); not a "
                          "safetensors file, or truncated", path, (unsigned long long)hl, n);
    }
    const char *base = (const char *)out->raw + 8;
    jp p = {base, base + hl, path, 0};
    uint64_t data_size = out->size - 8 - hl;
    snlvk_status s = SNLVK_OK;
    if (!jchar(&p, '{')) s = jerr(&p, base, "expected '{'");
    if (s == SNLVK_OK && !jchar(&p, '}')) do {
            char *name = NULL;
            s = jstring(&p, base, &name);
            if (s != SNLVK_OK) break;
            if (!jchar(&p, ':')) {
                free(name);
                s = jerr(&p, base, "expected ':'");
                break;
            }
            if (strcmp(name, "__metadata__") == 0) {
                free(name);
                s = parse_meta(out, &p, base);
            } else {
                if (tf_find(out, name)) {
                    s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s' appears twice", path, name);
                    free(name);
                    break;
                }
                s = parse_tensor(out, &p, base, name, data_size);
            }
        } while (s == SNLVK_OK && jchar(&p, ','));
    if (s == SNLVK_OK && !jchar(&p, '}')) s = jerr(&p, base, "expected '}' or ','");
    if (s == SNLVK_OK) {
        ws(&p);
        if (p.s != p.end) s = jerr(&p, base, "trailing bytes after the header object");
    }
    if (s == SNLVK_OK && out->n > 1) {
        /* no two tensors may overlap */
        tf_tensor *sorted = malloc(sizeof *sorted * (size_t)out->n);
        if (!sorted) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
        else {
            memcpy(sorted, out->tensors, sizeof *sorted * (size_t)out->n);
            qsort(sorted, (size_t)out->n, sizeof *sorted, cmp_off);
            for (int i = 1; i < out->n && s == SNLVK_OK; i++)
                if ((const unsigned char *)sorted[i - 1].data + sorted[i - 1].bytes > (const unsigned char *)sorted[i].data)
                    s = snlvk_fail(SNLVK_E_INVALID, "%s: tensor '%s': field 'data_offsets': overlaps tensor '%s'", path,
                                   sorted[i].name, sorted[i - 1].name);
            free(sorted);
        }
    }
    if (s != SNLVK_OK) tf_free(out);
    return s;
}

const tf_tensor *tf_find(const tf_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *tf_meta(const tf_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

static int put_json_string(FILE *fp, const char *s)
{
    if (fputc('"', fp) == EOF) return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(fp, "\\%c", c);
        else if (c < 0x20) fprintf(fp, "\\u%04x", c);
        else fputc(c, fp);
    }
    return fputc('"', fp) != EOF;
}

snlvk_status tf_write(const char *path, const tf_tensor *tensors, int n, const char *const *meta_keys,
                      const char *const *meta_values, int n_meta)
{
    /* the header goes through a memory stream to know its length first */
    char *hdr = NULL;
    size_t hl = 0;
    FILE *h = open_memstream(&hdr, &hl);
    if (!h) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    fputc('{', h);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const tf_tensor *t = &tensors[i];
        uint64_t bytes = t->numel * dtype_sizes[t->dtype];
        if (i) fputc(',', h);
        put_json_string(h, t->name);
        fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", dtype_names[t->dtype]);
        for (int d = 0; d < t->ndim; d++) fprintf(h, "%s%llu", d ? "," : "", (unsigned long long)t->shape[d]);
        fprintf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    if (n_meta) {
        fprintf(h, "%s\"__metadata__\":{", n ? "," : "");
        for (int i = 0; i < n_meta; i++) {
            if (i) fputc(',', h);
            put_json_string(h, meta_keys[i]);
            fputc(':', h);
            put_json_string(h, meta_values[i]);
        }
        fputc('}', h);
    }
    fputc('}', h);
    fflush(h);
    while (hl % 8) {
        fputc(' ', h);
        fflush(h);
    }
    fclose(h);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        free(hdr);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    int ok = fwrite(len, 1, 8, fp) == 8 && fwrite(hdr, 1, hl, fp) == hl;
    free(hdr);
    for (int i = 0; i < n && ok; i++) {
        uint64_t bytes = tensors[i].numel * dtype_sizes[tensors[i].dtype];
        ok = bytes == 0 || fwrite(tensors[i].data, 1, bytes, fp) == bytes;
    }
    ok = fflush(fp) == 0 && ok;
    ok = fsync(fileno(fp)) == 0 && ok;
    int err = errno;
    ok = fclose(fp) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        if (ok) err = errno;
        remove(tmp);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot write: %s", path, strerror(err));
    }
    return SNLVK_OK;
}
