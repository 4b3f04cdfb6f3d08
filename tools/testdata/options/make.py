#!/usr/bin/env python3
"""make.py - the score-option files of tools/options_cli.sh (Python's standard library only).

For reference/golden/gqa (b 1, nq = nk = 32, h 6, hk 2):
    sinks.npy     (6,)        '<f4'  one logit per q head
    alibi.npy     (1, 6)      '<f8'  ALiBi slopes 2^(-8 (h+1) / 6), as (b, h)
    bias.npy      (6, 32, 32) '<f4'  an additive bias, broadcast over the batch
    mask.npy      (32, 32)    '|b1'  True = may attend (about 80 %), broadcast over b and h
    docs.npy      (32,)       '<f8'  document ids 0 (12 tokens), 1 (8), 2 (12)
    sinks5.npy    (5,)        '<f4'  a wrong count (for the refusal)
Run from the repository root: python3 tools/testdata/options/make.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def save(name, descr, shape, values, fmt):
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pad = (64 - (10 + len(hdr) + 1) % 64) % 64
    hdr = hdr + " " * pad + "\n"
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode("ascii"))
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


state = [12345]


def rnd():   # a small LCG: uniform [0, 1), the same everywhere
    state[0] = (state[0] * 6364136223846793005 + 1442695040888963407) % (1 << 64)
    return (state[0] >> 11) / float(1 << 53)


H, N = 6, 32
save("sinks.npy", "<f4", (H,), [round(3 * rnd() - 1.5, 3) for _ in range(H)], "f")
save("sinks5.npy", "<f4", (5,), [0.5] * 5, "f")
save("alibi.npy", "<f8", (1, H), [2.0 ** (-8.0 * (h + 1) / H) for h in range(H)], "d")
save("bias.npy", "<f4", (H, N, N), [round(2 * rnd() - 1, 4) for _ in range(H * N * N)], "f")
save("mask.npy", "|b1", (N, N), [1 if rnd() < 0.8 else 0 for _ in range(N * N)], "B")
save("docs.npy", "<f8", (N,), [0.0] * 12 + [1.0] * 8 + [2.0] * 12, "d")
