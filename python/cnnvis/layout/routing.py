"""Routing a biclustered layer gap: in-between bicluster nodes and every drawn edge as a curve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnvis.layout._arrays import as_float_array
from cnnvis.layout.biclusters import BiclusterResult

__all__ = ["RoutedEdges", "route_bicluster_edges"]


@dataclass(frozen=True)
class RoutedEdges:
    """Drawn edges of a biclustered layer gap, as polylines.

    Attributes
    ----------
    polylines : ndarray, shape (m, n_points, 2)
        Every drawn edge: source -> bicluster node, bicluster node -> target, and direct edges.
    sign : ndarray of int8, shape (m,)
        +1 or -1 (colour by it).
    strength : ndarray of float64, shape (m,)
        Summed ``|w|`` the drawn edge carries (width by it): for a source -> node edge the
        bicluster's edges of that source, for node -> target those of that target, for a
        direct edge its own ``|w|``.
    bicluster : ndarray of int64, shape (m,)
        Bicluster index, ``-1`` for direct edges.
    source, target : ndarray of int64, shape (m,)
        Row index (or -1 when the edge starts at a bicluster node) and column index (or -1
        when it ends at a bicluster node).
    nodes : ndarray, shape (n_biclusters, 2)
        Positions of the in-between bicluster nodes.
    """

    polylines: np.ndarray
    sign: np.ndarray
    strength: np.ndarray
    bicluster: np.ndarray
    source: np.ndarray
    target: np.ndarray
    nodes: np.ndarray


def _isotonic_increasing(y: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit (pool adjacent violators)."""
    vals: list[float] = []
    counts: list[int] = []
    for v in y.tolist():
        vals.append(v)
        counts.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            c = counts[-2] + counts[-1]
            v2 = (vals[-2] * counts[-2] + vals[-1] * counts[-1]) / c
            vals.pop()
            counts.pop()
            vals[-1] = v2
            counts[-1] = c
    return np.repeat(np.asarray(vals, dtype=np.float64), counts)


def _spread(y: np.ndarray, gap: float) -> np.ndarray:
    """Positions closest to ``y`` (least squares) with neighbours at least ``gap`` apart."""
    if len(y) < 2 or gap <= 0:
        return y.copy()
    order = np.lexsort((np.arange(len(y)), y))
    k = np.arange(len(y), dtype=np.float64) * gap
    z = _isotonic_increasing(y[order] - k) + k
    out = np.empty_like(y)
    out[order] = z
    return out


def _cubic(p0: np.ndarray, p3: np.ndarray, axis: np.ndarray, n_points: int) -> np.ndarray:
    """Cubic Beziers from p0 to p3 (each (m, 2)) leaving and arriving along ``axis``."""
    h = np.abs((p3 - p0) @ axis)[:, None] * 0.5
    p1 = p0 + h * axis
    p2 = p3 - h * axis
    t = np.linspace(0.0, 1.0, n_points)[None, :, None]
    s = 1.0 - t
    return (
        s**3 * p0[:, None, :]
        + 3 * s**2 * t * p1[:, None, :]
        + 3 * s * t**2 * p2[:, None, :]
        + t**3 * p3[:, None, :]
    )


def route_bicluster_edges(
    src_pos: Any,
    dst_pos: Any,
    result: BiclusterResult,
    weights: Any,
    n_points: int = 16,
    *,
    depth: float = 0.5,
    min_gap: float | None = None,
) -> RoutedEdges:
    """Place the in-between bicluster nodes and route every drawn edge as a smooth curve.

    The layer axis runs from the mean source position to the mean target position. Every
    bicluster node sits at ``depth`` of the way along it (all nodes of a gap at the same depth,
    like an in-between layer); across it, at the strength-weighted mean of its sources' and
    targets' positions, then spread so that neighbouring nodes are at least ``min_gap`` apart
    (the least-squares closest such placement). Each drawn edge is a cubic Bezier that leaves
    and arrives along the layer axis, so a source -> node -> target path is smooth at the node.

    Parameters
    ----------
    src_pos : array_like, shape (n_rows, 2)
        Positions of the source nodes (the rows of ``weights``).
    dst_pos : array_like, shape (n_cols, 2)
        Positions of the target nodes (the columns).
    result : BiclusterResult
        From :func:`bicluster_edges` on the same ``weights``.
    weights : array_like, shape (n_rows, n_cols)
        The signed weights (strengths come from ``|w|``).
    n_points : int, default 16
        Points per polyline (>= 2).
    depth : float, default 0.5
        Where along the layer axis the nodes sit, in (0, 1).
    min_gap : float, optional
        Minimum distance between neighbouring nodes across the axis; default: the spread of
        the source and target positions across the axis divided by twice the node count.

    Returns
    -------
    RoutedEdges
    """
    src = as_float_array(src_pos, "src_pos")
    dst = as_float_array(dst_pos, "dst_pos")
    w = as_float_array(weights, "weights")
    n_points = _check_route(src, dst, w, result, n_points, depth)
    axis, across = _layer_axes(src, dst)
    nodes, row_str, col_str = _place_nodes(src, dst, w, result, axis, across, depth, min_gap)
    return _route(src, dst, w, result, nodes, row_str, col_str, axis, n_points)


def _check_route(
    src: np.ndarray, dst: np.ndarray, w: np.ndarray, result: Any, n_points: Any, depth: Any
) -> int:
    """Checks the inputs of :func:`route_bicluster_edges`; returns ``n_points`` as an int."""
    if src.ndim != 2 or src.shape[1] != 2 or dst.ndim != 2 or dst.shape[1] != 2:
        raise ValueError(
            f"src_pos and dst_pos must have shape (n, 2), got {src.shape} and {dst.shape}"
        )
    if not isinstance(result, BiclusterResult):
        raise TypeError("result must be a BiclusterResult from bicluster_edges")
    if w.shape != (len(src), len(dst)) or w.shape != result.shape:
        raise ValueError(
            f"weights shape {w.shape} must be (len(src_pos), len(dst_pos)) = "
            f"{(len(src), len(dst))} and match the biclustering {result.shape}"
        )
    n_points = int(n_points)
    if n_points < 2:
        raise ValueError(f"n_points must be >= 2, got {n_points}")
    if not 0.0 < float(depth) < 1.0:
        raise ValueError(f"depth must be in (0, 1), got {depth}")
    return n_points


def _layer_axes(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors along the layer axis (mean source to mean target) and across it."""
    if len(src) and len(dst):
        axis = dst.mean(axis=0) - src.mean(axis=0)
    else:
        axis = np.array([1.0, 0.0])
    norm = float(np.hypot(*axis))
    axis = axis / norm if norm > 0 else np.array([1.0, 0.0])
    return axis, np.array([-axis[1], axis[0]])


def _place_nodes(
    src: np.ndarray,
    dst: np.ndarray,
    w: np.ndarray,
    result: BiclusterResult,
    axis: np.ndarray,
    across: np.ndarray,
    depth: float,
    min_gap: float | None,
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """The bicluster nodes' positions and the strengths each carries per source and target."""
    absw = np.abs(w)
    nb = len(result.biclusters)
    nodes = np.zeros((nb, 2))
    row_str: list[np.ndarray] = []
    col_str: list[np.ndarray] = []
    if nb:
        a_src = float((src @ axis).mean())
        a_dst = float((dst @ axis).mean())
        a_node = a_src + float(depth) * (a_dst - a_src)
        c_pos = np.zeros(nb)
        for k, b in enumerate(result.biclusters):
            mine = result.assignment[np.ix_(b.rows, b.cols)] == k
            s = np.where(mine, absw[np.ix_(b.rows, b.cols)], 0.0)
            rs, cs = s.sum(axis=1), s.sum(axis=0)
            row_str.append(rs)
            col_str.append(cs)
            cs_src = float(np.average(src[b.rows] @ across, weights=rs))
            cs_dst = float(np.average(dst[b.cols] @ across, weights=cs))
            c_pos[k] = cs_src + float(depth) * (cs_dst - cs_src)
        if min_gap is None:
            every = np.concatenate([src @ across, dst @ across])
            spread = float(every.max() - every.min())
            if spread <= 0:
                spread = abs(a_dst - a_src)
            min_gap = spread / (2.0 * nb)
        if float(min_gap) < 0 or not np.isfinite(float(min_gap)):
            raise ValueError(f"min_gap must be a finite number >= 0, got {min_gap}")
        c_pos = _spread(c_pos, float(min_gap))
        nodes = a_node * axis[None, :] + c_pos[:, None] * across[None, :]
    return nodes, row_str, col_str


def _route(
    src: np.ndarray,
    dst: np.ndarray,
    w: np.ndarray,
    result: BiclusterResult,
    nodes: np.ndarray,
    row_str: list[np.ndarray],
    col_str: list[np.ndarray],
    axis: np.ndarray,
    n_points: int,
) -> RoutedEdges:
    """Every drawn edge as a curve: through the bicluster nodes, then the direct edges."""
    p0: list[np.ndarray] = []
    p3: list[np.ndarray] = []
    sign: list[np.ndarray] = []
    strength: list[np.ndarray] = []
    bic: list[np.ndarray] = []
    source: list[np.ndarray] = []
    target: list[np.ndarray] = []
    for k, b in enumerate(result.biclusters):
        nr, nc = len(b.rows), len(b.cols)
        p0 += [src[b.rows], np.repeat(nodes[k : k + 1], nc, axis=0)]
        p3 += [np.repeat(nodes[k : k + 1], nr, axis=0), dst[b.cols]]
        sign.append(np.full(nr + nc, b.sign, np.int8))
        strength += [row_str[k], col_str[k]]
        bic.append(np.full(nr + nc, k, np.int64))
        source += [b.rows, np.full(nc, -1, np.int64)]
        target += [np.full(nr, -1, np.int64), b.cols]
    d = result.direct_edges
    if len(d):
        p0.append(src[d[:, 0]])
        p3.append(dst[d[:, 1]])
        wd = w[d[:, 0], d[:, 1]]
        sign.append(np.where(wd > 0, 1, -1).astype(np.int8))
        strength.append(np.abs(wd))
        bic.append(np.full(len(d), -1, np.int64))
        source.append(d[:, 0].astype(np.int64))
        target.append(d[:, 1].astype(np.int64))
    if not p0:
        return RoutedEdges(
            np.zeros((0, n_points, 2)),
            np.zeros(0, np.int8),
            np.zeros(0),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            nodes,
        )
    polylines = _cubic(np.concatenate(p0), np.concatenate(p3), axis, n_points)
    return RoutedEdges(
        polylines,
        np.concatenate(sign),
        np.concatenate(strength).astype(np.float64),
        np.concatenate(bic),
        np.concatenate(source).astype(np.int64),
        np.concatenate(target).astype(np.int64),
        nodes,
    )
