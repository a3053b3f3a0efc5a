/* Folders of image files decoded with stb_image: the torchvision ImageFolder layout
 * (root/{train,val}/<class>/...) and Tiny-ImageNet (wnids.txt, train/<wnid>/images/,
 * val/images/ + val/val_annotations.txt). Undecodable images are skipped and named in the
 * dataset's warnings; images of another size are resized with stb_image_resize. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* stat, opendir, sysconf, pthreads under -std=c11 */
#endif
#include "data/data_internal.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wcast-qual"
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO /* files are read here, checked, then decoded from memory */
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_PNM
#include "stb_image.h"
#define STB_IMAGE_RESIZE_STATIC
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include "stb_image_resize.h"
#pragma GCC diagnostic pop
/* stb_image 2.27 declares stbi_set_unpremultiply_on_load_thread static without defining it
 * under STB_IMAGE_STATIC; gcc reports that at the end of the file, after the pop above. */
#pragma GCC diagnostic ignored "-Wunused-function"

#define MAX_DEPTH 16

typedef struct item {
    char *path;
    int label;
} item;

typedef struct item_list {
    item *v;
    size_t n, cap;
} item_list;

static void items_free(item_list *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i].path);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static snlvk_status items_push(item_list *l, const char *path, int label)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        if (nc > (size_t)INT_MAX) return snlvk_fail(SNLVK_E_INVALID, "%s: more than %d image files", path, INT_MAX);
        item *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv) return snlvk_fail(SNLVK_E_OOM, "out of memory for the list of image files");
        l->v = nv;
        l->cap = nc;
    }
    size_t len = strlen(path);
    char *p = malloc(len + 1);
    if (!p) return snlvk_fail(SNLVK_E_OOM, "out of memory for the list of image files");
    memcpy(p, path, len + 1);
    l->v[l->n].path = p;
    l->v[l->n].label = label;
    l->n++;
    return SNLVK_OK;
}

static int has_image_ext(const char *name)
{
    /* torchvision's IMG_EXTENSIONS; stb_image decodes all but tif/tiff/webp, which are then
     * skipped with a warning rather than silently ignored */
    static const char *exts[] = {"png", "jpg", "jpeg", "bmp", "ppm", "pgm", "pnm", "tif", "tiff", "webp"};
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    dot++;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        const char *e = exts[i];
        size_t k = 0;
        while (dot[k] && e[k] && tolower((unsigned char)dot[k]) == e[k]) k++;
        if (!dot[k] && !e[k]) return 1;
    }
    return 0;
}

/* The image files under dir (recursively: the files of a folder sorted, then its sub-folders
 * sorted), appended to l with `label`. */
static snlvk_status collect(const char *dir, int label, int depth, item_list *l)
{
    if (depth > MAX_DEPTH) return SNLVK_OK;
    data_names names;
    SNLVK_TRY(data_list_dir(dir, -1, &names));
    char path[DATA_PATH_MAX];
    snlvk_status s = SNLVK_OK;
    for (int pass = 0; pass < 2 && s == SNLVK_OK; pass++)
        for (int i = 0; i < names.n; i++) {
            if ((s = data_join(path, dir, names.v[i])) != SNLVK_OK) break;
            int is_dir = data_is_dir(path);
            if (pass == 0 && !is_dir && has_image_ext(names.v[i])) s = items_push(l, path, label);
            else if (pass == 1 && is_dir) s = collect(path, label, depth + 1, l);
            if (s != SNLVK_OK) break;
        }
    data_names_free(&names);
    return s;
}

static snlvk_status set_class_names(snlvk_dataset *d, const data_names *names)
{
    d->class_names = calloc((size_t)names->n, sizeof *d->class_names);
    if (!d->class_names) return snlvk_fail(SNLVK_E_OOM, "out of memory for the class names");
    d->n_class_names = names->n;
    for (int i = 0; i < names->n; i++) {
        size_t len = strlen(names->v[i]);
        d->class_names[i] = malloc(len + 1);
        if (!d->class_names[i]) return snlvk_fail(SNLVK_E_OOM, "out of memory for the class names");
        memcpy(d->class_names[i], names->v[i], len + 1);
    }
    d->classes = names->n;
    return SNLVK_OK;
}

/* Reasons a file is skipped that are not stb_image's own strings. */
static const char R_NO_FILE[] = "no such file", R_RESIZE[] = "cannot resize the image", R_OOM[] = "out of memory";

static const char R_READ[] = "read error", R_BIG[] = "file larger than 256 MiB",
                  R_DHT[] = "corrupt JPEG: a Huffman table (DHT) with more than 256 codes";

#define IMAGE_MAX_FILE ((size_t)256 << 20)

/* Reads a whole image file (thread-safe: reports by returning a static reason, not by
 * snlvk_fail). NULL on success. */
static const char *read_image_file(const char *path, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return data_is_file(path) ? "cannot open the file" : R_NO_FILE;
    size_t cap = 1u << 16, n = 0;
    uint8_t *b = malloc(cap);
    const char *why = b ? NULL : R_OOM;
    while (!why) {
        if (n == cap) {
            if (cap > IMAGE_MAX_FILE) {
                why = R_BIG;
                break;
            }
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                why = R_OOM;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) why = R_READ;
            break;
        }
    }
    fclose(f);
    if (why) {
        free(b);
        return why;
    }
    *buf = b;
    *len = n;
    return NULL;
}

/* stb_image 2.27 writes past its Huffman tables when a JPEG DHT segment declares more than
 * 256 codes (fixed upstream in 2.28). Walk the JPEG's markers as stb does and reject such
 * files before stb sees them. 1 if the file is safe to hand to stb_image. */
static int jpeg_dht_ok(const uint8_t *b, size_t n)
{
    if (n < 2 || b[0] != 0xFF || b[1] != 0xD8) return 1; /* not a JPEG */
    size_t p = 2;
    while (p < n) {
        if (b[p] != 0xFF) { /* entropy-coded data (any 0xFF in it is stuffed or a marker) */
            p++;
            continue;
        }
        size_t q = p + 1;
        while (q < n && b[q] == 0xFF) q++; /* fill bytes */
        if (q >= n) break;
        const uint8_t m = b[q];
        p = q + 1;
        if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD9)) continue; /* stuffing, TEM, RST, SOI, EOI */
        if (p + 2 > n) break;
        const size_t L = (size_t)b[p] << 8 | b[p + 1];
        if (m == 0xC4) { /* as stb's DHT loop reads it; bytes past the end read as 0 */
            long left = (long)L - 2;
            size_t r = p + 2;
            while (left > 0) {
                r++; /* table class and id */
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += r + (size_t)i < n ? b[r + (size_t)i] : 0;
                if (sum > 256) return 0;
                r += 16 + (size_t)sum;
                left -= 17 + sum;
            }
        }
        p += L >= 2 ? L : 2; /* then scan on (entropy data follows SOS) */
    }
    return 1;
}

/* Reads and checks a file for stb_image; NULL on success (free *buf after). */
static const char *load_checked(const char *path, uint8_t **buf, size_t *len)
{
    const char *why = read_image_file(path, buf, len);
    if (why) return why;
    if (*len > (size_t)INT_MAX) why = R_BIG;
    else if (!jpeg_dht_ok(*buf, *len)) why = R_DHT;
    if (why) {
        free(*buf);
        *buf = NULL;
    }
    return why;
}

/* stbi_info on a file, through load_checked. NULL on success. */
static const char *image_info(const char *path, int *w, int *h, int *comp)
{
    uint8_t *buf;
    size_t len;
    const char *why = load_checked(path, &buf, &len);
    if (why) return why;
    if (!stbi_info_from_memory(buf, (int)len, w, h, comp)) {
        why = stbi_failure_reason();
        if (!why) why = "unknown error";
    }
    free(buf);
    return why;
}

/* Decodes one file into dst (c x th x tw, CHW), resizing it if its size differs; tmp is an
 * HWC scratch buffer of th * tw * c bytes, allocated on first need. NULL on success, else
 * why it was skipped (a static string: stb_image's reasons are string literals). */
static const char *decode_one(const char *path, int c, int th, int tw, uint8_t *dst, uint8_t **tmp)
{
    int w = 0, h = 0, comp = 0;
    uint8_t *buf;
    size_t len;
    const char *why = load_checked(path, &buf, &len);
    if (why) return why;
    uint8_t *px = stbi_load_from_memory(buf, (int)len, &w, &h, &comp, c);
    free(buf);
    if (!px) {
        why = stbi_failure_reason();
        return why ? why : "unknown error";
    }
    const size_t plane = (size_t)th * (size_t)tw;
    const uint8_t *src = px;
    if (h != th || w != tw) {
        if (!*tmp) *tmp = malloc(plane * (size_t)c);
        if (!*tmp) {
            stbi_image_free(px);
            return R_OOM;
        }
        if (!stbir_resize_uint8(px, w, h, 0, *tmp, tw, th, 0, c)) {
            stbi_image_free(px);
            return R_RESIZE;
        }
        src = *tmp;
    }
    for (size_t p = 0; p < plane; p++)
        for (int ch = 0; ch < c; ch++) dst[(size_t)ch * plane + p] = src[p * (size_t)c + (size_t)ch];
    stbi_image_free(px);
    return NULL;
}

/* One round of parallel decoding: items [first, first + count) into stage, thread t taking
 * every nthreads-th item from t. */
typedef struct round_job {
    const item_list *l;
    size_t first, count, per;
    int c, th, tw, nthreads, t;
    uint8_t *stage;
    const char **why;
} round_job;

static void *round_worker(void *arg)
{
    round_job *j = arg;
    uint8_t *tmp = NULL;
    for (size_t k = (size_t)j->t; k < j->count; k += (size_t)j->nthreads)
        j->why[k] = decode_one(j->l->v[j->first + k].path, j->c, j->th, j->tw, j->stage + k * j->per, &tmp);
    free(tmp);
    return NULL;
}

#define ROUND_MAX_ITEMS 2048
#define ROUND_MAX_BYTES ((size_t)64 << 20)
#define DECODE_MAX_THREADS 16

static snlvk_status skip_item(snlvk_dataset *d, const char *path, const char *why, char *first_fail, size_t cap)
{
    d->skipped++;
    if (!first_fail[0]) snprintf(first_fail, cap, "%s: %s", path, why);
    return data_warn(d, "%s: skipped: cannot decode the image: %s", path, why);
}

/* Decodes the items into d (c channels; image_size x image_size, or the first decodable
 * image's size when 0), skipping undecodable ones (named in d's warnings, in item order),
 * keeping at most `limit` (if > 0). Decoding runs on up to DECODE_MAX_THREADS threads; the
 * result does not depend on their number. `where` names the split in errors. */
static snlvk_status decode_items(const item_list *l, int c, int image_size, long limit, const char *where,
                                 snlvk_dataset *d)
{
    size_t keep_max = l->n;
    if (limit > 0 && (unsigned long)limit < keep_max) keep_max = (size_t)limit;
    int th = image_size, tw = image_size;
    size_t per = 0, kept = 0, next = 0;
    snlvk_status s = SNLVK_OK;
    char first_fail[DATA_PATH_MAX + 128] = "";
    uint8_t *tmp = NULL, *stage = NULL;
    const char **why = NULL;

    /* the first decodable image, sequentially: it fixes the size when image_size is 0 */
    for (; next < l->n && kept == 0; next++) {
        const char *path = l->v[next].path;
        if (th == 0) {
            int w = 0, h = 0, comp = 0;
            const char *r = image_info(path, &w, &h, &comp);
            if (r == R_OOM) {
                s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory reading the image", path);
                goto out;
            }
            if (r) {
                if ((s = skip_item(d, path, r, first_fail, sizeof first_fail)) != SNLVK_OK) goto out;
                continue;
            }
            th = h;
            tw = w;
        }
        if (!d->images) {
            size_t total;
            if (!data_checked_mul((size_t)th * (size_t)tw, (size_t)c, &per) ||
                !data_checked_mul(per, keep_max, &total)) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s: %zu images of %d x %d overflow the address space", where,
                               keep_max, th, tw);
                goto out;
            }
            d->images = malloc(total);
            d->labels = malloc(keep_max * sizeof *d->labels);
            if (!d->images || !d->labels) {
                s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory for %zu images of %d x %d x %d", where, keep_max, c,
                               th, tw);
                goto out;
            }
        }
        const char *r = decode_one(path, c, th, tw, d->images, &tmp);
        if (r == R_OOM) {
            s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory decoding the image", path);
            goto out;
        }
        if (r) {
            if ((s = skip_item(d, path, r, first_fail, sizeof first_fail)) != SNLVK_OK) goto out;
            if (image_size == 0) { /* the size comes from the next decodable image */
                th = tw = 0;
                free(d->images);
                free(d->labels);
                free(tmp);
                d->images = NULL;
                d->labels = NULL;
                tmp = NULL;
            }
            continue;
        }
        d->labels[0] = l->v[next].label;
        kept = 1;
    }

    /* the rest in rounds: decode in parallel into a staging area, then keep in item order */
    if (kept < keep_max && next < l->n) {
        size_t round_max = ROUND_MAX_BYTES / per;
        if (round_max < 1) round_max = 1;
        if (round_max > ROUND_MAX_ITEMS) round_max = ROUND_MAX_ITEMS;
        if (round_max > l->n - next) round_max = l->n - next;
        stage = malloc(round_max * per);
        why = malloc(round_max * sizeof *why);
        if (!stage || !why) {
            s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory for %zu decoded images", where, round_max);
            goto out;
        }
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        int maxt = ncpu < 1 ? 1 : ncpu > DECODE_MAX_THREADS ? DECODE_MAX_THREADS : (int)ncpu;
        while (kept < keep_max && next < l->n) {
            size_t count = keep_max - kept;
            if (count > round_max) count = round_max;
            if (count > l->n - next) count = l->n - next;
            int nt = (size_t)maxt < count ? maxt : (int)count;
            round_job jobs[DECODE_MAX_THREADS];
            pthread_t tids[DECODE_MAX_THREADS];
            int started[DECODE_MAX_THREADS] = {0};
            for (int t = 0; t < nt; t++) {
                jobs[t] = (round_job){.l = l, .first = next, .count = count, .per = per, .c = c, .th = th,
                                      .tw = tw, .nthreads = nt, .t = t, .stage = stage, .why = why};
                if (t > 0) started[t] = pthread_create(&tids[t], NULL, round_worker, &jobs[t]) == 0;
            }
            round_worker(&jobs[0]);
            for (int t = 1; t < nt; t++) {
                if (started[t]) pthread_join(tids[t], NULL);
                else round_worker(&jobs[t]); /* no thread: do its share here */
            }
            for (size_t k = 0; k < count; k++) {
                const char *path = l->v[next + k].path;
                if (why[k] == R_OOM) {
                    s = snlvk_fail(SNLVK_E_OOM, "%s: out of memory decoding the image", path);
                    goto out;
                }
                if (why[k]) {
                    if ((s = skip_item(d, path, why[k], first_fail, sizeof first_fail)) != SNLVK_OK) goto out;
                    continue;
                }
                memcpy(d->images + kept * per, stage + k * per, per);
                d->labels[kept] = l->v[next + k].label;
                kept++;
            }
            next += count;
        }
    }

    if (kept == 0) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: none of the %zu image files could be decoded (first: %s)", where, l->n,
                       first_fail[0] ? first_fail : "none");
        goto out;
    }
    if (kept < keep_max) {
        uint8_t *ni = realloc(d->images, kept * per);
        if (ni) d->images = ni;
    }
    d->n = (int)kept;
    d->c = c;
    d->h = th;
    d->w = tw;
out:
    free(tmp);
    free(stage);
    free(why);
    return s;
}

/* 1 if every image that will be kept is grey (stb reports 1 or 2 components). */
static int all_grey(const item_list *l, long limit)
{
    size_t seen = 0, want = l->n;
    if (limit > 0 && (unsigned long)limit < want) want = (size_t)limit;
    for (size_t i = 0; i < l->n && seen < want; i++) {
        int w, h, comp;
        if (image_info(l->v[i].path, &w, &h, &comp) != NULL) continue;
        if (comp >= 3) return 0;
        seen++;
    }
    return seen > 0;
}

snlvk_status data_load_imagefolder(const char *root, int train, long limit, int image_size, snlvk_dataset *d)
{
    char train_dir[DATA_PATH_MAX], val_dir[DATA_PATH_MAX], test_dir[DATA_PATH_MAX], path[DATA_PATH_MAX];
    SNLVK_TRY(data_join(train_dir, root, "train"));
    SNLVK_TRY(data_join(val_dir, root, "val"));
    SNLVK_TRY(data_join(test_dir, root, "test"));
    int has_train = data_is_dir(train_dir), has_val = data_is_dir(val_dir);
    if (!has_val && data_is_dir(test_dir)) {
        memcpy(val_dir, test_dir, sizeof val_dir);
        has_val = 1;
    }
    const char *split, *class_dir;
    if (train) {
        if (!has_train && has_val)
            return snlvk_fail(SNLVK_E_IO, "%s: cannot open the train directory: no such directory (there is a %s)",
                              train_dir, val_dir);
        split = has_train ? train_dir : root;
    } else {
        if (!has_val)
            return snlvk_fail(SNLVK_E_IO,
                              "%s: cannot open the val directory: no such directory (expected %s/val/<class>/ or "
                              "%s/test/<class>/; without split folders the class folders are the train split only)",
                              val_dir, root, root);
        split = val_dir;
    }
    class_dir = has_train ? train_dir : split;

    data_names classes;
    SNLVK_TRY(data_list_dir(class_dir, 1, &classes));
    snlvk_status s = SNLVK_OK;
    item_list items = {0};
    data_names split_classes = {0};
    if (classes.n == 0) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: expected one folder per class, got no folders", class_dir);
        goto out;
    }
    if ((s = set_class_names(d, &classes)) != SNLVK_OK) goto out;
    if (split == class_dir) {
        split_classes = classes;
        memset(&classes, 0, sizeof classes);
    } else if ((s = data_list_dir(split, 1, &split_classes)) != SNLVK_OK) goto out;
    if (split_classes.n == 0) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: expected one folder per class, got no folders", split);
        goto out;
    }
    for (int i = 0; i < split_classes.n; i++) {
        int label = -1;
        for (int k = 0; k < d->n_class_names; k++)
            if (strcmp(d->class_names[k], split_classes.v[i]) == 0) label = k;
        if ((s = data_join(path, split, split_classes.v[i])) != SNLVK_OK) goto out;
        if (label < 0) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: class folder: expected one of the %d classes of %s, got '%s'", path,
                           d->n_class_names, class_dir, split_classes.v[i]);
            goto out;
        }
        size_t before = items.n;
        if ((s = collect(path, label, 0, &items)) != SNLVK_OK) goto out;
        if (items.n == before) {
            s = snlvk_fail(SNLVK_E_INVALID,
                           "%s: class folder: expected image files (*.png, *.jpg, *.jpeg, *.bmp, ...), got none",
                           path);
            goto out;
        }
    }
    int c = all_grey(&items, limit) ? 1 : 3;
    s = decode_items(&items, c, image_size, limit, split, d);
out:
    items_free(&items);
    data_names_free(&classes);
    data_names_free(&split_classes);
    return s;
}

/* ---- Tiny-ImageNet ---- */

static int cmp_name(const void *key, const void *elem)
{
    return strcmp((const char *)key, *(char *const *)elem);
}

/* The next line of a NUL-terminated buffer, cut in place, trailing blanks and \r removed;
 * NULL at the end. */
static char *next_line(char **cur)
{
    char *p = *cur;
    if (!p || !*p) return NULL;
    char *nl = strchr(p, '\n');
    if (nl) {
        *nl = '\0';
        *cur = nl + 1;
    } else *cur = p + strlen(p);
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t')) p[--len] = '\0';
    return p;
}

static snlvk_status read_text(const char *path, char **text)
{
    uint8_t *buf;
    size_t len;
    SNLVK_TRY(data_read_file(path, (size_t)64 << 20, &buf, &len));
    char *t = realloc(buf, len + 1);
    if (!t) {
        free(buf);
        return snlvk_fail(SNLVK_E_OOM, "%s: out of memory", path);
    }
    t[len] = '\0';
    if (memchr(t, '\0', len)) {
        free(t);
        return snlvk_fail(SNLVK_E_INVALID, "%s: expected a text file, got a NUL byte", path);
    }
    *text = t;
    return SNLVK_OK;
}

snlvk_status data_load_tinyimagenet(const char *root, int train, long limit, int image_size, snlvk_dataset *d)
{
    char wpath[DATA_PATH_MAX], path[DATA_PATH_MAX], dir[DATA_PATH_MAX];
    SNLVK_TRY(data_join(wpath, root, "wnids.txt"));
    char *text = NULL;
    SNLVK_TRY(read_text(wpath, &text));
    data_names wnids = {0};
    item_list items = {0};
    char *ann = NULL;
    snlvk_status s = SNLVK_OK;
    char *cur = text, *line;
    int lineno = 0;
    while ((line = next_line(&cur)) != NULL) {
        lineno++;
        while (*line == ' ' || *line == '\t') line++;
        if (!*line) continue;
        if (strlen(line) > 255 || strchr(line, '/') || strpbrk(line, " \t")) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: line %d: field 'wnid': expected one folder name per line, got '%.64s'",
                           wpath, lineno, line);
            goto out;
        }
        if ((s = data_names_push(&wnids, line)) != SNLVK_OK) goto out;
    }
    if (wnids.n == 0) {
        s = snlvk_fail(SNLVK_E_INVALID, "%s: expected one wnid per line, got none", wpath);
        goto out;
    }
    data_names_sort(&wnids);
    for (int i = 1; i < wnids.n; i++)
        if (strcmp(wnids.v[i - 1], wnids.v[i]) == 0) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: field 'wnid': expected distinct wnids, got '%s' twice", wpath,
                           wnids.v[i]);
            goto out;
        }
    if ((s = set_class_names(d, &wnids)) != SNLVK_OK) goto out;

    if (train) {
        char tdir[DATA_PATH_MAX];
        if ((s = data_join(tdir, root, "train")) != SNLVK_OK) goto out;
        if ((s = data_require_dir(tdir, "tiny-imagenet train")) != SNLVK_OK) goto out;
        for (int k = 0; k < wnids.n; k++) {
            if ((s = data_join(dir, tdir, wnids.v[k])) != SNLVK_OK) goto out;
            if ((s = data_require_dir(dir, "class")) != SNLVK_OK) goto out;
            if ((s = data_join(path, dir, "images")) != SNLVK_OK) goto out;
            if (data_is_dir(path)) memcpy(dir, path, sizeof dir);
            size_t before = items.n;
            if ((s = collect(dir, k, MAX_DEPTH, &items)) != SNLVK_OK) goto out;
            if (items.n == before) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s: class folder: expected image files (*.JPEG), got none", dir);
                goto out;
            }
        }
        s = decode_items(&items, 3, image_size, limit, tdir, d);
    } else {
        char vdir[DATA_PATH_MAX], idir[DATA_PATH_MAX], apath[DATA_PATH_MAX];
        if ((s = data_join(vdir, root, "val")) != SNLVK_OK) goto out;
        if ((s = data_require_dir(vdir, "tiny-imagenet val")) != SNLVK_OK) goto out;
        if ((s = data_join(idir, vdir, "images")) != SNLVK_OK) goto out;
        if ((s = data_join(apath, vdir, "val_annotations.txt")) != SNLVK_OK) goto out;
        if ((s = read_text(apath, &ann)) != SNLVK_OK) goto out;
        cur = ann;
        lineno = 0;
        while ((line = next_line(&cur)) != NULL) {
            lineno++;
            if (!*line) continue;
            char *tab = strpbrk(line, "\t ");
            if (!tab) {
                s = snlvk_fail(SNLVK_E_INVALID,
                               "%s: line %d: expected '<file>\\t<wnid>\\t<x0>\\t<y0>\\t<x1>\\t<y1>', got '%.64s'",
                               apath, lineno, line);
                goto out;
            }
            *tab = '\0';
            char *wnid = tab + 1;
            while (*wnid == ' ' || *wnid == '\t') wnid++;
            char *end = strpbrk(wnid, "\t ");
            if (end) *end = '\0';
            if (!*line || strchr(line, '/')) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s: line %d: field 'file': expected a file name, got '%.64s'", apath,
                               lineno, line);
                goto out;
            }
            char **hit = bsearch(wnid, wnids.v, (size_t)wnids.n, sizeof *wnids.v, cmp_name);
            if (!hit) {
                s = snlvk_fail(SNLVK_E_INVALID, "%s: line %d: field 'wnid': expected one of the %d wnids of %s, got '%.64s'",
                               apath, lineno, wnids.n, wpath, wnid);
                goto out;
            }
            if ((s = data_join(path, idir, line)) != SNLVK_OK) goto out;
            if ((s = items_push(&items, path, (int)(hit - wnids.v))) != SNLVK_OK) goto out;
        }
        if (items.n == 0) {
            s = snlvk_fail(SNLVK_E_INVALID, "%s: expected one line per validation image, got none", apath);
            goto out;
        }
        s = decode_items(&items, 3, image_size, limit, vdir, d);
    }
out:
    free(text);
    free(ann);
    data_names_free(&wnids);
    items_free(&items);
    return s;
}
