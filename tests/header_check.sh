#!/usr/bin/env bash
# header_check.sh - build ringattn.h and ringattn_layer.h the way a user who copies them into
# a project would.
#
#   header_check.sh MODE SRCDIR COMPILER [CFLAGS...] [-- LDFLAGS...]
#
#   MODE compile : compile tests/test_header_decl.c (the header as plain declarations; it also
#                  proves that ringattn.h alone declares none of the layer),
#                  tests/test_header_impl.c (RINGATTN_IMPLEMENTATION) and
#                  tests/test_header_static.c (RINGATTN_STATIC) to objects, and the same three
#                  for ringattn_layer.h (tests/test_header_layer_{decl,impl,static}.c); run
#                  nothing.
#   MODE link    : as compile, then link decl + impl into one program (the implementation in
#                  one translation unit, used from another) and static into a second one, the
#                  same for the layer's three, and run all four: each does a tiny forward (the
#                  layer's also a backward) and checks it by hand.
#   MODE demo    : compile examples/demo.c alone (the copy-in example) and run `demo --quick`,
#                  which checks every ring size against a naive attention loop.
#
# Exit 0 pass, 1 fail, 77 skipped: COMPILER is not installed, or CFLAGS ask for cblas.h
# (-DRINGATTN_USE_CBLAS) or omp.h (-fopenmp) and the compiler cannot find them.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 compile|link|demo SRCDIR COMPILER [CFLAGS...] [-- LDFLAGS...]" >&2
  exit 2
fi
mode=$1 src=$2 compiler=$3
shift 3
cflags=() ldflags=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; ldflags=("$@"); break; fi
  cflags+=("$1"); shift
done

if ! command -v "$compiler" >/dev/null 2>&1; then
  echo "SKIP: $compiler is not installed"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ringattn-hdr.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

# an optional part that is not installed is a skip, not a failure
probe() {
  printf '#include <%s>\nint main(void) { return 0; }\n' "$1" > "$work/probe.c"
  "$compiler" "${cflags[@]}" -c "$work/probe.c" -o "$work/probe.o" >/dev/null 2>&1
}
for f in "${cflags[@]+"${cflags[@]}"}"; do
  case $f in
    -DRINGATTN_USE_CBLAS) probe cblas.h || { echo "SKIP: $compiler cannot find cblas.h"; exit 77; } ;;
    -fopenmp)             probe omp.h   || { echo "SKIP: $compiler cannot find omp.h"; exit 77; } ;;
  esac
done

run() { echo "+ $*"; "$@" || { echo "FAIL: $compiler (exit $?)"; exit 1; }; }

case $mode in
  compile|link)
    for tu in decl impl static layer_decl layer_impl layer_static; do
      run "$compiler" "${cflags[@]+"${cflags[@]}"}" -I"$src" -c "$src/tests/test_header_$tu.c" -o "$work/$tu.o"
    done
    if [ "$mode" = link ]; then
      for h in "" layer_; do
        run "$compiler" "$work/${h}impl.o" "$work/${h}decl.o" -o "$work/${h}two_units" "${ldflags[@]+"${ldflags[@]}"}"
        run "$compiler" "$work/${h}static.o" -o "$work/${h}static" "${ldflags[@]+"${ldflags[@]}"}"
        run "$work/${h}two_units"
        run "$work/${h}static"
      done
    fi
    ;;
  demo)
    run "$compiler" "${cflags[@]+"${cflags[@]}"}" -I"$src" "$src/examples/demo.c" -o "$work/demo" "${ldflags[@]+"${ldflags[@]}"}"
    run "$work/demo" --quick
    ;;
  *)
    echo "unknown mode '$mode'" >&2
    exit 2
    ;;
esac
echo "PASS: $compiler $mode"
exit 0
