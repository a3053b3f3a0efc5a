#!/bin/sh
# The command line's promises: help, version, usage errors (exit 2), a missing device
# or loader (exit 1 with the Debian package to install), device listing and the bench.
SNLVK="$1"
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME RC PATTERN -- CMD...: CMD exits with RC and its output matches PATTERN
expect() {
    name=$1 rc=$2 pattern=$3
    shift 4
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -eq "$rc" ] && grep -q -- "$pattern" "$tmp/out"; then
        pass=$((pass + 1)); echo "ok   $name"
    else
        fail=$((fail + 1)); echo "FAIL $name (exit $got, wanted $rc and /$pattern/):"; sed 's/^/     /' "$tmp/out"
    fi
}

expect help 0 "usage: snlvk COMMAND" -- "$SNLVK" --help
expect version 0 "snlvk [0-9]" -- "$SNLVK" --version
expect help-command 0 "snlvk devices \[--json\]" -- "$SNLVK" help devices
expect no-command 2 "usage:" -- "$SNLVK"
expect unknown-command 2 "unknown command 'frobnicate'" -- "$SNLVK" frobnicate
expect unknown-option 2 "unknown option '--frobnicate'" -- "$SNLVK" devices --frobnicate
expect bad-device-value 2 "--device expects an integer" -- "$SNLVK" devices --device abc
expect device-99 1 "device 99 does not exist; the devices are 0: " -- "$SNLVK" bench --gemm --device 99
expect device-99-env 1 "device 99 does not exist" -- env SNLVK_DEVICE=99 "$SNLVK" bench --gemm
expect no-driver 1 "mesa-vulkan-drivers" -- env VK_DRIVER_FILES=/nonexistent.json VK_ICD_FILENAMES=/nonexistent.json "$SNLVK" devices
expect no-loader 1 "apt-get install libvulkan1" -- env SNLVK_VULKAN_LOADER=/nonexistent/libvulkan.so.1 "$SNLVK" devices
expect devices 0 "\*" -- "$SNLVK" devices
expect devices-json 0 "llvmpipe" -- "$SNLVK" devices --json
"$SNLVK" devices --json >"$tmp/dev.json" 2>/dev/null
if python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert any(x['chosen'] for x in d['devices']); assert d['devices'][d['chosen']]['chosen']" "$tmp/dev.json"; then
    pass=$((pass + 1)); echo "ok   devices-json-valid"
else
    fail=$((fail + 1)); echo "FAIL devices-json-valid"; cat "$tmp/dev.json"
fi
expect bench-usage 2 "pass --gemm, --ops or --step" -- "$SNLVK" bench
expect bench-gemm 0 "512x512x512" -- "$SNLVK" bench --gemm --reps 2
expect bench-stage-usage 2 "--stage expects pretrain, mask or finetune" -- "$SNLVK" bench --step --stage warmup
expect bench-step 0 "mask step of resnet8-mini, batch 4" -- "$SNLVK" bench --step --stage mask --model resnet8-mini \
    --batch 4 --reps 1
expect bench-step-cached 0 "finetune step (cached teacher)" -- "$SNLVK" bench --step --stage finetune --cached-teacher \
    --model resnet8-mini --batch 4 --reps 1
"$SNLVK" bench --step --model resnet8-mini --batch 4 --reps 1 --json >"$tmp/step.json" 2>/dev/null
if python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert [s['stage'] for s in d['steps']] == ['pretrain', 'mask', 'finetune']
for s in d['steps']:
    assert s['median_ms'] > 0 and s['gpu_median_ms'] > 0 and s['families']['conv'] > 0
    assert abs(sum(k['ms'] for k in s['kernels']) - sum(s['families'].values())) < 0.05
assert sum(k['calls'] for k in d['steps'][1]['kernels'] if k['kernel'] == 'adam') > 0
assert not any(k['kernel'] == 'adam' for k in d['steps'][0]['kernels'])
" "$tmp/step.json"; then
    pass=$((pass + 1)); echo "ok   bench-step-json"
else
    fail=$((fail + 1)); echo "FAIL bench-step-json"; cat "$tmp/step.json"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
