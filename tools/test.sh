#!/bin/sh
# The whole test suite on a fresh Debian 12 machine: install what is missing, build with
# -Werror, run every test on the chosen Vulkan device with the validation layer on, then
# run the unit tests again in an AddressSanitizer + UndefinedBehaviorSanitizer build.
set -e
cd "$(dirname "$0")/.."
sh tools/deps.sh
[ -d build-test ] || meson setup build-test --buildtype=debugoptimized -Dwerror=true >/dev/null
ninja -C build-test >/dev/null
meson test -C build-test --print-errorlogs
[ -d build-asan ] || meson setup build-asan --buildtype=debug -Dwerror=true -Db_sanitize=address,undefined \
    -Db_lundef=false >/dev/null
ninja -C build-asan >/dev/null
# The Vulkan driver (llvmpipe) keeps allocations until process exit: leak checks are off,
# every other ASan/UBSan error stops the test.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --suite unit --print-errorlogs
