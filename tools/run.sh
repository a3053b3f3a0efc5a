#!/bin/sh
# The main job on a fresh Debian 12 machine: install what is missing, build, run.
set -e
cd "$(dirname "$0")/.."
sh tools/deps.sh
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
./build/snlvk devices
./build/snlvk bench --gemm
