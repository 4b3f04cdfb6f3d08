#!/bin/bash
# Regenerates the pictures of docs/ring.md with the ringattn-golden tool:
#     docs/img/make_pictures.sh build/tools/ringattn-golden docs/img
# The test `steps-cli` runs it into a scratch directory and checks the result is identical.
set -eu
G=$1 OUT=$2
mkdir -p "$OUT"
pic() { name=$1; shift; "$G" trace "$@" --svg "$OUT/$name.svg" > /dev/null; }
pic ring_contiguous_causal  --nq 16 --ring 4 --causal bottom-right --partition contiguous
pic ring_zigzag_causal      --nq 16 --ring 4 --causal bottom-right --partition zigzag
pic ring_striped_causal     --nq 16 --ring 4 --causal bottom-right --partition striped
pic ring_contiguous_full    --nq 16 --ring 4
pic ring_window_causal      --nq 32 --ring 4 --causal bottom-right --window 5,0
pic ring_dilated_causal     --nq 32 --ring 4 --causal bottom-right --segments 8,16 --dilations 1,2
pic ring_zigzag_causal_1024 --nq 1024 --ring 8 --causal bottom-right --partition zigzag
pic ring_contiguous_causal_tiles --nq 1024 --ring 2 --causal bottom-right --partition contiguous
# heatmap_off_by_one.svg is written by tests/steps_cli.sh (a port with one step's mask shifted
# by one, compared with --heatmap): copy it from BUILD/tests/steps_cli_out/img_heat/
