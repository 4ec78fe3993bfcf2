"""Make the shipped weights in infogan_lib/pretrained/ with the kit's own `train` command.

For each data set this runs one training run of the default recipe with a step budget (so the run
is the same on any machine, however fast), keeps weights snapshots every few hundred steps, then:

- exports three points of the run as float16 weights files: early and middle (generator only, for
  the over-time figures) and final (generator + discriminator with its Q head); for MNIST the final
  weights come from a short second stage, a fine-tune with `--lambda-ortho` (see SCHEDULE);
- scores every snapshot (Q's Hungarian accuracy on the test set) for the accuracy-vs-steps curve,
  and the final weights in float32 and in float16 (the shipped precision must not change the
  figures: accuracy, L_I, class coverage, Fréchet distance);
- for MNIST, also records the loss histories of two contrasting short runs (learning rate ×10;
  Adam β1 = 0.9) for notebook 03's lesson on reading loss curves;
- writes infogan_lib/pretrained/infogan.json: commands, seed, files with SHA-256, figures, histories.

    python tools/make_pretrained.py                      # both data sets (about 40 min on 2 cores)
    python tools/make_pretrained.py --datasets mnist     # one
    python tools/make_pretrained.py --score-only         # reuse the runs in runs/pretrained/
    python tools/make_pretrained.py --datasets mnist --finetune-only --stage1 FILE   # MNIST's stage 2 alone

Runs go to runs/pretrained/ (git-ignored); only the small exported files are committed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infogan_lib import checkpoint as ckpt  # noqa: E402
from infogan_lib.data import load_images  # noqa: E402
from infogan_lib.metrics import estimate_info, q_accuracy, sample_quality  # noqa: E402
from infogan_lib.semantics import DESCRIPTORS, measure  # noqa: E402
from infogan_lib.loop import load_history  # noqa: E402
from infogan_lib.runtime import available_cores  # noqa: E402
from infogan_lib.weights import MANIFEST, PRETRAINED  # noqa: E402

RUNS = ROOT / "runs" / "pretrained"
# One run per data set, the same on any machine: a step budget (not minutes), a seed, and for
# every run an explicit thread count (a thread count can change float rounding, so a run is
# bitwise repeatable only on the same count; MNIST's uses one, Fashion-MNIST's two) and λ_cont = 0.4 instead of the default 0.1. Seed and λ_cont were chosen
# on the validation split among the runs in benchmarks/SWEEP.md ("The continuous codes") as the
# first whose two continuous codes are separate (tilt; stroke/ink). About 12 and 15 CPU minutes.
#
# MNIST then gets a short second stage: a fine-tune of the final weights, exported in
# float16 as they were shipped before, with the overlap penalty on the two continuous codes' image
# changes (`--lambda-ortho`, infogan_lib.overlap), keeping a snapshot every 100 steps.
# The shipped final weights are the snapshot at `finetune["pick"]` steps: among the ten snapshots, the one
# whose codes were measured separate on the *validation* images (benchmarks/SWEEP.md, "Where the
# cross-talk lives"). The cross-talk c2 → width wanders between 0.25 and 0.53 from snapshot to
# snapshot, so this is a chosen point of the run, and the manifest records which.
SCHEDULE = {
    "mnist": dict(steps=12_000, every=500, early=500, middle=3_000, seed=0,
                  extra=["--lambda-cont", "0.4", "--threads", "1"],
                  finetune=dict(steps=1_000, every=100, pick=500,
                                extra=["--lambda-cont", "0.4", "--lambda-ortho", "1", "--threads", "1"])),
    "fashion-mnist": dict(steps=15_000, every=500, early=1_000, middle=5_000, seed=0,
                          extra=["--threads", "2"]),
}
CONTRASTS = {  # name: (extra train options, what it shows)
    "lr_x10": (["--lr-d", "5e-3", "--lr-g", "2e-2"],
               "learning rates ×10 (D 5e-3, G 2e-2)"),
    "beta1_0.9": (["--beta1", "0.9"],
                  "Adam momentum β1 = 0.9 instead of 0.5"),
}
CONTRAST_STEPS = 3_000
WINDOW = 20  # history values are means over this many steps


def train_command(dataset: str, seed: int, steps: int, out: Path, extra=(), snapshot=None):
    cmd = ["python", "-m", "infogan_lib", "train", "--dataset", dataset, "--seed", str(seed),
           "--steps", str(steps), "--minutes", "0", "--out-dir", str(out.relative_to(ROOT))]
    if snapshot:
        cmd += ["--snapshot-steps", str(snapshot)]
    return cmd + list(extra)


def run(cmd: list[str], data_dir) -> None:
    if data_dir:
        cmd = cmd + ["--data-dir", data_dir]
    print("$", shlex.join(cmd), flush=True)
    subprocess.run([sys.executable, *cmd[1:]], check=True, cwd=ROOT)


def train_once(cmd, out: Path, steps: int, data_dir) -> None:
    ck = out / "checkpoint.pt"
    if ck.exists():
        obj = ckpt.load_file(ck, kind="checkpoint")
        if int(obj["step"]) >= steps:
            print(f"  {out} is complete ({obj['step']} steps), not retrained")
            return
        run(["python", "-m", "infogan_lib", "train", "--out-dir", str(out.relative_to(ROOT)),
             "--resume", "--steps", str(steps), "--minutes", "0"], data_dir)
        return
    run(cmd + ["--no-progress"], data_dir)


def compact_history(history: dict, window: int = WINDOW) -> dict:
    """Means over consecutive windows of `window` steps (rounded), for a small JSON file."""
    out = {}
    n = len(history["d_loss"]) // window * window
    for key in ("d_loss", "g_loss", "q_loss", "info_cat"):
        v = np.asarray(history[key][:n], dtype=np.float64).reshape(-1, window).mean(1)
        out[key] = [round(float(x), 4) for x in v]
    out["step"] = list(range(window, n + 1, window))
    return out


def score_weights(path: Path, test, dataset: str) -> dict:
    _, _, G, D = ckpt.load_models(path)
    s = q_accuracy(D, test.images, test.labels)
    quality = sample_quality(G, test.images, dataset)
    info = estimate_info(G, D, n=10_000)
    return {"accuracy": round(s.accuracy, 4), "merged": s.merged(0.5),
            "info_cat": round(info["info_cat"], 4), "entropy_cat": round(info["entropy_cat"], 4),
            "info_cont": [round(x, 4) for x in info["info_cont"]],
            "coverage": round(quality["coverage"], 3), "frechet": round(quality["frechet"], 3)}


def semantics_figures(weights_file: Path, test) -> dict:
    """What each continuous code of the shipped generator controls (infogan_lib.semantics)."""
    _, _, G, _ = ckpt.load_models(weights_file)
    table = measure(G, test.images, n_noise=100)
    return {"summary": table.summary(),
            "table": {f"c{j + 1}": {d: [round(table.get(j, d).rho, 3), round(table.get(j, d).effect_sd, 2)]
                                    for d in DESCRIPTORS} for j in table.codes()},
            "definition": "mean Spearman rho over 1,000 sweeps of the prior's range, effect in SDs of "
                          "real test images; controls = |rho| >= 0.8 and >= 1 SD"}


def stage2(dataset: str, seed: int, tune: dict, stage1: Path, data_dir, score_only: bool, files: dict):
    """Fine-tune `stage1` (SCHEDULE's second stage), export the picked snapshot as the shipped final
    weights and update files["final"]; returns (the picked snapshot, its manifest entry)."""
    tout = RUNS / f"{dataset}-finetune"
    tcmd = train_command(dataset, seed, tune["steps"], tout, extra=tune["extra"],
                         snapshot=tune["every"]) + ["--init", str(stage1.relative_to(ROOT))]
    sha = ckpt.sha256(stage1)
    if not score_only:
        marker = tout / "stage1.sha256"
        if tout.exists() and (not marker.exists() or marker.read_text().strip() != sha):
            print(f"  {tout} was fine-tuned from other stage-1 weights: starting it afresh")
            shutil.rmtree(tout)
        train_once(tcmd, tout, tune["steps"], data_dir)
        marker.write_text(sha + "\n")
    picked = tout / "snapshots" / f"step{tune['pick']:07d}.pt"
    final = PRETRAINED / files["final"]["file"]
    ckpt.export_weights(picked, final, half=True, with_discriminator=True)
    first = SCHEDULE[dataset]["steps"]
    files["final"].update(step=first + tune["pick"], sha256=ckpt.sha256(final), bytes=final.stat().st_size)
    entry = {"command": shlex.join(tcmd), "steps": tune["steps"], "picked_step": tune["pick"],
             "init_sha256": sha,
             "why": "the snapshot (every 100 steps) whose two codes measured separate on the "
                    "validation images; see benchmarks/SWEEP.md"}
    return picked, entry


def finetune_only(dataset: str, entry: dict, stage1_file: Path, data_dir, score_only: bool) -> dict:
    """Redo only the second stage, from a given stage-1 weights file (for example the one shipped
    before the second stage existed: git show fe4dbe8:infogan_lib/pretrained/infogan_mnist_final.pt),
    keeping the manifest's stage-1 entries (command, early/middle files, curve, histories)."""
    tune = SCHEDULE[dataset]["finetune"]
    stage1 = RUNS / f"{dataset}-stage1.pt"
    stage1.parent.mkdir(parents=True, exist_ok=True)
    if stage1_file.resolve() != stage1.resolve():
        shutil.copyfile(stage1_file, stage1)
    files = entry["files"]
    picked, finetune = stage2(dataset, entry["seed"], tune, stage1, data_dir, score_only, files)
    test = load_images(dataset, "test", data_dir)
    entry.update(finetune=finetune,
                 figures_float32=score_weights(picked, test, dataset),
                 figures_float16=score_weights(PRETRAINED / files["final"]["file"], test, dataset),
                 semantics=semantics_figures(PRETRAINED / files["final"]["file"], test))
    print(f"  final float16 (shipped): {entry['figures_float16']}")
    return entry


def make(dataset: str, seed: int | None, data_dir, score_only: bool) -> dict:
    plan = SCHEDULE[dataset]
    steps, every, early, middle = plan["steps"], plan["every"], plan["early"], plan["middle"]
    seed = plan["seed"] if seed is None else seed
    out = RUNS / dataset
    cmd = train_command(dataset, seed, steps, out, extra=plan["extra"], snapshot=every)
    if not score_only:
        train_once(cmd, out, steps, data_dir)
    test = load_images(dataset, "test", data_dir)
    curve = []
    for snap in sorted((out / "snapshots").glob("step*.pt")):
        obj = ckpt.load_file(snap)
        _, _, _, D = ckpt.models_from(obj, snap)
        curve.append([int(obj["step"]), round(q_accuracy(D, test.images, test.labels).accuracy, 4)])
    print(f"  accuracy vs step: {curve}")
    prefix = dataset.replace("-", "_")
    files = {}
    for point, step, with_d in (("early", early, False), ("middle", middle, False),
                                ("final", steps, True)):
        src = out / "snapshots" / f"step{step:07d}.pt"
        name = f"infogan_{prefix}_{point}.pt"
        ckpt.export_weights(src, PRETRAINED / name, half=True, with_discriminator=with_d)
        files[point] = {"file": name, "step": step, "sha256": ckpt.sha256(PRETRAINED / name),
                        "bytes": (PRETRAINED / name).stat().st_size}
    final_src = out / "snapshots" / f"step{steps:07d}.pt"
    finetune = None
    if "finetune" in plan:
        # stage 2 starts from stage 1's final weights exactly as they used to ship (float16)
        stage1 = RUNS / f"{dataset}-stage1.pt"
        ckpt.export_weights(final_src, stage1, half=True, with_discriminator=True)
        final_src, finetune = stage2(dataset, seed, plan["finetune"], stage1, data_dir, score_only, files)
    full = score_weights(final_src, test, dataset)
    shipped = score_weights(PRETRAINED / files["final"]["file"], test, dataset)
    print(f"  final float32: {full}\n  final float16 (shipped): {shipped}")
    entry = {
        "command": shlex.join(cmd), "seed": seed, "steps": steps,
        "finetune": finetune,
        "threads": int(plan["extra"][plan["extra"].index("--threads") + 1]),
        "torch": torch.__version__,
        "files": files, "figures_float16": shipped, "figures_float32": full,
        "semantics": semantics_figures(PRETRAINED / files["final"]["file"], test),
        "accuracy_curve": curve,
        "histories": {"default": {"description": "the shipped run's recipe",
                                  "command": shlex.join(cmd),
                                  "accuracy_3000_steps": dict(curve).get(CONTRAST_STEPS),
                                  **compact_history(load_history(out / "checkpoint.pt"))}},
    }
    if dataset == "mnist":
        for name, (extra, description) in CONTRASTS.items():
            cout = RUNS / f"{dataset}-{name}"
            ccmd = train_command(dataset, seed, CONTRAST_STEPS, cout,
                                 [*plan["extra"], *extra]) + ["--no-figures"]
            if not score_only:
                train_once(ccmd, cout, CONTRAST_STEPS, data_dir)
            _, _, _, D = ckpt.load_models(cout / "checkpoint.pt")
            accuracy = round(q_accuracy(D, test.images, test.labels).accuracy, 4)
            print(f"  {name}: test accuracy after {CONTRAST_STEPS} steps {accuracy}")
            entry["histories"][name] = {"description": description, "command": shlex.join(ccmd),
                                        "accuracy_3000_steps": accuracy,
                                        **compact_history(load_history(cout / "checkpoint.pt"))}
    return entry


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(SCHEDULE), choices=list(SCHEDULE))
    p.add_argument("--seed", type=int, default=None, help="default: each data set's seed in SCHEDULE")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--score-only", action="store_true")
    p.add_argument("--finetune-only", action="store_true",
                   help="redo only MNIST's second stage from --stage1, keeping the rest of the manifest")
    p.add_argument("--stage1", type=Path, default=RUNS / "mnist-stage1.pt",
                   help="the stage-1 weights file that --finetune-only starts from")
    a = p.parse_args()
    torch.set_num_threads(available_cores())
    manifest = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {"datasets": {}}
    manifest["about"] = ("Made by tools/make_pretrained.py; every file is float16, checked by "
                         "SHA-256 on load (infogan_lib.weights).")
    for dataset in a.datasets:
        print(f"{dataset}:", flush=True)
        if a.finetune_only:
            if "finetune" not in SCHEDULE[dataset]:
                continue
            manifest["datasets"][dataset] = finetune_only(dataset, manifest["datasets"][dataset],
                                                          a.stage1, a.data_dir, a.score_only)
        else:
            manifest["datasets"][dataset] = make(dataset, a.seed, a.data_dir, a.score_only)
        MANIFEST.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    total = sum(f.stat().st_size for f in PRETRAINED.glob("*.pt"))
    print(f"wrote {MANIFEST}; all shipped weights (with the classifiers): {total / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
