#!/usr/bin/env bash
# mpi_run.sh EXE NP MODE [LIMIT] - run an MPI test program under mpiexec -n NP, as CI and this
# 2-core machine need it: oversubscribed, as root if need be, shared-memory transport only,
# one OpenMP thread per rank with a passive wait, and a time limit (default 240 s).
# Exit: the program's status; 77 (skipped) when the build has no MPI (EXE = none) or there is
# no mpiexec; 124 when the limit was hit (a hang is a failure, not a wait).
set -u
exe=$1 np=$2 mode=$3 limit=${4:-240}
if [ "$exe" = none ]; then
  echo "SKIP: built without MPI (-Dmpi=disabled, or no MPI found: apt-get install libopenmpi-dev openmpi-bin)"
  exit 77
fi
launcher=$(command -v mpiexec || command -v mpirun) || { echo "SKIP: no mpiexec on PATH"; exit 77; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OMP_WAIT_POLICY=PASSIVE
# (under AddressSanitizer, LSAN_OPTIONS from tests/meson.build suppresses Open MPI's own
# never-freed allocations; mpiexec passes the environment on to the ranks)
args=(-n "$np")
if "$launcher" --version 2>&1 | grep -q -e 'Open MPI' -e 'OpenRTE'; then
  # root in containers and CI; more ranks than cores; no CMA single copy (needs ptrace rights)
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
  args+=(--oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none)
fi
echo "+ $launcher ${args[*]} $exe $mode"
timeout -k 10 "$limit" "$launcher" "${args[@]}" "$exe" "$mode"
rc=$?
[ "$rc" -eq 124 ] && echo "FAIL: mpiexec -n $np $exe $mode did not finish within $limit s"
exit "$rc"
