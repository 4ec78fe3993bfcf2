"""Known transforms of real images, to check the image descriptors of `semantics.py`: a shear
should move ``tilt`` and little else, a horizontal stretch ``width``, a dilation ``thickness``
(and ``ink``). `transform_table` measures each descriptor along each transform, in the same units
as a code's effect (Spearman's ρ within each sweep; change in SD of real images)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .descriptors import DESCRIPTORS, descriptors, unit
from .semantics import real_sd, spearman_per_sweep


def _affine(images: torch.Tensor, theta_rows) -> torch.Tensor:
    x = unit(images)
    theta = torch.tensor(theta_rows, dtype=x.dtype).unsqueeze(0).expand(len(x), 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shear(images: torch.Tensor, s: float) -> torch.Tensor:
    """Lean the image right by s (the top moves right by s × half the height): x_out = x_in − s·y_in."""
    return _affine(images, [[1.0, s, 0.0], [0.0, 1.0, 0.0]])


def scale_x(images: torch.Tensor, k: float) -> torch.Tensor:
    """Stretch horizontally by k about the center (k > 1 wider)."""
    return _affine(images, [[1.0 / k, 0.0, 0.0], [0.0, 1.0, 0.0]])


def dilate(images: torch.Tensor, steps: int) -> torch.Tensor:
    """Thicken strokes by `steps` pixels per side (grey-level 3×3 dilation); negative steps erode."""
    x = unit(images)
    for _ in range(abs(steps)):
        x = F.max_pool2d(x, 3, 1, 1) if steps > 0 else -F.max_pool2d(-x, 3, 1, 1)
    return x


def transform_table(real_images: torch.Tensor, n: int = 300) -> dict[str, dict[str, tuple[float, float]]]:
    """Each known transform swept on `n` real images: {transform: {descriptor: (ρ, effect SD)}}."""
    x = unit(real_images[:n])
    sd = real_sd(real_images)
    sweeps = {
        "shear": (torch.linspace(-0.3, 0.3, 7), lambda v: shear(x, float(v))),
        "scale_x": (torch.linspace(0.75, 1.25, 7), lambda v: scale_x(x, float(v))),
        "dilate": (torch.tensor([-1.0, 0.0, 1.0, 2.0]), lambda v: dilate(x, int(v))),
    }
    out = {}
    for name, (values, fn) in sweeps.items():
        per_step = [descriptors(fn(v)) for v in values]
        out[name] = {}
        for d in DESCRIPTORS:
            m = torch.stack([p[d] for p in per_step], dim=1)        # (n, S)
            rho = float(spearman_per_sweep(values, m).mean())
            out[name][d] = (rho, float((m[:, -1] - m[:, 0]).mean()) / max(sd[d], 1e-8))
    return out
