#!/bin/sh
# The main job on a fresh Debian 12 machine: install what is missing, build, and train the
# small ResNet on Fashion-MNIST on the best Vulkan device (lavapipe on a machine without GPU).
set -e
cd "$(dirname "$0")/.."
sh tools/deps.sh
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
./build/snlvk devices
./build/snlvk train "$@"
