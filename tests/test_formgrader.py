"""Formgrader shows a submission inert: a student's script cannot act with the instructor's session.

The student `xss` of the class graded once for the grading tests (tests/shared_class.py, the
fixture `graded_class`; the victim is the corpus's) carries scripts everywhere a notebook can
(harness/attack_corpus.py, FORMGRADER_PAYLOAD): Markdown (script tags, event handlers, javascript:
links, an iframe, SVG), a raw HTML cell, outputs of every HTML-bearing type (text/html,
image/svg+xml, text/markdown, application/javascript), and notebook metadata built to break out of
the widget-state script tag. Each payload, if it ran, would mark the page and use formgrader's API
with the instructor's session (XSRF token from the cookie) to zero every grade and give itself full
marks, and call a listener on the host. Then formgrader is served as an instructor would run it,
and a real browser (headless Chromium, Playwright) logs in with the instructor's token and opens
each of the attacker's notebooks, moves the mouse over it and clicks its links. Nothing may run: no
mark, no write request, no call out, every grade in the gradebook unchanged.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from harness.browser import block_off_machine, find_chromium, free_port, launch_args
from harness.fake_class import SOURCE

pytest.importorskip("nbgrader", reason="the homework needs nbgrader: pip install -r requirements.txt")
pytestmark = pytest.mark.skipif(not SOURCE.exists(), reason="solutions/ is not in this copy (student bundle)")


def _marked(page):
    if page.url.startswith("javascript:") or "/formgrader/submissions/" not in page.url:
        page.go_back()
    return page.evaluate("document.documentElement.getAttribute('data-pwned') || window.__pwned || null")


def _grades(course: Path) -> list[tuple]:
    with sqlite3.connect(course / "gradebook.db") as db:
        return db.execute("SELECT id, auto_score, manual_score, extra_credit FROM grade ORDER BY id").fetchall()


def _submission_ids(course: Path, student: str) -> list[str]:
    with sqlite3.connect(course / "gradebook.db") as db:
        return [r[0] for r in db.execute(
            "SELECT sn.id FROM submitted_notebook sn JOIN submitted_assignment sa ON sn.assignment_id = sa.id "
            "WHERE sa.student_id = ?", (student,))]


@pytest.fixture(scope="session")
def chromium():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "the playwright package is not installed (pip install playwright)"
    else:
        reason = None if find_chromium() else "no Chromium found (apt-get install -y chromium, or set INFOGAN_CHROMIUM)"
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"the formgrader test must run in CI: {reason}")
        pytest.skip(reason)
    return find_chromium()


def test_a_submissions_script_cannot_use_the_instructors_formgrader_session(chromium, graded_class, browser_listener,
                                                                            tmp_path):
    course = graded_class.course
    before = _grades(course)
    assert before, "the class was not graded"

    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    root_flag = ["--allow-root"] if os.geteuid() == 0 else []
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--ServerApp.ip=127.0.0.1",
                               f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--no-browser",
                               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={course}", *root_flag],
                              cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/formgrader/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.3)
        from playwright.sync_api import sync_playwright
        writes, pages_seen = [], []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=launch_args())
            page = browser.new_page()
            off_machine = []
            block_off_machine(page, off_machine)           # formgrader's own CDN scripts: no internet here
            page.on("request", lambda r: writes.append(f"{r.method} {r.url}")
                    if r.method not in ("GET", "HEAD") or "stolen" in r.url else None)
            page.goto(f"{base}/formgrader?token={token}")                 # logs in: the session cookie
            ids = _submission_ids(course, "xss")
            assert ids, "the attacker has no graded notebook to show"
            for sid in ids:
                page.goto(f"{base}/formgrader/submissions/{sid}/", wait_until="domcontentloaded")
                page.wait_for_timeout(2000)
                pages_seen.append(page.content())
                assert _marked(page) is None, "a script from the submission ran in formgrader when the page opened"
                page.mouse.move(200, 200)
                page.mouse.move(400, 300)
                for selector in ("#jslink", "text=click me", "#formbtn"):
                    if page.locator(selector).count():
                        try:
                            page.locator(selector).first.click(timeout=2000, force=True, no_wait_after=True)
                        except Exception:  # noqa: BLE001 - an element the sanitizer left unclickable
                            pass
                page.wait_for_timeout(1500)
                assert _marked(page) is None, "a script from the submission ran in formgrader on a click or hover"
            browser.close()
        assert any("hover" in html for html in pages_seen), "the attacker's notebook was not shown"
        assert writes == [], f"the page sent requests the instructor did not make: {writes[:5]}"
        assert not [u for u in off_machine if "stolen" in u], off_machine
        assert browser_listener.received() == [], "a script from the submission called out"
        assert _grades(course) == before, "grades changed"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
