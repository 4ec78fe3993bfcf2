"""The course notebooks: committed clean, run top to bottom in fast mode, and their checks can fail.

Each notebook is executed in a temporary folder (so runs/ written by a notebook never leaks between
tests or from a reader's own runs) with INFOGAN_FAST=1: live training is capped at a few steps,
while the shipped weights are loaded, so the checks on them really run.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from conftest import mnist_available

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NEEDS_DATA = {"00_setup_check.ipynb", "01_gan_recap.ipynb", "03_training_infogan.ipynb",
              "04_exploring_codes.ipynb", "dashboard.ipynb"}


def execute(nb, cwd: Path, timeout: int = 300):
    env_before = {k: os.environ.get(k) for k in ("INFOGAN_FAST", "OMP_NUM_THREADS")}
    os.environ["INFOGAN_FAST"] = "1"
    os.environ["OMP_NUM_THREADS"] = "2"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


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
def test_notebook_runs_top_to_bottom_in_fast_mode(path, tmp_path):
    if path.name in NEEDS_DATA and not mnist_available() and not os.environ.get("CI"):
        pytest.skip("MNIST is not in the data folder: set INFOGAN_DATA (see README)")
    nb = nbformat.read(path, as_version=4)
    execute(nb, tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"]
    assert not errors
    # every section of every notebook ends with something to see or to check
    assert any(o.output_type == "display_data" for c in nb.cells if c.cell_type == "code"
               for o in c.outputs), f"{path.name} shows no figure"


# ---- notebook 02's self-checks trip on wrong implementations ------------------------------------

NB02 = ROOT / "notebooks" / "02_mutual_information_bound.ipynb"
WRONG = {  # check cell tag: (wrong code injected after the implementations, expected message)
    "check-entropy": ("def entropy(p):\n    p = np.asarray(p, float); nz = p > 0\n"
                      "    return float(-(p[nz] * np.log2(p[nz])).sum())   # bits, not nats",
                      "ln 10"),
    "check-kl": ("def kl(p, q):\n    p, q = np.asarray(p, float), np.asarray(q, float)\n"
                 "    return float((q * np.log(q / p)).sum())   # arguments swapped",
                 "p first"),
    "check-mi": ("def mutual_information(joint):\n"
                 "    return entropy(np.asarray(joint).sum(1)) + conditional_entropy(joint)  # + not −",
                 "independent"),
    "check-bound": ("def variational_bound(joint, q):\n    joint = np.asarray(joint, float)\n"
                    "    nz = joint > 0\n    return float((joint[nz] * np.log(q[nz])).sum())  # no H(c)",
                    "H(c)"),
}


def _cells_with_tag(nb, tag):
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


@pytest.mark.parametrize("check", sorted(WRONG))
def test_a_wrong_implementation_trips_notebook_02s_self_check(check, tmp_path):
    nb = nbformat.read(NB02, as_version=4)
    wrong, message = WRONG[check]
    setup = nb.cells[1]
    impls = [c for c in nb.cells if any(t.startswith("impl-") for t in c.metadata.get("tags", []))]
    checks = _cells_with_tag(nb, check)
    assert len(impls) == 4 and len(checks) == 1
    nb.cells = [setup, *impls, nbformat.v4.new_code_cell(wrong), checks[0]]
    with pytest.raises(CellExecutionError) as err:
        execute(nb, tmp_path)
    assert "AssertionError" in str(err.value) and message in str(err.value)


def test_notebook_02s_checks_pass_with_the_right_implementations(tmp_path):
    nb = nbformat.read(NB02, as_version=4)
    impls = [c for c in nb.cells if any(t.startswith("impl-") for t in c.metadata.get("tags", []))]
    checks = [c for c in nb.cells if any(t.startswith("check-") for t in c.metadata.get("tags", []))]
    nb.cells = [nb.cells[1], *impls, *checks]
    execute(nb, tmp_path)  # raises on any failed assert


def test_notebook_03_also_runs_with_its_train_live_switch_on(tmp_path):
    if not mnist_available() and not os.environ.get("CI"):
        pytest.skip("MNIST is not in the data folder: set INFOGAN_DATA (see README)")
    nb = nbformat.read(ROOT / "notebooks" / "03_training_infogan.ipynb", as_version=4)
    switch = [c for c in nb.cells if c.cell_type == "code" and "TRAIN_LIVE = False" in c.source]
    assert len(switch) == 1, "notebook 03 must have one TRAIN_LIVE switch"
    switch[0].source = switch[0].source.replace("TRAIN_LIVE = False", "TRAIN_LIVE = True")
    execute(nb, tmp_path)
    assert (tmp_path / "runs" / "notebook03" / "checkpoint.pt").exists()
