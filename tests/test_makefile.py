"""The Makefile's front-door targets work from a folder whose path has spaces in it."""

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_and_demo_work_in_a_path_with_spaces(tmp_path):
    kit = tmp_path / "my course" / "infogan kit"
    (kit / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", kit / "Makefile")
    bin_dir = kit / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    calls = tmp_path / "calls.txt"
    for tool in ("jupyter", "python"):                  # stand-ins that record how they were called
        script = bin_dir / tool
        script.write_text(f'#!/bin/sh\n{{ printf "{tool} $PWD"; printf " [%s]" "$@"; '
                          f'printf " JUPYTER_CONFIG_PATH=%s" "$JUPYTER_CONFIG_PATH"; echo; }} >> "{calls}"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (kit / ".venv" / ".installed").touch()
    env = {**os.environ, "MAKEFLAGS": "", "JUPYTER_CONFIG_PATH": "/their/config"}
    done = subprocess.run(["make", "-o", ".venv/.installed", "lab", "LAB_ARGS=--version"],
                          cwd=kit, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    done = subprocess.run(["make", "-o", ".venv/.installed", "train", "RUN=runs/my run"],
                          cwd=kit, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    # the course folder served, opened on the setup check, seen through student-lab/ first (the reader's
    # own JUPYTER_CONFIG_PATH kept after it); tests/test_student_lab.py checks what that view holds
    assert lines[0] == (f"jupyter {kit} [lab] [notebooks/00_setup_check.ipynb] [--ServerApp.root_dir=.] [--version]"
                        + (" [--allow-root]" if os.geteuid() == 0 else "")
                        + f" JUPYTER_CONFIG_PATH={kit}/student-lab:/their/config")
    assert "[--out-dir] [runs/my run] [--minutes] [10]" in lines[1]
