"""Interactive viewers (ipywidgets 8): turn the codes into knobs.

`TraversalViewer(G)` shows what G draws for one latent: a slider per continuous code (built from the
spec, so a 3-code model gets 3 sliders; range past the prior, −2…2 by default), a category
selector, a noise seed with a "new noise" button, and a grid mode (one row per category × one code
swept across columns: the original course's figure (c)). Give it several generators to compare them
side by side on the same latent (two points of training, or a 2-code and a 3-code model). Each
category is named by what it draws, as read by the kit's classifier (`category_names.py`;
`dataset=` picks the classifier and its class names, None leaves the categories unnamed).

`ClassifierViewer(D, images)` shows Q reading a real image: its category probabilities in label
order (each category matched to a label) and its continuous-code estimates, and Q's confusion
matrix after Hungarian matching.

On screen a single picture is `PICTURE_PX` CSS px square, a grid `GRID_SCALE` px per image pixel;
the browser scales them without smoothing (`image-rendering: pixelated`, from a <style> inside the
viewer), so pixels stay sharp on any screen. Pictures are PNG bytes in `ipywidgets.Image` (not
matplotlib figures redrawn on every change, which can come out blank after rapid changes).
`TraversalViewer.png()` returns exactly the bytes shown, so tests can compare what the browser
displays with what the kernel computed; sliders, pictures and status lines carry CSS classes
(`infogan-c1`, `infogan-image-0`, `infogan-status`, …) to find them on a page (tests/test_browser.py).
"""

from __future__ import annotations

import html
import io

import numpy as np
import torch

from .category_names import category_names
from .latent import LatentBatch, LatentSpec
from .runtime import torch_threads
from .viewer_parts import (GRID_PITCH, GRID_SCALE, LABEL_PX, PICTURE_PX, SLIDER_PX, panel,
                           picture_widget, png_bytes, px, title_html, title_widget, viewer_box)
from .viz import generate, image_grid

__all__ = ["TraversalViewer", "ClassifierViewer", "png_bytes"]
ROW_NAMES_PX = 100    # grid mode: the column naming what each row's category draws


def _noise(spec: LatentSpec, seed: int, n: int = 1) -> torch.Tensor:
    return torch.randn(n, spec.noise_dim, generator=torch.Generator().manual_seed(int(seed)))


class TraversalViewer:
    """Sliders for the continuous codes, a category, a noise seed, single image or grid mode."""

    def __init__(self, *generators, value_range: tuple[float, float] = (-2.0, 2.0), seed: int = 0,
                 titles: list[str] | None = None, scale: int = PICTURE_PX // 28, grid_steps: int = 9,
                 threads: int | None = 1, dataset: str | None = "mnist"):
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
        with torch_threads(threads):
            self.names = [category_names(G, dataset) if dataset else None for G in self.generators]
        lo, hi = value_range
        self.sliders = [w.FloatSlider(value=0.0, min=lo, max=hi, step=0.05, description=f"c{j + 1}",
                                      readout_format=".2f", continuous_update=True,
                                      layout=w.Layout(width=px(SLIDER_PX)),
                                      style={"description_width": px(LABEL_PX)})
                        for j in range(n_codes)]
        # the selector names each category by what the first model draws for it
        self.category = w.Dropdown(options=[(self._named(0, k), k) for k in range(k_ways)],
                                   value=0, description="category", layout=w.Layout(width="300px"),
                                   style={"description_width": px(LABEL_PX)})
        self.seed = w.IntText(value=seed, description="noise seed", layout=w.Layout(width="180px"))
        self.new_noise = w.Button(description="new noise", icon="refresh")
        # (a toggle's own description would sit above its buttons, so the name is a label beside them)
        self.mode = w.ToggleButtons(options=["single", "grid"], value="single",
                                    style={"button_width": "90px"})
        self.grid_code = w.Dropdown(options=[(f"sweep c{j + 1}", j) for j in range(n_codes)],
                                    value=0, description="grid", layout=w.Layout(width="200px"))
        titles = titles or [f"model {i + 1}" for i in range(len(self.generators))]
        self.titles = [title_widget(t) for t in titles]
        self.images = [picture_widget(f"infogan-image-{i}") for i in range(len(self.generators))]
        self.captions = [w.HTML(layout=w.Layout(width=px(PICTURE_PX))) for _ in self.generators]
        self.row_names = [w.HTML(layout=w.Layout(display="none", width=px(ROW_NAMES_PX)))
                          for _ in self.generators]
        panels = [panel([t, c, w.HBox([r, img])])
                  for t, c, r, img in zip(self.titles, self.captions, self.row_names, self.images)]
        self.status = w.HTML()
        for j, slider in enumerate(self.sliders):
            slider.add_class(f"infogan-c{j + 1}")
        for i, caption in enumerate(self.captions):
            caption.add_class(f"infogan-caption-{i}")
        self.category.add_class("infogan-category")
        self.status.add_class("infogan-status")
        for control in (*self.sliders, self.category, self.seed, self.mode, self.grid_code):
            control.observe(lambda _change: self.update(), names="value")
        self.new_noise.on_click(lambda _b: setattr(self.seed, "value", self.seed.value + 1))
        self.widget = viewer_box([
            w.HBox([w.HTML('<div style="text-align: right; padding-right: 8px">mode</div>',
                           layout=w.Layout(width=px(LABEL_PX))), self.mode, self.grid_code]),
            w.HBox([self.category, self.seed, self.new_noise]),
            *self.sliders,
            w.HBox(panels, layout=w.Layout(flex_flow="row wrap", margin="8px 0 0 0")),
            self.status,
        ])
        self.update()

    def _named(self, index: int, k: int) -> str:
        """Category k of generator `index` as '0 → draws 8', or '0' when unnamed."""
        names = self.names[index]
        return f"{k} → {names.short(k)}" if names else str(k)

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
            return png_bytes(self.picture(index),
                             self.scale if self.mode.value == "single" else GRID_SCALE)

    def update(self) -> None:
        grid = self.mode.value == "grid"
        k, j = int(self.category.value), int(self.grid_code.value)
        rows = self.specs[0].categorical[0]
        height = (rows * GRID_PITCH + 2) * GRID_SCALE if grid else PICTURE_PX
        width = (self.grid_steps * GRID_PITCH + 2) * GRID_SCALE if grid else PICTURE_PX
        for i, image in enumerate(self.images):
            image.value = self.png(i)
            image.layout.width, image.layout.height = px(width), px(height)
            self.row_names[i].layout.display = "" if grid else "none"
            self.row_names[i].value = self._row_names(i) if grid else ""
            self.titles[i].layout.width = self.captions[i].layout.width = px(
                width + (ROW_NAMES_PX if grid else 0))
            self.captions[i].value = (
                f"rows: category → what it draws; columns: c{j + 1} from {self.value_range[0]:g} to "
                f"{self.value_range[1]:g}" if grid else self._caption(i, k))
        codes = ", ".join(f"c{j + 1} = {v:+.2f}" for j, v in enumerate(self.code_values()))
        draws = f" ({self.names[0].short(k)})" if self.names[0] else ""
        self.status.value = (f"category {k}{draws}, noise seed {self.seed.value}, {codes}" if not grid else
                             f"rows: categories; columns: c{j + 1} from {self.value_range[0]:g} to "
                             f"{self.value_range[1]:g}; noise seed {self.seed.value}")

    def _caption(self, index: int, k: int) -> str:
        names = self.names[index]
        if names is None:
            return f"category {k}"
        why = (f"the kit's classifier reads {names.shares[k]:.0%} of this category's images as "
               f"{names.classes[k]}")
        return f'<span title="{html.escape(why)}">{html.escape(names.label(k))}</span>'

    def _row_names(self, index: int) -> str:
        """One line per grid row, level with it: the category and what it draws."""
        names, pitch = self.names[index], GRID_PITCH * GRID_SCALE
        texts = [f"{k} → {names.name(k)}" if names else str(k)
                 for k in range(self.specs[index].categorical[0])]
        lines = "".join(f'<div style="height: {pitch}px; line-height: {pitch - 2 * GRID_SCALE}px; '
                        f'white-space: nowrap">{html.escape(t)}</div>' for t in texts)
        return f'<div style="padding-top: {2 * GRID_SCALE}px; font-size: 13px">{lines}</div>'

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)



class ClassifierViewer:
    """Q as a classifier of real images: pick an image, see Q's probabilities and code estimates."""

    def __init__(self, D, images, class_names=None, scale: int = PICTURE_PX // 28):
        import ipywidgets as w

        from .metrics import q_accuracy

        self.D = D.eval()
        self.images = images
        self.scale = scale
        self.score = q_accuracy(D, images.images, images.labels)
        self.class_names = list(class_names or getattr(images, "classes", None)
                                or [str(i) for i in range(10)])
        self.index = w.IntSlider(value=0, min=0, max=len(images) - 1, description="test image",
                                 continuous_update=False, layout=w.Layout(width=px(SLIDER_PX)),
                                 style={"description_width": px(1.5 * LABEL_PX)})
        self.random = w.Button(description="random image", icon="random")
        self.image = picture_widget("infogan-real-image")
        self.bars = picture_widget("infogan-bars", pixelated=False)
        self.image_title = title_widget("")
        self.text = w.HTML(layout=w.Layout(max_width=px(2 * PICTURE_PX + 40)))
        self.text.add_class("infogan-q-status")
        self._rng = np.random.default_rng(0)
        self.index.observe(lambda _c: self.update(), names="value")
        self.random.on_click(lambda _b: setattr(self.index, "value",
                                                int(self._rng.integers(len(self.images)))))
        bars_title = title_widget("Q(c | x), categories in label order")
        self.widget = viewer_box([
            w.HBox([self.index, self.random]),
            w.HBox([panel([self.image_title, self.image]), panel([bars_title, self.bars])],
                   layout=w.Layout(flex_flow="row wrap", margin="8px 0 0 0")),
            self.text])
        self.update()

    def read(self, i: int):
        """Q's probabilities over its categories (K,) and continuous estimates (k,) for image i."""
        from .metrics import q_predict

        _, probs, means = q_predict(self.D, self.images.images[i:i + 1])
        return probs[0], means[0]

    def by_label(self, probs: torch.Tensor) -> list[float]:
        """Q's category probabilities (K,) reordered by label: entry c is the probability of the
        category matched to label c (0 if none is)."""
        category_of = {label: k for k, label in self.score.mapping.items()}
        return [float(probs[category_of[c]]) if c in category_of else 0.0
                for c in range(len(self.class_names))]

    def bars_png(self, probs: torch.Tensor, true_label: int) -> bytes:
        """Q's probabilities as bars in label order (0 … 9 down), rendered at twice the size shown."""
        from matplotlib.figure import Figure

        category_of = {label: k for k, label in self.score.mapping.items()}
        classes = range(len(self.class_names))
        p = self.by_label(probs)
        fig = Figure(figsize=(PICTURE_PX / 96, PICTURE_PX / 96), dpi=2 * 96)
        ax = fig.subplots()
        ax.barh(classes, p, color=["tab:orange" if c == true_label else "tab:blue" for c in classes])
        ax.set_yticks(classes, self.class_names, fontsize=11)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"], fontsize=9)
        for c in classes:      # each bar's value and category, inside a long bar, else after it
            text = f"{p[c]:.0%}  cat. {category_of[c]}" if c in category_of else "no category"
            inside = p[c] > 0.6
            ax.text(p[c] - 0.02 if inside else p[c] + 0.02, c, text, va="center", fontsize=9,
                    ha="right" if inside else "left", color="white" if inside else "0.3")
        ax.set_xlabel("orange: the true label", fontsize=9)
        ax.spines[["top", "right"]].set_visible(False)
        fig.tight_layout(pad=0.4)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def update(self) -> None:
        i = int(self.index.value)
        probs, means = self.read(i)
        label = int(self.images.labels[i])
        self.image.value = png_bytes(self.images.images[i].float() / 255.0, self.scale)
        self.image_title.value = title_html(f"test image {i:,} (label {self.class_names[label]})")
        self.bars.value = self.bars_png(probs, label)
        k = int(probs.argmax())
        guess = self.class_names[self.score.mapping[k]]
        codes = ", ".join(f"c{j + 1} ≈ {float(v):+.2f}" for j, v in enumerate(means))
        self.text.value = (f"true label <b>{html.escape(self.class_names[label])}</b>; Q's category "
                           f"{k} → <b>{html.escape(guess)}</b> ({float(probs.max()):.0%}); continuous "
                           f"estimates {codes}. Q's accuracy on all {len(self.images):,} images: "
                           f"{self.score.accuracy:.1%}")

    def confusion_figure(self, ax=None):
        from .viz import plot_confusion
        return plot_confusion(self.score.confusion, self.class_names, ax=ax,
                              title=f"Q's categories after Hungarian matching "
                                    f"(accuracy {self.score.accuracy:.3f})")

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
