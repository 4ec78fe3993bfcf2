"""Homework part 2's model check, run as grading runs it: the solution notebook's
`test_third_code_model` cell, on a given model file as the submitted `third_code.pt`. The tests and
the homework benchmarks call this, so that none of them restates the check's bars."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path

import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "solutions" / "infogan_homework" / "2_third_code.ipynb"
SETUP = ("from pathlib import Path\nimport torch\nfrom infogan_lib import load_images, weights\n"
         "from infogan_lib import checkpoint as ckpt")


def model_check(model_file: str | os.PathLike) -> str:
    """What the check cell printed for `model_file`; its AssertionError if the model fails."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_third_code_model")
    namespace, out, here = {}, io.StringIO(), os.getcwd()
    exec(SETUP, namespace)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(model_file, Path(tmp) / "third_code.pt")
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(out):
                exec(cell.source, namespace)
        finally:
            os.chdir(here)
    return out.getvalue()
