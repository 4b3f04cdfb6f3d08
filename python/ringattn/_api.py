"""The package's functions: each one builds views of its arguments and makes one C call."""
import collections
import ctypes
import math
import os
import tempfile

import numpy as np

from . import _lib
from ._lib import RingattnError, fail
from ._tensors import Host, deliver, dtype_name, int64_array, is_torch, new_output

_ERR = 1024
_CAUSAL = {"none": 0, "bottom-right": 1, "top-left": 2}
_PARTITION = {"contiguous": 0, "zigzag": 1, "striped": 2}
_MIX = {"head-groups": 0, "lse": 1}
_COMPUTE = {"f64": _lib.F64, "float64": _lib.F64, "f32": _lib.F32, "float32": _lib.F32}
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
                 cu_seqlens_k=None, compute="f64", threads=0):
        o = self.c = _lib.Options()
        self.keep = []
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
              "cu_seqlens_q", "cu_seqlens_k", "compute", "threads")


def attention(q, k, v, *, layout="bnhd", causal=None, scale=None, ring_size=1, partition="contiguous", window=None,
              softcap=0.0, segments=None, dilations=None, mix="head-groups", cu_seqlens_q=None, cu_seqlens_k=None,
              compute="f64", out_dtype=None, threads=0):
    """Exact attention of q, k, v: returns (out, lse).

    q, k, v: NumPy arrays or torch tensors, float64/float32/float16/bfloat16, any strides (read
    in place), in `layout` "bnhd" ([b, n, h, d], FlashAttention's) or "bhnd" ([b, h, n, d],
    PyTorch SDPA's); with cu_seqlens_q/k (varlen, packed sequences) also 3-D [total, h, d]
    ("bhnd": [h, total, d]). out comes back in the same layout, lse as (b, h, nq), or (h,
    total_q) for varlen; out_dtype defaults to float64. Torch in, torch out (on q's device).
    Rows that see no key get out = 0 and lse = -inf. Raises RingattnError when refused."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hq, hk, hv = Host(q, "q"), Host(k, "k"), Host(v, "v")
    lq, lk, lv = _lead(hq, varlen, layout), _lead(hk, varlen, layout), _lead(hv, varlen, layout)
    tq, tk, tv = hq.view(perm, lq), hk.view(perm, lk), hv.view(perm, lv)
    b, nq, h = tq.shape[0], tq.shape[1], tq.shape[2]
    opts = _Options(nq, tk.shape[1], causal=causal, scale=scale, ring_size=ring_size, partition=partition,
                    window=window, softcap=softcap, segments=segments, dilations=dilations, mix=mix,
                    cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=threads)
    like_torch, device = _result_kind(hq, hk, hv)
    dname = dtype_name(out_dtype) or "float64"
    ho = new_output(_caller_shape((b, nq, h, tv.shape[3]), perm, lq), dname, like_torch, "out")
    hl = new_output((b, h, nq)[lq:], dname, like_torch, "lse")
    to, tl = ho.view(perm, lq), hl.view(None, lq)
    err = _err()
    st = _lib.lib.ringattn_py_forward(ctypes.byref(opts.c), tq, tk, tv, to, tl, err, _ERR)
    if st != 0:
        fail(st, err, layout)
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
                       threads=0):
    """Gradients (dq, dk, dv) of attention for the upstream gradient dout, from the forward's
    out and lse (as attention() returns them), with the same options. Same layouts and types
    as attention(); each gradient has its input's shape, dtype out_dtype (default float64)."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hs, leads, views = _backward_views(q, k, v, out, lse, dout, layout, varlen)
    hq, hk, hv, ho, hl, hd = hs
    tq, tk = views[0], views[1]
    opts = _Options(tq.shape[1], tk.shape[1], causal=causal, scale=scale, ring_size=ring_size, partition=partition,
                    window=window, softcap=softcap, segments=segments, dilations=dilations, mix=mix,
                    cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=threads)
    like_torch, device = _result_kind(*hs)
    dname = dtype_name(out_dtype) or "float64"
    grads = [new_output(h.shape, dname, like_torch, "d" + h.name) for h in (hq, hk, hv)]
    tg = [g.view(perm, ld) for g, ld in zip(grads, leads[:3])]
    err = _err()
    st = _lib.lib.ringattn_py_backward(ctypes.byref(opts.c), *views, *tg, err, _ERR)
    if st != 0:
        fail(st, err, layout)
    return tuple(deliver(g, device) for g in grads)


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


# ---------------------------------------------------------------- comparison

Mismatch = collections.namedtuple("Mismatch", "index got ref err allowed")


class Report:
    """The verdict of ringattn_compare on one tensor.

    passed: bool (also bool(report)); max_abs, max_rel and where (index of the max abs error,
    in the caller's layout), where_rel; outside: elements outside tolerance (NaN/Inf mismatches
    included); nonfinite: NaN/Inf mismatches; mismatches: the first few as Mismatch(index,
    got, ref, err, allowed); count; policy ('a' atol/rtol, 'b' baseline); bound (policy b);
    str(report): the report `ringattn-golden compare` prints."""

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
    if ndim == 4:
        return layout
    if ndim == 3:
        if what in (None, "lse"):
            return "bhn."
        return "nhd." if layout == "bnhd" else "hnd."
    if ndim == 2:
        return "hn.." if what in (None, "lse") else "ij.."
    return "i..."


def compare(got, ref, *, baseline=None, atol=None, rtol=None, k=2.0, eps=1e-6, what=None, layout="bnhd",
            empty_lse="-inf"):
    """Compare a port's output `got` with the reference `ref` (the C comparison) -> Report.

    Without a baseline: policy (a), |got - ref| <= atol + rtol |ref| (defaults by got's dtype,
    as torch.testing). With a baseline (a plain f32 computation of the same case): policy (b),
    FlashAttention's, |got - ref| <= k max|baseline - ref| + eps. Same shapes (an axis of length
    1 in front on one side only is ignored: FlashAttention's varlen lse (h, total_q) against
    (1, h, total_q)); any dtypes and strides. `what` names the tensor (out, lse, dq, ...) and
    with `layout` the axes of the report. empty_lse: what got may hold where ref's lse is -inf
    (a row that sees no key): "-inf" (the default, ringattn's), "+inf" (FlashAttention-2/3), "0"
    (PyTorch's CPU flash kernel) or "any" (not judged)."""
    _layout(layout)
    if not isinstance(empty_lse, str) or empty_lse not in _EMPTY_ALIASES:
        _refuse(-4, "empty_lse must be one of '-inf', '+inf', '0', 'any', not %r" % (empty_lse,))
    empty_lse = _EMPTY_ALIASES[empty_lse]
    pol = (ctypes.c_double * 4)()
    for i, (x, name) in enumerate(((atol, "atol"), (rtol, "rtol"), (k, "k"), (eps, "eps"))):
        if x is None and i < 2:
            pol[i] = -1.0
            continue
        pol[i] = _float(x, name)
        if pol[i] < 0:
            _refuse(-4, "%s must be >= 0, not %r" % (name, x))
    hg, hr = Host(got, "got"), Host(ref, "ref")
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
    fres, ires = (ctypes.c_double * 12)(), (ctypes.c_int64 * 14)()
    bad_at, bad_val = (ctypes.c_int64 * (4 * _lib.KEEP))(), (ctypes.c_double * (4 * _lib.KEEP))()
    report = ctypes.create_string_buffer(8192)
    err = _err()
    st = _lib.lib.ringattn_py_compare(tg, tr, ctypes.byref(tb) if tb is not None else None, pol,
                                      EMPTY_LSE[empty_lse], axes, fres, ires, bad_at, bad_val, report, 8192, err, _ERR)
    if st != 0:
        fail(st, err)
    rep = Report(what, fres, ires, bad_at, bad_val, report.value.decode("utf-8", "replace"), ndim_g, leads[0],
                 empty_lse)
    rep._inputs = (hosts, leads, pol, EMPTY_LSE[empty_lse], layout)
    return rep


def check(q, k, v, *, out=None, lse=None, dout=None, dq=None, dk=None, dv=None, policy_k=2.0, eps=1e-6,
          empty_lse="-inf", **options):
    """Check a port's outputs for q, k, v: -> {name: Report}; AssertionError when any fails.

    Computes, from the one set of `options` (those of attention(): layout, causal, scale,
    window, softcap, segments/dilations, mix, cu_seqlens_q/k, ring_size, partition, threads),
    the f64 reference and a plain f32 baseline (compute f32, one member, f32 storage), and
    judges every tensor given (out, lse; dq, dk, dv with dout) by FlashAttention's policy (b):
    |got - ref| <= policy_k * max|baseline - ref| + eps. empty_lse: as in compare(). The
    AssertionError's message holds the report of every failing tensor."""
    for bad in ("compute", "out_dtype"):
        if bad in options:
            raise TypeError("check() computes the reference in f64 and the baseline in f32 itself: "
                            "do not pass %s" % bad)
    unknown = set(options) - set(_ATTN_OPTS) - {"layout"}
    if unknown:
        raise TypeError("check() got unexpected options: %s" % ", ".join(sorted(unknown)))
    grads = {"dq": dq, "dk": dk, "dv": dv}
    want_grad = any(g is not None for g in grads.values())
    if want_grad and dout is None:
        raise TypeError("check(): dq, dk or dv given without dout (the upstream gradient of the port's backward)")
    layout = options.get("layout", "bnhd")
    base_opts = dict(options, ring_size=1, partition="contiguous")
    ref_out, ref_lse = attention(q, k, v, compute="f64", out_dtype="float64", **options)
    b_out, b_lse = attention(q, k, v, compute="f32", out_dtype="float32", **base_opts)
    refs, bases = {"out": ref_out, "lse": ref_lse}, {"out": b_out, "lse": b_lse}
    if want_grad:
        r = attention_backward(q, k, v, ref_out, ref_lse, dout, compute="f64", out_dtype="float64", **options)
        bb = attention_backward(q, k, v, b_out, b_lse, dout, compute="f32", out_dtype="float32", **base_opts)
        refs.update(zip(("dq", "dk", "dv"), r))
        bases.update(zip(("dq", "dk", "dv"), bb))
    given = dict({"out": out, "lse": lse}, **grads)
    reports = {}
    for name, got in given.items():
        if got is None:
            continue
        reports[name] = compare(got, refs[name], baseline=bases[name], k=policy_k, eps=eps, what=name,
                                layout=layout, empty_lse=empty_lse)
        reports[name]._ring = (options.get("ring_size", 1), options.get("partition", "contiguous"))
    failed = [n for n, r in reports.items() if not r.passed]
    if failed:
        parts = ["ringattn.check: %d of %d tensors outside tolerance (%s); reference f64, baseline f32, options %s"
                 % (len(failed), len(reports), ", ".join(failed), _describe(options))]
        for n in failed:
            parts.append("--- %s ---\n%s" % (n, str(reports[n]).rstrip("\n")))
            if reports[n].hint():
                parts.append("hint: " + reports[n].hint())
        raise AssertionError("\n".join(parts))
    return reports


def _describe(options):
    shown = {k: v for k, v in options.items() if v is not None and not is_torch(v) and not isinstance(v, np.ndarray)}
    for k in ("cu_seqlens_q", "cu_seqlens_k", "segments", "dilations"):
        if options.get(k) is not None:
            shown[k] = list(int(x) for x in int64_array(options[k], k))
    return "{" + ", ".join("%s=%r" % kv for kv in sorted(shown.items())) + "}"


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
    opts = _Options(hx[0].shape[1], (hx[1] or hx[0]).shape[1], **options)
    return hx, hw, warr, e, _int(num_heads, "num_heads", 1, 2**62), opts


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
    if st != 0:
        fail(st, err)
    dx = [deliver(h, device) if h is not None else None for h in hdx]
    return dx[0], dx[1], dx[2], {n: deliver(h, device) for n, h in hg.items()}
