#!/usr/bin/env bash
# layer_golden.sh LAYER TOOL GOLDEN_DIR WORK_DIR - examples/layer.c's output through the
# ringattn-golden tool: the example writes y.npy and its gradients, `ringattn-golden compare`
# checks each against the PyTorch golden of the same seed (reference/golden/layer/example).
set -u
layer=$1 tool=$2 golden=$3 work=$4
rm -rf "$work"; mkdir -p "$work"   # fresh: a stale folder of an older tool is refused
"$layer" "$work" || { echo "layer_golden: the example failed"; exit 1; }
fails=0
for f in y dx_q dwqkv dbqkv dwo dbo dln_gamma dln_beta; do
    if "$tool" compare -q --atol 1e-10 --rtol 1e-9 "$work/$f.npy" "$golden/$f.npy"; then :; else
        echo "layer_golden: $f outside tolerance"; fails=$((fails + 1)); fi
done
[ "$fails" -eq 0 ] && echo "layer_golden: ok" || echo "layer_golden: $fails failed"
[ "$fails" -eq 0 ]
