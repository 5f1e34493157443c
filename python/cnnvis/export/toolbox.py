"""``export weights`` and ``export confusion``: the toolbox's pictures of a whole session (T1, T2).

* :func:`weights_picture`: a layer's weights as images. Filters of a first convolution on RGB
  as colour images; deeper filters one row per filter, one grey picture per input channel; a
  dense layer that reads the input's pixels as *templates* (its weights reshaped to the input:
  a linear classifier's class templates), with, for a hidden layer, the next layer's weights on
  each unit as bars per class; any other dense layer as its weight matrix.
* :func:`confusion_picture`: the confusion matrix, each cell tinted by its share of the true
  class and showing its most confident example, and the most confident mistakes.

Single-channel weights use a diverging map (blue negative, white zero, red positive), each
filter scaled by its own largest magnitude (:func:`cnnvis.interpret.to_unit`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cnnvis import interpret
from cnnvis.interpret._targets import device_of, evaluating, module_of
from cnnvis.interpret.picture import enlarge

__all__ = ["weights_picture", "confusion_picture", "export_weights", "export_confusion"]

#: Most filters and input channels drawn for a deep convolution (the picture says so).
MAX_FILTERS, MAX_INPUTS = 64, 32
DIVERGING = "RdBu_r"
POSITIVE, NEGATIVE = (0, 114, 178), (230, 159, 0)  # the scene's colour-blind-safe pair


def _font(size: int = 13):
    """DejaVu Sans from matplotlib (it has arrows and Greek), else Pillow's default."""
    from matplotlib import font_manager

    try:
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except OSError:
        return ImageFont.load_default(size=size)


def _reads_pixels(model: Any, layer: str, shape: tuple[int, ...]) -> bool:
    """Whether module ``layer`` reads the model's input itself (flattened): only then are its
    weights templates of the input."""
    import torch

    seen: list[bool] = []
    x = torch.rand((1, *shape), generator=torch.Generator().manual_seed(0))
    x = x.to(device_of(model))

    def look(_m, inputs):
        seen.append(
            inputs[0].numel() == x.numel() and bool(torch.equal(inputs[0].flatten(), x.flatten()))
        )

    handle = module_of(model, layer).register_forward_pre_hook(look)
    try:
        with torch.no_grad(), evaluating(model):
            model(x)
    finally:
        handle.remove()
    return bool(seen) and all(seen)


def diverging(unit: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (0.5: zero) -> RGB in [0, 1] through the diverging map."""
    from matplotlib import colormaps

    return colormaps[DIVERGING](unit)[..., :3]


def _templates_rgb(images: np.ndarray) -> np.ndarray:
    """``(n, C, h, w)`` weights -> ``(n, h, w, 3)`` in [0, 1]: diverging for one channel, the
    channels as colours (zero grey) for three."""
    unit = interpret.to_unit(images)
    if images.shape[1] == 3:
        return unit.transpose(0, 2, 3, 1)
    if images.shape[1] != 1:
        raise ValueError(f"templates of {images.shape[1]} channels cannot be drawn as pictures")
    return diverging(unit[:, 0])


def _canvas(grid: np.ndarray, title: str, scale: int, extra_height: int = 0):
    """A white picture with ``title`` on top and ``grid`` (RGB in [0, 1]) enlarged ``scale``
    times below it; returns the image, its drawer and the grid's bottom edge."""
    big = (np.kron(grid, np.ones((scale, scale, 1))) * 255).round().astype(np.uint8)
    top = 30
    width = max(big.shape[1] + 20, 360, int(_font(14).getlength(title)) + 20)
    img = Image.new("RGB", (width, top + big.shape[0] + 10 + extra_height), "white")
    img.paste(Image.fromarray(big), (10, top))
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), title, fill=(20, 20, 20), font=_font(14))
    return img, draw, top + big.shape[0]


def _scale_for(grid: np.ndarray, target: int = 900) -> int:
    return max(1, min(24, target // max(grid.shape[:2])))


def weights_picture(
    model: Any,
    layer: str,
    *,
    input_shape: tuple[int, ...] | None = None,
    class_names: list[str] | None = None,
) -> np.ndarray:
    """The weights of ``layer`` as a uint8 RGB picture (see the module docstring).

    ``input_shape`` ``(C, H, W)``: a dense layer reading ``C * H * W`` values is drawn as
    templates of that shape. ``class_names`` label the bars of a hidden layer's output weights.
    """
    shape = tuple(input_shape) if input_shape is not None else None
    module = module_of(model, layer)
    reads = getattr(module, "in_features", None)
    fits = shape is not None and reads == math.prod(shape) and _reads_pixels(model, layer, shape)
    w = interpret.weight_images(model, layer, input_shape=shape if fits else None)
    n = w.images.shape[0]
    if w.kind == "rgb":
        grid = interpret.tile(interpret.to_unit(w.images), gap=1)
        title = f"{layer}: {n} filters, RGB (zero: grey)"
    elif w.kind == "per_channel":
        shown = w.images[:MAX_FILTERS, :MAX_INPUTS]
        o, i, kh, kw = shown.shape
        unit = interpret.to_unit(shown.reshape(o * i, kh, kw)).reshape(o, i, kh, kw)
        grid = interpret.tile(diverging(unit.reshape(o * i, kh, kw)), columns=i, gap=1)
        title = (f"{layer}: filters (rows, {o} of {w.images.shape[0]}) x input channels "
                 f"(columns, {i} of {w.images.shape[1]}); blue -, red +")  # fmt: skip
    elif w.kind == "templates":
        grid = interpret.tile(_templates_rgb(w.images), gap=1)
        title = f"{layer}: the {n} units' weights as templates of the input; blue -, red +"
    else:
        grid = diverging(interpret.to_unit(w.images[None])[0])
        title = f"{layer}: weight matrix, {n} units (rows) x {w.images.shape[1]} inputs"
    scale = _scale_for(grid)
    bars = w.output_weights if w.kind == "templates" else None
    if bars is None:
        return np.asarray(_canvas(grid, title, scale)[0])
    img, draw, bottom = _canvas(grid, title, scale, extra_height=24 + 22 * bars.shape[0])
    _draw_bars(draw, bars, class_names, w.output_layer, (10, bottom + 10), img.width - 20)
    return np.asarray(img)


def _draw_bars(draw, weights: np.ndarray, names, layer, origin, width: int) -> None:
    """Per class (row), a bar per unit: the weight of ``layer`` on that unit (blue +, orange -)."""
    x0, y = origin
    draw.text((x0, y), f"{layer}: weight of each unit (left to right) per class", fill=(20,) * 3,
              font=_font(12))  # fmt: skip
    y += 20
    k, units = weights.shape
    label_w = 40
    step = max(1.0, (width - label_w) / units)
    m = float(np.abs(weights).max()) or 1.0
    for c in range(k):
        name = str(names[c]) if names is not None and c < len(names) else str(c)
        draw.text((x0, y + 3), name, fill=(40,) * 3, font=_font(12))
        mid = y + 10
        for j in range(units):
            v = float(weights[c, j]) / m * 9
            left = x0 + label_w + j * step
            box = (left, min(mid, mid - v), left + max(1.0, step - 1), max(mid, mid - v))
            draw.rectangle(box, fill=POSITIVE if v >= 0 else NEGATIVE)
        draw.line((x0 + label_w, mid, x0 + label_w + units * step, mid), fill=(170,) * 3)
        y += 22


def _tint(share: float, diagonal: bool) -> np.ndarray:
    base = np.array([46, 160, 67] if diagonal else [214, 39, 40], float) / 255
    if share <= 0:
        return np.full(3, 0.98)
    return 1 - (1 - base) * min(1.0, 0.12 + 0.88 * share)


def confusion_picture(recording: Any, image_of, *, cell: int = 56, n_mistakes: int = 12):
    """The confusion matrix of ``recording`` as a uint8 RGB picture. ``image_of(sample)`` gives
    a sample's picture, RGB in [0, 1] ``(h, w, 3)``."""
    conf = interpret.confusion(recording, n_mistakes=n_mistakes)
    names, k = conf.class_names, len(conf.class_names)
    pad, head, inner = 4, 40, cell - 16
    size = head + k * cell
    gallery_w = 4 * (cell + 8) + 20
    img = Image.new("RGB", (size + 30 + gallery_w, max(size + 30, 260)), "white")
    draw = ImageDraw.Draw(img)
    font = _font(12)
    totals = conf.matrix.sum(axis=1)
    draw.text((head, 6), "predicted →", fill=(90,) * 3, font=font)
    for c in range(k):
        draw.text((head + c * cell + cell // 2 - 4, 22), str(names[c]), fill=(20,) * 3, font=font)
        draw.text((8, head + c * cell + cell // 2 - 6), str(names[c]), fill=(20,) * 3, font=font)
    for t in range(k):
        for p in range(k):
            x, y = head + p * cell, head + t * cell
            n = int(conf.matrix[t, p])
            colour = _tint(n / totals[t] if totals[t] else 0.0, t == p)
            draw.rectangle(
                (x, y, x + cell - 2, y + cell - 2), fill=tuple((colour * 255).astype(int))
            )
            if conf.example[t, p] >= 0:
                _paste(img, image_of(int(conf.example[t, p])), (x + 8, y + pad), inner - 2)
                draw.text((x + 4, y + cell - 15), str(n), fill=(10,) * 3, font=_font(11))
    gx = size + 30
    draw.text((gx, 6), "most confident mistakes (true → predicted)", fill=(20,) * 3, font=font)
    for i, s in enumerate(conf.mistakes):
        x, y = gx + (i % 4) * (cell + 8), head + (i // 4) * (cell + 18)
        _paste(img, image_of(int(s)), (x, y), cell - 4)
        t, p = names[int(conf.labels[s])], names[int(conf.predictions[s])]
        draw.text((x, y + cell - 2), f"{t} → {p}", fill=(150, 20, 20), font=_font(11))
    return np.asarray(img)


def _paste(img: Image.Image, rgb: np.ndarray, at: tuple[int, int], side: int) -> None:
    rgb = np.asarray(rgb, np.float64)
    if rgb.ndim == 3 and rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    big = enlarge(rgb, side)
    pic = Image.fromarray((np.clip(big, 0, 1) * 255).round().astype(np.uint8))
    if max(pic.size) > side:
        pic.thumbnail((side, side))
    img.paste(pic, at)


def export_weights(session: str | Path, out: str | Path, layer: str | None) -> Path:
    """Write :func:`weights_picture` of ``layer`` of the session's model to ``out`` (PNG)."""
    from cnnvis.session import session_model_and_data

    if not layer:
        raise ValueError("export weights needs --layer NAME (a Conv2d or Linear module)")
    rec, model, _ = session_model_and_data(session)
    try:
        picture = weights_picture(model, layer, input_shape=tuple(rec.input_shape),
                                  class_names=list(rec.class_names))  # fmt: skip
    except TypeError as exc:  # a module without weights to draw: bad input, one clear line
        raise ValueError(str(exc)) from None
    return _save(picture, out)


def export_confusion(session: str | Path, out: str | Path) -> Path:
    """Write :func:`confusion_picture` of the session to ``out`` (PNG)."""
    from cnnvis.interpret.picture import image_rgb
    from cnnvis.session import load, session_dataset

    rec = load(Path(session).expanduser())
    rows = {int(s): r for r, s in enumerate(rec.pooled_index)}
    data: list[Any] = []

    def image_of(sample: int) -> np.ndarray:
        if sample in rows:
            return rec.pooled_images[rows[sample]] / 255.0
        if not data:
            data.append(session_dataset(rec))
        dr = rec.meta.get("display_range") or {}
        return image_rgb(data[0][sample][0], dr.get("low"), dr.get("high"))

    return _save(confusion_picture(rec, image_of), out)


def _save(picture: np.ndarray, out: str | Path) -> Path:
    from cnnvis.io import atomic_file

    out = Path(out)
    with atomic_file(out) as f:
        Image.fromarray(picture).save(f, format="PNG")
    return out
