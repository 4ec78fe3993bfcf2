"""nbgrader's collect, hardened: a submission counts for the student who wrote it, or not at all.

nbgrader's file exchange names each submission `inbound/<student>+<assignment>+<time>+<random>`,
and its collect trusts the name: any student can hand in a folder that claims another student's
name, and the newest folder wins (jupyter/nbgrader#1097; nbgrader only logs a warning). Here a
submission is collected only when the folder and everything in it belong to the Unix user it
names, hold only folders and regular files (no links, which would make the instructor's copy read
files the student cannot), and stay within a size and file-count limit. Anything else is refused,
reported (`exchange-report.jsonl` in the course folder, and the log), and never replaces a genuine
submission: the newest *genuine* submission of each student is the one collected.

The copy itself re-checks each file as it opens it (O_NOFOLLOW, fstat), so a student cannot swap a
checked file for a link in between, and it lands in a temporary folder that replaces the
collected submission only when complete: an instructor never loses a submission to a refused one.

    c.ExchangeFactory.collect = "coursehub.collect.HardenedCollect"     # nbgrader_config.py
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.exchange.default.collect import ExchangeCollect
from traitlets import Int, Unicode

from .owners import user_name

REPORT = "exchange-report.jsonl"
REPORT_CAP = 200


class Refused(Exception):
    """A submission that is not collected; the message says why."""


def owner_uid(student: str) -> int | None:
    try:
        return pwd.getpwnam(student).pw_uid
    except KeyError:
        return None


MAX_DEPTH = 16          # folders within folders; the homework's own submission has none


def check_tree(path: Path, uid: int, max_bytes: int, max_files: int) -> None:
    """Refused unless `path` and everything under it are folders and regular files owned by `uid`,
    within the limits (folders count as files). Links are not followed."""
    total, files = 0, 0
    top = len(path.parts)
    for root, dirs, names in os.walk(path, followlinks=False):
        if len(Path(root).parts) - top > MAX_DEPTH:
            raise Refused(f"folders nested more than {MAX_DEPTH} deep")
        for name in [*dirs, *names, None]:
            entry = Path(root) if name is None else Path(root) / name
            st = os.lstat(entry)
            if st.st_uid != uid:
                raise Refused(f"{entry} belongs to {user_name(st.st_uid)}, not to the student it names")
            if stat.S_ISLNK(st.st_mode):
                raise Refused(f"{entry} is a link")
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                raise Refused(f"{entry} is neither a folder nor a regular file")
            if name is not None:
                files += 1
                total += st.st_size if stat.S_ISREG(st.st_mode) else 0
        if files > max_files:
            raise Refused(f"more than {max_files} files and folders")
        if total > max_bytes:
            raise Refused(f"more than {max_bytes // 2**20} MB")


def copy_tree(src: Path, dest: Path, uid: int, max_bytes: int, depth: int = 0) -> int:
    """Copy `src` into the new folder `dest`, opening each file without following links and checking
    what was opened (a regular file of `uid`), and copying exactly the size seen then: nothing
    swapped in or grown after `check_tree` passes is collected. Returns the bytes copied."""
    if depth > MAX_DEPTH:
        raise Refused(f"folders nested more than {MAX_DEPTH} deep")
    dest.mkdir()
    total = 0
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        target = dest / entry.name
        if entry.is_dir(follow_symlinks=False):
            st = entry.stat(follow_symlinks=False)
            if st.st_uid != uid:
                raise Refused(f"{entry.path} belongs to {user_name(st.st_uid)}")
            total += copy_tree(Path(entry.path), target, uid, max_bytes - total, depth + 1)
            continue
        fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_uid != uid:
                raise Refused(f"{entry.path} changed while it was collected")
            total += st.st_size
            if total > max_bytes:
                raise Refused(f"more than {max_bytes // 2**20} MB")
            with os.fdopen(fd, "rb", closefd=False) as source, open(target, "xb") as out:
                left = st.st_size
                while left:
                    block = source.read(min(left, 2**20))
                    if not block:
                        raise Refused(f"{entry.path} shrank while it was collected")
                    out.write(block)
                    left -= len(block)
                if source.read(1):
                    raise Refused(f"{entry.path} grew while it was collected")
        finally:
            os.close(fd)
    return total


class HardenedCollect(ExchangeCollect):
    max_megabytes = Int(50, help="The largest submission collected, in MB (the homework's own is "
                                 "about 2 MB with its trained model)").tag(config=True)
    max_files = Int(200, help="The most files a submission may hold").tag(config=True)
    report_file = Unicode("", help="Where refused submissions are reported (JSON lines); default: "
                                   f"{REPORT} in the course folder").tag(config=True)

    def report(self, record: dict, why: str) -> None:
        self._reported = getattr(self, "_reported", 0) + 1
        if self._reported > REPORT_CAP:              # a flood of forgeries buries nothing: counted once
            return
        if self._reported == REPORT_CAP:
            record, why = {"username": "*", "filename": "*"}, (
                f"{REPORT_CAP} refusals in this collect already: further ones in this run are not listed")
        path = Path(self.report_file or Path(self.coursedir.root) / REPORT)
        entry = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 "assignment": self.coursedir.assignment_id, "claimed_student": record["username"],
                 "submission": record["filename"], "refused": why}
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.log.error("Refused submission %s (claims to be %s's): %s", record["filename"],
                       record["username"], why)

    def genuine(self, record: dict) -> bool:
        uid = owner_uid(record["username"])
        try:
            if uid is None:
                raise Refused(f"there is no user {record['username']!r} on this machine")
            check_tree(Path(self.inbound_path) / record["filename"], uid,
                       self.max_megabytes * 2**20, self.max_files)
        except Refused as why:
            self.report(record, str(why))
            return False
        except Exception as err:                          # whatever it is, it is this submission's
            self.report(record, f"unreadable: {type(err).__name__}: {err}")
            return False
        return True

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        student = self.coursedir.student_id if self.coursedir.student_id else "*"
        names = [p.name for p in Path(self.inbound_path).glob(f"{student}+{self.coursedir.assignment_id}+*")]
        records = []
        for name in sorted(names):
            try:
                records.append(self._path_to_record(name))
            except Exception as err:                      # a name nbgrader cannot read: that one only
                self.report({"username": name.split("+", 1)[0], "filename": name},
                            f"a name that is not nbgrader's (student+assignment+time+random): {err}")
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                duedate = gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                duedate = None
        self.src_records = []
        for student_id in sorted({r["username"] for r in records}):
            mine = self._sort_by_timestamp([r for r in records if r["username"] == student_id])
            mine = [r for r in mine if self.genuine(r)]           # every forged one is reported
            if duedate is not None and self.before_duedate:
                mine = [r for r in mine if r["timestamp"] <= duedate] or mine
            if mine:
                self.src_records.append(mine[0])

    def copy_files(self):
        if not self.src_records:
            self.log.warning("No submissions of '%s' for course '%s' to collect",
                             self.coursedir.assignment_id, self.coursedir.course_id)
        for rec in self.src_records:
            student_id = rec["username"]
            src = os.path.join(self.inbound_path, rec["filename"])
            dest = self.coursedir.format_path(self.coursedir.submitted_directory, student_id,
                                              self.coursedir.assignment_id)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if os.path.isdir(dest):
                existing = self.coursedir.get_existing_timestamp(dest)
                newer = existing is None or rec["timestamp"] > existing
                if not ((self.update and newer) or (self.before_duedate and existing != rec["timestamp"])):
                    self.log.info("No newer submission to collect: %s %s", student_id,
                                  self.coursedir.assignment_id)
                    continue
            self.log.info("Collecting submission: %s %s", student_id, self.coursedir.assignment_id)
            self.do_copy(src, dest)

    def do_copy(self, src, dest):
        """The checked copy, into a temporary folder that replaces `dest` only when complete."""
        dest = Path(dest)
        record = {"username": dest.parent.name, "filename": Path(src).name}
        staging = Path(tempfile.mkdtemp(prefix=".collecting-", dir=dest.parent))
        try:
            copy_tree(Path(src), staging / "copy", owner_uid(record["username"]),
                      self.max_megabytes * 2**20)
        except Exception as why:                          # Refused, OSError, or anything odd
            subprocess.run(["rm", "-rf", "--", str(staging)], check=False)   # any depth, unlike rmtree
            self.report(record, str(why) if isinstance(why, Refused) else f"{type(why).__name__}: {why}")
            return
        if dest.exists():
            shutil.rmtree(dest)
        (staging / "copy").rename(dest)
        shutil.rmtree(staging, ignore_errors=True)
