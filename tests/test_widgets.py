"""The traversal and classifier viewers, driven from Python as a browser would drive them."""

import io

import pytest
import torch
from PIL import Image

from conftest import TINY_MODEL, requires_mnist
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


# ---- how the viewers look: sizes the browser tests also check on a page ------------------------------

def test_single_pictures_are_shown_square_at_picture_px_and_grids_one_to_one_at_grid_scale():
    from infogan_lib.viewer_parts import GRID_SCALE, PICTURE_PX

    v = TraversalViewer(Generator(LatentSpec(), TINY_MODEL), Generator(LatentSpec(), TINY_MODEL),
                        dataset=None)
    for image in v.images:
        assert (image.layout.width, image.layout.height) == (f"{PICTURE_PX}px", f"{PICTURE_PX}px")
        assert "infogan-picture" in image._dom_classes          # the style that keeps pixels sharp
    assert image_of(v.images[0].value).shape == (PICTURE_PX, PICTURE_PX)   # drawn at the size shown
    v.mode.value = "grid"
    h, w = image_of(v.images[0].value).shape
    assert h == GRID_SCALE * (10 * 30 + 2) and w == GRID_SCALE * (9 * 30 + 2)
    for image in v.images:
        assert (image.layout.width, image.layout.height) == (f"{w}px", f"{h}px")


# ---- each category named by what it draws -------------------------------------------------------------

def _readings(G, dataset: str, per_category: int, seed: int) -> torch.Tensor:
    """The kit's classifier's reading of `per_category` fresh images of each category: (K, n)."""
    from infogan_lib.classifier import load_classifier
    from infogan_lib.viz import generate

    k_ways = G.spec.categorical[0]
    latent = G.spec.sample(k_ways * per_category, torch.Generator().manual_seed(seed))
    latent.categorical[:, 0] = torch.arange(k_ways).repeat_interleave(per_category)
    with torch.no_grad():
        return load_classifier(dataset)(generate(G, latent) * 2 - 1).argmax(1).view(k_ways, per_category)


def test_each_category_is_named_by_the_digit_the_classifier_reads_in_most_of_its_images():
    from infogan_lib import weights
    from infogan_lib.category_names import category_names

    _, _, G, _ = weights.load_pretrained("mnist")
    names = category_names(G, "mnist")
    readings = _readings(G, "mnist", per_category=100, seed=123)      # other images than the naming's
    for k in range(10):
        counts = torch.bincount(readings[k], minlength=10)
        digit = int(counts.argmax())
        assert counts[digit] >= 90, f"category {k} draws no one digit: {counts.tolist()}"
        assert names.label(k) == f"category {k} → draws {digit}"
    assert sorted(names.classes) == [str(d) for d in range(10)], "one category per digit"


@requires_mnist
def test_the_digit_named_is_the_label_q_matches_that_category_to_on_real_digits():
    from infogan_lib import load_images, weights
    from infogan_lib.category_names import category_names
    from infogan_lib.metrics import q_accuracy

    _, _, G, D = weights.load_pretrained("mnist")
    test = load_images("mnist", "test")
    q_names = q_accuracy(D, test.images, test.labels).mapping       # Q's category → label, by labels
    assert category_names(G, "mnist").classes == tuple(str(q_names[k]) for k in range(10))


def test_fashion_categories_are_named_by_the_garment_they_draw():
    from infogan_lib import weights
    from infogan_lib.category_names import category_names
    from infogan_lib.data import FASHION_CLASSES

    _, _, G, _ = weights.load_pretrained("fashion-mnist")
    names = category_names(G, "fashion-mnist")
    assert set(names.classes) <= set(FASHION_CLASSES) and len(set(names.classes)) == 10
    readings = _readings(G, "fashion-mnist", per_category=100, seed=123)
    for k in range(10):
        if names.shares[k] >= 0.7:         # a clear category: most of fresh images are that garment
            assert names.short(k) == f"draws {names.classes[k]}"
            assert FASHION_CLASSES[int(torch.bincount(readings[k], minlength=10).argmax())] == names.classes[k]
    options = [text for text, _ in TraversalViewer(G, dataset="fashion-mnist").category.options]
    assert options == [f"{k} → {names.short(k)}" for k in range(10)]


def test_a_category_read_as_its_class_less_than_half_the_time_is_called_mixed():
    from infogan_lib.category_names import CategoryNames

    names = CategoryNames(classes=("8", "3"), shares=(0.97, 0.3), most=("8", "5"), most_shares=(0.97, 0.45))
    assert names.label(0) == "category 0 → draws 8"
    assert names.label(1) == "category 1 → mixed (most often 5, 45%)"
    assert names.name(1) == "5?"


def test_category_names_are_measured_once_per_weights():
    from infogan_lib.category_names import category_names

    G = Generator(LatentSpec(), TINY_MODEL).eval()
    first = category_names(G)
    assert category_names(G) is first
    with torch.no_grad():
        G.fc[0].weight.mul_(-1)
    assert category_names(G) is not first


def test_the_selector_names_categories_by_the_first_model_and_each_panel_by_its_own():
    from infogan_lib import weights
    from infogan_lib.category_names import category_names

    _, _, G, _ = weights.load_pretrained("mnist")
    _, _, G_early, _ = weights.load_pretrained("mnist", "early")
    v = TraversalViewer(G, G_early)
    final, early = category_names(G), category_names(G_early)
    assert [text for text, _ in v.category.options] == [f"{k} → {final.short(k)}" for k in range(10)]
    for k in (0, 7):
        v.category.value = k
        assert final.label(k) in v.captions[0].value and early.label(k) in v.captions[1].value
        assert f"category {k} ({final.short(k)})" in v.status.value


@requires_mnist
def test_q_viewer_shows_a_square_real_digit_and_bars_in_label_order():
    from infogan_lib import load_images, weights
    from infogan_lib.viewer_parts import PICTURE_PX
    from infogan_lib.widgets import ClassifierViewer

    _, _, _, D = weights.load_pretrained("mnist")
    v = ClassifierViewer(D, load_images("mnist", "test").subset(slice(0, 500)))
    assert image_of(v.image.value).shape == (PICTURE_PX, PICTURE_PX)
    assert (v.image.layout.width, v.image.layout.height) == (v.bars.layout.width, v.bars.layout.height) \
        == (f"{PICTURE_PX}px", f"{PICTURE_PX}px")
    probs, _ = v.read(0)
    by_label = v.by_label(probs)
    assert by_label == [float(probs[k]) for k, _ in sorted(v.score.mapping.items(), key=lambda kv: kv[1])]
    assert max(range(10), key=by_label.__getitem__) == int(v.images.labels[0]) == 7
