#!/usr/bin/env python3
"""Runs `snlvk bench --ops --json` and tools/bench_torch.py one after the other on this
machine and prints one table: time of each op in both, snlvk's GFLOP/s (compute-bound
ops) and GB/s (its byte count over its time: the measure for memory-bound ops, which
report 0 FLOP), and snlvk's throughput as a multiple of PyTorch's (above 1: snlvk is
faster), twice: from the medians and from the fastest runs. On a shared machine PyTorch's
times swing several-fold from run to run (oneDNN's threads compete with the neighbours);
the best-run ratio compares the two at their least disturbed. Ops that only one side timed
are listed at the end.

    /usr/bin/python3 tools/bench_compare.py [--snlvk build/snlvk] [--model resnet18] [--batch 32]

With --step it compares whole training steps instead (`snlvk bench --step --json` against
tools/bench_torch_step.py): the pretrain, mask-phase and fine-tune steps with the same
model, batch, optimisers and loss terms, by the clock, and snlvk's kernel time per op
family beside them:

    /usr/bin/python3 tools/bench_compare.py --step --model resnet8-mini --batch 128
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--snlvk", default=os.path.join(HERE, "..", "build", "snlvk"))
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filter", default=None)
    ap.add_argument("--json", help="also write the combined results here")
    ap.add_argument("--step", action="store_true", help="whole training steps of the three stages")
    ap.add_argument("--stage", action="append", choices=["pretrain", "mask", "finetune"],
                    help="with --step: repeatable; default all three")
    ap.add_argument("--cached-teacher", action="store_true",
                    help="with --step: snlvk's mask and fine-tune steps read cached teacher logits, as its runs "
                         "without augmentation do (PyTorch's reference steps still run the teacher)")
    a = ap.parse_args()
    if a.step:
        return compare_steps(a)
    filt = ["--filter", a.filter] if a.filter else []
    ours = json.loads(subprocess.run([a.snlvk, "bench", "--ops", "--json", "--model", a.model, "--batch",
                                      str(a.batch), "--reps", str(a.reps)] + filt,
                                     check=True, capture_output=True, text=True).stdout)
    theirs = json.loads(subprocess.run([sys.executable, os.path.join(HERE, "bench_torch.py"), "--model", a.model,
                                        "--batch", str(a.batch), "--reps", str(a.reps), "--threads",
                                        str(a.threads)] + filt, check=True, capture_output=True, text=True).stdout)
    ref = {(r["op"], r["shape"]): r for r in theirs["ops"]}
    print(f"snlvk on {ours['device']}  vs  {theirs['device']}; {a.model}, batch {a.batch}, medians of {a.reps}")
    print(f"{'op':24s} {'shape':34s} {'snlvk ms':>9s} {'torch ms':>9s} {'GFLOP/s':>8s} {'GB/s':>7s} {'ratio':>6s} "
          f"{'best ms':>8s} {'torch':>8s} {'ratio':>6s}")
    rows = []
    for r in ours["ops"]:
        t = ref.get((r["op"], r["shape"]))
        ratio = t["median_ms"] / r["median_ms"] if t else None
        best = t["min_ms"] / r["min_ms"] if t and r.get("min_ms") else None
        rows.append({"op": r["op"], "shape": r["shape"], "snlvk_ms": r["median_ms"],
                     "torch_ms": t["median_ms"] if t else None, "snlvk_gflops": r["gflops"],
                     "snlvk_gbs": r.get("gbs", 0.0), "ratio": ratio, "snlvk_min_ms": r.get("min_ms"),
                     "torch_min_ms": t["min_ms"] if t else None, "ratio_best": best})
        nan = float("nan")
        print(f"{r['op']:24s} {r['shape']:34s} {r['median_ms']:9.3f} "
              f"{(t['median_ms'] if t else nan):9.3f} {r['gflops']:8.2f} {r.get('gbs', 0.0):7.2f} "
              f"{(ratio if ratio else nan):6.2f} {r.get('min_ms', nan):8.3f} {(t['min_ms'] if t else nan):8.3f} "
              f"{(best if best else nan):6.2f}")
    ours_keys = {(r["op"], r["shape"]) for r in ours["ops"]}
    only_torch = [k for k in ref if k not in ours_keys]
    only_ours = sum(1 for r in rows if r["torch_ms"] is None)
    if only_torch or only_ours:
        print(f"unpaired: {only_ours} snlvk row(s) without a torch timing, {len(only_torch)} torch row(s) without "
              f"an snlvk timing" + "".join(f"\n  torch only: {op} {shape}" for op, shape in only_torch))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"snlvk": ours, "torch": theirs, "rows": rows}, f, indent=1)


FAMILIES = ["conv", "batchnorm", "masked_relu", "add", "pool", "linear", "loss", "optimizer", "other"]


def compare_steps(a):
    stages = sum((["--stage", s] for s in a.stage or []), [])
    ours = json.loads(subprocess.run([a.snlvk, "bench", "--step", "--json", "--model", a.model, "--batch", str(a.batch),
                                      "--reps", str(a.reps)] + stages + (["--cached-teacher"] if a.cached_teacher else []),
                                     check=True, capture_output=True,
                                     text=True).stdout)
    theirs = json.loads(subprocess.run([sys.executable, os.path.join(HERE, "bench_torch_step.py"), "--model", a.model,
                                        "--batch", str(a.batch), "--reps", str(a.reps), "--threads", str(a.threads)]
                                       + stages, check=True, capture_output=True, text=True).stdout)
    ref = {r["stage"]: r for r in theirs["steps"]}
    print(f"snlvk on {ours['device']}  vs  {theirs['device']}; {a.model}, batch {a.batch}, medians of {a.reps}; "
          f"ratio = PyTorch ms / snlvk ms (above 1: snlvk is faster)")
    print(f"{'stage':9s} {'snlvk ms':>9s} {'torch ms':>9s} {'ratio':>6s} {'best ms':>8s} {'torch':>8s} {'ratio':>6s}   "
          + " ".join(f"{f[:8]:>8s}" for f in FAMILIES))
    rows = []
    for r in ours["steps"]:
        t = ref[r["stage"]]
        ratio, best = t["median_ms"] / r["median_ms"], t["min_ms"] / r["min_ms"]
        fam = r["families"]
        # the kernels' share of the step, scaled to the clock's median
        scale = r["median_ms"] / r["gpu_median_ms"] if r["gpu_median_ms"] else 0
        print(f"{r['stage']:9s} {r['median_ms']:9.1f} {t['median_ms']:9.1f} {ratio:6.2f} {r['min_ms']:8.1f} "
              f"{t['min_ms']:8.1f} {best:6.2f}   " + " ".join(f"{fam.get(f, 0) * scale:8.1f}" for f in FAMILIES))
        rows.append({"stage": r["stage"], "snlvk_ms": r["median_ms"], "torch_ms": t["median_ms"], "ratio": ratio,
                     "snlvk_min_ms": r["min_ms"], "torch_min_ms": t["min_ms"], "ratio_best": best,
                     "families_ms": fam})
    print("(op-family columns: snlvk's kernel time in ms, scaled to the step's clock median)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"snlvk": ours, "torch": theirs, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
