"""Property tests of the public layout functions on hostile input (see hostile.py): shapes,
dtypes, NaN/inf, denormals, huge finite values, empty arrays, orders, read-only and
non-contiguous arrays, and Python ints beyond int64. The only allowed outcomes are a correct
result (checked by its invariants) or a ValueError/TypeError/MemoryError with a message."""

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

from cnnvis.layout import (
    TSNE,
    bicluster_edges,
    bundle_edges,
    hamiltonian_path,
    pack_hierarchy,
    pack_rectangles,
    reorder_columns,
    reorder_rows,
    route_bicluster_edges,
)

small = st.integers(0, 9)
medium = st.integers(0, 40)


@FAST
@given(data=st.data(), n=medium, method=st.sampled_from(["auto", "exact", "heuristic"]))
def test_hamiltonian_path_is_a_permutation_for_any_scale(data, n, method):
    d = symmetric_distances(data.draw, n)
    outcome(
        lambda: hamiltonian_path(d, method, max_iter=200, time_budget=0.5),
        lambda order: is_permutation(order, n),
    )


@FAST
@given(
    data=st.data(),
    n=small,
    knob=st.sampled_from(
        ["n_jobs", "random_state", "max_iter", "memory_limit", "neighbours", "group_size"]
        + ["fan_out", "kick_size"]
    ),
    value=hostile_ints(),
)
def test_hamiltonian_path_ints_beyond_c_range_are_clear_errors(data, n, knob, value):
    d = symmetric_distances(data.draw, n)
    kwargs = {"time_budget": 0.2, "max_iter": 100, knob: value}
    if knob == "max_iter":
        kwargs["max_iter"] = min(value, 2000) if value >= 0 else value
    outcome(lambda: hamiltonian_path(d, "heuristic", **kwargs), lambda o: is_permutation(o, n))
    outcome(lambda: hamiltonian_path(d, "exact", **kwargs), lambda o: is_permutation(o, n))


@FAST
@given(
    data=st.data(),
    rows=small,
    cols=st.integers(0, 5),
    metric=st.sampled_from(["cosine", "correlation", "euclidean", "cityblock"]),
)
def test_reorder_rows_and_columns_on_any_matrix(data, rows, cols, metric):
    m = data.draw(arrays((rows, cols)))
    outcome(lambda: reorder_rows(m, metric, max_iter=100), lambda o: is_permutation(o, rows))
    outcome(lambda: reorder_columns(m, metric, max_iter=100), lambda o: is_permutation(o, cols))


@FAST
@given(
    data=st.data(),
    n=st.integers(0, 12),
    aspect=hostile_floats(),
    tolerance=hostile_floats(),
    effort=st.sampled_from([0, 1, 2, 3, -1, 2**70]),
    n_jobs=hostile_ints(),
)
def test_pack_rectangles_places_every_rectangle_without_overlap(
    data, n, aspect, tolerance, effort, n_jobs
):
    sizes = data.draw(arrays((n, 2), positive=data.draw(st.booleans())))
    scale = data.draw(st.sampled_from([1.0, 1e-200, 1e-300, 1e10, 1e300]))
    with np.errstate(all="ignore"):
        sizes = sizes * scale if sizes.dtype.kind == "f" else sizes

    def check(p):
        assert p.positions.shape == (n, 2)
        no_overlap(p.positions, np.asarray(sizes, np.float64), p.width, p.height)

    outcome(
        lambda: pack_rectangles(sizes, aspect, tolerance=tolerance, effort=effort, n_jobs=n_jobs),
        check,
    )


@FAST
@given(data=st.data(), n=st.integers(0, 8), side=hostile_floats())
def test_pack_rectangles_in_a_fixed_box(data, n, side):
    sizes = data.draw(arrays((n, 2), positive=True))
    box = (side, abs(side) * 2 if np.isfinite(side) else side)

    def check(p):
        assert p.positions.shape == (n, 2)
        no_overlap(p.positions, np.asarray(sizes, np.float64), p.width, p.height)

    outcome(lambda: pack_rectangles(sizes, box=box), check)


@FAST
@given(data=st.data(), n=st.integers(0, 10), n_clusters=st.sampled_from([None, 1, 2, 0, 2**70]))
def test_pack_hierarchy_on_any_input(data, n, n_clusters):
    sizes = data.draw(arrays((n, 2), positive=True))
    features = data.draw(arrays((n, 3)))

    def check(p):
        no_overlap(p.positions, np.asarray(sizes, np.float64), p.width, p.height)

    outcome(lambda: pack_hierarchy(sizes, features, n_clusters=n_clusters), check)


@FAST
@given(
    data=st.data(),
    rows=st.integers(0, 8),
    cols=st.integers(0, 8),
    threshold=hostile_floats(),
    min_density=hostile_floats(),
    min_gain=hostile_ints(),
    n_jobs=hostile_ints(),
)
def test_bicluster_edges_covers_every_edge_once(
    data, rows, cols, threshold, min_density, min_gain, n_jobs
):
    w = data.draw(arrays((rows, cols)))

    def check(res):
        edge = (np.asarray(w, np.float64) != 0) & (np.abs(np.asarray(w, np.float64)) >= threshold)
        assert res.assignment.shape == (rows, cols)
        assert np.array_equal(res.assignment >= -1, edge)
        for b in res.biclusters:
            assert len(set(b.rows.tolist())) == len(b.rows) and len(set(b.cols.tolist())) == len(
                b.cols
            )

    outcome(
        lambda: bicluster_edges(w, threshold, min_density, min_gain=min_gain, n_jobs=n_jobs), check
    )


@FAST
@given(data=st.data(), rows=st.integers(1, 6), cols=st.integers(1, 6), n_points=hostile_ints())
def test_route_bicluster_edges_on_any_positions(data, rows, cols, n_points):
    w = np.asarray(data.draw(arrays((rows, cols), finite=1.0)), np.float64)
    res = bicluster_edges(w, 0.1)
    src = data.draw(arrays((rows, 2)))
    dst = data.draw(arrays((cols, 2)))
    n_points = min(n_points, 64) if n_points > 0 else n_points

    def check(r):
        assert np.all(np.isfinite(r.polylines))

    outcome(lambda: route_bicluster_edges(src, dst, res, w, n_points=n_points), check)


@FAST
@given(
    data=st.data(),
    m=st.integers(0, 12),
    p=st.integers(1, 4),
    knobs=st.fixed_dictionaries(
        {},
        optional={
            "n_cycles": hostile_ints(),
            "step": hostile_floats(),
            "stiffness": hostile_floats(),
            "bandwidth": hostile_floats(),
            "compatibility": hostile_floats(),
            "max_neighbors": hostile_ints(),
            "n_points": hostile_ints(),
            "n_jobs": hostile_ints(),
            "iter_rate": hostile_floats(),
        },
    ),
)
def test_bundle_edges_keeps_endpoints_and_stays_finite(data, m, p, knobs):
    edges = data.draw(arrays((m, p, 2)))
    knobs = {"n_iter": 3, **knobs}
    if knobs.get("n_cycles", 0) > 4:
        knobs["n_cycles"] = 4  # beyond the range check only time grows
    if isinstance(knobs.get("n_points"), int) and 2 < knobs["n_points"] <= 2**31:
        knobs["n_points"] = min(knobs["n_points"], 50)

    def check(out):
        e = np.asarray(edges, np.float64)
        assert out.shape[0] == m and out.shape[2] == 2 and np.all(np.isfinite(out))
        if m:
            np.testing.assert_allclose(out[:, 0], e[:, 0], rtol=1e-12, atol=0)
            np.testing.assert_allclose(out[:, -1], e[:, -1], rtol=1e-12, atol=0)

    outcome(lambda: bundle_edges(edges, **knobs), check)


@FAST
@given(
    data=st.data(),
    n=st.integers(0, 40),
    dim=st.integers(0, 4),
    knobs=st.fixed_dictionaries(
        {},
        optional={
            "perplexity": hostile_floats(),
            "learning_rate": hostile_floats(),
            "early_exaggeration": hostile_floats(),
            "max_step_norm": hostile_floats(),
            "momentum": hostile_floats(),
            "theta": hostile_floats(),
            "n_jobs": hostile_ints(),
            "random_state": st.sampled_from([0, 2**70, -1, None]),
            "n_components": st.sampled_from([2, 3, 1, 2**70]),
        },
    ),
)
def test_tsne_embeddings_are_finite_or_refused(data, n, dim, knobs):
    X = data.draw(arrays((n, dim)))
    model = TSNE(n_iter=30, early_exaggeration_iter=10, init="random", **knobs)

    def check(Y):
        assert Y.shape == (n, model.n_components) and np.all(np.isfinite(Y))
        outcome(lambda: model.transform(X[: min(n, 3)], n_iter=5), lambda Z: np.all(np.isfinite(Z)))

    outcome(lambda: model.fit_transform(X), check)
