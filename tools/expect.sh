# expect.sh - sourced by the ringattn-golden test scripts: run a command, check its exit code.
# Needs $work (where the last output goes) and $tool (shortened in the log); counts into $fails.
fails=${fails:-0}
expect() {   # expect CODE command...
  local want=$1; shift
  "$@" > "$work/last.txt" 2>&1
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL (exit $got, want $want): $*"; cat "$work/last.txt"; fails=$((fails + 1))
  else
    echo "ok   (exit $got): ${*#"$tool "}"
  fi
}
expect_text() {   # expect_text TEXT: the last command printed TEXT
  if ! grep -qF -- "$1" "$work/last.txt"; then echo "FAIL: output lacks '$1'"; cat "$work/last.txt"; fails=$((fails + 1)); fi
}
