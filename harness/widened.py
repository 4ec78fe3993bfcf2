"""A widened model for the extras' tests (tests/test_extras.py): the shipped 2-code model with a third
code that copies c2. It builds what homework part 2 asks the student to build, so the student bundle
leaves it out (and every file that imports it)."""

from __future__ import annotations

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
