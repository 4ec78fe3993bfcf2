"""The traversal and classifier viewers, driven from Python as a browser would drive them."""

import io

import pytest
import torch
from PIL import Image

from conftest import TINY_MODEL
from infogan_lib import Generator, LatentSpec
from infogan_lib.widgets import TraversalViewer, png_bytes


def image_of(png: bytes) -> torch.Tensor:
    import numpy as np
    return torch.from_numpy(np.array(Image.open(io.BytesIO(png))))


def test_one_slider_per_continuous_code_from_the_spec():
    assert len(TraversalViewer(Generator(LatentSpec(), TINY_MODEL)).sliders) == 2
    assert len(TraversalViewer(Generator(LatentSpec(n_continuous=3), TINY_MODEL)).sliders) == 3


def test_moving_a_slider_shows_exactly_what_the_generator_draws_for_that_value():
    torch.manual_seed(0)
    G = Generator(LatentSpec(), TINY_MODEL).eval()
    v = TraversalViewer(G, scale=1)
    before = v.images[0].value
    v.sliders[1].value = 1.25
    after = v.images[0].value
    assert after != before and after == v.png(0)
    latent = LatentSpec().sample(1)
    latent.z[:] = torch.randn(1, 62, generator=torch.Generator().manual_seed(0))
    latent.categorical[:] = 0
    latent.continuous[:] = torch.tensor([[0.0, 1.25]])
    with torch.no_grad():
        expected = ((G(latent.input())[0, 0] + 1) / 2 * 255).round().to(torch.uint8)
    assert torch.equal(image_of(after), expected)


def test_grid_mode_draws_categories_as_rows_and_the_chosen_code_across():
    v = TraversalViewer(Generator(LatentSpec(), TINY_MODEL), grid_steps=5)
    v.mode.value = "grid"
    v.grid_code.value = 1
    latent = v.latent(0)
    assert len(latent) == 10 * 5
    assert latent.continuous[:5, 1].tolist() == pytest.approx([-2, -1, 0, 1, 2])
    assert latent.categorical[:, 0].tolist() == [k for k in range(10) for _ in range(5)]
    assert image_of(v.images[0].value).shape == (2 * (10 * 30 + 2), 2 * (5 * 30 + 2))   # grey PNG


def test_two_generators_with_different_numbers_of_codes_share_the_latent():
    G2 = Generator(LatentSpec(), TINY_MODEL)
    G3 = Generator(LatentSpec(n_continuous=3), TINY_MODEL)
    v = TraversalViewer(G2, G3)
    assert len(v.sliders) == 3
    v.sliders[2].value = 1.0
    assert v.latent(0).continuous.tolist() == [[0.0, 0.0]]
    assert v.latent(1).continuous.tolist() == [[0.0, 0.0, 1.0]]
    assert torch.equal(v.latent(0).z, v.latent(1).z)


def test_new_noise_changes_the_seed_and_the_picture():
    v = TraversalViewer(Generator(LatentSpec(), TINY_MODEL))
    before = v.images[0].value
    v.new_noise.click()
    assert v.seed.value == 1 and v.images[0].value != before


def test_png_bytes_round_trip():
    x = torch.rand(1, 28, 28)
    assert torch.equal(image_of(png_bytes(x)), (x[0] * 255).round().to(torch.uint8))


def test_png_bytes_keeps_every_pixel_enlarges_by_repetition_and_writes_grey_as_grey():
    import numpy as np

    grey = torch.rand(5, 7)
    rgb_equal = grey.expand(3, 5, 7)
    out = np.array(Image.open(io.BytesIO(png_bytes(rgb_equal, 3))))
    assert out.shape == (15, 21)
    expected = (grey * 255).round().to(torch.uint8).numpy()
    assert (out[::3, ::3] == expected).all() and (out[2::3, 2::3] == expected).all()
    colour = torch.rand(3, 5, 7)
    out = np.array(Image.open(io.BytesIO(png_bytes(colour, 2))))
    assert out.shape == (10, 14, 3)
    assert (out[::2, ::2] == (colour * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()).all()
