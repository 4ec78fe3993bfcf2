"""Checks for notebook 02 (the bound): KL, what one batch estimates, a Gaussian Q's log-density."""

from __future__ import annotations

import math

import numpy as np
import torch

from .verdict import exercise


def check_kl(kl) -> None:
    """KL(p ‖ q): a hand-computed value, zeros in p, KL(p ‖ p) = 0 and KL ≥ 0 on random pairs."""
    rng = np.random.default_rng(0)
    with exercise("kl", "a hand-computed value, 0·ln 0 = 0, KL(p ‖ p) = 0 and KL ≥ 0 on 500 random pairs") as ex:
        expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
        ex.close(kl([0.5, 0.5], [0.9, 0.1]), expected,
                 f"KL([.5, .5] ‖ [.9, .1]) should be {expected:.4f}: is it Σ p·ln(p/q), with p first?")
        ex.close(kl([0.9, 0.1], [0.5, 0.5]), 0.9 * math.log(1.8) + 0.1 * math.log(0.2),
                 "KL([.9, .1] ‖ [.5, .5]) should be 0.3681: is it Σ p·ln(p/q), with p first?")
        ex.close(kl([1.0, 0.0], [0.5, 0.5]), math.log(2),
                 "KL([1, 0] ‖ [.5, .5]) should be ln 2: a term with p_i = 0 contributes 0 (0·ln 0 = 0), "
                 "so skip those entries, e.g. with a mask p > 0")
        for _ in range(500):
            k = int(rng.integers(2, 10))
            p, q = rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))
            ex.close(kl(p, p), 0.0, "KL(p ‖ p) must be 0", tol=1e-9)
            got = ex.value(kl(p, q))
            ex.expect(got.size == 1, f"kl should return one number, yours has shape {got.shape}: sum over the entries")
            want = float((p * np.log(p / q)).sum())
            ex.expect(abs(float(got.ravel()[0]) + want) > 1e-6,
                      "your KL is negative: it can never be (Gibbs' inequality); check the sign, ln(p / q) not ln(q / p)")
            ex.close(got, want,
                     f"on a random pair of distributions over K = {k} values: Σ p_i ln(p_i / q_i) over every "
                     "entry i (not only the first two)", tol=1e-6)


def check_batch_bound(batch_bound) -> None:
    """The batch estimate of L_I: exact on a batch with known terms, and near the exact bound on a big one."""
    rng = np.random.default_rng(1)
    with exercise("batch_bound", "exact on a small batch, and within 0.02 nats of the exact bound "
                                 "on 100,000 samples of 3 random joints") as ex:
        q = np.array([[0.5, 0.25], [0.5, 0.75]])                    # q[c, x] = Q(c | x)
        c, x = np.array([0, 1, 1]), np.array([0, 1, 0])
        want = (math.log(0.5) + math.log(0.75) + math.log(0.5)) / 3 + math.log(2)
        got = ex.value(batch_bound(q, c, x, math.log(2)), "batch_bound(q, c, x, h_c)")
        ex.expect(got.size == 1, f"batch_bound should return one number, yours has shape {got.shape}: "
                                 "the mean of ln q[c, x] over the batch (.mean()), plus H(c)")
        got = float(got.ravel()[0])
        ex.expect(abs(got - (want - math.log(2))) > 1e-9,
                  "you left out H(c): L_I = mean ln Q(c | x) + H(c)")
        ex.expect(abs(got - ((math.log(0.5) + math.log(0.75) + math.log(0.25)) / 3 + math.log(2))) > 1e-9,
                  "q is indexed q[c, x] (rows are codes, columns are images): you read q[x, c]")
        ex.close(got, want, "for q = [[.5, .25], [.5, .75]], c = [0, 1, 1], x = [0, 1, 0] and H(c) = ln 2 "
                            f"the estimate is mean ln q[c, x] + H(c) = {want:.4f}")
        for _ in range(3):
            joint = rng.dirichlet(np.full(20, 0.5)).reshape(4, 5)
            qq = rng.dirichlet(np.ones(4), size=5).T
            pc = joint.sum(1)
            h_c = float(-(pc * np.log(pc)).sum())
            exact = float((joint * np.log(qq)).sum()) + h_c
            flat = rng.choice(20, size=100_000, p=joint.ravel())
            ex.close(batch_bound(qq, flat // 5, flat % 5, h_c), exact,
                     "on 100,000 samples the estimate should be within 0.02 nats of the exact "
                     "Σ P(c, x) ln Q(c | x) + H(c): a mean over the batch, not a sum", tol=0.02)


def check_gaussian_log_density(gaussian_log_density) -> None:
    """log N(c; μ, σ²) with σ² = exp(logvar), elementwise, against torch.distributions.Normal."""
    g = torch.Generator().manual_seed(0)
    with exercise("gaussian_log_density", "equals torch.distributions.Normal's log_prob on 1,000 random "
                                          "(c, μ, log σ²), elementwise, with the right gradients") as ex:
        zero = torch.zeros(1, dtype=torch.float64)
        ex.close(gaussian_log_density(zero, zero, zero), -0.5 * math.log(2 * math.pi),
                 "at c = μ with log σ² = 0 the density is 1/√(2π): its log is −½ ln 2π ≈ −0.919")
        c, mean = torch.randn(1000, generator=g, dtype=torch.float64), torch.randn(1000, generator=g, dtype=torch.float64)
        logvar = torch.empty(1000, dtype=torch.float64).uniform_(-9, 5, generator=g).requires_grad_()  # past gaussian_nll's clamp
        want = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(c)
        got = gaussian_log_density(c, mean, logvar)
        ex.expect(torch.is_tensor(got), "return a torch tensor computed from the inputs, so that Q can be trained through it")
        ex.expect(got.shape == want.shape, f"one value per code, the shape of the inputs {tuple(want.shape)}; "
                                           f"yours {tuple(got.shape)}")
        wrong_sigma = torch.distributions.Normal(mean, torch.exp(logvar)).log_prob(c)
        ex.expect(not torch.allclose(got.detach().double(), wrong_sigma.detach(), atol=1e-9),
                  "you used exp(logvar) as σ: logvar is log σ², so σ² = exp(logvar) and σ = exp(½ logvar)")
        ex.close(got, want.detach(), "log N(c; μ, σ²) = −½ ln 2π − ½ log σ² − (c − μ)² / (2σ²), "
                                     "elementwise (one value per code), for every log σ² (no clamping)", tol=1e-5)
        ex.expect(got.requires_grad, "return a torch tensor computed from the inputs, so that Q can be trained through it")
        mine, = torch.autograd.grad(got.sum(), logvar, allow_unused=True)
        ref, = torch.autograd.grad(want.sum(), logvar)
        ex.expect(mine is not None and torch.allclose(mine.double(), ref, atol=1e-5, rtol=1e-4),
                  "the value is right but its gradient with respect to logvar is not: is part of it detached?")
