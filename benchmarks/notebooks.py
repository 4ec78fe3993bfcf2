"""How long does each course notebook take, top to bottom, on this machine?

Runs every notebook in notebooks/ in a fresh kernel and a temporary folder (no earlier runs/ to
resume), in normal mode (shipped weights, the notebooks' own short live trainings) and in fast mode
(INFOGAN_FAST=1, what the test suite runs), and prints the wall-clock time of each. The executed
notebooks are kept in benchmarks/results/notebooks/<mode>/ for reading their outputs.

    python benchmarks/notebooks.py               # both modes
    python benchmarks/notebooks.py --mode fast   # or: normal

Targets: ≤ 60 s per notebook in fast mode, ≤ 5 min in normal mode, on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["fast", "normal", "both"], default="both")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="only the notebooks whose file name contains one of these, e.g. 04 dashboard")
    a = p.parse_args()
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    gflops, _ = gemm_gflops(1024)
    print(f"CPU: {cpu_name()}  fp32 GEMM 1024³: {gflops:.1f} GFLOP/s")
    modes = ["fast", "normal"] if a.mode == "both" else [a.mode]
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


if __name__ == "__main__":
    main()
