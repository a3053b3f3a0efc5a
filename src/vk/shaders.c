/* The table of SPIR-V modules compiled from shaders/ at build time. */
#include <string.h>

#include "vk/vk.h"
#include "shader_table.h"

const vk_shader *vk_shader_find(const char *name)
{
    for (size_t i = 0; i < sizeof vk_shaders / sizeof vk_shaders[0]; i++)
        if (strcmp(vk_shaders[i].name, name) == 0) return &vk_shaders[i];
    return NULL;
}
