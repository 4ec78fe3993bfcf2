"""The exchange's guard: no student fills the exchange for the others.

The exchange is a file system of its own (`coursehub.disks`), so it cannot fill the machine's disk;
but every student writes into it, and one could fill it and leave the others unable to submit. The
hub runs this guard as a service, as root, and every `interval` seconds it looks at what each
student owns in the exchange (every folder and file counts, at least one block each):

- a submission folder in inbound over the collect's bounds (`HardenedCollect.max_megabytes`,
  `max_files`), or anything in inbound that is not a folder: collect would refuse it anyway; removed;
- a student's submissions beyond the newest `keep`, or together over their share of the exchange
  (`budget`: at most half of it split among the class, and no more than `keep` full submissions): the
  oldest are removed, never the newest one within the bounds (the one collect takes);
- anything a student made anywhere else in the exchange (its top folder, a course's folders): removed;
- when the exchange's bytes or inodes are short (under a quarter free), files deleted but still open
  on it (space no name shows) are found through /proc, and the process holding one is killed.

A submission folder left writable by others (nbgrader makes them 0777) is made 0755, so nobody but its
owner adds to it. Each removal or kill is written to `exchange-guard.jsonl` in <prefix>/reports
(root's, readable by the instructor's group) and the hub's log, and when the exchange is short, the
student's server is stopped (through the hub's API), which ends whatever was writing. Nothing of
another student is touched; a student whose server was stopped logs in again and finds their files.

    python -m coursehub.guard hub/course.toml [--once]
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from .collect import MAX_DEPTH, owner_uid
from .course import Course

log = logging.getLogger("coursehub.guard")
REPORT = "exchange-guard.jsonl"
BLOCK = 4096
REPORTED = 20             # report lines a student in one sweep; then a count


def measure(path: Path, stop_bytes: int, stop_files: int) -> tuple[int, int]:
    """(bytes, entries) of `path` and everything under it, each entry at least one 4 KB block (an empty
    folder costs an inode and a block), counting until either passes its stop; links not followed."""
    st = os.lstat(path)
    total, files = max(st.st_blocks * 512, BLOCK), 1
    if not stat.S_ISDIR(st.st_mode):
        return total, files
    top = len(path.parts)
    for root, dirs, names in os.walk(path, followlinks=False):
        if len(Path(root).parts) - top > MAX_DEPTH:        # deeper than collect takes: over its bounds
            return stop_bytes + 1, stop_files + 1
        for name in [*dirs, *names]:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            total, files = total + max(st.st_blocks * 512, BLOCK), files + 1
        if total > stop_bytes or files > stop_files:
            break
    return total, files


class Guard:
    def __init__(self, course: Course, max_bytes: int = 50 * 2**20, max_files: int = 200, keep: int = 20):
        self.course = course
        self.max_bytes, self.max_files, self.keep = max_bytes, max_files, keep
        self.students = {uid: n for n in course.students if (uid := owner_uid(n)) is not None}
        size, _ = _space(course.exchange)
        self.budget = min(keep * max_bytes, size // (2 * max(len(self.students), 1)))
        self.reports = reports_folder(course)

    def sweep(self) -> list[dict]:
        """One look at the exchange; returns what was removed or killed."""
        doomed: list[tuple[Path, str, str]] = []               # (entry, student, why)
        root = self.course.exchange
        course = root / self.course.course_id
        inbound = course / "inbound"
        for folder in (root, course, course / "outbound", course / "feedback"):
            for entry in _entries(folder):
                owner = self._student(entry)
                if owner and entry != course:
                    doomed.append((entry, owner, "made outside inbound"))
        mine: dict[str, list[tuple[float, Path, int]]] = {}
        for entry in _entries(inbound):
            owner = self._student(entry)
            if not owner:
                continue
            try:
                st = os.lstat(entry)
                size, files = measure(entry, self.max_bytes, self.max_files)
            except FileNotFoundError:
                continue
            if size > self.max_bytes or files > self.max_files or not stat.S_ISDIR(st.st_mode):
                doomed.append((entry, owner, f"a submission over {self.max_bytes // 2**20} MB or "
                                             f"{self.max_files} files, or not a folder"))
                continue
            _no_others_write(entry)
            mine.setdefault(owner, []).append((st.st_mtime, entry, size))
        for owner, subs in mine.items():
            subs.sort(reverse=True)                       # newest first: the newest is always kept
            total = sum(size for _, _, size in subs)
            for rank, (_, entry, size) in reversed(list(enumerate(subs))):   # the oldest go first
                if rank == 0 or (rank < self.keep and total <= self.budget):
                    break
                doomed.append((entry, owner, f"more than {self.keep} submissions or "
                                             f"{self.budget // 2**20} MB in all"))
                total -= size
        removed = self._remove(doomed)
        if self._short():
            removed += self._kill_hidden_writers()
            for owner in sorted({r["student"] for r in removed}):
                self._stop_server(owner)
        return removed

    def _short(self) -> bool:
        vfs = os.statvfs(self.course.exchange)
        return vfs.f_bavail < vfs.f_blocks / 4 or vfs.f_favail < vfs.f_files / 4

    def _kill_hidden_writers(self) -> list[dict]:
        """Processes of students holding a file on the exchange that no longer has a name."""
        device, killed = os.stat(self.course.exchange).st_dev, []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                owner = self.students.get(proc.stat().st_uid)
                if owner is None:
                    continue
                for fd in (proc / "fd").iterdir():
                    st = os.stat(fd)
                    if st.st_dev == device and st.st_nlink == 0 and st.st_blocks:
                        os.kill(int(proc.name), signal.SIGKILL)
                        killed.append(self._record(owner, f"process {proc.name}", "held a deleted file open "
                                                   f"on the exchange ({st.st_blocks * 512 // 2**20} MB); killed"))
                        break
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
        return killed

    def _student(self, entry: Path) -> str | None:
        try:
            return self.students.get(os.lstat(entry).st_uid)
        except FileNotFoundError:
            return None

    def _remove(self, doomed: list[tuple[Path, str, str]]) -> list[dict]:
        """Remove the entries (any depth, links not followed, a thousand to one `rm`); report each, up to
        REPORTED a student in one sweep, then one line with how many more."""
        for start in range(0, len(doomed), 1000):
            subprocess.run(["rm", "-rf", "--", *(str(e) for e, _, _ in doomed[start:start + 1000])], check=False)
        records, count = [], {}
        for entry, owner, why in doomed:
            count[owner] = count.get(owner, 0) + 1
            if count[owner] <= REPORTED:
                records.append(self._record(owner, str(entry), why))
        for owner, n in count.items():
            if n > REPORTED:
                records.append(self._record(owner, f"{n - REPORTED} more entries", "removed in the same sweep"))
        return records

    def _record(self, owner: str, what: str, why: str) -> dict:
        record = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  "student": owner, "removed": what, "why": why}
        log.error("exchange guard: %s of %s: %s", what, owner, why)
        # root's own folder, opened without following links: nobody can point the report elsewhere
        fd = os.open(self.reports / REPORT, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o640)
        with os.fdopen(fd, "a") as f:
            f.write(json.dumps(record) + "\n")
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


def reports_folder(course: Course) -> Path:
    """<prefix>/reports: root's, readable by the first instructor's group, where the guard writes."""
    folder = course.prefix / "reports"
    folder.mkdir(exist_ok=True)
    gid = pwd.getpwnam(course.instructor).pw_gid
    os.chown(folder, 0, gid, follow_symlinks=False)
    os.chmod(folder, 0o750)
    return folder


def _no_others_write(entry: Path) -> None:
    """A student's submission folder writable by no one else (nbgrader's submit leaves them 0777)."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY)
    except OSError:
        return
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o022:
            os.fchmod(fd, mode & ~0o022)
    finally:
        os.close(fd)


def _space(path: Path) -> tuple[int, int]:
    usage = shutil.disk_usage(path)
    return usage.total, usage.free


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
    hub = os.getppid()
    while True:
        if not a.once and os.getppid() != hub:          # the hub is gone: so is what it guarded
            log.warning("exchange guard: the hub (pid %d) has stopped; so does the guard", hub)
            return
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
