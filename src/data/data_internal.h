/* Helpers shared by the dataset readers (not part of any public header). */
#ifndef SNLVK_DATA_INTERNAL_H
#define SNLVK_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <zlib.h>

#include "core/error.h"
#include "data/dataset.h"

#define DATA_PATH_MAX 4096

/* dst = a "/" b; fails (SNLVK_E_INVALID, naming a) if it does not fit in DATA_PATH_MAX. */
snlvk_status data_join(char *dst, const char *a, const char *b);
int data_is_dir(const char *path);
int data_is_file(const char *path);
/* SNLVK_E_IO naming `path` unless it is an existing directory. */
snlvk_status data_require_dir(const char *path, const char *what);

/* Appends a warning (kept up to SNLVK_DATASET_MAX_WARNINGS; OOM is reported). */
snlvk_status data_warn(snlvk_dataset *d, const char *fmt, ...) SNLVK_PRINTF(2, 3);

/* Reads a whole file, gzip-compressed or not (zlib decides by the content), into a malloc'd
 * buffer of at most max_bytes. Corrupt gzip data is SNLVK_E_INVALID, naming the file. */
snlvk_status data_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len);

/* Reads exactly n bytes of `field` from an open (gz or plain) file; a short read or corrupt
 * data is SNLVK_E_INVALID naming path and field. */
snlvk_status data_gz_exact(gzFile f, const char *path, const char *field, void *dst, size_t n);
/* After the last expected byte: fails if the file holds more data, or if the gzip trailer
 * (CRC, length) is missing or wrong. `expected` is only used in the message. */
snlvk_status data_gz_expect_end(gzFile f, const char *path, size_t expected);
/* Opens for reading; SNLVK_E_IO naming path when that fails. */
snlvk_status data_gz_open(const char *path, gzFile *out);

/* A sorted list of malloc'd names. */
typedef struct data_names {
    char **v;
    int n, cap;
} data_names;
snlvk_status data_names_push(data_names *l, const char *s);
void data_names_sort(data_names *l);
void data_names_free(data_names *l);
/* Entries of a directory except "." ".." and hidden ones, sorted; dirs_only: 1 directories,
 * 0 regular files, -1 both. */
snlvk_status data_list_dir(const char *dir, int dirs_only, data_names *out);

/* *out = a * b; 0 on overflow. */
static inline int data_checked_mul(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

snlvk_status data_load_idx(const char *kind, const char *root, int train, long limit, snlvk_dataset *d);
snlvk_status data_load_cifar(int hundred, const char *root, int train, long limit, snlvk_dataset *d);
snlvk_status data_load_imagefolder(const char *root, int train, long limit, int image_size, snlvk_dataset *d);
snlvk_status data_load_tinyimagenet(const char *root, int train, long limit, int image_size, snlvk_dataset *d);

#endif
