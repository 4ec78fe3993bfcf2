"""The shipped InfoGAN weights: what they are, how they were made, and loading them safely.

``infogan_lib/pretrained/`` holds, per data set, small float16 weights files made by the kit's own
``train`` command (see `tools/make_pretrained.py`), at three points of one run:

- ``"early"`` and ``"middle"``: the generator only (for the over-time figures, as the original
  course showed epochs 8/16/24);
- ``"final"``: the generator and the discriminator with its Q head (Q as a classifier).

``infogan.json`` beside them records, for each data set, the exact command, the seed, each file's
SHA-256 and step, the figures measured on the final weights (Q's Hungarian accuracy on the test
set, L_I), and recorded loss histories of contrasting runs (notebook 03 reads them to teach how to
tune the learning rate and momentum). Every load checks the SHA-256, so a damaged or replaced file
stops with a clear error instead of drawing wrong figures.

    spec, model_config, G, D = load_pretrained("mnist")            # final, with D and Q
    _, _, G_early, _ = load_pretrained("mnist", point="early")     # generator only

Notebook 01's comparison models live there too (`tools/make_comparisons.py`): a plain GAN (InfoGAN
with λ = 0) and a conditional GAN (AC-GAN, `infogan_lib.acgan`), generators only, made with a step
budget so that they are the same on any machine:

    G_plain = load_comparison("plain-gan")
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from .checkpoint import CheckpointError, load_models

PRETRAINED = Path(__file__).parent / "pretrained"
MANIFEST = PRETRAINED / "infogan.json"
POINTS = ("early", "middle", "final")


@lru_cache(maxsize=1)
def _manifest() -> dict:
    if not MANIFEST.is_file():
        raise CheckpointError(
            f"the shipped weights' manifest {MANIFEST} is missing: restore it with "
            "`git checkout -- infogan_lib/pretrained` (or remake the weights with "
            "`python tools/make_pretrained.py`).")
    return json.loads(MANIFEST.read_text())


def datasets() -> list[str]:
    """Data sets with shipped weights, e.g. ['mnist', 'fashion-mnist']."""
    return sorted(_manifest()["datasets"])


def info(dataset: str = "mnist") -> dict:
    """The manifest entry of one data set: command, seed, files, measured figures, histories."""
    entries = _manifest()["datasets"]
    if dataset not in entries:
        raise CheckpointError(f"no shipped weights for {dataset!r}; there are: "
                              f"{', '.join(sorted(entries))}.")
    return entries[dataset]


def path(dataset: str = "mnist", point: str = "final") -> Path:
    if point not in POINTS:
        raise ValueError(f"point must be one of {POINTS}, got {point!r}")
    return PRETRAINED / info(dataset)["files"][point]["file"]


def load_pretrained(dataset: str = "mnist", point: str = "final", device="cpu"):
    """(spec, model_config, G, D or None), in eval mode, after checking the file's SHA-256.

    `point` is "early", "middle" or "final" (only "final" carries D and its Q head).
    """
    file = path(dataset, point)   # checks `point`
    return load_models(file, device=device,
                       expected_sha256=info(dataset)["files"][point]["sha256"])


def step(dataset: str = "mnist", point: str = "final") -> int:
    """The training step at which the weights of `point` were saved."""
    return int(info(dataset)["files"][point]["step"])


def histories(dataset: str = "mnist") -> dict:
    """Recorded loss histories: {run name: {"description", "recipe", "step", "d_loss", ...}}.

    Each run's lists are one value per recorded step (a mean over a window of training steps), so
    they plot directly with `infogan_lib.viz.plot_losses`.
    """
    return info(dataset).get("histories", {})


COMPARISONS = ("plain-gan", "conditional-gan")


def comparison(name: str, dataset: str = "mnist") -> dict:
    """The manifest entry of a comparison model: file, SHA-256, steps, command, measured figures."""
    entries = _manifest().get("comparisons", {}).get(dataset, {})
    if name not in entries:
        raise CheckpointError(f"no shipped comparison model {name!r} for {dataset}; there are: "
                              f"{', '.join(sorted(entries)) or 'none'} (make them with "
                              "`python tools/make_comparisons.py`).")
    return entries[name]


def load_comparison(name: str, dataset: str = "mnist", device="cpu"):
    """The generator of a shipped comparison model, in eval mode, after checking its SHA-256."""
    entry = comparison(name, dataset)
    _, _, G, _ = load_models(PRETRAINED / entry["file"], device=device, expected_sha256=entry["sha256"])
    return G
