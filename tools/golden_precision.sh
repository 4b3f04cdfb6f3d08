#!/usr/bin/env bash
# golden_precision.sh TOOL GOLDEN_DIR WORK_DIR - ringattn-golden judging a port in its own
# precision: bf16 inputs, a bf16 "port" made by the tool's own precision emulation (in another
# order: a ring of 3, eager scores), checked with --baseline-from under every policy; the same
# port judged against an f32 baseline fails (the precision the port does not have); planted
# bugs fail; per-step goldens with a baseline folder name the first failing (member, step).
set -u
tool=$1 golden=$2 work=$3
in=$golden/bf16_inputs            # q, k, v, dout stored as bf16, causal top-left
rm -rf "$work"; mkdir -p "$work"
fails=0
source "$(dirname "$0")/expect.sh"   # expect CODE command..., expect_text TEXT
qkv=("$in/q.npy" "$in/k.npy" "$in/v.npy" "$in/dout.npy")
expect 0 "$tool" compute "${qkv[@]}" --causal top-left -o "$work/ref"
# a correct bf16 port: f32 products, P rounded to bf16, outputs stored in bf16 (lse in f32)
expect 0 "$tool" compute "${qkv[@]}" --causal top-left --ring 3 --compute f32 --p-dtype bf16 --round-scores \
  --dtype bf16 -o "$work/port"
expect 0 "$tool" compute "${qkv[@]}" --causal top-left --ring 3 --compute f32 --p-dtype bf16 --dtype f32 \
  -o "$work/port32"
for pol in fa2 fa3 magi flex te; do
  for x in out dq dk dv; do
    expect 0 "$tool" compare "$work/port/$x.npy" "$work/ref/$x.npy" --baseline-from "$in" --policy $pol
  done
  expect 0 "$tool" compare "$work/port32/lse.npy" "$work/ref/lse.npy" --baseline-from "$in" --policy $pol
done
expect 0 "$tool" compare "$work/port/out.npy" "$work/ref/out.npy" --baseline-from "$in"
expect_text "port's precision (bf16"
# the same port's f32 dq against an f32 baseline: not its precision (P, dS in bf16), so it fails
expect 0 "$tool" compare "$work/port32/dq.npy" "$work/ref/dq.npy" --baseline-from "$in"
expect 1 "$tool" compare "$work/port32/dq.npy" "$work/ref/dq.npy" --baseline-from "$in" --precision f32
# planted bugs: the scale 10 % off; the other causal alignment is not planted (nq = nk)
expect 0 "$tool" compute "${qkv[@]}" --causal top-left --scale 0.3889 --compute f32 --p-dtype bf16 --dtype bf16 \
  -o "$work/bug"
expect 1 "$tool" compare "$work/bug/out.npy" "$work/ref/out.npy" --baseline-from "$in"
expect 1 "$tool" compare "$work/bug/dq.npy" "$work/ref/dq.npy" --baseline-from "$in"
# bad options
expect 2 "$tool" compare "$work/port/out.npy" "$work/ref/out.npy" --baseline-from "$in" --policy fa9
expect 2 "$tool" compare "$work/port/out.npy" "$work/ref/out.npy" --baseline-from "$in" --precision f64
expect 2 "$tool" compute "${qkv[@]}" --p-dtype f8 -o "$work/x"
expect 2 "$tool" compute "${qkv[@]}" --round-scores -o "$work/x"
# per-step goldens: f64 goldens, a baseline folder in bf16, a port that merges bf16 blocks into
# a state it holds normalised in f32 (another order than the baseline's)
steps=(steps "$in/q.npy" "$in/k.npy" "$in/v.npy" --causal top-left --ring 4)
expect 0 "$tool" "${steps[@]}" -o "$work/g"
expect 0 "$tool" "${steps[@]}" --compute f32 --p-dtype bf16 --block-dtype bf16 --dtype f32 -o "$work/base"
expect 0 "$tool" "${steps[@]}" --compute f32 --p-dtype bf16 --block-dtype bf16 --state-dtype f32 --dtype f32 \
  -o "$work/sport"
expect 0 "$tool" compare-steps --baseline "$work/base" "$work/sport" "$work/g"
expect 1 "$tool" compare-steps "$work/sport" "$work/g"      # policy (a) at f32's tolerance: not its precision
expect 0 "$tool" "${steps[@]}" --scale 0.3889 --compute f32 --p-dtype bf16 --block-dtype bf16 --dtype f32 \
  -o "$work/sbug"
expect 1 "$tool" compare-steps --baseline "$work/base" "$work/sbug" "$work/g"
expect_text "the first is (member 0, step 0)"
# fp8: inputs stored as raw e4m3 bytes (|u1), made here by the tool itself (outputs in e4m3)
for x in a:1 b:0.5 c:2; do
  expect 0 "$tool" compute "$in/q.npy" "$in/k.npy" "$in/v.npy" --scale "${x#*:}" --dtype e4m3 -o "$work/f8${x%%:*}"
done
mkdir -p "$work/f8in"
cp "$work/f8a/out.npy" "$work/f8in/q.npy"; cp "$work/f8b/out.npy" "$work/f8in/k.npy"; cp "$work/f8c/out.npy" "$work/f8in/v.npy"
f8=("$work/f8in/q.npy" "$work/f8in/k.npy" "$work/f8in/v.npy")
expect 0 "$tool" compute "${f8[@]}" --causal top-left -o "$work/f8ref"
expect 0 "$tool" compute "${f8[@]}" --causal top-left --ring 2 --compute f32 --p-dtype e4m3 --dtype bf16 -o "$work/f8port"
expect 0 "$tool" compare "$work/f8port/out.npy" "$work/f8ref/out.npy" --baseline-from "$work/f8in"
expect_text "port's precision (fp8 e4m3"
# the same bytes read as e5m2 are other numbers: that port fails
expect 0 "$tool" compute "${f8[@]}" --causal top-left --fp8 e5m2 --compute f32 --p-dtype e4m3 --dtype bf16 -o "$work/f8bad"
expect 1 "$tool" compare "$work/f8bad/out.npy" "$work/f8ref/out.npy" --baseline-from "$work/f8in"
expect 2 "$tool" compute "${f8[@]}" --fp8 e3m4 -o "$work/x"
echo "$fails failure(s)"
[ "$fails" -eq 0 ]
