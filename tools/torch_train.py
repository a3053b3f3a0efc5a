#!/usr/bin/env python3
"""The pretraining of `snlvk train` in PyTorch on the CPU (same model, data, optimiser and
schedule), to compare seconds per epoch and accuracy on the same machine.

    /usr/bin/python3 tools/torch_train.py --epochs 1 --data-limit 20000 --threads 2
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snl_models  # noqa: E402
from torch_eval import NORM, DIRS, read_idx  # noqa: E402


def load(root, split):
    stem = "train" if split == "train" else "t10k"
    def find(name):
        for n in (name + ".gz", name):
            if os.path.exists(os.path.join(root, n)):
                return os.path.join(root, n)
        raise SystemExit(f"{root}: {name}(.gz) not found")
    x = read_idx(find(f"{stem}-images-idx3-ubyte"))[:, None]
    y = read_idx(find(f"{stem}-labels-idx1-ubyte"))
    return x, y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet8-mini")
    ap.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--data-limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    root = DIRS[a.dataset]
    mean, std = NORM[a.dataset]
    xtr, ytr = load(root, "train")
    xte, yte = load(root, "test")
    if a.data_limit:
        xtr, ytr = xtr[:a.data_limit], ytr[:a.data_limit]
    norm = lambda x: (torch.from_numpy(x.astype(np.float32) / 255.0) - mean[0]) / std[0]
    xtr, xte = norm(xtr), norm(xte)
    ytr, yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    net = snl_models.make_model(a.model, 1, 28, 10, False)
    # masks are fixed at 1 during pretraining, as in snlvk
    params = [p for n, p in net.named_parameters() if not n.endswith("alphas")]
    opt = torch.optim.SGD(params, lr=a.lr, momentum=0.9, weight_decay=5e-4)
    steps = len(ytr) // a.batch
    for epoch in range(a.epochs):
        for g in opt.param_groups:
            g["lr"] = 0.5 * a.lr * (1 + math.cos(math.pi * epoch / a.epochs))
        net.train()
        perm = torch.randperm(len(ytr))
        t0 = time.perf_counter()
        for s in range(steps):
            idx = perm[s * a.batch:(s + 1) * a.batch]
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        secs = time.perf_counter() - t0
        net.eval()
        with torch.no_grad():
            correct = sum(int((net(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum()) for i in range(0, len(yte), 500))
        print(f"epoch {epoch + 1}/{a.epochs}: {secs:.1f} s ({steps * a.batch / secs:.0f} images/s), "
              f"test acc {correct / len(yte):.4f}", flush=True)


if __name__ == "__main__":
    main()
