#!/usr/bin/env python3
"""Times whole training steps of snlvk's three stages in PyTorch on the CPU, with the
reference code's optimisers and loss terms, for tools/bench_compare.py --step:

  pretrain  SGD (lr 0.1, momentum 0.9, wd 5e-4) on CE; masks fixed at 1
  mask      Adam (lr 1e-3) on weights and masks, CE + KD (T = 4) + lambda * sum|c|,
            the frozen teacher's forward (eval mode, no grad) in every step
  finetune  SGD (lr 1e-3, momentum 0.9, wd 5e-4) on CE + KD, masks frozen, teacher forward

A step is forward, loss, backward and the optimiser update on one batch of random images
(the timing does not depend on the values). Prints JSON: {"device", "model", "batch",
"steps": [{"stage", "median_ms", "min_ms", "reps"}]}.

    /usr/bin/python3 tools/bench_torch_step.py --model resnet8-mini --batch 128 --threads 2
"""
import argparse
import copy
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snl_models  # noqa: E402
from bench_torch import MALLOC_ENV, timed  # noqa: E402

KD_T = 4.0
SHAPES = {"resnet8-mini": (1, 28), "resnet18": (3, 32), "resnet34": (3, 32), "wrn22-8": (3, 32)}
STAGES = ("pretrain", "mask", "finetune")


def kd_loss(s, t):
    return F.kl_div(F.log_softmax(s / KD_T, dim=1), F.softmax(t / KD_T, dim=1), reduction="batchmean") * KD_T * KD_T


def make_step(stage, model, batch, classes=10):
    ch, size = SHAPES[model]
    net = snl_models.make_model(model, ch, size, classes, False)
    net.train()
    x = torch.randn(batch, ch, size, size)
    y = torch.randint(0, classes, (batch,))
    masks = [p for n, p in net.named_parameters() if n.endswith("alphas")]
    weights = [p for n, p in net.named_parameters() if not n.endswith("alphas")]
    teacher = None
    if stage != "pretrain":
        teacher = copy.deepcopy(net).eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
    if stage == "mask":
        opt = torch.optim.Adam(weights + masks, lr=1e-3)
        lam = 1e-5
    else:
        for p in masks:
            p.requires_grad_(False)
        opt = torch.optim.SGD(weights, lr=0.1 if stage == "pretrain" else 1e-3, momentum=0.9, weight_decay=5e-4)

    def step():
        out = net(x)
        loss = F.cross_entropy(out, y)
        if teacher is not None:
            with torch.no_grad():
                t = teacher(x)
            loss = loss + kd_loss(out, t)
        if stage == "mask":
            loss = loss + lam * sum(m.abs().sum() for m in masks)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main():
    if "--system-malloc" not in sys.argv and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **MALLOC_ENV})
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet8-mini", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--stage", action="append", choices=STAGES, help="repeatable; default: all three")
    ap.add_argument("--system-malloc", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    steps = []
    for stage in a.stage or STAGES:
        med, mn = timed(make_step(stage, a.model, a.batch), a.reps)
        steps.append({"stage": stage, "median_ms": med, "min_ms": mn, "reps": a.reps})
        print(f"{stage:9s} {med:9.2f} ms (best {mn:.2f})", file=sys.stderr)
    json.dump({"device": "PyTorch %s CPU, %d threads" % (torch.__version__, a.threads), "model": a.model,
               "batch": a.batch, "steps": steps}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
