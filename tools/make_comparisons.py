"""Make notebook 01's comparison models in infogan_lib/pretrained/: a plain GAN and a conditional GAN.

Notebook 01 measures whether a 10-way code c decides the digit, for three models: a plain GAN
(InfoGAN's networks with λ = 0: nothing rewards G for using c), InfoGAN (the shipped weights) and a
conditional GAN (AC-GAN, `infogan_lib.acgan`: Q also learns the labels of real images). The notebook
trains the first and the last live for a few hundred steps, to show them training; its measured
contrast uses these shipped generators, so that a slow or busy laptop shows the same contrast.

Each is made with a step budget, a seed and one thread, so it is the same on any machine of the
same kind, and exported as a float16 generator; the manifest infogan_lib/pretrained/infogan.json
records, under "comparisons", the command, the SHA-256 and the figures measured on the exported file
(c → digit Hungarian accuracy with 1,000 images per value of c; Fréchet distance to the test set).

    python tools/make_comparisons.py            # about 5 minutes on one core
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infogan_lib import checkpoint as ckpt  # noqa: E402
from infogan_lib.acgan import train_acgan  # noqa: E402
from infogan_lib.data import load_images  # noqa: E402
from infogan_lib.metrics import code_class_accuracy, sample_quality  # noqa: E402
from infogan_lib.weights import MANIFEST, PRETRAINED  # noqa: E402

STEPS, SEED = 3000, 0
RUNS = ROOT / "runs" / "comparisons"
PLAIN = ["python", "-m", "infogan_lib", "train", "--dataset", "mnist", "--seed", str(SEED),
         "--steps", str(STEPS), "--minutes", "0", "--lambda-cat", "0", "--lambda-cont", "0",
         "--moved-codes", "none", "--threads", "1", "--no-figures", "--no-progress",
         "--out-dir", "runs/comparisons/plain-gan"]
CONDITIONAL = (f"python -c 'from infogan_lib.acgan import train_acgan; "
               f"train_acgan(mnist.images, mnist.labels, steps={STEPS}, seed={SEED})' (one thread)")


def export(name: str, make, command: str, test) -> dict:
    out = PRETRAINED / f"comparison_mnist_{name}.pt"
    G = make()
    ckpt.atomic_save(ckpt.weights_dict(G, None, half=True, extra={"step": STEPS}), out)
    _, _, G16, _ = ckpt.load_models(out)
    figures = {"c_to_digit": round(code_class_accuracy(G16, 1000), 4),
               "frechet": round(sample_quality(G16, test.images)["frechet"], 2)}
    print(f"  {name}: {figures}", flush=True)
    return {"file": out.name, "sha256": ckpt.sha256(out), "steps": STEPS, "seed": SEED,
            "command": command, "figures": figures}


def plain_gan():
    subprocess.run([sys.executable, *PLAIN[1:]], check=True, cwd=ROOT)
    _, _, G, _ = ckpt.load_models(RUNS / "plain-gan" / "checkpoint.pt")
    return G


def conditional_gan():
    mnist = load_images("mnist", "train")
    G, _ = train_acgan(mnist.images, mnist.labels, steps=STEPS, seed=SEED)
    return G


def main() -> None:
    torch.set_num_threads(1)
    test = load_images("mnist", "test")
    manifest = json.loads(MANIFEST.read_text())
    manifest.setdefault("comparisons", {})["mnist"] = {
        "plain-gan": export("plain-gan", plain_gan, shlex.join(PLAIN), test),
        "conditional-gan": export("conditional-gan", conditional_gan, CONDITIONAL, test),
    }
    MANIFEST.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {MANIFEST}")


if __name__ == "__main__":
    main()
