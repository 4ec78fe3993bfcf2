"""How good is a trained InfoGAN? Q as a classifier, the bound L_I, and sample quality.

Q was never shown a label, so its categorical code is a clustering of the images: category 3 of Q
may mean the digit 7. Hungarian matching (`scipy.optimize.linear_sum_assignment`) finds the
one-to-one map from Q's categories to labels that agrees with the most images; the accuracy under
that map is the paper's "5 % error" figure.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .data import to_model_range
from .latent import LatentSpec
from .losses import info_loss


def confusion_matrix(pred, labels, n_pred: int | None = None, n_labels: int | None = None
                     ) -> np.ndarray:
    """counts[i, j] = number of images with label i that were put in category j."""
    pred = np.asarray(pred, dtype=np.int64)
    labels = np.asarray(labels, dtype=np.int64)
    n_pred = n_pred or int(pred.max()) + 1
    n_labels = n_labels or int(labels.max()) + 1
    counts = np.zeros((n_labels, n_pred), dtype=np.int64)
    np.add.at(counts, (labels, pred), 1)
    return counts


@dataclass
class ClusterScore:
    accuracy: float          # Hungarian-matched accuracy
    purity: float            # each category votes for its majority label (many-to-one)
    mapping: dict            # Q's category → label, from the matching
    confusion: np.ndarray    # rows: true label, columns: labels the matched categories stand for

    def merged(self, threshold: float = 0.5) -> list[tuple[int, int]]:
        """Pairs of labels (a, b) where more than `threshold` of a's images go to b's category."""
        rows = self.confusion / np.maximum(self.confusion.sum(1, keepdims=True), 1)
        return [(a, b) for a in range(rows.shape[0]) for b in range(rows.shape[1])
                if a != b and rows[a, b] > threshold]


def hungarian_accuracy(pred, labels, n_categories: int | None = None) -> ClusterScore:
    """Accuracy of an unsupervised clustering after the best one-to-one category → label map."""
    labels = np.asarray(labels, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    k = max(n_categories or 0, int(pred.max()) + 1, int(labels.max()) + 1)
    counts = confusion_matrix(pred, labels, k, k)           # (labels, categories)
    rows, cols = linear_sum_assignment(-counts.T)           # category rows → label cols
    mapping = {int(c): int(label) for c, label in zip(rows, cols)}
    accuracy = counts[cols, rows].sum() / len(labels)
    purity = counts.max(axis=0).sum() / len(labels)
    mapped = np.array([mapping[int(p)] for p in pred])
    return ClusterScore(float(accuracy), float(purity), mapping, confusion_matrix(mapped, labels, k, k))


@torch.no_grad()
def q_predict(D: torch.nn.Module, images_uint8: torch.Tensor, batch: int = 1000, code: int = 0):
    """Q's categorical prediction and probabilities for real images (D in eval mode).

    Returns (categories (N,), probabilities (N, K), continuous means (N, k)).
    """
    was_training = D.training
    D.eval()
    device = next(D.parameters()).device
    cats, probs, means = [], [], []
    try:
        for i in range(0, len(images_uint8), batch):
            x = to_model_range(images_uint8[i:i + batch].to(device))
            _, q = D(x)
            p = torch.softmax(q.logits[code], dim=1)
            probs.append(p.cpu())
            cats.append(p.argmax(1).cpu())
            means.append(q.mean.cpu())
    finally:
        D.train(was_training)
    return torch.cat(cats), torch.cat(probs), torch.cat(means)


def q_accuracy(D: torch.nn.Module, images_uint8: torch.Tensor, labels) -> ClusterScore:
    """Hungarian accuracy of Q's first categorical code on labelled real images."""
    pred, _, _ = q_predict(D, images_uint8)
    return hungarian_accuracy(pred.numpy(), np.asarray(labels), D.spec.categorical[0])


def one_label_per_class(probs: torch.Tensor, labels, draws: int = 10, seed: int = 0,
                        n_classes: int = 10) -> list[float]:
    """Q as a classifier named from ONE labelled image per class (the tutorial's "first step of a
    supervised problem"): for each draw, pick one random image of each class, name Q's categories by
    the one-to-one assignment that makes those 10 images most probable under Q (Hungarian on
    −log Q(category | image)), and score every image with that naming. Returns the accuracy of each
    draw; `probs` (N, K) are Q's category probabilities on the images, `labels` (N,) their labels.
    """
    labels = np.asarray(labels, dtype=np.int64)
    logp = torch.log(probs.double().clamp_min(1e-12)).numpy()             # (N, K)
    pred = probs.argmax(1).numpy()
    rng = np.random.default_rng(seed)
    accuracies = []
    for _ in range(draws):
        picks = [int(rng.choice(np.flatnonzero(labels == c))) for c in range(n_classes)]
        label_rows, category_cols = linear_sum_assignment(-logp[picks])   # label i ↔ category j
        name = {int(c): int(lab) for lab, c in zip(label_rows, category_cols)}
        accuracies.append(float(np.mean([name.get(int(p), -1) == lab for p, lab in zip(pred, labels)])))
    return accuracies


@torch.no_grad()
def estimate_info(G, D, n: int = 10_000, batch: int = 1000, seed: int = 0) -> dict:
    """Monte-Carlo estimate of L_I on `n` fresh samples (both networks in eval mode).

    Returns the categorical bound (nats, to compare with H(c)) and one bound per continuous code
    (to compare with that code's differential entropy).
    """
    spec: LatentSpec = G.spec
    g = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    modes = (G.training, D.training)
    G.eval(); D.eval()
    cat_sum, cont_sum, seen = 0.0, torch.zeros(spec.n_continuous), 0
    try:
        for i in range(0, n, batch):
            b = min(batch, n - i)
            latent = spec.sample(b, g, device)
            _, q = D(G(latent.input()))
            terms = info_loss(q, latent, spec)
            cat_sum += terms.categorical_bound.item() * b
            cont_sum += terms.continuous_bounds.cpu() * b
            seen += b
    finally:
        G.train(modes[0]); D.train(modes[1])
    return {
        "info_cat": cat_sum / seen,
        "entropy_cat": spec.entropy(),
        "info_cont": (cont_sum / seen).tolist(),
        "entropy_cont": spec.continuous_entropies(),
        "samples": seen,
    }


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula):

        ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})
    """
    from scipy import linalg

    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    eps = np.eye(feats_a.shape[1]) * 1e-6   # features of dead ReLUs make Σ singular
    cov_a = np.cov(feats_a, rowvar=False) + eps
    cov_b = np.cov(feats_b, rowvar=False) + eps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * covmean))


def class_coverage(pred_classes, n_classes: int = 10, share: float = 0.5) -> dict:
    """How evenly generated samples cover the classes, as judged by a trained classifier.

    coverage: the fraction of classes that receive at least `share` of a fair 1/K share.
    entropy_ratio: exp(H(class histogram)) / K, 1.0 when all classes are equally frequent.
    """
    counts = np.bincount(np.asarray(pred_classes), minlength=n_classes).astype(float)
    freq = counts / counts.sum()
    nz = freq[freq > 0]
    return {
        "coverage": float((freq >= share / n_classes).mean()),
        "entropy_ratio": float(math.exp(-(nz * np.log(nz)).sum()) / n_classes),
        "histogram": freq.tolist(),
    }


@torch.no_grad()
def sample_quality(G, real_images_uint8: torch.Tensor, dataset: str = "mnist",
                   n: int = 10_000, seed: int = 0, classifier=None) -> dict:
    """Class coverage and Fréchet distance of `n` generated images, judged by the kit's classifier.

    The Fréchet distance is computed on the classifier's 128 features, between generated images and
    `real_images_uint8` (use the test set). Lower is better; real vs real is near 0.
    """
    from .classifier import features_and_classes, load_classifier

    model = classifier or load_classifier(dataset)
    latent = G.spec.sample(n, torch.Generator().manual_seed(seed))
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    try:
        x = latent.input().to(device)
        fake = torch.cat([G(x[i:i + 1000]).cpu() for i in range(0, n, 1000)])
    finally:
        G.train(was_training)
    fake_feats, fake_classes = features_and_classes(model, fake)
    real_feats, _ = features_and_classes(model, to_model_range(real_images_uint8))
    out = class_coverage(fake_classes, 10)
    out["frechet"] = frechet_distance(fake_feats, real_feats)
    return out


@torch.no_grad()
def class_readings(G, per_category: int, seed: int = 0, classifier=None,
                   dataset: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """(category, class read) of `per_category` images G draws for each value of its first
    categorical code (noise and continuous codes from their priors), read by the kit's classifier."""
    from .classifier import load_classifier
    from .viz import generate

    model = classifier or load_classifier(dataset)
    k = G.spec.categorical[0]
    latent = G.spec.sample(k * per_category, torch.Generator().manual_seed(seed))
    latent.categorical[:, 0] = torch.arange(k).repeat_interleave(per_category)
    images = generate(G, latent) * 2 - 1                       # the classifier reads [-1, 1]
    readings = torch.cat([model(images[i:i + 2000]).argmax(1) for i in range(0, len(images), 2000)])
    return latent.categorical[:, 0].numpy(), readings.numpy()


def code_class_accuracy(G, n_per_value: int = 1000, seed: int = 0, classifier=None,
                        dataset: str = "mnist") -> float:
    """Does the categorical code decide the class? Generate `n_per_value` images for each value of
    c, let the kit's classifier name each image's class, and score "c → class" by Hungarian
    accuracy: near 1 when each value of c draws one class, near chance (0.1) when c is ignored."""
    categories, readings = class_readings(G, n_per_value, seed, classifier, dataset)
    return hungarian_accuracy(categories, readings, G.spec.categorical[0]).accuracy
