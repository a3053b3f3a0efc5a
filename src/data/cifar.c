/* CIFAR-10 / CIFAR-100 in the binary layout: fixed-size records of label byte(s) followed by
 * 3072 pixel bytes (1024 R, 1024 G, 1024 B, rows top to bottom), i.e. already CHW. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* stat, opendir, sysconf, pthreads under -std=c11 */
#endif
#include "data/data_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CIFAR_PIXELS 3072
#define CIFAR_MAX_FILE ((size_t)1 << 30)

/* Appends the records of one file to d (d->n so far). Stops at `want` examples in all. */
static snlvk_status read_batch(int hundred, const char *path, size_t want, snlvk_dataset *d)
{
    const size_t rec = (size_t)(hundred ? 2 : 1) + CIFAR_PIXELS;
    uint8_t *buf;
    size_t len;
    SNLVK_TRY(data_read_file(path, CIFAR_MAX_FILE, &buf, &len));
    snlvk_status s = SNLVK_OK;
    if (len == 0 || len % rec != 0) {
        s = snlvk_fail(SNLVK_E_INVALID,
                       "%s: file size: expected a non-zero multiple of %zu bytes (records of %s + %d pixel bytes), "
                       "got %zu bytes (truncated?)",
                       path, rec, hundred ? "coarse and fine label bytes" : "1 label byte", CIFAR_PIXELS, len);
        goto out;
    }
    size_t nrec = len / rec, have = (size_t)d->n;
    if (want - have < nrec) nrec = want - have;
    size_t total = have + nrec;
    if (total > INT_MAX) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: expected at most %d examples in all, got more", path, INT_MAX);
        goto out;
    }
    uint8_t *ni = realloc(d->images, total * CIFAR_PIXELS);
    if (!ni) {
        s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory for %zu images", path, total);
        goto out;
    }
    d->images = ni;
    int32_t *nl = realloc(d->labels, total * sizeof *nl);
    if (!nl) {
        s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory for %zu labels", path, total);
        goto out;
    }
    d->labels = nl;
    for (size_t i = 0; i < nrec; i++) {
        const uint8_t *r = buf + i * rec;
        int label;
        if (hundred) {
            if (r[0] >= 20) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'coarse label' of record %zu: expected 0..19, got %u",
                               path, i, (unsigned)r[0]);
                goto out;
            }
            if (r[1] >= 100) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'fine label' of record %zu: expected 0..99, got %u", path,
                               i, (unsigned)r[1]);
                goto out;
            }
            label = r[1];
        } else {
            if (r[0] >= 10) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'label' of record %zu: expected 0..9, got %u", path, i,
                               (unsigned)r[0]);
                goto out;
            }
            label = r[0];
        }
        memcpy(d->images + (have + i) * CIFAR_PIXELS, r + rec - CIFAR_PIXELS, CIFAR_PIXELS);
        d->labels[have + i] = label;
    }
    d->n = (int)total;
out:
    free(buf);
    return s;
}

snlvk_status data_load_cifar(int hundred, const char *root, int train, long limit, snlvk_dataset *d)
{
    char dir[DATA_PATH_MAX], path[DATA_PATH_MAX];
    const char *first = hundred ? (train ? "train.bin" : "test.bin") : (train ? "data_batch_1.bin" : "test_batch.bin");
    snprintf(dir, sizeof dir, "%s", root);
    SNLVK_TRY(data_join(path, dir, first));
    if (!data_is_file(path)) {
        /* the folder the official archive unpacks to */
        char sub[DATA_PATH_MAX];
        SNLVK_TRY(data_join(sub, root, hundred ? "cifar-100-binary" : "cifar-10-batches-bin"));
        char p2[DATA_PATH_MAX];
        SNLVK_TRY(data_join(p2, sub, first));
        if (data_is_file(p2)) snprintf(dir, sizeof dir, "%s", sub);
    }
    size_t want = limit > 0 && (unsigned long)limit < (size_t)INT_MAX ? (size_t)limit : (size_t)INT_MAX;
    int nfiles = hundred || !train ? 1 : 5;
    for (int i = 0; i < nfiles && (size_t)d->n < want; i++) {
        char name[32];
        if (hundred) snprintf(name, sizeof name, "%s", first);
        else if (train) snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        else snprintf(name, sizeof name, "test_batch.bin");
        SNLVK_TRY(data_join(path, dir, name));
        SNLVK_TRY(read_batch(hundred, path, want, d));
    }
    d->c = 3;
    d->h = 32;
    d->w = 32;
    d->classes = hundred ? 100 : 10;
    return SNLVK_OK;
}
