/* volk (Debian's libvulkan-volk-dev ships its source): loads libvulkan at run time,
 * so snlvk starts, and explains itself, on machines without a Vulkan loader. */
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpedantic"
#endif
#include <volk.c>
