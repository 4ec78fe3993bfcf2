"""How long does each course notebook take, top to bottom, on this machine?

Runs every notebook in notebooks/ in a fresh kernel and a temporary folder (no earlier runs/ to
resume), in normal mode (shipped weights, the notebooks' own short live trainings) and in fast mode
(INFOGAN_FAST=1, what the test suite runs), and prints the wall-clock time of each. The executed
notebooks are kept in benchmarks/results/notebooks/<mode>/ for reading their outputs.

    python benchmarks/notebooks.py               # both modes
    python benchmarks/notebooks.py --mode fast   # or: normal
    python benchmarks/notebooks.py --mode normal --only 01 --halved

`--halved` runs the notebooks as a laptop at half this machine's speed would: the kernel and a
busy loop share one core (CPU affinity), so the kernel gets half of one core. It then prints what
the notebook's self-checks and verdicts printed (lines starting with ✓, ✗, "the plain GAN", or
naming a live run), so that one can see the point of the notebook still shows.

Targets: ≤ 60 s per notebook in fast mode, ≤ 5 min in normal mode, on a 2-core CPU; halved,
each notebook's stated time ("the notebook itself runs in about …") must hold.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).parent))
from throughput import cpu_name, gemm_gflops  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, fast: bool) -> float:
    nb = nbformat.read(path, as_version=4)
    out = ROOT / "benchmarks" / "results" / "notebooks" / ("fast" if fast else "normal")
    out.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("INFOGAN_FAST")
    os.environ["INFOGAN_FAST"] = "1" if fast else "0"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": tmp}}).execute()
            seconds = time.perf_counter() - t
            nbformat.write(nb, out / path.name)
            return seconds
    finally:
        if old is None:
            os.environ.pop("INFOGAN_FAST", None)
        else:
            os.environ["INFOGAN_FAST"] = old


VERDICTS = ("✓", "✗", "the plain GAN", "plain GAN (λ = 0)", "conditional GAN (supervised)",
            "InfoGAN (unsupervised)", "AC-GAN:", "trained ")


def verdict_lines(path: Path, mode: str) -> list[str]:
    """What the executed notebook printed on its verdict lines."""
    nb = nbformat.read(ROOT / "benchmarks" / "results" / "notebooks" / mode / path.name, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream")
    return [line for line in text.splitlines() if line.startswith(VERDICTS)]


@contextlib.contextmanager
def halved_cpu():
    """This process (and the kernels it starts) and a busy loop on the same single core."""
    core = min(os.sched_getaffinity(0))
    before = os.sched_getaffinity(0)
    busy = subprocess.Popen([sys.executable, "-c", f"import os; os.sched_setaffinity(0, {{{core}}})\nwhile True: pass"])
    os.sched_setaffinity(0, {core})
    try:
        yield core
    finally:
        busy.kill()
        os.sched_setaffinity(0, before)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["fast", "normal", "both"], default="both")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="only the notebooks whose file name contains one of these, e.g. 04 dashboard")
    p.add_argument("--halved", action="store_true",
                   help="share one core with a busy loop: half of one core for the notebooks")
    a = p.parse_args()
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    gflops, _ = gemm_gflops(1024)
    print(f"CPU: {cpu_name()}  fp32 GEMM 1024³: {gflops:.1f} GFLOP/s")
    modes = ["fast", "normal"] if a.mode == "both" else [a.mode]
    with halved_cpu() if a.halved else contextlib.nullcontext() as core:
        if a.halved:
            print(f"halved: the notebooks' kernels share core {core} with a busy loop")
        run_all(a, modes)


def run_all(a, modes) -> None:
    for mode in modes:
        limit = 60 if mode == "fast" else 300
        for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
            if a.only and not any(name in path.name for name in a.only):
                continue
            try:
                seconds = run(path, mode == "fast")
            except Exception as err:  # report and go on with the next notebook
                print(f"{mode:6s}  {path.name:40s} FAILED: {type(err).__name__}: "
                      f"{str(err).strip().splitlines()[-1] if str(err).strip() else ''}", flush=True)
                continue
            flag = "ok" if seconds <= limit else f"OVER the {limit} s target"
            print(f"{mode:6s}  {path.name:40s} {seconds:7.1f} s   {flag}", flush=True)
            if a.halved:
                for line in verdict_lines(path, mode):
                    print(f"        | {line}", flush=True)


if __name__ == "__main__":
    main()
