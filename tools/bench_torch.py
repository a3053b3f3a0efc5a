#!/usr/bin/env python3
"""Times the ops of `snlvk bench --ops` with PyTorch on the CPU (oneDNN convolutions),
at the same shapes, and prints the same JSON schema, for tools/bench_compare.py: every op
family of a training step (convolutions, linear, batchnorm, masked ReLU, residual add,
global average pool, CE+KD loss, Adam / SGD, mask count), under the same op names and
shape strings as src/api/bench_ops.c. Memory-bound ops report gflops 0, and `gbs` from
the same byte counts (the tensors each op must read and write once).

    /usr/bin/python3 tools/bench_torch.py --model resnet18 --batch 32 --threads 2 > torch.json
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F


def conv_shapes(model, n):
    if model == "resnet18":
        return [(n, 3, 32, 32, 64, 3, 1, 1), (n, 64, 32, 32, 64, 3, 1, 1), (n, 64, 32, 32, 128, 3, 2, 1),
                (n, 128, 16, 16, 128, 3, 1, 1), (n, 64, 32, 32, 128, 1, 2, 0), (n, 256, 8, 8, 256, 3, 1, 1),
                (n, 512, 4, 4, 512, 3, 1, 1)]
    return [(n, 1, 28, 28, 16, 3, 1, 1), (n, 16, 28, 28, 16, 3, 1, 1), (n, 16, 28, 28, 32, 3, 2, 1),
            (n, 32, 14, 14, 32, 3, 1, 1), (n, 32, 14, 14, 64, 3, 2, 1), (n, 64, 7, 7, 64, 3, 1, 1),
            (n, 16, 28, 28, 32, 1, 2, 0), (n, 32, 14, 14, 64, 1, 2, 0)]


# Per model: the distinct activation shapes (C, H, W), one per stage; the classifier's
# input features; the parameter count (weights, BN affine, classifier; masks excluded);
# the ReLU count (mask entries with pixel masks). As in src/api/bench_ops.c.
MODELS = {
    "resnet18": {"acts": [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)], "features": 512,
                 "params": 11173962, "relus": 491520},
    "resnet8-mini": {"acts": [(16, 28, 28), (32, 14, 14), (64, 7, 7)], "features": 64,
                     "params": 77754, "relus": 56448},
}
CLASSES = 10
BN_EPS, BN_MOMENTUM = 1e-5, 0.1
KD_T = 4.0
SNL_LAMBDA = 1e-3


def timed(fn, reps):
    # warm-up: the first calls of a shape build and cache oneDNN's primitives
    for _ in range(3):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    med = ts[reps // 2] if reps % 2 else 0.5 * (ts[reps // 2 - 1] + ts[reps // 2])
    return med, ts[0]


# glibc hands every freed allocation above its mmap threshold back to the system, and the
# next op page-faults it in again: on this kind of virtual machine that more than tripled
# the 64->64 3x3 convolution's time at batch 32 (31 against 6.5 ms), the faults and not the
# kernel. Unless --system-malloc, the script reruns itself with malloc keeping its memory,
# so that it times PyTorch's kernels.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "17179869184"}


def main():
    if "--system-malloc" not in sys.argv and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **MALLOC_ENV})
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18", choices=["resnet18", "resnet8-mini"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filter", default=None)
    ap.add_argument("--system-malloc", action="store_true",
                    help="keep glibc's default malloc settings (times include page faults of fresh outputs)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    results = []

    def report(op, shape, fn, flops, nbytes):
        if a.filter and a.filter not in op:
            return
        with torch.no_grad():
            med, mn = timed(fn, a.reps)
        results.append({"op": op, "shape": shape, "variant": "torch", "median_ms": med, "min_ms": mn,
                        "gflops": flops / (med * 1e6) if flops else 0.0, "gbs": nbytes / (med * 1e6), "reps": a.reps})
        print(f"{op:24s} {shape:34s} {med:10.3f} ms", file=sys.stderr)

    for (n, c, h, w, k, ks, st, pad) in conv_shapes(a.model, a.batch):
        x = torch.randn(n, c, h, w)
        wt = torch.randn(k, c, ks, ks)
        y = F.conv2d(x, wt, stride=st, padding=pad)
        dy = torch.randn_like(y)
        shape = f"n{n} c{c} {h}x{w} -> k{k} {ks}x{ks} s{st} p{pad}"
        flops = 2.0 * y.numel() * c * ks * ks
        nbytes = 4.0 * (x.numel() + wt.numel() + y.numel())
        args = ([st, st], [pad, pad], [1, 1], False, [0, 0], 1)
        report("conv2d_forward", shape, lambda: F.conv2d(x, wt, stride=st, padding=pad), flops, nbytes)
        report("conv2d_backward_data", shape,
               lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, *args, [True, False, False]), flops, nbytes)
        report("conv2d_backward_filter", shape,
               lambda: torch.ops.aten.convolution_backward(dy, x, wt, None, *args, [False, True, False]), flops, nbytes)
    n = a.batch
    md = MODELS[a.model]
    feat = md["features"]
    x = torch.randn(n, feat)
    wl = torch.randn(CLASSES, feat)
    dy = torch.randn(n, CLASSES)
    report("linear_forward", f"{n}x{CLASSES}x{feat}", lambda: F.linear(x, wl), 2.0 * n * CLASSES * feat,
           4.0 * (n * feat + CLASSES * feat + n * CLASSES))
    # what autograd runs for F.linear: dW = dY^T X, dX = dY W
    report("linear_backward_weight", f"{CLASSES}x{feat}x{n}", lambda: dy.t().mm(x), 2.0 * n * CLASSES * feat,
           4.0 * (n * feat + CLASSES * feat + n * CLASSES))
    report("linear_backward_data", f"{n}x{feat}x{CLASSES}", lambda: dy.mm(wl), 2.0 * n * CLASSES * feat,
           4.0 * (n * feat + CLASSES * feat + n * CLASSES))

    for (c, h, w) in md["acts"]:
        shape = f"n{n} c{c} {h}x{w}"
        nx = n * c * h * w
        x = torch.randn(n, c, h, w)
        dy = torch.randn(n, c, h, w)
        gamma = torch.rand(c) + 0.5
        beta = torch.randn(c)
        rm = torch.randn(c)
        rv = torch.rand(c) + 0.5
        report("bn_forward_train", shape,
               lambda: F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=BN_MOMENTUM, eps=BN_EPS),
               0, 4.0 * (2 * nx + 8 * c))
        report("bn_forward_eval", shape,
               lambda: F.batch_norm(x, rm, rv, gamma, beta, training=False, momentum=BN_MOMENTUM, eps=BN_EPS),
               0, 4.0 * (2 * nx + 4 * c))
        _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(x, gamma, beta, rm.clone(), rv.clone(), True,
                                                                     BN_MOMENTUM, BN_EPS)
        report("bn_backward", shape,
               lambda: torch.ops.aten.native_batch_norm_backward(dy, x, gamma, rm, rv, save_mean, save_invstd, True,
                                                                 BN_EPS, [True, True, True]),
               0, 4.0 * (3 * nx + 5 * c))
    for (c, h, w) in md["acts"]:
        shape = f"n{n} c{c} {h}x{w}"
        nx, nm = n * c * h * w, c * h * w
        x = torch.randn(n, c, h, w)
        dy = torch.randn(n, c, h, w)
        cm = torch.rand(1, c, h, w)   # a pixel mask, shared over the batch
        # the reference's masked ReLU and the gradients autograd would produce for it,
        # as explicit elementwise expressions; dc with the Lasso term lambda * sign(c)
        report("masked_relu_forward", shape, lambda: cm * F.relu(x) + (1 - cm) * x, 0, 4.0 * (2 * nx + nm))

        def mrelu_backward():
            dx = dy * (cm * (x > 0) + (1 - cm))
            dc = (dy * (F.relu(x) - x)).sum(0, keepdim=True) + SNL_LAMBDA * torch.sign(cm)
            return dx, dc
        report("masked_relu_backward", shape, mrelu_backward, 0, 4.0 * (3 * nx + 2 * nm))
    for (c, h, w) in md["acts"]:
        x0 = torch.randn(n, c, h, w)
        x1 = torch.randn(n, c, h, w)
        report("add", f"n{n} c{c} {h}x{w}", lambda: x0 + x1, 0, 4.0 * 3 * x0.numel())
    c, h, w = md["acts"][-1]
    x = torch.randn(n, c, h, w)
    dy = torch.randn(n, c, 1, 1)
    shape = f"n{n} c{c} {h}x{w}"
    report("avgpool_forward", shape, lambda: F.adaptive_avg_pool2d(x, 1), 0, 4.0 * (x.numel() + n * c))
    report("avgpool_backward", shape, lambda: torch.ops.aten._adaptive_avg_pool2d_backward(dy, x), 0,
           4.0 * (x.numel() + n * c))

    logits = torch.rand(n, CLASSES) * 8 - 4
    teacher = torch.rand(n, CLASSES) * 8 - 4
    labels = torch.tensor([(i * 7 + 3) % CLASSES for i in range(n)])
    kldiv = torch.nn.KLDivLoss(reduction="batchmean")

    def loss_fwd_bwd():
        with torch.enable_grad():
            s = logits.detach().requires_grad_()
            loss = F.cross_entropy(s, labels) + kldiv(F.log_softmax(s / KD_T, dim=1),
                                                      F.softmax(teacher / KD_T, dim=1)) * (KD_T * KD_T)
            grad, = torch.autograd.grad(loss, s)
        return loss.detach(), grad
    report("classifier_loss", f"{n}x{CLASSES}", loss_fwd_bwd, 0, 4.0 * (3 * n * CLASSES + n))

    count = md["params"]
    for op, make, words in (("adam_step", lambda p: torch.optim.Adam([p], lr=1e-3), 7),
                            ("sgd_step", lambda p: torch.optim.SGD([p], lr=1e-2, momentum=0.9), 5)):
        if a.filter and a.filter not in op:
            continue
        p = torch.nn.Parameter(torch.rand(count) * 2 - 1)
        p.grad = (torch.rand(count) * 2 - 1) * 1e-2
        opt = make(p)
        report(op, f"{count}", opt.step, 0, 4.0 * words * count)
        del opt, p

    eps = 0.0
    cmask = torch.rand(md["relus"]) * 2 - 1
    report("mask_count", f"{md['relus']}", lambda: int((cmask > eps).sum()), 0, 4.0 * md["relus"] + 4)
    json.dump({"device": "PyTorch %s CPU, %d threads" % (torch.__version__, a.threads), "model": a.model,
               "batch": a.batch, "ops": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
