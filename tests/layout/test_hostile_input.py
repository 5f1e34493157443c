"""The reproducers of issue 14 for the layout core, each a correct result or a clear error, and
the one n_jobs rule (cnnvis.parallel)."""

from __future__ import annotations

import math
import os
import threading

import numpy as np
import pytest
from hostile import is_permutation, no_overlap

from cnnvis import _core
from cnnvis.layout import (
    TSNE,
    bicluster_edges,
    bundle_edges,
    hamiltonian_path,
    pack_rectangles,
    reorder_rows,
)
from cnnvis.layout.reorder import pairwise_distances, path_length
from cnnvis.parallel import available_cores, resolve_n_jobs


def _euclidean(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 3))
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


# ------------------------------------------------------------------ memory safety (items 3, 4)


@pytest.mark.parametrize("method", ["auto", "exact", "heuristic"])
def test_hamiltonian_path_on_distances_whose_sums_overflow(method):
    d = np.full((30, 30), 1e307)
    np.fill_diagonal(d, 0)
    if method == "exact":
        d = d[:12, :12]
    order = hamiltonian_path(d, method, max_iter=500)
    is_permutation(order, len(d))


@pytest.mark.parametrize("n", [10, 40])
def test_a_huge_scale_finds_the_same_order_as_the_plain_one(n):
    d = _euclidean(n)
    method = "exact" if n <= 12 else "heuristic"
    plain = hamiltonian_path(d, method, max_iter=2000)
    for scale in (1e307, 1e300, 2.0**-1000):
        scaled, info = hamiltonian_path(d * scale, method, max_iter=2000, return_info=True)
        np.testing.assert_array_equal(scaled, plain)
    assert info["length"] == pytest.approx(path_length(d, plain) * 2.0**-1000, rel=1e-12)


def test_held_karp_table_size_cannot_overflow():
    with pytest.raises(MemoryError, match="n=70"):
        _core.held_karp_path(np.zeros((70, 70)), 2**64 - 1)
    assert _core.held_karp_bytes(10**6) == 2**64 - 1
    if "ASAN_OPTIONS" not in os.environ:  # AddressSanitizer aborts on such a request
        with pytest.raises(MemoryError, match="Held-Karp table"):  # 176 TB: no machine has it
            _core.held_karp_path(np.zeros((40, 40)), 2**64 - 1)
    with pytest.raises(ValueError, match="memory_limit"):
        _core.held_karp_path(np.zeros((3, 3)), 2**64)


# ------------------------------------------------------------------ threads (item 5)


def _max_threads_during(fn) -> int:
    """The most threads this process had while fn ran (fn releases the GIL in the core)."""
    seen = [0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen[0] = max(seen[0], len(os.listdir("/proc/self/task")))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        fn()
    finally:
        done.set()
        watcher.join()
    return seen[0]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_n_jobs_of_a_million_starts_no_more_threads_than_cores():
    d = _euclidean(17)
    before = len(os.listdir("/proc/self/task"))
    rng = np.random.default_rng(0)
    seg = rng.uniform(0, 100, (400, 2, 2))
    runs = [
        lambda: _core.held_karp_path(d, 1 << 30, 10**6),
        lambda: _core.bundle_edges(seg, 2, 5, 1.0, 0.04, 0.5, 0.005, 0.02, 0.6, 8, False, 0, 10**6),
        lambda: _core.pack_rectangles(rng.uniform(1, 9, (300, 2)), n_threads=10**6, effort=2),
    ]
    for run in runs:
        assert _max_threads_during(run) <= before + 1 + available_cores()


def test_resolve_n_jobs_is_one_rule():
    cores = available_cores()
    assert resolve_n_jobs(-1) == cores
    assert resolve_n_jobs(1) == 1
    assert resolve_n_jobs(np.int64(1)) == 1
    with pytest.warns(RuntimeWarning, match="cores"):
        assert resolve_n_jobs(10**6) == cores
    for bad in (0, -2, -(2**70), 2**31, 2**70):
        with pytest.raises(ValueError, match="n_jobs"):
            resolve_n_jobs(bad)
    for bad in (1.5, "2", None, True):
        with pytest.raises(TypeError, match="n_jobs"):
            resolve_n_jobs(bad)


def test_n_jobs_minus_one_is_accepted_everywhere():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4))
    hamiltonian_path(_euclidean(10), "exact", n_jobs=-1)
    reorder_rows(x[:20], n_jobs=-1)
    pack_rectangles(rng.uniform(1, 5, (10, 2)), n_jobs=-1)
    bicluster_edges(rng.normal(size=(6, 6)), 0.5, n_jobs=-1)
    bundle_edges(rng.uniform(0, 1, (10, 2, 2)), n_jobs=-1, n_iter=2)
    TSNE(n_iter=20, n_jobs=-1).fit_transform(x)


def test_ctrl_c_stops_the_exact_solver():
    import _thread

    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        hamiltonian_path(_euclidean(24), "exact", n_jobs=-1, memory_limit=4 << 30)
    timer.cancel()


# ------------------------------------------------------------------ silent wrong results (item 8)


def test_tiny_rectangles_are_all_placed():
    sizes = np.full((3, 2), 1e-200)
    p = pack_rectangles(sizes)
    assert p.positions.shape == (3, 2)
    no_overlap(p.positions, sizes, p.width, p.height)
    assert p.density == pytest.approx(0.75)
    boxed = pack_rectangles(sizes, box=(3e-200, 1e-200))
    no_overlap(boxed.positions, sizes, boxed.width, boxed.height)
    with pytest.raises(ValueError, match="scale"):
        _core.pack_rectangles(sizes)  # the core itself refuses areas that underflow


@pytest.mark.parametrize(
    "kw",
    [
        dict(learning_rate=math.inf),
        dict(learning_rate=math.nan),
        dict(max_step_norm=math.nan),
        dict(max_step_norm=math.inf),
        dict(early_exaggeration=math.inf),
        dict(perplexity=math.inf),
        dict(theta=math.nan),
        dict(momentum=math.nan),
    ],
)
def test_tsne_refuses_non_finite_hyperparameters(kw):
    name = next(iter(kw))
    with pytest.raises(ValueError, match=name):
        TSNE(n_iter=20, **kw).fit_transform(np.random.default_rng(0).normal(size=(30, 3)))


def test_tsne_that_diverges_is_an_error_not_nan():
    x = np.random.default_rng(0).normal(size=(30, 3))
    with pytest.raises(ValueError, match="diverged"):
        TSNE(n_iter=50, learning_rate=1e300, max_step_norm=0).fit_transform(x)


def test_core_optimizer_refuses_non_finite_steps():
    x = np.random.default_rng(0).normal(size=(20, 3))
    idx, d2 = _core._tsne_knn(x, 5)
    p, _ = _core._tsne_conditional_p(d2, 2.0)
    P = _core._tsne_joint_p(idx, p)
    opt = _core._TsneOptimizer(*P, np.zeros((20, 2)) + np.arange(20)[:, None] * 1e-4, 0.5)
    for bad in (dict(learning_rate=math.inf), dict(max_step_norm=math.nan), dict(momentum=2.0)):
        kw = dict(n_iter=2, exaggeration=1.0, learning_rate=10.0, momentum=0.5) | bad
        with pytest.raises(ValueError, match=next(iter(bad))):
            opt.run(**kw)


# ------------------------------------------------------------------ unclear errors (item 9)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: hamiltonian_path(_euclidean(20), n_jobs=2**40), "n_jobs"),
        (lambda: hamiltonian_path(_euclidean(20), random_state=2**70), "random_state"),
        (
            lambda: bundle_edges(np.zeros((3, 2, 2)) + [[0], [1]], max_neighbors=2**40),
            "max_neighbors",
        ),
        (lambda: _core.heuristic_path(_euclidean(5), seed=2**70), "seed"),
        (lambda: _core.held_karp_path(_euclidean(5), 1 << 20, 2**40), "n_threads"),
        (lambda: _core._tsne_knn(np.eye(5), 2**40), "k"),
        (lambda: _core.resample_polylines(np.zeros((1, 2, 2)), 2**70), "n_points"),
        (lambda: _core.pack_in_box(np.ones((1, 2)), 2.0, 2.0, -(2**70)), "n_threads"),
    ],
)
def test_ints_beyond_c_range_name_the_argument(call, name):
    with pytest.raises(ValueError, match=name) as e:
        call()
    assert "incompatible function arguments" not in str(e.value)


def test_int64_arrays_of_any_dtype_spelling_are_accepted():
    x = np.random.default_rng(0).normal(size=(12, 3))
    idx, d2 = _core._tsne_knn(x, 3)
    p, _ = _core._tsne_conditional_p(d2, 1.5)
    indptr, indices, data = _core._tsne_joint_p(idx, p)
    y = np.random.default_rng(1).normal(size=(12, 2))
    for spelling in ("q", "int64", "<i8", "l"):
        g, _ = _core._tsne_gradient(indptr.astype(spelling), indices, data, y, 0.5)
        assert np.all(np.isfinite(g))


@pytest.mark.parametrize("metric", ["cosine", "correlation", "euclidean", "sqeuclidean"])
@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e300])
def test_huge_and_tiny_rows_have_their_true_distances(metric, scale):
    m = np.random.default_rng(0).normal(size=(9, 4))
    plain = pairwise_distances(m, metric)
    degree = {"cosine": 0, "correlation": 0, "euclidean": 1, "sqeuclidean": 2}[metric]
    with np.errstate(over="ignore", under="ignore"):
        expected = plain * np.float64(scale) ** degree
    if not np.all(np.isfinite(expected)):
        with pytest.raises(ValueError, match="overflow"):
            pairwise_distances(m * scale, metric)
        return
    np.testing.assert_allclose(pairwise_distances(m * scale, metric), expected, rtol=1e-12)
    if degree <= 1:  # squared distances of 1e-200 underflow: their order is gone
        np.testing.assert_array_equal(reorder_rows(m * scale, metric), reorder_rows(m, metric))
