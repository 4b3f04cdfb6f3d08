#!/usr/bin/env python3
"""compare_torch.py - ringattn against PyTorch CPU scaled_dot_product_attention, same run.

For every shape, in this one process run: PyTorch's SDPA forward and backward (median of
--reps timed runs after one warm-up, with torch.set_num_threads(threads)), then ringattn's
build/bench on the same shape (ring size --p, same thread count, same reps), and the ratio.
Both sides count FLOPs the same way: forward 4*b*h*n*n*d (half when causal), backward 2.5x
that. PyTorch's backward time is out.backward(dout) alone; ringattn's is ringattn_backward.

    python3 -m venv .venv && .venv/bin/pip install numpy torch
    meson setup build && meson compile -C build bench
    .venv/bin/python bench/compare_torch.py --n 1024,4096 --d 64,128 --threads 1,2 > torch.csv

Output: CSV on stdout, one header line:
    dtype,pass,b,h,n,d,causal,p,threads,torch_s,torch_gflops,ringattn_s,ringattn_gflops,speedup
speedup = torch_s / ringattn_s (> 1: ringattn is faster).

Run it on an idle machine: both sides are timed in the same run, so a busy machine makes
both slower, but not necessarily by the same factor.
"""
import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import time


def ints(s):
    return [int(x) for x in s.split(",") if x]


def torch_times(torch, b, h, n, d, causal, dtype, reps):
    """median forward and backward seconds of SDPA on [b, h, n, d] tensors"""
    g = torch.Generator().manual_seed(1234)
    q, k, v, do = (torch.randn(b, h, n, d, generator=g, dtype=dtype) * 0.5 for _ in range(4))
    for t in (q, k, v):
        t.requires_grad_(True)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    tf, tb = [], []
    for r in range(reps + 1):  # run 0 warms up
        for t in (q, k, v):
            t.grad = None
        t0 = time.perf_counter()
        out = sdpa(q, k, v, is_causal=bool(causal))
        t1 = time.perf_counter()
        out.backward(do)
        t2 = time.perf_counter()
        if r:
            tf.append(t1 - t0)
            tb.append(t2 - t1)
    return statistics.median(tf), statistics.median(tb)


BENCH_WAIT_POLICY = "PASSIVE"   # set in main() from the caller's OMP_WAIT_POLICY


def ringattn_times(bench, b, h, n, d, causal, dtype, p, threads, reps):
    """median forward and backward seconds from build/bench's CSV"""
    cmd = [bench, "--b", str(b), "--h", str(h), "--n", str(n), "--d", str(d), "--causal", str(causal),
           "--p", str(p), "--threads", str(threads), "--reps", str(reps), "--dtype", dtype,
           "--pass", "fwd,bwd", "--gemm", "256"]
    env = dict(os.environ, OMP_WAIT_POLICY=BENCH_WAIT_POLICY)
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    rows = {r["pass"]: float(r["median_s"]) for r in csv.DictReader(io.StringIO(res.stdout))}
    return rows["fwd"], rows["bwd"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", "build", "bench", "bench"))
    ap.add_argument("--n", type=ints, default=[1024, 4096])
    ap.add_argument("--d", type=ints, default=[64, 128])
    ap.add_argument("--causal", type=ints, default=[0, 1])
    ap.add_argument("--threads", type=ints, default=[1, 2])
    ap.add_argument("--dtype", default="f32", help="f32, f64 or f32,f64")
    ap.add_argument("--p", type=int, default=1, help="ringattn ring size")
    ap.add_argument("--b", type=int, default=1)
    ap.add_argument("--h", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    # torch's OpenMP threads must sleep while build/bench runs: with OMP_WAIT_POLICY=ACTIVE
    # they would spin on both cores for the whole ringattn measurement (that halved its
    # 2-thread figures). So torch runs PASSIVE and the bench gets the caller's policy.
    global BENCH_WAIT_POLICY
    BENCH_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    import torch  # imported here so that --help works without it

    if not os.path.exists(a.bench):
        sys.exit(f"no {a.bench}: meson compile -C build bench")
    w = csv.writer(sys.stdout)
    w.writerow(["dtype", "pass", "b", "h", "n", "d", "causal", "p", "threads", "torch_s", "torch_gflops",
                "ringattn_s", "ringattn_gflops", "speedup"])
    for dt in a.dtype.split(","):
        tdt = {"f32": torch.float32, "f64": torch.float64}[dt]
        for threads in a.threads:
            torch.set_num_threads(threads)
            for n in a.n:
                for d in a.d:
                    for c in a.causal:
                        flops = 4.0 * a.b * a.h * n * n * d * (0.5 if c else 1.0)
                        tf, tb = torch_times(torch, a.b, a.h, n, d, c, tdt, a.reps)
                        rf, rb = ringattn_times(a.bench, a.b, a.h, n, d, c, dt, a.p, threads, a.reps)
                        for name, t, r, fl in (("fwd", tf, rf, flops), ("bwd", tb, rb, 2.5 * flops)):
                            w.writerow([dt, name, a.b, a.h, n, d, c, a.p, threads, f"{t:.6f}", f"{fl / t * 1e-9:.2f}",
                                        f"{r:.6f}", f"{fl / r * 1e-9:.2f}", f"{t / r:.3f}"])
                        sys.stdout.flush()


if __name__ == "__main__":
    main()
