#!/usr/bin/env bash
# kvcache_cli.sh TOOL GEN WORK_DIR - ringattn-golden compute-kvcache end to end on a small paged
# case (2 sequences, pages permuted, one new key each, nq 3 > L of the second sequence): GEN
# (kvcache_golden_gen, the naive f64 oracle of reference/) writes the inputs and the goldens,
# the tool computes, `compare` judges; the int32 files, the split files, the options file and
# the refusals (exit 2).
set -u
tool=$1 gen=$2 work=$3
rm -rf "$work"; mkdir -p "$work/g/in" "$work/g/plain" "$work/g/opts"
fails=0
source "$(dirname "$0")/expect.sh"   # expect CODE command..., expect_text TEXT
expect 0 "$gen" "$work/g"
i=$work/g/in
in=("$i/q.npy" "$i/k_cache.npy" "$i/v_cache.npy" "$i/k_new.npy" "$i/v_new.npy")
cache=(--cache-seqlens "$i/cache_seqlens.npy" --block-table "$i/block_table.npy")
tight=(--atol 1e-12 --rtol 1e-10)

# plain: bottom-right causal, 3 splits, every partial written
expect 0 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --causal bottom-right --num-splits 3 --splits -o "$work/plain"
for x in out lse split_000_out split_000_lse split_001_out split_001_lse split_002_out split_002_lse; do
  expect 0 "$tool" compare "$work/plain/$x.npy" "$work/g/plain/$x.npy" "${tight[@]}" -q
done
expect 1 test -f "$work/plain/split_003_out.npy"
expect 0 grep -qx -- "--num-splits 3" "$work/plain/ringattn_options.txt"
expect 0 grep -qx -- "--block-table $i/block_table.npy" "$work/plain/ringattn_options.txt"
# the options: sinks, per-batch ALiBi, softcap, a window, splits of 4 keys
opts=(--sinks "$i/sinks.npy" --alibi "$i/alibi.npy" --softcap 4 --window 5,-1)
expect 0 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --causal bottom-right "${opts[@]}" --split-size 4 --splits \
  -o "$work/opts"
for x in out lse split_000_out split_000_lse split_001_out split_001_lse split_002_out split_002_lse; do
  expect 0 "$tool" compare "$work/opts/$x.npy" "$work/g/opts/$x.npy" "${tight[@]}" -q
done
expect 1 "$tool" compare "$work/opts/out.npy" "$work/g/plain/out.npy" "${tight[@]}" -q   # the options matter
# the result does not depend on the splits; f32 compute stored as f32 is close
expect 0 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --causal bottom-right -o "$work/one"
expect 0 "$tool" compare "$work/one/out.npy" "$work/g/plain/out.npy" "${tight[@]}" -q
expect 0 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --causal bottom-right --compute f32 --out-dtype f32 \
  --num-splits 2 -o "$work/f32"
expect 0 "$tool" compare "$work/f32/out.npy" "$work/g/plain/out.npy" --atol 2e-6 --rtol 1e-5 -q
expect 0 "$tool" compare "$work/f32/lse.npy" "$work/g/plain/lse.npy" --atol 2e-6 --rtol 1e-5 -q
# cache_seqlens as int64 ('<i8') reads the same
expect 0 "$tool" compute-kvcache "${in[@]}" --cache-seqlens "$i/seqlens_i8.npy" --block-table "$i/block_table.npy" \
  --causal bottom-right -o "$work/i8"
expect 0 "$tool" compare "$work/i8/out.npy" "$work/g/plain/out.npy" "${tight[@]}" -q
# fewer splits into the same folder: the earlier run's split files go
expect 0 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --causal bottom-right --num-splits 2 --splits -o "$work/plain"
expect 1 test -f "$work/plain/split_002_out.npy"
expect 0 test -f "$work/plain/split_001_lse.npy"
# refused (exit 2), each with a sentence, nothing written
expect 2 "$tool" compute-kvcache "${in[@]}" --cache-seqlens "$i/seqlens_f64.npy" --block-table "$i/block_table.npy" -o "$work/bad"
expect_text "expected int32"
expect 2 "$tool" compute-kvcache "${in[@]}" --cache-seqlens "$i/cache_seqlens.npy" --block-table "$i/table_bad.npy" -o "$work/bad"
expect_text "not a block of the cache"
expect 2 "$tool" compute-kvcache "${in[@]}" --block-table "$i/block_table.npy" -o "$work/bad"
expect_text "--cache-seqlens"
expect 2 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --ring 2 -o "$work/bad"
expect 2 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --max-logit -o "$work/bad"
expect 2 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --bias "$i/sinks.npy" -o "$work/bad"
expect 2 "$tool" compute-kvcache "$i/q.npy" "$i/k_cache.npy" "$i/v_cache.npy" "$i/k_new.npy" "${cache[@]}" -o "$work/bad"
expect 2 "$tool" compute-kvcache "${in[@]}" "${cache[@]}" --num-splits -1 -o "$work/bad"
expect 1 test -e "$work/bad/out.npy"
expect 2 "$tool" compute "$i/q.npy" "$i/k_new.npy" "$i/v_new.npy" --num-splits 2 -o "$work/bad"
# compare --baseline-from has no KV-cache baseline: refused, not wrong
expect 2 "$tool" compare "$work/f32/out.npy" "$work/one/out.npy" --baseline-from "$i"
expect_text "compute-kvcache"

echo "kvcache_cli: $fails failure(s)"
[ "$fails" -eq 0 ]
