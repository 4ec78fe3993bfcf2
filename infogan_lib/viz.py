"""Pictures: the course's three figure kinds, loss curves, parameter histograms, confusion matrix.

Figure kinds of the original course (section 四):
  (a) random noise + random category + fixed continuous codes       `figure_latents(spec, "a")`
  (b) random noise + each category in turn (one row per category)   `figure_latents(spec, "b")`
  (c) fixed noise + one row per category + continuous code j swept   `figure_latents(spec, "c", j)`
      across −2…2 (past U(−1, 1), as in the paper).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .data import to_unit_range
from .latent import LatentBatch, LatentSpec

KINDS = ("a", "b", "c")
KIND_TITLES = {
    "a": "random noise, random category, fixed continuous codes",
    "b": "random noise, one row per category",
    "c": "fixed noise, one row per category, continuous code c{j} swept {lo:g}…{hi:g}",
}


def figure_latents(spec: LatentSpec, kind: str, continuous_code: int = 0, seed: int = 0,
                   steps: int = 10, value_range=(-2.0, 2.0)) -> tuple[LatentBatch, int]:
    """The latents of one figure kind and the number of images per row."""
    k = spec.categorical[0] if spec.categorical else steps
    if kind == "a":
        return spec.grid_random(k * steps, seed=seed), steps
    if kind == "b":
        return spec.grid_categories(steps, seed=seed), steps
    if kind == "c":
        return spec.grid_sweep(continuous_code, steps, value_range, seed=seed), steps
    raise ValueError(f"unknown figure kind {kind!r}; choose one of {KINDS}.")


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Images (B, C, H, W) side by side, `nrow` to a row, with `padding` pixels of `pad_value`
    between and around them: one (3, H', W') image (grey images repeated on 3 channels), laid out
    as torchvision's make_grid lays it out."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    b, c, h, w = images.shape
    cols = min(nrow, b)
    rows = math.ceil(b / cols)
    grid = images.new_full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for k in range(b):
        top, left = (k // cols) * (h + padding) + padding, (k % cols) * (w + padding) + padding
        grid[:, top:top + h, left:left + w] = images[k]
    return grid


def save_png(image: torch.Tensor, path: str | Path) -> None:
    """A (3, H, W) image in [0, 1] as an RGB PNG file (rounded as torchvision's save_image does)."""
    from PIL import Image

    pixels = image.detach().mul(255).add(0.5).clamp(0, 255).permute(1, 2, 0).to("cpu", torch.uint8)
    Image.fromarray(pixels.numpy()).save(path)


@torch.no_grad()
def generate(G: torch.nn.Module, latent: LatentBatch, batch: int = 500) -> torch.Tensor:
    """Images in [0, 1], (B, C, 28, 28), with G in eval mode (running batch-norm statistics)."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    try:
        x = latent.input().to(device)
        out = torch.cat([G(x[i:i + batch]) for i in range(0, len(x), batch)])
    finally:
        G.train(was_training)
    return to_unit_range(out).cpu()


def figure_grid(G: torch.nn.Module, kind: str, continuous_code: int = 0, seed: int = 0,
                steps: int = 10, value_range=(-2.0, 2.0)) -> torch.Tensor:
    """One figure of the given kind as an image grid (3, H, W) in [0, 1]."""
    latent, nrow = figure_latents(G.spec, kind, continuous_code, seed, steps, value_range)
    return image_grid(generate(G, latent), nrow=nrow)


def save_figures(G: torch.nn.Module, folder: str | Path, tag: str, seed: int = 0) -> list[Path]:
    """Save every figure kind as PNG: `{tag}_a.png`, `{tag}_b.png`, `{tag}_c1.png`, …"""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in ("a", "b"):
        paths.append(folder / f"{tag}_{kind}.png")
        save_png(figure_grid(G, kind, seed=seed), paths[-1])
    for j in range(G.spec.n_continuous):
        paths.append(folder / f"{tag}_c{j + 1}.png")
        save_png(figure_grid(G, "c", j, seed=seed), paths[-1])
    return paths


def show_figure(G: torch.nn.Module, kind: str, continuous_code: int = 0, seed: int = 0,
                ax=None, title: str | None = None, **kw):
    """Draw one figure kind with matplotlib; returns the axes."""
    import matplotlib.pyplot as plt

    grid = figure_grid(G, kind, continuous_code, seed, **kw)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(grid.permute(1, 2, 0).numpy())
    ax.set_axis_off()
    if title is None:
        lo, hi = kw.get("value_range", (-2.0, 2.0))
        title = KIND_TITLES[kind].format(j=continuous_code + 1, lo=lo, hi=hi)
    ax.set_title(title, fontsize=9)
    return ax


def smooth(values, window: int = 50):
    """Moving average, for noisy per-step losses."""
    t = torch.as_tensor(values, dtype=torch.float64)
    if len(t) < 2 or window <= 1:
        return t.numpy()
    window = min(window, len(t))
    kernel = torch.ones(window, dtype=torch.float64) / window
    padded = torch.cat([t[:1].repeat(window - 1), t])
    return torch.nn.functional.conv1d(padded[None, None], kernel[None, None])[0, 0].numpy()


def plot_losses(history: dict, spec: LatentSpec | None = None, window: int = 50, axes=None):
    """Loss curves of D, G and Q, and L_I against its ceiling H(c) (= ln 10 for one 10-way code).

    `history` holds one value per step (a run's history), or per recorded point with the matching
    steps in ``history["step"]`` (the shipped histories, `infogan_lib.weights.histories`).
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    steps = history.get("step") or torch.arange(1, len(history["d_loss"]) + 1).tolist()
    for key, label in (("d_loss", "D loss"), ("g_loss", "G loss"), ("q_loss", "Q loss (λ-weighted)")):
        axes[0].plot(steps, smooth(history[key], window), label=label)
    axes[0].set_xlabel("step")
    axes[0].set_title("losses (moving average)")
    axes[0].legend()
    axes[1].plot(steps, smooth(history["info_cat"], window), label="categorical $L_I$")
    if spec is not None:
        axes[1].axhline(spec.entropy(), ls="--", c="k", label=f"H(c) = {spec.entropy():.3f}")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("nats")
    axes[1].set_title("$L_I$ approaches H(c) when Q recovers c")
    axes[1].legend()
    return axes


def plot_histograms(module: torch.nn.Module, max_layers: int = 8, bins: int = 60):
    """Histogram of each weight tensor: spot dead layers or exploding weights at a glance."""
    import matplotlib.pyplot as plt

    params = [(n, p) for n, p in module.named_parameters() if p.dim() > 1][:max_layers]
    cols = min(4, len(params))
    rows = (len(params) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, (name, p) in zip(axes.flat, params):
        ax.hist(p.detach().float().flatten().cpu().numpy(), bins=bins)
        ax.set_title(name, fontsize=8)
    for ax in axes.flat[len(params):]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_confusion(matrix, class_names=None, ax=None, title="Q's category vs true label"):
    """A confusion matrix (rows: true labels, columns: Q's categories after Hungarian matching)."""
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.asarray(matrix)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, int(v), ha="center", va="center", fontsize=6,
                    color="white" if v > m.max() / 2 else "black")
    names = class_names or [str(i) for i in range(m.shape[0])]
    ax.set_xticks(range(m.shape[1]), names[: m.shape[1]], rotation=45, fontsize=7)
    ax.set_yticks(range(m.shape[0]), names, fontsize=7)
    ax.set_xlabel("Q's category (matched)")
    ax.set_ylabel("true label")
    ax.set_title(title, fontsize=9)
    return ax
