#!/usr/bin/env bash
# run_all.sh - the performance table and figures of docs/performance.md, in one run.
#
#   bash bench/run_all.sh [RESULTS_DIR]        (default bench/results)
#
# Needs the default build (meson setup build; it builds build/bench and build/bench-memory).
# Writes RESULTS_DIR/bench.csv (build/bench: f32 and f64, forward and backward, the grid
# below, median of 5), memory.csv (build/bench-memory), and, when PYTHON (default
# .venv/bin/python) has torch, torch.csv (bench/compare_torch.py) and the figures
# (bench/plot.py, needs matplotlib) in bench/figures/.
#
# The grid: b=1, h=8; n in {1024, 4096}, d in {64, 128}, causal off/on, p in {1, 2, 4, 8},
# threads 1 and 2, f32 (f64 at p in {1, 8}); n = 16384 for f32, d in {64, 128}, p in {1, 8},
# 2 threads. PyTorch: n in {1024, 4096} (d 64 and 128, threads 1 and 2) and 16384 (d = 64,
# 2 threads). About 20 minutes on a 2-core machine. Run it on an idle machine: every ratio in
# the CSV is taken against a GEMM measured in the same process, but a neighbour's load still
# moves them. OMP_WAIT_POLICY defaults to ACTIVE here (threads spin at the ring's barriers
# instead of sleeping: right for a dedicated machine, wrong for a shared one; set PASSIVE to
# see the difference).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=$(command -v python3 || echo none)
mkdir -p "$out"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-ACTIVE}
[ -x build/bench ] || meson compile -C build bench bench-memory

b=build/bench
{
  $b --n 1024,4096 --d 64,128 --causal 0,1 --p 1,2,4,8 --threads 1,2 --dtype f32 --pass fwd,bwd --reps 5
  $b --n 1024,4096 --d 64,128 --causal 0,1 --p 1,8 --threads 1,2 --dtype f64 --pass fwd,bwd --reps 5 | tail -n +2
  $b --n 16384 --d 64,128 --causal 0,1 --p 1,8 --threads 2 --dtype f32 --pass fwd,bwd --reps 5 | tail -n +2
} > "$out/bench.csv"
build/bench-memory > "$out/memory.csv"
if [ -x "$py" ] && "$py" -c 'import torch' 2>/dev/null; then
  {
    "$py" bench/compare_torch.py --n 1024,4096 --d 64,128 --causal 0,1 --threads 1,2 --reps 5
    "$py" bench/compare_torch.py --n 16384 --d 64 --causal 0,1 --threads 2 --reps 5 | tail -n +2
  } > "$out/torch.csv"
  if "$py" -c 'import matplotlib' 2>/dev/null; then "$py" bench/plot.py "$out" bench/figures; fi
fi
echo "results in $out"
