"""The overlap penalty: two continuous codes should not change the image in the same direction.

    d_j = [G(c + ε e_j) − G(c − ε e_j)] / 2ε   ≈ ∂G/∂c_j,  the image change that turning knob j makes
    R_overlap = mean over latents and code pairs j < l of cos²(d_j, d_l)      ∈ [0, 1]

The orthogonal-Jacobian idea of Wei et al., 2021 ("OroJaR"). A code that moves tilt *and* a little of
the width another code controls has a d_j with a component along that code's d_l; InfoGAN's L_I
does not mind (Q can un-mix it), this penalty does. Cosines, not dot products, so that a code cannot
lower it by changing the image less.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import ConfigError
from .latent import LatentBatch

ORTHO_BATCH, ORTHO_EPS = 16, 0.25


def overlap_penalty(G, latent: LatentBatch, eps: float = ORTHO_EPS) -> torch.Tensor:
    """R_overlap on these latents. Costs 2k extra forward passes of the batch. G is in training
    mode, so these passes use (and update the running averages of) batch statistics like any other
    training batch; the perturbed copies come from the same latent distribution."""
    x = latent.input()                                          # (b, input_dim)
    b, k = x.shape[0], G.spec.n_continuous
    bumps = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    bumps[:, -k:] = eps * torch.eye(k, dtype=x.dtype, device=x.device)   # ε e_j on code j's column
    moved = torch.cat([x.unsqueeze(0) + bumps.unsqueeze(1), x.unsqueeze(0) - bumps.unsqueeze(1)])
    images = G(moved.flatten(0, 1)).view(2, k, b, -1)           # (±, code, latent, pixels)
    d = F.normalize((images[0] - images[1]) / (2 * eps), dim=2)  # unit d_j, (k, b, pixels)
    cos = torch.einsum("jbp,lbp->bjl", d, d)                   # (b, k, k)
    pairs = torch.triu_indices(k, k, offset=1, device=x.device)
    return cos[:, pairs[0], pairs[1]].pow(2).mean()


class Overlap:
    """w_overlap · R_overlap on the first ORTHO_BATCH latents of each batch."""

    name = "overlap"

    def __init__(self, weight: float, n_continuous: int):
        if n_continuous < 2:
            raise ConfigError(f"lambda_ortho={weight} needs at least two continuous codes to keep "
                              f"apart; this model has {n_continuous}: set lambda_ortho to 0 (--lambda-ortho 0).")
        self.weight = weight

    def __call__(self, G, fake: torch.Tensor, latent: LatentBatch) -> torch.Tensor:
        return overlap_penalty(G, latent[:ORTHO_BATCH])
