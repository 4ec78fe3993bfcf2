"""Prepare a server for the course hub, as root: `python -m coursehub.setup hub/course.toml`.

What it makes (all under the class file's `paths.prefix`, default /srv/infogan-course):

    prefix/            root        0755
      run/             root        0700  the hub's database, cookie secret and pid files
      jupyter/         root        0755  every person's Jupyter settings (JUPYTER_CONFIG_PATH): nbgrader's
                                         exchange, course and hub groups; JupyterLab with the Assignments
                                         tab, without the instructor's tools (student_jupyter_config)
      exchange/        root        1777  nbgrader's exchange, its course folders made in advance
                                         (coursehub.layout: no student can make them first), on a
                                         file system of its own (limits.exchange)
      disks/           root        0700  the images of the exchange and of each home (limits.disk;
                                         coursehub.disks)
      course/          instructor  0700  the instructor's course folder: solutions/, the gradebook,
                                         .grading/seed, submitted/ — nobody else can read it

Every person's home is made private (0700: Debian's useradd leaves homes readable by all, where a
student could read another's fetched homework). The command line also makes the instructor-only parts
of the kit's own folder private (`protect_kit`: solutions/, .grading/, the gradebook, grades), since the
students' servers run from this folder's environment. Missing accounts are created only with
`create_users = true`. Running it again is safe: it checks what is there and fixes modes.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

from .course import Course, CourseError
from .disks import available, home_image, make_image, mount_image
from .layout import make_exchange
from .owners import KIT, copy_from_kit, give

COURSE_FILES = ("nbgrader_config.py", "solutions", "assignments", "grading", "coursehub", "Makefile",
                "INSTRUCTORS.md")

STUDENT_CONFIG = '''"""nbgrader for the students and instructors of the course hub (written by coursehub.setup)."""
from nbgrader.auth import JupyterHubAuthPlugin

c = get_config()  # noqa: F821
c.Exchange.root = {exchange!r}
c.Exchange.path_includes_course = True
c.CourseDirectory.course_id = {course_id!r}
c.Authenticator.plugin_class = JupyterHubAuthPlugin
'''


# The instructor's nbgrader tools, left out of every person's JupyterLab on the hub: the instructors
# grade through the formgrader service (its own server, in the course folder). The Assignments tab
# (fetch, submit, fetch feedback) and Validate stay. This tidies the students' view; it is not what
# protects the course: a student who turns formgrader back on in their own ~/.jupyter gets a
# formgrader over their own files, with their own rights.
SERVER_EXTENSIONS_OFF = '''"""JupyterLab on the course hub (written by coursehub.setup): nbgrader's instructor tools are off."""
c = get_config()  # noqa: F821
c.ServerApp.jpserver_extensions.update({
    "nbgrader.server_extensions.formgrader": False,
    "nbgrader.server_extensions.course_list": False,
})
'''
LAB_PLUGINS_OFF = {"disabledExtensions": {
    "@jupyter/nbgrader:formgrader": True,
    "@jupyter/nbgrader:create-assignment": True,
    "@jupyter/nbgrader:course-list": True,
    "@jupyterlab/apputils-extension:announcements": True,
}}


HUB_COURSE_CONFIG = """
# ---- this copy is the course hub's course folder (written by coursehub.setup) ----
c.CourseDirectory.course_id = {course_id!r}
c.Exchange.root = {exchange!r}
from nbgrader.auth import JupyterHubAuthPlugin  # noqa: E402
c.Authenticator.plugin_class = JupyterHubAuthPlugin
"""


def ensure_users(course: Course) -> list[str]:
    """The people's accounts, created when asked; their homes made private. Returns those created."""
    created, missing = [], []
    for name in course.people:
        try:
            pwd.getpwnam(name)
        except KeyError:
            if not course.create_users:
                missing.append(name)
                continue
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
            created.append(name)
    if missing:
        raise CourseError(f"no Unix account for {missing}: create them (useradd -m NAME; passwd NAME), "
                          "or set create_users = true in the course file")
    for name in course.people:
        home = Path(pwd.getpwnam(name).pw_dir)
        if home.is_dir():
            home.chmod(0o700)
    return created


def disks(course: Course) -> list[str]:
    """Each home and the exchange on a file system of its own (`coursehub.disks`), made the first
    time, mounted when not mounted; returns what it did, or why it could not."""
    why = available()
    if why and (course.disk_bytes() or course.exchange_bytes()):
        return [f"homes and the exchange stay on the machine's disk, without size limits: {why}"]
    folder = course.prefix / "disks"
    _folder(folder, 0o700)
    done = []
    if course.exchange_bytes():
        image = folder / "exchange.img"
        if make_image(image, course.exchange_bytes(), 0, 0, 0o1777, seed=course.exchange):
            done.append(f"exchange: {course.exchange_bytes() // 2**20} MB")
        if mount_image(image, course.exchange):
            done.append(f"mounted {course.exchange}")
    if course.disk_bytes():
        for name in course.people:
            user = pwd.getpwnam(name)
            image = home_image(folder, name)
            if make_image(image, course.disk_bytes(), user.pw_uid, user.pw_gid, 0o700, seed=Path(user.pw_dir)):
                done.append(f"{name}'s home: {course.disk_bytes() // 2**20} MB")
            if mount_image(image, Path(user.pw_dir)):
                done.append(f"mounted {user.pw_dir}")
    return done


def _folder(path: Path, mode: int, owner: str = "root") -> None:
    user = pwd.getpwnam(owner)
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(mode)


def course_folder(course: Course) -> Path:
    """The instructor's course folder, a copy of the kit's course files on first run; private."""
    folder = course.course_dir
    owner = pwd.getpwnam(course.instructor)
    if not folder.exists():
        folder.mkdir(parents=True)
        copy_from_kit(COURSE_FILES, folder)
        with open(folder / "nbgrader_config.py", "a") as f:
            f.write(HUB_COURSE_CONFIG.format(exchange=str(course.exchange), course_id=course.course_id))
    give(folder, owner)
    folder.chmod(0o700)
    return folder


# .git holds every version of solutions/; tests/ and harness/ read and grade them
PRIVATE = ("solutions", ".git", "tests", "harness", ".grading", "gradebook.db", "submitted", "autograded",
           "feedback", "grades.csv", "grades-by-cell.csv", "grading-report.md", "exchange-report.jsonl")


def protect_kit(kit: Path = KIT) -> list[Path]:
    """Make the instructor-only parts of the kit's own folder readable by its owner alone: the
    students' servers run from this folder's environment, and a clone is readable by everyone."""
    changed = []
    for name in PRIVATE:
        path = Path(kit) / name
        if path.exists() and not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)
            changed.append(path)
    return changed


def student_jupyter_config(course: Course) -> Path:
    """<prefix>/jupyter, first on every person's JUPYTER_CONFIG_PATH: nbgrader's exchange and course,
    and JupyterLab without the instructor's tools. Root's, readable by all, written by nobody else."""
    folder = course.prefix / "jupyter"
    _folder(folder, 0o755)
    _folder(folder / "labconfig", 0o755)
    (folder / "nbgrader_config.py").write_text(
        STUDENT_CONFIG.format(exchange=str(course.exchange), course_id=course.course_id))
    (folder / "jupyter_server_config.py").write_text(SERVER_EXTENSIONS_OFF)
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(LAB_PLUGINS_OFF, indent=2) + "\n")
    return folder


def data_folder(course: Course) -> str | None:
    """The data folder, read-only for everyone but its owner (root or an instructor): a student who
    could write there could swap MNIST for their own digits under everyone's lessons and grading.
    Made (empty) if missing; returns a note when MNIST is not in it yet."""
    folder = course.data_dir
    if not folder.exists():
        _folder(folder, 0o755)
    st = folder.stat()
    owner = pwd.getpwuid(st.st_uid).pw_name if st.st_uid else "root"
    if owner in course.students:
        raise CourseError(f"{folder} belongs to the student {owner}: give it to root "
                          f"(chown -R root: {folder}) or choose another paths.data")
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink() and path.stat().st_mode & 0o022:
            path.chmod(path.stat().st_mode & ~0o022)
    if not (folder / "MNIST").exists():
        return (f"{folder} has no MNIST yet: copy MNIST/ (and FashionMNIST/) there in torchvision's layout, "
                "or, online, as root: INFOGAN_DATA=" + str(folder) + " .venv/bin/python -c \"from infogan_lib.data "
                "import load_images; load_images('mnist'); load_images('fashion-mnist')\"")
    return None


def setup(course: Course) -> dict:
    if os.geteuid() != 0:
        raise CourseError("run as root: it creates folders for the instructor and the students")
    created = ensure_users(course)
    _folder(course.prefix, 0o755)
    _folder(course.run_dir, 0o700)
    student_jupyter_config(course)
    data_note = data_folder(course)
    _folder(course.exchange, 0o1777)
    mounted = disks(course)
    _folder(course.exchange, 0o1777)
    make_exchange(course.exchange, course.course_id, course.instructor)
    course_folder(course)
    return {"created_users": created, "prefix": str(course.prefix), "disks": mounted, "data": data_note}


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "hub/course.toml"
    try:
        done = setup(Course.load(path))
    except CourseError as err:
        raise SystemExit(f"error: {err}") from None
    hidden = protect_kit()
    print(f"course hub prepared in {done['prefix']}; accounts created: {done['created_users'] or 'none'}; "
          f"disks: {'; '.join(done['disks']) or 'as before'}; "
          f"made private in the kit's folder: {', '.join(p.name for p in hidden) or 'nothing to hide'}")
    if done["data"]:
        print("note:", done["data"])


if __name__ == "__main__":
    main()
