"""Property tests of the layout entry points of cnnvis._core, called directly with hostile
arrays and Python ints beyond every C range (see hostile.py). The binding layer must answer
with a result that passes its invariants or a ValueError/TypeError/MemoryError with a message;
a crash of the core kills this process."""

from __future__ import annotations

import numpy as np
from hostile import (
    FAST,
    arrays,
    hostile_floats,
    hostile_ints,
    is_permutation,
    no_overlap,
    outcome,
    symmetric_distances,
)
from hypothesis import given
from hypothesis import strategies as st

from cnnvis import _core


def _finite(a) -> None:
    assert np.all(np.isfinite(np.asarray(a, dtype=np.float64)))


@FAST
@given(data=st.data(), n=st.integers(0, 14), memory=hostile_ints(), jobs=hostile_ints())
def test_held_karp(data, n, memory, jobs):
    d = symmetric_distances(data.draw, n)
    outcome(lambda: _core.held_karp_path(d, memory, jobs), lambda o: is_permutation(o, n))
    outcome(lambda: _core.held_karp_bytes(memory), lambda b: b >= 0)
    outcome(lambda: _core.held_karp_max_n(memory), lambda m: 0 <= m <= 40)


@FAST
@given(
    data=st.data(),
    n=st.integers(0, 30),
    ints=st.lists(hostile_ints(), min_size=5, max_size=5),
    seed=hostile_ints(),
)
def test_heuristic_hierarchical_and_nearest_paths(data, n, ints, seed):
    d = symmetric_distances(data.draw, n)
    neighbours, group, fan, kick, start = ints
    max_iter = data.draw(st.sampled_from([0, 10, 200, -1, 2**63, 2**64]))
    outcome(
        lambda: _core.heuristic_path(d, max_iter, 0.2, seed, neighbours, group, fan, kick),
        lambda r: is_permutation(r[0], n),
    )
    outcome(lambda: _core.hierarchical_path(d, group, fan), lambda o: is_permutation(o, n))
    outcome(lambda: _core.nearest_neighbour_path(d, start), lambda o: is_permutation(o, n))


@FAST
@given(data=st.data(), n=st.integers(0, 10), dims=st.integers(0, 3))
def test_reordering_refuses_matrices_that_are_not_distances(data, n, dims):
    shape = (n, n) if dims == 2 else (n,) * dims
    d = data.draw(arrays(shape))
    for call in (
        lambda: _core.held_karp_path(d, 1 << 24),
        lambda: _core.heuristic_path(d, 50, 0.2),
        lambda: _core.hierarchical_path(d),
        lambda: _core.nearest_neighbour_path(d),
    ):
        outcome(call, lambda o: o is not None)


@FAST
@given(
    data=st.data(),
    n=st.integers(0, 10),
    aspect=hostile_floats(),
    tolerance=hostile_floats(),
    ints=st.lists(hostile_ints(), min_size=4, max_size=4),
    side=hostile_floats(),
)
def test_packing(data, n, aspect, tolerance, ints, side):
    sizes = data.draw(
        arrays((n, data.draw(st.sampled_from([2, 2, 3]))), positive=data.draw(st.booleans()))
    )
    steps, jobs, effort, variant = ints

    def check(r):
        xy, w, h, _ = r
        no_overlap(xy, np.asarray(sizes, np.float64), w, h)

    outcome(
        lambda: _core.pack_rectangles(
            sizes, aspect, tolerance, False, steps, jobs, effort, variant
        ),
        check,
    )
    outcome(lambda: _core.pack_in_box(sizes, side, abs(side), jobs), check)
    outcome(lambda: _core.shelf_pack(sizes, aspect, tolerance), check)


@FAST
@given(
    data=st.data(),
    rows=st.integers(0, 8),
    cols=st.integers(0, 8),
    floats=st.lists(hostile_floats(), min_size=2, max_size=2),
    ints=st.lists(hostile_ints(), min_size=4, max_size=4),
)
def test_bicluster_edges(data, rows, cols, floats, ints):
    w = data.draw(arrays((rows, cols)))

    def check(r):
        bics, direct, n_edges = r
        drawn = sum(len(b[0]) * len(b[1]) for b in bics) + len(direct)
        assert n_edges >= 0 and direct.shape[1] == 2 and drawn >= 0

    outcome(lambda: _core.bicluster_edges(w, *floats, *ints), check)


@FAST
@given(
    data=st.data(),
    m=st.integers(0, 8),
    p=st.integers(0, 4),
    floats=st.lists(hostile_floats(), min_size=6, max_size=6),
    ints=st.lists(hostile_ints(), min_size=4, max_size=4),
)
def test_bundle_and_resample(data, m, p, floats, ints):
    e = data.draw(arrays((m, p, 2)))
    cycles, n_iter, neighbours, jobs = ints
    cycles, n_iter = min(cycles, 3), min(n_iter, 5)  # beyond their range only time grows
    n_points = data.draw(st.sampled_from([0, 2, 7, 1, -1, 2**40, 2**70]))

    def check(r):
        out, pairs = r
        assert out.shape[0] == m and pairs >= 0
        _finite(out)

    outcome(
        lambda: _core.bundle_edges(e, cycles, n_iter, *floats, neighbours, False, n_points, jobs),
        check,
    )
    outcome(lambda: _core.resample_polylines(e, n_points), _finite)


def _affinities(n: int):
    x = np.random.default_rng(n).normal(size=(n, 3))
    idx, d2 = _core._tsne_knn(x, 3)
    p, _ = _core._tsne_conditional_p(d2, 1.5)
    return idx, p, _core._tsne_joint_p(idx, p)


@FAST
@given(
    data=st.data(),
    n=st.integers(0, 12),
    dim=st.integers(0, 3),
    k=hostile_ints(),
    jobs=hostile_ints(),
    perplexity=hostile_floats(),
)
def test_tsne_neighbours_and_affinities(data, n, dim, k, jobs, perplexity):
    x = data.draw(arrays((n, dim)))
    knn = outcome(lambda: _core._tsne_knn(x, k, jobs), lambda r: _finite(r[1]))
    d2 = data.draw(arrays((n, max(dim, 1))))
    outcome(lambda: _core._tsne_conditional_p(d2, perplexity, jobs), lambda r: _finite(r[0]))
    if knn is not None:
        idx, dist = knn
        p, _ = _core._tsne_conditional_p(dist, 1.0)
        outcome(lambda: _core._tsne_joint_p(idx, p, jobs), lambda r: _finite(r[2]))
    bad_idx = data.draw(arrays((n, 2)))
    outcome(lambda: _core._tsne_joint_p(bad_idx, np.ones((n, 2)), jobs), lambda r: _finite(r[2]))


@FAST
@given(
    data=st.data(),
    n=st.integers(5, 12),
    floats=st.lists(hostile_floats(), min_size=6, max_size=6),
    ints=st.lists(hostile_ints(), min_size=2, max_size=2),
)
def test_tsne_gradient_optimizer_and_transform(data, n, floats, ints):
    idx, p, P = _affinities(n)
    y = data.draw(arrays((n, data.draw(st.sampled_from([2, 3, 1])))))
    theta, exaggeration, lr, momentum, step, penalty = floats
    n_iter, jobs = min(ints[0], 20), ints[1]
    outcome(lambda: _core._tsne_gradient(*P, y, theta, exaggeration, jobs), lambda r: _finite(r[0]))
    outcome(lambda: _core._tsne_exact_kl(*P, y, jobs))
    opt = outcome(lambda: _core._TsneOptimizer(*P, y, theta, jobs))
    if opt is not None:
        anchor = data.draw(st.sampled_from([None, y]))
        ran = outcome(lambda: opt.run(n_iter, exaggeration, lr, momentum, step, anchor, penalty))
        if ran is not None:
            outcome(lambda: opt.kl_divergence())
    y0 = data.draw(arrays((n, y.shape[1] if y.ndim == 2 else 2)))
    outcome(lambda: _core._tsne_transform(y, idx, p, y0, n_iter, lr, theta, jobs))
