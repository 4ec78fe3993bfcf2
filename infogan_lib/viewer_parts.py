"""The pieces the viewers of `widgets.py` are built from: pictures shown large and sharp, titles, boxes.

A single 28×28 picture is shown `PICTURE_PX` CSS px square, a grid of them `GRID_SCALE` CSS px per
image pixel. The browser scales the PNG to that size without smoothing (`image-rendering: pixelated`,
from a <style> inside each viewer's box), so pixels stay sharp at any zoom and screen density.
"""

from __future__ import annotations

import html
import io

import numpy as np
import torch

PICTURE_PX = 336      # one 28×28 picture on screen: 12 CSS px per image pixel
GRID_SCALE = 2        # grid mode, CSS px per pixel: 10 categories × 9 steps of 28 px images, 544×604
GRID_PITCH = 28 + 2   # an image and the padding image_grid puts after it
SLIDER_PX = 560       # a slider with its name and readout: a track of about 400 px to aim with
LABEL_PX = 60         # the name in front of a slider or selector
STYLE = "<style>.infogan-viewer img.infogan-picture { image-rendering: pixelated; }</style>"


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


def px(n: float) -> str:
    return f"{int(n)}px"


def picture_widget(css_class: str, size: int = PICTURE_PX, pixelated: bool = True):
    """An empty `size`×`size` px image widget carrying `css_class` (and, pixelated, the sharp style)."""
    import ipywidgets as w

    image = w.Image(format="png", layout=w.Layout(width=px(size), height=px(size), object_fit="contain"))
    image.add_class(css_class)
    if pixelated:
        image.add_class("infogan-picture")
    return image


def title_html(text: str) -> str:
    return (f'<div style="font-weight: 600; font-size: 14px; line-height: 1.4; white-space: normal">'
            f'{html.escape(text)}</div>')


def title_widget(text: str, width: int = PICTURE_PX):
    """A panel's own title, as wide as its picture, on as many lines as it needs."""
    import ipywidgets as w

    title = w.HTML(title_html(text), layout=w.Layout(width=px(width)))
    title.add_class("infogan-title")
    return title


def panel(children: list):
    """One picture with its title (and whatever else goes with it), set apart from the next panel."""
    import ipywidgets as w

    box = w.VBox(children, layout=w.Layout(margin="0 24px 12px 0"))
    box.add_class("infogan-panel")
    return box


def viewer_box(children: list):
    """A viewer's outer box, holding the <style> its pictures need (it applies while hidden)."""
    import ipywidgets as w

    box = w.VBox([w.HTML(STYLE, layout=w.Layout(display="none")), *children])
    box.add_class("infogan-viewer")
    return box
