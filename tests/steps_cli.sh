#!/bin/bash
# steps_cli.sh TOOL PORT SRC_ROOT WORKDIR [PYTHON]: ringattn-golden steps / compare-steps / trace
# --svg / compare --heatmap end to end.
#   - `steps` on a golden case (causal, zigzag ring of 4, with DOUT): the layout of DESIGN.md;
#   - an independent port (tests/steps_port.c) agrees step by step; the same port with one
#     step's mask shifted by one is located at that (member, step) by `compare-steps`;
#   - `compare --heatmap` writes an error map of the broken block;
#   - docs/img/make_pictures.sh regenerates the committed pictures identically; every SVG
#     parses as XML with one block per (member, step) and the mask's number of pairs.
set -u
G=$1 PORT=$2 SRC=$3 W=$4 PY=${5:-}
C=$SRC/reference/golden/causal
fails=0
ok()   { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect_rc() {   # expect_rc RC LOG command...
    local want=$1 log=$2; shift 2
    "$@" > "$log" 2>&1; local rc=$?
    if [ "$rc" = "$want" ]; then ok "exit $rc: ${*##*/}"; else fail "exit $rc (expected $want): $*"; cat "$log"; fi
}
rm -rf "$W"; mkdir -p "$W"

# ---- the goldens
expect_rc 0 "$W/steps.log" "$G" steps --causal bottom-right --partition zigzag --ring 4 \
    "$C/q.npy" "$C/k.npy" "$C/v.npy" "$C/dout.npy" -o "$W/gold"
n=$(grep -vc '^#' "$W/gold/steps.txt")
[ "$n" = 16 ] && ok "steps.txt: 16 (member, step) lines" || fail "steps.txt has $n lines"
for i in 0 1 2 3; do
    [ -f "$W/gold/member$i/positions_q.npy" ] || fail "member$i/positions_q.npy missing"
    for t in 0 1 2 3; do
        [ -f "$W/gold/member$i/positions_k_step$t.npy" ] || fail "member$i/positions_k_step$t.npy missing"
        for f in block_out block_lse out lse dq dk dv; do
            [ -f "$W/gold/member$i/step$t/$f.npy" ] || fail "member$i/step$t/$f.npy missing"
        done
    done
done
grep -q '^1 1 0 computed 8 9 ' "$W/gold/steps.txt" && ok "steps.txt: member 1 holds chunk 0 at step 1" || fail "steps.txt line of (1, 1)"
# the last step's running out, gathered by position, is the final output: compare with `compute`
mkdir -p "$W/final" "$W/img_heat"
expect_rc 0 "$W/compute.log" "$G" compute --causal bottom-right --partition zigzag --ring 4 \
    "$C/q.npy" "$C/k.npy" "$C/v.npy" -o "$W/final"
expect_rc 0 "$W/self.log" "$G" compare-steps "$W/gold" "$W/gold"

# ---- a port, right and broken
for d in port_ok port_bad port_diag; do
    for i in 0 1 2 3; do for t in 0 1 2 3; do mkdir -p "$W/$d/member$i/step$t"; done; done
done
"$PORT" --ring 4 --causal bottom-right --partition zigzag "$C/q.npy" "$C/k.npy" "$C/v.npy" -o "$W/port_ok" || fail "port"
"$PORT" --ring 4 --causal bottom-right --partition zigzag --break 1,1 "$C/q.npy" "$C/k.npy" "$C/v.npy" -o "$W/port_bad" || fail "port --break 1,1"
"$PORT" --ring 4 --causal bottom-right --partition zigzag --break 3,0 "$C/q.npy" "$C/k.npy" "$C/v.npy" -o "$W/port_diag" || fail "port --break 3,0"
expect_rc 0 "$W/port_ok.log" "$G" compare-steps "$W/port_ok" "$W/gold"
grep -q 'compare-steps: PASS' "$W/port_ok.log" && ok "the right port passes every step" || fail "no PASS line"
expect_rc 1 "$W/transcript.txt" "$G" compare-steps "$W/port_bad" "$W/gold"
grep -q '^first failure: member 1, step 1 ' "$W/transcript.txt" && ok "the broken step is located: (member 1, step 1)" \
    || { fail "compare-steps did not name (member 1, step 1)"; cat "$W/transcript.txt"; }
grep -q 'compare-steps: FAIL, 3 of 16 (member, step) pairs outside; the first is (member 1, step 1)' "$W/transcript.txt" \
    && ok "only member 1 from step 1 on is wrong" || fail "the failing pairs"
expect_rc 1 "$W/diag.log" "$G" compare-steps "$W/port_diag" "$W/gold"
grep -q '^first failure: member 3, step 0 ' "$W/diag.log" && ok "a diagonal-block bug is located: (member 3, step 0)" \
    || { fail "compare-steps did not name (member 3, step 0)"; cat "$W/diag.log"; }
expect_rc 2 "$W/missing.log" "$G" compare-steps "$W/port_ok" "$W/nowhere"
# a port that deals positions differently is caught before any value is compared
cp -r "$W/port_ok" "$W/port_pos" && cp "$W/port_ok/member1/positions_q.npy" "$W/port_pos/member2/positions_q.npy"
expect_rc 1 "$W/pos.log" "$G" compare-steps "$W/port_pos" "$W/gold"
grep -q "member 2 step 0: the port's query positions differ from the goldens'" "$W/pos.log" && ok "wrong positions named" \
    || { fail "wrong positions"; cat "$W/pos.log"; }

# ---- error map of the broken block
expect_rc 1 "$W/heat.log" "$G" compare --heatmap "$W/heat.svg" \
    "$W/port_bad/member1/step1/block_out.npy" "$W/gold/member1/step1/block_out.npy"
[ -s "$W/heat.svg" ] && ok "heatmap written" || fail "no heatmap"
# the broken port's final output: the off-by-one shows as the one query position it touches
expect_rc 1 "$W/heat_port.log" "$G" compare --heatmap "$W/img_heat/heatmap_off_by_one.svg" --ring 4 --partition zigzag \
    "$W/port_bad/out.npy" "$W/final/out.npy"
grep -q 'max abs error: .* at (b=0, n=28,' "$W/heat_port.log" && ok "the final error is at query position 28" || fail "heat_port"
expect_rc 0 "$W/heat_ok.log" "$G" compare --heatmap "$W/heat_ok.svg" --ring 4 --partition zigzag "$W/final/out.npy" "$C/out.npy"

# ---- pictures: regenerated identically, and they parse
bash "$SRC/docs/img/make_pictures.sh" "$G" "$W/img" || fail "make_pictures.sh"
cp "$W/img_heat/heatmap_off_by_one.svg" "$W/img/"
for f in "$SRC"/docs/img/*.svg; do
    cmp -s "$f" "$W/img/$(basename "$f")" && ok "identical: docs/img/$(basename "$f")" || fail "docs/img/$(basename "$f") differs from a fresh run"
done
expect_rc 0 "$W/trace.log" "$G" trace --nq 16 --ring 4 --causal bottom-right --partition zigzag
grep -q 'step 1:  m0<-3 partial  m1<-0 partial' "$W/trace.log" && ok "trace table" || fail "trace table"
expect_rc 2 "$W/trace_bad.log" "$G" trace --ring 4
if [ -n "$PY" ]; then
    chk() { "$PY" "$SRC/tests/check_svg.py" "$@" && ok "svg: ${1##*/}" || fail "svg: $*"; }
    I=$W/img
    chk "$I/ring_contiguous_causal.svg" 16 136    # causal n = 16: n(n+1)/2 pairs, whatever the deal
    chk "$I/ring_zigzag_causal.svg" 16 136
    chk "$I/ring_striped_causal.svg" 16 136
    chk "$I/ring_contiguous_full.svg" 16 256
    chk "$I/ring_window_causal.svg" 16 177        # causal, window 5 back: 1+2+3+4+5 + 27*6
    chk "$I/ring_dilated_causal.svg" 16
    chk "$I/ring_zigzag_causal_1024.svg" 64 0 --tiles 256   # 2 x 2 pieces of 64 per block, one tile each
    chk "$I/ring_contiguous_causal_tiles.svg" 4 0 --tiles 12  # 2 x 2 tiles per block, member 0's step 1 skipped
    chk "$W/heat.svg" --cells 24                  # 8 rows x 3 heads
    chk "$W/heat_ok.svg" --cells 99               # 33 positions x 3 heads
    chk "$I/heatmap_off_by_one.svg" --cells 99
else
    echo "skip: no python3 to parse the SVGs"
fi
echo "steps-cli: $fails failure(s)"
[ "$fails" = 0 ]
