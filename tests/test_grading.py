"""A grading round trip: a fake class made from the released homework, graded by `make grade`'s
script with nbgrader, checked score by score (the issue's list), and the feedback searched for
every line of the hidden tests. The fake class is graded as part of one larger class, beside the
attack corpus (tests/shared_class.py, the fixture `graded_class`)."""

from __future__ import annotations

import html
from collections import defaultdict

import nbformat
import pytest

from harness.fake_class import SOURCE, grade_id, hidden_test_lines

pytest.importorskip("nbgrader", reason="the homework needs nbgrader: pip install -r requirements.txt")
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")

PART1 = {"test_bound_from_logits": 3, "test_posterior_kl": 3, "test_factored_bound": 4}
PART2 = {"test_code_nll": 3, "test_continuous_bound": 4, "test_information_loss": 4,
         "test_widen_generator": 5, "test_widen_discriminator": 3, "test_third_code_model": 4}
AUTO_TOTAL = sum(PART1.values()) + sum(PART2.values())    # 33; the two written answers add 20 by hand
FAKE_CLASS = ("full", "untouched", "partial", "edits_tests", "inflates_points", "loops", "bad_json")
MISSING = "victim"         # the fake class's student with a missing notebook: part 1 only


def scores(rows: list[dict]) -> dict[str, dict[str, tuple[float | None, float]]]:
    table = defaultdict(dict)
    for row in rows:
        table[row["student"]][row["cell"]] = (float(row["score"]) if row["score"] else None,
                                              float(row["max_score"]))
    return table


def auto(table, student) -> float:
    return sum(s for cell, (s, _) in table[student].items() if cell.startswith("test_") and s)


@pytest.fixture(scope="module")
def first(graded_class):
    return scores(graded_class.graded.cells)


def test_a_run_killed_midway_goes_on_with_the_rest_when_run_again(graded_class, first):
    course, before_crash = graded_class.course, graded_class.before_crash
    assert len(before_crash) == 2
    resumed = graded_class.graded.log.split("grades:")[0]
    for student in before_crash:
        assert f"{student}: kept" in resumed, resumed
    graded_now = [s for s in first if f"{s}: graded (" in resumed]
    assert set(graded_now) | set(before_crash) >= {"full", "untouched", "partial", "edits_tests",
                                                   "inflates_points", "loops"}
    assert not list((course / ".grading" / "gradebooks").glob("*.db")), "private gradebooks left behind"
    assert not list((course / "autograded").rglob(".graded")), "grading's markers live in .grading/, not autograded/"
    # every score is checked against what it must be by the tests below, crash or not


def test_the_full_solution_earns_every_autograded_point(graded_class, first):
    assert auto(first, "full") == AUTO_TOTAL, (first["full"], graded_class.graded.report)
    assert first["full"]["derivation"][0] is None, "written answers wait for a human grader"


def test_the_untouched_release_earns_nothing(first):
    assert auto(first, "untouched") == 0


def test_a_partial_solution_earns_exactly_the_points_of_what_it_solves(first):
    table = first["partial"]
    assert auto(first, "partial") == 3 + 3 + 3
    assert table["test_bound_from_logits"][0] == 3 and table["test_factored_bound"][0] == 0


def test_edited_or_deleted_test_cells_are_restored_from_the_source(graded_class, first):
    assert auto(first, "edits_tests") == 3, "only bound_from_logits is solved: the gutted tests must not pass the rest"
    nb = nbformat.read(graded_class.course / "autograded" / "edits_tests" / "infogan_homework" / "1_mi_bound.ipynb",
                       as_version=4)
    ids = [grade_id(c) for c in nb.cells]
    assert "test_factored_bound" in ids, "the deleted test cell must be put back"
    restored = next(c for c in nb.cells if grade_id(c) == "test_posterior_kl")
    assert "all tests passed" not in restored.source


def test_changed_point_values_are_ignored(first):
    table = first["inflates_points"]
    assert table["test_bound_from_logits"] == (3, 3) and table["test_posterior_kl"][1] == 3
    assert auto(first, "inflates_points") == 3


def test_an_endless_loop_times_out_that_cell_and_grading_goes_on(graded_class, first):
    assert first["loops"]["test_posterior_kl"][0] == 0
    assert auto(first, "loops") == 3 + 3, "bound_from_logits (part 1) and code_nll (part 2) still count"
    assert "1\\_mi\\_bound:test\\_posterior\\_kl (timeout" in graded_class.graded.report


def test_an_invalid_or_missing_notebook_is_reported_and_the_rest_is_graded(graded_class, first):
    report = graded_class.graded.report
    assert "**bad\\_json**: 1\\_mi\\_bound\\.ipynb is not a valid notebook" in report
    assert f"**{MISSING}**: 2\\_third\\_code\\.ipynb is missing from the submission" in report
    assert auto(first, "bad_json") == 3, "bad_json's valid part 2 (code_nll) is graded"
    assert auto(first, MISSING) == sum(PART1.values())
    assert set(first) >= {"full", "untouched", "partial", "edits_tests", "inflates_points", "loops"}


def test_grading_the_same_submission_twice_gives_the_same_score(graded_class, first):
    second, log = scores(graded_class.regraded.cells), graded_class.regraded.log
    for student in ("full", "partial"):
        assert second[student] == first[student]
    assert "full: graded" in log.split("[1/2]")[-1]


def test_no_line_of_the_hidden_tests_reaches_the_feedback(graded_class):
    course, feedback = graded_class.course, graded_class.graded.feedback
    both = {"1_mi_bound.html", "2_third_code.html"}
    want = {**{s: both for s in FAKE_CLASS}, "bad_json": {"2_third_code.html"}, MISSING: {"1_mi_bound.html"}}
    for student, pages in want.items():
        shown = {name for name in feedback.get(student, ()) if name.endswith(".html")}
        assert shown == pages, f"feedback for every graded notebook of {student}: {feedback.get(student)}"
    lines = hidden_test_lines()
    for page in (course / "feedback").rglob("*.html"):
        text = page.read_text()
        leaked = [ln for ln in lines if ln in text or html.escape(ln) in text
                  or html.escape(ln, quote=False) in text]
        assert not leaked, f"{page} shows hidden test lines: {leaked[:2]}"
    # the failed hidden tests still tell the student what is wrong, without the code
    partial = (course / "feedback" / "partial" / "infogan_homework" / "1_mi_bound.html").read_text()
    assert "hidden tests ran here" in partial and "NotImplementedError" in partial


def test_what_nbgraders_submit_and_jupyterlab_add_is_left_out_without_a_word_and_anything_else_is_reported(tmp_path):
    from grading.submission import stage_folder

    src = tmp_path / "submission"
    (src / ".ipynb_checkpoints").mkdir(parents=True)
    (src / ".ipynb_checkpoints" / "1_mi_bound-checkpoint.ipynb").write_text("{}")
    (src / "submission_secret.txt").write_text("a secret nbgrader's submit writes")
    (src / "timestamp.txt").write_text("2026-12-01 10:00:00.000000 UTC")
    (src / "1_mi_bound.ipynb").write_text("{}")
    (src / "notes.txt").write_text("the student's own")
    staged = stage_folder(src, tmp_path / "staged", ["1_mi_bound", "2_third_code"])
    assert sorted(p.name for p in (tmp_path / "staged").iterdir()) == ["1_mi_bound.ipynb", "timestamp.txt"]
    assert [p.split(":")[0] for p in staged.problems] == ["notes.txt"], staged.problems
