"""Disk space on the course hub: what one person writes can fill only their own space.

The machine's kernel may have no file-system quotas (this kit's test machines have none), so each
space is a file system of its own, of a fixed size:

- each person's home: an ext4 image of `limits.disk`, allocated in full when it is made (so the
  images can never together promise more than the disk holds), loop-mounted on the home, and
  mounted again before their server starts (after a reboot);
- the exchange: one image of `limits.exchange`, mounted on <prefix>/exchange, so that submissions
  cannot fill the disk the hub, the homes and the course folder live on (within the exchange,
  `coursehub.guard` keeps one student from filling it for the others);
- each server's /tmp, /var/tmp, /dev/shm and /run/lock (the folders every user may write in):
  private tmpfs mounts in a mount namespace of the server's own (`private_tmp`, called as root just before the server drops to its user). tmpfs pages
  count against the server's memory limit, and nobody sees another's temporary files.

The images live in <prefix>/disks (root's, 0700). Where loop devices or mounting are not available
(not root, a container without /dev/loop-control), `available()` says why and the hub runs without
these limits, saying so in its log.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_SLAVE = 0x2, 0x4, 0x1000, 0x4000, 0x80000
CLONE_NEWNS = 0x00020000
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")     # every folder anyone may write in


class DiskError(RuntimeError):
    """A disk image that cannot be made or mounted; the message says why and what to do."""


def available() -> str | None:
    """None when homes and the exchange can have file systems of their own here, else why not."""
    if os.geteuid() != 0:
        return "not root"
    if not Path("/dev/loop-control").exists():
        return "no loop devices (/dev/loop-control): in a container, give it access to them"
    for tool in ("mkfs.ext4", "mount", "losetup"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: e2fsprogs, mount)"
    return None


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise DiskError(f"{' '.join(command)} failed: {done.stderr.strip() or done.stdout.strip()}")


def make_image(image: Path, size: int, uid: int, gid: int, mode: int = 0o700, seed: Path | None = None) -> bool:
    """An ext4 file system of `size` bytes in `image`, its top folder owned by uid:gid with `mode`,
    holding a copy of `seed`'s contents (a home's files so far). False if it already existed."""
    if image.exists():
        return False
    free = shutil.disk_usage(image.parent).free
    if size > free - 2**30:
        raise DiskError(f"{image.name}: {size / 2**30:.1f} GB asked, {free / 2**30:.1f} GB free on "
                        f"{image.parent}: lower limits.disk / limits.exchange in the course file, or "
                        "put paths.prefix on a larger disk")
    partial = image.with_name(image.name + ".making")
    partial.unlink(missing_ok=True)
    try:
        with open(partial, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, size)
        _run("mkfs.ext4", "-q", "-F", "-m", "0", "-E", f"root_owner={uid}:{gid}", str(partial))
        with tempfile.TemporaryDirectory(prefix="infogan-disk-") as where:
            _run("mount", "-o", "loop,nosuid,nodev", str(partial), where)
            try:
                shutil.rmtree(Path(where) / "lost+found", ignore_errors=True)
                os.chmod(where, mode)
                if seed is not None and seed.is_dir() and not os.path.ismount(seed):
                    _run("cp", "-a", f"{seed}/.", where)
            finally:
                _run("umount", where)
        partial.rename(image)
    finally:
        partial.unlink(missing_ok=True)
    return True


def mount_image(image: Path, target: Path) -> bool:
    """Mount `image` on `target` unless something is mounted there already; True if it mounted."""
    if os.path.ismount(target):
        return False
    target.mkdir(parents=True, exist_ok=True)
    _run("mount", "-o", "loop,nosuid,nodev", str(image), str(target))
    return True


def home_image(folder: Path, name: str) -> Path:
    """The image of `name`'s home in the disks folder (<prefix>/disks)."""
    return Path(folder) / f"home-{name}.img"


def private_tmp(size: int, keep: tuple[str, ...] = ()) -> None:
    """In the calling process (root, about to become a student): a mount namespace of its own, in
    which each of PRIVATE_TMP that exists and anyone may write in is a new tmpfs of `size` bytes.
    The folders `keep` (the kit and its environment, when they live under /tmp) are bound back in
    place, so that the server still finds them. The namespace is a copy of the host's mounts when the
    server starts (the home is mounted before), and ends with the server's last process, its tmpfs
    pages with it."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def mount(source, target, kind, flags, options, what):
        if libc.mount(source, target, kind, flags, options) != 0:
            raise OSError(ctypes.get_errno(), what)

    if libc.unshare(CLONE_NEWNS) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS)")
    mount(b"none", b"/", None, MS_REC | MS_SLAVE, None, "making / a slave mount")
    for path in PRIVATE_TMP:
        if not (os.path.isdir(path) and os.stat(path).st_mode & 0o002):
            continue
        inside = [k for k in keep if os.path.commonpath([os.path.realpath(k), path]) == path]
        held = {k: os.open(k, os.O_PATH | os.O_DIRECTORY) for k in inside}      # before they are hidden
        mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777".encode(),
              f"mounting a private tmpfs on {path}")
        for folder, fd in held.items():
            os.makedirs(folder, mode=0o755, exist_ok=True)
            mount(f"/proc/self/fd/{fd}".encode(), folder.encode(), None, MS_BIND | MS_REC, None,
                  f"binding {folder} back under {path}")
            os.close(fd)


def unmount_all(course) -> list[str]:
    """Unmount the course's homes and exchange (to take a course down); returns what was unmounted."""
    import pwd

    done = []
    targets = [course.exchange]
    for name in course.people:
        try:
            targets.append(Path(pwd.getpwnam(name).pw_dir))
        except KeyError:
            continue
    for target in targets:
        if os.path.ismount(target) and subprocess.run(["umount", "--lazy", str(target)]).returncode == 0:
            done.append(str(target))
    return done
