/* MNIST / Fashion-MNIST in the IDX format (big-endian header, unsigned bytes), gzipped or
 * not: {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* stat, opendir, sysconf, pthreads under -std=c11 */
#endif
#include "data/data_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDX_CLASSES 10

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Finds "<prefix>-<what>-idxN-ubyte[.gz]" (or the "<prefix>-<what>.idxN-ubyte" spelling) in
 * root or in the raw/ folders torchvision leaves behind. */
static snlvk_status find_idx(const char *root, const char *prefix, const char *what, int ndim, char *path)
{
    static const char *subdirs[] = {"", "raw", "FashionMNIST/raw", "MNIST/raw"};
    static const char *forms[] = {"%s-%s-idx%d-ubyte.gz", "%s-%s-idx%d-ubyte", "%s-%s.idx%d-ubyte.gz",
                                  "%s-%s.idx%d-ubyte"};
    char dir[DATA_PATH_MAX], name[128];
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        if (i == 0) snprintf(dir, sizeof dir, "%s", root);
        else SNLVK_TRY(data_join(dir, root, subdirs[i]));
        for (size_t j = 0; j < sizeof forms / sizeof forms[0]; j++) {
            snprintf(name, sizeof name, forms[j], prefix, what, ndim);
            SNLVK_TRY(data_join(path, dir, name));
            if (data_is_file(path)) return SNLVK_OK;
        }
    }
    snprintf(name, sizeof name, "%s-%s-idx%d-ubyte", prefix, what, ndim);
    SNLVK_TRY(data_join(path, root, name));
    return snlvk_fail(SNLVK_E_IO, "%s[.gz]: cannot open: no such file (the %s IDX file of the %s split)", path, what,
                      prefix);
}

snlvk_status data_load_idx(const char *kind, const char *root, int train, long limit, snlvk_dataset *d)
{
    (void)kind;
    const char *prefix = train ? "train" : "t10k";
    char ipath[DATA_PATH_MAX], lpath[DATA_PATH_MAX];
    SNLVK_TRY(find_idx(root, prefix, "images", 3, ipath));
    SNLVK_TRY(find_idx(root, prefix, "labels", 1, lpath));

    gzFile fi = NULL, fl = NULL;
    uint8_t *lab8 = NULL;
    snlvk_status s;
    uint8_t hdr[16];
    if ((s = data_gz_open(ipath, &fi)) != SNLVK_OK) goto done;
    if ((s = data_gz_exact(fi, ipath, "magic", hdr, 4)) != SNLVK_OK) goto done;
    uint32_t magic = be32(hdr);
    if (magic != 0x00000803u) {
        s = snlvk_fail(SNLVK_E_INVALID,
                       "%s: field 'magic': expected 0x00000803 (IDX, unsigned byte, 3 dimensions), got 0x%08x", ipath,
                       (unsigned)magic);
        goto done;
    }
    if ((s = data_gz_exact(fi, ipath, "dimensions", hdr + 4, 12)) != SNLVK_OK) goto done;
    uint32_t n = be32(hdr + 4), rows = be32(hdr + 8), cols = be32(hdr + 12);
    if (n == 0 || n > INT_MAX) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'count': expected 1..%d images, got %u", ipath, INT_MAX,
                       (unsigned)n);
        goto done;
    }
    if (rows == 0 || rows > 65535 || cols == 0 || cols > 65535) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'rows x columns': expected 1..65535 each, got %u x %u", ipath,
                       (unsigned)rows, (unsigned)cols);
        goto done;
    }

    if ((s = data_gz_open(lpath, &fl)) != SNLVK_OK) goto done;
    if ((s = data_gz_exact(fl, lpath, "magic", hdr, 4)) != SNLVK_OK) goto done;
    magic = be32(hdr);
    if (magic != 0x00000801u) {
        s = snlvk_fail(SNLVK_E_INVALID,
                       "%s: field 'magic': expected 0x00000801 (IDX, unsigned byte, 1 dimension), got 0x%08x", lpath,
                       (unsigned)magic);
        goto done;
    }
    if ((s = data_gz_exact(fl, lpath, "count", hdr + 4, 4)) != SNLVK_OK) goto done;
    uint32_t nl = be32(hdr + 4);
    if (nl != n) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'count': expected %u (the image count of %s), got %u", lpath,
                       (unsigned)n, ipath, (unsigned)nl);
        goto done;
    }

    size_t keep = n;
    if (limit > 0 && (unsigned long)limit < keep) keep = (size_t)limit;
    size_t per = (size_t)rows * cols, total;
    if (!data_checked_mul(per, keep, &total)) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: %zu images of %u x %u overflow the address space", ipath, keep,
                       (unsigned)rows, (unsigned)cols);
        goto done;
    }
    d->images = malloc(total ? total : 1);
    d->labels = malloc(keep * sizeof *d->labels);
    lab8 = malloc(keep);
    if (!d->images || !d->labels || !lab8) {
        s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory for %zu images of %u x %u", ipath, keep, (unsigned)rows,
                       (unsigned)cols);
        goto done;
    }
    if ((s = data_gz_exact(fi, ipath, "pixels", d->images, total)) != SNLVK_OK) goto done;
    if ((s = data_gz_exact(fl, lpath, "labels", lab8, keep)) != SNLVK_OK) goto done;
    if (keep == n) {
        if ((s = data_gz_expect_end(fi, ipath, 16 + total)) != SNLVK_OK) goto done;
        if ((s = data_gz_expect_end(fl, lpath, 8 + keep)) != SNLVK_OK) goto done;
    }
    for (size_t i = 0; i < keep; i++) {
        if (lab8[i] >= IDX_CLASSES) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'label[%zu]': expected 0..%d, got %u", lpath, i,
                           IDX_CLASSES - 1, (unsigned)lab8[i]);
            goto done;
        }
        d->labels[i] = lab8[i];
    }
    d->n = (int)keep;
    d->c = 1;
    d->h = (int)rows;
    d->w = (int)cols;
    d->classes = IDX_CLASSES;
    s = SNLVK_OK;
done:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    free(lab8);
    return s;
}
