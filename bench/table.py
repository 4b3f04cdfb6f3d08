#!/usr/bin/env python3
"""table.py - the performance tables of docs/performance.md, from one run of bench/run_all.sh.

    python3 bench/table.py [RESULTS_DIR]        (default bench/results)

Prints Markdown: (1) f32 GFLOP/s and the ratio to the same-run OpenBLAS sgemm for every
(n, d, causal, p, threads) of bench.csv; (2) the performance targets against what this run
measured; (3) bf16 / f16 storage and the emulated baseline against f32 storage; (4) ringattn
against PyTorch SDPA (torch.csv) and DarcStar (darcstar.csv). Nothing here measures anything:
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
        if r["dtype"] in ("f32", "f64"):
            gemm.setdefault((r["dtype"], r["threads"]), r["gemm_gflops"])
    print("Same-run GEMM ceiling (square %s): " % "2048" +
          ", ".join(f"{dt} {t} thread{'s' if t != '1' else ''} {g} GFLOP/s" for (dt, t), g in sorted(gemm.items())))
    print()
    for dtype in ("f32", "f64"):
        ns = sorted({int(r["n"]) for r in rows if r["dtype"] == dtype})
        if not ns:
            continue
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

    # the performance targets, as measured in this run
    def gf(pas, d, causal, p, thr, n=4096, dtype="f32"):
        r = get(dtype, pas, n, d, causal, p, thr)
        return float(r["gflops"]) if r else None

    tpath = os.path.join(res, "torch.csv")
    t = read(tpath) if os.path.exists(tpath) else []
    dpath = os.path.join(res, "darcstar.csv")
    ds = read(dpath) if os.path.exists(dpath) else []
    print("| target | wanted | measured (worst shape) |")
    print("|---|---|---|")

    def worst_speedup(dtype, pas, goal):
        xs = [(float(r["speedup"]), r) for r in t if r["dtype"] == dtype and r["pass"] == pas]
        if not xs:
            return "–"
        lo, r = min(xs, key=lambda x: x[0])
        hi = max(x[0] for x in xs)
        return (f"{lo:.2f} (n={r['n']}, d={r['d']}, {'causal' if r['causal'] == '1' else 'no mask'}, "
                f"{r['threads']} thr.); best {hi:.2f}; {sum(x[0] >= goal for x in xs)} of {len(xs)} shapes ≥ {goal:g}")
    for dtype, want, goal in (("f32", "≥ 1.0 (aim 1.2)", 1.0), ("f64", "≥ 1.25", 1.25)):
        for pas in ("fwd", "bwd"):
            print(f"| {dtype} {'forward' if pas == 'fwd' else 'backward'} / PyTorch SDPA, every shape of torch.csv "
                  f"| {want} | {worst_speedup(dtype, pas, goal)} |")
    for r in ds:
        print(f"| {'dilated' if r['p'] == '1' else 'ring-dilated'} forward (p={r['p']}) / DarcStar DilatedAttention, "
              f"n={r['n']} | ≥ 1.3 | {float(r['speedup']):.2f} ({float(r['darcstar_s']):.2f} s against "
              f"{float(r['ringattn_s']):.2f} s) |")
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
        print(f"| ring p=8 against p=1, same threads (f32, n=4096) | ≤ 5 % slower | "
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
        print(f"| 2 threads / 1 thread, p=1 (f32, n=4096) | ≥ 1.85 | {lo[0]:.2f} ({lo[1]}, d={lo[2]}, causal={lo[3]}) |")
    for d in (64, 128):
        r = get("f32", "fwd", 4096, d, 0, 1, 2)
        if r:
            print(f"| f32 forward d={d} / same-run sgemm (n=4096, no mask, 2 threads) | ≥ 0.85 | "
                  f"{float(r['ratio_to_gemm']):.2f} |")
    # low-precision storage (f32 compute) and the emulated baseline, against f32 storage
    low = []
    for r in rows:
        if r["dtype"] in ("f32", "f64") or r["partition"] != "0":
            continue
        base = get("f32", r["pass"], r["n"], r["d"], r["causal"], r["p"], r["threads"])
        if base:
            low.append((float(r["median_s"]) / float(base["median_s"]), r, base))
    for emul, want in ((False, "≤ 1.10"), (True, "≤ 1.5")):
        xs = [x for x in low if x[1]["dtype"].endswith("-emul") == emul]
        if xs:
            hi = max(xs, key=lambda x: x[0])
            r = hi[1]
            what = ("bf16 / f16 storage (f32 compute) time / f32 storage time" if not emul else
                    "emulated baseline (storage and P rounded to bf16 / f16) time / f32 time")
            print(f"| {what} | {want} | {hi[0]:.2f} ({r['dtype']} {r['pass']}, d={r['d']}, "
                  f"{'causal' if r['causal'] == '1' else 'no mask'}); {sum(x[0] <= float(want.split()[1]) for x in xs)} "
                  f"of {len(xs)} rows |")
    if low:
        print()
        print("Low-precision storage against f32 storage, same run (f32 compute, p = 1; `-emul`: P rounded to the "
              "storage type before P·V, `round_p`, the baseline `check()` computes for such a port):")
        print()
        print("| storage | pass | n | d | causal | threads | s | f32 storage s | ratio |")
        print("|---|---|---|---|---|---|---|---|---|")
        for ratio, r, base in sorted(low, key=lambda x: (x[1]["dtype"], x[1]["pass"] != "fwd", int(x[1]["d"]), x[1]["causal"])):
            print(f"| {r['dtype']} | {r['pass']} | {r['n']} | {r['d']} | {'yes' if r['causal'] == '1' else 'no'} | "
                  f"{r['threads']} | {float(r['median_s']):.4f} | {float(base['median_s']):.4f} | {ratio:.2f} |")
    if t:
        print()
        print("ringattn (ring size 1) against PyTorch `scaled_dot_product_attention`, b=1, h=8, same run"
              " (GFLOP/s; speedup = SDPA time / ringattn time, > 1: ringattn faster):")
        print()
        print("| dtype | n | d | causal | threads | SDPA fwd | ringattn fwd | speedup | SDPA bwd | ringattn bwd | speedup |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        tb = {key(r, "dtype", "pass", "n", "d", "causal", "threads"): r for r in t}
        for k in sorted({key(r, "dtype", "n", "d", "causal", "threads") for r in t},
                        key=lambda x: (x[0],) + tuple(map(int, x[1:]))):
            f, b = tb.get((k[0], "fwd") + k[1:]), tb.get((k[0], "bwd") + k[1:])
            if not (f and b):
                continue
            print(f"| {k[0]} | {k[1]} | {k[2]} | {'yes' if k[3] == '1' else 'no'} | {k[4]} | {float(f['torch_gflops']):.0f} | "
                  f"{float(f['ringattn_gflops']):.0f} | {float(f['speedup']):.2f} | {float(b['torch_gflops']):.0f} | "
                  f"{float(b['ringattn_gflops']):.0f} | {float(b['speedup']):.2f} |")
    if ds:
        print()
        print("Dilated attention against DarcStar's `DilatedAttention` (unmodified, torch CPU), f32, same run:")
        print()
        print("| n | h | d | segments | rates | threads | ringattn p | DarcStar s | ringattn s | speedup |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in ds:
            print(f"| {r['n']} | {r['h']} | {r['d']} | {r['segments']} | {r['rates']} | {r['threads']} | {r['p']} | "
                  f"{float(r['darcstar_s']):.3f} | {float(r['ringattn_s']):.3f} | {float(r['speedup']):.2f} |")


if __name__ == "__main__":
    main()
