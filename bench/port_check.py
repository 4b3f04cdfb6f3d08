"""Correct ports judged in their own precision: PyTorch's scaled_dot_product_attention (CPU) as
the "port" in bf16, f16 and f32, checked by ringattn.check (policy fa2, the default) and, beside
it, by FlashAttention 2's own test rule computed here in PyTorch (attention_ref with
upcast=False, reorder_ops=True as the baseline; out within 2x its error, dq/dk/dv within 3x, as
tests/test_flash_attn.py's test_flash_attn_output). Prints one line per configuration and seed
and a summary: how often each rule passed, and any configuration where FlashAttention's rule
passes and ringattn's fails (a false failure of ringattn's check).

    python bench/port_check.py [--seeds N] [--quick] [--planted] [--many]

--planted also runs the planted bugs (mask off by one, scale 10 % off, a row shifted, a key
tile dropped, one lse row shifted) and prints where check() located each.
Needs the ringattn package and torch."""
import argparse
import math
import sys
import time

import torch
import torch.nn.functional as F

import ringattn


def attention_ref(q, k, v, causal, upcast, reorder_ops, enable_gqa):
    """FlashAttention's attention_ref, in PyTorch's [b, h, n, d]: upcast=False, reorder_ops=True
    computes in the inputs' dtype with the scale applied to k (the tests' baseline)"""
    dtype_og = q.dtype
    if upcast:
        q, k, v = q.double(), k.double(), v.double()
    if enable_gqa:
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
    d = q.shape[-1]
    if reorder_ops:
        scores = torch.matmul(q, (k / math.sqrt(d)).transpose(-1, -2))
    else:
        scores = torch.matmul(q / math.sqrt(d), k.transpose(-1, -2))
    if causal:   # top-left, as SDPA's is_causal
        nq, nk = scores.shape[-2:]
        scores = scores.masked_fill(torch.ones(nq, nk, dtype=torch.bool).triu(1), float("-inf"))
    attn = torch.softmax(scores, dim=-1).to(v.dtype)
    return torch.matmul(attn, v).to(dtype_og if not upcast else torch.float64)


def fa_rule(q, k, v, g, port, causal, gqa):
    res = {}
    for upcast in (True, False):
        qq, kk, vv = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
        o = attention_ref(qq, kk, vv, causal, upcast, not upcast, gqa)
        if g is not None:
            o.backward(g.double() if upcast else g)
        res[upcast] = dict(out=o.detach(), dq=qq.grad, dk=kk.grad, dv=vv.grad)
    ok = {}
    for n, x in port.items():
        e = (x.double() - res[True][n].double()).abs().max().item()
        b = (res[False][n].double() - res[True][n].double()).abs().max().item()
        ok[n] = e <= (2 if n == "out" else 3) * b
    return ok


def sdpa_port(q, k, v, causal, gqa, backward, seed):
    qq, kk, vv = (x.clone().requires_grad_(backward) for x in (q, k, v))
    out = F.scaled_dot_product_attention(qq, kk, vv, is_causal=causal, enable_gqa=gqa)
    port, g = {"out": out.detach()}, None
    if backward:
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed + 99)).to(out.dtype)
        out.backward(g)
        port.update(dq=qq.grad, dk=kk.grad, dv=vv.grad)
    return port, g


GRID = [  # (b, h, hk, nq, nk, d, causal, backward)
    (1, 4, 4, 128, 128, 64, False, True), (1, 4, 4, 128, 128, 64, True, True),
    (1, 4, 4, 128, 128, 128, True, True), (1, 4, 4, 1024, 1024, 64, False, True),
    (1, 4, 4, 1024, 1024, 64, True, True), (1, 4, 4, 1024, 1024, 128, False, True),
    (1, 4, 4, 1024, 1024, 128, True, True), (1, 8, 2, 1024, 1024, 64, True, True),
    (1, 8, 2, 128, 128, 128, False, True), (1, 4, 4, 128, 512, 64, False, True),
    (1, 4, 4, 512, 128, 64, False, True), (1, 4, 4, 256, 1024, 128, True, True),
    (2, 4, 1, 256, 256, 64, True, True), (1, 2, 2, 4096, 4096, 64, True, False),
    (1, 2, 2, 4096, 4096, 128, False, False), (1, 2, 1, 4096, 4096, 64, False, False),
    (1, 2, 2, 2048, 2048, 64, True, True),
]


SEED_GRID = [  # the false-failure count: small shapes, many seeds
    (1, 4, 4, 128, 128, 64, False, True), (1, 4, 4, 128, 128, 64, True, True),
    (1, 4, 4, 128, 128, 128, True, True), (1, 8, 2, 128, 128, 64, True, True),
]


def run_grid(seeds, quick, grid=None, dtypes=None):
    grid = grid or [c for c in GRID if not quick or max(c[3], c[4]) <= 1024]
    tally = {}
    for dt in dtypes or (torch.bfloat16, torch.float16, torch.float32):
        for (b, h, hk, nq, nk, d, causal, bwd) in grid:
            for seed in range(seeds):
                gen = torch.Generator().manual_seed(seed)
                q = torch.randn(b, h, nq, d, generator=gen).to(dt)
                k = torch.randn(b, hk, nk, d, generator=gen).to(dt)
                v = torch.randn(b, hk, nk, d, generator=gen).to(dt)
                port, g = sdpa_port(q, k, v, causal, hk != h, bwd, seed)
                fa = fa_rule(q, k, v, g, port, causal, hk != h)
                try:
                    reps = ringattn.check(q, k, v, dout=g, layout="bhnd", causal="top-left" if causal else None,
                                          **{n: x for n, x in port.items()})
                    ours, worst = True, max(r.ratio for r in reps.values())
                except AssertionError as e:
                    ours, worst = False, str(e).splitlines()[0]
                key = (str(dt).replace("torch.", ""), b, h, hk, nq, nk, d, causal, bwd)
                t = tally.setdefault(key, [0, 0, 0, 0])
                t[0] += 1
                t[1] += ours
                t[2] += all(fa.values())
                t[3] += (not ours) and all(fa.values())
                if not ours:
                    print("  ringattn FAIL", key, "seed", seed, "FA rule", fa, worst, flush=True)
    print("| dtype | b | h | hk | nq | nk | d | causal | backward | ringattn pass | FA rule pass | false failures |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    tot = [0, 0, 0, 0]
    for key, t in tally.items():
        print("| %s | %d | %d | %d | %d | %d | %d | %s | %s | %d/%d | %d/%d | %d |" % (key + (t[1], t[0], t[2], t[0], t[3])))
        tot = [a + b for a, b in zip(tot, t)]
    print("total: ringattn passed %d of %d, FlashAttention's rule %d of %d, false failures %d"
          % (tot[1], tot[0], tot[2], tot[0], tot[3]))
    return tot[3]


def planted():
    """bugs planted in a correct bf16 port; each must fail with its location"""
    torch.manual_seed(7)
    b, h, n, d = 1, 4, 512, 64
    q, k, v = (torch.randn(b, h, n, d).to(torch.bfloat16) for _ in range(3))
    good = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    lse = torch.logsumexp((q.float() @ k.float().transpose(-1, -2) / math.sqrt(d)).masked_fill(
        torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf")), -1)
    mask = torch.ones(n, n, dtype=torch.bool).triu(1)
    mask[20, 21] = False     # row 20 sees one key too many
    bugs = {
        "mask off by one (row 20)": dict(out=F.scaled_dot_product_attention(q, k, v, attn_mask=~mask)),
        "scale 10 % off": dict(out=F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.1 / math.sqrt(d))),
        "row index off by one (head 2)": dict(out=torch.cat([good[:, :2], good[:, 2:3].roll(1, 2), good[:, 3:]], 1)),
        "key tile 128..255 dropped": dict(out=F.scaled_dot_product_attention(
            q, torch.cat([k[:, :, :128], k[:, :, 256:]], 2), torch.cat([v[:, :, :128], v[:, :, 256:]], 2),
            attn_mask=torch.ones(n, n - 128, dtype=torch.bool).tril(0)[:, :] & torch.cat(
                [torch.ones(n, n, dtype=torch.bool).tril(0)[:, :128], torch.ones(n, n, dtype=torch.bool).tril(0)[:, 256:]], 1))),
        "lse shifted on row 17": dict(out=good, lse=lse.clone().index_put_((torch.tensor([0]), torch.tensor([1]),
                                                                           torch.tensor([17])), torch.tensor(0.05), accumulate=True)),
    }
    caught = 0
    for name, port in bugs.items():
        try:
            ringattn.check(q, k, v, layout="bhnd", causal="top-left", **port)
            print("NOT CAUGHT:", name)
        except AssertionError as e:
            lines = [l for l in str(e).splitlines() if l.startswith("max abs error") or l.startswith("---")]
            print("caught: %-32s %s" % (name, " ".join(lines)[:200]))
            caught += 1
    print("planted bugs caught: %d of %d" % (caught, len(bugs)))
    return len(bugs) - caught


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="n <= 1024 only")
    ap.add_argument("--planted", action="store_true")
    ap.add_argument("--many", action="store_true", help="SEED_GRID (n = 128) over --seeds seeds, bf16 and f32")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    if a.many:
        bad = run_grid(a.seeds, False, SEED_GRID, (torch.bfloat16, torch.float32))
    else:
        bad = run_grid(a.seeds, a.quick)
    if a.planted:
        bad += planted()
    print("%.0f s" % (time.time() - t0))
    sys.exit(1 if bad else 0)
