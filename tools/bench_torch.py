#!/usr/bin/env python3
"""Times the ops of `snlvk bench --ops` with PyTorch on the CPU (oneDNN convolutions),
at the same shapes, and prints the same JSON schema, for tools/bench_compare.py.

    /usr/bin/python3 tools/bench_torch.py --model resnet18 --batch 32 --threads 2 > torch.json
"""
import argparse
import json
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
            (n, 32, 14, 14, 32, 3, 1, 1), (n, 32, 14, 14, 64, 3, 2, 1), (n, 64, 7, 7, 64, 3, 1, 1)]


def timed(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    med = ts[reps // 2] if reps % 2 else 0.5 * (ts[reps // 2 - 1] + ts[reps // 2])
    return med, ts[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="resnet18", choices=["resnet18", "resnet8-mini"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--filter", default=None)
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
    feat = 512 if a.model == "resnet18" else 64
    x = torch.randn(n, feat)
    wl = torch.randn(10, feat)
    report("linear_forward", f"{n}x10x{feat}", lambda: F.linear(x, wl), 2.0 * n * 10 * feat,
           4.0 * (n * feat + 10 * feat + n * 10))
    json.dump({"device": "PyTorch %s CPU, %d threads" % (torch.__version__, a.threads), "model": a.model,
               "batch": a.batch, "ops": results}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
