/* safetensors files (the format of the Python `safetensors` library): an 8-byte
 * little-endian header length N, N bytes of JSON {"name": {"dtype", "shape",
 * "data_offsets"}, "__metadata__": {string: string}}, then the raw little-endian data.
 * The reader validates everything and names the file, the tensor and the field in its
 * errors; the writer is atomic (temp file, fsync, rename). */
#ifndef SNLVK_IO_TENSORFILE_H
#define SNLVK_IO_TENSORFILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum tf_dtype { TF_F32, TF_F64, TF_I64, TF_I32, TF_U8, TF_BOOL, TF_F16 } tf_dtype;

#define TF_MAX_DIMS 8

typedef struct tf_tensor {
    char *name;
    tf_dtype dtype;
    int ndim;
    uint64_t shape[TF_MAX_DIMS];
    uint64_t numel;
    const void *data;       /* reading: points into the file's bytes; writing: the caller's */
    uint64_t bytes;
} tf_tensor;

typedef struct tf_file {
    char path[1024];
    unsigned char *raw;     /* the whole file */
    size_t size;
    tf_tensor *tensors;
    int n;
    char **meta_keys, **meta_values;
    int n_meta;
} tf_file;

size_t tf_dtype_size(tf_dtype d);
const char *tf_dtype_name(tf_dtype d);

snlvk_status tf_read(const char *path, tf_file *out);
void tf_free(tf_file *f);
const tf_tensor *tf_find(const tf_file *f, const char *name);
const char *tf_meta(const tf_file *f, const char *key);

/* Writes the tensors (in the order given) and string metadata atomically. */
snlvk_status tf_write(const char *path, const tf_tensor *tensors, int n, const char *const *meta_keys,
                      const char *const *meta_values, int n_meta);
#endif
