"""The score options (sinks, ALiBi, bias, mask, mask_mod, document ids, max_logit) against
oracles independent of the C code: dense PyTorch float64 attention written for reading, its
gradients by autograd, and PyTorch's FlexAttention (eager, float64) for the masks, ALiBi and
the bias as FlexAttention's own mask_mod / score_mod."""
import math
import warnings

import numpy as np
import pytest

import ringattn

from conftest import needs_torch, torch, visible

pytestmark = needs_torch

FWD_TOL, BWD_TOL = 1e-12, 1e-10


# ---------------------------------------------------------------- the oracle


def _seqs(nq, nk, cu_q, cu_k):
    if cu_q is None:
        return [(0, nq, 0, nk)]
    return [(int(cu_q[s]), int(cu_q[s + 1]), int(cu_k[s]), int(cu_k[s + 1])) for s in range(len(cu_q) - 1)]


def oracle(q, k, v, dout=None, *, causal=None, window=None, softcap=0.0, scale=None, sinks=None, alibi=None,
           bias=None, mask=None, mask_mod=None, docs=None, cu_q=None, cu_k=None):
    """Dense attention on [b, n, h, d] float64 tensors, the options as their formulas say:
    scores = softcap(scale q k^T) + bias - slope |i + nk - nq - j| (per varlen sequence), the
    rules and masks as -inf, a sink column concatenated before the softmax and dropped after.
    -> dict out [b, nq, h, dv], lse and max_logit [b, h, nq], and with dout the gradients of
    sum(out * dout) by autograd: dq, dk, dv, dsinks, dbias."""
    b, nq, h, d = q.shape
    nk, hk = k.shape[1], k.shape[2]
    scale = 1 / math.sqrt(d) if scale is None else scale
    leaves = {n: x.detach().clone().requires_grad_(dout is not None)
              for n, x in (("q", q), ("k", k), ("v", v), ("sinks", sinks), ("bias", bias)) if x is not None}
    qh = leaves["q"].permute(0, 2, 1, 3)
    kh = leaves["k"].repeat_interleave(h // hk, dim=2).permute(0, 2, 1, 3)
    vh = leaves["v"].repeat_interleave(h // hk, dim=2).permute(0, 2, 1, 3)
    s = scale * (qh @ kh.transpose(-1, -2))
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    if bias is not None:
        s = s + leaves["bias"]                     # broadcasts (b|1, h|1, nq, nk) or (nq, nk)
    allowed = torch.zeros(nq, nk, dtype=torch.bool)
    dist = torch.zeros(nq, nk, dtype=torch.float64)
    for q0, q1, k0, k1 in _seqs(nq, nk, cu_q, cu_k):
        allowed[q0:q1, k0:k1] = torch.from_numpy(visible(q1 - q0, k1 - k0, causal, window))
        i = torch.arange(q1 - q0, dtype=torch.float64)[:, None]
        j = torch.arange(k1 - k0, dtype=torch.float64)[None, :]
        dist[q0:q1, k0:k1] = (i + (k1 - k0) - (q1 - q0) - j).abs()
    if alibi is not None:
        sl = torch.as_tensor(alibi, dtype=torch.float64)
        sl = sl.view(1, h, 1, 1) if sl.dim() == 1 else sl.view(b, h, 1, 1)
        s = s - sl * dist
    allowed = allowed.expand(b, h, nq, nk)
    if mask is not None:
        allowed = allowed & torch.as_tensor(mask)
    if mask_mod is not None:
        bi = torch.arange(b).view(b, 1, 1, 1)
        hi = torch.arange(h).view(1, h, 1, 1)
        qi = torch.arange(nq).view(1, 1, nq, 1)
        ki = torch.arange(nk).view(1, 1, 1, nk)
        allowed = allowed & mask_mod(bi, hi, qi, ki).expand(b, h, nq, nk)
    if docs is not None:
        dq_, dk_ = (docs, docs) if not isinstance(docs, tuple) else docs
        allowed = allowed & (torch.as_tensor(dq_)[:, None] == torch.as_tensor(dk_)[None, :])
    s = s.masked_fill(~allowed, -math.inf)
    max_logit = s.detach().amax(-1)
    full = s
    if sinks is not None:
        full = torch.cat([s, leaves["sinks"].view(1, h, 1, 1).expand(b, h, nq, 1)], dim=-1)
    lse = torch.logsumexp(full, dim=-1)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    p = torch.exp(s - safe[..., None])
    out = (p @ vh).permute(0, 2, 1, 3)
    res = {"out": out.detach(), "lse": lse.detach(), "max_logit": max_logit}
    if dout is not None:
        (out * dout).sum().backward()
        res.update({"d" + n: x.grad for n, x in leaves.items()})
    return res


def err(got, ref):
    """max |got - ref| over the finite entries, relative to max(1, max |ref|); the non-finite
    entries must agree exactly"""
    got = got.detach().double() if torch.is_tensor(got) else torch.from_numpy(np.asarray(got, np.float64))
    ref = ref.detach().double()
    assert tuple(got.shape) == tuple(ref.shape), (tuple(got.shape), tuple(ref.shape))
    fin = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(got), fin), "non-finite entries differ"
    assert torch.equal(got[~fin], ref[~fin]), "infinities differ"
    if not fin.any():
        return 0.0
    scale = max(1.0, float(ref[fin].abs().max()))
    return float((got[fin] - ref[fin]).abs().max()) / scale


def assert_matches(got, ref, names, tol):
    for n in names:
        e = err(got[n], ref[n])
        assert e <= tol, "%s: error %.3e > %.1e" % (n, e, tol)


def inputs(seed, b=2, nq=24, nk=24, h=4, hk=2, d=8, dv=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, nq, h, d, generator=g, dtype=torch.float64)
    k = torch.randn(b, nk, hk, d, generator=g, dtype=torch.float64)
    v = torch.randn(b, nk, hk, dv, generator=g, dtype=torch.float64)
    do = torch.randn(b, nq, h, dv, generator=g, dtype=torch.float64)
    return [x.to(dtype) for x in (q, k, v, do)], g


def run(q, k, v, do, **opts):
    """ringattn forward (with max_logit) and backward -> dict of named results"""
    out, lse, ml = ringattn.attention(q, k, v, return_max_logit=True, **opts)
    grads = ringattn.attention_backward(q, k, v, out, lse, do, **opts)
    names = ["dq", "dk", "dv"] + (["dsinks"] if opts.get("sinks") is not None else []) + (
        ["dbias"] if opts.get("bias") is not None else [])
    assert len(grads) == len(names)
    return dict({"out": out, "lse": lse, "max_logit": ml}, **dict(zip(names, grads)))


def _doc_ids(n, cuts):
    ids = torch.zeros(n, dtype=torch.int64)
    for c in cuts:
        ids[c:] += 1
    return ids


def make_option(name, g, b, h, nq, nk):
    """(ringattn keyword arguments, oracle keyword arguments) for one option"""
    if name == "sinks":
        s = torch.randn(h, generator=g, dtype=torch.float64)
        return dict(sinks=s), dict(sinks=s)
    if name == "alibi_h":
        sl = torch.tensor([2.0 ** (-8 * (i + 1) / h) for i in range(h)], dtype=torch.float64)
        return dict(alibi_slopes=sl), dict(alibi=sl)
    if name == "alibi_bh":
        sl = torch.rand(b, h, generator=g, dtype=torch.float64)
        return dict(alibi_slopes=sl.numpy()), dict(alibi=sl)
    if name.startswith("bias"):
        shape = {"bias": (b, h, nq, nk), "bias_b1": (1, h, nq, nk), "bias_h1": (b, 1, nq, nk),
                 "bias_2d": (nq, nk)}[name]
        x = torch.randn(*shape, generator=g, dtype=torch.float64)
        return dict(bias=x), dict(bias=x)
    if name == "mask_mod":
        def mm(b_, h_, qi, ki):   # a prefix of 5 keys for everyone, a head-dependent stride otherwise
            return (ki < 5) | ((qi + ki + h_ + b_) % 3 != 0)
        return dict(mask_mod=mm), dict(mask_mod=mm)
    if name.startswith("mask"):
        shape = {"mask": (b, h, nq, nk), "mask_11": (1, 1, nq, nk), "mask_2d": (nq, nk)}[name]
        m = torch.rand(*shape, generator=g) < 0.7
        return dict(mask=m), dict(mask=m)
    if name == "documents":
        if nq == nk:
            ids = _doc_ids(nq, [7, 8, 15])
            return dict(document_ids=ids), dict(docs=ids)
        ids = (_doc_ids(nq, [5, 13]), _doc_ids(nk, [9, 20]))
        return dict(document_ids=ids), dict(docs=ids)
    raise KeyError(name)


OPTIONS = ["sinks", "alibi_h", "alibi_bh", "bias", "bias_b1", "bias_h1", "bias_2d", "mask", "mask_11", "mask_2d",
           "mask_mod", "documents"]
RULES = {"plain": {}, "causal-br": dict(causal="bottom-right"), "causal-tl": dict(causal="top-left"),
         "window": dict(window=(4, 2)), "window-causal": dict(window=(5, 0), causal="bottom-right"),
         "softcap": dict(softcap=2.0, scale=0.9)}


def _oracle_rules(rules):
    return {k: v for k, v in rules.items() if k in ("causal", "window", "softcap", "scale")}


# ---------------------------------------------------------------- each option, alone and with the rules


@pytest.mark.parametrize("shape", [(24, 24), (19, 28), (28, 17)], ids=lambda s: "nq%d-nk%d" % s)
@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("option", OPTIONS)
def test_option_against_autograd(option, rule, shape):
    nq, nk = shape
    (q, k, v, do), g = inputs(hash((option, rule, shape)) % 2**31, nq=nq, nk=nk)
    ours, theirs = make_option(option, g, 2, 4, nq, nk)
    rules = RULES[rule]
    ref = oracle(q, k, v, do, **rules, **theirs)
    got = run(q, k, v, do, **rules, **ours)
    assert_matches(got, ref, ["out", "lse", "max_logit"], FWD_TOL)
    assert_matches(got, ref, [n for n in got if n.startswith("d")], BWD_TOL)
    assert isinstance(got["out"], torch.Tensor) and got["out"].dtype == torch.float64
    if "dsinks" in got:
        assert got["dsinks"].shape == (4,)
    if "dbias" in got:
        assert got["dbias"].shape == ours["bias"].shape


def combined(g, b, h, nq, nk):
    ours, theirs = {}, {}
    for name in ("sinks", "alibi_bh", "bias_h1", "mask_11", "documents", "mask_mod"):
        o, t = make_option(name, g, b, h, nq, nk)
        ours.update(o)
        theirs.update(t)
    return ours, theirs


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("layout", ["bnhd", "bhnd"])
@pytest.mark.parametrize("shape", [(24, 24), (20, 27)], ids=lambda s: "nq%d-nk%d" % s)
@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_all_options_together(rule, layout, shape, kind):
    nq, nk = shape
    (q, k, v, do), g = inputs(7 + nq, nq=nq, nk=nk, h=6, hk=2)
    ours, theirs = combined(g, 2, 6, nq, nk)    # mask_mod's operators work on NumPy arrays and tensors alike
    rules = RULES[rule]
    ref = oracle(q, k, v, do, **rules, **theirs)
    tr = (lambda x: x) if layout == "bnhd" else (lambda x: x.transpose(1, 2))
    args = [tr(x) for x in (q, k, v, do)]
    if kind == "numpy":
        args = [x.numpy() for x in args]
        ours = {n: (x.numpy() if torch.is_tensor(x) else tuple(y.numpy() for y in x) if isinstance(x, tuple) else x)
                for n, x in ours.items()}
    got = run(*args, layout=layout, **rules, **ours)
    if kind == "numpy":
        assert all(isinstance(x, np.ndarray) for x in got.values())
    got["out"], got["dq"] = tr(torch.as_tensor(got["out"])), tr(torch.as_tensor(got["dq"]))
    got["dk"], got["dv"] = tr(torch.as_tensor(got["dk"])), tr(torch.as_tensor(got["dv"]))
    assert_matches(got, ref, ["out", "lse", "max_logit"], FWD_TOL)
    assert_matches(got, ref, ["dq", "dk", "dv", "dsinks", "dbias"], BWD_TOL)


# ---------------------------------------------------------------- the ring: every member count and deal


@pytest.mark.parametrize("partition", ["contiguous", "zigzag", "striped"])
@pytest.mark.parametrize("ring_size", [2, 3, 4])
@pytest.mark.parametrize("causal", [None, "bottom-right", "top-left"])
def test_ring_matches_one_member(partition, ring_size, causal):
    (q, k, v, do), g = inputs(11 + ring_size, nq=24, nk=24, h=4, hk=1)
    ours, _ = combined(g, 2, 4, 24, 24)
    ours["bias"] = torch.randn(2, 4, 24, 24, generator=g, dtype=torch.float64)
    base = run(q, k, v, do, causal=causal, window=(6, 3), softcap=3.0, **ours)
    got = run(q, k, v, do, causal=causal, window=(6, 3), softcap=3.0, ring_size=ring_size, partition=partition,
              **ours)
    for n in base:
        assert err(got[n], base[n]) <= 1e-12, n


# ---------------------------------------------------------------- varlen


@pytest.mark.parametrize("causal", [None, "bottom-right", "top-left"])
@pytest.mark.parametrize("ring_size,partition", [(1, "contiguous"), (3, "contiguous"), (2, "zigzag"),
                                                 (4, "striped")])
def test_varlen(causal, ring_size, partition):
    cq, ck = [0, 5, 12, 18], [0, 7, 9, 21]
    (q, k, v, do), g = inputs(3, b=1, nq=18, nk=21, h=4, hk=2)
    sl = torch.rand(4, generator=g, dtype=torch.float64)
    sinks = torch.randn(4, generator=g, dtype=torch.float64)
    bias = torch.randn(1, 4, 18, 21, generator=g, dtype=torch.float64)
    docs = (_doc_ids(18, [2, 5, 9, 12]), _doc_ids(21, [3, 7, 9, 14]))

    def mm(b_, h_, qi, ki):
        return (qi * 7 + ki * 3 + h_) % 5 != 0

    ours = dict(alibi_slopes=sl, sinks=sinks, bias=bias, document_ids=docs, mask_mod=mm)
    ref = oracle(q, k, v, do, causal=causal, alibi=sl, sinks=sinks, bias=bias, docs=docs, mask_mod=mm, cu_q=cq,
                 cu_k=ck)
    q3, k3, v3, do3 = (x[0] for x in (q, k, v, do))     # [total, h, d]
    opts = dict(causal=causal, cu_seqlens_q=cq, cu_seqlens_k=ck, ring_size=ring_size, partition=partition, **ours)
    out, lse, ml = ringattn.attention(q3, k3, v3, return_max_logit=True, **opts)
    dq, dk, dv, ds, db = ringattn.attention_backward(q3, k3, v3, out, lse, do3, **opts)
    got = dict(out=out[None], lse=lse[None], max_logit=ml[None], dq=dq[None], dk=dk[None], dv=dv[None],
               dsinks=ds, dbias=db)
    assert lse.shape == (4, 18) and ml.shape == (4, 18)
    assert_matches(got, ref, ["out", "lse", "max_logit"], FWD_TOL)
    assert_matches(got, ref, ["dq", "dk", "dv", "dsinks", "dbias"], BWD_TOL)


# ---------------------------------------------------------------- storage types


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_storage(dtype):
    """f16 / bf16 inputs and bias, f32 compute: the oracle in f64 on the same stored values"""
    dt = getattr(torch, dtype)
    (q, k, v, do), g = inputs(5, nq=20, nk=24, dtype=dt)
    ours, theirs = combined(g, 2, 4, 20, 24)
    ours["bias"] = ours["bias"].to(dt)
    theirs["bias"] = ours["bias"].double()
    ref = oracle(*(x.double() for x in (q, k, v, do)), causal="bottom-right", **theirs)
    got = run(q, k, v, do, causal="bottom-right", compute="f32", **ours)
    assert got["dbias"].dtype == torch.float64 and got["dbias"].shape == ours["bias"].shape
    assert_matches(got, ref, ["out", "lse", "max_logit"], 5e-7)       # f32 arithmetic: measured 7e-8
    assert_matches(got, ref, ["dq", "dk", "dv", "dsinks", "dbias"], 1e-6)   # measured 1.3e-7
    # and stored back in the inputs' type
    out, lse = ringattn.attention(q, k, v, causal="bottom-right", compute="f32", out_dtype=dt, **ours)
    assert out.dtype == dt
    assert err(out.double(), ref["out"]) <= (8e-3 if dtype == "bfloat16" else 1e-3)


# ---------------------------------------------------------------- rows that see no key


@pytest.mark.parametrize("with_sinks", [False, True])
def test_empty_rows(with_sinks):
    (q, k, v, do), g = inputs(9, nq=12, nk=12)
    m = torch.rand(2, 4, 12, 12, generator=g) < 0.6
    m[0, 1, 3] = False           # one row of one head sees nothing
    m[1, :, 7] = False           # one row of every head
    sinks = torch.randn(4, generator=g, dtype=torch.float64) if with_sinks else None
    got = run(q, k, v, do, mask=m, sinks=sinks)
    ref = oracle(q, k, v, do, mask=m, sinks=sinks)
    assert_matches(got, ref, ["out", "lse", "max_logit"], FWD_TOL)
    assert_matches(got, ref, [n for n in got if n.startswith("d")], BWD_TOL)
    assert torch.all(got["out"][0, 3, 1] == 0) and torch.all(got["out"][1, 7] == 0)
    assert got["max_logit"][0, 1, 3] == -math.inf
    if with_sinks:
        assert got["lse"][0, 1, 3] == sinks[1] and torch.equal(got["lse"][1, :, 7], sinks)
        for x in got.values():
            assert not torch.isnan(x).any() and (torch.isfinite(x).all() or x is got["max_logit"])
    else:
        assert got["lse"][0, 1, 3] == -math.inf
    for n in ("dq", "dk", "dv") + (("dsinks",) if with_sinks else ()):
        assert torch.isfinite(got[n]).all(), n


def test_large_sinks_no_nan():
    """a sink far above every score, and far below: finite results, no NaN"""
    (q, k, v, do), g = inputs(10, nq=16, nk=16)
    for sinks in (torch.tensor([80.0, -80.0, 0.0, 700.0], dtype=torch.float64),):
        got = run(q, k, v, do, sinks=sinks, causal="top-left")
        ref = oracle(q, k, v, do, sinks=sinks, causal="top-left")
        for x in got.values():
            assert torch.isfinite(x).all()
        assert_matches(got, ref, ["out", "lse", "max_logit"], FWD_TOL)
        assert_matches(got, ref, ["dq", "dk", "dv", "dsinks"], BWD_TOL)


# ---------------------------------------------------------------- FlexAttention as the oracle


def _flex():
    try:
        from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention
    except ImportError:
        pytest.skip("this PyTorch has no FlexAttention")
    return flex_attention, create_block_mask, AuxRequest


def flex(q, k, v, mask_mod=None, score_mod=None, b=2, h=4, scale=None):
    """FlexAttention in eager float64 on [b, n, h, d] tensors -> out [b, nq, h, dv], lse [b, h, nq]
    (its max_scores are not computed on the CPU)"""
    flex_attention, create_block_mask, AuxRequest = _flex()
    nq, nk = q.shape[1], k.shape[1]
    bm = create_block_mask(mask_mod, b, h, nq, nk, device="cpu") if mask_mod is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, aux = flex_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), score_mod=score_mod,
                                  block_mask=bm, scale=scale, enable_gqa=q.shape[2] != k.shape[2],
                                  return_aux=AuxRequest(lse=True))
    return {"out": out.transpose(1, 2), "lse": aux.lse}


def _flex_cases(nq, nk, g):
    docs = _doc_ids(max(nq, nk), [10, 11, 30, 47])
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=torch.float64)
    bias = torch.randn(2, 4, nq, nk, generator=g, dtype=torch.float64)

    def causal(b, h, qi, ki):
        return qi >= ki

    def sliding(b, h, qi, ki):
        return (qi >= ki) & (qi - ki <= 16)

    def prefix_lm(b, h, qi, ki):
        return (ki < 9) | (qi >= ki)

    def document(b, h, qi, ki):
        return docs[qi] == docs[ki]

    def doc_causal(b, h, qi, ki):
        return (docs[qi] == docs[ki]) & (qi >= ki)

    def alibi(s, b, h, qi, ki):
        return s - slopes[h] * (qi + nk - nq - ki).abs()

    def add_bias(s, b, h, qi, ki):
        return s + bias[b, h, qi, ki]

    return {
        "causal": (dict(mask_mod=causal), dict(mask_mod=causal)),
        "sliding": (dict(mask_mod=sliding), dict(mask_mod=sliding)),
        "prefix_lm": (dict(mask_mod=prefix_lm), dict(mask_mod=prefix_lm)),
        "document_mask_mod": (dict(mask_mod=document), dict(mask_mod=document)),
        "document_ids": (dict(document_ids=(docs[:nq], docs[:nk])), dict(mask_mod=document)),
        "document_ids_causal": (dict(document_ids=(docs[:nq], docs[:nk]), causal="top-left"),
                                dict(mask_mod=doc_causal)),
        "alibi": (dict(alibi_slopes=slopes), dict(score_mod=alibi)),
        "alibi_causal": (dict(alibi_slopes=slopes, causal="top-left"), dict(score_mod=alibi, mask_mod=causal)),
        "bias": (dict(bias=bias), dict(score_mod=add_bias)),
        "bias_sliding": (dict(bias=bias, mask_mod=sliding), dict(score_mod=add_bias, mask_mod=sliding)),
    }


@pytest.mark.parametrize("case", ["causal", "sliding", "prefix_lm", "document_mask_mod", "document_ids",
                                  "document_ids_causal", "alibi", "alibi_causal", "bias", "bias_sliding"])
@pytest.mark.parametrize("shape", [(40, 40), (33, 52)], ids=lambda s: "nq%d-nk%d" % s)
def test_against_flex_attention(case, shape):
    nq, nk = shape
    (q, k, v, _), g = inputs(21, nq=nq, nk=nk, h=4, hk=2)
    ours, theirs = _flex_cases(nq, nk, g)[case]
    ref = flex(q, k, v, **theirs)
    for ring_size, partition in ((1, "contiguous"), (3, "zigzag"), (4, "striped")):
        out, lse = ringattn.attention(q, k, v, ring_size=ring_size, partition=partition, **ours)
        assert_matches({"out": out, "lse": lse}, ref, ["out", "lse"], FWD_TOL)


def test_the_oracle_agrees_with_flex_attention():
    """the two oracles of this file agree with each other (so neither is wrong in the same way as
    the library)"""
    nq, nk = 33, 52
    (q, k, v, _), g = inputs(21, nq=nq, nk=nk, h=4, hk=2)
    slopes = torch.tensor([0.5, 0.25, 0.125, 0.0625], dtype=torch.float64)
    bias = torch.randn(2, 4, nq, nk, generator=g, dtype=torch.float64)
    docs = _doc_ids(nk, [10, 11, 30, 47])

    def mm(b, h, qi, ki):
        return (docs[qi] == docs[ki]) & (ki <= qi + nk - nq) & ((qi + h) % 5 != 0)

    def sm(s, b, h, qi, ki):
        return s + bias[b, h, qi, ki] - slopes[h] * (qi + nk - nq - ki).abs()

    ref = flex(q, k, v, mask_mod=mm, score_mod=sm)
    mine = oracle(q, k, v, mask_mod=mm, alibi=slopes, bias=bias)
    assert_matches(mine, ref, ["out", "lse"], 1e-13)


# ---------------------------------------------------------------- mask_mod: what it is given, what it may raise


def test_mask_mod_argument_kinds():
    seen = []

    def record(b, h, qi, ki):
        seen.append((type(b), type(qi), tuple(b.shape), tuple(h.shape), tuple(qi.shape), tuple(ki.shape),
                     qi.dtype, ki.dtype))
        return qi >= ki

    (q, k, v, _), _ = inputs(1, nq=10, nk=10)
    ringattn.attention(q, k, v, mask_mod=record)
    assert seen and all(s[0] is torch.Tensor and s[1] is torch.Tensor and s[2] == () and s[3] == () and
                        s[4][1] == 1 and s[5][0] == 1 and s[6] == torch.int64 and s[7] == torch.int64 for s in seen)
    seen.clear()
    ringattn.attention(q.numpy(), k.numpy(), v.numpy(), mask_mod=record)
    assert seen and all(s[0] is np.ndarray and s[1] is np.ndarray and s[2] == () and s[6] == np.int64 for s in seen)


def test_mask_mod_same_with_threads():
    (q, k, v, do), _ = inputs(2, b=2, nq=64, nk=64)

    def mm(b, h, qi, ki):
        return ((qi - ki) % 4 != 1) & (ki <= qi + b)

    a = run(q, k, v, do, mask_mod=mm, threads=1)
    b = run(q, k, v, do, mask_mod=mm, threads=2)
    for n in a:
        assert torch.equal(a[n], b[n]), n


class Boom(Exception):
    pass


@pytest.mark.parametrize("threads", [1, 2])
def test_mask_mod_exception_is_raised_again(threads):
    (q, k, v, do), _ = inputs(3, nq=32, nk=32)
    calls = []

    def bad(b, h, qi, ki):
        calls.append(1)
        if len(calls) == 3:
            raise Boom("from the mask")
        return qi >= ki

    with pytest.raises(Boom, match="from the mask"):
        ringattn.attention(q, k, v, mask_mod=bad, threads=threads)
    calls.clear()
    out, lse = ringattn.attention(q, k, v, causal="top-left")
    with pytest.raises(Boom):
        ringattn.attention_backward(q, k, v, out, lse, do, mask_mod=bad, threads=threads)


def test_mask_mod_bad_results():
    (q, k, v, _), _ = inputs(4, nq=8, nk=8)
    with pytest.raises(TypeError, match="booleans"):
        ringattn.attention(q, k, v, mask_mod=lambda b, h, qi, ki: qi - ki)
    with pytest.raises(ValueError, match="broadcast"):
        ringattn.attention(q, k, v, mask_mod=lambda b, h, qi, ki: torch.ones(3, 5, dtype=torch.bool))
    # a plain bool is a mask that broadcasts
    out, _ = ringattn.attention(q, k, v, mask_mod=lambda b, h, qi, ki: True)
    assert err(out, ringattn.attention(q, k, v)[0]) == 0


# ---------------------------------------------------------------- refusals


def _refused(match, **opts):
    (q, k, v, do), _ = inputs(6, nq=8, nk=10, h=4, hk=2)
    with pytest.raises(ringattn.RingattnError, match=match):
        ringattn.attention(q, k, v, **opts)
    out, lse = ringattn.attention(q, k, v)
    with pytest.raises(ringattn.RingattnError, match=match):
        ringattn.attention_backward(q, k, v, out, lse, do, **opts)


def test_refusals():
    z = torch.float64
    _refused("sinks", sinks=torch.zeros(3, dtype=z))
    _refused("sinks", sinks=torch.zeros(4, 1, dtype=z))
    _refused("alibi_slopes", alibi_slopes=torch.ones(2, dtype=z))
    _refused("alibi_slopes", alibi_slopes=torch.ones(3, 4, dtype=z))
    _refused("bias", bias=torch.zeros(3, 4, 8, 10, dtype=z))
    _refused("bias", bias=torch.zeros(2, 2, 8, 10, dtype=z))
    _refused("bias", bias=torch.zeros(8, 11, dtype=z))
    _refused("bias", bias=torch.zeros(4, 8, 10, dtype=z))
    _refused("mask", mask=torch.ones(2, 4, 9, 10, dtype=torch.bool))
    _refused("mask", mask=torch.ones(8, 10))                     # not boolean
    _refused("document_ids", document_ids=torch.zeros(8, dtype=torch.int64))   # nq != nk: a pair is needed
    _refused("document_ids", document_ids=(torch.zeros(8, dtype=torch.int64), torch.zeros(9, dtype=torch.int64)))
    _refused("mask_mod", mask_mod=3)
    (q, k, v, _), _ = inputs(6, nq=16, nk=16, h=4, hk=4)
    for bad in (dict(sinks=torch.zeros(4, dtype=z)), dict(alibi_slopes=torch.ones(4, dtype=z)),
                dict(mask=torch.ones(16, 16, dtype=torch.bool)), dict(document_ids=torch.zeros(16, dtype=torch.int64))):
        with pytest.raises(ringattn.RingattnError):
            ringattn.attention(q, k, v, segments=[8], dilations=[2], **bad)


def test_refusal_sentences_name_the_argument():
    (q, k, v, _), _ = inputs(6, nq=8, nk=10, h=4, hk=2)
    with pytest.raises(ringattn.RingattnError) as e:
        ringattn.attention(q, k, v, bias=torch.zeros(2, 3, 8, 10, dtype=torch.float64))
    assert "bias" in str(e.value) and e.value.status == -2
    with pytest.raises(ringattn.RingattnError) as e:
        ringattn.attention(q, k, v, sinks=[0.0] * 5)
    assert "sinks" in str(e.value) and "4" in str(e.value)


# ---------------------------------------------------------------- check(), steps(), the layer


def gpt_oss(seed, dtype=torch.bfloat16):
    """a gpt-oss attention block: GQA 8:1 (64 q heads, 8 k/v heads in the model; 16:2 here),
    a sliding window of 128 keys, one sink per head"""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 16, 300, 32, generator=g).to(dtype)
    k = torch.randn(1, 2, 300, 32, generator=g).to(dtype)
    v = torch.randn(1, 2, 300, 32, generator=g).to(dtype)
    sinks = torch.randn(16, generator=g) + 3.0   # learned sinks: about e^3 of the keys' mass
    return q, k, v, sinks


def _port(q, k, v, sinks, window=128, use_sinks=True):
    """a port of the gpt-oss block written in plain PyTorch f32 (SDPA layout)"""
    b, h, n, d = q.shape
    kk = k.float().repeat_interleave(h // k.shape[1], 1)
    vv = v.float().repeat_interleave(h // k.shape[1], 1)
    s = (q.float() @ kk.transpose(-1, -2)) / math.sqrt(d)
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    s = s.masked_fill(~((j <= i) & (j >= i - window)), -math.inf)
    if use_sinks:
        s = torch.cat([s, sinks.float().view(1, h, 1, 1).expand(b, h, n, 1)], -1)
    lse = torch.logsumexp(s, -1)
    out = torch.softmax(s, -1)[..., :n] @ vv
    return out.to(q.dtype), lse


def test_check_gpt_oss_block():
    q, k, v, sinks = gpt_oss(0)
    out, lse = _port(q, k, v, sinks)
    reports = ringattn.check(q, k, v, out=out, lse=lse, layout="bhnd", causal="top-left", window=(128, 0),
                             sinks=sinks)
    assert reports["out"].passed and reports["lse"].passed
    bad_out, bad_lse = _port(q, k, v, sinks, use_sinks=False)     # a port that forgot the sinks
    with pytest.raises(AssertionError, match="out"):
        ringattn.check(q, k, v, out=bad_out, layout="bhnd", causal="top-left", window=(128, 0), sinks=sinks)
    with pytest.raises(AssertionError, match="lse"):
        ringattn.check(q, k, v, lse=bad_lse, layout="bhnd", causal="top-left", window=(128, 0), sinks=sinks)
    wrong_window, _ = _port(q, k, v, sinks, window=64)
    with pytest.raises(AssertionError):
        ringattn.check(q, k, v, out=wrong_window, layout="bhnd", causal="top-left", window=(128, 0), sinks=sinks)


def test_check_gradients_and_max_logit():
    """check() judges dsinks, dbias and max_logit against its own reference"""
    (q, k, v, do), g = inputs(8, nq=20, nk=20, dtype=torch.float32)
    sinks = torch.randn(4, generator=g, dtype=torch.float64)
    bias = torch.randn(1, 4, 20, 20, generator=g, dtype=torch.float64).float()
    ref = oracle(*(x.double() for x in (q, k, v, do)), causal="top-left", sinks=sinks, bias=bias.double())
    port = {n: x.float() for n, x in ref.items()}    # a good f32 port: the truth rounded to f32
    opts = dict(causal="top-left", sinks=sinks, bias=bias)
    reps = ringattn.check(q, k, v, dout=do, **{n: port[n] for n in ("out", "lse", "max_logit", "dq", "dk", "dv",
                                                                      "dsinks", "dbias")}, **opts)
    assert set(reps) == {"out", "lse", "max_logit", "dq", "dk", "dv", "dsinks", "dbias"}
    for name in ("dsinks", "dbias", "max_logit"):
        broken = port[name].clone()
        broken.view(-1)[1] += 0.05 * float(broken[torch.isfinite(broken)].abs().max())
        with pytest.raises(AssertionError, match=name):
            ringattn.check(q, k, v, dout=do, **{name: broken}, **opts)
    with pytest.raises(TypeError, match="dsinks"):
        ringattn.check(q, k, v, dout=do, dsinks=port["dsinks"], causal="top-left")


def test_steps_with_options():
    (q, k, v, do), g = inputs(12, nq=24, nk=24)
    ours, _ = combined(g, 2, 4, 24, 24)
    out, lse = ringattn.attention(q, k, v, causal="bottom-right", **ours)
    recs = ringattn.steps(q, k, v, ring_size=3, partition="zigzag", causal="bottom-right", **ours)
    for r in recs:
        if r.step == 2:
            assert err(r.out, out[:, r.q_positions]) <= FWD_TOL
            assert err(r.lse, lse[:, :, r.q_positions]) <= FWD_TOL
    brecs = ringattn.steps_backward(q, k, v, out, lse, do, ring_size=3, partition="zigzag", causal="bottom-right",
                                   **ours)
    dq = ringattn.attention_backward(q, k, v, out, lse, do, causal="bottom-right", **ours)[0]
    for r in brecs:
        if r.step == 2:
            assert err(r.dq, dq[:, r.q_positions]) <= BWD_TOL
    # check_steps of the library's own f32 records
    mine = ringattn.steps(q.float(), k.float(), v.float(), ring_size=3, partition="zigzag", causal="bottom-right",
                          compute="f32", out_dtype="float32", **ours)
    ringattn.check_steps(q.float(), k.float(), v.float(), {(r.member, r.step): {"out": r.out, "lse": r.lse}
                                                           for r in mine},
                         ring_size=3, partition="zigzag", causal="bottom-right", **ours)


def test_layer_with_options():
    """the layer's attention takes the options: against projections, the oracle and
    LayerNorm written in PyTorch, gradients by autograd"""
    g = torch.Generator().manual_seed(4)
    b, n, e, heads = 2, 12, 16, 4
    x = torch.randn(b, n, e, generator=g, dtype=torch.float64)
    w = {nm: torch.randn(e, e, generator=g, dtype=torch.float64) / 4 for nm in ("wq", "wk", "wv", "wo")}
    dy = torch.randn(b, n, e, generator=g, dtype=torch.float64)
    sinks = torch.randn(heads, generator=g, dtype=torch.float64)
    bias = torch.randn(1, heads, n, n, generator=g, dtype=torch.float64)

    def mm(b_, h_, qi, ki):
        return (ki <= qi) & ((qi - ki + h_) % 4 != 3)

    opts = dict(sinks=sinks, bias=bias, mask_mod=mm, alibi_slopes=torch.full((heads,), 0.1, dtype=torch.float64))
    xs = x.clone().requires_grad_(True)
    ws = {nm: t.clone().requires_grad_(True) for nm, t in w.items()}
    y_ref = _layer_ref(xs, ws, heads, sinks, bias, mm, opts["alibi_slopes"])
    (y_ref * dy).sum().backward()
    y = ringattn.layer_forward(x, w, num_heads=heads, **opts)
    assert err(y, y_ref) <= FWD_TOL
    dx, _, _, dw = ringattn.layer_backward(x, w, dy, num_heads=heads, **opts)
    assert err(dx, xs.grad) <= BWD_TOL
    for nm in w:
        assert err(dw[nm], ws[nm].grad) <= BWD_TOL, nm


def _layer_ref(x, w, heads, sinks, bias, mask_mod, slopes):
    """the layer of docs/layer.md in differentiable PyTorch, its attention written out as oracle()'s"""
    b, n, e = x.shape
    d = e // heads
    q, k, v = ((x @ w[nm].T).reshape(b, n, heads, d).permute(0, 2, 1, 3) for nm in ("wq", "wk", "wv"))
    s = (q @ k.transpose(-1, -2)) / math.sqrt(d) + bias
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    s = s - slopes.view(1, heads, 1, 1) * (i - j).abs()
    allowed = mask_mod(torch.arange(b).view(b, 1, 1, 1), torch.arange(heads).view(1, heads, 1, 1), i, j)
    s = s.masked_fill(~allowed, -math.inf)
    lse = torch.logsumexp(torch.cat([s, sinks.view(1, heads, 1, 1).expand(b, heads, n, 1)], -1), -1)
    a = (torch.exp(s - lse[..., None]) @ v).permute(0, 2, 1, 3).reshape(b, n, e)
    z = torch.nn.functional.layer_norm(a, (e,), eps=1e-5)
    return z @ w["wo"].T


def test_options_struct_layout():
    """the ctypes mirror of ringattn_py_options matches the compiled struct field for field"""
    from ringattn import _lib
    assert _lib.layout_mismatches(_lib.lib, _lib.Options, "ringattn_py_options_layout") == []
