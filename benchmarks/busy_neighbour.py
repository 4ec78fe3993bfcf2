"""Training speed on an idle machine and beside one busy process, for each thread count.

A student's laptop is rarely idle: a browser, a video call, another notebook. torch splits each
operation of a training step over a team of threads that wait for one another, so when another
process takes a core, one thread of the team keeps being descheduled and the others wait. This
measures steps/s of the real training loop (the default recipe, MNIST) idle and beside one
`yes > /dev/null`, for one thread, every core, and the kit's default (`runtime.default_threads`).
The bar: with the default, busy ≥ 0.4 × idle.

    python benchmarks/busy_neighbour.py                 # 200 steps per measurement
    python benchmarks/busy_neighbour.py --steps 400 --neighbours 1 2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from throughput import cpu_name  # noqa: E402

from infogan_lib import Recipe, Run, load_images, train  # noqa: E402
from infogan_lib.runtime import available_cores, default_threads  # noqa: E402


def steps_per_second(threads: int, steps: int, images: torch.Tensor) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        train(Recipe(), Run(out_dir=tmp, steps=10, threads=threads, figures=False, progress=False,
                            fast=False), images=images)                       # warm-up
        result = train(Recipe(), Run(out_dir=tmp + "/run", steps=steps, threads=threads, figures=False,
                                     progress=False, fast=False), images=images)
    return result.step / result.elapsed_s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--neighbours", type=int, nargs="+", default=[1], help="busy processes beside training")
    a = p.parse_args()
    cores = available_cores()
    counts = sorted({1, cores, default_threads()})
    images = load_images("mnist", "train").images
    print(f"CPU: {cpu_name()}, {cores} cores; torch {torch.__version__}; default threads {default_threads()}; "
          f"{a.steps} steps per measurement")
    idle = {t: steps_per_second(t, a.steps, images) for t in counts}
    for t in counts:
        print(f"  idle             threads {t}: {idle[t]:6.2f} steps/s", flush=True)
    for n in a.neighbours:
        yes = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(n)]
        try:
            for t in counts:
                busy = steps_per_second(t, a.steps, images)
                mark = "  <- default" if t == default_threads() else ""
                print(f"  {n} busy neighbour{'s' if n > 1 else ' '} threads {t}: {busy:6.2f} steps/s = "
                      f"{busy / idle[t]:.2f} × idle, {busy / max(idle.values()):.2f} × the fastest idle{mark}",
                      flush=True)
        finally:
            for proc in yes:
                proc.kill()


if __name__ == "__main__":
    main()
