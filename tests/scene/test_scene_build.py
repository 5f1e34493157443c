"""build_scene: the overview has the objects it should, where the layout puts them."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvis.scene import (
    BiclusterInput,
    ClusterInput,
    ConnectionInput,
    LayerInput,
    OverviewInput,
    ProjectionInput,
    build_scene,
    class_colors,
    colormap,
)
from cnnvis.scene.colors import SIGN_PALETTES, hex_to_rgba
from cnnvis.scene.synthetic import synthetic_overview

LAYERS = [("g1", "a", 16), ("g2", "b", 32), ("g2", "c", 48), ("g3", "d", 64)]


@pytest.fixture(scope="module")
def data() -> OverviewInput:
    return synthetic_overview(LAYERS, clusters_per_layer=[3, 4, 5, 6], n_points=600, seed=3)


@pytest.fixture(scope="module")
def scene(data):
    return build_scene(data)


def test_a_rectangle_per_cluster_with_area_by_neuron_count(data, scene):
    ov = scene.panels["overview"]
    cluster_ids = [i for i in ov.rects.ids if i[0] == "cluster"]
    expected = {("cluster", lay.name, c.index) for lay in data.layers for c in lay.clusters}
    assert set(cluster_ids) == expected and len(cluster_ids) == len(expected)
    sizes, areas = [], []
    for k, cid in enumerate(ov.rects.ids):
        if cid[0] != "cluster":
            continue
        x, y, w, h = ov.rects.xywh[k]
        assert (x, y, w, h) == pytest.approx(scene.cluster_rects[cid[1:]])
        assert w == pytest.approx(h)  # squares
        sizes.append(data.layer(cid[1]).clusters[cid[2]].size)
        areas.append(w * h)
    sizes, areas = np.array(sizes, float), np.array(areas)
    big = sizes >= 4  # tiny clusters may be held at a minimum side
    ratio = areas[big] / sizes[big]
    assert ratio.max() / ratio.min() == pytest.approx(1.0, rel=1e-4)


def test_rows_run_top_to_bottom_and_clusters_do_not_overlap(data, scene):
    tops = []
    for lay in data.layers:
        rects = np.array([scene.cluster_rects[(lay.name, c.index)] for c in lay.clusters])
        tops.append(rects[:, 1].min())
        order = np.argsort(rects[:, 0])
        r = rects[order]
        assert np.all(r[1:, 0] >= r[:-1, 0] + r[:-1, 2] + 1.0)  # gaps between neighbours
        x0, _, x1, _ = scene.panels["overview"].bounds
        assert r[0, 0] >= x0 and r[-1, 0] + r[-1, 2] <= x1
    assert np.all(np.diff(tops) > 0)


def test_a_curve_per_drawn_connection_through_its_bicluster_node(data, scene):
    ov = scene.panels["overview"]
    n_expected = sum(
        sum(len(b.rows) + len(b.cols) for b in conn.biclusters) + len(conn.direct)
        for conn in data.connections
    )
    assert len(ov.lines) == n_expected
    nodes = {i: ov.top_rects.xywh[k] for k, i in enumerate(ov.top_rects.ids)}
    assert len(nodes) == sum(len(c.biclusters) for c in data.connections)
    for k, eid in enumerate(ov.lines.ids):
        pts = ov.lines.line(k)
        assert len(pts) >= 8
        _, src, dst, b, end, c = eid
        if b == "direct":
            x, y, w, h = scene.cluster_rects[(src, end)]
            assert pts[0] == pytest.approx((pts[0][0], y + h))
            assert x <= pts[0][0] <= x + w
            x, y, w, h = scene.cluster_rects[(dst, c)]
            assert pts[-1][1] == pytest.approx(y) and x <= pts[-1][0] <= x + w
            continue
        nx, ny, nw, nh = nodes[("bicluster", src, dst, b)]
        centre = (nx + nw / 2, ny + nh / 2)
        if end == "src":
            x, y, w, h = scene.cluster_rects[(src, c)]
            assert pts[0][1] == pytest.approx(y + h) and x <= pts[0][0] <= x + w
            assert tuple(pts[-1]) == pytest.approx(centre, abs=1e-3)
        else:
            x, y, w, h = scene.cluster_rects[(dst, c)]
            assert tuple(pts[0]) == pytest.approx(centre, abs=1e-3)
            assert pts[-1][1] == pytest.approx(y) and x <= pts[-1][0] <= x + w
        # the node sits in the gap between the two rows
        src_bottom = max(r[1] + r[3] for (lay, _), r in scene.cluster_rects.items() if lay == src)
        dst_top = min(r[1] for (lay, _), r in scene.cluster_rects.items() if lay == dst)
        assert src_bottom < centre[1] < dst_top


def test_edges_are_coloured_by_sign_and_as_wide_as_their_strength(data):
    for palette in ("blue-orange", "paper"):
        ov = build_scene(data, palette=palette, projection=False, legend=False).panels["overview"]
        pos, neg = (hex_to_rgba(h)[:3] for h in SIGN_PALETTES[palette])
        for k in range(len(ov.lines)):
            want = pos if ov.lines.sign[k] > 0 else neg
            assert ov.lines.color[k, :3] == pytest.approx(want, abs=1e-6)
        assert {int(s) for s in ov.lines.sign} == {-1, 1}
        order = np.argsort(ov.lines.strength)
        assert np.all(np.diff(ov.lines.width[order]) >= -1e-6)
        assert ov.lines.width.max() > 2 * ov.lines.width.min()


def test_a_point_per_sample_coloured_by_class_and_misclassified_marked(data, scene):
    pr = scene.panels["projection"]
    proj = data.projection
    assert len(pr.points) == len(proj.xy)
    assert pr.points.ids == [("sample", int(i)) for i in proj.samples]
    cc = class_colors(len(data.class_names))
    assert pr.points.color[:, :3] == pytest.approx(cc[proj.labels, :3])
    assert np.array_equal(pr.points.marked, proj.labels != proj.predictions)
    # the layout keeps the projection's shape: world positions are an affine image of xy
    xy = proj.xy
    w = pr.points.xy.astype(np.float64)
    sx = np.polyfit(xy[:, 0], w[:, 0], 1)[0]
    sy = np.polyfit(xy[:, 1], w[:, 1], 1)[0]
    assert sx == pytest.approx(-sy, rel=1e-4) and sx > 0
    x0, y0, x1, y1 = pr.bounds
    assert w[:, 0].min() >= x0 and w[:, 0].max() <= x1 and w[:, 1].min() >= y0
    assert w[:, 1].max() <= y1


def test_facets_features_and_matrix(data):
    feat = build_scene(data, facet="features", projection=False)
    mat = build_scene(data, facet="matrix", projection=False)
    n_clusters = sum(len(lay.clusters) for lay in data.layers)
    for s, interp in ((feat, "linear"), (mat, "nearest")):
        imgs = s.panels["overview"].images
        assert len(imgs) == n_clusters
        assert set(imgs.interpolation) == {interp}
        for k, cid in enumerate(imgs.ids):
            x, y, w, h = imgs.xywh[k]
            rx, ry, rw, rh = s.cluster_rects[cid[1:]]
            assert rx - 1e-3 <= x and x + w <= rx + rw + 1e-3
            assert ry - 1e-3 <= y and y + h <= ry + rh + 1e-3
    # the matrix image is the colormap of the matrix over the layer's value range
    lay = data.layers[1]
    allv = np.concatenate([c.matrix.ravel() for c in lay.clusters])
    imgs = mat.panels["overview"].images
    k = imgs.ids.index(("cluster", lay.name, lay.clusters[0].index))
    want = colormap(lay.clusters[0].matrix, allv.min(), allv.max())
    assert np.array_equal(imgs.data[k], want)
    # matrix rows are the neurons: their boxes tile the cluster square top to bottom
    cl = lay.clusters[0]
    boxes = np.array([mat.neuron_boxes[(lay.name, int(ch))] for ch in cl.neurons])
    assert np.allclose(np.diff(boxes[:, 1]), boxes[0, 3])
    # per-cluster override
    over = build_scene(
        data, facet="features", facet_overrides={(lay.name, cl.index): "matrix"}, projection=False
    )
    imgs = over.panels["overview"].images
    assert imgs.interpolation.count("nearest") == 1


def test_collapsed_groups_show_their_last_layer(data):
    s = build_scene(data, expanded=["g1"], projection=False)
    layers = {cid[0] for cid in s.cluster_rects}
    assert layers == {"a", "c", "d"}
    # a collapsed group is joined to its neighbours: c -> d as analysed, a -> c composed through
    # the hidden b (one direct edge per target cluster, from its strongest source)
    ov = s.panels["overview"]
    pairs = {(i[1], i[2]) for i in ov.lines.ids}
    assert pairs == {("a", "c"), ("c", "d")}
    composed = [i for i in ov.lines.ids if i[1:3] == ("a", "c")]
    assert all(i[3] == "direct" for i in composed)
    assert sorted(i[5] for i in composed) == list(range(len(data.layer("c").clusters)))


def test_same_input_same_scene(data):
    a, b = build_scene(data), build_scene(data)
    for name in a.panels:
        pa, pb = a.panels[name], b.panels[name]
        assert np.array_equal(pa.rects.xywh, pb.rects.xywh)
        assert np.array_equal(pa.lines.points, pb.lines.points)
        assert np.array_equal(pa.points.xy, pb.points.xy)
        assert pa.labels.text == pb.labels.text


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 800)])
def test_visible_labels_never_overlap(data, size):
    s = build_scene(synthetic_overview(n_points=500, seed=1))
    # group titles wider than the label margin run on into their band, up to the first square
    long_titles = synthetic_overview(
        [("block1-block2", "block1.relu", 16), ("block1-block2", "block2.relu", 32),
         ("block3", "block3.relu", 64)], clusters_per_layer=[2, 4, 4], n_points=300, seed=2,
    )  # fmt: skip
    for sc in (s, build_scene(data), build_scene(long_titles)):
        layout = sc.panel_layout(*size)
        for name, panel in sc.panels.items():
            zoom = sc.fit_zoom(panel, layout[name])
            for z in (zoom, zoom * 2.0, zoom * 4.0):
                vis = np.flatnonzero(sc.visible_labels(name, z))
                boxes = panel.labels.screen_boxes(z)[vis]
                for i in range(len(boxes)):
                    for j in range(i + 1, len(boxes)):
                        a, b = boxes[i], boxes[j]
                        overlap_x = min(a[2], b[2]) - max(a[0], b[0])
                        overlap_y = min(a[3], b[3]) - max(a[1], b[1])
                        assert overlap_x <= 1e-6 or overlap_y <= 1e-6, (
                            name,
                            panel.labels.text[vis[i]],
                            panel.labels.text[vis[j]],
                        )
            if name == "overview":
                # at the fitted zoom the band titles are all readable
                titles = [i for i, t in enumerate(panel.labels.ids) if t and t[0] == "band"]
                assert all(panel.labels.min_zoom[i] <= zoom for i in titles)


def test_bad_input_gets_clear_errors(data):
    with pytest.raises(ValueError, match="facet"):
        build_scene(data, facet="patches")
    with pytest.raises(ValueError, match="palette"):
        build_scene(data, palette="rainbow")
    with pytest.raises(ValueError, match="no analysed layers"):
        build_scene(OverviewInput(["a"], []))
    with pytest.raises(TypeError, match="Analysis"):
        build_scene(42)
    with pytest.raises(ValueError, match="shape"):
        ProjectionInput("x", np.zeros(5), np.zeros(5), np.zeros(5))
    bad = ProjectionInput("a", np.array([[0.0, 1.0], [np.nan, 2.0]]), [0, 1], [0, 1])
    inp = OverviewInput(
        ["a", "b"],
        [LayerInput("a", [ClusterInput(0, np.arange(3))])],
        projection=bad,
    )
    with pytest.raises(ValueError, match="NaN"):
        build_scene(inp)


def test_hand_built_two_layer_overview():
    """A minimal analysis, every coordinate checkable by hand."""
    a = LayerInput("conv1", [ClusterInput(0, np.arange(4)), ClusterInput(1, np.arange(4, 20))])
    b = LayerInput("conv2", [ClusterInput(0, np.arange(9))])
    strength = np.array([[1.0], [-2.0]])
    conn = ConnectionInput(
        "conv1",
        "conv2",
        strength,
        [BiclusterInput(np.array([0]), np.array([0]), 1)],
        direct=np.array([[1, 0]]),
    )
    s = build_scene(OverviewInput(["x", "y"], [a, b], [conn]), projection=False)
    r = s.cluster_rects
    # areas 4 : 16 : 9 -> sides 2 : 4 : 3
    assert r[("conv1", 1)][2] / r[("conv1", 0)][2] == pytest.approx(2.0)
    assert r[("conv2", 0)][2] / r[("conv1", 0)][2] == pytest.approx(1.5)
    ov = s.panels["overview"]
    assert len(ov.lines) == 3 and len(ov.top_rects) == 1
    k = ov.lines.ids.index(("edge", "conv1", "conv2", "direct", 1, 0))
    assert ov.lines.sign[k] == -1
    assert ov.lines.width[k] == ov.lines.width.max()
    assert "legend" in s.panels and "projection" not in s.panels
