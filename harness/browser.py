"""Drive the course's viewers in a real browser: Jupyter servers, headless Chromium, the kernel's view.

Used by tests/test_browser.py, tests/test_formgrader.py and benchmarks/viewer_latency.py. Three front ends are served the same
way — JupyterLab 4, Notebook 7, Voilà — each on a free loopback port with a fresh token, from a
temporary copy of the notebook (so the browser never saves outputs into the repository), with its
own Jupyter config, runtime and settings folders (so a reader's own settings cannot change the
test). `JupyterServer` always stops its server (process group: server and kernels) on exit.

The browser is Chromium driven by the `playwright` package through `executable_path` (Debian's
`chromium` package; Playwright's own browser download needs the internet). `find_chromium()` looks
at $INFOGAN_CHROMIUM, then the usual names on PATH.

What the kernel computed is read from the kernel itself: the server writes each kernel's connection
file into its runtime folder, and a second client (jupyter_client) asks that kernel for the slider's
value and the PNG it draws for it — independently of what the page displays.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONT_ENDS = ("lab", "notebook", "voila")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable, or None."""
    explicit = os.environ.get("INFOGAN_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def missing_reason() -> str | None:
    """Why the browser tests cannot run here (no playwright package, no Chromium), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if find_chromium() is None:
        return ("no Chromium found: install Debian's `chromium` (apt-get install -y chromium) or set "
                "INFOGAN_CHROMIUM to a Chromium/Chrome executable")
    return None


def launch_args() -> list[str]:
    # Chromium's sandbox cannot start as root or in containers without user namespaces (CI); the
    # pages are our own, on 127.0.0.1. Headless needs no GPU; /dev/shm is small in containers.
    return ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServer(contextlib.AbstractContextManager):
    """One front end serving a temporary copy of `notebook`; `url` opens it, `stop()` always cleans up."""

    def __init__(self, front_end: str, notebook: Path, workdir: Path, env: dict | None = None,
                 timeout: float = 60):
        if front_end not in FRONT_ENDS:
            raise ValueError(f"front end must be one of {FRONT_ENDS}, not {front_end!r}")
        self.front_end, self.timeout = front_end, timeout
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.root = workdir / "root"
        self.root.mkdir(parents=True, exist_ok=True)
        self.notebook = self.root / notebook.name
        shutil.copy(notebook, self.notebook)
        self.runtime = workdir / "runtime"
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / f"{front_end}.log"
        self.env = {**os.environ, **(env or {}),
                    "JUPYTER_RUNTIME_DIR": str(self.runtime),
                    "JUPYTER_CONFIG_DIR": str(workdir / "config"),
                    "JUPYTERLAB_SETTINGS_DIR": str(workdir / "lab-settings"),
                    "JUPYTERLAB_WORKSPACES_DIR": str(workdir / "lab-workspaces"),
                    "PYTHONUNBUFFERED": "1"}
        # Start the notebook's preferred kernel without asking: a busy server can answer JupyterLab's
        # first look at its sessions and kernels late, and the front end then stops at a "Select
        # Kernel" dialog (the setting is the dialog's own "Always start the preferred kernel")
        tracker = workdir / "lab-settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"autoStartDefaultKernel": True}))
        root_flag = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
        common = ["--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
                  "--ServerApp.port_retries=0", "--no-browser",
                  f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
                  *root_flag]
        if front_end == "lab":
            self.cmd = [sys.executable, "-m", "jupyterlab", *common,
                        "--LabApp.news_url=", "--LabApp.check_for_updates_class="
                        "jupyterlab.NeverCheckForUpdate"]
            self.url = f"http://127.0.0.1:{self.port}/lab/tree/{self.notebook.name}?token={self.token}"
        elif front_end == "notebook":
            self.cmd = [sys.executable, "-m", "notebook", *common]
            self.url = (f"http://127.0.0.1:{self.port}/notebooks/{self.notebook.name}"
                        f"?token={self.token}")
        else:
            # the kit's voila.json (read from the working folder, as when a reader runs `voila
            # notebooks/dashboard.ipynb` from the repository) keeps the lab extensions of Notebook 7
            # and nbgrader, which fail inside Voilà, off the page
            shutil.copy(ROOT / "voila.json", self.root / "voila.json")
            self.cmd = [sys.executable, "-m", "voila", str(self.notebook), "--no-browser",
                        f"--port={self.port}", "--Voila.ip=127.0.0.1", f"--token={self.token}",
                        f"--Voila.root_dir={self.root}",
                        f"--Voila.connection_dir_root={self.runtime}"]
            self.url = f"http://127.0.0.1:{self.port}/?token={self.token}"
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self) -> None:
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.cmd, cwd=self.root, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.front_end} server exited ({self.process.returncode}):\n"
                                   + self.log())
            if self._listening():
                return
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"{self.front_end} server did not listen within {self.timeout:g} s:\n"
                           + self.log())

    def _listening(self) -> bool:
        if self.front_end == "voila":          # GET / would already start a kernel
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0
        try:
            url = f"http://127.0.0.1:{self.port}/api/status?token={self.token}"
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and every kernel it started (one process group); never raises."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        except (ProcessLookupError, PermissionError):
            pass
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)   # kernels that outlived the server
            self._log.close()
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kernel_ids(self) -> list[str]:
        """The ids of the kernels the server runs now (Jupyter servers' REST API)."""
        url = f"http://127.0.0.1:{self.port}/api/kernels?token={self.token}"
        with urllib.request.urlopen(url, timeout=10) as r:
            return sorted(k["id"] for k in json.load(r))

    def settled_kernels(self, quiet_s: float = 3, timeout_s: float = 60) -> list[str]:
        """The kernels once none has started or stopped for `quiet_s` seconds (a front end can start
        a kernel, stop it and start another while the page settles); possibly none yet."""
        deadline, last, since = time.monotonic() + timeout_s, None, time.monotonic()
        while time.monotonic() < deadline:
            ids = self.kernel_ids()
            if ids != last:
                last, since = ids, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return ids
            time.sleep(0.5)
        return last or []

    def connection_files(self) -> list[Path]:
        # Jupyter servers write them into the runtime folder, Voilà into a voila_* folder inside it
        return sorted(self.runtime.rglob("kernel-*.json"), key=lambda p: p.stat().st_mtime)


class KernelProbe(contextlib.AbstractContextManager):
    """A second client on a running kernel: evaluates expressions in the notebook's namespace."""

    def __init__(self, connection_file: Path):
        from jupyter_client import BlockingKernelClient

        self.client = BlockingKernelClient()
        self.client.load_connection_file(str(connection_file))
        self.client.start_channels()

    def __exit__(self, *exc):
        self.client.stop_channels()
        return False

    def evaluate(self, expression: str, timeout: float = 60):
        """The value of a JSON-returning expression, evaluated after everything already queued."""
        msg_id = self.client.execute("", silent=True, store_history=False,
                                     user_expressions={"r": f"__import__('json').dumps({expression})"})
        deadline = time.monotonic() + timeout
        while True:
            reply = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        result = reply["content"]["user_expressions"]["r"]
        if result["status"] != "ok":
            raise RuntimeError(f"kernel could not evaluate {expression!r}: "
                               f"{result.get('ename')}: {result.get('evalue')}")
        return json.loads(ast.literal_eval(result["data"]["text/plain"]))   # repr of a str


# ---- page helpers (Playwright sync API) -------------------------------------------------------------

def image_bytes(page, selector: str, timeout_ms: int = 60_000) -> bytes:
    """The bytes behind an <img> on the page (its blob: or data: URL), fetched by the page itself.
    The kernel can finish a cell before the page has drawn its widget, so wait for the image first."""
    page.wait_for_function("(sel) => { const img = document.querySelector(sel); return img && img.src; }",
                           arg=selector, timeout=timeout_ms, polling=100)
    b64 = page.evaluate("""async (sel) => {
        const img = document.querySelector(sel);
        const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let s = "";
        for (let i = 0; i < buf.length; i += 8192) s += String.fromCharCode(...buf.subarray(i, i + 8192));
        return btoa(s);
    }""", selector)
    return base64.b64decode(b64)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Off-machine requests a page may make. The tests run offline, so each is answered with an abort
# (and its "Failed to load resource" console error is expected); any other is a failure.
#   Voilà's lab template links Font Awesome's CSS from a CDN although its bundle already has the icons.
OFFLINE_OK = ("https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@",)


def block_off_machine(page, record: list) -> None:
    """Abort every request that leaves 127.0.0.1, recording its URL in `record`."""
    def handle(route):
        record.append(route.request.url)
        route.abort()
    page.route(lambda url: not url.startswith(("http://127.0.0.1", "blob:", "data:")), handle)


def run_all_cells(page, has_run=None, attempts: int = 3, wait_s: float = 20) -> None:
    """Run → Run All Cells from the menu bar (JupyterLab 4 and Notebook 7 share it), until a cell
    shows it is queued or has run (a click while the kernel is still connecting can be lost), or
    `has_run()` says the kernel ran a cell. A busy machine can be slow to show the first, and the
    front end slow to send what the click asked for: `has_run` is asked twice, seconds apart,
    before another click, which would otherwise run every cell twice."""
    started = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(e => /[0-9*]/.test(e.textContent))"
    for attempt in range(attempts):
        page.keyboard.press("Escape")                       # close any open menu
        dismiss_dialogs(page)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            page.wait_for_function(started, timeout=wait_s * 1000, polling=250)
            return
        except Exception:
            if has_run is not None and (has_run() or (time.sleep(5) or has_run())):
                return
            if attempt == attempts - 1:
                raise


def dismiss_dialogs(page, seen: list | None = None) -> list[str]:
    """Answer the front end's dialogs, recording their text. A busy server can be slow to list its
    kernels, and JupyterLab then asks which kernel to start: the preselected one (the notebook's own,
    Python 3) is accepted. Any other dialog (a kernel-status or file-changed notice) is closed."""
    seen = [] if seen is None else seen
    for _ in range(3):
        dialog = page.locator(".jp-Dialog")
        if dialog.count() == 0:
            break
        text = dialog.first.inner_text()
        seen.append(text[:120])
        wanted = "button.jp-mod-accept" if text.startswith("Select Kernel") else "button.jp-mod-reject"
        buttons = dialog.first.locator(wanted)
        if buttons.count():
            buttons.first.click()
        else:
            page.keyboard.press("Escape")
        page.wait_for_timeout(300)
    if seen:
        print("answered front-end dialogs:", seen)
    return seen


def kernel_has_run(server: JupyterServer) -> bool:
    """Whether the server's (last started) kernel has run a cell, asked of the kernel itself (after
    the cell it may be running)."""
    files = server.connection_files()
    if not files:
        return False
    with KernelProbe(files[-1]) as kernel:
        return kernel.evaluate("__import__('IPython').get_ipython().execution_count", timeout=300) > 1


WAIT_CELLS_JS = """() => {
    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);
    if (!prompts.length || prompts.some(p => p.includes('*'))) return false;
    const errored = document.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] .ansi-red-fg, .jp-OutputArea-output pre .ansi-red-intense-fg');
    return /\\d/.test(prompts[prompts.length - 1]) || errored !== null;
}"""


def wait_for_cells(page, timeout_s: float) -> None:
    """Until no cell is queued or running and the last one has run (or a cell failed)."""
    page.wait_for_function(WAIT_CELLS_JS, timeout=timeout_s * 1000, polling=250)


def set_slider_by_typing(page, slider_class: str, value: str) -> float:
    """Type `value` into the slider's readout and press Enter (as a reader does); returns the time
    (page's performance.now(), ms) just before Enter."""
    readout = page.locator(f".{slider_class} .widget-readout").first
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    t0 = page.evaluate("() => performance.now()")
    page.keyboard.press("Enter")
    return t0


def open_and_run(page, server: JupyterServer, timeout_s: float) -> None:
    """Open the server's notebook and have every cell run. Voilà runs them while the page loads; it
    serves the dashboard, complete once both of its traversal viewers (MNIST, Fashion) are on the
    page. JupyterLab and Notebook 7 get Run → Run All Cells once the kernel is idle."""
    # Voilà runs the cells before the page's load event: as long as they take, on a busy machine
    page.goto(server.url, timeout=timeout_s * 1000 if server.front_end == "voila" else 60_000)
    if server.front_end == "voila":
        page.wait_for_function(
            "() => document.querySelectorAll('img.infogan-image-0').length === 2",
            timeout=timeout_s * 1000, polling=250)
        return
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=60_000)
    page.wait_for_function(                              # the kernel is ready, or the front end asks
        "() => document.querySelector('.jp-Dialog') !== null || "
        "document.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status') === 'idle'",
        timeout=60_000)
    if dismiss_dialogs(page):
        page.wait_for_function(
            "() => document.querySelector('.jp-Notebook-ExecutionIndicator')"
            "?.getAttribute('data-status') === 'idle'", timeout=60_000)
    server.settled_kernels()
    run_all_cells(page, has_run=lambda: kernel_has_run(server))
    kernels = server.kernel_ids()                     # the kernel the cells were queued on
    deadline = time.monotonic() + timeout_s
    while True:               # the front end may still replace its kernel, and the queued cells die with it
        try:
            wait_for_cells(page, min(20, max(1, deadline - time.monotonic())))
            return
        except Exception:
            if time.monotonic() >= deadline:
                raise
            now = server.kernel_ids()
            if now and now != kernels:
                print(f"the front end replaced its kernel ({kernels} → {now}): Run All again")
                server.settled_kernels()
                run_all_cells(page, has_run=lambda: kernel_has_run(server))
                kernels = server.kernel_ids()
