"""The package's functions: each one builds views of its arguments and makes one C call."""
import collections
import contextlib
import ctypes
import math
import os
import tempfile

import numpy as np

from . import _lib
from ._lib import RingattnError, fail
from ._tensors import Host, deliver, dtype_name, int64_array, is_torch, new_output, torch

_ERR = 1024
_CAUSAL = {"none": 0, "bottom-right": 1, "top-left": 2}
_PARTITION = {"contiguous": 0, "zigzag": 1, "striped": 2}
_MIX = {"head-groups": 0, "lse": 1}
_COMPUTE = {"f64": _lib.F64, "float64": _lib.F64, "f32": _lib.F32, "float32": _lib.F32}
#: storage types the precision emulation rounds to (p_dtype, state_dtype)
_ROUND = {"f64": _lib.F64, "float64": _lib.F64, "f32": _lib.F32, "float32": _lib.F32, "f16": _lib.F16,
          "float16": _lib.F16, "bf16": _lib.BF16, "bfloat16": _lib.BF16, "float8_e4m3fn": _lib.FP8_E4M3,
          "float8_e5m2": _lib.FP8_E5M2}
#: what a row that sees no key may hold in the port's lse (the reference holds -inf there)
EMPTY_LSE = {"-inf": 0, "+inf": 1, "0": 2, "any": 3}
_EMPTY_ALIASES = {"inf": "+inf", "-inf": "-inf", "+inf": "+inf", "0": "0", "any": "any"}
_LAYOUTS = ("bnhd", "bhnd")
_BHND = (0, 2, 1, 3)


def _refuse(status, msg):
    raise RingattnError(status, msg)


def _choice(table, value, what):
    if not isinstance(value, str) or value not in table:
        _refuse(-4, "%s must be one of %s, not %r" % (what, ", ".join(repr(k) for k in table), value))
    return table[value]


def _int(value, what, lo, hi=2**31 - 1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        _refuse(-4, "%s must be an integer in [%d, %d], not %r" % (what, lo, hi, value))
    return int(value)


def _float(value, what):
    try:
        x = float(value)
    except (TypeError, ValueError):
        _refuse(-4, "%s must be a number, not %r" % (what, value))
    if not math.isfinite(x):
        _refuse(-4, "%s must be finite, not %r" % (what, value))
    return x


class _Options:
    """The attention options of one call as ringattn_py_options (arrays kept alive here)."""

    def __init__(self, nq, nk, causal=None, scale=None, ring_size=1, partition="contiguous", window=None,
                 softcap=0.0, segments=None, dilations=None, mix="head-groups", cu_seqlens_q=None,
                 cu_seqlens_k=None, compute="f64", threads=0, p_dtype=None, state_dtype=None, round_scores=False,
                 block_dtype=None, q_descale=None, k_descale=None, v_descale=None, sinks=None, alibi_slopes=None,
                 bias=None, mask=None, mask_mod=None, document_ids=None, batch=None, heads=None, like_torch=False):
        o = self.c = _lib.Options()
        self.keep = []
        self.errors = []   # exceptions raised by mask_mod, raised again after the C call
        self.dsinks = self.dbias = None
        self._score_options(nq, nk, batch, heads, like_torch, sinks, alibi_slopes, bias, mask, mask_mod,
                            document_ids)
        ds = {n: x for n, x in (("q_descale", q_descale), ("k_descale", k_descale), ("v_descale", v_descale))
              if x is not None}
        if ds:   # FlashAttention 3's fp8 descale factors: a number, or (b, hk)
            sizes = set()
            for n, x in ds.items():
                a = np.ascontiguousarray((x.detach().cpu().double().numpy() if is_torch(x) else np.asarray(x)),
                                         dtype=np.float64).reshape(-1)
                if a.size == 0:
                    _refuse(-4, "%s is empty" % n)
                sizes.add(a.size)
                self.keep.append(a)
                setattr(o, n, a.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
            if len(sizes) != 1:
                _refuse(-4, "q/k/v_descale have different sizes %s: each a number or (batch, k/v heads)"
                        % sorted(sizes))
            o.descale_size = sizes.pop()
        def storage(v, what):
            try:
                return _choice(_ROUND, dtype_name(v), what)
            except RingattnError as e:
                _refuse(-3, str(e) if what in str(e) else "%s: %s" % (what, e))

        if p_dtype is not None:
            o.round_p, o.p_dtype = 1, storage(p_dtype, "p_dtype")
        if round_scores not in (True, False):
            _refuse(-4, "round_scores must be True or False, not %r" % (round_scores,))
        if round_scores and p_dtype is None:
            _refuse(-4, "round_scores rounds the scores to p_dtype: give p_dtype too")
        o.round_s = 1 if round_scores else 0
        if state_dtype is not None:
            o.round_state, o.state_dtype = 1, storage(state_dtype, "state_dtype")
        if block_dtype is not None:
            o.round_block, o.block_dtype = 1, storage(block_dtype, "block_dtype")
        if (cu_seqlens_q is None) != (cu_seqlens_k is None):
            _refuse(-4, "varlen needs both cu_seqlens_q and cu_seqlens_k")
        if cu_seqlens_q is not None:
            cq, ck = int64_array(cu_seqlens_q, "cu_seqlens_q"), int64_array(cu_seqlens_k, "cu_seqlens_k")
            if cq.size != ck.size:
                _refuse(-4, "cu_seqlens_q has %d entries and cu_seqlens_k %d: they need the same count"
                        % (cq.size, ck.size))
            self.keep += [cq, ck]
            o.cu_seqlens_q = cq.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
            o.cu_seqlens_k = ck.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
            o.num_seqs = cq.size - 1
        if causal is True:
            same = nq == nk if cu_seqlens_q is None else np.array_equal(self.keep[0], self.keep[1])
            if not same:
                _refuse(-4, "causal=True is ambiguous when nq != nk (nq = %d, nk = %d): say causal='bottom-right' "
                        "(FlashAttention: key j visible to query i iff j <= i + nk - nq) or causal='top-left' "
                        "(PyTorch SDPA is_causal: j <= i)" % (nq, nk))
            o.causal = 1
        elif causal is None or causal is False:
            o.causal = 0
        else:
            o.causal = _choice(_CAUSAL, causal, "causal")
        if scale is None:
            o.scale = 0.0
        else:
            o.scale = _float(scale, "scale")
            if o.scale == 0:
                _refuse(-4, "scale = 0 would zero every score; pass None for 1/sqrt(d)")
        o.ring_size = _int(ring_size, "ring_size", 1)
        o.num_threads = _int(threads, "threads", 0)
        o.compute = _choice(_COMPUTE, compute, "compute")
        o.partition = _choice(_PARTITION, partition, "partition")
        o.mix = _choice(_MIX, mix, "mix")
        if window is None:
            o.window_left = o.window_right = -1
        else:
            try:
                left, right = window
            except (TypeError, ValueError):
                _refuse(-4, "window must be a pair (left, right), each None or -1 (unbounded) or >= 0, not %r"
                        % (window,))
            o.window_left = -1 if left is None else _int(left, "window[0]", -1)
            o.window_right = -1 if right is None else _int(right, "window[1]", -1)
        o.softcap = _float(softcap, "softcap")
        if (segments is None) != (dilations is None):
            _refuse(-8, "dilated attention needs both segments and dilations")
        if segments is not None:
            s, r = int64_array(segments, "segments"), int64_array(dilations, "dilations")
            if s.size != r.size:
                _refuse(-8, "segments has %d entries and dilations %d: one rate per segment length"
                        % (s.size, r.size))
            self.keep += [s, r]
            o.segment_lengths = s.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
            o.dilation_rates = r.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
            o.num_groups = s.size

    def _score_options(self, nq, nk, b, h, like_torch, sinks, alibi_slopes, bias, mask, mask_mod, document_ids):
        """sinks, ALiBi, bias, mask, mask_mod, document ids into the options (docs/python.md)"""
        o = self.c
        self.bias_host = None
        if sinks is not None:
            a = _f64_vector(sinks, "sinks")
            if a.ndim != 1 or (h is not None and a.size != h):
                _refuse(-2, "sinks has shape %s; expected (h,) = (%s,): one logit per q head"
                        % (tuple(a.shape), h if h is not None else "h"))
            self.keep.append(a)
            o.sinks = a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
            self.sinks_size = a.size
        if alibi_slopes is not None:
            a = _f64_vector(alibi_slopes, "alibi_slopes")
            if a.ndim == 1:
                ok = h is None or a.size == h
            elif a.ndim == 2:
                ok = b is None or h is None or tuple(a.shape) == (b, h)
            else:
                ok = False
            if not ok:
                _refuse(-2, "alibi_slopes has shape %s; expected (h,) = (%s,) (one slope per q head) or (b, h) = "
                        "(%s, %s)" % (tuple(a.shape), h, b, h))
            a = np.ascontiguousarray(a.reshape(-1))
            self.keep.append(a)
            o.alibi_slopes = a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
            o.alibi_size = a.size
        if bias is not None:
            hb = Host(bias, "bias")
            t = hb.view(None, _score_lead(hb))
            self.keep += [hb, t]
            self.bias_host = hb
            o.bias = ctypes.pointer(t)
        if mask is not None:
            hm = Host(mask, "mask", mask=True)
            t = hm.view(None, _score_lead(hm))
            self.keep += [hm, t]
            o.mask = ctypes.pointer(t)
        if mask_mod is not None:
            if not callable(mask_mod):
                _refuse(-4, "mask_mod must be a function mask_mod(b, h, q_idx, kv_idx) -> bool, not %r" % (mask_mod,))
            fn = _lib.MASK_BLOCK_FN(_mask_block(mask_mod, like_torch, self.errors))
            self.keep.append(fn)
            o.mask_block_fn = fn
        if document_ids is not None:
            pair = isinstance(document_ids, (tuple, list)) and len(document_ids) == 2 and all(
                np.ndim(x.detach().cpu().numpy() if is_torch(x) else x) == 1 for x in document_ids)
            dq, dk = ((int64_array(document_ids[0], "document_ids[0]"), int64_array(document_ids[1], "document_ids[1]"))
                      if pair else (int64_array(document_ids, "document_ids"),) * 2)
            if not pair and nq != nk:
                _refuse(-2, "document_ids is one array of %d ids but nq = %d and nk = %d differ: pass a pair "
                        "(ids_q, ids_k)" % (dq.size, nq, nk))
            for a, n, what in ((dq, nq, "queries"), (dk, nk, "keys")):
                if a.size != n:
                    _refuse(-2, "document_ids has %d ids for the %s; expected %d (one per %s position)"
                            % (a.size, what, n, what[:-1]))
            self.keep += [dq, dk]
            o.document_ids_q = dq.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
            o.document_ids_k = dk.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))

    def want_max_logit(self, host, lead):
        """the forward writes the row max of the final score into host (lse-shaped)"""
        t = host.view(None, lead)
        self.keep.append(t)
        self.c.max_logit = ctypes.pointer(t)

    def want_grads(self, dname, like_torch):
        """the backward writes dsinks (h,) and dbias (the bias's shape) when those are given"""
        if self.c.sinks:
            self.dsinks = np.zeros(self.sinks_size, dtype=np.float64)
            self.c.dsinks = self.dsinks.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        if self.bias_host is not None:
            hb = self.bias_host
            self.dbias = new_output(hb.shape, dname, like_torch, "dbias")
            t = self.dbias.view(None, _score_lead(hb))
            self.keep.append(t)
            self.c.dbias = ctypes.pointer(t)

    def extra_grads(self, dname, like_torch, device):
        """(dsinks,) and / or (dbias,) as the caller gets them, after the backward"""
        extra = []
        if self.dsinks is not None:
            d = self.dsinks
            if like_torch:
                d = torch.from_numpy(d).to(getattr(torch, dname))
                d = d.to(device) if device is not None and device.type != "cpu" else d
            else:
                h = new_output(d.shape, dname, False, "dsinks")   # NumPy: bf16 / fp8 through ml_dtypes
                h.obj[...] = d
                d = h.obj
            extra.append(d)
        if self.dbias is not None:
            extra.append(deliver(self.dbias, device))
        return tuple(extra)

    def reraise(self):
        """the first exception mask_mod raised during the C call, raised here"""
        if self.errors:
            raise self.errors[0]


def _f64_vector(x, name):
    """sinks, ALiBi slopes: a contiguous float64 NumPy copy (small)"""
    if is_torch(x):
        x = x.detach().cpu().double().numpy()
    try:
        a = np.array(x, dtype=np.float64)
    except (TypeError, ValueError):
        _refuse(-4, "%s must be an array of numbers, not %r" % (name, x))
    if not np.all(np.isfinite(a)):
        _refuse(-4, "%s holds NaN or Inf" % name)
    return np.ascontiguousarray(a)


def _score_lead(h):
    """axes of length 1 to put in front of a bias or mask: 0 for 4-D (b|1, h|1, nq, nk), 2 for 2-D"""
    n = len(h.shape)
    if n in (2, 4):
        return 4 - n
    _refuse(-2, "%s has shape %s; expected 4-D (b or 1, h or 1, nq, nk) or 2-D (nq, nk)" % (h.name, h.shape))


def _mask_block(mask_mod, like_torch, errors):
    """mask_block_fn calling mask_mod(b, h, q_idx, kv_idx) on index arrays (torch int64 tensors for
    torch inputs, b and h 0-d, q_idx (nr, 1), kv_idx (1, nc)); an exception is kept in `errors`
    and stops the call (the C library then returns RINGATTN_ECALLBACK)."""

    def block(user, b, h, q_pos, nr, k_pos, nc, visible):
        if errors:
            return 1
        try:
            if nr <= 0 or nc <= 0:
                return 0
            qi = np.ctypeslib.as_array(q_pos, shape=(nr,)).copy().reshape(nr, 1)
            ki = np.ctypeslib.as_array(k_pos, shape=(nc,)).copy().reshape(1, nc)
            if like_torch:
                r = mask_mod(torch.tensor(b, dtype=torch.int64), torch.tensor(h, dtype=torch.int64),
                             torch.from_numpy(qi), torch.from_numpy(ki))
                r = r.detach().cpu().numpy() if is_torch(r) else np.asarray(r)
            else:
                r = np.asarray(mask_mod(np.array(b, dtype=np.int64), np.array(h, dtype=np.int64), qi, ki))
            if r.dtype != np.bool_:
                raise TypeError("mask_mod returned %s values; it must return booleans (True = may attend), as "
                                "FlexAttention's mask_mod" % r.dtype)
            try:
                r = np.broadcast_to(r, (nr, nc))
            except ValueError:
                raise ValueError("mask_mod returned shape %s for q_idx (%d, 1) and kv_idx (1, %d); it must "
                                 "broadcast to (%d, %d)" % (r.shape, nr, nc, nr, nc)) from None
            np.ctypeslib.as_array(visible, shape=(nr * nc,))[:] = r.reshape(-1)
            return 0
        except BaseException as e:  # noqa: B902 - KeyboardInterrupt too: raised again after the call
            errors.append(e)
            return 1

    return block


def _layout(layout):
    if layout not in _LAYOUTS:
        _refuse(-4, "layout must be 'bnhd' ([b, n, h, d], FlashAttention) or 'bhnd' ([b, h, n, d], PyTorch "
                "SDPA), not %r" % (layout,))
    return None if layout == "bnhd" else _BHND


def _lead(h, varlen, layout):
    """axes to put in front of a q/k/v-like array: 0 for 4-D, 1 for varlen's 3-D"""
    n = len(h.shape)
    if n == 4:
        return 0
    if n == 3 and varlen:
        return 1
    want = "[b, n, h, d]" if layout == "bnhd" else "[b, h, n, d]"
    more = " (or 3-D [total, h, d] with cu_seqlens)" if layout == "bnhd" else " (or 3-D [h, total, d] with cu_seqlens)"
    _refuse(-2, "%s has shape %s; expected a 4-D %s array%s" % (h.name, h.shape, want, more))


def _caller_shape(c, perm, lead):
    """the caller's shape of an array whose ringattn shape [b, n, h, d] is c"""
    s = tuple(c[p] for p in perm) if perm else tuple(c)
    return s[lead:]


def _lse_lead(h, varlen):
    n = len(h.shape)
    if n == 3:
        return 0
    if n == 2 and varlen:
        return 1
    _refuse(-2, "%s has shape %s; expected %s" % (h.name, h.shape, "(h, total_q) or (1, h, total_q)" if varlen else "(b, h, nq)"))


def _result_kind(*hosts):
    for h in hosts:
        if h.torch:
            return True, h.device
    return False, None


def _err():
    return ctypes.create_string_buffer(_ERR)


_ATTN_OPTS = ("causal", "scale", "ring_size", "partition", "window", "softcap", "segments", "dilations", "mix",
              "cu_seqlens_q", "cu_seqlens_k", "compute", "threads", "p_dtype", "state_dtype", "round_scores",
              "block_dtype", "q_descale", "k_descale", "v_descale") + (
              "sinks", "alibi_slopes", "bias", "mask", "mask_mod", "document_ids")


def attention(q, k, v, *, layout="bnhd", causal=None, scale=None, ring_size=1, partition="contiguous", window=None,
              softcap=0.0, segments=None, dilations=None, mix="head-groups", cu_seqlens_q=None, cu_seqlens_k=None,
              compute="f64", out_dtype=None, threads=0, p_dtype=None, state_dtype=None, round_scores=False,
              block_dtype=None, q_descale=None, k_descale=None, v_descale=None, lse_dtype=None, sinks=None,
              alibi_slopes=None, bias=None, mask=None, mask_mod=None, document_ids=None, return_max_logit=False):
    """Exact attention of q, k, v: returns (out, lse), or (out, lse, max_logit) with
    return_max_logit=True (max_logit shaped as lse: the row max of the final score over the
    visible keys, -inf for a row that sees none).

    q, k, v: NumPy arrays or torch tensors, float64/float32/float16/bfloat16, any strides (read
    in place), in `layout` "bnhd" ([b, n, h, d], FlashAttention's) or "bhnd" ([b, h, n, d],
    PyTorch SDPA's); with cu_seqlens_q/k (varlen, packed sequences) also 3-D [total, h, d]
    ("bhnd": [h, total, d]). out comes back in the same layout, lse as (b, h, nq), or (h,
    total_q) for varlen; out_dtype defaults to float64, lse_dtype to out_dtype. Torch in, torch
    out (on q's device). Rows that see no key get out = 0 and lse = -inf.

    Precision emulation (docs/golden.md), to reproduce a low-precision kernel: p_dtype rounds P
    (the softmax weights) to that storage type before P V, as FlashAttention does with its input
    type; round_scores rounds the scores (and in the backward dP) to p_dtype as well, as eager
    attention in that type does; block_dtype computes each ring step's block alone and merges
    its (out, lse), out held in that type, as a port calling a kernel per block does;
    state_dtype holds the running out between ring steps in that type (lse in f32). With
    compute="f32", bf16 inputs, p_dtype="bf16" and out_dtype=torch.bfloat16 this is a bf16
    kernel's arithmetic. fp8 inputs (float8_e4m3fn, float8_e5m2) take FlashAttention 3's
    q_descale, k_descale, v_descale (a number or (b, hk)): q_descale * q, ... are attended
    (forward only).

    Score options (docs/python.md, "Sinks, ALiBi, bias, masks, document ids"): sinks (h,),
    one unscaled logit per q head in every row's softmax denominator (gpt-oss); alibi_slopes
    (h,) or (b, h); bias, an additive float bias (b|1, h|1, nq, nk) or (nq, nk); mask, a
    boolean mask of the same shapes (True = may attend, as SDPA's attn_mask); mask_mod,
    FlexAttention's mask_mod(b, h, q_idx, kv_idx) (torch index tensors for torch inputs,
    NumPy arrays for NumPy inputs); document_ids, one array of ids (nq == nk) or a pair
    (ids_q, ids_k): a query sees only the keys of its own document. Raises RingattnError
    when refused; an exception raised by mask_mod is raised again here."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hq, hk, hv = Host(q, "q"), Host(k, "k"), Host(v, "v")
    lq, lk, lv = _lead(hq, varlen, layout), _lead(hk, varlen, layout), _lead(hv, varlen, layout)
    tq, tk, tv = hq.view(perm, lq), hk.view(perm, lk), hv.view(perm, lv)
    b, nq, h = tq.shape[0], tq.shape[1], tq.shape[2]
    like_torch, device = _result_kind(hq, hk, hv)
    opts = _Options(nq, tk.shape[1], causal=causal, scale=scale, ring_size=ring_size, partition=partition,
                    window=window, softcap=softcap, segments=segments, dilations=dilations, mix=mix,
                    cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=threads,
                    p_dtype=p_dtype, state_dtype=state_dtype, round_scores=round_scores, block_dtype=block_dtype,
                    q_descale=q_descale, k_descale=k_descale, v_descale=v_descale, sinks=sinks,
                    alibi_slopes=alibi_slopes, bias=bias, mask=mask, mask_mod=mask_mod, document_ids=document_ids,
                    batch=b, heads=h, like_torch=like_torch)
    dname = dtype_name(out_dtype) or "float64"
    ho = new_output(_caller_shape((b, nq, h, tv.shape[3]), perm, lq), dname, like_torch, "out")
    hl = new_output((b, h, nq)[lq:], dtype_name(lse_dtype) or dname, like_torch, "lse")
    to, tl = ho.view(perm, lq), hl.view(None, lq)
    hm = None
    if return_max_logit:
        hm = new_output((b, h, nq)[lq:], dtype_name(lse_dtype) or dname, like_torch, "max_logit")
        opts.want_max_logit(hm, lq)
    err = _err()
    st = _lib.lib.ringattn_py_forward(ctypes.byref(opts.c), tq, tk, tv, to, tl, err, _ERR)
    opts.reraise()
    if st != 0:
        fail(st, err, layout)
    if hm is not None:
        return deliver(ho, device), deliver(hl, device), deliver(hm, device)
    return deliver(ho, device), deliver(hl, device)


def _backward_views(q, k, v, out, lse, dout, layout, varlen):
    """the backward's six inputs as host buffers and C views in ringattn's layout"""
    perm = _layout(layout)
    hs = [Host(x, n) for x, n in ((q, "q"), (k, "k"), (v, "v"), (out, "out"), (lse, "lse"), (dout, "dout"))]
    hq, hk, hv, ho, hl, hd = hs
    leads = [_lead(h, varlen, layout) for h in (hq, hk, hv, ho)] + [_lse_lead(hl, varlen), _lead(hd, varlen, layout)]
    return hs, leads, [h.view(None if h is hl else perm, ld) for h, ld in zip(hs, leads)]


def attention_backward(q, k, v, out, lse, dout, *, layout="bnhd", causal=None, scale=None, ring_size=1,
                       partition="contiguous", window=None, softcap=0.0, segments=None, dilations=None,
                       mix="head-groups", cu_seqlens_q=None, cu_seqlens_k=None, compute="f64", out_dtype=None,
                       threads=0, p_dtype=None, state_dtype=None, round_scores=False, block_dtype=None,
                       q_descale=None, k_descale=None, v_descale=None, sinks=None, alibi_slopes=None, bias=None,
                       mask=None, mask_mod=None, document_ids=None):
    """Gradients (dq, dk, dv) of attention for the upstream gradient dout, from the forward's
    out and lse (as attention() returns them), with the same options. Same layouts and types
    as attention(); each gradient has its input's shape, dtype out_dtype (default float64).
    With sinks, dsinks (h,) follows; with a bias, dbias (the bias's shape, summed over its
    broadcast axes) last: (dq, dk, dv[, dsinks][, dbias]).
    p_dtype rounds P and dS before the products that read them, round_scores S and dP too
    (precision emulation);
    state_dtype and block_dtype concern the forward only and are accepted for symmetry; fp8
    descale factors are refused (FlashAttention 3's fp8 path is a forward)."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hs, leads, views = _backward_views(q, k, v, out, lse, dout, layout, varlen)
    hq, hk, hv, ho, hl, hd = hs
    tq, tk = views[0], views[1]
    like_torch, device = _result_kind(*hs)
    opts = _Options(tq.shape[1], tk.shape[1], causal=causal, scale=scale, ring_size=ring_size, partition=partition,
                    window=window, softcap=softcap, segments=segments, dilations=dilations, mix=mix,
                    cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=threads,
                    p_dtype=p_dtype, round_scores=round_scores, q_descale=q_descale, k_descale=k_descale,
                    v_descale=v_descale, sinks=sinks, alibi_slopes=alibi_slopes, bias=bias, mask=mask,
                    mask_mod=mask_mod, document_ids=document_ids, batch=tq.shape[0], heads=tq.shape[2],
                    like_torch=like_torch)
    dname = dtype_name(out_dtype) or "float64"
    grads = [new_output(h.shape, dname, like_torch, "d" + h.name) for h in (hq, hk, hv)]
    tg = [g.view(perm, ld) for g, ld in zip(grads, leads[:3])]
    opts.want_grads(dname, like_torch)
    err = _err()
    st = _lib.lib.ringattn_py_backward(ctypes.byref(opts.c), *views, *tg, err, _ERR)
    opts.reraise()
    if st != 0:
        fail(st, err, layout)
    return tuple(deliver(g, device) for g in grads) + opts.extra_grads(dname, like_torch, device)


_PLAN_FIELDS = ("ring_size", "chunk_q", "chunk_k", "q_bytes", "acc_bytes", "row_bytes", "kv_bytes", "dkv_bytes",
                "member_bytes", "num_threads", "tile_bytes", "shared_bytes", "total_bytes")


def plan(q, k, v, *, backward=False, layout="bnhd", causal=None, scale=None, ring_size=1, partition="contiguous",
         window=None, softcap=0.0, segments=None, dilations=None, mix="head-groups", cu_seqlens_q=None,
         cu_seqlens_k=None, compute="f64", threads=0):
    """The memory planner (ringattn_plan) for a call: per-member private bytes by buffer, as a
    dict. q, k, v are arrays or just their shapes (tuples) in `layout`; nothing is computed
    or allocated. Validates like attention() (RingattnError)."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    shapes = []
    for x, name in ((q, "q"), (k, "k"), (v, "v")):
        s = tuple(int(d) for d in x) if isinstance(x, (tuple, list)) else tuple(x.shape)
        if len(s) == 3 and varlen:
            s = (1,) + s
        elif len(s) != 4:
            _refuse(-2, "%s has shape %s; expected 4 axes (3 with cu_seqlens)" % (name, s))
        shapes.append(tuple(s[p] for p in perm) if perm else s)
    (b, nq, h, d), (_, nk, hk, _), (_, _, _, dv) = shapes
    opts = _Options(nq, nk, causal=causal, scale=scale, ring_size=ring_size, partition=partition, window=window,
                    softcap=softcap, segments=segments, dilations=dilations, mix=mix, cu_seqlens_q=cu_seqlens_q,
                    cu_seqlens_k=cu_seqlens_k, compute=compute, threads=threads)
    shape = (ctypes.c_int64 * 7)(b, nq, nk, h, hk, d, dv)
    info = (ctypes.c_int64 * 14)()
    err = _err()
    st = _lib.lib.ringattn_py_plan(ctypes.byref(opts.c), shape, 1 if backward else 0, info, err, _ERR)
    if st != 0:
        fail(st, err)
    return {name: int(info[i]) for i, name in enumerate(_PLAN_FIELDS)}


# ---------------------------------------------------------------- decoding: a KV cache


def _int32_table(x, name, ndim):
    """cache_seqlens (1-D) / block_table (2-D) as a C-contiguous int32 NumPy copy: integer arrays
    of any width converted (values must fit int32), floats and booleans refused"""
    if is_torch(x):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "iu":
        _refuse(-3, "%s must hold integers (int32), not %s%s" % (
            name, a.dtype, " values" if a.dtype.kind in "fcb" else ""))
    if a.ndim != ndim:
        _refuse(-2, "%s has shape %s; expected %s" % (name, tuple(a.shape), "(batch,)" if ndim == 1
                                                       else "(batch, max_blocks)"))
    if a.size and (a.min() < -2**31 or a.max() > 2**31 - 1):
        _refuse(-4, "%s holds %d, which does not fit int32" % (name, int(a.max() if a.max() > 2**31 - 1 else a.min())))
    return np.ascontiguousarray(a, dtype=np.int32)


def _int_arg(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -2**62 <= int(value) <= 2**62:
        _refuse(-4, "%s must be an integer, not %r" % (what, value))
    return int(value)


def _cache_host(x, name, update):
    """k_cache / v_cache as a Host; with update=True also what must be copied back after the call
    (a torch tensor off the CPU: its host copy) and the refusals of a cache that cannot be written"""
    h = Host(x, name)
    if not update:
        return h, None
    if not is_torch(x) and not isinstance(x, np.ndarray):
        _refuse(-4, "%s is a %s: update_cache=True writes the new keys into the caller's cache, which must be a "
                "NumPy array or a torch tensor" % (name, type(x).__name__))
    if not is_torch(x):
        if not x.flags.writeable:
            _refuse(-4, "%s is read-only: update_cache=True writes the new keys into it" % name)
        if h.ptr != x.ctypes.data or h.obj.dtype != x.dtype:
            _refuse(-7, "%s (dtype %s, strides %s) cannot be written in place: its byte order or strides make "
                    "ringattn read a copy; pass a native-endian array whose strides are whole elements"
                    % (name, x.dtype.str, x.strides))
    for ax, (n, st) in enumerate(zip(h.shape, h.strides)):
        if st == 0 and n > 1:
            _refuse(-7, "%s has stride 0 on axis %d (length %d): its elements overlap, so update_cache=True "
                    "cannot write it" % (name, ax, n))
    back = h.obj if is_torch(x) and h.obj.data_ptr() != x.data_ptr() else None
    return h, back


def attention_with_kvcache(q, k_cache, v_cache, k=None, v=None, *, cache_seqlens, block_table=None, causal=None,
                           window=None, softcap=0.0, sinks=None, alibi_slopes=None, scale=None, num_splits=1,
                           split_size=None, return_splits=False, update_cache=False, compute="f64", out_dtype=None,
                           threads=0, lse_dtype=None, p_dtype=None, round_scores=False, block_dtype=None):
    """Attention of q against a KV cache (ringattn_forward_kvcache), as decoding kernels compute
    it: FlashAttention's flash_attn_with_kvcache, vLLM / FlashInfer paged attention,
    flash-decoding's split-KV partials. Returns (out, lse), or (out, lse, splits) with
    return_splits=True.

    q [b, nq, h, d]; k_cache, v_cache [b_cache, n_cache, hk, d|dv] (b_cache >= b, sequence bb
    is row bb), or paged when block_table is given: [num_blocks, page_size, hk, d|dv] with
    block_table (b, max_blocks) int32, key j of sequence bb in slot j % page_size of block
    block_table[bb, j // page_size]. cache_seqlens (b,) int32 (or one int for every sequence):
    the keys cached per sequence. k, v [b, n_new, hk, d|dv] (optional, both or neither, the
    cache's dtype): new keys appended after each sequence's cached ones, so sequence bb has
    L = cache_seqlens[bb] + n_new keys. Other integer dtypes of cache_seqlens and block_table
    are converted (values must fit int32); floats are refused.

    Query i sits at position i + L - nq: causal="bottom-right" (or True, FlashAttention's
    meaning here) lets it see keys j <= i + L - nq; rows that see no key get out 0 and lse
    -inf (with a sink: out 0, lse = the sink). window, softcap, sinks (h,), alibi_slopes (h,)
    or (b, h) (distance |i + L - nq - j|), scale: as in attention().

    Splits: the L keys of a sequence are cut into num_splits splits of ceil(L / num_splits)
    keys, or into splits of split_size keys (then the longest sequence sets their count);
    split s covers keys [s c, min((s + 1) c, L)). With return_splits=True, splits is a list
    with one (out_s, lse_s) per split, out_s [b, nq, h, dv] normalised within the split and
    lse_s (b, h, nq) its log-sum-exp; an empty split (or keys a row may not see) is out_s 0,
    lse_s -inf. Sinks are in the result, never in a partial. The result is the partials
    merged by log-sum-exp in split order.

    The cache is never written unless update_cache=True: then k, v are written into k_cache,
    v_cache at positions cache_seqlens[bb] ... of each sequence (through the block table when
    paged), in place, after the result is computed. The caches must then be writable NumPy
    arrays or torch tensors (a torch tensor on another device is written back to it).

    out_dtype (default float64) types out and the partials, lse_dtype (default out_dtype) lse
    and lse_s. NumPy in, NumPy out; torch in, torch out (on q's device). compute, threads,
    p_dtype, round_scores, block_dtype (each partial held in that type, as a split-KV kernel
    stores it): as in attention(). Raises RingattnError (nothing written) when refused."""
    if update_cache not in (True, False):
        _refuse(-4, "update_cache must be True or False, not %r" % (update_cache,))
    if return_splits not in (True, False):
        _refuse(-4, "return_splits must be True or False, not %r" % (return_splits,))
    hq = Host(q, "q")
    if len(hq.shape) != 4:
        _refuse(-2, "q has shape %s; expected a 4-D [b, nq, h, d] array" % (hq.shape,))
    b, nq, h = hq.shape[0], hq.shape[1], hq.shape[2]
    hkc, back_k = _cache_host(k_cache, "k_cache", update_cache and k is not None)
    hvc, back_v = _cache_host(v_cache, "v_cache", update_cache and v is not None)
    hk = Host(k, "k") if k is not None else None
    hv = Host(v, "v") if v is not None else None
    for x in (hkc, hvc, hk, hv):
        if x is not None and len(x.shape) != 4:
            _refuse(-2, "%s has shape %s; expected a 4-D array (%s)" % (
                x.name, x.shape, "[b, n_new, hk, d]" if x.name in ("k", "v") else
                "[b_cache, n_cache, hk, d], paged [num_blocks, page_size, hk, d]"))
    if isinstance(cache_seqlens, (int, np.integer)) and not isinstance(cache_seqlens, bool):
        seqlens = _int32_table(np.full(b, int(cache_seqlens), dtype=np.int64), "cache_seqlens", 1)
    else:
        seqlens = _int32_table(cache_seqlens, "cache_seqlens", 1)
    if seqlens.size != b:
        _refuse(-2, "cache_seqlens has %d entries; expected one per sequence of q (b = %d)" % (seqlens.size, b))
    table, max_blocks = None, 0
    if block_table is not None:
        table = _int32_table(block_table, "block_table", 2)
        if table.shape[0] != b:
            _refuse(-2, "block_table has shape %s; expected (b, max_blocks) with b = %d (q's batch)"
                    % (tuple(table.shape), b))
        max_blocks = table.shape[1]
    num_splits = _int_arg(num_splits, "num_splits")
    split = 0 if split_size is None else _int_arg(split_size, "split_size")
    if split_size is not None and split < 1:
        _refuse(-4, "split_size must be None (splits by num_splits) or >= 1 keys, not %r" % (split_size,))
    like_torch, device = _result_kind(*[x for x in (hq, hkc, hvc, hk, hv) if x is not None])
    opts = _Options(nq, nq, causal="bottom-right" if causal is True else causal, scale=scale, window=window,
                    softcap=softcap, compute=compute, threads=threads, p_dtype=p_dtype, round_scores=round_scores,
                    block_dtype=block_dtype, sinks=sinks, alibi_slopes=alibi_slopes, batch=b, heads=h,
                    like_torch=like_torch)
    tq, tkc, tvc = hq.view(), hkc.view(), hvc.view()
    tk = hk.view() if hk is not None else None
    tv = hv.view() if hv is not None else None
    ref = lambda t: ctypes.byref(t) if t is not None else None  # noqa: E731
    i32 = ctypes.POINTER(ctypes.c_int32)
    p_table = table.ctypes.data_as(i32) if table is not None else None
    p_seqlens = seqlens.ctypes.data_as(i32)
    dname = dtype_name(out_dtype) or "float64"
    lname = dtype_name(lse_dtype) or dname
    dv = hvc.shape[3]
    err = _err()
    parts, t_out, t_lse, n_parts = [], None, None, 0
    if return_splits:
        n_parts = _lib.lib.ringattn_py_kvcache_num_splits(ctypes.byref(opts.c), tq, tkc, tvc, p_table, max_blocks,
                                                          p_seqlens, ref(tk), ref(tv), num_splits, split, err, _ERR)
        if n_parts < 0:
            fail(n_parts, err)
        parts = [(new_output((b, nq, h, dv), dname, like_torch, "split_out"),
                  new_output((b, h, nq), lname, like_torch, "split_lse")) for _ in range(n_parts)]
        if n_parts:
            t_out, t_lse = (_lib.Tensor * n_parts)(), (_lib.Tensor * n_parts)()
            for s, (po, pl) in enumerate(parts):
                t_out[s], t_lse[s] = po.view(), pl.view()
    ho = new_output((b, nq, h, dv), dname, like_torch, "out")
    hl = new_output((b, h, nq), lname, like_torch, "lse")
    st = _lib.lib.ringattn_py_forward_kvcache(ctypes.byref(opts.c), tq, tkc, tvc, p_table, max_blocks, p_seqlens,
                                              ref(tk), ref(tv), num_splits, split, 1 if update_cache else 0, t_out,
                                              t_lse, n_parts, ho.view(), hl.view(), err, _ERR)
    if st != 0:
        fail(st, err)
    with (torch.no_grad() if torch is not None else contextlib.nullcontext()):
        for orig, copy in ((k_cache, back_k), (v_cache, back_v)):
            if copy is not None:   # a torch cache on another device: the host copy the call wrote, written back
                orig.copy_(copy)
    res = (deliver(ho, device), deliver(hl, device))
    if return_splits:
        res += ([(deliver(po, device), deliver(pl, device)) for po, pl in parts],)
    return res


# ---------------------------------------------------------------- comparison

Mismatch = collections.namedtuple("Mismatch", "index got ref err allowed")


class Report:
    """The verdict of ringattn_compare on one tensor.

    passed: bool (also bool(report)); max_abs, max_rel and where (index of the max abs error,
    in the caller's layout), where_rel; outside: elements outside tolerance (NaN/Inf mismatches
    included); nonfinite: NaN/Inf mismatches; mismatches: the first few as Mismatch(index,
    got, ref, err, allowed); count; policy ('a' atol/rtol, 'b' baseline); bound (policy b);
    str(report): the report `ringattn-golden compare` prints. With a baseline also: rule
    ('fa2', 'fa3', 'magi', 'flex'), mean_abs, baseline_mean_abs, storage_floor, floor (fa3), mismatch,
    baseline_mismatch, mismatch_limit (magi); from check(): baseline (what was emulated, a
    sentence) and ratio (the port's error over the baseline's: how much of the budget it
    used; the rule's measure, mean for flex)."""

    def __init__(self, what, fres, ires, bad_at, bad_val, text, ndim, lead, empty_lse):
        def idx(a):
            t = tuple(int(x) for x in a[lead:lead + ndim])
            return None if any(x < 0 for x in t) else t
        self.what = what
        self.passed = bool(ires[5])
        self.count = int(ires[0])
        self.nonfinite = int(ires[1])
        self.outside = int(ires[2])
        self.policy = chr(ires[3])
        self.max_abs, self.max_rel = float(fres[0]), float(fres[3])
        self.where, self.where_rel = idx(ires[6:10]), idx(ires[10:14])
        self.baseline_max_abs, self.bound = float(fres[6]), float(fres[7])
        self.atol, self.rtol, self.k, self.eps = (float(x) for x in fres[8:12])
        self.mean_abs, self.baseline_mean_abs, self.floor = (float(x) for x in fres[12:15])
        self.mismatch, self.baseline_mismatch, self.mismatch_limit = (float(x) for x in fres[15:18])
        self.storage_floor = float(fres[18])
        self.rule = None
        self.baseline = None
        self.ratio = None
        self.empty_lse = empty_lse
        self.mismatches = [Mismatch(idx(bad_at[4 * i:4 * i + 4]), *(float(x) for x in bad_val[4 * i:4 * i + 4]))
                           for i in range(int(ires[4]))]
        self.text = text
        self._inputs = None   # compare(): what heatmap() draws again
        self._ring = (1, "contiguous")   # check(): the ring's deal, for heatmap()'s chunk lines

    def __bool__(self):
        return self.passed

    def __str__(self):
        return self.text

    def __repr__(self):
        return "<ringattn.Report %s%s: max_abs %.3e at %s, %d of %d outside>" % (
            (self.what + " ") if self.what else "", "PASS" if self.passed else "FAIL", self.max_abs, self.where,
            self.outside, self.count)

    def heatmap(self, path=None, *, ring_size=None, partition=None):
        """The error of this comparison as an SVG (the writer of `ringattn-golden compare
        --heatmap`): err / allowed over (query position, head), or (key position, head) for a
        report on dk / dv, max over batch and dim; inside white to grey, outside yellow to red,
        NaN/Inf mismatches black; score tiles dashed, the ring's chunks (ring_size, partition;
        by default those check() was given, else one member) in blue. A mask or tiling bug
        shows as a band. Writes `path` when given; returns the SVG text either way."""
        if self._inputs is None:
            raise RingattnError(-4, "this Report holds no arrays to draw: heatmap() draws reports of compare() "
                                "and check()")
        hosts, leads, pol, empty, layout = self._inputs
        rank = max(len(h.shape) for h in hosts)
        what = self.what or ("lse" if rank in (2, 3) else "out")
        ring, part = self._ring
        ring = _int(ring if ring_size is None else ring_size, "ring_size", 1)
        part = _choice(_PARTITION, part if partition is None else partition, "partition")
        if what == "lse" or (self.what is None and rank in (2, 3)):
            if rank not in (2, 3):
                _refuse(-2, "heatmap: an lse has 3 axes (b, h, n) or 2 (h, total_q), not %d" % rank)
            views = [h.view(None, ld + 3 - rank) for h, ld in zip(hosts, leads)]
            what = "lse"
        elif rank in (3, 4):
            perm = _BHND if layout == "bhnd" else None
            views = [h.view(perm, ld + 4 - rank) for h, ld in zip(hosts, leads)]
        else:
            _refuse(-2, "heatmap draws [b, n, h, d] tensors (varlen [total, h, d]) and lse, not %d-D arrays" % rank)
        own = path is None
        if own:
            fd, path = tempfile.mkstemp(suffix=".svg")
            os.close(fd)
        err = _err()
        try:
            st = _lib.lib.ringattn_py_heatmap(os.fsencode(path), views[0], views[1],
                                              ctypes.byref(views[2]) if len(views) > 2 else None, pol, empty, ring,
                                              part, what.encode(), (self.what or "got").encode(), err, _ERR)
            if st != 0:
                fail(st, err)
            with open(path, encoding="utf-8") as f:
                return f.read()
        finally:
            if own:
                os.unlink(path)

    def hint(self):
        """A sentence when the failure looks like another empty-row lse convention, else ''."""
        bad = [m for m in self.mismatches if m.ref == -math.inf]
        if not bad or self.empty_lse != "-inf":
            return ""
        got = {("+inf" if m.got == math.inf else "0" if m.got == 0 else None) for m in bad}
        if len(got) == 1 and None not in got:
            conv = got.pop()
            return ("rows that see no key hold lse = %s in got and -inf in ref: a kernel with that convention "
                    "(FlashAttention writes +inf, PyTorch's CPU flash kernel 0) passes empty_lse=%r" % (conv, conv))
        return ""


def _axes(ndim, what, layout):
    lse_like = what is None or what.endswith("lse") or what.startswith("max_logit")   # block_lse, splits[s].lse
    if ndim == 4:
        return layout
    if ndim == 3:
        if lse_like:
            return "bhn."
        return "nhd." if layout == "bnhd" else "hnd."
    if ndim == 2:
        return "hn.." if lse_like else "ij.."
    return "i..."


_RULES = {"fa2": 0, "fa3": 1, "magi": 2, "flex": 3, "te": 4}
#: the policies of check(): the four baseline rules of ringattn_compare and TransformerEngine's fixed tolerances
POLICIES = ("fa2", "fa3", "magi", "flex", "te")


_CODE = {"float32": _lib.F32, "float64": _lib.F64, "float16": _lib.F16, "bfloat16": _lib.BF16}


def rule_policy(policy, dtype, what=None, softcap=False, gqa=False):
    """A policy's own constants for one tensor (the C library's ringattn_compare_rule_policy):
    {"atol", "rtol", "k", "eps"} for `policy` ("fa2", "fa3", "magi", "flex", "te"), the port's
    `dtype` and tensor `what` ("out", "lse", "dq", "dk", "dv")."""
    if policy not in POLICIES:
        _refuse(-4, "policy must be one of %s, not %r" % (", ".join(repr(p) for p in POLICIES), policy))
    out = (ctypes.c_double * 4)()
    _lib.lib.ringattn_py_rule_policy(_RULES[policy], _CODE[dtype_name(dtype)], (what or "out").encode(),
                                     1 if softcap else 0, 1 if gqa else 0, out)
    return dict(zip(("atol", "rtol", "k", "eps"), out))


def compare(got, ref, *, baseline=None, atol=None, rtol=None, k=2.0, eps=1e-6, what=None, layout="bnhd",
            empty_lse="-inf", policy=None, baseline_err=0.0, baseline_mismatch=0.0):
    """Compare a port's output `got` with the reference `ref` (the C comparison) -> Report.

    Without a baseline: policy (a), |got - ref| <= atol + rtol |ref| (defaults by got's dtype,
    as torch.testing; policy="te": TransformerEngine's fixed tolerances). With a baseline (the
    same case computed in the port's precision, e.g. attention(..., compute="f32", p_dtype=...)):
    policy (b) by `policy`, E = max(max|baseline - ref|, baseline_err, storage floor), the
    storage floor one ulp of got's dtype at max|ref| (the resolution of a result stored in it):
      "fa2" (default)  |got - ref| <= k E + eps                       (FlashAttention 2's tests)
      "fa3"            |got - ref| <= k E + floor + eps, floor = 2 max|(ref + 0.3 - 0.3) - ref|
                       in got's dtype                                  (FlashAttention 3 / 4)
      "magi"           max|got - ref| <= k E + eps and the fraction of elements outside
                       atol + rtol |ref| <= min(k x the baseline's, 0.75)   (MagiAttention)
      "flex"           mean|got - ref| <= k mean|baseline - ref| + eps (FlexAttention)
    baseline_err: the error of a second baseline (another summation order) in the rule's
    measure; the rule takes the larger, so one lucky baseline sample cannot set the bound;
    baseline_mismatch the same for magi's mismatch fraction.
    Same shapes (an axis of length 1 in front on one side only is ignored: FlashAttention's
    varlen lse (h, total_q) against (1, h, total_q)); any dtypes and strides. `what` names the
    tensor (out, lse, dq, ...) and with `layout` the axes of the report. empty_lse: what got
    may hold where ref's lse is -inf (a row that sees no key): "-inf" (the default,
    ringattn's), "+inf" (FlashAttention-2/3), "0" (PyTorch's CPU flash kernel) or "any"."""
    _layout(layout)
    if not isinstance(empty_lse, str) or empty_lse not in _EMPTY_ALIASES:
        _refuse(-4, "empty_lse must be one of '-inf', '+inf', '0', 'any', not %r" % (empty_lse,))
    empty_lse = _EMPTY_ALIASES[empty_lse]
    if policy is not None and policy not in POLICIES:
        _refuse(-4, "policy must be one of %s, not %r" % (", ".join(repr(p) for p in POLICIES), policy))
    if policy == "te":
        if baseline is not None:
            _refuse(-4, "policy 'te' (TransformerEngine's fixed tolerances) uses no baseline")
    elif policy is not None and baseline is None:
        _refuse(-4, "policy %r judges against a baseline: pass baseline= (the case in the port's precision)"
                % policy)
    pol = (ctypes.c_double * 7)()
    hg, hr = Host(got, "got"), Host(ref, "ref")
    if policy == "te":
        tol = rule_policy("te", hg.dname, what)
        atol = tol["atol"] if atol is None else atol
        rtol = tol["rtol"] if rtol is None else rtol
    for i, (x, name) in enumerate(((atol, "atol"), (rtol, "rtol"), (k, "k"), (eps, "eps"),
                                   (_RULES.get(policy or "fa2", 0), "rule"), (baseline_err, "baseline_err"),
                                   (baseline_mismatch, "baseline_mismatch"))):
        if x is None and i < 2:
            pol[i] = -1.0
            continue
        pol[i] = _float(x, name)
        if pol[i] < 0:
            _refuse(-4, "%s must be >= 0, not %r" % (name, x))
    hb = Host(baseline, "baseline") if baseline is not None else None
    hosts = [h for h in (hg, hr, hb) if h is not None]
    rank = max(len(h.shape) for h in hosts)
    leads = []
    for h in hosts:
        d = rank - len(h.shape)
        # only leading axes of length 1 may be missing on one side
        if d not in (0, 1) or (d == 1 and any(len(o.shape) == rank and o.shape[0] != 1 for o in hosts)):
            d = 0
        leads.append(d)
    views = [h.view(None, ld) for h, ld in zip(hosts, leads)]
    tg, tr = views[0], views[1]
    tb = views[2] if hb is not None else None
    ndim_g = len(hg.shape)
    axes = _axes(rank, what, layout).encode()
    fres, ires = (ctypes.c_double * 19)(), (ctypes.c_int64 * 14)()
    bad_at, bad_val = (ctypes.c_int64 * (4 * _lib.KEEP))(), (ctypes.c_double * (4 * _lib.KEEP))()
    report = ctypes.create_string_buffer(8192)
    err = _err()
    st = _lib.lib.ringattn_py_compare(tg, tr, ctypes.byref(tb) if tb is not None else None, pol,
                                      EMPTY_LSE[empty_lse], axes, fres, ires, bad_at, bad_val, report, 8192, err, _ERR)
    if st != 0:
        fail(st, err)
    rep = Report(what, fres, ires, bad_at, bad_val, report.value.decode("utf-8", "replace"), ndim_g, leads[0],
                 empty_lse)
    rep.rule = (policy or "fa2") if hb is not None else ("te" if policy == "te" else None)
    rep._inputs = (hosts, leads, pol, EMPTY_LSE[empty_lse], layout)
    return rep


# ---------------------------------------------------------------- check: the port in its own precision

_PRECISION = {"f32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
              "f16": "float16", "float16": "float16", "fp8_e4m3": "float8_e4m3fn", "float8_e4m3fn": "float8_e4m3fn",
              "fp8_e5m2": "float8_e5m2", "float8_e5m2": "float8_e5m2"}
_SHORT = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "float64": "f64", "float8_e4m3fn": "fp8_e4m3",
          "float8_e5m2": "fp8_e5m2"}
_LOW = ("bfloat16", "float16", "float8_e4m3fn", "float8_e5m2")
def _dname_of(x):
    return Host(x, "x").dname if x is not None else None


def _port_precision(baseline, inputs, outputs):
    """The precision a port computes in: `baseline` when given, else the inputs' low-precision
    storage type (fp8 first: an fp8 kernel reads fp8 and writes bf16), else the outputs', else
    f32."""
    if baseline is not None:
        if not isinstance(baseline, str) or baseline not in _PRECISION:
            _refuse(-4, "baseline must be None (from the inputs' dtype) or one of 'f32', 'bf16', 'f16', 'fp8_e4m3', "
                    "'fp8_e5m2', not %r" % (baseline,))
        return _PRECISION[baseline]
    for group in (inputs, outputs):
        low = sorted({d for d in (_dname_of(x) for x in group if x is not None) if d in _LOW})
        fp8 = [d for d in low if d.startswith("float8")]
        if fp8:
            return "float8_e4m3fn" if "float8_e4m3fn" in fp8 else fp8[0]
        if len(low) > 1:
            _refuse(-4, "the tensors mix bfloat16 and float16: say which precision the port computes in "
                    "(baseline='bf16' or 'f16')")
        if low:
            return low[0]
    return "float32"


def _as_precision(x, dname):
    """x stored as dname (a copy when it is not already): what a port of that precision reads"""
    if x is None or _dname_of(x) == dname or dname == "float32":
        return x
    if is_torch(x):
        return x.detach().to(getattr(torch, dname))
    if dname == "bfloat16":
        from ._tensors import _NP_BF16
        if _NP_BF16 is None:
            _refuse(-3, "a bf16 baseline of NumPy inputs needs the ml_dtypes package (NumPy has no bfloat16); "
                    "pass bf16 torch tensors")
        return np.asarray(x).astype(_NP_BF16)
    return np.asarray(x).astype(dname)


def _describe_baseline(prec, ring2):
    if prec == "float32":
        s = "f32: products and softmax in f32, one ring member"
    elif prec.startswith("float8"):
        s = ("%s: inputs stored in %s (their descale factors applied), products summed in f32, P rounded to fp8 "
             "e4m3 before P V (FlashAttention 3's fp8 kernel), results rounded to the port's output dtypes, one ring "
             "member" % (_SHORT[prec], _SHORT[prec]))
    else:
        p = _SHORT[prec]
        s = ("%s: inputs stored in %s, products summed in f32, P rounded to %s before P V (and P, dS before the "
             "backward's products), results rounded to the port's output dtypes, one ring member; eager %s "
             "attention (scores, dP rounded too; with GQA each q head's dK, dV accumulated into %s head by "
             "head) as a second order" % (p, p, p, p, p))
    return s + ("; a ring of 2 as another order" if ring2 else "") + ": the largest error sets the bound"


def _nonfinite_count(x):
    if is_torch(x):
        t = x.detach()
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return int((~torch.isfinite(t)).sum())
    a = np.asarray(x)
    return int((~np.isfinite(a.astype(np.float64))).sum())


def _reference_nonfinite(refs):
    """tensors of the f64 reference that hold NaN or Inf (lse = -inf of a row that sees no key aside)"""
    bad = []
    for name, x in refs.items():
        a = x.detach().cpu().double().numpy() if is_torch(x) else np.asarray(x, dtype=np.float64)
        if name.endswith("lse") or name.startswith("max_logit"):
            if np.isnan(a).any() or np.isposinf(a).any():
                bad.append(name)
        elif not np.isfinite(a).all():
            bad.append(name)
    return bad


class _Judge:
    """One policy applied to (got, ref, baselines) of named tensors: check() and check_steps()."""

    def __init__(self, policy, prec, k, eps, softcap, empty_lse, layout, gqa, describe):
        self.policy, self.prec, self.k, self.eps, self.softcap = policy, prec, k, eps, softcap
        self.empty_lse, self.layout, self.gqa, self.describe = empty_lse, layout, gqa, describe

    def __call__(self, name, got, ref, base, others=()):
        """got judged against ref, the bound from base and the larger error of `others` (more
        baselines: other orders of the same precision)"""
        kind = name[:-4] + "lse" if name.endswith("lse") else name
        kind = {"max_logit": "lse", "dsinks": "dv", "dbias": "dv"}.get(kind, kind)   # rules by the nearest kind
        pol = rule_policy(self.policy, _dname_of(got), kind, self.softcap, self.gqa)
        if self.policy == "te":
            rep = compare(got, ref, policy="te", what=name, layout=self.layout, empty_lse=self.empty_lse,
                          atol=pol["atol"], rtol=pol["rtol"])
            rep.baseline = "none: TransformerEngine's fixed tolerances for %s" % _dname_of(got)
            return rep
        atol, rtol = (pol["atol"], pol["rtol"]) if self.policy == "magi" else (None, None)
        k = pol["k"] if self.k is None else self.k
        eps = pol["eps"] if self.eps is None else self.eps
        extra = mism = 0.0
        for other in others:
            r2 = compare(other, ref, what=name, layout=self.layout, empty_lse="any", atol=atol, rtol=rtol)
            e2 = r2.mean_abs if self.policy == "flex" else r2.max_abs
            if math.isfinite(e2) and e2 > extra:
                extra = e2
            mism = max(mism, r2.mismatch)
        rep = compare(got, ref, baseline=base, k=k, eps=eps, what=name, layout=self.layout,
                      empty_lse=self.empty_lse, policy=self.policy, baseline_err=extra, atol=atol, rtol=rtol,
                      baseline_mismatch=mism)
        rep.baseline = self.describe
        if self.policy == "flex":
            e = max(rep.baseline_mean_abs, extra)
            rep.ratio = rep.mean_abs / e if e > 0 else (0.0 if rep.mean_abs == 0 else math.inf)
        else:
            e = max(rep.baseline_max_abs, extra, rep.storage_floor if self.policy in ("fa2", "magi") else 0.0)
            rep.ratio = rep.max_abs / e if e > 0 else (0.0 if rep.max_abs == 0 else math.inf)
        return rep


def _head_axis(x, layout, options):
    varlen = options.get("cu_seqlens_q") is not None
    nd = len(Host(x, "x").shape)
    ax = 2 if layout == "bnhd" else 1
    return ax - (4 - nd) if varlen else ax


def _eager_order(bq, bk, bv, bdo, want_grad, want_ml, o_dt, l_dt, g_dt, pdt, options):
    """Eager attention in the port's type (FlashAttention's attention_ref with upcast=False,
    PyTorch's math path): the scores, P, dP and dS rounded to it (round_scores), and with GQA
    each q head's dK, dV accumulated into the port's type head by head, as a port that
    repeats K and V and sums their gradients in that type does."""
    layout = options.get("layout", "bnhd")
    qax, kax = _head_axis(bq, layout, options), _head_axis(bk, layout, options)
    rep = Host(bq, "q").shape[qax] // Host(bk, "k").shape[kax]

    def expand(x):
        return x.repeat_interleave(rep, dim=kax) if is_torch(x) else np.repeat(x, rep, axis=kax)

    def reduce(x):   # each group of `rep` heads accumulated into the port's type, head by head
        shape = tuple(x.shape)
        grouped = shape[:kax] + (shape[kax] // rep, rep) + shape[kax + 1:]
        g = x.reshape(grouped) if is_torch(x) else np.asarray(x).reshape(grouped)
        acc = g.select(kax + 1, 0) if is_torch(x) else np.take(g, 0, axis=kax + 1)
        for j in range(1, rep):
            nxt = g.select(kax + 1, j) if is_torch(x) else np.take(g, j, axis=kax + 1)
            acc = ((acc.float() + nxt.float()).to(x.dtype) if is_torch(x)
                   else (acc.astype(np.float32) + nxt.astype(np.float32)).astype(x.dtype))
        return acc

    opts = dict(options, ring_size=1, partition="contiguous")
    got = _forward_dict(attention(bq, bk, bv, compute="f32", out_dtype=o_dt, lse_dtype=l_dt, p_dtype=pdt,
                                  round_scores=True, return_max_logit=want_ml, **opts))
    if want_grad:
        ek, ev = (expand(bk), expand(bv)) if rep > 1 else (bk, bv)
        g = _grad_dict(attention_backward(bq, ek, ev, got["out"], got["lse"], bdo, compute="f32", out_dtype=g_dt,
                                          p_dtype=pdt, round_scores=True, **opts), options)
        if rep > 1:
            g.update(dk=reduce(g["dk"]), dv=reduce(g["dv"]))
        got.update(g)
    return got


def _forward_dict(res):
    """attention()'s results by name"""
    return dict(zip(("out", "lse", "max_logit"), res))


def _grad_dict(res, options):
    """attention_backward()'s results by name: dq, dk, dv, then dsinks and dbias when given"""
    names = ("dq", "dk", "dv") + (("dsinks",) if options.get("sinks") is not None else ()) + (
        ("dbias",) if options.get("bias") is not None else ())
    return dict(zip(names, res))


def _check_args(options, what):
    for bad in ("compute", "out_dtype", "p_dtype", "state_dtype", "lse_dtype", "round_scores", "block_dtype"):
        if bad in options:
            raise TypeError("%s() computes the reference in f64 and the baseline in the port's precision itself: "
                            "do not pass %s (say baseline= for the port's precision)" % (what, bad))
    unknown = set(options) - set(_ATTN_OPTS) - {"layout"}
    if unknown:
        raise TypeError("%s() got unexpected options: %s" % (what, ", ".join(sorted(unknown))))


def _refuse_nonfinite(refs, inputs, allow, what):
    if allow:
        return
    bad = _reference_nonfinite(refs)
    if bad:
        counts = ", ".join("%s has %d" % (n, c) for n, c in ((n, _nonfinite_count(x)) for n, x in inputs.items()
                                                             if x is not None) if c)
        raise RingattnError(-4, "%s: the reference holds NaN or Inf in %s (%s): NaN against NaN would agree and "
                            "judge nothing. Pass allow_nonfinite=True to compare them anyway (NaN = NaN and equal "
                            "infinities then agree)" % (what, ", ".join(bad), counts or "no input is NaN/Inf: "
                                                        "the scores overflow"))


def _hints(q, k, v, out, report, options):
    """sentences for a failing out that matches a common slip: axes swapped, the other causal alignment"""
    hints = []
    layout = options.get("layout", "bnhd")
    bound = report.bound if report.rule != "flex" else None

    def close(alt):
        r = compare(out, alt, atol=0.0, rtol=0.0, what="out", layout=layout)
        return r.nonfinite == 0 and (r.mean_abs <= report.bound if bound is None else r.max_abs <= bound)

    other = "bhnd" if layout == "bnhd" else "bnhd"
    try:
        alt, _ = attention(q, k, v, compute="f64", out_dtype="float64", **dict(options, layout=other))
        if tuple(alt.shape) == tuple(out.shape) and close(alt):
            hints.append("out matches the reference with layout=%r: the port (or this call) reads the axes the "
                         "other way" % other)
    except RingattnError:
        pass
    causal = options.get("causal")
    if causal in ("bottom-right", "top-left"):
        flip = "top-left" if causal == "bottom-right" else "bottom-right"
        try:
            alt, _ = attention(q, k, v, compute="f64", out_dtype="float64", **dict(options, causal=flip))
            if close(alt):
                hints.append("out matches the reference with causal=%r: the port aligns the causal mask the other "
                             "way (FlashAttention: bottom-right, key j <= i + nk - nq; SDPA is_causal: top-left, "
                             "j <= i)" % flip)
        except RingattnError:
            pass
    return hints


def check(q, k, v, *, out=None, lse=None, dout=None, dq=None, dk=None, dv=None, baseline=None, policy="fa2",
          policy_k=None, eps=None, empty_lse="-inf", allow_nonfinite=False, max_logit=None, dsinks=None, dbias=None,
          **options):
    """Check a port's outputs for q, k, v in the port's own precision: -> {name: Report};
    AssertionError when any fails. With the score options (sinks, alibi_slopes, bias, mask,
    mask_mod, document_ids) in `options`, the reference and every baseline use them too, and
    max_logit= (the port's row max of the scores), dsinks= and dbias= (its gradients of the sinks
    and of the bias, with dout) are judged as well.

    From the one set of `options` (those of attention(): layout, causal, scale, window,
    softcap, segments/dilations, mix, cu_seqlens_q/k, ring_size, partition, threads) it
    computes the f64 reference and a baseline: the same case computed the way a kernel of the
    port's precision computes it (the C library's precision emulation, one ring member), plus
    a second summation order (a ring of 2) whose error counts when it is larger. baseline=None
    takes the precision from the inputs (bf16 / f16 q, k, v: a kernel of that type), else from
    the outputs, else f32; or say "f32", "bf16", "f16". Each tensor given (out, lse; dq, dk, dv
    with dout) is judged by `policy`: "fa2" (default), "fa3", "magi", "flex" (see compare())
    or "te" (TransformerEngine's fixed tolerances, no baseline); policy_k and eps override the
    policy's k and eps. A Report carries .baseline (what was emulated) and .ratio (the port's
    error over the baseline's). Nothing to judge is a TypeError; a reference holding NaN or
    Inf (a NaN input a row can see, overflow) is refused unless allow_nonfinite=True. The
    AssertionError's message holds the report of every failing tensor, and a hint when the
    port's out matches the other layout or the other causal alignment."""
    _check_args(options, "check")
    if policy not in POLICIES:
        _refuse(-4, "policy must be one of %s, not %r" % (", ".join(repr(p) for p in POLICIES), policy))
    grads = {"dq": dq, "dk": dk, "dv": dv, "dsinks": dsinks, "dbias": dbias}
    for name, opt in (("dsinks", "sinks"), ("dbias", "bias")):
        if grads[name] is not None and options.get(opt) is None:
            raise TypeError("check(): %s= given without %s= (the option it is the gradient of)" % (name, opt))
    want_grad = any(g is not None for g in grads.values())
    want_ml = max_logit is not None
    given = {n: x for n, x in dict({"out": out, "lse": lse, "max_logit": max_logit}, **grads).items()
             if x is not None}
    if not given:
        raise TypeError("check(): nothing to judge: pass out=, lse= (and dq=, dk=, dv= with dout=), the port's "
                        "results for q, k, v")
    if want_grad and dout is None:
        raise TypeError("check(): dq, dk, dv, dsinks or dbias given without dout (the upstream gradient of the "
                        "port's backward)")
    layout = options.get("layout", "bnhd")
    prec = _port_precision(baseline, (q, k, v), list(given.values()))
    refs = _forward_dict(attention(q, k, v, compute="f64", out_dtype="float64", return_max_logit=want_ml, **options))
    if want_grad:
        refs.update(_grad_dict(attention_backward(q, k, v, refs["out"], refs["lse"], dout, compute="f64",
                                                  out_dtype="float64", **options), options))
    _refuse_nonfinite(refs, {"q": q, "k": k, "v": v, "dout": dout}, allow_nonfinite, "check()")
    # the baselines: the port's precision, one member; and a second order (a ring of 2)
    fp8 = prec.startswith("float8")
    bq, bk, bv = (_as_precision(x, prec) for x in (q, k, v))
    bdo = _as_precision(dout, "bfloat16" if fp8 else prec)
    pdt = None if prec == "float32" else ("float8_e4m3fn" if fp8 else prec)
    o_dt = _dname_of(out) or ("bfloat16" if fp8 else prec if pdt else "float32")
    l_dt = _dname_of(lse) or "float32"
    g_dt = next((_dname_of(g) for g in grads.values() if g is not None), o_dt)
    # the orders: the kernel (one member), the kernel as a ring of 2, and (low precision) eager attention
    bases = []
    for ring in (1, 2):
        opts = dict(options, ring_size=ring, partition="contiguous")
        try:
            got = _forward_dict(attention(bq, bk, bv, compute="f32", out_dtype=o_dt, lse_dtype=l_dt, p_dtype=pdt,
                                          return_max_logit=want_ml, **opts))
            if want_grad:
                got.update(_grad_dict(attention_backward(bq, bk, bv, got["out"], got["lse"], bdo, compute="f32",
                                                         out_dtype=g_dt, p_dtype=pdt, **opts), options))
        except RingattnError:
            if ring == 1:
                raise
            continue   # too short for a ring of 2: that order is left out
        bases.append(got)
    ring2 = len(bases) == 2
    if pdt and not fp8:   # (scores rounded to fp8 would be no kernel's order)
        bases.append(_eager_order(bq, bk, bv, bdo, want_grad, want_ml, o_dt, l_dt, g_dt, pdt, options))
    judge = _Judge(policy, prec, policy_k, eps, options.get("softcap", 0.0), empty_lse, layout,
                   Host(q, "q").shape != Host(k, "k").shape, _describe_baseline(prec, ring2))
    reports = {}
    for name, got in given.items():
        reports[name] = judge(name, got, refs[name], bases[0][name], [b[name] for b in bases[1:]])
        reports[name]._ring = (options.get("ring_size", 1), options.get("partition", "contiguous"))
    failed = [n for n, r in reports.items() if not r.passed]
    if failed:
        parts = ["ringattn.check: %d of %d tensors outside tolerance (%s); reference f64, baseline %s; policy %s; "
                 "options %s" % (len(failed), len(reports), ", ".join(failed), judge.describe, policy,
                                 _describe(options))]
        for n in failed:
            parts.append("--- %s (error %.3g x the baseline's) ---\n%s"
                         % (n, reports[n].ratio if reports[n].ratio is not None else math.nan,
                            str(reports[n]).rstrip("\n")))
            if reports[n].hint():
                parts.append("hint: " + reports[n].hint())
        if "out" in failed:
            parts += ["hint: " + h for h in _hints(q, k, v, out, reports["out"], options)]
        raise AssertionError("\n".join(parts))
    return reports


def _describe(options):
    shown = {k: v for k, v in options.items() if v is not None and not is_torch(v) and not isinstance(v, np.ndarray)
             and not callable(v)}
    for k in ("sinks", "alibi_slopes"):
        if options.get(k) is not None:
            shown[k] = [float("%.4g" % x) for x in _f64_vector(options[k], k).reshape(-1)[:8]]
    for k in ("bias", "mask", "mask_mod", "document_ids"):
        if options.get(k) is not None:
            shown[k] = "given"
    for k in ("cu_seqlens_q", "cu_seqlens_k", "segments", "dilations"):
        if options.get(k) is not None:
            shown[k] = list(int(x) for x in int64_array(options[k], k))
    return "{" + ", ".join("%s=%r" % kv for kv in sorted(shown.items())) + "}"


# ---------------------------------------------------------------- check: a KV-cache port

_KV_OPTS = ("causal", "window", "softcap", "sinks", "alibi_slopes", "scale", "num_splits", "split_size", "threads")


def _cast_like(x, like):
    """a baseline's tensor stored as the port stored its own (its dtype; x keeps its kind)"""
    want = _dname_of(like)
    if _dname_of(x) == want:
        return x
    if is_torch(x):
        return x.to(getattr(torch, want))
    return _as_precision(np.asarray(x), want) if want != "float32" else np.asarray(x, dtype=np.float32)


def _log2_hint(name, got, ref):
    """a sentence when a failing lse holds log2 units (got ln 2 == ref where both are finite)"""
    g = Host(got, name).obj
    g = g.detach().cpu().double().numpy() if is_torch(g) else np.asarray(g, dtype=np.float64)
    r = ref.detach().cpu().double().numpy() if is_torch(ref) else np.asarray(ref, dtype=np.float64)
    fin = np.isfinite(g) & np.isfinite(r) & (np.abs(r) > 1e-3)
    if g.shape != r.shape or not fin.any():
        return ""
    if np.max(np.abs(g[fin] * math.log(2) - r[fin]) / np.maximum(1.0, np.abs(r[fin]))) < 1e-2:
        return ("%s times ln 2 matches the reference: it holds the log-sum-exp in base 2 (as FlashAttention 3 and "
                "FlashInfer keep it inside the kernel); ringattn's lse is the natural log" % name)
    return ""


def check_kvcache(q, k_cache, v_cache, k=None, v=None, *, out=None, lse=None, splits=None, cache_seqlens,
                  block_table=None, baseline=None, policy="fa2", policy_k=None, eps=None, empty_lse="-inf",
                  allow_nonfinite=False, **options):
    """Check a KV-cache port (a decoding kernel) in its own precision: -> {name: Report};
    AssertionError when any fails. The case is attention_with_kvcache()'s (cache_seqlens,
    block_table, the new keys k, v, and `options`: causal, window, softcap, sinks,
    alibi_slopes, scale, num_splits, split_size, threads); the port's out and lse are judged,
    and with splits= its split partials, a list with one (out_s, lse_s) per split as
    attention_with_kvcache(..., return_splits=True) returns them (either of a pair may be None;
    their count must be that of the reference). Each is judged by check()'s machinery: the f64
    reference, a baseline of the port's precision (baseline=None: the inputs' low-precision
    type, else the results', else f32; or "f32", "bf16", "f16") computed with the same splits,
    P rounded to that type and each partial held in the dtype of the port's out_s, a second
    summation order (another split count for out and lse; eager attention with the scores
    rounded too for low precision), and `policy` ("fa2", "fa3", "magi", "flex", "te"),
    policy_k and eps as in check(). A partial of a split a row cannot see is out_s 0 and lse_s
    -inf, and is compared as such (NaN there fails); empty_lse (what the port's final lse may
    hold for a row that sees no key) applies to lse only. The cache is only read: the port's
    results are judged for the cache as cache_seqlens describes it, whether or not the port
    has since appended k, v to it. Reports are named "out", "lse", "splits[s].out",
    "splits[s].lse"."""
    for bad in ("compute", "out_dtype", "p_dtype", "lse_dtype", "round_scores", "block_dtype"):
        if bad in options:
            raise TypeError("check_kvcache() computes the reference in f64 and the baseline in the port's precision "
                            "itself: do not pass %s (say baseline= for the port's precision)" % bad)
    for bad in ("update_cache", "return_splits"):
        if bad in options:
            raise TypeError("check_kvcache() never writes the cache and takes the partials from splits=: do not pass "
                            "%s" % bad)
    unknown = set(options) - set(_KV_OPTS)
    if unknown:
        raise TypeError("check_kvcache() got unexpected options: %s" % ", ".join(sorted(unknown)))
    if policy not in POLICIES:
        _refuse(-4, "policy must be one of %s, not %r" % (", ".join(repr(p) for p in POLICIES), policy))
    if splits is not None:
        if not isinstance(splits, (list, tuple)) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 for p in splits):
            raise TypeError("check_kvcache(): splits must be a list of (out_s, lse_s) pairs, one per split")
    if out is None and lse is None and not any(x is not None for p in (splits or ()) for x in p):
        raise TypeError("check_kvcache(): nothing to judge: pass out=, lse= and / or splits=, the port's results")
    case = dict(options, cache_seqlens=cache_seqlens, block_table=block_table)
    want_splits = splits is not None
    given = {"out": out, "lse": lse}
    for s, (po, pl) in enumerate(splits or ()):
        given["splits[%d].out" % s], given["splits[%d].lse" % s] = po, pl
    given = {n: x for n, x in given.items() if x is not None}

    def named(res):
        d = {"out": res[0], "lse": res[1]}
        for s, (po, pl) in enumerate(res[2] if len(res) > 2 else ()):
            d["splits[%d].out" % s], d["splits[%d].lse" % s] = po, pl
        return d

    refs = attention_with_kvcache(q, k_cache, v_cache, k, v, compute="f64", out_dtype="float64",
                                  return_splits=want_splits, **case)
    if want_splits and len(splits) != len(refs[2]):
        raise TypeError("check_kvcache(): splits has %d (out_s, lse_s) pairs; this case has %d splits (num_splits = "
                        "%r, split_size = %r)" % (len(splits), len(refs[2]), options.get("num_splits", 1),
                                                  options.get("split_size")))
    refs = named(refs)
    _refuse_nonfinite({n: refs[n] for n in given}, {"q": q, "k_cache": k_cache, "v_cache": v_cache, "k": k, "v": v},
                      allow_nonfinite, "check_kvcache()")
    prec = _port_precision(baseline, (q, k_cache, v_cache, k, v), list(given.values()))
    fp8 = prec.startswith("float8")
    pdt = None if prec == "float32" else ("float8_e4m3fn" if fp8 else prec)
    b_in = [_as_precision(x, prec) for x in (q, k_cache, v_cache, k, v)]
    # each partial held in the dtype the port stores its out_s in (f32 when it gives none)
    sdt = next((_dname_of(po) for po, _ in (splits or ()) if po is not None), None)
    bdt = sdt if sdt in _LOW else None

    def order(round_scores=False, **change):
        res = attention_with_kvcache(*b_in, compute="f32", out_dtype="float32", p_dtype=pdt,
                                     round_scores=round_scores, block_dtype=bdt, return_splits=want_splits,
                                     **dict(case, **change))
        d = named(res)
        return {n: _cast_like(d[n], given[n]) for n in given if n in d}

    base = order()
    # other orders: another split count (the final result only), eager attention in the port's type
    if options.get("split_size") is None and options.get("num_splits", 1) in (0, 1):
        other = order(num_splits=2)
    else:
        other = order(num_splits=1, split_size=None)
    others = {n: [x] for n, x in other.items() if not n.startswith("splits")}
    if pdt and not fp8:
        for n, x in order(round_scores=True).items():
            others.setdefault(n, []).append(x)
    describe = "%s: the same splits, %s%s, the partials merged in f32, results rounded to the port's dtypes; " \
        "as other orders %s: the largest error sets the bound" % (
            _SHORT[prec], "inputs stored in %s, products summed in f32, P rounded to %s before P V"
            % (_SHORT[prec], _SHORT[pdt]) if pdt else "products and softmax in f32",
            ", each partial held in %s" % _SHORT[bdt] if bdt else "",
            "another split count (out, lse)" + (" and eager attention, the scores rounded too" if pdt and not fp8
                                                else ""))
    gqa = Host(q, "q").shape[2] != Host(k_cache, "k_cache").shape[2]
    softcap = options.get("softcap", 0.0)
    judge = _Judge(policy, prec, policy_k, eps, softcap, empty_lse, "bnhd", gqa, describe)
    strict = _Judge(policy, prec, policy_k, eps, softcap, "-inf", "bnhd", gqa, describe)
    reports = {}
    for name, got in given.items():
        j = strict if name.startswith("splits") else judge
        reports[name] = j(name, got, refs[name], base[name], others.get(name, []))
    failed = [n for n, r in reports.items() if not r.passed]
    if failed:
        shown = dict(options, cache_seqlens=[int(x) for x in _int32_table(cache_seqlens, "cache_seqlens", 1)]
                     if not isinstance(cache_seqlens, (int, np.integer)) else int(cache_seqlens),
                     paged=block_table is not None, new_keys=0 if k is None else Host(k, "k").shape[1])
        parts = ["ringattn.check_kvcache: %d of %d tensors outside tolerance (%s); reference f64, baseline %s; policy "
                 "%s; options %s" % (len(failed), len(reports), ", ".join(failed), describe, policy, _describe(shown))]
        for n in failed:
            rep = reports[n]
            parts.append("--- %s (error %.3g x the baseline's) ---\n%s"
                         % (n, rep.ratio if rep.ratio is not None else math.nan, str(rep).rstrip("\n")))
            hints = [rep.hint()] + ([_log2_hint(n, given[n], refs[n])] if n.endswith("lse") else [])
            parts += ["hint: " + h for h in hints if h]
        raise AssertionError("\n".join(parts))
    return reports


# ---------------------------------------------------------------- the layer

_WEIGHTS = ("wq", "wk", "wv", "bq", "bk", "bv", "wqkv", "bqkv", "wo", "bo", "ln_gamma", "ln_beta")


def _weights(weights):
    if not hasattr(weights, "items"):
        raise TypeError("weights must be a mapping name -> array with names among %s" % ", ".join(_WEIGHTS))
    unknown = set(weights) - set(_WEIGHTS)
    if unknown:
        _refuse(-4, "unknown weight names %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(_WEIGHTS)))
    hosts = {n: Host(w, n) for n, w in weights.items() if w is not None}
    arr = (_lib.Tensor * 12)()
    for i, n in enumerate(_WEIGHTS):
        if n in hosts:
            arr[i] = hosts[n].view()
    return hosts, arr


def _layer_common(x_q, x_k, x_v, weights, num_heads, options):
    unknown = set(options) - set(_ATTN_OPTS)
    if unknown:
        raise TypeError("unexpected options: %s" % ", ".join(sorted(unknown)))
    hx = [Host(x, n) if x is not None else None for x, n in ((x_q, "x_q"), (x_k, "x_k"), (x_v, "x_v"))]
    for h in hx:
        if h is not None and len(h.shape) != 3:
            _refuse(-2, "%s has shape %s; expected [b, n, E]" % (h.name, h.shape))
    hw, warr = _weights(weights)
    e = hx[0].shape[2]
    heads = _int(num_heads, "num_heads", 1, 2**62)
    like_torch, _ = _result_kind(*[h for h in hx if h is not None], *hw.values())
    opts = _Options(hx[0].shape[1], (hx[1] or hx[0]).shape[1], batch=hx[0].shape[0], heads=heads,
                    like_torch=like_torch, **options)
    return hx, hw, warr, e, heads, opts


def layer_forward(x_q, weights, *, num_heads, x_k=None, x_v=None, layer_norm=True, ln_eps=1e-5, out_dtype=None,
                  **options):
    """The multihead (dilated) attention layer (ringattn_layer_forward): y [b, nq, E].

    x_q (x_k, x_v for cross attention; None = self-attention) are [b, n, E]; weights maps
    names to arrays in nn.Linear's [out, in] layout: wq, wk, wv (or fused wqkv [3E, E]), wo,
    biases bq, bk, bv (bqkv), bo, LayerNorm ln_gamma, ln_beta (absent = no bias / 1 / 0).
    options: those of attention() (causal, segments, dilations, ring_size, compute, ...)."""
    hx, hw, warr, e, heads, opts = _layer_common(x_q, x_k, x_v, weights, num_heads, options)
    like_torch, device = _result_kind(*[h for h in hx if h is not None], *hw.values())
    hy = new_output(hx[0].shape, dtype_name(out_dtype) or "float64", like_torch, "y")
    tx = [h.view() if h is not None else None for h in hx]
    err = _err()
    st = _lib.lib.ringattn_py_layer_forward(ctypes.byref(opts.c), e, heads, 1 if layer_norm else 0,
                                            _float(ln_eps, "ln_eps"), warr, tx[0], *[
                                                ctypes.byref(t) if t is not None else None for t in tx[1:]],
                                            hy.view(), err, _ERR)
    opts.reraise()
    if st != 0:
        fail(st, err)
    return deliver(hy, device)


def layer_backward(x_q, weights, dy, *, num_heads, x_k=None, x_v=None, layer_norm=True, ln_eps=1e-5,
                   out_dtype=None, grads=True, **options):
    """Gradients of the layer for the upstream gradient dy: (dx_q, dx_k, dx_v, dweights).

    Self-attention (x_k = x_v = None): dx_q is the whole input gradient, dx_k = dx_v = None.
    dweights maps every weight given to its gradient (same shape); {} with grads=False."""
    hx, hw, warr, e, heads, opts = _layer_common(x_q, x_k, x_v, weights, num_heads, options)
    hdy = Host(dy, "dy")
    like_torch, device = _result_kind(*[h for h in hx if h is not None], hdy, *hw.values())
    dname = dtype_name(out_dtype) or "float64"
    cross = hx[1] is not None or hx[2] is not None
    hdx = [new_output(h.shape, dname, like_torch, "d" + h.name) if h is not None and (i == 0 or cross) else None
           for i, h in enumerate(hx)]
    hg = {n: new_output(h.shape, dname, like_torch, "d" + n) for n, h in hw.items()} if grads else {}
    garr = (_lib.Tensor * 12)()
    for i, n in enumerate(_WEIGHTS):
        if n in hg:
            garr[i] = hg[n].view()
    tx = [h.view() if h is not None else None for h in hx]
    tdx = [h.view() if h is not None else None for h in hdx]
    ref = lambda t: ctypes.byref(t) if t is not None else None  # noqa: E731
    err = _err()
    st = _lib.lib.ringattn_py_layer_backward(ctypes.byref(opts.c), e, heads, 1 if layer_norm else 0,
                                             _float(ln_eps, "ln_eps"), warr, tx[0], ref(tx[1]), ref(tx[2]),
                                             hdy.view(), tdx[0], ref(tdx[1]), ref(tdx[2]), garr, 1 if grads else 0,
                                             err, _ERR)
    opts.reraise()
    if st != 0:
        fail(st, err)
    dx = [deliver(h, device) if h is not None else None for h in hdx]
    return dx[0], dx[1], dx[2], {n: deliver(h, device) for n, h in hg.items()}
