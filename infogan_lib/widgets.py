"""Interactive viewers (ipywidgets 8): turn the codes into knobs.

`TraversalViewer(G)` shows what G draws for one latent: a slider per continuous code (built from the
spec, so a 3-code model gets 3 sliders; range past the prior, −2…2 by default), a category
selector, a noise seed with a "new noise" button, and a grid mode (one row per category × one code
swept across columns: the original course's figure (c)). Give it several generators to compare them
side by side on the same latent (two points of training, or a 2-code and a 3-code model).

`ClassifierViewer(D, images)` shows Q reading a real image: its category probabilities and its
continuous-code estimates, and Q's confusion matrix after Hungarian matching.

Pictures are PNG bytes in `ipywidgets.Image` (not matplotlib figures redrawn on every change, which
can come out blank after rapid changes). `TraversalViewer.png()` returns exactly the bytes shown, so
tests can compare what the browser displays with what the kernel computed; the sliders, pictures and
status line carry CSS classes (`infogan-c1`, `infogan-image-0`, `infogan-status`) to find them on a
page (tests/test_browser.py).
"""

from __future__ import annotations

import io

import numpy as np
import torch

from .latent import LatentBatch, LatentSpec
from .runtime import torch_threads
from .viz import generate, image_grid


def png_bytes(image: torch.Tensor, scale: int = 1) -> bytes:
    """A (C, H, W) or (H, W) image in [0, 1] as PNG bytes, optionally enlarged `scale`× (nearest).

    A 3-channel image whose channels are equal (a grey grid from image_grid) is written as greyscale:
    the same picture, a third of the work.
    """
    from PIL import Image

    x = image.detach().float().cpu()
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.shape[0] == 3 and torch.equal(x[0], x[1]) and torch.equal(x[0], x[2]):
        x = x[:1]
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    if scale > 1:
        arr = arr.repeat(scale, axis=1).repeat(scale, axis=2)
    arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _noise(spec: LatentSpec, seed: int, n: int = 1) -> torch.Tensor:
    return torch.randn(n, spec.noise_dim, generator=torch.Generator().manual_seed(int(seed)))


class TraversalViewer:
    """Sliders for the continuous codes, a category, a noise seed, single image or grid mode."""

    def __init__(self, *generators, value_range: tuple[float, float] = (-2.0, 2.0), seed: int = 0,
                 titles: list[str] | None = None, scale: int = 4, grid_steps: int = 9,
                 threads: int | None = 1):
        import ipywidgets as w

        if not generators:
            raise ValueError("TraversalViewer needs at least one generator")
        self.generators = [G.eval() for G in generators]
        self.specs = [G.spec for G in generators]
        self.scale, self.grid_steps, self.value_range = scale, grid_steps, tuple(value_range)
        # One picture (or 90) is too small a job to split across cores; on one thread the answer
        # stays quick when the browser or a training run keeps the other cores busy.
        self.threads = threads
        n_codes = max(s.n_continuous for s in self.specs)
        k_ways = self.specs[0].categorical[0]
        if any(s.categorical[0] != k_ways or s.noise_dim != self.specs[0].noise_dim
               for s in self.specs):
            raise ValueError("generators compared side by side must share the noise size and the "
                             "categorical code; they may differ in the number of continuous codes")
        lo, hi = value_range
        self.sliders = [w.FloatSlider(value=0.0, min=lo, max=hi, step=0.05, description=f"c{j + 1}",
                                      readout_format=".2f", continuous_update=True)
                        for j in range(n_codes)]
        self.category = w.Dropdown(options=list(range(k_ways)), value=0, description="category")
        self.seed = w.IntText(value=seed, description="noise seed")
        self.new_noise = w.Button(description="new noise", icon="refresh")
        self.mode = w.ToggleButtons(options=["single", "grid"], value="single", description="mode")
        self.grid_code = w.Dropdown(options=[(f"sweep c{j + 1}", j) for j in range(n_codes)],
                                    value=0, description="grid")
        self.images = [w.Image(format="png") for _ in self.generators]
        titles = titles or [f"model {i + 1}" for i in range(len(self.generators))]
        panels = [w.VBox([w.HTML(f"<b>{t}</b>"), img]) for t, img in zip(titles, self.images)]
        self.status = w.HTML()
        # stable CSS classes, so that a page (or a browser test) can find each control and picture
        for j, slider in enumerate(self.sliders):
            slider.add_class(f"infogan-c{j + 1}")
        for i, image in enumerate(self.images):
            image.add_class(f"infogan-image-{i}")
        self.status.add_class("infogan-status")
        for control in (*self.sliders, self.category, self.seed, self.mode, self.grid_code):
            control.observe(lambda _change: self.update(), names="value")
        self.new_noise.on_click(lambda _b: setattr(self.seed, "value", self.seed.value + 1))
        self.widget = w.VBox([
            w.HBox([self.mode, self.grid_code]),
            w.HBox([self.category, self.seed, self.new_noise]),
            *self.sliders,
            w.HBox(panels),
            self.status,
        ])
        self.update()

    # ---- what is drawn -------------------------------------------------------------------------
    def code_values(self) -> list[float]:
        return [float(s.value) for s in self.sliders]

    def latent(self, index: int = 0) -> LatentBatch:
        """The latent(s) drawn for generator `index` in the current mode."""
        spec = self.specs[index]
        if self.mode.value == "single":
            cont = torch.tensor([self.code_values()[:spec.n_continuous]], dtype=torch.float32)
            return LatentBatch(spec, _noise(spec, self.seed.value),
                               torch.tensor([[int(self.category.value)]]), cont)
        j = int(self.grid_code.value)
        k_ways, steps = spec.categorical[0], self.grid_steps
        n = k_ways * steps
        cont = torch.tensor([self.code_values()[:spec.n_continuous]] * n, dtype=torch.float32)
        if j < spec.n_continuous:
            cont[:, j] = torch.linspace(*self.value_range, steps).repeat(k_ways)
        return LatentBatch(spec, _noise(spec, self.seed.value).expand(n, -1).clone(),
                           torch.arange(k_ways).repeat_interleave(steps)[:, None], cont)

    def picture(self, index: int = 0) -> torch.Tensor:
        """The image (C, H, W) in [0, 1] that generator `index` draws now."""
        x = generate(self.generators[index], self.latent(index))
        if self.mode.value == "single":
            return x[0]
        return image_grid(x, nrow=self.grid_steps)

    def png(self, index: int = 0) -> bytes:
        """Exactly the PNG bytes shown for generator `index`."""
        with torch_threads(self.threads):
            return png_bytes(self.picture(index), self.scale if self.mode.value == "single" else 2)

    def update(self) -> None:
        for i, image in enumerate(self.images):
            image.value = self.png(i)
        codes = ", ".join(f"c{j + 1} = {v:+.2f}" for j, v in enumerate(self.code_values()))
        self.status.value = (f"category {self.category.value}, noise seed {self.seed.value}, {codes}"
                             if self.mode.value == "single" else
                             f"rows: categories; columns: c{self.grid_code.value + 1} from "
                             f"{self.value_range[0]:g} to {self.value_range[1]:g}; noise seed "
                             f"{self.seed.value}")

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


class ClassifierViewer:
    """Q as a classifier of real images: pick an image, see Q's probabilities and code estimates."""

    def __init__(self, D, images, class_names=None, scale: int = 4):
        import ipywidgets as w

        from .metrics import q_accuracy

        self.D = D.eval()
        self.images = images
        self.scale = scale
        self.score = q_accuracy(D, images.images, images.labels)
        self.class_names = list(class_names or getattr(images, "classes", None)
                                or [str(i) for i in range(10)])
        self.index = w.IntSlider(value=0, min=0, max=len(images) - 1, description="test image",
                                 continuous_update=False)
        self.random = w.Button(description="random image", icon="random")
        self.image = w.Image(format="png")
        self.bars = w.Image(format="png")
        self.text = w.HTML()
        self._rng = np.random.default_rng(0)
        self.index.observe(lambda _c: self.update(), names="value")
        self.random.on_click(lambda _b: setattr(self.index, "value",
                                                int(self._rng.integers(len(self.images)))))
        self.widget = w.VBox([w.HBox([self.index, self.random]),
                              w.HBox([self.image, self.bars]), self.text])
        self.update()

    def read(self, i: int):
        """Q's probabilities over its categories (K,) and continuous estimates (k,) for image i."""
        from .metrics import q_predict

        _, probs, means = q_predict(self.D, self.images.images[i:i + 1])
        return probs[0], means[0]

    def update(self) -> None:
        import matplotlib
        from matplotlib.figure import Figure

        i = int(self.index.value)
        probs, means = self.read(i)
        self.image.value = png_bytes(self.images.images[i].float() / 255.0, self.scale)
        # Q's categories, named by the label each was matched to (Hungarian matching)
        names = [self.class_names[self.score.mapping[k]] for k in range(len(probs))]
        fig = Figure(figsize=(4, 2.4), dpi=80)
        ax = fig.subplots()
        ax.bar(range(len(probs)), probs.numpy(), color=matplotlib.colormaps["tab10"](range(10)))
        ax.set_xticks(range(len(probs)), names, rotation=45, fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title("Q(c | x): category probabilities", fontsize=9)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        self.bars.value = buf.getvalue()
        label = self.class_names[int(self.images.labels[i])]
        guess = names[int(probs.argmax())]
        codes = ", ".join(f"c{j + 1} ≈ {float(v):+.2f}" for j, v in enumerate(means))
        self.text.value = (f"true label <b>{label}</b>; Q's category → <b>{guess}</b> "
                           f"({float(probs.max()):.0%}); continuous estimates {codes}. "
                           f"Q's accuracy on all {len(self.images):,} images: "
                           f"{self.score.accuracy:.1%}")

    def confusion_figure(self, ax=None):
        from .viz import plot_confusion
        return plot_confusion(self.score.confusion, self.class_names, ax=ax,
                              title=f"Q's categories after Hungarian matching "
                                    f"(accuracy {self.score.accuracy:.3f})")

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
