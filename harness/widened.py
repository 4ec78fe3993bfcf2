"""Widened models for the extras' tests (tests/test_extras.py): the shipped 2-code model with a third
code that copies c2, one that is random and untrained, one that took c2's factor. They build what
homework part 2 asks the student to build, so the student bundle leaves them out (and every file that
imports them)."""

from __future__ import annotations

import math

import torch

from infogan_lib import Discriminator, Generator


def copy_of_c2(G2, D2):
    """The shipped 2-code model with a third code whose G column copies c2's (a code that takes over
    c2's factor), and Q's head widened by a zero row."""

    spec3 = G2.spec.with_continuous("gaussian")
    g = {k: v.float().clone() for k, v in G2.state_dict().items()}
    g["fc.0.weight"] = torch.cat([g["fc.0.weight"], g["fc.0.weight"][:, -1:]], dim=1)
    d = {k: v.float().clone() for k, v in D2.state_dict().items()}
    for head in ("q_mean", "q_logvar"):
        d[f"{head}.weight"] = torch.cat([d[f"{head}.weight"], torch.zeros(1, d[f"{head}.weight"].shape[1])])
        d[f"{head}.bias"] = torch.cat([d[f"{head}.bias"], torch.zeros(1)])
    G3, D3 = Generator(spec3, G2.config), Discriminator(spec3, D2.config)
    G3.load_state_dict(g)
    D3.load_state_dict(d)
    return G3.eval(), D3


def untrained(G2, scale: float, seed: int):
    """The shipped 2-code G widened by a Gaussian third code and not trained: the new input column
    random, at `scale` times the spread of the old codes' columns (a model the graded check must
    refuse, whatever the scale)."""
    spec3 = G2.spec.with_continuous("gaussian")
    g = {k: v.float().clone() for k, v in G2.state_dict().items()}
    w = g["fc.0.weight"]
    column = torch.randn(w.shape[0], 1, generator=torch.Generator().manual_seed(seed))
    g["fc.0.weight"] = torch.cat([w, scale * w[:, -G2.spec.n_continuous:].std() * column], dim=1)
    G3 = Generator(spec3, G2.config)
    G3.load_state_dict(g)
    return G3.eval()


def untrained_with_q(G2, D2, scale: float, seed: int):
    """`untrained(G2, scale, seed)` with D2 widened by a Q row that knows nothing of the new code (it
    predicts the prior, N(0, 1), for every image): the pair a submission of an untrained model holds."""
    G3 = untrained(G2, scale, seed)
    d = {k: v.float().clone() for k, v in D2.state_dict().items()}
    for head in ("q_mean", "q_logvar"):
        d[f"{head}.weight"] = torch.cat([d[f"{head}.weight"], torch.zeros(1, d[f"{head}.weight"].shape[1])])
        d[f"{head}.bias"] = torch.cat([d[f"{head}.bias"], torch.zeros(1)])
    D3 = Discriminator(G3.spec, D2.config)
    D3.load_state_dict(d)
    return G3, D3.eval()


def c2_moved_to_c3(G2, D2):
    """A 3-code model made by hand, not trained: c2's G column moved to the new code (halved: c3 ~ N(0, 1)
    spans about ±2 where c2 spanned ±1) and c2's column zeroed; Q reads c3 as twice its old c2 estimate
    (mean ×2, variance ×4). c3 then has a factor and Q reads it back, but it is c2's, taken from c2."""
    spec3 = G2.spec.with_continuous("gaussian")
    g = {k: v.float().clone() for k, v in G2.state_dict().items()}
    w = g["fc.0.weight"]
    g["fc.0.weight"] = torch.cat([w, w[:, -1:] / 2], dim=1)
    g["fc.0.weight"][:, -2] = 0.0
    d = {k: v.float().clone() for k, v in D2.state_dict().items()}
    for head, scale, shift in (("q_mean", 2.0, 0.0), ("q_logvar", 1.0, math.log(4.0))):
        d[f"{head}.weight"] = torch.cat([d[f"{head}.weight"], scale * d[f"{head}.weight"][-1:]])
        d[f"{head}.bias"] = torch.cat([d[f"{head}.bias"], scale * d[f"{head}.bias"][-1:] + shift])
    G3, D3 = Generator(spec3, G2.config), Discriminator(spec3, D2.config)
    G3.load_state_dict(g)
    D3.load_state_dict(d)
    return G3.eval(), D3.eval()
