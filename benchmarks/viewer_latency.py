"""How fast does the traversal viewer answer a slider? Kernel side and in a real browser.

Kernel side: one slider change → `TraversalViewer.update()` → new PNG(s) set on the image widget(s),
timed in the kernel's own process for many random values; single-image mode (one generator, and the
two-generator comparison notebook 04 shows) and grid mode (10 categories × 9 values, re-rendered
when a code that is not swept changes). Bar: p95 ≤ 50 ms single, ≤ 200 ms grid.

Browser: JupyterLab 4 and Voilà serve notebooks/dashboard.ipynb; Chromium (Playwright) types a value
into the c2 slider's readout and presses Enter; the time runs from just before Enter to the moment
the <img> gets its new picture (a MutationObserver in the page), so it includes the browser → kernel
→ browser round trip and decoding. Same modes.

    python benchmarks/viewer_latency.py                 # both parts (about 2 min)
    python benchmarks/viewer_latency.py --kernel-only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from throughput import cpu_name  # noqa: E402


def percentiles(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (f"n {len(a):3d}  p50 {np.percentile(a, 50):6.1f} ms  p95 {np.percentile(a, 95):6.1f} ms  "
            f"max {a.max():6.1f} ms")


def kernel_side(n: int) -> dict[str, list[float]]:
    from infogan_lib import weights
    from infogan_lib.runtime import available_cores
    from infogan_lib.widgets import TraversalViewer

    torch.set_num_threads(available_cores())
    _, _, G, _ = weights.load_pretrained("mnist")
    _, _, G_early, _ = weights.load_pretrained("mnist", "early")
    rng = np.random.default_rng(0)
    out = {}

    def timed(slider, label):
        for _ in range(5):                                   # warm-up
            slider.value = round(float(rng.uniform(-2, 2)), 2)
        ms = []
        for _ in range(n):
            v = round(float(rng.uniform(-2, 2)), 2)
            if v == slider.value:
                v = -v if v else 0.5
            t0 = time.perf_counter()
            slider.value = v                                 # observe → update() → image.value
            ms.append((time.perf_counter() - t0) * 1000)
        out[label] = ms

    one = TraversalViewer(G)
    timed(one.sliders[1], "single, 1 generator")
    two = TraversalViewer(G, G_early)
    timed(two.sliders[1], "single, 2 generators (notebook 04)")
    one.mode.value = "grid"
    one.grid_code.value = 0
    timed(one.sliders[1], "grid 10×9, 1 generator")
    two.mode.value = "grid"
    timed(two.sliders[1], "grid 10×9, 2 generators")
    return out


def browser_side(n: int, front_ends: list[str]) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    from harness.browser import (JupyterServer, block_off_machine, find_chromium, launch_args,
                                 open_and_run, set_slider_by_typing)

    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found (apt-get install -y chromium, or set INFOGAN_CHROMIUM)")
    out = {}
    observe = """() => {
        window.__imgChanged = null;
        const img = document.querySelector('img.infogan-image-0');
        new MutationObserver(() => { window.__imgChanged = performance.now(); })
            .observe(img, {attributes: true, attributeFilter: ['src']});
    }"""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=launch_args())
        for fe in front_ends:
            with tempfile.TemporaryDirectory() as tmp, \
                    JupyterServer(fe, ROOT / "notebooks" / "dashboard.ipynb", Path(tmp)) as server:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                block_off_machine(page, [])
                open_and_run(page, server, 180)
                page.evaluate(observe)
                rng = np.random.default_rng(1)
                for mode in ("single", "grid"):
                    if mode == "grid":
                        page.locator("button:has-text('grid')").first.click()
                        page.wait_for_function(
                            "() => document.querySelector('.infogan-status').textContent"
                            ".startsWith('rows')", timeout=30_000)
                        page.evaluate(observe)
                    ms, last = [], None
                    for i in range(n + 3):
                        v = f"{rng.uniform(-2, 2):.2f}"
                        if v == last or float(v) == 0.0:
                            v = "1.11" if last != "1.11" else "-1.11"
                        last = v
                        page.evaluate("() => { window.__imgChanged = null; }")
                        t0 = set_slider_by_typing(page, "infogan-c2", v)
                        page.wait_for_function("() => window.__imgChanged !== null",
                                               timeout=30_000, polling="raf")
                        t1 = page.evaluate("() => window.__imgChanged")
                        if i >= 3:                                  # the first ones warm up
                            ms.append(t1 - t0)
                        time.sleep(0.05)
                    out[f"{fe}, {mode}"] = ms
                page.close()
        browser.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="slider changes per kernel-side case")
    ap.add_argument("--browser-n", type=int, default=30, help="slider changes per browser case")
    ap.add_argument("--kernel-only", action="store_true")
    ap.add_argument("--front-ends", nargs="+", default=["lab", "voila"],
                    choices=["lab", "notebook", "voila"])
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("\nkernel side (slider change → PNG set on the image widget):")
    for label, ms in kernel_side(args.n).items():
        bar = 200 if label.startswith("grid") else 50
        p95 = float(np.percentile(ms, 95))
        print(f"  {label:38s} {percentiles(ms)}   bar p95 ≤ {bar} ms: {'met' if p95 <= bar else 'NOT met'}")
    if not args.kernel_only:
        print("\nbrowser (Enter in the c2 readout → <img> shows the new picture):")
        for label, ms in browser_side(args.browser_n, args.front_ends).items():
            print(f"  {label:38s} {percentiles(ms)}   median {statistics.median(ms):.1f} ms")


if __name__ == "__main__":
    main()
