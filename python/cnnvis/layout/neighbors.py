"""k nearest neighbours on the C++ core: exact (blocked brute force, O(n^2 d)) or approximate
(random-projection forest refined by NN-descent, about O(n k d) and memory O(n k)).

``method="auto"`` takes the exact search below :data:`APPROX_FROM` points, where it is as fast
and exact, and the approximate one from there on (the crossover measured in
``benchmarks/README.md``, "t-SNE at scale").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnvis import _core
from cnnvis.layout._checks import integer
from cnnvis.parallel import resolve_n_jobs

__all__ = ["APPROX_FROM", "METHODS", "as_points", "nearest_neighbors", "resolve_method"]

#: From this many points ``"auto"`` searches approximately.
APPROX_FROM = 40_000

METHODS = ("auto", "exact", "approx")


def as_points(X: Any, name: str = "X") -> np.ndarray:
    """Validates a 2-D numeric array and returns it as C-contiguous float64."""
    try:
        arr = np.asarray(X)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} must be a 2-D numeric array: {exc}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ValueError(f"{name} must be a 2-D numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real-valued")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got {arr.ndim}-D")
    if arr.shape[0] < 1:
        raise ValueError(f"{name} must contain at least one sample")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one feature")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name} contains NaN or infinite values (first at row {bad[0]}, column {bad[1]})"
        )
    return arr


def resolve_method(method: object, n: int) -> str:
    """``"exact"`` or ``"approx"`` for ``method`` on n points (``"auto"`` by :data:`APPROX_FROM`)."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(
            f"neighbors must be one of {', '.join(map(repr, METHODS))}, got {method!r}"
        )
    if method == "auto":
        return "approx" if n >= APPROX_FROM else "exact"
    return method


def knn_seed(random_state: object) -> int:
    """The search's 64-bit seed: ``None`` is 0 (the search stays deterministic by default), a
    Generator gives one draw."""
    if random_state is None:
        return 0
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63))
    return integer(random_state, "random_state", 0, 2**64 - 1)


def nearest_neighbors(
    X: Any, k: int, *, method: str = "auto", n_jobs: int = 1, random_state: object = None
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest neighbours of every row of X among the other rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Real values, converted to float64; NaN or infinite values raise ``ValueError``.
    k : int
        Neighbours per point, ``1 <= k <= n_samples - 1``.
    method : {"auto", "exact", "approx"}
        ``"approx"`` is exact too below 4,096 points or when ``4 k >= n_samples``.
    n_jobs : int
        Threads; the result is the same for any value.
    random_state : int, numpy Generator or None
        Seed of the approximate search (``None``: 0).

    Returns
    -------
    indices : ndarray of shape (n_samples, k), int32
    sq_distances : ndarray of shape (n_samples, k), float64
        Squared Euclidean distances; each row sorted by (distance, index).
    """
    X = as_points(X)
    threads = resolve_n_jobs(n_jobs)
    if resolve_method(method, X.shape[0]) == "exact":
        return _core._tsne_knn(X, k, threads)
    return _core._knn_approx(X, k, threads, knn_seed(random_state))
