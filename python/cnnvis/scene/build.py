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
from .inputs import LayerInput, OverviewInput, overview_input
from .model import (
    Images,
    Labels,
    LegendEntry,
    Panel,
    Points,
    Polylines,
    Rects,
    Scene,
    text_width_px,
)

__all__ = ["build_scene", "load_scene"]

# overview geometry (world units; about a pixel each at 1920x1080)
LABEL_W = 170.0  # left margin for band labels
CONTENT_W = 1100.0  # width available to a row of clusters
ROW_H_RANGE = (80.0, 240.0)  # height of a row (the largest cluster's side), by row count
GAP_RANGE = (70.0, 120.0)  # vertical gap between rows, where the bundled edges run
BAND_PAD = 18.0  # band padding around its rows
MIN_CLUSTER_GAP = 12.0
MIN_SIDE = 5.0
CURVE_POINTS = 14
NODE_SIDE = 8.0
EDGE_MIN_W, EDGE_MAX_W = 0.8, 5.0

FACET_MIN_PX = 26.0
LABEL_MIN_ZOOM = 0.45  # a facet is drawn from this on-screen side on
DPI = 96.0

INK = (0.16, 0.18, 0.21, 1.0)
MUTED = (0.38, 0.41, 0.46, 1.0)
BAND_FILL = (0.955, 0.962, 0.972, 1.0)
BAND_FILL_ALT = (0.925, 0.936, 0.95, 1.0)
CLUSTER_FILL = (0.9, 0.914, 0.93, 1.0)
CLUSTER_STROKE = (0.35, 0.38, 0.43, 1.0)


def build_scene(
    analysis: Any,
    *,
    facet: str = "features",
    facet_overrides: Mapping[tuple[str, int], str] | None = None,
    expanded: Collection[str] | None = None,
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
    expanded : collection of str, optional
        Layer groups shown with all their analysed layers; other groups show their last analysed
        layer only. ``None`` expands every group.
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
    overview = _build_overview(data, scene, facet, overrides, expanded, pos_color, neg_color)
    scene.panels["overview"] = overview
    if projection and data.projection is not None:
        scene.panels["projection"] = _build_projection(data, ccolors, max_points)
    if legend:
        scene.panels["legend"] = _build_legend(data, scene, ccolors, pos_color, neg_color, facet)
    return scene


# -- overview ------------------------------------------------------------------------------------
def _shown_rows(
    data: OverviewInput, expanded: Collection[str] | None
) -> list[tuple[str, LayerInput]]:
    rows: list[tuple[str, LayerInput]] = []
    for group, names in data.groups:
        keep = names if (expanded is None or group in expanded) else names[-1:]
        rows += [(group, data.layer(n)) for n in keep]
    return rows


def _order_clusters(prev_x: dict[int, float] | None, layer: LayerInput, strength) -> list[int]:
    """Order a row's clusters by the barycentre of their incoming strengths (fewer crossings)."""
    idx = list(range(len(layer.clusters)))
    if prev_x is None or strength is None or not prev_x:
        return idx
    s = np.abs(np.asarray(strength, dtype=np.float64))
    xs = np.array([prev_x[i] for i in range(s.shape[0])])
    key = []
    for j in idx:
        w = s[:, j] if j < s.shape[1] else np.zeros(len(xs))
        key.append(float((w * xs).sum() / w.sum()) if w.sum() > 0 else np.inf)
    # stable: ties (and unconnected clusters) keep their analysis order
    return sorted(idx, key=lambda j: (key[j], j))


def _bezier(p0, p3, n: int = CURVE_POINTS) -> np.ndarray:
    """A vertical-tangent cubic from p0 down (or up) to p3."""
    (x0, y0), (x3, y3) = p0, p3
    k = 0.5 * (y3 - y0)
    t = np.linspace(0.0, 1.0, n)[:, None]
    c = np.array([[x0, y0], [x0, y0 + k], [x3, y3 - k], [x3, y3]], dtype=np.float64)
    b = (1 - t) ** 3 * c[0] + 3 * (1 - t) ** 2 * t * c[1] + 3 * (1 - t) * t**2 * c[2] + t**3 * c[3]
    return b


def _spread(values: list[float], lo: float, hi: float, min_gap: float) -> list[float]:
    """Move sorted-order positions apart to at least ``min_gap``, staying in [lo, hi] if possible."""
    if not values:
        return []
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=np.float64)[order]
    for i in range(1, len(v)):
        v[i] = max(v[i], v[i - 1] + min_gap)
    if v[-1] > hi:
        v -= v[-1] - hi
    if v[0] < lo:
        v += lo - v[0]
    out = np.empty_like(v)
    out[order] = v
    return out.tolist()


def _short(name: str, max_chars: int) -> str:
    return name if len(name) <= max_chars else "\u2026" + name[-(max_chars - 1) :]


def _facet_images(cluster, facet: str) -> tuple[str | None, np.ndarray | None]:
    if facet == "features" and cluster.features is not None:
        return "features", cluster.features
    if cluster.matrix is not None:
        return "matrix", None
    if cluster.features is not None:
        return "features", cluster.features
    return None, None


def _build_overview(data, scene, facet, overrides, expanded, pos_color, neg_color) -> Panel:
    rows = _shown_rows(data, expanded)
    # rows as tall as fits a roughly square overview, within limits
    n_rows = len(rows)
    target = LABEL_W + CONTENT_W - 2 * BAND_PAD
    ROW_H = float(np.clip(target / (n_rows + 0.7 * (n_rows - 1)), *ROW_H_RANGE))
    GAP_H = float(np.clip(0.7 * ROW_H, *GAP_RANGE))
    sides_all = [np.sqrt(max(c.size, 1)) for _, lay in rows for c in lay.clusters]
    if not sides_all:
        raise ValueError("the analysed layers have no clusters")
    scale = ROW_H / max(sides_all)
    for _, lay in rows:
        n = len(lay.clusters)
        total = sum(np.sqrt(max(c.size, 1)) for c in lay.clusters)
        if total > 0:
            scale = min(scale, (CONTENT_W - MIN_CLUSTER_GAP * (n - 1)) / total)

    # matrix value range per layer, so clusters of a layer compare
    ranges: dict[str, tuple[float, float]] = {}
    for _, lay in rows:
        vals = [c.matrix for c in lay.clusters if c.matrix is not None and np.size(c.matrix)]
        if vals:
            allv = np.concatenate([np.asarray(v, np.float64).ravel() for v in vals])
            allv = allv[np.isfinite(allv)]
            lo, hi = (float(allv.min()), float(allv.max())) if allv.size else (0.0, 1.0)
            ranges[lay.name] = (lo, hi if hi > lo else lo + 1.0)

    rect_xywh, rect_fill, rect_stroke, rect_sw, rect_ids = [], [], [], [], []
    top_xywh, top_fill, top_stroke, top_sw, top_ids = [], [], [], [], []
    images = Images()
    img_data, img_xywh, img_interp, img_zoom, img_ids = [], [], [], [], []
    labels = Labels()
    cluster_x: dict[str, dict[int, float]] = {}
    row_left: dict[str, float] = {}
    row_y: dict[str, float] = {}

    y = BAND_PAD
    band_start = None
    prev_group = None
    prev_layer: LayerInput | None = None
    bands: list[tuple[str, float, float, list[str]]] = []
    for group, lay in rows:
        if group != prev_group:
            if band_start is not None:
                bands[-1] = (bands[-1][0], band_start, y - GAP_H + BAND_PAD, bands[-1][3])
            band_start = y - BAND_PAD
            bands.append((group, band_start, 0.0, []))
        bands[-1][3].append(lay.name)
        row_y[lay.name] = y
        conn = data.connection(prev_layer.name, lay.name) if prev_layer is not None else None
        order = _order_clusters(
            cluster_x.get(prev_layer.name) if prev_layer is not None else None,
            lay,
            conn.strength if conn is not None else None,
        )
        sides = {c: max(scale * np.sqrt(max(lay.clusters[c].size, 1)), MIN_SIDE) for c in order}
        total = sum(sides.values())
        n = len(order)
        gap = min(48.0, (CONTENT_W - total) / (n + 1)) if n else 0.0
        gap = max(gap, MIN_CLUSTER_GAP if n > 1 else 0.0)
        x = LABEL_W + (CONTENT_W - (total + gap * (n - 1))) / 2.0
        cluster_x[lay.name] = {}
        row_left[lay.name] = x  # the left edge of the row's first square
        for c in order:
            cl = lay.clusters[c]
            side = sides[c]
            cy = y + (ROW_H - side) / 2.0
            cid = ("cluster", lay.name, int(cl.index))
            rect = (x, cy, side, side)
            scene.cluster_rects[(lay.name, int(cl.index))] = rect
            cluster_x[lay.name][c] = x + side / 2.0
            rect_xywh.append(rect)
            rect_fill.append(CLUSTER_FILL)
            rect_stroke.append(CLUSTER_STROKE)
            rect_sw.append(1.0)
            rect_ids.append(cid)
            want = overrides.get((lay.name, int(cl.index)), facet)
            kind, feat = _facet_images(cl, want)
            min_zoom = FACET_MIN_PX / side
            if kind == "features":
                fh, fw = feat.shape[:2]
                pad = min(1.5, side * 0.04)
                inner = side - 2 * pad
                f = min(inner / fw, inner / fh)
                iw, ih = fw * f, fh * f
                ix, iy = x + (side - iw) / 2.0, cy + (side - ih) / 2.0
                img_data.append(_rgba(feat))
                img_xywh.append((ix, iy, iw, ih))
                img_interp.append("linear")
                img_zoom.append(min_zoom)
                img_ids.append(cid)
                if cl.feature_boxes is not None:
                    for ch, (bx0, by0, bx1, by1) in zip(cl.neurons, cl.feature_boxes):
                        scene.neuron_boxes[(lay.name, int(ch))] = (
                            ix + bx0 * f,
                            iy + by0 * f,
                            (bx1 - bx0) * f,
                            (by1 - by0) * f,
                        )
                else:
                    for ch in cl.neurons:
                        scene.neuron_boxes[(lay.name, int(ch))] = rect
            elif kind == "matrix":
                lo, hi = ranges[lay.name]
                img_data.append(colormap(np.asarray(cl.matrix, np.float64), lo, hi))
                img_xywh.append(rect)
                img_interp.append("nearest")
                img_zoom.append(min_zoom)
                img_ids.append(cid)
                nrow = max(len(cl.neurons), 1)
                for i, ch in enumerate(cl.neurons):
                    scene.neuron_boxes[(lay.name, int(ch))] = (
                        x,
                        cy + side * i / nrow,
                        side,
                        side / nrow,
                    )
            else:
                for ch in cl.neurons:
                    scene.neuron_boxes[(lay.name, int(ch))] = rect
            # cluster caption above the square, shown once it fits over the square's width
            cap = f"#{int(cl.index)} \u00b7 {cl.size}"
            cap_px = 8.0 * DPI / 72.0
            labels.add(
                cap,
                (x, cy - 2.0),
                size=8.0,
                color=MUTED,
                anchor=("left", "bottom"),
                min_zoom=text_width_px(cap, cap_px) / side,
                id=cid,
                background=(1.0, 1.0, 1.0, 0.85),
            )
            x += side + gap
        prev_group = group
        prev_layer = lay
        y += ROW_H + GAP_H
    bands[-1] = (bands[-1][0], bands[-1][1], y - GAP_H + BAND_PAD, bands[-1][3])

    # bands behind everything, with their labels in the left margin: per row up to three lines
    # (group name, layer name, sizes), each shown once it fits the margin and clears the line above
    band_xywh, band_fill, band_ids = [], [], []
    line_step = 26.0
    for b, (group, y0, y1, names) in enumerate(bands):
        band_xywh.append((4.0, y0, LABEL_W + CONTENT_W + 12.0, y1 - y0))
        band_fill.append(BAND_FILL if b % 2 == 0 else BAND_FILL_ALT)
        band_ids.append(("band", group))
        for r, name in enumerate(names):
            lay = data.layer(name)
            lines: list[tuple[str, float, bool, tuple]] = []
            if r == 0:
                lines.append((_short(group, 18), 10.0, True, ("band", group)))
            if len(names) > 1 or name != group:
                lines.append((_short(name, 24), 8.0, False, ("layer", name)))
            lines.append((f"{lay.n_channels} neurons", 7.5, False, ("layer", name)))
            lines.append((f"{len(lay.clusters)} clusters", 7.5, False, ("layer", name)))
            prev_px = 0.0
            offset = 4.0
            # a line may run on into the band up to the row's first square (centred rows leave
            # room: a group title such as "block1-block2" then shows in the overview)
            room = max(LABEL_W - 24.0, row_left[name] - 14.0 - 12.0)
            for k, (text, pt, bold, lid) in enumerate(lines):
                px = pt * DPI / 72.0
                zoom = text_width_px(text, px) / room
                if k:
                    # each line sits far enough below the previous one to clear it from
                    # LABEL_MIN_ZOOM on (windows of 1280x800 and up fit the overview above that)
                    step = max(line_step, 1.3 * prev_px / LABEL_MIN_ZOOM)
                    offset += step
                    zoom = max(zoom, 1.3 * prev_px / step)
                labels.add(
                    text,
                    (14.0, row_y[name] + offset),
                    size=pt,
                    color=INK if bold else MUTED,
                    anchor=("left", "top"),
                    bold=bold,
                    min_zoom=zoom,
                    id=lid,
                )
                prev_px = px

    lines_out, nodes = _route_edges(
        data, rows, scene, cluster_x, row_y, ROW_H, pos_color, neg_color
    )
    for nid, nxywh, ncol in nodes:
        top_xywh.append(nxywh)
        top_fill.append(ncol)
        top_stroke.append((1.0, 1.0, 1.0, 1.0))
        top_sw.append(1.0)
        top_ids.append(nid)

    images = Images(
        data=img_data,
        xywh=np.asarray(img_xywh, np.float32).reshape(-1, 4),
        interpolation=img_interp,
        min_zoom=np.asarray(img_zoom, np.float32),
        ids=img_ids,
    )
    rects = Rects.from_lists(
        band_xywh + rect_xywh,
        band_fill + rect_fill,
        [(0, 0, 0, 0)] * len(band_xywh) + rect_stroke,
        [0.0] * len(band_xywh) + rect_sw,
        band_ids + rect_ids,
    )
    panel = Panel(
        "overview",
        (0.0, 0.0, LABEL_W + CONTENT_W + 20.0, max(y - GAP_H + BAND_PAD + 4.0, ROW_H)),
        rects=rects,
        images=images,
        lines=lines_out,
        labels=labels,
    )
    panel.top_rects = Rects.from_lists(top_xywh, top_fill, top_stroke, top_sw, top_ids)
    return panel


def _rgba(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(np.asarray(a, np.float64) * (255.0 if a.max(initial=0) <= 1.0 else 1.0), 0, 255)
        a = a.astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(a)


def _route_edges(data, rows, scene, cluster_x, row_y, row_h, pos_color, neg_color):
    """Bicluster nodes in the gaps and half-edge curves through them."""
    nodes = []
    curves: list[tuple[tuple, tuple, tuple, float, int]] = []
    for (_, a), (_, b) in zip(rows[:-1], rows[1:]):
        conn = data.connection(a.name, b.name)
        if conn is None:
            continue
        s_all = np.asarray(conn.strength, dtype=np.float64)
        signed = {
            1: np.abs(conn.positive) if conn.positive is not None else np.maximum(s_all, 0),
            -1: np.abs(conn.negative) if conn.negative is not None else -np.minimum(s_all, 0),
        }
        y_src = row_y[a.name] + row_h
        y_dst = row_y[b.name]
        y_node = 0.5 * (y_src + y_dst)
        xs_a, xs_b = cluster_x[a.name], cluster_x[b.name]
        want = []
        for bc in conn.biclusters:
            members = [xs_a[int(i)] for i in bc.rows] + [xs_b[int(j)] for j in bc.cols]
            want.append(float(np.mean(members)) if members else LABEL_W + CONTENT_W / 2)
        node_x = _spread(want, LABEL_W, LABEL_W + CONTENT_W, NODE_SIDE + 4.0)
        for k, bc in enumerate(conn.biclusters):
            sign = 1 if bc.sign >= 0 else -1
            nid = ("bicluster", a.name, b.name, k)
            color = pos_color if sign > 0 else neg_color
            nodes.append(
                (
                    nid,
                    (node_x[k] - NODE_SIDE / 2, y_node - NODE_SIDE / 2, NODE_SIDE, NODE_SIDE),
                    color,
                )
            )
            rows_i = [int(i) for i in bc.rows]
            cols_j = [int(j) for j in bc.cols]
            s = signed[sign]
            for i in rows_i:
                st = float(np.abs(s[i, cols_j]).sum()) if cols_j else 0.0
                curves.append(
                    (
                        ("edge", a.name, b.name, k, "src", i),
                        (a.name, i, "out"),
                        (node_x[k], y_node),
                        st,
                        sign,
                    )
                )
            for j in cols_j:
                st = float(np.abs(s[rows_i, j]).sum()) if rows_i else 0.0
                curves.append(
                    (
                        ("edge", a.name, b.name, k, "dst", j),
                        (node_x[k], y_node),
                        (b.name, j, "in"),
                        st,
                        sign,
                    )
                )
        direct = np.asarray(conn.direct, dtype=np.int64).reshape(-1, 2)
        dsign = conn.direct_sign
        for d, (i, j) in enumerate(direct):
            if dsign is not None:
                sign = int(np.sign(dsign[d])) or 1
            else:
                sign = 1 if s_all[i, j] >= 0 else -1
            curves.append(
                (
                    ("edge", a.name, b.name, "direct", int(i), int(j)),
                    (a.name, int(i), "out"),
                    (b.name, int(j), "in"),
                    float(signed[sign][i, j]),
                    sign,
                )
            )
        del y_dst

    # attachment points: spread each cluster's ends along its bottom (out) or top (in) edge, in the
    # order of the other end's x so curves leaving one square do not cross each other
    def other_x(end) -> float:
        if isinstance(end[0], str):
            return cluster_x[end[0]][end[1]]
        return float(end[0])

    slots: dict[tuple, list[tuple[float, int, str]]] = {}
    for ci, (_, p, q, _, _) in enumerate(curves):
        if isinstance(p[0], str):
            slots.setdefault(p, []).append((other_x(q), ci, "p"))
        if isinstance(q[0], str):
            slots.setdefault(q, []).append((other_x(p), ci, "q"))
    attach: dict[tuple[int, str], tuple[float, float]] = {}
    for (layer, c, io), lst in slots.items():
        rx, ry, rw, rh = scene.cluster_rects[(layer, _cluster_index(data, layer, c))]
        lst.sort()
        m = len(lst)
        for k, (_, ci, which) in enumerate(lst):
            t = 0.5 if m == 1 else 0.2 + 0.6 * k / (m - 1)
            attach[(ci, which)] = (rx + t * rw, ry + rh if io == "out" else ry)

    strengths = np.array([c[3] for c in curves], dtype=np.float64)
    smax = float(strengths.max()) if len(strengths) and strengths.max() > 0 else 1.0
    pts, offsets, colors, widths, signs, ids = [], [0], [], [], [], []
    for ci, (cid, p, q, st, sign) in enumerate(curves):
        p0 = attach[(ci, "p")] if isinstance(p[0], str) else p
        p3 = attach[(ci, "q")] if isinstance(q[0], str) else q
        pts.append(_bezier(p0, p3))
        offsets.append(offsets[-1] + CURVE_POINTS)
        col = np.array(pos_color if sign > 0 else neg_color, np.float32)
        col[3] = 0.78
        colors.append(col)
        widths.append(EDGE_MIN_W + (EDGE_MAX_W - EDGE_MIN_W) * np.sqrt(st / smax))
        signs.append(sign)
        ids.append(cid)
    lines = Polylines(
        points=np.concatenate(pts).astype(np.float32) if pts else np.zeros((0, 2), np.float32),
        offsets=np.asarray(offsets, np.int64),
        color=np.asarray(colors, np.float32).reshape(-1, 4),
        width=np.asarray(widths, np.float32),
        sign=np.asarray(signs, np.int8),
        strength=strengths.astype(np.float32),
        ids=ids,
    )
    return lines, nodes


def _cluster_index(data: OverviewInput, layer: str, position: int) -> int:
    return int(data.layer(layer).clusters[position].index)


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
    labels = Labels()
    xywh, fill, stroke, sw, ids = [], [], [], [], []
    entries: list[LegendEntry] = []
    x0, y = 18.0, 16.0
    labels.add("Classes", (x0, y), size=9.0, color=INK, anchor=("left", "top"), bold=True)
    y += 24.0
    names = list(data.class_names)
    shown = names[:MAX_LEGEND_CLASSES]
    ncol = 1 if len(shown) <= 5 else (2 if len(shown) <= 10 else 3)
    col_w = (LEGEND_W - 2 * x0) / ncol
    per_col = int(np.ceil(len(shown) / ncol)) if shown else 0
    row_h = 19.0
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
    y += 10.0
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
    images = Images()
    if facet == "matrix":
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
    scene.legend = entries
    panel = Panel(
        "legend",
        (0.0, 0.0, LEGEND_W, max(LEGEND_H, y + 8.0)),
        rects=Rects.from_lists(xywh, fill, stroke, sw, ids),
        images=images,
        lines=Polylines(
            points=np.concatenate(pts).astype(np.float32),
            offsets=np.asarray(offsets, np.int64),
            color=np.asarray(lcol, np.float32),
            width=np.asarray(lw, np.float32),
            sign=np.asarray(lsign, np.int8),
            strength=np.ones(len(lids), np.float32),
            ids=lids,
        ),
        points=Points(
            xy=pts_xy,
            color=point_col,
            size=7.0,
            marked=np.array([False, True]),
            labels=np.zeros(2, np.int64),
            ids=[("legend-point", 0), ("legend-point", 1)],
        ),
        labels=labels,
        interactive=False,
    )
    panel.top_rects = Rects()
    return panel


# -- sessions ------------------------------------------------------------------------------------
def load_scene(session: Any, **options: Any) -> Scene:
    """Build the scene of a session.

    ``session`` is a session folder (opened with :func:`cnnvis.session.open_session`: its saved
    analysis, edits included, or the default one), a :class:`~cnnvis.Recording`, an
    :class:`~cnnvis.Analysis` or an :class:`OverviewInput`. ``options`` go to :func:`build_scene`.

    Raises
    ------
    cnnvis.SessionError, FileNotFoundError
        For a missing or damaged session folder.
    """
    import os

    if isinstance(session, OverviewInput) or hasattr(session, "activation_matrix"):
        return build_scene(session, **options)
    from cnnvis.analysis import analyze

    if isinstance(session, (str, bytes, os.PathLike)):
        path = os.fsdecode(session)
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no session folder at {path!r}")
        from cnnvis.session import open_session

        analysis = open_session(path)
    elif hasattr(session, "layers") and hasattr(session, "class_means"):
        analysis = analyze(session)
    else:
        raise TypeError(
            "load_scene needs a session folder, a Recording, an Analysis or an OverviewInput, "
            f"got {type(session).__name__}"
        )
    return build_scene(analysis, **options)
