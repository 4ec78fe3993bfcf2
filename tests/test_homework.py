"""The homework as released: assignments/ is what nbgrader makes from solutions/, and no hidden test
line reaches what students get (the release, the student bundle)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import nbformat
import pytest

from homework_support import ASSIGNMENT, NOTEBOOKS, RELEASE, ROOT, SOURCE, hidden_test_lines, make_course

from grading.grade import nbgrader_env

pytest.importorskip("nbgrader", reason="the homework needs nbgrader: pip install -r requirements.txt")
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")


def test_the_release_is_exactly_what_nbgrader_generates_from_the_solutions(tmp_path):
    course = make_course(tmp_path)
    (course / "assignments" / ASSIGNMENT).rename(tmp_path / "committed")
    out = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"],
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
    out = subprocess.run([sys.executable, "-m", "grading.bundle", "--out", str(tmp_path / "b.tar.gz")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = hidden_test_lines()
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        names = tar.getnames()
        assert not [n for n in names if "/solutions/" in n], "solutions/ must not be in the bundle"
        assert f"infogan-course/assignments/{ASSIGNMENT}/2_third_code.ipynb" in names
        assert "infogan-course/infogan_lib/pretrained/infogan_mnist_final.pt" in names
        for member in tar.getmembers():
            data = tar.extractfile(member).read()
            try:
                text = data.decode()
            except UnicodeDecodeError:
                continue
            assert not [ln for ln in lines if ln in text], f"{member.name} shows hidden test lines"


def test_the_bundle_is_refused_when_a_file_would_leak_a_hidden_line():
    from grading.bundle import leaks
    lines = hidden_test_lines()
    files = {"notes.md": ("copied from the solutions:\n" + lines[5] + "\n").encode(), "ok.txt": b"nothing"}
    assert list(leaks(files, lines)) == ["notes.md"]
