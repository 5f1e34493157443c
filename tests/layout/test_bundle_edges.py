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
