/* Checkpoints: safetensors with the reference's PyTorch state_dict names (parameters,
 * BN running statistics, num_batches_tracked as int64, masks as (1,C,H,W) or (1,C,1,1)),
 * optionally the optimiser state ("optim.<name>.0/1") and string metadata (epoch, seed,
 * ...), written atomically. */
#ifndef SNLVK_NN_CHECKPOINT_H
#define SNLVK_NN_CHECKPOINT_H

#include "nn/model.h"

#define CKPT_MAX_META 32

typedef struct ckpt_meta {
    int n;
    char key[CKPT_MAX_META][48];
    char value[CKPT_MAX_META][256];
} ckpt_meta;

void ckpt_meta_set(ckpt_meta *m, const char *key, const char *fmt, ...) SNLVK_PRINTF(3, 4);
const char *ckpt_meta_get(const ckpt_meta *m, const char *key);
/* Starts a checkpoint's metadata with what every snlvk checkpoint carries: format, arch,
 * dataset, granularity and the stage that wrote it (snlvk eval sizes its model from it). */
void ckpt_meta_begin(ckpt_meta *meta, const nn_model *m, const char *dataset, const char *stage);

/* with_optim: also the optimiser state of every parameter (for --resume). */
snlvk_status ckpt_save(nn_model *m, const char *path, const ckpt_meta *meta, int with_optim);
/* Loads every tensor of the model from `path` (names and shapes must match; a checkpoint
 * of another model names the first mismatch). Optimiser state is loaded when present
 * and `with_optim`. Metadata goes to *meta when not NULL. */
snlvk_status ckpt_load(nn_model *m, const char *path, ckpt_meta *meta, int with_optim);
/* Reads only the metadata and a tensor's shape (to size a model before loading). */
snlvk_status ckpt_peek(const char *path, ckpt_meta *meta, const char *tensor, int *ndim, uint32_t shape[4]);
#endif
