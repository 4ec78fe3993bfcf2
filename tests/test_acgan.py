"""The conditional GAN of notebook 01 (AC-GAN from InfoGAN's networks) and its shipped generator."""

from __future__ import annotations

import pytest
import torch

from infogan_lib import weights
from infogan_lib.acgan import train_acgan
from infogan_lib.checkpoint import CheckpointError
from infogan_lib.data import synthetic_shapes, to_model_range
from infogan_lib.metrics import q_predict


def test_the_supervised_term_makes_q_name_real_images_by_their_labels():
    shapes = synthetic_shapes(1024, seed=0)
    G, D = train_acgan(shapes.images, shapes.labels, steps=60, seed=0)
    _, probs, _ = q_predict(D, shapes.images)
    accuracy = (probs.argmax(1) == shapes.labels).float().mean().item()
    assert accuracy > 0.8, f"Q's category k should mean label k after supervised training, got {accuracy:.2f}"
    with torch.no_grad():
        assert G(G.spec.sample(4).input()).shape == (4, 1, 28, 28)


def test_train_acgan_is_the_same_for_the_same_seed():
    shapes = synthetic_shapes(256, seed=1)
    a, _ = train_acgan(shapes.images, shapes.labels, steps=5, seed=3)
    b, _ = train_acgan(shapes.images, shapes.labels, steps=5, seed=3)
    c, _ = train_acgan(shapes.images, shapes.labels, steps=5, seed=4)
    same = [torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters())]
    assert all(same)
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_the_shipped_comparison_models_load_checked_and_are_recorded():
    for name in weights.COMPARISONS:
        entry = weights.comparison(name)
        assert entry["steps"] > 0 and len(entry["sha256"]) == 64 and entry["command"]
        G = weights.load_comparison(name)
        assert not G.training
    figures = {n: weights.comparison(n)["figures"]["c_to_digit"] for n in weights.COMPARISONS}
    assert figures["plain-gan"] < 0.3 < 0.9 <= figures["conditional-gan"]


def test_an_unknown_comparison_model_is_named_with_the_ones_there_are():
    with pytest.raises(CheckpointError, match="plain-gan"):
        weights.load_comparison("wgan")
