"""Fake student submissions built from the released homework, for the grading tests and benchmarks.

A submission is the release (assignments/) with some answer cells filled in from the instructor
version (solutions/): this module needs solutions/ and writes answers, so the student bundle leaves
it out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "infogan_homework"
SOURCE = ROOT / "solutions" / ASSIGNMENT
RELEASE = ROOT / "assignments" / ASSIGNMENT
FIXTURE_MODEL = Path(__file__).with_name("third_code.pt")      # a trained 3-code model that meets part 2
NOTEBOOKS = ("1_mi_bound", "2_third_code")


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def solution_sources(name: str) -> dict[str, str]:
    """{grade_id: source} of the solution cells of the instructor version."""
    nb = nbformat.read(SOURCE / f"{name}.ipynb", as_version=4)
    return {grade_id(c): c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def hidden_test_lines() -> list[str]:
    """Every line (of 8 characters or more) inside a hidden-test region of the instructor version."""
    from grading.bundle import hidden_test_lines as lines
    return lines(ROOT)


def make_course(folder: Path) -> Path:
    """A course folder like the kit's root, with the homework's source and release."""
    for item in ("solutions", "assignments", "grading", "nbgrader_config.py"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, folder / item)
    return folder


def submit(course: Path, student: str, solved: dict[str, set[str] | str] | None = None,
           edit=None, model: Path | None = None, drop: tuple[str, ...] = ()) -> Path:
    """Write submitted/<student>/infogan_homework/ from the release.

    `solved`: {notebook: set of grade_ids whose solution to fill in, or "all"}. `edit(name, nb)`
    may change a notebook before it is written; `model` is copied as third_code.pt; `drop` lists
    notebooks left out of the submission.
    """
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    for name in NOTEBOOKS:
        if name in drop:
            continue
        nb = nbformat.read(RELEASE / f"{name}.ipynb", as_version=4)
        want = (solved or {}).get(name, set())
        answers = solution_sources(name)
        for cell in nb.cells:
            gid = grade_id(cell)
            if gid in answers and (want == "all" or gid in want):
                cell.source = answers[gid]
        if edit is not None:
            edit(name, nb)
        nbformat.write(nb, folder / f"{name}.ipynb")
    if model is not None:
        shutil.copy(model, folder / "third_code.pt")
    return folder


def _gut_tests(name, nb):
    """A student who replaces test cells by a print and deletes one."""
    nb.cells = [c for c in nb.cells if grade_id(c) != "test_factored_bound"]
    for c in nb.cells:
        if (grade_id(c) or "").startswith("test_"):
            c.source = "print('all tests passed')"


def _inflate_points(name, nb):
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("points"):
            meta["points"] = 100


def _endless(name, nb):
    for c in nb.cells:
        if grade_id(c) == "posterior_kl":
            c.source = "def posterior_kl(joint, q):\n    while True:\n        pass"


def make_fake_class(course: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """The grading tests' class of eight: full, untouched, partial, gutted tests, inflated points, an
    endless loop, broken JSON, a missing notebook (tests/test_grading.py says what each must get);
    less `leave_out`."""
    students = {
        "full": dict(solved={"1_mi_bound": "all", "2_third_code": "all"}, model=FIXTURE_MODEL),
        "untouched": {},
        "partial": dict(solved={"1_mi_bound": {"bound_from_logits", "posterior_kl"}, "2_third_code": {"code_nll"}}),
        "edits_tests": dict(solved={"1_mi_bound": {"bound_from_logits"}}, edit=_gut_tests),
        "inflates_points": dict(solved={"1_mi_bound": {"bound_from_logits"}}, edit=_inflate_points),
        "loops": dict(solved={"1_mi_bound": {"bound_from_logits"}, "2_third_code": {"code_nll"}}, edit=_endless),
        "bad_json": dict(solved={"1_mi_bound": "all", "2_third_code": {"code_nll"}}),
        "missing": dict(solved={"1_mi_bound": "all"}, drop=("2_third_code",)),
    }
    for student, how in students.items():
        if student not in leave_out:
            folder = submit(course, student, **how)
            if student == "bad_json":
                (folder / "1_mi_bound.ipynb").write_text('{"cells": [ this is not json')
    return course
