"""The anchor: a warm-started model's old codes must stay readable the old way.

    R_anchor = λ_cat Σ_i CE(Q_old(x)_i, c_i) + λ_cont Σ_{j ≤ k_old} −log Q_old(c_j | x),   x = G(z, c)

G minimizes w_anchor · R_anchor besides its InfoGAN loss. Why a new code needs it: L_I is a sum over
codes of how well *some* Q reads each code back. Mix two codes (G reads c2' = (c2 + c3)/√2,
c3' = (c2 − c3)/√2 instead) and a Q that un-mixes them reads both as well as before: the objective
cannot tell "c3 took a new factor" from "c2 and c3 share tilt". Warm-started from a 2-code model,
a third code then often drifts into the factors the old codes already show. The anchor — the old
model's Q, weights frozen — breaks the tie: it reads c1, c2 the way they were read before widening,
so any change c3 makes to *their* factors costs G its NLL, and c3 has to find a factor of its own.
The anchor's codes are the first ones of the latent (widening appends codes at the end).
"""

from __future__ import annotations

import copy

import torch

from .config import ConfigError
from .latent import LatentBatch, LatentSpec
from .losses import InfoTerms, info_loss
from .models import Discriminator, ModelConfig


def anchor_loss(anchor: Discriminator, fake: torch.Tensor, latent: LatentBatch,
                lambda_cat: float = 1.0, lambda_cont: float = 0.1) -> InfoTerms:
    """The frozen old Q's information terms on the old codes of `latent`, read from `fake`."""
    aspec = anchor.spec
    old = LatentBatch(aspec, latent.z[:, :aspec.noise_dim], latent.categorical[:, :len(aspec.categorical)],
                      latent.continuous[:, :aspec.n_continuous], latent._device)
    _, q = anchor(fake)
    return info_loss(q, old, aspec, lambda_cat, lambda_cont)


class Anchor:
    """R_anchor with weight `weight`, for a run whose model (`spec`, `model`) was widened from
    `old_discriminator`'s. The network is copied, frozen and kept in eval mode."""

    name = "anchor"

    def __init__(self, old_discriminator: Discriminator, weight: float, spec: LatentSpec,
                 model: ModelConfig, lambda_cat: float = 1.0, lambda_cont: float = 0.1):
        aspec = old_discriminator.spec
        if (aspec.noise_dim, aspec.categorical) != (spec.noise_dim, spec.categorical) or \
                aspec.n_continuous >= spec.n_continuous or old_discriminator.config != model:
            raise ConfigError(
                f"the anchor was built for {aspec} with widths {old_discriminator.config}; it must be "
                f"the discriminator this run's model ({spec}, {model}) was widened from: the same "
                "noise, categorical codes and widths, and fewer continuous codes.")
        self.weight, self.lambda_cat, self.lambda_cont = weight, lambda_cat, lambda_cont
        self.old = copy.deepcopy(old_discriminator).float().eval()   # the caller's network stays as it is
        self.old.requires_grad_(False)

    def to(self, device) -> "Anchor":
        self.old.to(device)
        return self

    def __call__(self, G, fake: torch.Tensor, latent: LatentBatch) -> torch.Tensor:
        return anchor_loss(self.old, fake, latent, self.lambda_cat, self.lambda_cont).loss

    def state_dict(self) -> dict:
        return {"spec": self.old.spec.to_dict(), "model_config": self.old.config.to_dict(),
                "weights": self.old.state_dict()}

    @staticmethod
    def network_from(state: dict) -> Discriminator:
        """The old discriminator saved by `state_dict`."""
        D = Discriminator(LatentSpec.from_dict(state["spec"]), ModelConfig.from_dict(state["model_config"]))
        D.load_state_dict(state["weights"])
        return D
