#!/usr/bin/env python3
"""Prints one table from the summary.json files of several `snlvk train` SNL runs (for
example --lambda auto against a hand-tuned lambda, with the random-mask and whole-layer
baselines):
per run and budget, the mask epochs, final lambda, ReLU count, accuracy with the soft
masks, right after binarizing and after fine-tuning, and seconds.

    python3 tools/snl_table.py runs/auto/summary.json runs/fixed/summary.json [--markdown]
"""
import json
import sys


def main():
    paths = [a for a in sys.argv[1:] if not a.startswith("--")]
    md = "--markdown" in sys.argv
    if not paths:
        sys.exit("usage: snl_table.py SUMMARY.json... [--markdown]")
    cols = ["run", "lambda rule", "method", "budget", "ReLUs", "mask ep.", "final lambda", "soft acc", "binarized",
            "finetuned", "seconds"]
    rows = []
    for p in paths:
        try:
            s = json.load(open(p))
            results = s["results"]
        except (OSError, ValueError, KeyError) as e:
            sys.exit(f"{p}: not a snlvk summary.json ({e})")
        for r in results:
            snl = r["method"] == "snl"  # a baseline has no mask phase: no mask epochs, lambda or soft masks
            rows.append([p.rsplit("/", 2)[-2] if "/" in p else p, s.get("lambda", "?"), r["method"], str(r["budget"]),
                         str(r["relus"]),
                         (f'{r["mask_epochs"]:.2f}' + ("" if r["met"] else " (not met)")) if snl else "-",
                         f'{r["lambda"]:.3g}' if snl else "-", f'{100 * r["acc_soft"]:.2f}' if snl else "-",
                         f'{100 * r["acc_binarized"]:.2f}', f'{100 * r["acc_finetuned"]:.2f}', f'{r["seconds"]:.0f}'])
    if md:
        print("| " + " | ".join(cols) + " |")
        print("|" + "|".join("---" for _ in cols) + "|")
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    w = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(cols)))
    for r in rows:
        print("  ".join(v.ljust(w[i]) for i, v in enumerate(r)))


if __name__ == "__main__":
    main()
