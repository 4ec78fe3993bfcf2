"""The viewers in a real browser: JupyterLab 4, Notebook 7 and Voilà, driven by headless Chromium.

For each front end: serve a temporary copy of the notebook on a free loopback port with a token, open
it, run all cells (Voilà runs them itself), wait until the kernel is idle, type a value into the c2
slider's readout and press Enter, then check that the picture the browser shows is byte for byte the
PNG the kernel computes for that value (asked of the kernel itself, through a second client), that
it differs from the picture before, and that no cell failed and the page logged no error.

Each front end is served and run once (the `served` fixture); a second test then checks how the
viewers look on that page: every picture at least `PICTURE_PX` CSS px, square, the panels of a viewer
the same size, digits scaled without smoothing, each title on its own line above its picture, slider
tracks of at least 300 px with their values, and the categories named by what they draw (the
kernel's own names). With INFOGAN_SCREENSHOTS=<folder> it also saves each viewer as a PNG there.

JupyterLab serves notebook 04 and Voilà the dashboard: these are their top-to-bottom runs in fast
mode (tests/test_notebooks.py runs them only where no browser can), so each must also show
something to see. Notebook 7 serves the dashboard's first viewer alone (the front end is what it
tests; the notebooks already ran).

Needs Chromium (Debian's `chromium`, or $INFOGAN_CHROMIUM) and the `playwright` package; `.ci/run`
installs both. Outside CI the tests skip with a message when either is missing; in CI they fail.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from conftest import mnist_available
from infogan_lib.data import FASHION_CLASSES
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


@dataclass
class Served:
    """One front end serving its notebook in a page, every cell run, and what the page reported."""
    front_end: str
    server: JupyterServer
    page: object
    problems: list = field(default_factory=list)      # console errors and page errors
    off_machine: list = field(default_factory=list)   # requests that would have left 127.0.0.1


@pytest.fixture(scope="module", params=FRONT_ENDS)
def served(request, browser, tmp_path_factory):
    """Each front end is served, opened and run once; the tests of that front end share its page."""
    front_end, started = request.param, time.monotonic()
    tmp_path = tmp_path_factory.mktemp(front_end)
    notebook = _first_viewer(tmp_path) if front_end == "notebook" else ROOT / "notebooks" / NOTEBOOK[front_end]
    with JupyterServer(front_end, notebook, tmp_path, env={"INFOGAN_FAST": "1"}) as server:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        run = Served(front_end, server, page)
        block_off_machine(page, run.off_machine)
        page.on("console", lambda m: run.problems.append(f"console: {m.text}")
                if m.type == "error" and not m.location.get("url", "").startswith(OFFLINE_OK)
                else None)
        page.on("pageerror", lambda e: run.problems.append(f"page error: {e}"))
        try:
            try:
                open_and_run(page, server, CELL_TIMEOUT_S)
            except Exception as err:   # what the page showed, for whoever reads the failure
                page.screenshot(path=tmp_path / "failed.png")
                prompts = page.evaluate("() => [...document.querySelectorAll('.jp-InputPrompt')]"
                                        ".map(e => e.textContent.trim())")
                raise AssertionError(f"{front_end} did not run every cell (prompts {prompts}; page: "
                                     f"{tmp_path / 'failed.png'}; server log: {server.log_path})") from err
            print(f"\n{front_end}: served and run in {time.monotonic() - started:.1f} s")
            yield run
        finally:
            page.close()


def test_slider_typed_in_the_browser_shows_the_kernels_png(served):
    page, server, front_end = served.page, served.server, served.front_end
    if front_end == "voila":
        outputs = page.locator('.jp-OutputArea-output[data-mime-type*="stderr"]')
        assert outputs.count() == 0, f"Voilà shows an error output: {outputs.first.inner_text()}"
    else:
        assert _kernel_idle(server), "the kernel is still busy after every cell ran"
    rendered = page.evaluate(SHOWN_JS)
    assert set(rendered) & set(SHOWN), f"{NOTEBOOK[front_end]} shows no figure, table or viewer: {rendered}"

    with _kernel(server) as kernel:
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
    unexpected_requests = [url for url in served.off_machine if not url.startswith(OFFLINE_OK)]
    assert not unexpected_requests, f"{front_end}: the page fetched from off the machine: {unexpected_requests}"
    known = KNOWN_FRONT_END_ERRORS.get(front_end, ())
    unexpected = [text for text in served.problems if not any(k in text for k in known)]
    assert not unexpected, f"{front_end}: errors in the browser: {unexpected}"


# Every viewer on the page, as laid out: its pictures' boxes and rendering, its panels' titles, its
# sliders' tracks, and the names in its category selector and captions.
VIEWERS_JS = """() => [...document.querySelectorAll('.infogan-viewer')].map(viewer => {
    const box = e => { const r = e.getBoundingClientRect();
                       return {left: r.left, top: r.top, right: r.right, bottom: r.bottom,
                               width: r.width, height: r.height}; };
    return {
        pictures: [...viewer.querySelectorAll('img.infogan-picture, img.infogan-bars')].map(img => ({
            name: [...img.classList].find(c => /^infogan-(image|real|bars)/.test(c)),
            box: box(img), rendering: getComputedStyle(img).imageRendering, loaded: img.naturalWidth > 0,
            title: box(img.closest('.infogan-panel').querySelector('.infogan-title')),
            titleText: img.closest('.infogan-panel').querySelector('.infogan-title').innerText})),
        tracks: [...viewer.querySelectorAll('.widget-slider .slider-container')].map(t => box(t).width),
        readouts: [...viewer.querySelectorAll('.widget-slider .widget-readout')].map(r => r.textContent.trim()),
        categories: [...viewer.querySelectorAll('.infogan-category select option')]
                        .map(o => o.textContent.replace(/\u00a0/g, ' ')),
        captions: [...viewer.querySelectorAll('[class*="infogan-caption-"]')].map(c => c.innerText.trim()),
    };
})"""
# the viewers each page shows: notebook 04 (JupyterLab) a traversal viewer of two models and Q's
# viewer; the dashboard (Voilà) those and a Fashion-MNIST traversal viewer; Notebook 7 the first
VIEWERS = {"lab": ("traversal", "classifier"), "notebook": ("traversal",),
           "voila": ("traversal", "classifier", "traversal")}


def test_viewers_show_large_sharp_square_pictures_and_name_each_category(served):
    from infogan_lib.viewer_parts import PICTURE_PX

    page, front_end = served.page, served.front_end
    page.wait_for_function("(n) => document.querySelectorAll('.infogan-viewer img[src]').length >= n",
                           arg=len(VIEWERS[front_end]), timeout=60_000, polling=100)
    viewers = page.evaluate(VIEWERS_JS)
    kinds = tuple("traversal" if v["categories"] else "classifier" for v in viewers)
    assert kinds == VIEWERS[front_end], f"{front_end} shows viewers {kinds}, expected {VIEWERS[front_end]}"
    for n, viewer in enumerate(viewers):
        where = f"{front_end}, {kinds[n]} viewer {n}"
        sizes = {(round(p["box"]["width"]), round(p["box"]["height"])) for p in viewer["pictures"]}
        assert len(sizes) == 1, f"{where}: its panels differ in size: {viewer['pictures']}"
        ((width, height),) = sizes
        assert width >= PICTURE_PX and height >= PICTURE_PX, f"{where}: pictures {width}×{height} px"
        assert width == height, f"{where}: a 28×28 picture shown {width}×{height} px is distorted"
        for picture in viewer["pictures"]:
            assert picture["loaded"], f"{where}: {picture['name']} shows no picture"
            if picture["name"] != "infogan-bars":
                assert picture["rendering"] == "pixelated", (
                    f"{where}: {picture['name']} is scaled with smoothing ({picture['rendering']})")
            title, box = picture["title"], picture["box"]
            above = title["bottom"] <= box["top"] + 1
            as_wide = box["left"] - 1 <= title["left"] <= title["right"] <= box["right"] + 1
            assert above and as_wide, (f"{where}: the title {picture['titleText']!r} is not on its own "
                                       f"above its picture: {title} {box}")
        tops = [p["box"]["top"] for p in viewer["pictures"]]
        if len(tops) == 2 and max(tops) - min(tops) < 1:   # side by side: titles on one line must not meet
            left, right = sorted((p["title"] for p in viewer["pictures"]), key=lambda t: t["left"])
            assert left["right"] + 16 <= right["left"], f"{where}: the two titles run together"
        assert all(w >= 300 for w in viewer["tracks"]), f"{where}: slider tracks of {viewer['tracks']} px"
        assert all(viewer["readouts"]), f"{where}: a slider shows no value"
    with _kernel(served.server) as kernel:
        options = kernel.evaluate("[o[0] for o in viewer.category.options]")
    first = viewers[0]
    assert first["categories"] == options, (
        f"{front_end}: the page's categories {first['categories']} are not the kernel's {options}")
    assert sum(bool(re.fullmatch(r"\d → draws \d", o)) for o in options) >= 9, (
        f"{front_end}: categories not named by the digit they draw: {options}")
    assert re.fullmatch(r"category 0 → draws \d", first["captions"][0]), first["captions"]
    if front_end == "voila":
        fashion = viewers[2]["categories"]
        assert sum(any(o.endswith(f"draws {name}") for name in FASHION_CLASSES) for o in fashion) >= 6, (
            f"Fashion-MNIST categories not named by the garment they draw: {fashion}")
    if os.environ.get("INFOGAN_SCREENSHOTS") and front_end != "notebook":
        _screenshots(served, Path(os.environ["INFOGAN_SCREENSHOTS"]))


def _screenshots(served: Served, folder: Path) -> None:
    """Each viewer as shown (and the first in grid mode), as PNGs in `folder`: opt-in, e.g.
    `INFOGAN_SCREENSHOTS=docs/screenshots pytest tests/test_browser.py -k "lab or voila"`."""
    folder.mkdir(parents=True, exist_ok=True)
    page, name = served.page, {"lab": "jupyterlab", "notebook": "notebook7", "voila": "voila"}[served.front_end]
    page.add_style_tag(content=".Toastify { display: none !important; }")   # JupyterLab's news prompt
    page.set_viewport_size({"width": 1400, "height": 2400})                 # a grid viewer is tall
    viewers = page.locator(".infogan-viewer")

    def save(viewer, path: Path) -> None:         # in 64 colours: the same look in a fraction of the bytes
        from PIL import Image
        viewer.scroll_into_view_if_needed()
        shot = Image.open(io.BytesIO(viewer.screenshot(animations="disabled")))
        shot.convert("RGB").quantize(64).save(path, optimize=True)

    for n in range(viewers.count()):
        save(viewers.nth(n), folder / f"{name}-viewer-{n}.png")
    with _kernel(served.server) as kernel:
        kernel.evaluate("setattr(viewer.mode, 'value', 'grid')")
        page.wait_for_function("() => document.querySelector('.infogan-status').textContent.startsWith('rows')",
                               timeout=30_000, polling=100)
        page.wait_for_timeout(500)
        save(viewers.first, folder / f"{name}-viewer-0-grid.png")
        kernel.evaluate("setattr(viewer.mode, 'value', 'single')")


@contextlib.contextmanager
def _kernel(server: JupyterServer):
    connection = server.connection_files()
    assert len(connection) == 1, f"expected one kernel, found {connection}"
    with KernelProbe(connection[0]) as kernel:
        yield kernel


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
