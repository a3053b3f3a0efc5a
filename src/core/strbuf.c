#include "core/strbuf.h"

#include <locale.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int snlvk_sb_reserve(snlvk_strbuf *b, size_t n)
{
    if (b->oom) return 0;
    if (n > SIZE_MAX - b->n - 1) {
        b->oom = 1;
        return 0;
    }
    size_t need = b->n + n + 1;
    if (need <= b->cap) return 1;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < need) nc = nc > SIZE_MAX / 2 ? need : nc * 2;
    char *ns = realloc(b->s, nc);
    if (!ns) {
        b->oom = 1;
        return 0;
    }
    b->s = ns;
    b->cap = nc;
    return 1;
}

void snlvk_sb_put(snlvk_strbuf *b, const char *s, size_t n)
{
    if (!snlvk_sb_reserve(b, n)) return;
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void snlvk_sb_puts(snlvk_strbuf *b, const char *s) { snlvk_sb_put(b, s, strlen(s)); }

void snlvk_sb_printf(snlvk_strbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    /* First into the room that is left (none before the first append), then, when the
     * text did not fit, again into enough room. */
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = 1;
        return;
    }
    if (!b->s || b->n + (size_t)k >= b->cap) {
        if (!snlvk_sb_reserve(b, (size_t)k)) {
            if (b->s) b->s[b->n] = '\0'; /* the first try may have written past it */
            return;
        }
        va_start(ap, fmt);
        vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)k;
}

void snlvk_snprintf_c(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    const char *dp = localeconv()->decimal_point;
    if (!size || !dp || !dp[0] || (dp[0] == '.' && !dp[1])) return;
    char *hit = strstr(buf, dp);
    if (!hit) return;
    size_t dpl = strlen(dp);
    *hit = '.';
    memmove(hit + 1, hit + dpl, strlen(hit + dpl) + 1);
}

void snlvk_sb_clear(snlvk_strbuf *b)
{
    b->n = 0;
    b->oom = 0;
    if (b->s) b->s[0] = '\0';
}

void snlvk_sb_free(snlvk_strbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->n = b->cap = 0;
    b->oom = 0;
}
