#!/usr/bin/env bash
# golden_atomic.sh TOOL GOLDEN_DIR WORK_DIR - golden folders are replaced whole, or refused.
#
#   A folder of run A (compute: no mask, with gradients; steps: a ring of 4 with DOUT) is
#   recomputed as run B (compute: bottom-right causal, forward only; steps: a ring of 2, no
#   DOUT), and run B is killed (SIGKILL, through the test hook RINGATTN_GOLDEN_KILL_AT=N) at
#   every step N of its commit. After each kill, every reference `compare --baseline-from`
#   (or `compare-steps`) accepts must be, byte for byte, a file of A with A's options file, or
#   a file of B with B's; anything else must be refused (exit 2). Then run B again, unkilled,
#   into the same folder must give exactly B. Also: B leaves none of A's gradients behind, a
#   dq of A planted next to B's options is refused, an edited options file is refused, a file
#   that no run listed is replaced only with --force.
set -u
tool=$1 golden=$2 work=$3
C=$golden/causal
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
rm -rf "$work"; mkdir -p "$work"
inputs="$C/q.npy $C/k.npy $C/v.npy"

# ---- compute
# shellcheck disable=SC2086
"$tool" compute $inputs "$C/dout.npy" -o "$work/A" > /dev/null || fail "compute A"
cp -r "$work/A" "$work/B"
# shellcheck disable=SC2086
"$tool" compute $inputs --causal bottom-right -o "$work/B" > "$work/B.log" || fail "compute B over A"
for x in dq dk dv; do [ -e "$work/B/$x.npy" ] && fail "B kept A's $x.npy"; done
ok "a forward-only run removes the gradients of the earlier run"
cp "$work/A/dq.npy" "$work/B/dq.npy"
"$tool" compare "$work/A/dq.npy" "$work/B/dq.npy" --baseline-from "$C" > "$work/cmp.log" 2>&1
[ $? = 2 ] && grep -q "is not one of the files" "$work/cmp.log" && ok "a dq that B's manifest does not list is refused" \
    || { fail "a planted dq was not refused"; cat "$work/cmp.log"; }
rm "$work/B/dq.npy"

# every reference of DIR that compare accepts is A's (with A's options) or B's (with B's)
check_compute_state() {
    local dir=$1 tag=$2 x rc
    for x in out lse dq dk dv; do
        [ -e "$dir/$x.npy" ] || continue
        "$tool" compare "$dir/$x.npy" "$dir/$x.npy" --baseline-from "$C" -q > "$work/cmp.log" 2>&1; rc=$?
        if [ $rc = 0 ]; then
            if ! { cmp -s "$dir/$x.npy" "$work/A/$x.npy" && cmp -s "$dir/ringattn_options.txt" "$work/A/ringattn_options.txt"; } &&
               ! { cmp -s "$dir/$x.npy" "$work/B/$x.npy" && cmp -s "$dir/ringattn_options.txt" "$work/B/ringattn_options.txt"; }; then
                fail "$tag: $x.npy accepted, but it is not A's with A's options nor B's with B's"
            fi
        elif [ $rc != 2 ]; then
            fail "$tag: compare $x.npy exited $rc"; cat "$work/cmp.log"
        fi
    done
}
same_as() {   # same_as DIR REF: the same files, byte for byte
    local f
    for f in "$2"/*; do cmp -s "$f" "$1/$(basename "$f")" || return 1; done
    for f in "$1"/*; do [ -e "$2/$(basename "$f")" ] || return 1; done
    return 0
}
n=0 killed=0
while :; do
    n=$((n + 1))
    rm -rf "$work/K"; cp -r "$work/A" "$work/K"
    # shellcheck disable=SC2086
    RINGATTN_GOLDEN_KILL_AT=$n "$tool" compute $inputs --causal bottom-right -o "$work/K" > /dev/null 2> "$work/K.err"
    rc=$?
    if [ $rc = 0 ]; then break; fi
    [ $rc = 137 ] || { fail "compute killed at step $n exited $rc"; cat "$work/K.err"; break; }
    killed=$((killed + 1))
    check_compute_state "$work/K" "compute killed at step $n"
    # shellcheck disable=SC2086
    "$tool" compute $inputs --causal bottom-right -o "$work/K" > /dev/null 2> "$work/K.err" \
        || { fail "compute again after a kill at step $n"; cat "$work/K.err"; }
    same_as "$work/K" "$work/B" || fail "compute again after a kill at step $n: not B"
    [ $n -lt 200 ] || { fail "the commit never ends"; break; }
done
same_as "$work/K" "$work/B" && ok "compute killed at each of its $killed commit steps: A, B or refused; then B" \
    || fail "the unkilled run with the hook is not B"

# an options file edited by hand, or one without a manifest, is refused
cp -r "$work/B" "$work/E"
sed -i 's/^--causal bottom-right$/--causal top-left/' "$work/E/ringattn_options.txt"
"$tool" compare "$work/B/out.npy" "$work/E/out.npy" --baseline-from "$C" > "$work/cmp.log" 2>&1
[ $? = 2 ] && grep -q "does not match its own hash" "$work/cmp.log" && ok "an edited options file is refused" \
    || { fail "an edited options file was accepted"; cat "$work/cmp.log"; }
grep -v '^file \|^end ' "$work/B/ringattn_options.txt" > "$work/E/ringattn_options.txt"
"$tool" compare "$work/B/out.npy" "$work/E/out.npy" --baseline-from "$C" > "$work/cmp.log" 2>&1
[ $? = 2 ] && grep -q "has no manifest" "$work/cmp.log" && ok "an options file without a manifest is refused" \
    || { fail "an options file without a manifest was accepted"; cat "$work/cmp.log"; }
# shellcheck disable=SC2086
"$tool" compute $inputs -o "$work/E" > "$work/cmp.log" 2>&1
[ $? = 2 ] && ok "compute does not replace the files of a folder it cannot vouch for" || fail "compute over E"
# shellcheck disable=SC2086
"$tool" compute $inputs -o "$work/E" --force > /dev/null 2>&1 && ok "... and does with --force" || fail "compute --force over E"
# a file no run of this tool listed is replaced only with --force
mkdir -p "$work/F"; cp "$work/A/out.npy" "$work/F/out.npy"
# shellcheck disable=SC2086
"$tool" compute $inputs -o "$work/F" > "$work/cmp.log" 2>&1
[ $? = 2 ] && grep -q "give --force" "$work/cmp.log" && ok "a foreign out.npy is not overwritten" \
    || { fail "a foreign out.npy was overwritten"; cat "$work/cmp.log"; }
# shellcheck disable=SC2086
"$tool" compute $inputs -o "$work/F" --force > /dev/null 2>&1 && ok "... unless --force" || fail "compute --force over F"

# ---- steps
# shellcheck disable=SC2086
"$tool" steps --ring 4 $inputs "$C/dout.npy" -o "$work/SA" > /dev/null || fail "steps A"
cp -r "$work/SA" "$work/SB"
# shellcheck disable=SC2086
"$tool" steps --ring 2 --causal bottom-right $inputs -o "$work/SB" > /dev/null || fail "steps B over A"
[ -z "$(find "$work/SB" -name 'dq.npy' -o -name '*.partial' -o -name 'member3')" ] \
    && ok "steps B leaves no gradient, member or partial file of A" || fail "steps B left files of A behind"
# shellcheck disable=SC2086
"$tool" steps --ring 2 --causal bottom-right $inputs -o "$work/SB_clean" > /dev/null || fail "steps B"
"$tool" compare-steps "$work/SB_clean" "$work/SB" > "$work/cs.log" 2>&1 \
    && ok "a correct port passes against steps B written over steps A" || { fail "compare-steps after B over A"; cat "$work/cs.log"; }
# the number of commit steps, from an unkilled run with the hook
rm -rf "$work/K"; cp -r "$work/SA" "$work/K"
# shellcheck disable=SC2086
RINGATTN_GOLDEN_KILL_AT=1000000000 "$tool" steps --ring 2 --causal bottom-right $inputs -o "$work/K" > /dev/null 2> "$work/K.err"
total=$(sed -n 's/.*commit steps: \([0-9]*\).*/\1/p' "$work/K.err")
[ -n "$total" ] || { fail "no commit step count"; total=0; }
killed=0
for n in $(seq 1 7 "$total") $(( total > 0 ? total : 1 )); do
    rm -rf "$work/K"; cp -r "$work/SA" "$work/K"
    # shellcheck disable=SC2086
    RINGATTN_GOLDEN_KILL_AT=$n "$tool" steps --ring 2 --causal bottom-right $inputs -o "$work/K" > /dev/null 2> "$work/K.err"
    rc=$?
    [ $rc = 137 ] || { fail "steps killed at step $n exited $rc"; cat "$work/K.err"; continue; }
    killed=$((killed + 1))
    "$tool" compare-steps "$work/K" "$work/K" > "$work/cs.log" 2>&1; rc=$?
    if [ $rc = 0 ]; then
        cmp -s "$work/K/ringattn_options.txt" "$work/SA/ringattn_options.txt" ||
            cmp -s "$work/K/ringattn_options.txt" "$work/SB_clean/ringattn_options.txt" ||
            fail "steps killed at step $n: accepted with options of neither run"
    elif [ $rc != 2 ]; then
        fail "steps killed at step $n: compare-steps exited $rc"; cat "$work/cs.log"
    fi
    # shellcheck disable=SC2086
    "$tool" steps --ring 2 --causal bottom-right $inputs -o "$work/K" > /dev/null 2> "$work/K.err" \
        || { fail "steps again after a kill at step $n"; cat "$work/K.err"; }
    "$tool" compare-steps "$work/SB_clean" "$work/K" > "$work/cs.log" 2>&1 \
        || { fail "steps again after a kill at step $n: a correct port fails"; cat "$work/cs.log"; }
done
ok "steps killed at $killed of its $total commit steps: A, B or refused; then B"

[ "$fails" -eq 0 ] && echo "golden_atomic: ok" || echo "golden_atomic: $fails failed"
exit $((fails > 0))
