"""A small supervised CNN that judges generated images (never used to train InfoGAN).

It gives two sample-quality figures in `infogan_lib.metrics`: class coverage (does G produce every
digit?) and a Fréchet distance between the classifier's features of generated and of real test
images (FID's formula on a feature space that suits 28×28 digits; Inception features do not).
The kit ships trained weights for MNIST and Fashion-MNIST in ``infogan_lib/pretrained/``
(`python -m infogan_lib train-classifier` remakes them).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import load_images, to_model_range

log = logging.getLogger(__name__)

PRETRAINED = Path(__file__).parent / "pretrained"


class DigitClassifier(nn.Module):
    """conv 32 – pool – conv 64 – pool – FC 128 (the features) – FC 10. Inputs in [-1, 1]."""

    def __init__(self, n_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),   # 14×14
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2),  # 7×7
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)                                   # (B, feature_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))                        # (B, n_classes)


def weights_path(dataset: str) -> Path:
    return PRETRAINED / f"classifier_{dataset}.pt"


def train_classifier(dataset: str = "mnist", data_dir=None, epochs: int = 3, seed: int = 0,
                     out: str | os.PathLike | None = None) -> tuple[DigitClassifier, float]:
    """Train on the full training set; returns the model and its test accuracy."""
    from tqdm.auto import tqdm

    from .checkpoint import atomic_save

    torch.manual_seed(seed)
    train_set = load_images(dataset, "train-full", data_dir)
    test_set = load_images(dataset, "test", data_dir)
    model = DigitClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(train_set), generator=g)
        for i in tqdm(range(0, len(order) - 127, 128), desc=f"classifier epoch {epoch + 1}",
                      leave=False):
            idx = order[i:i + 128]
            loss = F.cross_entropy(model(to_model_range(train_set.images[idx])),
                                   train_set.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    accuracy = float((predict(model, test_set.images) == test_set.labels).float().mean())
    out = Path(out) if out else weights_path(train_set.name)
    state = {k: v.half() for k, v in model.state_dict().items()}
    atomic_save({"schema": 1, "kind": "classifier", "dataset": train_set.name,
                 "state": state, "test_accuracy": accuracy}, out)
    out.with_suffix(".json").write_text(json.dumps({
        "dataset": train_set.name, "test_accuracy": accuracy, "epochs": epochs, "seed": seed,
        "command": f"python -m infogan_lib train-classifier --dataset {train_set.name} "
                   f"--epochs {epochs} --seed {seed}"}, indent=2) + "\n")
    log.info("classifier for %s: test accuracy %.4f → %s", train_set.name, accuracy, out)
    return model, accuracy


def load_classifier(dataset: str = "mnist", path=None) -> DigitClassifier:
    path = Path(path) if path else weights_path(dataset.replace("_", "-"))
    if not path.exists():
        raise FileNotFoundError(
            f"no classifier weights at {path}: run `python -m infogan_lib train-classifier "
            f"--dataset {dataset}` (about a minute on a CPU).")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    model = DigitClassifier()
    model.load_state_dict({k: v.float() for k, v in obj["state"].items()})
    return model.eval()


@torch.no_grad()
def predict(model: DigitClassifier, images_uint8: torch.Tensor, batch: int = 2000) -> torch.Tensor:
    return torch.cat([model(to_model_range(images_uint8[i:i + batch])).argmax(1)
                      for i in range(0, len(images_uint8), batch)])


@torch.no_grad()
def features_and_classes(model: DigitClassifier, images: torch.Tensor, batch: int = 2000):
    """(features (N, 128) as numpy, predicted classes (N,)) for images in [-1, 1]."""
    feats, classes = [], []
    for i in range(0, len(images), batch):
        f = model.features(images[i:i + batch])
        feats.append(f.numpy().astype(np.float64))
        classes.append(model.head(f).argmax(1))
    return np.concatenate(feats), torch.cat(classes).numpy()
