"""A grading round trip: a fake class made from the released homework, graded by `make grade`'s
script with nbgrader, checked score by score (the issue's list), and the feedback searched for
every line of the hidden tests."""

from __future__ import annotations

import csv
import html
import os
import signal
import subprocess
import sys
from collections import defaultdict

import nbformat
import pytest

from homework_support import FIXTURE_MODEL, ROOT, SOURCE, grade_id, hidden_test_lines, make_course, make_fake_class

pytest.importorskip("nbgrader", reason="the homework needs nbgrader: pip install -r requirements.txt")
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")

CELL_TIMEOUT = 20          # seconds; the endless loop costs this much
PART1 = {"test_entropy": 2, "test_mutual_information": 3, "test_variational_bound": 5}
PART2 = {"test_code_nll": 3, "test_continuous_bound": 4, "test_information_loss": 4,
         "test_widen_generator": 5, "test_widen_discriminator": 3, "test_third_code_model": 4}
AUTO_TOTAL = sum(PART1.values()) + sum(PART2.values())    # 33; the two written answers add 20 by hand


def run_grade(course, *args):
    env = dict(os.environ, INFOGAN_CELL_TIMEOUT=str(CELL_TIMEOUT))
    out = subprocess.run([sys.executable, "-m", "grading.grade", "--course", str(course), *args],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def scores(course) -> dict[str, dict[str, float]]:
    table = defaultdict(dict)
    with open(course / "grades-by-cell.csv") as f:
        for row in csv.DictReader(f):
            table[row["student"]][row["cell"]] = (float(row["score"]) if row["score"] else None,
                                                  float(row["max_score"]))
    return table


def auto(table, student) -> float:
    return sum(s for cell, (s, _) in table[student].items() if cell.startswith("test_") and s)


def interrupted_grade(course, after: int) -> list[str]:
    """Start `make grade`'s script and kill it, and all it started, once `after` students are
    graded (a crash midway); return the students it had finished."""
    env = dict(os.environ, INFOGAN_CELL_TIMEOUT=str(CELL_TIMEOUT))
    proc = subprocess.Popen([sys.executable, "-m", "grading.grade", "--course", str(course)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    finished = []
    try:
        for line in proc.stdout:
            if ": graded (" in line:
                finished.append(line.split("] ", 1)[1].split(":", 1)[0])
                if len(finished) == after:
                    break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return finished


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    assert FIXTURE_MODEL.exists(), f"{FIXTURE_MODEL} (a trained 3-code model) is missing"
    course = make_fake_class(make_course(tmp_path_factory.mktemp("course")))
    # The cells here may take 20 s (the endless loop's cost), far below the 120 s a class gets: read
    # torch's files once first, so that a cold file cache cannot time out a student's import cell.
    subprocess.run([sys.executable, "-c", "import torch, torchvision, infogan_lib"], cwd=ROOT, check=True,
                   timeout=600)
    before_crash = interrupted_grade(course, after=2)
    log = run_grade(course, "--feedback")          # goes on after the crash
    first = scores(course)
    regrade_log = run_grade(course, "--students", "full", "partial", "--regrade")
    return course, first, scores(course), log + regrade_log, before_crash


def test_a_run_killed_midway_goes_on_with_the_rest_when_run_again(graded):
    course, first, _, log, before_crash = graded
    assert len(before_crash) == 2
    resumed = log.split("grades:")[0]
    for student in before_crash:
        assert f"{student}: kept" in resumed, resumed
    graded_now = [s for s in first if f"{s}: graded (" in resumed]
    assert set(graded_now) | set(before_crash) >= {"full", "untouched", "partial", "edits_tests",
                                                   "inflates_points", "loops"}
    assert not list((course / ".grading" / "gradebooks").glob("*.db")), "private gradebooks left behind"
    assert not list((course / "autograded").rglob(".graded")), "grading's markers live in .grading/, not autograded/"
    # every score is checked against what it must be by the tests below, crash or not


def test_the_full_solution_earns_every_autograded_point(graded):
    course, first, _, _, _ = graded
    report = (course / "grading-report.md").read_text()
    assert auto(first, "full") == AUTO_TOTAL, (first["full"], report)
    assert first["full"]["derivation"][0] is None, "written answers wait for a human grader"


def test_the_untouched_release_earns_nothing(graded):
    assert auto(graded[1], "untouched") == 0


def test_a_partial_solution_earns_exactly_the_points_of_what_it_solves(graded):
    table = graded[1]["partial"]
    assert auto(graded[1], "partial") == 2 + 3 + 3
    assert table["test_entropy"][0] == 2 and table["test_variational_bound"][0] == 0


def test_edited_or_deleted_test_cells_are_restored_from_the_source(graded):
    course, first, _, _, _ = graded
    assert auto(first, "edits_tests") == 2, "only entropy is solved: the gutted tests must not pass the rest"
    nb = nbformat.read(course / "autograded" / "edits_tests" / "infogan_homework" / "1_mi_bound.ipynb",
                       as_version=4)
    ids = [grade_id(c) for c in nb.cells]
    assert "test_variational_bound" in ids, "the deleted test cell must be put back"
    restored = next(c for c in nb.cells if grade_id(c) == "test_mutual_information")
    assert "all tests passed" not in restored.source


def test_changed_point_values_are_ignored(graded):
    table = graded[1]["inflates_points"]
    assert table["test_entropy"] == (2, 2) and table["test_mutual_information"][1] == 3
    assert auto(graded[1], "inflates_points") == 2


def test_an_endless_loop_times_out_that_cell_and_grading_goes_on(graded):
    course, first, _, _, _ = graded
    assert first["loops"]["test_mutual_information"][0] == 0
    assert auto(first, "loops") == 2 + 3, "entropy (part 1) and code_nll (part 2) still count"
    report = (course / "grading-report.md").read_text()
    assert "1\\_mi\\_bound:test\\_mutual\\_information (timeout" in report


def test_an_invalid_or_missing_notebook_is_reported_and_the_rest_is_graded(graded):
    course, first, _, _, _ = graded
    report = (course / "grading-report.md").read_text()
    assert "**bad\\_json**: 1\\_mi\\_bound\\.ipynb is not a valid notebook" in report
    assert "**missing**: 2\\_third\\_code\\.ipynb is missing from the submission" in report
    assert auto(first, "bad_json") == 3, "bad_json's valid part 2 (code_nll) is graded"
    assert auto(first, "missing") == sum(PART1.values())
    assert set(first) >= {"full", "untouched", "partial", "edits_tests", "inflates_points", "loops"}


def test_grading_the_same_submission_twice_gives_the_same_score(graded):
    _, first, second, log, _ = graded
    for student in ("full", "partial"):
        assert second[student] == first[student]
    assert "full: graded" in log.split("[1/2]")[-1]


def test_no_line_of_the_hidden_tests_reaches_the_feedback(graded):
    course = graded[0]
    lines = hidden_test_lines()
    pages = list((course / "feedback").rglob("*.html"))
    assert len(pages) >= 14, "feedback for every graded notebook"
    for page in pages:
        text = page.read_text()
        leaked = [ln for ln in lines if ln in text or html.escape(ln) in text
                  or html.escape(ln, quote=False) in text]
        assert not leaked, f"{page} shows hidden test lines: {leaked[:2]}"
    # the failed hidden tests still tell the student what is wrong, without the code
    partial = (course / "feedback" / "partial" / "infogan_homework" / "1_mi_bound.html").read_text()
    assert "hidden tests ran here" in partial and "NotImplementedError" in partial
