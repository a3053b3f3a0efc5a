#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

const char *snlvk_last_error(void) { return last_error; }

void snlvk_clear_error(void) { last_error[0] = '\0'; }

snlvk_status snlvk_fail(snlvk_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return s;
}

snlvk_status snlvk_fail_context(snlvk_status s, const char *fmt, ...)
{
    char old[sizeof last_error];
    memcpy(old, last_error, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    if (old[0] != '\0') {
        size_t n = strlen(last_error);
        size_t room = sizeof last_error - 1 - n;
        size_t add = strlen(old) + 2;
        if (add > room) add = room;
        char joined[sizeof last_error + 2] = ": ";
        memcpy(joined + 2, old, sizeof old);
        memcpy(last_error + n, joined, add);
        last_error[n + add] = '\0';
    }
    return s;
}

const char *snlvk_status_name(snlvk_status s)
{
    switch (s) {
    case SNLVK_OK: return "SNLVK_OK";
    case SNLVK_E_INVALID: return "SNLVK_E_INVALID";
    case SNLVK_E_IO: return "SNLVK_E_IO";
    case SNLVK_E_NO_LOADER: return "SNLVK_E_NO_LOADER";
    case SNLVK_E_NO_DEVICE: return "SNLVK_E_NO_DEVICE";
    case SNLVK_E_VULKAN: return "SNLVK_E_VULKAN";
    case SNLVK_E_OOM: return "SNLVK_E_OOM";
    case SNLVK_E_DEVICE_LOST: return "SNLVK_E_DEVICE_LOST";
    case SNLVK_E_UNSUPPORTED: return "SNLVK_E_UNSUPPORTED";
    case SNLVK_E_NONFINITE: return "SNLVK_E_NONFINITE";
    }
    return "SNLVK_E_UNKNOWN";
}
