"""The class, as an instructor writes it down: `hub/course.toml` (see `hub/course.example.toml`).

    course = Course.load("hub/course.toml")       # CourseError names what is wrong and how to fix it
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

AUTHENTICATORS = ("pam", "dummy")      # others (LTI, OAuth) are set in jupyterhub_config.py itself
NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def _size(name: str, text: str, zero: bool = False) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    raw, text = text, str(text).strip().upper()
    if zero and text == "0":
        return 0
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit() and float(text[:-1]) > 0:
        return int(float(text[:-1]) * units[text[-1]])
    raise CourseError(f"limits.{name} = {raw!r} is not a size: write e.g. \"3G\" or \"1500M\""
                      + (" (or \"0\" for no limit)" if zero else ""))


class CourseError(ValueError):
    """A course file that cannot be used; the message names the field and the fix."""


@dataclass
class Course:
    course_id: str
    instructors: list[str]
    students: list[str]
    authenticator: str = "pam"
    prefix: Path = Path("/srv/infogan-course")
    data: Path | None = None
    memory: str = "3G"
    disk: str = "2G"
    exchange_disk: str = "5G"
    tmp: str = "1G"
    processes: int = 512
    cpus: float = 0.0
    idle_minutes: int = 60
    ip: str = "127.0.0.1"
    port: int = 8000
    internal_port: int = 901
    create_users: bool = False
    source: Path | None = field(default=None, repr=False)

    @property
    def people(self) -> list[str]:
        return [*self.instructors, *self.students]

    @property
    def instructor(self) -> str:
        """The account that owns the course folder and the exchange's course folders."""
        return self.instructors[0]

    @property
    def exchange(self) -> Path:
        return self.prefix / "exchange"

    @property
    def course_dir(self) -> Path:
        return self.prefix / "course"

    @property
    def run_dir(self) -> Path:
        return self.prefix / "run"

    @property
    def data_dir(self) -> Path:
        return self.data or self.prefix / "data"

    def memory_bytes(self) -> int:
        return _size("memory", self.memory)

    def disk_bytes(self) -> int:
        """Each home's size (0: homes stay on the machine's disk, without a limit)."""
        return _size("disk", self.disk, zero=True)

    def exchange_bytes(self) -> int:
        """The exchange's size (0: it stays on the machine's disk, without a limit)."""
        return _size("exchange", self.exchange_disk, zero=True)

    def tmp_bytes(self) -> int:
        """Each server's private /tmp, /var/tmp and /dev/shm (0: the machine's shared ones)."""
        return _size("tmp", self.tmp, zero=True)

    @classmethod
    def load(cls, path: str | Path) -> "Course":
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise CourseError(f"{path} does not exist: copy hub/course.example.toml there and fill it in") from None
        except tomllib.TOMLDecodeError as err:
            raise CourseError(f"{path} is not valid TOML: {err}") from None
        limits, paths, hub = raw.get("limits", {}), raw.get("paths", {}), raw.get("hub", {})
        course = cls(course_id=str(raw.get("course_id", "")),
                     instructors=list(raw.get("instructors", [])), students=list(raw.get("students", [])),
                     authenticator=str(raw.get("authenticator", "pam")),
                     prefix=Path(paths.get("prefix", "/srv/infogan-course")),
                     data=Path(paths["data"]) if paths.get("data") else None,
                     memory=str(limits.get("memory", "3G")), disk=str(limits.get("disk", "2G")),
                     exchange_disk=str(limits.get("exchange", "5G")), tmp=str(limits.get("tmp", "1G")),
                     processes=int(limits.get("processes", 512)),
                     cpus=float(limits.get("cpus", 0.0)), idle_minutes=int(limits.get("idle_minutes", 60)),
                     ip=str(hub.get("ip", "127.0.0.1")), port=int(hub.get("port", 8000)),
                     internal_port=int(hub.get("internal_port", 901)),
                     create_users=bool(raw.get("create_users", False)), source=path)
        course.check()
        return course

    def check(self) -> None:
        where = self.source or "the course file"
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.course_id):
            raise CourseError(f"{where}: course_id {self.course_id!r} must be letters, digits, - or _")
        if not self.instructors:
            raise CourseError(f"{where}: list at least one instructor (instructors = [\"you\"])")
        bad = [n for n in self.people if not NAME.match(n)]
        if bad:
            raise CourseError(f"{where}: {bad} are not Unix user names (lower-case letters, digits, - "
                              "and _, starting with a letter)")
        both = sorted(set(self.instructors) & set(self.students))
        if both:
            raise CourseError(f"{where}: {both} are listed as instructors and as students: one role each")
        if len(set(self.people)) != len(self.people):
            raise CourseError(f"{where}: a name is listed twice")
        if self.authenticator not in AUTHENTICATORS:
            raise CourseError(f"{where}: authenticator {self.authenticator!r}: choose one of {AUTHENTICATORS} "
                              "(for LTI or OAuth, set c.JupyterHub.authenticator_class in "
                              "hub/jupyterhub_config.py; INSTRUCTORS.md)")
        if not self.prefix.is_absolute():
            raise CourseError(f"{where}: paths.prefix {str(self.prefix)!r} must be an absolute path")
        hidden = [t for t in ("/tmp", "/var/tmp", "/dev/shm") if self.tmp_bytes() and
                  any(p == Path(t) or Path(t) in p.parents for p in (self.prefix, self.data_dir))]
        if hidden:
            raise CourseError(f"{where}: paths.prefix and paths.data must not be under {hidden[0]}: each "
                              "person's server has a private one (limits.tmp), where they would not be "
                              "seen. Use e.g. /srv/infogan-course")
        if not 1 <= self.port <= 65535:
            raise CourseError(f"{where}: hub.port = {self.port}: a port from 1 to 65535")
        if not 1 <= self.internal_port <= 1021:
            raise CourseError(f"{where}: hub.internal_port = {self.internal_port}: a privileged port (1 to "
                              "1021; it and the next two), so that no student can listen on them")
        self.memory_bytes(), self.disk_bytes(), self.exchange_bytes(), self.tmp_bytes()
