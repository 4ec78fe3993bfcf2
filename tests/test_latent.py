"""LatentSpec: sizes, priors, H(c), sampling and the figure grids."""

import math

import pytest
import torch

from infogan_lib import LatentSpec, SpecError


def test_entropy_of_one_ten_way_code_is_ln_10():
    assert LatentSpec().entropy() == pytest.approx(math.log(10))
    assert LatentSpec(categorical=(10, 4)).entropy() == pytest.approx(math.log(40))


def test_continuous_entropies_are_those_of_the_priors():
    spec = LatentSpec(n_continuous=2, priors=("uniform", "gaussian"))
    h_uniform, h_gauss = spec.continuous_entropies()
    assert h_uniform == pytest.approx(math.log(2))                      # U(-1, 1)
    assert h_gauss == pytest.approx(0.5 * math.log(2 * math.pi * math.e))  # N(0, 1)


@pytest.mark.parametrize("kwargs, words", [
    (dict(categorical=(1,)), "at least 2 categories"),
    (dict(categorical=(10, 0)), "at least 2 categories"),
    (dict(n_continuous=-1), "n_continuous"),
    (dict(noise_dim=-5), "noise_dim"),
    (dict(n_continuous=2, priors=("uniform",)), "one prior per continuous code"),
    (dict(n_continuous=1, priors=("laplace",)), "unknown prior"),
    (dict(categorical=(), n_continuous=0), "no latent code"),
])
def test_invalid_specs_are_refused_with_a_reason(kwargs, words):
    with pytest.raises(SpecError, match=words):
        LatentSpec(**kwargs)


def test_sampled_codes_follow_their_priors():
    spec = LatentSpec(noise_dim=4, categorical=(10,), n_continuous=2, priors=("uniform", "gaussian"))
    b = spec.sample(100_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(b.categorical[:, 0], minlength=10).float() / len(b)
    assert torch.allclose(counts, torch.full((10,), 0.1), atol=0.005)
    u, g = b.continuous[:, 0], b.continuous[:, 1]
    assert u.min() >= -1 and u.max() <= 1
    assert u.mean().abs() < 0.01 and u.var().item() == pytest.approx(1 / 3, abs=0.01)
    assert g.mean().abs() < 0.01 and g.var().item() == pytest.approx(1.0, abs=0.02)
    assert (g.abs() > 1).float().mean().item() == pytest.approx(0.3173, abs=0.01)
    assert b.z.std().item() == pytest.approx(1.0, abs=0.01)


def test_same_generator_seed_gives_same_latents():
    spec = LatentSpec()
    a = spec.sample(8, torch.Generator().manual_seed(3)).input()
    b = spec.sample(8, torch.Generator().manual_seed(3)).input()
    assert torch.equal(a, b)


def test_generator_input_is_noise_then_one_hots_then_continuous():
    spec = LatentSpec(noise_dim=3, categorical=(4, 2), n_continuous=2)
    b = spec.sample(5, torch.Generator().manual_seed(0))
    x = b.input()
    assert x.shape == (5, spec.input_dim) == (5, 3 + 4 + 2 + 2)
    assert torch.equal(x[:, :3], b.z)
    assert torch.equal(x[:, 3:7].argmax(1), b.categorical[:, 0])
    assert torch.equal(x[:, 7:9].argmax(1), b.categorical[:, 1])
    assert torch.equal(x[:, 3:9].sum(1), torch.full((5,), 2.0))
    assert torch.equal(x[:, 9:], b.continuous)


def test_with_continuous_appends_one_code():
    wide = LatentSpec().with_continuous("gaussian")
    assert wide.n_continuous == 3 and wide.priors == ("uniform", "uniform", "gaussian")
    assert wide.input_dim == LatentSpec().input_dim + 1


def test_sweep_grid_fixes_noise_and_sweeps_one_code_per_row():
    spec = LatentSpec(n_continuous=3)
    b = spec.grid_sweep(continuous_code=2, steps=7, value_range=(-2, 2), seed=1)
    assert len(b) == 10 * 7
    assert torch.equal(b.z, b.z[:1].expand_as(b.z))                        # one noise vector
    assert torch.equal(b.categorical[:, 0], torch.arange(10).repeat_interleave(7))  # row = class
    rows = b.continuous[:, 2].view(10, 7)
    assert torch.allclose(rows, torch.linspace(-2, 2, 7).expand(10, 7))      # swept past U(-1,1)
    assert torch.count_nonzero(b.continuous[:, :2]) == 0                      # others fixed
    with pytest.raises(SpecError, match="continuous_code=3 does not exist"):
        spec.grid_sweep(continuous_code=3)


def test_category_grid_has_one_row_per_category_and_random_noise():
    b = LatentSpec().grid_categories(per_category=5, seed=0)
    assert torch.equal(b.categorical[:, 0], torch.arange(10).repeat_interleave(5))
    assert not torch.equal(b.z[0], b.z[1])
    assert torch.count_nonzero(b.continuous) == 0


def test_random_grid_fixes_continuous_codes():
    b = LatentSpec().grid_random(n=50, seed=0, continuous=0.5)
    assert torch.all(b.continuous == 0.5)
    assert len(set(b.categorical[:, 0].tolist())) > 5


def test_spec_round_trips_through_a_dict():
    spec = LatentSpec(noise_dim=10, categorical=(10, 3), n_continuous=2, priors=("gaussian", "uniform"))
    assert LatentSpec.from_dict(spec.to_dict()) == spec
