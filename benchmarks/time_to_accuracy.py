"""Time to accuracy: how good is Q's categorical code after N minutes of CPU training?

For each seed (fixed in advance: 0-4) this trains the default configuration with the library's own
command (`python -m infogan_lib train`) for a wall-clock budget (checkpoints and snapshots are
saved during the run and count against it), keeping a weights snapshot every minute. Afterwards
each snapshot is scored on the 10,000 test images: Hungarian accuracy of Q's categorical code,
and, for the final one, L_I on 10k fresh samples, class coverage and the Fréchet distance of the
samples (the kit's classifier). Hyperparameters were chosen on the validation split
(`benchmarks/sweep.py`), never on the test set; training never sees a label.

    python benchmarks/time_to_accuracy.py                          # MNIST 10 min, seeds 0-4
    python benchmarks/time_to_accuracy.py --dataset fashion-mnist --minutes 15
    python benchmarks/time_to_accuracy.py --paper --seeds 0 1      # the paper's recipe, same time
    python benchmarks/time_to_accuracy.py --score-only             # rescore existing runs

Runs go to benchmarks/results/ (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from infogan_lib import checkpoint as ckpt
from infogan_lib.data import load_images
from infogan_lib.metrics import estimate_info, q_accuracy, sample_quality
from infogan_lib.runtime import available_cores

sys.path.insert(0, str(Path(__file__).parent))
from throughput import cpu_name, gemm_gflops  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def run_dir(dataset: str, recipe: str, seed: int) -> Path:
    return RESULTS / "time_to_accuracy" / f"{dataset}-{recipe}-seed{seed}"


def train_one(dataset: str, recipe: str, seed: int, minutes: float, data_dir, threads: int) -> float:
    out = run_dir(dataset, recipe, seed)
    if (out / "checkpoint.pt").exists():
        print(f"  {out} exists, not retrained (delete it to train again)")
        return float("nan")
    cmd = [sys.executable, "-m", "infogan_lib", "train", "--dataset", dataset, "--seed", str(seed),
           "--minutes", str(minutes), "--out-dir", str(out), "--snapshot-minutes", "1",
           "--no-progress", "--threads", str(threads)]
    if recipe == "paper":
        cmd.append("--paper")
    if data_dir:
        cmd += ["--data-dir", data_dir]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def score(dataset: str, recipe: str, seed: int, data_dir, quality: bool) -> dict:
    out = run_dir(dataset, recipe, seed)
    test = load_images(dataset, "test", data_dir)
    curve = []
    for snap in sorted((out / "snapshots").glob("step*.pt")):
        obj = ckpt.load_file(snap)
        _, _, G, D = ckpt.models_from(obj, snap)
        curve.append((float(obj.get("elapsed_s") or 0.0), int(obj["step"]),
                      q_accuracy(D, test.images, test.labels).accuracy))
    final = ckpt.load_file(out / "checkpoint.pt", kind="checkpoint")
    _, _, G, D = ckpt.models_from(final, out / "checkpoint.pt")
    s = q_accuracy(D, test.images, test.labels)
    result = {"seed": seed, "recipe": recipe, "dataset": dataset, "step": int(final["step"]),
              "minutes": float(final["elapsed_s"]) / 60, "accuracy": s.accuracy,
              "merged": s.merged(0.5), "curve": curve,
              **estimate_info(G, D, n=10_000)}
    if quality:
        result.update({f"quality_{k}": v for k, v in
                       sample_quality(G, test.images, dataset).items() if k != "histogram"})
    return result


def reference_frechet(dataset: str, data_dir) -> float:
    """The Fréchet distance between 10,000 real training images and the test set: the floor."""
    from infogan_lib.classifier import features_and_classes, load_classifier
    from infogan_lib.data import to_model_range
    from infogan_lib.metrics import frechet_distance

    model = load_classifier(dataset)
    train = load_images(dataset, "train", data_dir).images[:10_000]
    test = load_images(dataset, "test", data_dir).images
    return frechet_distance(features_and_classes(model, to_model_range(train))[0],
                            features_and_classes(model, to_model_range(test))[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--minutes", type=float, default=None, help="default: 10 (MNIST), 15 (Fashion)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--paper", action="store_true", help="the paper's recipe instead of the default")
    p.add_argument("--score-only", action="store_true", help="score existing runs, train nothing")
    p.add_argument("--no-quality", action="store_true", help="skip coverage / Fréchet distance")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--threads", type=int, default=None,
                   help="training threads (default: every core, as on an idle machine; the kit's own "
                        "default is half of them, see infogan_lib/runtime.py)")
    a = p.parse_args()
    minutes = a.minutes or (10.0 if a.dataset == "mnist" else 15.0)
    recipe = "paper" if a.paper else "default"
    torch.set_num_threads(available_cores())
    gflops, _ = gemm_gflops(1024)
    print(f"CPU: {cpu_name()}  cores: {available_cores()}  fp32 GEMM 1024³: {gflops:.1f} GFLOP/s")
    print(f"{a.dataset}, recipe {recipe}, {minutes:g} min per seed, seeds {a.seeds}")
    results = []
    for seed in a.seeds:
        if not a.score_only:
            wall = train_one(a.dataset, recipe, seed, minutes, a.data_dir, a.threads or available_cores())
            print(f"  seed {seed}: trained, whole process {wall / 60:.2f} min wall clock", flush=True)
        r = score(a.dataset, recipe, seed, a.data_dir, not a.no_quality)
        results.append(r)
        curve = "  ".join(f"{t / 60:.0f}m:{acc:.3f}" for t, _, acc in r["curve"])
        print(f"  seed {seed}: accuracy {r['accuracy']:.4f} after {r['minutes']:.2f} min "
              f"({r['step']} steps)  L_I {r['info_cat']:.3f}/{r['entropy_cat']:.3f}"
              f"  merged {r['merged'] or 'none'}"
              + (f"  coverage {r['quality_coverage']:.2f}  Fréchet {r['quality_frechet']:.2f}"
                 if "quality_frechet" in r else ""), flush=True)
        print(f"          curve (minutes:accuracy) {curve}", flush=True)
    accs = [r["accuracy"] for r in results]
    print(f"median accuracy {statistics.median(accs):.4f}  (min {min(accs):.4f}, max {max(accs):.4f})")
    print(f"median L_I {statistics.median(r['info_cat'] for r in results):.4f} of "
          f"H(c) {results[0]['entropy_cat']:.4f} nats")
    print(f"seeds with merged categories: {sum(bool(r['merged']) for r in results)} of {len(results)}")
    if "quality_frechet" in results[0]:
        print(f"median Fréchet distance {statistics.median(r['quality_frechet'] for r in results):.2f}"
              f"  median coverage {statistics.median(r['quality_coverage'] for r in results):.2f}"
              f"  (real training images vs test: {reference_frechet(a.dataset, a.data_dir):.2f})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"time_to_accuracy_{a.dataset}_{recipe}.json"
    out.write_text(json.dumps({"cpu": cpu_name(), "gemm_gflops": gflops, "minutes": minutes,
                               "results": results}, indent=1))
    print(f"details: {out}")


if __name__ == "__main__":
    main()
