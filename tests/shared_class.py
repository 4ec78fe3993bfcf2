"""One class, graded once by `make grade`'s script, for tests/test_grading.py, test_sandbox.py and
test_formgrader.py (the fixture `graded_class` in conftest.py).

The class: the grading tests' fake class (harness/fake_class.py: full, untouched, partial, gutted
tests, inflated points, an endless loop, broken JSON; its student with a missing notebook is the
corpus's `victim`, who submits part 1 only), the attack corpus (harness/attack_corpus.py) beside
`victim` and `honest`, and `xss`, whose scripts wait for formgrader. It is graded with the sandbox
tests' limits, three students at a time: a first run is killed midway (a crash), a second goes on
with feedback. Then the later steps the tests check, in this order, on the same course folder: two
students graded again, the victim and the honest student graded again without the sandbox, the
gradebook damaged and graded again; and, as an unprivileged user, a class of the attacks whose
outcome depends on privilege (a folder of its own). What each step leaves is read right after it
(`Run`, `Snapshot`), so the tests assert on what each step did, whatever ran after it.

`grade_everything` does all of it; conftest.py starts it in a thread of its own as the session
starts, so that the other tests run while the class is graded.
"""

from __future__ import annotations

import csv
import hashlib
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from conftest import Background
from grading.cgroups import orphaned
from harness.attack_corpus import BENCHMARK_ONLY, UNPRIVILEGED, build_class, submit_formgrader_attack
from harness.fake_class import FIXTURE_MODEL, ROOT, SOURCE, make_course, make_fake_class

# a notebook's time budget bounds the attacks (slow_but_correct needs 112 s: it must run out); it
# leaves the full solution's part 2 (20 s here, alone) room to finish while other tests run beside it
LIMITS = {"INFOGAN_CELL_TIMEOUT": "20", "INFOGAN_LIMIT_MEMORY_BYTES": str(3 * 2**30),
          "INFOGAN_LIMIT_OUTPUT_BYTES": str(2**20), "INFOGAN_LIMIT_STUDENT_SECONDS": "60"}
OUTPUTS = ("autograded", "feedback", ".grading", "gradebook.db", "gradebook.good.db", "grades.csv",
           "grades-by-cell.csv", "grading-report.md")     # what grading may write in the course folder
JOBS = "3"                  # students graded at once: many wait more than they compute
GARBAGE = b"this is not a database"


def cannot_grade() -> str | None:
    """Why the class cannot be graded here (the tests then skip, or fail in CI), or None."""
    if shutil.which("bwrap") is None:
        return "bubblewrap is not installed (sudo apt-get install bubblewrap)"
    return None


def needs_bubblewrap() -> None:
    """Skip (fail in CI) where bubblewrap is missing: grading refuses to run without its sandbox."""
    why = cannot_grade()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the grading and sandbox tests must run in CI: {why}")
        pytest.skip(why)


def wanted() -> bool:
    """Whether grading the class can run here at all (nbgrader, solutions/, bubblewrap)."""
    try:
        import nbgrader  # noqa: F401
    except ImportError:
        return False
    return SOURCE.exists() and cannot_grade() is None


# ---- running `make grade`'s script -----------------------------------------------------------------

_running: set[subprocess.Popen] = set()


def stop_grading() -> None:
    """Kill every grading run still going (the session is over): each in its own process group."""
    for proc in list(_running):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _start(cmd: list[str], env: dict) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    _running.add(proc)
    return proc


def grade(course: Path, *args, user: pwd.struct_passwd | None = None) -> str:
    """`make grade`'s script on `course` with the tests' limits, JOBS students at a time; its output."""
    env = dict(os.environ, **LIMITS)
    cmd = [sys.executable, "-m", "grading.grade", "--course", str(course), "--jobs", JOBS, *args]
    if user is not None:
        env["HOME"] = str(course.parent / "home")
        cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *cmd]
    proc = _start(cmd, env)
    try:
        out, err = proc.communicate(timeout=1200)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    finally:
        _running.discard(proc)
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return out


def interrupted_grade(course: Path, after: int, students: tuple[str, ...] = ()) -> list[str]:
    """Start `make grade`'s script (on these students, or all) and kill it, and all it started,
    once `after` students are graded (a crash midway); return the students it had finished."""
    only = ["--students", *students] if students else []
    proc = _start([sys.executable, "-m", "grading.grade", "--course", str(course), "--jobs", JOBS, *only],
                  dict(os.environ, **LIMITS))
    finished = []
    try:
        for line in proc.stdout:
            if ": graded (" in line:
                finished.append(line.split("] ", 1)[1].split(":", 1)[0])
                if len(finished) == after:
                    break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        _running.discard(proc)
    return finished


# ---- what a run leaves -------------------------------------------------------------------------------

def cell_rows(course: Path) -> list[dict]:
    with open(course / "grades-by-cell.csv") as f:
        return list(csv.DictReader(f))


def hashes(course: Path) -> dict[str, str]:
    """SHA-256 of every file in the course folder that grading must not change (links: their target text)."""
    out = {}
    for path in sorted(course.rglob("*")):
        rel = path.relative_to(course)
        if rel.parts[0] in OUTPUTS:
            continue
        if path.is_symlink():
            out[str(rel)] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif not path.is_dir():
            out[str(rel)] = "special"
    return out


def student_texts(course: Path) -> str:
    """Everything a student receives (the feedback), and every output of every graded notebook."""
    texts = [p.read_text(errors="replace") for p in (course / "feedback").rglob("*") if p.is_file()]
    for path in (course / "autograded").rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            texts += [str(o) for o in cell.get("outputs", [])]
    return "\n".join(texts)


def _cgroups() -> set[Path]:
    root = Path("/sys/fs/cgroup")
    return {p for p in root.rglob("infogan-grading/*") if p.is_dir()} if root.is_dir() else set()


def _ancestors(pid: int) -> set[int]:
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return seen


_EARLIER = _cgroups()                 # what another session on this machine left: not ours to judge


def leftovers() -> list[str]:
    """Sandbox processes and our cgroups that outlived the grading process that made them.

    Other tests grade while the shared class is graded, so not all that is alive is this run's: a
    sandbox process (uid 61000…64999) is left over when it no longer descends from this test
    session (its grader died and init adopted it), a cgroup when the process named in it
    (`grader-PID-…`, `PID-…`) is gone."""
    session = os.getpid()
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
        except OSError:
            continue
        if 61000 <= uid < 65000 and session not in _ancestors(int(entry.name)):
            left.append(f"process {entry.name} (uid {uid})")
    left += [str(group) for group in sorted(_cgroups() - _EARLIER) if orphaned(group.name)]
    return left


class Listener:
    """A TCP and a UDP socket on the host's loopback: nothing a student sends may reach them."""

    def __init__(self):
        self.tcp = socket.socket()
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp.setblocking(False)
        self.udp.setblocking(False)

    def received(self) -> list[str]:
        got = []
        try:
            self.tcp.accept()
            got.append("a TCP connection")
        except BlockingIOError:
            pass
        try:
            got.append(f"a UDP datagram {self.udp.recv(100)!r}")
        except BlockingIOError:
            pass
        return got


@dataclass
class Run:
    """What a grading run printed and wrote: its output, the report, grades-by-cell.csv."""
    log: str
    report: str
    cells: list[dict]


def run_of(course: Path, log: str) -> Run:
    return Run(log, (course / "grading-report.md").read_text(), cell_rows(course))


@dataclass
class Snapshot(Run):
    """A run, and all that the sandbox tests check after it, read right after it."""
    totals: list[dict]                # grades.csv
    quick_check: str                  # the gradebook's SQLite check
    extra_credit: int                 # grades with extra credit in the gradebook
    hashes: dict[str, str]            # every file grading must not change
    student_texts: str                # feedback and graded outputs
    feedback: dict[str, set[str]]     # student: the files of its feedback folder
    submitted_models: set[str]        # students who submitted third_code.pt (a regular file)
    seed: str                         # the course's grading seed
    network: list[str]                # what reached the host's listener during the run
    leftovers: list[str]              # sandbox processes and cgroups still alive (as root)


def snapshot(course: Path, log: str, listener: Listener) -> Snapshot:
    with open(course / "grades.csv") as f:
        totals = list(csv.DictReader(f))
    with sqlite3.connect(course / "gradebook.db") as db:
        quick_check = db.execute("PRAGMA quick_check").fetchone()[0]
        extra = db.execute("SELECT count(*) FROM grade WHERE extra_credit > 0").fetchone()[0]
    feedback = {folder.parent.name: {p.name for p in folder.iterdir()}
                for folder in (course / "feedback").glob("*/infogan_homework")}
    models = {p.parents[1].name for p in (course / "submitted").glob("*/infogan_homework/third_code.pt")
              if p.is_file() and not p.is_symlink()}
    run = run_of(course, log)
    return Snapshot(run.log, run.report, run.cells, totals, quick_check, extra, hashes(course),
                    student_texts(course), feedback, models, (course / ".grading" / "seed").read_text().strip(),
                    listener.received(), leftovers() if os.geteuid() == 0 else [])


# ---- the steps -----------------------------------------------------------------------------------------

@dataclass
class Restored:
    """gradebook.db overwritten with garbage, then a run that keeps the victim and the honest student."""
    good: list[dict]                  # grades-by-cell.csv before the damage
    run: Run
    damaged: bytes                    # what the run kept aside as gradebook.damaged.db


@dataclass
class Unprivileged:
    """The attacks that depend on privilege, graded as an unprivileged user (root only)."""
    why_not: str | None = None        # why no unprivileged user could grade here
    attackers: list[str] = field(default_factory=list)
    before: dict[str, str] = field(default_factory=dict)
    run: Snapshot | None = None


@dataclass
class GradedClass:
    course: Path
    students: list[str]               # everyone who submitted
    attackers: list[str]              # the corpus's students, less victim and honest
    before: dict[str, str]            # hashes(course) before grading
    before_crash: list[str]           # students the killed run had finished
    graded: Snapshot                  # the run that went on after the crash, with feedback
    regraded: Run                     # --students full partial --regrade
    unboxed: Run                      # --unsafe --students victim honest --regrade
    restored: Restored
    unprivileged: Unprivileged


def unprivileged_user() -> tuple[pwd.struct_passwd | None, str]:
    """The user to grade as without privileges ($INFOGAN_TEST_USER, or nobody), if it can run this Python."""
    try:
        user = pwd.getpwnam(os.environ.get("INFOGAN_TEST_USER", "nobody"))
    except KeyError:
        return None, "no user nobody (or $INFOGAN_TEST_USER) here"
    probe = subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                            sys.executable, "-c", "import grading.sandbox, nbgrader"],
                           cwd=ROOT, capture_output=True, text=True)
    if probe.returncode != 0:
        return None, "no unprivileged user can run this Python (.ci/run makes `nobody` able to)"
    return user, ""


def grade_unprivileged(listener: Listener) -> Unprivileged:
    user, why = unprivileged_user()
    if user is None:
        return Unprivileged(why_not=why)
    folder = Path(tempfile.mkdtemp(prefix="infogan-unprivileged-"))     # pytest's folders are private
    try:
        course = make_course(folder / "course")
        (folder / "home").mkdir()
        attackers = build_class(course, listener.port, only=UNPRIVILEGED)
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, user.pw_uid, user.pw_gid)
        os.chmod(folder, 0o755)
        before = hashes(course)
        log = grade(course, "--feedback", user=user)
        return Unprivileged(None, attackers, before, snapshot(course, log, listener))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def grade_everything(folder: Path, kernel: Listener, browser_port: int, unprivileged: Listener) -> GradedClass:
    assert FIXTURE_MODEL.exists(), f"{FIXTURE_MODEL} (a trained 3-code model) is missing"
    privileged = Background(grade_unprivileged, unprivileged) if os.geteuid() == 0 else None     # beside it
    course = make_course(folder)
    make_fake_class(course, leave_out=("missing",))        # the corpus's victim misses part 2
    attackers = build_class(course, kernel.port, leave_out=BENCHMARK_ONLY)
    submit_formgrader_attack(course, browser_port)
    students = sorted(p.name for p in (course / "submitted").iterdir())
    before = hashes(course)
    # The cells here may take 20 s (the endless loop's cost), far below the 120 s a class gets: read
    # torch's files once first, so that a cold file cache cannot time out a student's import cell.
    subprocess.run([sys.executable, "-c", "import torch, torchvision, infogan_lib"], cwd=ROOT, check=True,
                   timeout=600)
    # the crash: a run on three quick students killed after two (the third dies in the middle)
    before_crash = interrupted_grade(course, after=2, students=("honest", "victim", "xss"))
    graded = snapshot(course, grade(course, "--feedback"), kernel)       # goes on after the crash
    regraded = run_of(course, grade(course, "--students", "full", "partial", "--regrade"))
    unboxed = run_of(course, grade(course, "--unsafe", "--students", "victim", "honest", "--regrade"))
    good = cell_rows(course)
    (course / "gradebook.db").write_bytes(GARBAGE)
    restored = Restored(good, run_of(course, grade(course, "--unsafe", "--students", "victim", "honest")),
                        (course / "gradebook.damaged.db").read_bytes())
    return GradedClass(course, students, attackers, before, before_crash, graded, regraded, unboxed, restored,
                       privileged.result() if privileged else Unprivileged("not root"))

