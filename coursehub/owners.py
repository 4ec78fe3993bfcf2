"""Whose files are whose: user names of owners, and kit files handed to a user."""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]


def user_name(uid: int) -> str:
    """The user name of `uid`, or 'uid N' when no user has it."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def copy_from_kit(names, folder: Path) -> None:
    """Copy the kit's files and folders `names` (those that exist) into `folder`."""
    for name in names:
        src = KIT / name
        if src.is_dir():
            shutil.copytree(src, folder / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
        elif src.exists():
            shutil.copy2(src, folder / name)


def give(folder: Path, user: pwd.struct_passwd) -> None:
    """Make `folder` and everything in it belong to `user` (links themselves, not their targets)."""
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            os.lchown(Path(root) / name, user.pw_uid, user.pw_gid)
    os.lchown(folder, user.pw_uid, user.pw_gid)
