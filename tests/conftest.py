"""Shared fixtures. Tests use at most 2 threads (the course's reference machine has 2 cores)."""

import os

import pytest
import torch

from infogan_lib import LatentSpec, ModelConfig, TrainConfig

torch.set_num_threads(min(2, torch.get_num_threads()))

TINY_MODEL = ModelConfig(g_channels=8, d_channels=8, fc=64, q_hidden=16)
TINY_SPEC = LatentSpec(noise_dim=8)


@pytest.fixture
def tiny_config(tmp_path):
    """A few-second training config on the synthetic data set."""
    def make(**overrides):
        base = dict(dataset="synthetic", out_dir=str(tmp_path / "run"), spec=TINY_SPEC,
                    model=TINY_MODEL, batch_size=32, max_minutes=None, max_steps=20, fast=False,
                    threads=1, progress=False, figures=False, seed=0)
        base.update(overrides)
        return TrainConfig(**base)
    return make


def mnist_available() -> bool:
    from infogan_lib.data import resolve_data_dir
    raw = resolve_data_dir() / "MNIST" / "raw"
    return (raw / "t10k-images-idx3-ubyte.gz").exists() or (raw / "t10k-images-idx3-ubyte").exists()


requires_mnist = pytest.mark.skipif(
    not mnist_available() and not os.environ.get("CI"),
    reason="MNIST is not in the data folder: set INFOGAN_DATA=/path/to/data (see README)")
