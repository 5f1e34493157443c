"""Two models compared in one PNG (``python -m cnnvis compare A B --out F.png``, issue 18).

From top to bottom:

* the two overviews side by side, each the scene the viewer shows (drawn offscreen by
  :mod:`cnnvis.render`, as :mod:`cnnvis.export.png` does), titled with the model's accuracy and
  parameters;
* the samples' projections: A's, B's started from A's, and A's places coloured by how far each
  sample moves to B's (:class:`~cnnvis.analysis.comparison.ModelComparison`), drawn by
  :func:`cnnvis.export.projections.render_samples`;
* the table: per layer, channels, parameters, redundancy and sign balance of A and of B.

:func:`render_comparison` composes the picture from a comparison and two rendered overviews
(Pillow, no OpenGL); :func:`export_compare` renders the overviews and writes the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from cnnvis.export.facets import _font, _text_size
from cnnvis.export.projections import render_samples

__all__ = [
    "compare_shown",
    "export_compare",
    "format_table",
    "render_comparison",
    "summary_lines",
    "table_lines",
]

_BG, _FG, _MUTED, _RULE = (255, 255, 255), (30, 30, 30), (100, 100, 100), (200, 200, 200)
_A_COLOUR, _B_COLOUR = (33, 102, 172), (178, 24, 43)  # the two models' colours in titles

#: Height of the title strip above each overview, of a table row, and the outer margin.
_TITLE_H, _ROW_H, _MARGIN = 56, 24, 16


def compare_shown(a: Any, b: Any, **options: Any):
    """:func:`~cnnvis.analysis.comparison.compare_models` of the Analyses ``a`` and ``b``,
    projecting by default the layer each one's viewer shows first (the last hidden layer with
    at least 8 neurons, :func:`cnnvis.scene.inputs.default_projection_layer`)."""
    from cnnvis.analysis.comparison import compare_models
    from cnnvis.scene.inputs import default_projection_layer

    for key, analysis in (("layer_a", a), ("layer_b", b)):
        if options.get(key) is None:
            options[key] = default_projection_layer(analysis)
    return compare_models(a, b, **options)


# -- the table, as text -------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.0%}"


def _num(v: int | None) -> str:
    return "–" if v is None else f"{v:,}"


def _cells(stats: Any) -> list[str]:
    """Channels, parameters, redundancy, sign balance of one layer (blanks when absent)."""
    if stats is None:
        return [""] * 4
    sign = "–" if stats.sign_balance is None else f"{stats.sign_balance:.2f}"
    return [str(stats.channels), _num(stats.parameters), _pct(stats.redundancy), sign]


_COLUMNS = ["channels", "parameters", "redundant", "positive"]


def summary_lines(cmp: Any) -> list[list[str]]:
    """The whole models, as rows of strings ``[what, A, B]``: the model class, accuracy,
    parameters (weights and biases of the conv, linear and batch-norm modules) and samples."""
    a, b = cmp.a, cmp.b
    return [
        ["", f"A  {a.name}", f"B  {b.name}"],
        ["model", a.model, b.model],
        ["accuracy", f"{a.accuracy:.1%}", f"{b.accuracy:.1%}"],
        ["parameters", _num(a.parameters), _num(b.parameters)],
        ["samples", _num(a.n_samples), _num(b.n_samples)],
    ]


def table_lines(cmp: Any) -> tuple[list[str], list[list[str]]]:
    """The per-layer table as a header and rows of strings: A's and B's channels, parameters
    (those feeding the layer since the layer before), redundancy (the share of neurons with a
    near-identical activation-matrix row in their cluster) and sign balance (the share of
    positive connection weight into the layer), lined up by layer name."""
    header = ["layer"] + [f"{c} A" for c in _COLUMNS] + [f"{c} B" for c in _COLUMNS]
    return header, [[(ra or rb).layer, *_cells(ra), *_cells(rb)] for ra, rb in cmp.rows]


def _aligned(rows: list[list[str]]) -> list[str]:
    """Rows of cells as text columns: the first left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:]))]
        ).rstrip()
        for r in rows
    ]


def format_table(cmp: Any) -> str:
    """What ``python -m cnnvis compare`` prints: the two models, the per-layer table, and the
    projections' numbers."""
    header, rows = table_lines(cmp)
    layers = _aligned([header, *rows])
    moved = cmp.displacement
    return "\n".join(
        [
            *_aligned(summary_lines(cmp)),
            "",
            layers[0],
            "-" * len(layers[0]),
            *layers[1:],
            "",
            f"projections of the {len(cmp.samples)} samples both kept: A at {cmp.layer_a} "
            f"(neighbourhood hit {cmp.neighbourhood_hit_a:.3f}), B at {cmp.layer_b} "
            f"({cmp.neighbourhood_hit_b:.3f}), its t-SNE started from A's;",
            f"neighbour agreement {cmp.neighbour_agreement:.3f} (k={cmp.k}); displacement mean"
            f" {moved.mean():.3f}, max {moved.max():.3f} (A's RMS radius is 1)",
        ]
    )


# -- the picture --------------------------------------------------------------------------------
def _title_strip(width: int, label: str, m: Any, colour: tuple[int, int, int]):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, _TITLE_H), _BG)
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, 5, _TITLE_H - 8], fill=colour)
    draw.text((14, 4), f"{label}  {m.name}", fill=colour, font=_font(22))
    facts = f"{m.model} · accuracy {m.accuracy:.1%} on {m.n_samples:,} samples · "
    draw.text((14, 32), facts + f"{m.parameters:,} parameters", fill=_MUTED, font=_font(14))
    return img


def _projection_panels(cmp: Any, size: int) -> list:
    """A's projection, B's started from it, and A's coloured by the displacement."""
    from cnnvis.analysis.projections import SampleProjection

    def proj(coords, predictions, hit) -> SampleProjection:
        return SampleProjection("", None, coords, cmp.labels, predictions, hit, cmp.k)

    a = proj(cmp.coords_a, cmp.predictions_a, cmp.neighbourhood_hit_a)
    b = proj(cmp.coords_b, cmp.predictions_b, cmp.neighbourhood_hit_b)
    moved = proj(cmp.coords_a, cmp.labels, cmp.neighbourhood_hit_a)  # no rings: not A's errors
    names = cmp.class_names
    title = (
        f"how far each sample moves to B, at its place in A (mean {cmp.displacement.mean():.2f})"
    )
    return [
        render_samples(a, names, f"A  {cmp.a.name}: {cmp.layer_a}", size=size),
        render_samples(b, names, f"B  {cmp.b.name}: {cmp.layer_b}, started from A", size=size),
        render_samples(moved, names, title, size=size, values=cmp.displacement),
    ]


def _table_image(cmp: Any, width: int):
    """The per-layer table drawn: A's four columns under A's name, B's under B's, rows striped,
    a note on what the columns mean below."""
    from PIL import Image, ImageDraw

    header, rows = table_lines(cmp)
    names = [h.rsplit(" ", 1)[0] for h in header]
    font, bold = _font(14), _font(16)
    height = _ROW_H * (len(rows) + 2) + 40
    img = Image.new("RGB", (width, height), _BG)
    draw = ImageDraw.Draw(img)
    widths = [max(_text_size(draw, r[i], font)[0] for r in [names, *rows]) for i in range(9)]
    widths = [widths[0] + 40] + [w + 36 for w in widths[1:]]
    x0 = _MARGIN + max(0, (width - 2 * _MARGIN - sum(widths)) // 2)  # centred
    right = np.cumsum([x0, *widths])  # each column's right edge is right[i + 1]
    for label, m, colour, i0 in (("A", cmp.a, _A_COLOUR, 1), ("B", cmp.b, _B_COLOUR, 5)):
        draw.text((right[i0] + 12, 2), f"{label}  {m.name}", fill=colour, font=bold)
        draw.line([(right[i0] + 12, _ROW_H), (right[i0 + 4] - 4, _ROW_H)], fill=colour, width=2)
    y = _ROW_H + 4
    for r, cells in enumerate([names, *rows]):
        if r % 2 == 0 and r:
            draw.rectangle([x0, y, right[-1], y + _ROW_H - 1], fill=(245, 246, 248))
        colour = _MUTED if r == 0 else _FG
        draw.text((x0 + 4, y + 4), cells[0], fill=colour, font=font)
        for i, text in enumerate(cells[1:], start=1):
            tw = _text_size(draw, text, font)[0]
            draw.text((right[i + 1] - 4 - tw, y + 4), text, fill=colour, font=font)
        y += _ROW_H
        if r == 0:
            draw.line([(x0, y - 1), (right[-1], y - 1)], fill=_RULE)
    note = (
        "redundant: share of neurons whose activation-matrix row is near-identical to another in "
        "their cluster;  positive: share of positive connection weight from the layer before"
    )
    draw.text((x0 + 4, y + 8), note, fill=_MUTED, font=_font(12))
    return img


def render_comparison(cmp: Any, overview_a: np.ndarray, overview_b: np.ndarray):
    """The picture (a PIL image) of a :class:`~cnnvis.analysis.comparison.ModelComparison`
    from the two overviews rendered as RGB arrays of the same height: the overviews side by
    side under their titles, the three projection panels, the table."""
    from PIL import Image

    if overview_a.shape[0] != overview_b.shape[0]:
        raise ValueError("the two overviews must have the same height")
    half = overview_a.shape[1]
    width = half + overview_b.shape[1]
    panel = min(width // 3 - 2 * _MARGIN, 640)
    panels = _projection_panels(cmp, panel)
    table = _table_image(cmp, width)
    top = _TITLE_H + overview_a.shape[0]
    height = top + panels[0].height + 2 * _MARGIN + table.height
    img = Image.new("RGB", (width, height), _BG)
    img.paste(_title_strip(half, "A", cmp.a, _A_COLOUR), (0, 0))
    img.paste(_title_strip(width - half, "B", cmp.b, _B_COLOUR), (half, 0))
    img.paste(Image.fromarray(overview_a), (0, _TITLE_H))
    img.paste(Image.fromarray(overview_b), (half, _TITLE_H))
    gap = (width - 3 * panel) // 4
    for i, p in enumerate(panels):
        img.paste(p, (gap + i * (panel + gap), top + _MARGIN))
    img.paste(table, (0, top + panels[0].height + 2 * _MARGIN))
    return img


def export_compare(
    a: Any,
    b: Any,
    out: str | os.PathLike,
    *,
    comparison: Any = None,
    size: tuple[int, int] | str = (1920, 900),
    depth: int | None = None,
    **options: Any,
) -> Path:
    """Write the comparison of the Analyses ``a`` and ``b`` as the PNG ``out``.

    ``size`` (``(W, H)`` or ``"WxH"``) is the width of the picture and the height of the
    overviews (each ``W/2`` wide); the projections and the table are added below. A
    ``comparison`` already made is drawn as it is; otherwise ``options`` go to
    :func:`compare_shown`. ``depth`` opens the first ``depth`` nesting levels of both overviews
    alike (default: each its own, as the viewer opens it). Written atomically.
    """
    from cnnvis.export import overview_scene
    from cnnvis.io import atomic_file
    from cnnvis.render.offscreen import parse_size, render_array

    w, h = parse_size(size, limits=(480, 16384))
    cmp = comparison if comparison is not None else compare_shown(a, b, **options)
    views = [
        render_array(overview_scene(x, projection=False, legend=False, depth=depth), (side, h))
        for x, side in ((a, w // 2), (b, w - w // 2))
    ]
    img = render_comparison(cmp, *views)
    path = Path(out)
    with atomic_file(path) as f:
        img.save(f, format="PNG")
    return path
