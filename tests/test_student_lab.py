"""`make lab` is the student's view: the lessons and the homework, no instructor's files, no nbgrader tools.

The Makefile's own `lab` target is started (a free port, a fresh token, a stand-in for the browser it
opens) in a copy of the course folder whose path has spaces in it, holding the student's folders, the
instructor's files (solutions, nbgrader's configuration, a gradebook, the grading package) and a student's
own folder named like one of those; then asked over HTTP what a student's JupyterLab would show.
"""

import html
import json
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]

STUDENT_TOP = {"notebooks", "assignments", "docs", "infogan_lib", "README.md"}
INSTRUCTOR_TOP = {"solutions", "nbgrader_config.py", "gradebook.db", "grading", "INSTRUCTORS.md", "tests",
                  "Makefile", "student-lab", ".grading"}
NBGRADER_PAGES = ("formgrader", "formgraders", "assignments", "assignments/validate", "nbgrader_version")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_course(kit: Path) -> None:
    """A course folder with what a student and an instructor each have in theirs (files are stand-ins)."""
    shutil.copy(ROOT / "Makefile", kit / "Makefile")
    shutil.copytree(ROOT / "student-lab", kit / "student-lab", ignore=shutil.ignore_patterns("__pycache__"))
    (kit / ".venv").symlink_to(ROOT / ".venv")
    for folder in ("notebooks/tests", "assignments/infogan_homework", "docs", "infogan_lib",
                   "solutions/infogan_homework", "grading", "tests", ".grading"):
        (kit / folder).mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "00_setup_check.ipynb", kit / "notebooks")
    shutil.copy(ROOT / "nbgrader_config.py", kit)
    empty_notebook = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
    for part in ("assignments", "solutions"):
        (kit / part / "infogan_homework" / "1_mi_bound.ipynb").write_text(empty_notebook)
    for name in ("docs/GLOSSARY.md", "infogan_lib/models.py", "README.md", "INSTRUCTORS.md", "gradebook.db",
                 "grading/grade.py", "tests/test_models.py", ".grading/seed", "notebooks/tests/mine.py"):
        (kit / name).write_text("stand-in\n")


@pytest.fixture(scope="module")
def student_lab(tmp_path_factory):
    """`make lab` serving a course folder: (base URL, token, the path of the page the browser was sent to)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if not (ROOT / ".venv" / "bin" / "jupyter").exists():
        pytest.skip("no .venv/bin/jupyter: run `make setup` first")
    tmp = tmp_path_factory.mktemp("student-lab")
    kit = tmp / "my course" / "infogan kit"
    kit.mkdir(parents=True)
    make_course(kit)
    # the browser `make lab` opens is a stand-in that writes down the page it was sent to
    opened = tmp / "opened.txt"
    browser = tmp / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" >> "{opened}"\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    (tmp / "config").mkdir()
    (tmp / "runtime").mkdir()
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "MAKEFLAGS": "", "BROWSER": str(browser),
           "JUPYTER_CONFIG_DIR": str(tmp / "config"),       # the tester's own ~/.jupyter is left out
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    log = (tmp / "server.log").open("w")
    server = subprocess.Popen(
        ["make", "-o", ".venv/.installed", "lab",
         f"LAB_ARGS=--port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token}"],
        cwd=kit, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    def said():
        return (tmp / "server.log").read_text()[-3000:]

    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, f"make lab stopped:\n{said()}"
            assert time.monotonic() < deadline, f"no server after 30 s:\n{said()}"
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        # the page the browser was sent to is written in the server's redirect file
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        redirect = opened.read_text().split()[0].removeprefix("file://") if opened.exists() else ""
        start_url = re.search(r'url=([^"]+)"', Path(redirect).read_text()).group(1) if redirect else ""
        yield base, token, urlsplit(html.unescape(start_url)).path
    finally:
        os.killpg(server.pid, signal.SIGTERM)                # make, its shell and the server
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def get(base, token, path):
    """(status, body) of GET base/path with the token."""
    sep = "&" if "?" in path else "?"
    try:
        with urllib.request.urlopen(f"{base}/{path}{sep}token={token}", timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def listing(base, token, folder=""):
    status, body = get(base, token, f"api/contents/{folder}")
    assert status == 200, f"contents API on {folder!r}: {status}"
    return {entry["name"] for entry in json.loads(body)["content"]}


def page_config(base, token, page):
    status, body = get(base, token, page)
    assert status == 200, f"GET /{page}: {status}"
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', body, re.S)
    assert found, f"no page config in /{page}"
    return json.loads(found.group(1))


def test_make_lab_shows_the_lessons_and_the_homework_at_the_top(student_lab):
    base, token, _ = student_lab
    top = listing(base, token)
    assert STUDENT_TOP <= top, f"missing from the file browser: {STUDENT_TOP - top}"
    assert listing(base, token, "assignments/infogan_homework") == {"1_mi_bound.ipynb"}


def test_make_lab_hides_the_instructors_files_at_the_top_only(student_lab):
    base, token, _ = student_lab
    assert not INSTRUCTOR_TOP & listing(base, token), "instructor's files in the student's file browser"
    # a student's own folder that happens to share a hidden name is still shown
    assert "tests" in listing(base, token, "notebooks")


def test_make_lab_opens_the_setup_check(student_lab):
    _, _, start_page = student_lab
    assert start_page == "/lab/tree/notebooks/00_setup_check.ipynb"


def test_make_lab_turns_off_nbgrader_in_lab_and_notebook_pages(student_lab):
    base, token, _ = student_lab
    for page in ("lab", "tree"):                         # JupyterLab, and Notebook 7's "Open in…"
        config = page_config(base, token, page)
        assert "@jupyter/nbgrader" in config["disabledExtensions"], f"/{page}: {config['disabledExtensions']}"
        assert "@jupyter-widgets/jupyterlab-manager" not in config["disabledExtensions"]
        # no "get Jupyter news?" pop-up over the first notebook
        assert "@jupyterlab/apputils-extension:announcements" in config["disabledExtensions"]


def test_make_lab_serves_no_nbgrader_endpoint(student_lab):
    base, token, _ = student_lab
    served = {path: status for path in NBGRADER_PAGES if (status := get(base, token, path)[0]) != 404}
    assert not served, f"nbgrader's server extensions answer: {served}"
    assert get(base, token, "api/status")[0] == 200
