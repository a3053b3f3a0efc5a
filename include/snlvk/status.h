/* snlvk: status codes and error messages shared by every part of the library. */
#ifndef SNLVK_STATUS_H
#define SNLVK_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum snlvk_status {
    SNLVK_OK = 0,
    SNLVK_E_INVALID = 1,     /* bad argument or bad input data (file, field, value) */
    SNLVK_E_IO = 2,          /* a file could not be opened, read or written */
    SNLVK_E_NO_LOADER = 3,   /* the Vulkan loader (libvulkan.so.1) is missing */
    SNLVK_E_NO_DEVICE = 4,   /* no Vulkan device, or the requested one does not exist */
    SNLVK_E_VULKAN = 5,      /* any other failed Vulkan call */
    SNLVK_E_OOM = 6,         /* host or device out of memory */
    SNLVK_E_DEVICE_LOST = 7, /* VK_ERROR_DEVICE_LOST */
    SNLVK_E_UNSUPPORTED = 8, /* the device lacks a feature this needs */
    SNLVK_E_NONFINITE = 9    /* a loss or value became NaN or infinite */
} snlvk_status;

/* The message of the last error set on this thread ("" if none). */
const char *snlvk_last_error(void);
/* The name of a status code, e.g. "SNLVK_E_IO". */
const char *snlvk_status_name(snlvk_status s);

#ifdef __cplusplus
}
#endif
#endif
