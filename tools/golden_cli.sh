#!/usr/bin/env bash
# golden_cli.sh TOOL GOLDEN_DIR WORK_DIR - ringattn-golden end to end, checking exit codes.
set -u
tool=$1 golden=$2 work=$3
case_dir=$golden/gqa              # bottom-right causal, GQA, with gradients
rm -rf "$work"; mkdir -p "$work/f32"   # a fresh folder: a stale one of an older tool is refused
fails=0
source "$(dirname "$0")/expect.sh"   # expect CODE command..., expect_text TEXT
expect 0 "$tool" --help
expect 0 "$tool" compute "$case_dir/q.npy" "$case_dir/k.npy" "$case_dir/v.npy" "$case_dir/dout.npy" \
  --causal bottom-right --ring 3 -o "$work"
for x in out lse dq dk dv; do
  expect 0 "$tool" compare "$work/$x.npy" "$case_dir/$x.npy" --atol 1e-10 --rtol 1e-9
done
# f32 on the ring: outside a tight f64 tolerance, within policy (b) against a plain f32 run
expect 0 "$tool" compute "$case_dir/q.npy" "$case_dir/k.npy" "$case_dir/v.npy" "$case_dir/dout.npy" \
  --causal bottom-right --ring 4 --compute f32 --dtype f32 -o "$work/f32"
expect 1 "$tool" compare "$work/f32/out.npy" "$case_dir/out.npy" --atol 1e-12 --rtol 0
expect 0 "$tool" compare "$work/f32/dq.npy" "$case_dir/dq.npy" --baseline-from "$case_dir" --causal bottom-right
expect 0 "$tool" compare "$work/f32/lse.npy" "$case_dir/lse.npy" --baseline-from "$case_dir" --causal bottom-right
# a kernel with the wrong mask alignment (top-left where bottom-right is meant) is caught
# (nq = 20, nk = 36, where the two differ)
mkdir -p "$work/wrong"
cross=$golden/cross_bottom_right
expect 0 "$tool" compute "$cross/q.npy" "$cross/k.npy" "$cross/v.npy" --causal top-left --compute f32 \
  --dtype f32 -o "$work/wrong"
expect 1 "$tool" compare "$work/wrong/out.npy" "$cross/out.npy" --baseline-from "$cross" --causal bottom-right
# the variant options: varlen (3 packed sequences, causal per sequence) on a zigzag ring, a
# softcap on a striped ring, a window; and a forgotten --softcap is caught
vl=$golden/varlen_causal
mkdir -p "$work/varlen" "$work/softcap" "$work/nocap" "$work/window"
expect 0 "$tool" compute "$vl/q.npy" "$vl/k.npy" "$vl/v.npy" "$vl/dout.npy" --causal bottom-right \
  --cu-seqlens-q 0,10,22,32 --cu-seqlens-k 0,14,22,40 --partition zigzag --ring 3 -o "$work/varlen"
for x in out lse dq dk dv; do
  expect 0 "$tool" compare "$work/varlen/$x.npy" "$vl/$x.npy" --atol 1e-10 --rtol 1e-9
done
sc=$golden/softcap_causal
expect 0 "$tool" compute "$sc/q.npy" "$sc/k.npy" "$sc/v.npy" "$sc/dout.npy" --causal top-left --scale 0.5 \
  --softcap 2 --partition striped --ring 4 -o "$work/softcap"
expect 0 "$tool" compare "$work/softcap/out.npy" "$sc/out.npy" --atol 1e-10 --rtol 1e-9
expect 0 "$tool" compare "$work/softcap/dk.npy" "$sc/dk.npy" --atol 1e-10 --rtol 1e-9
expect 0 "$tool" compute "$sc/q.npy" "$sc/k.npy" "$sc/v.npy" --causal top-left --scale 0.5 -o "$work/nocap"
expect 1 "$tool" compare "$work/nocap/out.npy" "$sc/out.npy" --baseline-from "$sc" --causal top-left \
  --scale 0.5 --softcap 2
wc=$golden/window_cross
expect 0 "$tool" compute "$wc/q.npy" "$wc/k.npy" "$wc/v.npy" "$wc/dout.npy" --causal bottom-right \
  --window 6,-1 --ring 2 -o "$work/window"
expect 0 "$tool" compare "$work/window/dq.npy" "$wc/dq.npy" --atol 1e-10 --rtol 1e-9
# bad input: not a .npy file, shapes that differ, a missing file, a bad option
expect 2 "$tool" compare "$golden/manifest.txt" "$case_dir/out.npy"
expect 2 "$tool" compare "$work/out.npy" "$case_dir/lse.npy"
expect 2 "$tool" compare "$work/nothing.npy" "$case_dir/out.npy"
expect 2 "$tool" compare "$work/out.npy" "$case_dir/out.npy" --causal sideways
expect 2 "$tool" compute "$case_dir/q.npy" "$case_dir/k.npy"
expect 2 "$tool" compute "$vl/q.npy" "$vl/k.npy" "$vl/v.npy" --partition diagonal
expect 2 "$tool" compute "$vl/q.npy" "$vl/k.npy" "$vl/v.npy" --cu-seqlens-q 0,10,22,32 --cu-seqlens-k 0,40
expect 2 "$tool" compute "$vl/q.npy" "$vl/k.npy" "$vl/v.npy" --cu-seqlens-q 0,10,22,31 --cu-seqlens-k 0,14,22,40
expect 2 "$tool" compute "$sc/q.npy" "$sc/k.npy" "$sc/v.npy" --softcap -1
expect 2 "$tool" frobnicate
# compute creates its output folder and records its options there; compare --baseline-from
# uses them: the README's line without --causal now fails a dq broken by 2 % of its max
# (tools/testdata/empty_rows_dq_2pct.npy: reference/golden/empty_rows/dq.npy in f32, element
# [0, 20, 1, 3] + 0.02 max|dq|), and an explicit option that disagrees is refused
er=$golden/empty_rows
expect 0 "$tool" compute "$er/q.npy" "$er/k.npy" "$er/v.npy" "$er/dout.npy" --causal bottom-right \
  -o "$work/new/deeper/ref"
expect 0 grep -qx -- "--causal bottom-right" "$work/new/deeper/ref/ringattn_options.txt"
testdata=$(dirname "$0")/testdata
expect 1 "$tool" compare "$testdata/empty_rows_dq_2pct.npy" "$work/new/deeper/ref/dq.npy" --baseline-from "$er"
expect 1 "$tool" compare "$testdata/empty_rows_dq_2pct.npy" "$work/new/deeper/ref/dq.npy" --baseline-from "$er" \
  --causal bottom-right
expect 2 "$tool" compare "$testdata/empty_rows_dq_2pct.npy" "$work/new/deeper/ref/dq.npy" --baseline-from "$er" \
  --causal top-left
expect 0 "$tool" compare "$work/new/deeper/ref/dq.npy" "$er/dq.npy" --atol 1e-10 --rtol 1e-9
# FlashAttention's varlen lse: (h, total_q), +inf for the rows that see no key
# (tools/testdata/varlen_lse_flash.npy: reference/golden/varlen_causal/lse.npy[0] in f32, -inf -> +inf)
expect 0 "$tool" compute "$vl/q.npy" "$vl/k.npy" "$vl/v.npy" --causal bottom-right \
  --cu-seqlens-q 0,10,22,32 --cu-seqlens-k 0,14,22,40 -o "$work/varlen_ref"
expect 1 "$tool" compare "$testdata/varlen_lse_flash.npy" "$work/varlen_ref/lse.npy"
expect 0 "$tool" compare "$testdata/varlen_lse_flash.npy" "$work/varlen_ref/lse.npy" --empty-lse +inf
expect 0 "$tool" compare "$testdata/varlen_lse_flash.npy" "$work/varlen_ref/lse.npy" --empty-lse any \
  --baseline-from "$vl"
expect 2 "$tool" compare "$testdata/varlen_lse_flash.npy" "$work/varlen_ref/lse.npy" --empty-lse nan
# --help lists the refused combinations; they are refused; h < G with dilation is computed
expect 0 bash -c "\"$tool\" --help | grep -q 'Refused (exit 2'"
dl=$golden/dilated                 # n = 32, h = 4
expect 2 "$tool" compute "$dl/q.npy" "$dl/k.npy" "$dl/v.npy" --segments 8,16 --dilations 1,2 --partition striped --ring 2
expect 2 "$tool" compute "$dl/q.npy" "$dl/k.npy" "$dl/v.npy" --segments 8,16 --dilations 1,2 --window 4,4
expect 0 "$tool" compute "$dl/q.npy" "$dl/k.npy" "$dl/v.npy" --segments 2,4,8,16,32 --dilations 1,1,2,4,8 \
  -o "$work/h_lt_g"
[ "$fails" -eq 0 ] && echo "golden_cli: ok" || echo "golden_cli: $fails failed"
exit $((fails > 0))
