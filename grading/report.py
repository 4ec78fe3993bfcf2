"""The instructor's report and the per-cell CSV, in which no student text can act.

Everything a student controls — a folder name, an exception message, a file name in the
submission — is shown through `inert`: one line, length-capped, with Markdown and HTML characters
escaped, so it can neither start a line of its own nor pass for the grader's words. The grader's
verdicts (graded, kept, not graded, the scores) come only from the grader's own records: the
gradebook, the markers it writes in `.grading/graded/`, and the error names of the outputs it wrote.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>&])")


def inert(text, limit: int = 160) -> str:
    """Student text made safe to put in one Markdown table cell or list item."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text))
    text = text[:limit] + ("…" if len(text) > limit else "")
    return MARKDOWN.sub(r"\\\1", text)


def csv_safe(value):
    """A spreadsheet never reads a CSV cell as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


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
    grader_mb: float = 0.0                                   # the grading process's peak memory
    skipped: bool = False


def marker_path(course: Path, student: str, assignment: str) -> Path:
    """Written after a student's autograde succeeded and was merged: its notebooks, seconds and
    problems. It lives with the grader's own files, never where submitted files are copied."""
    return course / ".grading" / "graded" / assignment / f"{student}.json"


def kept(course: Path, student: str, assignment: str) -> StudentResult:
    """A student graded in an earlier run: the grade stays, and so does what that run found."""
    marker = marker_path(course, student, assignment)
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        saved = {}
    problems = saved.get("problems", []) if isinstance(saved, dict) else []
    return StudentResult(student, problems=[str(p) for p in problems if isinstance(p, str)], skipped=True)


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
                    why = "timeout" if e.ename in ("CellTimeoutError", "TimeoutError") else str(e.ename)
                    if meta.get("grade"):
                        res.failed_cells.append((name, str(meta.get("grade_id")), f"{why}: {e.evalue}"))
                    kind = sandbox_event(str(e.ename), str(e.evalue),
                                         by_grader=bool(meta.get("grade")) or list(e.get("traceback", []))[:1] == ["[grader]"])
                    if kind:
                        res.events.append((f"{name} cell {number}: {kind}", f"{e.ename}: {e.evalue}"))
    return rows


# errors that mean the sandbox or a limit stopped the student's code (shown in the report)
EVENTS = {"KernelDied": "kernel died", "OutputLimitExceeded": "output limit", "MemoryError": "memory limit",
          "CellTimeoutError": "time limit", "NotRun": "not run", "BlockingIOError": "process limit",
          "PermissionError": "sandbox denial", "TimeBudgetExceeded": "time budget",
          "ConnectionRefusedError": "network denied",
          "ConnectionError": "network denied"}


GRADER_ONLY = {"KernelDied", "OutputLimitExceeded", "NotRun", "TimeBudgetExceeded"}


def sandbox_event(ename: str, evalue: str, by_grader: bool = True) -> str | None:
    """The report's name for an error that means a limit or the sandbox stopped the code. The
    grader's own verdicts (kernel died, not run, ...) count only when the grader wrote them: a
    student can raise an exception of any name."""
    if ename in GRADER_ONLY and not by_grader:
        return None
    if ename in EVENTS:
        return EVENTS[ename]
    text = evalue.lower()
    if ename in ("OSError", "FileNotFoundError", "OperationalError") and any(
            w in text for w in ("read-only file system", "network is unreachable", "no such file",
                                "resource temporarily unavailable", "file too large",
                                "unable to open database file", "permission denied")):
        return "sandbox denial or limit"
    return None


def write_outputs(course: Path, assignment: str, rows: list[dict], results: dict[str, StudentResult],
                  elapsed: float, safety: str = "", notices: list[str] = ()) -> tuple[Path, Path]:
    csv_path, report = course / "grades-by-cell.csv", course / "grading-report.md"
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, ["student", "notebook", "cell", "kind", "score", "max_score"])
        w.writeheader()
        w.writerows([{k: csv_safe(v) for k, v in row.items()} for row in rows])
    graded = [r for r in results.values() if r.graded or r.skipped]
    lines = [f"# Grading report: {inert(assignment)}", "",
             f"{len(results)} submissions, {sum(1 for r in results.values() if r.graded)} graded now, "
             f"{sum(1 for r in results.values() if r.skipped)} already graded (kept; --regrade to redo), "
             f"{len(results) - len(graded)} could not be graded. {elapsed:.0f} s in all. "
             f"Hidden-test seed from .grading/seed.", "", safety, "",
             "Scores count autograded cells; cells graded by hand count once graded in formgrader "
             "(`nbgrader formgrader`) and show here after the next run. Text from submissions "
             "(names, messages) is shown escaped and cut to one line.", ""]
    if notices:
        lines += ["## Notices", "", *[f"- {n}" for n in notices], ""]
    lines += ["| student | score | max | notebooks graded | seconds | grader MB | failed test cells |",
              "|---|---|---|---|---|---|---|"]
    for r in sorted(results.values(), key=lambda r: r.student):
        failed = "; ".join(f"{inert(nb, 40)}:{inert(cell, 60)} ({inert(why)})"
                           for nb, cell, why in r.failed_cells) or "none"
        state = ", ".join(inert(n, 40) for n in r.graded) or ("kept" if r.skipped else "—")
        lines.append(f"| {inert(r.student, 64)} | {r.score:g} | {r.max_score:g} | {state} | "
                     f"{r.seconds:.1f} | {r.grader_mb:.0f} | {failed} |")
    lines += ["", "## Sandbox denials and limits", "",
              "Errors in any cell that mean the sandbox refused something or a limit stopped the code "
              "(memory, CPU time, processes, output, cell time, the notebook's time budget).", ""]
    events = [f"- **{inert(r.student, 64)}**: {kind} ({inert(detail, 120)})"
              for r in sorted(results.values(), key=lambda r: r.student) for kind, detail in r.events]
    lines += events or ["none"]
    lines += ["", "## Problems", ""]
    lines += [f"- **{inert(r.student, 64)}**: {inert(p, 400)}"
              for r in sorted(results.values(), key=lambda r: r.student) for p in r.problems] or ["none"]
    report.write_text("\n".join(lines) + "\n")
    return csv_path, report
