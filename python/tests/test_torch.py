"""Against PyTorch: scaled_dot_product_attention in float64 for the outputs, autograd through it
for the gradients (skipped without torch)."""
import numpy as np
import pytest

import ringattn

from conftest import needs_torch, torch

pytestmark = needs_torch


def sdpa_case(seed, b, h, hk, nq, nk, d, dv, grad=True):
    g = torch.Generator().manual_seed(seed)
    mk = lambda *s: torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=grad)  # noqa: E731
    return mk(b, h, nq, d), mk(b, hk, nk, d), mk(b, hk, nk, dv), torch.randn(b, h, nq, dv, generator=g,
                                                                            dtype=torch.float64)


def sdpa_mask(nq, nk, causal, window=None):
    """boolean [nq, nk] (True = visible), ringattn's rule written with torch ops"""
    i = torch.arange(nq)[:, None]
    j = torch.arange(nk)[None, :]
    off = 0 if causal == "top-left" else nk - nq
    m = torch.ones(nq, nk, dtype=torch.bool)
    if causal:
        m &= j <= i + off
    if window is not None:
        left, right = window
        if left >= 0:
            m &= j >= i + off - left
        if right >= 0:
            m &= j <= i + off + right
    return m


def torch_ref(q, k, v, causal=None, scale=None, window=None, softcap=0.0):
    """out (via SDPA where it can express the case) and lse (logsumexp of the masked scores)"""
    h, hk = q.shape[1], k.shape[1]
    kk = k.repeat_interleave(h // hk, dim=1)
    vv = v.repeat_interleave(h // hk, dim=1)
    sc = scale if scale is not None else q.shape[-1] ** -0.5
    s = sc * q @ kk.transpose(-1, -2)
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    m = sdpa_mask(q.shape[2], k.shape[2], causal, window)
    s = s.masked_fill(~m, float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    if softcap:   # SDPA has no softcap: a plain softmax of the capped scores
        out = torch.softmax(s, dim=-1) @ vv
    elif causal == "top-left" and window is None:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                                               enable_gqa=h != hk)
    else:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale, enable_gqa=h != hk)
    return out, lse


@pytest.mark.parametrize("opts", [
    dict(),
    dict(causal="top-left"),
    dict(causal=True),
    dict(causal="bottom-right", nq=9, nk=14),
    dict(causal="top-left", nq=9, nk=14),
    dict(scale=0.3, window=(4, 2)),
    dict(causal="bottom-right", window=(3, -1), hk=1),
    dict(softcap=2.0, causal="top-left", hk=2),
], ids=lambda o: ",".join("%s=%s" % kv for kv in o.items()) or "plain")
@pytest.mark.parametrize("layout", ["bhnd", "bnhd"])
def test_against_sdpa_and_autograd(opts, layout):
    opts = dict(opts)
    nq, nk, hk = opts.pop("nq", 12), opts.pop("nk", 12), opts.pop("hk", 4)
    q, k, v, dout = sdpa_case(7, 2, 4, hk, nq, nk, 8, 8)
    rc = "top-left" if opts.get("causal") is True else opts.get("causal")
    ref_out, ref_lse = torch_ref(q, k, v, causal=rc, scale=opts.get("scale"), window=opts.get("window"),
                                 softcap=opts.get("softcap", 0.0))
    ref_dq, ref_dk, ref_dv = torch.autograd.grad(ref_out, (q, k, v), dout)
    L = (lambda x: x) if layout == "bhnd" else (lambda x: x.transpose(1, 2))
    out, lse = ringattn.attention(L(q), L(k), L(v), layout=layout, **opts)
    assert isinstance(out, torch.Tensor) and out.shape == L(ref_out).shape
    torch.testing.assert_close(out, L(ref_out).detach(), atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(lse, ref_lse.detach(), atol=1e-12, rtol=1e-12)
    dq, dk, dv = ringattn.attention_backward(L(q), L(k), L(v), out, lse, L(dout), layout=layout, ring_size=2, **opts)
    for got, ref in ((dq, ref_dq), (dk, ref_dk), (dv, ref_dv)):
        torch.testing.assert_close(got, L(ref), atol=1e-11, rtol=1e-11)


def test_check_an_sdpa_port_in_float32_and_bf16():
    """torch's own SDPA (math kernel on the CPU) as the 'port': it passes check in f32, and in
    bf16 inputs and outputs against the reference of those bf16 inputs"""
    q, k, v, dout = sdpa_case(3, 2, 4, 4, 32, 32, 16, 16, grad=False)
    for dt in (torch.float32, torch.bfloat16):
        qq, kk, vv, dd = (x.to(dt).requires_grad_() for x in (q, k, v, dout))
        out = torch.nn.functional.scaled_dot_product_attention(qq, kk, vv, is_causal=True)
        dq, dk, dv = torch.autograd.grad(out, (qq, kk, vv), dd)
        if dt == torch.float32:
            reports = ringattn.check(qq, kk, vv, out=out, dout=dd, dq=dq, dk=dk, dv=dv, layout="bhnd",
                                     causal="top-left")
            assert all(reports.values()), {n: str(r) for n, r in reports.items()}
        else:
            # bf16 arithmetic is far coarser than the f32 baseline: policy (b) fails it, and
            # compare with bf16's atol/rtol (policy a) judges storage rounding only
            ref, _ = ringattn.attention(qq, kk, vv, layout="bhnd", causal="top-left")
            r = ringattn.compare(out, ref, layout="bhnd", atol=2e-2, rtol=5e-2)
            assert r.passed, str(r)


def test_torch_broken_port_is_located():
    q, k, v, _ = sdpa_case(5, 2, 3, 3, 16, 16, 8, 8, grad=False)
    out = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    out[1, 2, 7, :] *= 1.001        # one row of one head off by 0.1 %
    with pytest.raises(AssertionError) as e:
        ringattn.check(q.float(), k.float(), v.float(), out=out, layout="bhnd", causal="top-left")
    assert "(b=1, h=2, n=7, d=" in str(e.value)


def test_cpu_tensors_stay_on_the_cpu():
    """tensors on another device are copied to the host and the outputs go back: with no GPU
    here, a CPU tensor stays on the CPU and needs no copy"""
    q, k, v, _ = sdpa_case(1, 1, 2, 2, 8, 8, 4, 4, grad=False)
    out, lse = ringattn.attention(q, k, v, layout="bhnd")
    assert out.device.type == "cpu" and lse.device.type == "cpu"


@pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors_come_back_on_their_device():
    q, k, v, _ = sdpa_case(1, 1, 2, 2, 8, 8, 4, 4, grad=False)
    out, lse = ringattn.attention(q.cuda(), k.cuda(), v.cuda(), layout="bhnd")
    assert out.device == q.cuda().device
    ref, _ = ringattn.attention(q, k, v, layout="bhnd")
    assert np.array_equal(out.cpu().numpy(), ref.numpy())
