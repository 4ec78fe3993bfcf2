"""The exchange's folders, made by root before anyone uses them, with modes no student can abuse.

nbgrader's file exchange (`Exchange.root`) is a shared folder; its own defaults let the first user
create whatever is missing, which lets a student create a course's folders before the instructor
does and then serve classmates their own "assignment". Here root makes every folder in advance:

    root/                         root         1777  anyone may pass and create; nobody removes another's
      <course>/                   instructor   0755  the course: only the instructor writes
        outbound/                 instructor   0755  released assignments: students read and fetch
        inbound/                  instructor   3733  submissions: students create, cannot list, cannot
                                                     remove or rename another's (sticky); setgid keeps
                                                     the instructor's group on them
        feedback/                 instructor   0711  feedback: a student reads only the file whose name
                                                     (a hash of their own submission's secret) they know

A submission folder's name ends in 72 random bits (nbgrader's `add_random_string`), so a student
who cannot list inbound cannot find another's submission; `coursehub.collect` refuses one that
claims another student's name.
"""

from __future__ import annotations

import grp
import logging
import os
import pwd
import shutil
import stat
from pathlib import Path

from .owners import user_name

log = logging.getLogger(__name__)

MODES = {"": 0o1777, "{course}": 0o755, "{course}/outbound": 0o755,
         "{course}/inbound": 0o3733, "{course}/feedback": 0o711}


class LayoutError(RuntimeError):
    """An exchange folder that exists with another owner or mode than the layout's."""


def make_exchange(root: str | os.PathLike, course_id: str, instructor: str, fix: bool = False) -> list[Path]:
    """Make (as root) the exchange folders of `course_id` for `instructor`; returns them.

    An existing folder must already have the layout's owner and mode, or LayoutError names it (a
    student may have made it first); `fix=True` takes it back instead (chown, chmod) and removes
    what others put in the instructor's folders (inbound's submissions stay: collect checks them)."""
    owner = pwd.getpwnam(instructor)
    made = []
    for relative, mode in MODES.items():
        path = Path(root) / relative.format(course=course_id)
        uid, gid = (0, 0) if relative == "" else (owner.pw_uid, owner.pw_gid)
        if not path.exists():
            path.mkdir(parents=False)
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        st = os.lstat(path)
        wrong = stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != uid \
            or stat.S_IMODE(st.st_mode) != mode
        if wrong and fix and not stat.S_ISLNK(st.st_mode) and stat.S_ISDIR(st.st_mode):
            os.chown(path, uid, gid)
            os.chmod(path, mode)
        elif wrong:
            raise LayoutError(f"{path} exists as {_describe(st)}, not as a folder of "
                              f"{user_name(uid)} with mode {mode:o}: someone else made it. "
                              "Remove it, or pass fix=True (make hub HUB_FIX=1) to take it back.")
        if fix and relative not in ("", "{course}/inbound"):
            _remove_foreign(path, owner.pw_uid, keep=set(MODES))
        made.append(path)
    return made


def _remove_foreign(folder: Path, uid: int, keep: set[str]) -> None:
    """Remove the entries of `folder` that `uid` does not own (the layout's own folders excepted)."""
    for entry in folder.iterdir():
        st = os.lstat(entry)
        if st.st_uid == uid or entry.name in {k.rsplit("/", 1)[-1] for k in keep}:
            continue
        log.warning("removing %s (%s) from the instructor's exchange folder", entry, _describe(st))
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _describe(st: os.stat_result) -> str:
    user = user_name(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = f"gid {st.st_gid}"
    kind = "a link" if stat.S_ISLNK(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else "a file"
    return f"{kind} of {user}:{group} with mode {stat.S_IMODE(st.st_mode):o}"


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m coursehub.layout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="the exchange folder (nbgrader's Exchange.root)")
    p.add_argument("course_id")
    p.add_argument("instructor", help="the Unix user who releases, collects and grades")
    p.add_argument("--fix", action="store_true", help="take back folders someone else made first")
    a = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the folders are made for the instructor and the students")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        for path in make_exchange(a.root, a.course_id, a.instructor, a.fix):
            print(f"{path}  {stat.S_IMODE(os.stat(path).st_mode):o}")
    except (LayoutError, KeyError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
