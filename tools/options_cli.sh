#!/usr/bin/env bash
# options_cli.sh TOOL GOLDEN_DIR WORK_DIR - ringattn-golden's score options end to end:
# --sinks, --alibi, --bias, --mask, --document-ids(-k), --max-logit on compute, steps and
# compare --baseline-from, with and without them, checking exit codes. The option files are
# tools/testdata/options/*.npy (made by tools/testdata/options/make.py) for the golden case gqa
# (b 1, nq = nk = 32, h 6, hk 2, bottom-right causal), and the golden cases of
# reference/golden/options with their own files.
set -u
tool=$1 golden=$2 work=$3
g=$golden/gqa
opt=$(cd "$(dirname "$0")/testdata/options" && pwd)
rm -rf "$work"; mkdir -p "$work"
fails=0
source "$(dirname "$0")/expect.sh"   # expect CODE command..., expect_text TEXT
all=(--sinks "$opt/sinks.npy" --alibi "$opt/alibi.npy" --bias "$opt/bias.npy" --mask "$opt/mask.npy"
     --document-ids "$opt/docs.npy")
in=("$g/q.npy" "$g/k.npy" "$g/v.npy" "$g/dout.npy")
tight=(--atol 1e-10 --rtol 1e-9)

# without the options: the golden itself
expect 0 "$tool" compute "${in[@]}" --causal bottom-right -o "$work/plain"
expect 0 "$tool" compare "$work/plain/out.npy" "$g/out.npy" "${tight[@]}"
# with every option: the extra files, and the same result on a zigzag ring of 4 as on one member
expect 0 "$tool" compute "${in[@]}" --causal bottom-right "${all[@]}" --max-logit -o "$work/all1"
expect 0 "$tool" compute "${in[@]}" --causal bottom-right "${all[@]}" --max-logit --ring 4 --partition zigzag \
  --threads 2 -o "$work/all4"
for x in out lse max_logit dq dk dv dsinks dbias; do
  expect 0 test -f "$work/all4/$x.npy"
  expect 0 "$tool" compare "$work/all4/$x.npy" "$work/all1/$x.npy" "${tight[@]}"
done
expect 0 grep -qx -- "--sinks $opt/sinks.npy" "$work/all1/ringattn_options.txt"
expect 0 grep -q "shape': (6, 32, 32)" "$work/all1/dbias.npy"     # the bias file's own shape
expect 0 grep -q "shape': (6,)" "$work/all1/dsinks.npy"
# each option changes the result
for o in sinks alibi bias mask; do
  mkdir -p "$work/$o"
  expect 0 "$tool" compute "${in[@]}" --causal bottom-right --"$o" "$opt/$o.npy" -o "$work/$o"
  expect 1 "$tool" compare "$work/$o/out.npy" "$g/out.npy" "${tight[@]}" -q
done
expect 0 "$tool" compute "${in[@]}" --causal bottom-right --document-ids "$opt/docs.npy" \
  --document-ids-k "$opt/docs.npy" -o "$work/docs"
expect 1 "$tool" compare "$work/docs/out.npy" "$g/out.npy" "${tight[@]}" -q
# no backward: no dsinks, dbias
expect 0 "$tool" compute "$g/q.npy" "$g/k.npy" "$g/v.npy" --causal bottom-right "${all[@]}" -o "$work/fwd"
expect 1 test -f "$work/fwd/dsinks.npy"
# f32 against the f64 reference, judged by a baseline computed with the recorded options
expect 0 "$tool" compute "${in[@]}" --causal bottom-right "${all[@]}" --max-logit --compute f32 --dtype f32 \
  --ring 3 -o "$work/f32"
for x in out lse max_logit dq dsinks dbias; do
  expect 0 "$tool" compare "$work/f32/$x.npy" "$work/all1/$x.npy" --baseline-from "$g" -q
done
# a forgotten option is caught, a disagreeing one refused
expect 1 "$tool" compare "$work/plain/out.npy" "$work/all1/out.npy" --baseline-from "$g" -q
expect 2 "$tool" compare "$work/f32/out.npy" "$work/all1/out.npy" --baseline-from "$g" --sinks "$opt/sinks5.npy"
# steps with the options: recorded, and every step differs from the plain run's
expect 0 "$tool" steps "$g/q.npy" "$g/k.npy" "$g/v.npy" --causal bottom-right "${all[@]}" --ring 2 -o "$work/steps"
expect 0 grep -qx -- "--mask $opt/mask.npy" "$work/steps/ringattn_options.txt"
expect 0 "$tool" steps "$g/q.npy" "$g/k.npy" "$g/v.npy" --causal bottom-right --ring 2 -o "$work/steps_plain"
expect 0 "$tool" compare-steps "$work/steps" "$work/steps"
expect 1 "$tool" compare-steps "$work/steps_plain" "$work/steps"
# the golden score-option cases of PyTorch (reference/golden/options): gpt-oss-like (GQA, window,
# sinks) and all options at once (softcap, top-left, documents on both sides, bias and mask)
go=$golden/options/gpt_oss
expect 0 "$tool" compute "$go/q.npy" "$go/k.npy" "$go/v.npy" "$go/dout.npy" --causal bottom-right --window 7,0 \
  --sinks "$go/sinks.npy" --max-logit --ring 3 --partition striped -o "$work/gpt_oss"
for x in out lse max_logit dq dk dv dsinks; do
  expect 0 "$tool" compare "$work/gpt_oss/$x.npy" "$go/$x.npy" "${tight[@]}" -q
done
ge=$golden/options/everything
expect 0 "$tool" compute "$ge/q.npy" "$ge/k.npy" "$ge/v.npy" "$ge/dout.npy" --causal top-left --softcap 2 \
  --sinks "$ge/sinks.npy" --alibi "$ge/alibi.npy" --bias "$ge/bias.npy" --mask "$ge/mask.npy" \
  --document-ids "$ge/docs_q.npy" --document-ids-k "$ge/docs_k.npy" --max-logit --ring 2 -o "$work/everything"
for x in out lse max_logit dq dk dv dsinks dbias; do
  expect 0 "$tool" compare "$work/everything/$x.npy" "$ge/$x.npy" "${tight[@]}" -q
done
# bad input
expect 2 "$tool" compute "${in[@]}" --sinks "$opt/sinks5.npy" -o "$work/bad"          # 5 sinks, 6 heads
expect 2 "$tool" compute "${in[@]}" --mask "$opt/bias.npy" -o "$work/bad"             # not bool
expect 2 "$tool" compute "${in[@]}" --bias "$opt/mask.npy" -o "$work/bad"             # bool bias
expect 2 "$tool" compute "${in[@]}" --alibi "$opt/sinks5.npy" -o "$work/bad"          # 5 slopes
expect 2 "$tool" compute "${in[@]}" --document-ids-k "$opt/docs.npy" -o "$work/bad"   # keys only
expect 2 "$tool" compute "${in[@]}" --document-ids "$opt/sinks.npy" -o "$work/bad"    # 6 ids, nq 32
expect 2 "$tool" compute "${in[@]}" --sinks "$work/missing.npy" -o "$work/bad"
dl=$golden/dilated
expect 2 "$tool" compute "$dl/q.npy" "$dl/k.npy" "$dl/v.npy" --segments 8,16 --dilations 1,2 --max-logit -o "$work/bad"
expect 0 bash -c "\"$tool\" --help | grep -q -- '--document-ids-k'"
[ "$fails" -eq 0 ] && echo "options_cli: ok" || echo "options_cli: $fails failed"
exit $((fails > 0))
