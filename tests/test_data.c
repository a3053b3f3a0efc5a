/* Dataset readers and the batch loader (plain C, no Vulkan): generated IDX (plain and gz),
 * CIFAR-10/100, image folders and a Tiny-ImageNet layout round-trip exactly; every kind of
 * bad input fails with a message naming the file; the loader's batches, normalisation,
 * determinism per (seed, epoch) and augmentation are checked. Prints one line per check
 * and ends with "N passed, M failed". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "core/error.h"
#include "data/dataset.h"
#include "io/atomic_file.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"
#pragma GCC diagnostic pop

/* The call failed with `want` and the message contains `needle` (the file's path). */
static void check_fail(snlvk_status s, snlvk_status want, const char *needle, const char *what)
{
    const char *msg = snlvk_last_error();
    check(s == want && strstr(msg, needle) != NULL, "%s -> %s (want %s) naming '%s': \"%s\"", what,
          snlvk_status_name(s), snlvk_status_name(want), needle, msg);
}

/* ---- files ---- */

static void write_gz(const char *path, const void *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    if (!f || gzwrite(f, data, (unsigned)len) != (int)len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    gzclose(f);
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

/* A w x h PNG with `comp` channels, pixel (y, x, c) = pix(seed, c, y, x). */
static uint8_t pix(int seed, int c, int y, int x) { return (uint8_t)(seed * 37 + c * 71 + y * 13 + x * 5 + 1); }

static void write_png(const char *path, int w, int h, int comp, int seed)
{
    uint8_t *px = malloc((size_t)w * h * comp);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < comp; c++) px[((size_t)y * w + x) * comp + c] = pix(seed, c, y, x);
    if (!stbi_write_png(path, w, h, comp, px, w * comp)) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    free(px);
}

static void write_png_const(const char *path, int w, int h, int comp, const uint8_t *rgb)
{
    uint8_t *px = malloc((size_t)w * h * comp);
    for (int i = 0; i < w * h; i++)
        for (int c = 0; c < comp; c++) px[(size_t)i * comp + c] = rgb[c];
    if (!stbi_write_png(path, w, h, comp, px, w * comp)) exit(2);
    free(px);
}

/* Does d's image i (CHW) equal the PNG pattern pix(seed, ...)? */
static int image_is(const snlvk_dataset *d, int i, int seed)
{
    const uint8_t *p = d->images + (size_t)i * d->c * d->h * d->w;
    for (int c = 0; c < d->c; c++)
        for (int y = 0; y < d->h; y++)
            for (int x = 0; x < d->w; x++)
                if (p[((size_t)c * d->h + y) * d->w + x] != pix(seed, c, y, x)) return 0;
    return 1;
}

/* ---- IDX ---- */

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

enum { IDX_N = 7, IDX_R = 3, IDX_C = 4 };
static uint8_t idx_img[16 + IDX_N * IDX_R * IDX_C], idx_lab[8 + IDX_N];

static void make_idx(void)
{
    be32(idx_img, 0x803);
    be32(idx_img + 4, IDX_N);
    be32(idx_img + 8, IDX_R);
    be32(idx_img + 12, IDX_C);
    for (int i = 0; i < IDX_N * IDX_R * IDX_C; i++) idx_img[16 + i] = (uint8_t)(i * 7 + 3);
    be32(idx_lab, 0x801);
    be32(idx_lab + 4, IDX_N);
    for (int i = 0; i < IDX_N; i++) idx_lab[8 + i] = (uint8_t)((i * 3) % 10);
}

static int idx_matches(const snlvk_dataset *d, int n)
{
    if (d->n != n || d->c != 1 || d->h != IDX_R || d->w != IDX_C || d->classes != 10) return 0;
    if (memcmp(d->images, idx_img + 16, (size_t)n * IDX_R * IDX_C) != 0) return 0;
    for (int i = 0; i < n; i++)
        if (d->labels[i] != idx_lab[8 + i]) return 0;
    return 1;
}

static void test_idx(void)
{
    make_idx();
    snlvk_dataset d;
    /* plain files, train split */
    snlvk_mkdirs(P("idx_plain"));
    write_file(P("idx_plain/train-images-idx3-ubyte"), idx_img, sizeof idx_img);
    write_file(P("idx_plain/train-labels-idx1-ubyte"), idx_lab, sizeof idx_lab);
    if (check_ok(snlvk_dataset_load("fashion-mnist", P("idx_plain"), 1, 0, 0, &d), "idx plain: load")) {
        check(idx_matches(&d, IDX_N), "idx plain: shape, pixels and labels round-trip exactly");
        check(strcmp(d.name, "fashion-mnist") == 0 && d.mean[0] == 0.28604f && d.std[0] == 0.35302f && !d.augment,
              "idx plain: name, Fashion-MNIST mean/std, no augmentation");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("fashion-mnist", P("idx_plain"), 1, 3, 0, &d), "idx plain: load limit 3"))
        check(idx_matches(&d, 3), "idx plain: limit 3 keeps the first 3");
    snlvk_dataset_free(&d);

    /* gzipped files, test split */
    snlvk_mkdirs(P("idx_gz"));
    write_gz(P("idx_gz/t10k-images-idx3-ubyte.gz"), idx_img, sizeof idx_img);
    write_gz(P("idx_gz/t10k-labels-idx1-ubyte.gz"), idx_lab, sizeof idx_lab);
    if (check_ok(snlvk_dataset_load("mnist", P("idx_gz"), 0, 0, 0, &d), "idx gz: load")) {
        check(idx_matches(&d, IDX_N), "idx gz: shape, pixels and labels round-trip exactly");
        check(d.mean[0] == 0.1307f && d.std[0] == 0.3081f, "idx gz: MNIST mean/std");
    }
    snlvk_dataset_free(&d);

    /* bad inputs: each in its own folder */
    uint8_t bad[sizeof idx_img];
    const char *f;

    snlvk_mkdirs(P("idx_trunc"));
    write_file(P("idx_trunc/train-images-idx3-ubyte"), idx_img, sizeof idx_img - 5);
    write_file(P("idx_trunc/train-labels-idx1-ubyte"), idx_lab, sizeof idx_lab);
    f = P("idx_trunc/train-images-idx3-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_trunc"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: truncated pixel data");
    check(d.images == NULL && d.n == 0, "idx: a failed load leaves the dataset empty");

    snlvk_mkdirs(P("idx_trunc_hdr"));
    write_file(P("idx_trunc_hdr/train-images-idx3-ubyte"), idx_img, 6);
    write_file(P("idx_trunc_hdr/train-labels-idx1-ubyte"), idx_lab, sizeof idx_lab);
    f = P("idx_trunc_hdr/train-images-idx3-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_trunc_hdr"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: truncated header");

    snlvk_mkdirs(P("idx_trunc_lab"));
    write_file(P("idx_trunc_lab/train-images-idx3-ubyte"), idx_img, sizeof idx_img);
    write_file(P("idx_trunc_lab/train-labels-idx1-ubyte"), idx_lab, sizeof idx_lab - 2);
    f = P("idx_trunc_lab/train-labels-idx1-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_trunc_lab"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: truncated labels");

    snlvk_mkdirs(P("idx_magic"));
    memcpy(bad, idx_img, sizeof bad);
    be32(bad, 0x801);
    write_file(P("idx_magic/train-images-idx3-ubyte"), bad, sizeof bad);
    write_file(P("idx_magic/train-labels-idx1-ubyte"), idx_lab, sizeof idx_lab);
    f = P("idx_magic/train-images-idx3-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_magic"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: wrong magic");
    check(strstr(snlvk_last_error(), "magic") != NULL, "idx: wrong magic: message names the field 'magic'");

    snlvk_mkdirs(P("idx_count"));
    uint8_t lab2[sizeof idx_lab];
    memcpy(lab2, idx_lab, sizeof lab2);
    be32(lab2 + 4, IDX_N - 1);
    write_file(P("idx_count/train-images-idx3-ubyte"), idx_img, sizeof idx_img);
    write_file(P("idx_count/train-labels-idx1-ubyte"), lab2, sizeof lab2 - 1);
    f = P("idx_count/train-labels-idx1-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_count"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: images/labels count mismatch");
    check(strstr(snlvk_last_error(), "count") != NULL, "idx: count mismatch: message names the field 'count'");

    snlvk_mkdirs(P("idx_range"));
    memcpy(lab2, idx_lab, sizeof lab2);
    lab2[8 + 4] = 10;
    write_file(P("idx_range/train-images-idx3-ubyte"), idx_img, sizeof idx_img);
    write_file(P("idx_range/train-labels-idx1-ubyte"), lab2, sizeof lab2);
    f = P("idx_range/train-labels-idx1-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_range"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: label out of range");
    check(strstr(snlvk_last_error(), "label[4]") != NULL, "idx: label out of range: message names 'label[4]'");

    snlvk_mkdirs(P("idx_trailing"));
    uint8_t longer[sizeof idx_img + 3] = {0};
    memcpy(longer, idx_img, sizeof idx_img);
    write_file(P("idx_trailing/train-images-idx3-ubyte"), longer, sizeof longer);
    write_file(P("idx_trailing/train-labels-idx1-ubyte"), idx_lab, sizeof idx_lab);
    f = P("idx_trailing/train-images-idx3-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_trailing"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: trailing bytes after the data");

    snlvk_mkdirs(P("idx_missing"));
    write_file(P("idx_missing/train-images-idx3-ubyte"), idx_img, sizeof idx_img);
    f = P("idx_missing/train-labels-idx1-ubyte");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_missing"), 1, 0, 0, &d), SNLVK_E_IO, f,
               "idx: missing labels file");

    /* corrupt gzip: deflate data overwritten (invalid block type) */
    size_t glen;
    uint8_t *gz = (uint8_t *)read_all(P("idx_gz/t10k-images-idx3-ubyte.gz"), &glen);
    snlvk_mkdirs(P("idx_gz_corrupt"));
    uint8_t *g2 = malloc(glen);
    memcpy(g2, gz, glen);
    for (size_t i = 10; i < 16 && i < glen; i++) g2[i] = 0xff;
    write_file(P("idx_gz_corrupt/t10k-images-idx3-ubyte.gz"), g2, glen);
    write_gz(P("idx_gz_corrupt/t10k-labels-idx1-ubyte.gz"), idx_lab, sizeof idx_lab);
    f = P("idx_gz_corrupt/t10k-images-idx3-ubyte.gz");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_gz_corrupt"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: corrupt gzip data");
    /* corrupt gzip: wrong CRC in the trailer */
    snlvk_mkdirs(P("idx_gz_crc"));
    memcpy(g2, gz, glen);
    g2[glen - 8] ^= 0x5a;
    write_file(P("idx_gz_crc/t10k-images-idx3-ubyte.gz"), g2, glen);
    write_gz(P("idx_gz_crc/t10k-labels-idx1-ubyte.gz"), idx_lab, sizeof idx_lab);
    f = P("idx_gz_crc/t10k-images-idx3-ubyte.gz");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_gz_crc"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: gzip with a wrong CRC");
    /* truncated gzip */
    snlvk_mkdirs(P("idx_gz_trunc"));
    write_file(P("idx_gz_trunc/t10k-images-idx3-ubyte.gz"), gz, glen / 2);
    write_gz(P("idx_gz_trunc/t10k-labels-idx1-ubyte.gz"), idx_lab, sizeof idx_lab);
    f = P("idx_gz_trunc/t10k-images-idx3-ubyte.gz");
    check_fail(snlvk_dataset_load("fashion-mnist", P("idx_gz_trunc"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "idx: truncated gzip file");
    free(gz);
    free(g2);

    f = P("does_not_exist");
    check_fail(snlvk_dataset_load("mnist", f, 1, 0, 0, &d), SNLVK_E_IO, f, "idx: missing directory");
    check_fail(snlvk_dataset_load("nonsense", P("idx_plain"), 1, 0, 0, &d), SNLVK_E_INVALID, "nonsense",
               "unknown dataset kind");
}

/* ---- CIFAR ---- */

static uint8_t cifar_px(int file, int rec, int i) { return (uint8_t)(file * 101 + rec * 31 + i * 7 + (i >> 10) * 3); }

static void write_cifar(const char *path, int hundred, int file, int nrec, int bad_label_rec)
{
    size_t rec = (size_t)(hundred ? 2 : 1) + 3072;
    uint8_t *b = malloc(rec * nrec);
    for (int r = 0; r < nrec; r++) {
        uint8_t *p = b + rec * r;
        if (hundred) {
            p[0] = (uint8_t)((file + r) % 20);
            p[1] = (uint8_t)((file * 13 + r * 7) % 100);
        } else p[0] = (uint8_t)((file * 3 + r) % 10);
        if (r == bad_label_rec) p[hundred ? 1 : 0] = hundred ? 100 : 10;
        for (int i = 0; i < 3072; i++) p[rec - 3072 + i] = cifar_px(file, r, i);
    }
    write_file(path, b, rec * nrec);
    free(b);
}

static void test_cifar(void)
{
    snlvk_dataset d;
    snlvk_mkdirs(P("c10"));
    for (int f = 1; f <= 5; f++) write_cifar(P("c10/data_batch_%d.bin", f), 0, f, 3, -1);
    write_cifar(P("c10/test_batch.bin"), 0, 0, 2, -1);
    if (check_ok(snlvk_dataset_load("cifar10", P("c10"), 1, 0, 0, &d), "cifar10: load train")) {
        int ok = d.n == 15 && d.c == 3 && d.h == 32 && d.w == 32 && d.classes == 10;
        for (int f = 1; f <= 5 && ok; f++)
            for (int r = 0; r < 3 && ok; r++) {
                int i = (f - 1) * 3 + r;
                ok = d.labels[i] == (f * 3 + r) % 10;
                for (int k = 0; k < 3072 && ok; k++) ok = d.images[(size_t)i * 3072 + k] == cifar_px(f, r, k);
            }
        check(ok, "cifar10: 5 batches, pixels (CHW) and labels round-trip exactly");
        check(d.augment == 1 && d.crop_pad == 4 && d.mean[0] == 0.4914f && d.mean[1] == 0.4822f &&
                  d.mean[2] == 0.4465f && d.std[0] == 0.2023f && d.std[1] == 0.1994f && d.std[2] == 0.2010f,
              "cifar10: train augments (pad 4), CIFAR mean/std");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("cifar10", P("c10"), 1, 4, 0, &d), "cifar10: load limit 4"))
        check(d.n == 4 && d.labels[3] == (2 * 3 + 0) % 10 && d.images[3 * 3072 + 5] == cifar_px(2, 0, 5),
              "cifar10: limit 4 spans the first two batch files");
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("cifar10", P("c10"), 0, 0, 0, &d), "cifar10: load test"))
        check(d.n == 2 && d.augment == 0 && d.labels[1] == 1 && d.images[3072 + 2048] == cifar_px(0, 1, 2048),
              "cifar10: test split, no augmentation");
    snlvk_dataset_free(&d);
    /* the folder of the official archive */
    snlvk_mkdirs(P("c10_parent/cifar-10-batches-bin"));
    write_cifar(P("c10_parent/cifar-10-batches-bin/test_batch.bin"), 0, 0, 2, -1);
    if (check_ok(snlvk_dataset_load("cifar10", P("c10_parent"), 0, 0, 0, &d), "cifar10: cifar-10-batches-bin/"))
        check(d.n == 2, "cifar10: found in the cifar-10-batches-bin subfolder");
    snlvk_dataset_free(&d);

    /* bad inputs */
    const char *f;
    snlvk_mkdirs(P("c10_trunc"));
    for (int i = 1; i <= 5; i++) write_cifar(P("c10_trunc/data_batch_%d.bin", i), 0, i, 3, -1);
    size_t len;
    uint8_t *b = (uint8_t *)read_all(P("c10_trunc/data_batch_3.bin"), &len);
    write_file(P("c10_trunc/data_batch_3.bin"), b, len - 100);
    free(b);
    f = P("c10_trunc/data_batch_3.bin");
    check_fail(snlvk_dataset_load("cifar10", P("c10_trunc"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "cifar10: truncated batch file");
    snlvk_mkdirs(P("c10_empty"));
    write_file(P("c10_empty/test_batch.bin"), "", 0);
    f = P("c10_empty/test_batch.bin");
    check_fail(snlvk_dataset_load("cifar10", P("c10_empty"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "cifar10: empty file");
    snlvk_mkdirs(P("c10_label"));
    write_cifar(P("c10_label/test_batch.bin"), 0, 0, 3, 2);
    f = P("c10_label/test_batch.bin");
    check_fail(snlvk_dataset_load("cifar10", P("c10_label"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "cifar10: label out of range");
    check(strstr(snlvk_last_error(), "record 2") != NULL, "cifar10: label out of range: names the record");
    snlvk_mkdirs(P("c10_missing"));
    for (int i = 1; i <= 4; i++) write_cifar(P("c10_missing/data_batch_%d.bin", i), 0, i, 1, -1);
    f = P("c10_missing/data_batch_5.bin");
    check_fail(snlvk_dataset_load("cifar10", P("c10_missing"), 1, 0, 0, &d), SNLVK_E_IO, f,
               "cifar10: missing data_batch_5.bin");
    f = P("c10_nonexistent");
    check_fail(snlvk_dataset_load("cifar10", f, 1, 0, 0, &d), SNLVK_E_IO, f, "cifar10: missing directory");

    /* CIFAR-100 */
    snlvk_mkdirs(P("c100"));
    write_cifar(P("c100/train.bin"), 1, 4, 5, -1);
    write_cifar(P("c100/test.bin"), 1, 9, 2, -1);
    if (check_ok(snlvk_dataset_load("cifar100", P("c100"), 1, 0, 0, &d), "cifar100: load train")) {
        int ok = d.n == 5 && d.classes == 100 && d.c == 3;
        for (int r = 0; r < 5 && ok; r++) {
            ok = d.labels[r] == (4 * 13 + r * 7) % 100;
            for (int k = 0; k < 3072 && ok; k++) ok = d.images[(size_t)r * 3072 + k] == cifar_px(4, r, k);
        }
        check(ok, "cifar100: fine labels and pixels round-trip exactly");
        check(d.augment == 1, "cifar100: train augments");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("cifar100", P("c100"), 0, 0, 0, &d), "cifar100: load test"))
        check(d.n == 2 && d.labels[1] == (9 * 13 + 7) % 100, "cifar100: test split");
    snlvk_dataset_free(&d);
    snlvk_mkdirs(P("c100_label"));
    write_cifar(P("c100_label/train.bin"), 1, 1, 3, 1);
    f = P("c100_label/train.bin");
    check_fail(snlvk_dataset_load("cifar100", P("c100_label"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "cifar100: fine label out of range");
    snlvk_mkdirs(P("c100_trunc"));
    write_cifar(P("c100_trunc/test.bin"), 1, 1, 2, -1);
    b = (uint8_t *)read_all(P("c100_trunc/test.bin"), &len);
    write_file(P("c100_trunc/test.bin"), b, len - 1);
    free(b);
    f = P("c100_trunc/test.bin");
    check_fail(snlvk_dataset_load("cifar100", P("c100_trunc"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "cifar100: truncated file");
    /* a CIFAR-10 file read as CIFAR-100 has the wrong record size */
    snlvk_mkdirs(P("c100_wrong"));
    write_cifar(P("c100_wrong/test.bin"), 0, 1, 3, -1);
    f = P("c100_wrong/test.bin");
    check_fail(snlvk_dataset_load("cifar100", P("c100_wrong"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "cifar100: CIFAR-10 records (wrong record size)");
}

/* ---- image folders ---- */

static void test_imagefolder(void)
{
    snlvk_dataset d;
    const char *f;
    /* train/val split, RGB, 5 x 4 */
    snlvk_mkdirs(P("if/train/dog"));
    snlvk_mkdirs(P("if/train/cat"));
    snlvk_mkdirs(P("if/val/cat"));
    snlvk_mkdirs(P("if/val/dog"));
    write_png(P("if/train/cat/b.png"), 5, 4, 3, 1);
    write_png(P("if/train/cat/a.png"), 5, 4, 3, 2);
    write_png(P("if/train/dog/x.png"), 5, 4, 4, 3); /* RGBA: alpha dropped */
    write_text(P("if/train/dog/notes.txt"), "not an image, ignored");
    write_png(P("if/val/dog/v.png"), 5, 4, 3, 4);
    write_png(P("if/val/cat/w.png"), 5, 4, 3, 5);
    if (check_ok(snlvk_dataset_load("imagefolder", P("if"), 1, 0, 0, &d), "imagefolder: load train")) {
        check(d.n == 3 && d.c == 3 && d.h == 4 && d.w == 5 && d.classes == 2 && d.n_class_names == 2 &&
                  strcmp(d.class_names[0], "cat") == 0 && strcmp(d.class_names[1], "dog") == 0,
              "imagefolder: 3 RGB 4x5 images, classes sorted [cat, dog]");
        check(d.labels[0] == 0 && d.labels[1] == 0 && d.labels[2] == 1 && image_is(&d, 0, 2) &&
                  image_is(&d, 1, 1) && image_is(&d, 2, 3),
              "imagefolder: files sorted, pixels (HWC -> CHW) and labels exact");
        check(d.mean[0] == 0.485f && d.mean[1] == 0.456f && d.mean[2] == 0.406f && d.std[0] == 0.229f &&
                  d.std[1] == 0.224f && d.std[2] == 0.225f && d.augment == 0 && d.skipped == 0,
              "imagefolder: ImageNet mean/std, no augmentation, nothing skipped");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("imagefolder", P("if"), 0, 0, 0, &d), "imagefolder: load val"))
        check(d.n == 2 && d.labels[0] == 0 && d.labels[1] == 1 && image_is(&d, 0, 5) && image_is(&d, 1, 4),
              "imagefolder: val labels use the train class indices");
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("imagefolder", P("if"), 1, 2, 0, &d), "imagefolder: load limit 2"))
        check(d.n == 2 && d.labels[1] == 0, "imagefolder: limit 2 keeps the first 2");
    snlvk_dataset_free(&d);

    /* no split folders, grey, one image of another size, resizing */
    snlvk_mkdirs(P("ifg/a"));
    snlvk_mkdirs(P("ifg/b"));
    static const uint8_t g1[1] = {77}, g2[1] = {200};
    write_png_const(P("ifg/a/1.png"), 6, 6, 1, g1);
    write_png_const(P("ifg/b/1.png"), 6, 6, 1, g2);
    write_png_const(P("ifg/b/2.png"), 9, 7, 1, g2);
    if (check_ok(snlvk_dataset_load("imagefolder", P("ifg"), 1, 0, 0, &d), "imagefolder: no split folders")) {
        int ok = d.n == 3 && d.c == 1 && d.h == 6 && d.w == 6 && d.labels[2] == 1;
        for (int i = 0; ok && i < 36; i++) ok = d.images[i] == 77 && d.images[36 + i] == 200 && d.images[72 + i] == 200;
        check(ok, "imagefolder: grey, 3 images, the 7x9 one resized to the first's 6x6");
        check(d.mean[0] == 0.5f && d.std[0] == 0.5f, "imagefolder: grey mean/std 0.5/0.5");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("imagefolder", P("ifg"), 1, 0, 3, &d), "imagefolder: image_size 3")) {
        int ok = d.n == 3 && d.h == 3 && d.w == 3;
        for (int i = 0; ok && i < 9; i++) ok = d.images[i] == 77 && d.images[18 + i] == 200;
        check(ok, "imagefolder: every image resized to 3x3");
    }
    snlvk_dataset_free(&d);
    f = P("ifg/val");
    check_fail(snlvk_dataset_load("imagefolder", P("ifg"), 0, 0, 0, &d), SNLVK_E_IO, f,
               "imagefolder: val split without split folders");

    /* an undecodable image is skipped and named */
    snlvk_mkdirs(P("ifbad/train/a"));
    snlvk_mkdirs(P("ifbad/train/b"));
    write_png(P("ifbad/train/a/good.png"), 4, 4, 3, 7);
    write_text(P("ifbad/train/a/broken.png"), "this is not a PNG file");
    write_png(P("ifbad/train/b/good.jpg"), 4, 4, 3, 8); /* PNG bytes, .jpg name: decoded by content */
    if (check_ok(snlvk_dataset_load("imagefolder", P("ifbad"), 1, 0, 0, &d), "imagefolder: one undecodable image")) {
        f = P("ifbad/train/a/broken.png");
        check(d.n == 2 && d.skipped == 1 && d.n_warnings == 1 && strstr(d.warnings[0], f) != NULL &&
                  image_is(&d, 0, 7) && image_is(&d, 1, 8) && d.labels[1] == 1,
              "imagefolder: skipped 1, warning names it: \"%s\"", d.n_warnings ? d.warnings[0] : "");
    }
    snlvk_dataset_free(&d);

    /* many images (decoded on several threads): order, skips and limit are still exact */
    snlvk_mkdirs(P("ifmany/train/a"));
    snlvk_mkdirs(P("ifmany/train/b"));
    for (int i = 0; i < 50; i++) {
        const char *cls = i < 25 ? "a" : "b";
        if (i == 7 || i == 30 || i == 31) write_text(P("ifmany/train/%s/%02d.png", cls, i), "broken");
        else if (i % 10 == 4) write_png_const(P("ifmany/train/%s/%02d.png", cls, i), 9, 5, 3, (const uint8_t[3]){9, 8, 7});
        else write_png(P("ifmany/train/%s/%02d.png", cls, i), 6, 6, 3, i);
    }
    if (check_ok(snlvk_dataset_load("imagefolder", P("ifmany"), 1, 0, 0, &d), "imagefolder: 50 images")) {
        int ok = d.n == 47 && d.skipped == 3 && d.n_warnings == 3 && d.h == 6 && d.w == 6 &&
                 strstr(d.warnings[0], "a/07.png") && strstr(d.warnings[1], "b/30.png") &&
                 strstr(d.warnings[2], "b/31.png");
        for (int i = 0, k = 0; i < 50 && ok; i++) {
            if (i == 7 || i == 30 || i == 31) continue;
            ok = d.labels[k] == (i < 25 ? 0 : 1);
            if (i % 10 == 4)
                for (int q = 0; q < 3 * 36 && ok; q++) ok = d.images[(size_t)k * 108 + q] == 9 - q / 36;
            else ok = ok && image_is(&d, k, i);
            k++;
        }
        check(ok, "imagefolder: 50 images: 3 skipped and named in order, 9x5 ones resized, the rest exact");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("imagefolder", P("ifmany"), 1, 30, 0, &d), "imagefolder: 50 images, limit 30"))
        check(d.n == 30 && d.skipped == 3 && d.labels[23] == 0 && d.labels[24] == 1 && image_is(&d, 29, 32),
              "imagefolder: limit 30 keeps the first 30 decodable images");
    snlvk_dataset_free(&d);

    /* the first image has a valid header but cut data: the size comes from the next one */
    snlvk_mkdirs(P("iftrunc/a"));
    write_png(P("iftrunc/a/0.png"), 9, 9, 3, 1);
    {
        size_t len;
        uint8_t *b = (uint8_t *)read_all(P("iftrunc/a/0.png"), &len);
        write_file(P("iftrunc/a/0.png"), b, 45);
        free(b);
    }
    write_png(P("iftrunc/a/1.png"), 6, 6, 3, 2);
    write_png(P("iftrunc/a/2.png"), 6, 6, 3, 3);
    if (check_ok(snlvk_dataset_load("imagefolder", P("iftrunc"), 1, 0, 0, &d), "imagefolder: truncated first image"))
        check(d.n == 2 && d.h == 6 && d.w == 6 && d.skipped == 1 && image_is(&d, 0, 2) && image_is(&d, 1, 3),
              "imagefolder: truncated first PNG skipped, size taken from the next");
    snlvk_dataset_free(&d);

    /* every image undecodable */
    snlvk_mkdirs(P("ifallbad/a"));
    write_text(P("ifallbad/a/x.png"), "garbage");
    write_text(P("ifallbad/a/y.jpg"), "garbage");
    f = P("ifallbad/a/x.png");
    check_fail(snlvk_dataset_load("imagefolder", P("ifallbad"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "imagefolder: all images undecodable");

    /* an empty class folder */
    snlvk_mkdirs(P("ifempty/train/a"));
    snlvk_mkdirs(P("ifempty/train/b"));
    write_png(P("ifempty/train/a/1.png"), 4, 4, 3, 1);
    write_text(P("ifempty/train/b/readme.txt"), "no images here");
    f = P("ifempty/train/b");
    check_fail(snlvk_dataset_load("imagefolder", P("ifempty"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "imagefolder: empty class folder");

    /* a val class that is not a train class */
    snlvk_mkdirs(P("ifcls/train/a"));
    snlvk_mkdirs(P("ifcls/val/zebra"));
    write_png(P("ifcls/train/a/1.png"), 4, 4, 3, 1);
    write_png(P("ifcls/val/zebra/1.png"), 4, 4, 3, 1);
    f = P("ifcls/val/zebra");
    check_fail(snlvk_dataset_load("imagefolder", P("ifcls"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "imagefolder: val class not among the train classes");

    /* no class folders */
    snlvk_mkdirs(P("ifnone"));
    write_text(P("ifnone/x.txt"), "x");
    f = P("ifnone");
    check_fail(snlvk_dataset_load("imagefolder", f, 1, 0, 0, &d), SNLVK_E_INVALID, f, "imagefolder: no class folders");
    f = P("if_nonexistent");
    check_fail(snlvk_dataset_load("imagefolder", f, 1, 0, 0, &d), SNLVK_E_IO, f, "imagefolder: missing directory");
}

/* ---- Tiny-ImageNet ---- */

/* An 8x8 baseline JPEG of the colour (200, 30, 60), quality 100, written once by
 * stbi_write_jpg (whose bit writer trips UBSan, so it is not run here). */
static const uint8_t red_jpeg[] = {
    0xff,0xd8,0xff,0xe0,0x00,0x10,0x4a,0x46,0x49,0x46,0x00,0x01,0x01,0x00,0x00,0x01,0x00,0x01,0x00,0x00,
    0xff,0xdb,0x00,0x84,0x00,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
    0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
    0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
    0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
    0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
    0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,
    0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0xff,0xc0,0x00,0x11,0x08,0x00,
    0x08,0x00,0x08,0x03,0x01,0x11,0x00,0x02,0x11,0x01,0x03,0x11,0x01,0xff,0xc4,0x01,0xa2,0x00,0x00,0x01,
    0x05,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x00,0x01,0x02,0x03,0x04,0x05,
    0x06,0x07,0x08,0x09,0x0a,0x0b,0x10,0x00,0x02,0x01,0x03,0x03,0x02,0x04,0x03,0x05,0x05,0x04,0x04,0x00,
    0x00,0x01,0x7d,0x01,0x02,0x03,0x00,0x04,0x11,0x05,0x12,0x21,0x31,0x41,0x06,0x13,0x51,0x61,0x07,0x22,
    0x71,0x14,0x32,0x81,0x91,0xa1,0x08,0x23,0x42,0xb1,0xc1,0x15,0x52,0xd1,0xf0,0x24,0x33,0x62,0x72,0x82,
    0x09,0x0a,0x16,0x17,0x18,0x19,0x1a,0x25,0x26,0x27,0x28,0x29,0x2a,0x34,0x35,0x36,0x37,0x38,0x39,0x3a,
    0x43,0x44,0x45,0x46,0x47,0x48,0x49,0x4a,0x53,0x54,0x55,0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,
    0x67,0x68,0x69,0x6a,0x73,0x74,0x75,0x76,0x77,0x78,0x79,0x7a,0x83,0x84,0x85,0x86,0x87,0x88,0x89,0x8a,
    0x92,0x93,0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,
    0xb4,0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,
    0xd6,0xd7,0xd8,0xd9,0xda,0xe1,0xe2,0xe3,0xe4,0xe5,0xe6,0xe7,0xe8,0xe9,0xea,0xf1,0xf2,0xf3,0xf4,0xf5,
    0xf6,0xf7,0xf8,0xf9,0xfa,0x01,0x00,0x03,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x01,0x00,0x00,0x00,
    0x00,0x00,0x00,0x01,0x02,0x03,0x04,0x05,0x06,0x07,0x08,0x09,0x0a,0x0b,0x11,0x00,0x02,0x01,0x02,0x04,
    0x04,0x03,0x04,0x07,0x05,0x04,0x04,0x00,0x01,0x02,0x77,0x00,0x01,0x02,0x03,0x11,0x04,0x05,0x21,0x31,
    0x06,0x12,0x41,0x51,0x07,0x61,0x71,0x13,0x22,0x32,0x81,0x08,0x14,0x42,0x91,0xa1,0xb1,0xc1,0x09,0x23,
    0x33,0x52,0xf0,0x15,0x62,0x72,0xd1,0x0a,0x16,0x24,0x34,0xe1,0x25,0xf1,0x17,0x18,0x19,0x1a,0x26,0x27,
    0x28,0x29,0x2a,0x35,0x36,0x37,0x38,0x39,0x3a,0x43,0x44,0x45,0x46,0x47,0x48,0x49,0x4a,0x53,0x54,0x55,
    0x56,0x57,0x58,0x59,0x5a,0x63,0x64,0x65,0x66,0x67,0x68,0x69,0x6a,0x73,0x74,0x75,0x76,0x77,0x78,0x79,
    0x7a,0x82,0x83,0x84,0x85,0x86,0x87,0x88,0x89,0x8a,0x92,0x93,0x94,0x95,0x96,0x97,0x98,0x99,0x9a,0xa2,
    0xa3,0xa4,0xa5,0xa6,0xa7,0xa8,0xa9,0xaa,0xb2,0xb3,0xb4,0xb5,0xb6,0xb7,0xb8,0xb9,0xba,0xc2,0xc3,0xc4,
    0xc5,0xc6,0xc7,0xc8,0xc9,0xca,0xd2,0xd3,0xd4,0xd5,0xd6,0xd7,0xd8,0xd9,0xda,0xe2,0xe3,0xe4,0xe5,0xe6,
    0xe7,0xe8,0xe9,0xea,0xf2,0xf3,0xf4,0xf5,0xf6,0xf7,0xf8,0xf9,0xfa,0xff,0xda,0x00,0x0c,0x03,0x01,0x00,
    0x02,0x11,0x03,0x11,0x00,0x3f,0x00,0xfc,0xa1,0xaf,0xc4,0x8f,0xfa,0x94,0x3f,0xff,0xd9
};

static void test_tinyimagenet(void)
{
    snlvk_dataset d;
    const char *f;
    snlvk_mkdirs(P("tin/train/n02/images"));
    snlvk_mkdirs(P("tin/train/n01/images"));
    snlvk_mkdirs(P("tin/val/images"));
    write_text(P("tin/wnids.txt"), "n02\r\nn01\r\n");
    write_png(P("tin/train/n01/images/n01_0.JPEG"), 8, 8, 3, 10);
    write_png(P("tin/train/n01/images/n01_1.JPEG"), 8, 8, 1, 11); /* grey: expanded to RGB */
    write_png(P("tin/train/n02/images/n02_0.JPEG"), 8, 8, 3, 12);
    write_text(P("tin/train/n02/n02_boxes.txt"), "n02_0.JPEG\t0\t0\t7\t7\n");
    static const uint8_t red[3] = {200, 30, 60};
    write_file(P("tin/val/images/val_0.JPEG"), red_jpeg, sizeof red_jpeg); /* a real JPEG */
    write_png(P("tin/val/images/val_1.JPEG"), 8, 8, 3, 13);
    write_text(P("tin/val/val_annotations.txt"), "val_0.JPEG\tn02\t0\t0\t7\t7\nval_1.JPEG\tn01\t1\t1\t6\t6\n");
    if (check_ok(snlvk_dataset_load("tiny-imagenet", P("tin"), 1, 0, 0, &d), "tiny-imagenet: load train")) {
        check(d.n == 3 && d.c == 3 && d.h == 8 && d.w == 8 && d.classes == 2 && d.n_class_names == 2 &&
                  strcmp(d.class_names[0], "n01") == 0 && strcmp(d.class_names[1], "n02") == 0,
              "tiny-imagenet: 3 images 3x8x8, classes = sorted wnids");
        int grey_ok = 1;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 64; i++) grey_ok &= d.images[192 + c * 64 + i] == pix(11, 0, i / 8, i % 8);
        check(d.labels[0] == 0 && d.labels[1] == 0 && d.labels[2] == 1 && image_is(&d, 0, 10) && grey_ok &&
                  image_is(&d, 2, 12),
              "tiny-imagenet: train pixels and labels exact (grey expanded to RGB)");
        check(d.augment == 1 && d.crop_pad == 4 && d.mean[0] == 0.480f && d.mean[1] == 0.448f &&
                  d.mean[2] == 0.398f && d.std[0] == 0.277f && d.std[1] == 0.269f && d.std[2] == 0.282f,
              "tiny-imagenet: train augments, Tiny-ImageNet mean/std");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("tiny-imagenet", P("tin"), 1, 0, 64, &d), "tiny-imagenet: image_size 64"))
        check(d.h == 64 && d.w == 64 && d.crop_pad == 8, "tiny-imagenet: 64x64 crops with padding 8");
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("tiny-imagenet", P("tin"), 0, 0, 0, &d), "tiny-imagenet: load val")) {
        int ok = d.n == 2 && d.labels[0] == 1 && d.labels[1] == 0 && image_is(&d, 1, 13) && d.augment == 0;
        for (int c = 0; c < 3 && ok; c++)
            for (int i = 0; i < 64 && ok; i++) ok = abs((int)d.images[c * 64 + i] - red[c]) <= 3;
        check(ok, "tiny-imagenet: val labels from val_annotations.txt, the JPEG decoded");
    }
    snlvk_dataset_free(&d);

    /* a JPEG whose Huffman table declares more than 256 codes (stb_image 2.27 would write
     * past its tables) is skipped, not decoded */
    snlvk_mkdirs(P("dht/a"));
    {
        uint8_t j[sizeof red_jpeg];
        memcpy(j, red_jpeg, sizeof j);
        size_t at = 0;
        for (size_t i = 2; i + 1 < sizeof j && !at; i++)
            if (j[i] == 0xFF && j[i + 1] == 0xC4) at = i;
        for (int k = 0; k < 16; k++) j[at + 5 + k] = 0x80;
        write_file(P("dht/a/bad.jpg"), j, sizeof j);
        write_file(P("dht/a/good.jpg"), red_jpeg, sizeof red_jpeg);
    }
    if (check_ok(snlvk_dataset_load("imagefolder", P("dht"), 1, 0, 0, &d), "imagefolder: JPEG with an oversized DHT")) {
        f = P("dht/a/bad.jpg");
        check(d.n == 1 && d.skipped == 1 && d.n_warnings == 1 && strstr(d.warnings[0], f) &&
                  strstr(d.warnings[0], "Huffman"),
              "imagefolder: oversized JPEG Huffman table rejected: \"%s\"", d.n_warnings ? d.warnings[0] : "");
    }
    snlvk_dataset_free(&d);

    /* a val image that is missing is skipped with a warning */
    snlvk_mkdirs(P("tin2/train/n01/images"));
    snlvk_mkdirs(P("tin2/val/images"));
    write_text(P("tin2/wnids.txt"), "n01\n");
    write_png(P("tin2/train/n01/images/a.JPEG"), 8, 8, 3, 1);
    write_png(P("tin2/val/images/val_0.JPEG"), 8, 8, 3, 2);
    write_text(P("tin2/val/val_annotations.txt"), "val_0.JPEG\tn01\t0\t0\t7\t7\nval_9.JPEG\tn01\t0\t0\t7\t7\n");
    if (check_ok(snlvk_dataset_load("tiny-imagenet", P("tin2"), 0, 0, 0, &d), "tiny-imagenet: a missing val image")) {
        f = P("tin2/val/images/val_9.JPEG");
        check(d.n == 1 && d.skipped == 1 && d.n_warnings == 1 && strstr(d.warnings[0], f) != NULL,
              "tiny-imagenet: missing val image skipped and named: \"%s\"", d.n_warnings ? d.warnings[0] : "");
    }
    snlvk_dataset_free(&d);

    /* bad layouts */
    snlvk_mkdirs(P("tin_nownids/train/n01/images"));
    f = P("tin_nownids/wnids.txt");
    check_fail(snlvk_dataset_load("tiny-imagenet", P("tin_nownids"), 1, 0, 0, &d), SNLVK_E_IO, f,
               "tiny-imagenet: missing wnids.txt");
    snlvk_mkdirs(P("tin_noann/val/images"));
    write_text(P("tin_noann/wnids.txt"), "n01\n");
    f = P("tin_noann/val/val_annotations.txt");
    check_fail(snlvk_dataset_load("tiny-imagenet", P("tin_noann"), 0, 0, 0, &d), SNLVK_E_IO, f,
               "tiny-imagenet: missing val_annotations.txt");
    snlvk_mkdirs(P("tin_badann/val/images"));
    write_text(P("tin_badann/wnids.txt"), "n01\n");
    write_text(P("tin_badann/val/val_annotations.txt"), "val_0.JPEG\tn01\t0\t0\t1\t1\nval_1.JPEG\tn99\t0\t0\t1\t1\n");
    f = P("tin_badann/val/val_annotations.txt");
    check_fail(snlvk_dataset_load("tiny-imagenet", P("tin_badann"), 0, 0, 0, &d), SNLVK_E_INVALID, f,
               "tiny-imagenet: unknown wnid in val_annotations.txt");
    check(strstr(snlvk_last_error(), "line 2") != NULL, "tiny-imagenet: unknown wnid: names the line");
    snlvk_mkdirs(P("tin_emptycls/train/n01/images"));
    snlvk_mkdirs(P("tin_emptycls/train/n02/images"));
    write_text(P("tin_emptycls/wnids.txt"), "n01\nn02\n");
    write_png(P("tin_emptycls/train/n01/images/a.JPEG"), 8, 8, 3, 1);
    f = P("tin_emptycls/train/n02/images");
    check_fail(snlvk_dataset_load("tiny-imagenet", P("tin_emptycls"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "tiny-imagenet: empty class folder");
    snlvk_mkdirs(P("tin_nocls/train/n01/images"));
    write_text(P("tin_nocls/wnids.txt"), "n01\nn05\n");
    write_png(P("tin_nocls/train/n01/images/a.JPEG"), 8, 8, 3, 1);
    f = P("tin_nocls/train/n05");
    check_fail(snlvk_dataset_load("tiny-imagenet", P("tin_nocls"), 1, 0, 0, &d), SNLVK_E_IO, f,
               "tiny-imagenet: missing class folder of a wnid");
    snlvk_mkdirs(P("tin_dup"));
    write_text(P("tin_dup/wnids.txt"), "n01\nn01\n");
    f = P("tin_dup/wnids.txt");
    check_fail(snlvk_dataset_load("tiny-imagenet", P("tin_dup"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "tiny-imagenet: duplicate wnid");
    snlvk_mkdirs(P("tin_allbad/train/n01/images"));
    write_text(P("tin_allbad/wnids.txt"), "n01\n");
    write_text(P("tin_allbad/train/n01/images/a.JPEG"), "not a jpeg");
    f = P("tin_allbad/train/n01/images/a.JPEG");
    check_fail(snlvk_dataset_load("tiny-imagenet", P("tin_allbad"), 1, 0, 0, &d), SNLVK_E_INVALID, f,
               "tiny-imagenet: all images undecodable");
}

/* ---- real Fashion-MNIST ---- */

static void test_fashion_mnist(void)
{
    const char *root = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    if (stat(root, &st) != 0) {
        printf("SKIP fashion-mnist: %s is absent\n", root);
        return;
    }
    snlvk_dataset d;
    if (check_ok(snlvk_dataset_load("fashion-mnist", root, 1, 0, 0, &d), "fashion-mnist: load train")) {
        long hist[10] = {0};
        for (int i = 0; i < d.n; i++) hist[d.labels[i]]++;
        int balanced = 1;
        for (int k = 0; k < 10; k++) balanced &= hist[k] == 6000;
        check(d.n == 60000 && d.c == 1 && d.h == 28 && d.w == 28 && d.classes == 10 && balanced,
              "fashion-mnist: train 60000 x 1 x 28 x 28, 10 classes of 6000");
    }
    snlvk_dataset_free(&d);
    if (check_ok(snlvk_dataset_load("fashion-mnist", root, 0, 0, 0, &d), "fashion-mnist: load test"))
        check(d.n == 10000 && d.c == 1 && d.h == 28 && d.w == 28 && d.classes == 10,
              "fashion-mnist: test 10000 x 1 x 28 x 28, 10 classes");
    snlvk_dataset_free(&d);
}

/* ---- loader ---- */

static uint64_t trng = 12345;
static uint8_t tbyte(void)
{
    trng ^= trng << 13;
    trng ^= trng >> 7;
    trng ^= trng << 17;
    return (uint8_t)(trng >> 24);
}

/* n examples, 3 x 8 x 8, label i = index i (so each example can be recognised). */
static void synth(snlvk_dataset *d, int n, int h)
{
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "synthetic");
    d->n = n;
    d->c = 3;
    d->h = h;
    d->w = h;
    d->classes = n;
    d->images = malloc((size_t)n * 3 * h * h);
    d->labels = malloc((size_t)n * sizeof(int32_t));
    for (size_t i = 0; i < (size_t)n * 3 * h * h; i++) d->images[i] = tbyte();
    for (int i = 0; i < n; i++) d->labels[i] = i;
    const float m[3] = {0.4914f, 0.4822f, 0.4465f}, s[3] = {0.2023f, 0.1994f, 0.2010f};
    memcpy(d->mean, m, sizeof m);
    memcpy(d->std, s, sizeof s);
    d->crop_pad = 4;
}

static float norm(const snlvk_dataset *d, int c, int v) { return ((float)v / 255.0f - d->mean[c]) / d->std[c]; }

/* Does out equal example idx normalised, cropped at (oy, ox) from the padded image and flipped? */
static int matches_aug(const snlvk_dataset *d, const float *out, int idx, int oy, int ox, int flip)
{
    int H = d->h, W = d->w;
    const uint8_t *src = d->images + (size_t)idx * 3 * H * W;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y + oy, sx = (flip ? W - 1 - x : x) + ox;
                int v = sy < 0 || sy >= H || sx < 0 || sx >= W ? 0 : src[(c * H + sy) * W + sx];
                if (fabsf(out[(c * H + y) * W + x] - norm(d, c, v)) > 1e-6f) return 0;
            }
    return 1;
}

/* One epoch of a loader, every batch appended to img (per = floats per example), lab and
 * (unless NULL) idx; returns the examples seen, -1 on an error. */
static int run_epoch_idx(snlvk_loader *l, int epoch, long per, float *img, int32_t *lab, int32_t *idx, int *counts,
                         int *nbatches)
{
    if (snlvk_loader_start_epoch(l, epoch) != SNLVK_OK) return -1;
    int total = 0, nb = 0, cnt;
    for (;;) {
        if (snlvk_loader_next(l, img + (size_t)total * (size_t)per, lab + total, idx ? idx + total : NULL, &cnt) !=
            SNLVK_OK)
            return -1;
        if (cnt == 0) break;
        if (counts) counts[nb] = cnt;
        nb++;
        total += cnt;
    }
    if (nbatches) *nbatches = nb;
    return total;
}

static int run_epoch(snlvk_loader *l, int epoch, long per, float *img, int32_t *lab, int *counts, int *nbatches)
{
    return run_epoch_idx(l, epoch, per, img, lab, NULL, counts, nbatches);
}

static void test_loader(void)
{
    snlvk_dataset d;
    synth(&d, 10, 8);
    const size_t chw = 3 * 8 * 8;
    float *img = malloc(64 * chw * sizeof(float)), *img2 = malloc(64 * chw * sizeof(float));
    int32_t lab[64], lab2[64];
    int counts[16], nb, cnt;
    snlvk_loader *l = NULL;

    /* batch shapes */
    snlvk_loader_opts o = {.batch = 4, .shuffle = 0, .seed = 1, .augment = 0, .drop_last = 0};
    if (check_ok(snlvk_loader_create(&d, &o, &l), "loader: create")) {
        check(snlvk_loader_batches_per_epoch(l) == 3 && snlvk_loader_batch_floats(l) == (long)(4 * chw),
              "loader: 10 examples, batch 4: 3 batches of 4 x 192 floats");
        check_fail(snlvk_loader_next(l, img, lab, NULL, &cnt), SNLVK_E_INVALID, "start_epoch",
                   "loader: next before start_epoch");
        int seen = run_epoch(l, 0, (long)chw, img, lab, counts, &nb);
        check(seen == 10 && nb == 3 && counts[0] == 4 && counts[1] == 4 && counts[2] == 2,
              "loader: batch counts 4, 4, 2 then 0 at epoch end");
        int ok = 1;
        for (int i = 0; i < 10 && ok; i++) {
            ok = lab[i] == i;
            for (size_t k = 0; k < chw && ok; k++)
                ok = fabsf(img[i * chw + k] - norm(&d, (int)(k / 64), d.images[i * chw + k])) <= 1e-6f;
        }
        check(ok, "loader: no shuffle, no augment: labels in order, images = (x/255 - mean)/std");
        check(fabsf(img[0] - ((float)d.images[0] / 255.0f - 0.4914f) / 0.2023f) <= 1e-6f &&
                  fabsf(img[128] - ((float)d.images[128] / 255.0f - 0.4465f) / 0.2010f) <= 1e-6f,
              "loader: per-channel CIFAR constants applied to channels 0 and 2");
        check(snlvk_loader_next(l, img, lab, NULL, &cnt) == SNLVK_OK && cnt == 0, "loader: next after epoch end gives 0");
        snlvk_loader_destroy(l);
    }
    o.drop_last = 1;
    if (check_ok(snlvk_loader_create(&d, &o, &l), "loader: create drop_last")) {
        int seen = run_epoch(l, 0, (long)chw, img, lab, counts, &nb);
        check(snlvk_loader_batches_per_epoch(l) == 2 && seen == 8 && nb == 2 && counts[1] == 4,
              "loader: drop_last: 2 batches of 4");
        snlvk_loader_destroy(l);
    }
    o.batch = 16;
    if (check_ok(snlvk_loader_create(&d, &o, &l), "loader: create drop_last, batch > n")) {
        int seen = run_epoch(l, 0, (long)chw, img, lab, counts, &nb);
        check(snlvk_loader_batches_per_epoch(l) == 0 && seen == 0, "loader: drop_last with batch > n: no batch");
        snlvk_loader_destroy(l);
    }
    o.batch = 0;
    check_fail(snlvk_loader_create(&d, &o, &l), SNLVK_E_INVALID, "batch", "loader: batch 0 rejected");
    snlvk_dataset_free(&d);

    /* shuffle + augment determinism on a bigger set */
    synth(&d, 48, 8);
    snlvk_loader_opts a = {.batch = 5, .shuffle = 1, .seed = 42, .augment = 1, .drop_last = 0};
    snlvk_loader *l1 = NULL, *l2 = NULL;
    if (check_ok(snlvk_loader_create(&d, &a, &l1), "loader: create shuffle+augment") &&
        check_ok(snlvk_loader_create(&d, &a, &l2), "loader: create a second one")) {
        int s1 = run_epoch(l1, 3, (long)chw, img, lab, NULL, NULL);
        int s2 = run_epoch(l2, 3, (long)chw, img2, lab2, NULL, NULL);
        check(s1 == 48 && s2 == 48 && memcmp(lab, lab2, sizeof(int32_t) * 48) == 0 &&
                  memcmp(img, img2, 48 * chw * sizeof(float)) == 0,
              "loader: same seed + epoch -> identical batches (order and augmentation)");
        int once = 1, seen[48] = {0};
        for (int i = 0; i < 48; i++) seen[lab[i]]++;
        for (int i = 0; i < 48; i++) once &= seen[i] == 1;
        check(once, "loader: every example exactly once per epoch");
        int valid = 1, cropped = 0, flipped = 0, plain = 0;
        for (int i = 0; i < 48 && valid; i++) {
            int found = 0;
            for (int f = 0; f < 2 && !found; f++)
                for (int oy = -4; oy <= 4 && !found; oy++)
                    for (int ox = -4; ox <= 4 && !found; ox++)
                        if (matches_aug(&d, img + i * chw, lab[i], oy, ox, f)) {
                            found = 1;
                            if (oy || ox) cropped++;
                            if (f) flipped++;
                            if (!oy && !ox && !f) plain++;
                        }
            valid = found;
        }
        check(valid && cropped > 0 && flipped > 0 && flipped < 48,
              "loader: augment: every output is a zero-padded crop (pad 4) and/or flip of its example "
              "(%d cropped, %d flipped, %d untouched of 48)", cropped, flipped, plain);

        /* different epoch -> different order */
        run_epoch(l2, 4, (long)chw, img2, lab2, NULL, NULL);
        check(memcmp(lab, lab2, sizeof(int32_t) * 48) != 0, "loader: another epoch -> another order");

        /* resume: abandon epoch 1 half-way, then epoch 3 again must equal the first run */
        snlvk_loader_start_epoch(l2, 1);
        snlvk_loader_next(l2, img2, lab2, NULL, &cnt);
        snlvk_loader_next(l2, img2, lab2, NULL, &cnt);
        int s3 = run_epoch(l2, 3, (long)chw, img2, lab2, NULL, NULL);
        check(s3 == 48 && memcmp(lab, lab2, sizeof(int32_t) * 48) == 0 &&
                  memcmp(img, img2, 48 * chw * sizeof(float)) == 0,
              "loader: epoch 3 after an abandoned epoch equals a fresh epoch 3 (resume)");
    }
    snlvk_loader_destroy(l1);
    snlvk_loader_destroy(l2);

    /* augment off: outputs are exactly the normalised examples, in a shuffled order */
    a.augment = 0;
    if (check_ok(snlvk_loader_create(&d, &a, &l1), "loader: create shuffle, no augment")) {
        int s = run_epoch(l1, 0, (long)chw, img, lab, NULL, NULL);
        int ok = s == 48, moved = 0;
        for (int i = 0; i < 48 && ok; i++) {
            ok = matches_aug(&d, img + i * chw, lab[i], 0, 0, 0);
            moved += lab[i] != i;
        }
        check(ok && moved > 0, "loader: no augment: images untouched (no crop, no flip), order shuffled");
        snlvk_loader_destroy(l1);
    }
    /* each example's dataset position comes with it (the cached teacher logits are
     * gathered by it): labels here are a permutation of the positions, so a wrong index
     * shows in the label as well as in the image */
    {
        int32_t *saved = malloc(48 * sizeof *saved), plab[48], pidx[48];
        memcpy(saved, d.labels, 48 * sizeof *saved);
        for (int i = 0; i < 48; i++) d.labels[i] = (i * 7 + 3) % 48;
        float *pimg = malloc(48 * chw * sizeof(float));
        for (int drop = 0; drop < 2; drop++) {
            snlvk_loader_opts pi = {.batch = 5, .shuffle = 1, .seed = 9, .augment = 0, .drop_last = drop};
            if (!check_ok(snlvk_loader_create(&d, &pi, &l1), "loader: create for indices")) continue;
            for (int e = 0; e < 2; e++) {
                int counts5[16], nb5 = 0;
                int got = run_epoch_idx(l1, e, (long)chw, pimg, plab, pidx, counts5, &nb5);
                int want = drop ? 45 : 48, once = got == want, match = 1, moved = 0, seen[48] = {0};
                for (int i = 0; i < got && once; i++) {
                    once = pidx[i] >= 0 && pidx[i] < 48 && !seen[pidx[i]]++;
                    if (!once) break;
                    match &= plab[i] == d.labels[pidx[i]] && matches_aug(&d, pimg + (size_t)i * chw, pidx[i], 0, 0, 0);
                    moved += pidx[i] != i;
                }
                check(once && match && moved > 0 && nb5 == (drop ? 9 : 10) && (drop || counts5[9] == 3),
                      "loader: %s epoch %d: every index once (%d of %d), each row's image and label those of its "
                      "index, shuffled", drop ? "drop_last" : "short last batch,", e, got, want);
            }
            snlvk_loader_destroy(l1);
        }
        /* with augmentation: the index names the example that was cropped and flipped */
        snlvk_loader_opts pa = {.batch = 5, .shuffle = 1, .seed = 9, .augment = 1, .drop_last = 0};
        if (check_ok(snlvk_loader_create(&d, &pa, &l1), "loader: create for indices, augment")) {
            int got = run_epoch_idx(l1, 1, (long)chw, pimg, plab, pidx, NULL, NULL), ok = got == 48;
            for (int i = 0; i < 48 && ok; i++) {
                int found = 0;
                for (int f = 0; f < 2 && !found; f++)
                    for (int oy = -4; oy <= 4 && !found; oy++)
                        for (int ox = -4; ox <= 4 && !found; ox++)
                            found = matches_aug(&d, pimg + (size_t)i * chw, pidx[i], oy, ox, f);
                ok = found && plab[i] == d.labels[pidx[i]];
            }
            check(ok, "loader: augment: each row is a crop/flip of the example its index names");
            snlvk_loader_destroy(l1);
        }
        free(pimg);
        memcpy(d.labels, saved, 48 * sizeof *saved);
        free(saved);
    }
    a.shuffle = 1;
    a.augment = 1;
    a.seed = 43;
    if (check_ok(snlvk_loader_create(&d, &a, &l1), "loader: create with another seed")) {
        run_epoch(l1, 3, (long)chw, img2, lab2, NULL, NULL);
        check(memcmp(lab, lab2, sizeof(int32_t) * 48) != 0, "loader: another seed -> another order");
        snlvk_loader_destroy(l1);
    }
    snlvk_dataset_free(&d);

    /* 64x64 images: padding 8 by default */
    synth(&d, 6, 64);
    d.crop_pad = 0;
    float *big = malloc(6 * 3 * 64 * 64 * sizeof(float));
    a.batch = 6;
    if (check_ok(snlvk_loader_create(&d, &a, &l1), "loader: create 64x64")) {
        int valid = 1, far = 0;
        for (int e = 0; e < 4 && valid; e++) {
            run_epoch(l1, e, 3 * 64 * 64, big, lab, NULL, NULL);
            for (int i = 0; i < 6 && valid; i++) {
                int found = 0;
                for (int f = 0; f < 2 && !found; f++)
                    for (int oy = -8; oy <= 8 && !found; oy++)
                        for (int ox = -8; ox <= 8 && !found; ox++)
                            if (matches_aug(&d, big + (size_t)i * 3 * 64 * 64, lab[i], oy, ox, f)) {
                                found = 1;
                                far += abs(oy) > 4 || abs(ox) > 4;
                            }
                valid = found;
            }
        }
        check(valid && far > 0, "loader: 64x64: crops with padding 8 (%d of 24 beyond 4)", far);
        snlvk_loader_destroy(l1);
    }
    free(big);
    snlvk_dataset_free(&d);

    /* a loader on a real loaded dataset (generated CIFAR-10 test batch) */
    if (snlvk_dataset_load("cifar10", P("c10"), 1, 0, 0, &d) == SNLVK_OK) {
        snlvk_loader_opts c = {.batch = 4, .shuffle = 1, .seed = 7, .augment = d.augment, .drop_last = 0};
        float *cimg = malloc(15 * 3072 * sizeof(float));
        int32_t clab[15];
        if (check_ok(snlvk_loader_create(&d, &c, &l1), "loader: create on cifar10")) {
            int s = run_epoch(l1, 0, 3072, cimg, clab, counts, &nb);
            check(s == 15 && nb == 4 && counts[3] == 3, "loader: cifar10, 15 examples in batches 4, 4, 4, 3");
            snlvk_loader_destroy(l1);
        }
        free(cimg);
    }
    snlvk_dataset_free(&d);
    free(img);
    free(img2);
}

int main(void)
{
    check_tmp_init("snlvk_test_data");
    test_idx();
    test_cifar();
    test_imagefolder();
    test_tinyimagenet();
    test_loader();
    test_fashion_mnist();
    return check_finish();
}
