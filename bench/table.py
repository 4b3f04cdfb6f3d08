#!/usr/bin/env python3
"""table.py - the performance tables of docs/performance.md, from one run of bench/run_all.sh.

    python3 bench/table.py [RESULTS_DIR]        (default bench/results)

Prints Markdown: (1) f32 GFLOP/s and the ratio to the same-run OpenBLAS sgemm for every
(n, d, causal, p, threads) of bench.csv; (2) the issue's targets against what this run
measured; (3) ringattn against PyTorch SDPA (torch.csv). Nothing here measures anything:
every figure comes from the CSV files, so the tables and the figures (plot.py) always show
the same run.
"""
import csv
import os
import sys


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def key(r, *names):
    return tuple(r[n] for n in names)


def main():
    res = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "results")
    rows = read(os.path.join(res, "bench.csv"))
    by = {key(r, "dtype", "pass", "n", "d", "causal", "p", "threads"): r for r in rows if r["partition"] == "0"}

    def get(dtype, pas, n, d, causal, p, thr):
        return by.get((dtype, pas, str(n), str(d), str(causal), str(p), str(thr)))

    gemm = {}
    for r in rows:
        gemm.setdefault((r["dtype"], r["threads"]), r["gemm_gflops"])
    print("Same-run GEMM ceiling (square %s): " % "2048" +
          ", ".join(f"{dt} {t} thread{'s' if t != '1' else ''} {g} GFLOP/s" for (dt, t), g in sorted(gemm.items())))
    print()
    for dtype in ("f32", "f64"):
        ns = sorted({int(r["n"]) for r in rows if r["dtype"] == dtype})
        print(f"**{dtype}** — GFLOP/s (ratio to the same-run {'s' if dtype == 'f32' else 'd'}gemm with as many threads), b=1, h=8:")
        print()
        print("| n | d | causal | threads | fwd p=1 | fwd p=8 | bwd p=1 | bwd p=8 |")
        print("|---|---|---|---|---|---|---|---|")
        for n in ns:
            for d in (64, 128):
                for causal in (0, 1):
                    for thr in (1, 2):
                        cells = []
                        for pas in ("fwd", "bwd"):
                            for p in (1, 8):
                                r = get(dtype, pas, n, d, causal, p, thr)
                                cells.append(f"{float(r['gflops']):.0f} ({float(r['ratio_to_gemm']):.2f})" if r else "–")
                        if all(c == "–" for c in cells):
                            continue
                        print(f"| {n} | {d} | {'yes' if causal else 'no'} | {thr} | " + " | ".join(cells) + " |")
        print()

    # the targets of issue 7, as measured in this run
    def ratio(pas, d, causal, p=1, thr=2, n=4096):
        r = get("f32", pas, n, d, causal, p, thr)
        return float(r["ratio_to_gemm"]) if r else None

    def gf(pas, d, causal, p, thr, n=4096):
        r = get("f32", pas, n, d, causal, p, thr)
        return float(r["gflops"]) if r else None

    print("| target (f32, n=4096, 2 threads unless said) | wanted | measured |")
    print("|---|---|---|")
    for label, want, got in (
        ("forward d=128, non-causal / sgemm", "≥ 0.65", ratio("fwd", 128, 0)),
        ("forward d=64, non-causal / sgemm", "≥ 0.60", ratio("fwd", 64, 0)),
        ("forward d=128, causal / sgemm", "≥ 0.55", ratio("fwd", 128, 1)),
        ("forward d=64, causal / sgemm", "≥ 0.55", ratio("fwd", 64, 1)),
        ("backward d=128, non-causal / sgemm", "≥ 0.45", ratio("bwd", 128, 0)),
        ("backward d=64, non-causal / sgemm", "≥ 0.45", ratio("bwd", 64, 0)),
        ("backward d=64, causal / sgemm", "≥ 0.45", ratio("bwd", 64, 1)),
    ):
        print(f"| {label} | {want} | {got:.3f} |" if got is not None else f"| {label} | {want} | – |")
    worst = None
    for pas in ("fwd", "bwd"):
        for d in (64, 128):
            for causal in (0, 1):
                for thr in (1, 2):
                    a, b = gf(pas, d, causal, 1, thr), gf(pas, d, causal, 8, thr)
                    if a and b:
                        loss = 1 - b / a
                        if worst is None or loss > worst[0]:
                            worst = (loss, pas, d, causal, thr)
    if worst:
        print(f"| p=8 vs p=1, same threads (worst of fwd/bwd, d, causal, 1-2 threads) | ≤ 5 % slower | "
              f"{100 * worst[0]:.1f} % ({worst[1]}, d={worst[2]}, causal={worst[3]}, {worst[4]} thr.) |")
    sc = []
    for pas in ("fwd", "bwd"):
        for d in (64, 128):
            for causal in (0, 1):
                a, b = gf(pas, d, causal, 1, 1), gf(pas, d, causal, 1, 2)
                if a and b:
                    sc.append((b / a, pas, d, causal))
    if sc:
        lo = min(sc)
        print(f"| 2 threads / 1 thread, p=1 (worst) | ≥ 1.8 | {lo[0]:.2f} ({lo[1]}, d={lo[2]}, causal={lo[3]}) |")
    tpath = os.path.join(res, "torch.csv")
    if os.path.exists(tpath):
        t = read(tpath)
        fw = [float(r["speedup"]) for r in t if r["pass"] == "fwd"]
        if fw:
            print(f"| forward vs PyTorch SDPA (all shapes of torch.csv) | ≥ 1.5 | {min(fw):.2f} – {max(fw):.2f} |")
        print()
        print("ringattn (ring size 1) against PyTorch `scaled_dot_product_attention`, f32, b=1, h=8, same run"
              " (speedup > 1: ringattn faster):")
        print()
        print("| n | d | causal | threads | SDPA fwd | ringattn fwd | speedup | SDPA bwd | ringattn bwd | speedup |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        tb = {key(r, "pass", "n", "d", "causal", "threads"): r for r in t}
        for k in sorted({key(r, "n", "d", "causal", "threads") for r in t}, key=lambda x: tuple(map(int, x))):
            f, b = tb.get(("fwd",) + k), tb.get(("bwd",) + k)
            if not (f and b):
                continue
            print(f"| {k[0]} | {k[1]} | {'yes' if k[2] == '1' else 'no'} | {k[3]} | {float(f['torch_gflops']):.0f} | "
                  f"{float(f['ringattn_gflops']):.0f} | {float(f['speedup']):.2f} | {float(b['torch_gflops']):.0f} | "
                  f"{float(b['ringattn_gflops']):.0f} | {float(b['speedup']):.2f} |")


if __name__ == "__main__":
    main()
