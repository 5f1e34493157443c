"""The overview panel: nested layer groups in rows by DAG depth, clusters with their facets.

See :mod:`cnnvis.scene.hierarchy` for which units are shown and on which row,
:mod:`cnnvis.scene.rows` for the geometry and :mod:`cnnvis.scene.links` for the connections.
Every unit is a band (a collapsed group, id ``("band", name)``, or a layer, ``("layer", name)``)
with its name on top and the clusters of its drawn layer below; an expanded group is a frame
(``("band", name)``) around its units, titled in the gap above it.
"""

from __future__ import annotations

import numpy as np

from cnnvis.graph.groups import nest_groups

from . import hierarchy, rows
from .colors import colormap
from .links import compose_connection, curve, edge_curves, lane_x
from .model import Images, LabelRows, Panel, Polylines, Rects, text_width_px

__all__ = ["build_overview", "groups_holding"]

DPI = 96.0
FACET_MIN_PX = 16.0  # a facet is drawn from this on-screen side on (every box at fit)
NODE_SIDE = 8.0
EDGE_MIN_W, EDGE_MAX_W = 0.8, 5.0
FRAME_PAD = 9.0
NAME_PT, INFO_PT, CAPTION_PT = rows.NAME_PT, 7.5, 8.0

INK = (0.16, 0.18, 0.21, 1.0)
MUTED = (0.38, 0.41, 0.46, 1.0)
BAND_FILL = (0.955, 0.962, 0.972, 1.0)
BAND_FILL_ALT = (0.925, 0.936, 0.95, 1.0)
UNIT_FILL = (0.985, 0.988, 0.992, 1.0)
CLUSTER_FILL = (0.9, 0.914, 0.93, 1.0)
CLUSTER_STROKE = (0.35, 0.38, 0.43, 1.0)
NAME_BACKDROP = (*UNIT_FILL[:3], 0.9)


def resolve_expanded(data, expanded=None, depth=None):
    """The expansion state: ``expanded`` names (``"all"``: every group), else the first
    ``depth`` levels, else :func:`~cnnvis.scene.hierarchy.default_expanded`."""
    tree = hierarchy.group_tree(data)
    dag = hierarchy.layer_dag(data)
    groups = [n for t in tree for n in t.walk() if not n.is_leaf]
    if isinstance(expanded, str):
        if expanded != "all":
            raise ValueError(
                f"expanded must be 'all' or a collection of group names, got {expanded!r}"
            )
        return tree, dag, {n.name for n in groups}
    if expanded is not None:
        return tree, dag, _with_parents(tree, set(expanded))
    if depth is not None:
        if int(depth) < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        return tree, dag, {n.name for n in groups if n.level < int(depth)}
    return tree, dag, hierarchy.default_expanded(tree, dag)


def _with_parents(tree, names: set[str]) -> set[str]:
    """The groups of ``names`` that show open: those whose parents are open too.

    An open group under a closed one is dropped, not reopened: closing ``layer2`` while
    ``layer2.0`` is open closes both (:func:`groups_holding` gives a group with its parents). A
    layer, or a group of one layer, opens nothing; a name that is neither is a ValueError.
    """
    _check_groups(names, tree)
    out: set[str] = set()

    def visit(node) -> None:
        if node.name in names and not node.is_leaf:
            out.add(node.name)
            for child in node.children:
                visit(child)

    for top in tree:
        visit(top)
    return out


def groups_holding(layer_groups, names) -> set[str]:
    """``names`` with every group that holds one of them (what opens a nested group in place:
    ``layer2.0`` gives ``{"layer2", "layer2.0"}``). ``layer_groups`` is the analysis' flat
    groups as ``(name, layers)`` pairs. A name that is no group is a ValueError."""
    names = set(names)
    tree = nest_groups([(name, list(layers)) for name, layers in layer_groups])
    _check_groups(names, tree)
    out: set[str] = set()

    def visit(node, path: tuple[str, ...]) -> None:
        if node.name in names:
            out.update(path + (node.name,))
        for child in node.children:
            visit(child, path + (node.name,))

    for top in tree:
        visit(top, ())
    return out


def _check_groups(names: set[str], tree) -> None:
    groups = {n.name for t in tree for n in t.walk() if not n.is_leaf}
    unknown = sorted(names - {n.name for t in tree for n in t.walk()})
    if unknown:
        raise ValueError(
            f"no layer group {', '.join(map(repr, unknown))}; groups: {', '.join(sorted(groups))}"
        )


def build_overview(data, scene, facet, overrides, expanded, depth, pos_color, neg_color) -> Panel:
    tree, dag, state = resolve_expanded(data, expanded, depth)
    units = hierarchy.visible_units(tree, state, dag)
    row_of = hierarchy.assign_rows(units, dag)
    by_name = {u.name: u for u in units}
    n_rows = max(row_of.values()) + 1
    row_units = [[u.name for u in units if row_of[u.name] == r] for r in range(n_rows)]
    sizes = {
        u.name: np.array([c.size for c in data.layer(u.layer).clusters], np.float64) for u in units
    }
    if any(len(s) == 0 for s in sizes.values()):
        raise ValueError("the analysed layers have no clusters")
    geo = rows.layout_rows(row_units, sizes, titles={u.name: u.title for u in units})
    scene.meta["expanded"] = sorted(state)
    scene.meta["units"] = {u.name: u.layer for u in units}  # box -> the layer it draws
    scene.meta["neurons"] = {u.layer: int(data.layer(u.layer).n_channels) for u in units}
    labels = LabelRows()  # built into Labels once, at the end
    band = _Rects()
    frames = _frames(tree, state, geo, labels)
    for name, xywh in frames:
        band.add(xywh, BAND_FILL if len(band) % 2 == 0 else BAND_FILL_ALT, ("band", name))
    for u in units:
        rid = ("band", u.name) if u.is_group or not u.parents else ("layer", u.name)
        fill = UNIT_FILL if u.parents else (BAND_FILL if len(band) % 2 == 0 else BAND_FILL_ALT)
        band.add(geo.unit_box[u.name], fill, rid)
        _unit_labels(u, data.layer(u.layer), geo.unit_box[u.name], labels)
    clusters, images = _Rects(), _Images()
    for u in units:
        lay = data.layer(u.layer)
        _draw_clusters(lay, geo.squares[u.name], facet, overrides, scene, clusters, images, labels)
    q = hierarchy.unit_graph(units, dag)
    lines, nodes = _links(data, dag, q, by_name, row_of, geo, scene, pos_color, neg_color)
    rects = Rects.from_lists(
        band.xywh + clusters.xywh,
        band.fill + clusters.fill,
        [(0, 0, 0, 0)] * len(band) + [CLUSTER_STROKE] * len(clusters),
        [0.0] * len(band) + [1.0] * len(clusters),
        band.ids + clusters.ids,
    )
    panel = Panel(
        "overview",
        _bounds(geo, lines),
        rects=rects,
        images=images.done(),
        lines=lines,
        labels=labels.build(),
    )
    panel.top_rects = Rects.from_lists(
        [n[1] for n in nodes],
        [n[2] for n in nodes],
        [(1.0, 1.0, 1.0, 1.0)] * len(nodes),
        [1.0] * len(nodes),
        [n[0] for n in nodes],
    )
    return panel


def _bounds(geo, lines) -> tuple[float, float, float, float]:
    """The drawing's extent: the rows, and the lanes of skip edges beside them."""
    x0, x1 = 0.0, geo.width
    if len(lines.points):
        x0 = min(x0, float(lines.points[:, 0].min()) - rows.MARGIN / 2)
        x1 = max(x1, float(lines.points[:, 0].max()) + rows.MARGIN / 2)
    return (x0, 0.0, x1, geo.height)


class _Rects:
    def __init__(self) -> None:
        self.xywh, self.fill, self.ids = [], [], []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, xywh, fill, rid) -> None:
        self.xywh.append(tuple(float(v) for v in xywh))
        self.fill.append(fill)
        self.ids.append(rid)


class _Images:
    def __init__(self) -> None:
        self.data, self.xywh, self.interp, self.zoom, self.ids = [], [], [], [], []

    def add(self, img, xywh, interp, zoom, iid) -> None:
        self.data.append(img)
        self.xywh.append(xywh)
        self.interp.append(interp)
        self.zoom.append(zoom)
        self.ids.append(iid)

    def done(self) -> Images:
        return Images(
            data=self.data,
            xywh=np.asarray(self.xywh, np.float32).reshape(-1, 4),
            interpolation=self.interp,
            min_zoom=np.asarray(self.zoom, np.float32),
            ids=self.ids,
        )


def _px(pt: float) -> float:
    return pt * DPI / 72.0


def _frames(tree, state, geo, labels) -> list[tuple[str, tuple]]:
    """Frames of the expanded groups (outermost first) with their titles in the gap above; a
    title that would touch an earlier one appears only from the zoom at which it clears it."""
    out, placed = [], []

    def box(node) -> tuple[float, float, float, float] | None:
        open_ = not node.is_leaf and node.name in state
        if not open_:
            b = geo.unit_box.get(node.name)
            return None if b is None else (b[0], b[1], b[0] + b[2], b[1] + b[3])
        kids = [k for k in (box(c) for c in node.children) if k is not None]
        if not kids:
            return None
        pad = FRAME_PAD
        x0, y0 = min(k[0] for k in kids) - pad, min(k[1] for k in kids) - pad
        x1, y1 = max(k[2] for k in kids) + pad, max(k[3] for k in kids) + pad
        out.append((node.level, node.name, (x0, y0, x1, y1)))
        return (x0, y0, x1, y1)

    for t in tree:
        box(t)
    out.sort(key=lambda f: (f[0], f[2][1], f[2][0]))
    h = _px(NAME_PT) * 1.25
    frames, first = [], len(labels)
    for _, name, (x0, y0, x1, y1) in out:
        frames.append((name, (x0, y0, x1 - x0, y1 - y0)))
        corner = next(
            (k for k, (px, py, _, _) in enumerate(placed) if 0 < x0 - px <= 2.5 * FRAME_PAD
             and 0 < y0 - py <= 2.5 * FRAME_PAD), None,
        )  # fmt: skip
        if corner is not None:  # the first group inside one opened at the same corner
            px, py, _, pfw = placed[corner]
            placed[corner] = (px, py, _extend_title(labels, first + corner, name, pfw), pfw)
            continue
        w = text_width_px(name, _px(NAME_PT)) + 6.0
        # as wide as the frame, and as tall as the gap above it: never over the boxes above
        zoom = max(w / max(x1 - x0, 1e-9), h / max(y0 - 2.0 - _floor_above(geo, x0, x1, y0), 1e-9))
        for px, py, pw, _ in placed:  # clear every title placed before (left-bottom anchors)
            dx, dy = abs(x0 - px), abs(y0 - py)
            left_w = pw if px <= x0 else w
            zoom = max(zoom, min(left_w / dx if dx else np.inf, h / dy if dy else np.inf))
        placed.append((x0, y0, w, x1 - x0))
        labels.add(
            name, (x0 + 2.0, y0 - 2.0), size=NAME_PT, color=INK, anchor=("left", "bottom"),
            bold=True, min_zoom=float(zoom), id=("band", name), background=(1, 1, 1, 0.85),
        )  # fmt: skip
    return frames


def _floor_above(geo, x0: float, x1: float, y0: float) -> float:
    """The lowest bottom of the unit boxes above ``y0`` that overlap ``[x0, x1]`` (0: none)."""
    bottoms = [
        by + bh for bx, by, bw, bh in geo.unit_box.values()
        if by + bh <= y0 + 1e-6 and bx < x1 and bx + bw > x0
    ]  # fmt: skip
    return max(bottoms, default=0.0)


def _extend_title(labels, k: int, name: str, frame_w: float) -> float:
    """Join a nested group's title to the title ``k`` at the same corner (``layer2 › layer2.0``);
    returns the joined title's width in pixels."""
    row = labels.rows[k]  # [text, pos, size, color, anchor, bold, min_zoom, ...]
    row[0] = f"{row[0]} \u203a {name}"
    w = text_width_px(row[0], _px(NAME_PT)) + 6.0
    row[6] = max(float(row[6]), w / max(frame_w, 1e-9))
    return w


def _unit_labels(unit, lay, box, labels) -> None:
    x, y, w, _ = box
    name_px = text_width_px(unit.title, _px(NAME_PT)) + 6.0
    fits = _px(NAME_PT) / rows.HEADER_H  # the name's height within the header: not over the boxes
    rid = ("band", unit.name) if unit.is_group or not unit.parents else ("layer", unit.name)
    labels.add(  # on a backdrop: connections passing behind never run through the name
        unit.title, (x + 4.0, y + 4.0), size=NAME_PT, color=INK, anchor=("left", "top"),
        bold=unit.is_group, min_zoom=max(name_px / max(w - 4.0, 1e-9), fits), id=rid,
        background=NAME_BACKDROP,
    )  # fmt: skip
    shown = f" ({lay.name})" if unit.name != lay.name else ""  # the layer drawn
    info = f"{lay.n_channels} neurons \u00b7 {len(lay.clusters)} clusters{shown}"
    info_px = text_width_px(info, _px(INFO_PT)) + 6.0
    labels.add(
        info, (x + w - 4.0, y + 5.0), size=INFO_PT, color=MUTED, anchor=("right", "top"),
        min_zoom=max((name_px + info_px + 8.0) / max(w - 8.0, 1e-9), fits), id=("layer", lay.name),
        background=NAME_BACKDROP,
    )  # fmt: skip


def _facet(cluster, want: str):
    if want == "features" and cluster.features is not None:
        return "features"
    if cluster.matrix is not None:
        return "matrix"
    return "features" if cluster.features is not None else None


def _draw_clusters(lay, squares, facet, overrides, scene, rects, images, labels) -> None:
    ranges = _matrix_range(lay)
    cap_px = _px(CAPTION_PT)
    for cl, (x, y, side) in zip(lay.clusters, squares):
        cid = ("cluster", lay.name, int(cl.index))
        rect = (x, y, side, side)
        scene.cluster_rects[(lay.name, int(cl.index))] = rect
        scene.meta.setdefault("cluster_sizes", {})[(lay.name, int(cl.index))] = int(cl.size)
        rects.add(rect, CLUSTER_FILL, cid)
        kind = _facet(cl, overrides.get((lay.name, int(cl.index)), facet))
        zoom = FACET_MIN_PX / side
        if kind == "features":
            feat = cl.features
            fh, fw = feat.shape[:2]
            pad = min(1.5, side * 0.04)
            f = min((side - 2 * pad) / fw, (side - 2 * pad) / fh)
            ix, iy = x + (side - fw * f) / 2.0, y + (side - fh * f) / 2.0
            images.add(_rgba(feat), (ix, iy, fw * f, fh * f), "linear", zoom, cid)
            keys = [(lay.name, int(ch)) for ch in cl.neurons]
            if cl.feature_boxes is None:
                scene.neuron_boxes.update(dict.fromkeys(keys, rect))
            else:
                b = np.asarray(cl.feature_boxes, np.float64) * f
                xywh = np.column_stack(
                    [ix + b[:, 0], iy + b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]]
                )
                scene.neuron_boxes.update(zip(keys, map(tuple, xywh.tolist())))
        elif kind == "matrix":
            lo, hi = ranges
            images.add(colormap(np.asarray(cl.matrix, np.float64), lo, hi), rect, "nearest",
                       zoom, cid)  # fmt: skip
            nrow = max(len(cl.neurons), 1)
            for i, ch in enumerate(cl.neurons):
                scene.neuron_boxes[(lay.name, int(ch))] = (
                    x,
                    y + side * i / nrow,
                    side,
                    side / nrow,
                )
        else:
            for ch in cl.neurons:
                scene.neuron_boxes[(lay.name, int(ch))] = rect
        cap = f"#{int(cl.index)} \u00b7 {cl.size}"
        # over the square's width, and clear of the line of squares (or the name) above it
        zoom_cap = max(text_width_px(cap, cap_px) / side, 1.3 * cap_px / 4.0)
        labels.add(
            cap, (x, y - 1.0), size=CAPTION_PT, color=MUTED, anchor=("left", "bottom"),
            min_zoom=zoom_cap, id=cid, background=(1.0, 1.0, 1.0, 0.85),
        )  # fmt: skip


def _matrix_range(lay) -> tuple[float, float]:
    vals = [np.asarray(c.matrix, np.float64).ravel() for c in lay.clusters if c.matrix is not None]
    allv = np.concatenate(vals) if vals else np.zeros(0)
    allv = allv[np.isfinite(allv)]
    if not allv.size:
        return 0.0, 1.0
    lo, hi = float(allv.min()), float(allv.max())
    return lo, hi if hi > lo else lo + 1.0


_RGBA: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(image) -> (image, its RGBA)


def _rgba(img: np.ndarray) -> np.ndarray:
    """The image as contiguous RGBA uint8; remembered per image object, so rebuilding a scene
    (expanding a group) does not convert every facet again."""
    hit = _RGBA.get(id(img))
    if hit is not None and hit[0] is img:
        return hit[1]
    if len(_RGBA) > 20000:
        _RGBA.clear()
    out = _to_rgba(img)
    _RGBA[id(img)] = (img, out)
    return out


def _to_rgba(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.clip(np.asarray(a, np.float64) * (255.0 if a.max(initial=0) <= 1.0 else 1.0), 0, 255)
        a = a.astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    if a.shape[2] == 3:
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(a)


def _links(data, dag, q, by_name, row_of, geo, scene, pos_color, neg_color):
    """Connections of the unit graph: nodes in the gap above each target row, curves through
    them; an edge over skipped rows runs in a lane beside them."""
    nodes, curves = [], []
    n_lanes = 0
    for ua, ub in sorted(q.edges, key=lambda e: (row_of[e[0]], row_of[e[1]], e)):
        a, b = by_name[ua], by_name[ub]
        conn = compose_connection(data, dag, a.layer, b.layer)
        if conn is None:
            continue
        ra, rb = row_of[ua], row_of[ub]
        centre = {
            lay: [sx + side / 2.0 for sx, _, side in geo.squares[u.name]]
            for lay, u in ((a.layer, a), (b.layer, b))
        }
        # nodes a little below the gap's middle, where the direct edges cross it
        node_y = geo.row_top[rb] - 0.35 * geo.row_gap
        lane = None
        if rb - ra > 1:
            spans = [
                (geo.unit_box[n][0], geo.unit_box[n][0] + geo.unit_box[n][2])
                for n in row_of if ra < row_of[n] < rb
            ]  # fmt: skip
            mid = 0.5 * (np.mean(centre[a.layer]) + np.mean(centre[b.layer]))
            lane = (
                lane_x(spans, mid, n_lanes, -np.inf, np.inf),
                geo.row_bottom[ra] + geo.row_gap / 3.0,
            )
            n_lanes += 1
        # nodes above the target unit: from them the curves drop straight into it, not
        # through a neighbour beside it
        bx, _, bw, _ = geo.unit_box[ub]
        ns, cs = edge_curves(
            conn, centre[a.layer], centre[b.layer], node_y, bx + NODE_SIDE, bx + bw - NODE_SIDE
        )
        nodes += ns
        for c in cs:
            curves.append(c + (lane, node_y, b.layer))
    index = {
        u.layer: [int(c.index) for c in data.layer(u.layer).clusters] for u in by_name.values()
    }
    return _curves(curves, nodes, scene, index, _ports(by_name, geo), pos_color, neg_color)


def _ports(by_name, geo) -> dict[tuple[str, int], tuple[float, float, bool, bool]]:
    """Where edges meet each cluster of a unit: ``(out_y, in_y, stub_out, stub_in)``.

    An edge leaving a square of the unit's last line of squares runs straight down from the
    square to the unit's bottom (inside the square's own column, never across a taller
    neighbour) and bends from there; one leaving a square of an earlier line starts at the unit's
    bottom, under its square, so it does not cross the lines below. An edge entering bends down
    to the unit's top and runs straight into a square of the first line; one entering a square
    below the first line ends at the unit's top, above its square."""
    out = {}
    for u in by_name.values():
        sq = geo.squares[u.name]
        x, y, w, h = geo.unit_box[u.name]
        first, last = min(t for _, t, _ in sq), max(t for _, t, _ in sq)
        for pos, (_, top, _) in enumerate(sq):
            out[(u.layer, pos)] = (y + h, y, top == last, top == first)
    return out


def _curves(curves, nodes, scene, index, ports, pos_color, neg_color):
    def end_x(end) -> float:
        if isinstance(end[0], str):
            x, _, w, _ = scene.cluster_rects[(end[0], index[end[0]][end[1]])]
            return x + w / 2.0
        return float(end[0])

    slots: dict[tuple, list] = {}
    for ci, c in enumerate(curves):
        p, qq = c[1], c[2]
        if isinstance(p[0], str):
            slots.setdefault(p, []).append((end_x(qq), ci, "p"))
        if isinstance(qq[0], str):
            slots.setdefault(qq, []).append((end_x(p), ci, "q"))
    attach = {}
    for (layer, c, io), lst in slots.items():
        rx, ry, rw, rh = scene.cluster_rects[(layer, index[layer][c])]
        lst.sort()
        m = len(lst)
        for k, (_, ci, which) in enumerate(lst):
            t = 0.5 if m == 1 else 0.2 + 0.6 * k / (m - 1)
            attach[(ci, which)] = (rx + t * rw, ry + rh if io == "out" else ry)
    strengths = np.array([c[3] for c in curves], dtype=np.float64)
    smax = float(strengths.max()) if len(strengths) and strengths.max() > 0 else 1.0
    pts, offsets, colors, widths, signs, ids = [], [0], [], [], [], []
    for ci, (cid, p, qq, st, sign, lane, node_y, _) in enumerate(curves):
        p0 = attach[(ci, "p")] if isinstance(p[0], str) else p
        p3 = attach[(ci, "q")] if isinstance(qq[0], str) else qq
        leaves = isinstance(p[0], str) and lane is not None
        head = []
        if isinstance(p[0], str):
            out_y, _, stub, _ = ports[(p[0], p[1])]
            head = [p0] if stub and out_y > p0[1] else []
            p0 = (p0[0], max(p0[1], out_y))
        tail = []
        if isinstance(qq[0], str):  # bend down to the unit's top; straight on into the square
            _, in_y, _, stub = ports[(qq[0], qq[1])]
            tail = [p3] if stub and p3[1] > in_y else []
            p3 = (p3[0], min(p3[1], in_y))
        line = curve(p0, p3, lane[0], lane[1], node_y) if leaves else curve(p0, p3)
        line = np.concatenate([np.asarray(head, np.float64).reshape(-1, 2), line,
                               np.asarray(tail, np.float64).reshape(-1, 2)])  # fmt: skip
        pts.append(line)
        offsets.append(offsets[-1] + len(line))
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
    drawn = [
        (nid, (x - NODE_SIDE / 2, y - NODE_SIDE / 2, NODE_SIDE, NODE_SIDE),
         pos_color if sign > 0 else neg_color)
        for nid, (x, y), sign in nodes
    ]  # fmt: skip
    return lines, drawn
