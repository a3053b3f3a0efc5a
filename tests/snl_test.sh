#!/bin/sh
# `snlvk train --stage all` end to end on a slice of Fashion-MNIST: pretrain, one mask
# phase for two budgets, binarize, fine-tune, the random-mask and whole-layer baselines at
# one budget each, and every promised output; `snlvk eval` on a result reports the summary's accuracy and
# ReLU count; bad SNL options fail with a clear message.
SNLVK="$1"
. "$(dirname "$0")/lib.sh"

# a short mask phase needs a large mask learning rate; Adam then moves masks near 0 by about
# 2.5 x lr each step, so the threshold is raised above that
DATA="--data-limit 512 --test-limit 256 --batch 32 --seed 5 --threshold 0.1"
SNL="--epochs 1 --relu-budget 20000,4000 --lambda auto --target-mask-epochs 4 --check-every 4 --mask-lr 0.02
     --max-mask-epochs 12 --finetune-epochs 1 --random-budget 4000 --layer-budget 20000"
if "$SNLVK" train $DATA $SNL --out "$tmp/run" >"$tmp/out" 2>&1; then
    ok stage-all
else
    bad stage-all
fi
missing=""
for f in pretrain-best.safetensors mask-20000.safetensors mask-4000.safetensors snl-20000.safetensors \
         snl-4000.safetensors random-4000.safetensors layers-20000.safetensors relus-20000.json relus-4000.json \
         relus-random-4000.json relus-layers-20000.json summary.json pareto.svg log.jsonl; do
    [ -s "$tmp/run/$f" ] || missing="$missing $f"
done
[ -z "$missing" ] && ok outputs || { echo "missing:$missing" >>"$tmp/out"; bad outputs; }
ls "$tmp/run/snl-20000.safetensors.json" >/dev/null 2>&1 && bad no-stray-files || ok no-stray-files

# the summary: both budgets met and their ReLU counts within the budgets, one random row;
# the whole-layer result keeps every site whole or not at all, within the budget, and no
# site left out would still fit
if "$PY" - "$tmp/run/summary.json" "$tmp/run/relus-layers-20000.json" >>"$tmp/out" 2>&1 <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
snl = [r for r in s["results"] if r["method"] == "snl"]
rnd = [r for r in s["results"] if r["method"] == "random"]
lay = [r for r in s["results"] if r["method"] == "layers"]
assert [r["budget"] for r in snl] == [20000, 4000], snl
assert all(r["met"] and r["relus"] <= r["budget"] for r in snl), snl
assert [(r["budget"], r["relus"]) for r in rnd] == [(4000, 4000)], rnd
sites = json.load(open(sys.argv[2]))["sites"]
assert all(x["kept"] in (0, x["total"]) for x in sites), sites
kept = sum(x["kept"] for x in sites)
assert [(r["budget"], r["relus"]) for r in lay] == [(20000, kept)], (lay, kept)
assert 0 < kept <= 20000 and all(x["kept"] or kept + x["total"] > 20000 for x in sites), sites
for r in s["results"]:
    for k in ("acc_soft", "acc_binarized", "acc_finetuned"):
        assert 0 <= r[k] <= 1, (k, r)
PYEOF
then ok summary; else bad summary; fi

# snlvk eval of the 4000 result: the same top-1 and ReLU count as the summary
"$SNLVK" eval --ckpt "$tmp/run/snl-4000.safetensors" --test-limit 256 --threshold 0.1 --json >"$tmp/eval.txt" 2>"$tmp/out"
if "$PY" - "$tmp/run/summary.json" "$tmp/eval.txt" >>"$tmp/out" 2>&1 <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
r = [r for r in s["results"] if r["method"] == "snl" and r["budget"] == 4000][0]
e = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
assert e["relus"] == r["relus"], (e, r)
assert abs(e["top1"] - r["acc_finetuned"]) < 0.5 / 256, (e, r)
PYEOF
then ok eval-matches-summary; else bad eval-matches-summary; fi

# --resume after a run killed in the fine-tune of its second budget: pretraining, the mask
# phase and the first fine-tune are not run again, and the summary is what the whole run
# gave (the kernels reduce in a fixed order, so the redone fine-tune is the same)
cp -r "$tmp/run" "$tmp/resumed"
rm -f "$tmp/resumed/snl-4000.safetensors" "$tmp/resumed/relus-4000.json" "$tmp/resumed/random-4000.safetensors" \
      "$tmp/resumed/relus-random-4000.json" "$tmp/resumed/summary.json"
if "$SNLVK" train $DATA $SNL --resume --out "$tmp/resumed" >"$tmp/out" 2>&1 &&
   grep -q "resume: the mask phase finished before" "$tmp/out" &&
   grep -q "resume: finetune 20000 finished before" "$tmp/out" &&
   grep -q "resume: whole-layers 20000 finished before" "$tmp/out" &&
   ! grep -q "^mask epoch" "$tmp/out" &&
   "$PY" - "$tmp/run/summary.json" "$tmp/resumed/summary.json" >>"$tmp/out" 2>&1 <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
strip = lambda rs: [{k: v for k, v in r.items() if k not in ("seconds", "checkpoint")} for r in rs]
assert strip(a["results"]) == strip(b["results"]), (a["results"], b["results"])
# the reused fine-tune reports the seconds its checkpoint recorded, not 0
assert all(r["seconds"] > 0 for r in b["results"]), b["results"]
PYEOF
then ok resume-stage-all; else bad resume-stage-all; fi

# the fine-tune stage alone from a mask snapshot, with exactly the budget kept
if "$SNLVK" train $DATA --stage finetune --init "$tmp/run/mask-4000.safetensors" --relu-budget 4000 --exact-budget \
    --finetune-epochs 1 --out "$tmp/ft" >"$tmp/out" 2>&1 &&
   "$PY" -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; assert r['relus']==4000, r
# the snapshot's mask-phase result travels with it
assert r['acc_soft'] > 0 and r['mask_epochs'] > 0, r" \
    "$tmp/ft/summary.json" >>"$tmp/out" 2>&1 && grep -q "(soft masks 0\.[0-9]*)" "$tmp/out"; then
    ok finetune-exact-budget
else
    bad finetune-exact-budget
fi

# bad SNL options
"$SNLVK" train $DATA --stage mask --init "$tmp/run/pretrain-best.safetensors" --relu-budget 999999999 \
    --out "$tmp/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "is not below the model's 56448 ReLUs" "$tmp/out" && ok budget-too-large || bad budget-too-large
"$SNLVK" train $DATA --stage finetune --init "$tmp/run/mask-4000.safetensors" --relu-budget 4000 \
    --random-budget 1234 --out "$tmp/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "1234 is not one of --relu-budget" "$tmp/out" && ok random-budget-not-a-budget \
    || bad random-budget-not-a-budget
"$SNLVK" train $DATA --stage finetune --init "$tmp/run/mask-4000.safetensors" --relu-budget 4000 \
    --layer-budget 4000,77 --out "$tmp/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "\-\-layer-budget '4000,77': 77 is not one of --relu-budget" "$tmp/out" \
    && ok layer-budget-not-a-budget || bad layer-budget-not-a-budget
"$SNLVK" train $DATA --stage mask --relu-budget 4000 --out "$tmp/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "needs --init" "$tmp/out" && ok mask-needs-init || bad mask-needs-init
"$SNLVK" train $DATA --stage mask --init "$tmp/run/pretrain-best.safetensors" --lambda fast --relu-budget 4000 \
    --out "$tmp/x" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q "\-\-lambda 'fast'" "$tmp/out" && ok bad-lambda || bad bad-lambda
ls "$tmp"/*/*.tmp.* >/dev/null 2>&1 && bad no-temp-files-left || ok no-temp-files-left

finish
