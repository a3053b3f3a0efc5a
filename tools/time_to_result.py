#!/usr/bin/env python3
"""Time to result: SNL from one pretrained checkpoint to a fine-tuned net within a ReLU
budget, by snlvk (`--lambda auto`) and by the reference algorithm in PyTorch on the CPU
(tools/torch_snl.py, a hand-set lambda under the reference's kappa rule), on the same
training images, batch, mask learning rate, budget and fine-tune epochs. Each side is
timed by the wall clock of its whole command (start-up, data loading, the mask phase,
binarizing, the fine-tune and every test evaluation). Prints one Markdown table: method,
wall clock, mask epochs, ReLUs kept, test accuracy after the fine-tune (the best epoch,
which both keep), and each wall clock as a multiple of PyTorch's.

snlvk's `--lambda auto` plans the mask phase to meet the budget in --target-mask-epochs.
Adam moves a mask by about --mask-lr a step, so no mask reaches the threshold before
(1 - threshold) / mask-lr steps; unless --target-mask-epochs is given, the plan is 1.3
times that wait (at the defaults: 990 steps, 6.3 epochs of 156 steps, a plan of 9
epochs). The budget is counted every --check-every steps and the phase stops there.

Without --init, a net is pretrained first with `snlvk train --stage pretrain --epochs 2
--schedule cosine --data-limit 20000` into OUT/pretrain. Outputs: OUT/snlvk/ and
OUT/torch/ (each side's summary.json, checkpoint and output.log), the table on stdout,
and with --json FILE the same numbers as JSON.

    /usr/bin/python3 tools/time_to_result.py --init runs/fmnist/best.safetensors --out runs/ttr
    /usr/bin/python3 tools/time_to_result.py --data-limit 2000 --budget 20000 --finetune-epochs 1 --out /tmp/ttr
"""
import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)


def run_timed(name, cmd, out_dir, reuse):
    """Runs cmd (its output shown and kept in out_dir/output.log) and returns its wall
    clock in seconds; with reuse, the time of an earlier identical command in out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    rec_path = os.path.join(out_dir, "wallclock.json")
    if reuse and os.path.exists(rec_path):
        try:
            rec = json.load(open(rec_path))
        except ValueError:
            rec = {}
        if rec.get("cmd") == cmd and rec.get("rc") == 0:
            print(f"{name}: reusing the earlier run in {out_dir} ({rec['wall_s']:.1f} s)", flush=True)
            return rec["wall_s"]
    print(f"{name}: $ {shlex.join(cmd)}", flush=True)
    log_path = os.path.join(out_dir, "output.log")
    t0 = time.perf_counter()
    try:
        with open(log_path, "w") as log:
            p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            for line in p.stdout:
                sys.stdout.write(f"[{name}] {line}")
                sys.stdout.flush()
                log.write(line)
            rc = p.wait()
    except OSError as e:
        sys.exit(f"{name}: cannot run {cmd[0]}: {e}")
    wall = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"{name}: `{shlex.join(cmd)}` failed (exit {rc}); its output is in {log_path}")
    with open(rec_path, "w") as f:
        json.dump({"cmd": cmd, "rc": rc, "wall_s": wall}, f)
    return wall


def read_json(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"{path}: cannot read {what} ({e})")


def snlvk_result(out_dir, budget):
    s = read_json(os.path.join(out_dir, "summary.json"), "snlvk's summary")
    rows = [r for r in s.get("results", []) if r.get("method") == "snl" and int(r.get("budget", -1)) == budget]
    if not rows:
        sys.exit(f"{out_dir}/summary.json: no snl result for budget {budget}")
    r = rows[0]
    mask_s = ft_s = 0.0
    log_path = os.path.join(out_dir, "log.jsonl")
    if os.path.exists(log_path):
        with open(log_path) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("stage") == "mask":
                    mask_s += float(e.get("seconds", 0))
                elif e.get("stage") == "finetune" and int(e.get("budget", budget)) == budget:
                    ft_s += float(e.get("seconds", 0))
    return {"met": bool(r["met"]), "mask_epochs": float(r["mask_epochs"]), "relus": int(r["relus"]),
            "lambda_final": float(r["lambda"]), "acc_soft": float(r["acc_soft"]),
            "acc_binarized": float(r["acc_binarized"]), "acc_finetuned": float(r["acc_finetuned"]),
            "mask_phase_s": mask_s, "finetune_s": ft_s, "reported_s": float(s.get("seconds", 0))}


def torch_result(out_dir):
    s = read_json(os.path.join(out_dir, "summary.json"), "torch_snl.py's summary")
    sec = s["seconds"]
    return {"met": bool(s["met"]), "mask_epochs": float(s["mask_epochs"]), "relus": int(s["relus"]),
            "lambda_final": float(s["lambda_final"]), "acc_soft": s["acc_soft"],
            "acc_binarized": float(s["acc_binarized"]), "acc_finetuned": float(s["acc_finetuned_best"]),
            "mask_phase_s": float(sec["mask_phase"]), "finetune_s": float(sec["finetune_phase"]),
            "reported_s": float(sec["total"])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--init", default=None, help="pretrained snlvk checkpoint (default: pretrain one into OUT/pretrain)")
    ap.add_argument("--snlvk", default=os.path.join(ROOT, "build", "snlvk"), help="the snlvk binary")
    ap.add_argument("--model", default="resnet8-mini")
    ap.add_argument("--budget", type=int, default=5000, help="ReLU budget (absolute)")
    ap.add_argument("--finetune-epochs", type=int, default=2)
    ap.add_argument("--data-limit", type=int, default=20000, help="the first N training images")
    ap.add_argument("--test-limit", type=int, default=0, help="the first N test images (0: all 10000)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--mask-lr", type=float, default=1e-3, help="Adam's learning rate in the mask phase (the reference's; snlvk's too unless --snlvk-mask-lr)")
    ap.add_argument("--snlvk-mask-lr", type=float, default=0,
                    help="snlvk's mask-phase learning rate when it differs from the reference's --mask-lr (e.g. "
                         "the 3e-3 of snlvk's quick run: --lambda auto then plans a shorter phase)")
    ap.add_argument("--threshold", type=float, default=1e-2)
    ap.add_argument("--target-mask-epochs", type=int, default=0,
                    help="snlvk's planned mask epochs (default: 1.3 x the steps a mask needs to reach the threshold)")
    ap.add_argument("--check-every", type=int, default=10, help="snlvk counts ReLUs every K steps")
    ap.add_argument("--torch-lambda", type=float, default=1e-3, help="torch_snl.py's hand-set initial lambda")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch's threads")
    ap.add_argument("--out", default=os.path.join("runs", "time-to-result"))
    ap.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    ap.add_argument("--snlvk-args", default="", help="more options for `snlvk train` (one string)")
    ap.add_argument("--torch-args", default="", help="more options for tools/torch_snl.py (one string)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep a side's earlier result in OUT when its command is the same (an interrupted run)")
    a = ap.parse_args()
    for name, v in (("--budget", a.budget), ("--finetune-epochs", a.finetune_epochs), ("--data-limit", a.data_limit),
                    ("--batch", a.batch), ("--check-every", a.check_every), ("--mask-lr", a.mask_lr)):
        if v <= 0:
            sys.exit(f"{name} {v}: must be positive")
    if not (os.path.isfile(a.snlvk) and os.access(a.snlvk, os.X_OK)):
        sys.exit(f"--snlvk {a.snlvk}: no such executable (build it with meson, see README.md)")
    try:
        snlvk_extra, torch_extra = shlex.split(a.snlvk_args), shlex.split(a.torch_args)
    except ValueError as e:
        sys.exit(f"--snlvk-args / --torch-args: {e}")
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    snlvk = os.path.abspath(a.snlvk)

    if a.init is None:
        init = os.path.join(out, "pretrain", "best.safetensors")
        if not (a.reuse and os.path.isfile(init)):
            help_text = subprocess.run([snlvk, "help", "train"], capture_output=True, text=True).stdout
            cmd = [snlvk, "train", "--stage", "pretrain", "--model", a.model, "--epochs", "2",
                   "--data-limit", "20000", "--out", os.path.join(out, "pretrain")]
            if "--schedule" in help_text:
                cmd[-2:-2] = ["--schedule", "cosine"]
            run_timed("pretrain", cmd, os.path.join(out, "pretrain"), False)
            if not os.path.isfile(init):
                sys.exit(f"pretrain: {init} was not written")
    else:
        init = os.path.abspath(a.init)
    # a missing file or one that does not fit the model fails here, before either side runs
    sys.path.insert(0, TOOLS)
    import snl_models  # noqa: E402
    import torch_snl  # noqa: E402
    torch_snl.load_init(init, snl_models.make_model(a.model, 1, 28, 10, False), a.model, "fashion-mnist")

    steps = a.data_limit // a.batch
    if steps == 0:
        sys.exit(f"--batch {a.batch}: larger than --data-limit {a.data_limit}")
    snlvk_lr = a.snlvk_mask_lr or a.mask_lr
    wait = (1 - a.threshold) / snlvk_lr / steps
    target = a.target_mask_epochs or max(2, math.ceil(1.3 * wait))
    common_snl = ["--data-limit", str(a.data_limit), "--batch", str(a.batch), "--relu-budget", str(a.budget),
                  "--threshold", f"{a.threshold:g}", "--finetune-epochs", str(a.finetune_epochs)]
    if a.test_limit:
        common_snl += ["--test-limit", str(a.test_limit)]
    # --stage all with a trained --init: the mask phase and the fine-tune, no pretraining
    snlvk_cmd = [snlvk, "train", "--model", a.model, "--init", init, *common_snl, "--mask-lr", f"{snlvk_lr:g}",
                 "--lambda", "auto",
                 "--target-mask-epochs", str(target), "--check-every", str(a.check_every),
                 "--out", os.path.join(out, "snlvk"), *snlvk_extra]
    torch_cmd = [sys.executable, os.path.join(TOOLS, "torch_snl.py"), "--model", a.model, "--init", init, *common_snl,
                 "--mask-lr", f"{a.mask_lr:g}",
                 "--lambda", f"{a.torch_lambda:g}", "--threads", str(a.threads), "--out", os.path.join(out, "torch"),
                 *torch_extra]
    print(f"time_to_result: {a.data_limit} training images, batch {a.batch} ({steps} steps an epoch), budget "
          f"{a.budget}, mask lr {a.mask_lr:g} (snlvk {snlvk_lr:g}: a mask needs {wait:.2f} epochs to reach the "
          f"threshold), snlvk "
          f"--target-mask-epochs {target}, PyTorch lambda {a.torch_lambda:g}, {a.finetune_epochs} fine-tune epochs",
          flush=True)
    wall_torch = run_timed("torch", torch_cmd, os.path.join(out, "torch"), a.reuse)
    wall_snlvk = run_timed("snlvk", snlvk_cmd, os.path.join(out, "snlvk"), a.reuse)
    rows = [dict(method=f"snlvk, --lambda auto, mask lr {snlvk_lr:g}", wall_s=wall_snlvk, **snlvk_result(os.path.join(out, "snlvk"), a.budget)),
            dict(method=f"PyTorch reference, lambda {a.torch_lambda:g}, mask lr {a.mask_lr:g}", wall_s=wall_torch,
                 **torch_result(os.path.join(out, "torch")))]
    for r in rows:
        r["wall_vs_torch"] = r["wall_s"] / wall_torch

    print()
    print(f"{a.model}, first {a.data_limit} training images, batch {a.batch}, budget {a.budget} ReLUs, "
          f"{a.finetune_epochs} fine-tune epochs, test accuracy on "
          f"{a.test_limit or 10000} images; wall clock of each whole command")
    print()
    print("| method | wall clock (s) | x PyTorch's time | mask epochs | mask phase (s) | fine-tune (s) | ReLUs kept "
          "| accuracy after fine-tune (test) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['wall_s']:.1f} | {r['wall_vs_torch']:.2f} | "
              f"{r['mask_epochs']:.2f}{'' if r['met'] else ' (not met)'} | {r['mask_phase_s']:.1f} | "
              f"{r['finetune_s']:.1f} | {r['relus']:,} | {100 * r['acc_finetuned']:.2f}% |")
    ratio = wall_snlvk / wall_torch
    print()
    print(f"snlvk / PyTorch wall clock: {ratio:.2f} ({'PyTorch' if ratio > 1 else 'snlvk'} "
          f"{max(ratio, 1 / ratio):.2f}x faster)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"init": init, "model": a.model, "data_limit": a.data_limit, "test_limit": a.test_limit,
                       "batch": a.batch, "budget": a.budget, "finetune_epochs": a.finetune_epochs,
                       "mask_lr": a.mask_lr, "snlvk_mask_lr": snlvk_lr, "target_mask_epochs": target,
                       "check_every": a.check_every,
                       "torch_lambda": a.torch_lambda, "threads": a.threads,
                       "commands": {"snlvk": snlvk_cmd, "torch": torch_cmd}, "rows": rows,
                       "ratio_snlvk_to_torch": ratio}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
