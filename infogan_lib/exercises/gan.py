"""Checks for notebook 01 (the GAN game): the best discriminator, the JSD, G's loss from logits."""

from __future__ import annotations

import math

import numpy as np
import torch

from ..losses import generator_loss
from .verdict import exercise


def _densities(seed: int, n: int = 201):
    """Two random Gaussian mixtures on a grid: (x, dx, p, q), each integrating to 1."""
    rng = np.random.default_rng(seed)
    x = np.linspace(-5, 5, n)
    dx = x[1] - x[0]

    def mixture():
        means, sds, w = rng.uniform(-3, 3, 3), rng.uniform(0.3, 1.5, 3), rng.dirichlet(np.ones(3))
        p = sum(wi * np.exp(-0.5 * ((x - m) / s) ** 2) / s for wi, m, s in zip(w, means, sds))
        return p / (p.sum() * dx)
    return x, dx, mixture(), mixture()


def check_best_discriminator(best_discriminator) -> None:
    """D*(x) against a grid search of argmax_y  p_data log y + p_g log(1 − y), point by point."""
    y = np.linspace(1e-4, 1 - 1e-4, 9999)
    with exercise("best_discriminator", "matches the grid search of max_D V(D, G) at every point, "
                                        "for 5 pairs of densities") as ex:
        for seed in range(5):
            _, _, p_data, p_g = _densities(seed)
            searched = y[(p_data[:, None] * np.log(y) + p_g[:, None] * np.log(1 - y)).argmax(1)]
            got = ex.value(best_discriminator(p_data, p_g), "best_discriminator(p_data, p_g)")
            ex.expect(got.shape == p_data.shape,
                      f"best_discriminator should give one value per point of the grid, shape {p_data.shape}; "
                      f"yours has shape {got.shape}")
            ex.expect(np.all((got >= 0) & (got <= 1)), "D*(x) is a probability: it must lie in [0, 1]")
            flipped = np.abs(got - (1 - searched)).max() < 1e-3
            ex.expect(not flipped or np.abs(searched - 0.5).max() < 1e-3,
                      "your D* is 1 − the best one: D(x) is the probability that x is *real*, so it is "
                      "near 1 where p_data is large")
            ex.expect(np.abs(got - searched).max() < 1e-3,
                      f"at x where p_data = {p_data[np.abs(got - searched).argmax()]:.3f} and p_g = "
                      f"{p_g[np.abs(got - searched).argmax()]:.3f} the best D is "
                      f"{searched[np.abs(got - searched).argmax()]:.3f}, yours "
                      f"{got[np.abs(got - searched).argmax()]:.3f}: maximize a·log y + b·log(1 − y) over y")


def check_jsd(jsd) -> None:
    """JSD on grids: 0 for equal densities, ln 2 for disjoint ones, symmetric, and V(D*, G) = −log 4 + 2 JSD."""
    with exercise("jsd", "0 for equal densities, ln 2 for disjoint ones, symmetric, and "
                         "V(D*, G) = −log 4 + 2·JSD on 5 pairs") as ex:
        x, dx, p, q = _densities(0)
        ex.close(jsd(p, p, dx), 0.0, "the JSD of a density with itself must be 0", tol=1e-9)
        left = np.where(x < 0, 1.0, 0.0)
        left /= left.sum() * dx
        right = left[::-1].copy()
        value = ex.value(jsd(left, right, dx), "jsd(p, q, dx)")
        ex.expect(np.isfinite(value).all(),
                  "two densities that do not overlap gave a non-finite JSD: where p is 0, the term p·ln(p/m) "
                  "counts as 0 (0·ln 0 = 0): skip those points, e.g. with a mask p > 0")
        ex.close(value, math.log(2), "two densities that do not overlap have JSD = ln 2 ≈ 0.693: "
                                     "is it ½ KL(p ‖ m) + ½ KL(q ‖ m), with m = ½(p + q)?", tol=1e-6)
        for seed in range(5):
            x, dx, p, q = _densities(seed)
            ex.close(jsd(q, p, dx), ex.value(jsd(p, q, dx)),
                     "JSD(p ‖ q) must equal JSD(q ‖ p): each KL is taken against the mixture m, not the other density")
            d_star = p / (p + q)
            v_star = (p * np.log(d_star) + q * np.log(1 - d_star)).sum() * dx
            ex.close(jsd(p, q, dx), (v_star + math.log(4)) / 2,
                     "V(D*, G) should equal −log 4 + 2·JSD: is each KL a sum times dx (an integral)?", tol=1e-6)


def check_generator_loss(g_loss_from_logits) -> None:
    """−E[log D(G(z))] from logits: the library's value, finite and right for confident logits, its gradient."""
    with exercise("g_loss_from_logits", "equals −mean log σ(t) on ordinary logits, stays exact at ±120 and "
                                        "−1000, and its gradient is −(1 − σ(t)) / n") as ex:
        ex.expect(g_loss_from_logits is not generator_loss
                  and "generator_loss" not in getattr(getattr(g_loss_from_logits, "__code__", None), "co_names", ()),
                  "write it yourself with F.softplus: the library's generator_loss is what this check compares with")
        t = torch.linspace(-6, 6, 25, dtype=torch.float64)
        want = generator_loss(t).item()
        got = ex.value(g_loss_from_logits(t), "g_loss_from_logits(t)")
        ex.expect(not (got.size == 1 and abs(float(got.ravel()[0]) - 25 * want) < 1e-6),
                  "your loss is n times too big: it is a mean over the batch (.mean()), not a sum")
        ex.close(got, want,
                 "on logits between −6 and 6 the loss should be −mean log σ(t), the non-saturating "
                 "−E[log D(G(z))]; not log(1 − σ(t)), the minimax one", tol=1e-6)
        for confident, dtype in ((-120.0, torch.float32), (-1000.0, torch.float64)):   # σ(t) rounds to 0 in each
            value = ex.value(g_loss_from_logits(torch.tensor([confident], dtype=dtype)), "g_loss_from_logits(t)")
            ex.expect(np.isfinite(value).all(),
                      f"at logit {confident:g} ({dtype}) your loss is not finite: σ(t) rounds to 0 and log(0) = −inf. "
                      "Use log σ(t) = −softplus(−t) (torch.nn.functional.softplus), exact for every t")
            ex.close(value, -confident, f"at logit {confident:g}, −log σ(t) = softplus({-confident:g}) = {-confident:g}: "
                                        "exact for every logit with softplus", tol=1e-6)
        ex.close(g_loss_from_logits(torch.tensor([120.0])), 0.0, "at logit +120, −log σ(t) is 0 (D is sure it is real)",
                 tol=1e-9)
        t = torch.tensor([-50.0, -2.0, 0.5, 3.0], dtype=torch.float64, requires_grad=True)
        loss = g_loss_from_logits(t)
        ex.expect(torch.is_tensor(loss) and loss.requires_grad and loss.grad_fn is not None,
                  "return a torch tensor computed from the logits (no .item(), .detach() or torch.tensor(…) "
                  "around it), so that G can be trained through it")
        grad, = torch.autograd.grad(loss.sum(), t, allow_unused=True)
        ex.expect(grad is not None, "your loss is not computed from the logits it was given: G could not be trained through it")
        ex.close(grad, (-(1 - torch.sigmoid(t)) / 4).detach(),
                 "the gradient with respect to each logit should be −(1 − σ(t)) / n: a mean over the batch",
                 tol=1e-6)
