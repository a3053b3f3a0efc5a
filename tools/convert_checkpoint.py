#!/usr/bin/env python3
"""Converts checkpoints between the reference SNL code (PyTorch .pth / .pth.tar) and snlvk
(safetensors), both ways. snlvk keeps the reference's state_dict names (shared/SNL.md), so a
conversion only changes the container:

    # reference -> snlvk: a dict with 'state_dict' (the reference saves {'arch', 'state_dict',
    # 'optimizer'}) or a bare state_dict; a leading 'module.' (DataParallel) is stripped
    /usr/bin/python3 tools/convert_checkpoint.py best_checkpoint.pth.tar net.safetensors \
        --dataset cifar100 [--arch resnet18]

    # snlvk -> reference: {'arch', 'state_dict'} (plus 'dataset' when the metadata has one)
    /usr/bin/python3 tools/convert_checkpoint.py runs/x/snl-50000.safetensors net.pth.tar

The direction follows the input's name: *.safetensors converts to .pth, anything else to
safetensors. The safetensors metadata snlvk reads: arch (--arch, else the checkpoint's
'arch', with the reference's names mapped: resnet18_in -> resnet18, resnet34_in -> resnet34,
wide_resnet_22_8 -> wrn22-8), dataset (--dataset, else the checkpoint's 'dataset'),
granularity (pixel, unless every mask is (1,C,1,1): channel; --granularity overrides).
Floating tensors are stored as float32 (snlvk's only parameter type; a note says when that
rounds), num_batches_tracked stays int64. Before writing, the state_dict is checked against
the architecture built by tools/snl_models.py (names and shapes; --no-check skips it).
Needs torch (Debian's python3-torch) and numpy; no safetensors package.
"""
import argparse
import collections
import os
import pickletools
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snl_models  # noqa: E402

# the reference code's architecture names -> snlvk's
REF_ARCH = {"resnet18_in": "resnet18", "resnet34_in": "resnet34", "wide_resnet_22_8": "wrn22-8"}
SNLVK_TO_REF = {v: k for k, v in REF_ARCH.items()}
# the mask at the input resolution (the stems have stride 1): a pixel mask gives the input size
FIRST_MASK = {"resnet18": "layer1.0.alpha1.alphas", "resnet34": "layer1.0.alpha1.alphas",
              "resnet8-mini": "alpha1.alphas", "wrn22-8": "block1.layer.0.alpha1.alphas"}
# input sizes, used only to check channel-mask checkpoints
DATASET_SIZE = {"fashion-mnist": 28, "mnist": 28, "cifar10": 32, "cifar100": 32, "tiny-imagenet": 64}
DATASET_ALIAS = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
                 "cifar-10": "cifar10", "cifar-100": "cifar100", "tiny_imagenet": "tiny-imagenet",
                 "tinyimagenet": "tiny-imagenet"}


def fail(msg):
    print(f"convert_checkpoint: {msg}", file=sys.stderr)
    sys.exit(1)


def snlvk_arch(name):
    if name is None:
        return None
    name = REF_ARCH.get(name, name)
    if name not in snl_models.ARCHS:
        fail(f"architecture '{name}' is not one of snlvk's ({', '.join(snl_models.ARCHS)}) nor a reference name "
             f"({', '.join(REF_ARCH)}); pass --arch")
    return name


def _allowed_global(module, name):
    """What a checkpoint's pickle may name: tensors and their storages, dtypes, OrderedDict,
    plain containers and numpy scalars and arrays (a saved accuracy) -- nothing that runs
    code or reaches the file system."""
    if (module, name) in {("collections", "OrderedDict"), ("torch", "Size"), ("builtins", "set"),
                          ("builtins", "frozenset"), ("builtins", "complex"), ("_codecs", "encode")}:
        return True
    if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter",
                                             "_rebuild_parameter_with_state"):
        return True
    if module == "torch" and (name.endswith("Storage") or isinstance(getattr(torch, name, None), torch.dtype)):
        return True
    if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("scalar", "_reconstruct"):
        return True
    return module == "numpy" and (name in ("dtype", "ndarray") or name.startswith("dtype["))


_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
_NO_STACK_OPS = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP"}


def _refused_global(ops):
    """The first global of a pickle's opcodes that is not allowed ("module.name"), or a
    reason why one cannot be told, or None. Callables reach a pickle only by GLOBAL, INST,
    STACK_GLOBAL (its two strings are tracked through the memo; anything unclear is
    refused) and the extension registry (refused); persistent ids go to torch's loader,
    which accepts only storages."""
    memo, pushed = {}, []  # pushed: the value of each stack-changing op, a str or None
    for op, arg, _ in ops:
        n = op.name
        if n in ("GLOBAL", "INST"):
            module, name = arg.split(" ", 1)
            if not _allowed_global(module, name):
                return f"{module}.{name}"
            pushed.append(None)
        elif n == "STACK_GLOBAL":
            if len(pushed) < 2 or not isinstance(pushed[-1], str) or not isinstance(pushed[-2], str):
                return "a STACK_GLOBAL whose names cannot be told"
            if not _allowed_global(pushed[-2], pushed[-1]):
                return f"{pushed[-2]}.{pushed[-1]}"
            pushed.append(None)
        elif n.startswith("EXT"):
            return "the copyreg extension registry"
        elif n in _STRING_OPS:
            pushed.append(arg if isinstance(arg, str) else None)
        elif n in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = pushed[-1] if pushed else None
        elif n == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif n in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(arg))
        elif n not in _NO_STACK_OPS:
            pushed.append(None)
    return None


def _check_pickle(path):
    """None when every pickle in the checkpoint names only allowed globals, else why not."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                pkls = [m for m in z.namelist() if m.endswith(".pkl")]
                if not pkls:
                    return "no pickle in the zip archive"
                for m in pkls:
                    bad = _refused_global(pickletools.genops(z.read(m)))
                    if bad:
                        return f"{m} names {bad}"
            return None
        # torch's legacy format: magic, protocol, sys info, the object, storage keys; then raw data
        with open(path, "rb") as f:
            for _ in range(5):
                bad = _refused_global(pickletools.genops(f))
                if bad:
                    return f"it names {bad}"
        return None
    except Exception as e:  # noqa: BLE001 (a malformed or unknown container)
        return f"it cannot be scanned ({e})"


def torch_load(path, trust_pickle):
    """torch.load on the CPU. A .pth file is a pickle, which can run code: unless
    --trust-pickle, it is read with weights_only=True, or where that refuses it (torch
    1.13's refuses the floats of a saved optimizer state) only after a scan of its pickles
    finds nothing but allowed globals (tensors, storages, dtypes, containers)."""
    if not trust_pickle:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 (UnpicklingError, RuntimeError; TypeError: no weights_only)
            pass
        why = _check_pickle(path)
        if why:
            fail(f"{path}: refused to unpickle: {why}; if you trust the file, pass --trust-pickle")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TypeError:  # a torch without weights_only
        return torch.load(path, map_location="cpu")


def extract_state_dict(ckpt, path):
    if isinstance(ckpt, dict) and "state_dict" in ckpt:
        sd = ckpt["state_dict"]
    elif isinstance(ckpt, dict) and ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
        sd = ckpt
    else:
        keys = list(ckpt.keys())[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        fail(f"{path}: expected a dict with 'state_dict' or a bare state_dict, got {keys}")
    if not isinstance(sd, dict):
        fail(f"{path}: 'state_dict' is a {type(sd).__name__}, not a dict")
    out = collections.OrderedDict()
    for name, t in sd.items():
        if not torch.is_tensor(t):
            fail(f"{path}: state_dict entry '{name}' is a {type(t).__name__}, not a tensor")
        if name.startswith("module."):
            name = name[len("module."):]
        if name in out:
            fail(f"{path}: '{name}' appears twice (with and without 'module.')")
        out[name] = t
    return out


def is_mask(name):
    return name.endswith(".alphas")


def check_against_model(sd, arch, granularity, size, what):
    """Names and shapes of `sd` must be those of snl_models' `arch`."""
    first = "conv1.weight"
    if first not in sd:
        fail(f"{what}: no '{first}'")
    in_ch = sd[first].shape[1]
    head = "fc.weight" if arch == "wrn22-8" else "linear.weight"
    if head not in sd:
        fail(f"{what}: no '{head}': is it a {arch} checkpoint?")
    classes = sd[head].shape[0]
    model = snl_models.make_model(arch, in_ch, size, classes, granularity == "channel")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    missing = [k for k in want if k not in got]
    unexpected = [k for k in got if k not in want]
    wrong = [f"{k}: {got[k]} (expected {want[k]})" for k in want if k in got and got[k] != want[k]]
    if missing or unexpected or wrong:
        lines = []
        if missing:
            lines.append(f"missing {len(missing)}: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            lines.append(f"unexpected {len(unexpected)}: {', '.join(unexpected[:8])}"
                         f"{' ...' if len(unexpected) > 8 else ''}")
        if wrong:
            lines.append(f"wrong shape {len(wrong)}: {'; '.join(wrong[:8])}{' ...' if len(wrong) > 8 else ''}")
        fail(f"{what} does not match {arch} ({in_ch}x{size}x{size} input, {classes} classes, {granularity} masks); "
             + "; ".join(lines) + " (--no-check writes it anyway)")


def to_safetensors(a):
    ckpt = torch_load(a.input, a.trust_pickle)
    sd = extract_state_dict(ckpt, a.input)
    src_arch = ckpt.get("arch") if isinstance(ckpt, dict) and isinstance(ckpt.get("arch"), str) else None
    arch = snlvk_arch(a.arch or src_arch)
    dataset = a.dataset or (ckpt.get("dataset") if isinstance(ckpt, dict) and isinstance(ckpt.get("dataset"), str)
                            else None)
    if dataset:
        dataset = DATASET_ALIAS.get(dataset, dataset)
    masks = [t for n, t in sd.items() if is_mask(n)]
    if a.granularity:
        granularity = a.granularity
    elif masks and all(t.dim() == 4 and t.shape[0] == 1 and t.shape[2] == 1 and t.shape[3] == 1 for t in masks):
        granularity = "channel"
    else:
        granularity = "pixel"
    tensors = collections.OrderedDict()
    rounded = []
    for name, t in sd.items():
        t = t.detach().cpu()
        if t.is_floating_point():
            if t.dtype != torch.float32:
                f = t.to(torch.float32)
                if t.dtype == torch.float64 and not torch.equal(f.to(torch.float64), t):
                    rounded.append(name)
                t = f
        elif name.endswith("num_batches_tracked"):
            t = t.to(torch.int64)
        elif t.dtype not in (torch.int64, torch.int32, torch.uint8):
            fail(f"{a.input}: '{name}' has dtype {t.dtype}, which safetensors for snlvk does not hold")
        tensors[name] = t.contiguous()
    if rounded:
        print(f"note: {len(rounded)} float64 tensors rounded to float32 (e.g. {rounded[0]})", file=sys.stderr)
    if arch and not a.no_check:
        size = a.size
        first_mask = FIRST_MASK[arch]
        if size is None and granularity == "pixel" and first_mask in tensors:
            size = tensors[first_mask].shape[-1]  # the first mask sees the input resolution
        if size is None:
            size = DATASET_SIZE.get(dataset)
        if size is None:
            print("note: input size unknown (channel masks, no --size or known --dataset): names and shapes "
                  "not checked", file=sys.stderr)
        else:
            check_against_model(tensors, arch, granularity, size, a.input)
    meta = collections.OrderedDict()
    meta["format"] = "snlvk-1"
    if arch:
        meta["arch"] = arch
    else:
        print("note: no arch (no --arch, no 'arch' in the checkpoint): snlvk will need --model", file=sys.stderr)
    if dataset:
        meta["dataset"] = dataset
    else:
        print("note: no dataset (--dataset): snlvk eval will need --dataset", file=sys.stderr)
    meta["granularity"] = granularity
    meta["stage"] = "converted"
    meta["converted_from"] = os.path.basename(a.input)
    if isinstance(ckpt, dict):
        for k in ("epoch", "best_acc", "acc"):
            v = ckpt.get(k)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                meta[k] = v
    snl_models.save_safetensors(a.output, tensors, meta)
    n_masks = sum(1 for n in tensors if is_mask(n))
    print(f"{a.output}: {len(tensors)} tensors ({n_masks} masks, {granularity}), arch {arch or '?'}, "
          f"dataset {dataset or '?'}")


def to_pth(a):
    tensors, meta = snl_models.load_safetensors(a.input)
    sd = collections.OrderedDict((k, v) for k, v in tensors.items() if not k.startswith("optim."))
    arch = a.arch or meta.get("arch")
    if arch and a.reference_arch:
        arch = SNLVK_TO_REF.get(arch, arch)
    if not arch:
        fail(f"{a.input}: no 'arch' in the metadata; pass --arch")
    out = {"arch": arch, "state_dict": sd}
    dataset = a.dataset or meta.get("dataset")
    if dataset:
        out["dataset"] = dataset
    tmp = f"{a.output}.tmp.{os.getpid()}"
    torch.save(out, tmp)
    os.replace(tmp, a.output)
    dropped = len(tensors) - len(sd)
    print(f"{a.output}: {len(sd)} tensors, arch {arch}"
          + (f" ({dropped} optimiser tensors left out)" if dropped else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="a .pth/.pth.tar (-> safetensors) or a .safetensors (-> .pth)")
    ap.add_argument("output")
    ap.add_argument("--arch", help="the architecture (default: the checkpoint's 'arch' / the metadata's)")
    ap.add_argument("--dataset", help="the dataset, for the metadata (fashion-mnist, mnist, cifar10, cifar100, "
                                      "tiny-imagenet, imagefolder)")
    ap.add_argument("--granularity", choices=["pixel", "channel"], help="default: from the masks' shape")
    ap.add_argument("--size", type=int, help="input size for the check (default: from the masks or the dataset)")
    ap.add_argument("--no-check", action="store_true", help="do not check names and shapes against the model")
    ap.add_argument("--reference-arch", action="store_true",
                    help="-> .pth: write the reference code's arch name (resnet18_in, ...) instead of snlvk's")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="load the .pth with full pickle (which can run code) when the safe load refuses it")
    a = ap.parse_args()
    if not os.path.exists(a.input):
        fail(f"{a.input}: no such file")
    if os.path.abspath(a.input) == os.path.abspath(a.output):
        fail("the output would overwrite the input")
    if a.input.endswith(".safetensors"):
        if a.output.endswith(".safetensors"):
            fail("both files are .safetensors: the output of a safetensors input is a .pth")
        to_pth(a)
    else:
        if not a.output.endswith(".safetensors"):
            fail(f"{a.output}: the output of a .pth input is a .safetensors file")
        to_safetensors(a)


if __name__ == "__main__":
    main()
