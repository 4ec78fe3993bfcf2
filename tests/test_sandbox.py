"""Grading that student code cannot game: the attack corpus (tests/sandbox_corpus.py), graded by
`make grade`'s script in one class with a `victim` (a full part 1) and an `honest` student.

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

import csv
import hashlib
import os
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import nbformat
import pytest

from homework_support import ROOT, SOURCE, hidden_test_lines, make_course, submit
from sandbox_corpus import BENCHMARK_ONLY, EVENTS, HONEST, PART2, UNPRIVILEGED, build_class, honest_editor

pytest.importorskip("nbgrader", reason="the homework needs nbgrader: pip install -r requirements.txt")
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")


@pytest.fixture(autouse=True, scope="module")
def _needs_bubblewrap():
    if shutil.which("bwrap") is None:
        why = "bubblewrap is not installed (sudo apt-get install bubblewrap)"
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox tests must run in CI: {why}")
        pytest.skip(why)

PART1 = ("test_entropy", "test_mutual_information", "test_variational_bound")
LIMITS = {"INFOGAN_CELL_TIMEOUT": "20", "INFOGAN_LIMIT_MEMORY_BYTES": str(3 * 2**30),
          "INFOGAN_LIMIT_OUTPUT_BYTES": str(2**20), "INFOGAN_LIMIT_STUDENT_SECONDS": "45"}
OUTPUTS = ("autograded", "feedback", ".grading", "gradebook.db", "gradebook.good.db", "grades.csv",
           "grades-by-cell.csv", "grading-report.md")     # what grading may write in the course folder
TOTAL = 53


def grade(course: Path, *args, user: pwd.struct_passwd | None = None) -> str:
    env = dict(os.environ, **LIMITS)
    cmd = [sys.executable, "-m", "grading.grade", "--course", str(course), "--jobs", "2", *args]
    if user is not None:
        env["HOME"] = str(course.parent / "home")
        cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *cmd]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def scores(course: Path) -> dict[str, dict[str, float]]:
    table = defaultdict(dict)
    with open(course / "grades-by-cell.csv") as f:
        for row in csv.DictReader(f):
            score = float(row["score"] or 0)
            assert 0 <= score <= float(row["max_score"]), row
            if row["cell"].startswith("test_"):
                table[row["student"]][row["cell"]] = score
    return table


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


class Listener:
    """A TCP and a UDP socket on the host's loopback: the sandbox must not reach them."""

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


def seed_of(course: Path) -> str:
    return (course / ".grading" / "seed").read_text().strip()


def student_texts(course: Path) -> str:
    """Everything a student receives (the feedback), and every output of every graded notebook."""
    texts = [p.read_text(errors="replace") for p in (course / "feedback").rglob("*") if p.is_file()]
    for path in (course / "autograded").rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            texts += [str(o) for o in cell.get("outputs", [])]
    return "\n".join(texts)


def check_class(course: Path, listener: Listener, names: list[str], before: dict[str, str], log: str,
                privileged: bool) -> None:
    table = {student: {cell: v for cell, v in cells.items() if cell in PART1 or student in PART2}
             for student, cells in scores(course).items()}
    report = (course / "grading-report.md").read_text()
    assert table["victim"] == {"test_entropy": 2, "test_mutual_information": 3, "test_variational_bound": 5}, report
    assert table["honest"] == {"test_entropy": 2, "test_mutual_information": 3, "test_variational_bound": 0}, report
    for name in names:
        honest = table["honest"] if name not in PART2 else {}
        for cell, score in table.get(name, {}).items():
            assert score <= honest.get(cell, 0), f"{name} earned {score} on {cell}:\n{report}"
    with open(course / "grades.csv") as f:
        for row in csv.DictReader(f):
            assert float(row["score"]) <= float(row["max_score"]) <= TOTAL, row
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM grade WHERE extra_credit > 0").fetchone()[0] == 0
    assert hashes(course) == before, "grading changed a file outside its own outputs"
    assert listener.received() == []
    # every student graded or reported, each in exactly one row of the table
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| student")]
    assert len(rows) == len(names) + 2, report
    for name in ["victim", "honest", *names]:
        assert ": graded (" in log.split(f"] {name}: ")[-1].split("\n")[0] or \
            f"**{_md(name)}**:" in report, f"{name} neither graded nor reported:\n{log}\n{report}"
    # no text from a submission stands as the grader's own: the forged lines exist only escaped
    for line in report.splitlines():
        if "copied the notebook" in line:
            assert line.startswith(("| report\\_injection", "- **report\\_injection**")), line
        assert "<script" not in line, line
    assert not re.search(r"^\| victim \| 0 ", report, re.M), report
    for (name, number), kind in EVENTS.items():
        if name in names:
            assert re.search(rf"\*\*{re.escape(_md(name))}\*\*: 1_mi_bound cell {number}: {kind}", report), \
                f"{name}: {kind} in cell {number} missing from\n{report}"
    # nothing secret reaches what students receive
    everything = student_texts(course)
    leaked = [line for line in hidden_test_lines() if line in everything]
    assert not leaked, leaked[:3]
    assert "LEAK" not in everything, "a hidden test's input reached an output"
    found = re.search(rf"(?<![0-9]){seed_of(course)}(?![0-9])", everything)
    assert not found, f"the grading seed leaked: …{everything[max(0, found.start() - 300):found.end() + 100]}…"
    for folder in (course / "feedback").glob("*/infogan_homework"):
        assert {p.name for p in folder.iterdir()} <= {"1_mi_bound.html", "2_third_code.html"}, list(folder.iterdir())
    for name in ("links_solution", "links_victim", "fifo_notebook"):
        if name in names:
            assert f"**{_md(name)}**: 1\\_mi\\_bound\\.ipynb" in report, report
    if privileged:
        mb = {r.split("|")[1].strip(): float(r.split("|")[6]) for r in rows}
        assert max(mb.values()) <= 1024, mb
        if "frame_flood" in names:
            assert "needed more than the grader" in report.split("## Problems")[1], report


def _md(name: str) -> str:
    return name.replace("_", "\\_")


def leftovers() -> list[str]:
    """Sandbox processes (uids 61000…) and our cgroups still alive."""
    left = subprocess.run(["pgrep", "-u", ",".join(str(61000 + i) for i in range(4))],
                          capture_output=True, text=True).stdout.split()
    groups = [str(p) for p in Path("/sys/fs/cgroup").rglob("infogan-grading/*") if p.is_dir()] \
        if Path("/sys/fs/cgroup").is_dir() else []
    return left + groups


@pytest.fixture(scope="module")
def listener():
    return Listener()


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, listener):
    course = make_course(tmp_path_factory.mktemp("attacked"))
    names = build_class(course, listener.port, leave_out=BENCHMARK_ONLY)
    before = hashes(course)
    log = grade(course, "--feedback")
    return course, names, before, log


def test_no_attack_earns_a_point_leaks_a_secret_or_changes_another_grade(graded_class, listener):
    course, names, before, log = graded_class
    check_class(course, listener, names, before, log, privileged=os.geteuid() == 0)


def test_grading_goes_on_and_leaves_no_sandbox_process_behind(graded_class):
    course, names, _, log = graded_class
    assert log.count("] ") == len(names) + 2, log
    if os.geteuid() == 0:
        assert leftovers() == []


@pytest.fixture(scope="module")
def plain_class(graded_class, tmp_path_factory):
    """The victim and the honest student graded again without the sandbox (--unsafe)."""
    course, _, _, _ = graded_class
    plain = make_course(tmp_path_factory.mktemp("plain"))
    submit(plain, "victim", {"1_mi_bound": "all"}, drop=("2_third_code",))
    submit(plain, "honest", HONEST, edit=honest_editor(), drop=("2_third_code",))
    (plain / ".grading").mkdir()
    shutil.copy(course / ".grading" / "seed", plain / ".grading" / "seed")
    return plain, grade(plain, "--unsafe")


def test_honest_grades_are_the_same_without_the_sandbox(graded_class, plain_class):
    course, plain, log = graded_class[0], *plain_class
    assert "UNSAFE" in (plain / "grading-report.md").read_text() and "graded (" in log
    boxed, unboxed = scores(course), scores(plain)
    assert unboxed["victim"] == boxed["victim"] and unboxed["honest"] == boxed["honest"]


def test_a_damaged_gradebook_is_restored_from_the_last_good_copy(plain_class):
    plain, _ = plain_class
    good = scores(plain)
    (plain / "gradebook.db").write_bytes(b"this is not a database")
    log = grade(plain, "--unsafe")
    assert log.count(": kept") == 2 and scores(plain) == good
    assert "restored the last good copy" in (plain / "grading-report.md").read_text()
    assert (plain / "gradebook.damaged.db").read_bytes() == b"this is not a database"


def test_the_sandbox_cannot_be_turned_off_by_the_environment(tmp_path):
    text = (ROOT / "nbgrader_config.py").read_text()
    assert "os.environ" not in text.split("GraderExecute.timeout")[1], "only --unsafe may turn the sandbox off"


def _unprivileged() -> pwd.struct_passwd | None:
    try:
        user = pwd.getpwnam(os.environ.get("INFOGAN_TEST_USER", "nobody"))
    except KeyError:
        return None
    probe = subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
                            sys.executable, "-c", "import grading.sandbox, nbgrader"],
                           cwd=ROOT, capture_output=True, text=True)
    return user if probe.returncode == 0 else None


@pytest.mark.skipif(os.geteuid() != 0, reason="already running as an unprivileged user")
def test_the_attacks_that_depend_on_privilege_graded_as_an_unprivileged_user(listener):
    user = _unprivileged()
    if user is None:
        why = "no unprivileged user can run this Python (.ci/run makes `nobody` able to)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="infogan-unprivileged-"))
    try:
        course = make_course(folder / "course")
        (folder / "home").mkdir()
        names = build_class(course, listener.port, only=UNPRIVILEGED)
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, user.pw_uid, user.pw_gid)
        os.chmod(folder, 0o755)
        before = hashes(course)
        log = grade(course, "--feedback", user=user)
        check_class(course, listener, names, before, log, privileged=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_grading_refuses_when_the_sandbox_cannot_start(tmp_path):
    course = make_course(tmp_path / "course")
    submit(course, "victim", {"1_mi_bound": "all"}, drop=("2_third_code",))
    env = dict(os.environ, PATH=str(tmp_path))          # no bwrap on the PATH
    out = subprocess.run([sys.executable, "-m", "grading.grade", "--course", str(course)], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "refusing to grade" in out.stderr and "apt-get install bubblewrap" in out.stderr
    assert "--unsafe" in out.stderr and not (course / "autograded").exists()
