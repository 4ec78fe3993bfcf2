"""The homework's bar: from the released notebook, a student reaches a third code that controls a
measurable attribute in ≤ 10 CPU-minutes of training.

For each seed this executes the *solution* notebook of part 2 (solutions/infogan_homework/
2_third_code.ipynb) top to bottom in a fresh folder, with HOMEWORK_SEED set, as a student would run
the release after filling it in: widen the shipped 2-code model, train HOMEWORK_STEPS (default
8,000) steps from that warm start with the notebook's recipe (the old model's Q as a frozen anchor; Q
reading the codes from a moved copy), save third_code.pt, measure. Then it applies the autograded check
to that file (the new code controls a descriptor, |ρ| ≥ 0.8 and ≥ 1 SD, that is not the strongest of
either old code) and prints each seed's semantics table (1,000 sweeps per code), the training time, and
the success rate. Pilots of other recipes: benchmarks/homework_recipes.py.

    python benchmarks/homework.py                  # seeds 0-4, about 45 minutes on 2 idle cores
    python benchmarks/homework.py --seeds 0 1
    python benchmarks/homework.py --keep runs/homework-bench   # keep each seed's folder (third_code.pt)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from throughput import cpu_name  # noqa: E402

NOTEBOOK = ROOT / "solutions" / "infogan_homework" / "2_third_code.ipynb"


def run_seed(seed: int, workdir: Path) -> dict:
    from infogan_lib import checkpoint as ckpt
    from infogan_lib import load_images
    from infogan_lib.semantics import measure

    folder = workdir / f"seed{seed}"
    folder.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    env_before = os.environ.get("HOMEWORK_SEED")
    os.environ["HOMEWORK_SEED"] = str(seed)
    start = time.perf_counter()
    try:
        # errors are kept in the notebook (the graded check fails on a seed that misses): the
        # verdict below is recomputed from the saved third_code.pt
        NotebookClient(nb, timeout=3600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(folder)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("HOMEWORK_SEED", None)
        else:
            os.environ["HOMEWORK_SEED"] = env_before
    wall = time.perf_counter() - start
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    trained = re.search(r"trained (\d+) steps in ([\d.]+) min", text)
    _, _, G, _ = ckpt.load_models(folder / "third_code.pt")
    test = load_images("mnist", "test").images
    graded = measure(G, test, n_noise=30)            # exactly the autograded check
    new, ok = graded.strongest(2), graded.distinct(2)
    full = measure(G, test, n_noise=100)
    return {"seed": seed, "ok": ok, "steps": int(trained.group(1)) if trained else None,
            "train_min": float(trained.group(2)) if trained else None, "wall_min": wall / 60,
            "new": new, "table": full}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--keep", help="a folder to keep each seed's run in (default: a temporary one)")
    args = ap.parse_args()
    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores visible")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            r = run_seed(seed, work)
            results.append(r)
            verdict = (f"c3 ≈ {r['new'].descriptor}, ρ = {r['new'].rho:+.2f}, {r['new'].effect_sd:+.1f} SD"
                       if r["new"] else "c3 controls no descriptor")
            print(f"\n## seed {seed}: {'PASS' if r['ok'] else 'FAIL'} ({verdict}; graded check, 300 sweeps)")
            print(f"trained {r['steps']} steps in {r['train_min']:.1f} min; notebook {r['wall_min']:.1f} min in all\n")
            print(r["table"].to_markdown())
            for line in r["table"].summary():
                print(" ", line)
            sys.stdout.flush()
    passed = sum(r["ok"] for r in results)
    print(f"\nsuccess: {passed} of {len(results)} seeds (bar: ≥ 4 of 5); training time "
          f"{min(r['train_min'] for r in results):.1f}–{max(r['train_min'] for r in results):.1f} min (bar: ≤ 10)")


if __name__ == "__main__":
    main()
