"""Figures: the three figure kinds have the course's layout; plots show what they claim."""

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from infogan_lib import Generator, LatentSpec, ModelConfig  # noqa: E402
from infogan_lib.viz import (figure_grid, figure_latents, generate, plot_confusion,  # noqa: E402
                             plot_histograms, plot_losses, save_figures, smooth)


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return Generator(LatentSpec(n_continuous=3), ModelConfig(8, 8, 32, 16))


def test_each_figure_kind_is_a_ten_by_ten_grid(generator):
    for kind in ("a", "b", "c"):
        grid = figure_grid(generator, kind)
        assert grid.shape == (3, 10 * 30 + 2, 10 * 30 + 2)
        assert 0.0 <= grid.min() and grid.max() <= 1.0


def test_sweep_figure_changes_along_rows_only_through_the_swept_code(generator):
    latent, nrow = figure_latents(generator.spec, "c", continuous_code=2)
    images = generate(generator, latent).view(10, nrow, -1)
    assert nrow == 10
    # same noise and category along a row: neighbours differ less than rows do
    along = (images[:, 1:] - images[:, :-1]).abs().mean()
    across = (images[1:, 0] - images[:-1, 0]).abs().mean()
    assert along < across


def test_generate_leaves_the_generator_in_training_mode(generator):
    generator.train()
    generate(generator, generator.spec.sample(4))
    assert generator.training


def test_save_figures_writes_one_sweep_per_continuous_code(generator, tmp_path):
    names = sorted(p.name for p in save_figures(generator, tmp_path, "epoch001"))
    assert names == ["epoch001_a.png", "epoch001_b.png", "epoch001_c1.png", "epoch001_c2.png",
                     "epoch001_c3.png"]


def test_loss_plot_draws_l_i_against_h_c():
    history = {k: list(np.linspace(1, 0, 200)) for k in ("d_loss", "g_loss", "q_loss")}
    history["info_cat"] = list(np.linspace(0, 2.3, 200))
    axes = plot_losses(history, LatentSpec())
    assert len(axes[0].lines) == 3
    h_line = [ln for ln in axes[1].lines if ln.get_linestyle() == "--"][0]
    assert h_line.get_ydata()[0] == pytest.approx(math.log(10))


def test_smoothing_is_a_moving_average():
    assert smooth([0, 0, 3, 3], window=2).tolist() == [0, 0, 1.5, 3]


def test_histograms_and_confusion_matrix_render(generator):
    fig = plot_histograms(generator)
    assert len([ax for ax in fig.axes if ax.get_title()]) >= 4
    ax = plot_confusion(np.diag([5, 7, 9]), ["a", "b", "c"])
    assert [t.get_text() for t in ax.texts] == ["5", "7", "9"]


@pytest.mark.parametrize("count, nrow, channels", [(100, 10, 1), (7, 3, 1), (5, 8, 3), (12, 5, 3)])
def test_image_grid_and_save_png_match_torchvision(tmp_path, count, nrow, channels):
    from PIL import Image
    from torchvision.utils import make_grid, save_image

    from infogan_lib.viz import image_grid, save_png
    images = torch.rand(count, channels, 28, 28, generator=torch.Generator().manual_seed(count))
    ours = image_grid(images, nrow=nrow)
    assert torch.equal(ours, make_grid(images, nrow=nrow, padding=2, pad_value=1.0))
    save_png(ours, tmp_path / "ours.png")
    save_image(ours, tmp_path / "theirs.png")
    assert (np.asarray(Image.open(tmp_path / "ours.png")) == np.asarray(Image.open(tmp_path / "theirs.png"))).all()
