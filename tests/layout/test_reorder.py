"""Row reordering: exact Held-Karp against brute force, the heuristic against simple bounds."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from cnnvis import _core
from cnnvis.layout import hamiltonian_path, reorder_rows
from cnnvis.layout.reorder import (
    exact_max_n,
    pairwise_distances,
    path_length,
    reorder_columns,
)


def points(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    return cdist(x, x)


def random_symmetric(n: int, seed: int) -> np.ndarray:
    """Symmetric but not metric (no triangle inequality)."""
    rng = np.random.default_rng(seed)
    d = rng.random((n, n))
    d = d + d.T
    np.fill_diagonal(d, 0)
    return d


def brute_force(d: np.ndarray) -> float:
    n = d.shape[0]
    return min(path_length(d, p) for p in itertools.permutations(range(n)) if p[0] < p[-1])


def nn_length(d: np.ndarray, start: int) -> float:
    n = d.shape[0]
    order, used = [start], {start}
    for _ in range(n - 1):
        row = d[order[-1]].copy()
        row[list(used)] = np.inf
        nxt = int(np.argmin(row))
        order.append(nxt)
        used.add(nxt)
    return path_length(d, order)


def is_permutation(order: np.ndarray, n: int) -> bool:
    return (
        order.dtype == np.int64
        and order.shape == (n,)
        and np.array_equal(np.sort(order), np.arange(n))
    )


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("make", [points, random_symmetric])
def test_exact_equals_brute_force(n, make):
    for seed in range(3):
        d = make(n, seed)
        order = hamiltonian_path(d, method="exact")
        assert is_permutation(order, n)
        assert path_length(d, order) == pytest.approx(brute_force(d), rel=1e-6)


def test_heuristic_finds_the_optimum_on_small_instances():
    for seed in range(4):
        d = points(12, seed)
        exact = path_length(d, hamiltonian_path(d, method="exact"))
        heur = path_length(d, hamiltonian_path(d, method="heuristic", random_state=seed))
        assert heur == pytest.approx(exact, rel=1e-6)


def test_exact_same_for_any_thread_count_and_fast():
    d = points(16, 0)
    t = time.perf_counter()
    one = hamiltonian_path(d, method="exact", n_jobs=1)
    elapsed = time.perf_counter() - t
    two = hamiltonian_path(d, method="exact", n_jobs=2)
    assert np.array_equal(one, two)
    assert elapsed < 0.5  # ~10 ms on a free core; generous for a shared machine


def test_exact_limit_comes_from_memory_budget():
    assert exact_max_n(1 << 30) == 23
    assert exact_max_n(1 << 20) < exact_max_n(1 << 30)
    assert _core.held_karp_bytes(20) == (1 << 20) * 20 * 4 + 20 * 20 * 4
    d = points(12, 1)
    with pytest.raises(MemoryError, match="memory_limit"):
        hamiltonian_path(d, method="exact", memory_limit=1 << 12)
    with pytest.raises(MemoryError, match="heuristic"):
        hamiltonian_path(points(30, 0), method="exact")


@pytest.mark.parametrize("n", [40, 150])
def test_heuristic_never_worse_than_nearest_neighbour(n):
    for seed in range(3):
        d = points(n, seed) if seed != 2 else random_symmetric(n, seed)
        order, info = hamiltonian_path(d, method="heuristic", random_state=seed, return_info=True)
        assert is_permutation(order, n)
        length = path_length(d, order)
        assert info["length"] == pytest.approx(length)
        assert info["nn_length"] == pytest.approx(nn_length(d, 0))
        assert length <= nn_length(d, 0) + 1e-9  # guaranteed: the search starts no worse
        assert length <= min(nn_length(d, s) for s in range(n))  # any start
        assert length <= info["local_length"] + 1e-9
        assert info["local_length"] <= min(info["hierarchy_length"], info["nn_length"]) + 1e-9
        assert not info["time_capped"]


def test_heuristic_is_deterministic_for_a_seed():
    d = points(300, 5)
    a = hamiltonian_path(d, method="heuristic", random_state=3, max_iter=3000, time_budget=30)
    b = hamiltonian_path(d, method="heuristic", random_state=3, max_iter=3000, time_budget=30)
    assert np.array_equal(a, b)


def test_heuristic_quality_against_lkh():
    elkai = pytest.importorskip("elkai")  # LKH-3: a reference for tests, never a dependency
    n = 200
    d = points(n, 11)
    ours = path_length(d, hamiltonian_path(d, method="heuristic"))
    m = np.zeros((n + 1, n + 1), dtype=np.int64)  # dummy city opens the tour into a path
    m[:n, :n] = np.rint(d * 1e6)
    tour = elkai.DistanceMatrix(m.tolist()).solve_tsp(runs=1)[:-1]
    k = tour.index(n)
    lkh = path_length(d, tour[k + 1 :] + tour[:k])
    assert ours <= 1.01 * lkh


def test_time_budget_caps_the_search():
    d = points(400, 2)
    order, info = hamiltonian_path(
        d, method="heuristic", max_iter=10**9, time_budget=0.05, return_info=True
    )
    assert info["time_capped"]
    assert is_permutation(order, 400)
    assert info["length"] <= info["nn_length"] + 1e-9


def test_auto_method_switches_at_the_limit():
    _, small = hamiltonian_path(points(10, 0), return_info=True)
    _, big = hamiltonian_path(points(40, 0), return_info=True)
    assert small["method"] == "exact" and big["method"] == "heuristic"


@pytest.mark.parametrize("method", ["exact", "heuristic", "auto"])
def test_degenerate_sizes(method):
    assert hamiltonian_path(np.zeros((0, 0)), method).shape == (0,)
    assert hamiltonian_path(np.zeros((1, 1)), method).tolist() == [0]
    assert hamiltonian_path(np.array([[0.0, 2.0], [2.0, 0.0]]), method).tolist() == [0, 1]
    eq = np.zeros((9, 9))  # equal rows: every order is optimal
    order = hamiltonian_path(eq, method)
    assert is_permutation(order, 9) and order[0] < order[-1]


def test_bad_distances_raise_clear_errors():
    d = points(6, 0)
    nan = d.copy()
    nan[1, 2] = nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hamiltonian_path(nan)
    asym = d.copy()
    asym[0, 1] += 0.5
    with pytest.raises(ValueError, match="symmetric"):
        hamiltonian_path(asym)
    neg = d.copy()
    neg[0, 1] = neg[1, 0] = -1
    with pytest.raises(ValueError, match="non-negative"):
        hamiltonian_path(neg)
    with pytest.raises(ValueError, match="square"):
        hamiltonian_path(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="method"):
        hamiltonian_path(d, method="fast")
    # The binding checks on its own too.
    with pytest.raises(ValueError, match="NaN"):
        _core.held_karp_path(nan, 1 << 20)
    with pytest.raises(ValueError, match="symmetric"):
        _core.heuristic_path(asym)


def test_reorder_rows_groups_similar_rows():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 10))
    labels = np.repeat(np.arange(4), 8)
    rows = centres[labels] + 0.05 * rng.normal(size=(32, 10))
    perm = rng.permutation(32)
    order = reorder_rows(rows[perm], metric="euclidean")
    seq = labels[perm][order]
    assert is_permutation(order, 32)
    assert int((seq[1:] != seq[:-1]).sum()) == 3  # each group is one run


def test_reorder_rows_cosine_handles_zero_rows():
    rows = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.0, 0.0]])
    d = pairwise_distances(rows, "cosine")
    assert np.all(np.isfinite(d)) and d[1, 4] == 0 and d[1, 0] == 1
    order = reorder_rows(rows)
    pos = {int(v): k for k, v in enumerate(order)}
    assert abs(pos[1] - pos[4]) == 1 and abs(pos[0] - pos[3]) == 1
    with pytest.raises(ValueError, match="NaN"):
        reorder_rows(np.array([[1.0, np.nan], [0.0, 1.0]]))


def test_reorder_columns_is_rows_of_the_transpose():
    rng = np.random.default_rng(1)
    m = rng.random((30, 10))
    assert np.array_equal(reorder_columns(m), reorder_rows(m.T))
