"""``python -m cnnvis export facets SESSION --out DIR``: every cluster's two facets as PNG files.

Per analysed layer and cluster:

* ``<layer>__c<k>_features.png`` - the packed learned-feature image (C4), scaled up with nearest
  neighbour to at least about 480 pixels so small patches stay visible, each tile labelled with its
  channel;
* ``<layer>__c<k>_matrix.png`` - the activation matrix (C5): a row per neuron (in the reordered
  order, labelled by channel), a column per class (in the analysis' shared class order, labelled
  by class name), a perceptually uniform colour map (viridis) over the layer's range, and a
  colour bar with its values.

``facets.json`` in the same folder lists the files with their layer, cluster and neurons. Written
with Pillow; no OpenGL needed.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_facets", "render_matrix", "render_features", "colormap"]

# viridis at 9 evenly spaced stops (sRGB, 0-255)
_VIRIDIS = np.array(
    [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ],
    dtype=np.float64,
)

_BG = (255, 255, 255)
_FG = (30, 30, 30)


def colormap(t: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to viridis colours, uint8 of shape ``t.shape + (3,)``."""
    t = np.clip(np.nan_to_num(np.asarray(t, dtype=np.float64), nan=0.0), 0.0, 1.0)
    x = t * (len(_VIRIDIS) - 1)
    i = np.minimum(np.floor(x).astype(int), len(_VIRIDIS) - 2)
    f = (x - i)[..., None]
    rgb = _VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f
    return np.rint(rgb).astype(np.uint8)


def _font(size: int):
    from PIL import ImageFont

    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _text_size(draw, text: str, font) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return x1 - x0, y1 - y0


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def render_matrix(matrix: Any, class_names: list[str], *, cell: int = 22):
    """Draw an :class:`~cnnvis.analysis.ActivationMatrix` as a PIL image with labels and a bar."""
    from PIL import Image, ImageDraw

    font = _font(13)
    small = _font(12)
    title_font = _font(15)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    n_rows, n_cols = matrix.values.shape
    names = [str(class_names[c]) for c in matrix.class_order]
    row_labels = [f"ch {int(ch)}" for ch in matrix.neurons]
    row_w = max(_text_size(probe, s, small)[0] for s in row_labels) if row_labels else 0
    name_w = max((_text_size(probe, s, small)[0] for s in names), default=0)
    rotate = name_w > cell - 4
    head_h = (name_w + 8) if rotate else 20
    title = f"{matrix.layer}  cluster {matrix.cluster}  ({n_rows} neurons)"
    tw, th = _text_size(probe, title, title_font)
    cell_h = max(cell, 16)
    left = 10 + row_w + 6
    top = 10 + th + 10 + head_h
    grid_w, grid_h = n_cols * cell, n_rows * cell_h
    bar_w, bar_gap = 16, 18
    bar_h = max(grid_h, 120)
    ticks = [matrix.vmin, 0.5 * (matrix.vmin + matrix.vmax), matrix.vmax]
    tick_w = max(_text_size(probe, _fmt(v), small)[0] for v in ticks)
    width = max(left + grid_w + bar_gap + bar_w + 6 + tick_w + 10, tw + 20)
    height = top + max(grid_h, bar_h) + 28
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), title, fill=_FG, font=title_font)
    # cells
    rgb = colormap(matrix.normalized)
    block = np.repeat(np.repeat(rgb, cell_h, axis=0), cell, axis=1)
    img.paste(Image.fromarray(block, "RGB"), (left, top))
    for r in range(n_rows + 1):  # thin white grid so cells read as cells
        draw.line([(left, top + r * cell_h), (left + grid_w, top + r * cell_h)], fill=_BG)
    for c in range(n_cols + 1):
        draw.line([(left + c * cell, top), (left + c * cell, top + grid_h)], fill=_BG)
    # row labels
    for r, s in enumerate(row_labels):
        w, h = _text_size(probe, s, small)
        draw.text((left - 6 - w, top + r * cell_h + (cell_h - h) // 2 - 2), s, fill=_FG, font=small)
    # column labels (rotated when wider than a cell)
    for c, s in enumerate(names):
        w, h = _text_size(probe, s, small)
        x = left + c * cell
        if rotate:
            lab = Image.new("RGBA", (w + 4, h + 6), (255, 255, 255, 0))
            ImageDraw.Draw(lab).text((2, 0), s, fill=_FG + (255,), font=small)
            lab = lab.rotate(90, expand=True)
            img.paste(lab, (x + (cell - lab.width) // 2, top - 4 - lab.height), lab)
        else:
            draw.text((x + (cell - w) // 2, top - 4 - h - 4), s, fill=_FG, font=small)
    # colour bar: vmax at the top
    bx = left + grid_w + bar_gap
    grad = colormap(np.linspace(1.0, 0.0, bar_h))[:, None, :]
    img.paste(Image.fromarray(np.repeat(grad, bar_w, axis=1), "RGB"), (bx, top))
    draw.rectangle([bx - 1, top - 1, bx + bar_w, top + bar_h], outline=_FG)
    for frac, v in zip((0.0, 0.5, 1.0), ticks):  # frac 0 = vmin at the bottom
        y = top + int(round((1.0 - frac) * (bar_h - 1)))
        draw.line([(bx + bar_w, y), (bx + bar_w + 4, y)], fill=_FG)
        w, h = _text_size(probe, _fmt(v), small)
        draw.text((bx + bar_w + 6, y - h // 2 - 2), _fmt(v), fill=_FG, font=small)
    note = "mean activation per class"
    draw.text((left, top + max(grid_h, bar_h) + 8), note, fill=(90, 90, 90), font=small)
    del font
    return img


def render_features(features: Any, *, min_size: int = 480):
    """Draw a :class:`~cnnvis.analysis.LearnedFeatures` as a PIL image: scaled up, labelled."""
    from PIL import Image, ImageDraw

    h, w = features.image.shape[:2]
    scale = max(1, min(12, math.ceil(min_size / max(h, w, 1))))
    title_font = _font(15)
    small = _font(11)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    title = f"{features.layer}  cluster {features.cluster}  ({len(features.neurons)} neurons)"
    tw, th = _text_size(probe, title, title_font)
    top = 10 + th + 10
    big = np.repeat(np.repeat(features.image, scale, axis=0), scale, axis=1)
    width = max(big.shape[1] + 20, tw + 20)
    img = Image.new("RGB", (width, top + big.shape[0] + 10), _BG)
    draw = ImageDraw.Draw(img, "RGBA")
    draw.text((10, 8), title, fill=_FG, font=title_font)
    img.paste(Image.fromarray(big, "RGB"), (10, top))
    for ch, (x, y, tw_, _th) in zip(features.neurons, features.placements):
        label = str(int(ch))
        lw, lh = _text_size(probe, label, small)
        if tw_ * scale < lw + 8:
            continue  # too small to label legibly
        x0, y0 = 10 + x * scale, top + y * scale
        draw.rectangle([x0, y0, x0 + lw + 5, y0 + lh + 5], fill=(0, 0, 0, 170))
        draw.text((x0 + 3, y0 + 1), label, fill=(255, 255, 255, 255), font=small)
    return img


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _resolve(session: Any):
    from cnnvis.analysis import Analysis, analyze

    if isinstance(session, Analysis):
        return session
    if hasattr(session, "class_means") and hasattr(session, "layers"):
        return analyze(session)
    hint = " (open a folder with cnnvis.session.open_session)" if _is_path(session) else ""
    raise TypeError(f"export_facets needs a Recording or an Analysis, got {session!r}{hint}")


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, bytes, os.PathLike))


def export_facets(
    session: Any,
    out: str | os.PathLike,
    args: Any = None,
    *,
    layers: list[str] | None = None,
    patches_per_neuron: int = 4,
) -> Path:
    """Write every cluster's learned-features and activation-matrix PNGs into the folder ``out``.

    Parameters
    ----------
    session : Recording or Analysis
        The analysis to draw (a Recording gets the default :func:`cnnvis.analyze`); a session
        folder is opened by the caller with :func:`cnnvis.session.open_session`.
    out : path
        Output folder (created).
    args : argparse.Namespace, optional
        From the CLI (unused beyond what the signature gives).
    layers : list of str, optional
        Only these analysed layers.
    patches_per_neuron : int
        Patches in each neuron's tile.

    Returns
    -------
    Path
        The output folder.
    """
    an = _resolve(session)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} is a file; export facets writes a folder")
    out.mkdir(parents=True, exist_ok=True)
    names = an.layers if layers is None else [an._check_layer(n) for n in layers]
    index = []
    class_names = list(an.recording.class_names)
    for layer in names:
        for c in range(an.n_clusters(layer)):
            stem = f"{_safe(layer)}__c{c:02d}"
            m = an.activation_matrix(layer, c)
            f = an.learned_features(layer, c, patches_per_neuron=patches_per_neuron)
            render_matrix(m, class_names).save(out / f"{stem}_matrix.png")
            render_features(f).save(out / f"{stem}_features.png")
            index.append(
                {
                    "layer": layer,
                    "cluster": c,
                    "neurons": [int(v) for v in m.neurons],
                    "matrix": f"{stem}_matrix.png",
                    "features": f"{stem}_features.png",
                }
            )
    (out / "facets.json").write_text(
        json.dumps({"model": an.recording.model_name, "facets": index}, indent=1),
        encoding="utf-8",
    )
    return out
