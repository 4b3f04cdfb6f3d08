#!/usr/bin/env bash
# tools/reading_anchors.sh - keep the reading guides true to the code.
#
#   tools/reading_anchors.sh check  SRCDIR    # exit 0: every anchor and name is current
#   tools/reading_anchors.sh update SRCDIR    # rewrite docs/reading.md's line numbers
#
# docs/reading.md points into the headers with links of the form
#     [`NAME`](../HEADER#LN)
# NAME a function, a struct typedef or a macro of HEADER (ringattn.h, ringattn_mpi.h, ...),
# N the line where it is defined. `check` fails, naming each, when a name is no longer
# defined there or N is not its line; `update` rewrites every N (a name that is gone still
# fails). `check` also reads the reading orders of the README ("Reading the code") and of
# ringattn.h's top comment ("READING ORDER"): every ringattn_* / ringattn__* name they give
# must be defined in one of the headers.
set -euo pipefail
mode=${1:-} src=${2:-}
if [ "$mode" != check ] && [ "$mode" != update ] || [ -z "$src" ]; then
  echo "usage: $0 check|update SRCDIR" >&2; exit 2
fi
cd "$src"
doc=docs/reading.md
[ -f "$doc" ] || { echo "FAIL: $doc is missing"; exit 1; }

# the line where NAME is defined in HEADER (0: nowhere): a function's definition (its name
# at the start of a declaration, not followed by a prototype's ';' before its '{'), a
# struct's "struct NAME {" or closing "} NAME;", or "#define NAME"
defline() {
  awk -v name="$2" '
    function flush() { if (cand && body) found = cand; cand = 0; body = 0 }
    {
      if (cand) {                       # inside a candidate declaration: "{" or ";" decides
        if ($0 ~ /\{/) { body = 1; flush(); next }
        if ($0 ~ /;[ \t]*(\/\*.*)?$/) { cand = 0; next }
      }
      if ($0 ~ ("^#define[ \t]+" name "([ \t(]|$)")) { found = NR; next }
      if ($0 ~ ("^}[ \t]*" name "[ \t]*;")) { found = NR; next }
      if ($0 ~ ("^(typedef[ \t]+)?struct[ \t]+" name "[ \t]*(\\{|$)")) { found = NR; next }
      if ($0 ~ /^[A-Za-z_]/ && $0 !~ /^(return|typedef)/ && index($0, name "(") > 0 &&
          $0 ~ ("(^|[ *])" name "\\(")) {
        cand = NR
        if ($0 ~ /\{/) { body = 1; flush() }
        else if ($0 ~ /\)[ \t]*;/) cand = 0
      }
    }
    END { print found + 0 }' "$1"
}

fail=0
tmp=$(mktemp); trap 'rm -f "$tmp"' EXIT
cp "$doc" "$tmp"
# every anchor of the guide
grep -o '\[`[A-Za-z_][A-Za-z0-9_]*`\](\.\./[A-Za-z0-9_.]*\.h#L[0-9]*)' "$doc" | sort -u > "$tmp.links" || true
n=$(wc -l < "$tmp.links")
[ "$n" -gt 0 ] || { echo "FAIL: $doc has no [\`NAME\`](../HEADER#LN) anchors"; exit 1; }
while IFS= read -r link; do
  name=$(sed 's/^\[`\([^`]*\)`\].*/\1/' <<< "$link")
  hdr=$(sed 's/.*(\.\.\/\([^#]*\)#L.*/\1/' <<< "$link")
  at=$(sed 's/.*#L\([0-9]*\))$/\1/' <<< "$link")
  if [ ! -f "$hdr" ]; then echo "FAIL: $doc links $name to $hdr, which does not exist"; fail=1; continue; fi
  line=$(defline "$hdr" "$name")
  if [ "$line" -eq 0 ]; then
    echo "FAIL: $doc: $name is not defined in $hdr any more"; fail=1
  elif [ "$line" -ne "$at" ]; then
    if [ "$mode" = update ]; then
      sed -i "s|\[\`$name\`\](\.\./$hdr#L$at)|[\`$name\`](../$hdr#L$line)|g" "$doc"
      echo "updated: $name $hdr:$at -> $line"
    else
      echo "FAIL: $doc: $name is at $hdr:$line, not $at (tools/reading_anchors.sh update .)"; fail=1
    fi
  fi
done < "$tmp.links"
rm -f "$tmp.links"

# the reading orders' names
if [ "$mode" = check ]; then
  readme=$(awk '/^## Reading the code/ {on = 1; next} /^## / {on = 0} on' README.md)
  order=$(awk '/^   READING ORDER$/ {on = 1; next} /^   [A-Z][A-Z ]+$/ {on = 0} on' ringattn.h)
  [ -n "$readme" ] || { echo "FAIL: README.md has no \"## Reading the code\" section"; fail=1; }
  [ -n "$order" ] || { echo "FAIL: ringattn.h's top comment has no READING ORDER"; fail=1; }
  names=$(printf '%s\n%s\n' "$readme" "$order" |
          grep -oE 'ringattn_[A-Za-z0-9_.]*' | sed 's/\.*$//' | grep -v '\.h$' | sort -u)   # not file names
  [ -n "$names" ] || { echo "FAIL: no names in the README's \"Reading the code\" or ringattn.h's READING ORDER"; fail=1; }
  for name in $names; do
    ok=0
    for hdr in ringattn*.h; do
      if [ "$(defline "$hdr" "$name")" -ne 0 ]; then ok=1; break; fi
    done
    [ "$ok" = 1 ] || { echo "FAIL: the reading order names $name, which no header defines"; fail=1; }
  done
  [ "$fail" = 0 ] && echo "reading guides current: $n anchors in $doc, $(wc -w <<< "$names") names in the reading orders"
fi
exit "$fail"
