"""Metrics: Hungarian accuracy, purity, the Fréchet distance, class coverage."""

import numpy as np
import pytest
import torch

from infogan_lib.metrics import class_coverage, estimate_info, frechet_distance, hungarian_accuracy


def test_hungarian_accuracy_of_a_permuted_labelling_is_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 5000)
    perm = rng.permutation(10)
    score = hungarian_accuracy(perm[labels], labels)
    assert score.accuracy == 1.0 and score.purity == 1.0
    assert score.mapping == {int(perm[k]): k for k in range(10)}
    assert np.array_equal(np.diag(score.confusion), np.bincount(labels, minlength=10))


def test_hungarian_accuracy_of_random_labels_is_near_chance():
    rng = np.random.default_rng(1)
    score = hungarian_accuracy(rng.integers(0, 10, 20_000), rng.integers(0, 10, 20_000))
    assert 0.09 < score.accuracy < 0.115


def test_merged_categories_cost_accuracy_and_are_reported():
    labels = np.repeat(np.arange(10), 100)
    pred = labels.copy()
    pred[labels == 9] = 4                    # 4 and 9 share a category, category 9 is unused
    score = hungarian_accuracy(pred, labels)
    assert score.accuracy == pytest.approx(0.9)
    assert score.purity == pytest.approx(0.9)
    assert (9, 4) in score.merged() or (4, 9) in score.merged()


def test_frechet_distance_is_zero_for_the_same_set_and_the_mean_shift_otherwise():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(8 * 4.0, rel=1e-6)   # ‖Δμ‖² = 8·2²


def test_class_coverage_counts_classes_that_get_a_fair_share():
    assert class_coverage(np.arange(1000) % 10)["coverage"] == 1.0
    collapsed = class_coverage(np.array([3] * 900 + [1] * 100))
    assert collapsed["coverage"] == pytest.approx(0.2) and collapsed["entropy_ratio"] < 0.2


def test_estimate_info_of_a_fresh_model_is_far_below_h_c():
    from infogan_lib import Discriminator, Generator, LatentSpec, ModelConfig

    torch.manual_seed(0)
    spec, cfg = LatentSpec(noise_dim=8), ModelConfig(8, 8, 32, 16)
    info = estimate_info(Generator(spec, cfg), Discriminator(spec, cfg), n=2000, batch=500)
    assert info["samples"] == 2000 and info["entropy_cat"] == pytest.approx(np.log(10))
    assert info["info_cat"] < 0.5 * info["entropy_cat"]
    assert len(info["info_cont"]) == 2


def test_one_labelled_image_per_class_names_a_permuted_clustering_exactly():
    import torch

    from infogan_lib.metrics import one_label_per_class

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(10).repeat(50)
    logits = torch.randn(500, 10, generator=g)
    logits[torch.arange(500), (labels + 3) % 10] += 6.0        # Q's category = label + 3
    accs = one_label_per_class(torch.softmax(logits, 1), labels.numpy(), draws=5)
    assert len(accs) == 5 and min(accs) > 0.95
    noise = torch.softmax(torch.randn(500, 10, generator=g), 1)
    assert max(one_label_per_class(noise, labels.numpy(), draws=5)) < 0.25
