"""attention_with_kvcache and check_kvcache against an oracle independent of the C code: plain
PyTorch float64 that gathers each sequence's keys from the cache by hand (page by page through
the block table), appends the new keys, and computes every option from its formula
(bottom-right causal and windows at position i + L - nq, ALiBi |i + L - nq - j|, softcap,
sinks in the denominator of the result only); splits cut by the rule [s c, min((s + 1) c, L))
and merged by this file's own log-sum-exp."""
import math

import numpy as np
import pytest

import ringattn

from conftest import needs_torch, torch

pytestmark = needs_torch

TOL = 1e-12


# ---------------------------------------------------------------- the oracle


def gather(cache, bb, n, block_table):
    """the first n key rows of sequence bb, [n, hk, d]: row bb of a contiguous cache, or slot
    j % page of block block_table[bb][j // page] for every key j"""
    if block_table is None:
        return cache[bb, :n]
    page = cache.shape[1]
    rows = [cache[int(block_table[bb][j // page]), j % page] for j in range(n)]
    return torch.stack(rows) if rows else cache[:0, 0]


def split_bounds(L, num_splits, split_size, s):
    c = split_size if split_size else -(-L // max(num_splits, 1))
    k0 = min(s * c, L)
    return k0, min(k0 + c, L)


def n_splits(lengths, num_splits, split_size):
    if not split_size:
        return max(num_splits, 1)
    return max([1] + [-(-L // split_size) for L in lengths])


def softmax_part(s, v):
    """s [h, nq, n] (-inf where masked), v [h, n, dv] -> out [nq, h, dv], lse [h, nq]; 0 / -inf
    for rows that see nothing"""
    lse = torch.logsumexp(s, dim=-1) if s.shape[-1] else torch.full(s.shape[:2], -math.inf, dtype=s.dtype)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    p = torch.exp(s - safe[..., None])
    return (p @ v).permute(1, 0, 2), lse


def oracle(q, k_cache, v_cache, k=None, v=None, *, cache_seqlens, block_table=None, causal=None, window=None,
           softcap=0.0, sinks=None, alibi=None, scale=None, num_splits=1, split_size=None, dtype=torch.float64):
    """-> out [b, nq, h, dv], lse [b, h, nq], splits [(out_s, lse_s)] (NumPy float64), computed
    in `dtype` from the inputs as stored"""
    t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64) if not torch.is_tensor(x) else x).to(dtype)  # noqa
    q, k_cache, v_cache = t(q), t(k_cache), t(v_cache)
    k = t(k) if k is not None else None
    v = t(v) if v is not None else None
    b, nq, h, d = q.shape
    hk, dv = k_cache.shape[2], v_cache.shape[3]
    scale = 1 / math.sqrt(d) if scale is None else scale
    seqlens = [int(x) for x in np.asarray(cache_seqlens).reshape(-1)]
    n_new = 0 if k is None else k.shape[1]
    lengths = [sl + n_new for sl in seqlens]
    S = n_splits(lengths, num_splits, split_size)
    out = torch.zeros(b, nq, h, dv, dtype=dtype)
    lse = torch.full((b, h, nq), -math.inf, dtype=dtype)
    parts = [(torch.zeros(b, nq, h, dv, dtype=dtype), torch.full((b, h, nq), -math.inf, dtype=dtype))
             for _ in range(S)]
    for bb in range(b):
        keys, vals = gather(k_cache, bb, seqlens[bb], block_table), gather(v_cache, bb, seqlens[bb], block_table)
        if k is not None:
            keys, vals = torch.cat([keys, k[bb]]), torch.cat([vals, v[bb]])
        L = keys.shape[0]
        kh = keys.repeat_interleave(h // hk, dim=1).permute(1, 0, 2)     # [h, L, d]
        vh = vals.repeat_interleave(h // hk, dim=1).permute(1, 0, 2)
        s = scale * (q[bb].permute(1, 0, 2) @ kh.transpose(-1, -2))      # [h, nq, L]
        if softcap:
            s = softcap * torch.tanh(s / softcap)
        pos = torch.arange(nq)[:, None] + L - nq                         # query i sits at i + L - nq
        j = torch.arange(L)[None, :]
        if alibi is not None:
            sl = torch.as_tensor(np.asarray(alibi), dtype=dtype)
            sl = sl[bb] if sl.dim() == 2 else sl
            s = s - sl.view(h, 1, 1) * (pos - j).abs().to(dtype)
        see = torch.ones(nq, L, dtype=torch.bool)
        at = torch.arange(nq)[:, None] if causal == "top-left" else pos   # top-left: causal and window at i
        if causal in ("bottom-right", "top-left", True):
            see &= j <= at
        if window is not None:
            left, right = (-1 if w is None else w for w in window)
            if left >= 0:
                see &= j >= at - left
            if right >= 0:
                see &= j <= at + right
        s = s.masked_fill(~see, -math.inf)
        full = s
        if sinks is not None:
            sk = torch.as_tensor(np.asarray(sinks), dtype=dtype).view(h, 1, 1).expand(h, nq, 1)
            full = torch.cat([s, sk], dim=-1)
        total = torch.logsumexp(full, dim=-1) if full.shape[-1] else torch.full((h, nq), -math.inf, dtype=dtype)
        safe = torch.where(torch.isfinite(total), total, torch.zeros_like(total))
        out[bb] = (torch.exp(s - safe[..., None]) @ vh).permute(1, 0, 2)
        lse[bb] = total
        for si in range(S):
            k0, k1 = split_bounds(L, num_splits, split_size, si)
            o_s, l_s = softmax_part(s[:, :, k0:k1], vh[:, k0:k1])
            parts[si][0][bb], parts[si][1][bb] = o_s, l_s
    f = lambda x: x.to(torch.float64).numpy()  # noqa: E731
    return f(out), f(lse), [(f(o), f(l)) for o, l in parts]


def merge(parts, sinks=None):
    """the partials merged by log-sum-exp (this file's own), the sink added once"""
    lses = np.stack([l for _, l in parts])                              # [S, b, h, nq]
    if sinks is not None:
        lses = np.concatenate([lses, np.broadcast_to(np.asarray(sinks)[None, None, :, None], (1,) + lses.shape[1:])])
    m = lses.max(axis=0)
    m = np.where(np.isfinite(m), m, 0.0)
    w = np.exp(lses - m)
    tot = w.sum(axis=0)
    with np.errstate(divide="ignore"):
        lse = np.where(tot > 0, np.log(tot) + m, -np.inf)
    out = 0
    for s, (o, l) in enumerate(parts):
        ws = np.where(tot > 0, w[s] / np.where(tot > 0, tot, 1), 0.0)  # [b, h, nq]
        out = out + o * ws.transpose(0, 2, 1)[..., None]
    return out, lse


def close(got, ref, tol=TOL):
    got = got.detach().to(torch.float64).numpy() if torch.is_tensor(got) else np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    fin = np.isfinite(ref)
    assert np.array_equal(np.isfinite(got), fin), "non-finite entries differ: %s" % np.argwhere(
        np.isfinite(got) != fin)[:4].tolist()
    assert np.array_equal(got[~fin], ref[~fin])
    err = float(np.max(np.abs(got[fin] - ref[fin]))) if fin.any() else 0.0
    scale = max(1.0, float(np.max(np.abs(ref[fin])))) if fin.any() else 1.0
    assert err <= tol * scale, "max abs error %.3e > %.1e" % (err, tol * scale)
    return err


# ---------------------------------------------------------------- cases


def make_case(seed, *, b=3, nq=2, h=4, hk=2, d=8, dv=None, paged=True, page=4, n_new=0, lengths=None, dtype=np.float64):
    """random inputs; a paged cache has spare blocks and a block table whose pages are a random
    permutation, its unused entries garbage (only the entries a sequence uses are read)"""
    rng = np.random.default_rng(seed)
    dv = d if dv is None else dv
    if lengths is None:
        lengths = rng.integers(0, 13, size=b)
    lengths = np.asarray(lengths, dtype=np.int32)
    cap = int(lengths.max()) + n_new + 1
    if paged:
        max_blocks = -(-cap // page) + 1
        nb = b * max_blocks + 2
        table = rng.permutation(nb)[:b * max_blocks].reshape(b, max_blocks).astype(np.int32)
        for bb in range(b):   # entries past what sequence bb uses (with its new keys): never read
            used = -(-(int(lengths[bb]) + n_new) // page)
            table[bb, used:] = rng.choice([-7, nb + 100, 2**31 - 1], size=max_blocks - used)
        shape0, shape1 = nb, page
    else:
        table, shape0, shape1 = None, b + 1, cap + 2
    c = dict(q=rng.standard_normal((b, nq, h, d)), k_cache=rng.standard_normal((shape0, shape1, hk, d)),
             v_cache=rng.standard_normal((shape0, shape1, hk, dv)), cache_seqlens=lengths, block_table=table)
    if n_new:
        c["k"] = rng.standard_normal((b, n_new, hk, d))
        c["v"] = rng.standard_normal((b, n_new, hk, dv))
    for n in ("q", "k_cache", "v_cache", "k", "v"):
        if n in c:
            c[n] = c[n].astype(dtype)
    return c


def call(c, **kw):
    return ringattn.attention_with_kvcache(c["q"], c["k_cache"], c["v_cache"], c.get("k"), c.get("v"),
                                           cache_seqlens=c["cache_seqlens"], block_table=c["block_table"], **kw)


def ref(c, **kw):
    return oracle(c["q"], c["k_cache"], c["v_cache"], c.get("k"), c.get("v"), cache_seqlens=c["cache_seqlens"],
                  block_table=c["block_table"], **kw)


OPTIONS = [
    {},
    {"causal": "bottom-right"},
    {"causal": True, "window": (3, 0)},
    {"window": (2, 1)},
    {"softcap": 1.5, "causal": "bottom-right"},
    {"sinks": [0.5, -1.0, 2.0, 0.0], "causal": "bottom-right"},
    {"alibi": [0.25, 0.5, 0.125, 1.0]},
    {"alibi": "per-batch", "causal": "bottom-right"},
    {"causal": "top-left", "window": (2, 0), "alibi": [0.5, 0.25, 0.125, 0.0625]},
    {"scale": 0.7, "sinks": [1.0, 1.0, -3.0, 0.5], "softcap": 2.0, "window": (4, None), "alibi": [0.1] * 4},
]


def _options(o, b, seed):
    o = dict(o)
    if o.get("alibi") == "per-batch":
        o["alibi"] = np.random.default_rng(seed).uniform(0, 1, size=(b, 4))
    return o


def _api(o):
    o = dict(o)
    if "alibi" in o:
        o["alibi_slopes"] = o.pop("alibi")
    return o


@pytest.mark.parametrize("paged", [False, True])
@pytest.mark.parametrize("n_new", [0, 3])
@pytest.mark.parametrize("opt", range(len(OPTIONS)))
def test_matches_oracle(paged, n_new, opt):
    for seed in range(3):
        c = make_case(100 * opt + seed, paged=paged, n_new=n_new, nq=1 + seed * 3, page=[1, 3, 4][seed])
        o = _options(OPTIONS[opt], 3, seed)
        out, lse = call(c, **_api(o))
        r_out, r_lse, _ = ref(c, **o)
        close(out, r_out)
        close(lse, r_lse)


def test_empty_rows_and_empty_sequences():
    """length 0 without new keys: every row sees nothing (out 0, lse -inf; with a sink lse =
    the sink); nq > L with causal: the first rows see nothing"""
    c = make_case(7, lengths=[0, 2, 5], nq=4, paged=True, page=3)
    out, lse = call(c, causal="bottom-right")
    assert np.all(out[0] == 0) and np.all(lse[0] == -np.inf)
    assert np.all(lse[1, :, :2] == -np.inf) and np.all(np.isfinite(lse[1, :, 2:]))
    sinks = np.array([0.5, -1.0, 2.0, 0.25])
    out, lse = call(c, causal="bottom-right", sinks=sinks)
    assert np.all(out[0] == 0) and np.array_equal(lse[0], np.broadcast_to(sinks[:, None], (4, 4)))
    close(lse, ref(c, causal="bottom-right", sinks=sinks)[1])


@pytest.mark.parametrize("paged", [False, True])
def test_splits_match_oracle_and_merge_to_the_result(paged):
    """split counts 1 .. more than keys, split_size: every partial, their count, and their
    merge (this file's log-sum-exp, the sink added once) equal to the result"""
    cases = 0
    for seed in range(4):
        c = make_case(40 + seed, paged=paged, n_new=seed % 2 * 2, nq=1 + seed % 3, lengths=[0, 5, 11, 7][:3 - seed % 2],
                      b=3 - seed % 2, page=[2, 4, 5, 3][seed])
        b = c["q"].shape[0]
        sinks = [0.3, -0.2, 1.0, 0.0] if seed % 2 else None
        for split in [dict(num_splits=s) for s in (1, 2, 3, 5, 16, 40)] + [dict(split_size=s) for s in (1, 3, 4, 64)]:
            o = dict(causal="bottom-right" if seed < 2 else None, window=(5, 0) if seed == 3 else None, sinks=sinks)
            out, lse, parts = call(c, return_splits=True, **o, **split)
            r_out, r_lse, r_parts = ref(c, **o, **split)
            assert len(parts) == len(r_parts)
            for (po, pl), (ro, rl) in zip(parts, r_parts):
                close(po, ro)
                close(pl, rl)
            m_out, m_lse = merge([(np.asarray(po), np.asarray(pl)) for po, pl in parts], sinks)
            close(out, m_out)
            close(lse, m_lse)
            close(out, r_out)
            # the result does not depend on the splits
            out1, lse1 = call(c, **o)
            close(out, out1)
            close(lse, lse1)
            cases += 1
            assert b == out.shape[0]
    assert cases == 40


def test_split_counts():
    """num_splits gives that many partials even when they outnumber the keys (the extra ones
    empty); split_size gives the longest sequence's count"""
    c = make_case(3, lengths=[0, 3, 9], paged=True, n_new=1)
    _, _, parts = call(c, num_splits=12, return_splits=True)
    assert len(parts) == 12
    assert np.all(parts[11][1] == -np.inf) and np.all(parts[11][0] == 0)
    _, _, parts = call(c, split_size=4, return_splits=True)
    assert len(parts) == 3   # L = 1, 4, 10
    assert np.all(parts[1][1][:2] == -np.inf) and np.all(np.isfinite(parts[1][1][2]))
    c = make_case(3, lengths=[0, 0, 0], paged=True)
    _, _, parts = call(c, split_size=4, return_splits=True)
    assert len(parts) == 1 and np.all(parts[0][1] == -np.inf)


@pytest.mark.parametrize("hk", [1, 2, 4])
def test_gqa_mqa_and_dim_v(hk):
    c = make_case(11, h=4, hk=hk, d=8, dv=5, n_new=2, paged=True, page=3)
    out, lse, parts = call(c, causal="bottom-right", num_splits=3, return_splits=True)
    assert out.shape == (3, 2, 4, 5)
    r_out, r_lse, r_parts = ref(c, causal="bottom-right", num_splits=3)
    close(out, r_out)
    close(lse, r_lse)
    for (po, pl), (ro, rl) in zip(parts, r_parts):
        close(po, ro)
        close(pl, rl)


def test_torch_in_torch_out_and_numpy_agree():
    c = make_case(5, paged=True, n_new=2)
    t = {n: (torch.from_numpy(x) if isinstance(x, np.ndarray) and n not in ("cache_seqlens", "block_table") else x)
         for n, x in c.items()}
    t["cache_seqlens"] = torch.from_numpy(c["cache_seqlens"].astype(np.int64))   # converted to int32
    t["block_table"] = torch.from_numpy(c["block_table"])
    out, lse, parts = call(t, causal=True, num_splits=2, return_splits=True)
    assert torch.is_tensor(out) and torch.is_tensor(lse) and all(torch.is_tensor(x) for p in parts for x in p)
    assert out.dtype == torch.float64 and lse.shape == (3, 4, 2)
    n_out, n_lse, n_parts = call(c, causal=True, num_splits=2, return_splits=True)
    assert isinstance(n_out, np.ndarray)
    assert np.array_equal(out.numpy(), n_out) and np.array_equal(lse.numpy(), n_lse)
    # strided views are read in place: q through a transpose
    qt = torch.from_numpy(c["q"]).permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3)
    out2, _ = ringattn.attention_with_kvcache(qt, t["k_cache"], t["v_cache"], t["k"], t["v"], cache_seqlens=t[
        "cache_seqlens"], block_table=t["block_table"], causal=True)
    close(out2, out.numpy())


def test_integer_tables_converted():
    """cache_seqlens and block_table of other integer types (NumPy, torch, lists) are converted
    to int32; one int serves every sequence"""
    c = make_case(9, paged=True)
    c["block_table"] = np.where(c["block_table"] < 0, 0, c["block_table"]) % c["k_cache"].shape[0]
    out, lse = call(c)
    for conv in (lambda a: a.astype(np.int64), lambda a: a.astype(np.uint16), lambda a: a.tolist(),
                 lambda a: torch.from_numpy(a.astype(np.int64)), lambda a: torch.from_numpy(a.astype(np.int16))):
        o2, l2 = ringattn.attention_with_kvcache(c["q"], c["k_cache"], c["v_cache"],
                                                 cache_seqlens=conv(c["cache_seqlens"]),
                                                 block_table=conv(c["block_table"]))
        assert np.array_equal(o2, out) and np.array_equal(l2, lse)
    c2 = make_case(9, paged=False, lengths=[4, 4, 4])
    a = call(c2)
    b2 = ringattn.attention_with_kvcache(c2["q"], c2["k_cache"], c2["v_cache"], cache_seqlens=4)
    assert np.array_equal(a[0], b2[0]) and np.array_equal(a[1], b2[1])


@pytest.mark.parametrize("dname", ["float32", "float16", "bfloat16"])
def test_low_precision_inputs(dname):
    """inputs stored in f32 / f16 / bf16: read exactly (compute f64 equals the oracle on the
    stored values to 1e-12), and outputs in the input's type within its tolerance"""
    tdt = getattr(torch, dname)
    c = make_case(21, paged=True, n_new=2, nq=3)
    t = {n: (torch.from_numpy(x).to(tdt) if n in ("q", "k_cache", "v_cache", "k", "v") else x) for n, x in c.items()}
    kw = dict(causal="bottom-right", num_splits=3, sinks=[0.1, 0.2, 0.3, 0.4])
    out, lse, parts = call(t, return_splits=True, **kw)
    r_out, r_lse, r_parts = ref(t, **kw)
    close(out, r_out)
    close(lse, r_lse)
    for (po, pl), (ro, rl) in zip(parts, r_parts):
        close(po, ro)
        close(pl, rl)
    tol = ringattn.rule_policy("te", dname if dname != "float32" else "float32", "out")
    out2, lse2 = call(t, compute="f32", out_dtype=dname, lse_dtype="float32", **kw)
    assert out2.dtype == tdt and lse2.dtype == torch.float32
    torch.testing.assert_close(out2.double(), torch.from_numpy(r_out), atol=tol["atol"], rtol=tol["rtol"])
    torch.testing.assert_close(lse2.double(), torch.from_numpy(r_lse), atol=1e-5, rtol=1e-5)
    if dname != "bfloat16":   # NumPy has f32 and f16
        n = {k: (np.asarray(v).astype(dname) if k in ("q", "k_cache", "v_cache", "k", "v") else v)
             for k, v in c.items()}
        o3, _ = call(n, **kw)
        assert isinstance(o3, np.ndarray)
        assert np.array_equal(o3, out.numpy())


# ---------------------------------------------------------------- update_cache


@pytest.mark.parametrize("paged", [False, True])
def test_update_cache_writes_exactly_the_new_slots(paged):
    for seed in range(3):
        c = make_case(60 + seed, paged=paged, n_new=3, page=[1, 3, 4][seed], lengths=[[0, 4, 9], [3, 3, 3],
                                                                                        [8, 0, 1]][seed])
        before = {n: c[n].copy() for n in ("k_cache", "v_cache")}
        out0, lse0 = call(c, causal="bottom-right")
        assert all(np.array_equal(c[n], before[n]) for n in before), "written without update_cache"
        out, lse = call(c, causal="bottom-right", update_cache=True)
        assert np.array_equal(out, out0) and np.array_equal(lse, lse0)
        want = {n: before[n].copy() for n in before}
        for bb in range(3):
            for t in range(3):
                pos = int(c["cache_seqlens"][bb]) + t
                blk, slot = (bb, pos) if not paged else (int(c["block_table"][bb][pos // c["k_cache"].shape[1]]),
                                                         pos % c["k_cache"].shape[1])
                want["k_cache"][blk, slot] = c["k"][bb, t]
                want["v_cache"][blk, slot] = c["v"][bb, t]
        for n in want:
            assert np.array_equal(c[n], want[n]), n
        # the updated cache with the longer lengths and no new keys gives the same result
        c2 = dict(c, cache_seqlens=c["cache_seqlens"] + 3)
        del c2["k"], c2["v"]
        out2, lse2 = call(c2, causal="bottom-right")
        close(out2, out0)
        close(lse2, lse0)


def test_update_cache_torch_in_place():
    c = make_case(70, paged=True, n_new=2)
    t = {n: (torch.from_numpy(x.copy()) if n in ("q", "k_cache", "v_cache", "k", "v") else x) for n, x in c.items()}
    kc = t["k_cache"]
    call(t, update_cache=True)
    call(c, update_cache=True)
    assert t["k_cache"] is kc
    assert np.array_equal(t["k_cache"].numpy(), c["k_cache"]) and np.array_equal(t["v_cache"].numpy(), c["v_cache"])


def test_update_cache_refuses_what_it_cannot_write():
    c = make_case(71, paged=True, n_new=2)
    ro = c["k_cache"].copy()
    ro.flags.writeable = False
    with pytest.raises(ringattn.RingattnError, match="read-only"):
        ringattn.attention_with_kvcache(c["q"], ro, c["v_cache"], c["k"], c["v"], cache_seqlens=c["cache_seqlens"],
                                         block_table=c["block_table"], update_cache=True)
    # reading a read-only cache is fine
    ringattn.attention_with_kvcache(c["q"], ro, c["v_cache"], c["k"], c["v"], cache_seqlens=c["cache_seqlens"],
                                    block_table=c["block_table"])
    big = c["k_cache"].astype(">f8")   # big-endian: ringattn would read a copy
    with pytest.raises(ringattn.RingattnError, match="in place"):
        ringattn.attention_with_kvcache(c["q"], big, c["v_cache"].astype(">f8"), c["k"].astype(">f8"),
                                        c["v"].astype(">f8"), cache_seqlens=c["cache_seqlens"],
                                        block_table=c["block_table"], update_cache=True)
    bc = torch.from_numpy(c["v_cache"][:, :1]).expand(c["v_cache"].shape)   # stride 0: overlapping elements
    with pytest.raises(ringattn.RingattnError, match="stride 0"):
        ringattn.attention_with_kvcache(torch.from_numpy(c["q"]), torch.from_numpy(c["k_cache"]), bc,
                                        torch.from_numpy(c["k"]), torch.from_numpy(c["v"]),
                                        cache_seqlens=c["cache_seqlens"], block_table=c["block_table"],
                                        update_cache=True)
    with pytest.raises(ringattn.RingattnError, match="NumPy array or a torch tensor"):
        ringattn.attention_with_kvcache(c["q"], c["k_cache"].tolist(), c["v_cache"], c["k"], c["v"],
                                        cache_seqlens=c["cache_seqlens"], block_table=c["block_table"],
                                        update_cache=True)


# ---------------------------------------------------------------- refusals


def _bad_cases():
    """(name, changes to the call, status, words of the sentence): each must raise and write nothing"""
    c = make_case(80, paged=True, n_new=2, lengths=[3, 6, 0])
    nb = c["k_cache"].shape[0]
    t = c["block_table"]
    t_out = t.copy()
    t_out[1, 0] = nb                                   # a used entry that is no block
    t_neg = t.copy()
    t_neg[0, 0] = -1
    t_same = t.copy()
    t_same[2, 0] = t[0, 1]                            # sequence 2's new keys onto sequence 0's slots
    return c, [
        ("float seqlens", dict(cache_seqlens=c["cache_seqlens"].astype(np.float64)), -3, "integers"),
        ("float table", dict(block_table=t.astype(np.float32)), -3, "integers"),
        ("bool seqlens", dict(cache_seqlens=np.array([True, False, True])), -3, "integers"),
        ("seqlens length", dict(cache_seqlens=c["cache_seqlens"][:2]), -2, "cache_seqlens"),
        ("seqlens 2-D", dict(cache_seqlens=c["cache_seqlens"][None]), -2, "cache_seqlens"),
        ("seqlens int32 overflow", dict(cache_seqlens=np.array([3, 2**33, 0])), -4, "int32"),
        ("negative seqlen", dict(cache_seqlens=np.array([3, -1, 0], np.int32)), -2, "cache_seqlens"),
        ("table rows", dict(block_table=t[:2]), -2, "block_table"),
        ("block out of range", dict(block_table=t_out), -2, "block_table"),
        ("negative block", dict(block_table=t_neg), -2, "block_table"),
        ("too few blocks", dict(block_table=t[:, :1]), -2, "pages"),
        ("same slot twice", dict(block_table=t_same, update_cache=True), -4, "same slot"),
        ("split_size and num_splits", dict(num_splits=2, split_size=3), -4, "give one"),
        ("negative num_splits", dict(num_splits=-1), -4, "negative"),
        ("split_size 0", dict(split_size=0), -4, "split_size"),
        ("float num_splits", dict(num_splits=2.0), -4, "num_splits"),
        ("k without v", dict(v=None), -1, "both or neither"),
        ("k dtype", dict(k=c["k"].astype(np.float32), v=c["v"].astype(np.float32)), -3, "dtype differs from k_cache"),
        ("k heads", dict(k=c["k"][:, :, :1], v=c["v"][:, :, :1]), -2, "k_new"),
        ("q dim", dict(q=c["q"][..., :4]), -2, "head dim"),
        ("update without new keys", dict(k=None, v=None, update_cache=True), -4, "nothing to write"),
        ("update_cache not bool", dict(update_cache=2), -4, "update_cache"),
        ("causal True ok, bad string", dict(causal="top-right"), -4, "causal"),
        ("sinks shape", dict(sinks=[0.0, 1.0]), -2, "sinks"),
        ("contiguous too short", dict(block_table=None, k_cache=c["k_cache"][:3, :4], v_cache=c["v_cache"][:3, :4]),
         -2, "exceeds"),
        ("q 3-D", dict(q=c["q"][0]), -2, "q"),
    ]


@pytest.mark.parametrize("i", range(26))
def test_bad_input_raises_and_writes_nothing(i):
    c, bad = _bad_cases()
    assert len(bad) == 26
    name, change, status, words = bad[i]
    args = dict(c, update_cache=True)
    args.update(change)
    before = {n: np.array(args[n], copy=True) for n in ("k_cache", "v_cache")}
    with pytest.raises(ringattn.RingattnError, match=words) as e:
        ringattn.attention_with_kvcache(args["q"], args["k_cache"], args["v_cache"], args.get("k"), args.get("v"),
                                        cache_seqlens=args["cache_seqlens"], block_table=args["block_table"],
                                        update_cache=args["update_cache"], return_splits=True,
                                        causal=args.get("causal"), sinks=args.get("sinks"),
                                        num_splits=args.get("num_splits", 1), split_size=args.get("split_size"))
    assert e.value.status == status, (name, e.value.status, str(e.value))
    for n in before:
        assert np.array_equal(np.asarray(args[n]), before[n]), "%s: %s written" % (name, n)


# ---------------------------------------------------------------- check_kvcache


def bf16_port(c, *, read_past=None, **kw):
    """a correct bf16 port, independent of ringattn: this file's oracle computed in float32 from
    the bf16 inputs, out stored in bf16, lse and the partials in f32. read_past=bb reads one
    key past cache_seqlens[bb] (a paging bug)."""
    seqlens = np.array(c["cache_seqlens"]).copy()
    if read_past is not None:
        seqlens[read_past] += 1
    out, lse, parts = oracle(c["q"], c["k_cache"], c["v_cache"], c.get("k"), c.get("v"), cache_seqlens=seqlens,
                             block_table=c["block_table"], dtype=torch.float32, **kw)
    return (torch.from_numpy(out).to(torch.bfloat16), torch.from_numpy(lse).float(),
            [(torch.from_numpy(o).float(), torch.from_numpy(l).float()) for o, l in parts])


def bf16_case(seed, **kw):
    c = make_case(seed, **kw)
    for n in ("q", "k_cache", "v_cache", "k", "v"):
        if n in c:
            c[n] = torch.from_numpy(c[n]).to(torch.bfloat16)
    return c


def check(c, **kw):
    return ringattn.check_kvcache(c["q"], c["k_cache"], c["v_cache"], c.get("k"), c.get("v"),
                                  cache_seqlens=c["cache_seqlens"], block_table=c["block_table"], **kw)


def test_check_kvcache_passes_correct_ports():
    worst = 0.0
    for seed in range(24):
        c = bf16_case(200 + seed, paged=seed % 3 != 0, n_new=seed % 3, nq=1 + seed % 4, page=[1, 2, 4, 16][seed % 4],
                      lengths=None if seed % 5 else [0, 7, 16])
        kw = dict(causal="bottom-right" if seed % 2 else None, num_splits=[1, 2, 3, 7, 30][seed % 5],
                  sinks=[0.5, 0.0, -1.0, 2.0] if seed % 4 == 1 else None, softcap=3.0 if seed % 6 == 2 else 0.0,
                  window=(4, 0) if seed % 7 == 3 else None)
        out, lse, parts = bf16_port(c, **kw)
        reps = check(c, out=out, lse=lse, splits=parts, **kw)
        assert len(reps) == 2 + 2 * len(parts) and all(r.passed for r in reps.values())
        assert all(r.baseline and "bf16" in r.baseline for r in reps.values())
        worst = max(worst, max(r.ratio for r in reps.values() if r.ratio is not None))
        # ringattn itself in f32, cast to bf16: a second correct port
        o2, l2, p2 = ringattn.attention_with_kvcache(c["q"], c["k_cache"], c["v_cache"], c.get("k"), c.get("v"),
                                                     cache_seqlens=c["cache_seqlens"], block_table=c["block_table"],
                                                     compute="f32", out_dtype="float32", return_splits=True, **kw)
        check(c, out=o2.to(torch.bfloat16), lse=l2, splits=p2, **kw)
    assert math.isfinite(worst)


def test_check_kvcache_split_size_and_f32():
    c = make_case(300, paged=True, n_new=1, lengths=[0, 9, 4])
    kw = dict(split_size=4, causal="bottom-right")
    out, lse, parts = oracle(c["q"], c["k_cache"], c["v_cache"], c["k"], c["v"], cache_seqlens=c["cache_seqlens"],
                             block_table=c["block_table"], dtype=torch.float32, **kw)
    f = lambda x: x.astype(np.float32)  # noqa: E731
    reps = check(c, out=f(out), lse=f(lse), splits=[(f(o), f(l)) for o, l in parts], **kw)
    assert len(parts) == 3 and all(r.passed for r in reps.values())
    assert "f32" in reps["out"].baseline
    with pytest.raises(TypeError, match="3 splits"):
        check(c, out=f(out), splits=[(f(o), f(l)) for o, l in parts[:2]], **kw)


def _fails(c, where, **kw):
    with pytest.raises(AssertionError) as e:
        check(c, **kw)
    msg = str(e.value)
    assert "ringattn.check_kvcache" in msg and where in msg.split("\n")[0], msg[:600]
    return msg


def test_check_kvcache_fails_wrong_ports():
    kw = dict(causal="bottom-right", num_splits=3)
    for seed in range(6):
        c = bf16_case(400 + seed, paged=True, n_new=1, lengths=[5, 11, 8], nq=2)
        out, lse, parts = bf16_port(c, **kw)
        check(c, out=out, lse=lse, splits=parts, **kw)
        # one split's lse in log2
        bad = list(parts)
        bad[1] = (parts[1][0], parts[1][1] / math.log(2))
        msg = _fails(c, "splits[1].lse", out=out, lse=lse, splits=bad, **kw)
        assert "base 2" in msg and "splits[1].out" not in msg.split("\n")[0]
        # a page read one key past cache_seqlens of sequence 1
        o2, l2, p2 = bf16_port(c, read_past=1, **kw)
        msg = _fails(c, "out", out=o2, lse=l2, **kw)
        assert "at (b=1," in msg
        # an empty split turned to NaN: sequence 0 (L = 6, splits of 2 keys) with 30 splits
        kw30 = dict(kw, num_splits=30)
        o3, l3, p3 = bf16_port(c, **kw30)
        check(c, out=o3, lse=l3, splits=p3, **kw30)
        bad = [(o.clone(), l.clone()) for o, l in p3]
        bad[29][0][0].fill_(math.nan)
        bad[29][1][0].fill_(math.nan)
        msg = _fails(c, "splits[29].out", out=o3, lse=l3, splits=bad, **kw30)
        assert "splits[29].lse" in msg.split("\n")[0]
        # a sink counted in a partial (it belongs to the result only)
        sinks = [1.0, 0.5, -0.5, 2.0]
        o4, l4, p4 = bf16_port(c, sinks=sinks, **kw)
        _, _, wrong = bf16_port(c, **kw)
        check(c, out=o4, lse=l4, splits=wrong, sinks=sinks, **kw)   # partials without the sink: right
        sunk = [(o, torch.logaddexp(l, torch.tensor(sinks).view(1, 4, 1))) for o, l in wrong]
        _fails(c, "splits[0].lse", out=o4, lse=l4, splits=sunk, sinks=sinks, **kw)


def test_check_kvcache_arguments():
    c = make_case(500, paged=True)
    out, lse, _ = oracle(c["q"], c["k_cache"], c["v_cache"], cache_seqlens=c["cache_seqlens"],
                         block_table=c["block_table"])
    with pytest.raises(TypeError, match="nothing to judge"):
        check(c)
    with pytest.raises(TypeError, match="compute"):
        check(c, out=out, compute="f32")
    with pytest.raises(TypeError, match="update_cache"):
        check(c, out=out, update_cache=True)
    with pytest.raises(TypeError, match="unexpected"):
        check(c, out=out, layout="bhnd")
    with pytest.raises(TypeError, match="pairs"):
        check(c, out=out, splits=[out])
    with pytest.raises(ringattn.RingattnError):
        check(c, out=out, policy="nope")
    reps = check(c, out=out.astype(np.float32), lse=lse.astype(np.float32))
    assert set(reps) == {"out", "lse"}
