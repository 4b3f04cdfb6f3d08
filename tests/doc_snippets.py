#!/usr/bin/env python3
"""doc_snippets.py SRC_ROOT WORKDIR - every C snippet of README.md and docs/*.md compiled.

A snippet is one of three kinds, told apart by its text:
  - a program (it has a main): compiled with the strict flags, linked and run (exit 0);
  - a declaration listing (typedefs and prototypes only): compiled after the real header
    (ringattn_layer.h for a snippet that names the layer, ringattn.h otherwise), each
    prototype as a redeclaration (a signature that drifted is a compile error), each listed
    struct field and enumerator used once (a renamed or missing one is a compile error);
  - a fragment: its preprocessor lines and function definitions at file scope, its statements
    in a main, with the declarations it assumes from FRAGMENT_CONTEXT below (keyed by page and
    first line, so a changed snippet without a context fails instead of passing unchecked).
The shell lines `cc ... myfile.c ...` of a page are run on that page's program. MPI snippets
need mpicc and CUDA snippets nvcc: without them those snippets are reported and skipped.
Exit 0 when all compiled, 1 on any failure."""
import glob
import os
import re
import shutil
import subprocess
import sys

STRICT = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
LOOSE = ["-Wno-unused-variable", "-Wno-unused-parameter", "-Wno-unused-but-set-variable"]

# (file-scope declarations, declarations at the top of main) for each fragment
FRAGMENT_CONTEXT = {
    ("docs/api.md", "#define RINGATTN_IMPLEMENTATION"): ("", ""),
    ("docs/api.md", "ringattn_tensor Q = ringattn_tensor_bnhd(q, RINGATTN_F32, b, n, h, d);   /* [b, n, h, d] */"):
        ("", "float q[1], k[1], v[1], o[1]; int64_t b = 1, n = 1, h = 1, d = 1;"),
    ("docs/ring.md", "cfg.trace = on_step; cfg.trace_user = &mine; cfg.trace_blocks = 1;   /* forward */"):
        ("static float buf[1], lbuf[1]; static int64_t qpos[1]; enum { cap = 1 };\n"
         "static void on_step(const ringattn_trace_event *ev, void *user);",
         "ringattn_config cfg = ringattn_default_config(); int mine = 0;"),
    ("docs/mpi.md", "/* in exactly one .c file */"):
        ("", "ringattn_tensor Q, K, V, O, L, dO, dQ, dK, dV;"),
    ("docs/cuda.md", "/* in one .cu file */"): ("", ""),
}


def c_blocks(text):
    return re.findall(r"^```c\n(.*?)^```", text, flags=re.S | re.M)


def sh_blocks(text):
    return re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)


def strip_comments(code):
    return re.sub(r"/\*.*?\*/", "", code, flags=re.S)


def is_listing(code):
    """typedefs and prototypes only: every top-level statement is a typedef or a prototype"""
    body = strip_comments(code)
    if "#" in body or "main(" in body:
        return False
    stmts, rest = statements(body)
    for s in stmts:
        if not s.startswith("typedef ") and \
           not (re.match(r"^[\w\s\*]+\bringattn_\w+\s*\(.*\)\s*;$", s) and "=" not in s):
            return False
    return not rest.strip()


def statements(body):
    """the top-level statements of body (whitespace collapsed), and what follows the last"""
    out, depth, stmt = [], 0, ""
    for ch in body:
        stmt += ch
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            out.append(" ".join(stmt.split()))
            stmt = ""
    return out, stmt


def listing_checks(code):
    """file-scope redeclarations and a function touching every listed field and enumerator"""
    decls, uses = [], []
    for s in statements(strip_comments(code))[0]:
        m = re.match(r"^typedef (struct|enum) \{(.*)\} (\w+);$", s)
        if m:
            kind, inner, name = m.groups()
            if kind == "enum":
                for e in inner.split(","):
                    uses.append("{ %s e = %s; (void)e; }" % (name, e.strip()))
            else:
                for field_decl in inner.split(";"):
                    field_decl = field_decl.strip()
                    if not field_decl:
                        continue
                    first, *rest = field_decl.split(",")
                    names = [first.split()[-1]] + [r.strip() for r in rest]
                    for fname in names:
                        fname = re.sub(r"\[.*\]", "", fname).lstrip("*")
                        uses.append("(void)sizeof(((%s *)0)->%s);" % (name, fname))
            continue
        m = re.match(r"^typedef (\w+) (\w+);$", s)
        if m:
            uses.append("{ %s *a = 0; %s *b = a; (void)b; }" % (m.group(2), m.group(1)))
            continue
        decls.append(s)   # a prototype: redeclared after the header
    return "\n".join(decls) + "\nvoid doc_listing_uses(void);\nvoid doc_listing_uses(void) {\n" + \
        "\n".join(uses) + "\n}\n"


def split_fragment(code):
    """(file-scope lines, statement lines): preprocessor lines and function definitions (a
    line at column 0 ending a signature, up to the next '}' at column 0) go to file scope"""
    top, stmts, in_fn = [], [], False
    for line in code.split("\n"):
        if in_fn:
            top.append(line)
            if line.startswith("}"):
                in_fn = False
        elif line.startswith("#"):
            top.append(line)
        elif re.match(r"^(static\s+)?[\w\s\*]+\w+\s*\([^;]*\)\s*$", line):
            top.append(line)
            in_fn = True
        else:
            stmts.append(line)
    return "\n".join(top), "\n".join(stmts)


def compile_and_maybe_run(tu, name, work, compiler, run):
    src = os.path.join(work, name + (".cu" if compiler[0] == "nvcc" else ".c"))
    with open(src, "w") as f:
        f.write(tu)
    exe = os.path.join(work, name)
    cmd = compiler + [src, "-o", exe] + ([] if compiler[0] == "nvcc" else ["-lm"])
    if not run:
        cmd = compiler + ["-c", src, "-o", exe + ".o"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return "does not compile: %s\n%s%s" % (" ".join(cmd), r.stdout, r.stderr)
    if run:
        r = subprocess.run([exe], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            return "exits %d\n%s%s" % (r.returncode, r.stdout, r.stderr)
    return None


def main():
    root, work = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(work, exist_ok=True)
    inc = ["-I" + root]
    have = {tool: shutil.which(tool) is not None for tool in ("mpicc", "nvcc", "gcc")}
    cc = ["gcc" if have["gcc"] else "cc"]
    failures, checked, skipped = [], 0, 0
    pages = [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md")))
    for page in pages:
        rel = os.path.relpath(page, root)
        text = open(page).read()
        program = None
        for i, code in enumerate(c_blocks(text)):
            name = re.sub(r"\W", "_", rel) + "_%d" % i
            first = code.split("\n", 1)[0]
            mpi, cuda = "ringattn_mpi.h" in code, "ringattn_cuda.h" in code
            # a snippet of the layer is checked against its own header, every other one against
            # ringattn.h alone (which must not know the layer)
            header = "ringattn_layer.h" if "ringattn_layer" in code else "ringattn.h"
            compiler = cc + STRICT + inc
            if mpi:
                if not have["mpicc"]:
                    print("SKIP %s snippet %d: no mpicc" % (rel, i)); skipped += 1; continue
                compiler = ["mpicc"] + STRICT + inc
            if cuda:
                if not have["nvcc"]:
                    print("SKIP %s snippet %d: no nvcc" % (rel, i)); skipped += 1; continue
                compiler = ["nvcc", "-x", "cu", "-Werror", "all-warnings"] + inc
            if "main(" in code:
                program = code
                err = compile_and_maybe_run(code, name, work, compiler, run=True)
            elif is_listing(code):
                tu = "#include <stdint.h>\n#include <stddef.h>\n#include \"%s\"\n" % header + listing_checks(code)
                err = compile_and_maybe_run(tu, name, work, compiler, run=False)
            else:
                key = (rel, first)
                if key not in FRAGMENT_CONTEXT:
                    failures.append("%s snippet %d (%r): a fragment with no context in %s" %
                                    (rel, i, first, os.path.basename(__file__)))
                    continue
                file_ctx, fn_ctx = FRAGMENT_CONTEXT[key]
                top, stmts = split_fragment(code)
                head = "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <stdint.h>\n"
                main_fn = "int main(int argc, char **argv) {\n(void)argc; (void)argv;\n%s\n%s\nreturn 0;\n}\n" % (fn_ctx, stmts)
                if "#include" in top:   # the snippet's own includes first (they define the implementation)
                    tu = top + "\n" + head + file_ctx + "\n" + main_fn
                else:
                    tu = head + "#include \"%s\"\n" % header + file_ctx + "\n" + top + "\n" + main_fn
                flags = LOOSE if compiler[0] != "nvcc" else []
                err = compile_and_maybe_run(tu, name, work, compiler + flags, run=False)
            checked += 1
            if err:
                failures.append("%s snippet %d (%r): %s" % (rel, i, first, err))
            else:
                print("ok   %s snippet %d: %s" % (rel, i, first))
        # the page's compile lines, on the page's program
        for block in sh_blocks(text):
            for line in block.split("\n"):
                cmd = line.split("#")[0].strip()
                if not (cmd.startswith("cc ") and "myfile.c" in cmd) or "pkg-config" in cmd:
                    continue
                if program is None:
                    program = [c for c in c_blocks(open(pages[0]).read()) if "main(" in c][0]
                with open(os.path.join(work, "myfile.c"), "w") as f:
                    f.write(program)
                cmd = cmd.replace("-I.", "-I" + root)
                if "-lopenblas" in cmd or "-fopenmp" in cmd:
                    probe = subprocess.run(cmd + " -o myfile", shell=True, cwd=work, capture_output=True, text=True)
                    if probe.returncode != 0 and ("cblas.h" in probe.stderr or "lopenblas" in probe.stderr):
                        print("SKIP %s: %s (no OpenBLAS)" % (rel, cmd)); skipped += 1; continue
                r = subprocess.run(cmd + " -o myfile && ./myfile", shell=True, cwd=work, capture_output=True, text=True)
                checked += 1
                if r.returncode != 0:
                    failures.append("%s: `%s` fails\n%s%s" % (rel, cmd, r.stdout, r.stderr))
                else:
                    print("ok   %s: %s" % (rel, cmd))
    for f in failures:
        print("FAIL " + f)
    print("%d snippets checked, %d failed, %d skipped" % (checked, len(failures), skipped))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
