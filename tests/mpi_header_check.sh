#!/usr/bin/env bash
# mpi_header_check.sh SRCDIR mpicc|mpicxx - compile tests/test_mpi.c (ringattn_mpi.h with both
# implementations) the way a user would: mpicc -std=c99 -Wall -Wextra -Wpedantic -Werror, or
# mpicxx -std=c++11 with the same warnings (Open MPI's deprecated C++ bindings left out by
# OMPI_SKIP_MPICXX: they do not compile under -Wextra -Werror), with OpenMP, then link.
# Exit 0 pass, 1 fail, 77 skipped (no such wrapper).
set -u
src=$1 cc=$2
command -v "$cc" >/dev/null 2>&1 || { echo "SKIP: $cc is not installed"; exit 77; }
work=$(mktemp -d "${TMPDIR:-/tmp}/ringattn-mpi-hdr.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
warn=(-Wall -Wextra -Wpedantic -Werror)
if [ "$cc" = mpicxx ]; then
  flags=(-x c++ -std=c++11 "${warn[@]}" -DOMPI_SKIP_MPICXX=1 -DMPICH_SKIP_MPICXX=1)
else
  flags=(-std=c99 "${warn[@]}")
fi
omp=(); printf '#include <omp.h>\nint main(void) { return 0; }\n' > "$work/p.c"
"$cc" -fopenmp -c "$work/p.c" -o "$work/p.o" >/dev/null 2>&1 && omp=(-fopenmp)
echo "+ $cc ${flags[*]} ${omp[*]} -I$src -c $src/tests/test_mpi.c"
"$cc" "${flags[@]}" "${omp[@]}" -I"$src" -c "$src/tests/test_mpi.c" -o "$work/t.o" || { echo "FAIL: $cc"; exit 1; }
"$cc" "$work/t.o" "${omp[@]}" -o "$work/t" -lm || { echo "FAIL: $cc (link)"; exit 1; }
echo "PASS: $cc"
