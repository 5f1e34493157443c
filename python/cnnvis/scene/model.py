"""The Scene: plain geometry in world coordinates, no GL.

A :class:`Scene` is a few :class:`Panel` objects (the overview, the projection, the legend), each a
set of primitive batches in its own world coordinates (x to the right, y downwards, like an image
or SVG). Every primitive carries an id that maps back to the analysis:

* ``("band", group)``, ``("layer", name)``
* ``("cluster", layer, c)``, ``("neuron", layer, channel)``
* ``("bicluster", src_layer, dst_layer, b)``
* ``("edge", src_layer, dst_layer, b, end, c)`` for the half-edge between cluster ``c`` (in layer
  ``src`` when ``end == "src"``, in ``dst`` when ``end == "dst"``) and bicluster node ``b``;
  ``("edge", src_layer, dst_layer, "direct", i, j)`` for a direct edge between clusters
* ``("sample", i)``, ``("class", k)``

Hit testing (:meth:`Scene.pick`, :meth:`Scene.select_box`, :meth:`Scene.select_lasso`) works on
this data; the drawing code (:mod:`cnnvis.render.canvas`, :mod:`cnnvis.export.svg`) only reads it.
Level of detail is data too: each label and image has ``min_zoom``, the screen pixels per world
unit from which it is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Highlight",
    "Images",
    "Labels",
    "LegendEntry",
    "Panel",
    "Points",
    "Polylines",
    "Rects",
    "Scene",
]

Id = tuple


def _f32(a: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float32)
    if shape is not None:
        arr = arr.reshape(shape)
    return arr


@dataclass
class Rects:
    """Axis-aligned rectangles ``(x, y, w, h)`` with fill and stroke colours."""

    xywh: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    fill: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    stroke: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    stroke_width: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    ids: list[Id] = field(default_factory=list)
    pickable: bool = True

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_lists(cls, xywh, fill, stroke, stroke_width, ids, pickable=True) -> Rects:
        n = len(ids)
        return cls(
            _f32(xywh, (n, 4)),
            _f32(fill, (n, 4)),
            _f32(stroke, (n, 4)),
            _f32(stroke_width, (n,)),
            list(ids),
            pickable,
        )

    def contains(self, x: float, y: float) -> np.ndarray:
        r = self.xywh
        return (x >= r[:, 0]) & (x <= r[:, 0] + r[:, 2]) & (y >= r[:, 1]) & (y <= r[:, 1] + r[:, 3])


@dataclass
class Images:
    """RGBA images placed in world rectangles (facets, activation matrices).

    ``interpolation`` is ``"linear"`` for photographs (learned features) or ``"nearest"`` for
    matrices; ``min_zoom`` hides an image (its rectangle's fill shows instead) below that zoom.
    """

    data: list[np.ndarray] = field(default_factory=list)
    xywh: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    interpolation: list[str] = field(default_factory=list)
    min_zoom: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    ids: list[Id] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Polylines:
    """Many polylines in one batch: vertices ``points[offsets[i]:offsets[i+1]]`` are line ``i``.

    ``width`` is in world units; ``strength`` and ``sign`` keep what the colour and width encode.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    color: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    width: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    sign: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    strength: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    ids: list[Id] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def line(self, i: int) -> np.ndarray:
        return self.points[self.offsets[i] : self.offsets[i + 1]]

    def segment_distance(self, x: float, y: float) -> np.ndarray:
        """Distance from ``(x, y)`` to every polyline, shape ``(n,)``."""
        n = len(self)
        if n == 0:
            return np.zeros(0)
        p = self.points.astype(np.float64)
        a, b = p[:-1], p[1:]
        ab = b - a
        t = np.clip(
            ((x - a[:, 0]) * ab[:, 0] + (y - a[:, 1]) * ab[:, 1])
            / np.maximum((ab**2).sum(1), 1e-12),
            0.0,
            1.0,
        )
        d = np.hypot(a[:, 0] + t * ab[:, 0] - x, a[:, 1] + t * ab[:, 1] - y)
        # segment k belongs to line i when offsets[i] <= k < offsets[i+1]-1
        owner = np.searchsorted(self.offsets, np.arange(len(a)), side="right") - 1
        valid = np.arange(len(a)) < self.offsets[owner + 1] - 1
        out = np.full(n, np.inf)
        np.minimum.at(out, owner[valid], d[valid])
        return out


@dataclass
class Points:
    """A point cloud (the projection): screen-sized markers with per-point colours.

    ``marked`` flags points drawn with an extra ring (misclassified samples); ``size`` is the
    marker diameter in screen pixels.
    """

    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    color: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    size: float = 5.0
    marked: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    mark_color: np.ndarray = field(default_factory=lambda: np.array([0.1, 0.1, 0.1, 1], np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ids: list[Id] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Labels:
    """Text labels. ``pos`` is the anchor point; ``anchor`` is ``(horizontal, vertical)`` with
    horizontal in ``left|center|right`` and vertical in ``top|center|bottom``; ``size`` is the
    font size in points (screen space, it does not scale with zoom); ``background`` is a box
    colour drawn behind the text (alpha 0: none)."""

    text: list[str] = field(default_factory=list)
    pos: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    size: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    color: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    anchor: list[tuple[str, str]] = field(default_factory=list)
    bold: list[bool] = field(default_factory=list)
    min_zoom: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    ids: list[Id | None] = field(default_factory=list)
    background: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))

    def __len__(self) -> int:
        return len(self.text)

    def add(
        self,
        text: str,
        pos: tuple[float, float],
        size: float = 10.0,
        color: Any = (0.15, 0.15, 0.15, 1.0),
        anchor: tuple[str, str] = ("left", "center"),
        bold: bool = False,
        min_zoom: float = 0.0,
        id: Id | None = None,
        background: Any = (0.0, 0.0, 0.0, 0.0),
    ) -> None:
        """Add one label. The arrays grow by one row at each call: many labels are collected in
        a :class:`LabelRows` and built at once."""
        rows = LabelRows()
        rows.add(text, pos, size, color, anchor, bold, min_zoom, id, background)
        self.extend(rows.build())

    def extend(self, other: Labels) -> None:
        """Append every label of ``other``."""
        self.text += other.text
        self.anchor += other.anchor
        self.bold += other.bold
        self.ids += other.ids
        for name in ("pos", "size", "color", "min_zoom", "background"):
            setattr(self, name, np.concatenate([getattr(self, name), getattr(other, name)]))

    def pixel_boxes(self, dpi: float = 96.0) -> np.ndarray:
        """Approximate label boxes ``(x0, y0, x1, y1)`` in screen pixels from each anchor point
        (labels keep their size in pixels whatever the zoom)."""
        if not len(self):
            return np.zeros((0, 4))
        px = self.size * dpi / 72.0
        w = np.array([text_width_px(t, s) for t, s in zip(self.text, px)])
        h = px * 1.25
        fx = np.array([{"left": 0.0, "center": 0.5, "right": 1.0}[a[0]] for a in self.anchor])
        fy = np.array([{"top": 0.0, "center": 0.5, "bottom": 1.0}[a[1]] for a in self.anchor])
        return np.stack([-fx * w, -fy * h, (1.0 - fx) * w, (1.0 - fy) * h], axis=1)

    def screen_boxes(self, zoom: float, dpi: float = 96.0) -> np.ndarray:
        """Approximate label boxes ``(x0, y0, x1, y1)`` in world units at a given zoom."""
        if not len(self):
            return np.zeros((0, 4))
        xy = np.tile(self.pos.astype(np.float64), 2)
        return xy + self.pixel_boxes(dpi) / zoom


class LabelRows:
    """Labels collected one by one (:meth:`Labels.add`'s arguments) and built into one
    :class:`Labels` at the end: no array grows a row at a time. ``text`` and ``min_zoom`` of a
    row may still change before :meth:`build` (a title joined to another)."""

    def __init__(self) -> None:
        self.rows: list[list] = []

    def __len__(self) -> int:
        return len(self.rows)

    def add(
        self,
        text: str,
        pos: tuple[float, float],
        size: float = 10.0,
        color: Any = (0.15, 0.15, 0.15, 1.0),
        anchor: tuple[str, str] = ("left", "center"),
        bold: bool = False,
        min_zoom: float = 0.0,
        id: Id | None = None,
        background: Any = (0.0, 0.0, 0.0, 0.0),
    ) -> None:
        self.rows.append([text, pos, size, color, anchor, bold, min_zoom, id, background])

    def build(self) -> Labels:
        if not self.rows:
            return Labels()
        text, pos, size, color, anchor, bold, zoom, ids, back = (list(c) for c in zip(*self.rows))
        return Labels(
            text, _f32(pos, (-1, 2)), _f32(size), _f32(color, (-1, 4)), anchor, bold,
            _f32(zoom), ids, _f32(back, (-1, 4)),
        )  # fmt: skip


def _pick_title(labels: Labels, x: float, y: float, zoom: float) -> Id | None:
    """The band id of the group title shown at ``zoom`` whose text box holds ``(x, y)``."""
    titles = [k for k, i in enumerate(labels.ids) if i and i[0] == "band"]
    if not titles:
        return None
    idx = np.asarray(titles)
    shown = idx[labels.min_zoom[idx] <= zoom]
    if not len(shown):
        return None
    boxes = labels.screen_boxes(zoom)[shown]
    inside = (boxes[:, 0] <= x) & (x <= boxes[:, 2]) & (boxes[:, 1] <= y) & (y <= boxes[:, 3])
    hits = shown[inside]
    return labels.ids[int(hits[-1])] if len(hits) else None


def text_width_px(text: str, font_px: float) -> float:
    """A conservative width estimate of ``text`` in a sans-serif font of ``font_px`` pixels."""
    return 0.62 * font_px * max(len(text), 1)


@dataclass
class LegendEntry:
    """One legend row: ``kind`` is ``"swatch"`` (a class colour), ``"line"`` (an edge colour),
    ``"marker"`` (a point style) or ``"colormap"`` (a colour bar, ``color`` ignored)."""

    kind: str
    label: str
    color: tuple[float, float, float, float]
    id: Id | None = None


@dataclass
class Panel:
    """A region with its own world coordinates and camera: ``bounds = (x0, y0, x1, y1)``."""

    name: str
    bounds: tuple[float, float, float, float]
    rects: Rects = field(default_factory=Rects)
    images: Images = field(default_factory=Images)
    lines: Polylines = field(default_factory=Polylines)
    points: Points = field(default_factory=Points)
    labels: Labels = field(default_factory=Labels)
    top_rects: Rects = field(default_factory=Rects)
    background: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    interactive: bool = True

    @property
    def width(self) -> float:
        return self.bounds[2] - self.bounds[0]

    @property
    def height(self) -> float:
        return self.bounds[3] - self.bounds[1]


@dataclass
class Highlight:
    """What is selected or lit up, as ids: the canvas draws overlays from this."""

    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    neurons: set[tuple[str, int]] = field(default_factory=set)
    clusters: set[tuple[str, int]] = field(default_factory=set)
    classes: set[int] = field(default_factory=set)

    def clear(self) -> None:
        self.samples = np.zeros(0, np.int64)
        self.neurons = set()
        self.clusters = set()
        self.classes = set()

    @property
    def empty(self) -> bool:
        return not (len(self.samples) or self.neurons or self.clusters or self.classes)


@dataclass
class Scene:
    """The whole picture: panels, their placement in a window, the legend and highlight state.

    Attributes
    ----------
    panels : dict of str to Panel
        ``"overview"``, ``"projection"`` and ``"legend"`` (the latter two may be absent).
    legend : list of LegendEntry
    neuron_boxes : dict of (layer, channel) to (x, y, w, h)
        Where each neuron sits inside its cluster's facet, in overview world units (for
        highlighting neurons).
    cluster_rects : dict of (layer, c) to (x, y, w, h)
    class_colors : ndarray, shape (n_classes, 4)
    class_names : list of str
    meta : dict
        Build options (facet, palette, ...) and titles.
    """

    panels: dict[str, Panel]
    legend: list[LegendEntry] = field(default_factory=list)
    neuron_boxes: dict[tuple[str, int], tuple[float, float, float, float]] = field(
        default_factory=dict
    )
    cluster_rects: dict[tuple[str, int], tuple[float, float, float, float]] = field(
        default_factory=dict
    )
    class_colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    class_names: list[str] = field(default_factory=list)
    highlight: Highlight = field(default_factory=Highlight)
    meta: dict[str, Any] = field(default_factory=dict)

    # -- window layout ---------------------------------------------------------------------------
    def panel_layout(self, width: int, height: int) -> dict[str, tuple[int, int, int, int]]:
        """Pixel rectangles ``(x, y, w, h)`` of the panels in a ``width x height`` window.

        The overview takes the left part; the projection (square) and the legend stack on the
        right. Shared by the canvas and the SVG exporter so both show the same picture.
        """
        if width <= 0 or height <= 0:
            raise ValueError(f"window size must be positive, got {width}x{height}")
        names = set(self.panels)
        if names == {"overview"}:
            return {"overview": (0, 0, width, height)}
        right = int(min(0.36 * width, 0.62 * height))
        right = max(right, min(240, width // 2))
        left = width - right
        out = {"overview": (0, 0, left, height)}
        if "projection" in names and "legend" in names:
            proj_h = min(right, int(0.62 * height))
            out["projection"] = (left, 0, right, proj_h)
            out["legend"] = (left, proj_h, right, height - proj_h)
        elif "projection" in names:
            out["projection"] = (left, 0, right, height)
        elif "legend" in names:
            out["legend"] = (left, 0, right, height)
        return out

    @staticmethod
    def fit_zoom(panel: Panel, viewport: tuple[int, int, int, int]) -> float:
        """Screen pixels per world unit when ``panel`` is fitted into ``viewport``."""
        _, _, w, h = viewport
        return float(min(w / max(panel.width, 1e-9), h / max(panel.height, 1e-9)))

    # -- hit testing -----------------------------------------------------------------------------
    def pick(
        self, panel: str, x: float, y: float, zoom: float = 1.0, tolerance_px: float = 3.0
    ) -> Id | None:
        """The id of the topmost object at world point ``(x, y)`` of ``panel``, or None.

        ``zoom`` is the current screen pixels per world unit and ``tolerance_px`` the slack in
        screen pixels. Points (screen-sized markers) are hit within their radius plus the slack;
        edges within half their (world) width plus the slack; rectangles by containment. Points
        win over the nodes on top of edges, those over edges, edges over rectangles, and smaller
        rectangles over the larger ones they sit in (a cluster over its band). A layer group's
        title shown at this zoom is hit in its text box, over the rectangles, as its band.
        """
        if zoom <= 0:
            raise ValueError(f"zoom must be positive, got {zoom}")
        p = self.panels[panel]
        tol = tolerance_px / zoom
        if len(p.points):
            d = np.hypot(p.points.xy[:, 0] - x, p.points.xy[:, 1] - y)
            k = int(np.argmin(d))
            if d[k] <= tol + 0.5 * p.points.size / zoom:
                return p.points.ids[k]
        title = _pick_title(p.labels, x, y, zoom)
        if title is not None:
            return title
        for rects in (p.top_rects, None, p.rects):
            if rects is None:
                if len(p.lines):
                    d = p.lines.segment_distance(x, y) - 0.5 * p.lines.width
                    k = int(np.argmin(d))
                    if d[k] <= tol:
                        return p.lines.ids[k]
                continue
            if len(rects) and rects.pickable:
                inside = np.flatnonzero(rects.contains(x, y))
                if len(inside):
                    area = rects.xywh[inside, 2] * rects.xywh[inside, 3]
                    return rects.ids[int(inside[np.argmin(area)])]
        return None

    def select_box(
        self, panel: str, x0: float, y0: float, x1: float, y1: float, kind: str | None = None
    ) -> list[Id]:
        """Ids of the points and rectangles of ``panel`` inside the box (optionally one kind)."""
        xa, xb = sorted((x0, x1))
        ya, yb = sorted((y0, y1))
        p = self.panels[panel]
        out: list[Id] = []
        if len(p.points):
            xy = p.points.xy
            hit = (xy[:, 0] >= xa) & (xy[:, 0] <= xb) & (xy[:, 1] >= ya) & (xy[:, 1] <= yb)
            ids = p.points.ids
            out += [ids[i] for i in np.flatnonzero(hit).tolist()]  # plain ints index a list faster
        if len(p.rects) and p.rects.pickable:
            r = p.rects.xywh
            hit = (r[:, 0] >= xa) & (r[:, 0] + r[:, 2] <= xb) & (r[:, 1] >= ya)
            hit &= r[:, 1] + r[:, 3] <= yb
            out += [p.rects.ids[i] for i in np.flatnonzero(hit).tolist()]
        if kind is not None:
            out = [i for i in out if i[0] == kind]
        return out

    def select_lasso(self, panel: str, polygon: np.ndarray, kind: str | None = None) -> list[Id]:
        """Ids of the points (and rectangle centres) of ``panel`` inside a closed polygon."""
        poly = np.asarray(polygon, dtype=np.float64)
        if poly.ndim != 2 or poly.shape[1] != 2 or len(poly) < 3:
            raise ValueError("a lasso needs a polygon of at least 3 (x, y) vertices")
        p = self.panels[panel]
        out: list[Id] = []
        if len(p.points):
            hit = points_in_polygon(p.points.xy, poly)
            ids = p.points.ids
            out += [ids[i] for i in np.flatnonzero(hit).tolist()]  # plain ints index a list faster
        if len(p.rects) and p.rects.pickable:
            r = p.rects.xywh
            centres = np.stack([r[:, 0] + r[:, 2] / 2, r[:, 1] + r[:, 3] / 2], axis=1)
            hit = points_in_polygon(centres, poly)
            out += [p.rects.ids[i] for i in np.flatnonzero(hit).tolist()]
        if kind is not None:
            out = [i for i in out if i[0] == kind]
        return out

    # -- level of detail -------------------------------------------------------------------------
    def visible_labels(self, panel: str, zoom: float) -> np.ndarray:
        """Boolean mask of the labels of ``panel`` shown at ``zoom`` (pixels per world unit)."""
        return self.panels[panel].labels.min_zoom <= zoom

    def visible_images(self, panel: str, zoom: float) -> np.ndarray:
        """Boolean mask of the images of ``panel`` shown at ``zoom``."""
        return self.panels[panel].images.min_zoom <= zoom

    # -- highlight -------------------------------------------------------------------------------
    def sample_ids(self) -> np.ndarray:
        """Sample positions of the projection's points, in point order."""
        p = self.panels.get("projection")
        if p is None or not len(p.points):
            return np.zeros(0, np.int64)
        return np.array([i[1] for i in p.points.ids], dtype=np.int64)

    def highlighted_points(self) -> np.ndarray:
        """Boolean mask of the projection's points that the highlight lights up: its samples and
        every sample of its classes (the canvas and the SVG draw these on top)."""
        p = self.panels.get("projection")
        if p is None or not len(p.points):
            return np.zeros(0, bool)
        hl = self.highlight
        sel = np.zeros(len(p.points), bool)
        if len(hl.samples):
            sel |= np.isin(self.sample_ids(), hl.samples)
        if hl.classes:
            sel |= np.isin(p.points.labels, sorted(hl.classes))
        return sel


def points_in_polygon(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Boolean mask of the points ``xy`` (n, 2) inside the closed polygon ``poly`` (m, 2), by the
    even-odd rule; nothing is inside a polygon of fewer than 3 vertices.

    A point can only be inside if its y lies within the polygon's y-range, and an edge from
    ``yi`` to ``yj`` is crossed only by the rays of points with ``min <= y < max``. So the points
    in the polygon's y-range are bucketed by y once (a radix sort on the bucket number), and
    each edge tests only the points of the buckets its band touches: a lasso over 100,000
    points costs about as many point tests as the horizontal lines through it cross edges,
    not points times edges. The test itself is the exact crossing rule on every point.
    """
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    poly = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
    inside = np.zeros(len(pts), dtype=bool)
    if len(poly) < 3 or np.isnan(poly[:, 1]).all():
        return inside
    lo_y, hi_y = float(np.nanmin(poly[:, 1])), float(np.nanmax(poly[:, 1]))
    with np.errstate(invalid="ignore"):
        near = np.flatnonzero((pts[:, 1] >= lo_y) & (pts[:, 1] < hi_y))
    bucket = _y_buckets(lo_y, hi_y, min(4096, len(near) // 8 + 1))
    keys = bucket(pts[near, 1])
    order = np.argsort(keys.astype(np.uint16), kind="stable")  # a radix sort
    near, keys = near[order], keys[order]
    starts = np.searchsorted(keys, np.arange(int(keys[-1]) + 2 if len(keys) else 1))
    x, y = pts[near, 0], pts[near, 1]
    hit = np.zeros(len(near), dtype=bool)
    xj, yj = poly[-1]
    for xi, yi in poly:
        if not (np.isnan(yi) or np.isnan(yj)) and len(near):
            b0, b1 = bucket(np.array([min(yi, yj), max(yi, yj)]))
            lo, hi = starts[min(b0, len(starts) - 1)], starts[min(b1 + 1, len(starts) - 1)]
            ys, xs = y[lo:hi], x[lo:hi]
            crosses = (yi > ys) != (yj > ys)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_cross = (xj - xi) * (ys - yi) / (yj - yi) + xi
            hit[lo:hi] ^= crosses & (xs < x_cross)
        xj, yj = xi, yi
    inside[near] = hit
    return inside


def _y_buckets(lo: float, hi: float, n: int):
    """``bucket(y)``: ``n`` equal slices of ``[lo, hi)`` numbered upwards, clipped to them; one
    monotone formula for points and edge ends, so an edge's buckets hold all of its band."""
    scale = n / (hi - lo) if np.isfinite(hi - lo) and hi > lo else 0.0

    def bucket(v: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            b = np.nan_to_num((np.asarray(v, np.float64) - lo) * scale, nan=0.0)
        return np.clip(b, 0, n - 1).astype(np.int64)

    return bucket
