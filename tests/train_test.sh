#!/bin/sh
# End-to-end checks of `snlvk train` and `snlvk eval` on a slice of Fashion-MNIST:
#  - a run killed after epoch 1 and resumed equals an uninterrupted run, bit for bit;
#  - the checkpoint evaluates to the same accuracy in snlvk and in PyTorch;
#  - bad input fails with a clear message and exit 1, leaving no half-written file.
SNLVK="$1"
SRC="$2"
. "$(dirname "$0")/lib.sh"

COMMON="--stage pretrain --data-limit 512 --test-limit 256 --batch 64 --seed 3 --schedule cosine"
if "$SNLVK" train $COMMON --epochs 2 --out "$tmp/full" >"$tmp/out" 2>&1; then ok train-2-epochs; else bad train-2-epochs; fi
# the same run stopped after its first epoch (with a cosine schedule a 1-epoch run's first
# epoch has the same learning rate), then resumed to 2 epochs
if "$SNLVK" train $COMMON --epochs 1 --out "$tmp/half" >"$tmp/out" 2>&1 &&
   "$SNLVK" train $COMMON --epochs 2 --resume --out "$tmp/half" >"$tmp/out" 2>&1; then
    if cmp -s "$tmp/full/last.safetensors" "$tmp/half/last.safetensors"; then ok resume-identical
    else bad resume-identical; fi
else bad resume-run; fi

# snlvk's accuracy of its checkpoint, and PyTorch's of the same file
"$SNLVK" eval --ckpt "$tmp/full/best.safetensors" --test-limit 256 --json >"$tmp/eval.txt" 2>&1
ours=$(tail -1 "$tmp/eval.txt" | sed -n 's/.*"top1": \([0-9.]*\).*/\1/p')
theirs=$("$PY" "$SRC/tools/torch_eval.py" --ckpt "$tmp/full/best.safetensors" --test-limit 256 2>"$tmp/out")
if [ -n "$ours" ] && [ -n "$theirs" ] && "$PY" -c "import sys; sys.exit(abs(float('$ours') - float('$theirs')) > 1.5 / 256)"; then
    ok "torch-eval-same-accuracy ($ours)"
else
    echo "snlvk: '$ours' PyTorch: '$theirs'" >>"$tmp/out"; bad torch-eval-same-accuracy
fi

# bad input
printf 'not a checkpoint' >"$tmp/bad.safetensors"
"$SNLVK" eval --ckpt "$tmp/bad.safetensors" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "bad.safetensors" "$tmp/out" && ok corrupt-checkpoint || bad corrupt-checkpoint
"$SNLVK" train --model resnet18 --init "$tmp/full/best.safetensors" --epochs 1 --data-limit 64 --test-limit 64 \
    --out "$tmp/other" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "conv1.weight" "$tmp/out" && ok checkpoint-of-another-model || bad checkpoint-of-another-model
"$SNLVK" train --data "$tmp/nowhere" --out "$tmp/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "nowhere" "$tmp/out" && ok missing-data-dir || bad missing-data-dir
"$SNLVK" train --lr 1e6 $COMMON --epochs 1 --out "$tmp/nan" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "loss became" "$tmp/out" && ok nonfinite-loss || bad nonfinite-loss
ls "$tmp"/*/*.tmp.* >/dev/null 2>&1 && bad no-temp-files-left || ok no-temp-files-left

finish
