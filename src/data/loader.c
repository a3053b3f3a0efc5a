/* The batch loader: a per-epoch permutation and per-example augmentation drawn from
 * (seed, epoch) only, normalisation through a per-channel lookup table, and one background
 * thread that fills the next batch into one of two slots while the caller uses the last. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* stat, opendir, sysconf, pthreads under -std=c11 */
#endif
#include "data/data_internal.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic random numbers (never rand()) ---- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t mix2(uint64_t a, uint64_t b)
{
    uint64_t s = a;
    uint64_t x = splitmix64(&s) ^ b;
    return splitmix64(&x);
}

typedef struct xoshiro {
    uint64_t s[4];
} xoshiro;

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xo_next(xoshiro *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void xo_seed(xoshiro *r, uint64_t seed)
{
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&sm);
}

/* Uniform in [0, bound), bound > 0, without modulo bias. */
static uint64_t xo_bounded(xoshiro *r, uint64_t bound)
{
    uint64_t threshold = (0 - bound) % bound, x;
    do x = xo_next(r);
    while (x < threshold);
    return x % bound;
}

/* ---- the loader ---- */

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct slot {
    float *img;
    int32_t *lab, *idx;  /* idx: the examples' positions in the dataset */
    int count, batch, state;
} slot;

struct snlvk_loader {
    const snlvk_dataset *d;
    snlvk_loader_opts o;
    int pad, nb;
    size_t chw;
    float lut[3][256];
    int32_t *perm;
    /* shared with the worker, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    pthread_t thread;
    int started, epoch, next_prep, next_take, busy, quit;
    uint64_t gen;
    slot slots[2];
};

static const uint64_t SHUFFLE_KEY = 0x53485546464c4531ull, AUGMENT_KEY = 0x4155474d454e5431ull;

/* Writes example `idx` of the dataset, normalised and (if enabled) augmented, to dst. */
static void prepare_example(const snlvk_loader *l, int epoch, int idx, float *dst)
{
    const snlvk_dataset *d = l->d;
    const int C = d->c, H = d->h, W = d->w;
    const uint8_t *src = d->images + (size_t)idx * l->chw;
    if (!l->o.augment) {
        for (int c = 0; c < C; c++) {
            const float *lut = l->lut[c];
            const uint8_t *s = src + (size_t)c * H * W;
            float *o = dst + (size_t)c * H * W;
            for (size_t i = 0; i < (size_t)H * W; i++) o[i] = lut[s[i]];
        }
        return;
    }
    xoshiro r;
    xo_seed(&r, mix2(mix2(l->o.seed ^ AUGMENT_KEY, (uint64_t)epoch), (uint64_t)idx));
    const int p = l->pad;
    /* torchvision: RandomCrop(padding=p) picks the top-left corner of the crop in the padded
     * image uniformly in [0, 2p]; RandomHorizontalFlip then mirrors the crop with p = 0.5. */
    const int oy = (int)xo_bounded(&r, (uint64_t)(2 * p + 1)) - p;
    const int ox = (int)xo_bounded(&r, (uint64_t)(2 * p + 1)) - p;
    const int flip = (int)(xo_next(&r) >> 63);
    for (int c = 0; c < C; c++) {
        const float *lut = l->lut[c];
        const uint8_t *s = src + (size_t)c * H * W;
        float *o = dst + (size_t)c * H * W;
        for (int y = 0; y < H; y++) {
            int sy = y + oy;
            float *orow = o + (size_t)y * W;
            if (sy < 0 || sy >= H) {
                for (int x = 0; x < W; x++) orow[x] = lut[0];
                continue;
            }
            const uint8_t *srow = s + (size_t)sy * W;
            for (int x = 0; x < W; x++) {
                int sx = (flip ? W - 1 - x : x) + ox;
                orow[x] = sx < 0 || sx >= W ? lut[0] : lut[srow[sx]];
            }
        }
    }
}

static void fill_slot(const snlvk_loader *l, int epoch, int b, slot *s)
{
    const int n = l->d->n, bs = l->o.batch;
    long start = (long)b * bs;
    int count = (int)(n - start < bs ? n - start : bs);
    for (int j = 0; j < count; j++) {
        int idx = l->perm[start + j];
        prepare_example(l, epoch, idx, s->img + (size_t)j * l->chw);
        s->lab[j] = l->d->labels[idx];
        s->idx[j] = idx;
    }
    s->count = count;
    s->batch = b;
}

static void *worker(void *arg)
{
    snlvk_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        slot *s = NULL;
        while (!l->quit) {
            s = NULL;
            if (l->started && l->next_prep < l->nb)
                for (int i = 0; i < 2; i++)
                    if (l->slots[i].state == SLOT_FREE) s = &l->slots[i];
            if (s) break;
            pthread_cond_wait(&l->cv_work, &l->mu);
        }
        if (l->quit) break;
        int b = l->next_prep++, epoch = l->epoch;
        uint64_t gen = l->gen;
        s->state = SLOT_FILLING;
        l->busy = 1;
        pthread_mutex_unlock(&l->mu);
        fill_slot(l, epoch, b, s);
        pthread_mutex_lock(&l->mu);
        l->busy = 0;
        s->state = gen == l->gen ? SLOT_READY : SLOT_FREE;
        pthread_cond_broadcast(&l->cv_done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

snlvk_status snlvk_loader_create(const snlvk_dataset *d, const snlvk_loader_opts *o, snlvk_loader **out)
{
    if (!out) return snlvk_fail(SNLVK_E_INVALID, "snlvk_loader_create: out is NULL");
    *out = NULL;
    if (!d || !o) return snlvk_fail(SNLVK_E_INVALID, "snlvk_loader_create: dataset and options must not be NULL");
    if (!d->images || !d->labels || d->n <= 0)
        return snlvk_fail(SNLVK_E_INVALID, "loader: dataset '%s': expected a loaded dataset with n > 0, got n = %d",
                          d->name, d->n);
    if (d->c < 1 || d->c > 3 || d->h <= 0 || d->w <= 0)
        return snlvk_fail(SNLVK_E_INVALID, "loader: dataset '%s': shape: expected 1..3 channels and h, w > 0, got %d x %d x %d",
                          d->name, d->c, d->h, d->w);
    if (o->batch <= 0)
        return snlvk_fail(SNLVK_E_INVALID, "loader: option 'batch': expected > 0, got %d", o->batch);
    size_t chw = (size_t)d->c * (size_t)d->h * (size_t)d->w, bfl;
    if (!data_checked_mul(chw, (size_t)o->batch, &bfl) || bfl > (size_t)LONG_MAX / sizeof(float))
        return snlvk_fail(SNLVK_E_INVALID, "loader: option 'batch': %d images of %zu values overflow the address space",
                          o->batch, chw);
    for (int c = 0; c < d->c; c++)
        if (!(d->std[c] > 0.0f))
            return snlvk_fail(SNLVK_E_INVALID, "loader: dataset '%s': field 'std[%d]': expected > 0, got %g", d->name,
                              c, (double)d->std[c]);
    for (int i = 0; i < d->n; i++)
        if (d->labels[i] < 0 || d->labels[i] >= d->classes)
            return snlvk_fail(SNLVK_E_INVALID, "loader: dataset '%s': field 'label[%d]': expected 0..%d, got %d",
                              d->name, i, d->classes - 1, (int)d->labels[i]);

    snlvk_loader *l = calloc(1, sizeof *l);
    if (!l) return snlvk_fail(SNLVK_E_OOM, "loader: out of memory");
    l->d = d;
    l->o = *o;
    l->o.augment = o->augment ? 1 : 0;
    l->chw = chw;
    l->pad = d->crop_pad > 0 ? d->crop_pad : (d->h >= 64 ? 8 : 4);
    long nb = o->drop_last ? (long)d->n / o->batch : ((long)d->n + o->batch - 1) / o->batch;
    l->nb = (int)nb;
    for (int c = 0; c < d->c; c++)
        for (int v = 0; v < 256; v++) l->lut[c][v] = ((float)v / 255.0f - d->mean[c]) / d->std[c];
    l->perm = malloc((size_t)d->n * sizeof *l->perm);
    for (int i = 0; i < 2; i++) {
        l->slots[i].img = malloc(bfl * sizeof(float));
        l->slots[i].lab = malloc((size_t)o->batch * sizeof(int32_t));
        l->slots[i].idx = malloc((size_t)o->batch * sizeof(int32_t));
    }
    if (!l->perm || !l->slots[0].img || !l->slots[1].img || !l->slots[0].lab || !l->slots[1].lab ||
        !l->slots[0].idx || !l->slots[1].idx) {
        for (int i = 0; i < 2; i++) {
            free(l->slots[i].img);
            free(l->slots[i].lab);
            free(l->slots[i].idx);
        }
        free(l->perm);
        free(l);
        return snlvk_fail(SNLVK_E_OOM, "loader: out of memory for two batches of %d x %zu floats", o->batch, chw);
    }
    int e1 = pthread_mutex_init(&l->mu, NULL);
    int e2 = e1 ? 0 : pthread_cond_init(&l->cv_work, NULL);
    int e3 = e1 || e2 ? 0 : pthread_cond_init(&l->cv_done, NULL);
    int e4 = e1 || e2 || e3 ? 0 : pthread_create(&l->thread, NULL, worker, l);
    if (e1 || e2 || e3 || e4) {
        if (!e1) pthread_mutex_destroy(&l->mu);
        if (!e1 && !e2) pthread_cond_destroy(&l->cv_work);
        if (!e1 && !e2 && !e3) pthread_cond_destroy(&l->cv_done);
        for (int i = 0; i < 2; i++) {
            free(l->slots[i].img);
            free(l->slots[i].lab);
            free(l->slots[i].idx);
        }
        free(l->perm);
        free(l);
        int e = e1 ? e1 : e2 ? e2 : e3 ? e3 : e4;
        return snlvk_fail(e == ENOMEM || e == EAGAIN ? SNLVK_E_OOM : SNLVK_E_INVALID,
                          "loader: cannot start the background thread: %s", strerror(e));
    }
    *out = l;
    return SNLVK_OK;
}

snlvk_status snlvk_loader_start_epoch(snlvk_loader *l, int epoch)
{
    if (!l) return snlvk_fail(SNLVK_E_INVALID, "snlvk_loader_start_epoch: loader is NULL");
    if (epoch < 0) return snlvk_fail(SNLVK_E_INVALID, "loader: epoch: expected >= 0, got %d", epoch);
    pthread_mutex_lock(&l->mu);
    l->gen++;
    l->started = 0;
    while (l->busy) pthread_cond_wait(&l->cv_done, &l->mu);
    for (int i = 0; i < 2; i++) l->slots[i].state = SLOT_FREE;
    const int n = l->d->n;
    for (int i = 0; i < n; i++) l->perm[i] = i;
    if (l->o.shuffle) {
        xoshiro r;
        xo_seed(&r, mix2(l->o.seed ^ SHUFFLE_KEY, (uint64_t)epoch));
        for (int i = n - 1; i > 0; i--) {
            int j = (int)xo_bounded(&r, (uint64_t)i + 1);
            int32_t t = l->perm[i];
            l->perm[i] = l->perm[j];
            l->perm[j] = t;
        }
    }
    l->epoch = epoch;
    l->next_prep = l->next_take = 0;
    l->started = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return SNLVK_OK;
}

int snlvk_loader_batches_per_epoch(const snlvk_loader *l) { return l ? l->nb : 0; }

long snlvk_loader_batch_floats(const snlvk_loader *l) { return l ? (long)(l->chw * (size_t)l->o.batch) : 0; }

snlvk_status snlvk_loader_next(snlvk_loader *l, float *images, int32_t *labels, int32_t *indices, int *count)
{
    if (count) *count = 0;
    if (!l || !images || !labels || !count)
        return snlvk_fail(SNLVK_E_INVALID, "snlvk_loader_next: loader, images, labels and count must not be NULL");
    pthread_mutex_lock(&l->mu);
    if (!l->started) {
        pthread_mutex_unlock(&l->mu);
        return snlvk_fail(SNLVK_E_INVALID, "loader: snlvk_loader_next called before snlvk_loader_start_epoch");
    }
    if (l->next_take >= l->nb) {
        pthread_mutex_unlock(&l->mu);
        return SNLVK_OK;
    }
    slot *s = NULL;
    for (;;) {
        for (int i = 0; i < 2; i++)
            if (l->slots[i].state == SLOT_READY && l->slots[i].batch == l->next_take) s = &l->slots[i];
        if (s) break;
        pthread_cond_wait(&l->cv_done, &l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    /* a READY slot belongs to the consumer until it is marked FREE */
    memcpy(images, s->img, (size_t)s->count * l->chw * sizeof(float));
    memcpy(labels, s->lab, (size_t)s->count * sizeof(int32_t));
    if (indices) memcpy(indices, s->idx, (size_t)s->count * sizeof(int32_t));
    *count = s->count;
    pthread_mutex_lock(&l->mu);
    s->state = SLOT_FREE;
    l->next_take++;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    return SNLVK_OK;
}

void snlvk_loader_destroy(snlvk_loader *l)
{
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    l->quit = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_done);
    for (int i = 0; i < 2; i++) {
        free(l->slots[i].img);
        free(l->slots[i].lab);
        free(l->slots[i].idx);
    }
    free(l->perm);
    free(l);
}
