"""The repository's golden cases (reference/golden, written by PyTorch in float64): every
attention case forward and backward, and the layer cases, through the Python API."""
import numpy as np
import pytest

import ringattn

from conftest import GOLDEN, torch


def manifest(path):
    cases = []
    for line in path.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, *fields = line.split()
        cases.append((name, dict(f.split("=", 1) for f in fields)))
    return cases


def ints(s):
    return None if s == "-" else [int(x) for x in s.split(",")]


def options(m):
    o = dict(causal=None if m["causal"] == "none" else m["causal"], scale=float(m["scale"]) or None,
             segments=ints(m["segments"]), dilations=ints(m["dilations"]), softcap=float(m["softcap"]),
             cu_seqlens_q=ints(m["cu_seqlens_q"]), cu_seqlens_k=ints(m["cu_seqlens_k"]))
    if m["window"] != "-":
        o["window"] = tuple(ints(m["window"]))
    return o


def load(case, name):
    a = np.load(GOLDEN / case / ("%s.npy" % name))
    if a.dtype == np.uint16:          # bf16 bits (NumPy has no bfloat16)
        if torch is None:
            pytest.skip("bf16 inputs need torch here")
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return a


CASES = manifest(GOLDEN / "manifest.txt")


@pytest.mark.parametrize("name,m", CASES, ids=[c[0] for c in CASES])
def test_golden_attention(name, m):
    opts = options(m)
    q, k, v, dout = (load(name, n) for n in ("q", "k", "v", "dout"))
    tol = dict(atol=float(m["atol"]), rtol=float(m["rtol"]))
    for partition in m["partitions"].split(","):
        for ring in (1, 3):
            out, lse = ringattn.attention(q, k, v, ring_size=ring, partition=partition, **opts)
            grads = ringattn.attention_backward(q, k, v, out, lse, dout, ring_size=ring, partition=partition, **opts)
            for what, got in zip(("out", "lse", "dq", "dk", "dv"), (out, lse) + grads):
                r = ringattn.compare(got, load(name, what), what=what, **tol)
                assert r.passed, "%s %s ring %d %s:\n%s" % (name, partition, ring, what, r)


LAYER = manifest(GOLDEN / "layer" / "manifest.txt")
_W = ("wq", "wk", "wv", "bq", "bk", "bv", "wqkv", "bqkv", "wo", "bo", "ln_gamma", "ln_beta")


@pytest.mark.parametrize("name,m", LAYER, ids=[c[0] for c in LAYER])
def test_golden_layer(name, m):
    d = GOLDEN / "layer" / name
    w = {n: np.load(d / ("%s.npy" % n)) for n in _W if (d / ("%s.npy" % n)).exists()}
    cross = m["self"] == "0"
    x = {n: np.load(d / ("%s.npy" % n)) for n in ("x_q", "x_k", "x_v", "dy") if (d / ("%s.npy" % n)).exists()}
    opts = dict(causal=None if m["causal"] == "none" else m["causal"], segments=ints(m["segments"]),
                dilations=ints(m["dilations"]))
    kw = dict(num_heads=int(m["H"]), layer_norm=m["layer_norm"] == "1", ln_eps=float(m["ln_eps"]), **opts)
    if cross:
        kw.update(x_k=x["x_k"], x_v=x["x_v"])
    tol = dict(atol=1e-10, rtol=1e-9)
    for ring in ints(m["rings"]):
        y = ringattn.layer_forward(x["x_q"], w, ring_size=ring, **kw)
        assert ringattn.compare(y, np.load(d / "y.npy"), **tol), name
        dx_q, dx_k, dx_v, g = ringattn.layer_backward(x["x_q"], w, x["dy"], ring_size=ring, **kw)
        assert ringattn.compare(dx_q, np.load(d / "dx_q.npy"), **tol)
        if cross:
            assert ringattn.compare(dx_k, np.load(d / "dx_k.npy"), **tol)
            assert ringattn.compare(dx_v, np.load(d / "dx_v.npy"), **tol)
        else:
            assert dx_k is None and dx_v is None
        assert set(g) == set(w)
        for n, t in g.items():
            r = ringattn.compare(t, np.load(d / ("d%s.npy" % n)), **tol)
            assert r.passed, "%s d%s:\n%s" % (name, n, r)


def test_layer_errors():
    d = GOLDEN / "layer" / "example"
    w = {n: np.load(d / ("%s.npy" % n)) for n in ("wqkv", "bqkv", "wo", "bo")}
    x = np.load(d / "x_q.npy")
    with pytest.raises(ringattn.RingattnError) as e:
        ringattn.layer_forward(x, w, num_heads=3)              # 16 is not a multiple of 3
    assert e.value.status == -2
    with pytest.raises(ringattn.RingattnError):
        ringattn.layer_forward(x, dict(w, wq=w["wo"]), num_heads=2)   # both weight layouts
    with pytest.raises(ringattn.RingattnError):
        ringattn.layer_forward(x, dict(w, wx=w["wo"]), num_heads=2)   # an unknown name
