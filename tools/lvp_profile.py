#!/usr/bin/env python3
"""Where a running snlvk spends its time inside the machine code lavapipe generated.

lavapipe (llvmpipe) compiles each pipeline with LLVM into anonymous executable memory,
which profilers cannot name. This tool starts a command, samples it with `perf` for a few
seconds, takes the process's executable mappings and, for the JIT mappings that got the
most samples, disassembles them from the live process with `gdb`; then it splits each
mapping's samples into loops (backward jumps) and functions (texel fetches, for one, are
separate functions the kernel calls) and prints each part's share, its instruction count
and mix, and the hottest instructions. Run the kernel of interest long enough to cover
the delay and the sampling, for example

    tools/lvp_profile.py --delay 6 -- build/snlvk bench --ops --filter conv2d_forward --reps 400

(the 64->64 forward runs from about 3 s to 13 s there). Needs `perf` (Debian: linux-perf)
and `gdb`, and the right to trace the process (root, or kernel.yama.ptrace_scope = 0).
Everything, the disassembly included, is also written under --out.
"""
import argparse
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import time


def die(msg):
    print(f"lvp_profile: {msg}", file=sys.stderr)
    sys.exit(2)


def exec_mappings(pid):
    """(start, end, path) of every executable mapping; path '' for anonymous (JIT) ones."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if len(fields) < 5 or "x" not in fields[1]:
                continue
            start, end = (int(v, 16) for v in fields[0].split("-"))
            out.append((start, end, fields[5] if len(fields) > 5 else ""))
    return out


def disassemble(pid, start, end, path):
    """[(address, mnemonic, operands)] of [start, end) read from the live process."""
    count = max(1, (end - start) // 2)  # more than enough: gdb stops at unmapped memory
    with open(path, "w") as f:
        subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", f"x/{count}i {start:#x}"], stdout=f,
                       stderr=subprocess.DEVNULL, check=False)
    ins = []
    pat = re.compile(r"^\s*(?:=>\s*)?(0x[0-9a-f]+)(?:\s*<[^>]*>)?:\s*(\S+)\s*(.*)$")
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if not m:
                continue
            a = int(m.group(1), 16)
            if start <= a < end:
                ins.append((a, m.group(2), m.group(3).strip()))
    return ins


def analyse(ins, samples, total, top_ins, out):
    """Splits one mapping's samples into functions and loops and prints them."""
    hits = lambda lo, hi: sum(n for a, n in samples.items() if lo <= a <= hi)
    pct = lambda n: 100.0 * n / total
    # functions: runs of code ending in ret (the kernel first, then what it calls)
    funcs, begin = [], ins[0][0]
    for i, (a, mn, _) in enumerate(ins):
        if mn.startswith("ret"):
            funcs.append((begin, a, i))
            begin = ins[i + 1][0] if i + 1 < len(ins) else a
    out.append(f"  {len(ins)} instructions, {len(funcs)} functions")
    for fi, (lo, hi, _) in enumerate(funcs):
        n = hits(lo, hi)
        if pct(n) < 0.5:
            continue
        body = [x for x in ins if lo <= x[0] <= hi]
        mix = collections.Counter(mn for _, mn, _ in body).most_common(6)
        out.append(f"  function {fi} {lo:#x}-{hi:#x}: {pct(n):5.1f}% of samples, {len(body)} instructions; "
                   + ", ".join(f"{m} {c}" for m, c in mix))
    # loops: a backward jump closes one; report those holding at least 1% of the samples
    jump = re.compile(r"^(0x[0-9a-f]+)")
    loops = []
    for a, mn, ops in ins:
        if not mn.startswith("j"):
            continue
        m = jump.match(ops)
        if m and int(m.group(1), 16) < a:
            lo = int(m.group(1), 16)
            n = hits(lo, a)
            if pct(n) >= 1.0:
                loops.append((lo, a, n))
    for lo, hi, n in sorted(loops, key=lambda x: x[0]):
        body = [x for x in ins if lo <= x[0] <= hi]
        mix = collections.Counter(mn for _, mn, _ in body).most_common(8)
        calls = sum(1 for _, mn, _ in body if mn.startswith("call"))
        out.append(f"  loop {lo:#x}-{hi:#x}: {pct(n):5.1f}% of samples, {len(body)} instructions a trip, "
                   f"{calls} calls; " + ", ".join(f"{m} {c}" for m, c in mix))
    hot = sorted(((n, a) for a, n in samples.items() if ins[0][0] <= a <= ins[-1][0]), reverse=True)[:top_ins]
    text = {a: f"{mn} {ops}" for a, mn, ops in ins}
    out.append("  hottest instructions:")
    for n, a in hot:
        out.append(f"    {pct(n):5.2f}%  {a:#x}  {text.get(a, '?')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--delay", type=float, default=5.0, help="seconds before sampling starts")
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds of sampling")
    ap.add_argument("--freq", type=int, default=4000, help="samples a second")
    ap.add_argument("--top", type=int, default=2, help="JIT mappings to disassemble")
    ap.add_argument("--top-ins", type=int, default=15, help="hottest instructions listed per mapping")
    ap.add_argument("--out", default="lvp_profile.out", help="folder for the samples, disassembly and report")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to profile")
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        die("no command given (put it after --)")
    for tool in ("perf", "gdb"):
        if not shutil.which(tool):
            die(f"{tool} is not installed (Debian: apt-get install {'linux-perf' if tool == 'perf' else tool})")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "command.out"), "w") as log:
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        except OSError as e:
            die(f"cannot run {cmd[0]}: {e.strerror}")
    try:
        time.sleep(a.delay)
        if proc.poll() is not None:
            die(f"the command finished (status {proc.returncode}) before sampling began: "
                f"lower --delay or give it more work; its output is in {a.out}/command.out")
        data = os.path.join(a.out, "perf.data")
        r = subprocess.run(["perf", "record", "-q", "-F", str(a.freq), "-p", str(proc.pid), "-o", data, "--",
                            "sleep", str(a.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0 or proc.poll() is not None:
            die(f"perf record failed or the command ended while sampling: {r.stderr.strip()[:300]}")
        maps = exec_mappings(proc.pid)
        script = subprocess.run(["perf", "script", "-i", data, "-F", "ip"], capture_output=True, text=True)
        ips = [int(tok, 16) for tok in script.stdout.split() if re.fullmatch(r"[0-9a-f]+", tok)]
        if not ips:
            die("perf recorded no samples")
        per_map = collections.Counter()
        samples = collections.defaultdict(collections.Counter)
        for ip in ips:
            for m in maps:
                if m[0] <= ip < m[1]:
                    per_map[m] += 1
                    samples[m][ip] += 1
                    break
            else:
                per_map[(0, 0, "[kernel or unknown]")] += 1
        total = len(ips)
        out = [f"{total} samples of: {' '.join(cmd)}", "", "share by executable mapping ('JIT': lavapipe's code):"]
        for m, n in per_map.most_common(12):
            name = os.path.basename(m[2]) if m[2] else "JIT"
            out.append(f"  {100.0 * n / total:5.1f}%  {m[0]:#x}-{m[1]:#x}  {name}")
        jits = [m for m, _ in per_map.most_common() if m[2] == "" and m[1] > m[0]][:a.top]
        for m in jits:
            out.append("")
            out.append(f"JIT mapping {m[0]:#x}-{m[1]:#x} ({100.0 * per_map[m] / total:.1f}% of samples):")
            ins = disassemble(proc.pid, m[0], m[1], os.path.join(a.out, f"jit_{m[0]:x}.s"))
            if not ins:
                out.append("  gdb could not read it: tracing this process needs root or kernel.yama.ptrace_scope = 0")
                continue
            analyse(ins, samples[m], total, a.top_ins, out)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    report = "\n".join(out) + "\n"
    with open(os.path.join(a.out, "report.txt"), "w") as f:
        f.write(report)
    sys.stdout.write(report)


if __name__ == "__main__":
    main()
