"""A port judged in its own precision: the precision emulation against a plain PyTorch
low-precision computation, check() on correct SDPA ports in bf16 / f16 / f32 (forward and
backward, beside FlashAttention's own test rule computed here), planted bugs caught with their
location, no silent passes, the policies, and check_steps() on a bf16 ring port written here."""
import math

import numpy as np
import pytest

import ringattn
from conftest import needs_torch, torch

if torch is not None:
    import torch.nn.functional as F


def _inputs(seed, b, h, hk, nq, nk, d, dtype):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, h, nq, d, generator=g).to(dtype), torch.randn(b, hk, nk, d, generator=g).to(dtype),
            torch.randn(b, hk, nk, d, generator=g).to(dtype))


def _sdpa(q, k, v, causal, backward, seed):
    """PyTorch's CPU scaled_dot_product_attention as the port: out (and dq, dk, dv for dout)"""
    qq, kk, vv = (x.clone().requires_grad_(backward) for x in (q, k, v))
    out = F.scaled_dot_product_attention(qq, kk, vv, is_causal=causal, enable_gqa=q.shape[1] != k.shape[1])
    port, g = {"out": out.detach()}, None
    if backward:
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 7)).to(q.dtype)
        out.backward(g)
        port.update(dq=qq.grad, dk=kk.grad, dv=vv.grad)
    return port, g


def _attention_ref(q, k, v, causal, upcast):
    """FlashAttention's attention_ref in [b, h, n, d]: upcast=False, reorder_ops=True is the
    baseline of its tests (the attention computed in the inputs' dtype, scale on k)"""
    if upcast:
        q, k, v = q.double(), k.double(), v.double()
    rep = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    d = q.shape[-1]
    s = q @ (k.transpose(-1, -2) / math.sqrt(d)) if not upcast else (q / math.sqrt(d)) @ k.transpose(-1, -2)
    if causal:
        s = s.masked_fill(torch.ones(s.shape[-2:], dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1).to(v.dtype) @ v


def _fa_rule(q, k, v, g, port, causal):
    """FlashAttention 2's test rule: out within 2x, dq/dk/dv within 3x the error of its baseline"""
    res = {}
    for upcast in (True, False):
        qq, kk, vv = (x.clone().requires_grad_(True) for x in (q, k, v))
        o = _attention_ref(qq, kk, vv, causal, upcast)
        if g is not None:
            o.backward(g.double() if upcast else g)
        res[upcast] = dict(out=o.detach(), dq=qq.grad, dk=kk.grad, dv=vv.grad)
    return all((port[n].double() - res[True][n]).abs().max() <= (2 if n == "out" else 3) *
               (res[False][n].double() - res[True][n]).abs().max() for n in port)


# ---------------------------------------------------------------- the emulation itself

@needs_torch
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_emulation_is_a_plain_low_precision_computation(dtype):
    """compute f32 with P rounded to the input type = FlashAttention's arithmetic written in
    PyTorch: f32 scores and softmax, P stored in the type, P V in f32, out stored in the type"""
    dt = getattr(torch, dtype)
    q, k, v = _inputs(0, 1, 2, 2, 200, 200, 64, dt)
    s = (q.float() @ k.float().transpose(-1, -2)) / 8.0
    p = torch.exp(s - s.amax(-1, keepdim=True))
    want = ((p.to(dt).float() @ v.float()) / p.sum(-1, keepdim=True)).to(dt)
    got, _ = ringattn.attention(q, k, v, layout="bhnd", compute="f32", p_dtype=dtype, out_dtype=dt)
    exact, _ = ringattn.attention(q, k, v, layout="bhnd", compute="f32", out_dtype=dt)
    diff = (got.double() - want.double()).abs()
    ulp = torch.finfo(dt).eps * want.double().abs().clamp_min(1e-3)
    # the same rounding points: equal but for f32 summation order (at most one ulp apart, rarely)
    assert (diff <= ulp).all()
    assert (diff > 0).float().mean() < 0.02
    assert (got != exact).any()          # and the rounding of P does show


@needs_torch
def test_emulation_options_are_validated():
    q = torch.randn(1, 4, 2, 8)
    with pytest.raises(ringattn.RingattnError, match="round_scores"):
        ringattn.attention(q, q, q, round_scores=True)
    with pytest.raises(ringattn.RingattnError, match="p_dtype"):
        ringattn.attention(q, q, q, p_dtype="fp7")
    with pytest.raises(TypeError, match="baseline="):
        ringattn.check(q, q, q, out=q, p_dtype="bf16")


# ---------------------------------------------------------------- correct ports pass

GRID = [  # b, h, hk, nq, nk, d, causal, backward
    (1, 2, 2, 128, 128, 64, True, True),
    (1, 2, 2, 128, 128, 128, False, True),
    (1, 4, 1, 96, 96, 64, True, True),      # MQA
    (1, 2, 2, 64, 160, 64, False, True),    # nq != nk
    (1, 2, 2, 512, 512, 64, True, False),
]


@needs_torch
@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("case", GRID)
def test_correct_sdpa_ports_pass_where_flashattention_passes(dtype, case):
    b, h, hk, nq, nk, d, causal, bwd = case
    for seed in range(2):
        q, k, v = _inputs(seed, b, h, hk, nq, nk, d, getattr(torch, dtype))
        port, g = _sdpa(q, k, v, causal, bwd, seed)
        if not _fa_rule(q, k, v, g, port, causal):
            continue   # FlashAttention's own rule fails it: nothing is promised
        reps = ringattn.check(q, k, v, dout=g, layout="bhnd", causal="top-left" if causal else None, **port)
        assert set(reps) == set(port)
        for r in reps.values():
            assert r.passed and r.ratio is not None and r.baseline
            assert ("bf16" if dtype == "bfloat16" else "f16" if dtype == "float16" else "f32") in r.baseline


@needs_torch
def test_the_baseline_is_the_ports_precision():
    q, k, v = _inputs(3, 1, 2, 2, 256, 256, 64, torch.bfloat16)
    port, _ = _sdpa(q, k, v, True, False, 3)
    r = ringattn.check(q, k, v, out=port["out"], layout="bhnd", causal="top-left")["out"]
    assert r.baseline.startswith("bf16")
    # f32 inputs, bf16 outputs: the outputs say the precision
    r = ringattn.check(q.float(), k.float(), v.float(), out=port["out"], layout="bhnd", causal="top-left")["out"]
    assert r.baseline.startswith("bf16")
    # said explicitly
    r = ringattn.check(q.float(), k.float(), v.float(), out=port["out"].float(), baseline="bf16", layout="bhnd",
                       causal="top-left")["out"]
    assert r.baseline.startswith("bf16")
    with pytest.raises(ringattn.RingattnError, match="baseline must be"):
        ringattn.check(q, k, v, out=port["out"], baseline="fp4", layout="bhnd")
    with pytest.raises(ringattn.RingattnError, match="mix"):
        ringattn.check(q, k.half(), v, out=port["out"], layout="bhnd")


@needs_torch
@pytest.mark.parametrize("policy", ringattn.POLICIES)
def test_every_policy_passes_a_correct_bf16_forward(policy):
    q, k, v = _inputs(5, 1, 2, 2, 256, 256, 64, torch.bfloat16)
    port, _ = _sdpa(q, k, v, True, False, 5)
    r = ringattn.check(q, k, v, out=port["out"], layout="bhnd", causal="top-left", policy=policy)["out"]
    assert r.passed
    assert r.rule == policy
    bad = port["out"].clone()
    bad[0, 1, 40] += 0.5
    with pytest.raises(AssertionError, match=r"h=1, n=40"):
        ringattn.check(q, k, v, out=bad, layout="bhnd", causal="top-left", policy=policy)


def test_rule_policy_table():
    assert ringattn.rule_policy("fa2", "bfloat16", "out")["k"] == 2
    assert ringattn.rule_policy("fa2", "bfloat16", "dv")["k"] == 3
    assert ringattn.rule_policy("fa3", "bfloat16", "out", softcap=True)["k"] == 3
    assert ringattn.rule_policy("magi", "float16", "dq")["rtol"] == 0.2
    assert ringattn.rule_policy("flex", "float32")["k"] == 10
    assert ringattn.rule_policy("te", "bfloat16", gqa=True)["atol"] == 3.5e-2
    with pytest.raises(ringattn.RingattnError, match="policy"):
        ringattn.rule_policy("fa9", "float32")


# ---------------------------------------------------------------- wrong ports fail, with the location

@needs_torch
def test_planted_bugs_fail_with_their_location():
    n, d = 256, 64
    q, k, v = _inputs(9, 1, 4, 4, n, n, d, torch.bfloat16)
    good = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    off = causal.clone()
    off[20, 21] = True                           # row 20 sees one key too many
    drop = causal.clone()
    drop[:, 128:192] = False                     # a key tile never read
    s = (q.float() @ k.float().transpose(-1, -2)) / 8.0
    lse = torch.logsumexp(s.masked_fill(~causal, float("-inf")), -1)
    lse_bad = lse.clone()
    lse_bad[0, 1, 17] += 0.05
    bugs = [
        (dict(out=F.scaled_dot_product_attention(q, k, v, attn_mask=off)), "out", "n=20"),
        (dict(out=F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.1 / 8)), "out", None),
        (dict(out=torch.cat([good[:, :2], good[:, 2:3].roll(1, 2), good[:, 3:]], 1)), "out", "h=2"),
        (dict(out=F.scaled_dot_product_attention(q, k, v, attn_mask=drop)), "out", None),
        (dict(out=good, lse=lse_bad), "lse", "h=1, n=17"),
    ]
    for port, name, where in bugs:
        with pytest.raises(AssertionError) as e:
            ringattn.check(q, k, v, layout="bhnd", causal="top-left", **port)
        msg = str(e.value)
        assert "--- %s" % name in msg and "max abs error" in msg
        if where:
            assert "(b=0, " in msg and where in msg


@needs_torch
def test_hints_for_the_first_slips():
    q, k, v = _inputs(2, 1, 4, 4, 64, 96, 32, torch.float32)
    # the other causal alignment
    port = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.ones(64, 96, dtype=torch.bool).tril())
    with pytest.raises(AssertionError, match="causal='top-left'"):
        ringattn.check(q, k, v, out=port, layout="bhnd", causal="bottom-right")
    # axes read the other way: a kernel given [b, n, h, d] arrays as SDPA's [b, h, n, d]
    q, k, v = _inputs(4, 1, 8, 8, 8, 8, 16, torch.float32)
    port = F.scaled_dot_product_attention(q, k, v)
    with pytest.raises(AssertionError, match="layout='bhnd'"):
        ringattn.check(q, k, v, out=port, layout="bnhd")


# ---------------------------------------------------------------- no silent passes

@needs_torch
def test_nothing_to_judge_and_nonfinite_inputs_are_refused():
    q, k, v = _inputs(1, 1, 2, 2, 16, 16, 8, torch.float32)
    with pytest.raises(TypeError, match="nothing to judge"):
        ringattn.check(q, k, v)
    with pytest.raises(TypeError, match="dout"):
        ringattn.check(q, k, v, dq=q)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    qn = q.clone()
    qn[0, 0, 3, 0] = float("nan")
    port = F.scaled_dot_product_attention(qn, k, v, is_causal=True)
    with pytest.raises(ringattn.RingattnError, match="allow_nonfinite"):
        ringattn.check(qn, k, v, out=port, layout="bhnd", causal="top-left")
    r = ringattn.check(qn, k, v, out=port, layout="bhnd", causal="top-left", allow_nonfinite=True)
    assert r["out"].passed
    # a NaN no row can see (key 15 of 15 queries, causal top-left) leaves the result finite:
    # judged as usual, no refusal
    kn = k.clone()
    kn[0, 0, 15, 0] = float("nan")
    port = F.scaled_dot_product_attention(q[:, :, :15], k, v, attn_mask=torch.ones(15, 16, dtype=torch.bool).tril())
    assert ringattn.check(q[:, :, :15], kn, v, out=port, layout="bhnd", causal="top-left")["out"].passed
    assert torch.isfinite(out).all()


# ---------------------------------------------------------------- per-step checks of a ring port

def _ring_port(q, k, v, p, broken=None):
    """a bf16 ring port written here: p members, a bf16 flash kernel per block (f32 products, P
    rounded to bf16, block out stored in bf16, lse in f32), the (out, lse) merge in f32"""
    b, n, h, d = q.shape
    c = n // p
    recs = {}

    def block(qc, kc, vc):
        s = torch.einsum("bqhd,bkhd->bhqk", qc.float(), kc.float()) / math.sqrt(d)
        m = s.amax(-1, keepdim=True)
        pr = torch.exp(s - m)
        l = pr.sum(-1, keepdim=True)
        o = torch.einsum("bhqk,bkhd->bqhd", pr.to(torch.bfloat16).float(), vc.float())
        return (o / l.squeeze(-1).transpose(1, 2).unsqueeze(-1)).to(torch.bfloat16), (m + l.log()).squeeze(-1)

    for i in range(p):
        qc, out, lse = q[:, i * c:(i + 1) * c], None, None
        for t in range(p):
            src = (i - t) % p
            bo, bl = block(qc, k[:, src * c:(src + 1) * c], v[:, src * c:(src + 1) * c])
            if out is None:
                out, lse = bo.float(), bl
            else:
                nl = torch.logaddexp(lse, bl)
                w_old = torch.exp(lse - nl).transpose(1, 2).unsqueeze(-1)
                w_new = torch.exp(bl - nl).transpose(1, 2).unsqueeze(-1)
                if broken == (i, t):
                    w_old = torch.full_like(w_old, 0.5)   # the merge forgets its rescale
                out, lse = out * w_old + bo.float() * w_new, nl
            recs[(i, t)] = {"block_out": bo, "block_lse": bl, "out": out.clone(), "lse": lse.clone()}
    return recs


@needs_torch
def test_check_steps_passes_a_bf16_ring_port_and_names_a_broken_merge():
    torch.manual_seed(3)
    q, k, v = (torch.randn(1, 256, 2, 64).to(torch.bfloat16) for _ in range(3))
    reps = ringattn.check_steps(q, k, v, _ring_port(q, k, v, 4), ring_size=4)
    assert len(reps) == 16 and all(r.passed for rec in reps.values() for r in rec.values())
    with pytest.raises(AssertionError, match=r"member 2, step 1 \(holding the chunk of member 1\): out"):
        ringattn.check_steps(q, k, v, _ring_port(q, k, v, 4, broken=(2, 1)), ring_size=4)
    # the port's records in the order steps() gives them: positions agree with a contiguous ring
    st = ringattn.steps(q, k, v, ring_size=4)
    assert [int(x) for x in st[5].q_positions[:2]] == [64, 65]


@needs_torch
def test_check_steps_refuses_bad_records():
    q = torch.randn(1, 16, 1, 8)
    for records, match in (({}, "non-empty"), ({(0, 5): {"out": q}}, "ring_size"), ({(0, 0): {"dq": q}}, "fields"),
                           ([1, 2], "mapping")):
        with pytest.raises(TypeError, match=match):
            ringattn.check_steps(q, q, q, records, ring_size=2)


# ---------------------------------------------------------------- fp8 with FlashAttention 3's descales

@needs_torch
def test_fp8_port_with_descales():
    """an fp8 kernel written here (FlashAttention 3's: e4m3 inputs with per (batch, k/v head)
    descales, products in f32, P in e4m3, out in bf16) passes; a descale 5 % off fails"""
    torch.manual_seed(0)
    b, h, hk, n, d = 2, 4, 2, 128, 64
    q, k, v = (torch.randn(b, n, x, d) for x in (h, hk, hk))
    ks, vs = (x.abs().amax(dim=(1, 3)) / 448 for x in (k, v))                              # (b, hk)
    qs = q.abs().amax(dim=(1, 3)).view(b, hk, h // hk).amax(-1) / 448
    q8 = (q / qs.repeat_interleave(h // hk, 1)[:, None, :, None]).to(torch.float8_e4m3fn)
    k8, v8 = ((x / s[:, None, :, None]).to(torch.float8_e4m3fn) for x, s in ((k, ks), (v, vs)))

    def fp8_kernel(qs):
        qf = q8.float() * qs.repeat_interleave(h // hk, 1)[:, None, :, None]
        kf, vf = ((x.float() * s[:, None, :, None]).repeat_interleave(h // hk, 2) for x, s in ((k8, ks), (v8, vs)))
        s_ = torch.einsum("bqhd,bkhd->bhqk", qf, kf) / math.sqrt(d)
        p = torch.exp(s_ - s_.amax(-1, keepdim=True))
        o = torch.einsum("bhqk,bkhd->bqhd", p.to(torch.float8_e4m3fn).float(), vf)
        return (o / p.sum(-1).transpose(1, 2)[..., None]).to(torch.bfloat16)

    r = ringattn.check(q8, k8, v8, out=fp8_kernel(qs), q_descale=qs, k_descale=ks, v_descale=vs)["out"]
    assert r.passed and r.baseline.startswith("fp8_e4m3")
    with pytest.raises(AssertionError, match="fp8_e4m3"):
        ringattn.check(q8, k8, v8, out=fp8_kernel(qs * 1.05), q_descale=qs, k_descale=ks, v_descale=vs)
    # the descales are the forward's: a backward refuses them; sizes must agree
    with pytest.raises(ringattn.RingattnError, match="sizes"):
        ringattn.attention(q8, k8, v8, q_descale=qs, k_descale=ks[:, :1], v_descale=vs)
    out, lse = ringattn.attention(q8, k8, v8, q_descale=qs, k_descale=ks, v_descale=vs)
    with pytest.raises(ringattn.RingattnError, match="backward"):
        ringattn.attention_backward(q8, k8, v8, out, lse, out, q_descale=qs, k_descale=ks, v_descale=vs)
