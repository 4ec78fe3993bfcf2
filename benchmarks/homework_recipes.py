"""Pilots for the homework's training recipe: widen the shipped 2-code model exactly as the solution
notebook does, train one recipe with snapshots, and apply the graded check (test images, 300 sweeps)
to every snapshot, step 0 included. Made the tables in SWEEP.md ("Why the anchor was not enough").

    python benchmarks/homework_recipes.py --seed 2 --anchor 1 --moved          # the notebook's recipe
    python benchmarks/homework_recipes.py --seed 2 --anchor 3 --ortho 1        # anchor + overlap penalty
    python benchmarks/homework_recipes.py --seed 0 --anchor 10 --threads 1     # two such runs side by side

Each run writes runs/homework-recipes/<recipe>/ (resumable) and appends one JSON line to results.jsonl
there. `benchmarks/homework.py` is the bar's own measurement (the notebook itself, seeds 0-4).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import nbformat
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infogan_lib import Recipe, Run, load_images, train, weights  # noqa: E402
from infogan_lib import checkpoint as ckpt  # noqa: E402
from infogan_lib.models import Discriminator, Generator  # noqa: E402
from infogan_lib.semantics import measure  # noqa: E402

from harness.graded_check import model_check  # noqa: E402

NOTEBOOK = ROOT / "solutions" / "infogan_homework" / "2_third_code.ipynb"


def solution_widening():
    """widen_generator and widen_discriminator, taken from the solution notebook's answer cell."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "widen")
    namespace = {"torch": torch, "math": math, "F": F, "Generator": Generator, "Discriminator": Discriminator}
    exec(cell.source, namespace)
    return namespace["widen_generator"], namespace["widen_discriminator"]


def check(model_file: Path, test_images) -> dict:
    """The graded check's verdict on a saved model (its own cell), and what c3 moves most."""
    try:
        verdict, ok = model_check(model_file).strip().replace("\n", "; "), True
    except AssertionError as failed:
        verdict, ok = str(failed), False
    _, _, G, _ = ckpt.load_models(model_file)
    table = measure(G, test_images, n_noise=100)
    top = max((e for e in table.effects if e.code == 2), key=lambda e: abs(e.rho))
    return {"ok": ok, "verdict": verdict,
            "c3": f"{top.descriptor} {top.rho:+.2f}, {top.effect_sd:+.1f} SD",
            "c3_all": {e.descriptor: [round(e.rho, 2), round(e.effect_sd, 1)] for e in table.effects if e.code == 2},
            "old": table.summary()[:2]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--anchor", type=float, default=1.0, help="λ_anchor (0: no anchor)")
    ap.add_argument("--moved", action="store_true", help="Q reads the continuous codes from the moved copy")
    ap.add_argument("--ortho", type=float, default=0.0, help="λ_ortho, the overlap penalty")
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--every", type=int, default=2000, help="snapshot (and check) every this many steps")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "runs" / "homework-recipes"))
    args = ap.parse_args()
    widen_generator, widen_discriminator = solution_widening()
    spec2, model_config, G2, D2 = weights.load_pretrained("mnist")
    spec3 = spec2.with_continuous("gaussian")
    name = f"seed{args.seed}_anchor{args.anchor:g}" + ("_moved" if args.moved else "") + (f"_ortho{args.ortho:g}" if args.ortho else "")
    run = Path(args.out) / name
    recipe = Recipe(spec=spec3, model=model_config, lambda_cont=0.4, lambda_anchor=args.anchor,
                    moved_codes="all" if args.moved else "categorical", lambda_ortho=args.ortho,
                    seed=args.seed)
    steps = Run(dataset="mnist", out_dir=str(run), steps=args.steps, snapshot_steps=args.every,
                threads=args.threads, figures=False, progress=False, fast=False)
    resume = (run / "checkpoint.pt").exists()
    torch.manual_seed(args.seed)                                # as the notebook: the new column and rows
    start = time.perf_counter()
    result = train(recipe, steps, resume=resume, anchor=D2,
                   init=None if resume else (widen_generator(G2, spec3), widen_discriminator(D2, spec3)))
    minutes = (time.perf_counter() - start) / 60
    test_images = load_images("mnist", "test").images
    rows = []
    for snap in sorted((run / "snapshots").glob("step*.pt")):
        rows.append({"step": int(snap.stem[4:]), **check(snap, test_images)})
        r = rows[-1]
        print(f"{name} step {r['step']:>6}: {'PASS' if r['ok'] else 'fail'}  c3 → {r['c3']}  |  "
              + "; ".join(r["old"]), flush=True)
    print(f"{name}: {result.step} steps in {minutes:.1f} min ({torch.get_num_threads()} threads)")
    with open(Path(args.out) / "results.jsonl", "a") as f:
        f.write(json.dumps({"recipe": name, "minutes": minutes, "snapshots": rows}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
