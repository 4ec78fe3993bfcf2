"""Small random shifts, rotations and rescalings T, for reading the categorical code back.

Why: InfoGAN only asks that Q can recover c from G(z, c); it does not say *how* G shows c. Early
in training G can show the category through style (slant, stroke width, size) as easily as through
the digit's identity, and then 4/9 or 3/5 end up sharing a category — a partition that training
rarely undoes (`benchmarks/sweep.py` measured it on most seeds). If Q must read the categorical code
from a randomly moved copy T(G(z, c)), only features that survive a small shift, tilt or rescale
can carry it: the digit's identity does, its exact slant or size does not.

This is still the InfoGAN bound. T is a fixed random channel, so by the data-processing inequality

    L_I^T = E[log Q(c | T(x))] + H(c)  ≤  I(c; T(G(z, c)))  ≤  I(c; G(z, c)).

Maximizing L_I^T maximizes a (slightly looser) lower bound on the same mutual information. The
continuous codes are still read from the untouched image, so they stay free to learn slant or width
(`jitter_continuous` reads them from T(x) too: the homework's third code uses it, so that it cannot
settle for a small nudge of a factor the old codes already show; see benchmarks/SWEEP.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AffineJitter:
    """The range of T: rotation in degrees, shift as a fraction of half the image, relative scale."""

    rotation: float = 12.0    # ±12°
    shift: float = 0.1        # ±0.1 of half the width: ±1.4 px on a 28×28 image
    scale: float = 0.1        # ×0.9 … ×1.1

    def to_dict(self) -> dict:
        return asdict(self)


def random_affine(x: torch.Tensor, jitter: AffineJitter = AffineJitter(),
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """T(x): each image (B, C, H, W) in [-1, 1] shifted, rotated and scaled at random.

    Differentiable in x (bilinear resampling), so G learns through it; the background (-1) fills
    what moves in from outside the frame.
    """
    b = x.shape[0]

    def uniform(half_width: float) -> torch.Tensor:                       # U(-w, w), (B,)
        return (torch.rand(b, generator=generator) * 2 - 1) * half_width

    angle = uniform(jitter.rotation * math.pi / 180)
    scale = 1 + uniform(jitter.scale)
    tx, ty = uniform(jitter.shift), uniform(jitter.shift)
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1),
                         torch.stack([sin, cos, ty], 1)], 1).to(x.device, x.dtype)   # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)                # (B, H, W, 2)
    # resample x + 1 (background 0) so that zero padding means "background", then shift back
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False) - 1
