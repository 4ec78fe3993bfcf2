"""The networks: a generator G(z, c) and a discriminator D whose trunk also feeds the Q head.

Reference architecture (InfoGAN paper, Table 1, MNIST); the widths are configurable::

    G: FC 1024 – BN – ReLU – FC 7·7·128 – BN – ReLU – up-conv 64 (4×4, /2) – BN – ReLU
       – up-conv 1 (4×4, /2) – tanh
    D: conv 64 (4×4, /2) – lReLU(0.1) – conv 128 (4×4, /2) – BN – lReLU – FC 1024 – BN – lReLU
       ├─ D head: FC 1                                  (real/fake logit)
       └─ Q head: FC 128 – BN – lReLU – FC outputs      (the parameters of Q(c | x))

No batch norm on D's first layer nor on G's last layer: normalizing the raw pixels D sees, or the
pixels G emits, ties every sample to its batch's statistics and makes training oscillate (the
original course, section 五; the DCGAN paper). Images are in [-1, 1] (G ends with tanh).

Q's outputs, for a spec with categorical codes (K_1, …, K_m) and k continuous codes, are a
`QOutput`: one logits tensor (B, K_i) per categorical code, and for the continuous codes a mean
(B, k) and a log-variance (B, k), column j belonging to code j. Each lives in its own linear layer
(`q_logits`, `q_mean`, `q_logvar`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .latent import LatentSpec


@dataclass(frozen=True)
class ModelConfig:
    """Widths of the networks. `paper()` gives the paper's MNIST sizes.

    The default is the paper's architecture at a quarter of its widths (16/16/256 instead of
    64/64/1024): 0.4 M parameters per network instead of 6.6 M, 6× the training throughput on a
    CPU, and on MNIST the same categorical accuracy in a fraction of the time
    (benchmarks/sweep.py, benchmarks/time_to_accuracy.py).
    """

    g_channels: int = field(default=16, metadata={
        "help": "channels of G's 14×14 layer (its 7×7 layer has twice as many)"})
    d_channels: int = field(default=16, metadata={
        "help": "channels of D's first conv (its second has twice as many)"})
    fc: int = field(default=256, metadata={"help": "width of G's first FC layer and of D's FC layer"})
    q_hidden: int = field(default=64, metadata={"help": "width of the Q head's hidden layer"})
    image_channels: int = 1

    @classmethod
    def paper(cls) -> "ModelConfig":
        return cls(64, 64, 1024, 128)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{k: int(v) for k, v in d.items()})


@dataclass
class QOutput:
    """The parameters of Q(c | x): categorical logits per code, Gaussian mean/log-variance."""

    logits: list[torch.Tensor]  # one (B, K_i) per categorical code
    mean: torch.Tensor          # (B, n_continuous)
    logvar: torch.Tensor        # (B, n_continuous)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialization: weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """x = G(z, c): maps the latent vector concat[z, c] (see `LatentSpec`) to a 28×28 image."""

    def __init__(self, spec: LatentSpec, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.spec, self.config = spec, config
        c2 = 2 * config.g_channels
        self.fc = nn.Sequential(
            nn.Linear(spec.input_dim, config.fc, bias=False),
            nn.BatchNorm1d(config.fc),
            nn.ReLU(inplace=True),
            nn.Linear(config.fc, c2 * 7 * 7, bias=False),
            nn.BatchNorm1d(c2 * 7 * 7),
            nn.ReLU(inplace=True),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c2, config.g_channels, 4, 2, 1, bias=False),  # 7 → 14
            nn.BatchNorm2d(config.g_channels),
            nn.ReLU(inplace=True),
            nn.ConvTranspose2d(config.g_channels, config.image_channels, 4, 2, 1),  # 14 → 28, no BN
            nn.Tanh(),
        )
        self.apply(init_weights)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """latent (B, spec.input_dim) → images (B, C, 28, 28) in [-1, 1]."""
        h = self.fc(latent)                                   # (B, 2·g_channels·7·7)
        h = h.view(-1, 2 * self.config.g_channels, 7, 7)      # (B, 2·g_channels, 7, 7)
        return self.deconv(h)                                 # (B, C, 28, 28)


class Discriminator(nn.Module):
    """D(x) and Q(c | x) on one shared trunk.

    `forward` returns ``(d_logit, q)``: the real/fake logit (B,) and a `QOutput`. Sharing the
    trunk makes Q almost free: InfoGAN adds one small head, not a second network.
    """

    def __init__(self, spec: LatentSpec, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.spec, self.config = spec, config
        c1, c2 = config.d_channels, 2 * config.d_channels
        self.trunk = nn.Sequential(
            nn.Conv2d(config.image_channels, c1, 4, 2, 1),  # 28 → 14, no BN on raw pixels
            nn.LeakyReLU(0.1, inplace=True),
            nn.Conv2d(c1, c2, 4, 2, 1, bias=False),          # 14 → 7
            nn.BatchNorm2d(c2),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, config.fc, bias=False),
            nn.BatchNorm1d(config.fc),
            nn.LeakyReLU(0.1, inplace=True),
        )
        self.d_head = nn.Linear(config.fc, 1)
        self.q_hidden = nn.Sequential(
            nn.Linear(config.fc, config.q_hidden, bias=False),
            nn.BatchNorm1d(config.q_hidden),
            nn.LeakyReLU(0.1, inplace=True),
        )
        self.q_logits = nn.Linear(config.q_hidden, sum(spec.categorical))
        self.q_mean = nn.Linear(config.q_hidden, spec.n_continuous)
        self.q_logvar = nn.Linear(config.q_hidden, spec.n_continuous)
        self.apply(init_weights)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The shared trunk: images (B, C, 28, 28) → features (B, fc)."""
        return self.trunk(x)

    def q(self, h: torch.Tensor) -> QOutput:
        """The Q head on trunk features h (B, fc)."""
        hq = self.q_hidden(h)                                  # (B, q_hidden)
        logits = torch.split(self.q_logits(hq), list(self.spec.categorical), dim=1)
        return QOutput(list(logits), self.q_mean(hq), self.q_logvar(hq))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, QOutput]:
        h = self.features(x)                                   # (B, fc)
        return self.d_head(h).squeeze(1), self.q(h)            # (B,), QOutput


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
