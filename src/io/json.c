#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "io/json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define JSON_DEPTH_CAP 2048

/* The root node sits first in a document so that the document name can be found from
 * any node by walking up to the root. */
typedef struct json_doc {
    snlvk_json root;
    char *name;
} json_doc;

/* ======================================================================== parser */

typedef struct jp {
    const unsigned char *s;
    size_t len, pos;
    int depth, max_depth;
    size_t nodes, max_nodes;
    const char *name;
    size_t err_off;
} jp;

static snlvk_status jp_fail(jp *p, size_t off, const char *fmt, ...) SNLVK_PRINTF(3, 4);
static snlvk_status jp_fail(jp *p, size_t off, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->err_off = off;
    return snlvk_fail(SNLVK_E_INVALID, "%s: invalid JSON at byte %zu: %s", p->name, off, msg);
}

static snlvk_status jp_oom(jp *p)
{
    p->err_off = SIZE_MAX;
    return snlvk_fail(SNLVK_E_OOM, "%s: out of memory while parsing JSON", p->name);
}

/* Describes the byte at `off` for a message: "end of input", "'x'" or "byte 0x01". */
static const char *jp_what(const jp *p, size_t off, char buf[24])
{
    if (off >= p->len) return "end of input";
    unsigned c = p->s[off];
    if (c >= 0x21 && c < 0x7f) snprintf(buf, 24, "'%c'", (char)c);
    else snprintf(buf, 24, "byte 0x%02x", c);
    return buf;
}

static void jp_ws(jp *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static void node_free_contents(snlvk_json *v)
{
    switch (v->type) {
    case SNLVK_JSON_STRING: free(v->u.string); break;
    case SNLVK_JSON_ARRAY:
    case SNLVK_JSON_OBJECT:
        for (size_t i = 0; i < v->n; i++) node_free_contents(&v->u.c.items[i]);
        if (v->u.c.keys)
            for (size_t i = 0; i < v->n; i++) free(v->u.c.keys[i].s);
        free(v->u.c.items);
        free(v->u.c.keys);
        break;
    default: break;
    }
    v->type = SNLVK_JSON_NULL;
    v->n = 0;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Four hex digits at p->s[off..off+3] or -1. */
static long hex4(const jp *p, size_t off)
{
    if (off > p->len || p->len - off < 4) return -1;
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p->s[off + (size_t)k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at s[0..avail), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f; /* no UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f; /* nothing past U+10FFFF */
    } else
        return 0;
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xbf) return 0;
    return n;
}

static size_t utf8_put(unsigned char *d, unsigned long cp)
{
    if (cp < 0x80) {
        d[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (unsigned char)(0xc0 | (cp >> 6));
        d[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (unsigned char)(0xe0 | (cp >> 12));
        d[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        d[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    d[0] = (unsigned char)(0xf0 | (cp >> 18));
    d[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    d[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    d[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A string starting at the opening quote p->pos; on success *out is malloc'd. */
static snlvk_status jp_string(jp *p, char **out, size_t *out_len)
{
    size_t open = p->pos, i = open + 1;
    /* Find the closing quote to size the buffer (decoding never makes text longer). */
    while (i < p->len && p->s[i] != '"') i += p->s[i] == '\\' ? 2 : 1;
    if (i >= p->len) return jp_fail(p, open, "unterminated string");
    size_t raw = i - open - 1;
    unsigned char *d = malloc(raw + 1);
    if (!d) return jp_oom(p);
    size_t n = 0;
    i = open + 1;
    for (;;) {
        unsigned c = p->s[i];
        if (c == '"') break;
        if (c < 0x20) {
            free(d);
            return jp_fail(p, i, "control character 0x%02x in a string (must be escaped)", c);
        }
        if (c == '\\') {
            unsigned e = p->s[i + 1]; /* exists: the scan above stopped at a quote after it */
            static const char esc[] = "\"\\/bfnrt", map[] = "\"\\/\b\f\n\r\t";
            const char *simple = e ? strchr(esc, (int)e) : NULL;
            if (simple) {
                d[n++] = (unsigned char)map[simple - esc];
                i += 2;
                continue;
            }
            if (e != 'u') {
                char w[24];
                free(d);
                return jp_fail(p, i, "invalid escape '\\' followed by %s", jp_what(p, i + 1, w));
            }
            long cp = hex4(p, i + 2);
            if (cp < 0) {
                free(d);
                return jp_fail(p, i, "\\u must be followed by four hex digits");
            }
            size_t esc_len = 6;
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                free(d);
                return jp_fail(p, i, "lone low surrogate \\u%04lx", (unsigned long)cp);
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                long lo = -1;
                if (i + 7 < p->len && p->s[i + 6] == '\\' && p->s[i + 7] == 'u') lo = hex4(p, i + 8);
                if (lo < 0xdc00 || lo > 0xdfff) {
                    free(d);
                    return jp_fail(p, i, "high surrogate \\u%04lx is not followed by a low surrogate", (unsigned long)cp);
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                esc_len = 12;
            }
            n += utf8_put(d + n, (unsigned long)cp);
            i += esc_len;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(p->s + i, p->len - i);
            if (k == 0) {
                free(d);
                return jp_fail(p, i, "invalid UTF-8 byte 0x%02x in a string", c);
            }
            memcpy(d + n, p->s + i, k);
            n += k;
            i += k;
            continue;
        }
        d[n++] = (unsigned char)c;
        i++;
    }
    d[n] = '\0';
    p->pos = i + 1;
    *out = (char *)d;
    *out_len = n;
    return SNLVK_OK;
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static snlvk_status jp_number(jp *p, snlvk_json *v)
{
    size_t start = p->pos, i = start;
    int neg = 0, integral = 1;
    if (i < p->len && p->s[i] == '-') {
        neg = 1;
        i++;
    }
    char w[24];
    if (i >= p->len || !is_digit(p->s[i])) return jp_fail(p, i, "expected a digit, got %s", jp_what(p, i, w));
    if (p->s[i] == '0') {
        i++;
        if (i < p->len && is_digit(p->s[i])) return jp_fail(p, start, "leading zeros are not allowed in a number");
    } else
        while (i < p->len && is_digit(p->s[i])) i++;
    size_t int_end = i;
    if (i < p->len && p->s[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !is_digit(p->s[i]))
            return jp_fail(p, i, "expected a digit after the decimal point, got %s", jp_what(p, i, w));
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i]))
            return jp_fail(p, i, "expected a digit in the exponent, got %s", jp_what(p, i, w));
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    size_t n = i - start;

    /* strtod with the C locale's decimal point whatever the current locale is. */
    const char *dp = localeconv()->decimal_point;
    size_t dpl = dp ? strlen(dp) : 0;
    if (dpl == 0) {
        dp = ".";
        dpl = 1;
    }
    char small[128], *buf = small;
    size_t need = n * dpl + 1;
    if (need > sizeof small) {
        buf = malloc(need);
        if (!buf) return jp_oom(p);
    }
    size_t k = 0;
    for (size_t j = start; j < i; j++) {
        if (p->s[j] == '.') {
            memcpy(buf + k, dp, dpl);
            k += dpl;
        } else
            buf[k++] = (char)p->s[j];
    }
    buf[k] = '\0';
    errno = 0;
    char *end = NULL;
    double d = strtod(buf, &end);
    int parsed_all = end == buf + k;
    if (buf != small) free(buf);
    if (!parsed_all) return jp_fail(p, start, "cannot convert the number");
    if (!isfinite(d)) return jp_fail(p, start, "number out of range of a double");

    v->type = SNLVK_JSON_NUMBER;
    v->offset = start;
    v->u.num.number = d;
    v->is_int = 0;
    if (integral) {
        /* Exact: accumulate the digits. */
        uint64_t acc = 0, lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        int fits = 1;
        for (size_t j = start + (size_t)neg; j < int_end; j++) {
            unsigned dg = p->s[j] - '0';
            if (acc > (lim - dg) / 10) {
                fits = 0;
                break;
            }
            acc = acc * 10 + dg;
        }
        if (fits) {
            v->is_int = 1;
            v->u.num.integer = neg ? (acc == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)acc) : (int64_t)acc;
        }
    } else if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
        v->is_int = 1; /* e.g. 1e3 or 2.0: exact in a double, so exact here */
        v->u.num.integer = (int64_t)d;
    }
    p->pos = i;
    return SNLVK_OK;
}

static snlvk_status jp_value(jp *p, snlvk_json *v);

static snlvk_status jp_count_node(jp *p)
{
    if (++p->nodes > p->max_nodes)
        return jp_fail(p, p->pos, "more than %zu values (the limit)", p->max_nodes);
    return SNLVK_OK;
}

static int key_cmp(const void *a, const void *b)
{
    const snlvk_json_key *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    if (c) return c;
    return (x->len > y->len) - (x->len < y->len);
}

/* Sorts the member keys (for lookup) and rejects duplicates. */
static snlvk_status jp_index_object(jp *p, snlvk_json *v)
{
    if (v->n == 0) return SNLVK_OK;
    snlvk_json_key *tmp = malloc(v->n * sizeof *tmp);
    if (!tmp) return jp_oom(p);
    for (size_t i = 0; i < v->n; i++) {
        tmp[i] = v->u.c.keys[i];
        tmp[i].sorted = i;
    }
    qsort(tmp, v->n, sizeof *tmp, key_cmp);
    for (size_t i = 1; i < v->n; i++)
        if (key_cmp(&tmp[i - 1], &tmp[i]) == 0) {
            size_t off = tmp[i].offset > tmp[i - 1].offset ? tmp[i].offset : tmp[i - 1].offset;
            char key[200];
            snprintf(key, sizeof key, "%s", tmp[i].s);
            free(tmp);
            return jp_fail(p, off, "duplicate key '%s' in an object", key);
        }
    for (size_t i = 0; i < v->n; i++) v->u.c.keys[i].sorted = tmp[i].sorted;
    free(tmp);
    return SNLVK_OK;
}

/* Makes room for one more element/member in a container. */
static snlvk_status jp_grow(jp *p, snlvk_json *v, size_t *cap)
{
    if (v->n < *cap) return SNLVK_OK;
    size_t nc = *cap ? *cap * 2 : 4;
    if (nc > SIZE_MAX / sizeof(snlvk_json)) return jp_oom(p);
    snlvk_json *items = realloc(v->u.c.items, nc * sizeof *items);
    if (!items) return jp_oom(p);
    v->u.c.items = items;
    if (v->type == SNLVK_JSON_OBJECT) {
        snlvk_json_key *keys = realloc(v->u.c.keys, nc * sizeof *keys);
        if (!keys) return jp_oom(p);
        v->u.c.keys = keys;
    }
    *cap = nc;
    return SNLVK_OK;
}

static snlvk_status jp_container(jp *p, snlvk_json *v, int object)
{
    char w[24];
    v->type = object ? SNLVK_JSON_OBJECT : SNLVK_JSON_ARRAY;
    v->offset = p->pos;
    v->n = 0;
    v->u.c.items = NULL;
    v->u.c.keys = NULL;
    if (p->depth >= p->max_depth) return jp_fail(p, p->pos, "nesting deeper than %d levels", p->max_depth);
    p->depth++;
    p->pos++;
    const char close = object ? '}' : ']';
    size_t cap = 0;
    jp_ws(p);
    if (p->pos < p->len && p->s[p->pos] == (unsigned char)close) {
        p->pos++;
        p->depth--;
        return SNLVK_OK;
    }
    for (;;) {
        SNLVK_TRY(jp_grow(p, v, &cap));
        snlvk_json *item = &v->u.c.items[v->n];
        memset(item, 0, sizeof *item);
        if (object) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return jp_fail(p, p->pos, "expected a string key, got %s", jp_what(p, p->pos, w));
            snlvk_json_key *key = &v->u.c.keys[v->n];
            key->s = NULL;
            key->len = 0;
            key->offset = p->pos;
            key->sorted = 0;
            v->n++; /* counted now so that a failure frees it */
            SNLVK_TRY(jp_string(p, &key->s, &key->len));
            jp_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return jp_fail(p, p->pos, "expected ':' after an object key, got %s", jp_what(p, p->pos, w));
            p->pos++;
            jp_ws(p);
        } else
            v->n++;
        SNLVK_TRY(jp_value(p, item));
        jp_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            jp_ws(p);
            if (p->pos < p->len && p->s[p->pos] == (unsigned char)close)
                return jp_fail(p, p->pos, "trailing comma before '%c'", close);
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == (unsigned char)close) {
            p->pos++;
            break;
        }
        return jp_fail(p, p->pos, "expected ',' or '%c' after %s, got %s", close,
                       object ? "an object member" : "an array element", jp_what(p, p->pos, w));
    }
    p->depth--;
    if (object) SNLVK_TRY(jp_index_object(p, v));
    return SNLVK_OK;
}

static snlvk_status jp_literal(jp *p, snlvk_json *v, const char *word, snlvk_json_type t, int b)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0) {
        char w[24];
        return jp_fail(p, p->pos, "expected a value, got %s", jp_what(p, p->pos, w));
    }
    v->type = t;
    v->boolean = b;
    v->offset = p->pos;
    p->pos += n;
    return SNLVK_OK;
}

static snlvk_status jp_value(jp *p, snlvk_json *v)
{
    char w[24];
    SNLVK_TRY(jp_count_node(p));
    if (p->pos >= p->len) return jp_fail(p, p->pos, "expected a value, got end of input");
    unsigned c = p->s[p->pos];
    switch (c) {
    case '{': return jp_container(p, v, 1);
    case '[': return jp_container(p, v, 0);
    case '"': {
        v->offset = p->pos;
        char *s = NULL;
        size_t n = 0;
        SNLVK_TRY(jp_string(p, &s, &n));
        v->type = SNLVK_JSON_STRING;
        v->u.string = s;
        v->n = n;
        return SNLVK_OK;
    }
    case 't': return jp_literal(p, v, "true", SNLVK_JSON_BOOL, 1);
    case 'f': return jp_literal(p, v, "false", SNLVK_JSON_BOOL, 0);
    case 'n': return jp_literal(p, v, "null", SNLVK_JSON_NULL, 0);
    default:
        if (c == '-' || is_digit(c)) return jp_number(p, v);
        return jp_fail(p, p->pos, "expected a value, got %s", jp_what(p, p->pos, w));
    }
}

static void set_parents(snlvk_json *v)
{
    if (v->type != SNLVK_JSON_ARRAY && v->type != SNLVK_JSON_OBJECT) return;
    for (size_t i = 0; i < v->n; i++) {
        v->u.c.items[i].parent = v;
        set_parents(&v->u.c.items[i]);
    }
}

snlvk_status snlvk_json_parse_ex(const char *text, size_t len, const char *name, const snlvk_json_limits *limits,
                                 snlvk_json **out, size_t *err_offset)
{
    *out = NULL;
    if (err_offset) *err_offset = SIZE_MAX;
    if (!name) name = "JSON";
    jp p;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)text;
    p.len = len;
    p.name = name;
    p.max_depth = SNLVK_JSON_DEFAULT_DEPTH;
    p.max_nodes = SNLVK_JSON_DEFAULT_NODES;
    size_t max_size = SNLVK_JSON_DEFAULT_SIZE;
    if (limits) {
        if (limits->max_depth > 0) p.max_depth = limits->max_depth < JSON_DEPTH_CAP ? limits->max_depth : JSON_DEPTH_CAP;
        if (limits->max_size > 0) max_size = limits->max_size;
        if (limits->max_nodes > 0) p.max_nodes = limits->max_nodes;
    }
    if (!text && len) return snlvk_fail(SNLVK_E_INVALID, "%s: no text to parse", name);
    if (len > max_size) return snlvk_fail(SNLVK_E_INVALID, "%s: JSON text of %zu bytes is larger than the limit (%zu bytes)",
                                          name, len, max_size);
    json_doc *doc = calloc(1, sizeof *doc);
    if (!doc) return snlvk_fail(SNLVK_E_OOM, "%s: out of memory while parsing JSON", name);
    size_t nl = strlen(name);
    doc->name = malloc(nl + 1);
    if (!doc->name) {
        free(doc);
        return snlvk_fail(SNLVK_E_OOM, "%s: out of memory while parsing JSON", name);
    }
    memcpy(doc->name, name, nl + 1);

    jp_ws(&p);
    snlvk_status s = jp_value(&p, &doc->root);
    if (s == SNLVK_OK) {
        jp_ws(&p);
        if (p.pos < p.len) {
            char w[24];
            s = jp_fail(&p, p.pos, "unexpected %s after the JSON value", jp_what(&p, p.pos, w));
        }
    }
    if (s != SNLVK_OK) {
        if (err_offset) *err_offset = p.err_off;
        node_free_contents(&doc->root);
        free(doc->name);
        free(doc);
        return s;
    }
    set_parents(&doc->root);
    *out = &doc->root;
    return SNLVK_OK;
}

snlvk_status snlvk_json_parse(const char *text, size_t len, const char *name, snlvk_json **out)
{
    return snlvk_json_parse_ex(text, len, name, NULL, out, NULL);
}

snlvk_status snlvk_json_parse_file(const char *path, snlvk_json **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return snlvk_fail(SNLVK_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return snlvk_fail(SNLVK_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        fclose(f);
        return snlvk_fail(SNLVK_E_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > SNLVK_JSON_DEFAULT_SIZE) {
        fclose(f);
        return snlvk_fail(SNLVK_E_INVALID, "%s: JSON file of %lld bytes is larger than the limit (%zu bytes)", path,
                          (long long)sb.st_size, SNLVK_JSON_DEFAULT_SIZE);
    }
    size_t n = (size_t)sb.st_size;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return snlvk_fail(SNLVK_E_OOM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int rerr = ferror(f);
    int e = errno;
    fclose(f);
    if (rerr) {
        free(buf);
        return snlvk_fail(SNLVK_E_IO, "%s: read error: %s", path, strerror(e));
    }
    snlvk_status s = snlvk_json_parse(buf, got, path, out);
    free(buf);
    return s;
}

void snlvk_json_free(snlvk_json *root)
{
    if (!root) return;
    json_doc *doc = (json_doc *)root;
    node_free_contents(&doc->root);
    free(doc->name);
    free(doc);
}

/* ======================================================================== lookup */

const char *snlvk_json_type_name(snlvk_json_type t)
{
    switch (t) {
    case SNLVK_JSON_NULL: return "null";
    case SNLVK_JSON_BOOL: return "a boolean";
    case SNLVK_JSON_NUMBER: return "a number";
    case SNLVK_JSON_STRING: return "a string";
    case SNLVK_JSON_ARRAY: return "an array";
    case SNLVK_JSON_OBJECT: return "an object";
    }
    return "an unknown value";
}

size_t snlvk_json_count(const snlvk_json *v)
{
    if (!v || (v->type != SNLVK_JSON_ARRAY && v->type != SNLVK_JSON_OBJECT)) return 0;
    return v->n;
}

const snlvk_json *snlvk_json_get(const snlvk_json *obj, const char *key)
{
    if (!obj || obj->type != SNLVK_JSON_OBJECT || !key) return NULL;
    snlvk_json_key k = {(char *)key, strlen(key), 0, 0};
    size_t lo = 0, hi = obj->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t idx = obj->u.c.keys[mid].sorted;
        int c = key_cmp(&k, &obj->u.c.keys[idx]);
        if (c == 0) return &obj->u.c.items[idx];
        if (c < 0) hi = mid;
        else lo = mid + 1;
    }
    return NULL;
}

const snlvk_json *snlvk_json_at(const snlvk_json *v, size_t i)
{
    if (!v || (v->type != SNLVK_JSON_ARRAY && v->type != SNLVK_JSON_OBJECT) || i >= v->n) return NULL;
    return &v->u.c.items[i];
}

const char *snlvk_json_key_at(const snlvk_json *obj, size_t i)
{
    if (!obj || obj->type != SNLVK_JSON_OBJECT || i >= obj->n) return NULL;
    return obj->u.c.keys[i].s;
}

const char *snlvk_json_doc_name(const snlvk_json *v)
{
    if (!v) return "JSON";
    while (v->parent) v = v->parent;
    return ((const json_doc *)(const void *)v)->name;
}

typedef struct pbuf {
    char *s;
    size_t size, n;
} pbuf;

static void pb_put(pbuf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b->n + 1 < b->size) b->s[b->n] = s[i];
        b->n++;
    }
    if (b->size) b->s[b->n < b->size ? b->n : b->size - 1] = '\0';
}

static void path_rec(const snlvk_json *v, pbuf *b)
{
    const snlvk_json *par = v->parent;
    if (!par) return;
    path_rec(par, b);
    size_t i = (size_t)(v - par->u.c.items);
    if (par->type == SNLVK_JSON_OBJECT) {
        if (b->n) pb_put(b, ".", 1);
        pb_put(b, par->u.c.keys[i].s, strlen(par->u.c.keys[i].s));
    } else {
        char t[32];
        int k = snprintf(t, sizeof t, "[%zu]", i);
        pb_put(b, t, (size_t)k);
    }
}

char *snlvk_json_path(const snlvk_json *v, char *buf, size_t size)
{
    pbuf b = {buf, size, 0};
    if (size) buf[0] = '\0';
    if (v) path_rec(v, &b);
    return buf;
}

const char *snlvk_json_describe(const snlvk_json *v, char buf[48])
{
    switch (v->type) {
    case SNLVK_JSON_BOOL: return v->boolean ? "true" : "false";
    case SNLVK_JSON_NUMBER:
        if (v->is_int) snprintf(buf, 48, "%lld", (long long)v->u.num.integer);
        else snprintf(buf, 48, "%.17g", v->u.num.number);
        return buf;
    default: return snlvk_json_type_name(v->type);
    }
}

static snlvk_status field_fail(const snlvk_json *v, const char *fmt, ...) SNLVK_PRINTF(2, 3);
static snlvk_status field_fail(const snlvk_json *v, const char *fmt, ...)
{
    char path[512], msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snlvk_json_path(v, path, sizeof path);
    if (path[0]) return snlvk_fail(SNLVK_E_INVALID, "%s: field '%s': %s", snlvk_json_doc_name(v), path, msg);
    return snlvk_fail(SNLVK_E_INVALID, "%s: %s", snlvk_json_doc_name(v), msg);
}

static snlvk_status expect_fail(const snlvk_json *v, const char *expected)
{
    char b[48];
    return field_fail(v, "expected %s, got %s", expected, snlvk_json_describe(v, b));
}

snlvk_status snlvk_json_as_string(const snlvk_json *v, const char **out)
{
    if (!v) return snlvk_fail(SNLVK_E_INVALID, "JSON: no value");
    if (v->type != SNLVK_JSON_STRING) return expect_fail(v, "a string");
    *out = v->u.string;
    return SNLVK_OK;
}

snlvk_status snlvk_json_as_number(const snlvk_json *v, double *out)
{
    if (!v) return snlvk_fail(SNLVK_E_INVALID, "JSON: no value");
    if (v->type != SNLVK_JSON_NUMBER) return expect_fail(v, "a number");
    *out = v->u.num.number;
    return SNLVK_OK;
}

snlvk_status snlvk_json_as_int(const snlvk_json *v, int64_t *out)
{
    if (!v) return snlvk_fail(SNLVK_E_INVALID, "JSON: no value");
    if (v->type != SNLVK_JSON_NUMBER || !v->is_int) return expect_fail(v, "an integer");
    *out = v->u.num.integer;
    return SNLVK_OK;
}

snlvk_status snlvk_json_as_int_range(const snlvk_json *v, int64_t lo, int64_t hi, int64_t *out)
{
    char e[96];
    snprintf(e, sizeof e, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    if (!v) return snlvk_fail(SNLVK_E_INVALID, "JSON: no value");
    if (v->type != SNLVK_JSON_NUMBER || !v->is_int || v->u.num.integer < lo || v->u.num.integer > hi)
        return expect_fail(v, e);
    *out = v->u.num.integer;
    return SNLVK_OK;
}

snlvk_status snlvk_json_as_bool(const snlvk_json *v, int *out)
{
    if (!v) return snlvk_fail(SNLVK_E_INVALID, "JSON: no value");
    if (v->type != SNLVK_JSON_BOOL) return expect_fail(v, "true or false");
    *out = v->boolean;
    return SNLVK_OK;
}

snlvk_status snlvk_json_as_array(const snlvk_json *v, const snlvk_json **out)
{
    if (!v) return snlvk_fail(SNLVK_E_INVALID, "JSON: no value");
    if (v->type != SNLVK_JSON_ARRAY) return expect_fail(v, "an array");
    *out = v;
    return SNLVK_OK;
}

snlvk_status snlvk_json_as_object(const snlvk_json *v, const snlvk_json **out)
{
    if (!v) return snlvk_fail(SNLVK_E_INVALID, "JSON: no value");
    if (v->type != SNLVK_JSON_OBJECT) return expect_fail(v, "an object");
    *out = v;
    return SNLVK_OK;
}

/* Looks key up; *out = NULL when missing (not an error here). */
static snlvk_status member(const snlvk_json *obj, const char *key, const snlvk_json **out)
{
    *out = NULL;
    if (!obj) return snlvk_fail(SNLVK_E_INVALID, "JSON: no object to look '%s' up in", key);
    if (obj->type != SNLVK_JSON_OBJECT) return expect_fail(obj, "an object");
    *out = snlvk_json_get(obj, key);
    return SNLVK_OK;
}

static snlvk_status missing(const snlvk_json *obj, const char *key)
{
    char path[512];
    snlvk_json_path(obj, path, sizeof path);
    return snlvk_fail(SNLVK_E_INVALID, "%s: field '%s%s%s': missing", snlvk_json_doc_name(obj), path,
                      path[0] ? "." : "", key);
}

snlvk_status snlvk_json_get_member(const snlvk_json *obj, const char *key, const snlvk_json **out)
{
    SNLVK_TRY(member(obj, key, out));
    if (!*out) return missing(obj, key);
    return SNLVK_OK;
}

#define GETTER(NAME, T, AS)                                                            \
    snlvk_status snlvk_json_get_##NAME(const snlvk_json *obj, const char *key, T *out) \
    {                                                                                  \
        const snlvk_json *v;                                                           \
        SNLVK_TRY(snlvk_json_get_member(obj, key, &v));                                \
        return AS(v, out);                                                             \
    }
GETTER(string, const char *, snlvk_json_as_string)
GETTER(number, double, snlvk_json_as_number)
GETTER(int, int64_t, snlvk_json_as_int)
GETTER(bool, int, snlvk_json_as_bool)
GETTER(array, const snlvk_json *, snlvk_json_as_array)
GETTER(object, const snlvk_json *, snlvk_json_as_object)
#undef GETTER

snlvk_status snlvk_json_get_int_range(const snlvk_json *obj, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const snlvk_json *v;
    SNLVK_TRY(snlvk_json_get_member(obj, key, &v));
    return snlvk_json_as_int_range(v, lo, hi, out);
}

#define OPT_GETTER(NAME, T, AS)                                                                \
    snlvk_status snlvk_json_opt_##NAME(const snlvk_json *obj, const char *key, T def, T *out) \
    {                                                                                          \
        const snlvk_json *v;                                                                   \
        SNLVK_TRY(member(obj, key, &v));                                                       \
        if (!v || v->type == SNLVK_JSON_NULL) {                                                \
            *out = def;                                                                        \
            return SNLVK_OK;                                                                   \
        }                                                                                      \
        return AS(v, out);                                                                     \
    }
OPT_GETTER(string, const char *, snlvk_json_as_string)
OPT_GETTER(number, double, snlvk_json_as_number)
OPT_GETTER(int, int64_t, snlvk_json_as_int)
OPT_GETTER(bool, int, snlvk_json_as_bool)
#undef OPT_GETTER

/* ======================================================================== writer */

enum { JW_OK = 0, JW_OOM, JW_VALUE_WITHOUT_KEY, JW_KEY_OUTSIDE_OBJECT, JW_UNBALANCED, JW_TOO_DEEP, JW_SECOND_VALUE };

typedef struct esink {
    char *d;
    size_t size, n;
} esink;

static void es_put(esink *e, const char *s, size_t n)
{
    if (e->d && e->n < e->size) {
        size_t room = e->size - e->n;
        memcpy(e->d + e->n, s, n < room ? n : room);
    }
    e->n += n;
}

size_t snlvk_json_escape(char *dst, size_t size, const char *s, size_t len)
{
    esink e = {dst, size, 0};
    const unsigned char *u = (const unsigned char *)s;
    es_put(&e, "\"", 1);
    size_t run = 0; /* bytes copied verbatim, flushed in one go */
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        const char *rep = NULL;
        char hex[8];
        size_t k = 1;
        switch (c) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\b': rep = "\\b"; break;
        case '\f': rep = "\\f"; break;
        case '\n': rep = "\\n"; break;
        case '\r': rep = "\\r"; break;
        case '\t': rep = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(hex, sizeof hex, "\\u%04x", c);
                rep = hex;
            } else if (c >= 0x80) {
                k = utf8_seq(u + i, len - i);
                if (k == 0) {
                    rep = "\xef\xbf\xbd"; /* U+FFFD for an invalid byte */
                    k = 1;
                }
            }
        }
        if (rep) {
            es_put(&e, s + i - run, run);
            run = 0;
            es_put(&e, rep, strlen(rep));
        } else
            run += k;
        i += k;
    }
    es_put(&e, s + len - run, run);
    es_put(&e, "\"", 1);
    if (dst && size) dst[e.n < size ? e.n : size - 1] = '\0';
    return e.n;
}

void snlvk_json_put_string(snlvk_strbuf *b, const char *s, size_t len)
{
    size_t need = snlvk_json_escape(NULL, 0, s, len);
    if (!snlvk_sb_reserve(b, need)) return;
    snlvk_json_escape(b->s + b->n, need + 1, s, len);
    b->n += need;
}

size_t snlvk_json_utf8_next(const char *s, size_t avail)
{
    return avail ? utf8_seq((const unsigned char *)s, avail) : 0;
}

int snlvk_json_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_seq(u + i, len - i);
        if (k == 0) return 0;
        i += k;
    }
    return 1;
}

void snlvk_jw_init(snlvk_jw *w, int indent)
{
    memset(w, 0, sizeof *w);
    w->indent = indent > 0 ? (indent > 16 ? 16 : indent) : 0;
}

void snlvk_jw_free(snlvk_jw *w)
{
    snlvk_sb_free(&w->out);
    memset(w, 0, sizeof *w);
}

void snlvk_jw_reset(snlvk_jw *w)
{
    snlvk_strbuf out = w->out;
    int indent = w->indent;
    memset(w, 0, sizeof *w);
    w->out = out;
    w->indent = indent;
    snlvk_sb_clear(&w->out);
}

/* Running out of memory is the writer's first problem like any misuse. */
static void jw_check_oom(snlvk_jw *w)
{
    if (w->out.oom && !w->err) w->err = JW_OOM;
}

static void jw_put(snlvk_jw *w, const char *s, size_t n)
{
    if (w->err) return;
    snlvk_sb_put(&w->out, s, n);
    jw_check_oom(w);
}

static void jw_newline(snlvk_jw *w)
{
    if (!w->indent || w->err) return;
    size_t n = 1 + (size_t)w->indent * (size_t)w->depth;
    if (!snlvk_sb_reserve(&w->out, n)) {
        jw_check_oom(w);
        return;
    }
    snlvk_strbuf *b = &w->out;
    b->s[b->n] = '\n';
    memset(b->s + b->n + 1, ' ', n - 1);
    b->n += n;
    b->s[b->n] = '\0';
}

/* Separators before a value; 0 when the value must not be written. */
static int jw_before_value(snlvk_jw *w)
{
    if (w->err) return 0;
    if (w->depth == 0) {
        if (w->done) {
            w->err = JW_SECOND_VALUE;
            return 0;
        }
        return 1;
    }
    int d = w->depth - 1;
    if (w->in_object[d]) {
        if (!w->after_key) {
            w->err = JW_VALUE_WITHOUT_KEY;
            return 0;
        }
        w->after_key = 0;
        return 1;
    }
    if (w->has_items[d]) jw_put(w, w->indent ? "," : ", ", w->indent ? 1 : 2);
    jw_newline(w);
    w->has_items[d] = 1;
    return !w->err;
}

static void jw_after_value(snlvk_jw *w)
{
    if (w->depth == 0 && !w->err) {
        w->done = 1;
        if (w->indent) jw_put(w, "\n", 1);
    }
}

static void jw_begin(snlvk_jw *w, int object)
{
    if (!jw_before_value(w)) return;
    if (w->depth >= SNLVK_JW_MAX_DEPTH) {
        w->err = JW_TOO_DEEP;
        return;
    }
    jw_put(w, object ? "{" : "[", 1);
    w->in_object[w->depth] = (unsigned char)object;
    w->has_items[w->depth] = 0;
    w->depth++;
}

static void jw_end(snlvk_jw *w, int object)
{
    if (w->err) return;
    if (w->depth == 0 || w->in_object[w->depth - 1] != object || w->after_key) {
        w->err = JW_UNBALANCED;
        return;
    }
    w->depth--;
    if (w->has_items[w->depth]) jw_newline(w);
    jw_put(w, object ? "}" : "]", 1);
    jw_after_value(w);
}

void snlvk_jw_begin_object(snlvk_jw *w) { jw_begin(w, 1); }
void snlvk_jw_end_object(snlvk_jw *w) { jw_end(w, 1); }
void snlvk_jw_begin_array(snlvk_jw *w) { jw_begin(w, 0); }
void snlvk_jw_end_array(snlvk_jw *w) { jw_end(w, 0); }

static void jw_escaped(snlvk_jw *w, const char *s, size_t len)
{
    if (w->err) return;
    snlvk_json_put_string(&w->out, s, len);
    jw_check_oom(w);
}

void snlvk_jw_key(snlvk_jw *w, const char *key)
{
    if (w->err) return;
    if (w->depth == 0 || !w->in_object[w->depth - 1] || w->after_key) {
        w->err = JW_KEY_OUTSIDE_OBJECT;
        return;
    }
    int d = w->depth - 1;
    if (w->has_items[d]) jw_put(w, w->indent ? "," : ", ", w->indent ? 1 : 2);
    jw_newline(w);
    w->has_items[d] = 1;
    if (!key) key = "";
    jw_escaped(w, key, strlen(key));
    jw_put(w, ": ", 2);
    w->after_key = 1;
}

void snlvk_jw_string_n(snlvk_jw *w, const char *s, size_t len)
{
    if (!jw_before_value(w)) return;
    if (!s) {
        s = "";
        len = 0;
    }
    jw_escaped(w, s, len);
    jw_after_value(w);
}

void snlvk_jw_string(snlvk_jw *w, const char *s)
{
    if (!s) {
        snlvk_jw_null(w);
        return;
    }
    snlvk_jw_string_n(w, s, strlen(s));
}

static void jw_raw_value(snlvk_jw *w, const char *s)
{
    if (!jw_before_value(w)) return;
    jw_put(w, s, strlen(s));
    jw_after_value(w);
}

static void jw_float(snlvk_jw *w, double x, const char *fmt)
{
    if (!isfinite(x)) {
        jw_raw_value(w, "null");
        return;
    }
    char b[64];
    snlvk_snprintf_c(b, sizeof b, fmt, x);
    jw_raw_value(w, b);
}

void snlvk_jw_number(snlvk_jw *w, double x) { jw_float(w, x, "%.9g"); }
void snlvk_jw_double(snlvk_jw *w, double x) { jw_float(w, x, "%.17g"); }

void snlvk_jw_int(snlvk_jw *w, int64_t x)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)x);
    jw_raw_value(w, b);
}

void snlvk_jw_uint(snlvk_jw *w, uint64_t x)
{
    char b[32];
    snprintf(b, sizeof b, "%llu", (unsigned long long)x);
    jw_raw_value(w, b);
}

void snlvk_jw_bool(snlvk_jw *w, int b) { jw_raw_value(w, b ? "true" : "false"); }
void snlvk_jw_null(snlvk_jw *w) { jw_raw_value(w, "null"); }

void snlvk_jw_kv_string(snlvk_jw *w, const char *key, const char *s)
{
    snlvk_jw_key(w, key);
    snlvk_jw_string(w, s);
}
void snlvk_jw_kv_number(snlvk_jw *w, const char *key, double x)
{
    snlvk_jw_key(w, key);
    snlvk_jw_number(w, x);
}
void snlvk_jw_kv_double(snlvk_jw *w, const char *key, double x)
{
    snlvk_jw_key(w, key);
    snlvk_jw_double(w, x);
}
void snlvk_jw_kv_int(snlvk_jw *w, const char *key, int64_t x)
{
    snlvk_jw_key(w, key);
    snlvk_jw_int(w, x);
}
void snlvk_jw_kv_uint(snlvk_jw *w, const char *key, uint64_t x)
{
    snlvk_jw_key(w, key);
    snlvk_jw_uint(w, x);
}
void snlvk_jw_kv_bool(snlvk_jw *w, const char *key, int b)
{
    snlvk_jw_key(w, key);
    snlvk_jw_bool(w, b);
}
void snlvk_jw_kv_null(snlvk_jw *w, const char *key)
{
    snlvk_jw_key(w, key);
    snlvk_jw_null(w);
}

snlvk_status snlvk_jw_finish(snlvk_jw *w, const char **text, size_t *len)
{
    if (text) *text = NULL;
    if (len) *len = 0;
    switch (w->err) {
    case JW_OK: break;
    case JW_OOM: return snlvk_fail(SNLVK_E_OOM, "JSON writer: out of memory");
    case JW_VALUE_WITHOUT_KEY: return snlvk_fail(SNLVK_E_INVALID, "JSON writer: a value in an object without a key");
    case JW_KEY_OUTSIDE_OBJECT:
        return snlvk_fail(SNLVK_E_INVALID, "JSON writer: a key outside an object or right after another key");
    case JW_UNBALANCED: return snlvk_fail(SNLVK_E_INVALID, "JSON writer: an end without a matching begin");
    case JW_TOO_DEEP: return snlvk_fail(SNLVK_E_INVALID, "JSON writer: nesting deeper than %d", SNLVK_JW_MAX_DEPTH);
    case JW_SECOND_VALUE: return snlvk_fail(SNLVK_E_INVALID, "JSON writer: a second value after the complete one");
    default: return snlvk_fail(SNLVK_E_INVALID, "JSON writer: misuse");
    }
    if (!w->done || w->depth != 0)
        return snlvk_fail(SNLVK_E_INVALID, "JSON writer: incomplete value (%d unclosed)", w->depth);
    if (text) *text = w->out.s;
    if (len) *len = w->out.n;
    return SNLVK_OK;
}
