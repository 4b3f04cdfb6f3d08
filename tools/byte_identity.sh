#!/usr/bin/env bash
# tools/byte_identity.sh - hash every output of ringattn-golden over an option grid, to show
# that a change to the implementation changed no bit (a refactor, a new kernel for an old path).
#
#   tools/byte_identity.sh BIN INPUTS WORKDIR      # prints "<sha256>  <case>" lines, then "total <sha256>"
#
# BIN is a ringattn-golden binary; build one before the change and one after (and, to cover
# every kernel, the same with -DRINGATTN_NO_SIMD and without cblas), run this with each and
# diff the outputs. INPUTS holds q/k/v/dout .npy files: reference/golden/<case>/ folders
# (small, every mask; cp -r reference/golden/* INPUTS/) and INPUTS/big/, a larger case that
# crosses tiles and panels (any such data does; needs numpy):
#   python3 -c 'import numpy as np; r = np.random.default_rng(1234)
#   [np.save(f"INPUTS/big/{n}.npy", r.standard_normal((2, 384, 4, 40)).astype(np.float32)) for n in "q k v dout".split()]' The grid: compute in f64 and f32, outputs in
# f64 / f32 / bf16, forward and backward, ring sizes 1-4 and every partition, causal both
# ways, windows, softcap, GQA, varlen, dilated (both mixes), the precision emulation
# (--p-dtype, --round-scores, --block-dtype, --state-dtype, --fp8), per-step goldens (steps)
# and the ring's schedule (trace). Timing-free and deterministic: the same binary always
# prints the same hashes, whatever the thread count.
set -euo pipefail
bin=$1 inputs=$2 work=$3
mkdir -p "$work"
hash_dir() { (cd "$1" && find . -name '*.npy' -o -name 'steps.txt' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-64); }
all=()
run() {   # run NAME ARGS... : one ringattn-golden call into $work/NAME, its hash printed
    local name=$1; shift
    rm -rf "${work:?}/$name"
    "$bin" "$@" -o "$work/$name" --force >/dev/null
    local h; h=$(hash_dir "$work/$name")
    echo "$h  $name"; all+=("$h")
}
g=$inputs
qkv() { echo "$g/$1/q.npy" "$g/$1/k.npy" "$g/$1/v.npy"; }
qkvd() { echo "$g/$1/q.npy" "$g/$1/k.npy" "$g/$1/v.npy" "$g/$1/dout.npy"; }
for c in f64 f32; do
  for r in 1 3 4; do
    for part in contiguous zigzag striped; do
      # shellcheck disable=SC2046
      run "dense-$c-r$r-$part" compute --compute $c --ring $r --partition $part $(qkvd dense)
      run "gqa-$c-r$r-$part" compute --compute $c --ring $r --partition $part --causal bottom-right $(qkvd gqa)
      run "wgqa-$c-r$r-$part" compute --compute $c --ring $r --partition $part --window 3,3 $(qkvd gqa_enable_gqa)
      run "softcap-$c-r$r-$part" compute --compute $c --ring $r --partition $part --causal top-left \
          --softcap 2 --scale 0.5 $(qkvd softcap_causal)
      run "big-$c-r$r-$part" compute --compute $c --ring $r --partition $part --causal bottom-right $(qkvd big)
      run "bigwin-$c-r$r-$part" compute --compute $c --ring $r --partition $part --window 100,20 --softcap 3 $(qkvd big)
    done
    run "empty-$c-r$r" compute --compute $c --ring $r --causal bottom-right $(qkvd empty_rows)
    run "varlen-$c-r$r" compute --compute $c --ring $r --causal bottom-right \
        --cu-seqlens-q 0,10,22,32 --cu-seqlens-k 0,14,22,40 $(qkvd varlen_causal)
    run "dil-$c-r$r" compute --compute $c --ring $r --segments 12,24,48 --dilations 1,2,4 --causal top-left $(qkvd dilated_causal)
    run "dilz-$c-r$r" compute --compute $c --ring $r --partition zigzag --segments 8,16 --dilations 1,2 --mix lse $(qkvd dilated)
    run "bigdil-$c-r$r" compute --compute $c --ring $r --segments 64,128 --dilations 1,2 $(qkvd big)
  done
  for dt in f32 bf16 f16; do run "store-$c-$dt" compute --compute $c --dtype $dt --ring 2 $(qkvd bf16_inputs); done
done
for pd in bf16 f16; do
  run "p-$pd" compute --compute f32 --dtype f32 --p-dtype $pd --ring 2 --causal bottom-right $(qkvd big)
  run "ps-$pd" compute --compute f32 --dtype f32 --p-dtype $pd --round-scores --ring 2 $(qkvd gqa)
  run "blk-$pd" compute --compute f32 --dtype f32 --p-dtype $pd --block-dtype $pd --ring 3 $(qkv big)
  run "st-$pd" compute --compute f32 --dtype f32 --state-dtype $pd --ring 4 --causal top-left $(qkv big)
done
run "fp8" compute --compute f32 --dtype f32 --fp8 e4m3 --ring 2 $(qkv gqa)
for r in 1 3; do
  run "steps-r$r" steps --compute f64 --ring $r --partition zigzag --causal bottom-right $(qkvd gqa)
  run "steps32-r$r" steps --compute f32 --ring $r --window 100,20 $(qkvd big)
done
t=$("$bin" trace --nq 64 --nk 64 --ring 4 --partition zigzag --causal bottom-right | sha256sum | cut -c1-64)
echo "$t  trace"; all+=("$t")
echo "total $(printf '%s\n' "${all[@]}" | sha256sum | cut -c1-64)"
