#!/usr/bin/env python3
"""plot.py - the performance figures of docs/performance.md from the CSV files the benches write.

    build/bench/bench --n 1024,4096,16384 ... > bench/results/bench.csv
    build/bench/bench-memory                  > bench/results/memory.csv
    .venv/bin/python bench/compare_torch.py ... > bench/results/torch.csv   (optional)
    .venv/bin/pip install matplotlib
    .venv/bin/python bench/plot.py bench/results bench/figures

Writes into the output folder:
    gflops_vs_n.png   forward and backward GFLOP/s against n (f32, non-causal and causal,
                      ring size 1, one and two threads), the same-run sgemm ceiling dashed,
                      and PyTorch SDPA where torch.csv is there;
    memory_vs_p.png   bytes per ring member against ring size p (forward and backward,
                      planned and measured), log-log, with the ideal 1/p line.
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_csv(path):
    with open(path) as f:
        lines = [l for l in f if "," in l and not l.startswith("b=")]
    return list(csv.DictReader(lines))


def gflops_figure(rows, torch_rows, out):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, pas in zip(axes, ("fwd", "bwd")):
        for threads, color in (("1", "tab:blue"), ("2", "tab:orange")):
            for causal, style in (("0", "-"), ("1", ":")):
                pts = sorted((int(r["n"]), float(r["gflops"])) for r in rows
                             if r["dtype"] == "f32" and r["pass"] == pas and r["threads"] == threads
                             and r["causal"] == causal and r["p"] == "1" and r["d"] == "64")
                if pts:
                    ax.plot(*zip(*pts), style, marker="o", color=color,
                            label=f"ringattn, {threads} thr{'ead' if threads == '1' else 'eads'}"
                                  f"{', causal' if causal == '1' else ''}")
            ceil = [float(r["gemm_gflops"]) for r in rows if r["dtype"] == "f32" and r["threads"] == threads]
            if ceil:
                ax.axhline(sorted(ceil)[len(ceil) // 2], color=color, linestyle="--", linewidth=0.8,
                           label=f"OpenBLAS sgemm, {threads} thr.")
            tpts = sorted((int(r["n"]), float(r["torch_gflops"])) for r in torch_rows
                          if r["dtype"] == "f32" and r["pass"] == pas and r["threads"] == threads
                          and r["causal"] == "0" and r["d"] == "64")
            if tpts:
                ax.plot(*zip(*tpts), "-", marker="s", color=color, alpha=0.45,
                        label=f"PyTorch SDPA, {threads} thr.")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length n (b=1, h=8, d=64, f32, ring size 1)")
        ax.set_title("forward" if pas == "fwd" else "backward")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("GFLOP/s")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "gflops_vs_n.png"), dpi=110)


def memory_figure(rows, out):
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for pas, color in (("fwd", "tab:blue"), ("bwd", "tab:red")):
        pts = sorted((int(r["p"]), int(r["planned_bytes"]), int(r["measured_bytes"])) for r in rows if r["pass"] == pas)
        if not pts:
            continue
        p, planned, measured = zip(*pts)
        ax.plot(p, [x / 2**20 for x in planned], "-", color=color, label=f"{pas}: planned (ringattn_plan)")
        ax.plot(p, [x / 2**20 for x in measured], "o", color=color, label=f"{pas}: measured at the allocator")
        ax.plot(p, [planned[0] / q / 2**20 for q in p], ":", color="gray", linewidth=0.8)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("ring size p")
    ax.set_ylabel("MiB per ring member")
    ax.set_title("b=1, h=8, n=65536, d=64, f32 (dotted: ideal 1/p)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "memory_vs_p.png"), dpi=110)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot.py RESULTS_DIR FIGURES_DIR")
    res, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    bench = read_csv(os.path.join(res, "bench.csv"))
    tpath = os.path.join(res, "torch.csv")
    torch_rows = read_csv(tpath) if os.path.exists(tpath) else []
    gflops_figure(bench, torch_rows, out)
    memory_figure(read_csv(os.path.join(res, "memory.csv")), out)
    print(f"wrote {out}/gflops_vs_n.png and {out}/memory_vs_p.png")


if __name__ == "__main__":
    main()
