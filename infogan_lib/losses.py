"""The InfoGAN objective: the GAN game plus the variational bound on mutual information.

    min_{G,Q} max_D  V_InfoGAN(D, G, Q) = V(D, G) − λ L_I(G, Q)

    V(D, G)   = E_{x~p_data}[log D(x)] + E_{z,c}[log(1 − D(G(z, c)))]
    L_I(G, Q) = E_{c~P(c), x~G(z,c)}[log Q(c | x)] + H(c)  ≤  I(c; G(z, c))

All losses take logits, never probabilities: log σ(t) = −softplus(−t) is exact for every t, while
log(sigmoid(t)) underflows to −inf once sigmoid(t) rounds to 0. The same holds for the categorical
code: cross-entropy straight from logits, never a softmax first.

Where L_I's gradient goes (see `infogan_lib.step.infogan_step`): L_I is added to both players'
losses, as in the paper's official code and in the tutorial this course follows ("we also update
all variables using the Q-network losses"). In the D step it trains the Q head *and D's shared
trunk* on generated images detached from G, so the trunk learns features from which c can be read
back, not only features that tell real from fake; without that, Q starts from features chosen for
another task and disentanglement comes later. In the G step the same loss flows back through the
(frozen) trunk into G, which is what makes G put c into its images.

By default the categorical part is computed on T(G(z, c)), a randomly shifted, rotated and scaled
copy (`infogan_lib.moved_copy`); by the data-processing inequality that is still a lower bound on
I(c; G(z, c)). `info_loss` itself does not know: it scores whatever Q output it is given, and
`Information` chooses what Q reads.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .latent import LatentBatch, LatentSpec
from .models import QOutput

LOGVAR_MIN, LOGVAR_MAX = -6.0, 2.0  # σ between e^-3 ≈ 0.05 and e ≈ 2.7: keeps the NLL finite
LOG_2PI = math.log(2 * math.pi)


def discriminator_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> torch.Tensor:
    """−V(D, G) for D:  −E[log D(x)] − E[log(1 − D(G(z, c)))], with D = σ(logit).

    log σ(t) = −softplus(−t) and log(1 − σ(t)) = −softplus(t).
    """
    return F.softplus(-real_logit).mean() + F.softplus(fake_logit).mean()


def generator_loss(fake_logit: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss  −E[log D(G(z, c))]  (Goodfellow et al., 2014).

    Minimizing log(1 − D(G)) instead saturates when D confidently rejects early samples; this
    version has the same fixed point and strong gradients exactly then.
    """
    return F.softplus(-fake_logit).mean()


def gaussian_nll(c: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """−log Q(c_j | x) for a factored Gaussian Q, elementwise (B, k).

    −log N(c; μ, σ²) = ½ log 2π + ½ log σ² + (c − μ)² / (2σ²),  with log σ² clamped to
    [LOGVAR_MIN, LOGVAR_MAX] so that a confident Q cannot drive the loss to −∞.
    """
    logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
    return 0.5 * (LOG_2PI + logvar + (c - mean).pow(2) * torch.exp(-logvar))


@dataclass
class InfoTerms:
    """The information term of one batch.

    loss: what the optimizers minimize,  λ_cat Σ_i CE_i + λ_cont Σ_j NLL_j  (= −λ L_I + const).
    categorical_bound: L_I of the categorical codes in nats, H(c_cat) − Σ_i CE_i; it approaches
        `spec.entropy()` (ln 10 ≈ 2.303 for one 10-way code) when Q recovers c from G(z, c).
    continuous_bounds: (k,) one bound per continuous code, h(c_j) − E[−log Q(c_j | x)], to read
        against that code's differential entropy h(c_j) (`spec.continuous_entropies()`).
    """

    loss: torch.Tensor
    categorical_bound: torch.Tensor
    continuous_bounds: torch.Tensor


def info_loss(q: QOutput, latent: LatentBatch, spec: LatentSpec,
              lambda_cat: float = 1.0, lambda_cont: float = 0.1,
              cont_std: float | None = None) -> InfoTerms:
    """−λ L_I(G, Q) on a batch of generated images, with L_I = E[log Q(c | x)] + H(c).

    Categorical codes: log Q(c_i | x) = −cross_entropy(logits_i, c_i).
    Continuous codes: log Q(c_j | x) = log N(c_j; μ_j(x), σ_j²(x)), learned mean and variance.
    H(c) is a constant, so it changes the reported bound, not the gradient. The paper uses
    λ = 1 for categorical codes and a smaller λ for continuous ones, whose NLL is on another scale.
    `cont_std`: a fixed σ for every continuous code instead of Q's learned one (the paper's code
    fixes σ = 1 for MNIST), so that −log Q(c_j | x) = (c_j − μ_j)² / 2σ² + const: a squared error.
    """
    logvar = q.logvar if cont_std is None else torch.full_like(q.mean, 2 * math.log(cont_std))
    ce = torch.stack([F.cross_entropy(logits, latent.categorical[:, i])
                      for i, logits in enumerate(q.logits)]).sum() if q.logits else q.mean.new_zeros(())
    nll = gaussian_nll(latent.continuous, q.mean, logvar).mean(dim=0)  # (k,)
    loss = lambda_cat * ce + lambda_cont * nll.sum()
    h_cont = torch.tensor(spec.continuous_entropies(), dtype=nll.dtype, device=nll.device)
    return InfoTerms(
        loss=loss,
        categorical_bound=(spec.entropy() - ce).detach(),
        continuous_bounds=(h_cont - nll).detach(),
    )


LIBRARY_LOSS = "info_loss"


def loss_name(written: Callable | None) -> str:
    """The name a run records for the information loss it optimizes, checked again on resume: its
    qualified name and a digest of its code (an edited function is another loss)."""
    if written is None:
        return LIBRARY_LOSS
    code = getattr(written, "__code__", None)
    digest = hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:12] if code else "?"
    return f"{getattr(written, '__qualname__', repr(written))} (code {digest})"


def checked_loss(value, name: str) -> torch.Tensor:
    """A hand-written loss's value, refused with what is wrong unless it is a finite scalar tensor
    that keeps gradients."""
    if not isinstance(value, torch.Tensor) or value.dim() != 0 or not value.is_floating_point():
        got = (f"a {value.dtype} tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor)
               else type(value).__name__)
        raise ValueError(f"{name} must return a scalar float tensor (shape ()), it returned {got}: "
                         "sum or average it to one number, and build it from torch operations.")
    if not value.requires_grad:
        raise ValueError(f"{name} returned a tensor that does not keep gradients: build it from torch "
                         "operations on its inputs, without .detach(), .item() or torch.tensor(...).")
    if not torch.isfinite(value):
        raise FloatingPointError(f"{name} returned {value.item()}: check for a log of 0, a division by 0 "
                                 "or an overflow (use log σ, not σ, where you can).")
    return value


@dataclass
class Information:
    """The information term as the training step uses it:  λ_cat Σ CE + λ_cont Σ NLL = −λ L_I + const.

    `reads` decides what Q reads the codes from: None reads them from x = G(z, c) itself, as in
    the paper; `moved_copy.ReadsMoved` reads some or all of them from a moved copy T(x).
    `written`: the loss the optimizers minimize, written by hand with the homework's signature
        written(logits, c_cat, mean, log_sigma, c_cont, prior_entropy, lambda_cat, lambda_cont)
    (one categorical code; log σ from Q's clamped log-variance, so that it equals `info_loss` up
    to the entropies). The bounds logged are `info_loss`'s either way.
    """

    lambda_cat: float = 1.0
    lambda_cont: float = 0.1
    reads: Callable | None = None     # (D, x, Q(c | x)) -> the Q output to score
    written: Callable | None = None

    def __call__(self, D, x: torch.Tensor, q: QOutput, latent: LatentBatch) -> InfoTerms:
        if self.reads is not None:
            q = self.reads(D, x, q)
        terms = info_loss(q, latent, latent.spec, self.lambda_cat, self.lambda_cont)
        if self.written is not None:
            log_sigma = 0.5 * q.logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)         # σ = exp(½ log σ²)
            terms.loss = checked_loss(self.written(
                q.logits[0], latent.categorical[:, 0], q.mean, log_sigma, latent.continuous,
                latent.spec.continuous_entropies(), self.lambda_cat, self.lambda_cont),
                getattr(self.written, "__name__", "information_loss"))
        return terms
