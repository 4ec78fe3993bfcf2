"""The moved copy T(x): Q reads codes from a randomly shifted, rotated and rescaled copy of G's image.

Why: InfoGAN only asks that Q can recover c from G(z, c); it does not say *how* G shows c. Early
in training G can show the category through style (slant, stroke width, size) as easily as through
the digit's identity, and then 4/9 or 3/5 end up sharing a category — a partition that training
rarely undoes (`benchmarks/sweep.py` measured it on most seeds). If Q must read the categorical code
from a moved copy T(G(z, c)), only features that survive a small shift, tilt or rescale can carry
it: the digit's identity does, its exact slant or size does not.

This is still the InfoGAN bound. T is a fixed random channel, so by the data-processing inequality

    L_I^T = E[log Q(c | T(x))] + H(c)  ≤  I(c; T(G(z, c)))  ≤  I(c; G(z, c)).

Maximizing L_I^T maximizes a (slightly looser) lower bound on the same mutual information. By
default only the categorical codes are read from T(x); the continuous ones stay free to learn slant
or width from the untouched image. ``codes="all"`` reads them from T(x) too: the homework's third
code uses it, so that it cannot settle for a small nudge of a factor the old codes already show
(benchmarks/SWEEP.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .models import QOutput

CODES = ("none", "categorical", "all")   # which codes Q reads from the moved copy


@dataclass(frozen=True)
class MovedCopy:
    """T, a random move of each image: rotation in degrees, shift as a fraction of half the image,
    relative scale, each drawn uniformly in ±(its value)."""

    rotation: float = 12.0    # ±12°
    shift: float = 0.1        # ±0.1 of half the width: ±1.4 px on a 28×28 image
    scale: float = 0.1        # ×0.9 … ×1.1

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """T(x): each image (B, C, H, W) in [-1, 1] moved at random.

        Differentiable in x (bilinear resampling), so G learns through it; the background (-1)
        fills what moves in from outside the frame.
        """
        b = x.shape[0]

        def uniform(half_width: float) -> torch.Tensor:                       # U(-w, w), (B,)
            return (torch.rand(b, generator=generator) * 2 - 1) * half_width

        angle = uniform(self.rotation * math.pi / 180)
        scale = 1 + uniform(self.scale)
        tx, ty = uniform(self.shift), uniform(self.shift)
        cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, tx], 1),
                             torch.stack([sin, cos, ty], 1)], 1).to(x.device, x.dtype)  # (B, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)             # (B, H, W, 2)
        # resample x + 1 (background 0) so that zero padding means "background", then shift back
        return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False) - 1


class ReadsMoved:
    """What Q reads: the categorical codes (``codes="categorical"``) or every code (``"all"``)
    from T(x); the other codes from x itself.

    `generator` draws the moves; the training loop passes the one it draws latents from, so a
    resumed run draws the same moves.
    """

    def __init__(self, codes: str = "categorical", generator: torch.Generator | None = None,
                 move: MovedCopy = MovedCopy()):
        if codes not in CODES[1:]:
            raise ValueError(f"codes must be 'categorical' or 'all', got {codes!r}")
        self.codes, self.generator, self.move = codes, generator, move

    def __call__(self, D, x: torch.Tensor, q: QOutput) -> QOutput:
        """Q's output to score: Q(c | T(x)) for the moved codes, `q` = Q(c | x) for the rest."""
        _, q_moved = D(self.move(x, self.generator))
        if self.codes == "all":
            return q_moved
        return QOutput(q_moved.logits, q.mean, q.logvar)
