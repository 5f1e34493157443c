"""Analysis -> Scene: the CNNVis overview, the projection panel and the legend.

Layout of the overview (world units, y downwards): layers run top to bottom (input first), one row
per shown layer, rows of a layer group sharing a band. Each neuron cluster is a square whose area is
proportional to its neuron count (one scale for the whole picture) and shows its facet. Between two
consecutive rows, each bicluster of connections becomes an in-between node in the gap; its source
clusters' half-edges come down into it and its target clusters' half-edges leave it, as smooth
curves coloured by sign and as wide as the summed strength they carry.

The picture is designed for windows of 1280x800 and larger: labels are sized in screen points
and each carries the smallest zoom at which it fits without touching its neighbours.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from .colors import SIGN_PALETTES, class_colors, colormap, hex_to_rgba
from .inputs import OverviewInput, overview_input
from .model import (
    Images,
    Labels,
    LegendEntry,
    Panel,
    Points,
    Polylines,
    Rects,
    Scene,
)
from .overview import (  # noqa: F401 - the overview's colours and sizes, re-exported
    BAND_FILL,
    BAND_FILL_ALT,
    CLUSTER_FILL,
    CLUSTER_STROKE,
    FACET_MIN_PX,
    INK,
    MUTED,
    build_overview,
)

__all__ = ["build_scene"]

DPI = 96.0


def build_scene(
    analysis: Any,
    *,
    facet: str = "features",
    facet_overrides: Mapping[tuple[str, int], str] | None = None,
    expanded: Collection[str] | str | None = None,
    depth: int | None = None,
    palette: str = "blue-orange",
    projection: bool = True,
    legend: bool = True,
    max_points: int | None = None,
    projection_layer: str | None = None,
) -> Scene:
    """Lay out the CNNVis overview of an analysis as a :class:`Scene`.

    Parameters
    ----------
    analysis : cnnvis.Analysis or OverviewInput
        What to draw.
    facet : {"features", "matrix"}
        What every cluster shows: its packed learned-feature patches or its activation matrix.
    facet_overrides : mapping of (layer, cluster) to facet, optional
        Per-cluster exceptions to ``facet``.
    expanded : collection of str or "all", optional
        The nested layer groups shown open (:mod:`cnnvis.scene.hierarchy`); a closed group is one
        box showing the clusters of its output layer. ``"all"`` opens every group; ``None`` opens
        the first ``depth`` levels, or by default as many whole levels as keep the overview
        within :data:`~cnnvis.scene.hierarchy.MAX_AUTO_ROWS` rows. The scene is a pure function
        of these arguments: expanding or collapsing a group is another call.
    depth : int, optional
        With ``expanded=None``: open the groups of the first ``depth`` nesting levels.
    palette : {"blue-orange", "paper"}
        Edge colours by sign: colour-blind-safe blue/orange (default) or the paper's green/red.
    projection, legend : bool
        Whether to add the projection panel and the legend panel.
    max_points : int, optional
        Draw at most this many projected samples (an even subsample, deterministic).
    projection_layer : str, optional
        Layer whose projection is shown (default: the last analysed layer).

    Returns
    -------
    Scene
    """
    if facet not in ("features", "matrix"):
        raise ValueError(f"facet must be 'features' or 'matrix', got {facet!r}")
    if palette not in SIGN_PALETTES:
        raise ValueError(f"palette must be one of {sorted(SIGN_PALETTES)}, got {palette!r}")
    data = overview_input(
        analysis,
        facet=facet,
        facet_overrides=facet_overrides,
        projection=projection,
        projection_layer=projection_layer,
    )
    if not data.layers:
        raise ValueError("the analysis has no analysed layers to draw")
    overrides = dict(facet_overrides or {})
    for key, value in overrides.items():
        if value not in ("features", "matrix"):
            raise ValueError(f"facet override for {key} must be 'features' or 'matrix'")
    pos_color, neg_color = (hex_to_rgba(h) for h in SIGN_PALETTES[palette])
    ccolors = class_colors(len(data.class_names))

    scene = Scene(panels={}, class_colors=ccolors, class_names=list(data.class_names))
    scene.meta.update(
        facet=facet,
        palette=palette,
        sign_colors=(tuple(pos_color), tuple(neg_color)),
        model_name=data.model_name,
        title=data.model_name,
    )
    overview = build_overview(data, scene, facet, overrides, expanded, depth, pos_color, neg_color)
    scene.panels["overview"] = overview
    if projection and data.projection is not None:
        scene.panels["projection"] = _build_projection(data, ccolors, max_points)
    if legend:
        scene.panels["legend"] = _build_legend(data, scene, ccolors, pos_color, neg_color, facet)
    return scene


# -- overview: cnnvis.scene.overview ------------------------------------------------------------
def _short(name: str, max_chars: int) -> str:
    return name if len(name) <= max_chars else "\u2026" + name[-(max_chars - 1) :]


# -- projection ----------------------------------------------------------------------------------
PROJ_SIZE = 1000.0
PROJ_TOP = 100.0


def _build_projection(data: OverviewInput, ccolors: np.ndarray, max_points: int | None) -> Panel:
    proj = data.projection
    n = len(proj.xy)
    keep = np.arange(n)
    if max_points is not None and n > max_points:
        keep = np.linspace(0, n - 1, max_points).round().astype(np.int64)
    xy = proj.xy[keep]
    labels = proj.labels[keep]
    preds = proj.predictions[keep]
    samples = proj.samples[keep]
    finite = np.isfinite(xy).all(axis=1)
    if not finite.all():
        raise ValueError("projection coordinates contain NaN or infinity")
    lo = xy.min(axis=0) if len(xy) else np.zeros(2)
    hi = xy.max(axis=0) if len(xy) else np.ones(2)
    span = float(max(hi - lo)) or 1.0
    inner = PROJ_SIZE - 2 * 30.0
    centre = (lo + hi) / 2.0
    world = np.empty_like(xy)
    world[:, 0] = PROJ_SIZE / 2 + (xy[:, 0] - centre[0]) / span * inner
    world[:, 1] = PROJ_TOP + PROJ_SIZE / 2 - (xy[:, 1] - centre[1]) / span * inner
    k = len(ccolors)
    color = ccolors[np.clip(labels, 0, max(k - 1, 0))] if k else np.zeros((len(xy), 4), np.float32)
    color = color.copy()
    color[:, 3] = 0.85
    size = 6.0 if len(xy) <= 2000 else (4.5 if len(xy) <= 6000 else 3.5)
    points = Points(
        xy=world.astype(np.float32),
        color=color.astype(np.float32),
        size=size,
        marked=labels != preds,
        labels=labels,
        ids=[("sample", int(s)) for s in samples],
    )
    panel = Panel(
        "projection", (0.0, 0.0, PROJ_SIZE, PROJ_SIZE + PROJ_TOP), points=points, labels=Labels()
    )
    wrong = int((labels != preds).sum())
    panel.labels.add(
        f"{proj.method} of {_short(proj.layer, 24)}",
        (24.0, 22.0),
        size=10.0,
        color=INK,
        anchor=("left", "top"),
        bold=True,
        id=("layer", proj.layer),
    )
    panel.labels.add(
        f"{len(xy):,} samples \u00b7 {wrong:,} misclassified (ringed)",
        (24.0, 62.0),
        size=7.5,
        min_zoom=1.3 * 10.0 * DPI / 72.0 / 40.0,
        color=MUTED,
        anchor=("left", "top"),
    )
    panel.top_rects = Rects()
    return panel


# -- legend --------------------------------------------------------------------------------------
LEGEND_W, LEGEND_H = 460.0, 300.0
MAX_LEGEND_CLASSES = 20


def _build_legend(data, scene, ccolors, pos_color, neg_color, facet) -> Panel:
    """The legend panel: class swatches, connection signs, projection markers and, for the
    matrix facet, the colour bar; ``scene.legend`` gets the same entries for the SVG."""
    labels = Labels()
    entries: list[LegendEntry] = []
    x0, y = 18.0, 16.0
    swatches, y = _legend_classes(data, ccolors, labels, entries, x0, y)
    lines, points, y = _legend_signs(labels, entries, x0, y, pos_color, neg_color)
    images = Images()
    if facet == "matrix":
        images, y = _legend_colormap(labels, entries, x0, y)
    scene.legend = entries
    panel = Panel(
        "legend",
        (0.0, 0.0, LEGEND_W, max(LEGEND_H, y + 8.0)),
        rects=swatches,
        images=images,
        lines=lines,
        points=points,
        labels=labels,
        interactive=False,
    )
    panel.top_rects = Rects()
    return panel


_LEGEND_ROW = 19.0


def _legend_classes(data, ccolors, labels, entries, x0: float, y: float) -> tuple[Rects, float]:
    """The class swatches in up to three columns (names shortened to fit); returns them and the
    height reached."""
    xywh, fill, stroke, sw, ids = [], [], [], [], []
    labels.add("Classes", (x0, y), size=9.0, color=INK, anchor=("left", "top"), bold=True)
    y += 24.0
    names = list(data.class_names)
    shown = names[:MAX_LEGEND_CLASSES]
    ncol = 1 if len(shown) <= 5 else (2 if len(shown) <= 10 else 3)
    col_w = (LEGEND_W - 2 * x0) / ncol
    per_col = int(np.ceil(len(shown) / ncol)) if shown else 0
    row_h = _LEGEND_ROW
    max_chars = int((col_w - 22.0) / (0.62 * 8.0 * DPI / 72.0))
    for k, name in enumerate(shown):
        cx = x0 + (k // per_col) * col_w
        cy = y + (k % per_col) * row_h
        xywh.append((cx, cy + 2.0, 12.0, 12.0))
        fill.append(tuple(ccolors[k]))
        stroke.append((0, 0, 0, 0))
        sw.append(0.0)
        ids.append(("class", k))
        labels.add(
            _short(name, max_chars) if len(name) > max_chars else name,
            (cx + 18.0, cy + 8.0),
            size=8.0,
            color=INK,
            anchor=("left", "center"),
            id=("class", k),
        )
        entries.append(
            LegendEntry("swatch", name, tuple(float(v) for v in ccolors[k]), ("class", k))
        )
    y += per_col * row_h
    if len(names) > len(shown):
        labels.add(
            f"+{len(names) - len(shown)} more classes",
            (x0, y),
            size=7.5,
            color=MUTED,
            anchor=("left", "top"),
        )
        y += 16.0
    return Rects.from_lists(xywh, fill, stroke, sw, ids), y + 10.0


def _legend_signs(labels, entries, x0: float, y: float, pos_color, neg_color):
    """The connection signs (two lines) and the projection markers beside them; returns the
    lines, the points and the height reached."""
    row_h = _LEGEND_ROW
    labels.add("Connections", (x0, y), size=9.0, color=INK, anchor=("left", "top"), bold=True)
    labels.add(
        "Projection", (x0 + 230.0, y), size=9.0, color=INK, anchor=("left", "top"), bold=True
    )
    y += 24.0
    pts, offsets, lcol, lw, lsign, lids = [], [0], [], [], [], []
    for k, (text, col, sign) in enumerate(
        (("positive weight", pos_color, 1), ("negative weight", neg_color, -1))
    ):
        yy = y + k * row_h + 8.0
        pts.append(np.array([[x0, yy], [x0 + 28.0, yy]]))
        offsets.append(offsets[-1] + 2)
        lcol.append(col)
        lw.append(3.0)
        lsign.append(sign)
        lids.append(("sign", sign))
        labels.add(text, (x0 + 36.0, yy), size=8.0, color=INK, anchor=("left", "center"))
        entries.append(LegendEntry("line", text, tuple(float(v) for v in col), ("sign", sign)))
    labels.add(
        "width \u221d |strength|",
        (x0 + 36.0, y + 2 * row_h + 8.0),
        size=7.5,
        color=MUTED,
        anchor=("left", "center"),
    )
    # projection marker legend
    mx = x0 + 230.0
    pts_xy = np.array([[mx + 8.0, y + 8.0], [mx + 8.0, y + row_h + 8.0]], np.float32)
    point_col = np.array([[0.55, 0.57, 0.6, 1.0], [0.55, 0.57, 0.6, 1.0]], np.float32)
    labels.add(
        "sample (class colour)",
        (mx + 22.0, y + 8.0),
        size=8.0,
        color=INK,
        anchor=("left", "center"),
    )
    labels.add(
        "misclassified",
        (mx + 22.0, y + row_h + 8.0),
        size=8.0,
        color=INK,
        anchor=("left", "center"),
    )
    entries.append(LegendEntry("marker", "misclassified", (0.1, 0.1, 0.1, 1.0), None))
    y += 3 * row_h + 10.0
    lines = Polylines(
        points=np.concatenate(pts).astype(np.float32),
        offsets=np.asarray(offsets, np.int64),
        color=np.asarray(lcol, np.float32),
        width=np.asarray(lw, np.float32),
        sign=np.asarray(lsign, np.int8),
        strength=np.ones(len(lids), np.float32),
        ids=lids,
    )
    points = Points(
        xy=pts_xy,
        color=point_col,
        size=7.0,
        marked=np.array([False, True]),
        labels=np.zeros(2, np.int64),
        ids=[("legend-point", 0), ("legend-point", 1)],
    )
    return lines, points, y


def _legend_colormap(labels, entries, x0: float, y: float) -> tuple[Images, float]:
    """The activation colour bar of the matrix facet; returns it and the height reached."""
    bar = colormap(np.linspace(0.0, 1.0, 256)[None, :])
    labels.add("Activation", (x0, y), size=9.0, color=INK, anchor=("left", "top"), bold=True)
    y += 24.0
    images = Images(
        data=[np.repeat(bar, 4, axis=0)],
        xywh=np.array([[x0 + 34.0, y + 2.0, 200.0, 12.0]], np.float32),
        interpolation=["linear"],
        min_zoom=np.zeros(1, np.float32),
        ids=[("colormap",)],
    )
    labels.add("low", (x0, y + 8.0), size=7.5, color=MUTED, anchor=("left", "center"))
    labels.add(
        "high (per layer)",
        (x0 + 240.0, y + 8.0),
        size=7.5,
        color=MUTED,
        anchor=("left", "center"),
    )
    entries.append(LegendEntry("colormap", "activation, low to high", (0, 0, 0, 1)))
    y += 26.0
    return images, y
