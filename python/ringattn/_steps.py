"""Per-step goldens: the ring seen from inside, one record per (member, step).

The records are read from the library's own trace events (ringattn_trace_positions /
ringattn_trace_result / ringattn_trace_grads) during one forward or backward call, so they
are what the ring itself did, not a second model of it. The ring runs on one thread: the
callback is a Python function and is never entered from two threads at once.
"""
import ctypes

import numpy as np

from . import _lib
from ._api import _ERR, _Options, _backward_views, _caller_shape, _err, _layout, _lead, _result_kind
from ._lib import RingattnError, fail
from ._tensors import Host, deliver, dtype_name, new_output, torch


class Step:
    """What ring member `member` holds and has computed after ring step `step`.

    src: whose K/V chunk it holds ((member - step) mod ring_size); computed: False when no
    (query, key) pair of the block was visible and the block was skipped; tiles: score tiles
    computed; q_positions, k_positions: the global positions (int64) of the member's rows and
    of the chunk's keys, in the order of the arrays below.

    Forward (steps()): block_out [b, rows, h, dv] and block_lse (b, h, rows), the attention of
    the member's queries over this chunk alone (lse -inf, out 0 where a row sees none of it);
    out and lse, the attention over every chunk received up to this step, normalised. After
    the last step they are the final outputs' rows. Backward (steps_backward()): dq [b, rows,
    h, d], the member's running dQ; dk, dv [b, keys, hk, d | dv], the travelling partial sums
    of chunk src after this step (complete when they arrive home). Arrays are in the caller's
    layout ("bhnd": heads before positions) and type (torch in, torch out); fields of the
    other pass are None."""

    __slots__ = ("pass_", "member", "step", "src", "computed", "tiles", "q_positions", "k_positions",
                 "block_out", "block_lse", "out", "lse", "dq", "dk", "dv")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def __repr__(self):
        return "<ringattn.Step %s member %d step %d: chunk of member %d, %s, %d rows x %d keys>" % (
            "forward" if self.pass_ == 0 else "backward", self.member, self.step, self.src,
            "computed" if self.computed else "skipped", len(self.q_positions), len(self.k_positions))


def _positions(evp, keys, n, like_torch):
    pos = np.empty(n, dtype=np.int64)
    got = _lib.lib.ringattn_trace_positions(evp, keys, pos.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)), n)
    if got != n:
        raise RingattnError(int(got) if got < 0 else -2,
                            "ringattn_trace_positions returned %d for %d %s" % (got, n, "keys" if keys else "rows"))
    return torch.from_numpy(pos) if like_torch else pos


def _record(evp, ev, pos_torch):
    return dict(pass_=ev.pass_, member=ev.member, step=ev.step, src=ev.src, computed=bool(ev.computed),
                tiles=int(ev.tiles), q_positions=_positions(evp, 0, ev.rows, pos_torch),
                k_positions=_positions(evp, 1, ev.keys, pos_torch))


def _ring(call, on_event):
    """Run `call(trace_fn)` with on_event(evp) at every (member, step); a Python exception
    raised there is kept (ctypes would only print it), the later events are passed over, and
    it is raised again after the C call. -> (status, records sorted by (member, step))."""
    records, errors = [], []

    def trampoline(evp, user):
        if errors:
            return
        try:
            records.append(on_event(evp))
        except BaseException as e:  # noqa: B902 - KeyboardInterrupt too: re-raised below
            errors.append(e)

    fn = _lib.TRACE_FN(trampoline)   # alive for the whole call
    st = call(fn)
    if errors:
        raise errors[0]
    records.sort(key=lambda r: (r.member, r.step))
    return st, records


def steps(q, k, v, *, ring_size, layout="bnhd", causal=None, scale=None, partition="contiguous", window=None,
          softcap=0.0, segments=None, dilations=None, mix="head-groups", cu_seqlens_q=None, cu_seqlens_k=None,
          compute="f64", out_dtype=None):
    """The forward ring of `ring_size` members, step by step: a list of Step records, one per
    (member, step), sorted by member then step, with block_out, block_lse, out, lse. Options
    and layouts as attention() (the ring runs on one thread: no `threads`); out_dtype is the
    storage of the records' arrays (default float64)."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hq, hk, hv = Host(q, "q"), Host(k, "k"), Host(v, "v")
    lq, lk, lv = _lead(hq, varlen, layout), _lead(hk, varlen, layout), _lead(hv, varlen, layout)
    tq, tk, tv = hq.view(perm, lq), hk.view(perm, lk), hv.view(perm, lv)
    b, nq, h, dv = tq.shape[0], tq.shape[1], tq.shape[2], tv.shape[3]
    opts = _Options(nq, tk.shape[1], causal=causal, scale=scale, ring_size=ring_size, partition=partition,
                    window=window, softcap=softcap, segments=segments, dilations=dilations, mix=mix,
                    cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=1)
    like_torch, device = _result_kind(hq, hk, hv)
    dname = dtype_name(out_dtype) or "float64"
    ho = new_output(_caller_shape((b, nq, h, dv), perm, lq), dname, like_torch, "out")
    hl = new_output((b, h, nq)[lq:], dname, like_torch, "lse")

    def on_event(evp):
        ev = evp.contents
        rec = _record(evp, ev, like_torch)
        for block, (on, ln) in ((1, ("block_out", "block_lse")), (0, ("out", "lse"))):
            o = new_output(_caller_shape((ev.batch, ev.rows, ev.heads, ev.dim_v), perm, lq), dname, like_torch, on)
            lse = new_output((ev.batch, ev.heads, ev.rows)[lq:], dname, like_torch, ln)
            err = _err()
            st = _lib.lib.ringattn_py_trace_result(evp, block, o.view(perm, lq), lse.view(None, lq), err, _ERR)
            if st != 0:
                fail(st, err, layout)
            rec[on], rec[ln] = deliver(o, device), deliver(lse, device)
        return Step(**rec)

    err = _err()
    st, records = _ring(lambda fn: _lib.lib.ringattn_py_forward_steps(
        ctypes.byref(opts.c), tq, tk, tv, ho.view(perm, lq), hl.view(None, lq), fn, None, err, _ERR), on_event)
    if st != 0:
        fail(st, err, layout)
    return records


def steps_backward(q, k, v, out, lse, dout, *, ring_size, layout="bnhd", causal=None, scale=None,
                   partition="contiguous", window=None, softcap=0.0, segments=None, dilations=None, mix="head-groups",
                   cu_seqlens_q=None, cu_seqlens_k=None, compute="f64", out_dtype=None):
    """The backward ring, step by step: Step records with dq (the member's running dQ) and dk,
    dv (the travelling partial sums of chunk src after the step), sorted by member then step.
    out and lse are the forward's (attention() with the same options); arguments as in
    attention_backward() (no `threads`: the ring runs on one thread)."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hs, leads, views = _backward_views(q, k, v, out, lse, dout, layout, varlen)
    hq, hk, hv, ho, hl, hd = hs
    opts = _Options(views[0].shape[1], views[1].shape[1], causal=causal, scale=scale, ring_size=ring_size,
                    partition=partition, window=window, softcap=softcap, segments=segments, dilations=dilations,
                    mix=mix, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=1)
    like_torch, device = _result_kind(*hs)
    dname = dtype_name(out_dtype) or "float64"
    grads = [new_output(h.shape, dname, like_torch, "d" + h.name) for h in (hq, hk, hv)]
    tg = [g.view(perm, ld) for g, ld in zip(grads, leads[:3])]
    lq, lk = leads[0], leads[1]

    def on_event(evp):
        ev = evp.contents
        rec = _record(evp, ev, like_torch)
        shapes = (("dq", (ev.batch, ev.rows, ev.heads, ev.dim), lq),
                  ("dk", (ev.batch, ev.keys, ev.kv_heads, ev.dim), lk),
                  ("dv", (ev.batch, ev.keys, ev.kv_heads, ev.dim_v), lk))
        outs = [(name, new_output(_caller_shape(s, perm, ld), dname, like_torch, name), ld) for name, s, ld in shapes]
        err = _err()
        st = _lib.lib.ringattn_py_trace_grads(evp, *[o.view(perm, ld) for _, o, ld in outs], err, _ERR)
        if st != 0:
            fail(st, err, layout)
        for name, o, _ in outs:
            rec[name] = deliver(o, device)
        return Step(**rec)

    err = _err()
    st, records = _ring(lambda fn: _lib.lib.ringattn_py_backward_steps(
        ctypes.byref(opts.c), *views, *tg, fn, None, err, _ERR), on_event)
    if st != 0:
        fail(st, err, layout)
    return records
