"""Widened models for the extras' tests (tests/test_extras.py): the shipped 2-code model with a third
code that copies c2, one that is random and untrained, one that took c2's factor. They build what
homework part 2 asks the student to build, so the student bundle leaves them out (and every file that
imports them)."""

from __future__ import annotations

import math

import torch

from infogan_lib import Discriminator, Generator


def _generator(G2, new_column):
    """G2 with a Gaussian third code whose input column is `new_column(old_weight)` (fc, 1); the old
    weight may be changed in place."""
    g = {k: v.float().clone() for k, v in G2.state_dict().items()}
    g["fc.0.weight"] = torch.cat([g["fc.0.weight"], new_column(g["fc.0.weight"])], dim=1)
    G3 = Generator(G2.spec.with_continuous("gaussian"), G2.config)
    G3.load_state_dict(g)
    return G3


def _discriminator(D2, new_row):
    """D2 with a Gaussian third code whose Q rows are `new_row(head, weight, bias)` -> (weight (1, h),
    bias (1,)) for q_mean and q_logvar."""
    d = {k: v.float().clone() for k, v in D2.state_dict().items()}
    for head in ("q_mean", "q_logvar"):
        weight, bias = new_row(head, d[f"{head}.weight"], d[f"{head}.bias"])
        d[f"{head}.weight"] = torch.cat([d[f"{head}.weight"], weight])
        d[f"{head}.bias"] = torch.cat([d[f"{head}.bias"], bias])
    D3 = Discriminator(D2.spec.with_continuous("gaussian"), D2.config)
    D3.load_state_dict(d)
    return D3


def _knows_nothing(head, weight, bias):
    """A Q row that predicts the prior N(0, 1) for every image."""
    return torch.zeros(1, weight.shape[1]), torch.zeros(1)


def copy_of_c2(G2, D2):
    """The shipped 2-code model with a third code whose G column copies c2's (a code that takes over
    c2's factor), and Q's head widened by a zero row."""
    return _generator(G2, lambda w: w[:, -1:].clone()).eval(), _discriminator(D2, _knows_nothing)


def untrained(G2, scale: float, seed: int):
    """The shipped 2-code G widened by a Gaussian third code and not trained: the new input column
    random, at `scale` times the spread of the old codes' columns (a model the graded check must
    refuse, whatever the scale)."""
    def column(w):
        noise = torch.randn(w.shape[0], 1, generator=torch.Generator().manual_seed(seed))
        return scale * w[:, -G2.spec.n_continuous:].std() * noise
    return _generator(G2, column).eval()


def untrained_with_q(G2, D2, scale: float, seed: int):
    """`untrained(G2, scale, seed)` with D2 widened by a Q row that knows nothing of the new code (it
    predicts the prior, N(0, 1), for every image): the pair a submission of an untrained model holds."""
    return untrained(G2, scale, seed), _discriminator(D2, _knows_nothing).eval()


def c2_moved_to_c3(G2, D2):
    """A 3-code model made by hand, not trained: c2's G column moved to the new code (halved: c3 ~ N(0, 1)
    spans about ±2 where c2 spanned ±1) and c2's column zeroed; Q reads c3 as twice its old c2 estimate
    (mean ×2, variance ×4). c3 then has a factor and Q reads it back, but it is c2's, taken from c2."""
    def column(w):
        moved = w[:, -1:] / 2
        w[:, -1] = 0.0
        return moved

    def row(head, weight, bias):
        scale, shift = (2.0, 0.0) if head == "q_mean" else (1.0, math.log(4.0))
        return scale * weight[-1:], scale * bias[-1:] + shift
    return _generator(G2, column).eval(), _discriminator(D2, row).eval()
