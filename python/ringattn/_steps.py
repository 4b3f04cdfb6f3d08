"""Per-step goldens: the ring seen from inside, one record per (member, step).

The records are read from the library's own trace events (ringattn_trace_positions /
ringattn_trace_result / ringattn_trace_grads) during one forward or backward call, so they
are what the ring itself did, not a second model of it. The ring runs on one thread: the
callback is a Python function and is never entered from two threads at once.
"""
import ctypes

import numpy as np

from . import _lib
from ._api import (_ERR, POLICIES, _Judge, _Options, _as_precision, _backward_views, _caller_shape, _check_args,
                   _describe, _dname_of, _err, _layout, _lead, _port_precision, _refuse, _refuse_nonfinite,
                   _result_kind)
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
          compute="f64", out_dtype=None, p_dtype=None, state_dtype=None, round_scores=False, block_dtype=None,
          q_descale=None, k_descale=None, v_descale=None, sinks=None, alibi_slopes=None, bias=None, mask=None,
          mask_mod=None, document_ids=None):
    """The forward ring of `ring_size` members, step by step: a list of Step records, one per
    (member, step), sorted by member then step, with block_out, block_lse, out, lse. Options
    and layouts as attention() (the ring runs on one thread: no `threads`), the precision
    emulation (p_dtype, round_scores, block_dtype, state_dtype) and the score options (sinks,
    alibi_slopes, bias, mask, mask_mod, document_ids) included; out_dtype is the storage of the
    records' arrays (default float64)."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hq, hk, hv = Host(q, "q"), Host(k, "k"), Host(v, "v")
    lq, lk, lv = _lead(hq, varlen, layout), _lead(hk, varlen, layout), _lead(hv, varlen, layout)
    tq, tk, tv = hq.view(perm, lq), hk.view(perm, lk), hv.view(perm, lv)
    b, nq, h, dv = tq.shape[0], tq.shape[1], tq.shape[2], tv.shape[3]
    like_torch, device = _result_kind(hq, hk, hv)
    opts = _Options(nq, tk.shape[1], causal=causal, scale=scale, ring_size=ring_size, partition=partition,
                    window=window, softcap=softcap, segments=segments, dilations=dilations, mix=mix,
                    cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=1,
                    p_dtype=p_dtype, state_dtype=state_dtype, round_scores=round_scores, block_dtype=block_dtype,
                    q_descale=q_descale, k_descale=k_descale, v_descale=v_descale, sinks=sinks,
                    alibi_slopes=alibi_slopes, bias=bias, mask=mask, mask_mod=mask_mod, document_ids=document_ids,
                    batch=b, heads=h, like_torch=like_torch)
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
    opts.reraise()
    if st != 0:
        fail(st, err, layout)
    return records


def steps_backward(q, k, v, out, lse, dout, *, ring_size, layout="bnhd", causal=None, scale=None,
                   partition="contiguous", window=None, softcap=0.0, segments=None, dilations=None, mix="head-groups",
                   cu_seqlens_q=None, cu_seqlens_k=None, compute="f64", out_dtype=None, sinks=None, alibi_slopes=None,
                   bias=None, mask=None, mask_mod=None, document_ids=None):
    """The backward ring, step by step: Step records with dq (the member's running dQ) and dk,
    dv (the travelling partial sums of chunk src after the step), sorted by member then step.
    out and lse are the forward's (attention() with the same options); arguments as in
    attention_backward() (no `threads`: the ring runs on one thread), the score options
    included (the records hold dq, dk, dv; dsinks and dbias are attention_backward()'s)."""
    perm = _layout(layout)
    varlen = cu_seqlens_q is not None or cu_seqlens_k is not None
    hs, leads, views = _backward_views(q, k, v, out, lse, dout, layout, varlen)
    hq, hk, hv, ho, hl, hd = hs
    like_torch, device = _result_kind(*hs)
    opts = _Options(views[0].shape[1], views[1].shape[1], causal=causal, scale=scale, ring_size=ring_size,
                    partition=partition, window=window, softcap=softcap, segments=segments, dilations=dilations,
                    mix=mix, cu_seqlens_q=cu_seqlens_q, cu_seqlens_k=cu_seqlens_k, compute=compute, threads=1,
                    sinks=sinks, alibi_slopes=alibi_slopes, bias=bias, mask=mask, mask_mod=mask_mod,
                    document_ids=document_ids, batch=views[0].shape[0], heads=views[0].shape[2],
                    like_torch=like_torch)
    dname = dtype_name(out_dtype) or "float64"
    opts.want_grads(dname, like_torch)
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
    opts.reraise()
    if st != 0:
        fail(st, err, layout)
    return records


_RECORD_FIELDS = ("out", "lse", "block_out", "block_lse")


def _cast_like(x, like):
    """the baseline's record stored as the port stored its own (its dtype)"""
    want = _dname_of(like)
    if _dname_of(x) == want:
        return x
    if torch is not None and isinstance(x, torch.Tensor):
        return x.to(getattr(torch, want))
    return np.asarray(x).astype(np.asarray(like).dtype)


def check_steps(q, k, v, records, *, ring_size, partition="contiguous", baseline=None, policy="fa2", policy_k=None,
                eps=None, empty_lse="-inf", allow_nonfinite=False, **options):
    """Check a ring port's per-step state, in the port's own precision: -> {(member, step):
    {name: Report}}; AssertionError naming the first failing (member, step) in the order the
    ring ran (steps in order, members in order within a step).

    records maps (member, step) to a dict with any of "out", "lse" (the port's running result
    after that step, normalised), "block_out", "block_lse" (the step's block alone): arrays over
    the member's rows in the order of Step.q_positions, in the caller's layout (out [b, rows,
    h, dv] for "bnhd", [b, h, rows, dv] for "bhnd"; lse (b, h, rows)). The reference is
    steps() in f64; the baseline the same ring computed in the port's precision (baseline=None:
    from the inputs' dtype, else from the records', else f32; or "f32", "bf16", "f16"), each
    record stored in the dtype the port used for it. policy, policy_k, eps, empty_lse,
    allow_nonfinite: as in check(); options: those of steps() (layout, causal, window, ...)."""
    _check_args(options, "check_steps")
    options.pop("threads", None)
    options.pop("ring_size", None)
    if policy not in POLICIES:
        _refuse(-4, "policy must be one of %s, not %r" % (", ".join(repr(p) for p in POLICIES), policy))
    if not hasattr(records, "items") or not records:
        raise TypeError("check_steps(): records must be a non-empty mapping (member, step) -> {'out': ..., 'lse': ..., "
                        "'block_out': ..., 'block_lse': ...}")
    for key, rec in records.items():
        if (not isinstance(key, tuple) or len(key) != 2 or not all(isinstance(x, (int, np.integer)) for x in key)
                or not 0 <= key[0] < ring_size or not 0 <= key[1] < ring_size):
            raise TypeError("check_steps(): record key %r is not (member, step) with both in [0, ring_size = %d)"
                            % (key, ring_size))
        if not hasattr(rec, "items") or not rec:
            raise TypeError("check_steps(): record %r must be a non-empty dict of %s" % (key, ", ".join(_RECORD_FIELDS)))
        unknown = set(rec) - set(_RECORD_FIELDS)
        if unknown:
            raise TypeError("check_steps(): record %r has %s; the fields are %s"
                            % (key, ", ".join(sorted(unknown)), ", ".join(_RECORD_FIELDS)))
    layout = options.get("layout", "bnhd")
    given = [x for rec in records.values() for x in rec.values() if x is not None]
    prec = _port_precision(baseline, (q, k, v), given)
    ref = {(r.member, r.step): r for r in steps(q, k, v, ring_size=ring_size, partition=partition, compute="f64",
                                                **options)}
    _refuse_nonfinite({"%s[%d,%d]" % (n, m, t): getattr(r, n) for (m, t), r in ref.items()
                       if (m, t) in records for n in records[(m, t)]},
                      {"q": q, "k": k, "v": v}, allow_nonfinite, "check_steps()")
    pdt = None if prec == "float32" else prec
    bq, bk, bv = (_as_precision(x, prec) for x in (q, k, v))
    # the port's blocks are held in the dtype of its block_out records (else its precision), as a
    # ring of kernel calls holds them; its running state in f32
    bdt = next((_dname_of(rec["block_out"]) for rec in records.values() if rec.get("block_out") is not None), pdt)
    bdt = None if bdt in (None, "float32", "float64") else bdt
    base, eager = ({(r.member, r.step): r for r in steps(bq, bk, bv, ring_size=ring_size, partition=partition,
                                                         compute="f32", out_dtype="float32", p_dtype=pdt,
                                                         block_dtype=(bdt or "float32") if e else bdt,
                                                         round_scores=bool(pdt) and e, **options)}
                   for e in (False, True))
    describe = ("%s: the same ring of %d (%s partition) in the port's precision: products summed in f32%s%s, the "
                "running state merged in f32, each record rounded to the port's dtype for it"
                % ({"float32": "f32", "bfloat16": "bf16", "float16": "f16"}[prec], ring_size, partition,
                   ", P rounded to %s" % pdt if pdt else "",
                   ", each block's (out, lse) held in %s / f32 before the merge" % bdt if bdt else "")
                + ("; the same with the scores rounded too (eager attention) as a second order: the larger error "
                   "sets the bound" if pdt else "; blocks computed apart and merged as a second order: the larger "
                   "error sets the bound"))
    judge = _Judge(policy, prec, policy_k, eps, options.get("softcap", 0.0), empty_lse, layout,
                   False, describe)
    reports = {}
    for t in range(ring_size):
        for m in range(ring_size):
            if (m, t) not in records:
                continue
            rec, out = records[(m, t)], {}
            for name in _RECORD_FIELDS:
                got = rec.get(name)
                if got is None:
                    continue
                r = getattr(ref[(m, t)], name)
                b = _cast_like(getattr(base[(m, t)], name), got)
                b2 = _cast_like(getattr(eager[(m, t)], name), got)
                out[name] = rep = judge(name, got, r, b, [b2])
                if not rep.passed:
                    raise AssertionError(
                        "ringattn.check_steps: member %d, step %d (holding the chunk of member %d): %s outside "
                        "tolerance, the first failure in the order the ring ran; reference f64, baseline %s; policy "
                        "%s; options %s\n%s" % (m, t, ref[(m, t)].src, name, describe, policy,
                                                _describe(dict(options, ring_size=ring_size, partition=partition)),
                                                str(rep).rstrip("\n")))
            reports[(m, t)] = out
    return reports
