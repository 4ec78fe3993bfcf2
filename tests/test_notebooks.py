"""The course notebooks: committed clean, run top to bottom in fast mode, and their checks can fail.

Each notebook is executed once, in a temporary folder (so runs/ written by a notebook never leaks
between tests or from a reader's own runs) with INFOGAN_FAST=1: live training is capped at a few
steps, while the shipped weights are loaded, so the checks on them really run. What else is asked
of a notebook happens in the same kernel after its run (FOLLOW_UP): notebook 02's self-checks are
run on wrong implementations, notebook 03's cells are run again with its TRAIN_LIVE switch on.
Notebook 04 and the dashboard run top to bottom in a real browser (tests/test_browser.py); here
only where that cannot run.
"""

from __future__ import annotations

import ast
import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import mnist_available
from harness.browser import missing_reason

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEEDS_DATA = {"00_setup_check.ipynb", "01_gan_recap.ipynb", "03_training_infogan.ipynb",
              "04_exploring_codes.ipynb", "dashboard.ipynb"}
IN_THE_BROWSER = {"04_exploring_codes.ipynb": "JupyterLab", "dashboard.ipynb": "Voilà"}   # tests/test_browser.py
NB02, NB03 = "02_mutual_information_bound.ipynb", "03_training_infogan.ipynb"
FAST_MODE = {"INFOGAN_FAST": "1", "OMP_NUM_THREADS": "2"}


def skip_reason(name: str) -> str | None:
    """Why the notebook is not run here (its test skips), or None."""
    if name in NEEDS_DATA and not mnist_available() and not os.environ.get("CI"):
        return "MNIST is not in the data folder: set INFOGAN_DATA (see README)"
    if name in IN_THE_BROWSER and missing_reason() is None:
        return f"run top to bottom in {IN_THE_BROWSER[name]} by tests/test_browser.py"
    return None


@dataclass
class Ran:
    """A notebook run top to bottom, and what was run after it in the same kernel."""
    nb: object                                   # the notebook with its outputs
    cwd: Path                                    # the folder it ran in
    error: str | None = None                     # the first cell that failed, if one did
    after: dict = field(default_factory=dict)    # what the follow-up in the same kernel found


def tags(cell) -> list[str]:
    return cell.metadata.get("tags", [])


def _run_source(client: NotebookClient, source: str) -> None:
    """Run one more cell in the notebook's kernel; CellExecutionError if it fails."""
    cell = nbformat.v4.new_code_cell(source)
    client.nb.cells.append(cell)
    client.execute_cell(cell, len(client.nb.cells) - 1)


def _error_of(client: NotebookClient, source: str) -> str | None:
    try:
        _run_source(client, source)
    except CellExecutionError as err:
        return str(err)
    return None


def execute(nb, cwd: Path, after=None, timeout: int = 300) -> Ran:
    """Run `nb` top to bottom in a fresh kernel in fast mode; then `after(client, nb)` in the same
    kernel, whose result is kept in Ran.after."""
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})
    ran = Ran(nb, cwd)
    with client.setup_kernel(env={**os.environ, **FAST_MODE}):
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        except CellExecutionError as err:
            ran.error = str(err)
        ran.nb = copy.deepcopy(nb)
        if after is not None and ran.error is None:
            ran.after = after(client, ran.nb)
    return ran


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """name → the notebook's run: each notebook run once, on first use (with its FOLLOW_UP)."""
    done = {}

    def get(name: str) -> Ran:
        if name not in done:
            nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
            done[name] = execute(nb, tmp_path_factory.mktemp(Path(name).stem), after=FOLLOW_UP.get(name))
        return done[name]
    return get


def test_the_course_has_its_notebooks():
    names = [p.name for p in NOTEBOOKS]
    for expected in ("00_setup_check.ipynb", "01_gan_recap.ipynb",
                     "02_mutual_information_bound.ipynb", "03_training_infogan.ipynb"):
        assert expected in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebooks_have_no_outputs_and_a_python3_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} has outputs: strip them (jupyter nbconvert --clear-output --inplace)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom_in_fast_mode(path, executed):
    if skip_reason(path.name):
        pytest.skip(skip_reason(path.name))
    ran = executed(path.name)
    assert ran.error is None, ran.error
    errors = [o for c in ran.nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # every section of every notebook ends with something to see or to check
    assert any(o.output_type == "display_data" for c in ran.nb.cells if c.cell_type == "code"
               for o in c.outputs), f"{path.name} shows no figure"


def test_a_notebook_runs_past_its_exercises_left_blank(executed):
    """Run top to bottom as shipped, every exercise is blank: each check says so, and the run goes on."""
    ran_any = False
    for path in NOTEBOOKS:
        if skip_reason(path.name) or not path.name[:2] in ("01", "02", "03", "04"):
            continue
        ran = executed(path.name)
        checks = [c for c in ran.nb.cells if any(t.startswith("exercise-check-") for t in tags(c))]
        assert len(checks) >= 3, path.name
        for cell in checks:
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            assert text.startswith("✗ ") and "not written yet" in text, (path.name, cell.source, text)
        ran_any = True
    assert ran_any


# ---- notebook 02's self-checks trip on wrong implementations ------------------------------------

WRONG = {  # check cell tag: (wrong code run after the implementations, expected message)
    "check-entropy": ("def entropy(p):\n    p = np.asarray(p, float); nz = p > 0\n"
                      "    return float(-(p[nz] * np.log2(p[nz])).sum())   # bits, not nats",
                      "ln 10"),
    "check-mi": ("def mutual_information(joint):\n"
                 "    return entropy(np.asarray(joint).sum(1)) + conditional_entropy(joint)  # + not −",
                 "independent"),
    "check-bound": ("def variational_bound(joint, q):\n    joint = np.asarray(joint, float)\n"
                    "    nz = joint > 0\n    return float((joint[nz] * np.log(q[nz])).sum())  # no H(c)",
                    "H(c)"),
}


def implementations(nb) -> list:
    return [c for c in nb.cells if any(t.startswith("impl-") for t in tags(c))]


def try_wrong_implementations(client, nb) -> dict:
    """For each check: the wrong implementation, then the check cell (its error, or None), then
    the right implementations again."""
    impls, found = implementations(nb), {}
    for check, (wrong, _) in WRONG.items():
        checks = [c for c in nb.cells if check in tags(c)]
        _run_source(client, wrong)
        error = _error_of(client, checks[0].source) if len(checks) == 1 else "no single check cell"
        for impl in impls:
            _run_source(client, impl.source)
        found[check] = {"impls": len(impls), "checks": len(checks), "error": error}
    return found


@pytest.mark.parametrize("check", sorted(WRONG))
def test_a_wrong_implementation_trips_notebook_02s_self_check(check, executed):
    ran = executed(NB02)
    assert ran.error is None, ran.error
    _, message = WRONG[check]
    tried = ran.after[check]
    assert tried["impls"] == 3 and tried["checks"] == 1
    assert tried["error"] is not None, f"{check} passed with a wrong implementation"
    assert "AssertionError" in tried["error"] and message in tried["error"]


def test_notebook_02s_checks_pass_with_the_right_implementations(executed):
    ran = executed(NB02)
    checks = [c for c in ran.nb.cells if any(t.startswith("check-") for t in tags(c))]
    assert len(implementations(ran.nb)) == 3 and len(checks) >= len(WRONG)
    assert ran.error is None, ran.error           # every check ran, after the implementations
    assert all(c.execution_count is not None and not [o for o in c.outputs if o.output_type == "error"]
               for c in checks)


# ---- notebook 03 with its TRAIN_LIVE switch on ----------------------------------------------------

def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell reads, names it assigns)."""
    reads, writes = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            (writes if isinstance(node.ctx, ast.Store) else reads).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            writes.add(node.name)
    return reads, writes


def switch_train_live_on(client, nb) -> dict:
    """TRAIN_LIVE = True, then every later cell the switch reaches run again, in order: those that
    read TRAIN_LIVE, and those that read what they assign (the cells before it, and the others,
    do the same either way)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    switch = [i for i, c in enumerate(code) if "TRAIN_LIVE = False" in c.source]
    found = {"switches": len(switch), "rerun": [], "error": None}
    if len(switch) != 1:
        return found
    reached = {"TRAIN_LIVE"}
    _run_source(client, "TRAIN_LIVE = True")
    for cell in code[switch[0] + 1:]:
        reads, writes = _names(cell.source)
        if reads & reached:
            found["rerun"].append(cell.source.splitlines()[0])
            found["error"] = _error_of(client, cell.source)
            if found["error"]:
                break
            reached |= writes
    return found


def test_notebook_03_also_runs_with_its_train_live_switch_on(executed):
    if skip_reason(NB03):
        pytest.skip(skip_reason(NB03))
    ran = executed(NB03)
    assert ran.error is None, ran.error
    live = ran.after
    assert live["switches"] == 1, "notebook 03 must have one TRAIN_LIVE switch"
    assert live["error"] is None, live["error"]
    assert any("TRAIN_LIVE" in line for line in live["rerun"]), live["rerun"]
    assert (ran.cwd / "runs" / "notebook03" / "checkpoint.pt").exists()


FOLLOW_UP = {NB02: try_wrong_implementations, NB03: switch_train_live_on}   # run after the notebook, same kernel
