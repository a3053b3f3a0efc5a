#!/usr/bin/env python3
"""Reference values for one training step of a snlvk model, computed by PyTorch (float32
on the CPU), written as a safetensors file that tests/test_model.c compares against.

Scenarios:
  pretrain: CE loss, masks fixed at 1 (not trained), one SGD step (lr 0.1, momentum 0.9,
            weight decay 5e-4); also the same step with Adam (lr 1e-3).
  mask:     SNL's mask phase: CE + KD (T=4, teacher = the same net with masks 1, eval-mode
            BN) + lambda*sum|c| with masks drawn in [0.2, 1], one Adam step (lr 1e-3) on
            weights and masks.
Tensors written: input, labels, init.<name> (the state before the step), logits, ce, kd,
grad.<param>, after_sgd.<param>, after_adam.<param>, after.<buffer> (BN running stats),
relu_pos.<site> (U8: which inputs of each masked ReLU were > 0 in the step's forward).

ReLU kinks: an input within rounding distance of zero may fall on the other side in an
fp32 implementation than in this float64 reference, and the gradient through it then
differs by a whole term. --relu-signs FILE (relu_pos.<site> tensors, as written here)
makes the reference take those sides instead, and fails unless every input whose side
changes is within 1e-4 x its tensor's RMS of zero.

    /usr/bin/python3 tools/torch_parity.py --arch resnet8-mini --scenario mask --batch 4 --out F
    (--arch: resnet8-mini, resnet18, resnet34, wrn22-8; --optimizers adam writes only that step)
"""
import argparse
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import snl_models  # noqa: E402


def follow_signs(mod, site, positives, forced):
    """A forward for the masked ReLU `mod` that records which inputs are > 0 (the first
    call's, into positives[site]) and, given `forced`, takes those sides instead."""
    def forward(x):
        own = x.detach() > 0
        positives.setdefault(site, own.clone())
        if forced is None:
            return mod.alphas * F.relu(x) + (1 - mod.alphas) * x
        if forced.shape != own.shape:
            sys.exit(f"--relu-signs: relu_pos.{site} has shape {list(forced.shape)}, expected {list(own.shape)}")
        moved = forced != own
        if moved.any():
            rms = x.detach().pow(2).mean().sqrt()
            worst = x.detach().abs()[moved].max()
            if worst > 1e-4 * rms:
                sys.exit(f"--relu-signs: {int(moved.sum())} inputs of {site} change side, one of them {worst.item():.3g} "
                         f"from zero (RMS {rms.item():.3g}): more than a rounding difference")
        return mod.alphas * (x * forced.to(x.dtype)) + (1 - mod.alphas) * x
    return forward


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet8-mini", choices=snl_models.ARCHS)
    ap.add_argument("--scenario", default="pretrain", choices=["pretrain", "mask"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--channels", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--granularity", default="pixel", choices=["pixel", "channel"])
    ap.add_argument("--lam", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--optimizers", default="sgd,adam",
                    help="comma-separated steps to write (after_sgd.*, after_adam.*); fewer is quicker")
    ap.add_argument("--float32", action="store_true",
                    help="compute the step in float32 from the same state (default: float64, so the reference is "
                         "exact to fp32 precision); PyTorch's own fp32 error is then the distance between the two")
    ap.add_argument("--relu-signs", help="a safetensors file of relu_pos.<site> tensors to follow (see above)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    # the state is drawn in float64 either way, so both precisions start from the same numbers
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    mini = a.arch == "resnet8-mini"
    ch = a.channels or (1 if mini else 3)
    size = a.size or (28 if mini else 32)
    chan = a.granularity == "channel"
    net = snl_models.make_model(a.arch, ch, size, a.classes, chan)
    # non-trivial BN parameters and running statistics, so every term is exercised
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.8, 1.2)
    # the state is rounded to float32 so both sides start from identical numbers
    with torch.no_grad():
        for v in net.state_dict().values():
            if v.is_floating_point():
                v.copy_(v.float())
    teacher = None
    if a.scenario == "mask":
        teacher = snl_models.make_model(a.arch, ch, size, a.classes, chan)
        teacher.load_state_dict(net.state_dict())
        teacher.eval()
        with torch.no_grad():
            for n, p in net.named_parameters():
                if n.endswith("alphas"):
                    p.uniform_(0.2, 1.0)
                    p.copy_(p.float())
    x = torch.randn(a.batch, ch, size, size).float().to(torch.get_default_dtype())
    y = torch.randint(0, a.classes, (a.batch,))
    if a.float32:
        torch.set_default_dtype(torch.float32)
        net.float()
        x = x.float()
        if teacher is not None:
            teacher.float()
    init = {k: v.clone() for k, v in net.state_dict().items()}
    out = {"input": x, "labels": y.to(torch.int32)}
    for k, v in init.items():
        out["init." + k] = v
    if teacher is not None:
        for k, v in teacher.state_dict().items():
            out["teacher." + k] = v.clone()

    def loss_fn(model):
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        kd = torch.zeros(())
        if teacher is not None:
            with torch.no_grad():
                t = teacher(x)
            T = 4.0
            kd = F.kl_div(F.log_softmax(logits / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T
        total = ce + kd
        if teacher is not None:
            total = total + a.lam * sum(p.abs().sum() for n, p in model.named_parameters() if n.endswith("alphas"))
        return logits, ce, kd, total

    def params_for(model):
        if a.scenario == "mask":
            return list(model.parameters())
        return [p for n, p in model.named_parameters() if not n.endswith("alphas")]

    positives, forced = {}, {}
    if a.relu_signs:
        if not os.path.isfile(a.relu_signs):
            sys.exit(f"--relu-signs: {a.relu_signs}: no such file")
        forced = {k[len("relu_pos."):]: v.bool() for k, v in snl_models.load_safetensors(a.relu_signs)[0].items()
                  if k.startswith("relu_pos.")}
    for site, mod in net.named_modules():
        if isinstance(mod, snl_models.MaskedReLU):
            mod.forward = follow_signs(mod, site, positives, forced.get(site))
    sites = dict(net.named_modules())
    for site in forced:
        if not isinstance(sites.get(site), snl_models.MaskedReLU):
            sys.exit(f"{a.relu_signs}: relu_pos.{site} names no masked ReLU of {a.arch}")

    # gradients and the SGD / Adam steps each start from the same state
    net.train()
    logits, ce, kd, total = loss_fn(net)
    total.backward()
    out["logits"], out["ce"], out["kd"] = logits.detach(), ce.detach().reshape(1), kd.detach().reshape(1)
    for n, p in net.named_parameters():
        if p.grad is not None:
            out["grad." + n] = p.grad.clone()
    for k, v in net.state_dict().items():
        if "running" in k or "num_batches" in k:
            out["after." + k] = v.clone()
    opts = [o for o in a.optimizers.split(",") if o]
    if any(o not in ("sgd", "adam") for o in opts):
        ap.error(f"--optimizers: expected sgd and/or adam, got '{a.optimizers}'")
    for i, opt_name in enumerate(opts):
        # the first step reuses the gradients above (the parameters are still the initial
        # ones); later ones restart from the initial state
        net.load_state_dict(init)
        if i > 0:
            net.zero_grad()
        if opt_name == "sgd":
            opt = torch.optim.SGD(params_for(net), lr=0.1, momentum=0.9, weight_decay=5e-4)
        else:
            opt = torch.optim.Adam(params_for(net), lr=1e-3)
        if i > 0:
            _, _, _, total = loss_fn(net)
            total.backward()
        opt.step()
        for n, p in net.named_parameters():
            out[f"after_{opt_name}." + n] = p.detach().clone()
    for site, pos in positives.items():
        out["relu_pos." + site] = pos.to(torch.uint8)
    out = {k: (v.float() if v.is_floating_point() else v) for k, v in out.items()}
    snl_models.save_safetensors(a.out, out, {"arch": a.arch, "scenario": a.scenario, "lambda": a.lam,
                                             "granularity": a.granularity})


if __name__ == "__main__":
    main()
