"""What does a continuous code control? Measured, not eyeballed.

The image descriptors (tilt, width, height, thickness, ink) are defined in `descriptors.py`.

What a code controls (the definition the course uses): sweep code j across its prior's range with
everything else fixed, for ≥ 100 noise vectors and every category; in each sweep take Spearman's ρ
between the code value and a descriptor, and average ρ over the sweeps; the effect size is the mean
change of the descriptor from one end of the sweep to the other, in standard deviations of that
descriptor on real test images. A code **controls** a descriptor when |ρ| ≥ 0.8 and |effect| ≥ 1 SD. The codes are **separate**
when each controls a different descriptor and none moves another's with |ρ| ≥ 0.3 (cross-talk).

A new code brings a factor of its own when it controls a descriptor and moves it by ≥ 1 SD beyond
any mix of the other codes' changes (`OwnChange`): the homework's check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .descriptors import DESCRIPTORS, descriptors
from .latent import LatentBatch
from .viz import generate

RHO_CONTROLS, EFFECT_CONTROLS = 0.8, 1.0
RHO_CROSS = 0.3      # a code "leaves alone" another code's descriptor when |ρ| < this
OWN_SD = 1.0         # a new code's own change: what no mix of the other codes' changes makes, in SD


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
class OwnChange:
    """How much of a code's change to a descriptor is its own. The code's change is the vector of
    its effects e_j (one per descriptor, in SD of real digits, from one end of its sweep to the
    other); the part of it that some mix of the other codes' vectors makes is its projection P e_j
    onto their span; the code's own change is the rest, r = e_j − P e_j.
    The code brings a new factor when it controls a descriptor (|ρ| ≥ 0.8, ≥ 1 SD) and moves that
    descriptor by at least OWN_SD on its own: |r_d| ≥ OWN_SD. A code that re-does the other codes'
    changes (all of them, or a mix) has r ≈ 0, however strongly it moves their descriptors.
    `descriptor` is the controlled descriptor with the largest own change (None if none is controlled)."""

    code: int
    descriptor: str | None
    effect_sd: float      # e_j on that descriptor
    own_sd: float         # r on that descriptor
    rho: float

    @property
    def margin_sd(self) -> float:
        return abs(self.own_sd) - OWN_SD

    @property
    def new(self) -> bool:
        return self.descriptor is not None and abs(self.own_sd) >= OWN_SD

    def __str__(self) -> str:
        if self.descriptor is None:
            return f"c{self.code + 1}'s own factor: none yet, it controls no descriptor"
        return (f"c{self.code + 1}'s own factor: it controls {self.descriptor} (ρ = {self.rho:+.2f}, "
                f"{self.effect_sd:+.1f} SD in all) and moves it {self.own_sd:+.2f} SD beyond any mix of "
                f"the other codes' changes (bar {OWN_SD:g} SD, margin {self.margin_sd:+.2f})")


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

    def effect_vector(self, code: int) -> torch.Tensor:
        """The code's effects on every descriptor, in SD: (len(DESCRIPTORS),)."""
        return torch.tensor([self.get(code, d).effect_sd for d in DESCRIPTORS], dtype=torch.float64)

    def own_change(self, code: int) -> OwnChange:
        """The controlled descriptor this code moves most on its own, beyond any mix of the other
        codes' changes (`OwnChange`)."""
        e = self.effect_vector(code)
        others = [self.effect_vector(j) for j in self.codes() if j != code]
        if others:
            basis = torch.stack(others, dim=1)                           # (descriptors, other codes)
            r = e - basis @ torch.linalg.lstsq(basis, e.unsqueeze(1)).solution.squeeze(1)
        else:
            r = e
        controlled = [i for i, d in enumerate(DESCRIPTORS) if self.get(code, d).controls]
        if not controlled:
            return OwnChange(code, None, 0.0, 0.0, 0.0)
        i = max(controlled, key=lambda i: abs(float(r[i])))
        best = self.get(code, DESCRIPTORS[i])
        return OwnChange(code, best.descriptor, best.effect_sd, float(r[i]), best.rho)

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
                owner = next(f"c{k + 1}" for k in self.codes()
                             if k != j and (b := self.strongest(k)) is not None and b.descriptor == d)
                lines.append(f"cross-talk: c{j + 1} also moves {d} (ρ = {rho:+.2f}), {owner}'s strongest descriptor")
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
