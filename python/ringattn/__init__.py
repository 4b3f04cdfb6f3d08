"""ringattn: the exact CPU reference for attention kernels (ring, dilated/LongNet, varlen,
window, softcap, GQA), and the check of a port against it, from NumPy or PyTorch.

    out, lse = ringattn.attention(q, k, v, layout="bhnd", causal="top-left")
    ringattn.check(q, k, v, out=my_out, lse=my_lse, layout="bhnd", causal="top-left")   # in q's precision

Everything calls the C library (ringattn.h) built with the package; see docs/python.md.
"""
from ._lib import STATUS_NAMES, RingattnError, strerror
from ._api import (EMPTY_LSE, POLICIES, Mismatch, Report, attention, attention_backward,
                   attention_with_kvcache, check, check_kvcache, compare,
                   layer_backward, layer_forward, plan, rule_policy)
from ._steps import Step, check_steps, steps, steps_backward

__version__ = "0.1.0"

__all__ = ["attention", "attention_backward", "attention_with_kvcache", "compare", "check", "check_kvcache", "plan",
           "layer_forward", "layer_backward", "steps", "steps_backward", "Step", "check_steps", "POLICIES", "rule_policy",
           "Report", "Mismatch", "RingattnError", "strerror", "STATUS_NAMES", "EMPTY_LSE"]
