/* safetensors files, byte-compatible with the Python `safetensors` library:
 *     8 bytes  N, little-endian unsigned header length
 *     N bytes  JSON header {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
 *              ..., "__metadata__": {"key": "value", ...}}, padded with spaces to a multiple of 8
 *     data     tensors, row-major, little-endian; offsets relative to the data start
 *
 * The reader validates everything (header length against the file size, the JSON, each
 * tensor's dtype, shape and offsets, shape x dtype size == end - begin, offsets inside the
 * data, no two tensors overlapping; gaps are allowed) and its messages name the file, the
 * tensor and the field:
 *     model.safetensors: tensor 'layer1.0.conv1.weight': field 'data_offsets': end 1234 is past the data (1000 bytes)
 * The writer writes atomically (temp file + fsync + rename, see io/atomic_file.h), the
 * tensors in the order given, with a compact header like Python's.
 * Little-endian hosts only (others get SNLVK_E_UNSUPPORTED). Nothing prints or exits. */
#ifndef SNLVK_IO_SAFETENSORS_H
#define SNLVK_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/json.h"

typedef enum snlvk_st_dtype {
    SNLVK_ST_F32 = 0,
    SNLVK_ST_F64,
    SNLVK_ST_F16,
    SNLVK_ST_BF16,
    SNLVK_ST_I64,
    SNLVK_ST_I32,
    SNLVK_ST_I16,
    SNLVK_ST_I8,
    SNLVK_ST_U64,
    SNLVK_ST_U32,
    SNLVK_ST_U16,
    SNLVK_ST_U8,
    SNLVK_ST_BOOL,
    SNLVK_ST_F8_E4M3,
    SNLVK_ST_F8_E5M2,
    SNLVK_ST_DTYPE_COUNT
} snlvk_st_dtype;

/* More dimensions than this are rejected (by the reader with a message). */
#define SNLVK_ST_MAX_DIMS 16
/* The Python library's limit on the header length, which the reader applies too. */
#define SNLVK_ST_MAX_HEADER 100000000u

const char *snlvk_st_dtype_name(snlvk_st_dtype d); /* "F32", ...; "?" if out of range */
size_t snlvk_st_dtype_size(snlvk_st_dtype d);      /* bytes per element; 0 if out of range */
/* 1 and *out on a known name ("F32", "BOOL", ...), else 0. */
int snlvk_st_dtype_parse(const char *name, snlvk_st_dtype *out);
/* "[64, 3, 3, 3]" into buf (truncated to size); returns buf. */
char *snlvk_st_shape_str(const uint64_t *shape, int ndim, char *buf, size_t size);

/* ---------------------------------------------------------------- reading */

typedef struct snlvk_st_tensor {
    const char *name;
    snlvk_st_dtype dtype;
    int ndim;
    uint64_t shape[SNLVK_ST_MAX_DIMS];
    uint64_t numel;
    uint64_t nbytes;
    uint64_t begin, end; /* data_offsets, relative to the data start */
    /* The bytes, inside the reader's buffer. The data start is 16-byte aligned, so this is
     * aligned to the element size when `begin` is a multiple of it (always so in files
     * written with tensors ordered by decreasing element size, like Python's); otherwise
     * read it with memcpy or snlvk_st_copy. */
    const void *data;
} snlvk_st_tensor;

typedef struct snlvk_st_meta {
    const char *key;
    const char *value;
} snlvk_st_meta;

typedef struct snlvk_st {
    char *path;                /* as given to snlvk_st_read (the name for snlvk_st_parse) */
    size_t n_tensors;
    snlvk_st_tensor *tensors;  /* in header order */
    size_t n_meta;
    snlvk_st_meta *meta;       /* "__metadata__" in header order */
    uint64_t header_len;       /* N */
    uint64_t data_size;        /* bytes after the header */
    /* private */
    unsigned char *data_;
    snlvk_json *header_;
    snlvk_st_tensor **by_name_;
} snlvk_st;

/* Reads and validates a whole file into memory. On failure *st is zeroed (freeing it is
 * still fine). SNLVK_E_IO: cannot open/read; SNLVK_E_INVALID: bad contents;
 * SNLVK_E_OOM. */
snlvk_status snlvk_st_read(const char *path, snlvk_st *st);
/* The same from a buffer holding a whole file; `name` is used in messages. The data are
 * copied, so `buf` may be freed afterwards. */
snlvk_status snlvk_st_parse(const void *buf, size_t len, const char *name, snlvk_st *st);
void snlvk_st_free(snlvk_st *st);

/* The tensor called `name`, or NULL. */
const snlvk_st_tensor *snlvk_st_find(const snlvk_st *st, const char *name);
/* The tensor called `name`, checked: it must exist, have `dtype`, and (when ndim >= 0)
 * have exactly `shape`. Messages:
 *     "ck.safetensors: tensor 'fc.weight': missing"
 *     "ck.safetensors: tensor 'fc.weight': field 'dtype': expected F32, got F16"
 *     "ck.safetensors: tensor 'fc.weight': field 'shape': expected [10, 512], got [100, 512]" */
snlvk_status snlvk_st_get(const snlvk_st *st, const char *name, snlvk_st_dtype dtype, int ndim, const uint64_t *shape,
                          const snlvk_st_tensor **out);
/* Copies a tensor's bytes to dst, which must hold exactly t->nbytes (dst_bytes). */
snlvk_status snlvk_st_copy(const snlvk_st *st, const snlvk_st_tensor *t, void *dst, size_t dst_bytes);
/* A metadata value, or NULL. */
const char *snlvk_st_meta_get(const snlvk_st *st, const char *key);

/* ---------------------------------------------------------------- writing */

typedef struct snlvk_st_entry {
    const char *name;
    snlvk_st_dtype dtype;
    int ndim;                          /* 0 (a scalar) .. SNLVK_ST_MAX_DIMS */
    uint64_t shape[SNLVK_ST_MAX_DIMS];
    const void *data;                  /* numel x dtype size bytes, little-endian (may be NULL if 0) */
} snlvk_st_entry;

/* Validates the entries (names: valid UTF-8, unique, not "__metadata__"; known dtypes;
 * at most SNLVK_ST_MAX_DIMS dimensions; sizes without overflow; data not NULL unless
 * empty; metadata keys unique, keys and values valid UTF-8) before touching the disk, then writes `path`
 * atomically. On failure nothing is written, no temporary file is left and an existing
 * `path` is untouched. */
snlvk_status snlvk_st_write(const char *path, const snlvk_st_entry *tensors, size_t n_tensors,
                            const snlvk_st_meta *meta, size_t n_meta);

/* A list built one tensor at a time. Names, shapes and metadata are copied; tensor data
 * are borrowed (they must stay valid until the write) unless added with _add_copy. */
typedef struct snlvk_st_builder {
    snlvk_st_entry *t;
    void **owned; /* per tensor: the copy made by _add_copy, or NULL */
    size_t n, cap;
    snlvk_st_meta *meta;
    size_t n_meta, cap_meta;
} snlvk_st_builder;

void snlvk_st_builder_init(snlvk_st_builder *b);
snlvk_status snlvk_st_builder_add(snlvk_st_builder *b, const char *name, snlvk_st_dtype dtype, int ndim,
                                  const uint64_t *shape, const void *data);
snlvk_status snlvk_st_builder_add_copy(snlvk_st_builder *b, const char *name, snlvk_st_dtype dtype, int ndim,
                                       const uint64_t *shape, const void *data);
/* Sets (or replaces) a metadata entry. */
snlvk_status snlvk_st_builder_meta(snlvk_st_builder *b, const char *key, const char *value);
snlvk_status snlvk_st_builder_write(const snlvk_st_builder *b, const char *path);
void snlvk_st_builder_free(snlvk_st_builder *b);

#endif
