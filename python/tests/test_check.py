"""ringattn.compare / check / plan / errors, and a deliberately broken port that check must
catch and locate."""
import math

import numpy as np
import pytest

import ringattn

from conftest import needs_torch, rand, torch


def port_f32(q, k, v, causal=None, bug=None):
    """A 'port' under test: plain NumPy f32 attention on [b, n, h, d], GQA, both causal alignments.
    bug='causal-off-by-one' lets every query see one key of the future (j <= i + off + 1);
    bug='row' corrupts one output row."""
    q, k, v = (x.astype(np.float32) for x in (q, k, v))
    b, nq, h, d = q.shape
    nk, hk = k.shape[1], k.shape[2]
    out = np.zeros((b, nq, h, v.shape[3]), np.float32)
    lse = np.full((b, h, nq), -np.inf, np.float32)
    off = 0 if causal == "top-left" else nk - nq
    i, j = np.arange(nq)[:, None], np.arange(nk)[None, :]
    extra = 1 if bug == "causal-off-by-one" else 0
    mask = (j <= i + off + extra) if causal else np.ones((nq, nk), bool)
    for bi in range(b):
        for hi in range(h):
            kh = hi // (h // hk)
            s = (q[bi, :, hi] @ k[bi, :, kh].T) * np.float32(1 / math.sqrt(d))
            s = np.where(mask, s, -np.inf)
            m = s.max(axis=1, keepdims=True)
            m = np.where(np.isfinite(m), m, 0)
            p = np.exp(s - m)
            l = p.sum(axis=1, keepdims=True)
            out[bi, :, hi] = np.where(l > 0, p @ v[bi, :, kh] / np.where(l > 0, l, 1), 0)
            with np.errstate(divide="ignore"):
                lse[bi, hi] = np.where(l[:, 0] > 0, np.log(l[:, 0]) + m[:, 0], -np.inf)
    if bug == "row":
        out[1, 5, 2] *= 1.01
    return out, lse


@pytest.fixture
def case(rng):
    return rand(rng, 2, 12, 4, 8), rand(rng, 2, 16, 2, 8), rand(rng, 2, 16, 2, 8)


def test_check_passes_a_correct_port(case):
    q, k, v = case
    out, lse = port_f32(q, k, v, causal="bottom-right")
    reports = ringattn.check(q, k, v, out=out, lse=lse, causal="bottom-right")
    assert set(reports) == {"out", "lse"}
    assert all(reports.values()) and all(r.policy == "b" for r in reports.values())
    assert reports["out"].bound > 0 and reports["out"].max_abs <= reports["out"].bound


def test_check_catches_and_locates_a_broken_row(case):
    q, k, v = case
    out, lse = port_f32(q, k, v, causal="bottom-right", bug="row")
    with pytest.raises(AssertionError) as e:
        ringattn.check(q, k, v, out=out, lse=lse, causal="bottom-right")
    msg = str(e.value)
    assert "1 of 2 tensors outside tolerance (out)" in msg and "FAIL (outside tolerance)" in msg
    assert "(b=1, n=5, h=2, d=" in msg
    r = ringattn.compare(out, ringattn.attention(q, k, v, causal="bottom-right")[0],
                         baseline=ringattn.attention(q, k, v, causal="bottom-right", compute="f32",
                                                     out_dtype="f32")[0])
    assert not r and r.where[:3] == (1, 5, 2) and {m.index[:3] for m in r.mismatches} == {(1, 5, 2)}


def test_check_catches_the_wrong_causal_alignment(case):
    """an off-by-one mask fails on every row it changes (here the last keys are never masked,
    so it is the rows 0..nq-2 that see one key too many)"""
    q, k, v = case
    out, lse = port_f32(q, k, v, causal="top-left", bug="causal-off-by-one")
    with pytest.raises(AssertionError) as e:
        ringattn.check(q, k, v, out=out, lse=lse, causal="top-left")
    assert "2 of 2 tensors outside tolerance (out, lse)" in str(e.value)
    # and a correct top-left port checked as bottom-right (the other alignment) fails too
    good, _ = port_f32(q, k, v, causal="top-left")
    with pytest.raises(AssertionError):
        ringattn.check(q, k, v, out=good, causal="bottom-right")


def test_check_layout_bhnd_reports_in_callers_axes(case):
    q, k, v = (x.transpose(0, 2, 1, 3) for x in case)
    out, lse = port_f32(*case, causal="bottom-right", bug="row")
    out = out.transpose(0, 2, 1, 3)
    with pytest.raises(AssertionError) as e:
        ringattn.check(q, k, v, out=out, layout="bhnd", causal="bottom-right")
    assert "(b=1, h=2, n=5, d=" in str(e.value)


def test_check_gradients_and_the_2_percent_dq(rng):
    """a classic port bug: bottom-right causal, nq > nk, dq off by 2 % of its max at one element;
    check computes the baseline with the same mask, so it fails"""
    q, k, v = rand(rng, 1, 24, 2, 8), rand(rng, 1, 16, 2, 8), rand(rng, 1, 16, 2, 8)
    dout = rand(rng, 1, 24, 2, 8)
    opts = dict(causal="bottom-right")
    out, lse = ringattn.attention(q, k, v, compute="f32", out_dtype="f32", **opts)
    dq, dk, dv = ringattn.attention_backward(q, k, v, out, lse, dout, compute="f32", out_dtype="f32", **opts)
    rep = ringattn.check(q, k, v, out=out, lse=lse, dout=dout, dq=dq, dk=dk, dv=dv, **opts)
    assert set(rep) == {"out", "lse", "dq", "dk", "dv"} and all(rep.values())
    bad = dq.copy()
    bad[0, 20, 1, 3] += 0.02 * np.abs(dq).max()
    with pytest.raises(AssertionError) as e:
        ringattn.check(q, k, v, dout=dout, dq=bad, **opts)
    assert "(b=0, n=20, h=1, d=3)" in str(e.value)
    with pytest.raises(TypeError):
        ringattn.check(q, k, v, dq=dq, **opts)              # gradients need dout
    with pytest.raises(TypeError):
        ringattn.check(q, k, v, out=out, compute="f32")     # the reference is always f64


@pytest.mark.parametrize("conv,value", [("+inf", math.inf), ("0", 0.0), ("any", 3.5)])
def test_empty_lse_conventions(rng, conv, value):
    """bottom-right causal with nq > nk: the first nq - nk rows see no key"""
    q, k, v = rand(rng, 1, 10, 2, 4), rand(rng, 1, 6, 2, 4), rand(rng, 1, 6, 2, 4)
    out, lse = port_f32(q, k, v, causal="bottom-right")
    assert np.all(np.isneginf(lse[:, :, :4])) and np.all(out[:, :4] == 0)
    theirs = lse.copy()
    theirs[:, :, :4] = value
    with pytest.raises(AssertionError) as e:
        ringattn.check(q, k, v, lse=theirs, causal="bottom-right")
    if conv != "any":
        assert "passes empty_lse=%r" % conv in str(e.value)         # the hint names the convention
    rep = ringattn.check(q, k, v, lse=theirs, causal="bottom-right", empty_lse=conv)
    assert rep["lse"].passed
    ref = ringattn.attention(q, k, v, causal="bottom-right")[1]
    r = ringattn.compare(theirs, ref, empty_lse=conv, atol=1e-5, rtol=1e-5)
    assert r and "rows that see no key" in str(r)
    # ringattn's own -inf is not accepted under another convention (except "any")
    assert bool(ringattn.compare(lse, ref, empty_lse=conv, atol=1e-5, rtol=1e-5)) == (conv == "any")
    # a finite lse where the row is not empty is still judged
    theirs[0, 1, 7] += 1.0
    assert not ringattn.compare(theirs, ref, empty_lse=conv, atol=1e-5, rtol=1e-5)


def test_compare_policy_a_report_and_fields(rng):
    ref = rand(rng, 2, 5, 3, 4)
    got = ref.astype(np.float32)
    r = ringattn.compare(got, ref)
    assert r.passed and r.policy == "a" and (r.atol, r.rtol) == (1e-5, 1.3e-6) and r.count == ref.size
    got[1, 2, 0, 3] += 1e-3
    r = ringattn.compare(got, ref)
    assert not r and not r.passed and r.outside == 1 and r.where == (1, 2, 0, 3)
    assert r.mismatches[0].index == (1, 2, 0, 3) and r.mismatches[0].allowed < 1e-3
    text = str(r)
    assert text.startswith("policy (a)") and "max abs error:         1.0" in text and "(b=1, n=2, h=0, d=3)" in text
    assert "verdict:               FAIL (outside tolerance)" in text
    assert ringattn.compare(got, ref, atol=2e-3)
    # NaN on one side always fails, whatever the tolerance
    got2 = ref.copy()
    got2[0, 0, 0, 0] = np.nan
    r = ringattn.compare(got2, ref, atol=1e9)
    assert not r and r.nonfinite == 1
    # rank 3 (lse) names its axes b, h, n
    assert "(b=0, h=1, n=2)" in str(ringattn.compare(ref[0] + 1, ref[0], what="lse"))


def test_compare_varlen_lse_with_a_leading_axis(rng):
    ref = rand(rng, 1, 3, 20)        # (1, h, total_q), as compute writes it
    got = ref[0].copy()              # FlashAttention's varlen (h, total_q)
    got[2, 11] += 1
    r = ringattn.compare(got, ref, what="lse")
    assert not r and r.where == (2, 11)


@needs_torch
def test_compare_torch_and_mixed_dtypes(rng):
    ref = rand(rng, 1, 4, 2, 8)
    got = torch.tensor(ref).bfloat16()
    r = ringattn.compare(got, ref)
    assert r.passed and r.rtol == 1.6e-2


def test_errors_are_ringattn_errors(rng):
    q, k, v = rand(rng, 1, 8, 2, 4), rand(rng, 1, 8, 2, 4), rand(rng, 1, 8, 2, 4)
    cases = [
        (dict(k=k[:, :, :1, :3]), -2),                       # head dims differ
        (dict(opts=dict(segments=[3], dilations=[1])), -8),  # n not a multiple of the segment
        (dict(opts=dict(ring_size=9)), -4),                  # more members than positions
        (dict(opts=dict(partition="spiral")), -4),
        (dict(opts=dict(layout="nbhd")), -4),
        (dict(opts=dict(window=(1,))), -4),
        (dict(opts=dict(compute="f16")), -4),
        (dict(q=q.astype(np.int32)), -3),
        (dict(q=q[0]), -2),                                  # 3-D without cu_seqlens
        (dict(opts=dict(cu_seqlens_q=[0, 8])), -4),          # one of the two
        (dict(opts=dict(segments=[4, 8], dilations=[1])), -8),
        (dict(opts=dict(scale=0.0)), -4),
    ]
    for c, status in cases:
        with pytest.raises(ringattn.RingattnError) as e:
            ringattn.attention(c.get("q", q), c.get("k", k), v if "k" not in c else c["k"], **c.get("opts", {}))
        assert isinstance(e.value, ValueError) and e.value.status == status, (c, e.value.status, str(e.value))
        assert str(e.value)                                   # a sentence, never empty
    with pytest.raises(ringattn.RingattnError) as e:
        ringattn.attention(q, k[:, :5], v[:, :5], causal=True)
    assert "bottom-right" in str(e.value) and "top-left" in str(e.value)
    with pytest.raises(ringattn.RingattnError) as e:
        ringattn.compare(q, q[:, :4])
    assert e.value.status == -2 and "shapes differ" in str(e.value)
    with pytest.raises(ringattn.RingattnError):
        ringattn.compare(q, q, empty_lse="nan")
    with pytest.raises(ringattn.RingattnError) as e:
        ringattn.attention_backward(q, k, v, q, np.zeros((1, 2, 7)), q)
    assert e.value.status == -2
    assert ringattn.STATUS_NAMES[e.value.status] == "RINGATTN_ESHAPE" == e.value.status_name


def test_plan(rng):
    p = ringattn.plan((1, 4096, 8, 64), (1, 4096, 8, 64), (1, 4096, 8, 64), ring_size=4)
    assert p["ring_size"] == 4 and p["chunk_q"] == 1024 and p["member_bytes"] > 0
    assert p["member_bytes"] == p["q_bytes"] + p["acc_bytes"] + p["row_bytes"] + p["kv_bytes"] + p["dkv_bytes"]
    b = ringattn.plan((1, 4096, 8, 64), (1, 4096, 8, 64), (1, 4096, 8, 64), ring_size=4, backward=True)
    assert b["dkv_bytes"] > 0 and b["member_bytes"] > p["member_bytes"]
    q = rand(rng, 1, 64, 2, 8)
    assert ringattn.plan(q.transpose(0, 2, 1, 3), q.transpose(0, 2, 1, 3), q.transpose(0, 2, 1, 3), layout="bhnd",
                         ring_size=2)["chunk_q"] == 32
    with pytest.raises(ringattn.RingattnError):
        ringattn.plan(q, q, q, ring_size=100)


def test_report_is_what_the_cli_prints(rng, tmp_path):
    import os
    import shutil
    import subprocess
    import sys
    tool = shutil.which("ringattn-golden") or os.path.join(os.path.dirname(sys.executable), "ringattn-golden")
    if not os.path.exists(tool):
        pytest.skip("ringattn-golden is not installed next to this Python")
    ref = rand(rng, 1, 6, 2, 4)
    got = ref.astype(np.float32)
    got[0, 4, 1, 2] += 0.01
    np.save(tmp_path / "got.npy", got)
    np.save(tmp_path / "ref.npy", ref)
    r = subprocess.run([tool, "compare", str(tmp_path / "got.npy"), str(tmp_path / "ref.npy")], capture_output=True,
                       text=True)
    report = ringattn.compare(got, ref)
    assert r.returncode == 1 and not report
    assert r.stdout.endswith(str(report)), (r.stdout, str(report))


def test_bf16_numpy_outputs(rng):
    q = rand(rng, 1, 4, 1, 4)
    try:
        import ml_dtypes  # noqa: F401
    except ImportError:
        with pytest.raises(ringattn.RingattnError) as e:
            ringattn.attention(q, q, q, out_dtype="bfloat16")
        assert e.value.status == -3 and "ml_dtypes" in str(e.value)
    else:
        out, _ = ringattn.attention(q, q, q, out_dtype="bfloat16")
        assert out.dtype.name == "bfloat16"
