/* Internal error helpers: every library function returns a snlvk_status and, on
 * failure, leaves a message for the caller; nothing in the library prints or exits. */
#ifndef SNLVK_CORE_ERROR_H
#define SNLVK_CORE_ERROR_H

#include "snlvk/status.h"

#if defined(__GNUC__)
#define SNLVK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define SNLVK_PRINTF(a, b)
#endif

/* Set this thread's error message and return `s`, so callers can write
 *     return snlvk_fail(SNLVK_E_INVALID, "%s: field 'x': expected ...", path); */
snlvk_status snlvk_fail(snlvk_status s, const char *fmt, ...) SNLVK_PRINTF(2, 3);
/* Prefix the current message with more context ("while loading X: <old message>"). */
snlvk_status snlvk_fail_context(snlvk_status s, const char *fmt, ...) SNLVK_PRINTF(2, 3);
void snlvk_clear_error(void);

#define SNLVK_TRY(expr)                     \
    do {                                    \
        snlvk_status try_s_ = (expr);       \
        if (try_s_ != SNLVK_OK) return try_s_; \
    } while (0)

#endif
