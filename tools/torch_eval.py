#!/usr/bin/env python3
"""Evaluates a snlvk checkpoint in PyTorch (tools/snl_models.py) on a dataset's test split
and prints the top-1 accuracy, so a snlvk-trained net can be checked, or used, outside
snlvk.

    /usr/bin/python3 tools/torch_eval.py --ckpt runs/latest/best.safetensors [--test-limit N]
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snl_models  # noqa: E402

NORM = {"fashion-mnist": ([0.28604], [0.35302]), "mnist": ([0.1307], [0.3081]),
        "cifar10": ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]),
        "cifar100": ([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010])}
DIRS = {"fashion-mnist": "/usr/share/datasets/fashion-mnist", "mnist": "/usr/share/datasets/mnist"}


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xff
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def load_test(dataset, root):
    if dataset in ("fashion-mnist", "mnist"):
        def find(stem):
            for name in (stem + ".gz", stem):
                if os.path.exists(os.path.join(root, name)):
                    return os.path.join(root, name)
            raise SystemExit(f"{root}: {stem}(.gz) not found")
        x = read_idx(find("t10k-images-idx3-ubyte"))[:, None]
        y = read_idx(find("t10k-labels-idx1-ubyte"))
        return x, y
    if dataset == "cifar10":
        raw = np.fromfile(os.path.join(root, "test_batch.bin"), dtype=np.uint8).reshape(-1, 3073)
        return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0]
    if dataset == "cifar100":
        raw = np.fromfile(os.path.join(root, "test.bin"), dtype=np.uint8).reshape(-1, 3074)
        return raw[:, 2:].reshape(-1, 3, 32, 32), raw[:, 1]
    raise SystemExit(f"dataset {dataset}: torch_eval.py reads fashion-mnist, mnist, cifar10 and cifar100")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", default=None)
    ap.add_argument("--test-limit", type=int, default=0)
    a = ap.parse_args()
    tensors, meta = snl_models.load_safetensors(a.ckpt)
    arch, dataset = meta.get("arch"), meta.get("dataset")
    x, y = load_test(dataset, a.data or DIRS.get(dataset, "data"))
    if a.test_limit:
        x, y = x[:a.test_limit], y[:a.test_limit]
    mean, std = NORM[dataset]
    classes = tensors["linear.weight"].shape[0]
    chan = meta.get("granularity") == "channel"
    net = snl_models.make_model(arch, x.shape[1], x.shape[2], classes, chan)
    state = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
    net.load_state_dict(state)
    net.eval()
    xt = torch.from_numpy(x.astype(np.float32) / 255.0)
    xt = (xt - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 500):
            pred = net(xt[i:i + 500]).argmax(1)
            correct += int((pred == torch.from_numpy(y[i:i + 500].astype(np.int64))).sum())
    print(f"{correct / len(y):.6f}")


if __name__ == "__main__":
    main()
