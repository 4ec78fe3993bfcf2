"""The exchange's guard: no student fills the exchange for the others.

The exchange is a file system of its own (`coursehub.disks`), so it cannot fill the machine's disk;
but every student writes into it, and one could fill it and leave the others unable to submit. The
hub runs this guard as a service, as root, and every `interval` seconds it looks at what each
student owns in the exchange:

- a submission folder in inbound over the collect's bounds (`HardenedCollect.max_megabytes`,
  `max_files`): collect would refuse it anyway; it is removed;
- a student's submissions together over `budget_submissions` of those bounds: the oldest are removed,
  never the newest one within the bounds (the one collect takes);
- anything a student made anywhere else in the exchange (its top folder, a course's folders): removed.

Each removal is written to `exchange-guard.jsonl` in the instructor's course folder and the hub's log,
and, when the exchange is more than half full, the student's server is stopped (through the
hub's API), which ends the process that was writing. Nothing of another student is touched, and nothing a student needs is removed: a student
whose server was stopped logs in again and finds their files.

    python -m coursehub.guard hub/course.toml [--once]
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .collect import MAX_DEPTH
from .course import Course

log = logging.getLogger("coursehub.guard")
REPORT = "exchange-guard.jsonl"


def measure(path: Path, stop_bytes: int, stop_files: int) -> tuple[int, int]:
    """(bytes, files) under `path`, counting until either passes its stop; links not followed."""
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        return st.st_blocks * 512, 1
    total, files = 0, 0
    top = len(path.parts)
    for root, dirs, names in os.walk(path, followlinks=False):
        if len(Path(root).parts) - top > MAX_DEPTH:        # deeper than collect takes: over its bounds
            return stop_bytes + 1, stop_files + 1
        for name in [*dirs, *names]:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            total, files = total + st.st_blocks * 512, files + 1
        if total > stop_bytes or files > stop_files:
            break
    return total, files


class Guard:
    def __init__(self, course: Course, max_bytes: int = 50 * 2**20, max_files: int = 200,
                 budget_submissions: int = 10):
        self.course = course
        self.max_bytes, self.max_files = max_bytes, max_files
        self.budget = budget_submissions * max_bytes
        self.students = {pwd.getpwnam(n).pw_uid: n for n in course.students if _exists(n)}

    def sweep(self) -> list[dict]:
        """One look at the exchange; returns what was removed."""
        removed = []
        root = self.course.exchange
        course = root / self.course.course_id
        inbound = course / "inbound"
        for folder in (root, course, course / "outbound", course / "feedback"):
            for entry in _entries(folder):
                owner = self._student(entry)
                if owner and entry != course:
                    removed.append(self._remove(entry, owner, "made outside inbound"))
        mine: dict[str, list[tuple[float, Path, int]]] = {}
        for entry in _entries(inbound):
            owner = self._student(entry)
            if not owner:
                continue
            size, files = measure(entry, self.max_bytes, self.max_files)
            if size > self.max_bytes or files > self.max_files or not entry.is_dir():
                removed.append(self._remove(entry, owner, f"a submission over {self.max_bytes // 2**20} MB "
                                                         f"or {self.max_files} files, or not a folder"))
                continue
            mine.setdefault(owner, []).append((os.lstat(entry).st_mtime, entry, size))
        for owner, subs in mine.items():
            subs.sort(reverse=True)                       # newest first: the newest is always kept
            total = sum(size for _, _, size in subs)
            for _, entry, size in subs[1:][::-1]:         # the oldest go first
                if total <= self.budget:
                    break
                removed.append(self._remove(entry, owner, f"submissions over {self.budget // 2**20} MB in all"))
                total -= size
        size, free = _space(root)
        if removed and free < size / 2:                 # a fill in progress, not a mistaken upload
            for owner in sorted({r["student"] for r in removed}):
                self._stop_server(owner)
        return removed

    def _student(self, entry: Path) -> str | None:
        try:
            return self.students.get(os.lstat(entry).st_uid)
        except FileNotFoundError:
            return None

    def _remove(self, entry: Path, owner: str, why: str) -> dict:
        subprocess.run(["rm", "-rf", "--", str(entry)], check=False)   # any depth; links not followed
        record = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "student": owner, "removed": str(entry), "why": why}
        log.error("exchange guard: removed %s of %s: %s", entry, owner, why)
        report = self.course.course_dir / REPORT
        with open(report, "a") as f:
            f.write(json.dumps(record) + "\n")
        instructor = pwd.getpwnam(self.course.instructor)
        os.chown(report, instructor.pw_uid, instructor.pw_gid)
        return record

    def _stop_server(self, name: str) -> None:
        api, token = os.environ.get("JUPYTERHUB_API_URL"), os.environ.get("JUPYTERHUB_API_TOKEN")
        if not (api and token):
            return
        request = urllib.request.Request(f"{api}/users/{name}/server", method="DELETE",
                                         headers={"Authorization": f"token {token}"})
        try:
            urllib.request.urlopen(request, timeout=30).close()
        except OSError as err:                          # no server running: nothing to stop
            log.warning("exchange guard: stopping %s's server: %s", name, err)


def _space(path: Path) -> tuple[int, int]:
    usage = shutil.disk_usage(path)
    return usage.total, usage.free


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _entries(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m coursehub.guard", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("course_file")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two looks")
    p.add_argument("--once", action="store_true", help="look once and print what was removed")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s %(asctime)s guard] %(message)s",
                        stream=sys.stderr)
    guard = Guard(Course.load(a.course_file))
    while True:
        try:
            removed = guard.sweep()
        except Exception:                               # the guard keeps guarding
            log.exception("exchange guard: a sweep failed")
            removed = []
        if a.once:
            print(json.dumps(removed, indent=1))
            return
        time.sleep(a.interval)


if __name__ == "__main__":
    main()
