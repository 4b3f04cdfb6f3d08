"""ctypes bindings of the shared module _ringattn_c (python/ringattn/_capi.c).

ctypes releases the GIL for the duration of every foreign call, so other Python threads run
while the library computes. The module is found next to this file; nothing is compiled at
import time.
"""
import ctypes
import glob
import os

ABI = 5  # RINGATTN_PY_ABI in _capi.c
KEEP = 8  # RINGATTN_COMPARE_KEEP

F32, F64, F16, BF16, FP8_E4M3, FP8_E5M2, BOOL = 0, 1, 2, 3, 4, 5, 6

STATUS_NAMES = {
    0: "RINGATTN_OK", -1: "RINGATTN_ENULL", -2: "RINGATTN_ESHAPE", -3: "RINGATTN_EDTYPE",
    -4: "RINGATTN_ECONFIG", -5: "RINGATTN_EOVERFLOW", -6: "RINGATTN_ENOMEM",
    -7: "RINGATTN_ESTRIDE", -8: "RINGATTN_ESEGMENT", -9: "RINGATTN_EUNSUPPORTED",
    -10: "RINGATTN_EALIAS", -11: "RINGATTN_ECUDA", -12: "RINGATTN_EIO", -13: "RINGATTN_EFORMAT",
    -14: "RINGATTN_EMPI", -15: "RINGATTN_ETIMEDOUT", -16: "RINGATTN_ERANGE",
    -17: "RINGATTN_ECALLBACK",
}


class Tensor(ctypes.Structure):
    """ringattn_tensor: a strided view [batch, seq, heads, dim], strides in elements."""
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int),
                ("shape", ctypes.c_int64 * 4), ("stride", ctypes.c_int64 * 4)]


#: int (*mask_block_fn)(void *user, int64_t b, int64_t h, const int64_t *q_pos, int64_t nr,
#:                       const int64_t *k_pos, int64_t nc, unsigned char *visible)
MASK_BLOCK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                 ctypes.POINTER(ctypes.c_int64), ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
                                 ctypes.c_int64, ctypes.POINTER(ctypes.c_ubyte))


class Options(ctypes.Structure):
    """ringattn_py_options (_capi.c): the config fields the package sets."""
    _fields_ = [("scale", ctypes.c_double), ("causal", ctypes.c_int), ("ring_size", ctypes.c_int),
                ("num_threads", ctypes.c_int), ("compute", ctypes.c_int),
                ("segment_lengths", ctypes.POINTER(ctypes.c_int64)),
                ("dilation_rates", ctypes.POINTER(ctypes.c_int64)),
                ("num_groups", ctypes.c_int), ("mix", ctypes.c_int),
                ("window_left", ctypes.c_int), ("window_right", ctypes.c_int),
                ("partition", ctypes.c_int), ("softcap", ctypes.c_double),
                ("cu_seqlens_q", ctypes.POINTER(ctypes.c_int64)),
                ("cu_seqlens_k", ctypes.POINTER(ctypes.c_int64)), ("num_seqs", ctypes.c_int),
                ("round_p", ctypes.c_int), ("p_dtype", ctypes.c_int), ("round_s", ctypes.c_int),
                ("round_block", ctypes.c_int), ("block_dtype", ctypes.c_int),
                ("q_descale", ctypes.POINTER(ctypes.c_double)), ("k_descale", ctypes.POINTER(ctypes.c_double)),
                ("v_descale", ctypes.POINTER(ctypes.c_double)), ("descale_size", ctypes.c_int),
                ("round_state", ctypes.c_int),
                ("state_dtype", ctypes.c_int),
                ("sinks", ctypes.POINTER(ctypes.c_double)), ("dsinks", ctypes.POINTER(ctypes.c_double)),
                ("alibi_slopes", ctypes.POINTER(ctypes.c_double)), ("alibi_size", ctypes.c_int),
                ("bias", ctypes.POINTER(Tensor)), ("dbias", ctypes.POINTER(Tensor)),
                ("mask", ctypes.POINTER(Tensor)), ("mask_block_fn", MASK_BLOCK_FN),
                ("mask_user", ctypes.c_void_p),
                ("document_ids_q", ctypes.POINTER(ctypes.c_int64)),
                ("document_ids_k", ctypes.POINTER(ctypes.c_int64)),
                ("max_logit", ctypes.POINTER(Tensor))]


class Event(ctypes.Structure):
    """ringattn_trace_event (ringattn.h), field for field; checked against the C layout at load."""
    _i64, _i, _dp, _vp = ctypes.c_int64, ctypes.c_int, ctypes.POINTER(ctypes.c_double), ctypes.c_void_p
    _fields_ = [("pass_", _i), ("member", _i), ("step", _i), ("ring_size", _i), ("src", _i), ("computed", _i),
                ("q_begin", _i64), ("q_end", _i64), ("k_begin", _i64), ("k_end", _i64), ("tiles", _i64),
                ("batch", _i64), ("heads", _i64), ("rows", _i64), ("row_max", _dp), ("row_sum", _dp),
                ("dtype", _i), ("dim", _i64), ("dim_v", _i64), ("kv_heads", _i64), ("keys", _i64),
                ("q_pieces", _i), ("k_pieces", _i), ("q_pos0", _i64 * 2), ("q_count", _i64 * 2),
                ("q_stride", _i64 * 2), ("k_pos0", _i64 * 2), ("k_count", _i64 * 2), ("k_stride", _i64 * 2),
                ("out_scale", ctypes.c_double), ("acc", _vp), ("block_acc", _vp), ("block_max", _dp),
                ("block_sum", _dp), ("dkv", _vp), ("kv_pitch", _i64)]


#: void (*ringattn_trace_fn)(const ringattn_trace_event *ev, void *user)
TRACE_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(Event), ctypes.c_void_p)


def layout_mismatches(lib, struct=Event, reporter="ringattn_py_event_layout"):
    """How `struct` (a ctypes mirror of ringattn_trace_event, or of ringattn_py_options with
    reporter="ringattn_py_options_layout") differs from the C layout that the reporter gives:
    a list of sentences, empty when they agree."""
    report = getattr(lib, reporter)
    n = report(None, 0)
    got = (ctypes.c_int64 * n)()
    report(got, n)
    fields = [f[0] for f in struct._fields_]
    bad = []
    if ctypes.sizeof(struct) != got[0]:
        bad.append("sizeof: C %d, ctypes %d" % (got[0], ctypes.sizeof(struct)))
    if len(fields) != n - 1:
        bad.append("C has %d fields, ctypes %d" % (n - 1, len(fields)))
    for name, off in zip(fields, got[1:]):
        if getattr(struct, name).offset != off:
            bad.append("%s at offset %d in C, %d in ctypes" % (name, off, getattr(struct, name).offset))
    return bad


def _load():
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_ringattn_c.*")))
    found = [f for f in found if not f.endswith((".c", ".py", ".pyc"))]
    if not found:
        raise ImportError(
            "ringattn: the compiled library _ringattn_c is missing next to %s; install the "
            "package with `pip install .` from the repository root" % here)
    lib = ctypes.CDLL(found[0])
    lib.ringattn_py_abi.restype = ctypes.c_int
    if lib.ringattn_py_abi() != ABI:
        raise ImportError("ringattn: %s has ABI %d, the Python code expects %d: reinstall the package"
                          % (found[0], lib.ringattn_py_abi(), ABI))
    P, T, C = ctypes.POINTER, ctypes.POINTER(Tensor), ctypes.c_char_p
    sz, i64p, dblp, i32p = ctypes.c_size_t, P(ctypes.c_int64), P(ctypes.c_double), P(ctypes.c_int32)
    sigs = {
        "ringattn_py_forward": [P(Options), T, T, T, T, T, C, sz],
        "ringattn_py_backward": [P(Options), T, T, T, T, T, T, T, T, T, C, sz],
        "ringattn_py_plan": [P(Options), i64p, ctypes.c_int, i64p, C, sz],
        "ringattn_py_compare": [T, T, T, dblp, ctypes.c_int, C, dblp, i64p, i64p, dblp, C, sz, C, sz],
        "ringattn_py_layer_forward": [P(Options), ctypes.c_int64, ctypes.c_int64, ctypes.c_int,
                                      ctypes.c_double, T, T, T, T, T, C, sz],
        "ringattn_py_layer_backward": [P(Options), ctypes.c_int64, ctypes.c_int64, ctypes.c_int,
                                       ctypes.c_double, T, T, T, T, T, T, T, T, T, ctypes.c_int, C, sz],
        "ringattn_py_event_layout": [i64p, ctypes.c_int],
        "ringattn_py_options_layout": [i64p, ctypes.c_int],
        "ringattn_py_forward_steps": [P(Options), T, T, T, T, T, TRACE_FN, ctypes.c_void_p, C, sz],
        "ringattn_py_backward_steps": [P(Options), T, T, T, T, T, T, T, T, T, TRACE_FN, ctypes.c_void_p, C, sz],
        "ringattn_py_trace_result": [P(Event), ctypes.c_int, T, T, C, sz],
        "ringattn_py_trace_grads": [P(Event), T, T, T, C, sz],
        "ringattn_py_heatmap": [C, T, T, T, dblp, ctypes.c_int, ctypes.c_int, ctypes.c_int, C, C, C, sz],
        "ringattn_py_rule_policy": [ctypes.c_int, ctypes.c_int, C, ctypes.c_int, ctypes.c_int, dblp],
        # q, k_cache, v_cache, block_table, max_blocks, cache_seqlens, k_new, v_new, num_splits, split_size,
        # update_cache, split_out[], split_lse[], num_split_outputs, out, lse
        "ringattn_py_forward_kvcache": [P(Options), T, T, T, i32p, ctypes.c_int64, i32p, T, T, ctypes.c_int64,
                                        ctypes.c_int64, ctypes.c_int, T, T, ctypes.c_int64, T, T, C, sz],
        "ringattn_py_kvcache_num_splits": [P(Options), T, T, T, i32p, ctypes.c_int64, i32p, T, T, ctypes.c_int64,
                                           ctypes.c_int64, C, sz],
    }
    for name, args in sigs.items():
        f = getattr(lib, name)
        f.argtypes = args
        f.restype = ctypes.c_int
    lib.ringattn_py_kvcache_num_splits.restype = ctypes.c_int64   # the count, or a negative status
    lib.ringattn_strerror.argtypes = [ctypes.c_int]
    lib.ringattn_strerror.restype = ctypes.c_char_p
    lib.ringattn_trace_positions.argtypes = [P(Event), ctypes.c_int, i64p, ctypes.c_int64]
    lib.ringattn_trace_positions.restype = ctypes.c_int64
    bad = layout_mismatches(lib)
    if bad:
        raise ImportError("ringattn: the ctypes mirror of ringattn_trace_event (_lib.Event) does not match %s: %s"
                          % (found[0], "; ".join(bad)))
    bad = layout_mismatches(lib, Options, "ringattn_py_options_layout")
    if bad:
        raise ImportError("ringattn: the ctypes mirror of ringattn_py_options (_lib.Options) does not match %s: %s"
                          % (found[0], "; ".join(bad)))
    return lib


lib = _load()


def strerror(status):
    """The library's one-line description of a status code."""
    return lib.ringattn_strerror(int(status)).decode("utf-8", "replace")


class RingattnError(ValueError):
    """A call the library refused. `.status` is the C status (negative, see STATUS_NAMES);
    the message is the library's sentence naming the bad argument. Nothing is returned when
    it is raised (outputs are never half-written)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = int(status)

    @property
    def status_name(self):
        return STATUS_NAMES.get(self.status, str(self.status))


def fail(status, err=None, layout="bnhd"):
    """Raise RingattnError for `status`, with the sentence in the ctypes buffer `err`."""
    msg = err.value.decode("utf-8", "replace") if err is not None else ""
    msg = msg or strerror(status)
    if layout == "bhnd" and ".shape[" in msg:
        # the library numbers axes in its own [b, n, h, d] view of the caller's arrays
        msg += " (axes of ringattn's [b, n, h, d] view: a 'bhnd' array's axis 1 is its axis 2)"
    raise RingattnError(status, msg)
