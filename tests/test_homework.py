"""The homework as released: assignments/ is what nbgrader makes from solutions/, and no hidden test
line reaches what students get (the release, the student bundle)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import nbformat
import pytest

from grading.grade import NBGRADER, nbgrader_env
from harness.fake_class import ASSIGNMENT, NOTEBOOKS, RELEASE, ROOT, SOURCE, hidden_test_lines, make_course

pytest.importorskip("nbgrader", reason="the homework needs nbgrader: pip install -r requirements.txt")
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")


def test_the_release_is_exactly_what_nbgrader_generates_from_the_solutions(tmp_path):
    course = make_course(tmp_path)
    (course / "assignments" / ASSIGNMENT).rename(tmp_path / "committed")
    out = subprocess.run([*NBGRADER, "generate_assignment", ASSIGNMENT, "--force"],
                         cwd=course, env=nbgrader_env(seed=0), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    made = sorted(p.name for p in (course / "assignments" / ASSIGNMENT).iterdir())
    assert made == sorted(p.name for p in (tmp_path / "committed").iterdir()), \
        "assignments/ holds other files than nbgrader makes: run `make release`"
    for name in made:
        want = json.loads((course / "assignments" / ASSIGNMENT / name).read_text())
        got = json.loads((tmp_path / "committed" / name).read_text())
        assert got == want, f"assignments/{ASSIGNMENT}/{name} differs from what solutions/ gives: run `make release`"


def test_no_line_of_the_hidden_tests_is_in_the_release():
    lines = hidden_test_lines()
    assert len(lines) > 100, "the hidden tests should be found in solutions/"
    for name in NOTEBOOKS:
        text = (RELEASE / f"{name}.ipynb").read_text()
        leaked = [ln for ln in lines if ln in text]
        assert not leaked, f"{name}.ipynb shows hidden test lines: {leaked[:3]}"


def test_the_release_has_stubs_where_the_solutions_are_and_no_rubric():
    for name in NOTEBOOKS:
        release = nbformat.read(RELEASE / f"{name}.ipynb", as_version=4)
        source = nbformat.read(SOURCE / f"{name}.ipynb", as_version=4)
        solutions = [c for c in release.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert solutions, f"{name} has no answer cells"
        for cell in solutions:
            stub = "raise NotImplementedError()" if cell.cell_type == "code" else "YOUR ANSWER HERE"
            assert stub in cell.source and "BEGIN SOLUTION" not in cell.source
        assert "Rubric" in json.dumps(source.cells) and "Rubric" not in json.dumps(release.cells)
        assert "Model answer" not in json.dumps(release.cells)


def test_the_student_bundle_leaves_out_the_solutions_and_every_hidden_line(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("the bundle is built from git's list of files")
    from grading.bundle import LEFT_OUT
    out = subprocess.run([sys.executable, "-m", "grading.bundle", "--out", str(tmp_path / "b.tar.gz")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = hidden_test_lines()
    sources = {}
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        names = tar.getnames()
        assert not [n for n in names if "/solutions/" in n], "solutions/ must not be in the bundle"
        for left in ("harness/fake_class.py", "harness/attack_corpus.py", "harness/third_code.pt"):
            assert left in LEFT_OUT and f"infogan-course/{left}" not in names, f"{left} holds answers"
        assert not [n for n in names if n.removeprefix("infogan-course/").startswith(LEFT_OUT)]
        assert f"infogan-course/assignments/{ASSIGNMENT}/2_third_code.ipynb" in names
        assert "infogan-course/infogan_lib/pretrained/infogan_mnist_final.pt" in names
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            try:
                text = data.decode()
            except UnicodeDecodeError:
                continue
            assert not [ln for ln in lines if ln in text], f"{member.name} shows hidden test lines"
            if member.name.endswith(".py"):
                sources[member.name] = text
    # what the bundle keeps still loads there: no file of it imports one the bundle leaves out
    left_modules = {m.removesuffix(".py").replace("/", ".") if not m.startswith("tests/") else Path(m).stem
                    for m in LEFT_OUT if m.endswith(".py") and not m.startswith("benchmarks/")}
    assert {"harness.fake_class", "harness.attack_corpus", "shared_class"} <= left_modules
    for name, text in sources.items():
        wanted = loaded_imports(text) & left_modules
        assert not wanted, f"{name} imports {sorted(wanted)}, which the bundle leaves out"


def loaded_imports(source: str) -> set[str]:
    """The modules a Python file imports when it is loaded (not those its functions import later)."""
    found, todo = set(), list(ast.parse(source).body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def test_the_bundle_is_refused_when_a_file_would_leak_a_hidden_line():
    from grading.bundle import leaks
    lines = hidden_test_lines()
    files = {"notes.md": ("copied from the solutions:\n" + lines[5] + "\n").encode(), "ok.txt": b"nothing"}
    assert list(leaks(files, lines)) == ["notes.md"]


SEED_SWEEP = r'''
import json, os, sys, warnings
import nbformat
name, seeds = sys.argv[1], [int(s) for s in sys.argv[2].split(",")]
nb = nbformat.read(name, as_version=4)
ns, tests = {"__name__": "__main__"}, []
warnings.simplefilter("error")                 # nbgrader fails a test cell that prints to stderr
for cell in nb.cells:
    if cell.cell_type != "code":
        continue
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        if "INFOGAN_GRADING_SEED" in cell.source:      # a test that draws from the seed
            tests.append((meta["grade_id"], cell.source))
    else:
        exec(compile(cell.source, meta.get("grade_id", "setup"), "exec"), ns)
failures = []
for seed in seeds:
    os.environ["INFOGAN_GRADING_SEED"] = str(seed)
    for grade_id, source in tests:
        try:
            exec(compile(source, grade_id, "exec"), ns)
        except BaseException as err:
            failures.append(f"seed {seed}, {grade_id}: {type(err).__name__}: {err}")
print(json.dumps(failures))
'''


@pytest.mark.parametrize("notebook, seeds", [("1_mi_bound", range(300)), ("2_third_code", range(4))])
def test_the_full_solution_passes_the_hidden_tests_for_every_grading_seed(tmp_path, notebook, seeds):
    """Each course draws its own grading seed (1 of 10⁹): no seed may fail a correct answer, or
    print a warning (nbgrader would count the cell as failed). A test that drew a degenerate input
    (every entry of a distribution zeroed) failed the whole class for some seeds."""
    import shutil

    shutil.copy(SOURCE / f"{notebook}.ipynb", tmp_path)
    chosen = [7919 * s + 13 for s in seeds]         # spread over the range, fixed for the test
    out = subprocess.run([sys.executable, "-c", SEED_SWEEP, f"{notebook}.ipynb", ",".join(map(str, chosen))],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={**nbgrader_env(0), "NBGRADER_EXECUTION": "autograde"})
    assert out.returncode == 0, out.stderr[-3000:]
    failures = json.loads(out.stdout.strip().splitlines()[-1])
    assert not failures, f"{len(failures)} failures, e.g. {failures[:3]}"
