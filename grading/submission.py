"""A student's submission, taken as data before nbgrader or the sandbox sees it.

`stage` copies `submitted/<student>/<assignment>/` into a fresh folder of the grader's, keeping only
what the homework asks for: its notebooks, the model file and nbgrader's `timestamp.txt`, each a
regular file of bounded size, read through file descriptors that never follow a link (`O_NOFOLLOW`
on every component, `O_NONBLOCK` so a FIFO cannot block the read, `fstat` before reading, and a
read that stops at the cap whatever the file claims). Links, devices, FIFOs, sockets, folders and
any other file are refused and reported, by name (escaped by the report). nbgrader autogrades the
staged copy, the sandbox shows it to the kernel, and feedback is made from it: nothing a student
links to (another student's notebook, the solutions, the grading seed, the gradebook) is ever read.

A model file must be a zip archive (what ``torch.save`` writes) whose members are stored, not
compressed, and add up to no more than the file's cap: torch reads a compressed member by inflating
it, and a small file could otherwise unpack to gigabytes in the grader.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MAX_NOTEBOOK = 16 * 2**20
MODEL_FILES = {"third_code.pt": 64 * 2**20}
OTHER_FILES = {"timestamp.txt": 256}           # written by nbgrader's exchange at submission
# written by the tools themselves, never by the student's hand: nbgrader's submit (the secret that
# names the student's feedback) and JupyterLab (checkpoints); left out without a word in the report
UNREPORTED = {"submission_secret.txt", ".ipynb_checkpoints"}
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class Refused(ValueError):
    """A file or folder that is not taken, with why."""


def valid_student_id(name: str) -> bool:
    """A student id is a plain name: no path separators, no leading dot, no control characters."""
    return bool(STUDENT_ID.fullmatch(name)) and name not in (".", "..")


def open_dir(path: Path) -> int:
    """An fd for `path` whose every component is a real folder (no link anywhere after the root)."""
    path = Path(os.path.abspath(path))
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in path.parts[1:]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0),
                              dir_fd=fd)
            except OSError as err:
                raise Refused(f"{path} is not a plain folder ({part}: {err.strerror})") from None
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def read_regular(dir_fd: int, name: str, cap: int) -> bytes:
    """The bytes of `name` in the folder `dir_fd`, if it is a regular file of at most `cap` bytes."""
    try:
        fd = os.open(name, FLAGS, dir_fd=dir_fd)
    except OSError as err:
        raise Refused(f"{name}: cannot be opened as a plain file ({err.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{name}: not a regular file")
        if info.st_nlink != 1:
            raise Refused(f"{name}: a hard link (another name for a file elsewhere)")
        if info.st_size > cap:
            raise Refused(f"{name}: {info.st_size / 2**20:.1f} MB, more than the {cap / 2**20:.0f} MB allowed")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise Refused(f"{name}: more than the {cap / 2**20:.0f} MB allowed")
        return b"".join(chunks)
    finally:
        os.close(fd)


def _members_declared(data: bytes) -> int | None:
    """The member count the zip's end-of-archive record declares (read before listing any)."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    return int.from_bytes(data[at + 10:at + 12], "little")


def check_model(data: bytes, cap: int) -> None:
    """Refuse a model file torch would have to inflate, or whose members add up past the cap."""
    declared = _members_declared(data)
    if declared is not None and declared > 10_000:
        raise Refused("an archive of more than 10,000 members")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as err:
        raise Refused(f"not a file written by torch.save ({err})") from None
    if len(members) > 10_000:
        raise Refused("an archive of more than 10,000 members")
    if any(m.compress_type != zipfile.ZIP_STORED for m in members):
        raise Refused("a compressed member (torch.save stores them uncompressed)")
    if sum(m.file_size for m in members) > cap:
        raise Refused("members that add up to more than the file's cap")


@dataclass
class Staged:
    folder: Path
    notebooks: list[str] = field(default_factory=list)      # names (without .ipynb) staged
    problems: list[str] = field(default_factory=list)       # what was refused or is missing


def stage_folder(src: Path, dest: Path, notebooks: list[str], extra: list[str] | None = None) -> Staged:
    """Copy the allowed files of `src` into a fresh `dest`. `notebooks` are the assignment's
    notebook names; [] takes every *.ipynb (the executor's fallback). `extra` names more files
    allowed (default: the model file and timestamp.txt)."""
    allowed = dict(MODEL_FILES, **OTHER_FILES) if extra is None else {n: MAX_NOTEBOOK for n in extra}
    out = Staged(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    os.chmod(dest, 0o755)
    try:
        fd = open_dir(src)
    except Refused as err:
        out.problems.append(str(err))
        return out
    try:
        names = sorted(os.listdir(fd))
        for name in names:
            is_notebook = name.endswith(".ipynb") and (not notebooks or name[:-6] in notebooks)
            if not is_notebook and name not in allowed:
                if name in UNREPORTED:
                    continue
                kind = "folder" if stat.S_ISDIR(os.lstat(name, dir_fd=fd).st_mode) else "file"
                out.problems.append(f"{name}: a {kind} the homework does not ask for (not graded, not copied)")
                continue
            try:
                data = read_regular(fd, name, MAX_NOTEBOOK if is_notebook else allowed[name])
                if name in MODEL_FILES:
                    check_model(data, MODEL_FILES[name])
            except Refused as err:
                out.problems.append(f"{err} (refused)")
                continue
            target = dest / name
            with open(target, "xb") as f:
                f.write(data)
            os.chmod(target, 0o444)
            if is_notebook:
                out.notebooks.append(name[:-6])
    finally:
        os.close(fd)
    return out
