"""Bundled connections: biclustering of signed weight matrices, routing through bicluster nodes,
and force-directed edge bundling.

* :func:`bicluster_edges` groups the strong entries of a signed weight matrix (rows: source
  nodes, columns: target nodes) into dense single-sign biclusters (CNNVis, C6). A bicluster is
  drawn as ``|rows| + |cols|`` edges through one in-between node instead of one edge per entry.
* :func:`route_bicluster_edges` places those in-between nodes between two layers and returns
  every drawn edge as a smooth polyline with its sign and strength.
* :func:`bundle_edges` is force-directed edge bundling (Holten & van Wijk 2009) for arbitrary
  segments or polylines, such as sample trajectories across layers or epochs (P4).
* :func:`polyline_length`, :func:`edge_ink` and :func:`mean_displacement` measure a drawing.

The heavy work runs in the C++ core (``cnnvis._core``), multithreaded and deterministic: the same
input gives the same bytes for any ``n_jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnvis.layout._checks import INT32_MAX, integer, real
from cnnvis.parallel import resolve_n_jobs

__all__ = [
    "Bicluster",
    "BiclusterResult",
    "RoutedEdges",
    "bicluster_edges",
    "route_bicluster_edges",
    "bundle_edges",
    "polyline_length",
    "edge_ink",
    "mean_displacement",
]


def _core() -> Any:
    from cnnvis import _core

    return _core


def _as_float_array(x: Any, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


# ---------------------------------------------------------------------------------------------
# Biclustering
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bicluster:
    """One bicluster: source ``rows``, target ``cols`` and the ``sign`` of every edge it claims.

    It claims exactly the edges of its own sign inside ``rows x cols`` (pairs without an edge,
    or with an edge of the other sign, are not its edges and are not drawn through it).

    Attributes
    ----------
    rows, cols : ndarray of int64
        Sorted row (source) and column (target) indices.
    sign : int
        +1 (positive weights) or -1 (negative weights).
    n_edges : int
        Number of edges claimed.
    """

    rows: np.ndarray
    cols: np.ndarray
    sign: int
    n_edges: int

    @property
    def density(self) -> float:
        """Claimed edges / (|rows| * |cols|)."""
        return self.n_edges / float(len(self.rows) * len(self.cols))

    @property
    def n_drawn(self) -> int:
        """Edges drawn for this bicluster: ``|rows| + |cols|``."""
        return int(len(self.rows) + len(self.cols))

    @property
    def gain(self) -> int:
        """Drawn edges saved: ``n_edges - n_drawn``."""
        return int(self.n_edges - self.n_drawn)


@dataclass(frozen=True)
class BiclusterResult:
    """Result of :func:`bicluster_edges`.

    Attributes
    ----------
    biclusters : list of Bicluster
        Positive biclusters first, then negative ones.
    direct_edges : ndarray of int64, shape (k, 2)
        ``(row, col)`` of every edge no bicluster claims, in row-major order.
    assignment : ndarray of int32, shape (n_rows, n_cols)
        Per entry: the index of the bicluster that claims it, ``-1`` for a direct edge and
        ``-2`` where there is no edge.
    threshold : float
        Entries with ``|w| >= threshold`` and ``w != 0`` are edges.
    n_edges : int
        Number of edges (``n_drawn_before``).
    """

    biclusters: list[Bicluster]
    direct_edges: np.ndarray
    assignment: np.ndarray = field(repr=False)
    threshold: float
    n_edges: int

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.assignment.shape[0]), int(self.assignment.shape[1]))

    @property
    def n_covered(self) -> int:
        """Edges claimed by biclusters."""
        return int(sum(b.n_edges for b in self.biclusters))

    @property
    def n_drawn_before(self) -> int:
        """Edges drawn without biclustering: one per edge."""
        return int(self.n_edges)

    @property
    def n_drawn_after(self) -> int:
        """Edges drawn with biclustering: ``|rows| + |cols|`` per bicluster plus direct edges."""
        return int(sum(b.n_drawn for b in self.biclusters) + len(self.direct_edges))

    @property
    def n_removed(self) -> int:
        """``n_drawn_before - n_drawn_after``."""
        return self.n_drawn_before - self.n_drawn_after

    def edges_of(self, k: int) -> np.ndarray:
        """``(row, col)`` pairs (int64, shape (n, 2)) claimed by bicluster ``k``."""
        if not 0 <= k < len(self.biclusters):
            raise IndexError(f"bicluster index {k} out of range [0, {len(self.biclusters)})")
        return np.argwhere(self.assignment == k).astype(np.int64)


def bicluster_edges(
    weights: Any,
    threshold: float,
    min_density: float = 0.8,
    *,
    min_gain: int = 1,
    max_refine: int = 8,
    patience: int = 6,
    n_jobs: int = 1,
) -> BiclusterResult:
    """Group the strong entries of a signed weight matrix into dense single-sign biclusters.

    An edge is an entry with ``|w| >= threshold`` and ``w != 0``; its sign is the sign of ``w``.
    The result covers every edge exactly once, either by one bicluster or as a direct edge. A
    bicluster claims the edges of its sign inside ``rows x cols``: at least ``min_density`` of
    its ``|rows| * |cols|`` pairs are such edges, and it never claims an edge of the other sign.
    Biclusters of the same sign never claim the same edge. The drawn edge count
    (``|rows| + |cols|`` per bicluster plus the direct edges) is made small greedily: each
    bicluster saves at least ``min_gain`` drawn edges.

    The algorithm, per sign: every row and column with two or more free edges seeds a greedy,
    density-tolerant growth (add the row with most free edges into the current columns, keep
    the columns that are dense in the rows so far, remember the best rectangle), refined by
    alternating dense-row / dense-column passes; the candidate that saves most is committed,
    its edges claimed, and stale candidates are re-grown (lazy greedy) until none saves
    ``min_gain``. Deterministic, and the same for any ``n_jobs``.

    Parameters
    ----------
    weights : array_like, shape (n_rows, n_cols)
        Signed strengths (rows: sources, columns: targets). Must be finite.
    threshold : float
        Minimum ``|w|`` of an edge, ``>= 0`` (``inf``: no edges).
    min_density : float, default 0.8
        Minimum share of a bicluster's pairs that are its edges, in (0, 1].
    min_gain : int, default 1
        Minimum drawn edges a bicluster must save.
    max_refine, patience : int
        Refinement rounds per candidate; growth steps without improvement before a seed stops.
    n_jobs : int, default 1
        Threads (``-1``: all cores).

    Returns
    -------
    BiclusterResult

    Examples
    --------
    >>> w = np.zeros((6, 6)); w[:3, :3] = 1.0; w[3:, 3:] = -1.0
    >>> res = bicluster_edges(w, 0.5)
    >>> [(b.rows.tolist(), b.cols.tolist(), b.sign) for b in res.biclusters]
    [([0, 1, 2], [0, 1, 2], 1), ([3, 4, 5], [3, 4, 5], -1)]
    >>> res.n_drawn_before, res.n_drawn_after
    (18, 12)
    """
    w = _as_float_array(weights, "weights")
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D array (n_rows, n_cols), got shape {w.shape}")
    threshold = float(threshold)  # inf is allowed: no edges
    if np.isnan(threshold) or threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    bics_raw, direct, n_edges = _core().bicluster_edges(
        w,
        threshold,
        real(min_density, "min_density", 0.0, 1.0, lo_open=True),
        integer(min_gain, "min_gain", 1),
        integer(max_refine, "max_refine", 0, INT32_MAX),
        integer(patience, "patience", 1, INT32_MAX),
        resolve_n_jobs(n_jobs),
    )
    biclusters = [
        Bicluster(np.asarray(r, np.int64), np.asarray(c, np.int64), int(s), int(n))
        for r, c, s, n in bics_raw
    ]
    edge = (w != 0) & (np.abs(w) >= threshold)
    assignment = np.where(edge, np.int32(-1), np.int32(-2)).astype(np.int32)
    for k, b in enumerate(biclusters):
        block = assignment[np.ix_(b.rows, b.cols)]
        own = (w[np.ix_(b.rows, b.cols)] * b.sign > 0) & (block == -1)
        block[own] = k
        assignment[np.ix_(b.rows, b.cols)] = block
    return BiclusterResult(
        biclusters, np.asarray(direct, np.int64).reshape(-1, 2), assignment, threshold, int(n_edges)
    )


# ---------------------------------------------------------------------------------------------
# Routing through bicluster nodes
# ---------------------------------------------------------------------------------------------


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
    src = _as_float_array(src_pos, "src_pos")
    dst = _as_float_array(dst_pos, "dst_pos")
    w = _as_float_array(weights, "weights")
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

    # Layer axis and the axis across it.
    if len(src) and len(dst):
        axis = dst.mean(axis=0) - src.mean(axis=0)
    else:
        axis = np.array([1.0, 0.0])
    norm = float(np.hypot(*axis))
    axis = axis / norm if norm > 0 else np.array([1.0, 0.0])
    across = np.array([-axis[1], axis[0]])

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


# ---------------------------------------------------------------------------------------------
# Force-directed edge bundling
# ---------------------------------------------------------------------------------------------


def _as_polylines(edges: Any) -> np.ndarray:
    e = _as_float_array(edges, "edges")
    if e.ndim == 2 and e.shape[1] == 4:  # (m, 4): x0, y0, x1, y1
        e = e.reshape(-1, 2, 2)
    if e.ndim != 3 or e.shape[2] != 2 or (e.shape[0] > 0 and e.shape[1] < 2):
        raise ValueError(
            "edges must be segments (m, 2, 2) or (m, 4), or polylines (m, p, 2) with p >= 2; "
            f"got shape {e.shape}"
        )
    return np.ascontiguousarray(e)


def bundle_edges(
    edges: Any,
    *,
    n_cycles: int = 6,
    n_iter: int = 30,
    iter_rate: float = 1.0,
    step: float = 0.04,
    step_rate: float = 0.5,
    stiffness: float = 0.005,
    bandwidth: float | None = 0.02,
    compatibility: float = 0.6,
    max_neighbors: int = 32,
    directed: bool = False,
    n_points: int | None = None,
    n_jobs: int = 1,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, float]]:
    """Force-directed edge bundling (Holten & van Wijk 2009).

    Edges are subdivided in cycles (1, 2, 4, ... interior points; a polyline input starts with
    its own ``p - 2`` interior points, resampled by arc length); in each cycle every interior
    point is pulled towards the matching points of the compatible edges and held by springs
    along its own edge; the step shrinks by ``step_rate`` and the iteration count by
    ``iter_rate`` per cycle. Endpoints never move.

    Compatibility of two edges is Holten & van Wijk's product of angle, scale, position and
    visibility compatibility of their chords (first to last point); pairs below
    ``compatibility`` are ignored and each edge keeps its ``max_neighbors`` most compatible
    partners, found once (they depend on the chords only) with an index over direction and
    midpoint whose search box shrinks as better partners are found, so the search stays far
    from all pairs even when edges are long. The pull of one partner point is a unit vector
    towards it (shrunk linearly within one step), weighted by compatibility and, beyond
    ``bandwidth``, by ``bandwidth / distance`` (Holten & van Wijk's electrostatic fall-off):
    an edge joins its nearest bundle first instead of being dragged to the middle of all its
    partners. The pull is the weighted mean over partners times the step (so ``step`` is a
    distance: a fraction of the bounding-box diagonal); the spring is solved implicitly, so
    any ``stiffness`` is stable. Every iteration reads the previous positions only: the
    result is bit-identical for any ``n_jobs``.

    The defaults (30 iterations in each of 6 cycles, 32 partners, a soft spring) bundle
    clearly: on 2,000 to 10,000 edges between 8 hubs, the ink (:func:`edge_ink`) drops to
    0.6 to 0.8 of the straight drawing. What remains is mostly the fans where edges leave
    their endpoints, which FDEB does not merge across directions (see
    ``benchmarks/results/bundling.md``).

    Parameters
    ----------
    edges : array_like
        Segments ``(m, 2, 2)`` (or ``(m, 4)`` as x0, y0, x1, y1) or polylines ``(m, p, 2)``.
    n_cycles : int, default 6
        Subdivision cycles; the last has ``max(2**(n_cycles-1), p-2)`` interior points.
    n_iter : int, default 30
        Iterations in the first cycle.
    iter_rate : float, default 1.0
        Iteration count factor per cycle (Holten & van Wijk: 2/3 from 50; more iterations in
        the late cycles let the points near the endpoints join their bundle).
    step : float, default 0.04
        First-cycle step as a fraction of the bounding-box diagonal.
    step_rate : float, default 0.5
        Step factor per cycle, in (0, 1].
    stiffness : float, default 0.005
        Spring constant: larger keeps edges straighter and bundles looser.
    bandwidth : float or None, default 0.02
        Distance, as a fraction of the bounding-box diagonal, beyond which a partner's pull
        falls off as ``bandwidth / distance``; ``None``: no fall-off (every partner pulls
        with its compatibility alone, which merges more bundles into fewer).
    compatibility : float, default 0.6
        Minimum compatibility of an interacting pair, in (0, 1).
    max_neighbors : int, default 32
        Most compatible partners kept per edge (bounds time and memory; ``0``: none, the
        edges stay straight).
    directed : bool, default False
        If True, edges pointing in opposite directions do not attract (trajectories).
    n_points : int, optional
        Points per output polyline; default the last cycle's count (interior + 2).
    n_jobs : int, default 1
        Threads (``-1``: all cores); the output does not depend on it.
    return_info : bool, default False
        Also return a dict with ``length_before``/``length_after`` (:func:`polyline_length`),
        ``ink_before``/``ink_after`` (:func:`edge_ink`), ``mean_displacement`` and
        ``n_pairs`` (compatible pairs kept).

    Returns
    -------
    polylines : ndarray, shape (m, n_points, 2)
    info : dict, only if ``return_info``
    """
    e = _as_polylines(edges)
    threads = resolve_n_jobs(n_jobs)
    n_cycles = integer(n_cycles, "n_cycles", 0, 12)
    args = (
        n_cycles,
        integer(n_iter, "n_iter", 0, INT32_MAX),
        real(iter_rate, "iter_rate", 0.0, 1.0, lo_open=True),
        real(step, "step", 0.0, 1e300),
        real(step_rate, "step_rate", 0.0, 1.0, lo_open=True),
        real(stiffness, "stiffness", 0.0, 1e300, lo_open=True),
        1e300 if bandwidth is None else real(bandwidth, "bandwidth", 0.0, 1e300, lo_open=True),
        real(compatibility, "compatibility", 0.0, 1.0, lo_open=True, hi_open=True),
        integer(max_neighbors, "max_neighbors", 0, INT32_MAX),
        bool(directed),
        0 if n_points is None else integer(n_points, "n_points", 2, 100_000),
    )
    if e.shape[0] == 0:
        q = args[-1] or 2 ** max(n_cycles - 1, 0) + 2
        out = np.zeros((0, q, 2))
        n_pairs = 0
    else:
        out, n_pairs = _core().bundle_edges(e, *args, threads)
    if not return_info:
        return out
    lo = np.concatenate([e.reshape(-1, 2), out.reshape(-1, 2)]) if e.size else np.zeros((0, 2))
    extent = (lo.min(axis=0), lo.max(axis=0)) if len(lo) else None
    info = {
        "length_before": polyline_length(e),
        "length_after": polyline_length(out),
        "ink_before": edge_ink(e, extent=extent),
        "ink_after": edge_ink(out, extent=extent),
        "mean_displacement": mean_displacement(e, out),
        "n_pairs": int(n_pairs),
    }
    return out, info


# ---------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------


def polyline_length(polylines: Any) -> float:
    """Total length of polylines ``(m, p, 2)`` (every edge counted, overlaps included)."""
    p = _as_float_array(polylines, "polylines")
    if p.size == 0:
        return 0.0
    return float(np.sum(np.hypot(*np.moveaxis(np.diff(p, axis=1), -1, 0))))


def edge_ink(
    polylines: Any,
    resolution: int = 512,
    extent: tuple[Any, Any] | None = None,
) -> float:
    """Ink of a drawing: the length of the union of the curves.

    The curves are rasterised on a square-celled grid with ``resolution`` cells along the longer
    side of ``extent`` (default: the polylines' bounding box); ink is the number of cells they
    touch times the cell size. Overlapping curves (a bundle) count once, so bundling lowers it.

    Parameters
    ----------
    polylines : array_like, shape (m, p, 2)
    resolution : int, default 512
    extent : (lower, upper) pair of 2-vectors, optional
        Fix the grid (to compare drawings on the same one).
    """
    p = _as_float_array(polylines, "polylines")
    if p.ndim != 3 or p.shape[-1] != 2:
        raise ValueError(f"polylines must have shape (m, p, 2), got {p.shape}")
    if p.size == 0:
        return 0.0
    if extent is None:
        lo, hi = p.reshape(-1, 2).min(axis=0), p.reshape(-1, 2).max(axis=0)
    else:
        lo, hi = np.asarray(extent[0], np.float64), np.asarray(extent[1], np.float64)
    span = float(np.max(hi - lo))
    if span <= 0:
        return 0.0
    cell = span / int(resolution)
    nx = int(np.ceil((hi[0] - lo[0]) / cell)) + 1
    a = p[:, :-1].reshape(-1, 2)
    b = p[:, 1:].reshape(-1, 2)
    seen = np.zeros(nx * (int(np.ceil((hi[1] - lo[1]) / cell)) + 1), dtype=bool)
    ny = len(seen) // nx
    chunk = 200_000
    for s in range(0, len(a), chunk):
        aa, bb = a[s : s + chunk], b[s : s + chunk]
        n = np.ceil(np.hypot(*(bb - aa).T) / (0.5 * cell)).astype(np.int64) + 1
        seg = np.repeat(np.arange(len(aa)), n)
        t = (np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)) / np.repeat(
            np.maximum(n - 1, 1), n
        )
        pts = aa[seg] + t[:, None] * (bb[seg] - aa[seg])
        ij = np.floor((pts - lo) / cell).astype(np.int64)
        ij[:, 0] = np.clip(ij[:, 0], 0, nx - 1)
        ij[:, 1] = np.clip(ij[:, 1], 0, ny - 1)
        seen[ij[:, 1] * nx + ij[:, 0]] = True
    return float(seen.sum() * cell)


def mean_displacement(before: Any, after: Any) -> float:
    """Mean distance between matching points of two sets of polylines.

    Both are resampled to the same number of points equally spaced by arc length (the larger
    of the two counts), so a straight segment and its bundled curve compare point by point.
    """
    a = _as_polylines(before)
    b = _as_polylines(after)
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"before has {a.shape[0]} edges, after {b.shape[0]}")
    if a.shape[0] == 0:
        return 0.0
    q = max(a.shape[1], b.shape[1])
    core = _core()
    ra = core.resample_polylines(a, q)
    rb = core.resample_polylines(b, q)
    return float(np.mean(np.hypot(*np.moveaxis(ra - rb, -1, 0))))
