"""What each category of G's categorical code draws, read by the kit's classifier.

InfoGAN's categories come without names: category 0 of the shipped MNIST model happens to draw an 8.
To name them, G draws `per_category` images of each category (noise z and the continuous codes from
their priors), the kit's supervised classifier (`classifier.py`, never used to train InfoGAN) reads
every image, and Hungarian matching (`metrics.hungarian_accuracy`) picks the one-to-one map
category → class that agrees with the most readings. `share` is the fraction of a category's images
that the classifier reads as the class it was named after: near 1 for a trained model. A category
read as its class less than half the time draws no one class (early in training): it is described
by the class it draws most often instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from .data import DIGIT_CLASSES, FASHION_CLASSES
from .metrics import class_readings, confusion_matrix, hungarian_accuracy

CLASS_NAMES = {"mnist": DIGIT_CLASSES, "fashion-mnist": FASHION_CLASSES}
CLEAR_SHARE = 0.5       # below this, a category draws no one class clearly


@dataclass(frozen=True)
class CategoryNames:
    classes: tuple[str, ...]     # the class that category k draws, k = 0 … K−1 (one-to-one)
    shares: tuple[float, ...]    # fraction of category k's images the classifier reads as classes[k]
    most: tuple[str, ...]        # the class the classifier reads most often in category k's images
    most_shares: tuple[float, ...]

    def name(self, k: int) -> str:
        """'8', or '1?' when no class has half of the category's images."""
        return self.classes[k] if self.shares[k] >= CLEAR_SHARE else f"{self.most[k]}?"

    def short(self, k: int) -> str:
        """'draws 8', or 'mixed (most often 1, 45 %)' when no class has half of its images."""
        if self.shares[k] >= CLEAR_SHARE:
            return f"draws {self.classes[k]}"
        return f"mixed (most often {self.most[k]}, {self.most_shares[k]:.0%})"

    def label(self, k: int) -> str:
        """'category 0 → draws 8'."""
        return f"category {k} → {self.short(k)}"


_cache: dict[tuple, CategoryNames] = {}


def _weights_digest(G: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, tensor in G.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def category_names(G: torch.nn.Module, dataset: str = "mnist", per_category: int = 50,
                   seed: int = 0) -> CategoryNames:
    """The class each category of G's first categorical code draws (measured once per weights)."""
    dataset = dataset.lower().replace("_", "-")
    if dataset not in CLASS_NAMES:
        raise ValueError(f"no classifier to name categories for {dataset!r}; "
                         f"choose one of {', '.join(CLASS_NAMES)}")
    key = (_weights_digest(G), dataset, per_category, seed)
    if key not in _cache:
        k_ways = G.spec.categorical[0]
        categories, readings = class_readings(G, per_category, seed, dataset=dataset)
        mapping = hungarian_accuracy(categories, readings, k_ways).mapping
        classes = CLASS_NAMES[dataset]
        counts = confusion_matrix(readings, categories, max(len(classes), k_ways), k_ways)  # (K, classes)
        names = [*classes, *["?"] * (counts.shape[1] - len(classes))]   # a K > 10 code's spare categories
        _cache[key] = CategoryNames(
            classes=tuple(names[mapping[k]] for k in range(k_ways)),
            shares=tuple(float(counts[k, mapping[k]]) / per_category for k in range(k_ways)),
            most=tuple(names[j] for j in counts.argmax(1)),
            most_shares=tuple(float(c) / per_category for c in counts.max(1)))
    return _cache[key]
