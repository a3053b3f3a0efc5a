/* Instance and device creation, device choice and properties, the pipeline cache. */
#include "vk/vk.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "vk/mem.h"

const char *vk_result_name(VkResult r)
{
    switch (r) {
#define R(x) case x: return #x;
        R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_INCOMPLETE)
        R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT) R(VK_ERROR_EXTENSION_NOT_PRESENT) R(VK_ERROR_FEATURE_NOT_PRESENT)
        R(VK_ERROR_INCOMPATIBLE_DRIVER) R(VK_ERROR_TOO_MANY_OBJECTS) R(VK_ERROR_FORMAT_NOT_SUPPORTED)
        R(VK_ERROR_FRAGMENTED_POOL) R(VK_ERROR_OUT_OF_POOL_MEMORY) R(VK_ERROR_UNKNOWN)
#undef R
    default: return "VK_ERROR_(unnamed)";
    }
}

snlvk_status vk_fail(VkResult r, const char *call, const char *file, int line)
{
    snlvk_status s = SNLVK_E_VULKAN;
    if (r == VK_ERROR_DEVICE_LOST) s = SNLVK_E_DEVICE_LOST;
    else if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY ||
             r == VK_ERROR_OUT_OF_POOL_MEMORY)
        s = SNLVK_E_OOM;
    return snlvk_fail(s, "%s failed with %s (%s:%d)", call, vk_result_name(r), file, line);
}

void vk_log(snlvk_context *ctx, int level, const char *fmt, ...)
{
    if (!ctx->log) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->log(ctx->log_user, level, msg);
}

void snlvk_context_opts_default(snlvk_context_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device_index = -1;
    o->validation = -1;
}

/* Loads the Vulkan loader with dlopen (SNLVK_VULKAN_LOADER names another file, which
 * also lets tests show what a machine without one sees) and hands it to volk. */
static snlvk_status load_vulkan(void)
{
    static void *lib = NULL;
    if (lib) return SNLVK_OK;
    const char *name = getenv("SNLVK_VULKAN_LOADER");
    if (!name || !*name) name = "libvulkan.so.1";
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    PFN_vkGetInstanceProcAddr gipa = h ? (PFN_vkGetInstanceProcAddr)(uintptr_t)dlsym(h, "vkGetInstanceProcAddr") : NULL;
    if (!gipa) {
        if (h) dlclose(h);
        return snlvk_fail(SNLVK_E_NO_LOADER,
                          "the Vulkan loader (%s) was not found; install it with 'apt-get install libvulkan1' "
                          "and a driver ('mesa-vulkan-drivers' runs on the CPU)",
                          name);
    }
    volkInitializeCustom(gipa);
    lib = h;
    return SNLVK_OK;
}

static int has_layer(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkLayerProperties *p = calloc(n, sizeof *p);
    if (!p) return 0;
    int found = 0;
    if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].layerName, name) == 0;
    free(p);
    return found;
}

static int has_instance_ext(const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    if (!p) return 0;
    int found = 0;
    if (vkEnumerateInstanceExtensionProperties(NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

static int has_device_ext(VkPhysicalDevice pd, const char *name)
{
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkExtensionProperties *p = calloc(n, sizeof *p);
    if (!p) return 0;
    int found = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
        for (uint32_t i = 0; i < n; i++) found |= strcmp(p[i].extensionName, name) == 0;
    free(p);
    return found;
}

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
                                                     VkDebugUtilsMessageTypeFlagsEXT type,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                     void *user)
{
    snlvk_context *ctx = user;
    (void)type;
    if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT)) {
        atomic_fetch_add(&ctx->validation_count, 1);
        vk_log(ctx, SNLVK_LOG_ERROR, "validation: %s", data && data->pMessage ? data->pMessage : "(no message)");
    }
    return VK_FALSE;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end) return -2;
    return (int)x;
}

static snlvk_status create_instance(snlvk_context *ctx, int validation)
{
    const char *exts[4];
    uint32_t n_ext = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_instance_ext(VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_ext++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    const char *layers[1];
    uint32_t n_layers = 0;
    if (validation) {
        if (!has_layer("VK_LAYER_KHRONOS_validation"))
            return snlvk_fail(SNLVK_E_UNSUPPORTED,
                              "validation was requested but VK_LAYER_KHRONOS_validation is not installed "
                              "(apt-get install vulkan-validationlayers)");
        if (!has_instance_ext(VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
            return snlvk_fail(SNLVK_E_UNSUPPORTED, "validation was requested but %s is missing",
                              VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
        layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
        exts[n_ext++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
    }
    uint32_t api = VK_API_VERSION_1_1;
    if (vkEnumerateInstanceVersion) vkEnumerateInstanceVersion(&api);
    if (api > VK_API_VERSION_1_3) api = VK_API_VERSION_1_3;
    ctx->api_version = api;
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "snlvk",
                             .applicationVersion = VK_MAKE_VERSION(0, 1, 0),
                             .pEngineName = "snlvk",
                             .apiVersion = api};
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                           VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT,
        .pfnUserCallback = debug_callback,
        .pUserData = ctx};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
                               .pNext = validation ? &dbg : NULL,
                               .flags = flags,
                               .pApplicationInfo = &app,
                               .enabledLayerCount = n_layers,
                               .ppEnabledLayerNames = layers,
                               .enabledExtensionCount = n_ext,
                               .ppEnabledExtensionNames = exts};
    VkResult r = vkCreateInstance(&ci, NULL, &ctx->instance);
    if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
        return snlvk_fail(SNLVK_E_NO_DEVICE,
                          "no Vulkan driver is installed (vkCreateInstance: VK_ERROR_INCOMPATIBLE_DRIVER); "
                          "install 'mesa-vulkan-drivers' for the CPU driver or your GPU's Vulkan driver");
    VK_TRY(r);
    volkLoadInstanceOnly(ctx->instance);
    if (validation) {
        VK_TRY(vkCreateDebugUtilsMessengerEXT(ctx->instance, &dbg, NULL, &ctx->messenger));
        ctx->validation = 1;
    }
    return SNLVK_OK;
}

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x1002: return "AMD";
    case 0x10DE: return "NVIDIA";
    case 0x8086: return "Intel";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x106B: return "Apple";
    case 0x10005: return "Mesa";
    default: return "unknown";
    }
}


static int compute_queue_family(VkPhysicalDevice pd, uint32_t *family, uint32_t *ts_bits)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties q[32];
    if (n > 32) n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    /* Prefer a family with compute; among those, one with graphics too has the widest support. */
    int best = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
        if (best < 0 || (q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) {
            if (best < 0) best = (int)i;
        }
    }
    if (best < 0) return 0;
    *family = (uint32_t)best;
    *ts_bits = q[best].timestampValidBits;
    return 1;
}

/* Fills the public description of one physical device. */
static void describe_device(VkPhysicalDevice pd, int index, snlvk_device_info *d, uint32_t *ts_bits_out)
{
    memset(d, 0, sizeof *d);
    d->index = index;
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(pd, &p);
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    int v12 = p.apiVersion >= VK_API_VERSION_1_2;
    sg.pNext = v12 ? &drv : NULL;
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    if (p.apiVersion >= VK_API_VERSION_1_1) vkGetPhysicalDeviceProperties2(pd, &p2);
    snprintf(d->name, sizeof d->name, "%s", p.deviceName);
    const char *t = "other";
    switch (p.deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: t = "discrete"; break;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: t = "integrated"; break;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: t = "virtual"; break;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: t = "cpu"; break;
    default: break;
    }
    snprintf(d->type, sizeof d->type, "%s", t);
    d->vendor_id = p.vendorID;
    d->device_id = p.deviceID;
    snprintf(d->vendor, sizeof d->vendor, "%s", vendor_name(p.vendorID));
    if (v12) {
        snprintf(d->driver_name, sizeof d->driver_name, "%s", drv.driverName);
        snprintf(d->driver_info, sizeof d->driver_info, "%s", drv.driverInfo);
    }
    uint32_t dv = p.driverVersion;
    if (p.vendorID == 0x10DE)
        snprintf(d->driver_version, sizeof d->driver_version, "%u.%u.%u.%u", dv >> 22, (dv >> 14) & 0xff,
                 (dv >> 6) & 0xff, dv & 0x3f);
    else
        snprintf(d->driver_version, sizeof d->driver_version, "%u.%u.%u", VK_VERSION_MAJOR(dv),
                 VK_VERSION_MINOR(dv), VK_VERSION_PATCH(dv));
    snprintf(d->api_version, sizeof d->api_version, "%u.%u.%u", VK_VERSION_MAJOR(p.apiVersion),
             VK_VERSION_MINOR(p.apiVersion), VK_VERSION_PATCH(p.apiVersion));
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    d->n_heaps = (int)(mp.memoryHeapCount < 16 ? mp.memoryHeapCount : 16);
    for (int i = 0; i < d->n_heaps; i++) {
        d->heaps[i].size = mp.memoryHeaps[i].size;
        d->heaps[i].device_local = (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
    }
    d->subgroup_size = sg.subgroupSize;
    d->subgroup_arithmetic = (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) != 0;
    d->subgroup_shuffle = (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) != 0;
    d->subgroup_ballot = (sg.supportedOperations & VK_SUBGROUP_FEATURE_BALLOT_BIT) != 0;
    if (!(sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT))
        d->subgroup_arithmetic = d->subgroup_shuffle = d->subgroup_ballot = 0;
    d->max_shared_memory = p.limits.maxComputeSharedMemorySize;
    d->max_workgroup_invocations = p.limits.maxComputeWorkGroupInvocations;
    for (int i = 0; i < 3; i++) d->max_workgroup_size[i] = p.limits.maxComputeWorkGroupSize[i];
    if (p.apiVersion >= VK_API_VERSION_1_2) {
        VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
        VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f12};
        vkGetPhysicalDeviceFeatures2(pd, &f2);
        d->shader_float16 = f12.shaderFloat16 != 0;
    }
    d->push_descriptor = has_device_ext(pd, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    uint32_t family = 0, ts_bits = 0;
    int has_compute = compute_queue_family(pd, &family, &ts_bits);
    d->timestamps = has_compute && ts_bits > 0 && p.limits.timestampPeriod > 0;
    d->timestamp_period_ns = p.limits.timestampPeriod;
    if (ts_bits_out) *ts_bits_out = ts_bits;
    /* Unified memory: an integrated GPU or CPU device whose device-local memory the host can map. */
    int mappable_local = 0;
    for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp.memoryTypes[i].propertyFlags;
        VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                     VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        if ((f & want) == want) mappable_local = 1;
    }
    d->unified_memory = mappable_local && (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
                                           p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU);
    d->max_storage_buffer_range = p.limits.maxStorageBufferRange;
    d->usable = has_compute && p.apiVersion >= VK_API_VERSION_1_1;
}

/* The device a context uses: the requested index, or the best type. */
static snlvk_status choose_device(VkPhysicalDevice *pds, snlvk_device_info *infos, int n, int requested,
                                  int *chosen)
{
    if (n == 0)
        return snlvk_fail(SNLVK_E_NO_DEVICE,
                          "no Vulkan device found; install 'mesa-vulkan-drivers' for the CPU device "
                          "(lavapipe) or your GPU's Vulkan driver");
    (void)pds;
    if (requested >= 0) {
        if (requested >= n) {
            char list[1024] = "";
            size_t len = 0;
            for (int i = 0; i < n && len < sizeof list; i++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%d: %s (%s)", i ? ", " : "", i,
                                        infos[i].name, infos[i].type);
            return snlvk_fail(SNLVK_E_NO_DEVICE, "device %d does not exist; the devices are %s", requested,
                              list);
        }
        if (!infos[requested].usable)
            return snlvk_fail(SNLVK_E_NO_DEVICE, "device %d (%s) has no compute queue or is older than Vulkan 1.1",
                              requested, infos[requested].name);
        *chosen = requested;
        return SNLVK_OK;
    }
    int best = -1, best_rank = -1;
    for (int i = 0; i < n; i++) {
        if (!infos[i].usable) continue;
        static const char *ranks[] = {"other", "cpu", "virtual", "integrated", "discrete"};
        int rank = 0;
        for (int r = 0; r < 5; r++)
            if (strcmp(infos[i].type, ranks[r]) == 0) rank = r;
        if (rank > best_rank) best = i, best_rank = rank;
    }
    if (best < 0) return snlvk_fail(SNLVK_E_NO_DEVICE, "no Vulkan device has a compute queue and Vulkan 1.1");
    *chosen = best;
    return SNLVK_OK;
}

static snlvk_status resolve_opts(const snlvk_context_opts *opts, int *device, int *validation)
{
    snlvk_context_opts d;
    snlvk_context_opts_default(&d);
    if (!opts) opts = &d;
    *device = opts->device_index;
    if (*device < 0) {
        *device = env_int("SNLVK_DEVICE", -1);
        if (*device == -2 || *device < -1)
            return snlvk_fail(SNLVK_E_INVALID, "SNLVK_DEVICE='%s': expected a device index (0, 1, ...)",
                              getenv("SNLVK_DEVICE"));
    }
    *validation = opts->validation;
    if (*validation < 0) {
        int v = env_int("SNLVK_VALIDATION", 0);
        if (v == -2) return snlvk_fail(SNLVK_E_INVALID, "SNLVK_VALIDATION='%s': expected 0 or 1", getenv("SNLVK_VALIDATION"));
        *validation = v != 0;
    }
    return SNLVK_OK;
}

static snlvk_status list_physical(VkInstance inst, VkPhysicalDevice **pds, int *n)
{
    uint32_t count = 0;
    VK_TRY(vkEnumeratePhysicalDevices(inst, &count, NULL));
    *pds = calloc(count ? count : 1, sizeof **pds);
    if (!*pds) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    VkResult r = vkEnumeratePhysicalDevices(inst, &count, *pds);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        free(*pds);
        *pds = NULL;
        return vk_fail(r, "vkEnumeratePhysicalDevices", __FILE__, __LINE__);
    }
    *n = (int)count;
    return SNLVK_OK;
}

snlvk_status snlvk_enumerate_devices(const snlvk_context_opts *opts, snlvk_device_info *out, int max, int *count,
                                     int *chosen)
{
    int device = -1, validation = 0;
    SNLVK_TRY(resolve_opts(opts, &device, &validation));
    SNLVK_TRY(load_vulkan());
    snlvk_context tmp;
    memset(&tmp, 0, sizeof tmp);
    SNLVK_TRY(create_instance(&tmp, 0));
    VkPhysicalDevice *pds = NULL;
    int n = 0;
    snlvk_status s = list_physical(tmp.instance, &pds, &n);
    snlvk_device_info *infos = NULL;
    if (s == SNLVK_OK) {
        infos = calloc((size_t)(n ? n : 1), sizeof *infos);
        if (!infos) s = snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    if (s == SNLVK_OK) {
        for (int i = 0; i < n; i++) describe_device(pds[i], i, &infos[i], NULL);
        *chosen = -1;
        s = choose_device(pds, infos, n, device, chosen);
        if (s != SNLVK_OK && n > 0 && device < 0) s = SNLVK_OK; /* listing still works */
        for (int i = 0; i < n && i < max; i++) out[i] = infos[i];
        *count = n;
    }
    free(infos);
    free(pds);
    vkDestroyInstance(tmp.instance, NULL);
    return s;
}

/* ---- pipeline cache on disk ---- */

static void pipeline_cache_path(snlvk_context *ctx)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    char dir[768];
    if (xdg && *xdg) snprintf(dir, sizeof dir, "%s/snlvk", xdg);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/snlvk", home);
    else { ctx->pcache_path[0] = '\0'; return; }
    snprintf(ctx->pcache_path, sizeof ctx->pcache_path, "%s/pipelines-%04x-%04x.bin", dir, ctx->props.vendorID,
             ctx->props.deviceID);
}

/* Returns 1 when `data` is a pipeline cache this exact device and driver wrote. */
static int pipeline_cache_valid(const snlvk_context *ctx, const unsigned char *data, size_t n)
{
    if (n < 16 + VK_UUID_SIZE) return 0;
    uint32_t hdr[4];
    memcpy(hdr, data, sizeof hdr);
    return hdr[0] >= 16 + VK_UUID_SIZE && hdr[0] <= n && hdr[1] == VK_PIPELINE_CACHE_HEADER_VERSION_ONE &&
           hdr[2] == ctx->props.vendorID && hdr[3] == ctx->props.deviceID &&
           memcmp(data + 16, ctx->props.pipelineCacheUUID, VK_UUID_SIZE) == 0;
}

static snlvk_status create_pipeline_cache(snlvk_context *ctx)
{
    pipeline_cache_path(ctx);
    unsigned char *data = NULL;
    size_t n = 0;
    FILE *f = ctx->pcache_path[0] ? fopen(ctx->pcache_path, "rb") : NULL;
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0) {
            long len = ftell(f);
            if (len > 0 && len < (256L << 20) && fseek(f, 0, SEEK_SET) == 0) {
                data = malloc((size_t)len);
                if (data && fread(data, 1, (size_t)len, f) == (size_t)len) n = (size_t)len;
            }
        }
        fclose(f);
        if (n && !pipeline_cache_valid(ctx, data, n)) {
            vk_log(ctx, SNLVK_LOG_WARN, "%s: not a pipeline cache of this device and driver; ignoring it",
                   ctx->pcache_path);
            n = 0;
        }
    }
    VkPipelineCacheCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
                                    .initialDataSize = n,
                                    .pInitialData = n ? data : NULL};
    VkResult r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->pcache);
    if (r != VK_SUCCESS && n) {
        vk_log(ctx, SNLVK_LOG_WARN, "%s: the driver rejected the pipeline cache (%s); ignoring it",
               ctx->pcache_path, vk_result_name(r));
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        r = vkCreatePipelineCache(ctx->device, &ci, NULL, &ctx->pcache);
    }
    free(data);
    VK_TRY(r);
    return SNLVK_OK;
}

/* Creates the directories on the way to the file `path`. */
static void mkdir_parents(const char *path)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return;
    *slash = '\0';
    snlvk_mkdirs(dir);
}

/* Writes the cache atomically (temp file + rename); failures only warn. */
static void save_pipeline_cache(snlvk_context *ctx)
{
    if (!ctx->pcache || !ctx->pcache_path[0]) return;
    size_t n = 0;
    if (vkGetPipelineCacheData(ctx->device, ctx->pcache, &n, NULL) != VK_SUCCESS || n == 0) return;
    void *data = malloc(n);
    if (!data) return;
    if (vkGetPipelineCacheData(ctx->device, ctx->pcache, &n, data) == VK_SUCCESS) {
        mkdir_parents(ctx->pcache_path);
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", ctx->pcache_path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        int ok = f && fwrite(data, 1, n, f) == n;
        if (f) ok = (fclose(f) == 0) && ok;
        if (ok && rename(tmp, ctx->pcache_path) == 0) {
            /* saved */
        } else {
            if (f) remove(tmp);
            vk_log(ctx, SNLVK_LOG_WARN, "%s: could not save the pipeline cache: %s", ctx->pcache_path,
                   strerror(errno));
        }
    }
    free(data);
}

/* ---- context ---- */

static snlvk_status create_device(snlvk_context *ctx)
{
    float prio = 1.0f;
    VkDeviceQueueCreateInfo q = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                 .queueFamilyIndex = ctx->queue_family,
                                 .queueCount = 1,
                                 .pQueuePriorities = &prio};
    const char *exts[2];
    uint32_t n_ext = 0;
    if (has_device_ext(ctx->phys, "VK_KHR_portability_subset")) exts[n_ext++] = "VK_KHR_portability_subset";
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    int v12 = ctx->props.apiVersion >= VK_API_VERSION_1_2 && ctx->api_version >= VK_API_VERSION_1_2;
    if (v12) f12.shaderFloat16 = ctx->info.shader_float16 ? VK_TRUE : VK_FALSE;
    VkDeviceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = v12 ? &f12 : NULL,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &q,
                             .enabledExtensionCount = n_ext,
                             .ppEnabledExtensionNames = exts};
    VK_TRY(vkCreateDevice(ctx->phys, &ci, NULL, &ctx->device));
    volkLoadDevice(ctx->device);
    vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = ctx->queue_family};
    VK_TRY(vkCreateCommandPool(ctx->device, &pci, NULL, &ctx->cmd_pool));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_TRY(vkCreateFence(ctx->device, &fci, NULL, &ctx->fence));
    return SNLVK_OK;
}

static snlvk_status context_init(snlvk_context *ctx, const snlvk_context_opts *opts)
{
    int device = -1, validation = 0;
    SNLVK_TRY(resolve_opts(opts, &device, &validation));
    SNLVK_TRY(load_vulkan());
    SNLVK_TRY(create_instance(ctx, validation));
    VkPhysicalDevice *pds = NULL;
    int n = 0;
    SNLVK_TRY(list_physical(ctx->instance, &pds, &n));
    snlvk_device_info *infos = calloc((size_t)(n ? n : 1), sizeof *infos);
    if (!infos) {
        free(pds);
        return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    }
    for (int i = 0; i < n; i++) describe_device(pds[i], i, &infos[i], NULL);
    int chosen = -1;
    snlvk_status s = choose_device(pds, infos, n, device, &chosen);
    if (s == SNLVK_OK) {
        ctx->phys = pds[chosen];
        describe_device(ctx->phys, chosen, &ctx->info, &ctx->timestamp_valid_bits);
    }
    free(infos);
    free(pds);
    SNLVK_TRY(s);
    vkGetPhysicalDeviceProperties(ctx->phys, &ctx->props);
    vkGetPhysicalDeviceMemoryProperties(ctx->phys, &ctx->mem_props);
    uint32_t ts_bits = 0;
    compute_queue_family(ctx->phys, &ctx->queue_family, &ts_bits);
    /* SNLVK_FORCE_STAGING=1 treats a unified-memory device like a discrete GPU (tensors
     * not mapped, transfers through the staging buffer), so that path is tested everywhere. */
    const char *staging = getenv("SNLVK_FORCE_STAGING");
    if (staging && strcmp(staging, "1") == 0) ctx->info.unified_memory = 0;
    SNLVK_TRY(create_device(ctx));
    SNLVK_TRY(vk_mem_init(ctx));
    SNLVK_TRY(create_pipeline_cache(ctx));
    return SNLVK_OK;
}

snlvk_status snlvk_context_create(const snlvk_context_opts *opts, snlvk_context **out)
{
    *out = NULL;
    snlvk_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return snlvk_fail(SNLVK_E_OOM, "out of host memory");
    atomic_init(&ctx->validation_count, 0);
    if (opts) {
        ctx->log = opts->log;
        ctx->log_user = opts->log_user;
    }
    snlvk_status s = context_init(ctx, opts);
    if (s != SNLVK_OK) {
        snlvk_context_destroy(ctx);
        return s;
    }
    *out = ctx;
    return SNLVK_OK;
}

void snlvk_context_destroy(snlvk_context *ctx)
{
    if (!ctx) return;
    if (ctx->device) {
        vkDeviceWaitIdle(ctx->device);
        for (int i = 0; i < ctx->n_pipelines; i++) {
            vk_pipeline *p = ctx->pipelines[i];
            vkDestroyPipeline(ctx->device, p->pipeline, NULL);
            vkDestroyPipelineLayout(ctx->device, p->layout, NULL);
            vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, NULL);
            free(p);
        }
        save_pipeline_cache(ctx);
        if (ctx->pcache) vkDestroyPipelineCache(ctx->device, ctx->pcache, NULL);
        vk_mem_destroy(ctx);
        if (ctx->fence) vkDestroyFence(ctx->device, ctx->fence, NULL);
        if (ctx->cmd_pool) vkDestroyCommandPool(ctx->device, ctx->cmd_pool, NULL);
        vkDestroyDevice(ctx->device, NULL);
    }
    free(ctx->pipelines);
    free(ctx->pipeline_descs);
    if (ctx->messenger) vkDestroyDebugUtilsMessengerEXT(ctx->instance, ctx->messenger, NULL);
    if (ctx->instance) vkDestroyInstance(ctx->instance, NULL);
    free(ctx);
}

const snlvk_device_info *snlvk_context_device(const snlvk_context *ctx) { return &ctx->info; }

int snlvk_context_validation_messages(const snlvk_context *ctx)
{
    return atomic_load(&((snlvk_context *)ctx)->validation_count);
}
