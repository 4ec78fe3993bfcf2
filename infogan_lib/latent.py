"""The latent input of InfoGAN: incompressible noise z and the latent codes c.

The generator reads one vector per sample, always in this order::

    x = G(concat[z, one_hot(c_cat_1), ..., one_hot(c_cat_m), c_cont_1, ..., c_cont_k])
          (B, noise_dim + sum(categorical) + n_continuous)

`LatentSpec` is the only place that knows how many codes there are and which prior each one has.
Networks, losses, figures and viewers all read it, so adding a continuous code is changing one
number (``LatentSpec(n_continuous=3)``). Because the continuous codes come last, widening a trained
generator by one code means appending one column to its first layer's weight (see
`infogan_lib.models.Generator`).

Priors of the continuous codes: ``"uniform"`` is Uniform(-1, 1) as in the paper; ``"gaussian"``
is N(0, 1), as the original course describes its codes and as its homework asks for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

PRIORS = ("uniform", "gaussian")


class SpecError(ValueError):
    """A `LatentSpec` that cannot describe a valid InfoGAN latent."""


@dataclass(frozen=True)
class LatentSpec:
    """How many latent variables there are, and their priors.

    Args:
        noise_dim: size of the noise vector z ~ N(0, I). The paper uses 62 for MNIST.
        categorical: the number of categories of each categorical code, e.g. ``(10,)`` for one
            10-way code c1 ~ Cat(K=10, p=0.1).
        n_continuous: the number of continuous codes.
        priors: one prior per continuous code, each ``"uniform"`` (U(-1, 1)) or ``"gaussian"``
            (N(0, 1)). ``None`` means all uniform, as in the paper.
    """

    noise_dim: int = field(default=62, metadata={"help": "size of the noise z"})
    categorical: tuple[int, ...] = field(default=(10,), metadata={
        "help": "categories of each categorical code"})
    n_continuous: int = field(default=2, metadata={"help": "number of continuous codes"})
    priors: tuple[str, ...] | None = field(default=None, metadata={
        "help": "prior of each continuous code (default: all uniform)", "choices": PRIORS})

    def __post_init__(self):
        if isinstance(self.categorical, int):
            object.__setattr__(self, "categorical", (self.categorical,))
        object.__setattr__(self, "categorical", tuple(int(k) for k in self.categorical))
        if not isinstance(self.noise_dim, int) or self.noise_dim < 0:
            raise SpecError(f"noise_dim must be a whole number ≥ 0, got {self.noise_dim!r}.")
        if not isinstance(self.n_continuous, int) or self.n_continuous < 0:
            raise SpecError(
                f"n_continuous must be a whole number ≥ 0, got {self.n_continuous!r}."
            )
        for k in self.categorical:
            if k < 2:
                raise SpecError(
                    f"each categorical code needs at least 2 categories, got {k} in "
                    f"categorical={self.categorical}: a {k}-way code carries no information "
                    "(H(c) = 0). Remove it or give it 2 or more categories."
                )
        if self.priors is None:
            object.__setattr__(self, "priors", ("uniform",) * self.n_continuous)
        object.__setattr__(self, "priors", tuple(self.priors))
        if len(self.priors) != self.n_continuous:
            raise SpecError(
                f"priors lists {len(self.priors)} priors for n_continuous={self.n_continuous} "
                "codes; give one prior per continuous code, or leave priors=None for all uniform."
            )
        for p in self.priors:
            if p not in PRIORS:
                raise SpecError(f"unknown prior {p!r}; choose one of {PRIORS}.")
        if self.code_dim == 0:
            raise SpecError("the spec has no latent code: InfoGAN needs at least one code c.")

    # ---- sizes and layouts --------------------------------------------------------------------
    @property
    def n_categorical(self) -> int:
        return len(self.categorical)

    @property
    def code_dim(self) -> int:
        """Size of c as the generator reads it: one-hots, then continuous values."""
        return sum(self.categorical) + self.n_continuous

    @property
    def input_dim(self) -> int:
        """Size of G's input concat[z, c]."""
        return self.noise_dim + self.code_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LatentSpec":
        return cls(
            noise_dim=int(d["noise_dim"]),
            categorical=tuple(d["categorical"]),
            n_continuous=int(d["n_continuous"]),
            priors=tuple(d["priors"]) if d.get("priors") is not None else None,
        )

    def with_continuous(self, prior: str = "gaussian") -> "LatentSpec":
        """The same spec with one more continuous code appended (the homework's extension)."""
        return LatentSpec(self.noise_dim, self.categorical, self.n_continuous + 1,
                          self.priors + (prior,))

    # ---- entropies ----------------------------------------------------------------------------
    def entropy(self) -> float:
        """H(c) of the categorical codes in nats: sum of ln K (ln 10 ≈ 2.303 for one 10-way code).

        This is the ceiling that the categorical part of L_I approaches. Continuous codes have
        differential entropies instead, reported per code by `continuous_entropies`.
        """
        return float(sum(math.log(k) for k in self.categorical))

    def continuous_entropies(self) -> list[float]:
        """Differential entropy h(c_j) in nats of each continuous code's prior.

        U(-1, 1): h = ln 2 ≈ 0.693.  N(0, 1): h = ½ ln(2πe) ≈ 1.419.
        """
        return [math.log(2.0) if p == "uniform" else 0.5 * math.log(2 * math.pi * math.e)
                for p in self.priors]

    # ---- sampling -----------------------------------------------------------------------------
    def sample(self, batch: int, generator: torch.Generator | None = None,
               device: torch.device | str | None = None) -> "LatentBatch":
        """Draw z ~ N(0, I) and c from its prior, for `batch` samples."""
        device = torch.device(device) if device is not None else torch.device("cpu")
        z = torch.randn(batch, self.noise_dim, generator=generator)  # (B, noise_dim)
        cats = torch.stack(
            [torch.randint(k, (batch,), generator=generator) for k in self.categorical], dim=1
        ) if self.categorical else torch.zeros(batch, 0, dtype=torch.long)  # (B, n_cat)
        cont = self.sample_continuous(batch, generator)  # (B, n_continuous)
        return LatentBatch(self, z, cats, cont).to(device)

    def sample_continuous(self, batch: int, generator: torch.Generator | None = None):
        cols = []
        for p in self.priors:
            if p == "uniform":
                cols.append(torch.rand(batch, generator=generator) * 2 - 1)
            else:
                cols.append(torch.randn(batch, generator=generator))
        return torch.stack(cols, dim=1) if cols else torch.zeros(batch, 0)

    def prior_range(self, j: int, sigmas: float = 2.0) -> tuple[float, float]:
        """The bulk of code j's prior: [-1, 1] for uniform, ±`sigmas` for Gaussian."""
        return (-1.0, 1.0) if self.priors[j] == "uniform" else (-sigmas, sigmas)

    # ---- the three figure kinds of the original course ----------------------------------------
    def grid_random(self, n: int = 100, seed: int = 0, continuous: float = 0.0) -> "LatentBatch":
        """Figure (a): random noise, random category, fixed continuous codes (all = `continuous`)."""
        g = torch.Generator().manual_seed(seed)
        b = self.sample(n, g)
        b.continuous.fill_(continuous)
        return b

    def grid_categories(self, per_category: int = 10, seed: int = 0, code: int = 0,
                        continuous: float = 0.0) -> "LatentBatch":
        """Figure (b): random noise, each category in turn (one row per category of `code`).

        Returns K * per_category samples, row-major: row k holds category k.
        """
        k_ways = self.categorical[code]
        g = torch.Generator().manual_seed(seed)
        b = self.sample(k_ways * per_category, g)
        b.categorical[:, code] = torch.arange(k_ways).repeat_interleave(per_category)
        b.continuous.fill_(continuous)
        return b

    def grid_sweep(self, continuous_code: int = 0, steps: int = 10,
                   value_range: tuple[float, float] = (-2.0, 2.0), seed: int = 0,
                   code: int = 0, others: float = 0.0, noise: str = "shared") -> "LatentBatch":
        """Figure (c): fixed noise, one row per category, one continuous code swept across columns.

        The default range -2…2 goes past U(-1, 1) as the paper's figures do. Other continuous codes
        are held at `others`. ``noise="shared"`` uses one z for the whole grid; ``"per_row"`` one z
        per row (still fixed across the sweep).
        """
        if not 0 <= continuous_code < self.n_continuous:
            raise SpecError(
                f"continuous_code={continuous_code} does not exist: this spec has "
                f"{self.n_continuous} continuous codes (0…{self.n_continuous - 1})."
            )
        k_ways = self.categorical[code]
        g = torch.Generator().manual_seed(seed)
        n = k_ways * steps
        b = self.sample(n, g)
        if noise == "shared":
            b.z[:] = torch.randn(1, self.noise_dim, generator=g)
        elif noise == "per_row":
            b.z[:] = torch.randn(k_ways, self.noise_dim, generator=g).repeat_interleave(steps, 0)
        else:
            raise ValueError(f"noise must be 'shared' or 'per_row', got {noise!r}")
        b.categorical[:, code] = torch.arange(k_ways).repeat_interleave(steps)
        b.continuous.fill_(others)
        b.continuous[:, continuous_code] = torch.linspace(*value_range, steps).repeat(k_ways)
        return b


@dataclass
class LatentBatch:
    """A batch of latents: z (B, noise_dim), categorical indices (B, n_cat), continuous (B, k)."""

    spec: LatentSpec
    z: torch.Tensor
    categorical: torch.Tensor
    continuous: torch.Tensor
    _device: torch.device = field(default=torch.device("cpu"), repr=False)

    def __len__(self) -> int:
        return self.z.shape[0]

    def to(self, device) -> "LatentBatch":
        return LatentBatch(self.spec, self.z.to(device), self.categorical.to(device),
                           self.continuous.to(device), torch.device(device))

    def one_hots(self) -> torch.Tensor:
        """The categorical codes as concatenated one-hot vectors, (B, sum(categorical))."""
        parts = [F.one_hot(self.categorical[:, i], k).to(self.z.dtype)
                 for i, k in enumerate(self.spec.categorical)]
        return torch.cat(parts, dim=1) if parts else self.z.new_zeros(len(self), 0)

    def input(self) -> torch.Tensor:
        """G's input concat[z, one-hots, continuous], (B, spec.input_dim)."""
        return torch.cat([self.z, self.one_hots(), self.continuous], dim=1)

    def __getitem__(self, idx) -> "LatentBatch":
        return LatentBatch(self.spec, self.z[idx], self.categorical[idx], self.continuous[idx],
                           self._device)
