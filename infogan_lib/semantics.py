"""What does a continuous code control? Measured, not eyeballed.

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

What a code controls (the definition the course uses): sweep code j across its prior's range with
everything else fixed, for ≥ 100 noise vectors and every category; in each sweep take Spearman's ρ
between the code value and a descriptor, and average ρ over the sweeps; the effect size is the mean
change of the descriptor from one end of the sweep to the other, in standard deviations of that
descriptor on real test images. A code **controls** a descriptor when |ρ| ≥ 0.8 and |effect| ≥ 1 SD. The codes are **separate**
when each controls a different descriptor and none moves another's with |ρ| ≥ 0.3 (cross-talk).

`transforms.py` moves real images by known amounts (shear, horizontal scale, dilation), to check the
descriptors: each follows its own transform and is not fooled by the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .latent import LatentBatch
from .viz import generate

DESCRIPTORS = ("tilt", "width", "height", "thickness", "ink")
RHO_CONTROLS, EFFECT_CONTROLS = 0.8, 1.0
RHO_CROSS = 0.3      # a code "leaves alone" another code's descriptor when |ρ| < this


# ---- descriptors ---------------------------------------------------------------------------------

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


# ---- Spearman's ρ within sweeps --------------------------------------------------------------------

def _ranks(v: torch.Tensor) -> torch.Tensor:
    """Ranks along the last dimension (ties broken by order; values are continuous here)."""
    return v.argsort(-1).argsort(-1).double()


def spearman_per_sweep(values: torch.Tensor, desc: torch.Tensor) -> torch.Tensor:
    """Spearman ρ between `values` (S,) and each row of `desc` (R, S): (R,), 0 for a constant row."""
    a = _ranks(values.expand_as(desc))
    b = _ranks(desc.double())
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    denom = (a.pow(2).sum(-1) * b.pow(2).sum(-1)).sqrt()
    rho = (a * b).sum(-1) / denom.clamp_min(1e-12)
    constant = desc.double().std(-1) < 1e-9
    return torch.where(constant, torch.zeros_like(rho), rho).float()


# ---- the measurement -------------------------------------------------------------------------------

@dataclass
class CodeEffect:
    code: int             # 0-based index of the continuous code
    descriptor: str
    rho: float            # mean Spearman ρ over sweeps
    effect_sd: float      # mean change across the sweep, in SDs of the descriptor on real images

    @property
    def controls(self) -> bool:
        return abs(self.rho) >= RHO_CONTROLS and abs(self.effect_sd) >= EFFECT_CONTROLS


@dataclass
class SemanticsTable:
    effects: list[CodeEffect]
    value_ranges: list[tuple[float, float]]
    n_sweeps: int
    real_sd: dict = field(default_factory=dict)

    def get(self, code: int, descriptor: str) -> CodeEffect:
        return next(e for e in self.effects if e.code == code and e.descriptor == descriptor)

    def codes(self) -> list[int]:
        return sorted({e.code for e in self.effects})

    def strongest(self, code: int) -> CodeEffect | None:
        """The descriptor this code controls most strongly (by |ρ|), or None if it controls none."""
        hits = [e for e in self.effects if e.code == code and e.controls]
        return max(hits, key=lambda e: abs(e.rho)) if hits else None

    def distinct(self, code: int) -> bool:
        """This code controls a descriptor, and its strongest one is no other code's strongest (the
        homework's bar for a new code; `separate` is the stricter bar for all codes)."""
        owned = {j: self.strongest(j) for j in self.codes()}
        best = owned.pop(code)
        return best is not None and best.descriptor not in {b.descriptor for b in owned.values() if b}

    def shared(self) -> dict[str, list[int]]:
        """Descriptors that several codes control: {descriptor: [codes]}."""
        out = {}
        for d in DESCRIPTORS:
            codes = [e.code for e in self.effects if e.descriptor == d and e.controls]
            if len(codes) > 1:
                out[d] = codes
        return out

    def cross_talk(self) -> dict[tuple[int, str], float]:
        """How much each code moves the descriptors the *other* codes control: {(code, descriptor): ρ}."""
        owned = {j: self.strongest(j) for j in self.codes()}
        return {(j, best.descriptor): self.get(j, best.descriptor).rho
                for j in self.codes() for k, best in owned.items()
                if k != j and best is not None
                and (owned[j] is None or owned[j].descriptor != best.descriptor)}  # shared: warned

    def separate(self, max_cross: float = RHO_CROSS) -> bool:
        """The course's bar for clean codes: every code controls a descriptor, no two the same
        strongest one, and no code moves another's descriptor with |ρ| ≥ `max_cross`."""
        owned = [self.strongest(j) for j in self.codes()]
        if any(b is None for b in owned) or len({b.descriptor for b in owned}) < len(owned):
            return False
        return all(abs(rho) < max_cross for rho in self.cross_talk().values())

    def summary(self) -> list[str]:
        """One line per code, e.g. 'c2 ≈ width, ρ = 0.93, 1.8 SD', plus warnings for shared ones."""
        lines = []
        for j in self.codes():
            best = self.strongest(j)
            if best is None:
                top = max((e for e in self.effects if e.code == j), key=lambda e: abs(e.rho))
                lines.append(f"c{j + 1} controls no descriptor (strongest: {top.descriptor}, "
                             f"ρ = {top.rho:+.2f}, {top.effect_sd:+.1f} SD)")
            else:
                lines.append(f"c{j + 1} ≈ {best.descriptor}, ρ = {best.rho:+.2f}, "
                             f"{best.effect_sd:+.1f} SD")
        for d, codes in self.shared().items():
            lines.append(f"warning: {d} is moved by several codes: "
                         + ", ".join(f"c{j + 1}" for j in codes))
        for (j, d), rho in self.cross_talk().items():
            if abs(rho) >= RHO_CROSS:
                lines.append(f"cross-talk: c{j + 1} also moves {d} (ρ = {rho:+.2f}), "
                             f"another code's descriptor")
        return lines

    def to_markdown(self) -> str:
        head = "| code | " + " | ".join(DESCRIPTORS) + " |\n|---|" + "---|" * len(DESCRIPTORS) + "\n"
        rows = []
        for j in self.codes():
            cells = []
            for d in DESCRIPTORS:
                e = self.get(j, d)
                text = f"ρ {e.rho:+.2f}, {e.effect_sd:+.1f} SD"
                cells.append(f"**{text}**" if e.controls else text)
            lo, hi = self.value_ranges[j]
            rows.append(f"| c{j + 1} ({lo:g}…{hi:g}) | " + " | ".join(cells) + " |")
        return head + "\n".join(rows)


def real_sd(real_images: torch.Tensor) -> dict[str, float]:
    """The standard deviation of each descriptor over real images (the effect-size unit)."""
    return {k: float(v.std()) for k, v in descriptors(real_images).items()}


@torch.no_grad()
def sweep_images(G, code: int, n_noise: int = 100, steps: int = 9,
                 value_range: tuple[float, float] | None = None, seed: int = 0,
                 categorical: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of code `code` swept over `value_range` (default: its prior's range) for `n_noise` noise
    vectors × every category, other continuous codes at 0. Returns (values (S,), images
    (n_noise·K, S, 1, 28, 28) in [0, 1])."""
    spec = G.spec
    lo, hi = value_range or spec.prior_range(code)
    k_ways = spec.categorical[categorical]
    rows = n_noise * k_ways
    base = spec.sample(rows, torch.Generator().manual_seed(seed))   # one z per (noise, category)
    base.categorical[:, categorical] = torch.arange(k_ways).repeat(n_noise)
    values = torch.linspace(lo, hi, steps)
    continuous = torch.zeros(rows * steps, spec.n_continuous)
    continuous[:, code] = values.repeat(rows)
    latent = LatentBatch(spec, base.z.repeat_interleave(steps, 0),
                         base.categorical.repeat_interleave(steps, 0), continuous)   # row-major
    out = generate(G, latent, batch=2000)
    return values, out.view(rows, steps, *out.shape[1:])


def measure(G, real_images: torch.Tensor, n_noise: int = 100, steps: int = 9,
            value_ranges=None, seed: int = 0) -> SemanticsTable:
    """The semantics table of every continuous code of G (see the module docstring)."""
    spec = G.spec
    sd = real_sd(real_images)
    effects, ranges = [], []
    for j in range(spec.n_continuous):
        vr = (value_ranges[j] if value_ranges else None) or spec.prior_range(j)
        ranges.append(tuple(vr))
        values, imgs = sweep_images(G, j, n_noise, steps, vr, seed)
        rows = imgs.shape[0]
        desc = descriptors(imgs.flatten(0, 1))
        for name in DESCRIPTORS:
            d = desc[name].view(rows, steps)
            rho = float(spearman_per_sweep(values, d).mean())
            effect = float((d[:, -1] - d[:, 0]).mean()) / max(sd[name], 1e-8)
            effects.append(CodeEffect(j, name, rho, effect))
    return SemanticsTable(effects, ranges, n_noise * spec.categorical[0], sd)
