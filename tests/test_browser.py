"""The viewers in a real browser: JupyterLab 4, Notebook 7 and Voilà, driven by headless Chromium.

For each front end: serve a temporary copy of the notebook on a free loopback port with a token, open
it, run all cells (Voilà runs them itself), wait until the kernel is idle, type a value into the c2
slider's readout and press Enter, then check that the picture the browser shows is byte for byte the
PNG the kernel computes for that value (asked of the kernel itself, through a second client), that
it differs from the picture before, and that no cell failed and the page logged no error.

JupyterLab serves notebook 04 and Voilà the dashboard: these are their top-to-bottom runs in fast
mode (tests/test_notebooks.py runs them only where no browser can), so each must also show
something to see. Notebook 7 serves the dashboard's first viewer alone (the front end is what it
tests; the notebooks already ran).

Needs Chromium (Debian's `chromium`, or $INFOGAN_CHROMIUM) and the `playwright` package; `.ci/run`
installs both. Outside CI the tests skip with a message when either is missing; in CI they fail.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from conftest import mnist_available
from harness.browser import (FRONT_ENDS, OFFLINE_OK, ROOT, JupyterServer, KernelProbe,
                             block_off_machine, find_chromium, image_bytes, launch_args, missing_reason,
                             open_and_run, set_slider_by_typing, sha256)

NOTEBOOK = {"lab": "04_exploring_codes.ipynb", "notebook": "the dashboard's first viewer",
            "voila": "dashboard.ipynb"}
# what a displayed figure, table or viewer is rendered as (any of these: the page shows something)
SHOWN = ("image/png", "text/markdown", "widget")
SHOWN_JS = ("() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => "
            "e.getAttribute('data-mime-type') || (e.querySelector('.jupyter-widgets') ? 'widget' : ''))")
# Page errors that come from a front end itself, not from the kit, accepted for that front end only.
#   Notebook 7.6.5: its keyboard-shortcuts settings plugin throws this on every page load, even for
#   an empty notebook and with every lab extension disabled (checked by hand, 2026-11).
KNOWN_FRONT_END_ERRORS = {"notebook": ("Cannot read properties of undefined (reading 'schema')",)}
CELL_TIMEOUT_S = 180
TYPED = "1.25"


@pytest.fixture(scope="module")
def browser(quiet_machine):
    reason = missing_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
    if not mnist_available():
        pytest.skip("MNIST is not available offline (set INFOGAN_DATA)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=find_chromium(), args=launch_args())
        try:
            yield chromium
        finally:
            chromium.close()


CELLS_RAN = ("[__import__('IPython').get_ipython().execution_count - 1, "
             "repr(getattr(__import__('sys'), 'last_value', None))]")


def _check_every_cell_ran(kernel: KernelProbe, notebook) -> None:
    """Ask the kernel itself: it ran one execution per code cell, and none raised (IPython keeps
    the last uncaught exception in sys.last_value; a failed run-all stops at the failing cell)."""
    n_code = sum(c.cell_type == "code" for c in nbformat.read(notebook, as_version=4).cells)
    executed, last_error = kernel.evaluate(CELLS_RAN)
    assert last_error == "None", f"a cell failed in the browser: {last_error}"
    # a front end slow to send a click's cells can get Run All twice (harness/browser.py): every cell
    # then ran twice, in order, which is no fault of the notebook's
    assert executed in (n_code, 2 * n_code), f"the kernel ran {executed} cells, the notebook has {n_code}"


def _first_viewer(folder: Path) -> Path:
    """The dashboard cut after its first code cell (the MNIST viewer), as a notebook of its own."""
    nb = nbformat.read(ROOT / "notebooks" / "dashboard.ipynb", as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = nb.cells[: first + 1]
    path = folder / "viewer.ipynb"
    nbformat.write(nb, path)
    return path


def _kernel_idle(server: JupyterServer) -> bool:
    url = f"http://127.0.0.1:{server.port}/api/kernels?token={server.token}"
    with urllib.request.urlopen(url, timeout=5) as r:
        kernels = json.load(r)
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_slider_typed_in_the_browser_shows_the_kernels_png(front_end, browser, tmp_path):
    started = time.monotonic()
    env = {"INFOGAN_FAST": "1"}
    notebook = _first_viewer(tmp_path) if front_end == "notebook" else ROOT / "notebooks" / NOTEBOOK[front_end]
    with JupyterServer(front_end, notebook, tmp_path, env=env) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems, off_machine = [], []
        block_off_machine(page, off_machine)
        page.on("console", lambda m: problems.append(f"console: {m.text}")
                if m.type == "error" and not m.location.get("url", "").startswith(OFFLINE_OK)
                else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        try:
            open_and_run(page, server, CELL_TIMEOUT_S)
            if front_end == "voila":
                outputs = page.locator('.jp-OutputArea-output[data-mime-type*="stderr"]')
                assert outputs.count() == 0, f"Voilà shows an error output: {outputs.first.inner_text()}"
            else:
                assert _kernel_idle(server), "the kernel is still busy after every cell ran"
            rendered = page.evaluate(SHOWN_JS)
            assert set(rendered) & set(SHOWN), f"{NOTEBOOK[front_end]} shows no figure, table or viewer: {rendered}"

            connection = server.connection_files()
            assert len(connection) == 1, f"expected one kernel, found {connection}"
            with KernelProbe(connection[0]) as kernel:
                _check_every_cell_ran(kernel, server.notebook)
                assert kernel.evaluate("viewer.sliders[1].value") == 0.0
                before = sha256(image_bytes(page, "img.infogan-image-0"))
                assert before == kernel.evaluate("__import__('hashlib').sha256(viewer.png(0)).hexdigest()")

                old_src = page.evaluate("() => document.querySelector('img.infogan-image-0').src")
                set_slider_by_typing(page, "infogan-c2", TYPED)
                page.wait_for_function(
                    f"() => document.querySelector('.infogan-status').textContent"
                    f".includes('c2 = +{TYPED}')", timeout=30_000, polling=50)
                page.wait_for_function(
                    "(old) => document.querySelector('img.infogan-image-0').src !== old",
                    arg=old_src, timeout=10_000, polling=50)
                shown = sha256(image_bytes(page, "img.infogan-image-0"))
                value, expected = kernel.evaluate(
                    "[viewer.sliders[1].value, __import__('hashlib').sha256(viewer.png(0)).hexdigest()]")
            assert value == float(TYPED), f"the kernel's c2 is {value}, not the typed {TYPED}"
            assert shown != before, "the picture did not change when c2 moved from 0 to 1.25"
            assert shown == expected, "the browser shows a different picture from the kernel's PNG for c2 = 1.25"
        finally:
            page.close()
    unexpected_requests = [url for url in off_machine if not url.startswith(OFFLINE_OK)]
    assert not unexpected_requests, f"{front_end}: the page fetched from off the machine: {unexpected_requests}"
    known = KNOWN_FRONT_END_ERRORS.get(front_end, ())
    unexpected = [text for text in problems if not any(k in text for k in known)]
    assert not unexpected, f"{front_end}: errors in the browser: {unexpected}"
    print(f"\n{front_end}: {time.monotonic() - started:.1f} s")


def test_the_every_cell_ran_check_can_fail(tmp_path):
    """The kernel-side check names a failed cell and a cell that never ran (a real kernel)."""
    from jupyter_client.manager import start_new_kernel

    v4 = nbformat.v4
    path = tmp_path / "nb.ipynb"
    nbformat.write(v4.new_notebook(cells=[v4.new_code_cell("x = 1"), v4.new_markdown_cell("text"),
                                          v4.new_code_cell("1 / 0"), v4.new_code_cell("y = 2")]), path)
    manager, client = start_new_kernel(kernel_name="python3")
    try:
        connection = tmp_path / "kernel.json"
        manager.write_connection_file()
        connection.write_text(open(manager.connection_file).read())
        client.execute_interactive("x = 1", timeout=30)
        with KernelProbe(connection) as kernel:
            with pytest.raises(AssertionError, match="ran 1 cells, the notebook has 3"):
                _check_every_cell_ran(kernel, path)
            client.execute_interactive("1 / 0", timeout=30)
            with pytest.raises(AssertionError, match="ZeroDivisionError"):
                _check_every_cell_ran(kernel, path)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
