"""Hit testing, selection, level of detail and highlight state on the scene model."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvis.scene import build_scene
from cnnvis.scene.model import points_in_polygon
from cnnvis.scene.synthetic import synthetic_overview


@pytest.fixture(scope="module")
def scene():
    data = synthetic_overview(
        [("g1", "a", 16), ("g2", "b", 32), ("g3", "c", 48)],
        clusters_per_layer=[3, 4, 5],
        n_points=400,
        seed=5,
    )
    return build_scene(data)


def test_pick_cluster_band_node_edge_and_nothing(scene):
    for (layer, c), (x, y, w, h) in scene.cluster_rects.items():
        assert scene.pick("overview", x + w / 2, y + h / 2) == ("cluster", layer, c)
    ov = scene.panels["overview"]
    # the left margin of a band is the band
    k = next(i for i, cid in enumerate(ov.rects.ids) if cid[0] == "band")
    bx, by, bw, bh = ov.rects.xywh[k]
    assert scene.pick("overview", bx + 5, by + bh / 2) == ov.rects.ids[k]
    # a bicluster node wins over the edges that end in it
    nx, ny, nw, nh = ov.top_rects.xywh[0]
    assert scene.pick("overview", nx + nw / 2, ny + nh / 2) == ov.top_rects.ids[0]
    # the middle of a curve is that curve (or one drawn over it at the same place)
    for k in range(len(ov.lines)):
        pts = ov.lines.line(k)
        mid = pts[len(pts) // 2]
        hit = scene.pick("overview", *mid, zoom=1.0, tolerance_px=0.0)
        assert hit is not None and hit[0] == "edge"
        d = ov.lines.segment_distance(*mid)
        assert d[ov.lines.ids.index(hit)] <= 0.5 * ov.lines.width[k] + 1e-6
    # outside everything
    x0, y0, x1, y1 = ov.bounds
    assert scene.pick("overview", x1 + 100, y1 + 100) is None


def test_pick_points_within_their_radius(scene):
    pts = scene.panels["projection"].points
    for k in (0, 17, len(pts) - 1):
        x, y = pts.xy[k]
        hit = scene.pick("projection", x, y, zoom=0.5)
        assert hit is not None and hit[0] == "sample"
        assert np.hypot(*(pts.xy[pts.ids.index(hit)] - pts.xy[k])) < 1e-3 or hit == pts.ids[k]
    # far from all points: nothing (the projection has no rectangles)
    assert scene.pick("projection", -500.0, -500.0, zoom=1.0) is None
    with pytest.raises(ValueError, match="zoom"):
        scene.pick("projection", 0, 0, zoom=0)


def test_select_box_and_lasso(scene):
    pts = scene.panels["projection"].points
    x0, y0, x1, y1 = scene.panels["projection"].bounds
    assert len(scene.select_box("projection", x0, y0, x1, y1)) == len(pts)
    # left half by box and by a lasso rectangle agree with a direct count
    xm = float(np.median(pts.xy[:, 0]))
    left = scene.select_box("projection", x0, y0, xm, y1, kind="sample")
    assert len(left) == int((pts.xy[:, 0] <= xm).sum())
    lasso = scene.select_lasso("projection", [(x0, y0), (xm, y0), (xm, y1), (x0, y1)])
    assert set(lasso) == {pts.ids[i] for i in np.flatnonzero(pts.xy[:, 0] < xm)}
    # a box around one cluster selects that cluster (and nothing else of its kind)
    (layer, c), (x, y, w, h) = next(iter(scene.cluster_rects.items()))
    got = scene.select_box("overview", x - 1, y - 1, x + w + 1, y + h + 1, kind="cluster")
    assert got == [("cluster", layer, c)]
    with pytest.raises(ValueError, match="polygon"):
        scene.select_lasso("projection", [(0, 0), (1, 1)])


def test_points_in_polygon_against_a_triangle():
    tri = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    xy = np.array([[1.0, 1.0], [3.0, 3.0], [0.5, 3.0], [-1.0, 1.0], [2.0, 1.9]])
    assert points_in_polygon(xy, tri).tolist() == [True, False, True, False, True]


def _ray_casting(x: float, y: float, poly: np.ndarray) -> bool:
    """One point, one edge at a time: the even-odd rule written out in plain Python."""
    inside = False
    xj, yj = poly[-1]
    for xi, yi in poly:
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        xj, yj = xi, yi
    return inside


@pytest.mark.parametrize("seed", range(6))
def test_points_in_polygon_equals_ray_casting_point_by_point(seed):
    # integer grids put points on vertices, edges and the y of horizontal edges (the ties)
    rng = np.random.default_rng(seed)
    poly = rng.integers(-6, 7, (int(rng.integers(3, 25)), 2)).astype(np.float64)
    xy = rng.integers(-8, 9, (600, 2)).astype(np.float64)
    xy[::5] += rng.normal(0, 0.5, (120, 2))
    xy[7] = (np.nan, 0.0)
    want = [_ray_casting(x, y, poly) for x, y in xy]
    assert points_in_polygon(xy, poly).tolist() == want
    assert not points_in_polygon(xy, poly[:2]).any()


def test_level_of_detail_rules(scene):
    ov = scene.panels["overview"]
    zs = np.array([0.1, 0.5, 1.0, 4.0])
    n_lab = [int(scene.visible_labels("overview", z).sum()) for z in zs]
    n_img = [int(scene.visible_images("overview", z).sum()) for z in zs]
    assert n_lab == sorted(n_lab) and n_img == sorted(n_img)  # more detail when closer
    assert n_img[0] < len(ov.images) and n_img[-1] == len(ov.images)
    assert n_lab[-1] == len(ov.labels)
    # an image appears once its square is at least FACET_MIN_PX wide on screen
    from cnnvis.scene.build import FACET_MIN_PX

    for k, cid in enumerate(ov.images.ids):
        side = scene.cluster_rects[cid[1:]][2]
        assert ov.images.min_zoom[k] * side == pytest.approx(FACET_MIN_PX, rel=1e-5)


def test_highlight_state_is_data(scene):
    hl = scene.highlight
    assert hl.empty
    hl.samples = np.array([3, 5])
    hl.neurons.add(("a", 0))
    assert not hl.empty
    hl.clear()
    assert hl.empty
    # every neuron of every cluster has a box inside its cluster square
    for (layer, _ch), (x, y, w, h) in scene.neuron_boxes.items():
        inside = [
            r
            for (lay, _), r in scene.cluster_rects.items()
            if lay == layer
            and r[0] - 1e-3 <= x
            and x + w <= r[0] + r[2] + 1e-3
            and r[1] - 1e-3 <= y
            and y + h <= r[1] + r[3] + 1e-3
        ]
        assert len(inside) == 1
