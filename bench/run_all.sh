#!/usr/bin/env bash
# run_all.sh - the performance table and figures of docs/performance.md, in one run.
#
#   bash bench/run_all.sh [RESULTS_DIR]        (default bench/results)
#
# Needs the default build (meson setup build; it builds build/bench/bench and build/bench/bench-memory).
# Writes RESULTS_DIR/bench.csv (build/bench/bench: f32 and f64, forward and backward, the grid
# below, median of 5), memory.csv (build/bench/bench-memory), options.csv (build/bench/bench-options:
# each score option against the same call without it, n = 4096, p = 1 and 4), decode.csv
# (build/bench/bench-decode: paged decoding, b = 8, nq 1 and 4, 32k keys, pages of 16, h = 32, hk = 8,
# d = 128, 1 and 16 splits, f32 and f64 compute: GB/s against the same run's copy), and, when PYTHON (default
# .venv/bin/python) has torch, torch.csv (bench/compare_torch.py) and the figures
# (bench/plot.py, needs matplotlib) in bench/figures/.
#
# The grid (b=1, h=8, every ratio measured in the same run):
#   bench.csv: f32, n in {1024, 4096}, d in {64, 128}, causal off/on, p in {1, 8}, threads 1
#              and 2, forward and backward; f64 the same at n = 4096, 2 threads; bf16 and f16
#              storage (f32 compute) and their emulated baselines at n = 4096, p = 1, 2 threads;
#   torch.csv: PyTorch SDPA against ringattn (p = 1), n in {1024, 4096}, d in {64, 128}, causal
#              off/on: f32 with 1 and 2 threads, f64 with 2; n = 16384 f32, d = 64, causal, 2 threads;
#   darcstar.csv (when DARCSTAR names a checkout of dilated-attention-pytorch, see
#              bench/compare_darcstar.py): n = 65536, h = 8, d = 64, segments 2048,4096,8192,
#              rates 1,2,4, 2 threads, ringattn at p = 1 and 8.
# BENCH=build/bench/bench-avx2 runs bench.csv, torch.csv and darcstar.csv with the AVX2 kernels
# on a CPU that has AVX-512, and nothing else (the other programs choose their kernels at run
# time, and the figures stay the default run's): both instruction sets measured on one
# machine, e.g.  BENCH=build/bench/bench-avx2 bash bench/run_all.sh bench/results-avx2
# Medians of 5. About 20 minutes on a 2-core machine. Run it on an idle machine: a neighbour's
# load moves the ratios too. OMP_WAIT_POLICY defaults to ACTIVE here (threads spin at the
# ring's barriers instead of sleeping: right for a dedicated machine, wrong for a shared one;
# set PASSIVE to see the difference).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench/results}
py=${PYTHON:-.venv/bin/python}
[ -x "$py" ] || py=$(command -v python3 || echo none)
mkdir -p "$out"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-ACTIVE}
[ -x build/bench/bench ] && [ -x build/bench/bench-avx2 ] && [ -x build/bench/bench-options ] && [ -x build/bench/bench-decode ] ||
  meson compile -C build bench bench-avx2 bench-memory bench-options bench-decode

b=${BENCH:-build/bench/bench}
{ lscpu | sed -n 's/^Model name: *//p' | head -n 1
  grep -o -w -m 1 -e avx512f -e avx2 /proc/cpuinfo | sort -u | tr '\n' ' '; echo; nproc; } > "$out/cpu.txt"
{
  $b --n 1024,4096 --d 64,128 --causal 0,1 --p 1,8 --threads 1,2 --dtype f32 --pass fwd,bwd --reps 5
  $b --n 4096 --d 64,128 --causal 0,1 --p 1,8 --threads 2 --dtype f64 --pass fwd,bwd --reps 5 | tail -n +2
  $b --n 4096 --d 64,128 --causal 0,1 --p 1 --threads 2 --dtype bf16,f16,bf16-emul,f16-emul --pass fwd,bwd --reps 5 | tail -n +2
} > "$out/bench.csv"
if [ -z "${BENCH:-}" ]; then   # these programs choose their kernels at run time: once per machine
  build/bench/bench-memory > "$out/memory.csv"
  build/bench/bench-options --n 4096 --p 1,4 --threads 2 --reps 5 > "$out/options.csv"
  build/bench/bench-decode --b 8 --nq 1,4 --len 32768 --page 16 --h 32 --hk 8 --d 128 --splits 1,16 --threads 2 --reps 5 > "$out/decode.csv"
fi
if [ -x "$py" ] && "$py" -c 'import torch' 2>/dev/null; then
  {
    "$py" bench/compare_torch.py --bench "$b" --n 1024,4096 --d 64,128 --causal 0,1 --threads 1,2 --dtype f32 --reps 5
    "$py" bench/compare_torch.py --bench "$b" --n 1024,4096 --d 64,128 --causal 0,1 --threads 2 --dtype f64 --reps 5 | tail -n +2
    "$py" bench/compare_torch.py --bench "$b" --n 16384 --d 64 --causal 1 --threads 2 --reps 5 | tail -n +2
  } > "$out/torch.csv"
  if [ -n "${DARCSTAR:-}" ]; then
    "$py" bench/compare_darcstar.py --darcstar "$DARCSTAR" --bench "$b" --reps 5 > "$out/darcstar.csv" 2> "$out/darcstar.txt"
  fi
  if [ -z "${BENCH:-}" ] && "$py" -c 'import matplotlib' 2>/dev/null; then "$py" bench/plot.py "$out" bench/figures; fi
fi
echo "results in $out"
