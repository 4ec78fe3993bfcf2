"""Course hub capacity: a class of N students logging in, spawning, fetching, answering and submitting at once.

For each class size (`--students 10 20 40`, a fresh hub for each), the course hub as `make hub` runs it
(`coursehub.setup`, `hub/jupyterhub_config.py`: PAM log-in, each server in a cgroup of its own, homes
and the exchange on disk images of their own, formgrader, the idle culler and the exchange's guard as
services, configurable-http-proxy) on loopback, with one instructor and N students as real Unix users
with passwords (ihc-teach, ihc-s001, …; the class's folder in /srv/ihc-*). The instructor releases the
homework through formgrader's API; then every student at once, each an asyncio task with a cookie jar
of its own, does what a browser does:

    log in   GET /hub/login, POST the form (username, password, _xsrf): PAM checks the password
    spawn    GET /hub/spawn; past the hub's 10 s, the spawn-pending page and its progress event stream
    open     GET /user/<name>/lab: the OAuth handshake with the hub, then the lab page (not its static files)
    fetch    POST /user/<name>/assignments/fetch (nbgrader's Assignments tab)
    answer   both notebooks read and written back through the contents API with every answer cell filled
             in from solutions/, and the trained model uploaded (harness/third_code.pt, 1.7 MB): a student
             who solved it all (`--answers edit`: one cell added to part 1 instead)
    submit   POST /user/<name>/assignments/submit

Measured:
- each phase's median, p95 and max over the students, and the time from the start to the last submission;
- over that time (psutil, every 0.5 s): CPU seconds and peak RSS of the hub, the proxy, the services and
  this process (the simulated browsers share the machine's cores); the machine's CPU use and memory;
- the instructor's collect (formgrader);
- after `--settle` seconds, each idle student server: its cgroup's memory (usage, RSS, page cache), its
  processes' RSS and unique memory (USS), the CPU seconds it spent since its spawn;
- with `--grade`: `make grade`'s command (`python -m grading.grade`, one submission per core) as the
  instructor in the course folder, on every collected submission (`--grade K`: the first K), while the
  hub and the idle servers run: submissions per minute. Part 2's graded check reads MNIST: it is copied
  into the class's data folder from --data, $INFOGAN_DATA or ~/.cache/infogan-course/data.

    sudo .venv/bin/python benchmarks/hub_capacity.py --students 10 20 40 --grade --json capacity.json
    sudo .venv/bin/python benchmarks/hub_capacity.py --students 3          # a smoke test, about a minute

Needs root (Unix users, cgroups, mounts) and npm (configurable-http-proxy goes into .hub-node, as for
`make hub`). Everything it makes is removed at the end, also after an error, Ctrl-C or SIGTERM: the
hub and its proxy, the processes of its users, their mounts, cgroups, accounts and homes, the class's
folder. After a run that was killed outright (SIGKILL), `--clean-leftovers` removes what it left.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import csv
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursehub.course import Course  # noqa: E402
from coursehub.hubconfig import formgrader_service  # noqa: E402
from coursehub.setup import setup  # noqa: E402
from coursehub.spawner import PARENT as HUB_CGROUPS  # noqa: E402
from grading.cgroups import existing  # noqa: E402
from harness.fake_class import FIXTURE_MODEL, NOTEBOOKS, solution_sources  # noqa: E402
from harness.hubapi import call  # noqa: E402

NODE = ROOT / ".hub-node"
PREFIX = "ihc-"                       # every user and folder of this benchmark, and nothing else
WHERE = Path("/srv")                  # the class's folder goes here (not under /tmp: each server has its own)
TEACH = "ihc-teach"
COURSE_ID = "ihc-course"
ASSIGNMENT = "infogan_homework"
PHASES = ("log in", "spawn", "open", "fetch", "answer", "submit")
MB = 2**20
CHILDREN = {"proxy": "configurable-http-proxy", "formgrader": "default_url=/formgrader",   # the hub's, by
            "idle culler": "jupyterhub_idle_culler", "exchange guard": "coursehub.guard"}  # command line

# what a browser sends: a page it navigates to, and a request its JavaScript makes (JupyterHub checks
# the _xsrf token of the second kind, and warns about requests that say neither)
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin"}
SCRIPT = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}


# ---------------------------------------------------------------------------------------------------
# small helpers

def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def summary(values: list[float]) -> dict:
    """median, p95 and max of `values` (None when there are none)."""
    if not values:
        return {"median": None, "p95": None, "max": None}
    p95 = statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]
    return {"median": statistics.median(values), "p95": p95, "max": max(values)}


def free_ports(count: int, lowest: int = 20000, highest: int = 50000) -> int:
    """The first of `count` consecutive free ports on loopback, from a random start (another hub on this
    machine, the test suite's, picks its own)."""
    for _ in range(200):
        first = lowest + secrets.randbelow(highest - lowest - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1")


def proxy_command() -> str:
    """configurable-http-proxy, installed into .hub-node as `make hub` does."""
    binary = NODE / "node_modules" / ".bin" / "configurable-http-proxy"
    if not binary.exists():
        if not shutil.which("npm"):
            raise SystemExit("needs configurable-http-proxy: install Node.js and npm (apt-get install npm)")
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(NODE),
                        "configurable-http-proxy@5"], check=True, capture_output=True, timeout=300)
    return str(binary)


def data_source(given: str | None) -> Path:
    """Where MNIST is read from: --data, else $INFOGAN_DATA, else the per-user cache (as infogan_lib.data
    resolves it; not imported, so that this process does not load torch)."""
    return Path(given or os.environ.get("INFOGAN_DATA") or Path.home() / ".cache" / "infogan-course" / "data")


def share_data(source: Path, target: Path) -> None:
    """MNIST and Fashion-MNIST in the class's data folder, read-only for everyone, as an instructor puts
    them there: the students' servers and the grader read them through INFOGAN_DATA (part 2's graded
    check draws on MNIST)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("MNIST", "FashionMNIST"):
        if (source / name / "raw").is_dir():
            shutil.copytree(source / name / "raw", target / name / "raw", dirs_exist_ok=True)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def our_users() -> list[str]:
    return sorted(p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(PREFIX))


def processes_of(names: list[str]) -> list[psutil.Process]:
    uids = set()
    for name in names:
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(name).pw_uid)
    found = []
    for proc in psutil.process_iter(["uids"]):
        ids = proc.info["uids"]
        if ids and (ids.real in uids or ids.effective in uids):
            found.append(proc)
    return found


def kill(processes: list[psutil.Process]) -> None:
    """SIGKILL each of these processes, by its pid (psutil refuses a pid reused since)."""
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(processes, timeout=10)


def unmount_ours() -> list[str]:
    """Unmount, deepest first, every mount point with a path component named ihc-…: the homes and the
    exchange that coursehub.setup puts on disk images of their own (coursehub.disks). Lazily: the
    loop device goes when its last user does."""
    points = []
    with open("/proc/self/mounts") as f:
        for line in f:
            point = line.split()[1].replace("\\040", " ")
            if any(part.startswith(PREFIX) for part in Path(point).parts):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True)
    return points


def remove_users(names: list[str]) -> None:
    """End the users' processes, unmount their homes, remove their cgroups (the spawner's), accounts
    and homes."""
    for _ in range(3):
        left = processes_of(names)
        if not left:
            break
        kill(left)
    unmount_ours()
    for name in names:
        group = existing(f"user-{name}", HUB_CGROUPS)
        if group is not None and group.dirs:
            group.destroy()
        subprocess.run(["userdel", "--remove", name], capture_output=True)


def stray_cgroups() -> list[Path]:
    """Folders infogan-hub/user-ihc-* anywhere in the cgroup hierarchies: a killed run's may sit under
    another cgroup than this process's (where grading.cgroups.existing looks)."""
    with open("/proc/self/mounts") as f:
        roots = {Path(line.split()[1]) for line in f if line.split()[2] in ("cgroup", "cgroup2")}
    found = []
    for root in roots:
        for folder, subfolders, _ in os.walk(root):
            if Path(folder).name == HUB_CGROUPS:
                found += [Path(folder) / d for d in subfolders if d.startswith(f"user-{PREFIX}")]
                subfolders.clear()
    return found


def clean_leftovers() -> None:
    """What a killed run left: its hub and proxy (running in a /srv/ihc-* folder), users named ihc-*,
    their processes, mounts and cgroups, the /srv/ihc-* folders and homes left behind."""
    hubs = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.cwd().startswith(f"{WHERE}/{PREFIX}"):
                hubs.append(proc)
    kill(hubs)
    users = our_users()
    remove_users(users)
    unmount_ours()
    for group in stray_cgroups():                # their processes are gone: empty, so rmdir removes them
        with contextlib.suppress(OSError):
            group.rmdir()
    folders = [p for p in [*WHERE.glob(f"{PREFIX}*"), *Path("/home").glob(f"{PREFIX}*")] if p.is_dir()]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    print(f"ended {len(hubs)} hub process(es); removed users {users or 'none'}, "
          f"folders {[str(f) for f in folders] or 'none'}")


# ---------------------------------------------------------------------------------------------------
# the hub

def course_toml(students: list[str], limits: dict[str, str], prefix: Path, port: int, internal_port: int) -> str:
    """The class file (hub/course.example.toml's fields) for one instructor and these students."""
    sizes = "".join(f'{key} = "{value}"\n' for key, value in limits.items())
    return f'''course_id = "{COURSE_ID}"
authenticator = "pam"
instructors = ["{TEACH}"]
students = {json.dumps(students)}
create_users = true
[limits]
{sizes}processes = 512
idle_minutes = 60
[paths]
prefix = "{prefix}"
[hub]
ip = "127.0.0.1"
port = {port}
internal_port = {internal_port}
'''


class Hub:
    """A fresh course hub for `size` students on loopback, as `make hub` starts it; `close()` removes
    everything it made (always called: use it as a context manager)."""

    def __init__(self, size: int, limits: dict[str, str], data: Path, logs: Path | None = None):
        self.students = [f"{PREFIX}s{i:03d}" for i in range(1, size + 1)]
        self.logs = logs                          # where to copy the hub's log (and grading report) at the end
        self.limits = limits                      # the course file's [limits]: memory, disk, exchange, tmp
        self.data = data
        self.prefix: Path | None = None
        self.course: Course | None = None
        self.process: subprocess.Popen | None = None
        self.passwords: dict[str, str] = {}
        self.admin = secrets.token_hex(32)
        self.memory_before = psutil.virtual_memory().used

    def __enter__(self) -> "Hub":
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def log(self) -> Path:
        return self.prefix / "hub.log"

    def start(self) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix=PREFIX, dir=WHERE))
        self.prefix.chmod(0o755)
        port = free_ports(1)                      # the public one
        internal_port = free_ports(3, 700, 897)  # formgrader, the hub's API, the proxy's API: privileged
        self.base = f"http://127.0.0.1:{port}"
        course_file = self.prefix / "course.toml"
        course_file.write_text(course_toml(self.students, self.limits, self.prefix / "srv", port, internal_port))
        self.course = Course.load(course_file)
        setup(self.course)
        share_data(self.data, self.course.data_dir)
        self.passwords = {name: secrets.token_urlsafe(12) for name in self.course.people}
        subprocess.run(["chpasswd"], input="".join(f"{n}:{p}\n" for n, p in self.passwords.items()),
                       text=True, check=True)
        env = {**os.environ, "INFOGAN_COURSE": str(course_file), "INFOGAN_HUB_ADMIN_TOKEN": self.admin,
               "INFOGAN_HUB_PROXY": proxy_command(),
               "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])}
        command = [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "hub" / "jupyterhub_config.py")]
        with open(self.log, "w") as log:
            # stdin: not the terminal, where every Jupyter server would ask "Shutdown (y/[n])?" on SIGINT
            self.process = subprocess.Popen(command, cwd=self.course.run_dir, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while self.call("GET", "/hub/api/")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the hub did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.5)
        self.hub_process = psutil.Process(self.process.pid)

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Before the class: the hub, its proxy, each service it started, and this process (the
        simulated browsers, on the same cores)."""
        out = {"hub": [self.hub_process], **{key: [] for key in CHILDREN}, "other services": [],
               "client": [psutil.Process()]}
        for child in self.hub_process.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                command = " ".join(child.cmdline())
                out[next((key for key, mark in CHILDREN.items() if mark in command), "other services")].append(child)
        return out

    def wait_idle(self, share: float = 0.05, timeout: float = 60) -> float:
        """Wait until the hub and everything it started use less than `share` of a core for two
        seconds running (a class starts long after its hub: the services' start-up, such as the
        exchange guard's first seconds, is not the class's); the seconds waited."""
        start = time.perf_counter()
        family = [self.hub_process, *self.hub_process.children(recursive=True)]

        def cpu() -> float:
            total = 0.0
            for proc in family:
                with contextlib.suppress(psutil.Error):
                    total += sum(proc.cpu_times()[:2])
            return total

        quiet, before = 0, cpu()
        while quiet < 2 and time.perf_counter() - start < timeout:
            time.sleep(1)
            now = cpu()
            quiet = quiet + 1 if now - before < share else 0
            before = now
        return time.perf_counter() - start

    def call(self, method: str, path: str, token: str | None = None, body=None) -> tuple[int, object]:
        """The hub's REST API (or a service's), with the admin token unless another is given."""
        return call(self.base, method, path, token or self.admin, body, timeout=600)

    def instructor_token(self) -> str:
        code, made = self.call("POST", f"/hub/api/users/{TEACH}/tokens", body={"expires_in": 7200,
                                                                             "scopes": ["inherit"]})
        if code != 201:
            raise RuntimeError(f"no token for the instructor: {code} {made}")
        return made["token"]

    def formgrader(self, action: str, token: str, timeout: float = 120) -> float:
        """The instructor's `action` (release, collect) through formgrader's API; its seconds. Retried
        while formgrader (a service the hub starts) is not up yet."""
        path = f"/services/{formgrader_service(self.course)}/formgrader/api/assignment/{ASSIGNMENT}/{action}"
        deadline = time.monotonic() + timeout
        while True:
            start = time.perf_counter()
            code, out = self.call("POST", path, token, {})
            if code == 200 and isinstance(out, dict) and out.get("success"):
                return time.perf_counter() - start
            if time.monotonic() > deadline:
                raise RuntimeError(f"formgrader's {action} failed: {code} {str(out)[:2000]}")
            time.sleep(1)

    def _keep_logs(self) -> None:
        if not self.logs or self.prefix is None or not self.log.exists():
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        size = len(self.students)
        shutil.copy(self.log, self.logs / f"hub-{size}.log")
        report = self.course.course_dir / "grading-report.md" if self.course else None
        if report is not None and report.exists():
            shutil.copy(report, self.logs / f"grading-report-{size}.md")

    def close(self) -> None:
        """Stop the hub (it stops the servers), then end whatever is left, by pid; remove the users
        and the folder. Ctrl-C is ignored meanwhile, so that nothing is left half removed."""
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            family = []
            if self.process is not None:
                with contextlib.suppress(psutil.Error):
                    family = psutil.Process(self.process.pid).children(recursive=True)
                with contextlib.suppress(OSError):
                    os.killpg(self.process.pid, signal.SIGTERM)
                try:
                    self.process.wait(90)
                except subprocess.TimeoutExpired:
                    print("   the hub did not stop within 90 s of SIGTERM: killed", flush=True)
                    with contextlib.suppress(OSError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(10)
            kill([p for p in family if p.is_running()])
            self._keep_logs()
            if self.course is not None:
                remove_users([n for n in self.course.people if n in our_users()])
            unmount_ours()                       # the exchange
            if self.prefix is not None:
                shutil.rmtree(self.prefix, ignore_errors=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ---------------------------------------------------------------------------------------------------
# one student, as a browser

class PhaseError(RuntimeError):
    pass


def gist(r: httpx.Response, length: int = 200) -> str:
    """The status and the start of what a response says, as text (an HTML page's tags and scripts dropped)."""
    text = r.text
    if "<html" in text[:500].lower():
        text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
        text = re.sub(r"<[^>]+>", " ", text)
    return f"{r.status_code} {' '.join(text.split())[:length]}"


class Browser:
    """One student's browser: a cookie jar of its own, the headers a browser sends, the _xsrf token
    its JavaScript would read from its cookies."""

    def __init__(self, base: str):
        self.client = httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(600), follow_redirects=False)

    async def close(self) -> None:
        await self.client.aclose()

    def xsrf(self, path: str) -> str:
        for cookie in self.client.cookies.jar:
            if cookie.name == "_xsrf" and cookie.path.rstrip("/") == path.rstrip("/"):
                return cookie.value
        raise PhaseError(f"no _xsrf cookie for {path}")

    async def page(self, path: str, follow: bool = False) -> httpx.Response:
        return await self.client.get(path, headers=NAVIGATE, follow_redirects=follow)

    async def script(self, method: str, path: str, xsrf_path: str, **kwargs) -> httpx.Response:
        """A request of the page's JavaScript (fetch): the _xsrf header; a 2xx status or PhaseError."""
        headers = {**SCRIPT, "X-XSRFToken": self.xsrf(xsrf_path)}
        r = await self.client.request(method, path, headers=headers, **kwargs)
        if not 200 <= r.status_code < 300:
            raise PhaseError(f"{method} {path}: {gist(r)}")
        return r


async def log_in(browser: Browser, name: str, password: str) -> None:
    r = await browser.page("/hub/login")
    found = re.search(r'name="_xsrf"\s+value="([^"]+)"', r.text)
    if r.status_code != 200 or not found:
        raise PhaseError(f"the log-in page, no _xsrf field: {gist(r)}")
    r = await browser.client.post("/hub/login", headers=NAVIGATE,
                                  data={"username": name, "password": password, "_xsrf": found.group(1)})
    if r.status_code != 302:
        why = "invalid username or password" if "Invalid username or password" in r.text else gist(r)
        raise PhaseError(f"log-in refused: {why}")


async def spawn(browser: Browser, name: str) -> None:
    """/hub/spawn starts the server and answers within the hub's slow_spawn_timeout (10 s): with the
    server, or with the pending page, whose progress stream says when it is ready."""
    r = await browser.page("/hub/spawn")
    where = r.headers.get("location", "")
    if r.status_code != 302:
        raise PhaseError(f"/hub/spawn: {gist(r)}")
    if "spawn-pending" not in where:
        return
    r = await browser.page(where)
    if r.status_code != 200:
        raise PhaseError(f"{where}: {gist(r)}")
    params = {"_xsrf": browser.xsrf("/hub/")}               # an EventSource cannot send headers
    headers = {**SCRIPT, "Accept": "text/event-stream"}
    async with browser.client.stream("GET", f"/hub/api/users/{name}/server/progress", params=params,
                                     headers=headers) as stream:
        if stream.status_code != 200:
            raise PhaseError(f"progress stream: {stream.status_code}")
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            if event.get("ready"):
                return
            if event.get("failed"):
                raise PhaseError(f"spawn failed: {event.get('message')}")
    raise PhaseError("the progress stream ended before the server was ready")


async def open_lab(browser: Browser, name: str) -> None:
    r = await browser.page(f"/user/{name}/lab", follow=True)
    if r.status_code != 200 or not r.url.path.startswith(f"/user/{name}/lab"):
        raise PhaseError(f"opening the lab ended at {r.url.path}: {gist(r)}")


async def fetch(browser: Browser, name: str) -> None:
    r = await browser.script("POST", f"/user/{name}/assignments/fetch", f"/user/{name}/",
                             json={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
    if r.json().get("success") is False:
        raise PhaseError(f"fetch: {gist(r)}")


async def answer(browser: Browser, name: str, answers: dict) -> None:
    """Each notebook read and written back through the contents API, answered; the model uploaded."""
    folder = f"/user/{name}/api/contents/{COURSE_ID}/{ASSIGNMENT}"
    xsrf_path = f"/user/{name}/"
    for notebook, sources in answers["notebooks"].items():
        r = await browser.script("GET", f"{folder}/{notebook}.ipynb", xsrf_path, params={"content": 1})
        nb = r.json()["content"]
        if sources is None:
            nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": f"edited by {name}"})
        else:
            for cell in nb["cells"]:
                gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if gid in sources:
                    cell["source"] = sources[gid]
        await browser.script("PUT", f"{folder}/{notebook}.ipynb", xsrf_path,
                             json={"type": "notebook", "format": "json", "content": nb})
    if answers["model"]:
        await browser.script("PUT", f"{folder}/third_code.pt", xsrf_path,
                             json={"type": "file", "format": "base64", "content": answers["model"]})


async def submit(browser: Browser, name: str) -> None:
    r = await browser.script("POST", f"/user/{name}/assignments/submit", f"/user/{name}/",
                             json={"course_id": COURSE_ID, "assignment_id": ASSIGNMENT})
    if r.json().get("success") is False:
        raise PhaseError(f"submit: {gist(r)}")


async def one_student(base: str, name: str, password: str, answers: dict, t0: float) -> dict:
    """The six phases in turn; each one's seconds, when the last one ended, or where it failed."""
    browser = Browser(base)
    steps = {"log in": lambda: log_in(browser, name, password), "spawn": lambda: spawn(browser, name),
             "open": lambda: open_lab(browser, name), "fetch": lambda: fetch(browser, name),
             "answer": lambda: answer(browser, name, answers), "submit": lambda: submit(browser, name)}
    out = {"name": name, "seconds": {}, "submitted_at": None, "error": None}
    try:
        for phase, step in steps.items():
            start = time.perf_counter()
            try:
                await step()
            except Exception as err:  # noqa: BLE001 - one student's failure is reported, the others go on
                out["error"] = f"{phase}: {type(err).__name__}: {err}"
                return out
            out["seconds"][phase] = time.perf_counter() - start
        out["submitted_at"] = time.perf_counter() - t0
        return out
    finally:
        await browser.close()


async def whole_class(hub: Hub, answers: dict, timeout: float) -> tuple[list[dict], float]:
    """Every student at once; their results and the seconds until the last one finished or failed."""
    t0 = time.perf_counter()

    async def bounded(name):
        try:
            return await asyncio.wait_for(one_student(hub.base, name, hub.passwords[name], answers, t0), timeout)
        except asyncio.TimeoutError:
            return {"name": name, "seconds": {}, "submitted_at": None, "error": f"not done within {timeout:.0f} s"}

    results = await asyncio.gather(*(bounded(name) for name in hub.students))
    return list(results), time.perf_counter() - t0


def prepared_answers(kind: str) -> dict:
    """What each student writes, read before the class starts (so that the clock measures the hub)."""
    if kind == "edit":
        return {"notebooks": {"1_mi_bound": None}, "model": None}
    return {"notebooks": {name: solution_sources(name) for name in NOTEBOOKS},
            "model": base64.b64encode(FIXTURE_MODEL.read_bytes()).decode()}


# ---------------------------------------------------------------------------------------------------
# what the machine spends

class Sampler(threading.Thread):
    """Every `interval` s: CPU seconds and RSS of each group of processes (summed over the group), and
    the machine's memory in use; `stop()` gives the CPU spent since the start and the peak RSS."""

    def __init__(self, groups: dict[str, list[psutil.Process]], interval: float = 0.5):
        super().__init__(daemon=True)
        self.groups = groups
        self.interval = interval
        self.first_cpu: dict[str, float] = {}
        self.last_cpu: dict[str, float] = {}
        self.peak_rss = dict.fromkeys(groups, 0)
        self.peak_used = 0
        self.finished = threading.Event()
        self.machine_first = psutil.cpu_times()
        self.started_at = time.perf_counter()
        self.sample()

    def sample(self) -> None:
        for key, processes in self.groups.items():
            cpu = rss = 0
            for proc in processes:
                with contextlib.suppress(psutil.Error):
                    with proc.oneshot():
                        cpu += sum(proc.cpu_times()[:2])
                        rss += proc.memory_info().rss
            self.first_cpu.setdefault(key, cpu)
            self.last_cpu[key] = cpu
            self.peak_rss[key] = max(self.peak_rss[key], rss)
        self.peak_used = max(self.peak_used, psutil.virtual_memory().used)

    def run(self) -> None:
        while not self.finished.wait(self.interval):
            self.sample()

    def stop(self) -> dict:
        self.finished.set()
        self.join()
        self.sample()
        seconds = time.perf_counter() - self.started_at
        now, first = psutil.cpu_times(), self.machine_first
        idle = (now.idle + getattr(now, "iowait", 0)) - (first.idle + getattr(first, "iowait", 0))
        total = sum(now) - sum(first)
        out = {key: {"cpu_s": self.last_cpu[key] - self.first_cpu[key], "peak_rss_mb": self.peak_rss[key] / MB,
                     "processes": len(self.groups[key])} for key in self.groups}
        out["machine"] = {"seconds": seconds, "cpu_busy": 1 - idle / total if total else None,
                          "peak_used_mb": self.peak_used / MB}
        return out


def cgroup_memory(name: str) -> dict:
    """The memory of the student's cgroup (the spawner's infogan-hub/user-<name>), MB: usage, RSS
    (anonymous memory) and page cache; {} without cgroups."""
    group = existing(f"user-{name}", HUB_CGROUPS)
    folder = group and (group.dirs.get("memory") or group.dirs.get(""))
    if not folder:
        return {}
    stat = dict(line.split() for line in (folder / "memory.stat").read_text().splitlines())
    if (folder / "memory.usage_in_bytes").exists():                                  # cgroup v1
        usage = int((folder / "memory.usage_in_bytes").read_text())
        rss, cache = int(stat.get("total_rss", 0)), int(stat.get("total_cache", 0))
    else:                                                                            # cgroup v2
        usage = int((folder / "memory.current").read_text())
        rss, cache = int(stat.get("anon", 0)), int(stat.get("file", 0))
    return {"usage_mb": usage / MB, "rss_mb": rss / MB, "cache_mb": cache / MB}


def student_server(name: str) -> dict:
    """A student's server now: its cgroup's memory, its processes' RSS and unique memory (USS), and
    the CPU seconds they have spent (their children's included)."""
    rss = uss = cpu = 0.0
    for proc in processes_of([name]):
        with contextlib.suppress(psutil.Error):
            info = proc.memory_full_info()
            rss, uss = rss + info.rss, uss + info.uss
            cpu += sum(proc.cpu_times()[:4])
    return {**cgroup_memory(name), "process_rss_mb": rss / MB, "uss_mb": uss / MB, "cpu_s": cpu}


def log_summary(path: Path, top: int = 8) -> dict:
    """Warnings and errors in the hub's log (the hub, the proxy, the services and every server write
    there): counts, and the most frequent messages with numbers and names blanked out."""
    pattern = re.compile(r"^\[([WE]) \S+ \S+ ([^\]]+)\]\s*(.*)")
    counts = {"W": 0, "E": 0}
    messages: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        found = pattern.match(line)
        if not found:
            continue
        level, source, text = found.groups()
        counts[level] += 1
        text = re.sub(r"\d+(\.\d+)?", "N", re.sub(rf"{PREFIX}s\d+", "<student>", text))
        key = f"{level} {source.split()[0]}: {text[:160]}"
        messages[key] = messages.get(key, 0) + 1
    frequent = sorted(messages.items(), key=lambda kv: -kv[1])[:top]
    return {"warnings": counts["W"], "errors": counts["E"], "frequent": [f"{n}× {m}" for m, n in frequent]}


# ---------------------------------------------------------------------------------------------------
# grading

def grade(hub: Hub, count: int, jobs: int) -> dict:
    """`make grade`'s command as the instructor in the course folder (as tests/test_hub.py runs it),
    on the first `count` collected submissions (0: all): wall time, submissions per minute, scores."""
    course = hub.course.course_dir
    students = sorted(p.name for p in (course / "submitted").iterdir() if p.is_dir())
    students = students[:count] if count else students
    teacher = pwd.getpwnam(TEACH)
    env = {"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": str(course),
           "INFOGAN_DATA": str(hub.course.data_dir)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "grading.grade", "--jobs", str(jobs), "--students", *students],
                          cwd=course, user=teacher.pw_uid, group=teacher.pw_gid, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    markers = (course / ".grading" / "graded" / ASSIGNMENT).glob("*.json")
    each = [json.loads(marker.read_text())["seconds"] for marker in markers]
    scores = set()
    if (course / "grades.csv").exists():
        with open(course / "grades.csv") as f:
            scores = {f"{float(row['score']):g}/{float(row['max_score']):g}" for row in csv.DictReader(f)}
    return {"students": len(students), "graded": len(each), "jobs": jobs, "wall_s": wall,
            "per_minute": 60 * len(each) / wall if wall else None, "each_s": summary(each),
            "scores": sorted(scores), "returncode": done.returncode,
            "output_tail": (done.stdout + done.stderr)[-1500:] if done.returncode else ""}


# ---------------------------------------------------------------------------------------------------
# one class size

def the_class(hub: Hub, answers: dict, timeout: float) -> dict:
    """Every student at once, with the hub's, the proxy's and the services' CPU and memory sampled."""
    sampler = Sampler(hub.processes())
    sampler.start()
    try:
        students, wall = asyncio.run(whole_class(hub, answers, timeout))
    finally:
        spent = sampler.stop()
    spent["machine"]["used_before_hub_mb"] = hub.memory_before / MB
    done = [s["submitted_at"] for s in students if s["submitted_at"] is not None]
    return {"to_last_submission_s": max(done) if done else None, "class_wall_s": wall, "submitted": len(done),
            "failures": [f"{s['name']}: {s['error']}" for s in students if s["error"]],
            "phases": {p: summary([s["seconds"][p] for s in students if p in s["seconds"]]) for p in PHASES},
            "spent": spent}


IDLE_FIGURES = ("usage_mb", "rss_mb", "cache_mb", "process_rss_mb", "uss_mb", "cpu_s")


def idle_figures(hub: Hub) -> dict:
    """Each student's server once the class is over (median, p95, max over the students); the hub's RSS."""
    servers = [student_server(name) for name in hub.students]
    return {"idle_server": {key: summary([v[key] for v in servers if key in v]) for key in IDLE_FIGURES},
            "idle_servers_total_mb": sum(v.get("usage_mb", v["process_rss_mb"]) for v in servers),
            "hub_rss_idle_mb": hub.hub_process.memory_info().rss / MB}


def measure(size: int, args) -> dict:
    """One class size on a fresh hub: release, the class, collect, the idle servers, grading."""
    answers = prepared_answers(args.answers)
    limits = {"memory": args.memory, "disk": args.disk, "exchange": args.exchange, "tmp": args.tmp}
    print(f"\n== a class of {size}: preparing the accounts and starting a fresh hub", flush=True)
    with Hub(size, limits, data_source(args.data), Path(args.logs) if args.logs else None) as hub:
        try:
            teach = hub.instructor_token()
            run = {"students": size, "answers": args.answers, "limits": limits,
                   "release_s": hub.formgrader("release", teach), "hub_settled_s": hub.wait_idle()}
            print(f"   released; the hub was quiet after {run['hub_settled_s']:.0f} s; {size} students log in, "
                  "spawn, open, fetch, answer, submit…", flush=True)
            run.update(the_class(hub, answers, args.timeout))
            run["collect_s"] = hub.formgrader("collect", teach)
            run["collected"] = sum(1 for p in (hub.course.course_dir / "submitted").glob(f"*/{ASSIGNMENT}"))
            print(f"   {run['submitted']} submitted, {run['collected']} collected; settling {args.settle:.0f} s",
                  flush=True)
            time.sleep(args.settle)
            run.update(idle_figures(hub))
            if args.grade is not None and run["collected"]:
                print(f"   grading {args.grade or run['collected']} submission(s), {args.grade_jobs} at a time…",
                      flush=True)
                run["grade"] = grade(hub, args.grade, args.grade_jobs)
            run["hub_log"] = log_summary(hub.log)
        finally:
            print("   stopping the hub, removing the users…", flush=True)
    return run


# ---------------------------------------------------------------------------------------------------
# the report

def fmt(value, unit: str = "", digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


PHASE_NAMES = {"log in": "log in (form, PAM)", "spawn": "spawn → ready", "open": "open the lab (OAuth)",
               "fetch": "fetch", "answer": "answer (contents API)", "submit": "submit"}
IDLE_NAMES = {"usage_mb": "cgroup memory in use, MB", "rss_mb": "  of which anonymous (RSS)",
              "cache_mb": "  of which page cache", "process_rss_mb": "its processes' RSS, MB",
              "uss_mb": "its processes' unique memory (USS)", "cpu_s": "CPU seconds since its spawn"}


def print_run(run: dict) -> None:
    n, limits = run["students"], run["limits"]
    print(f"\n### a class of {n} ({run['answers']} answers; each student {limits['memory']} memory, "
          f"{limits['disk']} home, {limits['tmp']} /tmp; exchange {limits['exchange']})")
    print(f"{'phase, seconds':<36}{'median':>8}{'p95':>8}{'max':>8}")
    for phase, s in run["phases"].items():
        print(f"{PHASE_NAMES[phase]:<36}{fmt(s['median']):>8}{fmt(s['p95']):>8}{fmt(s['max']):>8}")
    print(f"to the last submission: {fmt(run['to_last_submission_s'], ' s')}; submitted {run['submitted']}/{n}; "
          f"collected {run['collected']} (collect {run['collect_s']:.1f} s; release {run['release_s']:.1f} s)")
    for failure in run["failures"]:
        print(f"  FAILED {failure}")

    spent = run["spent"]
    wall = spent["machine"]["seconds"]
    print(f"\n{f'over the class ({wall:.0f} s)':<36}{'CPU s':>8}{'core %':>8}{'s/student':>10}{'peak RSS MB':>13}")
    for key, g in spent.items():
        if key == "machine" or not g["processes"]:
            continue
        name = "this process (the browsers)" if key == "client" else key
        print(f"{name:<36}{g['cpu_s']:>8.1f}{100 * g['cpu_s'] / wall:>8.0f}{g['cpu_s'] / n:>10.2f}"
              f"{g['peak_rss_mb']:>13.0f}")
    m = spent["machine"]
    busy = fmt(100 * m["cpu_busy"], " %", 0) if m["cpu_busy"] is not None else "—"
    print(f"machine: CPU {busy} busy; memory in use peaked at {m['peak_used_mb'] / 1024:.1f} GB "
          f"({m['used_before_hub_mb'] / 1024:.1f} GB before the hub started)")

    print(f"\n{'an idle student server':<36}{'median':>8}{'p95':>8}{'max':>8}")
    for key, name in IDLE_NAMES.items():
        s = run["idle_server"][key]
        digits = 1 if key == "cpu_s" else 0
        print(f"{name:<36}" + "".join(f"{fmt(s[k], '', digits):>8}" for k in ("median", "p95", "max")))
    print(f"all idle servers together: {run['idle_servers_total_mb'] / 1024:.2f} GB; "
          f"the hub's RSS then {run['hub_rss_idle_mb']:.0f} MB")

    if "grade" in run:
        g = run["grade"]
        print(f"\nmake grade: {g['graded']}/{g['students']} graded, {g['jobs']} at a time, {g['wall_s']:.0f} s = "
              f"{fmt(g['per_minute'], '', 2)} submissions/min (each {fmt(g['each_s']['median'])} s median); "
              f"autograded scores {', '.join(g['scores']) or '—'} (the written answers are graded by hand)")
        if g["returncode"]:
            print(f"  grading exited {g['returncode']}:\n{g['output_tail']}")
    log = run["hub_log"]
    print(f"\nhub log: {log['warnings']} warnings, {log['errors']} errors" + (":" if log["frequent"] else ""))
    for line in log["frequent"]:
        print(f"  {line}")


def print_summary(runs: list[dict], machine: str) -> None:
    """One line per class size: the figures a planning rule is made of."""
    print(f"\n### summary — {machine}")
    print(f"{'students':>8}{'last submission':>17}{'spawn p95':>11}{'hub CPU':>9}{'proxy CPU':>11}"
          f"{'hub peak':>10}{'idle server':>13}{'make grade':>12}")
    for r in runs:
        hub, proxy = r["spent"]["hub"], r["spent"]["proxy"]
        idle = r["idle_server"]["usage_mb"]["median"] or r["idle_server"]["process_rss_mb"]["median"]
        graded = r.get("grade", {}).get("per_minute")
        print(f"{r['students']:>8}{fmt(r['to_last_submission_s'], ' s'):>17}"
              f"{fmt(r['phases']['spawn']['p95'], ' s'):>11}{fmt(hub['cpu_s'], ' s'):>9}"
              f"{fmt(proxy['cpu_s'], ' s'):>11}{fmt(hub['peak_rss_mb'], ' MB', 0):>10}"
              f"{fmt(idle, ' MB', 0):>13}{fmt(graded, '/min', 2):>12}")


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 epilog="Runs as root; see the module's docstring for what it measures.")
    ap.add_argument("--students", type=int, nargs="+", default=[10, 20, 40], help="class sizes, each on a fresh hub")
    ap.add_argument("--grade", type=int, nargs="?", const=0, default=None, metavar="K",
                    help="also run `make grade` on the collected submissions (K: only the first K)")
    ap.add_argument("--grade-jobs", type=int, default=os.cpu_count() or 1, help="submissions graded at once")
    ap.add_argument("--answers", choices=("full", "edit"), default="full",
                    help="full: every answer and the trained model (a realistic submission); edit: one added cell")
    ap.add_argument("--memory", default="1500M", help="the class's memory limit per student (limits.memory)")
    ap.add_argument("--disk", default="256M", help="each home's disk image (limits.disk; allocated in full "
                    "before the hub starts, so 40 students at the default 2G would need 82 GB free)")
    ap.add_argument("--exchange", default="2G", help="the exchange's disk image (limits.exchange)")
    ap.add_argument("--tmp", default="256M", help="each server's private /tmp (limits.tmp; tmpfs, in its memory)")
    ap.add_argument("--settle", type=float, default=15.0, help="seconds between the collect and the idle memory")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds a student may take for all six phases")
    ap.add_argument("--data", help="a folder with MNIST/raw and FashionMNIST/raw, copied into the class's data "
                    "folder (default: $INFOGAN_DATA, else ~/.cache/infogan-course/data)")
    ap.add_argument("--json", help="write the figures here as JSON")
    ap.add_argument("--logs", help="copy each hub's log (and grading report) into this folder")
    ap.add_argument("--clean-leftovers", action="store_true", help="remove what a killed run left, and stop")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (sudo .venv/bin/python benchmarks/hub_capacity.py): it creates Unix users "
                         "and cgroups")
    if args.clean_leftovers:
        clean_leftovers()
        return 0
    if our_users():
        raise SystemExit(f"users {our_users()} exist already (a run that was killed?): remove them with "
                         "--clean-leftovers, or make sure no other run of this benchmark is going on")
    if args.grade is not None and not (data_source(args.data) / "MNIST" / "raw").is_dir():
        raise SystemExit(f"no MNIST in {data_source(args.data)}: part 2's graded check needs it, so every "
                         "submission would lose its points; give --data FOLDER (with MNIST/raw/*.gz) or set "
                         "INFOGAN_DATA")
    # Ctrl-C and SIGTERM raise KeyboardInterrupt wherever the main thread is, the event loop included
    # (asyncio.run's own Ctrl-C handling cancels the class's task, which httpx's requests can swallow)
    signal.signal(signal.SIGINT, _interrupted)
    signal.signal(signal.SIGTERM, _interrupted)
    machine = f"{cpu_model()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GB RAM"
    print(f"CPU: {machine}")
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    runs = []
    try:
        for size in args.students:
            runs.append(measure(size, args))
            print_run(runs[-1])
            if args.json:                    # after each size: a later one that fails loses nothing
                Path(args.json).write_text(json.dumps({"machine": machine, "commit": commit, "runs": runs},
                                                      indent=1))
    except KeyboardInterrupt:
        print("\ninterrupted: the hub is stopped and its users, mounts and folders are removed", file=sys.stderr)
        return 130
    print_summary(runs, machine)
    if args.json:
        print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
