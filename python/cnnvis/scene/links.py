"""Connections between the units of the overview, and their curves.

Two shown units are joined where the layer DAG joins their layers. When the analysis connects
the two drawn layers directly, its biclusters become in-between nodes in the gap above the
target row, with half-edges from the source clusters into them and out to the target clusters.
When the drawn layers are further apart (a collapsed group shows its output layer, so its input
connection comes from inside it), the cluster-level strength is composed along the shortest
layer path (the product of the connection matrices, rescaled to the first one's largest
magnitude) and each target cluster gets one direct edge from its strongest source.

An edge that skips rows leaves its source downwards, runs in a lane beside the rows it skips
(the side nearer to its ends) and comes back in above its target row, so it never crosses them.
"""

from __future__ import annotations

import functools

import networkx as nx
import numpy as np

from .inputs import ConnectionInput

__all__ = ["compose_connection", "curve", "lane_x"]

CURVE_POINTS = 14
LANE_STEP = 7.0


def compose_connection(data, dag: nx.DiGraph, src: str, dst: str) -> ConnectionInput | None:
    """The connection from drawn layer ``src`` to drawn layer ``dst`` (see the module doc)."""
    direct = data.connection(src, dst)
    if direct is not None:
        return direct
    try:
        path = nx.shortest_path(dag, src, dst)
    except (nx.NetworkXNoPath, nx.NodeNotFound):
        return None
    mats = []
    for a, b in zip(path[:-1], path[1:]):
        conn = data.connection(a, b)
        if conn is None:
            return None
        mats.append(np.asarray(conn.strength, dtype=np.float64))
    s = mats[0]
    for m in mats[1:]:
        s = s @ m
    peak = float(np.abs(s).max())
    if peak > 0:
        s = s * (float(np.abs(mats[0]).max()) / peak)
    best = np.abs(s).argmax(axis=0)
    keep = [(int(best[j]), j) for j in range(s.shape[1]) if s[best[j], j] != 0]
    pairs = np.array(keep, dtype=np.int64).reshape(-1, 2)
    signs = np.sign(s[pairs[:, 0], pairs[:, 1]]).astype(np.int64) if len(keep) else None
    return ConnectionInput(src, dst, s, [], direct=pairs, direct_sign=signs)


@functools.cache
def _bernstein(n: int) -> tuple[np.ndarray, ...]:
    """The cubic Bernstein weights at ``n`` even steps, shape ``(n, 1)`` each (computed once:
    a ResNet-50 opened whole draws tens of thousands of curves)."""
    t = np.linspace(0.0, 1.0, n)[:, None]
    weights = ((1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3)
    for w in weights:
        w.flags.writeable = False
    return weights


def _bezier(p0, p3, n: int = CURVE_POINTS) -> np.ndarray:
    """A vertical-tangent cubic from p0 down (or up) to p3."""
    (x0, y0), (x3, y3) = p0, p3
    k = 0.5 * (y3 - y0)
    c = np.array([[x0, y0], [x0, y0 + k], [x3, y3 - k], [x3, y3]], dtype=np.float64)
    w0, w1, w2, w3 = _bernstein(n)
    return w0 * c[0] + w1 * c[1] + w2 * c[2] + w3 * c[3]


def curve(p0, p3, lane: float | None = None, y_leave: float = 0.0, y_enter: float = 0.0):
    """Points of an edge from ``p0`` down to ``p3``; with a ``lane``, around the skipped rows:
    down into the gap (``y_leave``), across to the lane, down it to ``y_enter``, in to ``p3``."""
    if lane is None:
        return _bezier(p0, p3)
    a = _bezier(p0, (lane, y_leave), CURVE_POINTS // 2 + 1)
    b = _bezier((lane, y_enter), p3, CURVE_POINTS // 2 + 1)
    return np.concatenate([a, b])


def lane_x(spans: list[tuple[float, float]], x_mid: float, k: int, lo: float, hi: float) -> float:
    """The x of the ``k``-th lane past rows covering ``spans`` (x ranges): the side nearer
    ``x_mid``, ``LANE_STEP`` further out per lane, kept inside ``[lo, hi]``."""
    left = min(s[0] for s in spans)
    right = max(s[1] for s in spans)
    off = 12.0 + LANE_STEP * k
    if x_mid - left <= right - x_mid:
        return max(lo, left - off)
    return min(hi, right + off)


def _spread(values: list[float], lo: float, hi: float, min_gap: float) -> list[float]:
    """Move sorted-order positions apart to at least ``min_gap``, staying in [lo, hi]: when
    they do not fit at ``min_gap``, the gap shrinks (nodes over a narrow unit stay over it,
    closer together, rather than spill over its neighbours)."""
    if not values:
        return []
    if len(values) > 1 and hi > lo:
        min_gap = min(min_gap, (hi - lo) / (len(values) - 1))
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


NODE_SIDE = 8.0
EDGE_MIN_W, EDGE_MAX_W = 0.8, 5.0


def _signed(conn) -> dict[int, np.ndarray]:
    s = np.asarray(conn.strength, dtype=np.float64)
    pos = np.abs(conn.positive) if conn.positive is not None else np.maximum(s, 0)
    neg = np.abs(conn.negative) if conn.negative is not None else -np.minimum(s, 0)
    return {1: pos, -1: neg}


def edge_curves(conn, src_xy, dst_xy, node_y, lo, hi):
    """Bicluster nodes and curve ends of one connection; ends are (layer, cluster, io) or points."""
    signed = _signed(conn)
    a, b = conn.src, conn.dst
    nodes, curves = [], []
    want = []
    for bc in conn.biclusters:
        xs = [src_xy[int(i)] for i in bc.rows] + [dst_xy[int(j)] for j in bc.cols]
        want.append(float(np.mean(xs)) if xs else 0.5 * (lo + hi))
    node_x = _spread(want, lo, hi, NODE_SIDE + 4.0)
    for k, bc in enumerate(conn.biclusters):
        sign = 1 if bc.sign >= 0 else -1
        nodes.append(((("bicluster", a, b, k)), (node_x[k], node_y), sign))
        rows_i, cols_j = [int(i) for i in bc.rows], [int(j) for j in bc.cols]
        s = signed[sign]
        for i in rows_i:
            st = float(np.abs(s[i, cols_j]).sum()) if cols_j else 0.0
            curves.append(
                (("edge", a, b, k, "src", i), (a, i, "out"), (node_x[k], node_y), st, sign)
            )
        for j in cols_j:
            st = float(np.abs(s[rows_i, j]).sum()) if rows_i else 0.0
            curves.append(
                (("edge", a, b, k, "dst", j), (node_x[k], node_y), (b, j, "in"), st, sign)
            )
    direct = np.asarray(conn.direct, dtype=np.int64).reshape(-1, 2)
    s_all = np.asarray(conn.strength, dtype=np.float64)
    for d, (i, j) in enumerate(direct):
        if conn.direct_sign is not None:
            sign = int(np.sign(conn.direct_sign[d])) or 1
        else:
            sign = 1 if s_all[i, j] >= 0 else -1
        st = float(signed[sign][i, j])
        curves.append(
            (
                ("edge", a, b, "direct", int(i), int(j)),
                (a, int(i), "out"),
                (b, int(j), "in"),
                st,
                sign,
            )
        )
    return nodes, curves
