"""The same recipe gives the same weights, bit for bit: a fixed-step run of each recipe on one
thread, its final weights hashed and compared with the hashes recorded in same_numbers.json.

The recorded hashes were made by the kit before its training code was reorganized (commit 1ccbd38:
`train_step` and a flat `TrainConfig`), with the same script's recipes. Floating-point results
depend on the CPU's instruction set and torch's version, so a hash only compares on the machine
kind and torch version it records (AMD EPYC: all four recipes; Intel Xeon: default and anchored, made
by the same commit's code on that machine); elsewhere the script prints its own hashes to record.

    python benchmarks/same_numbers.py                       # all four recipes, 2,000 steps
    python benchmarks/same_numbers.py --only default --steps 200

Recipes: the course's default; the homework's anchored third code (widened as the solution notebook
does, anchor 1, every code read from the moved copy); the overlap penalty on the widened model
(λ_ortho 1, a quarter of the steps); the paper's recipe (a quarter of the steps: 16× the FLOPs).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from homework_recipes import solution_widening  # noqa: E402
from throughput import cpu_name  # noqa: E402

from infogan_lib import Recipe, Run, train, weights  # noqa: E402
from infogan_lib import checkpoint as ckpt  # noqa: E402

RECORDED = Path(__file__).with_name("same_numbers.json")


def run_recipe(name: str, steps: int, out: Path):
    run = Run(dataset="mnist", out_dir=str(out / name), steps=steps, threads=1, figures=False,
              progress=False, fast=False)
    if name == "default":
        return train(Recipe(seed=0), run)
    if name == "paper":
        return train(Recipe.paper(seed=0), Run(**{**run.to_dict(), "steps": steps // 4}))
    widen_generator, widen_discriminator = solution_widening()
    spec2, model_config, G2, D2 = weights.load_pretrained("mnist")
    spec3 = spec2.with_continuous("gaussian")
    torch.manual_seed(0)
    init = (widen_generator(G2, spec3), widen_discriminator(D2, spec3))
    if name == "anchored":
        recipe = Recipe(spec=spec3, model=model_config, lambda_cont=0.4, lambda_anchor=1.0,
                        moved_codes="all", seed=0)
        return train(recipe, run, init=init, anchor=D2)
    recipe = Recipe(spec=spec3, model=model_config, lambda_cont=0.4, lambda_ortho=1.0, seed=0)
    return train(recipe, Run(**{**run.to_dict(), "steps": steps // 4}), init=init)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", default=["default", "anchored", "ortho", "paper"],
                   choices=["default", "anchored", "ortho", "paper"])
    p.add_argument("--steps", type=int, default=2000)
    a = p.parse_args()
    machines = json.loads(RECORDED.read_text())["machines"]
    recorded = next((m for m in machines if m["cpu"] in cpu_name()
                     and (m["torch"], m["steps"]) == (torch.__version__, a.steps)), None)
    print(f"CPU: {cpu_name()}  torch {torch.__version__}; recorded on: "
          + "; ".join(f"{m['cpu']}, torch {m['torch']}, {m['steps']} steps" for m in machines))
    same_machine = recorded is not None
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.only:
            start = time.perf_counter()
            result = run_recipe(name, a.steps, Path(tmp))
            h = ckpt.weights_sha256(result.generator, result.discriminator)
            want = recorded["sha256"].get(name) if same_machine else None
            verdict = ("identical" if h == want else "DIFFERENT") if want else "(not recorded here)"
            failures += verdict == "DIFFERENT"
            print(f"{name:9} {result.step:5d} steps  {time.perf_counter() - start:6.0f} s  sha256 {h[:16]}…  "
                  f"{verdict}", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
