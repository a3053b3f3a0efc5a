/* The plain C I/O helpers (no Vulkan): the strict JSON parser and writer, JSON-lines logs,
 * atomic file output, safetensors reading/writing (every dtype, every kind of corrupt
 * header, atomicity when a write fails) with a PyTorch cross-check when Debian's
 * /usr/bin/python3 has torch, and the SVG plot. Prints one line per check and ends with
 * "N passed, M failed". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "core/error.h"
#include "core/strbuf.h"
#include "io/atomic_file.h"
#include "io/json.h"
#include "io/jsonl.h"
#include "io/safetensors.h"
#include "io/svg.h"

/* ------------------------------------------------------------------ harness */

/* Failed with `want` and the message contains every needle (up to three, NULL ends). */
static int check_fail(snlvk_status s, snlvk_status want, const char *what, const char *n1, const char *n2,
                      const char *n3)
{
    const char *msg = snlvk_last_error();
    int ok = s == want;
    if (n1 && !strstr(msg, n1)) ok = 0;
    if (n2 && !strstr(msg, n2)) ok = 0;
    if (n3 && !strstr(msg, n3)) ok = 0;
    return check(ok, "%s -> %s (want %s): \"%s\"", what, snlvk_status_name(s), snlvk_status_name(want), msg);
}

/* ------------------------------------------------------------------ files */

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Temporary files ("*.tmp.*") left in a directory. */
static int temp_files_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------ text buffer */

static void test_strbuf(void)
{
    snlvk_strbuf b = {0};
    snlvk_sb_put(&b, "", 0);
    check(b.s && b.n == 0 && b.s[0] == '\0' && !b.oom, "strbuf: an empty append leaves an empty string");
    /* many appends of every size across the growth steps, against one snprintf */
    static char want[1 << 20]; /* about 360 kB are written */
    size_t wn = 0;
    for (int i = 0; i < 3000; i++) {
        if (i % 3 == 0) {
            snlvk_sb_printf(&b, "%d:%.*s,", i, i % 700, "");
            wn += (size_t)snprintf(want + wn, sizeof want - wn, "%d:%.*s,", i, i % 700, "");
        } else if (i % 3 == 1) {
            char pad[700];
            memset(pad, 'a' + i % 26, sizeof pad);
            snlvk_sb_printf(&b, "[%.*s]", i % 700, pad);
            wn += (size_t)snprintf(want + wn, sizeof want - wn, "[%.*s]", i % 700, pad);
        } else {
            snlvk_sb_puts(&b, "xyz");
            wn += (size_t)snprintf(want + wn, sizeof want - wn, "xyz");
        }
    }
    check(!b.oom && b.n == wn && b.n < b.cap && memcmp(b.s, want, wn) == 0 && b.s[b.n] == '\0',
          "strbuf: %zu bytes of appends and printfs match snprintf, NUL-terminated", wn);
    size_t cap = b.cap;
    char *mem = b.s;
    snlvk_sb_clear(&b);
    check(b.n == 0 && b.s == mem && b.cap == cap && b.s[0] == '\0', "strbuf: clear keeps the memory");
    b.oom = 1;
    snlvk_sb_put(&b, "abc", 3);
    snlvk_sb_printf(&b, "%d", 42);
    check(b.n == 0 && !snlvk_sb_reserve(&b, 1), "strbuf: after running out of memory appends do nothing");
    snlvk_sb_clear(&b);
    check(!b.oom && snlvk_sb_reserve(&b, 1), "strbuf: clear forgets running out of memory");
    snlvk_sb_free(&b);
    check(!b.s && b.n == 0 && b.cap == 0, "strbuf: free zeroes the buffer");
    char num[32];
    snlvk_snprintf_c(num, sizeof num, "%.2f|%g", 2.5, 0.125);
    check(strcmp(num, "2.50|0.125") == 0, "strbuf: snlvk_snprintf_c writes '%s'", num);
}

/* ------------------------------------------------------------------ JSON parser */

static snlvk_json *parse_str(const char *s)
{
    snlvk_json *v = NULL;
    snlvk_status st = snlvk_json_parse(s, strlen(s), "t.json", &v);
    if (st != SNLVK_OK) check(0, "parse %s: %s", s, snlvk_last_error());
    return v;
}

static void test_json_values(void)
{
    const char *text = "{\"a\": {\"b\": [1, -2, 3.5, true, false, null, \"x\"]}, \"s\": \"q\\\"\\\\\\/\\b\\f\\n\\r\\t"
                       "\\u00e9\\ud83d\\ude00\\u20ac\xc3\xa9\", \"z\": \"a\\u0000b\", \"big\": 9007199254740993, "
                       "\"min\": -9223372036854775808, \"max\": 9223372036854775807, \"over\": 9223372036854775808, "
                       "\"e3\": 1e3, \"frac\": 2.5e-3, \"negz\": -0, \"two\": 2.0, \"empty_o\": {}, \"empty_a\": [ ] }";
    snlvk_json *root = parse_str(text);
    if (!root) return;
    check(root->type == SNLVK_JSON_OBJECT && snlvk_json_count(root) == 13, "json: top-level object with 13 members");
    const snlvk_json *b = snlvk_json_get(snlvk_json_get(root, "a"), "b");
    check(b && b->type == SNLVK_JSON_ARRAY && snlvk_json_count(b) == 7, "json: nested array of 7");
    int64_t i;
    double d;
    int bo;
    const char *s;
    check(snlvk_json_as_int(snlvk_json_at(b, 0), &i) == SNLVK_OK && i == 1, "json: [0] == 1");
    check(snlvk_json_as_int(snlvk_json_at(b, 1), &i) == SNLVK_OK && i == -2, "json: [1] == -2");
    check(snlvk_json_as_number(snlvk_json_at(b, 2), &d) == SNLVK_OK && d == 3.5, "json: [2] == 3.5");
    check(snlvk_json_as_bool(snlvk_json_at(b, 3), &bo) == SNLVK_OK && bo == 1, "json: [3] true");
    check(snlvk_json_as_bool(snlvk_json_at(b, 4), &bo) == SNLVK_OK && bo == 0, "json: [4] false");
    check(snlvk_json_at(b, 5)->type == SNLVK_JSON_NULL && snlvk_json_at(b, 7) == NULL, "json: [5] null, [7] absent");
    check(snlvk_json_get_string(root, "s", &s) == SNLVK_OK &&
              strcmp(s, "q\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9") == 0,
          "json: every escape, \\u00e9, a surrogate pair and raw UTF-8 decode to UTF-8");
    const snlvk_json *z = snlvk_json_get(root, "z");
    check(z && z->n == 3 && memcmp(z->u.string, "a\0b", 3) == 0, "json: \\u0000 kept with the string's length");
    check(snlvk_json_get_int(root, "big", &i) == SNLVK_OK && i == 9007199254740993LL, "json: 2^53+1 exact as int64");
    check(snlvk_json_get_int(root, "min", &i) == SNLVK_OK && i == INT64_MIN, "json: INT64_MIN exact");
    check(snlvk_json_get_int(root, "max", &i) == SNLVK_OK && i == INT64_MAX, "json: INT64_MAX exact");
    const snlvk_json *over = snlvk_json_get(root, "over");
    check(over && !over->is_int && over->u.num.number == 9223372036854775808.0, "json: 2^63 is a double, not an int");
    check(snlvk_json_get_int(root, "e3", &i) == SNLVK_OK && i == 1000, "json: 1e3 is the integer 1000");
    check(snlvk_json_get_number(root, "frac", &d) == SNLVK_OK && d == 2.5e-3 && !snlvk_json_get(root, "frac")->is_int,
          "json: 2.5e-3");
    check(snlvk_json_get_int(root, "two", &i) == SNLVK_OK && i == 2, "json: 2.0 is integral");
    check(snlvk_json_get_number(root, "negz", &d) == SNLVK_OK && d == 0, "json: -0");
    check(snlvk_json_count(snlvk_json_get(root, "empty_o")) == 0 && snlvk_json_count(snlvk_json_get(root, "empty_a")) == 0,
          "json: empty object and array");
    check(strcmp(snlvk_json_key_at(root, 1), "s") == 0 && snlvk_json_key_at(root, 13) == NULL, "json: keys in text order");
    check(snlvk_json_get(root, "nope") == NULL && snlvk_json_get(b, "a") == NULL, "json: missing key, get on array");
    char path[128];
    check(strcmp(snlvk_json_path(snlvk_json_at(b, 6), path, sizeof path), "a.b[6]") == 0, "json: path a.b[6] (%s)", path);
    check(strcmp(snlvk_json_doc_name(snlvk_json_at(b, 6)), "t.json") == 0, "json: document name from a leaf");

    /* getters' messages name the document and the key path */
    const snlvk_json *a = snlvk_json_get(root, "a");
    check_fail(snlvk_json_get_int(root, "s", &i), SNLVK_E_INVALID, "get_int on a string", "t.json: field 's'",
               "expected an integer, got a string", NULL);
    check_fail(snlvk_json_get_string(a, "lr", &s), SNLVK_E_INVALID, "missing member", "t.json: field 'a.lr': missing",
               NULL, NULL);
    check_fail(snlvk_json_as_int(snlvk_json_at(b, 2), &i), SNLVK_E_INVALID, "as_int on 3.5", "field 'a.b[2]'",
               "expected an integer, got 3.5", NULL);
    check_fail(snlvk_json_get_int_range(root, "e3", 1, 999, &i), SNLVK_E_INVALID, "int out of range", "field 'e3'",
               "expected an integer in [1, 999], got 1000", NULL);
    check_fail(snlvk_json_get_object(root, "big", &a), SNLVK_E_INVALID, "get_object on a number", "field 'big'",
               "expected an object", NULL);
    check_fail(snlvk_json_get_int(b, "x", &i), SNLVK_E_INVALID, "get on an array", "field 'a.b'", "expected an object",
               NULL);
    check_fail(snlvk_json_as_bool(snlvk_json_at(b, 5), &bo), SNLVK_E_INVALID, "as_bool on null", "got null", NULL, NULL);
    int64_t dflt = 0;
    check(snlvk_json_opt_int(root, "absent", 77, &dflt) == SNLVK_OK && dflt == 77, "json: opt_int default when missing");
    check(snlvk_json_opt_int(root, "e3", 77, &dflt) == SNLVK_OK && dflt == 1000, "json: opt_int present");
    check_fail(snlvk_json_opt_int(root, "s", 0, &dflt), SNLVK_E_INVALID, "opt_int of the wrong type", "field 's'", NULL,
               NULL);
    snlvk_json_free(root);

    /* scalar roots, whitespace, lookups on big objects */
    snlvk_json *v = parse_str(" \t\r\n 42 \n");
    check(v && v->type == SNLVK_JSON_NUMBER && v->is_int && v->u.num.integer == 42, "json: scalar root with whitespace");
    check_fail(snlvk_json_as_string(v, &s), SNLVK_E_INVALID, "root type error", "t.json: expected a string, got 42", NULL,
               NULL);
    snlvk_json_free(v);
    char *big = malloc(200000);
    size_t n = (size_t)sprintf(big, "{");
    for (int k = 0; k < 5000; k++) n += (size_t)sprintf(big + n, "%s\"k%d\": %d", k ? ", " : "", (k * 7919) % 5000, k);
    sprintf(big + n, "}");
    v = parse_str(big);
    int found = v != NULL;
    for (int k = 0; v && k < 5000; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", (k * 7919) % 5000);
        if (snlvk_json_get_int(v, key, &i) != SNLVK_OK || i != k) found = 0;
    }
    check(found, "json: 5000 keys all found by binary search");
    snlvk_json_free(v);
    free(big);
}

static void test_json_malformed(void)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        size_t offset;
        const char *msg;
    } cases[] = {
        {"", 0, 0, "end of input"},
        {"   ", 0, 3, "end of input"},
        {"{", 0, 1, "expected a string key"},
        {"[1,]", 0, 3, "trailing comma"},
        {"{\"a\":1,}", 0, 7, "trailing comma"},
        {"{\"a\" 1}", 0, 5, "expected ':'"},
        {"{\"a\":}", 0, 5, "expected a value"},
        {"{1:2}", 0, 1, "expected a string key"},
        {"[1 2]", 0, 3, "expected ',' or ']'"},
        {"{\"a\":1 \"b\":2}", 0, 7, "expected ',' or '}'"},
        {"[01]", 0, 1, "leading zeros"},
        {"[1.]", 0, 3, "after the decimal point"},
        {"[.5]", 0, 1, "expected a value"},
        {"[+1]", 0, 1, "expected a value"},
        {"[1e]", 0, 3, "exponent"},
        {"[1e+]", 0, 4, "exponent"},
        {"[-]", 0, 2, "expected a digit"},
        {"[1e400]", 0, 1, "out of range"},
        {"[-1e400]", 0, 1, "out of range"},
        {"\"abc", 0, 0, "unterminated string"},
        {"\"abc\\\"", 0, 0, "unterminated string"},
        {"\"a\\x\"", 0, 2, "invalid escape"},
        {"\"\\u12G4\"", 0, 1, "four hex digits"},
        {"\"\\u12\"", 0, 1, "four hex digits"},
        {"\"\\ud800\"", 0, 1, "not followed by a low surrogate"},
        {"\"\\ud800\\u0041\"", 0, 1, "not followed by a low surrogate"},
        {"\"\\udc00\"", 0, 1, "lone low surrogate"},
        {"\"a\x01\"", 0, 2, "control character"},
        {"\"a\nb\"", 0, 2, "control character"},
        {"\"\xff\"", 0, 1, "invalid UTF-8"},
        {"\"\xc0\xaf\"", 0, 1, "invalid UTF-8"},
        {"\"\xed\xa0\x80\"", 0, 1, "invalid UTF-8"},
        {"\"\xf4\x90\x80\x80\"", 0, 1, "invalid UTF-8"},
        {"\"\xe2\x82\"", 0, 1, "invalid UTF-8"},
        {"[1] x", 0, 4, "after the JSON value"},
        {"{} {}", 0, 3, "after the JSON value"},
        {"tru", 0, 0, "expected a value"},
        {"nul", 0, 0, "expected a value"},
        {"True", 0, 0, "expected a value"},
        {"NaN", 0, 0, "expected a value"},
        {"[Infinity]", 0, 1, "expected a value"},
        {"'a'", 0, 0, "expected a value"},
        {"/* c */ 1", 0, 0, "expected a value"},
        {"[1,\0]", 5, 3, "expected a value"},
        {"\xef\xbb\xbf{}", 0, 0, "expected a value"},
        {"{\"a\":1,\"a\":2}", 0, 7, "duplicate key 'a'"},
        {"[1,2", 0, 4, "end of input"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len = cases[c].len ? cases[c].len : strlen(cases[c].text);
        snlvk_json *v = (snlvk_json *)1;
        size_t off = 0;
        snlvk_status s = snlvk_json_parse_ex(cases[c].text, len, "bad.json", NULL, &v, &off);
        char want[64];
        snprintf(want, sizeof want, "bad.json: invalid JSON at byte %zu: ", cases[c].offset);
        const char *msg = snlvk_last_error();
        check(s == SNLVK_E_INVALID && v == NULL && off == cases[c].offset && strstr(msg, want) && strstr(msg, cases[c].msg),
              "json malformed #%zu: offset %zu (want %zu): \"%s\"", c, off, cases[c].offset, msg);
    }
}

static void test_json_limits(void)
{
    /* deep nesting: fails cleanly, however deep */
    size_t n = 200000;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    snlvk_json *v = NULL;
    size_t off = 0;
    snlvk_status s = snlvk_json_parse_ex(deep, 2 * n, "deep.json", NULL, &v, &off);
    check(s == SNLVK_E_INVALID && v == NULL && off == SNLVK_JSON_DEFAULT_DEPTH && strstr(snlvk_last_error(), "nesting deeper"),
          "json: 200000 nested arrays rejected at byte %zu: %s", off, snlvk_last_error());
    /* exactly the limit is fine, one more is not */
    size_t d = SNLVK_JSON_DEFAULT_DEPTH;
    memset(deep, '[', d);
    memset(deep + d, ']', d);
    check_ok(snlvk_json_parse(deep, 2 * d, "deep.json", &v), "json: nesting of exactly the default limit");
    snlvk_json_free(v);
    memset(deep, '[', d + 1);
    memset(deep + d + 1, ']', d + 1);
    check_fail(snlvk_json_parse(deep, 2 * d + 2, "deep.json", &v), SNLVK_E_INVALID, "json: one deeper than the limit",
               "nesting deeper than", NULL, NULL);
    /* objects count too */
    strcpy(deep, "{\"a\":{\"b\":{\"c\":1}}}");
    snlvk_json_limits lim = {2, 0, 0};
    check_fail(snlvk_json_parse_ex(deep, strlen(deep), "deep.json", &lim, &v, NULL), SNLVK_E_INVALID,
               "json: custom depth 2 rejects 3 objects", "nesting deeper than 2", NULL, NULL);
    lim.max_depth = 3;
    check_ok(snlvk_json_parse_ex(deep, strlen(deep), "deep.json", &lim, &v, NULL), "json: custom depth 3 accepts them");
    snlvk_json_free(v);
    lim = (snlvk_json_limits){0, 10, 0};
    check_fail(snlvk_json_parse_ex(deep, strlen(deep), "big.json", &lim, &v, NULL), SNLVK_E_INVALID, "json: size limit",
               "big.json", "larger than the limit", NULL);
    lim = (snlvk_json_limits){0, 0, 5};
    const char *arr = "[1,2,3,4,5,6]";
    check_fail(snlvk_json_parse_ex(arr, strlen(arr), "many.json", &lim, &v, NULL), SNLVK_E_INVALID, "json: node limit",
               "more than 5 values", NULL, NULL);
    free(deep);

    /* every prefix of a valid document fails cleanly (ASan watches the reads) */
    const char *doc = "{\"k\": [1, -2.5e3, \"s\\u00e9\\ud83d\\ude00\", true, null, {\"x\": false}]}";
    size_t L = strlen(doc);
    int all = 1;
    for (size_t k = 0; k < L; k++) {
        char *pre = malloc(k ? k : 1); /* exact size: any overread is caught */
        memcpy(pre, doc, k);
        if (snlvk_json_parse(pre, k, "p.json", &v) == SNLVK_OK) {
            all = 0;
            snlvk_json_free(v);
        }
        free(pre);
    }
    check(all, "json: all %zu proper prefixes of a document are rejected", L);

    /* random mutations never crash */
    uint32_t seed = 12345;
    int parsed = 0;
    for (int it = 0; it < 3000; it++) {
        char *m = malloc(L);
        memcpy(m, doc, L);
        for (int k = 0; k < 3; k++) {
            seed = (uint32_t)(((uint64_t)seed * 1664525u + 1013904223u) & 0xffffffffu);
            m[(seed >> 8) % L] = (char)(seed >> 24);
        }
        if (snlvk_json_parse(m, L, "m.json", &v) == SNLVK_OK) {
            parsed++;
            snlvk_json_free(v);
        }
        free(m);
    }
    check(1, "json: 3000 mutated documents parsed or rejected without a crash (%d parsed)", parsed);
}

static void test_json_file(void)
{
    const char *path = P("cfg.json");
    const char *text = "{\"train\": {\"lr\": \"fast\"}}";
    write_file(path, text, strlen(text));
    snlvk_json *v;
    check_ok(snlvk_json_parse_file(path, &v), "json: parse a file");
    double lr;
    check_fail(snlvk_json_get_number(snlvk_json_get(v, "train"), "lr", &lr), SNLVK_E_INVALID,
               "json file: message names the file and key path", path, "field 'train.lr': expected a number, got a string",
               NULL);
    snlvk_json_free(v);
    check_fail(snlvk_json_parse_file(P("nope.json"), &v), SNLVK_E_IO, "json: missing file", "nope.json", "cannot open",
               NULL);
}

/* ------------------------------------------------------------------ JSON writer */

static void test_json_writer(void)
{
    snlvk_jw w;
    snlvk_jw_init(&w, 0);
    snlvk_jw_begin_object(&w);
    snlvk_jw_kv_string(&w, "name", "a\"b\\c\n\t\x01\xc3\xa9\xff/");
    snlvk_jw_kv_int(&w, "i", -42);
    snlvk_jw_kv_uint(&w, "u", UINT64_MAX);
    snlvk_jw_kv_number(&w, "x", 0.1f);
    snlvk_jw_kv_double(&w, "d", 0.1);
    snlvk_jw_kv_number(&w, "nan", NAN);
    snlvk_jw_kv_number(&w, "inf", -INFINITY);
    snlvk_jw_kv_bool(&w, "t", 1);
    snlvk_jw_kv_null(&w, "n");
    snlvk_jw_key(&w, "arr");
    snlvk_jw_begin_array(&w);
    snlvk_jw_int(&w, 1);
    snlvk_jw_begin_object(&w);
    snlvk_jw_end_object(&w);
    snlvk_jw_begin_array(&w);
    snlvk_jw_end_array(&w);
    snlvk_jw_number(&w, 1e20);
    snlvk_jw_end_array(&w);
    snlvk_jw_end_object(&w);
    const char *text;
    size_t len;
    check_ok(snlvk_jw_finish(&w, &text, &len), "writer: compact object");
    const char *want = "{\"name\": \"a\\\"b\\\\c\\n\\t\\u0001\xc3\xa9\xef\xbf\xbd/\", \"i\": -42, \"u\": 18446744073709551615, "
                       "\"x\": 0.100000001, \"d\": 0.10000000000000001, \"nan\": null, \"inf\": null, \"t\": true, "
                       "\"n\": null, \"arr\": [1, {}, [], 1e+20]}";
    if (!check(text && strcmp(text, want) == 0 && len == strlen(want), "writer: compact text exact"))
        printf("     got  %s\n     want %s\n", text ? text : "(null)", want);
    snlvk_json *v;
    check_ok(snlvk_json_parse(text, len, "w.json", &v), "writer: its output parses");
    const char *s;
    float x = 0;
    double dx;
    if (v) {
        check(snlvk_json_get_string(v, "name", &s) == SNLVK_OK && strcmp(s, "a\"b\\c\n\t\x01\xc3\xa9\xef\xbf\xbd/") == 0,
              "writer: string round trip (invalid byte -> U+FFFD)");
        snlvk_json_get_number(v, "x", &dx);
        x = (float)dx;
        check(x == 0.1f, "writer: %%.9g round-trips a float");
        snlvk_json_free(v);
    }

    snlvk_jw p;
    snlvk_jw_init(&p, 2);
    snlvk_jw_begin_object(&p);
    snlvk_jw_kv_int(&p, "a", 1);
    snlvk_jw_key(&p, "b");
    snlvk_jw_begin_array(&p);
    snlvk_jw_int(&p, 1);
    snlvk_jw_int(&p, 2);
    snlvk_jw_end_array(&p);
    snlvk_jw_key(&p, "c");
    snlvk_jw_begin_array(&p);
    snlvk_jw_end_array(&p);
    snlvk_jw_end_object(&p);
    check_ok(snlvk_jw_finish(&p, &text, &len), "writer: pretty object");
    const char *pw = "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ],\n  \"c\": []\n}\n";
    check(text && strcmp(text, pw) == 0, "writer: pretty text like json.dumps(indent=2)");
    snlvk_jw_free(&p);

    /* misuse is reported by finish */
    snlvk_jw_reset(&w);
    snlvk_jw_begin_object(&w);
    snlvk_jw_int(&w, 1);
    snlvk_jw_end_object(&w);
    check_fail(snlvk_jw_finish(&w, NULL, NULL), SNLVK_E_INVALID, "writer: value without a key", "without a key", NULL, NULL);
    snlvk_jw_reset(&w);
    snlvk_jw_begin_array(&w);
    snlvk_jw_end_object(&w);
    check_fail(snlvk_jw_finish(&w, NULL, NULL), SNLVK_E_INVALID, "writer: mismatched end", "without a matching", NULL, NULL);
    snlvk_jw_reset(&w);
    snlvk_jw_begin_array(&w);
    check_fail(snlvk_jw_finish(&w, NULL, NULL), SNLVK_E_INVALID, "writer: unclosed", "incomplete", NULL, NULL);
    snlvk_jw_reset(&w);
    snlvk_jw_int(&w, 1);
    snlvk_jw_int(&w, 2);
    check_fail(snlvk_jw_finish(&w, NULL, NULL), SNLVK_E_INVALID, "writer: two top-level values", "second value", NULL, NULL);
    snlvk_jw_reset(&w);
    snlvk_jw_key(&w, "k");
    check_fail(snlvk_jw_finish(&w, NULL, NULL), SNLVK_E_INVALID, "writer: key outside an object", "key outside", NULL, NULL);
    snlvk_jw_reset(&w);
    for (int k = 0; k < SNLVK_JW_MAX_DEPTH + 1; k++) snlvk_jw_begin_array(&w);
    check_fail(snlvk_jw_finish(&w, NULL, NULL), SNLVK_E_INVALID, "writer: too deep", "nesting deeper", NULL, NULL);
    snlvk_jw_free(&w);

    char esc[64];
    size_t need = snlvk_json_escape(esc, sizeof esc, "a\"b", 3);
    check(need == 6 && strcmp(esc, "\"a\\\"b\"") == 0, "writer: snlvk_json_escape");
    need = snlvk_json_escape(esc, 4, "abcdef", 6);
    check(need == 8 && strcmp(esc, "\"ab") == 0, "writer: snlvk_json_escape truncates like snprintf");

    /* a decimal-comma locale must not leak into numbers */
    const char *locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "de_DE", NULL};
    const char *got = NULL;
    for (int k = 0; locs[k] && !got; k++) got = setlocale(LC_NUMERIC, locs[k]);
    if (!got) {
        printf("SKIP writer/parser under a decimal-comma locale: none installed\n");
        return;
    }
    snlvk_jw_init(&w, 0);
    snlvk_jw_begin_array(&w);
    snlvk_jw_number(&w, 2.5);
    snlvk_jw_end_array(&w);
    snlvk_jw_finish(&w, &text, &len);
    int ok = text && strcmp(text, "[2.5]") == 0;
    snlvk_json *lv = NULL;
    ok = ok && snlvk_json_parse("[2.5]", 5, "l.json", &lv) == SNLVK_OK && lv->u.c.items[0].u.num.number == 2.5;
    snlvk_json_free(lv);
    snlvk_jw_free(&w);
    setlocale(LC_NUMERIC, "C");
    check(ok, "writer and parser use '.' under locale %s", got);
}

/* ------------------------------------------------------------------ JSON lines */

static void test_jsonl(void)
{
    const char *path = P("log.jsonl");
    snlvk_jsonl log;
    check_ok(snlvk_jsonl_open(&log, path), "jsonl: open");
    snlvk_jw w;
    snlvk_jw_init(&w, 0);
    for (int e = 0; e < 2; e++) {
        snlvk_jw_begin_object(&w);
        snlvk_jw_kv_int(&w, "epoch", e);
        snlvk_jw_kv_number(&w, "loss", 1.0 / (e + 1));
        snlvk_jw_kv_string(&w, "note", "two\nlines");
        snlvk_jw_end_object(&w);
        check_ok(snlvk_jsonl_write(&log, &w), "jsonl: write a line");
    }
    size_t len;
    char *text = read_all(path, &len);
    check(text && len > 0 && text[len - 1] == '\n', "jsonl: visible on disk before close (flushed per line)");
    free(text);
    const char *raw = "{\"raw\": true}";
    check_ok(snlvk_jsonl_write_text(&log, raw, strlen(raw)), "jsonl: write raw text");
    check_fail(snlvk_jsonl_write_text(&log, "{\"a\":\n1}", 8), SNLVK_E_INVALID, "jsonl: raw text with a newline", path,
               "newline", NULL);
    check_fail(snlvk_jsonl_write_text(&log, "[1]", 3), SNLVK_E_INVALID, "jsonl: not an object", "must be an object", NULL,
               NULL);
    check_fail(snlvk_jsonl_write_text(&log, "{\"a\":}", 6), SNLVK_E_INVALID, "jsonl: invalid JSON", "invalid JSON", NULL,
               NULL);
    snlvk_jw_begin_array(&w);
    snlvk_jw_end_array(&w);
    check_fail(snlvk_jsonl_write(&log, &w), SNLVK_E_INVALID, "jsonl: writer holding an array", "must be an object", NULL,
               NULL);
    snlvk_jw_reset(&w);
    check_ok(snlvk_jsonl_close(&log), "jsonl: close");
    /* append mode: a second open adds to the end */
    snlvk_jw_begin_object(&w);
    snlvk_jw_kv_int(&w, "epoch", 2);
    snlvk_jw_end_object(&w);
    check_ok(snlvk_jsonl_append(path, &w), "jsonl: append in one call");
    snlvk_jw_free(&w);
    text = read_all(path, &len);
    int lines = 0, good = text != NULL;
    for (char *line = text, *nl; good && line && (nl = strchr(line, '\n')); line = nl + 1) {
        snlvk_json *v;
        if (snlvk_json_parse(line, (size_t)(nl - line), path, &v) != SNLVK_OK || v->type != SNLVK_JSON_OBJECT) good = 0;
        else snlvk_json_free(v);
        lines++;
    }
    check(good && lines == 4 && strncmp(text, "{\"epoch\": 0, \"loss\": 1, \"note\": \"two\\nlines\"}\n", 46) == 0,
          "jsonl: 4 lines, each one JSON object (%d)", lines);
    free(text);
    check_fail(snlvk_jsonl_open(&log, P("no/such/dir/log.jsonl")), SNLVK_E_IO, "jsonl: open in a missing directory",
               "no/such/dir/log.jsonl", "cannot open", NULL);
    check_ok(snlvk_jsonl_close(&log), "jsonl: close after a failed open is fine");
}

/* ------------------------------------------------------------------ atomic files */

static void test_atomic(void)
{
    const char *path = P("atomic.txt");
    check_ok(snlvk_atomic_write(path, "first", 5), "atomic: write a new file");
    check_ok(snlvk_atomic_write(path, "second!", 7), "atomic: replace it");
    size_t len;
    char *t = read_all(path, &len);
    check(t && len == 7 && memcmp(t, "second!", 7) == 0, "atomic: the new contents");
    free(t);
    check_fail(snlvk_atomic_write(P("missing-dir/x.txt"), "x", 1), SNLVK_E_IO, "atomic: directory does not exist",
               "missing-dir/x.txt", "No such file", NULL);
    /* abort leaves the old file */
    snlvk_atomic_file af;
    check_ok(snlvk_atomic_open(&af, path), "atomic: open");
    fputs("half-written", af.f);
    snlvk_atomic_abort(&af);
    t = read_all(path, &len);
    check(t && len == 7 && memcmp(t, "second!", 7) == 0, "atomic: abort leaves the old contents");
    free(t);
    snlvk_atomic_abort(&af); /* twice is fine */
    const char *never = P("never.txt");
    check_ok(snlvk_atomic_open(&af, never), "atomic: open a new path");
    fputs("x", af.f);
    snlvk_atomic_abort(&af);
    check(!file_exists(never), "atomic: an aborted new file never appears");
    /* renaming over a directory fails: the directory is untouched, the temp file removed */
    const char *dir = P("a-directory");
    mkdir(dir, 0755);
    check_fail(snlvk_atomic_write(dir, "x", 1), SNLVK_E_IO, "atomic: path is a directory", "a-directory", "cannot rename",
               NULL);
    struct stat sb;
    check(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "atomic: the directory is still there");
    check(temp_files_in(tmp_root) == 0, "atomic: no temporary file left behind");
}

/* ------------------------------------------------------------------ safetensors */

static uint16_t f2h(float f) /* exact for normal halves */
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    if ((x & 0x7fffffffu) == 0) return (uint16_t)sign;
    int e = (int)((x >> 23) & 0xff) - 127 + 15;
    return (uint16_t)(sign | ((uint32_t)e << 10) | ((x & 0x7fffffu) >> 13));
}

static float h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    int e = (h >> 10) & 0x1f;
    uint32_t m = h & 0x3ffu, x;
    if (e == 0 && m == 0) x = sign;
    else x = sign | ((uint32_t)(e - 15 + 127) << 23) | (m << 13); /* normals only */
    float f;
    memcpy(&f, &x, 4);
    return f;
}

#define NV 24 /* elements of each test tensor */

typedef struct st_data {
    float f32[NV];
    double f64[NV];
    uint16_t f16[NV], bf16[NV];
    int64_t i64[NV];
    int32_t i32[NV];
    int16_t i16[NV];
    int8_t i8[NV];
    uint64_t u64[NV];
    uint32_t u32[NV];
    uint16_t u16[NV];
    uint8_t u8[NV], boolean[NV], f8a[NV], f8b[NV];
    float scalar;
} st_data;

static void fill_data(st_data *d)
{
    for (int i = 0; i < NV; i++) {
        d->f32[i] = (float)i * 0.5f - 3;
        d->f64[i] = (double)i / 3.0;
        d->f16[i] = f2h((float)i * 0.25f - 1);
        float bf = (float)i * 0.5f - 3;
        uint32_t bits;
        memcpy(&bits, &bf, 4);
        d->bf16[i] = (uint16_t)(bits >> 16);
        d->i64[i] = ((int64_t)i - 3) * 3000000000LL;
        d->i32[i] = i * -7;
        d->i16[i] = (int16_t)(i * 1000 - 5000);
        d->i8[i] = (int8_t)(i - 5);
        d->u64[i] = (uint64_t)i * 0x0123456789abcdefULL;
        d->u32[i] = (uint32_t)i * 100000u;
        d->u16[i] = (uint16_t)(i * 2000);
        d->u8[i] = (uint8_t)(i * 10);
        d->boolean[i] = i % 3 == 0;
        d->f8a[i] = (uint8_t)(i + 100);
        d->f8b[i] = (uint8_t)(200 - i);
    }
    d->scalar = 2.5f;
}

/* One entry per dtype (shapes [2,3,4], [4,6], [24], ...), a scalar and an empty tensor. */
static size_t make_entries(const st_data *d, snlvk_st_entry *e)
{
    static const int shapes[][4] = {{3, 2, 3, 4}, {2, 4, 6, 0}, {1, 24, 0, 0}, {2, 6, 4, 0}};
    const void *ptr[SNLVK_ST_DTYPE_COUNT] = {
        [SNLVK_ST_F32] = d->f32,  [SNLVK_ST_F64] = d->f64,       [SNLVK_ST_F16] = d->f16,       [SNLVK_ST_BF16] = d->bf16,
        [SNLVK_ST_I64] = d->i64,  [SNLVK_ST_I32] = d->i32,       [SNLVK_ST_I16] = d->i16,       [SNLVK_ST_I8] = d->i8,
        [SNLVK_ST_U64] = d->u64,  [SNLVK_ST_U32] = d->u32,       [SNLVK_ST_U16] = d->u16,       [SNLVK_ST_U8] = d->u8,
        [SNLVK_ST_BOOL] = d->boolean, [SNLVK_ST_F8_E4M3] = d->f8a, [SNLVK_ST_F8_E5M2] = d->f8b,
    };
    static const char *names[SNLVK_ST_DTYPE_COUNT] = {"f32",  "f64", "f16", "bf16", "i64", "i32", "i16",    "i8",
                                                      "u64",  "u32", "u16", "u8",   "bool", "f8a", "f8b"};
    size_t n = 0;
    for (int t = 0; t < SNLVK_ST_DTYPE_COUNT; t++) {
        snlvk_st_entry *x = &e[n++];
        memset(x, 0, sizeof *x);
        x->name = names[t];
        x->dtype = (snlvk_st_dtype)t;
        const int *s = shapes[t % 4];
        x->ndim = s[0];
        for (int k = 0; k < x->ndim; k++) x->shape[k] = (uint64_t)s[k + 1];
        x->data = ptr[t];
    }
    memset(&e[n], 0, sizeof e[n]);
    e[n].name = "layer1.0.scalar";
    e[n].dtype = SNLVK_ST_F32;
    e[n].ndim = 0;
    e[n].data = &d->scalar;
    n++;
    memset(&e[n], 0, sizeof e[n]);
    e[n].name = "empty";
    e[n].dtype = SNLVK_ST_I64;
    e[n].ndim = 2;
    e[n].shape[0] = 0;
    e[n].shape[1] = 3;
    e[n].data = NULL;
    n++;
    return n;
}

static const snlvk_st_meta test_meta[] = {
    {"epoch", "7"}, {"note", "h\xc3\xa9llo \"q\"\n"}, {"format", "pt"}, {"empty", ""}};

static void test_st_roundtrip(void)
{
    st_data d;
    fill_data(&d);
    snlvk_st_entry e[SNLVK_ST_DTYPE_COUNT + 2];
    size_t n = make_entries(&d, e);
    const char *path = P("all.safetensors");
    check_ok(snlvk_st_write(path, e, n, test_meta, 4), "safetensors: write every dtype + scalar + empty + metadata");
    size_t flen;
    unsigned char *raw = (unsigned char *)read_all(path, &flen);
    uint64_t hl = 0;
    for (int k = 7; raw && k >= 0; k--) hl = (hl << 8) | raw[k];
    check(raw && hl % 8 == 0 && raw[8] == '{' && 8 + hl <= flen, "safetensors: header length %llu is a multiple of 8",
          (unsigned long long)hl);
    check(raw && memcmp(raw + 8, "{\"__metadata__\":{\"epoch\":\"7\",\"note\":\"h\xc3\xa9llo \\\"q\\\"\\n\",", 50) == 0,
          "safetensors: compact header, metadata first, like Python's");
    free(raw);

    snlvk_st st;
    if (!check_ok(snlvk_st_read(path, &st), "safetensors: read it back")) return;
    check(st.n_tensors == n && st.n_meta == 4, "safetensors: %zu tensors, %zu metadata", st.n_tensors, st.n_meta);
    int all = 1;
    for (size_t i = 0; i < n; i++) {
        const snlvk_st_tensor *t = snlvk_st_find(&st, e[i].name);
        size_t bytes = snlvk_st_dtype_size(e[i].dtype);
        for (int k = 0; k < e[i].ndim; k++) bytes *= e[i].shape[k];
        int ok = t && t == &st.tensors[i] && t->dtype == e[i].dtype && t->ndim == e[i].ndim && t->nbytes == bytes &&
                 (bytes == 0 || memcmp(t->data, e[i].data, bytes) == 0);
        for (int k = 0; ok && k < e[i].ndim; k++) ok = t->shape[k] == e[i].shape[k];
        check(ok, "safetensors: %s %s round trip (%zu bytes)", e[i].name, snlvk_st_dtype_name(e[i].dtype), bytes);
        all &= ok;
    }
    check(all, "safetensors: all %zu tensors round-trip", n);
    check(snlvk_st_find(&st, "nope") == NULL, "safetensors: find of a missing name");
    for (int k = 0; k < 4; k++) {
        const char *v = snlvk_st_meta_get(&st, test_meta[k].key);
        check(v && strcmp(v, test_meta[k].value) == 0, "safetensors: metadata '%s'", test_meta[k].key);
    }
    check(snlvk_st_meta_get(&st, "nope") == NULL, "safetensors: missing metadata key");
    check(((uintptr_t)st.tensors[0].data % 16) == 0, "safetensors: data start is 16-byte aligned");

    const snlvk_st_tensor *t;
    uint64_t shp[3] = {2, 3, 4};
    check_ok(snlvk_st_get(&st, "f32", SNLVK_ST_F32, 3, shp, &t), "safetensors: get with dtype and shape");
    float back[NV];
    check_ok(snlvk_st_copy(&st, t, back, sizeof back), "safetensors: copy");
    check(memcmp(back, d.f32, sizeof back) == 0, "safetensors: copied values");
    check_fail(snlvk_st_copy(&st, t, back, 8), SNLVK_E_INVALID, "safetensors: copy into a wrong size", path, "tensor 'f32'",
               "destination");
    check_fail(snlvk_st_get(&st, "fc.weight", SNLVK_ST_F32, -1, NULL, &t), SNLVK_E_INVALID, "safetensors: get missing",
               path, "tensor 'fc.weight': missing", NULL);
    check_fail(snlvk_st_get(&st, "f16", SNLVK_ST_F32, -1, NULL, &t), SNLVK_E_INVALID, "safetensors: get wrong dtype", path,
               "tensor 'f16': field 'dtype': expected F32, got F16", NULL);
    uint64_t wrong[2] = {4, 7};
    check_fail(snlvk_st_get(&st, "f64", SNLVK_ST_F64, 2, wrong, &t), SNLVK_E_INVALID, "safetensors: get wrong shape", path,
               "tensor 'f64': field 'shape': expected [4, 7], got [4, 6]", NULL);
    snlvk_st_free(&st);
    snlvk_st_free(&st); /* twice is fine */

    /* from memory too */
    raw = (unsigned char *)read_all(path, &flen);
    check_ok(snlvk_st_parse(raw, flen, "mem", &st), "safetensors: parse from memory");
    check(st.n_tensors == n && memcmp(snlvk_st_find(&st, "i64")->data, d.i64, sizeof d.i64) == 0,
          "safetensors: memory copy holds the data");
    snlvk_st_free(&st);
    free(raw);

    /* no tensors at all */
    const char *p0 = P("empty.safetensors");
    check_ok(snlvk_st_write(p0, NULL, 0, NULL, 0), "safetensors: write an empty file");
    raw = (unsigned char *)read_all(p0, &flen);
    check(raw && flen == 16 && memcmp(raw + 8, "{}      ", 8) == 0, "safetensors: empty file is '{}' padded to 8");
    free(raw);
    check_ok(snlvk_st_read(p0, &st), "safetensors: read the empty file");
    check(st.n_tensors == 0 && st.n_meta == 0, "safetensors: nothing in it");
    snlvk_st_free(&st);

    /* the builder */
    snlvk_st_builder b;
    snlvk_st_builder_init(&b);
    float tmp[4] = {1, 2, 3, 4};
    uint64_t s2[2] = {2, 2};
    check_ok(snlvk_st_builder_add_copy(&b, "copied", SNLVK_ST_F32, 2, s2, tmp), "builder: add a copy");
    tmp[0] = 99;
    check_ok(snlvk_st_builder_add(&b, "borrowed", SNLVK_ST_F32, 1, (uint64_t[]){4}, tmp), "builder: add borrowed");
    check_ok(snlvk_st_builder_meta(&b, "k", "v1"), "builder: meta");
    check_ok(snlvk_st_builder_meta(&b, "k", "v2"), "builder: meta replaced");
    check_fail(snlvk_st_builder_add(&b, "bad", SNLVK_ST_F32, 17, s2, tmp), SNLVK_E_INVALID, "builder: 17 dims", "'bad'",
               "dimensions", NULL);
    const char *pb = P("builder.safetensors");
    check_ok(snlvk_st_builder_write(&b, pb), "builder: write");
    snlvk_st_builder_free(&b);
    check_ok(snlvk_st_read(pb, &st), "builder: read back");
    const snlvk_st_tensor *c = snlvk_st_find(&st, "copied"), *bo = snlvk_st_find(&st, "borrowed");
    check(c && bo && ((const float *)c->data)[0] == 1 && ((const float *)bo->data)[0] == 99 &&
              strcmp(snlvk_st_meta_get(&st, "k"), "v2") == 0 && st.n_meta == 1,
          "builder: copy kept its values, borrowed saw the change, meta replaced");
    snlvk_st_free(&st);
}

/* A file: 8-byte length of `header` (as given, unpadded), the header, `data_len` bytes. */
static void make_st(const char *path, const char *header, size_t data_len)
{
    size_t hl = strlen(header);
    size_t n = 8 + hl + data_len;
    unsigned char *b = calloc(1, n);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)hl >> (8 * k));
    memcpy(b + 8, header, hl);
    for (size_t k = 0; k < data_len; k++) b[8 + hl + k] = (unsigned char)k;
    write_file(path, b, n);
    free(b);
}

static void test_st_corrupt(void)
{
    const char *path = P("bad.safetensors");
    snlvk_st st;
    snlvk_status s;

    write_file(path, "\x10\0\0", 3);
    check_fail(snlvk_st_read(path, &st), SNLVK_E_INVALID, "corrupt: truncated to 3 bytes", path, "too short", NULL);
    check(st.n_tensors == 0 && st.tensors == NULL && st.path == NULL, "corrupt: *st zeroed after a failure");
    snlvk_st_free(&st);

    unsigned char len_only[12] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' '};
    write_file(path, len_only, sizeof len_only);
    check_fail(snlvk_st_read(path, &st), SNLVK_E_INVALID, "corrupt: header length larger than the file", path,
               "header length 1000 is past the end of the file (12 bytes)", NULL);
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    write_file(path, huge, sizeof huge);
    check_fail(snlvk_st_read(path, &st), SNLVK_E_INVALID, "corrupt: header length 2^64-1", path, "past the end", NULL);

    /* a valid file cut short: the last tensor's end is past the data */
    float v[250];
    for (int k = 0; k < 250; k++) v[k] = (float)k;
    snlvk_st_entry e[2] = {{"a", SNLVK_ST_F32, 1, {50}, v}, {"layer1.0.conv1.weight", SNLVK_ST_F32, 1, {200}, v}};
    const char *good = P("good.safetensors");
    check_ok(snlvk_st_write(good, e, 2, NULL, 0), "corrupt: write a good file to cut");
    size_t flen;
    char *raw = read_all(good, &flen);
    write_file(path, raw, flen - 4);
    check_fail(snlvk_st_read(path, &st), SNLVK_E_INVALID, "corrupt: file truncated in the data", path,
               "tensor 'layer1.0.conv1.weight': field 'data_offsets': end 1000 is past the data (996 bytes)", NULL);
    /* every truncation and every mutation of the good file fails cleanly or reads fine */
    int clean = 1;
    for (size_t k = 0; k < flen; k++) {
        char *cut = malloc(k ? k : 1);
        memcpy(cut, raw, k);
        s = snlvk_st_parse(cut, k, "cut", &st);
        if (s != SNLVK_E_INVALID) clean = 0;
        snlvk_st_free(&st);
        free(cut);
    }
    check(clean, "corrupt: all %zu truncations rejected with SNLVK_E_INVALID", flen);
    uint32_t seed = 99;
    int readable = 0;
    for (int it = 0; it < 3000; it++) {
        char *m = malloc(flen);
        memcpy(m, raw, flen);
        for (int k = 0; k < 2; k++) {
            seed = (uint32_t)(((uint64_t)seed * 1664525u + 1013904223u) & 0xffffffffu);
            size_t pos = (seed >> 8) % (flen < 200 ? flen : 200); /* mostly the header */
            m[pos] = (char)(seed >> 24);
        }
        s = snlvk_st_parse(m, flen, "mut", &st);
        if (s == SNLVK_OK) readable++;
        else if (s != SNLVK_E_INVALID) clean = 0;
        snlvk_st_free(&st);
        free(m);
    }
    check(clean, "corrupt: 3000 mutated files read or rejected without a crash (%d read)", readable);
    free(raw);

    static const struct {
        const char *what, *header;
        size_t data;
        const char *n1, *n2;
    } cases[] = {
        {"invalid JSON", "{\"w\": {\"dtype\": \"F32\",}}", 0, "header: invalid JSON at byte 22", "trailing comma"},
        {"header not an object", "[1, 2]", 0, "header: expected a JSON object, got an array", NULL},
        {"tensor entry not an object", "{\"w\": 5}", 0, "tensor 'w': expected an object, got 5", NULL},
        {"missing dtype", "{\"w\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", 8, "tensor 'w': field 'dtype': missing",
         NULL},
        {"dtype not a string", "{\"w\": {\"dtype\": 4, \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'dtype': expected a string, got 4", NULL},
        {"unknown dtype", "{\"w\": {\"dtype\": \"F128\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'dtype': unknown dtype 'F128'", NULL},
        {"lower-case dtype", "{\"w\": {\"dtype\": \"f32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'dtype': unknown dtype 'f32'", NULL},
        {"missing shape", "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", 8, "tensor 'w': field 'shape': missing",
         NULL},
        {"shape not an array", "{\"w\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'shape': expected an array", NULL},
        {"negative dim", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -3], \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'shape': dimension 1 is negative (-3)", NULL},
        {"fractional dim", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'shape': dimension 0: expected a non-negative integer, got 2.5", NULL},
        {"string dim", "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'shape': dimension 0: expected a non-negative integer", NULL},
        {"17 dims",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
         "tensor 'w': field 'shape': 17 dimensions", NULL},
        {"element count overflow",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967295, 16], \"data_offsets\": [0, 8]}}", 8,
         "tensor 'w': field 'shape': the element count of [4294967296, 4294967295, 16] overflows", NULL},
        {"byte size overflow", "{\"w\": {\"dtype\": \"F64\", \"shape\": [4294967296, 1073741824], \"data_offsets\": [0, 8]}}",
         8, "tensor 'w': field 'shape': the byte size of [4294967296, 1073741824] overflows", NULL},
        {"missing data_offsets", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", 8,
         "tensor 'w': field 'data_offsets': missing", NULL},
        {"data_offsets of 3", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4, 8]}}", 8,
         "tensor 'w': field 'data_offsets': expected [begin, end], got an array of 3", NULL},
        {"data_offsets not an array", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": \"0-8\"}}", 8,
         "tensor 'w': field 'data_offsets': expected [begin, end], got the string", NULL},
        {"negative begin", "{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [-8, 0]}}", 8,
         "tensor 'w': field 'data_offsets': begin: expected a non-negative integer, got -8", NULL},
        {"begin after end", "{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 0]}}", 8,
         "tensor 'w': field 'data_offsets': begin 8 is after end 0", NULL},
        {"shape/offset mismatch", "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 16,
         "tensor 'w': field 'data_offsets': [0, 8] holds 8 bytes, but shape [3] of F32 needs 12", NULL},
        {"offsets past the end",
         "{\"layer1.0.conv1.weight\": {\"dtype\": \"F32\", \"shape\": [250], \"data_offsets\": [234, 1234]}}", 1000,
         "tensor 'layer1.0.conv1.weight': field 'data_offsets': end 1234 is past the data (1000 bytes)", NULL},
        {"overlapping tensors",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}, "
         "\"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}",
         24, "tensor 'b': field 'data_offsets': [8, 24] overlaps tensor 'a' [0, 16]", NULL},
        {"one tensor inside another",
         "{\"outer\": {\"dtype\": \"U8\", \"shape\": [32], \"data_offsets\": [0, 32]}, "
         "\"x\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [20, 24]}, "
         "\"inner\": {\"dtype\": \"U8\", \"shape\": [4], \"data_offsets\": [4, 8]}}",
         32, "field 'data_offsets'", "overlaps tensor 'outer' [0, 32]"},
        {"duplicate tensor name",
         "{\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [0, 1]}, "
         "\"a\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [1, 2]}}",
         2, "header: invalid JSON", "duplicate key 'a'"},
        {"non-string metadata", "{\"__metadata__\": {\"format\": \"pt\", \"epoch\": 3}}", 0,
         "field '__metadata__': key 'epoch': expected a string, got 3", NULL},
        {"metadata not an object", "{\"__metadata__\": [\"pt\"]}", 0, "field '__metadata__': expected an object", NULL},
        {"empty header", "", 0, "header: invalid JSON at byte 0", NULL},
        {"header cut inside an object", "{\"a\"", 0, "header: invalid JSON at byte 4", "expected ':'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        make_st(path, cases[k].header, cases[k].data);
        s = snlvk_st_read(path, &st);
        char what[96];
        snprintf(what, sizeof what, "corrupt: %s", cases[k].what);
        check_fail(s, SNLVK_E_INVALID, what, path, cases[k].n1, cases[k].n2);
        snlvk_st_free(&st);
    }

    /* gaps and zero-size tensors sharing offsets are fine */
    make_st(path,
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]}, "
            "\"z1\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [5, 5]}, "
            "\"z2\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [5, 5]}, "
            "\"extra\": 0 }",
            10);
    s = snlvk_st_read(path, &st);
    check_fail(s, SNLVK_E_INVALID, "corrupt: a non-object entry among good ones", "tensor 'extra'", NULL, NULL);
    snlvk_st_free(&st);
    make_st(path,
            "{\"a\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6], \"extra\": 1}, "
            "\"z1\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [5, 5]}, "
            "\"z2\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [5, 5]}}",
            10);
    s = snlvk_st_read(path, &st);
    check(s == SNLVK_OK && st.n_tensors == 3 && ((const unsigned char *)snlvk_st_find(&st, "a")->data)[1] == 5,
          "safetensors: gaps, trailing bytes and empty tensors inside another's range are accepted: %s",
          s ? snlvk_last_error() : "ok");
    snlvk_st_free(&st);

    check_fail(snlvk_st_read(P("does-not-exist.safetensors"), &st), SNLVK_E_IO, "corrupt: missing file",
               "does-not-exist.safetensors", "cannot open", NULL);
    check_fail(snlvk_st_read(tmp_root, &st), SNLVK_E_IO, "corrupt: a directory", tmp_root, "not a regular file", NULL);
}

static void test_st_write_errors(void)
{
    const char *path = P("keep.safetensors");
    float v[4] = {1, 2, 3, 4};
    snlvk_st_entry good = {"w", SNLVK_ST_F32, 1, {4}, v};
    check_ok(snlvk_st_write(path, &good, 1, NULL, 0), "write errors: the old file");
    size_t old_len;
    char *old = read_all(path, &old_len);

    snlvk_st_entry dup[2] = {good, good};
    check_fail(snlvk_st_write(path, dup, 2, NULL, 0), SNLVK_E_INVALID, "write errors: duplicate names", path,
               "tensor 'w': the name appears twice", NULL);
    snlvk_st_entry res = {"__metadata__", SNLVK_ST_F32, 1, {4}, v};
    check_fail(snlvk_st_write(path, &res, 1, NULL, 0), SNLVK_E_INVALID, "write errors: reserved name", path, "reserved",
               NULL);
    snlvk_st_entry nodata = {"n", SNLVK_ST_F32, 1, {4}, NULL};
    check_fail(snlvk_st_write(path, &nodata, 1, NULL, 0), SNLVK_E_INVALID, "write errors: no data", path,
               "tensor 'n': no data for 16 bytes", NULL);
    snlvk_st_entry badutf = {"bad\xff", SNLVK_ST_F32, 1, {4}, v};
    check_fail(snlvk_st_write(path, &badutf, 1, NULL, 0), SNLVK_E_INVALID, "write errors: invalid UTF-8 name", path,
               "not valid UTF-8", NULL);
    snlvk_st_entry baddt = {"d", (snlvk_st_dtype)99, 1, {4}, v};
    check_fail(snlvk_st_write(path, &baddt, 1, NULL, 0), SNLVK_E_INVALID, "write errors: unknown dtype", path,
               "tensor 'd': unknown dtype 99", NULL);
    snlvk_st_entry baddims = {"m", SNLVK_ST_F32, 17, {4}, v};
    check_fail(snlvk_st_write(path, &baddims, 1, NULL, 0), SNLVK_E_INVALID, "write errors: 17 dims", path, "dimensions",
               NULL);
    snlvk_st_entry ovf = {"o", SNLVK_ST_F64, 3, {1ull << 32, 1ull << 32, 1ull << 4}, v};
    check_fail(snlvk_st_write(path, &ovf, 1, NULL, 0), SNLVK_E_INVALID, "write errors: size overflow", path, "overflows",
               NULL);
    snlvk_st_meta md[2] = {{"k", "1"}, {"k", "2"}};
    check_fail(snlvk_st_write(path, &good, 1, md, 2), SNLVK_E_INVALID, "write errors: duplicate metadata", path,
               "metadata key 'k' appears twice", NULL);
    snlvk_st_meta mbad = {"k", "\xc3"};
    check_fail(snlvk_st_write(path, &good, 1, &mbad, 1), SNLVK_E_INVALID, "write errors: metadata not UTF-8", path,
               "not valid UTF-8", NULL);
    check_fail(snlvk_st_write(P("no-such-dir/x.safetensors"), &good, 1, NULL, 0), SNLVK_E_IO,
               "write errors: directory does not exist", "no-such-dir/x.safetensors", "No such file", NULL);

    /* the disk fills up mid-write (RLIMIT_FSIZE): the old file stays, no temp file */
    static float bigbuf[1 << 18]; /* 1 MiB */
    snlvk_st_entry big = {"big", SNLVK_ST_F32, 1, {1 << 18}, bigbuf};
    struct rlimit old_lim, lim;
    getrlimit(RLIMIT_FSIZE, &old_lim);
    lim = old_lim;
    lim.rlim_cur = 64 * 1024;
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        snlvk_status s = snlvk_st_write(path, &big, 1, NULL, 0);
        setrlimit(RLIMIT_FSIZE, &old_lim);
        check_fail(s, SNLVK_E_IO, "write errors: disk full mid-write", path, "File too large", NULL);
    } else
        printf("SKIP disk-full simulation: setrlimit(RLIMIT_FSIZE) failed: %s\n", strerror(errno));
    signal(SIGXFSZ, old_sig);

    size_t now_len;
    char *now = read_all(path, &now_len);
    check(old && now && now_len == old_len && memcmp(old, now, old_len) == 0,
          "write errors: the old file is untouched after every failure");
    free(old);
    free(now);
    check(temp_files_in(tmp_root) == 0, "write errors: no temporary file left behind");
}

/* ------------------------------------------------------------------ PyTorch interop */

static const char *py_check =
    "import json, struct, sys, torch\n"
    "buf = open(sys.argv[1], 'rb').read()\n"
    "n = struct.unpack('<Q', buf[:8])[0]\n"
    "assert n % 8 == 0, n\n"
    "hdr = json.loads(buf[8:8 + n].decode('utf-8'))\n"
    "meta = hdr.pop('__metadata__')\n"
    "assert meta == {'epoch': '7', 'note': 'h\\u00e9llo \"q\"\\n', 'format': 'pt', 'empty': ''}, meta\n"
    "data = buf[8 + n:]\n"
    "DT = {'F32': torch.float32, 'F64': torch.float64, 'F16': torch.float16, 'BF16': torch.bfloat16,\n"
    "      'I64': torch.int64, 'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8,\n"
    "      'BOOL': torch.bool}\n"
    "def get(name):\n"
    "    e = hdr[name]; b, end = e['data_offsets']\n"
    "    if end == b: return torch.empty(e['shape'], dtype=DT[e['dtype']])\n"
    "    return torch.frombuffer(bytearray(data[b:end]), dtype=DT[e['dtype']]).reshape(e['shape'])\n"
    "i = torch.arange(24, dtype=torch.float64)\n"
    "il = torch.arange(24, dtype=torch.int64)\n"
    "checks = {\n"
    "  'f32': (i * 0.5 - 3).float().reshape(2, 3, 4),\n"
    "  'f64': (i / 3.0).reshape(4, 6),\n"
    "  'f16': (i * 0.25 - 1).half(),\n"
    "  'bf16': (i * 0.5 - 3).bfloat16().reshape(6, 4),\n"
    "  'i64': ((il - 3) * 3000000000).reshape(2, 3, 4),\n"
    "  'i32': (il * -7).int().reshape(4, 6),\n"
    "  'i16': (il * 1000 - 5000).short(),\n"
    "  'i8': (il - 5).to(torch.int8).reshape(6, 4),\n"
    "  'u8': (il * 10).to(torch.uint8).reshape(6, 4),\n"
    "  'bool': (il % 3 == 0).reshape(2, 3, 4),\n"
    "  'layer1.0.scalar': torch.tensor(2.5),\n"
    "  'empty': torch.empty(0, 3, dtype=torch.int64),\n"
    "}\n"
    "for k, want in checks.items():\n"
    "    got = get(k)\n"
    "    assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want), (k, got, want)\n"
    "print('python: all', len(checks), 'tensors match')\n";

static const char *py_write =
    "import json, struct, sys, torch\n"
    "t = {'conv.weight': (torch.arange(24, dtype=torch.float32) / 7).reshape(2, 3, 2, 2),\n"
    "     'bn.num_batches_tracked': torch.tensor(123456789012, dtype=torch.int64),\n"
    "     'mask': (torch.arange(10) % 2 == 0).reshape(1, 10),\n"
    "     'half': torch.tensor([1.5, -2.25, 0.0], dtype=torch.float16),\n"
    "     'double': torch.tensor([[1 / 3]], dtype=torch.float64),\n"
    "     'bytes': torch.arange(5, dtype=torch.uint8) * 50,\n"
    "     'ints': torch.tensor([-1, 2 ** 31 - 1], dtype=torch.int32)}\n"
    "name = {torch.float32: 'F32', torch.int64: 'I64', torch.bool: 'BOOL', torch.float16: 'F16',\n"
    "        torch.float64: 'F64', torch.uint8: 'U8', torch.int32: 'I32'}\n"
    "hdr = {'__metadata__': {'format': 'pt', 'arch': 'resnet18'}}\n"
    "off, blobs = 0, []\n"
    "for k in sorted(t):\n"
    "    b = t[k].contiguous().numpy().tobytes()\n"
    "    hdr[k] = {'dtype': name[t[k].dtype], 'shape': list(t[k].shape), 'data_offsets': [off, off + len(b)]}\n"
    "    off += len(b); blobs.append(b)\n"
    "h = json.dumps(hdr, separators=(',', ':')).encode()\n"
    "h += b' ' * ((8 - len(h) % 8) % 8)\n"
    "open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))\n";

static int run_python(const char *script_path, const char *script, const char *arg)
{
    write_file(script_path, script, strlen(script));
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", script_path, arg);
    fflush(stdout);
    int rc = system(cmd);
    return rc == 0;
}

static void test_torch_interop(void)
{
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0) {
        printf("SKIP PyTorch interop: /usr/bin/python3 cannot import torch\n");
        return;
    }
    st_data d;
    fill_data(&d);
    snlvk_st_entry e[SNLVK_ST_DTYPE_COUNT + 2];
    size_t n = make_entries(&d, e);
    const char *path = P("to_torch.safetensors");
    check_ok(snlvk_st_write(path, e, n, test_meta, 4), "torch: C writes every dtype");
    check(run_python(P("check.py"), py_check, path), "torch: Python (struct + json + torch.frombuffer) reads the C file");

    const char *from = P("from_torch.safetensors");
    if (!check(run_python(P("write.py"), py_write, from), "torch: Python writes a file")) return;
    snlvk_st st;
    if (!check_ok(snlvk_st_read(from, &st), "torch: C reads the Python file")) return;
    const snlvk_st_tensor *t;
    int ok = snlvk_st_get(&st, "conv.weight", SNLVK_ST_F32, 4, (uint64_t[]){2, 3, 2, 2}, &t) == SNLVK_OK;
    float f[24];
    ok = ok && snlvk_st_copy(&st, t, f, sizeof f) == SNLVK_OK;
    for (int i = 0; ok && i < 24; i++) ok = f[i] == (float)i / 7.0f;
    check(ok, "torch: conv.weight F32 [2,3,2,2] == arange/7");
    int64_t nb = 0;
    ok = snlvk_st_get(&st, "bn.num_batches_tracked", SNLVK_ST_I64, 0, NULL, &t) == SNLVK_OK &&
         snlvk_st_copy(&st, t, &nb, 8) == SNLVK_OK && nb == 123456789012LL;
    check(ok, "torch: I64 scalar num_batches_tracked");
    ok = snlvk_st_get(&st, "mask", SNLVK_ST_BOOL, 2, (uint64_t[]){1, 10}, &t) == SNLVK_OK;
    for (int i = 0; ok && i < 10; i++) ok = ((const uint8_t *)t->data)[i] == (i % 2 == 0);
    check(ok, "torch: BOOL mask [1,10]");
    uint16_t h[3];
    ok = snlvk_st_get(&st, "half", SNLVK_ST_F16, 1, (uint64_t[]){3}, &t) == SNLVK_OK &&
         snlvk_st_copy(&st, t, h, sizeof h) == SNLVK_OK && h2f(h[0]) == 1.5f && h2f(h[1]) == -2.25f && h2f(h[2]) == 0;
    check(ok, "torch: F16 values");
    double dd = 0;
    ok = snlvk_st_get(&st, "double", SNLVK_ST_F64, 2, (uint64_t[]){1, 1}, &t) == SNLVK_OK &&
         snlvk_st_copy(&st, t, &dd, 8) == SNLVK_OK && dd == 1.0 / 3.0;
    check(ok, "torch: F64 1/3 exact");
    ok = snlvk_st_get(&st, "bytes", SNLVK_ST_U8, 1, (uint64_t[]){5}, &t) == SNLVK_OK;
    for (int i = 0; ok && i < 5; i++) ok = ((const uint8_t *)t->data)[i] == i * 50;
    check(ok, "torch: U8 values");
    int32_t ints[2];
    ok = snlvk_st_get(&st, "ints", SNLVK_ST_I32, 1, (uint64_t[]){2}, &t) == SNLVK_OK &&
         snlvk_st_copy(&st, t, ints, sizeof ints) == SNLVK_OK && ints[0] == -1 && ints[1] == INT32_MAX;
    check(ok, "torch: I32 values");
    const char *fmt = snlvk_st_meta_get(&st, "format"), *arch = snlvk_st_meta_get(&st, "arch");
    check(fmt && arch && strcmp(fmt, "pt") == 0 && strcmp(arch, "resnet18") == 0, "torch: metadata");
    snlvk_st_free(&st);
}

/* ------------------------------------------------------------------ SVG */

static int svg_well_formed(const char *text, size_t len, const char **names, int n_names)
{
    if (!text || len < 12 || strncmp(text, "<svg", 4) != 0) return 0;
    size_t end = len;
    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == ' ')) end--;
    if (end < 6 || strncmp(text + end - 6, "</svg>", 6) != 0) return 0;
    for (int k = 0; k < n_names; k++)
        if (!strstr(text, names[k])) return 0;
    /* balanced tags: every <x ...> without "/>" has a </x> */
    int depth = 0;
    for (const char *p = text; (p = strchr(p, '<')) != NULL; p++) {
        if (p[1] == '/') depth--;
        else {
            const char *gt = strchr(p, '>');
            if (!gt) return 0;
            if (gt[-1] != '/') depth++;
        }
        if (depth < 0) return 0;
    }
    static const char *bad[] = {"\"nan", "\"-nan", "\"inf", "\"-inf", ">nan<", ">inf<", ">-inf<", ",nan", ",inf"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
        if (strstr(text, bad[k])) return 0;
    return depth == 0;
}

static void test_svg(void)
{
    double x1[6] = {15000, 30000, 50000, 80000, 120000, 180000};
    double y1[6] = {0.78, 0.84, 0.88, 0.905, 0.92, 0.93};
    double x2[6] = {15000, 30000, 50000, 80000, 120000, 180000};
    double y2[6] = {0.42, 0.55, 0.66, 0.74, NAN, 0.85};
    snlvk_svg_series s[3] = {
        {"SNL <pixel>", x1, y1, 6, SNLVK_SVG_LINE_MARKERS, NULL, 0},
        {"random & masks", x2, y2, 6, SNLVK_SVG_LINE, NULL, 1},
        {"scatter", x1, y2, 6, SNLVK_SVG_MARKERS, "#000000", 0},
    };
    snlvk_svg_plot p;
    memset(&p, 0, sizeof p);
    p.title = "resnet18 on CIFAR-100: accuracy against ReLUs";
    p.x_label = "ReLU count (log scale)";
    p.y_label = "test accuracy";
    p.log_x = 1;
    p.series = s;
    p.n_series = 3;
    const char *path = P("plot.svg");
    check_ok(snlvk_svg_write(path, &p), "svg: write a log-x plot");
    size_t len;
    char *text = read_all(path, &len);
    const char *names[] = {"SNL &lt;pixel&gt;", "random &amp; masks", "scatter", "accuracy against ReLUs",
                           "ReLU count (log scale)", "test accuracy", ">20k<", ">100k<"};
    check(svg_well_formed(text, len, names, 8), "svg: well-formed, names escaped, 20k/100k log ticks");
    free(text);

    /* linear axes, a single point, empty series, a fixed range, a log-y axis */
    double one_x = 3, one_y = 3;
    snlvk_svg_series single = {"only", &one_x, &one_y, 1, SNLVK_SVG_LINE_MARKERS, NULL, 0};
    snlvk_svg_series empty = {"none", NULL, NULL, 0, SNLVK_SVG_LINE, NULL, 0};
    snlvk_svg_series both[2] = {single, empty};
    memset(&p, 0, sizeof p);
    p.series = both;
    p.n_series = 2;
    char *out;
    check_ok(snlvk_svg_render(&p, &out, &len), "svg: one point and an empty series, no titles");
    const char *nm2[] = {"only", "none"};
    check(svg_well_formed(out, len, nm2, 2), "svg: still well-formed");
    free(out);
    p.n_series = 0;
    check_ok(snlvk_svg_render(&p, &out, &len), "svg: no series at all");
    check(svg_well_formed(out, len, NULL, 0), "svg: empty plot well-formed");
    free(out);
    double lx[4] = {0.001, 0.01, 0.1, 1}, ly[4] = {1e-6, 1e-3, 1, 1e3};
    snlvk_svg_series ls = {"loss", lx, ly, 4, SNLVK_SVG_LINE_MARKERS, NULL, 0};
    memset(&p, 0, sizeof p);
    p.series = &ls;
    p.n_series = 1;
    p.log_x = p.log_y = 1;
    p.fixed_x = 1;
    p.x_min = 0.005;
    p.x_max = 0.5;
    check_ok(snlvk_svg_render(&p, &out, &len), "svg: log-log with a fixed x range");
    const char *nm3[] = {"loss", ">0.01<", ">0.1<", "clip-path"};
    check(svg_well_formed(out, len, nm3, 4), "svg: log ticks 0.01 and 0.1, data clipped");
    free(out);
    double cx[3] = {0, 1, 2}, cy[3] = {-1.5, 0, 1.5};
    snlvk_svg_series lin = {"lin", cx, cy, 3, SNLVK_SVG_LINE_MARKERS, NULL, 0};
    memset(&p, 0, sizeof p);
    p.series = &lin;
    p.n_series = 1;
    check_ok(snlvk_svg_render(&p, &out, &len), "svg: linear axes");
    const char *nm4[] = {">-1.5<", ">0.0<", ">1.5<", ">2.0<"};
    check(svg_well_formed(out, len, nm4, 4), "svg: round linear ticks -1.5, 0.0, 1.5, 2.0");
    free(out);

    p.fixed_y = 1;
    p.y_min = 1;
    p.y_max = 1;
    check_fail(snlvk_svg_render(&p, &out, &len), SNLVK_E_INVALID, "svg: empty fixed range", "fixed y range", NULL, NULL);
    p.fixed_y = 0;
    snlvk_svg_series broken = {"broken", NULL, cy, 3, SNLVK_SVG_LINE, NULL, 0};
    p.series = &broken;
    check_fail(snlvk_svg_render(&p, &out, &len), SNLVK_E_INVALID, "svg: series without x", "'broken'", NULL, NULL);
    p.series = &lin;
    check_fail(snlvk_svg_write(P("nodir/plot.svg"), &p), SNLVK_E_IO, "svg: missing directory", "nodir/plot.svg", NULL,
               NULL);
    check(temp_files_in(tmp_root) == 0, "svg: no temporary file left behind");
}

int main(void)
{
    check_tmp_init("snlvk_test_io");
    test_strbuf();
    test_json_values();
    test_json_malformed();
    test_json_limits();
    test_json_file();
    test_json_writer();
    test_jsonl();
    test_atomic();
    test_st_roundtrip();
    test_st_corrupt();
    test_st_write_errors();
    test_torch_interop();
    test_svg();
    return check_finish();
}
