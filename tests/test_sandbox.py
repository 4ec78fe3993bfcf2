"""Grading that student code cannot game: the attack corpus (harness/attack_corpus.py), graded by
`make grade`'s script in one class with a `victim` (a full part 1) and an `honest` student, and
the grading tests' fake class (tests/shared_class.py, the fixture `graded_class`).

The bar: the victim keeps its exact grade; every attacker earns, cell by cell, no more than the
honest student with the same answers; no score above its cell's points anywhere, nor a total above
the assignment's; the gradebook checks whole; no file of the course folder changes except the
grader's own outputs (every file hashed before and after); every student is graded or reported; no
hidden test line, grading seed or hidden input reaches anything a student receives; the host sees
no network traffic; no text from a submission stands in the report as the grader's; the grader's
memory per job stays under 1 GB (root, with cgroups); no sandbox process or cgroup is left behind.
The attacks whose outcome depends on privilege are graded again as an unprivileged user, and the
honest students without the sandbox (`--unsafe`): same grades.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict

import pytest

from harness.attack_corpus import EVENTS, PART2
from harness.fake_class import ROOT, SOURCE, hidden_test_lines, make_course, submit

pytest.importorskip("nbgrader", reason="the homework needs nbgrader: pip install -r requirements.txt")
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")

PART1 = ("test_bound_from_logits", "test_posterior_kl", "test_factored_bound")
TOTAL = 53


def scores(rows: list[dict]) -> dict[str, dict[str, float]]:
    table = defaultdict(dict)
    for row in rows:
        score = float(row["score"] or 0)
        assert 0 <= score <= float(row["max_score"]), row
        if row["cell"].startswith("test_"):
            table[row["student"]][row["cell"]] = score
    return table


def check_class(run, attackers: list[str], students: list[str], before: dict[str, str], privileged: bool,
                graded_before: tuple[str, ...] = ()) -> None:
    """The bar, on `run` (what the grading run left, tests/shared_class.py's Snapshot): `students` is
    everyone in the class, `attackers` the corpus's students among them, `graded_before` those an
    earlier run graded."""
    table = {student: {cell: v for cell, v in cells.items() if cell in PART1 or student in PART2}
             for student, cells in scores(run.cells).items()}
    report, log = run.report, run.log
    assert table["victim"] == {"test_bound_from_logits": 3, "test_posterior_kl": 3, "test_factored_bound": 4}, report
    assert table["honest"] == {"test_bound_from_logits": 3, "test_posterior_kl": 3, "test_factored_bound": 0}, report
    for name in attackers:
        honest = table["honest"] if name not in PART2 else {}
        for cell, score in table.get(name, {}).items():
            assert score <= honest.get(cell, 0), f"{name} earned {score} on {cell}:\n{report}"
    for row in run.totals:
        assert float(row["score"]) <= float(row["max_score"]) <= TOTAL, row
    assert run.quick_check == "ok"
    assert run.extra_credit == 0
    assert run.hashes == before, "grading changed a file outside its own outputs"
    assert run.network == []
    # every student graded or reported, each in exactly one row of the table
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| student")]
    assert len(rows) == len(students), report
    for name in students:
        assert f"] {name}: graded (" in log or name in graded_before or f"**{_md(name)}**:" in report, \
            f"{name} neither graded nor reported:\n{log}\n{report}"
    # no text from a submission stands as the grader's own: the forged lines exist only escaped
    for line in report.splitlines():
        if "copied the notebook" in line:
            assert line.startswith(("| report\\_injection", "- **report\\_injection**")), line
        assert "<script" not in line, line
    assert not re.search(r"^\| victim \| 0 ", report, re.M), report
    for (name, number), kind in EVENTS.items():
        if name in attackers:
            assert re.search(rf"\*\*{re.escape(_md(name))}\*\*: 1_mi_bound cell {number}: {kind}", report), \
                f"{name}: {kind} in cell {number} missing from\n{report}"
    # nothing secret reaches what students receive
    everything = run.student_texts
    leaked = [line for line in hidden_test_lines() if line in everything]
    assert not leaked, leaked[:3]
    assert "LEAK" not in everything, "a hidden test's input reached an output"
    found = re.search(rf"(?<![0-9]){run.seed}(?![0-9])", everything)
    assert not found, f"the grading seed leaked: …{everything[max(0, found.start() - 300):found.end() + 100]}…"
    for student, files in run.feedback.items():      # the feedback pages, and a student's own model back
        own = {"third_code.pt"} if student in run.submitted_models else set()
        assert files <= {"1_mi_bound.html", "2_third_code.html"} | own, (student, files)
    for name in ("links_solution", "links_victim", "fifo_notebook"):
        if name in attackers:
            assert f"**{_md(name)}**: 1\\_mi\\_bound\\.ipynb" in report, report
    if privileged:
        mb = {r.split("|")[1].strip(): float(r.split("|")[6]) for r in rows}
        assert max(mb.values()) <= 1024, mb
        if "frame_flood" in attackers:
            assert "needed more than the grader" in report.split("## Problems")[1], report


def _md(name: str) -> str:
    return name.replace("_", "\\_")


def test_no_attack_earns_a_point_leaks_a_secret_or_changes_another_grade(graded_class):
    c = graded_class
    check_class(c.graded, c.attackers, c.students, c.before, privileged=os.geteuid() == 0,
                graded_before=tuple(c.before_crash))


def test_grading_goes_on_and_leaves_no_sandbox_process_behind(graded_class):
    assert graded_class.graded.log.count("] ") == len(graded_class.students), graded_class.graded.log
    if os.geteuid() == 0:
        assert graded_class.graded.leftovers == []


def test_honest_grades_are_the_same_without_the_sandbox(graded_class):
    unboxed = graded_class.unboxed
    assert "UNSAFE" in unboxed.report and unboxed.log.count(": graded (") == 2
    boxed, plain = scores(graded_class.graded.cells), scores(unboxed.cells)
    assert plain["victim"] == boxed["victim"] and plain["honest"] == boxed["honest"]


def test_a_damaged_gradebook_is_restored_from_the_last_good_copy(graded_class):
    from shared_class import GARBAGE
    restored = graded_class.restored
    assert restored.run.log.count(": kept") == 2 and scores(restored.run.cells) == scores(restored.good)
    assert "restored the last good copy" in restored.run.report
    assert restored.damaged == GARBAGE


def test_the_sandbox_cannot_be_turned_off_by_the_environment(tmp_path):
    text = (ROOT / "nbgrader_config.py").read_text()
    assert "os.environ" not in text.split("GraderExecute.timeout")[1], "only --unsafe may turn the sandbox off"


@pytest.mark.skipif(os.geteuid() != 0, reason="already running as an unprivileged user")
def test_the_attacks_that_depend_on_privilege_graded_as_an_unprivileged_user(graded_class):
    unprivileged = graded_class.unprivileged
    if unprivileged.why_not:
        if os.environ.get("CI"):
            pytest.fail(unprivileged.why_not)
        pytest.skip(unprivileged.why_not)
    check_class(unprivileged.run, unprivileged.attackers, ["victim", "honest", *unprivileged.attackers],
                unprivileged.before, privileged=False)


def test_grading_refuses_when_the_sandbox_cannot_start(tmp_path):
    course = make_course(tmp_path / "course")
    submit(course, "victim", {"1_mi_bound": "all"}, drop=("2_third_code",))
    env = dict(os.environ, PATH=str(tmp_path))          # no bwrap on the PATH
    out = subprocess.run([sys.executable, "-m", "grading.grade", "--course", str(course)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "refusing to grade" in out.stderr and "apt-get install bubblewrap" in out.stderr
    assert "--unsafe" in out.stderr and not (course / "autograded").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups need root")
def test_the_end_of_one_grading_run_leaves_another_runs_new_cgroup_alone():
    """Two classes graded at once: run A's final sweep must not remove the cgroup run B has made
    and not yet joined (B's kernel would fail to start); once B's maker is gone, it goes."""
    from grading.cgroups import Cgroup, sweep_empty
    maker = subprocess.Popen(["sleep", "60"])
    try:
        group = Cgroup(f"{maker.pid}-feedbeef", 2**30, 64, 1.0)
        try:
            group.create()
        except OSError as e:
            pytest.skip(f"no cgroups here: {e}")
        sweep_empty(seconds=0)
        assert all(d.is_dir() for d in group.dirs.values()), "a live run's empty cgroup was removed"
        maker.kill()
        maker.wait()
        sweep_empty(seconds=0)
        assert not any(d.exists() for d in group.dirs.values()), "a dead run's empty cgroup stayed"
    finally:
        maker.kill()
        maker.wait()
        group.destroy()
