"""A control group per graded student: limits the kernel enforces, which no process can step around.

`prlimit` bounds each process of the sandbox on its own; a student with a shell can still add up
many processes, hold memory in memfds or tmpfs files that belong to no process, or starve an honest
student graded beside it. A cgroup counts all of it: every process the kernel starts joins it
before it runs a line of student code (grading/sandbox.py's launcher), and

- memory: RAM, tmpfs pages (the sandbox's home folder is a tmpfs), memfds and the page cache of what
  it writes, with no swap to spill into; past the limit the kernel's OOM killer ends the sandbox;
- pids: processes and threads;
- cpu: at most `cpus` cores' worth of time, whatever the number of busy processes.

Both cgroup layouts are handled: v2 (one tree; systemd machines since 2021) and v1 (one tree per
controller). Creating cgroups needs root (or a delegated subtree): without them `available()` says
why, and the sandbox falls back to per-process limits plus a polling watchdog (INSTRUCTORS.md says
what that leaves open).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
PARENT = "infogan-grading"                 # the folder our cgroups are made in


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, options) of the cgroup file systems."""
    out = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                out.append((parts[1], parts[2], set(parts[3].split(","))))
    return out


def _own() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under '' its v2 path; for a process
    already inside one of ours (a grading job), the path above ours, so that no cgroup of ours
    is made inside another (a child's memory would count in its parent's)."""
    out = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            for name in (names.split(",") if names else [""]):
                out[name] = path.split(f"/{PARENT}/")[0] or "/"
    return out


def layout() -> tuple[str, dict[str, Path]] | tuple[None, str]:
    """('v2', {'': base}) or ('v1', {controller: base}) where our cgroups can go, or (None, why)."""
    if os.geteuid() != 0:
        return None, "cgroups need root (grade as root, or the limits are per process only)"
    mounts, own = _mounts(), _own()
    for point, kind, _ in mounts:
        if kind == "cgroup2" and (Path(point) / "cgroup.controllers").exists():
            have = set((Path(point) / "cgroup.controllers").read_text().split())
            if set(CONTROLLERS) <= have:
                return "v2", {"": Path(point + own.get("", "/"))}
    bases = {}
    for name in CONTROLLERS:
        for point, kind, opts in mounts:
            if kind == "cgroup" and name in opts:
                bases[name] = Path(point + own.get(name, "/"))
                break
    if set(bases) == set(CONTROLLERS):
        return "v1", bases
    return None, f"no cgroup hierarchy with the {', '.join(CONTROLLERS)} controllers is mounted"


def _write(path: Path, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


@dataclass
class Cgroup:
    """One student's cgroup (a folder per hierarchy); `create` makes it, `destroy` ends everything in it."""
    name: str
    memory_bytes: int
    processes: int | None = None           # None: no limit on processes
    cpus: float | None = None              # None: no CPU quota
    kind: str | None = None
    dirs: dict[str, Path] = field(default_factory=dict)
    parent: str = PARENT                   # the folder it is made in (the course hub uses its own)

    @classmethod
    def available(cls) -> str | None:
        """None when cgroups can be made here, else why not."""
        kind, bases = layout()
        if kind is None:
            return bases
        try:
            probe = cls("infogan-probe-%d" % os.getpid(), 2**30, 64, 1.0)
            probe.create()
            probe.destroy()
        except OSError as err:
            return f"cgroups cannot be created here ({err})"
        return None

    def create(self) -> "Cgroup":
        kind, bases = layout()
        if kind is None:
            raise OSError(bases)
        self.kind = kind
        period = 100_000
        if kind == "v2":
            base = bases[""]
            parent = base / self.parent
            parent.mkdir(exist_ok=True)
            with contextlib.suppress(OSError):         # the base may already delegate them
                _write(base / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))
            d = parent / self.name
            d.mkdir(exist_ok=True)
            self.dirs = {"": d}
            _write(d / "memory.max", self.memory_bytes)
            with contextlib.suppress(OSError):
                _write(d / "memory.swap.max", 0)
            if self.processes is not None:
                _write(d / "pids.max", self.processes)
            if self.cpus is not None:
                _write(d / "cpu.max", f"{int(self.cpus * period)} {period}")
        else:
            for name, base in bases.items():
                if (name == "pids" and self.processes is None) or (name == "cpu" and self.cpus is None):
                    continue
                d = base / self.parent / self.name
                d.mkdir(parents=True, exist_ok=True)
                self.dirs[name] = d
            mem = self.dirs["memory"]
            _write(mem / "memory.limit_in_bytes", self.memory_bytes)
            with contextlib.suppress(OSError):         # no swap accounting: no swap to fill
                _write(mem / "memory.memsw.limit_in_bytes", self.memory_bytes)
            if self.processes is not None:
                _write(self.dirs["pids"] / "pids.max", self.processes)
            if self.cpus is not None:
                _write(self.dirs["cpu"] / "cpu.cfs_period_us", period)
                _write(self.dirs["cpu"] / "cpu.cfs_quota_us", int(self.cpus * period))
        return self

    def procs_files(self) -> list[str]:
        """The files a process writes its pid to, to join (one per hierarchy)."""
        return [str(d / "cgroup.procs") for d in self.dirs.values()]

    def launcher(self) -> list[str]:
        """A command prefix that joins this cgroup, then runs the rest of the command line."""
        import shlex
        join = "".join(f"echo $$ > {shlex.quote(f)} || exit 111; " for f in self.procs_files())
        return ["/bin/sh", "-c", f'{join}exec "$@"', "cgroup"]

    def pids(self) -> list[int]:
        out = set()
        for path in self.procs_files():
            with contextlib.suppress(OSError, ValueError):
                out.update(int(p) for p in Path(path).read_text().split())
        return sorted(out)

    def memory_peak(self) -> int | None:
        d = self.dirs.get("memory") or self.dirs.get("")
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            with contextlib.suppress(OSError, ValueError):
                return int((d / name).read_text())
        return None

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer ended a process of this cgroup."""
        d = self.dirs.get("memory") or self.dirs.get("")
        for name in ("memory.events", "memory.oom_control"):
            with contextlib.suppress(OSError):
                for line in (d / name).read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                        return True
        with contextlib.suppress(OSError, ValueError):
            return int((d / "memory.failcnt").read_text()) > 0 and not self.pids()
        return False

    def destroy(self) -> None:
        """Kill whatever is left in the cgroup, then remove it."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            if self.kind == "v2":
                with contextlib.suppress(OSError):
                    _write(self.dirs[""] / "cgroup.kill", 1)
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        for d in self.dirs.values():
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def existing(name: str, parent: str = PARENT) -> Cgroup | None:
    """A cgroup made earlier (by this process or another), found by its name to be ended and
    removed: its folders, with none of its limits written again. None without cgroups here."""
    kind, bases = layout()
    if kind is None:
        return None
    group = Cgroup(name, 0, kind=kind, parent=parent)
    group.dirs = {key: base / parent / name for key, base in bases.items() if (base / parent / name).is_dir()}
    return group


def sweep(prefix: str) -> None:
    """End and remove every cgroup of ours whose name starts with `prefix` (those a grading job
    made, when the job itself was killed before it could)."""
    kind, bases = layout()
    if kind is None:
        return
    names = set()
    for base in bases.values():
        with contextlib.suppress(OSError):
            names.update(p.name for p in (base / PARENT).iterdir() if p.is_dir() and p.name.startswith(prefix))
    for name in names:
        existing(name).destroy()


def creator(name: str) -> int | None:
    """The pid in one of our cgroups' names (`grader-PID-…` for a grading job, `PID-…` for the
    sandboxes an nbgrader process made), or None."""
    head = name.removeprefix("grader-").split("-")[0]
    return int(head) if head.isdigit() else None


def orphaned(name: str) -> bool:
    """Made by a process that is gone (or by this one): no one will fill or remove it but us. A
    cgroup another grading run has just made is empty until its first process joins it."""
    pid = creator(name)
    return pid is None or pid == os.getpid() or not Path(f"/proc/{pid}").exists()


def sweep_empty(seconds: float = 10.0) -> list[str]:
    """Remove our cgroups that hold no process any more and whose maker is gone (the kernel can
    keep one busy for a moment after an OOM kill); return those still there after `seconds`. A
    cgroup of another grading run that is still going is never touched: rmdir refuses one with
    processes in it, and one not yet joined belongs to a live maker."""
    kind, bases = layout()
    if kind is None:
        return []
    deadline = time.monotonic() + seconds
    while True:
        left = []
        for base in bases.values():
            with contextlib.suppress(OSError):
                for d in (base / PARENT).iterdir():
                    if d.is_dir() and orphaned(d.name):
                        try:
                            d.rmdir()
                        except OSError:
                            left.append(str(d))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)
