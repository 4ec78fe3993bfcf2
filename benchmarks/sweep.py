"""How the default recipe was chosen: candidate recipes scored on the validation split.

Each candidate trains for the same wall-clock budget on the first 55,000 training images
(`infogan_lib.train`, the real loop) with a few seeds kept apart from the ones
`time_to_accuracy.py` reports; then Q's Hungarian accuracy is scored on the 5,000 held-out
*validation* images (the last 5,000 of the training set). The test set is never looked at here.

    python benchmarks/sweep.py                     # all candidates, 5 min each, seeds 10 11
    python benchmarks/sweep.py --only default paper --minutes 10 --seeds 10 11 12

Runs go to benchmarks/results/sweep/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from infogan_lib import ModelConfig, Recipe, Run, load_images, train
from infogan_lib.metrics import q_accuracy

sys.path.insert(0, str(Path(__file__).parent))
from throughput import cpu_name  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "sweep"

PAPER_NETS = ModelConfig.paper()
QUARTER = ModelConfig(16, 16, 256, 64)
HALF = ModelConfig(32, 32, 512, 64)
BASE = Recipe()

CANDIDATES = {
    "paper": Recipe.paper(),
    "quarter-paper-lr": replace(BASE, model=QUARTER, lr_d=2e-4, lr_g=1e-3, moved_codes="none"),
    "quarter-fast-lr": replace(BASE, model=QUARTER, lr_d=5e-4, lr_g=2e-3, moved_codes="none"),
    "default": BASE,
    "default-batch128": replace(BASE, batch_size=128),
    "half-width": replace(BASE, model=HALF),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=list(CANDIDATES), default=list(CANDIDATES))
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--seeds", type=int, nargs="+", default=[10, 11])
    p.add_argument("--data-dir", default=None)
    a = p.parse_args()
    val = load_images("mnist", "val", a.data_dir)
    print(f"CPU: {cpu_name()}; {a.minutes:g} min per run; seeds {a.seeds}; scored on validation")
    table = {}
    for name in a.only:
        accs = []
        for seed in a.seeds:
            out = RESULTS / f"{name}-seed{seed}"
            recipe = replace(CANDIDATES[name], seed=seed)
            run = Run(out_dir=str(out), minutes=a.minutes, data_dir=a.data_dir, progress=False,
                      figures=False, fast=False)
            result = train(recipe, run, resume=(out / "checkpoint.pt").exists())
            score = q_accuracy(result.discriminator, val.images, val.labels)
            accs.append(score.accuracy)
            print(f"  {name:18} seed {seed}: val accuracy {score.accuracy:.4f} after {result.step} "
                  f"steps ({result.step * recipe.batch_size / 1000:.0f}k images)  merged "
                  f"{score.merged() or 'none'}", flush=True)
        table[name] = accs
        print(f"{name:18} median {statistics.median(accs):.4f}  {[round(x, 4) for x in accs]}",
              flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(
        {"cpu": cpu_name(), "minutes": a.minutes, "seeds": a.seeds, "val_accuracy": table}, indent=1))


if __name__ == "__main__":
    main()
