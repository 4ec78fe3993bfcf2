"""The shipped weights: small, checksummed, reproducible from their recorded command, and good."""

from __future__ import annotations

import math
import shlex

import pytest
import torch

from conftest import requires_mnist
from infogan_lib import CheckpointError, weights
from infogan_lib.config import Recipe, Run, given
from infogan_lib.__main__ import _build_parser, _train_config
from infogan_lib.checkpoint import load_models, sha256


def test_every_data_set_ships_three_points_of_training():
    assert weights.datasets() == ["fashion-mnist", "mnist"]
    for dataset in weights.datasets():
        steps = [weights.step(dataset, p) for p in weights.POINTS]
        assert steps == sorted(steps) and len(set(steps)) == 3, "early < middle < final"
        for point in weights.POINTS:
            spec, _, G, D = weights.load_pretrained(dataset, point)
            assert spec.categorical == (10,) and spec.n_continuous == 2
            assert not G.training
            assert (D is not None) == (point == "final"), "only the final point carries D and Q"


def test_all_shipped_weights_fit_the_30_mb_budget_and_are_half_precision():
    total = sum(p.stat().st_size for p in weights.PRETRAINED.glob("*.pt"))
    assert total <= 30e6
    for dataset in weights.datasets():
        obj = torch.load(weights.path(dataset), weights_only=True)
        assert obj["half"] and obj["generator"]["fc.0.weight"].dtype == torch.float16


def test_the_manifest_checksums_match_the_files():
    for dataset in weights.datasets():
        for point in weights.POINTS:
            entry = weights.info(dataset)["files"][point]
            assert sha256(weights.path(dataset, point)) == entry["sha256"]


def test_a_damaged_weights_file_is_refused_with_how_to_restore_it(tmp_path):
    src = weights.path("mnist")
    damaged = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    expected = weights.info("mnist")["files"]["final"]["sha256"]
    with pytest.raises(CheckpointError, match="SHA-256.*git checkout"):
        load_models(damaged, expected_sha256=expected)


def test_unknown_data_set_or_point_is_a_clear_error():
    with pytest.raises(CheckpointError, match="no shipped weights for 'cifar'"):
        weights.load_pretrained("cifar")
    with pytest.raises(ValueError, match="point must be one of"):
        weights.path("mnist", "latest")
    with pytest.raises(ValueError, match="point must be one of"):
        weights.load_pretrained("mnist", "latest")


def test_the_recorded_command_is_a_valid_step_budgeted_training_command():
    for dataset in weights.datasets():
        entry = weights.info(dataset)
        argv = shlex.split(entry["command"])
        assert argv[:4] == ["python", "-m", "infogan_lib", "train"]
        recipe, run, _ = _train_config(_build_parser().parse_args(argv[3:]))
        assert run.dataset == dataset and recipe.seed == entry["seed"]
        assert run.steps == entry["steps"] and run.time_budget() is None, (
            "a step budget, not a time budget, makes the run the same on every machine")
        assert run.threads == entry["threads"], "the thread count changes float rounding: it is part of the command"
        tune = entry.get("finetune")
        final_steps = entry["steps"] + (tune["picked_step"] if tune else 0)
        assert weights.step(dataset, "final") == final_steps
        assert run.snapshot_steps and all(
            weights.step(dataset, p) % run.snapshot_steps == 0 for p in ("early", "middle"))
        if tune:                                   # a second stage, started from the first's weights
            args = _build_parser().parse_args(shlex.split(tune["command"])[3:])
            tuned, budget = given(args, Recipe), given(args, Run)
            assert args.init and budget["steps"] == tune["steps"] and budget["minutes"] == 0
            assert tuned["seed"] == entry["seed"] and tuned["lambda_ortho"] > 0 and budget["threads"] == 1
            assert tune["picked_step"] % budget["snapshot_steps"] == 0 and tune["picked_step"] <= budget["steps"]


def test_recorded_histories_have_one_step_per_value():
    for name, h in weights.histories("mnist").items():
        assert {"description", "command", "step", "d_loss", "g_loss", "q_loss", "info_cat"} <= set(h)
        assert len(h["step"]) == len(h["d_loss"]) == len(h["info_cat"]) > 100, name


@requires_mnist
def test_shipped_mnist_weights_meet_the_course_bar():
    from infogan_lib.data import load_images
    from infogan_lib.metrics import estimate_info, q_accuracy

    _, _, G, D = weights.load_pretrained("mnist")
    test = load_images("mnist", "test")
    accuracy = q_accuracy(D, test.images, test.labels).accuracy
    info = estimate_info(G, D, n=10_000)
    assert accuracy >= 0.95
    assert math.log(10) - info["info_cat"] < 0.1
    recorded = weights.info("mnist")["figures_float16"]
    assert accuracy == pytest.approx(recorded["accuracy"], abs=2e-4)   # the recorded figures are real
    assert info["info_cat"] == pytest.approx(recorded["info_cat"], abs=2e-3)
