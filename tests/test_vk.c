/* The Vulkan runtime: memory suballocation, transfers, recorded sequences, pipeline cache. */
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "ops/gemm.h"
#include "vk/vk.h"

static void test_device_info(void)
{
    snlvk_context *ctx = h_context();
    const snlvk_device_info *d = snlvk_context_device(ctx);
    CHECK(d->name[0] != '\0', "device has no name");
    CHECK(d->subgroup_size >= 1, "subgroup size %u", d->subgroup_size);
    CHECK(d->max_shared_memory >= 16384, "shared memory %u", d->max_shared_memory);
    CHECK(d->max_workgroup_invocations >= 128, "invocations %u", d->max_workgroup_invocations);
    CHECK(d->n_heaps >= 1, "no heaps");
    snlvk_device_info all[16];
    int n = 0, chosen = -1;
    CHECK_OK(snlvk_enumerate_devices(NULL, all, 16, &n, &chosen));
    CHECK(n >= 1 && chosen >= 0 && chosen < n, "n=%d chosen=%d", n, chosen);
    CHECK(chosen == d->index, "context uses %d, enumeration picks %d", d->index, chosen);
}

static void test_alloc_reuse(void)
{
    snlvk_context *ctx = h_context();
    vk_buf b[64];
    for (int i = 0; i < 64; i++) CHECK_OK(vk_buf_alloc(ctx, (VkDeviceSize)(1000 + 37 * i), &b[i]));
    for (int i = 0; i < 64; i++) {
        CHECK(b[i].offset % ctx->align == 0, "offset %llu not aligned", (unsigned long long)b[i].offset);
        for (int j = 0; j < i; j++)
            if (b[i].buffer == b[j].buffer)
                CHECK(b[i].offset >= b[j].offset + b[j].size || b[j].offset >= b[i].offset + b[i].size,
                      "allocations %d and %d overlap", i, j);
    }
    VkDeviceSize first = b[0].offset;
    VkBuffer first_buf = b[0].buffer;
    for (int i = 0; i < 64; i++) vk_buf_free(ctx, &b[i]);
    /* freed ranges coalesce: a large allocation fits where the small ones were */
    vk_buf big;
    CHECK_OK(vk_buf_alloc(ctx, 64 * 3000, &big));
    CHECK(big.buffer == first_buf && big.offset == first, "freed space was not reused");
    vk_buf_free(ctx, &big);
    /* a tensor larger than a block gets its own block */
    vk_buf huge;
    CHECK_OK(vk_buf_alloc(ctx, (VkDeviceSize)80 << 20, &huge));
    vk_buf_free(ctx, &huge);
}

static void test_transfer_roundtrip(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 5000003 }; /* larger than the 16 MiB staging buffer: chunked transfers */
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    h_fill(x, N, -3, 3);
    vk_buf b;
    const char *staging = getenv("SNLVK_FORCE_STAGING");
    if (staging && strcmp(staging, "1") == 0)
        CHECK(!snlvk_context_device(ctx)->unified_memory, "SNLVK_FORCE_STAGING=1 left unified memory on");
    CHECK_OK(vk_buf_alloc(ctx, N * sizeof(float), &b));
    CHECK(snlvk_context_device(ctx)->unified_memory ? b.mapped != NULL : b.mapped == NULL,
          "mapping does not follow the memory model");
    float zero = 1;
    CHECK_OK(vk_buf_read(ctx, &b, 0, &zero, 4));
    CHECK(zero == 0.0f, "new buffers are zero-filled, got %g", zero);
    CHECK_OK(vk_buf_write(ctx, &b, 0, x, N * sizeof(float)));
    CHECK_OK(vk_buf_read(ctx, &b, 0, y, N * sizeof(float)));
    CHECK(memcmp(x, y, N * sizeof(float)) == 0, "read back differs");
    CHECK(vk_buf_write(ctx, &b, 8, x, N * sizeof(float)) == SNLVK_E_INVALID, "out-of-range write accepted");
    vk_buf_free(ctx, &b);
    free(x);
    free(y);
}

/* A sequence is recorded once and replayed: each run applies y = 2*a + y again. */
static void test_sequence_replay(void)
{
    snlvk_context *ctx = h_context();
    enum { N = 5000 };
    float a[N], y[N];
    h_fill(a, N, -1, 1);
    vk_buf ba, by;
    CHECK_OK(vk_buf_alloc(ctx, sizeof a, &ba));
    CHECK_OK(vk_buf_alloc(ctx, sizeof y, &by));
    CHECK_OK(vk_buf_write(ctx, &ba, 0, a, sizeof a));
    vk_seq *s;
    CHECK_OK(vk_seq_create(ctx, &s));
    CHECK_OK(vk_seq_begin(s, 1));
    CHECK_OK(op_axpby(s, ctx, &ba, &by, &by, N, 2.0f, 1.0f));
    CHECK_OK(vk_seq_end(s));
    for (int r = 0; r < 3; r++) CHECK_OK(vk_seq_run(s));
    CHECK_OK(vk_buf_read(ctx, &by, 0, y, sizeof y));
    int bad = 0;
    for (int i = 0; i < N; i++) bad += fabsf(y[i] - 6.0f * a[i]) > 1e-5f * (1 + fabsf(a[i]));
    CHECK(bad == 0, "%d of %d elements wrong after 3 replays", bad, N);
    double ms[4];
    int n = 0;
    CHECK_OK(vk_seq_times(s, ms, 4, &n));
    CHECK(n == 1 && ms[0] >= 0, "timestamps: n=%d", n);
    vk_seq_destroy(s);
    vk_buf_free(ctx, &ba);
    vk_buf_free(ctx, &by);
}

static void test_pipeline_cache_corrupt(void)
{
    /* A cache file of the wrong device or garbage is ignored with a warning, never fatal. */
    char dir[] = "/tmp/snlvk-cache-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[512];
    snprintf(path, sizeof path, "%s/snlvk", dir);
    mkdir(path, 0755);
    const snlvk_device_info *d = snlvk_context_device(h_context());
    snprintf(path, sizeof path, "%s/snlvk/pipelines-%04x-%04x.bin", dir, d->vendor_id, d->device_id);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs("this is not a pipeline cache, it is long enough to look like one at first", f);
    fclose(f);
    const char *old = getenv("XDG_CACHE_HOME");
    char *saved = old ? strdup(old) : NULL;
    setenv("XDG_CACHE_HOME", dir, 1);
    snlvk_context_opts o;
    snlvk_context_opts_default(&o);
    o.validation = 1;
    snlvk_context *ctx = NULL;
    CHECK_OK(snlvk_context_create(&o, &ctx));
    if (ctx) {
        /* builds a pipeline, then saves a valid cache over the corrupt one */
        vk_buf b;
        CHECK_OK(vk_buf_alloc(ctx, 64, &b));
        vk_seq *s;
        CHECK_OK(vk_seq_create(ctx, &s));
        CHECK_OK(vk_seq_begin(s, 0));
        CHECK_OK(op_axpby(s, ctx, &b, &b, &b, 16, 1, 1));
        CHECK_OK(vk_seq_end(s));
        CHECK_OK(vk_seq_run(s));
        vk_seq_destroy(s);
        vk_buf_free(ctx, &b);
        CHECK(snlvk_context_validation_messages(ctx) == 0, "validation messages");
        snlvk_context_destroy(ctx);
    }
    f = fopen(path, "rb");
    unsigned char hdr[32] = {0};
    size_t got = f ? fread(hdr, 1, sizeof hdr, f) : 0;
    if (f) fclose(f);
    uint32_t version = 0;
    memcpy(&version, hdr + 4, 4);
    CHECK(got == sizeof hdr && version == 1, "the cache was not rewritten with a valid header");
    /* and a second context loads it */
    ctx = NULL;
    CHECK_OK(snlvk_context_create(&o, &ctx));
    snlvk_context_destroy(ctx);
    if (saved) {
        setenv("XDG_CACHE_HOME", saved, 1);
        free(saved);
    } else
        unsetenv("XDG_CACHE_HOME");
    remove(path);
    snprintf(path, sizeof path, "%s/snlvk", dir);
    rmdir(path);
    rmdir(dir);
}

static void test_bad_device_index(void)
{
    snlvk_context_opts o;
    snlvk_context_opts_default(&o);
    o.device_index = 99;
    snlvk_context *ctx = NULL;
    snlvk_status s = snlvk_context_create(&o, &ctx);
    CHECK(s == SNLVK_E_NO_DEVICE && ctx == NULL, "got %s", snlvk_status_name(s));
    CHECK(strstr(snlvk_last_error(), "device 99 does not exist") != NULL, "message: %s", snlvk_last_error());
    CHECK(strstr(snlvk_last_error(), snlvk_context_device(h_context())->name) != NULL,
          "message does not list the devices: %s", snlvk_last_error());
}

int main(void)
{
    RUN(test_device_info);
    RUN(test_alloc_reuse);
    RUN(test_transfer_roundtrip);
    RUN(test_sequence_replay);
    RUN(test_pipeline_cache_corrupt);
    RUN(test_bad_device_index);
    return h_finish();
}
