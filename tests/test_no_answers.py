"""No answer of the homework is in what students receive.

For every autograded function of the homework, its test cell, hidden tests included, is run with
each function of matching arity that the student bundle defines in its place: every function in its
Python files (library, tools, benchmarks, grading, test helpers; methods and nested functions too)
and in its notebooks' code cells. None may pass. Pytest's own test functions are not called (they
take fixtures and do not return answers). And no function in the bundle, called with the shipped
model and the 3-code spec, returns a widened model.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from harness.fake_class import ROOT, SOURCE

pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")

PROBE = r'''
import ast, inspect, json, os, signal, sys, textwrap, time, warnings
import nbformat

root, files = sys.argv[1], json.loads(sys.argv[2])
sys.path[:0] = [root]
warnings.simplefilter("ignore")
os.environ["INFOGAN_GRADING_SEED"] = "12345"
os.environ["NBGRADER_EXECUTION"] = "autograde"          # a notebook's training cells stay off


class Timeout(BaseException):
    pass


def _alarm(*_):
    raise Timeout()


signal.signal(signal.SIGALRM, _alarm)
import copy
import numpy as np
import torch

HOME, STDOUT, STDERR = os.getcwd(), sys.stdout, sys.stderr      # HOME: the test's tmp_path


def isolated(fn, namespace, used, seconds=3):
    """fn(a copy of namespace) -> True, within `seconds`, with the torch modules it uses (names in
    `used`) copied afresh and the global state a candidate may change (grad mode, default dtype,
    signal handler, output, cwd) put back after it, so that no candidate can change what the next
    one is tried on."""
    fresh = {k: copy.deepcopy(v) if k in used and isinstance(v, torch.nn.Module) else v
             for k, v in namespace.items()}
    out = False
    try:
        try:
            signal.alarm(seconds)
            out = fn(fresh) is True
        finally:
            signal.alarm(0)
    except BaseException:        # the candidate's own error, or the alarm: even one that fires
        out = False              # just as the candidate ends, before alarm(0) (it fires only once)
    try:
        return out
    finally:
        signal.signal(signal.SIGALRM, _alarm)
        torch.set_grad_enabled(True)
        torch.set_default_dtype(torch.float32)
        np.seterr(all="warn")
        warnings.simplefilter("ignore")
        sys.stdout, sys.stderr = STDOUT, STDERR
        os.chdir(HOME)


def functions_in(source, namespace, where):
    """(where, function) for every def in `source`, compiled in `namespace` (its module's globals)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("test_"):
            text = textwrap.dedent(ast.get_source_segment(source, node) or "")
            scope = dict(namespace)
            try:
                exec(compile(text, where, "exec"), scope)
            except BaseException:
                continue
            if callable(scope.get(node.name)):
                out.append((f"{where}:{node.name}", scope[node.name]))
    return out


def module_namespace(path):
    """The module's globals if it imports cleanly, else what its import lines give."""
    rel = os.path.relpath(path, root)
    name = rel[:-3].replace(os.sep, ".")
    if name.endswith(".__init__"):
        name = name[: -len(".__init__")]
    if rel.startswith(("infogan_lib", "grading", "harness", "tools")):
        try:
            signal.alarm(20)
            module = __import__(name, fromlist=["_"])
            return dict(vars(module))
        except BaseException:
            pass
        finally:
            signal.alarm(0)
    return imports_of(open(path).read())


def imports_of(source):
    scope = {"__name__": "bundle_probe"}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return scope
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            try:
                exec(compile(ast.Module([node], []), "imports", "exec"), scope)
            except BaseException:
                pass
    return scope


candidates = []
for rel in files:
    path = os.path.join(root, rel)
    if rel.endswith(".py"):
        source = open(path).read()
        candidates += functions_in(source, module_namespace(path), rel)
    elif rel.endswith(".ipynb"):
        nb = nbformat.read(path, as_version=4)
        scope = {"__name__": "bundle_probe"}
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        for source in code:
            scope.update({k: v for k, v in imports_of(source).items() if k != "__name__"})
        for i, source in enumerate(code):
            found = functions_in(source, scope, f"{rel}[{i}]")
            scope.update({name.rsplit(":", 1)[1]: f for name, f in found})
            candidates += found


def accepts(f, n):
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    kw_required = [p for p in params if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    return not kw_required and len(required) <= n and (varargs or n <= len(positional))


report = {"candidates": len(candidates), "targets": {}, "passed": [], "widened": []}
for name in ("1_mi_bound", "2_third_code"):
    nb = nbformat.read(os.path.join(root, "solutions", "infogan_homework", f"{name}.ipynb"), as_version=4)
    os.chdir(HOME)                                  # a scratch folder: candidates may write files
    base, answers, tests = {"__name__": "__main__"}, {}, []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if meta.get("solution"):
            exec(compile(cell.source, meta["grade_id"], "exec"), base)
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    answers[node.name] = len(node.args.args) - len(node.args.defaults)   # required
        elif meta.get("grade"):
            tests.append((meta["grade_id"], cell.source))
        elif "GRADING" not in cell.source or cell.source.lstrip().startswith(("import", "from")):
            exec(compile(cell.source, "setup", "exec"), base)
    for grade_id, source in tests:
        target = grade_id[len("test_"):]
        if target not in answers:
            continue
        arity = answers[target]
        names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
        tried = 0
        for where, f in candidates:
            if not accepts(f, arity):
                continue
            tried += 1

            def passes(scope, f=f):
                exec(compile(source, grade_id, "exec"), {**scope, target: f})
                return True
            if isolated(passes, base, names):
                report["passed"].append(f"{where} passes {grade_id}")
        report["targets"][grade_id] = tried
    if name == "2_third_code":                       # a function that widens the shipped model
        spec3 = base["spec3"]
        for where, f in candidates:
            for args in (("G2", "spec3"), ("D2", "spec3"), ("G2", "D2"), ("G2", "D2", "spec3")):
                if not accepts(f, len(args)):
                    continue

                def widens(scope, f=f, args=args):
                    out = f(*(scope[a] for a in args))
                    return any(getattr(obj, "spec", None) == spec3 and hasattr(obj, "state_dict")
                               for obj in (out if isinstance(out, tuple) else (out,)))
                if isolated(widens, base, args):
                    report["widened"].append(f"{where}({', '.join(args)})")
print(json.dumps(report))
'''


def probe(files: list[str], scratch) -> dict:
    """The probe's report; it runs in `scratch`, where a candidate that writes files writes them."""
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT), json.dumps(files)], capture_output=True,
                         text=True, timeout=900, cwd=scratch)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _repo_state() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True).stdout


def test_no_function_in_the_student_bundle_passes_an_autograded_test_or_widens_the_model(tmp_path):
    from grading.bundle import bundle_files
    files = [f for f in bundle_files(ROOT) if f.endswith((".py", ".ipynb"))]
    before = _repo_state()
    report = probe(files, tmp_path)
    assert _repo_state() == before, "calling the bundle's functions wrote into the repository"
    assert report["candidates"] > 300, report["candidates"]       # the probe found the bundle's functions
    assert set(report["targets"]) == {"test_bound_from_logits", "test_posterior_kl", "test_factored_bound",
                                      "test_code_nll", "test_continuous_bound", "test_information_loss",
                                      "test_widen_generator", "test_widen_discriminator"}, report["targets"]
    assert all(n > 0 for n in report["targets"].values()), report["targets"]
    assert report["passed"] == [], report["passed"]
    assert report["widened"] == [], report["widened"]


def test_the_probe_finds_an_answer_where_there_is_one(tmp_path):
    """The same probe, given the solutions and a test helper that widens the model, finds them."""
    files = ["solutions/infogan_homework/1_mi_bound.ipynb", "harness/widened.py", "infogan_lib/losses.py"]
    report = probe(files, tmp_path)
    assert any("1_mi_bound.ipynb" in p and "passes test_factored_bound" in p for p in report["passed"]), report
    assert any(w.startswith("harness/widened.py") for w in report["widened"]), report
