"""ringattn.attention / attention_backward against the naive f64 attention of conftest.py,
option by option, in both layouts, with strided views and every storage dtype."""
import threading
import time

import numpy as np
import pytest

import ringattn
from ringattn import _tensors

from conftest import assert_close, naive, naive_dilated, needs_torch, rand, torch


def to_layout(x, layout):
    """a [b, n, h, d] array in the caller's layout (a view, not a copy)"""
    return x if layout == "bnhd" else x.transpose(0, 2, 1, 3)


@pytest.mark.parametrize("layout", ["bnhd", "bhnd"])
@pytest.mark.parametrize("causal", [None, "bottom-right", "top-left"])
@pytest.mark.parametrize("nq,nk,h,hk", [(12, 12, 4, 4), (9, 17, 4, 2), (17, 9, 3, 1)])
def test_dense_against_naive(rng, layout, causal, nq, nk, h, hk):
    q, k, v = rand(rng, 2, nq, h, 8), rand(rng, 2, nk, hk, 8), rand(rng, 2, nk, hk, 6)
    out, lse = ringattn.attention(to_layout(q, layout), to_layout(k, layout), to_layout(v, layout),
                                  layout=layout, causal=causal)
    ref_out, ref_lse = naive(q, k, v, causal=causal)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert out.shape == to_layout(ref_out, layout).shape and lse.shape == (2, h, nq)
    assert_close(out, to_layout(ref_out, layout))
    assert_close(lse, ref_lse)


@pytest.mark.parametrize("opts", [
    dict(scale=0.37),
    dict(window=(3, 2)),
    dict(window=(4, None), causal="bottom-right"),
    dict(window=(2, 5), causal="top-left"),
    dict(softcap=1.5),
    dict(softcap=2.0, causal="top-left", scale=0.9),
], ids=lambda o: ",".join("%s=%s" % kv for kv in o.items()))
@pytest.mark.parametrize("layout", ["bnhd", "bhnd"])
def test_variants_against_naive(rng, opts, layout):
    q, k, v = rand(rng, 1, 14, 4, 8), rand(rng, 1, 18, 2, 8), rand(rng, 1, 18, 2, 8)
    out, lse = ringattn.attention(to_layout(q, layout), to_layout(k, layout), to_layout(v, layout),
                                  layout=layout, **opts)
    ref_out, ref_lse = naive(q, k, v, **opts)
    assert_close(out, to_layout(ref_out, layout))
    assert_close(lse, ref_lse)


@pytest.mark.parametrize("partition", ["contiguous", "zigzag", "striped"])
@pytest.mark.parametrize("ring_size", [2, 3])
def test_ring_sizes_and_partitions(rng, partition, ring_size):
    q, k, v = rand(rng, 1, 24, 2, 8), rand(rng, 1, 24, 2, 8), rand(rng, 1, 24, 2, 8)
    out, lse = ringattn.attention(q, k, v, causal="bottom-right", ring_size=ring_size, partition=partition)
    ref_out, ref_lse = naive(q, k, v, causal="bottom-right")
    assert_close(out, ref_out)
    assert_close(lse, ref_lse)


def test_threads_bit_identical(rng):
    q, k, v = rand(rng, 2, 32, 2, 8), rand(rng, 2, 32, 2, 8), rand(rng, 2, 32, 2, 8)
    a = ringattn.attention(q, k, v, ring_size=4, threads=1, compute="f32", out_dtype="float32")
    b = ringattn.attention(q, k, v, ring_size=4, threads=2, compute="f32", out_dtype="float32")
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


@pytest.mark.parametrize("layout", ["bnhd", "bhnd"])
def test_varlen_packed(rng, layout):
    cq, ck = [0, 5, 12, 16], [0, 7, 9, 20]
    q, k, v = rand(rng, 16, 4, 8), rand(rng, 20, 2, 8), rand(rng, 20, 2, 8)   # FlashAttention's [total, h, d]
    tr = (lambda x: x) if layout == "bnhd" else (lambda x: x.transpose(1, 0, 2))
    out, lse = ringattn.attention(tr(q), tr(k), tr(v), layout=layout, causal="bottom-right",
                                  cu_seqlens_q=cq, cu_seqlens_k=ck, ring_size=2)
    ref_out, ref_lse = naive(q[None], k[None], v[None], causal="bottom-right", cu_seqlens_q=cq, cu_seqlens_k=ck)
    assert out.shape == tr(q).shape and lse.shape == (4, 16)          # lse (h, total_q)
    assert_close(out, tr(ref_out[0]))
    assert_close(lse, ref_lse[0])
    # 4-D with b = 1 is accepted as well, lse then (1, h, total_q)
    out4, lse4 = ringattn.attention(q[None], k[None], v[None], causal="bottom-right", cu_seqlens_q=np.array(cq),
                                    cu_seqlens_k=np.array(ck))
    assert lse4.shape == (1, 4, 16)
    assert_close(out4[0], ref_out[0])


@pytest.mark.parametrize("causal", [None, "top-left"])
@pytest.mark.parametrize("mix", ["head-groups", "lse"])
@pytest.mark.parametrize("h", [5, 2])   # h = 2 < G = 3: see test_dilated_fewer_heads_than_groups
def test_dilated(rng, causal, mix, h):
    seg, rate = [4, 8, 16], [1, 2, 4]
    q, k, v = rand(rng, 1, 16, h, 4), rand(rng, 1, 16, h, 4), rand(rng, 1, 16, h, 4)
    for layout in ("bnhd", "bhnd"):
        out, lse = ringattn.attention(to_layout(q, layout), to_layout(k, layout), to_layout(v, layout),
                                      layout=layout, causal=causal, segments=seg, dilations=rate, mix=mix,
                                      ring_size=2)
        ref_out, ref_lse = naive_dilated(q, k, v, seg, rate, causal=causal, mix=mix)
        assert_close(out, to_layout(ref_out, layout))
        if mix == "lse":
            assert_close(lse, ref_lse)


def test_dilated_fewer_heads_than_groups(rng):
    """h < G (head-groups): groups g >= h get no head, and the output is still divided by G.
    DarcStar refuses this shape; ringattn computes it as documented (docs/semantics.md)."""
    seg, rate = [4, 8, 16], [1, 2, 4]
    q, k, v = rand(rng, 1, 16, 2, 4), rand(rng, 1, 16, 2, 4), rand(rng, 1, 16, 2, 4)
    out, _ = ringattn.attention(q, k, v, segments=seg, dilations=rate)
    # head 0 is group 0 (s=4, r=1), head 1 group 1 (s=8, r=2, offset 1); group 2 has no head
    o0, _ = naive(q[:, :4, :1], k[:, :4, :1], v[:, :4, :1])
    assert_close(out[:, :4, :1], o0 / 3)
    assert np.all(out[0, 0::2, 1] == 0)             # even positions are outside head 1's pattern


def test_outputs_dtype_and_type(rng):
    q, k, v = rand(rng, 1, 8, 2, 4), rand(rng, 1, 8, 2, 4), rand(rng, 1, 8, 2, 4)
    for dt, np_dt in (("float32", np.float32), ("f16", np.float16), (np.float64, np.float64)):
        out, lse = ringattn.attention(q, k, v, out_dtype=dt)
        assert out.dtype == np_dt and lse.dtype == np_dt
    ref, _ = ringattn.attention(q, k, v)
    out32, _ = ringattn.attention(q, k, v, compute="f32", out_dtype="f32")
    assert np.max(np.abs(out32 - ref)) < 1e-5


@pytest.mark.parametrize("dt", [np.float32, np.float16])
def test_low_precision_inputs(rng, dt):
    """the reference of rounded inputs is the f64 attention of those very values"""
    q, k, v = rand(rng, 1, 10, 2, 8, dtype=dt), rand(rng, 1, 10, 2, 8, dtype=dt), rand(rng, 1, 10, 2, 8, dtype=dt)
    out, lse = ringattn.attention(q, k, v, causal="top-left")
    ref_out, ref_lse = naive(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64), causal="top-left")
    assert_close(out, ref_out)
    assert_close(lse, ref_lse)


def test_strided_views_read_in_place(rng):
    base = rand(rng, 2, 30, 6, 20)
    q = base[:, ::2, 1:5, 3:11]              # every other position, 4 heads, 8 of 20 dims
    k = base[::-1, 5:20, ::2, ::-2][:, :, :, :8]   # negative strides on two axes
    v = np.broadcast_to(rand(rng, 2, 1, 3, 8), (2, 15, 3, 8))   # a zero stride: one value row for all keys
    h = _tensors.Host(q, "q")
    assert h.obj is q and h.ptr == q.ctypes.data          # the view itself, no copy
    assert h.strides == tuple(s // 8 for s in q.strides)
    kk = k[:, :, :2]  # GQA: 4 q heads on 2 k/v heads
    vv = v[:, :, :2]
    out, lse = ringattn.attention(q, kk, vv, causal="bottom-right")
    ref_out, ref_lse = naive(np.ascontiguousarray(q), np.ascontiguousarray(kk), np.ascontiguousarray(vv),
                             causal="bottom-right")
    assert_close(out, ref_out)
    assert_close(lse, ref_lse)
    # and a Fortran-ordered array
    qf = np.asfortranarray(q)
    assert_close(ringattn.attention(qf, kk, vv, causal="bottom-right")[0], ref_out)


def test_backward_directional_derivative(rng):
    """d/dt sum(dout * out(q + t e)) at t = 0 equals sum(dq * e) (and the same for k, v)"""
    q, k, v = rand(rng, 1, 10, 4, 6), rand(rng, 1, 13, 2, 6), rand(rng, 1, 13, 2, 5)
    dout = rand(rng, 1, 10, 4, 5)
    opts = dict(causal="bottom-right", window=(6, 1), softcap=3.0)
    out, lse = ringattn.attention(q, k, v, **opts)
    grads = ringattn.attention_backward(q, k, v, out, lse, dout, **opts)
    h = 1e-5
    for i, g in enumerate(grads):
        e = rand(rng, *g.shape)
        args_p = [q, k, v]
        args_m = [q, k, v]
        args_p[i] = args_p[i] + h * e
        args_m[i] = args_m[i] - h * e
        lp = np.sum(dout * ringattn.attention(*args_p, **opts)[0])
        lm = np.sum(dout * ringattn.attention(*args_m, **opts)[0])
        num = (lp - lm) / (2 * h)
        assert abs(num - np.sum(g * e)) <= 1e-7 * max(1.0, abs(num)), (i, num, np.sum(g * e))


@pytest.mark.parametrize("layout", ["bnhd", "bhnd"])
def test_backward_layouts_agree(rng, layout):
    q, k, v = rand(rng, 2, 9, 2, 4), rand(rng, 2, 9, 2, 4), rand(rng, 2, 9, 2, 4)
    dout = rand(rng, 2, 9, 2, 4)
    out, lse = ringattn.attention(q, k, v, causal="top-left")
    ref = ringattn.attention_backward(q, k, v, out, lse, dout, causal="top-left")
    L = lambda x: to_layout(x, layout)  # noqa: E731
    got = ringattn.attention_backward(L(q), L(k), L(v), L(out), lse, L(dout), layout=layout, causal="top-left",
                                      ring_size=3)
    for g, r in zip(got, ref):
        assert g.shape == L(r).shape
        assert_close(g, L(r))


def test_gil_released(rng):
    """another Python thread runs while the library computes"""
    q, k, v = rand(rng, 1, 1024, 4, 32), rand(rng, 1, 1024, 4, 32), rand(rng, 1, 1024, 4, 32)
    t0 = time.perf_counter()
    ringattn.attention(q, k, v, threads=1)
    alone = time.perf_counter() - t0
    ticks = []
    worker = threading.Thread(target=ringattn.attention, args=(q, k, v), kwargs=dict(threads=1))
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    gaps = np.diff(ticks) if len(ticks) > 1 else np.array([alone])
    # with the GIL held the main thread would stall for the whole call
    assert len(ticks) > 3 and gaps.max() < max(0.5 * alone, 0.05), (alone, gaps.max(), len(ticks))


@needs_torch
def test_torch_in_torch_out(rng):
    q = torch.tensor(rand(rng, 1, 8, 2, 4), requires_grad=True)      # needs no .detach() from the caller
    k, v = torch.tensor(rand(rng, 1, 8, 2, 4)), torch.tensor(rand(rng, 1, 8, 2, 4))
    out, lse = ringattn.attention(q, k, v)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.device == q.device
    assert lse.shape == (1, 2, 8)
    ref, _ = ringattn.attention(q.detach().numpy(), k.numpy(), v.numpy())
    assert np.array_equal(out.numpy(), ref)
    o16, _ = ringattn.attention(q, k, v, out_dtype=torch.bfloat16)
    assert o16.dtype == torch.bfloat16


@needs_torch
def test_torch_views_read_in_place(rng):
    base = torch.tensor(rand(rng, 2, 6, 20, 16))                   # [b, h, n, d] storage
    q = base[:, 1:5, ::2, :8]                                        # strided, offset
    k = base.transpose(1, 2)[:, :, :2, 8:].transpose(1, 2)          # [b, 2, 20, 8] from the other half
    v = torch.tensor(rand(rng, 2, 2, 1, 8)).expand(2, 2, 20, 8)      # stride 0 along n
    h = _tensors.Host(q, "q")
    assert h.obj.data_ptr() == q.data_ptr() and h.strides == tuple(q.stride())
    out, lse = ringattn.attention(q, k, v, layout="bhnd", causal="bottom-right")
    ref = naive(*(x.contiguous().transpose(1, 2).numpy() for x in (q, k, v)), causal="bottom-right")
    assert_close(out.numpy(), ref[0].transpose(0, 2, 1, 3))
    assert_close(lse.numpy(), ref[1])


@needs_torch
def test_bf16_inputs_torch(rng):
    q, k, v = (torch.tensor(rand(rng, 1, 2, 12, 8)).bfloat16() for _ in range(3))
    out, lse = ringattn.attention(q, k, v, layout="bhnd", causal=True)
    ref = naive(*(x.double().transpose(1, 2).numpy() for x in (q, k, v)), causal="top-left")
    assert_close(out.numpy(), ref[0].transpose(0, 2, 1, 3))
    assert_close(lse.numpy(), ref[1])


def test_concurrent_calls_agree(rng):
    """calls from several Python threads at once (the GIL is released) give the same bits"""
    q, k, v = rand(rng, 1, 64, 2, 16), rand(rng, 1, 64, 2, 16), rand(rng, 1, 64, 2, 16)
    want = ringattn.attention(q, k, v, causal="top-left", ring_size=2)
    got = [None] * 6

    def work(i):
        got[i] = ringattn.attention(q, k, v, causal="top-left", ring_size=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(got))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for out, lse in got:
        assert np.array_equal(out, want[0]) and np.array_equal(lse, want[1])
