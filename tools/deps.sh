#!/bin/sh
# Installs the Debian packages snlvk needs, only those missing (quiet when all are there).
# Sourced by tools/run.sh and tools/test.sh; safe to run on its own.
set -e
PKGS="meson ninja-build gcc pkg-config glslang-tools libvulkan-dev libvulkan1 libvulkan-volk-dev \
mesa-vulkan-drivers vulkan-validationlayers libstb-dev zlib1g-dev dataset-fashion-mnist \
python3 python3-torch python3-numpy"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "snlvk: installing Debian packages:$missing"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
