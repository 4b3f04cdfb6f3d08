"""The documents' snippets run as written: docs/python.md (every python block, in order, in
one namespace, and the test functions it defines), the README's Python section, and the
end-to-end check of a port through .npy files and ringattn-golden of docs/golden.md. (The C
snippets are compiled by tests/doc_snippets.py.)"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, needs_torch


def blocks(text, lang):
    return re.findall(r"^```%s\n(.*?)^```" % lang, text, flags=re.S | re.M)


def section(text, title):
    m = re.search(r"^## %s\n(.*?)(?=^## |\Z)" % re.escape(title), text, flags=re.S | re.M)
    assert m, "no section '## %s'" % title
    return m.group(1)


def run_python_blocks(code_blocks, cwd):
    ns = {"__name__": "docs"}
    old = os.getcwd()
    os.chdir(cwd)
    try:
        for code in code_blocks:
            exec(compile(code, "<snippet>", "exec"), ns)
        for name, f in list(ns.items()):
            if name.startswith("test_") and callable(f):
                f()
    finally:
        os.chdir(old)
    return ns


@needs_torch
def test_docs_python_md(tmp_path):
    code = blocks((ROOT / "docs" / "python.md").read_text(), "python")
    assert len(code) >= 6
    ns = run_python_blocks(code, tmp_path)
    assert {"test_my_attention", "test_my_attention_backward"} <= set(ns)


@needs_torch
def test_readme_python_section(tmp_path):
    code = blocks(section((ROOT / "README.md").read_text(), "Python"), "python")
    assert code
    run_python_blocks(code, tmp_path)


@needs_torch
def test_golden_md_end_to_end_check(tmp_path):
    """docs/golden.md's dump snippet and its ringattn-golden commands, with a correct port and
    then with a dq broken by 2 % of its max, which the same commands must fail"""
    import numpy as np
    import torch

    tool = shutil.which("ringattn-golden") or os.path.join(os.path.dirname(sys.executable), "ringattn-golden")
    if not os.path.exists(tool):
        pytest.skip("ringattn-golden is not installed next to this Python")
    text = section((ROOT / "docs" / "golden.md").read_text(), "Golden outputs and checking a GPU port")
    dump = blocks(text, "python")[0]
    sh = blocks(text, "sh")[0]
    sh = sh.replace("ringattn-golden ", '"%s" ' % tool)
    # the port: bottom-right causal with nq > nk (the first rows see no key), in float32
    torch.manual_seed(0)
    q = torch.randn(1, 2, 24, 16, requires_grad=True)
    k, v = torch.randn(1, 2, 16, 16, requires_grad=True), torch.randn(1, 2, 16, 16, requires_grad=True)
    i, j = torch.arange(24)[:, None], torch.arange(16)[None, :]
    mask = j <= i + 16 - 24
    s = (q @ k.transpose(-1, -2) / 4).masked_fill(~mask, -torch.inf)
    m = s.amax(-1, keepdim=True).detach().clamp_min(-1e30)      # finite for the empty rows too
    p = torch.exp(s - m)
    l = p.sum(-1, keepdim=True)
    out_gpu = (p @ v) / torch.where(l > 0, l, torch.ones_like(l))   # empty rows: 0, as ringattn
    lse_gpu = (torch.log(l) + m)[..., 0]                             # and -inf
    dout = torch.randn_like(out_gpu)
    dq_gpu = torch.autograd.grad(out_gpu, q, dout, retain_graph=True)[0]
    ns = dict(q=q, k=k, v=v, dout=dout, out_gpu=out_gpu, dq_gpu=dq_gpu, lse_gpu=lse_gpu, np=np, torch=torch)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(dump, "<docs/golden.md dump>", "exec"), ns)
        r = subprocess.run(["bash", "-ec", sh], capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout.rstrip().endswith("0"), r.stdout + r.stderr
        dq = np.load("case/dq.npy")
        dq[0, 20, 1, 3] += 0.02 * np.abs(dq).max()
        np.save("case/dq.npy", dq)
        r = subprocess.run(["bash", "-ec", sh], capture_output=True, text=True)
        assert r.returncode == 1 and "FAIL (outside tolerance)" in r.stdout, r.stdout + r.stderr
    finally:
        os.chdir(old)


def test_every_python_block_is_run():
    """the Python blocks of README.md and docs/*.md are exactly those the tests above run: a
    block added to another page fails here until a test runs it"""
    run = {"README.md": len(blocks(section((ROOT / "README.md").read_text(), "Python"), "python")),
           "docs/python.md": len(blocks((ROOT / "docs" / "python.md").read_text(), "python")),
           "docs/golden.md": 1}
    for page in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        rel = page.relative_to(ROOT).as_posix()
        assert len(blocks(page.read_text(), "python")) == run.get(rel, 0), rel
