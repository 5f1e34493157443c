"""Approximate k nearest neighbours (random-projection forest + NN-descent in the C++ core):
recall against the exact search, determinism, the exact fallback, and clear errors."""

from __future__ import annotations

import _thread
import threading

import numpy as np
import pytest
from hostile import FAST, arrays, hostile_ints, outcome
from hypothesis import given
from hypothesis import strategies as st

from cnnvis import _core
from cnnvis.layout.neighbors import APPROX_FROM, nearest_neighbors, resolve_method


def mixture(n: int, d: int, seed: int = 0) -> np.ndarray:
    """10 Gaussian clusters in d dimensions: a high intrinsic dimension, a hard case for trees."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(10, d))
    return centres[rng.integers(0, 10, n)] + rng.normal(size=(n, d))


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return (
        float(np.mean([len(np.intersect1d(a, e)) for a, e in zip(approx, exact)])) / exact.shape[1]
    )


def check_rows(X: np.ndarray, idx: np.ndarray, d2: np.ndarray) -> None:
    """Each row: no self, no repeat, sorted by (distance, index), distances that are right."""
    n, k = idx.shape
    assert idx.dtype == np.int32 and d2.shape == (n, k)
    assert np.all((idx >= 0) & (idx < n)) and not np.any(idx == np.arange(n)[:, None])
    assert all(len(np.unique(row)) == k for row in idx)
    true = ((X[:, None, :] - X[idx]) ** 2).sum(-1)
    np.testing.assert_allclose(d2, true, rtol=1e-12, atol=1e-300)
    later = (d2[:, 1:] > d2[:, :-1]) | ((d2[:, 1:] == d2[:, :-1]) & (idx[:, 1:] > idx[:, :-1]))
    assert np.all(later)


@pytest.fixture(scope="module")
def clusters20k():
    X = mixture(20_000, 50)
    return X, _core._tsne_knn(X, 30, 2)


def test_recall_at_20000_points_is_at_least_095(clusters20k):
    X, (exact, exact_d2) = clusters20k
    idx, d2 = nearest_neighbors(X, 30, method="approx", n_jobs=2)
    assert recall(idx, exact) >= 0.95
    check_rows(X[:500], *_core._knn_approx(X[:500], 30, 1, 0, exact_below=2, leaf_size=40))
    # never closer than the truth: the i-th distance is at least the exact i-th distance
    assert np.all(d2 >= exact_d2 * (1 - 1e-12))


def test_same_bytes_for_any_thread_count_and_seed_matters(clusters20k):
    X = clusters20k[0][:6000]
    one = _core._knn_approx(X, 15, 1, 7)
    two = _core._knn_approx(X, 15, 2, 7)
    assert one[0].tobytes() == two[0].tobytes() and one[1].tobytes() == two[1].tobytes()
    other = _core._knn_approx(X, 15, 2, 8, max_iter=0)  # the forest alone shows the seed
    assert other[0].tobytes() != _core._knn_approx(X, 15, 2, 7, max_iter=0)[0].tobytes()


def test_auto_switches_at_the_threshold_and_is_exact_below():
    assert resolve_method("auto", APPROX_FROM - 1) == "exact"
    assert resolve_method("auto", APPROX_FROM) == "approx"
    assert resolve_method("exact", 10**7) == "exact"
    X = mixture(3000, 8)
    exact = _core._tsne_knn(X, 12, 1)
    for method in ("auto", "approx"):  # approx is exact below 4,096 points: same bytes
        got = nearest_neighbors(X, 12, method=method)
        assert got[0].tobytes() == exact[0].tobytes() and got[1].tobytes() == exact[1].tobytes()


def test_duplicates_and_a_constant_input_give_valid_lists():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, size=(5000, 2)).astype(float)  # 9 distinct points, many ties
    idx, d2 = nearest_neighbors(X, 10, method="approx")
    assert np.all(d2 == 0.0)  # every point has hundreds of copies
    assert not np.any(idx == np.arange(len(X))[:, None])
    idx, d2 = nearest_neighbors(np.ones((4500, 3)), 5, method="approx", random_state=1)
    assert np.all(d2 == 0.0) and all(len(set(row)) == 5 for row in idx.tolist())


def test_huge_and_tiny_scales_find_the_same_neighbours():
    X = mixture(4500, 6)
    ref = _core._knn_approx(X, 8, 1)[0]
    # the float32 search runs on a copy scaled by a power of two to magnitude ~1: no overflow
    # of float's range (3e38) at 2^300 ~ 2e90, no underflow at 2^-300, the same choices
    for scale in (2.0**300, 2.0**-300):
        np.testing.assert_array_equal(_core._knn_approx(X * scale, 8, 1)[0], ref)


@pytest.mark.parametrize(
    ("X", "k", "error", "match"),
    [
        (np.zeros((0, 3)), 1, ValueError, "at least one sample"),
        (np.zeros((1, 3)), 1, ValueError, "at least 2 rows"),
        (np.zeros(5), 1, ValueError, "2-D"),
        (np.zeros((5, 0)), 1, ValueError, "at least one feature"),
        (np.array([[1.0, np.nan]] * 5), 1, ValueError, "NaN"),
        (np.array([["a", "b"]] * 5), 1, ValueError, "numeric"),
        (np.zeros((5, 2)), 0, ValueError, r"k must be in \[1, 4\]"),
        (np.zeros((5, 2)), 5, ValueError, r"k must be in \[1, 4\]"),
        (np.zeros((5, 2)), 2**40, ValueError, "k must be in"),
        (np.zeros((5, 2)), 2.5, TypeError, "k must be an integer"),
    ],
)
def test_bad_input_is_a_clear_error(X, k, error, match):
    with pytest.raises(error, match=match):
        nearest_neighbors(X, k, method="approx")


def test_bad_knobs_are_clear_errors():
    X = np.zeros((10, 2))
    with pytest.raises(ValueError, match="neighbors must be one of"):
        nearest_neighbors(X, 2, method="annoy")
    with pytest.raises(ValueError, match="n_trees must be in"):
        _core._knn_approx(X, 2, 1, 0, n_trees=-1)
    with pytest.raises(ValueError, match="seed must be in"):
        _core._knn_approx(X, 2, 1, -1)
    with pytest.raises(ValueError, match="random_state"):
        nearest_neighbors(X, 2, method="approx", random_state=-3)
    with pytest.raises(ValueError, match="n_jobs"):
        _core._knn_approx(X, 2, 0)


@FAST
@given(
    data=st.data(),
    n=st.integers(5, 160),
    d=st.integers(1, 6),
    grid=st.sampled_from([None, 2, 5]),
    leaf=st.integers(2, 40),
    jobs=st.sampled_from([1, 2]),
)
def test_property_small_inputs_through_the_approximate_machinery(data, n, d, grid, leaf, jobs):
    """exact_below=2 forces the forest and NN-descent even on a handful of points (with small
    leaves, so the trees split), on continuous data and on coarse grids full of ties."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n, d)) if grid is None else rng.integers(0, grid, (n, d)).astype(float)
    k = data.draw(st.integers(1, max(1, (n - 1) // 4)))
    idx, d2 = _core._knn_approx(X, k, jobs, 5, exact_below=2, leaf_size=leaf, max_iter=10)
    check_rows(X, idx, d2)
    again = _core._knn_approx(X, k, 3 - jobs, 5, exact_below=2, leaf_size=leaf, max_iter=10)
    assert again[0].tobytes() == idx.tobytes()
    _, exact_d2 = _core._tsne_knn(X, k)
    # distance recall (ties make the index sets ambiguous): found distances within the truth's
    assert np.mean(d2 <= exact_d2[:, -1:] * (1 + 1e-12)) >= 0.9


@FAST
@given(data=st.data(), n=st.integers(0, 12), dim=st.integers(0, 3), k=hostile_ints())
def test_property_hostile_arrays_and_ints(data, n, dim, k):
    x = data.draw(arrays((n, dim)))
    seed, trees = data.draw(hostile_ints()), data.draw(hostile_ints())
    outcome(lambda: _core._knn_approx(x, k, 1, seed, n_trees=trees, exact_below=2))
    outcome(lambda: nearest_neighbors(x, k, method="approx", random_state=seed))


def test_ctrl_c_stops_the_search():
    X = mixture(200_000, 32)  # ~20 s of work: the interrupt comes long before the end,
    # even on a loaded machine (at 60,000 points, one sanitizer run at load 15 saw no interrupt)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            _core._knn_approx(X, 30, 2, 0, max_iter=1000)
    finally:
        timer.cancel()
