"""Grade the whole class: autograde every submission, export the grades, write a report.

    python -m grading.grade                      # what `make grade` runs
    python -m grading.grade --students ada bob   # only these
    python -m grading.grade --regrade            # everyone again (after a test was fixed)

For each folder `submitted/<student>/infogan_homework/` this checks the notebooks first (missing,
or not valid notebook JSON: reported, the student's other notebooks still graded), then runs
`nbgrader autograde` for that one student in its own process, so that a broken or hostile
submission can fail only itself. nbgrader stops any cell that runs longer than the cell timeout
(INFOGAN_CELL_TIMEOUT, default 120 s) and goes on with the next cell. Already graded students are
skipped unless --regrade is given (so a crash midway loses nothing: run it again). Then it writes

- `grades.csv`: one row per student, the totals (nbgrader export: the format LMS imports expect);
- `grades-by-cell.csv`: one row per student and notebook cell that carries points (student,
  notebook, cell, auto or manual, score, max score), from the gradebook;
- `grading-report.md`: who was graded, their autograded totals, which test cells failed and with
  which error (timeout included), and the submissions that could not be graded at all, with why;
- `feedback/` (nbgrader generate_feedback, hidden tests removed: grading/feedback.py), with --feedback.

Hidden tests draw their random inputs from INFOGAN_GRADING_SEED. This tool keeps one private seed per
course folder in `.grading/seed` (git-ignored; made on first use), so regrading gives the same
inputs, and students who read the public solutions still cannot know them.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "infogan_homework"


@dataclass
class StudentResult:
    student: str
    graded: list[str] = field(default_factory=list)          # notebooks that were autograded
    problems: list[str] = field(default_factory=list)        # why a notebook or the whole could not be
    failed_cells: list[tuple[str, str, str]] = field(default_factory=list)  # (notebook, cell, error)
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    skipped: bool = False


def nbgrader_env(seed: int) -> dict:
    env = dict(os.environ)
    # nbgrader runs `alembic` from PATH to set up the gradebook: use the one beside this Python
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["INFOGAN_GRADING_SEED"] = str(seed)
    return env


def nbgrader(args: list[str], course: Path, env: dict):
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True)


def grading_seed(course: Path) -> int:
    path = course / ".grading" / "seed"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{secrets.randbelow(10**9)}\n")
    return int(path.read_text().strip())


def release_notebooks(course: Path, assignment: str) -> list[str]:
    folder = course / "assignments" / assignment
    names = sorted(p.stem for p in folder.glob("*.ipynb"))
    if not names:
        raise SystemExit(f"no released notebooks in {folder}: run `make release` first.")
    return names


def ensure_gradebook(course: Path, assignment: str, env: dict) -> None:
    """nbgrader grades against the gradebook's copy of the source cells (hidden tests included);
    put it there once with generate_assignment (which also rewrites the identical release)."""
    from nbgrader.api import Gradebook, MissingEntry
    db = course / "gradebook.db"
    if db.exists():
        with Gradebook(f"sqlite:///{db}") as gb:
            try:
                if gb.find_assignment(assignment).notebooks:
                    return
            except MissingEntry:
                pass
    out = nbgrader(["generate_assignment", assignment, "--force"], course, env)
    if out.returncode != 0:
        raise SystemExit(f"nbgrader generate_assignment failed:\n{out.stdout}\n{out.stderr}")


def check_submission(folder: Path, notebooks: list[str]) -> tuple[list[str], list[str]]:
    """(notebooks that can be graded, problems found) for one student's submission folder."""
    ok, problems = [], []
    for name in notebooks:
        path = folder / f"{name}.ipynb"
        if not path.exists():
            problems.append(f"{name}.ipynb is missing from the submission (scored 0)")
            continue
        try:
            nbformat.validate(nbformat.read(path, as_version=4))
        except Exception as err:  # noqa: BLE001 - any reason a notebook cannot be read is reported
            first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
            problems.append(f"{name}.ipynb is not a valid notebook ({type(err).__name__}: {first}); "
                            "not graded (scored 0): ask the student to resubmit a notebook that opens")
            continue
        ok.append(name)
    return ok, problems


def marker_path(course: Path, student: str, assignment: str) -> Path:
    """Written after a student's autograde succeeded: its notebooks, seconds and problems."""
    return course / "autograded" / student / assignment / ".graded"


def kept(course: Path, student: str, assignment: str) -> StudentResult:
    """A student graded in an earlier run: the grade stays, and so does what that run found."""
    marker = marker_path(course, student, assignment)
    saved = json.loads(marker.read_text()) if marker.exists() else {}
    return StudentResult(student, problems=saved.get("problems", []), skipped=True)


def grade_student(course: Path, student: str, assignment: str, notebooks: list[str], env: dict,
                  regrade: bool) -> StudentResult:
    result = StudentResult(student)
    folder = course / "submitted" / student / assignment
    if not folder.is_dir():
        result.problems.append(f"no folder submitted/{student}/{assignment}")
        return result
    marker = marker_path(course, student, assignment)
    if not regrade and marker.exists():
        return kept(course, student, assignment)
    gradable, result.problems = check_submission(folder, notebooks)
    if not gradable:
        result.problems.append("nothing to grade")
        return result
    # nbgrader's --notebook takes one glob: all notebooks, or the single readable one (this
    # assignment has two notebooks; an assignment with more would need one call per notebook)
    if len(gradable) not in (1, len(notebooks)):
        raise NotImplementedError("grading a subset of more than one notebook")
    only = [] if len(gradable) == len(notebooks) else ["--notebook", gradable[0]]
    start = time.perf_counter()
    marker.unlink(missing_ok=True)
    out = nbgrader(["autograde", assignment, "--student", student, "--force", *only], course, env)
    result.seconds = time.perf_counter() - start
    if out.returncode != 0:
        tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-5:])
        result.problems.append(f"nbgrader autograde failed for this student:\n{tail}")
        return result
    result.graded = gradable
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seconds": result.seconds, "notebooks": gradable,
                                  "problems": result.problems}))
    return result


def read_scores(course: Path, assignment: str, results: dict[str, StudentResult]) -> list[dict]:
    """Per-cell scores from the gradebook, and each student's failed test cells from the
    autograded notebooks (error name and message)."""
    from nbgrader.api import Gradebook, MissingEntry
    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        everyone = {s.student.id for s in gb.find_assignment(assignment).submissions}
        for student in sorted(everyone - set(results)):      # graded in an earlier run
            results[student] = kept(course, student, assignment)
        for student, res in sorted(results.items()):
            try:
                sub = gb.find_submission(assignment, student)
            except MissingEntry:
                continue
            res.score, res.max_score = 0.0, 0.0
            for nb in sub.notebooks:
                for grade in nb.grades:
                    # a written answer waits for a human: no score yet (nbgrader's .score says 0)
                    score = None if grade.needs_manual_grade and grade.manual_score is None else grade.score
                    rows.append({"student": student, "notebook": nb.name, "cell": grade.name,
                                 "score": "" if score is None else score,
                                 "max_score": grade.max_score,
                                 "kind": "auto" if grade.auto_score is not None else "manual"})
                    res.max_score += grade.max_score
                    res.score += score or 0.0
            for name in res.graded or ([nb.name for nb in sub.notebooks] if res.skipped else []):
                path = course / "autograded" / student / assignment / f"{name}.ipynb"
                if not path.exists():
                    continue
                for cell in nbformat.read(path, as_version=4).cells:
                    meta = cell.metadata.get("nbgrader", {})
                    if not meta.get("grade") or cell.cell_type != "code":
                        continue
                    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
                    if errors:
                        e = errors[-1]
                        why = "timeout" if e.ename == "CellTimeoutError" else e.ename
                        res.failed_cells.append((name, meta["grade_id"], f"{why}: {str(e.evalue)[:160]}"))
    return rows


def write_outputs(course: Path, rows: list[dict], results: dict[str, StudentResult],
                  elapsed: float) -> tuple[Path, Path]:
    csv_path, report = course / "grades-by-cell.csv", course / "grading-report.md"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, ["student", "notebook", "cell", "kind", "score", "max_score"])
        w.writeheader()
        w.writerows(rows)
    graded = [r for r in results.values() if r.graded or r.skipped]
    lines = [f"# Grading report: {ASSIGNMENT}", "",
             f"{len(results)} submissions, {sum(1 for r in results.values() if r.graded)} graded now, "
             f"{sum(1 for r in results.values() if r.skipped)} already graded (kept; --regrade to redo), "
             f"{len(results) - len(graded)} could not be graded. {elapsed:.0f} s in all. "
             f"Hidden-test seed from .grading/seed.", "",
             "Scores count autograded cells; cells graded by hand count once graded in formgrader "
             "(`nbgrader formgrader`) and show here after the next run.", "",
             "| student | score | max | notebooks graded | seconds | failed test cells |",
             "|---|---|---|---|---|---|"]
    for r in sorted(results.values(), key=lambda r: r.student):
        failed = "; ".join(f"{nb}:{cell} ({why})" for nb, cell, why in r.failed_cells) or "none"
        lines.append(f"| {r.student} | {r.score:g} | {r.max_score:g} | "
                     f"{', '.join(r.graded) or ('kept' if r.skipped else '—')} | {r.seconds:.1f} | "
                     f"{failed.replace('|', '/')} |")
    problems = [(r.student, p) for r in results.values() for p in r.problems]
    lines += ["", "## Problems", ""]
    lines += [f"- **{s}**: {p}" for s, p in problems] or ["none"]
    report.write_text("\n".join(lines) + "\n")
    return csv_path, report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--course", default=str(ROOT), help="the nbgrader course folder (default: this kit)")
    ap.add_argument("--assignment", default=ASSIGNMENT)
    ap.add_argument("--students", nargs="*", help="only these student ids (default: all in submitted/)")
    ap.add_argument("--regrade", action="store_true", help="grade again students already graded")
    ap.add_argument("--feedback", action="store_true", help="also generate feedback/ for students")
    args = ap.parse_args(argv)
    course = Path(args.course).resolve()
    seed = grading_seed(course)
    env = nbgrader_env(seed)
    notebooks = release_notebooks(course, args.assignment)
    ensure_gradebook(course, args.assignment, env)
    submitted = course / "submitted"
    students = args.students or sorted(p.name for p in submitted.iterdir() if p.is_dir()) \
        if submitted.is_dir() else []
    if not students:
        print(f"nothing to grade: no student folders in {submitted}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    results = {}
    for i, student in enumerate(students, 1):
        res = grade_student(course, student, args.assignment, notebooks, env, args.regrade)
        results[student] = res
        state = "kept" if res.skipped else ("graded" if res.graded else "NOT graded")
        print(f"[{i}/{len(students)}] {student}: {state} ({res.seconds:.1f} s)"
              + (f"; {len(res.problems)} problem(s)" if res.problems else ""), flush=True)
    rows = read_scores(course, args.assignment, results)
    if args.feedback:
        out = nbgrader(["generate_feedback", args.assignment, "--force"], course, env)
        if out.returncode != 0:
            print(f"generate_feedback failed:\n{out.stderr[-2000:]}", file=sys.stderr)
    csv_path, report = write_outputs(course, rows, results, time.perf_counter() - start)
    out = nbgrader(["export", "--assignment", args.assignment], course, env)
    if out.returncode != 0:
        print(f"nbgrader export failed:\n{out.stderr[-2000:]}", file=sys.stderr)
    print(f"grades: {course / 'grades.csv'} (totals), {csv_path} (per cell)\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
