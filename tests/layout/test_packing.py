"""Rectangle packing: no overlap, inside the box, density and aspect, clear errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cnnvis import _core
from cnnvis.layout import pack_hierarchy, pack_rectangles
from cnnvis.layout.packing import Packing, contiguity


def assert_valid(p: Packing, tol: float = 1e-9) -> None:
    xy, s = p.positions, p.sizes
    assert xy.shape == s.shape
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = x0 + s[:, 0], y0 + s[:, 1]
    assert np.all(x0 >= -tol) and np.all(y0 >= -tol)
    assert np.all(x1 <= p.width + tol) and np.all(y1 <= p.height + tol)
    ox = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    oy = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    overlap = (ox > tol) & (oy > tol)
    np.fill_diagonal(overlap, False)
    assert not overlap.any(), f"{int(overlap.sum()) // 2} overlapping pairs"


def random_sizes(n: int, seed: int, lo: int = 10, hi: int = 100) -> np.ndarray:
    return np.random.default_rng(seed).integers(lo, hi + 1, size=(n, 2))


@pytest.mark.parametrize("aspect", [1.0, 2.0, 0.5])
def test_thousand_rectangles_dense_fast_at_aspect(aspect):
    sizes = random_sizes(1000, 0)
    pack_rectangles(sizes[:50], aspect)  # warm-up
    t = time.perf_counter()
    p = pack_rectangles(sizes, aspect)
    elapsed = time.perf_counter() - t
    assert_valid(p)
    assert p.density >= 0.97
    assert abs(p.aspect / aspect - 1) <= 0.1 + 1e-9
    assert elapsed < 0.5  # ~15 ms on a free core; generous for a shared machine


@pytest.mark.parametrize("seed", range(4))
def test_beats_the_shelf_floor(seed):
    sizes = random_sizes(300, seed)
    p = pack_rectangles(sizes)
    xy, w, h, _ = _core.shelf_pack(sizes.astype(float), 1.0, 0.1)
    shelf = Packing(np.asarray(xy), sizes.astype(float), w, h)
    assert_valid(shelf)
    assert p.density >= shelf.density
    assert p.density >= 0.93


@pytest.mark.parametrize("n", [1, 2, 7, 60])
def test_float_sizes_and_small_sets(n):
    sizes = np.random.default_rng(n).uniform(0.5, 7.5, size=(n, 2))
    p = pack_rectangles(sizes, aspect=1.5)
    assert_valid(p)
    assert 0 < p.density <= 1 + 1e-12
    # The box honours the aspect even when that means padding around a lone rectangle.
    assert abs(p.aspect / 1.5 - 1) <= 0.1 + 1e-9


def test_integer_sizes_give_integer_layout():
    p = pack_rectangles(random_sizes(200, 3))
    assert np.all(p.positions == np.round(p.positions))
    assert p.width == int(p.width) and p.height == int(p.height)


def test_equal_squares_fill_a_grid():
    p = pack_rectangles(np.full((16, 2), 8))
    assert_valid(p)
    assert (p.width, p.height, p.density) == (32.0, 32.0, 1.0)
    positions, (w, h) = p  # unpacks as positions, box
    assert positions.shape == (16, 2) and (w, h) == (32.0, 32.0)


def test_deterministic_and_thread_independent():
    sizes = random_sizes(400, 9)
    a = pack_rectangles(sizes, effort=2, n_jobs=1)
    b = pack_rectangles(sizes, effort=2, n_jobs=2)
    c = pack_rectangles(sizes, effort=2, n_jobs=1)
    assert np.array_equal(a.positions, b.positions) and np.array_equal(a.positions, c.positions)
    assert (a.width, a.height, a.variant) == (b.width, b.height, b.variant)


def test_fixed_box():
    sizes = np.full((4, 2), 10)
    p = pack_rectangles(sizes, box=(20, 20))
    assert_valid(p)
    assert (p.width, p.height, p.density) == (20.0, 20.0, 1.0)
    sizes = random_sizes(50, 4)
    area = float(np.prod(sizes, axis=1).sum())
    side = np.ceil(np.sqrt(area / 0.85))
    p = pack_rectangles(sizes, box=(side, side))
    assert_valid(p)
    assert (p.width, p.height) == (side, side)
    with pytest.raises(ValueError, match="total area"):
        pack_rectangles(np.full((5, 2), 10), box=(20, 20))
    with pytest.raises(ValueError, match="larger than the box"):
        pack_rectangles([[30, 5]], box=(20, 20))
    with pytest.raises(ValueError, match="could not fit"):  # area fits, shapes do not
        pack_rectangles([[11, 11], [11, 11]], box=(21, 12))


def test_degenerate_and_bad_inputs():
    empty = pack_rectangles(np.zeros((0, 2)))
    assert empty.positions.shape == (0, 2) and (empty.width, empty.height) == (0.0, 0.0)
    with pytest.raises(ValueError, match="positive"):
        pack_rectangles([[10, 0], [5, 5]])
    with pytest.raises(ValueError, match="positive"):
        pack_rectangles([[10, -3]])
    with pytest.raises(ValueError, match="NaN"):
        pack_rectangles([[10, np.nan]])
    with pytest.raises(ValueError, match="shape"):
        pack_rectangles(np.ones((4, 3)))
    with pytest.raises(ValueError, match="aspect"):
        pack_rectangles(np.ones((4, 2)), aspect=0)
    with pytest.raises(ValueError, match="positive"):  # the binding checks on its own too
        _core.pack_rectangles(np.array([[1.0, -1.0]]))


def clustered(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, size=n)
    features = 10 * rng.normal(size=(k, 6))[truth] + rng.normal(size=(n, 6))
    return features, truth


def test_hierarchy_keeps_similar_items_together():
    features, truth = clustered(300, 6, 0)
    sizes = random_sizes(300, 1, 10, 60)
    p = pack_hierarchy(sizes, features, aspect=1.0, n_clusters=6)
    assert_valid(p)
    # The clustering recovers the planted groups.
    for c in range(6):
        assert len(set(truth[p.labels == c])) == 1
    # Each cluster lies inside its own box, and the boxes do not overlap.
    for c, (x, y, w, h) in enumerate(p.cluster_boxes):
        idx = p.labels == c
        assert np.all(p.positions[idx] >= (x - 1e-9, y - 1e-9))
        assert np.all(p.positions[idx] + p.sizes[idx] <= (x + w + 1e-9, y + h + 1e-9))
    stats = contiguity(p.positions, p.sizes, p.labels)
    flat = pack_rectangles(sizes)
    flat_stats = contiguity(flat.positions, flat.sizes, p.labels)
    assert stats["same_cluster_contact"] > 0.8 > 2 * flat_stats["same_cluster_contact"]
    assert p.density >= 0.8
    assert 0.9 <= p.aspect <= 1.1


def test_hierarchy_of_equal_patches_is_a_contiguous_grid():
    features, _ = clustered(100, 5, 2)
    p = pack_hierarchy(np.full((100, 2), 16), features, n_clusters=5)
    assert_valid(p)
    assert p.variant == "snake-grid"
    assert p.density == 1.0 and p.contiguity == 1.0


def test_hierarchy_degenerate_inputs():
    e = pack_hierarchy(np.zeros((0, 2)), np.zeros((0, 3)))
    assert e.positions.shape == (0, 2)
    one = pack_hierarchy([[5, 7]], [[1.0]])
    assert_valid(one)
    assert one.labels.tolist() == [0]
    with pytest.raises(ValueError, match="features"):
        pack_hierarchy(np.ones((4, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        pack_hierarchy(np.ones((4, 2)), np.full((4, 2), np.nan))


def test_contiguity_on_a_hand_built_layout():
    pos = np.array([[0, 0], [1, 0], [5, 5], [2, 1]], dtype=float)
    size = np.ones((4, 2))
    # 0 and 1 share an edge; 2 is far away; 3 touches 1 only at a corner.
    st = contiguity(pos, size, [0, 0, 0, 1])
    assert st["contiguous"] == 0.0  # cluster 0 is split; cluster 1 is a single rectangle
    assert st["same_cluster_contact"] == 1.0
    assert contiguity(pos, size, [0, 0, 1, 1])["contiguous"] == 0.5
    st = contiguity(pos, size, [0, 1, 2, 2])
    assert st["same_cluster_contact"] == 0.0 and st["chance_contact"] == pytest.approx(6 / 16)
