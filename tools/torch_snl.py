#!/usr/bin/env python3
"""SNL (Algorithm 1) in plain PyTorch on the CPU, as the reference code runs it, from a
snlvk pretrained checkpoint: the reference side of tools/time_to_result.py.

  1. every mask set to 1; the teacher a frozen copy of the pretrained net (eval mode);
  2. mask phase, one epoch at a time: Adam (--mask-lr, no weight decay) on weights and
     masks, CE + KD (T = 4) + lambda * sum|c|, BatchNorm in training mode; after each
     epoch the ReLUs are counted (mask entries > --threshold) and, unless the count is
     below the lowest seen, lambda *= --kappa once epoch >= 5 (0-based, as the
     reference counts); the phase stops when the count is within --relu-budget (or
     after --max-mask-epochs);
  3. binarize (c = 1 if c > threshold else 0), freeze the masks;
  4. fine-tune: SGD (--finetune-lr, momentum 0.9, weight decay 5e-4, cosine over
     --finetune-epochs) on CE + KD, the test accuracy after each epoch, the best kept.

The training set is shuffled each epoch and its last partial batch dropped (as snlvk's
loader does). Prints one line per epoch: seconds of training, seconds of evaluation,
ReLU count, lambda, test accuracy (with the soft masks in the mask phase). Writes
OUT/summary.json (per-phase wall clock, mask epochs, ReLUs kept, accuracies, one record
per epoch) and OUT/snl-B.safetensors (the best fine-tuned net, readable by
tools/torch_eval.py and `snlvk eval`).

    /usr/bin/python3 tools/torch_snl.py --init runs/fmnist/best.safetensors --data-limit 20000 \\
        --relu-budget 5000 --lambda 1e-3 --finetune-epochs 2 --out runs/torch-snl
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snl_models  # noqa: E402
from bench_torch import MALLOC_ENV  # noqa: E402
from torch_eval import NORM, DIRS  # noqa: E402
from torch_train import load  # noqa: E402

KD_T = 4.0
SHAPES = {"fashion-mnist": (1, 28, 10), "mnist": (1, 28, 10)}


def kd_loss(s, t):
    """T^2 * KL(softmax(t/T) || softmax(s/T)), averaged over the batch."""
    return F.kl_div(F.log_softmax(s / KD_T, dim=1), F.softmax(t / KD_T, dim=1), reduction="batchmean") * KD_T * KD_T


def masks_of(net):
    return [p for n, p in net.named_parameters() if n.endswith("alphas")]


def relu_count(masks, threshold):
    with torch.no_grad():
        return int(sum(int((m > threshold).sum()) for m in masks))


def evaluate(net, x, y, batch=500):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
    return correct / len(y)


def load_init(path, net, arch, dataset):
    """Loads the pretrained checkpoint into net; exits with a message naming the file on
    any mismatch (architecture, dataset, tensor names or shapes)."""
    if not os.path.isfile(path):
        sys.exit(f"--init {path}: no such file")
    try:
        tensors, meta = snl_models.load_safetensors(path)
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file
        sys.exit(f"--init {path}: not a safetensors checkpoint ({type(e).__name__}: {e})")
    if meta.get("arch") and meta["arch"] != arch:
        sys.exit(f"--init {path}: a {meta['arch']} checkpoint, but --model is {arch}")
    if meta.get("dataset") and meta["dataset"] != dataset:
        sys.exit(f"--init {path}: trained on {meta['dataset']}, but --dataset is {dataset}")
    state = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
    want = net.state_dict()
    missing = [k for k in want if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in want]
    shapes = [f"{k} {list(state[k].shape)} (the model's {list(want[k].shape)})"
              for k in want if k in state and tuple(state[k].shape) != tuple(want[k].shape)]
    if missing or extra or shapes:
        msg = [f"--init {path}: its tensors do not match --model {arch}:"]
        if missing:
            msg.append(f"  missing ({len(missing)}): " + ", ".join(missing[:8]) + (" ..." if len(missing) > 8 else ""))
        if extra:
            msg.append(f"  unexpected ({len(extra)}): " + ", ".join(extra[:8]) + (" ..." if len(extra) > 8 else ""))
        if shapes:
            msg.append(f"  wrong shape ({len(shapes)}): " + ", ".join(shapes[:8]) + (" ..." if len(shapes) > 8 else ""))
        sys.exit("\n".join(msg))
    for k, v in state.items():
        if want[k].dtype.is_floating_point:
            state[k] = v.to(want[k].dtype)
    net.load_state_dict(state, strict=False)
    return meta


def main():
    if any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        # glibc would hand every large freed buffer back to the system and fault it in
        # again at the next step (see tools/bench_torch.py)
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **MALLOC_ENV})
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--init", required=True, help="pretrained snlvk checkpoint (safetensors)")
    ap.add_argument("--model", default="resnet8-mini", choices=["resnet8-mini", "resnet18", "resnet34", "wrn22-8"])
    ap.add_argument("--dataset", default="fashion-mnist", choices=sorted(SHAPES))
    ap.add_argument("--data", default=None, help="dataset directory (default: Debian's)")
    ap.add_argument("--data-limit", type=int, default=0, help="use the first N training images (0: all)")
    ap.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test images (0: all)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lambda", dest="lam", type=float, default=1e-3, help="initial Lasso coefficient")
    ap.add_argument("--kappa", type=float, default=1.1)
    ap.add_argument("--threshold", type=float, default=1e-2)
    ap.add_argument("--relu-budget", type=int, required=True, help="ReLU budget B (absolute)")
    ap.add_argument("--max-mask-epochs", type=int, default=2000)
    ap.add_argument("--finetune-epochs", type=int, default=2)
    ap.add_argument("--mask-lr", type=float, default=1e-3)
    ap.add_argument("--finetune-lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="output directory (summary.json, snl-B.safetensors)")
    a = ap.parse_args()
    for name, v in (("--batch", a.batch), ("--threads", a.threads), ("--max-mask-epochs", a.max_mask_epochs)):
        if v <= 0:
            sys.exit(f"{name} {v}: must be positive")
    for name, v in (("--data-limit", a.data_limit), ("--test-limit", a.test_limit),
                    ("--finetune-epochs", a.finetune_epochs), ("--relu-budget", a.relu_budget),
                    ("--lambda", a.lam)):
        if v < 0:
            sys.exit(f"{name} {v}: must not be negative")
    t_start = time.perf_counter()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    in_ch, size, classes = SHAPES[a.dataset]
    net = snl_models.make_model(a.model, in_ch, size, classes, False)
    meta = load_init(a.init, net, a.model, a.dataset)
    if meta.get("granularity", "pixel") != "pixel":
        sys.exit(f"--init {a.init}: granularity {meta['granularity']}; torch_snl.py runs pixel masks")
    masks = masks_of(net)
    with torch.no_grad():
        for m in masks:
            m.fill_(1.0)
    total = relu_count(masks, a.threshold)
    teacher = copy.deepcopy(net).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    root = a.data or DIRS[a.dataset]
    mean, std = NORM[a.dataset]
    xtr, ytr = load(root, "train")
    xte, yte = load(root, "test")
    if a.data_limit:
        xtr, ytr = xtr[:a.data_limit], ytr[:a.data_limit]
    if a.test_limit:
        xte, yte = xte[:a.test_limit], yte[:a.test_limit]
    norm = lambda x: (torch.from_numpy(x.astype(np.float32) / 255.0) - mean[0]) / std[0]  # noqa: E731
    xtr, xte = norm(xtr), norm(xte)
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    steps = len(ytr) // a.batch
    if steps == 0:
        sys.exit(f"--batch {a.batch}: larger than the {len(ytr)} training images")
    os.makedirs(a.out, exist_ok=True)
    print(f"torch_snl: {a.model}, {total} ReLUs, budget {a.relu_budget}, {len(ytr)} training images "
          f"({steps} steps of {a.batch}), {len(yte)} test images, lambda {a.lam:g}, kappa {a.kappa:g}, "
          f"mask lr {a.mask_lr:g}, {a.threads} threads, torch {torch.__version__}", flush=True)

    def train_epoch(opt, lam):
        net.train()
        perm = torch.randperm(len(ytr), generator=gen)
        t0 = time.perf_counter()
        loss_sum = 0.0
        for s in range(steps):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            x, y = xtr[idx], ytr[idx]
            out = net(x)
            with torch.no_grad():
                t = teacher(x)
            loss = F.cross_entropy(out, y) + kd_loss(out, t)
            if lam is not None:
                loss = loss + lam * sum(m.abs().sum() for m in masks)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss)
        return time.perf_counter() - t0, loss_sum / steps

    # the mask phase
    epochs = []
    t_mask = time.perf_counter()
    opt = torch.optim.Adam(net.parameters(), lr=a.mask_lr, weight_decay=0)
    lam, lowest, count, acc_soft, mask_epochs = a.lam, total, total, None, 0
    sec = {"mask_train": 0.0, "mask_eval": 0.0, "finetune_train": 0.0, "finetune_eval": 0.0}
    for epoch in range(a.max_mask_epochs):
        if count <= a.relu_budget:
            break
        lam_used = lam
        secs, loss = train_epoch(opt, lam)
        count = relu_count(masks, a.threshold)
        t0 = time.perf_counter()
        acc_soft = evaluate(net, xte, yte)
        esecs = time.perf_counter() - t0
        sec["mask_train"] += secs
        sec["mask_eval"] += esecs
        mask_epochs = epoch + 1
        if count < lowest:
            lowest = count
        elif epoch >= 5:
            lam *= a.kappa
        epochs.append({"stage": "mask", "epoch": epoch + 1, "train_seconds": round(secs, 3),
                       "eval_seconds": round(esecs, 3), "relus": count, "lambda": lam_used, "train_loss": loss,
                       "test_acc": acc_soft})
        print(f"mask epoch {epoch + 1}: train {secs:.1f} s, eval {esecs:.1f} s, {count} ReLUs, lambda {lam_used:.4g}, "
              f"test acc {acc_soft:.4f} (soft masks)", flush=True)
    sec["mask_phase"] = time.perf_counter() - t_mask
    met = count <= a.relu_budget
    if not met:
        print(f"torch_snl: budget {a.relu_budget} not met after {mask_epochs} mask epochs ({count} ReLUs)", flush=True)

    # binarize and freeze the masks
    with torch.no_grad():
        for m in masks:
            m.copy_((m > a.threshold).to(m.dtype))
    for m in masks:
        m.requires_grad_(False)
    kept = relu_count(masks, a.threshold)
    t0 = time.perf_counter()
    acc_bin = evaluate(net, xte, yte)
    esecs = time.perf_counter() - t0
    sec["finetune_eval"] += esecs
    print(f"binarized: {kept} ReLUs, eval {esecs:.1f} s, test acc {acc_bin:.4f}", flush=True)

    # fine-tune
    t_ft = time.perf_counter()
    weights = [p for n, p in net.named_parameters() if not n.endswith("alphas")]
    opt = torch.optim.SGD(weights, lr=a.finetune_lr, momentum=0.9, weight_decay=5e-4)
    best_acc, best_epoch, acc_ft = acc_bin, 0, acc_bin
    best_state = copy.deepcopy(net.state_dict())
    for epoch in range(a.finetune_epochs):
        lr = 0.5 * a.finetune_lr * (1 + math.cos(math.pi * epoch / a.finetune_epochs))
        for g in opt.param_groups:
            g["lr"] = lr
        secs, loss = train_epoch(opt, None)
        t0 = time.perf_counter()
        acc_ft = evaluate(net, xte, yte)
        esecs = time.perf_counter() - t0
        sec["finetune_train"] += secs
        sec["finetune_eval"] += esecs
        best = best_epoch == 0 or acc_ft > best_acc
        if best:
            best_acc, best_epoch = acc_ft, epoch + 1
            best_state = copy.deepcopy(net.state_dict())
        epochs.append({"stage": "finetune", "epoch": epoch + 1, "train_seconds": round(secs, 3),
                       "eval_seconds": round(esecs, 3), "relus": kept, "lr": lr, "train_loss": loss,
                       "test_acc": acc_ft, "best": best})
        print(f"finetune epoch {epoch + 1}/{a.finetune_epochs}: train {secs:.1f} s, eval {esecs:.1f} s, {kept} ReLUs, "
              f"lr {lr:.3g}, test acc {acc_ft:.4f}{' (best)' if best else ''}", flush=True)
    sec["finetune_phase"] = time.perf_counter() - t_ft
    sec["total"] = time.perf_counter() - t_start

    ckpt = os.path.join(a.out, f"snl-{a.relu_budget}.safetensors")
    snl_models.save_safetensors(ckpt, best_state, {
        "format": "snlvk-1", "arch": a.model, "dataset": a.dataset, "granularity": "pixel", "stage": "finetune", "teacher": a.init,
        "relus": kept, "budget": a.relu_budget, "threshold": a.threshold})
    summary = {
        "tool": "torch_snl", "torch": torch.__version__, "threads": a.threads, "arch": a.model, "dataset": a.dataset,
        "init": a.init, "train_images": len(ytr), "test_images": len(yte), "batch": a.batch, "seed": a.seed,
        "lambda": a.lam, "lambda_final": lam, "kappa": a.kappa, "threshold": a.threshold, "mask_lr": a.mask_lr,
        "finetune_lr": a.finetune_lr, "finetune_epochs": a.finetune_epochs, "total_relus": total,
        "budget": a.relu_budget, "met": met, "mask_epochs": mask_epochs, "soft_count": count, "relus": kept,
        "acc_soft": acc_soft, "acc_binarized": acc_bin, "acc_finetuned": acc_ft, "acc_finetuned_best": best_acc,
        "finetune_best_epoch": best_epoch,
        "seconds": {k: round(v, 3) for k, v in sec.items()},
        "checkpoint": ckpt, "epochs": epochs}
    path = os.path.join(a.out, "summary.json")
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    print(f"torch_snl: {mask_epochs} mask epochs ({sec['mask_train']:.1f} s training, {sec['mask_eval']:.1f} s "
          f"evaluating), {kept} ReLUs, binarized {acc_bin:.4f}, fine-tuned {acc_ft:.4f} (best {best_acc:.4f} at epoch "
          f"{best_epoch}), {sec['finetune_phase']:.1f} s fine-tuning, {sec['total']:.1f} s in all: {path}", flush=True)


if __name__ == "__main__":
    main()
