"""nbgrader's Execute step, made safe: student cells run in a sandbox, test cells run in the grader.

`nbgrader_config.py` puts `GraderExecute` where nbgrader's own `Execute` was in autograde. For each
notebook it

- runs every cell the student could write (solutions, added cells, the rest), in order, in a
  Jupyter kernel confined by `grading.sandbox` (bubblewrap and a cgroup; `--GraderExecute.sandbox=False`
  is `make grade GRADE_ARGS=--unsafe`, and only that flag turns it off);
- then runs every **test cell**, in order, in this, the grader's, process — never in the student's
  kernel, and after the last student cell, so that no student code runs after a hidden test's
  inputs have reached the kernel (nothing can print them into the feedback). The names the student
  defines in the answer cells (`entropy`, `widen_generator`, ...) are stand-ins that call the
  student's function in the kernel and bring back its result as plain data (`grading.wire`):
  arguments go in a file in a folder the kernel sees read-only; the result comes back as one
  display message tagged with the call's random id, on the kernel's own Jupyter channel, size-capped
  (the grader opens no file the student's code could have made). Everything else a test uses
  comes from the notebook's setup cells as released (cells tagged `setup`), run here. So a test's
  verdict is computed by the grader's own code on the grader's own objects; a student's call never
  changes them. A test whose calls cannot be completed (the kernel died, the call timed out, the
  reply was refused) fails, and so earns nothing;
- bounds each cell's output (INFOGAN_LIMIT_OUTPUT_BYTES, default 2 MB) and the notebook's wall
  clock (INFOGAN_LIMIT_STUDENT_SECONDS, default 600 s): beyond either, the kernel is interrupted
  or stopped and the cell marked (`OutputLimitExceeded`, `TimeBudgetExceeded`);
- survives a kernel that dies (memory, CPU time, a crash, a kill): the cell is marked `KernelDied`
  with the reason, later cells of the student are not run, and test cells still run (those that
  need the kernel fail);
- ignores widget messages and display updates (they could change another cell's output, or grow
  the grader's memory).

What a test cell prints, and the error that failed it, become that cell's outputs, so nbgrader's
SaveAutoGrades scores them as usual. An error raised by the student's function on a hidden test's
input is shown by its type only: its message could quote that input.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import contextlib
import io
import json
import linecache
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import nbformat
import zmq
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.v4 import new_code_cell, new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Instance, Unicode, default

from grading import sandbox as sb
from grading import wire
from grading.cgroups import Cgroup
from grading.feedback import BEGIN, END

ROOT = Path(__file__).resolve().parents[1]
SETUP_TAG = "setup"
GRADER_MARK = "[grader]"          # first traceback line of an error the grader wrote
MAX_FRAME = 128 * 2**20     # a kernel message frame larger than this ends its channel (the grader stays small)


def default_data_dir() -> Path:
    """infogan_lib.data.default_data_dir, without importing the library (and torch) here."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "infogan-course" / "data"


class KernelDied(RuntimeError):
    pass


class StudentCodeError(Exception):
    """An exception raised by the student's function in the kernel (name and message only)."""

    def __init__(self, ename: str, evalue: str):
        super().__init__(evalue)
        self.ename, self.evalue = ename, evalue


class CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets drop a kernel that sends a frame larger than MAX_FRAME, and
    queue few messages: what a kernel sends cannot grow the grader's memory without bound."""

    def _create_connected_socket(self, channel, identity=None):
        # jupyter_client's own, with the limits set before connecting (they apply to new connections)
        from jupyter_client.connect import channel_socket_types
        sock = self.context.socket(channel_socket_types[channel])
        sock.linger = 1000
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME)
        sock.setsockopt(zmq.RCVHWM, 64)
        if identity:
            sock.identity = identity
        sock.connect(self._make_url(channel))
        return sock


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command is wrapped in the sandbox."""

    box = Instance(sb.Sandbox, allow_none=True)

    @default("client_factory")
    def _capped_client(self):
        return CappedKernelClient

    def write_connection_file(self, **kwargs):
        out = super().write_connection_file(**kwargs)
        if self.box is not None and self.box.uid is not None:     # the kernel's user must read it
            os.chown(self.connection_file, self.box.uid, -1)
        return out

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return self.box.command(cmd) if self.box is not None else cmd


class StudentFunction:
    """Stands for a function of the student's inside a test cell; calling it runs it in the kernel."""

    def __init__(self, executor: "GraderExecute", name: str):
        self._executor, self._name = executor, name

    def __call__(self, *args, **kwargs):
        return self._executor.call_student(self._name, args, kwargs)

    def __repr__(self):
        return f"<your {self._name}, run in your kernel>"


def grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_test_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade", False) and not meta.get("solution", False)


def answer_names(nb) -> list[str]:
    """Top-level names defined by the autograded answer cells of the released notebook."""
    names = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("solution") or meta.get("grade"):
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
    return names


BUILTIN_ERRORS = {name for name, value in vars(__import__("builtins")).items()
                  if isinstance(value, type) and issubclass(value, BaseException)}


def split_test(source: str) -> tuple[str | None, str]:
    """(the cell with its hidden lines blanked, the hidden lines with the rest blanked): line numbers
    kept. (None, …) when the two halves do not compile on their own (a hidden region inside a block)."""
    hidden = hidden_line_numbers(source)
    lines = source.splitlines()
    visible = "\n".join("" if i in hidden or BEGIN in ln or END in ln else ln for i, ln in enumerate(lines, 1))
    secret = "\n".join(ln if i in hidden else "" for i, ln in enumerate(lines, 1))
    try:
        compile(visible, "<visible>", "exec")
        compile(secret, "<hidden>", "exec")
    except SyntaxError:
        return None, source
    return visible, secret if hidden else ""


def hidden_line_numbers(source: str) -> set[int]:
    """1-based numbers of the lines inside a cell's hidden-test region."""
    out, inside = set(), False
    for number, line in enumerate(source.splitlines(), 1):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside:
            out.add(number)
    return out


def _signal_name(code) -> str:
    if code is None:
        return "unknown"
    sig = -code if code < 0 else code - 128 if code > 128 else None
    if sig is not None and sig > 0:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        why = {"SIGXCPU": " (CPU-time limit)", "SIGKILL": " (killed: memory, CPU-time limit, or itself)",
               "SIGSEGV": " (crash)"}.get(name, "")
        return name + why
    return f"exit status {code}"


class Watchdog(threading.Thread):
    """Where there is no cgroup (grading as an unprivileged user): kills the sandbox when its
    processes together hold more RAM than the memory limit (RLIMIT_DATA bounds each process; a fork
    bomb of big processes is caught here), or its socket folder (writable there) grows too large."""

    def __init__(self, pid: int, scratch: Path, limits: sb.Limits, every: float = 0.5):
        super().__init__(daemon=True)
        self.pid, self.scratch, self.limits, self.every = pid, scratch, limits, every
        self.reason: str | None = None
        self._stop = threading.Event()

    def stop(self):
        self._stop.set()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
        out, todo = [], [self.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out

    @staticmethod
    def _rss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            return 0

    def _scratch_bytes(self) -> int:
        """Blocks of every entry, and 4 KB for each (empty files, links and folders cost the host too)."""
        total = 0
        for root, dirs, files in os.walk(self.scratch):
            for name in files + dirs:
                total += 4096
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
        return total

    def run(self):
        while not self._stop.wait(self.every):
            try:
                rss = sum(self._rss(p) for p in self._tree())
                if rss > self.limits.memory_bytes:
                    self.reason = (f"memory limit: the sandbox's processes held {rss / 2**30:.1f} GB "
                                   f"(limit {self.limits.memory_bytes / 2**30:.1f} GB)")
                elif self._scratch_bytes() > self.limits.scratch_bytes:
                    self.reason = f"disk limit: more than {self.limits.scratch_bytes // 2**20} MB written"
                if self.reason:
                    with contextlib.suppress(OSError):
                        os.killpg(self.pid, signal.SIGKILL)
                    with contextlib.suppress(OSError):
                        os.kill(self.pid, signal.SIGKILL)
                    return
            except Exception:  # noqa: BLE001 - a watchdog must not take the grader down
                continue


class GraderExecute(Execute):
    sandbox = Bool(True, help="run student cells in the bubblewrap sandbox (False: --unsafe)").tag(config=True)
    release_root = Unicode(str(ROOT / "assignments"),
                           help="the release folder: setup cells and answer names come from here").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxKernelManager)
        super().__init__(*args, **kwargs)

    # ---- the notebook -------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        self._workdir = Path(resources["metadata"]["path"]).resolve()
        self._scratch = Path(tempfile.mkdtemp(prefix="infogan-grade-"))
        os.chmod(self._scratch, 0o755)
        self._io = self._scratch / "io"               # the kernel's sockets
        self._calls_dir = self._scratch / "grader"     # the agent and the calls' arguments (read-only there)
        self._calls_dir.mkdir()
        shutil.copyfile(Path(wire.__file__), self._calls_dir / "agent.py")
        os.chmod(self._calls_dir / "agent.py", 0o444)
        os.chmod(self._calls_dir, 0o755)
        self._limits = sb.Limits.from_env()
        self._dead: str | None = None
        self._namespace = None
        self._release = self._release_notebook(resources)
        self._watchdog = None
        self._cgroup: Cgroup | None = None
        self._box: sb.Sandbox | None = None
        self._reply = self._call_id = None
        self._deadline = time.monotonic() + self._limits.student_seconds
        try:
            return self._run(nb, resources, km)
        finally:
            if self._watchdog is not None:
                self._watchdog.stop()
            if self._cgroup is not None:
                self._cgroup.destroy()
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _run(self, nb, resources, km):
        """nbconvert's preprocess, with the student's cells first and the test cells after them."""
        from nbclient import NotebookClient
        nb.metadata.pop("widgets", None)          # a student's widget state is never rendered for you
        NotebookClient.__init__(self, nb, km)
        self._base_timeout = self.timeout
        self.timeout_func = self._cell_timeout
        self.reset_execution_trackers()
        self._check_assign_resources(resources)
        with self.setup_kernel():
            info = self.wait_for_reply(self.kc.kernel_info())
            if info is None:
                raise DeadKernelError("the kernel did not answer after it started")
            self.nb.metadata["language_info"] = info["content"].get("language_info", {})
            if self._box is not None:
                self._box.lock()
                if self._cgroup is None:
                    self._start_watchdog()
            tests, test_ids = [], {grade_id(c) for c in self._release.cells if is_test_cell(c)}
            for index, cell in enumerate(self.nb.cells):
                if is_test_cell(cell) and grade_id(cell) in test_ids:
                    tests.append(index)
                else:
                    self.preprocess_cell(cell, resources, index)
            self._run_tests(tests)
        return self.nb, self.resources

    def _release_notebook(self, resources):
        name = resources.get("nbgrader", {}).get("notebook")
        assignment = resources.get("nbgrader", {}).get("assignment")
        path = Path(self.release_root) / str(assignment) / f"{name}.ipynb"
        if not path.exists():
            raise FileNotFoundError(f"the released notebook {path} is missing: run `make release`")
        return nbformat.read(path, as_version=4)

    def _shown(self) -> Path:
        """What the kernel sees as its working folder: the staged submission (regular files only,
        grading/submission.py), never the autograded copy (which holds the hidden tests). Run by
        nbgrader alone (not through `make grade`), the submitted folder is staged here."""
        staged = os.environ.get("INFOGAN_STAGED_SUBMISSION")
        if staged and Path(staged).is_dir():
            return Path(staged)
        from grading.submission import stage_folder
        submitted = self._workdir.parents[2] / "submitted" / self._workdir.parent.name / self._workdir.name
        return stage_folder(submitted, self._scratch / "submission", notebooks=[]).folder

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        self._io.mkdir(exist_ok=True)
        km.transport = "ipc"                   # the sandbox has no network: Unix sockets in io/
        km.ip = str(self._io / "kernel")
        km.connection_file = str(self._io / "kernel.json")
        if self.sandbox:
            uid = int(os.environ.get("INFOGAN_SANDBOX_UID", 61000 + os.getpid() % 4000))
            data = os.environ.get("INFOGAN_DATA")
            cgroup_files = []
            if os.geteuid() == 0:
                cgroup = Cgroup(f"{os.getpid()}-{secrets.token_hex(4)}", self._limits.memory_bytes,
                                self._limits.processes, self._limits.cpus)
                try:
                    self._cgroup = cgroup.create()
                    cgroup_files = cgroup.procs_files()
                except OSError:                 # no cgroups here: per-process limits and the watchdog
                    cgroup.destroy()
            # the notebook may ask whether it is being graded (to skip training); nothing else of the
            # grader's environment (not the grading seed) reaches the kernel
            env = {"NBGRADER_EXECUTION": os.environ.get("NBGRADER_EXECUTION", "autograde")}
            box = sb.Sandbox(workdir=self._workdir, shown=self._shown(), scratch=self._io, limits=self._limits, env=env,
                             data_dir=Path(data) if data else default_data_dir(), grader_dir=self._calls_dir,
                             uid=uid if os.geteuid() == 0 else None, cgroup_files=cgroup_files)
            box.prepare()
            km.box = self._box = box
        return km

    async def async_start_new_kernel(self, **kwargs):
        # bwrap --clearenv sets the sandboxed kernel's environment; unsafe, it still gets no seed
        kwargs["env"] = {} if self.sandbox else \
            {k: v for k, v in os.environ.items() if k != "INFOGAN_GRADING_SEED"}
        # the kernel's own stdout and stderr go nowhere: inherited, they would be a pipe into the
        # grading job's memory that no output cap sees
        kwargs["stdin"] = kwargs["stdout"] = kwargs["stderr"] = subprocess.DEVNULL
        return await super().async_start_new_kernel(**kwargs)

    def _start_watchdog(self):
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        if proc is not None and self._cgroup is None:
            self._watchdog = Watchdog(proc.pid, self._io, self._limits)
            self._watchdog.start()

    # ---- cells --------------------------------------------------------------------------------
    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell, resources
        if not self._dead and time.monotonic() > self._deadline:
            self._stop_kernel(f"the notebook's time budget of {self._limits.student_seconds} s ran out")
            cell.outputs = [self._error("TimeBudgetExceeded", f"not run: {self._dead}")]
            return cell, resources
        if self._dead:
            cell.outputs = [self._error("NotRun", f"not run: {self._dead}")]
            return cell, resources
        self._out_bytes, self._out_capped = 0, False
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            why = self._death_reason()
            self._dead = f"the kernel died while running an earlier cell ({why})"
            cell.outputs.append(self._error("KernelDied", f"the kernel died in this cell: {why}"))
        except CellTimeoutError:
            # the kernel's messages were lost (it sent more than the grader keeps): stop the cell, go on
            self._interrupt()
            cell.outputs.append(self._error("CellTimeoutError", "this cell's messages did not arrive in time "
                                            "(it sent more than the grader keeps); it was interrupted"))
        if self._out_capped:
            cell.outputs.append(self._error("OutputLimitExceeded",
                                            f"this cell printed more than {self._limits.output_bytes} bytes (or the "
                                            f"notebook more than {4 * self._limits.output_bytes}); the rest was "
                                            "dropped and the cell interrupted"))
        return cell, resources

    def _interrupt(self) -> None:
        """Stop what the kernel is doing (after its messages were lost: it sent more than the grader
        keeps, RCVHWM; or a frame over MAX_FRAME, after which zmq drops its output channel for good)."""
        with contextlib.suppress(Exception):
            run_sync(self.km.interrupt_kernel)()

    def _stop_kernel(self, why: str) -> None:
        self._dead = why
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        if proc is not None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._cgroup is not None:
            self._cgroup.destroy()

    def _cell_timeout(self, cell) -> int:
        """A cell may not run past the notebook's wall-clock budget."""
        left = max(1, int(self._deadline - time.monotonic()))
        return min(self._base_timeout, left) if self._base_timeout else left

    def _death_reason(self) -> str:
        if self._watchdog is not None and self._watchdog.reason:
            return self._watchdog.reason
        if self._cgroup is not None and self._cgroup.oom_killed():
            return f"memory limit: the sandbox used more than {self._limits.memory_bytes / 2**30:.1f} GB"
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        code = proc.poll() if proc is not None else None
        return _signal_name(code)

    @staticmethod
    def _error(ename: str, evalue: str):
        """An error the grader itself puts in a cell (the report tells these from a student's own)."""
        return new_output("error", ename=ename, evalue=evalue, traceback=[GRADER_MARK, f"{ename}: {evalue}"])

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        data = content.get("data") if isinstance(content, dict) else None
        if isinstance(data, dict) and wire.MIME in data:
            self._take_reply(data[wire.MIME])          # a reply never becomes an output
            return None
        # every field counts (text, data, metadata, an error's name, message and traceback)
        size = len(json.dumps(content, default=str)) if isinstance(content, dict) else len(str(content))
        self._out_bytes = getattr(self, "_out_bytes", 0) + size
        self._all_out_bytes = getattr(self, "_all_out_bytes", 0) + size
        if self._out_bytes > self._limits.output_bytes or self._all_out_bytes > 4 * self._limits.output_bytes:
            if not getattr(self, "_out_capped", False):
                self._out_capped = True
                with contextlib.suppress(Exception):
                    asyncio.ensure_future(self.km.interrupt_kernel())
            return None
        return super().output(outs, msg, display_id, cell_index)

    def _update_display_id(self, display_id, msg):
        """Display updates are ignored: one could rewrite an earlier cell's output."""

    def handle_comm_msg(self, outs, msg, cell_index):
        """Widget messages are ignored: their state would grow without bound here."""

    def on_comm_open_jupyter_widget(self, msg):
        return None

    def set_widgets_metadata(self):
        """No widget state is kept in a graded notebook."""

    # ---- test cells, in the grader ------------------------------------------------------------
    def _trusted_namespace(self) -> dict:
        if self._namespace is None:
            ns = {"__name__": "__grader__"}
            with self._in_workdir():
                for cell in self._release.cells:
                    if cell.cell_type == "code" and SETUP_TAG in cell.metadata.get("tags", []):
                        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                            exec(compile(cell.source, "<setup cell>", "exec"), ns)
            for name in answer_names(self._release):
                ns[name] = StudentFunction(self, name)
            self._namespace = ns
        return self._namespace

    @contextlib.contextmanager
    def _in_workdir(self):
        old = os.getcwd()
        os.chdir(self._workdir)
        try:
            yield
        finally:
            os.chdir(old)

    def _run_tests(self, indices: list[int]) -> None:
        """Every test cell's visible part first, each in a namespace of its own made from the setup
        cells; then every hidden part, in the same namespaces. No student function sees a hidden
        input before every visible test has run, so what a visible test shows (the student's error
        messages) cannot carry one; in the hidden phase nothing the student's code says is shown."""
        runs = []
        for index in indices:
            cell = self.nb.cells[index]
            visible, hidden = split_test(cell.source)
            run = {"index": index, "cell": cell, "ns": dict(self._trusted_namespace()), "out": io.StringIO(),
                   "err": io.StringIO(), "error": None, "printed": 0, "hidden": hidden,
                   "file": f"<test cell {grade_id(cell) or f'cell{index}'}>",
                   "hidden_lines": hidden_line_numbers(cell.source)}
            runs.append(run)
            if visible is not None:
                self._run_part(run, visible, hidden_phase=False)
            else:
                run["hidden"] = cell.source                  # not separable: all of it after the visible parts
        for run in runs:
            if run["error"] is None and run["hidden"]:
                self._run_part(run, run["hidden"], hidden_phase=True)
        for run in runs:
            self._write_test_outputs(run)

    def _run_part(self, run: dict, source: str, hidden_phase: bool) -> None:
        cell, index, filename = run["cell"], run["index"], run["file"]
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)
        self._test_index, self._test_cell, self._test_printed = index, cell, 0
        self._test_file, self._hidden = filename, run["hidden_lines"]
        self._hidden_phase = hidden_phase
        with self._in_workdir(), contextlib.redirect_stdout(run["out"]), contextlib.redirect_stderr(run["err"]):
            try:
                exec(compile(source, filename, "exec"), run["ns"])
            except Exception as e:  # noqa: BLE001 - the test's failure, whatever it is
                run["error"], run["error_hidden"] = e, hidden_phase
        run["printed"] += self._test_printed

    def _write_test_outputs(self, run: dict) -> None:
        cell, out, err, error = run["cell"], run["out"], run["err"], run["error"]
        filename, hidden_lines = run["file"], run["hidden_lines"]
        outputs = []
        if run["printed"]:
            out.write("(what your code printed while it was tested is not shown, so that hidden tests stay hidden)\n")
        if out.getvalue():
            outputs.append(new_output("stream", name="stdout", text=out.getvalue()[: self._limits.output_bytes]))
        if err.getvalue():
            outputs.append(new_output("stream", name="stderr", text=err.getvalue()[: self._limits.output_bytes]))
        if error is not None:
            tb = traceback.extract_tb(error.__traceback__)
            here = [fr for fr in tb if fr.filename == filename]
            hidden = run.get("error_hidden", False)
            if isinstance(error, StudentCodeError):
                ename, evalue = error.ename, f"{error.evalue} (raised by your code)"
            elif hidden and not isinstance(error, AssertionError):
                ename, evalue = type(error).__name__, "raised on a hidden test (its message is not shown)"
            else:
                ename, evalue = type(error).__name__, str(error)[:2000]
            lines = [f"  line {fr.lineno} of the test cell: " + ("(a hidden test)" if fr.lineno in hidden_lines else fr.line)
                     for fr in here]
            outputs.append(new_output("error", ename=ename, evalue=evalue,
                                      traceback=[*lines[-1:], f"{ename}: {evalue}"]))
        cell.outputs = outputs
        cell.execution_count = None

    def _called_from_hidden(self) -> bool:
        if getattr(self, "_hidden_phase", False):
            return True
        frame = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename == self._test_file:
                return frame.f_lineno in self._hidden
            frame = frame.f_back
        return False

    def _take_reply(self, payload) -> None:
        if self._call_id is None or self._reply is not None or not isinstance(payload, dict):
            return
        if payload.get("call") != self._call_id:
            return
        text = payload.get("reply")
        if isinstance(text, str) and len(text) <= 4 * wire.CAPS.max_bytes // 3 + 4:
            self._reply = text

    def call_student(self, name: str, args: tuple, kwargs: dict):
        """Run the student's `name` in the kernel on these arguments; return its result rebuilt as
        the grader's own objects. The arguments here are never changed."""
        hidden = self._called_from_hidden()
        if self._dead:
            raise KernelDied(f"your kernel is not running: {self._dead}")
        self._call_id = secrets.token_hex(16)
        self._reply = None
        request = self._calls_dir / f"{self._call_id}.in"
        request.write_bytes(wire.dumps([list(args), dict(kwargs)]))
        os.chmod(request, 0o444)
        kernel_dir = sb.GRADER if self.sandbox else str(self._calls_dir)
        agent, seen = f"{kernel_dir}/agent.py", f"{kernel_dir}/{request.name}"
        # the agent is loaded once per kernel, as a module of its own (not in the student's names)
        code = (f"__import__('sys').modules.get('__grader_agent__') or exec(compile(open({agent!r}).read(), "
                f"{agent!r}, 'exec'), __import__('sys').modules.setdefault('__grader_agent__', "
                f"__import__('types').ModuleType('__grader_agent__')).__dict__)\n"
                f"__import__('sys').modules['__grader_agent__'].serve({name!r}, {seen!r}, "
                f"{self._call_id!r}, globals())")
        probe = new_code_cell(code)
        self._out_bytes, self._out_capped = 0, False
        try:
            self.execute_cell(probe, self._test_index, store_history=False)
        except DeadKernelError:
            self._dead = f"the kernel died while running your {name} ({self._death_reason()})"
            raise KernelDied(self._dead) from None
        except CellTimeoutError:
            self._interrupt()
            raise TimeoutError(f"your {name} did not answer in time") from None
        finally:
            self.nb.cells[self._test_index] = self._test_cell
            request.unlink(missing_ok=True)
            self._call_id = None
        # what the student's code prints while tested is not shown: it could print the hidden
        # tests' inputs into the feedback
        self._test_printed += sum(len(o.get("text", "")) for o in probe.outputs if o.output_type == "stream")
        errors = [o for o in probe.outputs if o.output_type == "error"]
        if self._out_capped:
            raise RuntimeError(f"your {name} printed more than {self._limits.output_bytes} bytes")
        if errors and self._reply is None:
            e = errors[-1]
            if e.ename == "CellTimeoutError":
                raise TimeoutError(f"your {name} did not finish within {self._cell_timeout(None)} s")
            raise RuntimeError(f"calling your {name} failed in your kernel"
                               + ("" if hidden else f" ({str(e.ename)[:80]}: {str(e.evalue)[:300]})"))
        if self._reply is None:
            raise RuntimeError(f"your {name} returned nothing the grader could read")
        try:
            raw = base64.b64decode(self._reply, validate=True)
            data = wire.loads(raw, wire.Allowed.from_arguments([list(args), dict(kwargs)]))
        except (ValueError, wire.WireError) as err:
            raise RuntimeError(f"the grader refused the result of your {name}: {err}") from None
        finally:
            self._reply = None
        if not isinstance(data, dict) or set(data) != {"result", "grads", "error"}:
            raise RuntimeError(f"the reply from your {name} was not readable")
        if data["error"] is not None:
            ename, evalue = (list(data["error"]) + ["", ""])[:2] if isinstance(data["error"], list) else ("", "")
            if hidden:
                evalue = "(its message is not shown: it was raised on a hidden test's input)"
                ename = ename if ename in BUILTIN_ERRORS else "Exception"
            raise StudentCodeError(str(ename)[:80], str(evalue)[:300])
        return self._with_gradients(data["result"], data["grads"], args, kwargs)

    @staticmethod
    def _with_gradients(result, grads, args, kwargs):
        """The result, joined to the grader's argument tensors by the gradients the kernel reported
        (a test may call .backward() on it)."""
        torch = wire._torch()
        if grads is None or torch is None or not isinstance(result, torch.Tensor) \
                or not result.is_floating_point() or not isinstance(grads, list):
            return result
        leaves = wire._leaves([list(args), dict(kwargs)], [])
        if len(grads) != len(leaves):
            return result
        for g, leaf in zip(grads, leaves):
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != leaf.shape):
                return result
        return wire.replay(result.detach(), [None if g is None else g.to(leaf.dtype)
                                             for g, leaf in zip(grads, leaves)], leaves)
