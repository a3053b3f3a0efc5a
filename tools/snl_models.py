"""PyTorch definitions of snlvk's models, with the reference code's parameter names
(`conv1`, `bn1`, `layer1.0.alpha1.alphas`, ..., `linear`; for wrn22-8
`block1.layer.0.{bn1,alpha1,conv1,bn2,conv2,alpha2,convShortcut}`, `bn1`, `fc`); build one
with make_model(arch, ...). Used by the tools that
convert checkpoints, evaluate snlvk checkpoints in PyTorch, and check parity."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class MaskedReLU(nn.Module):
    """y = c * relu(x) + (1 - c) * x with a mask of shape (1,C,H,W) or (1,C,1,1)."""

    def __init__(self, shape):
        super().__init__()
        self.alphas = nn.Parameter(torch.ones(shape))

    def forward(self, x):
        return self.alphas * F.relu(x) + (1 - self.alphas) * x


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride, size, channel_masks):
        super().__init__()
        out = (size + 2 - 3) // stride + 1
        mshape = (1, planes, 1, 1) if channel_masks else (1, planes, out, out)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.alpha1 = MaskedReLU(mshape)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.alpha2 = MaskedReLU(mshape)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        self.out_size = out

    def forward(self, x):
        out = self.alpha1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.alpha2(out + self.shortcut(x))


class ResNet(nn.Module):
    """arch: resnet18, resnet34 (the reference's CIFAR variant: no ReLU after the stem)
    or resnet8-mini (stem conv3x3->16 + BN + mask, three one-block stages 16/32/64)."""

    def __init__(self, arch, in_ch, size, classes, channel_masks=False):
        super().__init__()
        mini = arch == "resnet8-mini"
        blocks = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet8-mini": [1, 1, 1]}[arch]
        widths = [16, 32, 64] if mini else [64, 128, 256, 512]
        self.conv1 = nn.Conv2d(in_ch, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.mini = mini
        if mini:
            self.alpha1 = MaskedReLU((1, 16, 1, 1) if channel_masks else (1, 16, size, size))
        in_planes = widths[0]
        for li, (nb, w) in enumerate(zip(blocks, widths)):
            layer = []
            for b in range(nb):
                stride = 2 if (li > 0 and b == 0) else 1
                blk = BasicBlock(in_planes, w, stride, size, channel_masks)
                size = blk.out_size
                in_planes = w
                layer.append(blk)
            setattr(self, f"layer{li + 1}", nn.Sequential(*layer))
        self.n_layers = len(blocks)
        self.linear = nn.Linear(in_planes, classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x):
        out = self.bn1(self.conv1(x))
        if self.mini:
            out = self.alpha1(out)
        for li in range(self.n_layers):
            out = getattr(self, f"layer{li + 1}")(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


class WideBasicBlock(nn.Module):
    """The reference's pre-activation block: the mask alpha1 covers the block's input
    resolution, alpha2 the resolution after conv1; without equal widths the 1x1
    convShortcut sees the activated input."""

    def __init__(self, in_planes, out_planes, stride, size, channel_masks):
        super().__init__()
        out = (size + 2 - 3) // stride + 1
        self.equalInOut = in_planes == out_planes
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.alpha1 = MaskedReLU((1, in_planes, 1, 1) if channel_masks else (1, in_planes, size, size))
        self.conv1 = nn.Conv2d(in_planes, out_planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.conv2 = nn.Conv2d(out_planes, out_planes, 3, 1, 1, bias=False)
        self.alpha2 = MaskedReLU((1, out_planes, 1, 1) if channel_masks else (1, out_planes, out, out))
        self.convShortcut = None if self.equalInOut else nn.Conv2d(in_planes, out_planes, 1, stride, 0, bias=False)
        self.out_size = out

    def forward(self, x):
        if not self.equalInOut:
            x = self.alpha1(self.bn1(x))
            out = x
        else:
            out = self.alpha1(self.bn1(x))
        out = self.alpha2(self.bn2(self.conv1(out)))
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)


class NetworkBlock(nn.Module):
    def __init__(self, nb_layers, in_planes, out_planes, stride, size, channel_masks):
        super().__init__()
        layers = []
        for i in range(nb_layers):
            blk = WideBasicBlock(in_planes if i == 0 else out_planes, out_planes, stride if i == 0 else 1, size,
                                 channel_masks)
            size = blk.out_size
            layers.append(blk)
        self.layer = nn.Sequential(*layers)
        self.out_size = size

    def forward(self, x):
        return self.layer(x)


class WideResNet(nn.Module):
    """The reference's WideResNet (wrn22-8: depth 22, widen factor 8): conv3x3 -> 16, three
    NetworkBlocks of (depth-4)/6 pre-activation blocks (widths 16k/32k/64k, strides 1/2/2),
    a final BN (no mask), global average pool, `fc`."""

    def __init__(self, in_ch, size, classes, channel_masks=False, depth=22, widen_factor=8):
        super().__init__()
        assert (depth - 4) % 6 == 0
        n = (depth - 4) // 6
        ch = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_ch, ch[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, ch[0], ch[1], 1, size, channel_masks)
        self.block2 = NetworkBlock(n, ch[1], ch[2], 2, self.block1.out_size, channel_masks)
        self.block3 = NetworkBlock(n, ch[2], ch[3], 2, self.block2.out_size, channel_masks)
        self.bn1 = nn.BatchNorm2d(ch[3])
        self.fc = nn.Linear(ch[3], classes)
        self.nChannels = ch[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(1)
                m.bias.data.zero_()
            elif isinstance(m, nn.Linear):
                m.bias.data.zero_()

    def forward(self, x):
        out = self.conv1(x)
        out = self.block1(out)
        out = self.block2(out)
        out = self.block3(out)
        out = self.bn1(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


ARCHS = ["resnet18", "resnet34", "resnet8-mini", "wrn22-8"]


def make_model(arch, in_ch, size, classes, channel_masks=False):
    """The snlvk model `arch` (one of ARCHS) for in_ch x size x size inputs."""
    if arch == "wrn22-8":
        return WideResNet(in_ch, size, classes, channel_masks, depth=22, widen_factor=8)
    return ResNet(arch, in_ch, size, classes, channel_masks)


def load_safetensors(path):
    """Reads a safetensors file with the standard library and torch (no extra package)."""
    import json
    import struct
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8}
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=dt[t["dtype"]]).reshape(t["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta


def save_safetensors(path, tensors, meta=None):
    """Writes a safetensors file (tensors: name -> torch tensor), atomically."""
    import json
    import os
    import struct
    names = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
