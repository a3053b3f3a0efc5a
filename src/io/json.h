/* A small, strict JSON parser (RFC 8259: objects, arrays, strings with every escape
 * including \uXXXX surrogate pairs decoded to UTF-8, numbers, true/false/null) into a tree
 * with lookup helpers and typed getters whose failures name the document and the key
 * path; and a small JSON writer for JSON-lines logs and summaries.
 *
 * Strict means: no comments, no trailing commas, no NaN/Infinity, no leading zeros or
 * '+', no control characters or invalid UTF-8 in strings, no lone surrogates, no
 * duplicate keys in an object, nothing but whitespace after the value, numbers must be
 * finite as doubles. Depth, size and node count are limited. Nothing here prints or exits;
 * failures return a snlvk_status with the message in snlvk_last_error(). */
#ifndef SNLVK_IO_JSON_H
#define SNLVK_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/strbuf.h"

typedef enum snlvk_json_type {
    SNLVK_JSON_NULL = 0,
    SNLVK_JSON_BOOL,
    SNLVK_JSON_NUMBER,
    SNLVK_JSON_STRING,
    SNLVK_JSON_ARRAY,
    SNLVK_JSON_OBJECT
} snlvk_json_type;

typedef struct snlvk_json snlvk_json;

/* An object member's key. `sorted` is private (lookup index). */
typedef struct snlvk_json_key {
    char *s;       /* NUL-terminated UTF-8 (a key with "\u0000" in it has len > strlen(s)) */
    size_t len;
    size_t offset; /* byte offset of the key in the parsed text */
    size_t sorted;
} snlvk_json_key;

/* One value. Read it through the functions below or the fields directly. */
struct snlvk_json {
    snlvk_json_type type;
    int boolean;        /* BOOL: 0 or 1 */
    int is_int;         /* NUMBER: the value is integral and exactly `integer` */
    size_t offset;      /* byte offset of the value in the parsed text */
    snlvk_json *parent; /* NULL for the root */
    size_t n;           /* STRING: length in bytes; ARRAY: elements; OBJECT: members */
    union {
        struct {
            double number;   /* NUMBER */
            int64_t integer; /* NUMBER with is_int */
        } num;
        char *string; /* STRING: NUL-terminated UTF-8 */
        struct {
            snlvk_json *items;   /* ARRAY: elements; OBJECT: member values, in text order */
            snlvk_json_key *keys; /* OBJECT: member keys, in text order */
        } c;
    } u;
};

typedef struct snlvk_json_limits {
    int max_depth;    /* nesting of arrays/objects (default 128, at most 2048) */
    size_t max_size;  /* bytes of text (default 256 MiB) */
    size_t max_nodes; /* values in the tree (default 16 Mi) */
} snlvk_json_limits;

#define SNLVK_JSON_DEFAULT_DEPTH 128
#define SNLVK_JSON_DEFAULT_SIZE ((size_t)256 << 20)
#define SNLVK_JSON_DEFAULT_NODES ((size_t)16 << 20)

/* Parses `len` bytes of `text` (no NUL terminator needed). `name` (e.g. the file name)
 * starts every message, both of a syntax error ("NAME: invalid JSON at byte 17: expected
 * ':' after an object key") and of the getters below. On failure *out is NULL and, when
 * err_offset is not NULL, *err_offset is the byte offset of the error (SIZE_MAX for a
 * failure that is not a syntax error, e.g. out of memory). limits may be NULL. */
snlvk_status snlvk_json_parse_ex(const char *text, size_t len, const char *name, const snlvk_json_limits *limits,
                                 snlvk_json **out, size_t *err_offset);
snlvk_status snlvk_json_parse(const char *text, size_t len, const char *name, snlvk_json **out);
/* Reads and parses a whole file; messages start with the path. */
snlvk_status snlvk_json_parse_file(const char *path, snlvk_json **out);
/* Frees a tree returned by a parse function (NULL is fine). */
void snlvk_json_free(snlvk_json *root);

/* ---- lookup (NULL / 0 when the value has the wrong type or the index is out of range) ---- */

const char *snlvk_json_type_name(snlvk_json_type t); /* "null", "a boolean", "a number", "a string", "an array", "an object" */
size_t snlvk_json_count(const snlvk_json *v);         /* elements of an array, members of an object, else 0 */
const snlvk_json *snlvk_json_get(const snlvk_json *obj, const char *key); /* member value by key */
const snlvk_json *snlvk_json_at(const snlvk_json *v, size_t i);           /* array element / member value i */
const char *snlvk_json_key_at(const snlvk_json *obj, size_t i);           /* member key i */
/* The name of the document `v` belongs to (the `name` given to the parser). */
const char *snlvk_json_doc_name(const snlvk_json *v);
/* `v` for a "got ..." message: "true", "false", the number ("-3", "1.5"; written into buf)
 * or the type name ("a string", "an array", ...); returns buf or a constant. */
const char *snlvk_json_describe(const snlvk_json *v, char buf[48]);
/* Writes the key path of `v` into buf, e.g. "train.schedule[2].lr" ("" for the root);
 * returns buf. */
char *snlvk_json_path(const snlvk_json *v, char *buf, size_t size);

/* ---- typed getters ----
 * as_*: convert one value. get_*: look `key` up in object `obj`, then convert. Failures
 * name the document and the key path:
 *     "run.json: field 'train.lr': expected a number, got a string"
 *     "run.json: field 'train.epochs': missing"
 *     "run.json: field 'train.epochs': expected an integer in [1, 1000], got 0"
 * opt_*: like get_* but a missing member (or a null) leaves *out = def. */
snlvk_status snlvk_json_as_string(const snlvk_json *v, const char **out);
snlvk_status snlvk_json_as_number(const snlvk_json *v, double *out);
snlvk_status snlvk_json_as_int(const snlvk_json *v, int64_t *out);
snlvk_status snlvk_json_as_int_range(const snlvk_json *v, int64_t lo, int64_t hi, int64_t *out);
snlvk_status snlvk_json_as_bool(const snlvk_json *v, int *out);
snlvk_status snlvk_json_as_array(const snlvk_json *v, const snlvk_json **out);
snlvk_status snlvk_json_as_object(const snlvk_json *v, const snlvk_json **out);

snlvk_status snlvk_json_get_member(const snlvk_json *obj, const char *key, const snlvk_json **out);
snlvk_status snlvk_json_get_string(const snlvk_json *obj, const char *key, const char **out);
snlvk_status snlvk_json_get_number(const snlvk_json *obj, const char *key, double *out);
snlvk_status snlvk_json_get_int(const snlvk_json *obj, const char *key, int64_t *out);
snlvk_status snlvk_json_get_int_range(const snlvk_json *obj, const char *key, int64_t lo, int64_t hi, int64_t *out);
snlvk_status snlvk_json_get_bool(const snlvk_json *obj, const char *key, int *out);
snlvk_status snlvk_json_get_array(const snlvk_json *obj, const char *key, const snlvk_json **out);
snlvk_status snlvk_json_get_object(const snlvk_json *obj, const char *key, const snlvk_json **out);

snlvk_status snlvk_json_opt_string(const snlvk_json *obj, const char *key, const char *def, const char **out);
snlvk_status snlvk_json_opt_number(const snlvk_json *obj, const char *key, double def, double *out);
snlvk_status snlvk_json_opt_int(const snlvk_json *obj, const char *key, int64_t def, int64_t *out);
snlvk_status snlvk_json_opt_bool(const snlvk_json *obj, const char *key, int def, int *out);

/* ---- writer ----
 * Builds JSON text in memory with commas and separators handled:
 *     snlvk_jw w; snlvk_jw_init(&w, 0);
 *     snlvk_jw_begin_object(&w);
 *     snlvk_jw_key(&w, "epoch"); snlvk_jw_int(&w, 3);
 *     snlvk_jw_kv_number(&w, "loss", 0.25);
 *     snlvk_jw_end_object(&w);
 *     s = snlvk_jw_finish(&w, &text, &len);   // checks balance and memory
 *     ... snlvk_jw_free(&w);
 * Compact mode (indent 0) writes one line with ", " and ": " separators (like Python's
 * json.dumps), never a raw newline: fit for JSON lines. indent > 0 pretty-prints like
 * json.dumps(indent=N). Numbers: snlvk_jw_number uses %.9g (a float32 round-trips),
 * snlvk_jw_double %.17g (a double round-trips), ints exactly; NaN and infinities are
 * written as null. Output is independent of the C locale. Misuse (a value where a key is
 * due, unbalanced ends, nesting deeper than 64) and out-of-memory are remembered and
 * reported by snlvk_jw_finish; the calls themselves never fail. */
#define SNLVK_JW_MAX_DEPTH 64
typedef struct snlvk_jw {
    snlvk_strbuf out; /* the text so far */
    int indent;
    int depth;
    int err;       /* 0, or the first problem (private codes) */
    int after_key; /* a key was written, its value is due */
    int done;      /* a complete top-level value was written */
    unsigned char in_object[SNLVK_JW_MAX_DEPTH];
    unsigned char has_items[SNLVK_JW_MAX_DEPTH];
} snlvk_jw;

void snlvk_jw_init(snlvk_jw *w, int indent);
void snlvk_jw_free(snlvk_jw *w);
/* Empties the buffer for the next document, keeping the memory and the indent. */
void snlvk_jw_reset(snlvk_jw *w);
void snlvk_jw_begin_object(snlvk_jw *w);
void snlvk_jw_end_object(snlvk_jw *w);
void snlvk_jw_begin_array(snlvk_jw *w);
void snlvk_jw_end_array(snlvk_jw *w);
void snlvk_jw_key(snlvk_jw *w, const char *key);
void snlvk_jw_string(snlvk_jw *w, const char *s);
void snlvk_jw_string_n(snlvk_jw *w, const char *s, size_t len);
void snlvk_jw_number(snlvk_jw *w, double x);
void snlvk_jw_double(snlvk_jw *w, double x);
void snlvk_jw_int(snlvk_jw *w, int64_t x);
void snlvk_jw_uint(snlvk_jw *w, uint64_t x);
void snlvk_jw_bool(snlvk_jw *w, int b);
void snlvk_jw_null(snlvk_jw *w);
/* key + value in one call */
void snlvk_jw_kv_string(snlvk_jw *w, const char *key, const char *s);
void snlvk_jw_kv_number(snlvk_jw *w, const char *key, double x);
void snlvk_jw_kv_double(snlvk_jw *w, const char *key, double x);
void snlvk_jw_kv_int(snlvk_jw *w, const char *key, int64_t x);
void snlvk_jw_kv_uint(snlvk_jw *w, const char *key, uint64_t x);
void snlvk_jw_kv_bool(snlvk_jw *w, const char *key, int b);
void snlvk_jw_kv_null(snlvk_jw *w, const char *key);
/* Checks that exactly one complete value was written and memory never ran out; *text
 * (NUL-terminated, owned by w) and *len may be NULL. In pretty mode the text ends with a
 * newline, in compact mode it does not. */
snlvk_status snlvk_jw_finish(snlvk_jw *w, const char **text, size_t *len);

/* Appends the JSON string literal of `len` bytes of s (quotes and escapes included) to a
 * caller buffer; returns the number of bytes it needs (like snprintf, without the NUL).
 * Invalid UTF-8 bytes are written as U+FFFD. */
size_t snlvk_json_escape(char *dst, size_t size, const char *s, size_t len);
/* The same literal appended to a text buffer (see core/strbuf.h). */
void snlvk_json_put_string(snlvk_strbuf *b, const char *s, size_t len);
/* 1 if the `len` bytes of s are valid UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF), else 0. */
int snlvk_json_utf8_valid(const char *s, size_t len);
/* Length of the valid UTF-8 sequence starting at s (at most `avail` bytes), or 0. */
size_t snlvk_json_utf8_next(const char *s, size_t avail);

#endif
