"""The course hub, started for real: JupyterHub on loopback, one instructor and three students as
Unix users created here, each server spawned through the REST API as its own user, in its own
cgroup, and no student reaching another's server, the hub's admin API or the instructor's formgrader.

Runs as root (as CI does) where npm can install configurable-http-proxy; skips elsewhere, saying why.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.hubapi import call

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / ".hub-node"
TEACH, STUDENTS, COURSE_ID = "ihh-teach", ("ihh-s1", "ihh-s2", "ihh-s3"), "ihh-course"


def _why_not() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "starts a hub as root with real Unix users: runs as root (as in CI)"
    if not shutil.which("npm") and not (NODE / "node_modules/.bin/configurable-http-proxy").exists():
        return "needs npm to install configurable-http-proxy"
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        return "jupyterhub is not installed in this environment (make setup installs it)"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def proxy_command() -> str:
    binary = NODE / "node_modules" / ".bin" / "configurable-http-proxy"
    if not binary.exists():
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NODE),
                        "configurable-http-proxy@5"], check=True, capture_output=True, timeout=300)
    return str(binary)


def free_ports(n: int = 1) -> int:
    """The first of n free ports in a row."""
    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
        if port + n > 65535:
            continue
        taken = False
        for k in range(1, n):
            with socket.socket() as b:
                taken = taken or b.connect_ex(("127.0.0.1", port + k)) == 0
        if not taken:
            return port
    raise RuntimeError(f"no {n} free ports in a row")


def free_privileged_port() -> int:
    """The first of three free ports in a row from 900 (the hub's internal ports)."""
    for port in range(900, 1000, 3):
        taken = False
        for k in range(3):
            with socket.socket() as probe:
                taken = taken or probe.connect_ex(("127.0.0.1", port + k)) == 0
        if not taken:
            return port
    raise RuntimeError("no three free ports in a row from 900 to 999")


def _needs_disks() -> None:
    from coursehub.disks import available

    if available() is not None:
        pytest.skip(f"homes and the exchange cannot have file systems of their own here: {available()}")


def wait_until(ready, seconds: float, failure: str) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, failure
        time.sleep(0.5)


def run_in_kernel(base: str, user: str, token: str, code: str, timeout: float = 120) -> dict:
    """Run `code` in a new kernel of `user`'s server (over the kernel's websocket, as a browser does);
    returns {"stdout", "error", "died"} (died: the kernel went away while running it)."""
    import asyncio
    import uuid

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    _, kernel = call(base, "POST", f"/user/{user}/api/kernels", token, {"name": "python3"})
    headers = {"Authorization": f"token {token}"}
    out = {"stdout": "", "error": None, "died": False}

    async def run():
        ws = await websocket_connect(HTTPRequest(base.replace("http", "ws", 1)
                                                 + f"/user/{user}/api/kernels/{kernel['id']}/channels",
                                                 headers=headers))
        msg_id = uuid.uuid4().hex
        await ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": user,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False}}))
        while True:
            raw = await asyncio.wait_for(ws.read_message(), timeout)
            if raw is None:
                out["died"] = True
                return
            msg = json.loads(raw)
            if msg.get("msg_type") == "status" and msg["content"].get("execution_state") in ("restarting", "dead"):
                out["died"] = True
                return
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out["stdout"] += msg["content"]["text"]
            elif kind == "error":
                out["error"] = f"{msg['content']['ename']}: {msg['content']['evalue']}"
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                return

    asyncio.run(run())
    return out


@pytest.fixture(scope="module")
def hub():
    from coursehub.course import Course
    from coursehub.setup import setup

    Path("/srv").mkdir(exist_ok=True)                # not under /tmp: each server has a /tmp of its own
    prefix = Path(tempfile.mkdtemp(prefix="ihh-", dir="/srv"))
    prefix.chmod(0o755)
    port = free_ports()
    course_file = prefix / "course.toml"
    course_file.write_text(f'''course_id = "{COURSE_ID}"
authenticator = "pam"
instructors = ["{TEACH}"]
students = {json.dumps(list(STUDENTS))}
create_users = true
[limits]
memory = "1500M"
processes = 256
disk = "64M"
exchange = "256M"
tmp = "64M"
idle_minutes = 60
[paths]
prefix = "{prefix / 'srv'}"
[hub]
ip = "127.0.0.1"
port = {port}
internal_port = {free_privileged_port()}
''')
    course = Course.load(course_file)
    made_users = [n for n in course.people if subprocess.run(["id", n], capture_output=True).returncode]
    process = None
    try:
        setup(course)
        token = secrets.token_hex(32)
        env = {**os.environ, "INFOGAN_COURSE": str(course_file), "INFOGAN_HUB_ADMIN_TOKEN": token,
               "INFOGAN_HUB_PROXY": proxy_command(),
               "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
        log = open(prefix / "hub.log", "w")
        process = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "hub" / "jupyterhub_config.py")],
                                   cwd=course.run_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while call(base, "GET", "/hub/api/", token)[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the hub did not start:\n" + (prefix / "hub.log").read_text()[-3000:])
            time.sleep(0.5)
        yield {"base": base, "admin": token, "course": course, "prefix": prefix, "log": prefix / "hub.log"}
    finally:
        if process is not None:
            with _suppress():
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(30)
            with _suppress():
                os.killpg(process.pid, signal.SIGKILL)
        from coursehub.disks import unmount_all

        _stop_services_of(f"127.0.0.1:{course.internal_port + 1}")
        for name in course.people:
            subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        unmount_all(course)
        for name in made_users:
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(prefix, ignore_errors=True)


def _stop_services_of(hub_api: str) -> None:
    """The hub's services run in sessions of their own: a hub stopped before it stopped them leaves them
    running. Each is found by the hub API address in its environment."""
    for proc in Path("/proc").iterdir():
        try:
            mark = f"JUPYTERHUB_API_URL=http://{hub_api}/".encode()
            if proc.name.isdigit() and any(v.startswith(mark) for v in (proc / "environ").read_bytes().split(b"\0")):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], (OSError, subprocess.TimeoutExpired))


@pytest.fixture(scope="module")
def servers(hub):
    """Every person's server, started through the REST API; their API tokens."""
    base, admin, tokens = hub["base"], hub["admin"], {}
    for name in hub["course"].people:
        code, _ = call(base, "POST", f"/hub/api/users/{name}/server", admin)
        assert code in (201, 202), f"spawning {name}: {code}\n" + hub["log"].read_text()[-3000:]
    for name in hub["course"].people:
        deadline = time.monotonic() + 120
        while True:
            _, info = call(base, "GET", f"/hub/api/users/{name}", admin)
            if info.get("servers", {}).get("", {}).get("ready"):
                break
            assert time.monotonic() < deadline, f"{name}'s server never became ready:\n" + hub["log"].read_text()[-3000:]
            time.sleep(0.5)
        code, made = call(base, "POST", f"/hub/api/users/{name}/tokens", admin, {"expires_in": 3600, "note": "test"})
        assert code == 201, made
        tokens[name] = made["token"]
    return tokens


def test_each_persons_server_runs_as_that_unix_user_in_its_own_home(hub, servers):
    for name, token in servers.items():
        code, _ = call(hub["base"], "PUT", f"/user/{name}/api/contents/whoami.txt", token,
                       {"type": "file", "format": "text", "content": name})
        assert code == 201
        home = Path(pwd.getpwnam(name).pw_dir)
        written = home / "whoami.txt"
        assert written.read_text() == name and written.stat().st_uid == pwd.getpwnam(name).pw_uid
        assert home.stat().st_mode & 0o777 == 0o700, f"{home} is readable by others"


def test_each_person_finds_the_lessons_in_their_home_and_no_solutions(hub, servers):
    for name, token in servers.items():
        code, listing = call(hub["base"], "GET", f"/user/{name}/api/contents/infogan-course/notebooks", token)
        assert code == 200, listing
        names = {item["name"] for item in listing["content"]}
        assert "01_gan_recap.ipynb" in names and "04_exploring_codes.ipynb" in names
        lessons = Path(pwd.getpwnam(name).pw_dir) / "infogan-course"
        owners = {p.stat().st_uid for p in lessons.rglob("*")}
        assert owners == {pwd.getpwnam(name).pw_uid}, "the lessons are the student's own to edit"
        assert not any(p.name == "solutions" for p in lessons.rglob("*"))


def test_a_student_reaches_neither_another_server_nor_the_admin_api_nor_formgrader(hub, servers):
    from coursehub.hubconfig import formgrader_service

    base, token = hub["base"], servers["ihh-s1"]
    assert call(base, "GET", "/user/ihh-s2/api/contents", token)[0] == 403
    assert call(base, "GET", "/hub/api/users", token)[0] == 403
    assert call(base, "POST", "/hub/api/users/ihh-s2/tokens", token, {})[0] == 403
    # nor tokens for themselves: each is a row in the hub's database, its note of any size
    assert call(base, "POST", "/hub/api/users/ihh-s1/tokens", token, {"note": "x" * 10_000})[0] == 403
    assert call(base, "DELETE", "/hub/api/users/ihh-s2/server", token)[0] in (403, 404)   # 404: hidden
    _, s2 = call(base, "GET", "/hub/api/users/ihh-s2", hub["admin"])
    assert s2["servers"][""]["ready"], "a student stopped another student's server"
    service = formgrader_service(hub["course"])
    assert call(base, "GET", f"/services/{service}/formgrader/api/assignments", token)[0] in (302, 403)
    assert call(base, "GET", "/hub/api/user", token)[1]["name"] == "ihh-s1"


def test_each_server_is_in_a_cgroup_that_enforces_its_memory_limit(hub, servers):
    from grading.cgroups import Cgroup, layout

    if Cgroup.available() is not None:
        pytest.skip(f"cgroups cannot be made here: {Cgroup.available()}")
    kind, bases = layout()
    limit = hub["course"].memory_bytes()
    for name in servers:
        if kind == "v2":
            folder = bases[""] / "infogan-hub" / f"user-{name}"
            assert int((folder / "memory.max").read_text()) == limit
        else:
            folder = bases["memory"] / "infogan-hub" / f"user-{name}"
            assert int((folder / "memory.limit_in_bytes").read_text()) == limit
        pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
        owners = {Path(f"/proc/{p}").stat().st_uid for p in pids if Path(f"/proc/{p}").exists()}
        assert pids and owners == {pwd.getpwnam(name).pw_uid}, f"{name}'s cgroup holds {pids} of {owners}"


def test_the_instructors_course_folder_is_private(hub):
    course = hub["course"]
    st = course.course_dir.stat()
    assert pwd.getpwuid(st.st_uid).pw_name == TEACH and st.st_mode & 0o777 == 0o700
    assert (course.course_dir / "solutions").is_dir() and (course.course_dir / "nbgrader_config.py").exists()


@pytest.fixture(scope="module")
def released(hub, servers):
    """The instructor's token and formgrader's API; the homework released through it."""
    from coursehub.hubconfig import formgrader_service

    base = hub["base"]
    code, made = call(base, "POST", f"/hub/api/users/{TEACH}/tokens", hub["admin"],
                      {"expires_in": 3600, "scopes": ["inherit"]})
    assert code == 201, made
    api = f"/services/{formgrader_service(hub['course'])}/formgrader/api"
    code, out = call(base, "POST", f"{api}/assignment/infogan_homework/release", made["token"], {})
    assert code == 200 and out.get("success"), (code, out, shutil.copy(hub["log"], "/tmp/hub-failed.log"))
    return {"token": made["token"], "api": api}


def test_a_student_in_the_browser_logs_in_fetches_runs_a_cell_and_submits(hub, servers, released, tmp_path):
    """Headless Chromium as a student: the hub's log-in page (PAM, a real password), JupyterLab with
    the Assignments tab and none of the instructor's tools, Fetch, a cell run in the fetched notebook,
    saved, Submit; the instructor then collects exactly that notebook, run cell and all."""
    from harness.browser import find_chromium, launch_args, missing_reason

    why = missing_reason()
    if why:
        if os.environ.get("CI"):
            pytest.fail(f"the browser student must run in CI: {why}")
        pytest.skip(why)
    from playwright.sync_api import expect, sync_playwright

    base, course, student = hub["base"], hub["course"], "ihh-s2"
    password = secrets.token_urlsafe(12)
    subprocess.run(["chpasswd"], input=f"{student}:{password}", text=True, check=True)
    errors: list[str] = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=find_chromium(), args=launch_args())
        page = chromium.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{base}/hub/login")
            page.fill("#username_input", student)
            page.fill("#password_input", "not the password")
            page.click("#login_submit")
            expect(page.locator("p.login_error")).to_contain_text("Invalid username or password")
            page.fill("#username_input", student)
            page.fill("#password_input", password)
            page.click("#login_submit")
            page.wait_for_url(re.compile(rf"/user/{student}/lab"), timeout=120_000)
            page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)

            page.get_by_text("Nbgrader", exact=True).click()
            menu = page.locator(".lm-Menu-content").last
            labels = [t.strip() for t in menu.locator(".lm-Menu-itemLabel").all_inner_texts()]
            assert "Assignment List" in labels, labels
            assert not {"Formgrader", "Create assignment", "Course List"} & set(labels), labels
            menu.get_by_text("Assignment List", exact=True).click()

            released_row = page.locator("#released_assignments_list .list_item", has_text="infogan_homework")
            released_row.get_by_role("button", name="Fetch").click()
            fetched_row = page.locator("#fetched_assignments_list .list_item", has_text="infogan_homework")
            expect(fetched_row).to_be_visible(timeout=60_000)
            fetched_row.locator("a", has_text="infogan_homework").first.click()   # shows the notebooks
            fetched_row.locator("a", has_text="1_mi_bound").first.click()

            notebook = page.locator(".jp-NotebookPanel:visible")
            setup_cell = notebook.locator(".jp-CodeCell").first
            expect(setup_cell).to_be_visible(timeout=60_000)
            prompt = setup_cell.locator(".jp-InputArea-prompt")
            for attempt in range(3):         # a run asked for while the kernel is still connecting is lost
                expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible(timeout=120_000)
                setup_cell.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Shift+Enter")
                try:
                    expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=30_000)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
            page.keyboard.press("Control+s")
            expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=30_000)

            page.get_by_role("tab", name=re.compile("Assignments")).click()
            fetched_row.get_by_role("button", name="Submit").click()
            submitted = page.locator("#submitted_assignments_list .list_item", has_text="infogan_homework")
            expect(submitted).to_be_visible(timeout=60_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "student.png"))
            print("screenshot:", tmp_path / "student.png")
            raise
        finally:
            chromium.close()
    assert not errors, errors

    inbound = course.exchange / course.course_id / "inbound"
    mine = [d for d in inbound.iterdir() if d.name.startswith(f"{student}+infogan_homework+")]
    assert mine and {d.stat().st_uid for d in mine} == {pwd.getpwnam(student).pw_uid}
    code, out = call(base, "POST", f"{released['api']}/assignment/infogan_homework/collect", released["token"], {})
    assert code == 200 and out.get("success"), out
    import nbformat

    collected = nbformat.read(course.course_dir / "submitted" / student / "infogan_homework" / "1_mi_bound.ipynb",
                              as_version=4)
    ran = [cell for cell in collected.cells if cell.cell_type == "code" and cell.get("execution_count")]
    assert ran == [c for c in collected.cells if c.cell_type == "code"][:1], \
        "the submission holds the setup cell run in the browser, and no other run"


def answer_through_the_server(base: str, student: str, token: str, solved: dict, model: bool) -> None:
    """As the student's browser would save them: the fetched notebooks with the solution cells of
    `solved` ({notebook: "all"}) filled in, and the trained model uploaded when `model`."""
    import base64

    from harness.fake_class import FIXTURE_MODEL, solution_sources

    folder = f"/user/{student}/api/contents/{COURSE_ID}/infogan_homework"
    for name in solved:
        code, got = call(base, "GET", f"{folder}/{name}.ipynb", token)
        assert code == 200, got
        nb, answers = got["content"], solution_sources(name)
        for cell in nb["cells"]:
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in answers:
                cell["source"] = answers[cell["metadata"]["nbgrader"]["grade_id"]]
        assert call(base, "PUT", f"{folder}/{name}.ipynb", token,
                    {"type": "notebook", "format": "json", "content": nb})[0] == 200
    if model:
        assert call(base, "PUT", f"{folder}/third_code.pt", token, {
            "type": "file", "format": "base64", "content": base64.b64encode(FIXTURE_MODEL.read_bytes()).decode()})[0] == 201



def test_the_homework_goes_out_and_comes_back_through_the_hub(hub, servers, released):
    """The instructor releases and collects through formgrader's API; students fetch, answer and submit
    through their own servers: ihh-s1 everything, ihh-s3 part 1 only, ihh-s2 nothing (the browser
    student's submission, one cell run). A folder another student wrote in ihh-s1's name is refused.
    The instructor grades the three in the sandbox and releases feedback; each student fetches their
    own, with their own score and no hidden test line."""
    import html
    import re

    import nbformat

    from grading.feedback import hidden_lines

    base, course = hub["base"], hub["course"]
    teach, api = released["token"], released["api"]
    where = {"course_id": course.course_id, "assignment_id": "infogan_homework"}
    plans = {"ihh-s1": ({"1_mi_bound": "all", "2_third_code": "all"}, True), "ihh-s3": ({"1_mi_bound": "all"}, False)}
    for student, (solved, model) in plans.items():
        code, listed = call(base, "POST", f"/user/{student}/assignments/fetch", servers[student], where)
        assert code == 200 and listed.get("success"), listed
        fetched = Path(pwd.getpwnam(student).pw_dir) / course.course_id / "infogan_homework" / "1_mi_bound.ipynb"
        assert fetched.exists() and fetched.stat().st_uid == pwd.getpwnam(student).pw_uid
        answer_through_the_server(base, student, servers[student], solved, model)
        code, _ = call(base, "PUT", f"/user/{student}/api/contents/{course.course_id}/infogan_homework/marker.txt",
                       servers[student], {"type": "file", "format": "text", "content": f"written by {student}"})
        assert code == 201
        code, listed = call(base, "POST", f"/user/{student}/assignments/submit", servers[student], where)
        assert code == 200 and listed.get("success"), listed

    # another student hands in a folder that claims ihh-s1's name, newer than the real one (nbgrader#1097)
    forger = pwd.getpwnam("ihh-s2")
    inbound = course.exchange / course.course_id / "inbound"
    forged = inbound / "ihh-s1+infogan_homework+2099-01-01 00:00:00.000000 UTC+forged"
    script = ("import os, sys; d = sys.argv[1]; os.mkdir(d)\n"
              "open(os.path.join(d, 'marker.txt'), 'w').write('forged by ihh-s2')\n"
              "open(os.path.join(d, 'timestamp.txt'), 'w').write('2099-01-01 00:00:00.000000 UTC')")
    subprocess.run([sys.executable, "-c", script, str(forged)], user=forger.pw_uid, group=forger.pw_gid,
                   cwd="/", check=True)

    code, out = call(base, "POST", f"{api}/assignment/infogan_homework/collect", teach, {})
    assert code == 200 and out.get("success"), out
    for student in ("ihh-s1", "ihh-s2", "ihh-s3"):
        assert (course.course_dir / "submitted" / student / "infogan_homework" / "1_mi_bound.ipynb").exists(), student
    collected = course.course_dir / "submitted" / "ihh-s1" / "infogan_homework"
    assert (collected / "marker.txt").read_text() == "written by ihh-s1", "a forged submission was collected"
    report = [json.loads(line) for line in (course.course_dir / "exchange-report.jsonl").read_text().splitlines()]
    assert [(r["claimed_student"], "ihh-s2" in r["refused"]) for r in report] == [("ihh-s1", True)]

    # the instructor grades in the sandbox (make grade's command, in the course folder, as the instructor)
    teacher = pwd.getpwnam(TEACH)
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": str(course.course_dir),
           "INFOGAN_DATA": os.environ.get("INFOGAN_DATA", "")}
    graded = subprocess.run([sys.executable, "-m", "grading.grade", "--feedback", "--students", *STUDENTS],
                            cwd=course.course_dir, user=teacher.pw_uid, group=teacher.pw_gid, env=env,
                            capture_output=True, text=True, timeout=600)
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-3000:]
    code, out = call(base, "POST", f"{api}/assignment/infogan_homework/release_feedback", teach, {})
    assert code == 200 and out.get("success"), out

    totals = {}
    with open(course.course_dir / "grades.csv") as f:
        import csv

        for row in csv.DictReader(f):
            totals[row["student_id"]] = float(row["score"])
    solution = [nbformat.read(ROOT / "solutions" / "infogan_homework" / f"{n}.ipynb", as_version=4)
                for n in ("1_mi_bound", "2_third_code")]
    hidden = [line for nb in solution for cell in nb.cells if cell.cell_type == "code"
              for line in hidden_lines(cell.source)]
    seen = {}
    for student in STUDENTS:
        code, listed = call(base, "POST", f"/user/{student}/assignments/fetch_feedback", servers[student], where)
        assert code == 200 and listed.get("success"), listed
        pages = list((Path(pwd.getpwnam(student).pw_dir) / course.course_id / "infogan_homework" / "feedback")
                     .rglob("*.html"))
        assert {f.name for f in pages} == {"1_mi_bound.html", "2_third_code.html"}, pages
        text = {f.name: html.unescape(f.read_text()) for f in pages}
        assert not [line for page in text.values() for line in hidden if line in page], \
            f"a hidden test line reached {student}"
        seen[student] = sum(float(re.search(r"Score: ([0-9.]+)", page).group(1)) for page in text.values())
    assert seen == totals, (seen, totals)               # each fetched their own feedback: their own score
    assert totals["ihh-s1"] > totals["ihh-s3"] > totals["ihh-s2"] == 0, totals


def test_a_link_a_student_plants_for_the_lessons_gains_nothing(hub, servers):
    """The lessons are placed before each start if missing. A student who replaces them with a link
    to a folder of root's (or races the placing with one) must not get root to write or chown there:
    the placing runs as the student."""
    base, admin, student = hub["base"], hub["admin"], "ihh-s1"
    victim = hub["prefix"] / "victim"
    victim.mkdir(mode=0o755)
    (victim / "secret").write_text("root's")
    (victim / "secret").chmod(0o600)
    user = pwd.getpwnam(student)
    lessons = Path(user.pw_dir) / "infogan-course"
    assert call(base, "DELETE", f"/hub/api/users/{student}/server", admin)[0] in (202, 204)
    deadline = time.monotonic() + 60
    while call(base, "GET", f"/hub/api/users/{student}", admin)[1].get("servers"):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    script = "import os, sys; os.rename(sys.argv[1], sys.argv[1] + '.mine'); os.symlink(sys.argv[2], sys.argv[1])"
    subprocess.run([sys.executable, "-c", script, str(lessons), str(victim)], user=user.pw_uid, group=user.pw_gid,
                   cwd="/", check=True)
    assert call(base, "POST", f"/hub/api/users/{student}/server", admin)[0] in (201, 202)
    while not call(base, "GET", f"/hub/api/users/{student}", admin)[1].get("servers", {}).get("", {}).get("ready"):
        assert time.monotonic() < deadline + 60, hub["log"].read_text()[-3000:]
        time.sleep(0.5)
    assert sorted(p.name for p in victim.iterdir()) == ["secret"], "root wrote through the student's link"
    assert {victim.stat().st_uid, (victim / "secret").stat().st_uid} == {0}, "root chowned through the link"
    subprocess.run([sys.executable, "-c", "import os, sys; os.unlink(sys.argv[1]); os.rename(sys.argv[1] + '.mine', sys.argv[1])",
                    str(lessons)], user=user.pw_uid, group=user.pw_gid, cwd="/", check=True)
    assert call(base, "GET", f"/user/{student}/api/contents/infogan-course", servers[student])[0] == 200


def test_the_lessons_are_copied_by_the_student_not_by_root(monkeypatch):
    """Whatever a student does to their own home while the lessons are placed (swap the half-made
    folder for a link to /etc, say), the copying process has only the student's rights: a kit file
    only root can read is not copied."""
    import asyncio
    import types

    from coursehub import hubconfig

    name, kit = "ihh-s9", Path("/nonexistent")
    subprocess.run(["useradd", "--create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    try:
        kit = Path(tempfile.mkdtemp(prefix="ihh-kit-", dir="/srv"))   # a place the student can reach
        (kit / "notebooks").mkdir()
        (kit / "notebooks" / "01.ipynb").write_text("{}")
        (kit / "roots-only").mkdir(mode=0o700)
        for folder in (kit, kit / "notebooks"):
            folder.chmod(0o755)
        monkeypatch.setattr(hubconfig, "KIT", kit)
        monkeypatch.setattr(hubconfig, "LESSONS", ("notebooks", "roots-only"))
        warnings = []
        spawner = types.SimpleNamespace(user=types.SimpleNamespace(name=name), disks="",
                                        log=types.SimpleNamespace(warning=lambda *a: warnings.append(a)))
        asyncio.run(hubconfig.place_lessons(spawner))
        placed = Path(pwd.getpwnam(name).pw_dir) / "infogan-course"
        assert not placed.exists() and warnings, "a folder only root can read was copied: root did the copying"
        monkeypatch.setattr(hubconfig, "LESSONS", ("notebooks",))
        asyncio.run(hubconfig.place_lessons(spawner))
        assert (placed / "notebooks" / "01.ipynb").read_text() == "{}"
        assert placed.stat().st_uid == pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(kit, ignore_errors=True)


def test_a_students_kernel_cannot_read_the_instructors_folder_another_home_or_the_inbound_list(hub, servers):
    course = hub["course"]
    targets = {"course folder": str(course.course_dir), "seed": str(course.course_dir / ".grading" / "seed"),
               "solutions": str(course.course_dir / "solutions"),
               "another home": pwd.getpwnam("ihh-s2").pw_dir,
               "inbound": str(course.exchange / course.course_id / "inbound"),
               "hub state": str(course.run_dir)}
    code = ("import json, os\nout = {}\n"
            f"for name, path in {targets!r}.items():\n"
            "    try:\n        os.listdir(path) if os.path.isdir(path) else open(path).read()\n"
            "        out[name] = 'READ'\n"
            "    except OSError as e:\n        out[name] = type(e).__name__\n"
            "print(json.dumps(out))")
    ran = run_in_kernel(hub["base"], "ihh-s1", servers["ihh-s1"], code)
    assert ran["error"] is None, ran
    seen = json.loads(ran["stdout"])
    assert not [name for name, what in seen.items() if what == "READ"], seen
    wrote = run_in_kernel(hub["base"], "ihh-s1", servers["ihh-s1"],
                          "import os\nopen(os.path.join(os.environ['INFOGAN_DATA'], 'MNIST'), 'w')")
    assert (wrote["error"] or "").startswith("PermissionError"), "a student can write into the data folder"


def test_a_student_who_exhausts_memory_loses_only_their_own_kernel(hub, servers):
    base = hub["base"]
    limit = hub["course"].memory_bytes()
    ran = run_in_kernel(base, "ihh-s3", servers["ihh-s3"], f"x = b'1' * {2 * limit}\nprint('survived')",
                        timeout=60)
    assert "survived" not in ran["stdout"], "a kernel held twice the class's memory limit"
    assert ran["died"] or (ran["error"] or "").startswith("MemoryError"), ran
    for name in ("ihh-s1", "ihh-s3"):                 # the others, and the student's own server, go on
        assert call(base, "GET", f"/user/{name}/api/contents", servers[name])[0] == 200
    ok = run_in_kernel(base, "ihh-s2", servers["ihh-s2"], "print(sum(range(10)))")
    assert ok["stdout"].strip() == "45"


def test_from_a_students_kernel_formgrader_the_hub_api_and_the_proxy_api_refuse_on_loopback(hub, servers):
    """The kernel is on the same machine: it can reach the hub's and the proxy's ports directly, past
    the public proxy. Each must refuse it, with the server's own token too; formgrader listens on a
    privileged port, which the kernel cannot take while formgrader is down."""
    from coursehub.hubconfig import formgrader_service

    course = hub["course"]
    internal = course.internal_port
    urls = {"hub admin API": f"http://127.0.0.1:{internal + 1}/hub/api/users",
            "proxy API": f"http://127.0.0.1:{internal + 2}/api/routes",
            "formgrader": f"http://127.0.0.1:{internal}/services/{formgrader_service(course)}"
                          "/formgrader/api/assignments"}
    code = ("import json, os, urllib.request, urllib.error\nout = {}\n"
            "class Stay(urllib.request.HTTPRedirectHandler):\n"
            "    def redirect_request(self, *a, **k): return None\n"
            "opener = urllib.request.build_opener(Stay)\n"
            f"for name, url in {urls!r}.items():\n"
            "    for token in ('', os.environ.get('JUPYTERHUB_API_TOKEN', '')):\n"
            "        request = urllib.request.Request(url, headers={'Authorization': f'token {token}'} if token else {})\n"
            "        try:\n            out[f'{name} {bool(token)}'] = opener.open(request, timeout=20).status\n"
            "        except urllib.error.HTTPError as e:\n            out[f'{name} {bool(token)}'] = e.code\n"
            "        except OSError as e:\n            out[f'{name} {bool(token)}'] = type(e).__name__\n"
            "import socket\n"
            f"for port in {[internal, internal + 1, internal + 2]!r}:\n"
            "    try:\n        socket.socket().bind(('127.0.0.1', port))\n        out[f'squat {port}'] = 'bound'\n"
            "    except OSError as e:\n        out[f'squat {port}'] = type(e).__name__\n"
            "print(json.dumps(out))")
    ran = run_in_kernel(hub["base"], "ihh-s1", servers["ihh-s1"], code)
    assert ran["error"] is None, ran
    seen = json.loads(ran["stdout"])
    assert len(seen) == 9 and not [k for k, v in seen.items() if v == 200], seen
    assert {v for k, v in seen.items() if k.startswith("squat")} == {"PermissionError"}, \
        f"a student can listen on the hub's internal ports: {seen}"


def test_what_a_kernel_prints_goes_to_the_students_own_disk_not_the_hubs_log(hub, servers):
    marker = secrets.token_hex(8)
    ran = run_in_kernel(hub["base"], "ihh-s1", servers["ihh-s1"],
                        f"import os\nfor _ in range(64):\n    os.write(2, b'{marker}' * 8192)\nprint('done')")
    assert ran["error"] is None and not ran["died"], ran
    assert marker not in hub["log"].read_text(), "a kernel writes into the hub's log"
    own = Path(pwd.getpwnam("ihh-s1").pw_dir) / ".jupyter-server.log"
    assert marker in own.read_text() and own.stat().st_uid == pwd.getpwnam("ihh-s1").pw_uid


def test_formgrader_holds_no_capability_in_any_thread_and_has_no_terminals(hub, servers, released):
    """Formgrader serves on a privileged port that root opened for it: no thread of it, and nothing it
    starts, holds any capability."""
    from coursehub.hubconfig import formgrader_service

    base, service = hub["base"], f"/services/{formgrader_service(hub['course'])}"
    pid = int(subprocess.run(["pgrep", "-u", TEACH, "-f", "ServerApp.default_url=/formgrader"],
                             capture_output=True, text=True).stdout.split()[0])
    for thread in Path(f"/proc/{pid}/task").iterdir():        # capabilities belong to each thread
        status = dict(line.split(":", 1) for line in (thread / "status").read_text().splitlines())
        for field in ("CapEff", "CapPrm", "CapAmb", "CapInh"):
            assert int(status[field], 16) == 0, (thread.name, field, status[field])
    assert os.stat(f"/proc/{pid}").st_uid == pwd.getpwnam(TEACH).pw_uid
    assert call(base, "POST", f"{service}/api/terminals", released["token"], {})[0] in (403, 404)
    assert call(base, "GET", f"{service}/api/terminals", released["token"])[0] in (403, 404)


def test_a_student_who_fills_their_home_or_tmp_fills_only_their_own(hub, servers):
    _needs_disks()
    course = hub["course"]
    free_before = shutil.disk_usage("/").free
    code = ("import errno, json, os\nout = {}\n"
            "for name, path in (('home', os.path.expanduser('~/fill.bin')), ('tmp', '/tmp/fill.bin'),\n"
            "                   ('shm', '/dev/shm/fill.bin'), ('var-tmp', '/var/tmp/fill.bin'),\n"
            "                   ('run-lock', '/run/lock/fill.bin')):\n"
            "    written, block = 0, os.urandom(2**20)\n"
            "    try:\n        with open(path, 'wb') as f:\n"
            "            while written < 2**30:\n                f.write(block); f.flush(); written += len(block)\n"
            "        out[name] = ['no limit', written]\n"
            "    except OSError as e:\n        out[name] = [errno.errorcode.get(e.errno), written]\n"
            "print(json.dumps(out))")
    ran = run_in_kernel(hub["base"], "ihh-s3", servers["ihh-s3"], code, timeout=180)
    assert ran["error"] is None and not ran["died"], ran
    seen = json.loads(ran["stdout"])
    limits = {"home": course.disk_bytes(), "tmp": course.tmp_bytes(), "shm": course.tmp_bytes(),
              "var-tmp": course.tmp_bytes(), "run-lock": course.tmp_bytes()}
    for name, (why, written) in seen.items():
        assert why == "ENOSPC" and written <= limits[name], (name, why, written)
    assert free_before - shutil.disk_usage("/").free < 64 * 2**20, "the machine's disk filled"
    assert not Path("/tmp/fill.bin").exists(), "a student's /tmp is the machine's"

    # the others go on: they write in their homes and their /tmp, and see nothing of ihh-s3's
    ok = run_in_kernel(hub["base"], "ihh-s1", servers["ihh-s1"],
                       "import os\nopen(os.path.expanduser('~/mine.txt'), 'w').write('x' * 2**20)\n"
                       "open('/tmp/mine.txt', 'w').write('ok')\n"
                       "print(os.path.exists('/tmp/fill.bin'), os.path.exists('/dev/shm/fill.bin'))")
    assert ok["error"] is None and ok["stdout"].split() == ["False", "False"], ok
    cleaned = run_in_kernel(hub["base"], "ihh-s3", servers["ihh-s3"],
                            "import os\nfor p in ('~/fill.bin', '/tmp/fill.bin', '/dev/shm/fill.bin', "
                            "'/var/tmp/fill.bin', '/run/lock/fill.bin'):\n    os.unlink(os.path.expanduser(p))\n"
                            "print('freed')")
    assert cleaned["stdout"].strip() == "freed", cleaned


def test_a_student_who_fills_the_exchange_is_stopped_and_reported_and_the_others_still_submit(hub, servers, released):
    """Runs last: it stops ihh-s3's server."""
    _needs_disks()
    from coursehub.guard import REPORT

    base, course = hub["base"], hub["course"]
    inbound = course.exchange / course.course_id / "inbound"
    others_before = sorted(d.name for d in inbound.iterdir() if not d.name.startswith("ihh-s3+"))
    folder = inbound / "ihh-s3+infogan_homework+2026-12-01 00:00:00.000000 UTC+fill"
    fill = ("import os, time\nd = {folder!r}\nos.mkdir(d)\nf = open(os.path.join(d, 'big.bin'), 'wb')\n{then}\n"
            "block = os.urandom(2**20)\ntry:\n    while True:\n        f.write(block); f.flush()\n"
            "except OSError as e:\n    print('stopped by', e.strerror, flush=True)\ntime.sleep(60)\n")
    reports = course.prefix / "reports" / REPORT

    def exchange_freed():
        return shutil.disk_usage(course.exchange).free >= course.exchange_bytes() * 0.8

    ran = run_in_kernel(base, "ihh-s3", servers["ihh-s3"], fill.format(folder=str(folder), then=""), timeout=90)
    assert ran["died"], f"the process filling the exchange went on: {ran}"
    wait_until(exchange_freed, 30, "the exchange stayed full")
    report = [json.loads(line) for line in reports.read_text().splitlines()]
    assert {r["student"] for r in report} == {"ihh-s3"} and str(folder) in {r["removed"] for r in report}
    wait_until(lambda: not call(base, "GET", "/hub/api/users/ihh-s3", hub["admin"])[1].get("servers"), 30,
               "the student filling the exchange still has a server")

    # a file deleted but kept open fills the exchange with no name to find: its writer is found through
    # /proc and killed, and the space comes back
    others_before = sorted(d.name for d in inbound.iterdir() if not d.name.startswith(("ihh-s2+", "ihh-s3+")))
    ghost = inbound / "ihh-s2+infogan_homework+2026-12-01 00:00:00.000000 UTC+ghost"
    hide = "os.unlink(os.path.join(d, 'big.bin')); os.rmdir(d)"
    ran = run_in_kernel(base, "ihh-s2", servers["ihh-s2"], fill.format(folder=str(ghost), then=hide), timeout=90)
    assert ran["died"], f"the process holding a deleted file on the exchange went on: {ran}"
    wait_until(exchange_freed, 30, "the exchange stayed full")
    report = [json.loads(line) for line in reports.read_text().splitlines()]
    assert [r for r in report if r["student"] == "ihh-s2" and "deleted file" in r["why"]], report

    # thousands of empty folders (inodes, not bytes): all but the newest few go, in one sweep's time
    assert call(base, "POST", "/hub/api/users/ihh-s3/server", hub["admin"])[0] in (201, 202)
    wait_until(lambda: call(base, "GET", "/hub/api/users/ihh-s3", hub["admin"])[1].get("servers", {})
               .get("", {}).get("ready"), 60, "ihh-s3's server did not start again")
    code = (f"import os\nfor i in range(5000):\n    os.mkdir(os.path.join({str(inbound)!r}, "
            "f'ihh-s3+infogan_homework+2026-12-01 00:00:00.000000 UTC+{i:05d}'))\nprint('made')")
    assert run_in_kernel(base, "ihh-s3", servers["ihh-s3"], code, timeout=120)["stdout"].strip() == "made"
    wait_until(lambda: len([d for d in inbound.iterdir() if d.name.startswith("ihh-s3+")]) <= 20, 30,
               "a student's thousands of folders stayed in the exchange")

    # nothing of the others was touched, and they still submit and are collected
    assert sorted(d.name for d in inbound.iterdir() if not d.name.startswith(("ihh-s2+", "ihh-s3+"))) == others_before
    student, where = "ihh-s1", {"course_id": course.course_id, "assignment_id": "infogan_homework"}
    if not (Path(pwd.getpwnam(student).pw_dir) / course.course_id / "infogan_homework").exists():
        assert call(base, "POST", f"/user/{student}/assignments/fetch", servers[student], where)[0] == 200
    code, listed = call(base, "POST", f"/user/{student}/assignments/submit", servers[student], where)
    assert code == 200 and listed.get("success"), listed
    code, out = call(base, "POST", f"{released['api']}/assignment/infogan_homework/collect", released["token"], {})
    assert code == 200 and out.get("success"), out
    assert (course.course_dir / "submitted" / student / "infogan_homework" / "1_mi_bound.ipynb").exists()
