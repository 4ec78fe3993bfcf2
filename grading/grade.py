"""Grade the whole class: autograde every submission, export the grades, write a report.

    python -m grading.grade                      # what `make grade` runs
    python -m grading.grade --students ada bob   # only these
    python -m grading.grade --regrade            # everyone again (after a test was fixed)
    python -m grading.grade --jobs 4             # four at a time (default: one per CPU core)
    python -m grading.grade --unsafe             # without the sandbox (said in the report)

For each folder `submitted/<student>/infogan_homework/` this first takes the submission as data
(grading/submission.py: only the homework's notebooks, model file and timestamp, regular files of
bounded size, copied into `.grading/staged/`; anything else is refused and reported), checks the
notebooks (missing, or not valid notebook JSON: reported, the student's other notebooks still
graded), then runs `nbgrader autograde` on the staged copy for that one student in its own process
(its own session, its own wall-clock budget, its memory measured), so that a broken or hostile
submission can fail only itself. Student code runs in a bubblewrap sandbox with a cgroup, and test
cells in the grader (grading/executor.py, grading/sandbox.py, grading/README.md); if the sandbox
cannot start here, grading refuses and says how to fix it, unless --unsafe is given. Several
students are graded at once (--jobs), each against its own copy of the gradebook, merged into
gradebook.db by this process alone, each score checked against its cell's points
(grading/gradebook.py); a damaged gradebook is restored from the last good copy. nbgrader stops any
cell that runs longer than the cell timeout (INFOGAN_CELL_TIMEOUT, default 120 s) and goes on with
the next cell. Already graded students are skipped unless --regrade is given (so a crash midway
loses nothing: run it again). Then it writes

- `grades.csv`: one row per student, the totals (nbgrader export: the format LMS imports expect);
- `grades-by-cell.csv`: one row per student and notebook cell that carries points (student,
  notebook, cell, auto or manual, score, max score), from the gradebook;
- `grading-report.md`: who was graded, their autograded totals, which test cells failed and with
  which error (timeout included), and the submissions that could not be graded at all, with why
  (grading/report.py: student text there is escaped);
- `feedback/` (nbgrader generate_feedback, hidden tests removed: grading/feedback.py), with --feedback.

Hidden tests draw their random inputs from INFOGAN_GRADING_SEED. This tool keeps one private seed per
course folder in `.grading/seed` (git-ignored; made on first use), so regrading gives the same
inputs, and students who read the public solutions still cannot know them. The seed is given to
nbgrader's process (where the tests run), never to a student's kernel.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from grading.run_nbgrader import skip_iri_parsers

skip_iri_parsers()                     # before nbformat is imported (grading/run_nbgrader.py says why)

import nbformat  # noqa: E402

from grading import gradebook  # noqa: E402
from grading.report import StudentResult, inert, kept, marker_path, read_scores, write_outputs  # noqa: E402
from grading.submission import stage_folder, valid_student_id  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "infogan_homework"
STAGED = Path(".grading") / "staged"          # nbgrader's submitted_directory while grading
NBGRADER = [sys.executable, "-m", "grading.run_nbgrader"]    # `python -m nbgrader`, started faster


def nbgrader_env(seed: int) -> dict:
    env = dict(os.environ)
    # nbgrader runs `alembic` from PATH to set up the gradebook: use the one beside this Python
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["INFOGAN_GRADING_SEED"] = str(seed)
    return env


def nbgrader(args: list[str], course: Path, env: dict, seconds: float = 1800):
    """A whole-class nbgrader step (generate_assignment, generate_feedback, export); never waits forever."""
    try:
        return subprocess.run([*NBGRADER, *args], cwd=course, env=env,
                              capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"nbgrader {args[0]} did not finish within {seconds:.0f} s")


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
    """(notebooks that can be graded, problems found) for one student's staged submission."""
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


def _peak_mb(pid: int, stop: threading.Event, out: list) -> None:
    """The grading process's peak private memory (RssAnon: what it allocated, not the shared
    library files it maps), sampled until it ends."""
    while not stop.wait(0.2):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        out[0] = max(out[0], int(line.split()[1]) / 1024)

        except OSError:
            return


GRADER_MEMORY = int(os.environ.get("INFOGAN_GRADER_MEMORY_BYTES", 2**30))      # per job, as root (cgroup)
GRADER_DATA = int(os.environ.get("INFOGAN_GRADER_DATA_BYTES", 4 * 2**30))      # per job otherwise (RLIMIT_DATA)


class GraderOutOfMemory(RuntimeError):
    pass


def run_autograde(args: list[str], course: Path, env: dict, seconds: float) -> tuple[int | None, str, float]:
    """nbgrader autograde in its own session, killed whole past `seconds`, its memory capped (as
    root: a cgroup of GRADER_MEMORY, RAM and page cache it charges; else RLIMIT_DATA of
    GRADER_DATA); (return code or None on timeout, the tail of its output, its peak private memory
    in MB). GraderOutOfMemory when the cgroup's limit ended it."""
    from grading.cgroups import Cgroup, sweep
    # the job dies with this process (it has a session of its own, so a kill of ours would miss it)
    prefix = ["setpriv", "--pdeathsig", "KILL", "--", "prlimit", f"--data={GRADER_DATA}:", "--"]
    cgroup = None
    if os.geteuid() == 0:
        try:
            cgroup = Cgroup(f"grader-{os.getpid()}-{secrets.token_hex(4)}", GRADER_MEMORY).create()
            prefix = ["setpriv", "--pdeathsig", "KILL", "--", *cgroup.launcher()]
        except OSError:
            cgroup = None
    proc = subprocess.Popen([*prefix, *NBGRADER, *args], cwd=course, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    peak, stop = [0.0], threading.Event()
    watcher = threading.Thread(target=_peak_mb, args=(proc.pid, stop, peak), daemon=True)
    tail = collections.deque(maxlen=64)             # the last of what it printed, never all of it
    reader = threading.Thread(target=lambda: [tail.append(chunk) for chunk in iter(lambda: proc.stdout.read(4096), b"")],
                              daemon=True)
    watcher.start()
    reader.start()
    try:
        code = proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    finally:
        stop.set()
        watcher.join()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)        # anything the job left in its session
        reader.join(5)
        killed = cgroup is not None and cgroup.oom_killed()
        if cgroup is not None:
            cgroup.destroy()
            sweep(f"{proc.pid}-")             # the sandboxes of a job that was killed
    if killed:
        raise GraderOutOfMemory(f"grading this submission needed more than the grader's "
                                f"{GRADER_MEMORY / 2**30:.1f} GB (stopped; not graded; the run went on)")
    return code, b"".join(tail).decode(errors="replace")[-20000:], peak[0]


def grade_student(course: Path, student: str, assignment: str, notebooks: list[str], env: dict,
                  regrade: bool, db: Path | None = None, unsafe: bool = False) -> StudentResult:
    result = StudentResult(student)
    if not regrade and marker_path(course, student, assignment).exists():
        return kept(course, student, assignment)
    staged = stage_folder(course / "submitted" / student / assignment,
                          course / STAGED / student / assignment, notebooks)
    result.problems += staged.problems
    gradable, problems = check_submission(staged.folder, notebooks)
    result.problems += problems
    if not gradable:
        result.problems.append("nothing to grade")
        return result
    # nbgrader's --notebook takes one glob: all notebooks, or the single readable one (this
    # assignment has two notebooks; an assignment with more would need one call per notebook)
    if len(gradable) not in (1, len(notebooks)):
        raise NotImplementedError("grading a subset of more than one notebook")
    only = [] if len(gradable) == len(notebooks) else ["--notebook", gradable[0]]
    own_db = [f"--CourseDirectory.db_url=sqlite:///{db}"] if db is not None else []
    sandbox = ["--GraderExecute.sandbox=False"] if unsafe else []
    from grading.sandbox import Limits
    budget = Limits.from_env().student_seconds * len(gradable) + 180
    start = time.perf_counter()
    marker_path(course, student, assignment).unlink(missing_ok=True)
    try:
        code, tail, result.grader_mb = run_autograde(
            ["autograde", assignment, "--student", student, "--force", *only, *own_db, *sandbox,
             f"--CourseDirectory.submitted_directory={course / STAGED}"],
            course, dict(env, INFOGAN_STAGED_SUBMISSION=str(staged.folder)), budget)
    except GraderOutOfMemory as err:
        result.seconds = time.perf_counter() - start
        result.problems.append(str(err))
        return result
    result.seconds = time.perf_counter() - start
    if code is None:
        result.problems.append(f"grading this student took longer than {budget:.0f} s and was stopped "
                               "(not graded; the run went on)")
        return result
    if code != 0:
        last = "\n".join(tail.strip().splitlines()[-5:])
        result.problems.append(f"nbgrader autograde failed for this student: {last}")
        return result
    result.graded = gradable
    return result


def finish_student(course: Path, result: StudentResult, assignment: str, db: Path | None) -> None:
    """After a successful autograde: merge its gradebook, keep a good copy, mark it graded."""
    import json
    if not result.graded:
        return
    if db is not None:
        try:
            gradebook.merge(course, db, assignment, result.student)
        except Exception as err:  # noqa: BLE001 - a bad private gradebook fails this student only
            result.problems.append(f"its grades were not merged ({type(err).__name__}: {err})")
            result.graded = []
            return
        finally:
            db.unlink(missing_ok=True)
        gradebook.backup(course)
    marker = marker_path(course, result.student, assignment)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seconds": result.seconds, "notebooks": result.graded,
                                  "problems": result.problems}))


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
        safety = ("**UNSAFE: graded with --unsafe, without the sandbox: student code ran with the "
                  "instructor's rights.** Test cells still ran in the grader.")
        print("WARNING: --unsafe: student code runs without the sandbox", file=sys.stderr)
    else:
        from grading import cgroups, sandbox
        try:
            sandbox.check(Path(os.environ["INFOGAN_DATA"]) if os.environ.get("INFOGAN_DATA") else None)
        except sandbox.SandboxUnavailable as err:
            print(f"refusing to grade: {err}", file=sys.stderr)
            return 2
        why = cgroups.Cgroup.available()
        safety = ("Student code ran in the bubblewrap sandbox, " +
                  ("each student in a cgroup (memory, processes, CPU)" if why is None else
                   f"with per-process limits only: {why}") + "; test cells ran in the grader.")
    notices = []
    restored = gradebook.restore_if_damaged(course)
    if restored:
        notices.append(restored)
        print(f"NOTE: {restored}", file=sys.stderr)
    notebooks = release_notebooks(course, args.assignment)
    ensure_gradebook(course, args.assignment, env)
    if os.geteuid() == 0 and args.unsafe:
        # torch's library files, read once here, are charged to this process's cgroup: a job's
        # memory cap then counts what grading a submission takes, not the first read of torch (the
        # sandbox check, which imports torch from here, does the same when grading is sandboxed)
        subprocess.run([sys.executable, "-c", "import torch, infogan_lib"], cwd=course,
                       capture_output=True, timeout=600)
    gradebook.backup(course)
    submitted = course / "submitted"
    names = args.students if args.students else \
        sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.is_symlink()) if submitted.is_dir() else []
    students = [s for s in names if valid_student_id(s)]
    notices += [f"a folder named {inert(s, 80)} in submitted/ is not a valid student id: not graded"
                for s in names if not valid_student_id(s)]
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
                                 dict(env, INFOGAN_SANDBOX_UID=str(61000 + slot)), args.regrade, db,
                                 args.unsafe)
        except Exception as err:  # noqa: BLE001 - one student's failure is that student's
            res = StudentResult(student)
            res.problems.append(f"grading failed ({type(err).__name__}: {err})")
            return res
        finally:
            slots.append(slot)

    from concurrent.futures import ThreadPoolExecutor, as_completed
    for stale in (course / ".grading" / "gradebooks").glob("*.db"):      # left by a run that was killed
        stale.unlink()
    # a private gradebook for each student to be graded (the kept ones need none)
    dbs = {s: gradebook.private_copy(course, s) for s in students
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
    notices += [f"score out of range, corrected: {inert(line, 200)}"
                for line in gradebook.clamp(course, args.assignment)]
    rows = read_scores(course, args.assignment, results)
    if args.feedback:
        out = nbgrader(["generate_feedback", args.assignment, "--force"], course, env)
        if out.returncode != 0:
            print(f"generate_feedback failed:\n{out.stderr[-2000:]}", file=sys.stderr)
        from grading.feedback import keep_release_keys
        keep_release_keys(course, args.assignment)       # for nbgrader's release_feedback
    csv_path, report = write_outputs(course, args.assignment, rows, results, time.perf_counter() - start,
                                     safety, notices)
    out = nbgrader(["export", "--assignment", args.assignment], course, env)
    if out.returncode != 0:
        print(f"nbgrader export failed:\n{out.stderr[-2000:]}", file=sys.stderr)
    if os.geteuid() == 0:
        from grading.cgroups import sweep_empty
        sweep_empty()
    print(f"grades: {course / 'grades.csv'} (totals), {csv_path} (per cell)\nreport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
