"""Row orders whose neighbours are alike: the shortest open Hamiltonian path.

CNNVis orders the rows (neurons) of a cluster's activation matrix so that adjacent rows look
alike, and the columns (classes) once for all clusters. Both are the same problem: given pairwise
distances, find the open path through all items of least total length.

* ``method='exact'``: Held-Karp dynamic programming over subsets in the C++ core,
  :math:`O(n^2 2^n)` time and :math:`4 n 2^n` bytes (float32 costs, the path recovered by
  recomputing argmins instead of storing parents). The largest feasible ``n`` follows from
  ``memory_limit`` (about 23 at the default 1 GiB); beyond it :class:`MemoryError` is raised.
* ``method='heuristic'``: the CNNVis construction (average-linkage hierarchy; groups of up to
  ``group_size`` rows ordered exactly, up to ``fan_out`` sibling groups ordered exactly with the
  joining ends chosen) or the nearest-neighbour path from row 0, whichever is shorter, then
  iterated local search: 2-opt and Or-opt over neighbour lists until no move improves, with
  double-bridge kicks on short stretches, a kick kept when the path is not longer. The number of
  kicks (``max_iter``) makes the result deterministic for a ``random_state``; ``time_budget`` is
  only a wall-clock safety cap (when it stops the search, the result depends on the machine).
* ``method='auto'``: exact up to :data:`AUTO_EXACT_MAX` rows, heuristic beyond.

Examples
--------
>>> import numpy as np
>>> from cnnvis.layout import reorder_rows
>>> rows = np.array([[0.0, 1.0], [1.0, 0.0], [0.1, 0.9], [0.9, 0.1]])
>>> reorder_rows(rows, metric="euclidean").tolist()
[0, 2, 3, 1]
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from cnnvis.layout._checks import integer, real, seed
from cnnvis.parallel import resolve_n_jobs

__all__ = [
    "AUTO_EXACT_MAX",
    "hamiltonian_path",
    "reorder_rows",
    "reorder_columns",
    "path_length",
    "pairwise_distances",
    "exact_max_n",
]

#: ``method='auto'`` solves exactly up to this many rows (about 10 ms at 16).
AUTO_EXACT_MAX = 16

#: Default memory budget of the exact solver in bytes (1 GiB: n <= 23).
DEFAULT_MEMORY_LIMIT = 1 << 30

Method = Literal["auto", "exact", "heuristic"]


def _core() -> Any:
    from cnnvis import _core

    return _core


def exact_max_n(memory_limit: int = DEFAULT_MEMORY_LIMIT) -> int:
    """Largest number of rows the exact solver handles within ``memory_limit`` bytes."""
    return int(_core().held_karp_max_n(integer(memory_limit, "memory_limit", 0, 2**64 - 1)))


def _as_dist(dist: ArrayLike) -> np.ndarray:
    d = np.asarray(dist)
    if d.dtype == object or not (
        np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)
    ):
        raise ValueError(f"dist must be a numeric array, got dtype {d.dtype}")
    d = np.ascontiguousarray(d, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"dist must be a square 2-D array, got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError("dist contains NaN or infinite values")
    if d.size and d.min() < 0:
        raise ValueError("dist must be non-negative")
    scale = float(np.abs(d).max()) if d.size else 0.0
    if not np.allclose(d, d.T, rtol=0.0, atol=1e-9 * scale):
        raise ValueError("dist must be symmetric (dist[i, j] == dist[j, i])")
    return d


def path_length(dist: ArrayLike, order: ArrayLike) -> float:
    """Total distance along the open path ``order`` (sum of ``dist[order[k], order[k+1]]``)."""
    d = np.asarray(dist, dtype=np.float64)
    o = np.asarray(order, dtype=np.int64)
    if o.size < 2:
        return 0.0
    with np.errstate(over="ignore"):  # a path over huge distances is honestly inf long
        return float(d[o[:-1], o[1:]].sum())


def _heuristic_knobs(
    max_iter: Any, time_budget: Any, kick_size: Any, neighbours: Any, group_size: Any, fan_out: Any
) -> tuple[int | None, float, int, int, int, int]:
    # Checked whatever the method, so a bad setting is reported even where it would go unused.
    if max_iter is not None:
        max_iter = integer(max_iter, "max_iter", 0)
    time_budget = real(time_budget, "time_budget")
    kick_size = integer(kick_size, "kick_size", 1, 2**31 - 1)
    neighbours = integer(neighbours, "neighbours", 1, 2**31 - 1)
    group_size = integer(group_size, "group_size", 2, 16)
    fan_out = integer(fan_out, "fan_out", 2, 12)
    return max_iter, time_budget, kick_size, neighbours, group_size, fan_out


def _heuristic_path(
    d: np.ndarray,
    random_state: int | None,
    max_iter: int | None,
    time_budget: float,
    kick_size: int,
    neighbours: int,
    group_size: int,
    fan_out: int,
) -> tuple[Any, dict[str, Any]]:
    n = d.shape[0]
    iters = min(20000 + 10 * n, max(1000, 200 * n)) if max_iter is None else max_iter
    return _core().heuristic_path(
        d, iters, time_budget, seed(random_state), neighbours, group_size, fan_out, kick_size
    )


def hamiltonian_path(
    dist: ArrayLike,
    method: Method = "auto",
    *,
    time_budget: float = 2.0,
    max_iter: int | None = None,
    random_state: int | None = 0,
    n_jobs: int = 1,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    neighbours: int = 10,
    group_size: int = 9,
    fan_out: int = 8,
    kick_size: int = 100,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Order of the rows whose open path has the least total distance.

    Parameters
    ----------
    dist : array-like of shape (n, n)
        Pairwise distances: finite, non-negative and symmetric (the diagonal is ignored).
    method : {'auto', 'exact', 'heuristic'}, default='auto'
        ``'exact'`` is Held-Karp (optimal; raises :class:`MemoryError` beyond the memory budget),
        ``'heuristic'`` the hierarchical start plus iterated local search, ``'auto'`` exact up to
        :data:`AUTO_EXACT_MAX` rows and heuristic beyond.
    time_budget : float, default=2.0
        Wall-clock cap of the heuristic in seconds (a safety net; ``<= 0`` for none).
    max_iter : int or None, default=None
        Kicks of the iterated local search; ``None`` means
        ``min(20000 + 10 * n, max(1000, 200 * n))``. With the
        wall-clock cap not reached the result depends only on the input and ``random_state``.
    random_state : int or None, default=0
        Seed of the kicks; ``None`` draws a fresh one (not reproducible).
    n_jobs : int, default=1
        Threads of the exact solver's layers (the result is the same for any value).
    memory_limit : int, default=1 GiB
        Bytes the exact solver may use; see :func:`exact_max_n`.
    neighbours, group_size, fan_out : int
        Neighbour-list length of the local search, size of exactly ordered groups (<= 16) and
        number of sibling groups ordered exactly at each level of the hierarchy (<= 12).
    kick_size : int, default=100
        A kick swaps two adjacent stretches of 1 to ``kick_size`` rows (at most a third of n).
    return_info : bool, default=False
        Also return a dict: ``method``, ``length`` and, for the heuristic, ``nn_length``
        (nearest-neighbour path from row 0), ``hierarchy_length`` (CNNVis start),
        ``local_length`` (first local optimum), ``iterations`` and ``time_capped``.

    Returns
    -------
    order : ndarray of int64, shape (n,)
        A permutation of ``range(n)``, oriented so that ``order[0] < order[-1]``. The heuristic's path is never longer than the
        nearest-neighbour path from row 0.
    info : dict
        Only with ``return_info=True``.
    """
    d = _as_dist(dist)
    n = d.shape[0]
    if method not in ("auto", "exact", "heuristic"):
        raise ValueError(f"method must be 'auto', 'exact' or 'heuristic', got {method!r}")
    n_jobs = resolve_n_jobs(n_jobs)
    memory_limit = integer(memory_limit, "memory_limit", 0, 2**64 - 1)
    knobs = _heuristic_knobs(max_iter, time_budget, kick_size, neighbours, group_size, fan_out)
    if method == "auto":
        method = "exact" if n <= AUTO_EXACT_MAX else "heuristic"
    info: dict[str, Any] = {"method": method}
    if n <= 2:
        order = np.arange(n, dtype=np.int64)
    elif method == "exact":
        order = _core().held_karp_path(d, memory_limit, n_jobs)
    else:
        order, extra = _heuristic_path(d, random_state, *knobs)
        info.update(extra)
    order = np.asarray(order, dtype=np.int64)
    if n >= 2 and order[0] > order[-1]:
        order = order[::-1].copy()  # a path and its reverse are equal: start at the lower end
    info["length"] = path_length(d, order)
    return (order, info) if return_info else order


def pairwise_distances(matrix: ArrayLike, metric: str = "cosine") -> np.ndarray:
    """Distances between the rows of ``matrix`` for reordering.

    Any metric of :func:`scipy.spatial.distance.cdist`. For ``'cosine'`` and ``'correlation'``,
    rows without direction (all zero, or constant for correlation) are at distance 0 from each
    other and 1 from every other row, instead of NaN.
    """
    from scipy.spatial.distance import cdist

    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"matrix must be a 2-D array, got shape {m.shape}")
    if not (np.issubdtype(m.dtype, np.floating) or np.issubdtype(m.dtype, np.integer)):
        raise ValueError(f"matrix must be numeric, got dtype {m.dtype}")
    m = np.asarray(m, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError("matrix contains NaN or infinite values")
    n = m.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    if m.shape[1] == 0:
        return np.zeros((n, n))
    if metric in ("cosine", "correlation"):
        d = _angular_distances(m, metric)
        if not np.all(np.isfinite(d)):
            # Norms of rows near 1e155 or 1e-155 overflow or underflow; neither metric sees a
            # row's scale, so rows scaled to a largest entry of 1 give the true distances.
            size = np.abs(m).max(axis=1, keepdims=True)
            d = _angular_distances(m / np.where(size > 0, size, 1.0), metric)
    elif metric in _HOMOGENEOUS:
        d = _homogeneous_distances(m, metric)
    else:
        d = cdist(m, m, metric=metric)
    if not np.all(np.isfinite(d)):
        raise ValueError(
            f"the {metric!r} distances between the rows overflow (the largest entry of matrix "
            f"is {np.abs(m).max():.3g}); scale matrix down"
        )
    d = np.maximum(d, 0.0)  # cosine can round to -1e-16
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


#: Metrics with d(c x, c y) = c**k d(x, y): computed on a matrix scaled into a safe range.
_HOMOGENEOUS = {"euclidean": 1, "cityblock": 1, "chebyshev": 1, "minkowski": 1, "sqeuclidean": 2}


def _homogeneous_distances(m: np.ndarray, metric: str) -> np.ndarray:
    """cdist, without the overflow or underflow of squares of entries beyond about 1e±150."""
    from scipy.spatial.distance import cdist

    top = float(np.abs(m).max())
    if top == 0.0 or 1e-100 < top < 1e100:
        return cdist(m, m, metric=metric)
    shift = int(np.frexp(top)[1])  # a power of two: the scaling itself is exact
    with np.errstate(over="ignore", under="ignore"):
        return np.ldexp(
            cdist(np.ldexp(m, -shift), np.ldexp(m, -shift), metric=metric),
            shift * _HOMOGENEOUS[metric],
        )


def _angular_distances(m: np.ndarray, metric: str) -> np.ndarray:
    """Cosine or correlation distances; rows without direction (all zero, or constant for
    correlation) are at 0 from each other and 1 from every other row."""
    from scipy.spatial.distance import cdist

    n = m.shape[0]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        centred = m - m.mean(axis=1, keepdims=True) if metric == "correlation" else m
        scale = np.abs(centred).max(axis=1)
        flat = scale <= 1e-12 * max(float(np.abs(m).max()), 1e-300)
        d = np.zeros((n, n))
        ok = ~flat
        if ok.any():
            d[np.ix_(ok, ok)] = cdist(m[ok], m[ok], metric=metric)
    d[np.ix_(flat, ok)] = 1.0
    d[np.ix_(ok, flat)] = 1.0
    return d


def reorder_rows(
    matrix: ArrayLike,
    metric: str = "cosine",
    method: Method = "auto",
    **kwargs: Any,
) -> np.ndarray:
    """Order of the rows of ``matrix`` such that neighbouring rows are alike.

    Builds distances with :func:`pairwise_distances` and calls :func:`hamiltonian_path`.

    Parameters
    ----------
    matrix : array-like of shape (n_rows, n_cols)
        For an activation matrix: a row per neuron, a column per class.
    metric : str, default='cosine'
        Any :func:`scipy.spatial.distance.cdist` metric.
    method : {'auto', 'exact', 'heuristic'}, default='auto'
    **kwargs
        Passed to :func:`hamiltonian_path` (``random_state``, ``time_budget``, ...).

    Returns
    -------
    order : ndarray of int64, shape (n_rows,)
        ``matrix[order]`` is the reordered matrix.
    """
    d = pairwise_distances(matrix, metric)
    return hamiltonian_path(d, method, **kwargs)


def reorder_columns(
    matrix: ArrayLike,
    metric: str = "cosine",
    method: Method = "auto",
    **kwargs: Any,
) -> np.ndarray:
    """Order of the columns of ``matrix`` such that neighbouring columns are alike.

    CNNVis orders the classes once for all clusters: pass the matrix of *all* neurons of a layer
    (or of all layers) and apply the order to every cluster's matrix, ``m[:, order]``. This is
    :func:`reorder_rows` on the transpose.
    """
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise ValueError(f"matrix must be a 2-D array, got shape {m.shape}")
    return reorder_rows(m.T, metric, method, **kwargs)
