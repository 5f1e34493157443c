"""Geometry of the overview's rows: units side by side, their clusters packed to fill the panel.

The drawing is fitted to a target box (:data:`TARGET_W` x :data:`TARGET_H`, the overview panel's
shape at 1920x1080 beside the projection and the legend) by one scale: a cluster of ``n`` neurons
is a square of side ``scale * sqrt(n)``. Each row gives its units widths in proportion to what
they hold; a unit whose clusters do not fit its width wraps them onto more lines (so a layer of
2,048 neurons becomes a block of squares, not a line leaving the screen). The largest scale
whose rows fit the target height wins (bisection). A network with more rows than the target
height holds even at the smallest scale (ResNet-50 with every group open: 50 rows) is drawn at
that scale, and its target width is widened to the target's shape at the drawing's height, so
the rows spread over the panel's width instead of wrapping into a thin column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import text_width_px

__all__ = ["RowLayout", "layout_rows"]

TARGET_W, TARGET_H = 1300.0, 1120.0
MARGIN = 16.0
TOP = 44.0  # above the first row: room for the titles of the groups that open there
UNIT_GAP = 28.0  # between units of a row
ROW_GAP = 78.0  # most room between rows (connections, group titles); less with many rows
MIN_ROW_GAP = 40.0
HEADER_H = 22.0  # a unit's name above its clusters
CLUSTER_GAP_FRAC = 0.14  # gap between squares, as a fraction of the row's mean side
MIN_SIDE = 18.0
MAX_SIDE = 200.0
ZOOM_EST = 0.8  # on-screen pixels per world unit at fit, at the smallest window we design for
NAME_PT = 10.0
DPI = 96.0


@dataclass
class RowLayout:
    """Where the units and their clusters go (world units, y down)."""

    unit_box: dict[str, tuple[float, float, float, float]]  # name -> x, y, w, h (header included)
    squares: dict[str, list[tuple[float, float, float]]]  # name -> (x, y, side) per cluster
    row_top: list[float]
    row_bottom: list[float]
    width: float
    height: float
    scale: float
    row_gap: float


def _name_width(name: str) -> float:
    """World width the unit's name needs to be read at fit."""
    return text_width_px(name, NAME_PT * DPI / 72.0) / ZOOM_EST + 8.0


def _pack(sides: np.ndarray, width: float, gap: float) -> tuple[list[tuple], float, float]:
    """Shelf-pack squares left to right into lines of ``width``: (positions, used w, height)."""
    pos, x, y, line_h, used = [], 0.0, 0.0, 0.0, 0.0
    for s in sides:
        if x > 0 and x + s > width + 1e-9:
            y += line_h + gap
            x, line_h = 0.0, 0.0
        pos.append((x, y))
        used = max(used, x + s)
        x += s + gap
        line_h = max(line_h, s)
    return pos, used, y + line_h


def _row_geometry(units, sizes, scale, width, titles):
    """Pack one row at ``scale``: per unit (positions, sides, unit width), and the row height."""
    sides = {
        u: np.clip(scale * np.sqrt(np.maximum(sizes[u], 1)), MIN_SIDE, MAX_SIDE) for u in units
    }
    gaps = {u: max(3.0, CLUSTER_GAP_FRAC * float(sides[u].mean())) for u in units}
    natural = {u: float(sides[u].sum() + gaps[u] * (len(sides[u]) - 1)) for u in units}
    need = {u: max(_name_width(titles.get(u, u)), float(sides[u].max())) for u in units}
    room = width - UNIT_GAP * (len(units) - 1)
    total = sum(max(natural[u], need[u]) for u in units)
    out, height = {}, 0.0
    for u in units:
        w = max(natural[u], need[u])
        if total > room:  # share the width by content, never below the name's width
            w = max(need[u], room * max(natural[u], need[u]) / total)
        pos, used, h = _pack(sides[u], w, gaps[u])
        out[u] = (pos, sides[u], max(used, need[u]))
        height = max(height, h)
    return out, height + HEADER_H


def layout_rows(
    rows: list[list[str]],
    sizes: dict[str, np.ndarray],
    target=(TARGET_W, TARGET_H),
    titles: dict[str, str] | None = None,
) -> RowLayout:
    """Place the units of ``rows`` (names, left to right) with cluster sizes ``sizes[name]``;
    each unit is at least as wide as its title (``titles[name]``, default the name) needs."""
    titles = titles or {}
    tw, th = target
    inner_w = tw - 2 * MARGIN
    row_gap = row_gap_for(len(rows), th)
    gaps_h = row_gap * (len(rows) - 1) + MARGIN + TOP

    def height(scale: float) -> float:
        return sum(_row_geometry(r, sizes, scale, inner_w, titles)[1] for r in rows) + gaps_h

    biggest = max(float(np.sqrt(np.maximum(s, 1)).max()) for s in sizes.values())
    lo, hi = 1e-3, MAX_SIDE / biggest
    for _ in range(3):  # too tall at any scale: widen to the target's shape (less wrapping)
        tall = height(lo)
        if tall <= th or inner_w >= tall * tw / th - 2 * MARGIN - 1.0:
            break
        inner_w = tall * tw / th - 2 * MARGIN
    if height(hi) <= th:
        lo = hi
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if height(mid) <= th else (lo, mid)
    scale = lo
    unit_box, squares, tops, bottoms = {}, {}, [], []
    y, width = TOP, 0.0
    for r in rows:
        geo, row_h = _row_geometry(r, sizes, scale, inner_w, titles)
        total = sum(geo[u][2] for u in r) + UNIT_GAP * (len(r) - 1)
        x = MARGIN + max(0.0, (inner_w - total) / 2.0)
        for u in r:
            pos, sides, w = geo[u]
            unit_box[u] = (x, y, w, row_h)
            squares[u] = [(x + px, y + HEADER_H + py, float(s)) for (px, py), s in zip(pos, sides)]
            x += w + UNIT_GAP
        width = max(width, x - UNIT_GAP + MARGIN)
        tops.append(y)
        bottoms.append(y + row_h)
        y += row_h + row_gap
    # the panel is the drawing: shift it to the left margin, so a fit fills the window with it
    shift = min(b[0] for b in unit_box.values()) - MARGIN
    unit_box = {u: (x - shift, yy, w, h) for u, (x, yy, w, h) in unit_box.items()}
    squares = {u: [(x - shift, yy, s) for x, yy, s in sq] for u, sq in squares.items()}
    width = max(x + w for x, _, w, _ in unit_box.values()) + MARGIN
    return RowLayout(unit_box, squares, tops, bottoms, width, y - row_gap + MARGIN, scale, row_gap)


def row_gap_for(n_rows: int, height: float = TARGET_H) -> float:
    """The gap between rows: a third of the height shared out, within [MIN_ROW_GAP, ROW_GAP]."""
    return float(np.clip(height / 3.0 / max(n_rows - 1, 1), MIN_ROW_GAP, ROW_GAP))
