#!/usr/bin/env python3
"""generate_golden.py - golden outputs for ringattn from PyTorch (CPU, float64).

    python3 -m venv .venv && .venv/bin/pip install numpy torch
    .venv/bin/python reference/generate_golden.py            # rewrites reference/golden/
    .venv/bin/python reference/generate_golden.py --layer-only   # only reference/golden/layer/
    .venv/bin/python reference/generate_golden.py --options-only # only reference/golden/options/

Writes, for every case, reference/golden/<case>/{q,k,v,dout}.npy (inputs) and
{out,lse,dq,dk,dv}.npy (the reference), plus reference/golden/manifest.txt, one line per case:

    <case> b=.. nq=.. nk=.. h=.. hk=.. d=.. dv=.. causal=none|bottom-right|top-left
           scale=<float, 0 = 1/sqrt(d)> segments=<s0,s1,..|-> dilations=<r0,r1,..|->
           window=<L,R|-> softcap=<float, 0 = off> cu_seqlens_q=<a,b,..|-> cu_seqlens_k=<a,b,..|->
           partitions=<contiguous,zigzag,striped: the ring partitions the case must pass with>
           atol=<f64 compute: abs> rtol=<f64 compute: rel> k=<f32 policy k> eps=<f32 policy eps>
           what=<free text, no spaces>

The C test tests/test_golden.c reads these files; no Python is needed at test time.

Conventions (the ones ringattn_npy_* documents):
  - layouts are ringattn's: q, k, v, dout, out, dq, dk, dv [b, n, h, d]; lse [b, h, nq]
    (3-D, read as [b, h, nq, 1]);
  - inputs are rounded to float32 first (stored '<f4'), so an f32 and an f64 user of the files
    see the same numbers; the reference is computed in float64 from exactly those values
    and stored '<f8';
  - case bf16_inputs stores its inputs as bf16 bit patterns in '<u2' (the bf16 convention),
    case f16_inputs as float16 '<f2' (the reference is computed from the rounded values);
    case dv_ne_d stores v big-endian and in Fortran order ('>f4', fortran_order True), to
    exercise the reader on files NumPy itself wrote;
  - lse = log sum exp(scale * q.k) over the visible keys, natural log; -inf for a row that
    sees no key; such a row's out and dq are 0.

Dense attention goes through torch.nn.functional.scaled_dot_product_attention:
  - top-left causal is SDPA's own is_causal (key j visible to query i iff j <= i);
  - bottom-right causal (FlashAttention-2: j <= i + nk - nq) is built explicitly as a boolean
    mask, since SDPA's is_causal is top-left when nq != nk;
  - rows that see no key are left out of the SDPA call (SDPA would give NaN there) and set to
    out = 0, lse = -inf, dq = 0, which is ringattn's (and FlashAttention's) convention;
  - GQA / MQA: k and v heads are repeat_interleave'd to the q heads (autograd sums dk, dv back).

The variant cases (window_*, varlen_*, softcap_*, f16_inputs, gqa_enable_gqa) go through
variant_attention, which builds the visible set as an explicit boolean mask:
  - sliding window (FlashAttention-2): with off = nk - nq (0 for top-left causal), query i sees
    key j iff i + off - L <= j <= i + off + R (-1 = unbounded), and j <= i + off when causal;
  - varlen: the packed tensors are cut at cu_seqlens_q / cu_seqlens_k and every sequence is
    computed on its own (its own off = nk_s - nq_s for bottom-right causal and the window),
    then the outputs are concatenated; nothing attends across sequences;
  - softcap: SDPA has none, so these cases use a plain float64 softmax of
    softcap * tanh(scale * q.k / softcap) (Gemma 2 / FlashAttention); lse is taken over the
    capped logits;
  - gqa_enable_gqa passes SDPA's enable_gqa=True instead of repeat_interleave'ing k and v.

Dilated attention is a port of DilatedAttention.forward from DarcStar-Solutions-Tech/
dilated-attention-pytorch (the fork of fkodom/dilated-attention-pytorch that ringattn's
seed system builds on), with SDPA in place of xFormers:
  - heads split into G groups, the first h mod G one head larger, head ranges CUMULATIVE
    (group g starts where g-1 ended). fkodom's code slices heads at g*size_g, which with
    unequal groups uses some heads twice and others never; that bug is not reproduced;
  - group g: offset g mod r_g, within each segment of length s_g the positions
    offset, offset + r_g, ... attend to each other (causal in that gathered sequence when
    causal), scattered back; positions outside get 0 (lse -inf); the sum is divided by G;
  - fkodom's older "x / x.sum(dim=(1, 2))" normalisation is not there (DarcStar removed it);
  - the scale is passed to SDPA (DarcStar's non-xFormers path would use 1/sqrt(d)).

The layer goldens (reference/golden/layer/<case>/ and layer/manifest.txt, read by
tests/test_layer.c and examples/layer.c) come from a PyTorch port of fkodom's
MultiheadDilatedAttention.forward (the seed's RingMultiheadDilatedAttention):
    q, k, v = F.linear(x_q, wq, bq), F.linear(x_k, wk, bk), F.linear(x_v, wv, bv)
    "b n (h d) -> b n h d", attention (dense_attention / dilated_attention above),
    "b n h d -> b n (h d)", F.layer_norm over E (MAGNETO sub-LN, when layer_norm=1),
    y = F.linear(., wo, bo)
with autograd for every input and weight (a self-attention case has one input x whose gradient
is the sum of its three uses). Files are named as ringattn_layer_params' fields: x_q [x_k x_v]
dy, wqkv bqkv | wq wk wv bq bk bv, wo bo, ln_gamma ln_beta (inputs, '<f4'), and y dx_q [dx_k
dx_v] and d<weight> (the reference, '<f8'): a rank-r array is the layer's tensor as loaded.
The manifest line: <case> b= nq= nk= E= H= self= layer_norm= ln_eps= causal= segments=
dilations= rings=<ring sizes the C test runs> seed= gamma_init= what=.
Case "example" is examples/layer.c's run: its weights come from LayerRng, a port of
ringattn_layer_rng (xoshiro256** seeded by splitmix64, Box-Muller) and of ringattn_layer_init
(xavier_normal, gain 1 for Wq, Wk and gamma_init for Wv, Wo; zero biases; LN 1 and 0), then
x and dy from the same generator, rounded to float32 as the example stores them: the C side
reproduces them bit for bit from the seed.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "golden")


def rand(gen, *shape):
    """N(0, 1) in float64, rounded to the float32 grid"""
    return torch.randn(*shape, generator=gen, dtype=torch.float64).float().double()


def visible_mask(nq, nk, causal):
    i = torch.arange(nq).unsqueeze(1)
    j = torch.arange(nk).unsqueeze(0)
    if causal == "bottom-right":
        return j <= i + (nk - nq)
    if causal == "top-left":
        return j <= i
    return torch.ones(nq, nk, dtype=torch.bool)


def dense_attention(q, k, v, causal, scale):
    """q [b,nq,h,d], k [b,nk,hk,d], v [b,nk,hk,dv] -> out [b,nq,h,dv], lse [b,h,nq]"""
    b, nq, h, d = q.shape
    nk, hk = k.shape[1], k.shape[2]
    rep = h // hk
    qt = q.permute(0, 2, 1, 3)                                # [b, h, nq, d]
    kt = k.permute(0, 2, 1, 3).repeat_interleave(rep, dim=1)  # [b, h, nk, d]
    vt = v.permute(0, 2, 1, 3).repeat_interleave(rep, dim=1)
    mask = visible_mask(nq, nk, causal)
    rows = mask.any(dim=1)                                    # rows that see at least one key
    sc = scale if scale != 0 else None
    if causal == "top-left":
        o = F.scaled_dot_product_attention(qt, kt, vt, is_causal=True, scale=sc)
    elif causal == "bottom-right":
        o_rows = F.scaled_dot_product_attention(qt[:, :, rows], kt, vt, attn_mask=mask[rows], scale=sc)
        o = torch.zeros(b, h, nq, vt.shape[-1], dtype=q.dtype)
        o = o.index_copy(2, torch.nonzero(rows).flatten(), o_rows)
    else:
        o = F.scaled_dot_product_attention(qt, kt, vt, scale=sc)
    s = (scale if scale != 0 else 1.0 / d ** 0.5) * (qt @ kt.transpose(-1, -2))
    lse = torch.logsumexp(s.masked_fill(~mask, float("-inf")), dim=-1)   # -inf on empty rows
    return o.permute(0, 2, 1, 3), lse


def variant_mask(nq, nk, causal, window):
    """explicit visible set [nq, nk]: bottom-right (or top-left) causal and a FA-2 window"""
    i = torch.arange(nq).unsqueeze(1)
    j = torch.arange(nk).unsqueeze(0)
    off = 0 if causal == "top-left" else nk - nq
    m = torch.ones(nq, nk, dtype=torch.bool)
    if causal != "none":
        m &= j <= i + off
    if window is not None:
        wl, wr = window
        if wl >= 0:
            m &= j >= i + off - wl
        if wr >= 0:
            m &= j <= i + off + wr
    return m


def masked_attention(q, k, v, mask, scale, softcap, enable_gqa=False):
    """q [b,nq,h,d], k [b,nk,hk,d], v [b,nk,hk,dv], mask [nq,nk] -> out [b,nq,h,dv], lse [b,h,nq];
    rows with no visible key: out 0, lse -inf (and so dq 0)"""
    b, nq, h, d = q.shape
    nk, hk = k.shape[1], k.shape[2]
    rep = h // hk
    sc = scale if scale != 0 else 1.0 / d ** 0.5
    qt = q.permute(0, 2, 1, 3)                                # [b, h, nq, d]
    kt = k.permute(0, 2, 1, 3)
    vt = v.permute(0, 2, 1, 3)
    if not enable_gqa:
        kt, vt = kt.repeat_interleave(rep, dim=1), vt.repeat_interleave(rep, dim=1)
    rows = mask.any(dim=1)
    idx = torch.nonzero(rows).flatten()
    o = torch.zeros(b, h, nq, vt.shape[-1], dtype=q.dtype)
    kr = kt.repeat_interleave(rep, dim=1) if enable_gqa else kt
    s = sc * (qt @ kr.transpose(-1, -2))                      # [b, h, nq, nk]
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    s = s.masked_fill(~mask, float("-inf"))
    if len(idx):
        if softcap > 0:   # plain f64 softmax of the capped logits (SDPA has no softcap)
            p = torch.softmax(s[:, :, rows], dim=-1)
            o_rows = p @ (vt.repeat_interleave(rep, dim=1) if enable_gqa else vt)
        else:
            kw = {"enable_gqa": True} if enable_gqa else {}
            o_rows = F.scaled_dot_product_attention(qt[:, :, rows], kt, vt, attn_mask=mask[rows],
                                                    scale=sc, **kw)
        o = o.index_copy(2, idx, o_rows)
    lse = torch.logsumexp(s.detach(), dim=-1)                 # -inf on empty rows
    return o.permute(0, 2, 1, 3), lse


def variant_attention(q, k, v, causal, scale, window, softcap, cu_q, cu_k, enable_gqa=False):
    """window / softcap / varlen (batch 1, every sequence on its own)"""
    if cu_q is None:
        return masked_attention(q, k, v, variant_mask(q.shape[1], k.shape[1], causal, window),
                                scale, softcap, enable_gqa)
    outs, lses = [], []
    for s in range(len(cu_q) - 1):
        qs, ks = q[:, cu_q[s]:cu_q[s + 1]], k[:, cu_k[s]:cu_k[s + 1]]
        vs = v[:, cu_k[s]:cu_k[s + 1]]
        o, l = masked_attention(qs, ks, vs, variant_mask(qs.shape[1], ks.shape[1], causal, window),
                                scale, softcap, enable_gqa)
        outs.append(o); lses.append(l)
    return torch.cat(outs, dim=1), torch.cat(lses, dim=2)


def head_groups(h, G):
    """sizes (first h mod G one larger) and CUMULATIVE [hmin, hmax) ranges"""
    sizes = [h // G] * G
    for i in range(h % G):
        sizes[i] += 1
    ranges, start = [], 0
    for g in sizes:
        ranges.append((start, start + g))
        start += g
    return sizes, ranges


def dilated_attention(query, key, value, segments, dilations, causal, scale):
    """DarcStar DilatedAttention.forward, ported; query/key/value [b, n, h, d]"""
    b, n, h, d = query.shape
    dv = value.shape[-1]
    G = len(dilations)
    sizes, ranges = head_groups(h, G)
    sc = scale if scale != 0 else None
    parts = []
    lse = torch.full((b, h, n), float("-inf"), dtype=query.dtype)
    for i, (g, r, s) in enumerate(zip(sizes, dilations, segments)):
        hmin, hmax = ranges[i]
        if g == 0:
            continue
        offset = i % r
        nseg = n // s
        q_seg = query[:, :, hmin:hmax, :].reshape(b, nseg, s, g, d)
        k_seg = key[:, :, hmin:hmax, :].reshape(b, nseg, s, g, d)
        v_seg = value[:, :, hmin:hmax, :].reshape(b, nseg, s, g, dv)
        idx = torch.arange(offset, s, r)
        q_dil, k_dil, v_dil = q_seg[:, :, idx], k_seg[:, :, idx], v_seg[:, :, idx]
        ds = q_dil.size(2)
        # fold segments into the batch, heads before sequence for SDPA: [(b nseg), g, ds, d]
        qb = q_dil.reshape(b * nseg, ds, g, d).transpose(1, 2)
        kb = k_dil.reshape(b * nseg, ds, g, d).transpose(1, 2)
        vb = v_dil.reshape(b * nseg, ds, g, dv).transpose(1, 2)
        x = F.scaled_dot_product_attention(qb, kb, vb, is_causal=causal, scale=sc)
        x = x.transpose(1, 2).reshape(b, nseg, ds, g, dv)
        # scatter back: positions of the pattern get x, the others 0
        full = torch.zeros(b, nseg, s, g, dv, dtype=query.dtype).index_copy(2, idx, x)
        parts.append(full.reshape(b, n, g, dv))
        # lse of each row within its own gathered sequence
        with torch.no_grad():
            sco = (sc if sc is not None else 1.0 / d ** 0.5) * (qb @ kb.transpose(-1, -2))
            if causal:
                sco = sco.masked_fill(~torch.ones(ds, ds, dtype=torch.bool).tril(), float("-inf"))
            l = torch.logsumexp(sco, dim=-1).reshape(b, nseg, g, ds)       # [b, nseg, g, ds]
            pos = (torch.arange(nseg).unsqueeze(1) * s + idx.unsqueeze(0)).flatten()   # [nseg*ds]
            lse[:, hmin:hmax, pos] = l.permute(0, 2, 1, 3).reshape(b, g, nseg * ds)
    out = torch.cat(parts, dim=2) / G
    return out, lse


# name, b, nq, nk, h, hk, d, dv, causal, scale, segments, dilations, what
CASES = [
    ("dense",              2, 24, 24, 2, 2, 16, 16, "none",         0.0,  None, None, "plain_attention"),
    ("causal",             1, 33, 33, 3, 3,  8,  8, "top-left",     0.0,  None, None, "square_causal_(both_alignments_agree)"),
    ("cross",              1, 20, 36, 2, 2, 16, 16, "none",         0.0,  None, None, "nq<nk_no_mask"),
    ("cross_bottom_right", 2, 20, 36, 2, 2,  8,  8, "bottom-right", 0.0,  None, None, "FlashAttention-2_alignment_as_explicit_mask"),
    ("cross_top_left",     1, 20, 36, 2, 2,  8,  8, "top-left",     0.0,  None, None, "SDPA_is_causal_alignment"),
    ("empty_rows",         1, 36, 20, 2, 2,  8,  8, "bottom-right", 0.0,  None, None, "nq>nk_first_16_rows_see_nothing"),
    ("gqa",                1, 32, 32, 6, 2,  8,  8, "bottom-right", 0.0,  None, None, "grouped_query_6_q_heads_on_2_kv"),
    ("dv_ne_d",            1, 28, 28, 2, 2, 16,  8, "none",         0.3,  None, None, "dv!=d_custom_scale_v_big-endian_Fortran"),
    ("mqa_big_scale",      2, 16, 16, 4, 1,  8,  8, "top-left",     1.25, None, None, "multi-query_sharp_softmax"),
    ("bf16_inputs",        1, 24, 24, 2, 2,  8,  8, "top-left",     0.0,  None, None, "inputs_stored_as_bf16_bits_in_<u2"),
    ("dilated",            1, 32, 32, 4, 4,  8,  8, "none",         0.0,  [8, 16], [1, 2], "LongNet_head_groups"),
    ("dilated_causal",     1, 48, 48, 7, 7,  8,  8, "causal",       0.0,  [12, 24, 48], [1, 2, 4], "unequal_groups_3_2_2_causal"),
    ("dilated_h12_g5",     1, 32, 32, 12, 12, 4, 4, "none",         0.5,  [2, 4, 8, 16, 32], [1, 1, 2, 4, 8], "h=12_G=5_cumulative_head_ranges"),
]

# variant cases: name, b, nq, nk, h, hk, d, dv, causal, scale, window (L, R) | None, softcap,
# cu_seqlens_q | None, cu_seqlens_k | None, what
VARIANTS = [
    ("window_causal",      1, 40, 40, 2, 2,  8,  8, "bottom-right", 0.0, (8, 0),   0.0, None, None,
     "sliding_window_8_left_causal"),
    ("window_bidir",       2, 36, 36, 2, 2,  8,  8, "none",         0.0, (5, 3),   0.0, None, None,
     "sliding_window_5_left_3_right_no_causal"),
    ("window_cross",       1, 20, 36, 2, 2,  8,  8, "bottom-right", 0.0, (6, -1), 0.0, None, None,
     "nq<nk_window_bottom-right_aligned_causal"),
    ("varlen_causal",      1, 32, 40, 2, 2,  8,  8, "bottom-right", 0.0, None,     0.0, [0, 10, 22, 32], [0, 14, 22, 40],
     "3_packed_seqs_q10,12,10_k14,8,18_causal_per_seq_(4_empty_rows)"),
    ("varlen_window_gqa",  1, 32, 32, 4, 2,  8,  8, "none",         0.0, (4, 2),   0.0, [0, 9, 25, 32], [0, 9, 25, 32],
     "3_packed_seqs_window_4,2_GQA"),
    ("softcap_causal",     1, 32, 32, 2, 2, 16, 16, "top-left",     0.5, None,     2.0, None, None,
     "softcap_2_causal_scores_std_2"),
    ("softcap_window_gqa", 1, 30, 30, 6, 2,  8,  8, "none",         1.0, (5, 5),   1.5, None, None,
     "softcap_1.5_window_5,5_GQA_6_on_2"),
    ("f16_inputs",         1, 24, 24, 4, 2,  8,  8, "bottom-right", 0.0, None,     0.0, None, None,
     "inputs_stored_as_float16_<f2_GQA"),
    ("gqa_enable_gqa",     1, 24, 30, 8, 2,  8,  8, "none",         0.0, (3, 3),   0.0, None, None,
     "SDPA_enable_gqa_8_on_2_window_3,3_nq<nk"),
]


def to_np(t):
    return t.detach().contiguous().numpy()


# ---------------------------------------------------------------- the layer

M64 = (1 << 64) - 1


class LayerRng:
    """ringattn_layer_rng: xoshiro256** seeded by splitmix64; normal() is Box-Muller's cosine
    branch with u1 = (1 + (next >> 11)) 2^-53 in (0, 1], u2 = (next >> 11) 2^-53"""

    def __init__(self, seed):
        self.s = []
        for _ in range(4):
            seed = (seed + 0x9E3779B97F4A7C15) & M64
            z = seed
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def normal(self):
        u1 = float((self.next() >> 11) + 1) * (1.0 / 9007199254740992.0)
        u2 = float(self.next() >> 11) * (1.0 / 9007199254740992.0)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)

    def normals(self, n):
        return [self.normal() for _ in range(n)]


def layer_init(E, gamma_init, rng):
    """ringattn_layer_init on a fused layout: wqkv [3E, E] (blocks q, k, v), wo, zero biases,
    LayerNorm 1 and 0; every value rounded to float32 as stored"""
    sd = 1.0 / math.sqrt(E)
    blocks = []
    for gain_sd in (sd, sd, gamma_init * sd, gamma_init * sd):       # Wq, Wk, Wv, Wo
        blocks.append(np.array([gain_sd * z for z in rng.normals(E * E)]).reshape(E, E))
    f = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float32).astype(np.float64))
    return {"wqkv": f(np.concatenate(blocks[:3])), "bqkv": f(np.zeros(3 * E)), "wo": f(blocks[3]),
            "bo": f(np.zeros(E)), "ln_gamma": f(np.ones(E)), "ln_beta": f(np.zeros(E))}


def layer_forward(x_q, x_k, x_v, W, H, layer_norm, eps, segs, rates, causal):
    """fkodom MultiheadDilatedAttention.forward with the weights in W (ringattn's names)"""
    b, nq, E = x_q.shape
    nk, d = x_k.shape[1], E // H
    if "wqkv" in W:
        wq, wk, wv = W["wqkv"].split(E, 0)
        bq, bk, bv = W["bqkv"].split(E, 0) if "bqkv" in W else (None, None, None)
    else:
        wq, wk, wv = W["wq"], W["wk"], W["wv"]
        bq, bk, bv = W.get("bq"), W.get("bk"), W.get("bv")
    q = F.linear(x_q, wq, bq).reshape(b, nq, H, d)           # "b n (h d) -> b n h d"
    k = F.linear(x_k, wk, bk).reshape(b, nk, H, d)
    v = F.linear(x_v, wv, bv).reshape(b, nk, H, d)
    if segs:
        a, _ = dilated_attention(q, k, v, segs, rates, causal != "none", 0.0)
    else:
        a, _ = dense_attention(q, k, v, causal, 0.0)
    a = a.reshape(b, nq, E)                                   # "b n h d -> b n (h d)"
    if layer_norm:
        a = F.layer_norm(a, (E,), W.get("ln_gamma"), W.get("ln_beta"), eps)
    return F.linear(a, W["wo"], W.get("bo"))


# name, b, nq, nk, E, H, self, weights (fused | separate), biases, layer_norm, LN affine, causal,
# segments, dilations, ring sizes for the C test, what
LAYER_CASES = [
    ("example",             1, 32, 32, 16, 2, True,  "fused",    True,  True,  True,  "none",
     [8, 16], [1, 2], [1, 2, 4], "examples/layer.c_seed_42_gamma_init_0.5_dilated_self-attention"),
    ("cross_causal",        2,  8, 12,  8, 2, False, "separate", True,  True,  True,  "bottom-right",
     None, None, [1, 2, 4], "cross-attention_nq<nk_bottom-right_causal_random_biases_and_LN_affine"),
    ("dilated_causal_noln", 1, 24, 24, 12, 3, True,  "separate", True,  False, False, "top-left",
     [6, 12, 24], [1, 2, 4], [1, 3], "self-attention_3_groups_causal_no_LayerNorm"),
]


def layer_goldens():
    out_dir = os.path.join(OUT, "layer")
    os.makedirs(out_dir, exist_ok=True)
    lines = ["# ringattn layer golden cases, written by reference/generate_golden.py (torch %s, numpy %s)"
             % (torch.__version__, np.__version__),
             "# name b nq nk E H self layer_norm ln_eps causal segments dilations rings seed gamma_init what"]
    for li, (name, b, nq, nk, E, H, self_attn, layout, biases, ln, affine, causal, segs, rates, rings,
             what) in enumerate(LAYER_CASES):
        seed, gamma_init, eps = 0, 0.0, 1e-5
        if name == "example":   # examples/layer.c: init from the seed, then x and dy
            seed, gamma_init = 42, 0.5
            rng = LayerRng(seed)
            W = layer_init(E, gamma_init, rng)
            x_q = torch.tensor(np.array(rng.normals(b * nq * E), dtype=np.float32).astype(np.float64)).reshape(b, nq, E)
            dy = torch.tensor(np.array(rng.normals(b * nq * E), dtype=np.float32).astype(np.float64)).reshape(b, nq, E)
            x_k = x_v = x_q
        else:
            gen = torch.Generator().manual_seed(3000 + li)
            W = {}
            names = ["wqkv"] if layout == "fused" else ["wq", "wk", "wv"]
            for nm in names:
                W[nm] = rand(gen, 3 * E if nm == "wqkv" else E, E)
                W[nm] = (W[nm] / math.sqrt(E)).float().double()
            if biases:
                for nm in (["bqkv"] if layout == "fused" else ["bq", "bk", "bv"]):
                    W[nm] = (0.5 * rand(gen, 3 * E if nm == "bqkv" else E)).float().double()
                W["bo"] = (0.5 * rand(gen, E)).float().double()
            W["wo"] = (rand(gen, E, E) / math.sqrt(E)).float().double()
            if ln and affine:
                W["ln_gamma"] = (1 + 0.3 * rand(gen, E)).float().double()
                W["ln_beta"] = (0.3 * rand(gen, E)).float().double()
            x_q = rand(gen, b, nq, E)
            x_k = x_v = x_q if self_attn else None
            if not self_attn:
                x_k, x_v = rand(gen, b, nk, E), rand(gen, b, nk, E)
            dy = rand(gen, b, nq, E)
        leaves = [x_q] if self_attn else [x_q, x_k, x_v]
        for t in leaves + list(W.values()):
            t.requires_grad_(True)
        y = layer_forward(x_q, x_k, x_v, W, H, ln, eps, segs, rates, causal)
        y.backward(dy)
        d_ = os.path.join(out_dir, name)
        os.makedirs(d_, exist_ok=True)
        ins = [("x_q", x_q), ("dy", dy)] + ([] if self_attn else [("x_k", x_k), ("x_v", x_v)]) + list(W.items())
        for fn, t in ins:
            np.save(os.path.join(d_, fn + ".npy"), to_np(t).astype("<f4"))
        refs = [("y", y), ("dx_q", x_q.grad)] + ([] if self_attn else [("dx_k", x_k.grad), ("dx_v", x_v.grad)])
        refs += [("d" + nm, t.grad) for nm, t in W.items()]
        for fn, t in refs:
            np.save(os.path.join(d_, fn + ".npy"), to_np(t).astype("<f8"))
        lst = lambda x: ",".join(map(str, x)) if x else "-"
        lines.append("%s b=%d nq=%d nk=%d E=%d H=%d self=%d layer_norm=%d ln_eps=%.17g causal=%s segments=%s "
                     "dilations=%s rings=%s seed=%d gamma_init=%.17g what=%s"
                     % (name, b, nq, nk, E, H, self_attn, ln, eps, causal, lst(segs), lst(rates), lst(rings),
                        seed, gamma_init, what))
        print("layer %-20s y max|.| %.3f  dx_q max %.3f  dwo max %.3f" % (
            name, y.abs().max().item(), x_q.grad.abs().max().item(), W["wo"].grad.abs().max().item()))
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(r, x)) for r, _, fs in os.walk(out_dir) for x in fs)
    print("wrote %d layer cases, %d bytes, under %s" % (len(LAYER_CASES), total, out_dir))


# ---------------------------------------------------------------- the score options

def option_attention(q, k, v, causal, scale, window, softcap, sinks, alibi, bias, mask, docs_q, docs_k):
    """the score options, literally, in float64 (SDPA has no sinks): q [b,nq,h,d], k [b,nk,hk,d],
    v [b,nk,hk,dv]; sinks (h,), alibi (h,) or (b, h), bias and mask broadcastable to
    (b, h, nq, nk) (NumPy's rule), docs_q (nq,), docs_k (nk,); any of them None.
        s = softcap(scale q.k) + bias - slope |i + nk - nq - j|, masked where not visible,
        lse = logsumexp over the visible keys and the sink, out = exp(s - lse) v,
        max_logit = the row max of s over the visible keys (-inf for none)
    -> out [b,nq,h,dv], lse [b,h,nq], max_logit [b,h,nq]"""
    b, nq, h, d = q.shape
    nk, hk = k.shape[1], k.shape[2]
    rep = h // hk
    sc = scale if scale != 0 else 1.0 / d ** 0.5
    qt = q.permute(0, 2, 1, 3)
    kt = k.permute(0, 2, 1, 3).repeat_interleave(rep, dim=1)
    vt = v.permute(0, 2, 1, 3).repeat_interleave(rep, dim=1)
    s = sc * (qt @ kt.transpose(-1, -2))                          # [b, h, nq, nk]
    if softcap > 0:
        s = softcap * torch.tanh(s / softcap)
    if bias is not None:
        s = s + bias
    if alibi is not None:
        slopes = alibi.reshape(1, h) if alibi.dim() == 1 else alibi   # [1 | b, h]
        i = torch.arange(nq, dtype=torch.float64).unsqueeze(1)
        j = torch.arange(nk, dtype=torch.float64).unsqueeze(0)
        s = s - slopes[:, :, None, None] * (i + nk - nq - j).abs()
    vis = variant_mask(nq, nk, causal, window).expand(b, h, nq, nk)
    if mask is not None:
        vis = vis & mask
    if docs_q is not None:
        vis = vis & (docs_q.unsqueeze(1) == docs_k.unsqueeze(0))
    sm = s.masked_fill(~vis, float("-inf"))
    max_logit = sm.detach().amax(dim=-1)
    cols = sm
    if sinks is not None:   # one more column, the sink's logit, with no value
        cols = torch.cat([sm, sinks.reshape(1, h, 1, 1).expand(b, h, nq, 1)], dim=-1)
    lse = torch.logsumexp(cols, dim=-1)                           # -inf on an empty row (no sink)
    safe = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    p = torch.exp(sm - safe.unsqueeze(-1))                        # 0 where masked
    out = p @ vt
    return out.permute(0, 2, 1, 3), lse, max_logit


# name, b, nq, nk, h, hk, d, dv, causal, scale, window | None, softcap, options: dict with any of
# sinks=True, alibi="h" | "bh", bias=shape, mask=(shape, density), docs=(q lengths, k lengths), what
OPTION_CASES = [
    ("sinks_causal",    2, 24, 24, 4, 2,  8,  8, "bottom-right", 0.0, None,   0.0,
     dict(sinks=True), "attention_sinks_one_per_head_GQA_causal"),
    ("alibi_cross",     2, 20, 28, 4, 4,  8,  8, "bottom-right", 0.0, None,   0.0,
     dict(alibi="bh"), "ALiBi_slopes_per_batch_and_head_nq<nk_bottom-right"),
    ("bias_broadcast",  2, 24, 24, 2, 2,  8,  8, "none",         0.0, None,   0.0,
     dict(bias=(1, 2, 24, 24)), "additive_bias_broadcast_over_batch"),
    ("document_mask",   1, 32, 32, 2, 1,  8,  8, "bottom-right", 0.0, None,   0.0,
     dict(docs=([10, 6, 16], [10, 6, 16]), mask=((32, 32), 0.85)), "documents_10,6,16_and_a_bool_mask_MQA"),
    ("gpt_oss",         1, 40, 40, 8, 2, 16, 16, "bottom-right", 0.0, (7, 0), 0.0,
     dict(sinks=True), "gpt-oss_like_GQA_8_on_2_sliding_window_7_sinks"),
    ("everything",      2, 24, 30, 4, 2,  8,  6, "top-left",     0.0, None,   2.0,
     dict(sinks=True, alibi="h", bias=(2, 1, 24, 30), mask=((2, 4, 24, 30), 0.8), docs=([8, 16], [14, 16])),
     "softcap_sinks_alibi_bias_mask_documents_top-left_nq<nk_dv!=d_(empty_rows)"),
]


def option_goldens():
    """reference/golden/options/<case>/: inputs q k v dout and the options' files (sinks.npy,
    alibi.npy, bias.npy '<f4'; mask.npy '|b1'; docs_q.npy, docs_k.npy '<f8'), the reference out
    lse max_logit dq dk dv (and dsinks, dbias) '<f8'; and options/manifest.txt"""
    out_dir = os.path.join(OUT, "options")
    os.makedirs(out_dir, exist_ok=True)
    lines = ["# ringattn score-option golden cases, written by reference/generate_golden.py (torch %s, numpy %s)"
             % (torch.__version__, np.__version__),
             "# name b nq nk h hk d dv causal scale window softcap sinks alibi bias mask docs partitions "
             "atol rtol k eps what  (sinks/docs 0|1; alibi, bias, mask: the file's shape, - = none)"]
    for ci, (name, b, nq, nk, h, hk, d, dv, causal, scale, window, cap, o, what) in enumerate(OPTION_CASES):
        gen = torch.Generator().manual_seed(4000 + ci)
        q, k, v = rand(gen, b, nq, h, d), rand(gen, b, nk, hk, d), rand(gen, b, nk, hk, dv)
        dout = rand(gen, b, nq, h, dv)
        files = {}
        sinks = alibi = bias = mask = docs_q = docs_k = None
        if o.get("sinks"):
            sinks = (1.5 * rand(gen, h)).float().double()
            files["sinks"] = sinks
        if o.get("alibi"):
            base = torch.tensor([2.0 ** (-8.0 * (x + 1) / h) for x in range(h)], dtype=torch.float64)
            alibi = base if o["alibi"] == "h" else torch.stack([base * (1 + 0.5 * bb) for bb in range(b)])
            alibi = alibi.float().double()
            files["alibi"] = alibi
        if o.get("bias"):
            bias = rand(gen, *o["bias"])
            files["bias"] = bias
        if o.get("mask"):
            shape, density = o["mask"]
            mask = torch.rand(*shape, generator=gen, dtype=torch.float64) < density
        if o.get("docs"):
            lq, lk = o["docs"]
            docs_q = torch.repeat_interleave(torch.arange(len(lq)), torch.tensor(lq))
            docs_k = torch.repeat_interleave(torch.arange(len(lk)), torch.tensor(lk))
        leaves = [q, k, v] + [t for t in (sinks, bias) if t is not None]
        for t in leaves:
            t.requires_grad_(True)
        out, lse, max_logit = option_attention(q, k, v, causal, scale, window, cap, sinks, alibi, bias, mask,
                                               docs_q, docs_k)
        out.backward(dout)
        d_ = os.path.join(out_dir, name)
        os.makedirs(d_, exist_ok=True)
        for fn, t in [("q", q), ("k", k), ("v", v), ("dout", dout)] + list(files.items()):
            np.save(os.path.join(d_, fn + ".npy"), to_np(t).astype("<f4"))
        if mask is not None:
            np.save(os.path.join(d_, "mask.npy"), mask.numpy())
        if docs_q is not None:
            np.save(os.path.join(d_, "docs_q.npy"), docs_q.numpy().astype("<f8"))
            np.save(os.path.join(d_, "docs_k.npy"), docs_k.numpy().astype("<f8"))
        refs = [("out", out), ("lse", lse), ("max_logit", max_logit), ("dq", q.grad), ("dk", k.grad), ("dv", v.grad)]
        if sinks is not None:
            refs.append(("dsinks", sinks.grad))
        if bias is not None:
            refs.append(("dbias", bias.grad))
        for fn, t in refs:
            a = to_np(t)
            assert not np.isnan(a).any(), (name, fn)
            np.save(os.path.join(d_, fn + ".npy"), a.astype("<f8"))
        shp = lambda t: "x".join(map(str, t.shape)) if t is not None else "-"
        lines.append("%s b=%d nq=%d nk=%d h=%d hk=%d d=%d dv=%d causal=%s scale=%.17g window=%s softcap=%.17g "
                     "sinks=%d alibi=%s bias=%s mask=%s docs=%d partitions=contiguous,zigzag,striped "
                     "atol=1e-10 rtol=1e-9 k=2 eps=1e-6 what=%s"
                     % (name, b, nq, nk, h, hk, d, dv, causal, scale,
                        ",".join(map(str, window)) if window else "-", cap, sinks is not None, shp(alibi),
                        shp(bias), shp(mask), docs_q is not None, what))
        empty = int((~torch.isfinite(max_logit)).sum())
        print("options %-16s out max|.| %.3f  dq max %.3f  empty rows %d%s%s" % (
            name, out.abs().max().item(), q.grad.abs().max().item(), empty,
            "  dsinks max %.3f" % sinks.grad.abs().max().item() if sinks is not None else "",
            "  dbias max %.3f" % bias.grad.abs().max().item() if bias is not None else ""))
    with open(os.path.join(out_dir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d option cases under %s" % (len(OPTION_CASES), out_dir))


def main():
    torch.manual_seed(0)
    if "--layer-only" in sys.argv[1:]:   # just reference/golden/layer/
        layer_goldens()
        return 0
    if "--options-only" in sys.argv[1:]:   # just reference/golden/options/
        option_goldens()
        return 0
    os.makedirs(OUT, exist_ok=True)
    lines = ["# ringattn golden cases, written by reference/generate_golden.py (torch %s, numpy %s)"
             % (torch.__version__, np.__version__),
             "# name b nq nk h hk d dv causal scale segments dilations window softcap cu_seqlens_q cu_seqlens_k "
             "partitions atol rtol k eps what"]
    for ci, (name, b, nq, nk, h, hk, d, dv, causal, scale, segs, rates, what) in enumerate(CASES):
        gen = torch.Generator().manual_seed(1000 + ci)
        q, k, v = rand(gen, b, nq, h, d), rand(gen, b, nk, hk, d), rand(gen, b, nk, hk, dv)
        dout = rand(gen, b, nq, h, dv)
        if name == "bf16_inputs":   # the inputs are bf16 values
            q, k, v, dout = (x.to(torch.bfloat16).double() for x in (q, k, v, dout))
        q.requires_grad_(True); k.requires_grad_(True); v.requires_grad_(True)
        if segs:
            out, lse = dilated_attention(q, k, v, segs, rates, causal == "causal", scale)
            causal_opt = "top-left" if causal == "causal" else "none"   # nq == nk: both alignments agree
        else:
            out, lse = dense_attention(q, k, v, causal, scale)
            causal_opt = causal
        out.backward(dout)
        d_ = os.path.join(OUT, name)
        os.makedirs(d_, exist_ok=True)
        for fn, t in (("q", q), ("k", k), ("v", v), ("dout", dout)):
            a = to_np(t)
            if name == "bf16_inputs":     # bf16 bit patterns as <u2
                a = t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().view(np.uint16)
            elif name == "dv_ne_d" and fn == "v":
                a = np.asfortranarray(a.astype(">f4"))
            else:
                a = a.astype("<f4")
            np.save(os.path.join(d_, fn + ".npy"), a)
        for fn, t in (("out", out), ("lse", lse), ("dq", q.grad), ("dk", k.grad), ("dv", v.grad)):
            np.save(os.path.join(d_, fn + ".npy"), to_np(t).astype("<f8"))
        lines.append("%s b=%d nq=%d nk=%d h=%d hk=%d d=%d dv=%d causal=%s scale=%.17g segments=%s dilations=%s "
                     "window=- softcap=0 cu_seqlens_q=- cu_seqlens_k=- partitions=%s "
                     "atol=1e-10 rtol=1e-9 k=2 eps=1e-6 what=%s"
                     % (name, b, nq, nk, h, hk, d, dv, causal_opt, scale,
                        ",".join(map(str, segs)) if segs else "-", ",".join(map(str, rates)) if rates else "-",
                        "contiguous,zigzag" if segs else "contiguous,zigzag,striped", what))
        print("%-20s out max|.| %.3f  lse range [%.3f, %.3f]  dq max %.3f" % (
            name, out.abs().max().item(), lse[torch.isfinite(lse)].min().item(),
            lse[torch.isfinite(lse)].max().item(), q.grad.abs().max().item()))
    for vi, (name, b, nq, nk, h, hk, d, dv, causal, scale, window, cap, cu_q, cu_k, what) in enumerate(VARIANTS):
        gen = torch.Generator().manual_seed(2000 + vi)
        q, k, v = rand(gen, b, nq, h, d), rand(gen, b, nk, hk, d), rand(gen, b, nk, hk, dv)
        dout = rand(gen, b, nq, h, dv)
        if name == "f16_inputs":    # the inputs are float16 values
            q, k, v, dout = (x.half().double() for x in (q, k, v, dout))
        q.requires_grad_(True); k.requires_grad_(True); v.requires_grad_(True)
        out, lse = variant_attention(q, k, v, causal, scale, window, cap, cu_q, cu_k,
                                     enable_gqa=(name == "gqa_enable_gqa"))
        out.backward(dout)
        d_ = os.path.join(OUT, name)
        os.makedirs(d_, exist_ok=True)
        for fn, t in (("q", q), ("k", k), ("v", v), ("dout", dout)):
            np.save(os.path.join(d_, fn + ".npy"), to_np(t).astype("<f2" if name == "f16_inputs" else "<f4"))
        for fn, t in (("out", out), ("lse", lse), ("dq", q.grad), ("dk", k.grad), ("dv", v.grad)):
            np.save(os.path.join(d_, fn + ".npy"), to_np(t).astype("<f8"))
        lst = lambda x: ",".join(map(str, x)) if x is not None else "-"
        lines.append("%s b=%d nq=%d nk=%d h=%d hk=%d d=%d dv=%d causal=%s scale=%.17g segments=- dilations=- "
                     "window=%s softcap=%.17g cu_seqlens_q=%s cu_seqlens_k=%s partitions=contiguous,zigzag,striped "
                     "atol=1e-10 rtol=1e-9 k=2 eps=1e-6 what=%s"
                     % (name, b, nq, nk, h, hk, d, dv, causal, scale, lst(window), cap, lst(cu_q), lst(cu_k), what))
        print("%-20s out max|.| %.3f  lse range [%.3f, %.3f]  dq max %.3f" % (
            name, out.abs().max().item(), lse[torch.isfinite(lse)].min().item(),
            lse[torch.isfinite(lse)].max().item(), q.grad.abs().max().item()))
    with open(os.path.join(OUT, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    total = sum(os.path.getsize(os.path.join(r, x)) for r, _, fs in os.walk(OUT) for x in fs)
    print("wrote %d cases, %d bytes, under %s" % (len(CASES) + len(VARIANTS), total, OUT))
    layer_goldens()
    option_goldens()
    return 0


if __name__ == "__main__":
    sys.exit(main())
