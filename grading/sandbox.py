"""The sandbox a student's kernel runs in while it is graded: bubblewrap, a cgroup, and limits.

Why bubblewrap (Debian's `bubblewrap`, the `bwrap` command; the sandbox Flatpak is built on): it is
maintained, needs no daemon and no setuid helper on current kernels, and builds the kernel's view of
the machine from nothing, so a file the grader did not list does not exist for the student's code.
The kernel sees

- read-only: the system (/usr and the /bin, /lib links), Python and the virtual environment, the
  kit's package `infogan_lib` (not the repository around it), the data folder, the student's own
  submission (the staged copy: regular files only, grading/submission.py) as its working directory,
  and the grader's folder `/grader` (the agent that runs calls, and the calls' arguments);
- read-write: its home folder `/home/student` (also TMPDIR), a tmpfs of `home_bytes`, and the folder
  that holds the kernel's sockets only until the kernel is up (grading as root: the grader then
  takes it back, so nothing the grader opens lives where student code can write);
- nothing else: not the gradebook, `solutions/`, `.grading/`, other students' folders or the
  instructor's home; no environment variable of the grader's (not the grading seed).

It has its own process, network, IPC and hostname namespaces: no network at all (not even the host's
loopback), and it cannot see or signal any process outside. Limits: a cgroup per student when
grading as root (grading/cgroups.py: memory including tmpfs and memfds, processes, CPU share), and
always `prlimit` per process (CPU seconds, data memory, processes, file size, open files, no core
dumps). When grading as root each sandbox's kernel runs as its own unprivileged user id; otherwise
bwrap makes a user namespace.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

FIX = ("Install bubblewrap (Debian/Ubuntu: `sudo apt-get install bubblewrap`; Fedora: `sudo dnf "
       "install bubblewrap`) and make sure user namespaces are allowed (Ubuntu 24.04: `sudo sysctl "
       "kernel.apparmor_restrict_unprivileged_userns=0`, or grade as root). To grade without a sandbox "
       "anyway, pass --unsafe (student code then runs with your rights; the report says so).")


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot start a sandbox here; the message says why and how to fix it."""


@dataclass
class Limits:
    cpu_seconds: int = 900                 # CPU time of the kernel and all it starts, for a notebook
    memory_bytes: int = 6 * 2**30          # RLIMIT_DATA per process
    processes: int = 128                   # processes and threads of the sandbox
    file_bytes: int = 256 * 2**20          # the largest file it can write
    open_files: int = 512
    output_bytes: int = 2 * 2**20          # output a cell may print (enforced by the executor)
    scratch_bytes: int = 512 * 2**20       # the home tmpfs (counted in the cgroup's memory too)
    student_seconds: int = 600             # wall clock for one notebook's student cells and tests
    cpus: float = 1.0                      # CPU share of one student (cgroup)

    @classmethod
    def from_env(cls) -> "Limits":
        lim = cls()
        for name in ("cpu_seconds", "memory_bytes", "processes", "file_bytes", "open_files",
                     "output_bytes", "scratch_bytes", "student_seconds", "cpus"):
            value = os.environ.get(f"INFOGAN_LIMIT_{name.upper()}")
            if value:
                setattr(lim, name, float(value) if name == "cpus" else int(value))
        return lim


def _system_paths() -> list[tuple[str, str]]:
    """(kind, path) for the system: /usr read-only, and /bin, /lib... as links or binds."""
    out = [("ro", "/usr")]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        p = Path(top)
        if p.is_symlink():
            out.append(("symlink", top))
        elif p.is_dir():
            out.append(("ro", top))
    for name in ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "localtime",
                 "passwd", "group", "alternatives", "fonts", "mime.types"):
        if (Path("/etc") / name).exists():
            out.append(("ro", f"/etc/{name}"))
    return out


def _python_paths() -> list[str]:
    """Python itself, the environment's site-packages, and the kit's package (only the package
    folder: an editable install points into the repository)."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix),
             os.path.realpath(os.path.dirname(os.path.realpath(sys.executable)))}
    import importlib.util
    spec = importlib.util.find_spec("infogan_lib")            # (without importing it, and torch)
    if spec is not None and spec.origin:
        paths.add(os.path.realpath(os.path.dirname(spec.origin)))
    for entry in sys.path:           # site-packages and friends, but never a whole repository
        real = os.path.realpath(entry or ".")
        if "site-packages" in real or "dist-packages" in real:
            paths.add(real)
    return sorted(p for p in paths if os.path.exists(p))


def _data_paths(data_dir: Path | None) -> list[str]:
    """The data folder, and where its symbolic links point (the shared data sets are links)."""
    if data_dir is None or not data_dir.exists():
        return []
    out = {os.path.realpath(data_dir)}
    for root, dirs, files in os.walk(data_dir):
        for name in files + dirs:
            p = os.path.join(root, name)
            if os.path.islink(p):
                out.add(os.path.dirname(os.path.realpath(p)))
        if root.count(os.sep) - str(data_dir).count(os.sep) > 3:
            dirs[:] = []
    return sorted(out)


def _minimal(paths: list[str]) -> list[str]:
    """Drop paths inside another listed path."""
    keep = []
    for p in sorted(set(paths)):
        if not any(p == k or p.startswith(k.rstrip("/") + "/") for k in keep):
            keep.append(p)
    return keep


HOME = "/home/student"          # the kernel's home folder and TMPDIR, a sized tmpfs
GRADER = "/grader"              # the grader's folder, read-only: the agent and the calls' arguments


@dataclass
class Sandbox:
    workdir: Path                                  # the kernel's working folder (read-only)
    scratch: Path                                  # the kernel's sockets (writable until it is up)
    data_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    env: dict = field(default_factory=dict)        # extra environment variables for the kernel
    uid: int | None = None                         # when root: the unprivileged user id to run as
    shown: Path | None = None                      # what the kernel sees at workdir (default: itself)
    grader_dir: Path | None = None                 # shown read-only at GRADER
    cgroup_files: list[str] = field(default_factory=list)   # cgroup.procs files to join first
    quiet: bool = True                             # standard streams to /dev/null (not for check())

    def command(self, argv: list[str]) -> list[str]:
        """argv (the kernel command) wrapped in bwrap, the user switch and the limits."""
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable("bubblewrap (bwrap) is not installed. " + FIX)
        root = os.geteuid() == 0
        args = [bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--clearenv",
                "--hostname", "sandbox"]
        # (no --new-session: the kernel must stay in the process group Jupyter signals to interrupt
        # it; Jupyter starts it in a new session without a terminal, so there is none to inject into)
        if not root:
            args.append("--unshare-user")
        args.extend(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
        made: set[str] = {"/", "/tmp"}

        def parents(path: str):
            # a folder bwrap makes for a mount point must be enterable by the unprivileged user
            parts = Path(path).parts[1:-1]
            for i in range(len(parts)):
                d = "/" + "/".join(parts[: i + 1])
                if d not in made:
                    made.add(d)
                    args.extend(["--perms", "0755", "--dir", d])

        for kind, path in _system_paths():
            if kind == "symlink":
                args.extend(["--symlink", os.readlink(path), path])
            else:
                parents(path)
                args.extend(["--ro-bind", path, path])
        ro = _minimal(_python_paths() + _data_paths(self.data_dir))
        for path in ro:
            if path.startswith("/usr/") or path == "/usr":
                continue
            parents(path)
            args.extend(["--ro-bind", path, path])
        scratch = os.path.realpath(self.scratch)
        parents(scratch)
        parents(str(self.workdir))
        args.extend(["--ro-bind", str(self.shown or self.workdir), str(self.workdir)])
        args.extend(["--bind", scratch, scratch, "--chdir", str(self.workdir)])
        if self.grader_dir is not None:
            args.extend(["--ro-bind", str(self.grader_dir), GRADER])
        args.extend(["--perms", "01777", "--size", str(self.limits.scratch_bytes), "--tmpfs", HOME])
        # everything else is read-only: bwrap's own folders live in memory, so a writable root,
        # /tmp or /dev/shm would let a student fill the machine's RAM
        args.extend(["--remount-ro", "/dev", "--remount-ro", "/tmp", "--remount-ro", "/"])
        env = {"PATH": os.path.dirname(sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
               "HOME": HOME, "TMPDIR": HOME, "MPLCONFIGDIR": HOME, "MPLBACKEND": "agg",
               "LANG": "C.UTF-8", "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
               **({"INFOGAN_DATA": str(self.data_dir)} if self.data_dir else {}), **self.env}
        for k, v in env.items():
            args.extend(["--setenv", k, str(v)])
        lim = self.limits
        limits = ["prlimit", f"--cpu={lim.cpu_seconds}:{lim.cpu_seconds + 5}",
                  f"--data={lim.memory_bytes}", f"--nproc={lim.processes}",
                  f"--fsize={lim.file_bytes}", f"--nofile={lim.open_files}", "--core=0", "--"]
        switch = []
        if root:
            uid = self.uid if self.uid is not None else 65534
            switch = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                      "--inh-caps=-all", "--bounding-set=-all", "--"]
        # Jupyter interrupts a kernel with SIGINT to its process group: bwrap must ignore it (it would
        # die, and the kernel with it); the kernel catches it while it runs a cell. The launcher joins
        # the student's cgroup first, so that every process of the sandbox is counted there. Its
        # standard streams go nowhere: inherited, they would be a pipe into the grader's own memory.
        join = "".join(f"echo $$ > {shlex.quote(f)} || exit 111; " for f in self.cgroup_files)
        # bwrap itself starts with an empty environment: the sandbox's pid 1 is bwrap, and its
        # /proc/1/environ (readable there when grading as an ordinary user) would show the grader's
        streams = " </dev/null >/dev/null 2>&1" if self.quiet else ""
        launcher = ["/bin/sh", "-c", f'trap "" INT; {join}exec /usr/bin/env -i "$@"{streams}', "sandbox"]
        return [*launcher, *args, "--", *switch, *limits, *argv]

    def prepare(self) -> None:
        self.scratch.mkdir(parents=True, exist_ok=True)
        os.chmod(self.scratch, 0o700)
        if os.geteuid() == 0:
            os.chown(self.scratch, self.uid if self.uid is not None else 65534, -1)

    def lock(self) -> bool:
        """Once the kernel is up (its sockets made): take the socket folder back, so that student
        code can create nothing where the grader looks. Only a root grader can (an unprivileged
        one shares its user id with the sandbox's); False then."""
        if os.geteuid() != 0:
            return False
        os.chown(self.scratch, 0, 0)
        os.chmod(self.scratch, 0o755)
        return True


def check(data_dir: Path | None = None) -> None:
    """Start one sandbox that runs Python and imports torch and infogan_lib; raise
    SandboxUnavailable with the reason and the fix if it cannot."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="infogan-sandbox-check-") as tmp:
        box = Sandbox(workdir=Path(tmp) / "work", scratch=Path(tmp) / "scratch", data_dir=data_dir,
                      uid=61000 if os.geteuid() == 0 else None, quiet=False)
        box.workdir.mkdir()
        os.chmod(tmp, 0o755)
        box.prepare()
        cmd = box.command([sys.executable, "-c", "import torch, infogan_lib; print('ok')"])
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if out.returncode != 0 or "ok" not in out.stdout:
            why = (out.stderr or out.stdout).strip().splitlines()[-3:]
            raise SandboxUnavailable("the grading sandbox could not start: " + " / ".join(why) + ". " + FIX)
