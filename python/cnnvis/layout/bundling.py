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

from typing import Any

import numpy as np

from cnnvis.layout._arrays import as_float_array, core
from cnnvis.layout._checks import INT32_MAX, integer, real

# Biclustering and routing live in their own modules; their names stay importable from here.
from cnnvis.layout.biclusters import Bicluster, BiclusterResult, bicluster_edges
from cnnvis.layout.routing import RoutedEdges, route_bicluster_edges
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


# ---------------------------------------------------------------------------------------------
# Force-directed edge bundling
# ---------------------------------------------------------------------------------------------


def _as_polylines(edges: Any) -> np.ndarray:
    e = as_float_array(edges, "edges")
    if e.ndim == 2 and e.shape[1] == 4:  # (m, 4): x0, y0, x1, y1
        e = e.reshape(-1, 2, 2)
    if e.ndim != 3 or e.shape[2] != 2 or (e.shape[0] > 0 and e.shape[1] < 2):
        raise ValueError(
            "edges must be segments (m, 2, 2) or (m, 4), or polylines (m, p, 2) with p >= 2; "
            f"got shape {e.shape}"
        )
    return np.ascontiguousarray(e)


# Over 80 lines only by its 70-line numpydoc docstring: signature and body are 41.
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
    args = _bundle_args(
        n_cycles,
        n_iter,
        iter_rate,
        step,
        step_rate,
        stiffness,
        bandwidth,
        compatibility,
        max_neighbors,
        directed,
        n_points,
    )
    if e.shape[0] == 0:
        q = args[-1] or 2 ** max(args[0] - 1, 0) + 2
        out = np.zeros((0, q, 2))
        n_pairs = 0
    else:
        out, n_pairs = core().bundle_edges(e, *args, threads)
    if not return_info:
        return out
    return out, _bundle_info(e, out, n_pairs)


def _bundle_args(
    n_cycles: Any,
    n_iter: Any,
    iter_rate: Any,
    step: Any,
    step_rate: Any,
    stiffness: Any,
    bandwidth: Any,
    compatibility: Any,
    max_neighbors: Any,
    directed: Any,
    n_points: Any,
) -> tuple:
    """The checked settings of :func:`bundle_edges`, in the order the C++ core takes them."""
    return (
        integer(n_cycles, "n_cycles", 0, 12),
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


def _bundle_info(e: np.ndarray, out: np.ndarray, n_pairs: int) -> dict[str, float]:
    """The measures of ``return_info``: before and after on one grid."""
    lo = np.concatenate([e.reshape(-1, 2), out.reshape(-1, 2)]) if e.size else np.zeros((0, 2))
    extent = (lo.min(axis=0), lo.max(axis=0)) if len(lo) else None
    return {
        "length_before": polyline_length(e),
        "length_after": polyline_length(out),
        "ink_before": edge_ink(e, extent=extent),
        "ink_after": edge_ink(out, extent=extent),
        "mean_displacement": mean_displacement(e, out),
        "n_pairs": int(n_pairs),
    }


# ---------------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------------


def polyline_length(polylines: Any) -> float:
    """Total length of polylines ``(m, p, 2)`` (every edge counted, overlaps included)."""
    p = as_float_array(polylines, "polylines")
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
    p = as_float_array(polylines, "polylines")
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
    cpp = core()
    ra = cpp.resample_polylines(a, q)
    rb = cpp.resample_polylines(b, q)
    return float(np.mean(np.hypot(*np.moveaxis(ra - rb, -1, 0))))
