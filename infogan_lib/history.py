"""The per-step record of a run: one list per logged quantity, stored in the checkpoint as tensors.

Every step appends the training step's log line (`step.infogan_step`): the GAN terms d_loss and
g_loss without any extra, q_loss (the information term λ_cat Σ CE + λ_cont Σ NLL of the D step),
the categorical bound info_cat, the continuous bounds info_cont (one list per step), D's mean
outputs d_real and d_fake, and one value per extra penalty under that penalty's name.
"""

from __future__ import annotations

import torch

SCALARS = ("time", "d_loss", "g_loss", "q_loss", "info_cat", "d_real", "d_fake")


def empty(penalties=()) -> dict:
    return {k: [] for k in SCALARS + ("info_cont",) + tuple(p.name for p in penalties)}


def append(history: dict, seconds: float, line: dict) -> None:
    history["time"].append(seconds)
    for k in history:
        if k != "time":
            history[k].append(line[k])


def to_tensors(history: dict) -> dict:
    out = {k: torch.tensor(v, dtype=torch.float32) for k, v in history.items() if k != "info_cont"}
    out["info_cont"] = torch.tensor(history["info_cont"], dtype=torch.float32).reshape(
        len(history["info_cont"]), -1)
    return out


def to_lists(history: dict) -> dict:
    return {k: v.tolist() for k, v in history.items()}


def resumed(saved: dict, fresh: dict) -> dict:
    """A saved history with the keys of `fresh` (a run's keys); a key it lacks (an extra added
    since it was written) is NaN for the steps before."""
    return {k: saved.get(k, [float("nan")] * len(saved["time"])) for k in fresh}
