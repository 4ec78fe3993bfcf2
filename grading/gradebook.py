"""The gradebook (nbgrader's `gradebook.db`), written in one place and kept whole.

Each student is autograded against a private copy (`private_copy`): nbgrader's SQLite allows one
writer, and a grading process that dies or goes wrong can damage only that copy. `merge` then
copies the student's automatic scores into `gradebook.db`, from this, the merging thread only,
refusing any score outside [0, the cell's points] (points as the course's gradebook defines them,
never as the copy says). After every merge a last good copy is kept (`.grading/gradebook.good.db`);
`restore_if_damaged` puts it back when `gradebook.db` no longer opens or checks. `clamp` keeps
every score in range before anything is exported, whatever set it (formgrader included), and says
what it changed.
"""

from __future__ import annotations

import shutil
import sqlite3
import warnings
from pathlib import Path


def path(course: Path) -> Path:
    return course / "gradebook.db"


def good_copy(course: Path) -> Path:
    return course / ".grading" / "gradebook.good.db"


def damaged(db: Path) -> str | None:
    """Why `db` is not a usable gradebook, or None."""
    if not db.is_file() or db.is_symlink():
        return "not a regular file"
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            check = con.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"SQLite check failed ({check[:80]})"
            con.execute("SELECT count(*) FROM assignment").fetchone()
    except sqlite3.Error as err:
        return f"{err}"
    return None


def backup(course: Path) -> None:
    """Keep a consistent copy of gradebook.db as the last good one."""
    target = good_copy(course)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(path(course)) as src, sqlite3.connect(tmp) as dst:
        src.backup(dst)
    tmp.replace(target)


def restore_if_damaged(course: Path) -> str | None:
    """If gradebook.db is damaged and a good copy exists, put the copy back; say what happened."""
    why = damaged(path(course)) if path(course).exists() or path(course).is_symlink() else None
    if why is None:
        return None
    good = good_copy(course)
    if damaged(good) is not None:
        raise SystemExit(f"{path(course)} is damaged ({why}) and there is no good copy in {good}: "
                         "restore it from your own backup, or delete it to start a new gradebook "
                         "(every student is then graded again).")
    bad = path(course).with_name("gradebook.damaged.db")
    path(course).replace(bad)
    shutil.copyfile(good, path(course))
    return f"gradebook.db was damaged ({why}); restored the last good copy (the damaged one is {bad.name})"


def private_copy(course: Path, student: str) -> Path:
    """A private copy of gradebook.db for one student's autograde (merged back by `merge`)."""
    folder = course / ".grading" / "gradebooks"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{student}.db"
    out.unlink(missing_ok=True)
    with sqlite3.connect(path(course)) as src, sqlite3.connect(out) as dst:
        src.backup(dst)                                  # a consistent snapshot
    return out


def _in_range(score, top) -> bool:
    return score is None or (isinstance(score, (int, float)) and 0 <= score <= top)


def merge(course: Path, part: Path, assignment: str, student: str) -> None:
    """Copy one student's automatic scores from its private gradebook into gradebook.db. Scores
    given by hand in formgrader stay; such cells are flagged for review, as nbgrader does. A score
    outside [0, the cell's points] is refused (ValueError): the student is reported, not merged."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning
    warnings.filterwarnings("ignore", category=SAWarning)     # nbgrader's own API, creating a submission
    with Gradebook(f"sqlite:///{part}") as pb, Gradebook(f"sqlite:///{path(course)}") as gb:
        sub = pb.find_submission(assignment, student)
        scores = []
        for nb in sub.notebooks:
            for grade in nb.grades:
                cell = gb.find_grade_cell(grade.name, nb.name, assignment)
                if not _in_range(grade.auto_score, cell.max_score):
                    raise ValueError(f"autograde gave {grade.auto_score!r} of {cell.max_score} on {nb.name}:{grade.name}")
                scores.append((nb.name, grade.name, grade.auto_score))
        penalty = sub.late_submission_penalty
        if penalty is not None and not (isinstance(penalty, (int, float)) and penalty >= 0):
            raise ValueError(f"a late penalty of {penalty!r}")
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student, timestamp=sub.timestamp)
        for nb in sub.notebooks:                   # nbgrader's late penalty, when the course sets one
            gb.find_submission_notebook(nb.name, assignment, student).late_submission_penalty = \
                nb.late_submission_penalty
        for notebook, name, auto_score in scores:
            mine = gb.find_grade(name, notebook, assignment, student)
            mine.auto_score = auto_score
            mine.needs_manual_grade = mine.manual_score is not None or auto_score is None
        for nb in sub.notebooks:
            for comment in nb.comments:
                gb.find_comment(comment.name, nb.name, assignment, student).auto_comment = \
                    None if comment.auto_comment is None else str(comment.auto_comment)[:2000]
        gb.db.commit()


def clamp(course: Path, assignment: str) -> list[str]:
    """Bring every score of the assignment into [0, its cell's points] and drop extra credit
    (a total never exceeds the assignment's points); return what was changed, one line each."""
    from nbgrader.api import Gradebook, MissingEntry
    changed = []
    with Gradebook(f"sqlite:///{path(course)}") as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return changed
        for sub in submissions:
            for nb in sub.notebooks:
                for grade in nb.grades:
                    top = grade.max_score
                    for field in ("auto_score", "manual_score"):
                        value = getattr(grade, field)
                        if not _in_range(value, top):
                            fixed = None if not isinstance(value, (int, float)) else min(max(value, 0), top)
                            setattr(grade, field, fixed)
                            changed.append(f"{sub.student.id}: {nb.name}:{grade.name} {field} {value!r} → {fixed!r}")
                    if grade.extra_credit:
                        changed.append(f"{sub.student.id}: {nb.name}:{grade.name} extra credit {grade.extra_credit!r} → 0")
                        grade.extra_credit = 0
        gb.db.commit()
    return changed
