"""Shared pieces of the Python tests: a naive f64 attention written for reading (the oracle
these tests hold the package to, independent of the C code), seeded inputs, and torch when
it is installed."""
import math
import pathlib

import numpy as np
import pytest

try:
    import torch
except ImportError:  # the torch tests skip themselves
    torch = None

ROOT = pathlib.Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "reference" / "golden"

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def rand(rng, *shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def visible(nq, nk, causal=None, window=None):
    """[nq, nk] boolean mask of one (sequence, head): which key each query sees."""
    off = 0 if causal == "top-left" else nk - nq
    i = np.arange(nq)[:, None]
    j = np.arange(nk)[None, :]
    m = np.ones((nq, nk), bool)
    if causal in ("bottom-right", "top-left"):
        m &= j <= i + off
    if window is not None:
        left, right = (-1 if x is None else x for x in window)
        if left >= 0:
            m &= j >= i + off - left
        if right >= 0:
            m &= j <= i + off + right
    return m


def _rows(q, k, v, mask, scale, softcap):
    """(nq, d) x (nk, d) -> out (nq, dv), lse (nq,) over the visible keys; 0 / -inf if none"""
    s = scale * (q @ k.T)
    if softcap:
        s = softcap * np.tanh(s / softcap)
    s = np.where(mask, s, -np.inf)
    m = s.max(axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m)
    l = p.sum(axis=1, keepdims=True)
    out = np.where(l > 0, (p @ v) / np.where(l > 0, l, 1), 0.0)
    with np.errstate(divide="ignore"):
        lse = np.where(l[:, 0] > 0, np.log(l[:, 0]) + m[:, 0], -np.inf)
    return out, lse


def naive(q, k, v, causal=None, scale=None, window=None, softcap=0.0, cu_seqlens_q=None, cu_seqlens_k=None):
    """Dense attention on [b, n, h, d] float64 arrays -> out [b, nq, h, dv], lse [b, h, nq]."""
    b, nq, h, d = q.shape
    nk, hk = k.shape[1], k.shape[2]
    scale = 1 / math.sqrt(d) if scale is None else scale
    out = np.zeros((b, nq, h, v.shape[3]))
    lse = np.full((b, h, nq), -np.inf)
    seqs = [(0, nq, 0, nk)] if cu_seqlens_q is None else [
        (cu_seqlens_q[s], cu_seqlens_q[s + 1], cu_seqlens_k[s], cu_seqlens_k[s + 1])
        for s in range(len(cu_seqlens_q) - 1)]
    for bi in range(b):
        for hi in range(h):
            kh = hi // (h // hk)                      # GQA: q heads share k/v head h // (h / hk)
            for q0, q1, k0, k1 in seqs:
                mask = visible(q1 - q0, k1 - k0, causal, window)
                o, l = _rows(q[bi, q0:q1, hi], k[bi, k0:k1, kh], v[bi, k0:k1, kh], mask, scale, softcap)
                out[bi, q0:q1, hi], lse[bi, hi, q0:q1] = o, l
    return out, lse


def naive_dilated(q, k, v, segments, dilations, causal=None, scale=None, mix="head-groups"):
    """LongNet dilated attention (fkodom / DarcStar head groups, cumulative head ranges, output
    / G; or the paper's lse mix) on [b, n, h, d] float64 arrays -> out, lse."""
    b, n, h, d = q.shape
    G = len(segments)
    scale = 1 / math.sqrt(d) if scale is None else scale
    out = np.zeros((b, n, h, v.shape[3]))
    lse = np.full((b, h, n), -np.inf)

    def pattern(g, offset):
        """[n, n] mask of group g's sparse segments with this offset"""
        s, r = segments[g], dilations[g]
        m = np.zeros((n, n), bool)
        for j0 in range(0, n, s):
            pos = np.arange(j0 + offset, j0 + s, r)
            m[np.ix_(pos, pos)] = True
        if causal:
            m &= np.tril(np.ones((n, n), bool))
        return m

    if mix == "head-groups":
        sizes = [h // G + (1 if g < h % G else 0) for g in range(G)]
        start = 0
        for g in range(G):
            for hi in range(start, start + sizes[g]):
                mask = pattern(g, g % dilations[g])
                for bi in range(b):
                    o, l = _rows(q[bi, :, hi], k[bi, :, hi], v[bi, :, hi], mask, scale, 0.0)
                    out[bi, :, hi], lse[bi, hi] = o / G, l
            start += sizes[g]
    else:
        for hi in range(h):
            for bi in range(b):
                # every pattern is a softmax of its own; the mix weighs them by their denominators,
                # i.e. one softmax over the concatenated (pattern, key) lists
                parts = [_rows(q[bi, :, hi], k[bi, :, hi], v[bi, :, hi], pattern(g, hi % dilations[g]), scale, 0.0)
                         for g in range(G)]
                ls = np.stack([p[1] for p in parts])
                with np.errstate(invalid="ignore"):
                    mx = np.max(ls, axis=0)
                    mx = np.where(np.isfinite(mx), mx, 0)
                    w = np.exp(ls - mx)
                tot = w.sum(axis=0)
                o = sum(w[g][:, None] * parts[g][0] for g in range(G))
                out[bi, :, hi] = np.where(tot[:, None] > 0, o / np.where(tot > 0, tot, 1)[:, None], 0)
                with np.errstate(divide="ignore"):
                    lse[bi, hi] = np.where(tot > 0, np.log(tot) + mx, -np.inf)
    return out, lse


def assert_close(got, ref, tol=1e-12):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), fin), "non-finite entries differ"
    assert np.array_equal(got[~fin], ref[~fin])
    scale = max(1.0, float(np.max(np.abs(ref[fin])))) if fin.any() else 1.0
    err = float(np.max(np.abs(got[fin] - ref[fin]))) if fin.any() else 0.0
    assert err <= tol * scale, "max abs error %.3e > %.1e" % (err, tol * scale)


def to_np(x):
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)
