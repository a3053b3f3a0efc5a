/* A growable text buffer for building a document in memory (JSON, SVG, a safetensors
 * header). Start from a zeroed one (snlvk_strbuf b = {0}); appends never fail: running out
 * of memory (or a size that would overflow) sets `oom`, after which appends do nothing, so
 * the caller checks `oom` once at the end. After any append that succeeded, s[n] is '\0';
 * s stays NULL until the first one. The caller owns s (snlvk_sb_free, or take s and free
 * it later). */
#ifndef SNLVK_CORE_STRBUF_H
#define SNLVK_CORE_STRBUF_H

#include <stddef.h>

#include "core/error.h"

typedef struct snlvk_strbuf {
    char *s;
    size_t n, cap; /* bytes written (without the NUL), bytes allocated */
    int oom;
} snlvk_strbuf;

/* Makes room for n more bytes and the NUL; 1 on success, 0 (and oom set) if not. The
 * caller may then write up to n bytes at s + n itself, add them to n and store the NUL. */
int snlvk_sb_reserve(snlvk_strbuf *b, size_t n);
/* Appends n bytes of s. */
void snlvk_sb_put(snlvk_strbuf *b, const char *s, size_t n);
/* Appends the NUL-terminated s. */
void snlvk_sb_puts(snlvk_strbuf *b, const char *s);
/* Appends printf output (in the C locale's format: callers that need '.' as the decimal
 * point whatever the locale format their numbers themselves). */
void snlvk_sb_printf(snlvk_strbuf *b, const char *fmt, ...) SNLVK_PRINTF(2, 3);
/* snprintf into a caller buffer that writes '.' as the decimal point whatever the C
 * locale (for numbers in JSON and SVG; a locale with a decimal comma must not break them). */
void snlvk_snprintf_c(char *buf, size_t size, const char *fmt, ...) SNLVK_PRINTF(3, 4);
/* Empties the buffer and clears oom, keeping the memory. */
void snlvk_sb_clear(snlvk_strbuf *b);
/* Frees the memory and zeroes the buffer. */
void snlvk_sb_free(snlvk_strbuf *b);

#endif
