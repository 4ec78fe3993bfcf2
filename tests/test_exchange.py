"""nbgrader's exchange as the course hub hardens it: a submission counts for the student who wrote it.

The folders first (`coursehub.layout`): made by root in advance, a student can submit but not list,
remove or rename another's submission, and cannot make a course's folders before the instructor.

Real Unix users (created here, so the test runs as root, as CI does; elsewhere it skips) write
submissions into an exchange's inbound folder the way nbgrader's `submit` names them; the
instructor's collect (`coursehub.collect.HardenedCollect`) must take each student's newest genuine
submission, and refuse and report a folder that claims another student's name (jupyter/nbgrader#1097),
one with a link in it, one too large, and never let a refused one replace a genuine one.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("useradd"),
                                reason="creates Unix users: runs as root (as in CI)")

COURSE, HOMEWORK = "infogan-course", "infogan_homework"
USERS = ("ihx-alice", "ihx-bob", "ihx-carol", "ihx-teach")


@pytest.fixture(scope="module")
def users():
    made = []
    for name in USERS:
        if subprocess.run(["id", name], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
            made.append(name)
    yield {name: pwd.getpwnam(name) for name in USERS}
    for name in made:
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture()
def exchange(users, monkeypatch):
    """An exchange laid out as the hub lays it out: inbound writable, not listable, by students."""
    # nbgrader makes the gradebook with the venv's `alembic`
    monkeypatch.setenv("PATH", os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    top = Path(tempfile.mkdtemp(prefix="ihx-", dir="/tmp"))
    top.chmod(0o755)
    inbound = top / "exchange" / COURSE / "inbound"
    inbound.mkdir(parents=True)
    for folder in (top / "exchange", top / "exchange" / COURSE):
        folder.chmod(0o755)
    inbound.chmod(0o3733)
    (top / "course").mkdir()
    yield top
    subprocess.run(["rm", "-rf", "--", str(top)], check=False)     # past shutil.rmtree's depth


def stamp(minute: int) -> str:
    return f"2026-12-01 10:{minute:02d}:00.000000 UTC"


def submit_as(user, inbound: Path, claimed: str, minute: int, files: dict[str, str | int],
              links: dict[str, str] | None = None) -> Path:
    """Write a submission folder as `user` (its own process), named for `claimed`; a file given as an
    int is that many zero bytes."""
    folder = inbound / f"{claimed}+{HOMEWORK}+{stamp(minute)}+r{minute}{user.pw_name[-3:]}"
    script = ["import os, sys, json", "d = sys.argv[1]", "os.mkdir(d)",
              f"open(os.path.join(d, 'timestamp.txt'), 'w').write({stamp(minute)!r})"]
    for name, content in files.items():
        data = f"b'\\0' * {content}" if isinstance(content, int) else repr(content)
        script.append(f"open(os.path.join(d, {name!r}), {'wb' if isinstance(content, int) else 'w'!r}).write({data})")
    for name, target in (links or {}).items():
        script.append(f"os.symlink({target!r}, os.path.join(d, {name!r}))")
    subprocess.run(["python3", "-c", "\n".join(script), str(folder)], check=True,
                   user=user.pw_uid, group=user.pw_gid, cwd="/")
    return folder


def collect(top: Path, **options):
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory

    from coursehub.collect import HardenedCollect

    coursedir = CourseDirectory(root=str(top / "course"), course_id=COURSE, assignment_id=HOMEWORK)
    HardenedCollect(coursedir=coursedir, authenticator=Authenticator(), root=str(top / "exchange"),
                    update=True, **options).start()
    report = top / "course" / "exchange-report.jsonl"
    return [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []


def submitted(top: Path, student: str) -> Path:
    return top / "course" / "submitted" / student / HOMEWORK


def test_a_submission_that_claims_another_students_name_is_refused_and_reported(exchange, users):
    alice, bob = users["ihx-alice"], users["ihx-bob"]
    inbound = exchange / "exchange" / COURSE / "inbound"
    submit_as(alice, inbound, "ihx-alice", 1, {"1_mi_bound.ipynb": "alice's own work"})
    submit_as(bob, inbound, "ihx-alice", 5, {"1_mi_bound.ipynb": "bob's forgery, newer"})
    report = collect(exchange)
    assert (submitted(exchange, "ihx-alice") / "1_mi_bound.ipynb").read_text() == "alice's own work"
    assert [r["claimed_student"] for r in report] == ["ihx-alice"]
    assert "belongs to ihx-bob" in report[0]["refused"]


def test_links_and_oversized_submissions_are_refused_and_the_newest_genuine_one_is_collected(exchange, users):
    bob, carol = users["ihx-bob"], users["ihx-carol"]
    inbound = exchange / "exchange" / COURSE / "inbound"
    submit_as(bob, inbound, "ihx-bob", 1, {"1_mi_bound.ipynb": "bob, first"})
    submit_as(bob, inbound, "ihx-bob", 2, {"1_mi_bound.ipynb": "bob, second"})
    submit_as(bob, inbound, "ihx-bob", 3, {"1_mi_bound.ipynb": "bob, third"},
              links={"answers.ipynb": "/etc/shadow"})
    submit_as(carol, inbound, "ihx-carol", 1, {"2_third_code.ipynb": "x", "third_code.pt": 2 * 2**20})
    report = collect(exchange, max_megabytes=1)
    assert (submitted(exchange, "ihx-bob") / "1_mi_bound.ipynb").read_text() == "bob, second"
    assert not (submitted(exchange, "ihx-bob") / "answers.ipynb").exists()
    assert not submitted(exchange, "ihx-carol").exists()
    reasons = {r["claimed_student"]: r["refused"] for r in report}
    assert "is a link" in reasons["ihx-bob"] and "more than 1 MB" in reasons["ihx-carol"]


def test_a_refused_submission_never_replaces_one_already_collected(exchange, users):
    alice, bob = users["ihx-alice"], users["ihx-bob"]
    inbound = exchange / "exchange" / COURSE / "inbound"
    submit_as(alice, inbound, "ihx-alice", 1, {"1_mi_bound.ipynb": "alice, collected"})
    collect(exchange)
    submit_as(bob, inbound, "ihx-alice", 9, {"1_mi_bound.ipynb": "bob's forgery"})
    submit_as(alice, inbound, "ihx-alice", 7, {"1_mi_bound.ipynb": "alice, later"},
              links={"x.ipynb": "/etc/passwd"})
    report = collect(exchange)
    assert (submitted(exchange, "ihx-alice") / "1_mi_bound.ipynb").read_text() == "alice, collected"
    assert len(report) == 2


def test_the_copy_itself_refuses_a_file_swapped_for_a_link_after_the_check(tmp_path, users):
    from coursehub.collect import Refused, copy_tree

    src = tmp_path / "sub"
    src.mkdir()
    (src / "a.ipynb").write_text("fine")
    os.symlink("/etc/shadow", src / "b.ipynb")           # as if swapped in after check_tree passed
    with pytest.raises((Refused, OSError)):
        copy_tree(src, tmp_path / "out", os.getuid(), 2**20)


def as_user(user, code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["python3", "-c", code, *map(str, args)], user=user.pw_uid, group=user.pw_gid,
                          cwd="/", capture_output=True, text=True)


TRY = "import os, sys\ntry:\n    {}\nexcept OSError as e:\n    sys.exit(e.errno)"


def test_the_exchange_layout_lets_students_submit_but_not_look_or_touch(users, tmp_path):
    from coursehub.layout import make_exchange

    root = Path(tempfile.mkdtemp(prefix="ihx-layout-", dir="/tmp"))
    try:
        root.chmod(0o1777)
        course, outbound, inbound, feedback = make_exchange(root, COURSE, "ihx-teach")[1:]
        alice, bob = users["ihx-alice"], users["ihx-bob"]
        mine = inbound / "ihx-alice+hw+2026-12-01 10:00:00.000000 UTC+abc"
        assert as_user(alice, TRY.format("os.mkdir(sys.argv[1])"), mine).returncode == 0
        assert as_user(alice, TRY.format("os.listdir(sys.argv[1])"), inbound).returncode == 13   # EACCES
        assert as_user(bob, TRY.format("os.rename(sys.argv[1], sys.argv[1] + 'x')"), mine).returncode == 1   # EPERM
        assert as_user(bob, TRY.format("os.rmdir(sys.argv[1])"), mine).returncode == 1
        assert as_user(bob, TRY.format("os.mkdir(sys.argv[1])"), outbound / "hw").returncode == 13
        assert as_user(bob, TRY.format("os.rename(sys.argv[1], sys.argv[1] + 'x')"), course).returncode == 1
        assert as_user(bob, TRY.format("os.listdir(sys.argv[1])"), feedback).returncode == 13
        assert mine.is_dir()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_a_course_folder_a_student_made_first_is_named_and_can_be_taken_back(users):
    from coursehub.layout import LayoutError, make_exchange

    root = Path(tempfile.mkdtemp(prefix="ihx-layout-", dir="/tmp"))
    try:
        root.chmod(0o1777)
        bob = users["ihx-bob"]
        assert as_user(bob, TRY.format("os.makedirs(sys.argv[1] + '/outbound/fake_homework', mode=0o777)"),
                       root / COURSE).returncode == 0
        with pytest.raises(LayoutError, match="ihx-bob"):
            make_exchange(root, COURSE, "ihx-teach")
        make_exchange(root, COURSE, "ihx-teach", fix=True)
        st = os.stat(root / COURSE / "outbound")
        assert pwd.getpwuid(st.st_uid).pw_name == "ihx-teach" and st.st_mode & 0o777 == 0o755
        assert not (root / COURSE / "outbound" / "fake_homework").exists(), "what the student planted is gone"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_as(user, script: str, *args: str) -> None:
    subprocess.run(["python3", "-c", script, *args], check=True, user=user.pw_uid, group=user.pw_gid, cwd="/")


def test_one_odd_submission_never_stops_the_collect_of_the_others(exchange, users):
    """A name nbgrader cannot parse, and folders nested deeper than Python's recursion: each is
    refused and reported, and everyone else is collected."""
    alice, bob, carol = users["ihx-alice"], users["ihx-bob"], users["ihx-carol"]
    inbound = exchange / "exchange" / COURSE / "inbound"
    submit_as(alice, inbound, "ihx-alice", 1, {"1_mi_bound.ipynb": "alice's own work"})
    run_as(bob, "import os, sys; os.mkdir(sys.argv[1])", str(inbound / f"ihx-bob+{HOMEWORK}+not a time+x"))
    deep = inbound / f"ihx-carol+{HOMEWORK}+{stamp(3)}+deep"
    run_as(carol, "import os, sys\nd = sys.argv[1]\nos.mkdir(d)\nfor _ in range(1100):\n"
                   "    d = os.path.join(d, 'd'); os.mkdir(d)", str(deep))
    report = collect(exchange)
    assert (submitted(exchange, "ihx-alice") / "1_mi_bound.ipynb").read_text() == "alice's own work"
    assert not submitted(exchange, "ihx-carol").exists()
    refused = {r["claimed_student"]: r["refused"] for r in report}
    assert set(refused) == {"ihx-bob", "ihx-carol"}, report
    assert "name" in refused["ihx-bob"] and "nested" in refused["ihx-carol"]


def test_a_file_that_grows_while_it_is_collected_is_not_collected_past_its_checked_size(exchange, users, monkeypatch):
    """The student's file grows between the check and the copy (a process of theirs watching for the
    collect's open): the copy takes no byte past the size checked, and refuses the submission."""
    import coursehub.collect as collect_module

    carol = users["ihx-carol"]
    inbound = exchange / "exchange" / COURSE / "inbound"
    folder = submit_as(carol, inbound, "ihx-carol", 1, {"third_code.pt": 2**20})
    real_fstat = os.fstat

    def fstat_then_grow(fd):                               # the size is read; then the student strikes
        seen = real_fstat(fd)
        if os.readlink(f"/proc/self/fd/{fd}").endswith("third_code.pt"):
            run_as(carol, "import os, sys; os.truncate(sys.argv[1], 4 * 2**20)", str(folder / "third_code.pt"))
        return seen

    monkeypatch.setattr(collect_module.os, "fstat", fstat_then_grow)
    report = collect(exchange, max_megabytes=8)
    assert not submitted(exchange, "ihx-carol").exists(), "a submission grown past its check was collected"
    assert [r["claimed_student"] for r in report] == ["ihx-carol"] and "grew" in report[0]["refused"], report
    assert not list((exchange / "course" / "submitted").rglob(".collecting-*")), "a partial copy was left"
