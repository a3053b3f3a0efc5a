/* Dataset readers (IDX, CIFAR binary, image folders, Tiny-ImageNet) and the batch loader.
 * Plain C11 + pthreads; nothing here touches Vulkan. Every function returns a snlvk_status
 * and, on failure, leaves a message naming the file, the field and what was expected. */
#ifndef SNLVK_DATA_DATASET_H
#define SNLVK_DATA_DATASET_H

#include <stdint.h>

#include "snlvk/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* At most this many warnings are kept (skipped counts every skipped image). */
#define SNLVK_DATASET_MAX_WARNINGS 64

typedef struct snlvk_dataset {
    char name[32];          /* "fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder", "tiny-imagenet" */
    int n, c, h, w;         /* images stored as uint8 CHW, n*c*h*w bytes */
    int classes;
    uint8_t *images;
    int32_t *labels;        /* each in [0, classes) */
    float mean[3], std[3];  /* normalisation of the reference code, per channel, on [0,1] pixels */
    int augment;            /* 1 for cifar / tiny-imagenet train: random crop + horizontal flip */
    int crop_pad;           /* zero padding of the random crop: 4 (32x32), 8 (64x64); 0 when !augment */
    long skipped;           /* undecodable images that were named in `warnings` and skipped */
    char **class_names;     /* for folder datasets (wnids / folder names), else NULL */
    int n_class_names;      /* = classes for folder datasets, else 0 */
    /* Warnings collected while loading (each skipped image named with its path and the
     * reason), at most SNLVK_DATASET_MAX_WARNINGS of them; the caller may print them. */
    char **warnings;
    int n_warnings;
} snlvk_dataset;

/* kind: "fashion-mnist", "mnist", "cifar10", "cifar100", "imagefolder", "tiny-imagenet".
 * root: a directory
 *   fashion-mnist / mnist: the folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
 *   cifar10:  data_batch_1..5.bin, test_batch.bin (or a cifar-10-batches-bin/ subfolder)
 *   cifar100: train.bin, test.bin, records <coarse><fine><3072 pixels>; the fine label is used
 *             (or a cifar-100-binary/ subfolder)
 *   imagefolder: root/train/<class>/... and root/val/<class>/... (root/test/ also accepted for
 *             the val split); without split folders root/<class>/... is the train split.
 *             Classes are the sorted folder names; files are read recursively, sorted.
 *             Images are grey (c = 1) only if every image is grey, else RGB (c = 3).
 *             PNG, JPEG, BMP, PPM/PGM are decoded (stb_image); .tif/.tiff/.webp files are
 *             skipped with a warning.
 *   tiny-imagenet: root/wnids.txt, root/train/<wnid>/images/<name>.JPEG, root/val/images/<name>.JPEG
 *             with root/val/val_annotations.txt. Labels index the sorted wnids (as
 *             torchvision's ImageFolder does).
 * train: 1 train split, 0 test/val split. limit: keep only the first `limit` examples if > 0
 *   (IDX / CIFAR files are then read only that far).
 * image_size: for imagefolder / tiny-imagenet, resize every image to image_size x image_size
 *   (0 = the size of the first image; images of another size are resized to it).
 * Undecodable images are skipped, counted in `skipped` and named in `warnings`; if none can
 * be decoded the load fails. On failure *out is left empty (safe to free). */
snlvk_status snlvk_dataset_load(const char *kind, const char *root, int train, long limit, int image_size,
                                snlvk_dataset *out);
void snlvk_dataset_free(snlvk_dataset *d);

typedef struct snlvk_loader snlvk_loader;
typedef struct snlvk_loader_opts {
    int batch;      /* examples per batch, > 0 */
    int shuffle;    /* 1: a fresh permutation each epoch */
    uint64_t seed;
    int augment;    /* 1: random crop (zero padding d->crop_pad, or 4 / 8 for >= 64 px) + flip p = 0.5 */
    int drop_last;  /* 1: drop the last, short batch */
} snlvk_loader_opts;

/* The dataset must outlive the loader and not change while it exists. A loader has one
 * consumer: calls on the same loader must not overlap (different loaders are independent). */
snlvk_status snlvk_loader_create(const snlvk_dataset *d, const snlvk_loader_opts *o, snlvk_loader **out);
/* Start epoch `epoch` (0-based), abandoning whatever is left of the current one. The order
 * (shuffle) and augmentation of an epoch depend only on (seed, epoch), so a resumed run
 * reproduces an uninterrupted one exactly. */
snlvk_status snlvk_loader_start_epoch(snlvk_loader *l, int epoch);
int snlvk_loader_batches_per_epoch(const snlvk_loader *l);
/* Floats in one batch's image tensor: batch * c * h * w. */
long snlvk_loader_batch_floats(const snlvk_loader *l);
/* Copies the next batch: images as float32 NCHW normalised ((x/255 - mean)/std, computed in
 * float), labels int32 and, unless `indices` is NULL, each example's position in the
 * dataset (what was shuffled: row j of the batch is example indices[j]). *count = examples
 * in this batch (the last one may be short unless drop_last); returns SNLVK_OK with
 * *count = 0 at epoch end. A background thread prepares the following batch while the
 * caller uses this one. */
snlvk_status snlvk_loader_next(snlvk_loader *l, float *images, int32_t *labels, int32_t *indices, int *count);
void snlvk_loader_destroy(snlvk_loader *l);

#ifdef __cplusplus
}
#endif
#endif
