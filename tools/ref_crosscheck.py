#!/usr/bin/env python3
"""Cross-check of snlvk's plain-C reference ops (tests/ref/ref_ops.c) against PyTorch.

Usage: ref_crosscheck.py IN OUT     (run by tests/test_ref_ops.c with /usr/bin/python3)

IN holds the inputs of a few fixed cases, written by the C test; OUT receives PyTorch's
forwards and gradients (float64) for the same cases, and the C test compares them.

File format (both directions), little-endian:
    b"SNLX", u32 version (1), u32 record count,
    per record: u32 name length, name (ASCII), u64 count, count x f64.
Records are named "<case>.<field>"; the case kind is the case name without its trailing
digits (conv0 -> conv). Integers (dims, labels, hyper-parameters) travel as doubles.

Exit status: 0 on success, 77 (printing SKIP) when torch cannot be imported, else 1.
"""
import struct
import sys


def read_recs(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"SNLX":
        raise ValueError(f"{path}: bad magic")
    ver, cnt = struct.unpack_from("<II", data, 4)
    if ver != 1:
        raise ValueError(f"{path}: unsupported version {ver}")
    off, recs = 12, {}
    for _ in range(cnt):
        (ln,) = struct.unpack_from("<I", data, off)
        off += 4
        name = data[off:off + ln].decode("ascii")
        off += ln
        (n,) = struct.unpack_from("<Q", data, off)
        off += 8
        recs[name] = list(struct.unpack_from(f"<{n}d", data, off))
        off += 8 * n
    return recs


def write_recs(path, recs):
    with open(path, "wb") as f:
        f.write(b"SNLX" + struct.pack("<II", 1, len(recs)))
        for name, vals in recs.items():
            nb = name.encode("ascii")
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<Q", len(vals)))
            f.write(struct.pack(f"<{len(vals)}d", *vals))


def main(argv):
    if len(argv) != 3:
        print(__doc__)
        return 1
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install
        print(f"SKIP: torch cannot be imported ({e})")
        return 77

    torch.set_default_dtype(torch.float64)
    ins = read_recs(argv[1])
    out = {}

    def t(name, shape=None, grad=False):
        v = torch.tensor(ins[name], dtype=torch.float64)
        if shape is not None:
            v = v.reshape(shape)
        return v.requires_grad_(grad)

    def dims(pre):
        return ins[pre + ".dims"]

    def put(pre, field, v):
        out[f"{pre}.{field}"] = [float(a) for a in v.detach().reshape(-1).tolist()]

    def conv(pre):
        N, C, H, W, K, k, s, p, hasb = (int(a) for a in dims(pre))
        x = t(pre + ".x", (N, C, H, W), True)
        w = t(pre + ".w", (K, C, k, k), True)
        b = t(pre + ".b", (K,), True) if hasb else None
        y = F.conv2d(x, w, b, stride=s, padding=p)
        r = t(pre + ".r", y.shape)
        (y * r).sum().backward()
        put(pre, "y", y)
        put(pre, "dx", x.grad)
        put(pre, "dw", w.grad)
        if hasb:
            put(pre, "db", b.grad)

    def bn(pre):
        N, C, H, W, mom, eps = dims(pre)
        N, C, H, W = int(N), int(C), int(H), int(W)
        x = t(pre + ".x", (N, C, H, W), True)
        g = t(pre + ".gamma", (C,), True)
        b = t(pre + ".beta", (C,), True)
        rm, rv = t(pre + ".rm", (C,)), t(pre + ".rv", (C,))
        _, sm, si = torch.native_batch_norm(x.detach(), g.detach(), b.detach(), rm.clone(),
                                            rv.clone(), True, mom, eps)
        y = F.batch_norm(x, rm, rv, g, b, training=True, momentum=mom, eps=eps)
        r = t(pre + ".r", y.shape)
        (y * r).sum().backward()
        put(pre, "y", y)
        put(pre, "dx", x.grad)
        put(pre, "dgamma", g.grad)
        put(pre, "dbeta", b.grad)
        put(pre, "rm", rm)
        put(pre, "rv", rv)
        put(pre, "save_mean", sm)
        put(pre, "save_invstd", si)
        with torch.no_grad():
            put(pre, "y_eval", F.batch_norm(x, rm, rv, g, b, training=False, eps=eps))

    def ce(pre):
        N, K = (int(a) for a in dims(pre))
        z = t(pre + ".z", (N, K), True)
        labels = torch.tensor([int(a) for a in ins[pre + ".labels"]], dtype=torch.long)
        loss = F.cross_entropy(z, labels)
        loss.backward()
        put(pre, "loss", loss)
        put(pre, "dz", z.grad)

    def kd(pre):
        N, K, T = dims(pre)
        N, K = int(N), int(K)
        s = t(pre + ".s", (N, K), True)
        te = t(pre + ".t", (N, K))
        loss = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(te / T, dim=1),
                        reduction="batchmean") * T * T
        loss.backward()
        put(pre, "loss", loss)
        put(pre, "ds", s.grad)

    def adam(pre):
        n, steps, lr, b1, b2, eps, wd = dims(pre)
        n, steps = int(n), int(steps)
        p = t(pre + ".p", (n,), True)
        g = t(pre + ".g", (steps, n))
        opt = torch.optim.Adam([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
        for i in range(steps):
            p.grad = g[i].clone()
            opt.step()
        st = opt.state[p]
        put(pre, "p", p)
        put(pre, "m", st["exp_avg"])
        put(pre, "v", st["exp_avg_sq"])

    def sgd(pre):
        n, steps, lr, mom, wd = dims(pre)
        n, steps = int(n), int(steps)
        p = t(pre + ".p", (n,), True)
        g = t(pre + ".g", (steps, n))
        opt = torch.optim.SGD([p], lr=lr, momentum=mom, weight_decay=wd)
        for i in range(steps):
            p.grad = g[i].clone()
            opt.step()
        put(pre, "p", p)
        put(pre, "buf", opt.state[p]["momentum_buffer"])

    def maxpool(pre):
        N, C, H, W, k, s, p = (int(a) for a in dims(pre))
        x = t(pre + ".x", (N, C, H, W), True)
        y, idx = F.max_pool2d(x, k, s, p, return_indices=True)
        r = t(pre + ".r", y.shape)
        (y * r).sum().backward()
        put(pre, "y", y)
        put(pre, "idx", idx.to(torch.float64))
        put(pre, "dx", x.grad)

    def avgpool(pre):
        N, C, H, W, k, s = (int(a) for a in dims(pre))
        x = t(pre + ".x", (N, C, H, W), True)
        y = F.avg_pool2d(x, k, s)
        r = t(pre + ".r", y.shape)
        (y * r).sum().backward()
        put(pre, "y", y)
        put(pre, "dx", x.grad)

    def linear(pre):
        N, I, O = (int(a) for a in dims(pre))
        x = t(pre + ".x", (N, I), True)
        w = t(pre + ".w", (O, I), True)
        b = t(pre + ".b", (O,), True)
        y = F.linear(x, w, b)
        r = t(pre + ".r", y.shape)
        (y * r).sum().backward()
        put(pre, "y", y)
        put(pre, "dx", x.grad)
        put(pre, "dw", w.grad)
        put(pre, "db", b.grad)

    def mrelu(pre):
        N, C, H, W, ch, lam = dims(pre)
        N, C, H, W, ch = int(N), int(C), int(H), int(W), int(ch)
        x = t(pre + ".x", (N, C, H, W), True)
        c = t(pre + ".c", (C, 1, 1) if ch else (C, H, W), True)
        y = c * F.relu(x) + (1 - c) * x
        r = t(pre + ".r", y.shape)
        ((y * r).sum() + lam * c.abs().sum()).backward()
        put(pre, "y", y)
        put(pre, "dx", x.grad)
        put(pre, "dc", c.grad)

    handlers = {"conv": conv, "bn": bn, "ce": ce, "kd": kd, "adam": adam, "sgd": sgd,
                "maxpool": maxpool, "avgpool": avgpool, "linear": linear, "mrelu": mrelu}
    cases = []
    for name in ins:
        pre = name.split(".")[0]
        if pre not in cases:
            cases.append(pre)
    for pre in cases:
        kind = pre.rstrip("0123456789")
        if kind not in handlers:
            print(f"ref_crosscheck: unknown case kind {kind!r} ({pre})", file=sys.stderr)
            return 1
        handlers[kind](pre)
    write_recs(argv[2], out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
