"""Grade the whole class: autograde every submission, export the grades, write a report.

    python -m grading.grade                      # what `make grade` runs
    python -m grading.grade --students ada bob   # only these
    python -m grading.grade --regrade            # everyone again (after a test was fixed)
    python -m grading.grade --jobs 4             # four at a time (default: one per CPU core)
    python -m grading.grade --unsafe             # without the sandbox (said in the report)

For each folder `submitted/<student>/infogan_homework/` this checks the notebooks first (missing,
or not valid notebook JSON: reported, the student's other notebooks still graded), then runs
`nbgrader autograde` for that one student in its own process, so that a broken or hostile
submission can fail only itself. Student code runs in a bubblewrap sandbox and test cells in the
grader (grading/executor.py, grading/sandbox.py); if the sandbox cannot start here, grading refuses
and says how to fix it, unless --unsafe is given. Several students are graded at once (--jobs), each
against its own copy of the gradebook (SQLite allows one writer), merged into gradebook.db as each
finishes. nbgrader stops any cell that runs longer than the cell timeout
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
    events: list[str] = field(default_factory=list)          # sandbox denials and limits hit
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


def gradebook_copy(course: Path, student: str) -> Path:
    """A private copy of gradebook.db for one student's autograde (merged back by merge_student)."""
    import sqlite3
    folder = course / ".grading" / "gradebooks"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{student}.db"
    path.unlink(missing_ok=True)
    with sqlite3.connect(course / "gradebook.db") as src, sqlite3.connect(path) as dst:
        src.backup(dst)                                  # a consistent snapshot
    return path


def merge_student(course: Path, part: Path, assignment: str, student: str) -> None:
    """Copy one student's autograde results from its private gradebook into gradebook.db. Scores
    given by hand in formgrader stay; such cells are flagged for review, as nbgrader does."""
    import warnings

    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)     # nbgrader's own API, creating a submission
    with Gradebook(f"sqlite:///{part}") as pb, Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = pb.find_submission(assignment, student)
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, timestamp=sub.timestamp)
        for nb in sub.notebooks:
            for grade in nb.grades:
                mine = gb.find_grade(grade.name, nb.name, assignment, student)
                mine.auto_score = grade.auto_score
                mine.needs_manual_grade = mine.manual_score is not None or grade.auto_score is None
            for comment in nb.comments:
                gb.find_comment(comment.name, nb.name, assignment, student).auto_comment = comment.auto_comment
        gb.db.commit()


def grade_student(course: Path, student: str, assignment: str, notebooks: list[str], env: dict,
                  regrade: bool, db: Path | None = None) -> StudentResult:
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
    own_db = [f"--CourseDirectory.db_url=sqlite:///{db}"] if db is not None else []
    start = time.perf_counter()
    marker.unlink(missing_ok=True)
    out = nbgrader(["autograde", assignment, "--student", student, "--force", *only, *own_db], course, env)
    result.seconds = time.perf_counter() - start
    if out.returncode != 0:
        tail = "\n".join((out.stderr or out.stdout).strip().splitlines()[-5:])
        result.problems.append(f"nbgrader autograde failed for this student:\n{tail}")
        return result
    result.graded = gradable
    return result


def finish_student(course: Path, result: StudentResult, assignment: str, db: Path | None) -> None:
    """After a successful autograde: merge its gradebook, then mark the student graded."""
    if not result.graded:
        return
    if db is not None:
        merge_student(course, db, assignment, result.student)
    marker = marker_path(course, result.student, assignment)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seconds": result.seconds, "notebooks": result.graded,
                                  "problems": result.problems}))


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
                for number, cell in enumerate(nbformat.read(path, as_version=4).cells, 1):
                    meta = cell.metadata.get("nbgrader", {})
                    if cell.cell_type != "code":
                        continue
                    errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
                    if not errors:
                        continue
                    e = errors[-1]
                    why = "timeout" if e.ename in ("CellTimeoutError", "TimeoutError") else e.ename
                    if meta.get("grade"):
                        res.failed_cells.append((name, meta["grade_id"], f"{why}: {str(e.evalue)[:160]}"))
                    kind = sandbox_event(e.ename, str(e.evalue))
                    if kind:
                        res.events.append(f"{name} cell {number}: {kind} ({e.ename}: {str(e.evalue)[:120]})")
    return rows


# errors that mean the sandbox or a limit stopped the student's code (shown in the report)
EVENTS = {"KernelDied": "kernel died", "OutputLimitExceeded": "output limit", "MemoryError": "memory limit",
          "CellTimeoutError": "time limit", "NotRun": "not run", "BlockingIOError": "process limit",
          "PermissionError": "sandbox denial", "ConnectionRefusedError": "network denied",
          "ConnectionError": "network denied"}


def sandbox_event(ename: str, evalue: str) -> str | None:
    if ename in EVENTS:
        return EVENTS[ename]
    text = evalue.lower()
    if ename in ("OSError", "FileNotFoundError", "OperationalError") and any(
            w in text for w in ("read-only file system", "network is unreachable", "no such file",
                                "resource temporarily unavailable", "file too large",
                                "unable to open database file", "permission denied")):
        return "sandbox denial or limit"
    return None


def write_outputs(course: Path, rows: list[dict], results: dict[str, StudentResult],
                  elapsed: float, safety: str = "") -> tuple[Path, Path]:
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
             f"Hidden-test seed from .grading/seed.", "", safety, "",
             "Scores count autograded cells; cells graded by hand count once graded in formgrader "
             "(`nbgrader formgrader`) and show here after the next run.", "",
             "| student | score | max | notebooks graded | seconds | failed test cells |",
             "|---|---|---|---|---|---|"]
    for r in sorted(results.values(), key=lambda r: r.student):
        failed = "; ".join(f"{nb}:{cell} ({why})" for nb, cell, why in r.failed_cells) or "none"
        lines.append(f"| {r.student} | {r.score:g} | {r.max_score:g} | "
                     f"{', '.join(r.graded) or ('kept' if r.skipped else '—')} | {r.seconds:.1f} | "
                     f"{failed.replace('|', '/')} |")
    events = [(r.student, e) for r in sorted(results.values(), key=lambda r: r.student) for e in r.events]
    lines += ["", "## Sandbox denials and limits", "",
              "Errors in any cell that mean the sandbox refused something or a limit stopped the code "
              "(memory, CPU time, processes, output, cell time).", ""]
    lines += [f"- **{s}**: {e}" for s, e in events] or ["none"]
    problems = [(r.student, p) for r in results.values() for p in r.problems]
    lines += ["", "## Problems", ""]
    lines += [f"- **{s}**: {p}" for s, p in problems] or ["none"]
    report.write_text("\n".join(lines) + "\n")
    return csv_path, report


def check_config(course: Path) -> None:
    """nbgrader ignores a configuration file that fails to load and grades with its defaults (no
    sandbox, tests in the student's kernel): refuse instead."""
    from traitlets.config.loader import PyFileConfigLoader
    path = course / "nbgrader_config.py"
    try:
        config = PyFileConfigLoader(path.name, path=str(course)).load_config()
    except Exception as err:  # noqa: BLE001
        raise SystemExit(f"{path} does not load ({type(err).__name__}: {err}); fix it before grading.")
    names = [getattr(p, "__name__", str(p)) for p in config.Autograde.get("autograde_preprocessors", [])]
    if "GraderExecute" not in names:
        raise SystemExit(f"{path} does not set Autograde.autograde_preprocessors to use "
                         "grading.executor.GraderExecute; grading would run tests in the students' kernels.")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--course", default=str(ROOT), help="the nbgrader course folder (default: this kit)")
    ap.add_argument("--assignment", default=ASSIGNMENT)
    ap.add_argument("--students", nargs="*", help="only these student ids (default: all in submitted/)")
    ap.add_argument("--regrade", action="store_true", help="grade again students already graded")
    ap.add_argument("--feedback", action="store_true", help="also generate feedback/ for students")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="students graded at once (default: the number of CPU cores)")
    ap.add_argument("--unsafe", action="store_true",
                    help="grade without the sandbox (student code runs with your rights)")
    args = ap.parse_args(argv)
    course = Path(args.course).resolve()
    check_config(course)
    seed = grading_seed(course)
    env = nbgrader_env(seed)
    if args.unsafe:
        env["INFOGAN_UNSAFE_GRADING"] = "1"
        safety = ("**UNSAFE: graded with --unsafe, without the sandbox: student code ran with the "
                  "instructor's rights.** Test cells still ran in the grader.")
        print("WARNING: --unsafe: student code runs without the sandbox", file=sys.stderr)
    else:
        from grading import sandbox
        try:
            sandbox.check(Path(os.environ["INFOGAN_DATA"]) if os.environ.get("INFOGAN_DATA") else None)
        except sandbox.SandboxUnavailable as err:
            print(f"refusing to grade: {err}", file=sys.stderr)
            return 2
        safety = "Student code ran in the bubblewrap sandbox; test cells ran in the grader."
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
    jobs = max(1, min(args.jobs, len(students)))
    if jobs > 1:
        env["OMP_NUM_THREADS"] = "1"         # one core per student being graded
    slots = list(range(jobs))                # a sandbox user id per slot, when grading as root

    def work(student: str, db: Path | None) -> StudentResult:
        slot = slots.pop()
        try:
            return grade_student(course, student, args.assignment, notebooks,
                                 dict(env, INFOGAN_SANDBOX_UID=str(61000 + slot)), args.regrade, db)
        finally:
            slots.append(slot)

    from concurrent.futures import ThreadPoolExecutor, as_completed
    # a private gradebook for each student to be graded (the kept ones need none)
    dbs = {s: gradebook_copy(course, s) for s in students
           if args.regrade or not marker_path(course, s, args.assignment).exists()}
    done = 0
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(work, s, dbs.get(s)): s for s in students}
        for future in as_completed(futures):
            student = futures[future]
            res = future.result()
            finish_student(course, res, args.assignment, dbs.get(student))     # one writer: this thread
            if student in dbs:
                dbs[student].unlink(missing_ok=True)
            results[student] = res
            done += 1
            state = "kept" if res.skipped else ("graded" if res.graded else "NOT graded")
            print(f"[{done}/{len(students)}] {student}: {state} ({res.seconds:.1f} s)"
                  + (f"; {len(res.problems)} problem(s)" if res.problems else ""), flush=True)
    rows = read_scores(course, args.assignment, results)
    if args.feedback:
        out = nbgrader(["generate_feedback", args.assignment, "--force"], course, env)
        if out.returncode != 0:
            print(f"generate_feedback failed:\n{out.stderr[-2000:]}", file=sys.stderr)
    csv_path, report = write_outputs(course, rows, results, time.perf_counter() - start, safety)
    out = nbgrader(["export", "--assignment", args.assignment], course, env)
    if out.returncode != 0:
        print(f"nbgrader export failed:\n{out.stderr[-2000:]}", file=sys.stderr)
    print(f"grades: {course / 'grades.csv'} (totals), {csv_path} (per cell)\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
