"""Biclustering of signed weight matrices into dense single-sign biclusters (CNNVis, C6).

A bicluster is drawn as ``|rows| + |cols|`` edges through one in-between node instead of one
edge per entry; :mod:`cnnvis.layout.routing` places those nodes and draws the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnvis.layout._arrays import as_float_array, core
from cnnvis.layout._checks import INT32_MAX, integer, real
from cnnvis.parallel import resolve_n_jobs

__all__ = ["Bicluster", "BiclusterResult", "bicluster_edges"]


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
    w = as_float_array(weights, "weights")
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D array (n_rows, n_cols), got shape {w.shape}")
    threshold = float(threshold)  # inf is allowed: no edges
    if np.isnan(threshold) or threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    bics_raw, direct, n_edges = core().bicluster_edges(
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
    direct = np.asarray(direct, np.int64).reshape(-1, 2)
    assignment = _assignment(w, threshold, biclusters)
    return BiclusterResult(biclusters, direct, assignment, threshold, int(n_edges))


def _assignment(w: np.ndarray, threshold: float, biclusters: list[Bicluster]) -> np.ndarray:
    """Per entry of ``w``: the bicluster claiming it, ``-1`` for a direct edge, ``-2`` no edge."""
    edge = (w != 0) & (np.abs(w) >= threshold)
    assignment = np.where(edge, np.int32(-1), np.int32(-2)).astype(np.int32)
    for k, b in enumerate(biclusters):
        block = assignment[np.ix_(b.rows, b.cols)]
        own = (w[np.ix_(b.rows, b.cols)] * b.sign > 0) & (block == -1)
        block[own] = k
        assignment[np.ix_(b.rows, b.cols)] = block
    return assignment
