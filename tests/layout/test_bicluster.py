"""Biclustering of signed weight matrices: coverage, signs, density, planted blocks, routing."""

import numpy as np
import pytest

from cnnvis.layout.bundling import bicluster_edges, route_bicluster_edges


def _check_invariants(w, res, threshold, min_density):
    edge = (w != 0) & (np.abs(w) >= threshold)
    count = np.zeros(w.shape, dtype=np.int64)
    for b in res.biclusters:
        block = w[np.ix_(b.rows, b.cols)]
        claimed = block * b.sign > 0
        claimed &= np.abs(block) >= threshold
        assert claimed.sum() == b.n_edges
        assert b.n_edges / (len(b.rows) * len(b.cols)) >= min_density - 1e-12
        assert b.n_edges - len(b.rows) - len(b.cols) >= 1
        count[np.ix_(b.rows, b.cols)] += claimed
    for i, j in res.direct_edges:
        count[i, j] += 1
    assert np.array_equal(count, edge.astype(np.int64)), "every edge covered exactly once"
    assert res.n_drawn_after == sum(len(b.rows) + len(b.cols) for b in res.biclusters) + len(
        res.direct_edges
    )
    assert res.n_edges == edge.sum()
    # assignment agrees with the claims
    for k, b in enumerate(res.biclusters):
        assert len(res.edges_of(k)) == b.n_edges
        assert np.all(w[tuple(res.edges_of(k).T)] * b.sign > 0)


@pytest.mark.parametrize("seed", range(6))
def test_coverage_invariant_random_signed(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(5, 60, size=2)
    w = rng.normal(size=(n, m)) * (rng.random((n, m)) < rng.uniform(0.2, 0.9))
    for thr, dens in ((0.3, 0.8), (0.0, 0.6), (1.0, 1.0)):
        res = bicluster_edges(w, thr, min_density=dens)
        _check_invariants(w, res, thr, dens)
        assert res.n_drawn_after <= res.n_drawn_before


def test_planted_positive_and_negative_recovered():
    rng = np.random.default_rng(3)
    n = 96
    w = rng.normal(0, 0.3, (n, n)) * (rng.random((n, n)) < 0.08)
    rp, cp = rng.choice(n, 16, replace=False), rng.choice(n, 20, replace=False)
    rn, cn = rng.choice(n, 14, replace=False), rng.choice(n, 12, replace=False)
    w[np.ix_(rp, cp)] = rng.uniform(0.6, 1.0, (16, 20))
    w[np.ix_(rn, cn)] = -rng.uniform(0.6, 1.0, (14, 12))
    res = bicluster_edges(w, 0.5, min_density=0.8)
    _check_invariants(w, res, 0.5, 0.8)
    best = {}
    for s, (r, c) in ((1, (rp, cp)), (-1, (rn, cn))):
        scores = [
            len(np.intersect1d(b.rows, r))
            * len(np.intersect1d(b.cols, c))
            / (len(np.union1d(b.rows, r)) * len(np.union1d(b.cols, c)))
            for b in res.biclusters
            if b.sign == s
        ]
        best[s] = max(scores)
    assert best[1] >= 0.9 and best[-1] >= 0.9, best
    assert res.n_drawn_after < 0.35 * res.n_drawn_before


def test_other_sign_inside_rectangle_not_claimed():
    w = np.ones((6, 6))
    w[0, 0] = -1.0  # a negative edge inside the positive block
    res = bicluster_edges(w, 0.5, min_density=0.8)
    _check_invariants(w, res, 0.5, 0.8)
    assert all(b.sign == 1 for b in res.biclusters)
    assert res.assignment[0, 0] == -1
    assert [tuple(e) for e in res.direct_edges] == [(0, 0)]


def test_empty_zero_and_single_edge():
    for w in (np.zeros((0, 5)), np.zeros((4, 0)), np.zeros((7, 3))):
        res = bicluster_edges(w, 0.1)
        assert res.biclusters == [] and res.direct_edges.shape == (0, 2) and res.n_edges == 0
    w = np.zeros((4, 4))
    w[2, 1] = -3.0
    res = bicluster_edges(w, 0.1)
    assert res.biclusters == [] and res.direct_edges.tolist() == [[2, 1]]
    assert bicluster_edges(np.ones((3, 3)), np.inf).n_edges == 0


def test_bit_identical_threads():
    rng = np.random.default_rng(7)
    w = rng.normal(size=(120, 90)) * (rng.random((120, 90)) < 0.3)
    a = bicluster_edges(w, 0.4, n_jobs=1)
    b = bicluster_edges(w, 0.4, n_jobs=2)
    assert len(a.biclusters) == len(b.biclusters)
    assert np.array_equal(a.assignment, b.assignment)
    assert np.array_equal(a.direct_edges, b.direct_edges)


def test_errors():
    with pytest.raises(ValueError, match="NaN"):
        bicluster_edges(np.array([[1.0, np.nan]]), 0.1)
    with pytest.raises(ValueError, match="2-D"):
        bicluster_edges(np.ones(4), 0.1)
    with pytest.raises(ValueError, match="min_density"):
        bicluster_edges(np.ones((2, 2)), 0.1, min_density=0.0)
    with pytest.raises(ValueError, match="threshold"):
        bicluster_edges(np.ones((2, 2)), -1.0)
    with pytest.raises(ValueError, match="n_jobs"):
        bicluster_edges(np.ones((2, 2)), 0.1, n_jobs=0)


def test_route_through_nodes():
    rng = np.random.default_rng(0)
    w = np.zeros((10, 12))
    w[:5, :6] = rng.uniform(0.5, 1, (5, 6))
    w[5:, 6:] = -rng.uniform(0.5, 1, (5, 6))
    w[0, 11] = 0.9
    res = bicluster_edges(w, 0.3)
    src = np.c_[np.zeros(10), np.arange(10.0)]
    dst = np.c_[np.full(12, 10.0), np.arange(12.0) * 9.0 / 11.0]
    r = route_bicluster_edges(src, dst, res, w, n_points=9)
    assert r.polylines.shape == (res.n_drawn_after, 9, 2)
    assert r.nodes.shape == (len(res.biclusters), 2)
    assert np.allclose(r.nodes[:, 0], 5.0)
    # every drawn edge starts at a source or a node and ends at a node or a target
    for k in range(len(r.sign)):
        b = r.bicluster[k]
        start = src[r.source[k]] if r.source[k] >= 0 else r.nodes[b]
        end = dst[r.target[k]] if r.target[k] >= 0 else r.nodes[b]
        assert np.allclose(r.polylines[k, 0], start) and np.allclose(r.polylines[k, -1], end)
    assert set(r.sign[r.bicluster >= 0].tolist()) == {1, -1}
    direct = r.bicluster == -1
    assert direct.sum() == 1 and r.strength[direct][0] == pytest.approx(0.9)
    # strengths of a bicluster's source edges add up to its total |w|
    k0 = 0
    b0 = res.biclusters[k0]
    mask = (r.bicluster == k0) & (r.source >= 0)
    assert r.strength[mask].sum() == pytest.approx(np.abs(w[np.ix_(b0.rows, b0.cols)]).sum())
    gap = np.diff(np.sort(r.nodes[:, 1]))
    assert np.all(gap >= (9.0 / (2 * len(res.biclusters))) - 1e-9)
