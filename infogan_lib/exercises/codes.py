"""Checks for notebook 04 (the codes): figure (c)'s latents, the tilt descriptor, Spearman's ρ."""

from __future__ import annotations

import numpy as np
import torch

from ..data import synthetic_shapes
from ..descriptors import descriptors
from ..latent import LatentBatch, LatentSpec
from ..transforms import shear
from .verdict import exercise


def check_sweep_latents(sweep_latents) -> None:
    """Figure (c)'s latents: one row per category, the code swept across each row, one z for all."""
    spec = LatentSpec()
    values = torch.linspace(-2, 2, 7)
    with exercise("sweep_latents", "70 latents, row k = category k, the code swept along each row, the "
                                   "other code at 0, one z for the whole grid, a new z for a new seed") as ex:
        grid = sweep_latents(spec, 1, values, 0)
        ex.expect(grid is not None, "sweep_latents returned None: did you forget the `return`?")
        ex.expect(isinstance(grid, LatentBatch), f"return a LatentBatch(spec, z, categorical, continuous), not "
                                                 f"{type(grid).__name__}")
        ex.expect(len(grid) == 70, f"10 categories × 7 values = 70 latents; yours has {len(grid)}")
        ex.expect(grid.categorical.dim() == 2 and grid.categorical.shape[1] == 1,
                  f"categorical has one column per categorical code: shape (70, 1), yours "
                  f"{tuple(grid.categorical.shape)} (add [:, None])")
        ex.expect(grid.z.shape == (70, spec.noise_dim), f"z is (70, {spec.noise_dim}): one noise vector per latent, "
                                                        f"all equal; yours {tuple(grid.z.shape)}")
        cats = grid.categorical[:, 0]
        ex.expect(not torch.equal(cats, torch.arange(10).repeat(7)),
                  "your categories change along each row: row k (latents 7k … 7k + 6) is category k "
                  "throughout; torch.arange(10).repeat_interleave(len(values)) gives 0,0,…,1,1,…")
        ex.expect(torch.equal(cats.cpu(), torch.arange(10).repeat_interleave(7)),
                  "row k (latents 7k … 7k + 6) must be category k")
        ex.expect(not grid.categorical.is_floating_point(),
                  f"categories are integer indices (torch.long, as torch.arange gives), not {grid.categorical.dtype}: "
                  "G's one-hot encoding needs integers")
        ex.expect(grid.z.dtype == grid.continuous.dtype == torch.float32,
                  f"z and continuous must be float32 like G's weights; yours are {grid.z.dtype} and {grid.continuous.dtype}")
        ex.close(grid.continuous[:, 1], values.repeat(10),
                 "code 1 must take the 7 values along every row: values.repeat(10)")
        ex.close(grid.continuous[:, 0], torch.zeros(70), "the code that is not swept stays at 0")
        ex.expect(torch.equal(grid.z, grid.z[:1].expand_as(grid.z)),
                  "one noise vector z for the whole grid (figure (c) fixes the noise): draw one z and repeat it")
        z = grid.z[0]
        ex.expect(abs(float(z.mean())) < 0.6 and 0.5 < float(z.std()) < 1.6,
                  f"z should be drawn from the noise prior N(0, I), torch.randn: yours has mean {float(z.mean()):.2f} "
                  f"and standard deviation {float(z.std()):.2f}")
        other = sweep_latents(spec, 1, values, 1)
        ex.expect(not torch.equal(other.z, grid.z), "another seed must give another z: use "
                                                    "torch.Generator().manual_seed(seed)")
        again = sweep_latents(spec, 1, values, 0)
        ex.expect(torch.equal(again.z, grid.z), "the same seed must give the same z")
        uneven = torch.tensor([-1.5, -0.2, 0.0, 0.7, 2.5])
        other = sweep_latents(spec, 0, uneven, 3)
        ex.expect(len(other) == 50, f"with 5 values the grid has 10 × 5 = 50 latents, yours {len(other)}: use "
                                    "len(values), not 7")
        ex.close(other.continuous[:, 0], uneven.repeat(10),
                 "sweep_latents(spec, 0, values, seed) must sweep code 0 over exactly the given values: use "
                 "`code` and `values`, not fixed ones")
        ex.close(other.continuous[:, 1], torch.zeros(50), "with code 0 swept, code 1 stays at 0")


def _bars() -> torch.Tensor:
    images = synthetic_shapes(40, seed=3).images.float() / 255
    return torch.cat([images, shear(images, 0.3), shear(images, -0.3)])


def check_tilt(tilt) -> None:
    """tilt = −μ11 / √(μ20 μ02) of the ink, against `descriptors` on 120 bars at every angle, sheared."""
    with exercise("tilt", "equals the kit's tilt descriptor on 120 bars at 10 angles, leaning both ways") as ex:
        images = _bars()
        got = tilt(images)
        ex.expect(got is not None, "tilt returned None: did you forget the `return`?")
        got = torch.as_tensor(got).double().flatten()
        want = descriptors(images)["tilt"].double()
        ex.expect(got.shape == want.shape, f"one tilt per image: shape ({len(images)},), yours {tuple(got.shape)}")
        ex.expect(torch.isfinite(got).all(), "your tilt has nan or inf: divide by the total ink m = Σ I")
        ex.expect(not torch.allclose(got, -want, atol=1e-4),
                  "your tilt has the wrong sign: y grows downwards in an image, so a digit leaning right "
                  "(top to the right) has a negative μ11: tilt = −μ11 / √(μ20 μ02)")
        ex.close(got, want, "tilt = −μ11 / √(μ20 μ02), with the moments centred on the ink's mean (x̄, ȳ) "
                            "and divided by the total ink m", tol=1e-4)


def check_spearman(spearman) -> None:
    """Spearman's ρ of two 1-D arrays, against scipy.stats.spearmanr."""
    from scipy.stats import spearmanr      # here, not at the top: importing scipy.stats takes ~1 s

    rng = np.random.default_rng(0)
    with exercise("spearman", "matches scipy.stats.spearmanr on 50 random pairs, and is 1 for any "
                              "increasing relation") as ex:
        x = np.linspace(-1, 1, 9)
        ex.close(spearman(x, np.exp(5 * x)), 1.0,
                 "ρ is 1 for any increasing relation (here e^{5x}): Spearman's ρ is Pearson's correlation "
                 "of the *ranks*, not of the values")
        ex.close(spearman(x, -x ** 3), -1.0, "ρ is −1 for any decreasing relation")
        for _ in range(50):
            n = int(rng.integers(5, 40))
            a, b = rng.normal(size=n), rng.normal(size=n)
            b = b + rng.uniform(-1, 1) * a
            ex.close(spearman(a, b), spearmanr(a, b).statistic,
                     "Pearson's correlation of the ranks: rank both arrays (argsort of argsort), centre them, "
                     "then Σ ab / √(Σ a² Σ b²)", tol=1e-6)
