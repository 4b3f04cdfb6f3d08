"""NumPy arrays and PyTorch tensors as ringattn_tensor views, read in place.

A CPU NumPy array or CPU torch tensor is handed to the library as it is: its data pointer
and its strides (in elements, any sign), whatever its layout. Only a torch tensor on another
device is copied, to the host, and a NumPy array in non-native byte order is converted. Outputs are allocated here, contiguous in the caller's layout,
and handed over as permuted views, so nothing is transposed either way.
"""
import numpy as np

from . import _lib
from ._lib import RingattnError

try:  # PyTorch is optional
    import torch
except ImportError:  # pragma: no cover - exercised where torch is absent
    torch = None

try:  # NumPy has no bfloat16; ml_dtypes (JAX's) gives it one
    import ml_dtypes
    _NP_BF16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:
    _NP_BF16 = None

_CODE_OF_NAME = {"float32": _lib.F32, "float64": _lib.F64, "float16": _lib.F16, "bfloat16": _lib.BF16,
                 "float8_e4m3fn": _lib.FP8_E4M3, "float8_e5m2": _lib.FP8_E5M2}
_NAME_OF_ALIAS = {"f32": "float32", "f64": "float64", "f16": "float16", "bf16": "bfloat16",
                  "float": "float32", "double": "float64", "half": "float16", "fp8_e4m3": "float8_e4m3fn",
                  "fp8_e5m2": "float8_e5m2", "e4m3": "float8_e4m3fn", "e5m2": "float8_e5m2"}
_ITEMSIZE = {_lib.F32: 4, _lib.F64: 8, _lib.F16: 2, _lib.BF16: 2, _lib.FP8_E4M3: 1, _lib.FP8_E5M2: 1}
_READS = "float64, float32, float16, bfloat16, float8_e4m3fn and float8_e5m2"
_MASK_CODE = {"bool": _lib.BOOL}   # a mask's one dtype (numpy's and torch's name alike)


def is_torch(x):
    return torch is not None and isinstance(x, torch.Tensor)


def dtype_name(dt):
    """'float32' / 'float64' / 'float16' / 'bfloat16' for a string, NumPy or torch dtype."""
    if dt is None:
        return None
    if isinstance(dt, str):
        name = _NAME_OF_ALIAS.get(dt, dt)
    elif torch is not None and isinstance(dt, torch.dtype):
        name = str(dt).replace("torch.", "")
    else:
        try:
            name = np.dtype(dt).name
        except TypeError:
            name = str(dt)
    if name not in _CODE_OF_NAME:
        raise RingattnError(-3, "dtype %r is not one of %s" % (dt, _READS))
    return name


class Host:
    """An input on the host: a NumPy array or a CPU torch tensor (detached), never copied
    unless it lived on another device (or NumPy's strides are not whole elements). mask=True:
    a boolean mask (dtype bool, RINGATTN_BOOL), the only dtype it then reads."""

    def __init__(self, x, name, mask=False):
        self.name = name
        codes, reads = (_MASK_CODE, "bool (a mask: True = may attend)") if mask else (_CODE_OF_NAME, _READS)
        if is_torch(x):
            t = x.detach()
            if t.layout != torch.strided:
                raise RingattnError(-3, "%s: a %s tensor; only strided (dense) tensors are read" % (name, t.layout))
            self.device = t.device
            if t.device.type != "cpu":
                t = t.to("cpu")
            self.obj, self.torch = t, True
            self.dname = str(t.dtype).replace("torch.", "")
            if self.dname not in codes:
                raise RingattnError(-3, "%s has dtype %s; ringattn reads %s" % (name, t.dtype, reads))
            self.shape = tuple(t.shape)
            self.strides = tuple(t.stride())
            self.ptr = t.data_ptr()
        else:
            a = np.asarray(x)
            if a.dtype.name not in codes:
                raise RingattnError(-3, "%s has dtype %s; ringattn reads %s" % (name, a.dtype, reads))
            if not a.dtype.isnative:   # big-endian data (np.load of a '>f4' file): the library reads native
                a = a.astype(a.dtype.newbyteorder("="))
            if any(s % a.itemsize for s in a.strides):   # strides inside an element: no view can say that
                a = np.ascontiguousarray(a)
            self.device = None
            self.obj, self.torch = a, False
            self.dname = a.dtype.name
            self.shape = a.shape
            self.strides = tuple(s // a.itemsize for s in a.strides)
            self.ptr = a.ctypes.data
        self.code = codes[self.dname]

    def view(self, perm=None, lead=0):
        """A ringattn_tensor of this array: `lead` axes of length 1 put in front, then the axes
        in the order `perm` (None = as they are), then trailing 1s up to 4 axes."""
        shape = (1,) * lead + tuple(self.shape)
        stride = (0,) * lead + tuple(self.strides)
        if perm is not None:
            shape = tuple(shape[p] for p in perm)
            stride = tuple(stride[p] for p in perm)
        if len(shape) > 4:
            raise RingattnError(-2, "%s has %d axes; at most 4" % (self.name, len(shape)))
        shape = shape + (1,) * (4 - len(shape))
        stride = stride + (1,) * (4 - len(stride))
        t = _lib.Tensor()
        t.data = self.ptr or None
        t.dtype = self.code
        for i in range(4):
            t.shape[i] = shape[i]
            t.stride[i] = stride[i]
        return t


def new_output(shape, dname, like_torch, name):
    """A contiguous output (NumPy or CPU torch) of `shape`, wrapped as a Host."""
    if like_torch:
        o = torch.empty(shape, dtype=getattr(torch, dname))
    else:
        if dname.startswith("float8"):
            try:
                import ml_dtypes
            except ImportError:
                raise RingattnError(-3, "out_dtype %s for NumPy outputs needs the ml_dtypes package" % dname)
            o = np.empty(shape, dtype=getattr(ml_dtypes, dname))
        elif dname == "bfloat16":
            if _NP_BF16 is None:
                raise RingattnError(-3, "out_dtype bfloat16 for NumPy outputs needs the ml_dtypes package "
                                    "(NumPy has no bfloat16); pass torch tensors or another out_dtype")
            o = np.empty(shape, dtype=_NP_BF16)
        else:
            o = np.empty(shape, dtype=dname)
    h = Host.__new__(Host)
    h.name, h.obj, h.torch, h.device, h.dname = name, o, like_torch, None, dname
    h.code = _CODE_OF_NAME[dname]
    h.shape = tuple(shape)
    if like_torch:
        h.strides, h.ptr = tuple(o.stride()), o.data_ptr()
    else:
        h.strides, h.ptr = tuple(s // o.itemsize for s in o.strides), o.ctypes.data
    return h


def deliver(h, device):
    """The output as the caller gets it: NumPy as is, torch moved to the inputs' device."""
    if h.torch and device is not None and device.type != "cpu":
        return h.obj.to(device)
    return h.obj


def int64_array(x, name):
    """cu_seqlens, segment lengths, dilation rates: a contiguous int64 NumPy copy (small)."""
    if is_torch(x):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1 or a.size == 0:
        raise RingattnError(-4, "%s must be a non-empty 1-D sequence of integers" % name)
    if a.dtype.kind not in "iu":
        if a.dtype.kind == "f" and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise RingattnError(-4, "%s must hold integers, not %s" % (name, a.dtype))
    return np.ascontiguousarray(a, dtype=np.int64)
