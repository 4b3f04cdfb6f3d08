"""ringattn.steps / steps_backward (per-step goldens from the ring's trace events) and
Report.heatmap: held to the final outputs bit for bit, to the NumPy oracle chunk by chunk,
and to the partition's deal of positions; a port broken at one (member, step) is located."""
import ctypes
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import ringattn
from ringattn import _lib, _steps
from conftest import _rows, needs_torch, rand, torch, visible

PARTS = ("contiguous", "zigzag", "striped")


def deal(n, p, partition, i):
    """the global positions member i holds under each partition (README: ring partitions)"""
    if partition == "contiguous":
        return np.arange(i * n // p, (i + 1) * n // p)
    if partition == "striped":
        return np.arange(i, n, p)
    c = np.array_split(np.arange(n), 2 * p)
    return np.concatenate([c[i], c[2 * p - 1 - i]])


def oracle(q, k, v, qpos, kpos, causal=None, window=None):
    """f64 attention of q's rows qpos over k/v's keys kpos alone, the mask taken from the
    global positions -> out [b, rows, h, dv], lse (b, h, rows)"""
    b, nq, h, d = q.shape
    nk, hk = k.shape[1], k.shape[2]
    mask = visible(nq, nk, causal, window)[np.ix_(qpos, kpos)]
    out = np.zeros((b, len(qpos), h, v.shape[3]))
    lse = np.full((b, h, len(qpos)), -np.inf)
    for bi in range(b):
        for hi in range(h):
            kh = hi // (h // hk)
            out[bi, :, hi], lse[bi, hi] = _rows(q[bi, qpos, hi], k[bi, kpos, kh], v[bi, kpos, kh], mask,
                                                1 / math.sqrt(d), 0.0)
    return out, lse


def test_event_mirror_matches_the_c_layout():
    assert _lib.layout_mismatches(_lib.lib) == []
    # the check can fail: a mirror with two fields swapped, and one with a field missing
    f = list(_lib.Event._fields_)
    swapped = type("Swapped", (ctypes.Structure,), {"_fields_": [f[0], f[6]] + f[2:6] + [f[1]] + f[7:]})
    short = type("Short", (ctypes.Structure,), {"_fields_": f[:-1]})
    assert any("offset" in s for s in _lib.layout_mismatches(_lib.lib, swapped))
    assert any("sizeof" in s for s in _lib.layout_mismatches(_lib.lib, short))


@pytest.mark.parametrize("partition", PARTS)
@pytest.mark.parametrize("causal", [None, "bottom-right"])
@pytest.mark.parametrize("layout", ["bnhd", "bhnd"])
def test_last_step_is_the_final_output_bit_for_bit(rng, partition, causal, layout):
    q, k, v = (rand(rng, 2, 24, 4, 8) for _ in range(3))
    k, v = k[:, :, :2], v[:, :, :2]                       # GQA: 2 k/v heads
    if layout == "bhnd":
        q, k, v = (x.transpose(0, 2, 1, 3) for x in (q, k, v))
    opts = dict(layout=layout, causal=causal, ring_size=4, partition=partition)
    out, lse = ringattn.attention(q, k, v, **opts)
    recs = ringattn.steps(q, k, v, **opts)
    assert [(r.member, r.step) for r in recs] == [(i, t) for i in range(4) for t in range(4)]
    pos_axis = 1 if layout == "bnhd" else 2
    for r in recs:
        assert r.src == (r.member - r.step) % 4
        assert r.out.shape == np.take(out, r.q_positions, axis=pos_axis).shape
        if r.step == 3:
            assert np.array_equal(r.out, np.take(out, r.q_positions, axis=pos_axis))
            assert np.array_equal(r.lse, lse[:, :, r.q_positions])


@pytest.mark.parametrize("partition", PARTS)
@pytest.mark.parametrize("causal,window", [(None, None), ("bottom-right", None), ("top-left", (3, 0)),
                                           ("bottom-right", (2, 1))])
def test_blocks_and_running_results_against_the_oracle(rng, partition, causal, window):
    nq = nk = 20
    q, k, v = rand(rng, 1, nq, 2, 8), rand(rng, 1, nk, 2, 8), rand(rng, 1, nk, 2, 6)
    p = 4
    recs = ringattn.steps(q, k, v, ring_size=p, causal=causal, window=window, partition=partition)
    seen = {}
    for r in recs:
        assert np.array_equal(r.q_positions, deal(nq, p, partition, r.member))
        assert np.array_equal(r.k_positions, deal(nk, p, partition, r.src))
        bo, bl = oracle(q, k, v, r.q_positions, r.k_positions, causal, window)
        np.testing.assert_allclose(r.block_out, bo, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.block_lse, bl, rtol=0, atol=1e-12)   # -inf where a row sees none
        assert r.computed == bool(np.isfinite(bl).any())
        if not r.computed:
            assert np.all(r.block_lse == -np.inf) and np.all(r.block_out == 0)
        keys = seen.setdefault(r.member, [])
        keys.extend(r.k_positions.tolist())
        ro, rl = oracle(q, k, v, r.q_positions, np.array(keys), causal, window)
        np.testing.assert_allclose(r.out, ro, rtol=0, atol=1e-12)
        np.testing.assert_allclose(r.lse, rl, rtol=0, atol=1e-12)


def test_causal_zigzag_skips_blocks_and_contiguous_skips_more(rng):
    q = rand(rng, 1, 32, 1, 4)
    skipped = {part: sum(not r.computed for r in ringattn.steps(q, q, q, ring_size=4, causal=True, partition=part))
               for part in PARTS}
    assert skipped["contiguous"] == 6 and skipped["zigzag"] == 0 and skipped["striped"] == 0


@pytest.mark.parametrize("partition", PARTS)
def test_backward_steps(rng, partition):
    q, k, v, dout = (rand(rng, 1, 16, 2, 8) for _ in range(4))
    p = 4
    opts = dict(causal="bottom-right", ring_size=p, partition=partition)
    out, lse = ringattn.attention(q, k, v, **opts)
    dq, dk, dv = ringattn.attention_backward(q, k, v, out, lse, dout, **opts)
    recs = ringattn.steps_backward(q, k, v, out, lse, dout, **opts)
    assert len(recs) == p * p and all(r.out is None and r.dq is not None for r in recs)
    for r in recs:
        assert r.dk.shape == (1, len(r.k_positions), 2, 8)
        if r.step == p - 1:
            # dQ_i is complete after the last step; chunk src's dK/dV are home
            assert np.array_equal(r.dq, dq[:, r.q_positions])
            assert r.src == (r.member + 1) % p
            assert np.array_equal(r.dk, dk[:, r.k_positions]) and np.array_equal(r.dv, dv[:, r.k_positions])
    # a travelling partial sum after step t is the sum over the members it has visited
    r = recs[2 * p + 1]                       # member 2, step 1: chunk 1, visited members 1 and 2
    assert r.src == 1
    prev = recs[1 * p + 0]                    # member 1, step 0: chunk 1 at home
    assert prev.src == 1 and not np.array_equal(prev.dk, r.dk)


def _numpy_ring_port(q, k, v, p, partition, causal, broken=None):
    """A port of the ring in NumPy, (out, lse) per (member, step): online merge of each
    step's block; at `broken` = (member, step) its mask is shifted by one (each query masked
    as the one after it, so it sees one key too many: the classic off-by-one on the diagonal)."""
    nq, nk = q.shape[1], k.shape[1]
    full = visible(nq, nk, causal)
    res = {}
    for i in range(p):
        qpos = deal(nq, p, partition, i)
        o_run, l_run = None, None
        for t in range(p):
            kpos = deal(nk, p, partition, (i - t) % p)
            mask = full[np.ix_(qpos, kpos)]
            if broken == (i, t):
                mask = full[np.ix_(np.minimum(qpos + 1, nq - 1), kpos)]
            o, l = np.zeros((1, len(qpos), q.shape[2], v.shape[3])), np.full((1, q.shape[2], len(qpos)), -np.inf)
            for hi in range(q.shape[2]):
                o[0, :, hi], l[0, hi] = _rows(q[0, qpos, hi], k[0, kpos, hi], v[0, kpos, hi], mask,
                                              1 / math.sqrt(q.shape[3]), 0.0)
            if o_run is None:
                o_run, l_run = o, l
            else:
                with np.errstate(invalid="ignore"):
                    m = np.maximum(l_run, l)
                    m = np.where(np.isfinite(m), m, 0)
                    a, b = np.exp(l_run - m), np.exp(l - m)
                tot = a + b
                at = lambda x: x.transpose(0, 2, 1)[..., None]  # noqa: E731 - (b, h, r) -> [b, r, h, 1]
                o_run = np.where(at(tot) > 0, (at(a) * o_run + at(b) * o) / np.where(at(tot) > 0, at(tot), 1), 0)
                with np.errstate(divide="ignore"):
                    l_run = np.where(tot > 0, np.log(tot) + m, -np.inf)
            res[i, t] = (o_run, l_run)
    return res


@pytest.mark.parametrize("partition", PARTS)
def test_a_port_broken_at_one_step_is_located(rng, partition):
    q, k, v = (rand(rng, 1, 24, 2, 8) for _ in range(3))
    p = 4
    gold = ringattn.steps(q, k, v, ring_size=p, causal="bottom-right", partition=partition)
    good = _numpy_ring_port(q, k, v, p, partition, "bottom-right")
    # the last step of member 2 whose block a shifted mask changes (one on the diagonal)
    full = visible(24, 24, "bottom-right")
    shifted = lambda g: full[np.ix_(np.minimum(g.q_positions + 1, 23), g.k_positions)]  # noqa: E731
    diagonal = [g.step for g in gold
                if g.member == 2 and (shifted(g) != full[np.ix_(g.q_positions, g.k_positions)]).any()]
    broken = (2, diagonal[-1])
    assert partition != "striped" or broken[1] == p - 1   # striped: every block has a diagonal
    bad = _numpy_ring_port(q, k, v, p, partition, "bottom-right", broken=broken)

    def first_failure(port):
        for g in sorted(gold, key=lambda r: (r.step, r.member)):     # in the order the ring ran
            o, l = port[g.member, g.step]
            if not (ringattn.compare(o, g.out, what="out") and ringattn.compare(l, g.lse, what="lse")):
                return g.member, g.step
        return None

    assert first_failure(good) is None
    assert first_failure(bad) == broken


@needs_torch
def test_torch_in_torch_out_in_the_callers_layout():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 12, 8, dtype=torch.float32) for _ in range(3))   # bhnd
    recs = ringattn.steps(q, k, v, ring_size=3, layout="bhnd", causal="top-left", partition="zigzag")
    r = recs[4]
    assert isinstance(r.out, torch.Tensor) and isinstance(r.q_positions, torch.Tensor)
    assert r.out.shape == (1, 2, 4, 8) and r.lse.shape == (1, 2, 4) and r.out.dtype == torch.float64
    out, lse = ringattn.attention(q, k, v, ring_size=3, layout="bhnd", causal="top-left", partition="zigzag")
    for r in recs:
        if r.step == 2:
            assert torch.equal(r.out, out[:, :, r.q_positions]) and torch.equal(r.lse, lse[:, :, r.q_positions])
    dout = torch.randn_like(q)
    b = ringattn.steps_backward(q, k, v, out, lse, dout, ring_size=3, layout="bhnd", causal="top-left",
                                partition="zigzag", out_dtype="float32")
    assert b[0].dk.shape == (1, 2, 4, 8) and b[0].dk.dtype == torch.float32


def test_varlen_steps(rng):
    cu = np.array([0, 5, 12])
    q, k, v = (rand(rng, 12, 2, 4) for _ in range(3))      # [total, h, d]
    out, lse = ringattn.attention(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, causal=True, ring_size=3)
    recs = ringattn.steps(q, k, v, cu_seqlens_q=cu, cu_seqlens_k=cu, causal=True, ring_size=3)
    for r in recs:
        assert r.out.shape == (len(r.q_positions), 2, 4) and r.lse.shape == (2, len(r.q_positions))
        if r.step == 2:
            assert np.array_equal(r.out, out[r.q_positions]) and np.array_equal(r.lse, lse[:, r.q_positions])


def test_refusals_and_callback_errors(rng, monkeypatch):
    q = rand(rng, 1, 8, 1, 4)
    with pytest.raises(ringattn.RingattnError) as e:
        ringattn.steps(q, q, q, ring_size=9)
    assert "ring_size" in str(e.value)
    with pytest.raises(TypeError):
        ringattn.steps(q, q, q, ring_size=2, threads=4)     # the ring runs on one thread
    calls = []

    def boom(evp, keys, n, like_torch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyError("raised inside the trace callback")
        return np.zeros(n, np.int64)
    monkeypatch.setattr(_steps, "_positions", boom)
    with pytest.raises(KeyError, match="inside the trace callback"):
        ringattn.steps(q, q, q, ring_size=2)
    assert len(calls) == 3     # the later events were passed over


def _cells(svg):
    root = ET.fromstring(svg)
    return [e for e in root.iter("{http://www.w3.org/2000/svg}rect") if e.get("class") == "cell"]


def test_heatmap_of_a_failing_comparison(rng, tmp_path):
    q, k, v = (rand(rng, 1, 40, 3, 8) for _ in range(3))
    out, lse = ringattn.attention(q, k, v, causal=True)
    bad = out.copy()
    bad[0, 17, 1] += 1e-3
    rep = ringattn.compare(bad, out, what="out")
    assert not rep
    path = tmp_path / "err.svg"
    svg = rep.heatmap(path, ring_size=4, partition="zigzag")
    assert path.read_text() == svg
    cells = _cells(svg)
    assert len(cells) == 40 * 3
    # outside: yellow to red (blue below 0x80); inside: white to grey (blue 0xa0 and up)
    outside = [i for i, c in enumerate(cells) if int(c.get("fill")[5:7], 16) < 0x80]
    assert outside == [1 * 40 + 17], "cells are (head, position), row by row"
    root = ET.fromstring(svg)
    chunks = [e for e in root.iter("{http://www.w3.org/2000/svg}line") if e.get("class") == "chunk"]
    assert len(chunks) == 8               # zigzag: two pieces per member
    # lse and a bhnd dk through check()
    lrep = ringattn.compare(lse + 1e-3, lse)
    assert len(_cells(lrep.heatmap())) == 40 * 3
    kt = k.transpose(0, 2, 1, 3)
    drep = ringattn.compare(kt + 1e-3, kt, what="dk", layout="bhnd")
    assert "key position" in drep.heatmap()
    with pytest.raises(ringattn.RingattnError):
        rep.heatmap(partition="diagonal")


@needs_torch
def test_heatmap_of_check_reports_knows_the_ring(tmp_path):
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 32, 8) for _ in range(3))
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    reports = ringattn.check(q, k, v, out=out, layout="bhnd", causal="top-left", ring_size=4, partition="zigzag")
    svg = reports["out"].heatmap(tmp_path / "e.svg")
    root = ET.fromstring((tmp_path / "e.svg").read_text())
    assert len(_cells(svg)) == 32 * 2
    assert len([e for e in root.iter("{http://www.w3.org/2000/svg}line") if e.get("class") == "chunk"]) == 8
