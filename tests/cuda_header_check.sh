#!/usr/bin/env bash
# cuda_header_check.sh - compile ringattn_cuda.h the way a user would, with every warning an
# error, and link it:
#   tests/test_cuda_header.cu     both implementations (nvcc -Werror all-warnings, host -Wall
#                                 -Wextra -Werror), sm_90 + compute_80 PTX
#   tests/test_cuda_header_decl.c the declarations from plain C99 (cc -Wpedantic -Werror)
# then links the two into one program (nothing is run: that needs a GPU).
#   cuda_header_check.sh SRCDIR         exit 0 pass, 1 fail, 77 skipped (no nvcc)
set -u
src=${1:?usage: $0 SRCDIR}
nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
if [ -z "$nvcc" ]; then echo "SKIP: nvcc is not installed"; exit 77; fi
cc=$(command -v cc || command -v gcc || true)
work=$(mktemp -d "${TMPDIR:-/tmp}/ringattn-cuda-hdr.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
run() { echo "+ $*"; "$@" || { echo "FAIL (exit $?)"; exit 1; }; }
run "$nvcc" -O2 -I"$src" -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror \
    -gencode arch=compute_90,code=sm_90 -gencode arch=compute_80,code=compute_80 \
    -c "$src/tests/test_cuda_header.cu" -o "$work/impl.o"
if [ -n "$cc" ]; then
  run "$cc" -std=c99 -Wall -Wextra -Wpedantic -Werror -I"$src" -c "$src/tests/test_cuda_header_decl.c" -o "$work/decl.o"
  run "$nvcc" "$work/impl.o" "$work/decl.o" -o "$work/prog" -lm
else
  run "$nvcc" "$work/impl.o" -o "$work/prog" -lm
fi
echo "PASS: ringattn_cuda.h compiles with -Werror all-warnings and links"
exit 0
