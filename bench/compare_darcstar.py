#!/usr/bin/env python3
"""compare_darcstar.py - ringattn's dilated attention against DarcStar's DilatedAttention, same run.

DarcStar-Solutions-Tech/dilated-attention-pytorch is the PyTorch implementation the seed system
builds on. This script times its unmodified DilatedAttention.forward on the CPU (torch's SDPA
path) beside build/bench's ringattn_forward with the same segments, dilation rates and thread
count, in one run, and checks on a small case that both compute the same thing (through the
ringattn Python package when it is installed; skipped with a note otherwise).

It fetches nothing: it takes a checkout of that public repository,

    git clone https://github.com/DarcStar-Solutions-Tech/dilated-attention-pytorch /path/darcstar
    python3 -m venv .venv && .venv/bin/pip install numpy torch einops
    meson setup build && meson compile -C build bench
    .venv/bin/python bench/compare_darcstar.py --darcstar /path/darcstar > darcstar.csv

and imports its package from there. The only thing it replaces is the optional `torchscale`
import of the package's LongNet module (a stub module, never called): DilatedAttention does
not use it. Inputs are [b, n, h, d] float32, no causal mask, DarcStar's default softmax scale
(1/sqrt(d), ringattn's too); timed with torch.inference_mode(), median of --reps after one
warm-up.

Output: CSV on stdout, one header line:
    n,h,d,segments,rates,threads,p,darcstar_s,ringattn_s,speedup
speedup = darcstar_s / ringattn_s (> 1: ringattn is faster). Run it on an idle machine.
"""
import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import time
import types


def ints(s):
    return [int(x) for x in s.split(",") if x]


def import_darcstar(path):
    """DarcStar's DilatedAttention class from the checkout at path (torchscale stubbed)"""
    if not os.path.isdir(os.path.join(path, "dilated_attention_pytorch")):
        sys.exit(f"{path} has no dilated_attention_pytorch/: pass --darcstar a checkout of "
                 "DarcStar-Solutions-Tech/dilated-attention-pytorch")
    stub = "torchscale.component.xpos_relative_position"
    for name in ("torchscale", "torchscale.component", stub):
        sys.modules.setdefault(name, types.ModuleType(name))
    if not hasattr(sys.modules[stub], "XPOS"):
        class XPOS:  # referenced by long_net.py at import time only
            def __init__(self, *a, **k):
                raise RuntimeError("torchscale is stubbed by compare_darcstar.py")
        sys.modules[stub].XPOS = XPOS
    sys.path.insert(0, os.path.abspath(path))
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # its optional DeepSpeed / FairScale notices
        from dilated_attention_pytorch import DilatedAttention
    return DilatedAttention


def inputs(torch, b, n, h, d, seed=1234):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, n, h, d, generator=g, dtype=torch.float32) * 0.5 for _ in range(3))


def darcstar_time(torch, cls, b, n, h, d, segs, rates, reps):
    att = cls(segment_lengths=segs, dilation_rates=rates)
    q, k, v = inputs(torch, b, n, h, d)
    ts = []
    with torch.inference_mode():
        for r in range(reps + 1):  # run 0 warms up
            t0 = time.perf_counter()
            att(q, k, v)
            if r:
                ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def ringattn_time(bench, b, n, h, d, segs, rates, p, threads, reps, wait_policy):
    cmd = [bench, "--b", str(b), "--h", str(h), "--n", str(n), "--d", str(d), "--p", str(p),
           "--threads", str(threads), "--reps", str(reps), "--dtype", "f32", "--pass", "fwd",
           "--gemm", "256", "--segments", ",".join(map(str, segs)), "--rates", ",".join(map(str, rates))]
    env = dict(os.environ, OMP_WAIT_POLICY=wait_policy)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    return float(rows[0]["median_s"])


def agreement(torch, cls, segs, rates, h, d):
    """max |DarcStar - ringattn| on a small case (n = 2 * the longest segment), or a note"""
    try:
        import ringattn
    except ImportError:
        return "ringattn Python package not installed: agreement not checked"
    n = 2 * max(segs)
    q, k, v = inputs(torch, 1, n, h, d, seed=7)
    with torch.inference_mode():
        ref = cls(segment_lengths=segs, dilation_rates=rates)(q, k, v)
    out, _ = ringattn.attention(q.double(), k.double(), v.double(), segments=segs, dilations=rates)
    err = (out.float() - ref).abs().max().item()
    return f"agreement at n={n}: max |DarcStar - ringattn| = {err:.3e}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--darcstar", required=True, help="a checkout of dilated-attention-pytorch")
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench", "bench"))
    ap.add_argument("--n", type=ints, default=[65536])
    ap.add_argument("--h", type=int, default=8)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--b", type=int, default=1)
    ap.add_argument("--segments", type=ints, default=[2048, 4096, 8192])
    ap.add_argument("--rates", type=ints, default=[1, 2, 4])
    ap.add_argument("--threads", type=ints, default=[2])
    ap.add_argument("--p", type=ints, default=[1, 8], help="ringattn ring sizes")
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    if len(a.segments) != len(a.rates):
        sys.exit("--segments and --rates need the same number of entries")
    # as in compare_torch.py: torch's threads sleep while build/bench runs
    wait_policy = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch

    if not os.path.exists(a.bench):
        sys.exit(f"no {a.bench}: meson compile -C build bench")
    cls = import_darcstar(a.darcstar)
    w = csv.writer(sys.stdout)
    w.writerow(["n", "h", "d", "segments", "rates", "threads", "p", "darcstar_s", "ringattn_s", "speedup"])
    for threads in a.threads:
        torch.set_num_threads(threads)
        for n in a.n:
            td = darcstar_time(torch, cls, a.b, n, a.h, a.d, a.segments, a.rates, a.reps)
            for p in a.p:
                tr = ringattn_time(a.bench, a.b, n, a.h, a.d, a.segments, a.rates, p, threads, a.reps, wait_policy)
                w.writerow([n, a.h, a.d, " ".join(map(str, a.segments)), " ".join(map(str, a.rates)), threads, p,
                            f"{td:.6f}", f"{tr:.6f}", f"{td / tr:.3f}"])
                sys.stdout.flush()
    print(agreement(torch, cls, a.segments, a.rates, a.h, a.d), file=sys.stderr)


if __name__ == "__main__":
    main()
