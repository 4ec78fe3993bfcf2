"""Image descriptors: what can be measured on a digit, to say what a code changes (`semantics.py`).

Image descriptors (on images in [0, 1], ink = pixel value, coordinates in pixels, y pointing down),
from the ink's moments m = Σ I, x̄, ȳ, μ20 = Σ I (x−x̄)² / m, μ02 = Σ I (y−ȳ)² / m, μ11 = Σ I (x−x̄)(y−ȳ) / m:

- ``tilt``      −μ11 / √(μ20 μ02): the correlation between the ink's x and height, signed so that a digit
                leaning right (top to the right) is positive. Slant and rotation are not separable this
                way, so this one descriptor covers both. It ignores horizontal and vertical scaling.
- ``thickness`` stroke thickness, 2·area / perimeter of the ink above half intensity, in pixels (a
                stroke of width w and length L ≫ w has area wL and perimeter ≈ 2L).
- ``width``     the horizontal extent of the deslanted digit minus the stroke thickness, in pixels: the
                range between the 5 % and 95 % ink quantiles of x − (μ11/μ02)(y − ȳ) (x with the part
                explained by the height removed, so shearing leaves it unchanged), less ``thickness`` (so
                that thicker strokes alone do not make a digit "wider").
- ``height``    the same for y: the 5 %–95 % ink quantile range of y, less ``thickness``.
- ``ink``       mean pixel value: brightness / amount of ink.

`transforms.py` moves real images by known amounts (shear, horizontal scale, dilation), to check the
descriptors: each follows its own transform and is not fooled by the others.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DESCRIPTORS = ("tilt", "width", "height", "thickness", "ink")


def unit(images: torch.Tensor) -> torch.Tensor:
    """Images as floats in [0, 1], from uint8 0…255 (the data sets) or floats already in [0, 1]."""
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def descriptors(images: torch.Tensor, chunk: int = 1000) -> dict[str, torch.Tensor]:
    """Every descriptor of a batch of images (N, 1, H, W) in [0, 1] (or uint8 0…255): {name: (N,)}.
    Computed `chunk` images at a time (each image's descriptors are its own; the double-precision
    intermediates of 10,000 images at once would take over a gigabyte)."""
    if images.shape[0] <= chunk:
        return _descriptors(images)
    parts = [_descriptors(images[i:i + chunk]) for i in range(0, images.shape[0], chunk)]
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


def _descriptors(images: torch.Tensor) -> dict[str, torch.Tensor]:
    x = unit(images)[:, 0].clamp(0, 1).double()                         # (N, H, W)
    n, h, w = x.shape
    ys = torch.arange(h, dtype=x.dtype).view(1, h, 1)
    xs = torch.arange(w, dtype=x.dtype).view(1, 1, w)
    m = x.sum((1, 2)).clamp_min(1e-8)                                    # (N,)
    cx = (x * xs).sum((1, 2)) / m
    cy = (x * ys).sum((1, 2)) / m
    dx, dy = xs - cx.view(-1, 1, 1), ys - cy.view(-1, 1, 1)
    mu20 = (x * dx * dx).sum((1, 2)) / m
    mu02 = (x * dy * dy).sum((1, 2)) / m
    mu11 = (x * dx * dy).sum((1, 2)) / m
    eps = 1e-8
    tilt = -mu11 / (mu20 * mu02).clamp_min(eps).sqrt()
    on = (x > 0.5).double()
    area = on.sum((1, 2))
    padded = F.pad(on, (1, 1, 1, 1))
    perimeter = ((padded[:, 1:, :] - padded[:, :-1, :]).abs().sum((1, 2))
                 + (padded[:, :, 1:] - padded[:, :, :-1]).abs().sum((1, 2)))
    thickness = 2 * area / perimeter.clamp_min(1)
    deslanted = (xs - (mu11 / mu02.clamp_min(eps)).view(-1, 1, 1) * dy).expand(n, h, w)
    weights = x.flatten(1)
    width = _quantile_range(deslanted.flatten(1), weights) - thickness
    height = _quantile_range(ys.expand(n, h, w).flatten(1), weights) - thickness
    return {"tilt": tilt.float(), "width": width.float(), "height": height.float(),
            "thickness": thickness.float(), "ink": x.mean((1, 2)).float()}


def _quantile_range(values: torch.Tensor, weights: torch.Tensor, q: float = 0.05) -> torch.Tensor:
    """Per row: the (1 − q) minus the q weighted quantile of `values` (N, P) with `weights` (N, P)."""
    order = values.argsort(1)
    v, w = values.gather(1, order), weights.gather(1, order)
    cdf = w.cumsum(1) / w.sum(1, keepdim=True).clamp_min(1e-8)
    last = values.shape[1] - 1
    lo = v.gather(1, (cdf < q).sum(1, keepdim=True).clamp(max=last))
    hi = v.gather(1, (cdf < 1 - q).sum(1, keepdim=True).clamp(max=last))
    return (hi - lo)[:, 0]
