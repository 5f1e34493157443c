"""Force-directed edge bundling: endpoints fixed, ink reduced, determinism, bad input."""

import numpy as np
import pytest

from cnnvis.layout.bundling import bundle_edges, edge_ink, mean_displacement, polyline_length


def _parallel_bundle(m=60, seed=0):
    rng = np.random.default_rng(seed)
    y0 = rng.uniform(0, 20, m)
    y1 = y0 + rng.normal(0, 2, m)
    return np.stack([np.c_[np.zeros(m), y0], np.c_[np.full(m, 100.0), y1]], axis=1)


def test_endpoints_fixed_and_ink_reduced():
    seg = _parallel_bundle()
    out, info = bundle_edges(seg, return_info=True)
    assert out.shape == (60, 34, 2)
    assert np.array_equal(out[:, 0], seg[:, 0]) and np.array_equal(out[:, -1], seg[:, 1])
    assert info["ink_after"] < 0.8 * info["ink_before"]
    assert info["mean_displacement"] > 0.5
    # the middle of the bundle is tighter than at the start
    assert np.std(out[:, 17, 1]) < 0.5 * np.std(seg[:, :, 1].mean(axis=1))
    assert info["length_after"] == pytest.approx(polyline_length(out))
    assert edge_ink(out) > 0 and mean_displacement(seg, seg) == 0.0


def test_polylines_and_flat_input_forms():
    seg = _parallel_bundle(30)
    t = np.linspace(0, 1, 7)[None, :, None]
    poly = seg[:, :1] + t * (seg[:, 1:] - seg[:, :1])
    out = bundle_edges(poly, n_points=20)
    assert out.shape == (30, 20, 2)
    assert np.allclose(out[:, 0], poly[:, 0]) and np.allclose(out[:, -1], poly[:, -1])
    flat = bundle_edges(seg.reshape(-1, 4))
    assert np.array_equal(flat, bundle_edges(seg))


def test_bit_identical_threads():
    rng = np.random.default_rng(1)
    seg = rng.uniform(0, 100, (400, 2, 2))
    a = bundle_edges(seg, n_jobs=1)
    b = bundle_edges(seg, n_jobs=2)
    assert a.tobytes() == b.tobytes()


def test_empty_single_and_degenerate():
    assert bundle_edges(np.zeros((0, 2, 2)), n_points=5).shape == (0, 5, 2)
    one = np.array([[[0.0, 0.0], [3.0, 4.0]]])
    out = bundle_edges(one, n_points=6)
    assert np.allclose(out[0], np.linspace([0, 0], [3, 4], 6))
    same = np.zeros((3, 2, 2))
    assert np.all(bundle_edges(same, n_points=4) == 0)


def test_errors():
    with pytest.raises(ValueError, match="NaN"):
        bundle_edges(np.array([[[0.0, np.nan], [1.0, 1.0]]]))
    with pytest.raises(ValueError, match="shape"):
        bundle_edges(np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match="shape"):
        bundle_edges(np.zeros((4, 1, 2)))
    with pytest.raises(ValueError, match="compatibility"):
        bundle_edges(np.zeros((4, 2, 2)), compatibility=1.5)
    with pytest.raises(ValueError, match="n_jobs"):
        bundle_edges(np.zeros((4, 2, 2)), n_jobs=0)


def _compat_brute_force(seg, directed=False):
    """Holten & van Wijk compatibility of every pair of chords (numpy, all pairs)."""
    a, b = seg[:, 0], seg[:, -1]
    v = b - a
    length = np.hypot(v[:, 0], v[:, 1])
    u = v / length[:, None]
    mid = 0.5 * (a + b)
    cos = u @ u.T
    ca = np.maximum(cos, 0.0) if directed else np.abs(cos)
    lavg = 0.5 * (length[:, None] + length[None, :])
    lmin = np.minimum(length[:, None], length[None, :])
    cs = 2.0 / (lavg / lmin + lmin / lavg)
    dm = np.hypot(mid[:, None, 0] - mid[None, :, 0], mid[:, None, 1] - mid[None, :, 1])
    cp = lavg / (lavg + dm)
    # visibility of chord j from chord i: j projected on i's line
    s0 = np.einsum("ijk,ik->ij", a[None, :] - a[:, None], u)
    s1 = np.einsum("ijk,ik->ij", b[None, :] - a[:, None], u)
    il = np.abs(s1 - s0)
    proj = a[:, None] + 0.5 * (s0 + s1)[..., None] * u[:, None]
    d = np.hypot(*np.moveaxis(mid[:, None] - proj, -1, 0))
    vis = np.where(il > 0, np.maximum(0.0, 1.0 - 2.0 * d / np.where(il > 0, il, 1.0)), 0.0)
    c = ca * cs * cp * np.minimum(vis, vis.T)
    np.fill_diagonal(c, 0.0)
    return c


@pytest.mark.parametrize("directed", [False, True])
def test_search_finds_every_compatible_pair_and_keeps_the_k_best(directed):
    # Long and short edges in all directions: the indexed search must find exactly the pairs an
    # all-pairs scan finds, and the K bound must keep min(K, compatible) partners per edge.
    rng = np.random.default_rng(7)
    m = 300
    # 200 edges in 4 loose flows (many compatible pairs), 100 random ones of mixed lengths
    src = np.array([[0, 0], [0, 100], [50, 0], [100, 30]], float)
    dst = np.array([[100, 100], [100, 0], [50, 100], [0, 70]], float)
    f = rng.integers(0, 4, 200)
    a = np.r_[src[f] + rng.normal(0, 8, (200, 2)), rng.uniform(0, 100, (100, 2))]
    ang = rng.uniform(0, 2 * np.pi, 100)
    ln = np.where(rng.random(100) < 0.5, rng.uniform(5, 20, 100), rng.uniform(40, 120, 100))
    b = np.r_[
        dst[f] + rng.normal(0, 8, (200, 2)), a[200:] + ln[:, None] * np.c_[np.cos(ang), np.sin(ang)]
    ]
    if directed:  # half of each flow runs backwards
        back = rng.random(m) < 0.5
        a[back], b[back] = b[back].copy(), a[back].copy()
    seg = np.stack([a, b], axis=1)
    c = _compat_brute_force(seg, directed)
    t = 0.6
    ambiguous = np.sum(np.abs(c - t) < 1e-9)
    per_edge = (c >= t).sum(axis=1)
    assert per_edge.sum() > 500  # the case is not trivial
    kw = dict(n_cycles=1, n_iter=1, directed=directed, return_info=True)
    _, info = bundle_edges(seg, max_neighbors=m, **kw)
    assert abs(info["n_pairs"] - per_edge.sum()) <= ambiguous
    for k in (1, 3, 16):
        _, info = bundle_edges(seg, max_neighbors=k, **kw)
        assert abs(info["n_pairs"] - np.minimum(per_edge, k).sum()) <= ambiguous
        assert info["n_pairs"] <= k * m
    _, info = bundle_edges(seg, max_neighbors=0, **kw)
    assert info["n_pairs"] == 0


def test_k_bound_keeps_the_most_compatible():
    # One edge, 4 long parallel partners close to it and 4 shorter ones (less compatible by
    # scale) inside the same bounding box: with K = 4 only the long ones pull, so the edge moves
    # exactly as it does when the short ones are left out.
    y = np.array([0.0, 1.0, -1.5, 2.0, -2.5, 0.5, -0.8, 1.2, -1.8])
    x0 = np.r_[np.zeros(5), np.full(4, 20.0)]
    x1 = np.r_[np.full(5, 100.0), np.full(4, 80.0)]
    seg = np.stack([np.c_[x0, y], np.c_[x1, y]], axis=1)
    c = _compat_brute_force(seg)
    assert set(np.argsort(-c[0], kind="stable")[:4]) == {1, 2, 3, 4}
    assert c[0, 5:].min() > 0.6  # the short ones are compatible, only less so
    kw = dict(n_cycles=2, n_iter=1, bandwidth=None, max_neighbors=4)
    full = bundle_edges(seg, **kw)
    part = bundle_edges(seg[:5], **kw)
    assert np.allclose(full[0], part[0], rtol=0, atol=1e-12)
    assert not np.allclose(full[0], bundle_edges(seg, **{**kw, "max_neighbors": 8})[0])


def test_bit_identical_for_any_thread_count_on_long_edges():
    # Several hundred long, crossing edges (many blocks of work, large compatible sets).
    rng = np.random.default_rng(3)
    k = 6
    ang = np.arange(k) * 2 * np.pi / k
    hubs = np.c_[np.cos(ang), np.sin(ang)] * 100
    src = rng.integers(0, k, 1200)
    dst = (src + rng.integers(1, k, 1200)) % k
    seg = np.stack([hubs[src], hubs[dst]], 1) + rng.normal(0, 12, (1200, 2, 2))
    outs = [bundle_edges(seg, n_jobs=j, n_cycles=4, n_iter=10) for j in (1, 2, 3)]
    assert outs[0].tobytes() == outs[1].tobytes() == outs[2].tobytes()
    assert np.array_equal(outs[0][:, 0], seg[:, 0]) and np.array_equal(outs[0][:, -1], seg[:, 1])


def test_bandwidth_localises_the_pull():
    # Two tight groups of parallel edges 30 apart: without fall-off they attract each other
    # (every partner pulls alike); with a small bandwidth each group tightens on its own and the
    # gap between the groups survives.
    rng = np.random.default_rng(2)
    y = np.r_[rng.normal(0, 1, 30), rng.normal(30, 1, 30)]
    seg = np.stack([np.c_[np.zeros(60), y], np.c_[np.full(60, 300.0), y]], axis=1)
    local = bundle_edges(seg, bandwidth=0.005)
    wide = bundle_edges(seg, bandwidth=None)
    mid = local.shape[1] // 2
    gap_local = local[30:, mid, 1].mean() - local[:30, mid, 1].mean()
    gap_wide = wide[30:, mid, 1].mean() - wide[:30, mid, 1].mean()
    assert gap_local > 25 and gap_wide < 0.5 * gap_local
    assert np.std(local[:30, mid, 1]) < 0.5 * np.std(y[:30])


def test_option_errors():
    seg = np.random.default_rng(0).uniform(0, 1, (5, 2, 2))
    with pytest.raises(ValueError, match="bandwidth"):
        bundle_edges(seg, bandwidth=0.0)
    with pytest.raises(ValueError, match="step_rate"):
        bundle_edges(seg, step_rate=1.5)
    with pytest.raises(ValueError, match="max_neighbors"):
        bundle_edges(seg, max_neighbors=-1)


def test_ctrl_c_stops_a_long_run():
    import _thread
    import threading
    import time

    rng = np.random.default_rng(4)
    seg = rng.uniform(0, 100, (3000, 2, 2))
    timer = threading.Timer(0.5, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        bundle_edges(seg, n_iter=100000, n_cycles=3)  # would run for many minutes
    assert time.perf_counter() - t0 < 5.0
    timer.cancel()


def test_polyline_keeps_its_own_shape_without_partners():
    # Springs hold a polyline's input shape, not a straight line: a lone zigzag (no partners)
    # keeps its corners (up to the arc-length resampling), even with a stiff spring.
    x = np.linspace(0, 100, 6)
    zig = np.c_[x, [0, 30, 0, 30, 0, 30]][None]
    for stiffness in (0.005, 1.0):
        out = bundle_edges(zig, stiffness=stiffness)[0]
        y_at = np.interp([20, 40, 60, 80], out[:, 0], out[:, 1])
        assert np.all(y_at[[0, 2]] > 25) and np.all(y_at[[1, 3]] < 5), y_at
        assert np.array_equal(out[0], zig[0, 0]) and np.array_equal(out[-1], zig[0, -1])
