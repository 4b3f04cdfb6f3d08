#!/usr/bin/env bash
# gpu_check.sh - the GPU check of ringattn_cuda.h in one command, from a fresh clone, on a
# machine with an NVIDIA GPU and the CUDA toolkit:
#
#   tests/gpu_check.sh [--quick]
#
#   1. builds tests/test_cuda.cu and examples/cuda_golden.cu with nvcc for the GPU present
#      (its compute capability from nvidia-smi, else -arch=native), the CPU side with OpenMP
#      and OpenBLAS when pkg-config finds it, into build-gpu-check/;
#   2. runs test_cuda on the device: the whole test grid (every option, forward and backward)
#      on device memory against the CPU, after the same grid emulated on the host;
#   3. runs cuda_golden over a grid of shapes up to n = 32768 (dense, causal, zigzag, varlen,
#      dilated; f32 and f64 compute) and prints one table: CPU-vs-GPU max abs error of out and
#      lse, the worst element's error as a fraction of the tolerance policy of docs/golden.md (< 1 is
#      within it), and the GPU time per call (mean of 3 calls after the checked one; a call
#      includes its validation, the ring's cudaMalloc and the final synchronisation).
#
# --quick stops the grid at n = 8192 (GPU_CHECK_MAX_N=N sets any limit). The CPU reference of
# the largest shapes takes seconds to minutes, depending on the machine's cores and BLAS.
# Exit: 0 everything passed, 1 a failure, 2 the toolkit is missing or a build failed,
# 77 no NVIDIA GPU (nothing was built).
set -u

root=$(cd "$(dirname "$0")/.." && pwd) || exit 2
out=${GPU_CHECK_BUILD:-$root/build-gpu-check}
max_n=${GPU_CHECK_MAX_N:-32768}
failed=0
if [ "${1:-}" = "--quick" ]; then max_n=8192; fi

# ---------------------------------------------------------------- is there a GPU?
if ! command -v nvidia-smi > /dev/null 2>&1 && [ -z "$(ls /proc/driver/nvidia/gpus 2> /dev/null)" ]; then
  echo "SKIP: no NVIDIA GPU on this machine (no nvidia-smi and no /proc/driver/nvidia/gpus): nothing to check"
  exit 77
fi
gpu=""
if command -v nvidia-smi > /dev/null 2>&1; then
  gpu=$(nvidia-smi --query-gpu=name,compute_cap,driver_version --format=csv,noheader 2> /dev/null | head -n 1)
  if [ -z "$gpu" ] && ! nvidia-smi -L > /dev/null 2>&1; then
    echo "SKIP: nvidia-smi finds no usable NVIDIA GPU: nothing to check"
    exit 77
  fi
fi

# ---------------------------------------------------------------- build for it
nvcc=$(command -v nvcc || true)
if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc; fi
if [ -z "$nvcc" ]; then
  echo "ERROR: nvcc not found (put the CUDA toolkit's bin directory on PATH)"
  exit 2
fi
cap=$(printf '%s' "$gpu" | awk -F', ' '{ print $2 }' | tr -d ' .')
if [ -n "$cap" ]; then
  arch=(-gencode "arch=compute_${cap},code=sm_${cap}")
else
  arch=(-arch=native)
fi
host=(-Xcompiler -fopenmp)
libs=(-lgomp -lm)
if pkg-config --exists openblas 2> /dev/null; then
  host+=(-DRINGATTN_USE_CBLAS)
  # nvcc takes -I -D -L -l itself; anything else (-pthread, ...) goes to the host compiler
  for f in $(pkg-config --cflags --libs openblas); do
    case $f in
      -I* | -D*) host+=("$f") ;;
      -L* | -l*) libs+=("$f") ;;
      *) host+=(-Xcompiler "$f") ;;
    esac
  done
fi
mkdir -p "$out" || exit 2
echo "GPU:   ${gpu:-unknown (nvidia-smi gave no name)}"
echo "nvcc:  $("$nvcc" --version | tail -n 1)"
echo "build: ${arch[*]} ${host[*]} -> $out"
build() {   # build SRC EXE
  echo "+ nvcc -O2 ${arch[*]} $1"
  "$nvcc" -O2 -I"$root" -I"$root/tests" "${arch[@]}" "${host[@]}" "$root/$1" -o "$out/$2" "${libs[@]}" ||
    { echo "ERROR: building $1 failed"; exit 2; }
}
build tests/test_cuda.cu test_cuda
build examples/cuda_golden.cu cuda_golden

# ---------------------------------------------------------------- the CUDA test on the device
echo
echo "== test_cuda (emulated grid, then the same grid on the device)"
"$out/test_cuda" > "$out/test_cuda.log" 2>&1
rc=$?
grep -E "cases|^    f|^errors|^conversions|^device|^PASS|^FAIL|^SKIP|FAIL " "$out/test_cuda.log"
case $rc in
  0) ;;
  77) echo "SKIP: test_cuda found no usable CUDA device (see $out/test_cuda.log)"; exit 77 ;;
  *) echo "FAIL: test_cuda exited $rc (full log: $out/test_cuda.log)"; failed=1 ;;
esac

# ---------------------------------------------------------------- cuda_golden over the grid
echo
echo "== cuda_golden: GPU vs CPU (f64), forward, b = 1, h = 4, k/v heads = 2, d = 64; err = max |GPU - CPU|,"
echo "   frac = worst element's error / its tolerance under the policy of docs/golden.md (pass: < 1)"
printf '%-34s %6s %4s %10s %9s %10s %9s %11s  %s\n' case n ct "out err" frac "lse err" frac "GPU ms/call" verdict
row() {   # row NAME N COMPUTE ARGS...
  local name=$1 n=$2 ct=$3 line verdict oe of le lf ms rest
  shift 3
  local flag=()
  if [ "$ct" = f64 ]; then flag=(--f64); fi
  line=$("$out/cuda_golden" --random "1,$n,4,64,2" --seed "$n" "$@" ${flag[@]+"${flag[@]}"} --repeat 3 --brief 2>&1)
  local rc=$?
  read -r verdict oe of le lf ms rest <<< "$line"
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    printf '%-34s %6s %4s  error (exit %s): %s\n' "$name" "$n" "$ct" "$rc" "$line"
    failed=1
    return
  fi
  [ "$rc" -eq 0 ] || failed=1
  printf '%-34s %6s %4s %10s %9s %10s %9s %11s  %s\n' "$name" "$n" "$ct" "${oe#out_err=}" "${of#out_frac=}" \
    "${le#lse_err=}" "${lf#lse_frac=}" "${ms#gpu_ms=}" "$verdict${rest:+ $rest}"
}
for n in 1024 8192 32768; do
  [ "$n" -le "$max_n" ] || continue
  for ct in f32 f64; do
    row "dense, ring 1" "$n" "$ct"
    row "causal bottom-right, ring 4" "$n" "$ct" --causal bottom-right --ring 4
    row "causal, zigzag, ring 4" "$n" "$ct" --causal bottom-right --partition zigzag --ring 4
    row "varlen 8 seqs, causal, ring 4" "$n" "$ct" --seqs 8 --causal top-left --ring 4
    row "dilated s=n/8,n/4,n/2 r=1,2,4" "$n" "$ct" --segments "$((n / 8)),$((n / 4)),$((n / 2))" \
      --dilations 1,2,4 --causal bottom-right --ring 4
  done
done

echo
if [ "$failed" -ne 0 ]; then
  echo "FAIL: see the rows and the test_cuda lines above"
  exit 1
fi
echo "PASS: test_cuda on the device and every cuda_golden row within the tolerance policy"
exit 0
