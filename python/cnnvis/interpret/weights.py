"""Weights as images (T1), after "Looking inside neural nets".

* A first convolution on RGB input: each filter as a small colour image.
* A deeper convolution: each filter as one grey image per input channel.
* A dense layer whose inputs are the image's pixels: each unit's weights reshaped to the input,
  its *template* (for a linear classifier, one per class).
* A hidden dense layer: its units' templates and the output weights on each unit, per class
  (the next dense layer's weights), to draw as bars.

Values are the raw weights; :func:`to_unit` maps them to [0, 1] for display.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from torch import nn

from cnnvis.interpret._targets import module_of

__all__ = ["WeightImages", "weight_images", "to_unit", "tile"]


@dataclass
class WeightImages:
    """The weights of ``layer`` as images.

    ``kind`` is ``"rgb"`` (``images`` ``(out, kh, kw, 3)``), ``"per_channel"``
    (``(out, in, kh, kw)``), ``"templates"`` (``(out, *input_shape)``) or ``"flat"``
    (``(out, in)``, a dense layer whose input shape is unknown). ``output_weights``
    ``(n_next, out)`` are the weights of ``output_layer``, the dense layer that reads this one's
    units, or None.
    """

    layer: str
    kind: str
    images: np.ndarray
    output_layer: str | None = None
    output_weights: np.ndarray | None = None


def weight_images(
    model: nn.Module, layer: str, *, input_shape: tuple[int, ...] | None = None
) -> WeightImages:
    """The weights of the convolution or dense module ``layer`` of ``model`` as images.

    ``input_shape`` is the shape of one input of a dense layer before flattening (``(1, 8, 8)``
    for an MLP on the digits): its units' weights are reshaped to it.
    """
    module = module_of(model, layer)
    if isinstance(module, nn.Conv2d):
        w = module.weight.detach().cpu().numpy()
        if w.shape[1] == 3:
            return WeightImages(layer, "rgb", w.transpose(0, 2, 3, 1).copy())
        return WeightImages(layer, "per_channel", w.copy())
    if not isinstance(module, nn.Linear):
        raise TypeError(f"{layer!r} is a {type(module).__name__}, not a Conv2d or Linear layer")
    w = module.weight.detach().cpu().numpy()
    kind, images = "flat", w.copy()
    if input_shape is not None:
        if math.prod(input_shape) != w.shape[1]:
            raise ValueError(
                f"input_shape {tuple(input_shape)} holds {math.prod(input_shape)} values; "
                f"{layer!r} reads {w.shape[1]}"
            )
        kind, images = "templates", w.reshape(w.shape[0], *input_shape).copy()
    out_name, out_w = _reader_of(model, layer, module.out_features)
    return WeightImages(layer, kind, images, out_name, out_w)


def _reader_of(model: nn.Module, layer: str, width: int) -> tuple[str | None, np.ndarray | None]:
    """The first dense layer after ``layer`` (in definition order) that reads ``width`` inputs."""
    names = [n for n, _ in model.named_modules()]
    for name, m in list(model.named_modules())[names.index(layer) + 1 :]:
        if isinstance(m, nn.Linear) and m.in_features == width:
            return name, m.weight.detach().cpu().numpy().copy()
    return None, None


def to_unit(images: np.ndarray, *, symmetric: bool = True) -> np.ndarray:
    """Each image (first axis) mapped to [0, 1]: zero to 0.5 and the largest magnitude to 0 or 1
    when ``symmetric``, else its minimum to 0 and maximum to 1."""
    flat = images.reshape(images.shape[0], -1).astype(np.float64)
    if symmetric:
        scale = np.abs(flat).max(axis=1, keepdims=True)
        out = 0.5 + 0.5 * flat / np.where(scale > 0, scale, 1.0)
    else:
        lo, hi = flat.min(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)
        out = (flat - lo) / np.where(hi > lo, hi - lo, 1.0)
    return out.reshape(images.shape)


def tile(images: np.ndarray, *, columns: int | None = None, gap: int = 1) -> np.ndarray:
    """``(n, h, w)`` or ``(n, h, w, 3)`` images in [0, 1] as one grid image, ``gap`` pixels of
    white between them."""
    if images.ndim not in (3, 4):
        raise ValueError(f"expected (n, h, w) or (n, h, w, 3) images, got {images.shape}")
    n, h, w = images.shape[:3]
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (h + gap) + gap, cols * (w + gap) + gap, *images.shape[3:]))
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        grid[y : y + h, x : x + w] = images[i]
    return grid
