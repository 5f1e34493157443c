"""The overview on real networks (issue 16): ResNet-18 and GoogLeNet with random weights,
recorded on 64x64 crops of scikit-learn's sample photos. Legibility at 1920x1080 fit, branches
side by side, collapse/expand round trips, readable cluster counts."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")

import cnnvis  # noqa: E402
from cnnvis.scene import build_scene, overview_input  # noqa: E402
from cnnvis.scene.hierarchy import group_tree  # noqa: E402

MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=4),
    "densenet121": lambda: torchvision.models.densenet121(weights=None, num_classes=4),
    "googlenet": lambda: torchvision.models.googlenet(
        weights=None, num_classes=4, aux_logits=False, init_weights=False
    ),
}


def _photos(n_per_class: int = 6):
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(0)
    xs, ys = [], []
    for c in range(4):
        img = load_sample_images().images[c % 2]
        for _ in range(n_per_class):
            step = 1 + c // 2  # two zoom levels of each photo
            y, x = rng.integers(0, img.shape[0] - 128), rng.integers(0, img.shape[1] - 128)
            crop = img[y : y + 64 * step : step, x : x + 64 * step : step]
            xs.append(torch.tensor(crop, dtype=torch.float32).permute(2, 0, 1) / 255)
            ys.append(c)
    return torch.utils.data.TensorDataset(torch.stack(xs), torch.tensor(ys))


@pytest.fixture(scope="module", params=sorted(MODELS))
def real(request):
    torch.manual_seed(0)
    model = MODELS[request.param]().eval()
    rec = cnnvis.record(
        model, _photos(), top_k=2, progress=False, max_pooled=100, patch_size=12,
        class_names=["a", "b", "c", "d"], model_name=request.param,
    )  # fmt: skip
    analysis = cnnvis.analyze(rec)
    return request.param, analysis, overview_input(analysis, projection=False)


def _fit(scene):
    layout = scene.panel_layout(1920, 1080)
    panel = scene.panels["overview"]
    return panel, layout["overview"], scene.fit_zoom(panel, layout["overview"])


def test_legible_at_fit(real):
    _, _, data = real
    scene = build_scene(data)
    panel, (_, _, vw, vh), zoom = _fit(scene)
    # every cluster box shows its facet
    shown = {i for k, i in enumerate(panel.images.ids) if panel.images.min_zoom[k] <= zoom}
    assert shown == {("cluster",) + key for key in scene.cluster_rects}
    # every group name is drawn, at >= 10 px
    names = [k for k, i in enumerate(panel.labels.ids) if i and i[0] == "band"]
    assert names
    for k in names:
        assert panel.labels.min_zoom[k] <= zoom, panel.labels.text[k]
        assert panel.labels.size[k] * 96 / 72 >= 10
    # the drawing fills the panel
    fx, fy = panel.width * zoom / vw, panel.height * zoom / vh
    assert (fx >= 0.6 and fy >= 0.6) or (max(fx, fy) >= 0.99 and min(fx, fy) >= 0.4), (fx, fy)


def test_branches_share_rows_and_do_not_overlap(real):
    name, _, data = real
    scene = build_scene(data, expanded="all")
    boxes = {}
    ov = scene.panels["overview"]
    for k, i in enumerate(ov.rects.ids):
        if i[0] in ("band", "layer") and i[1] in scene.meta["units"]:
            boxes[i[1]] = ov.rects.xywh[k]
    pairs = {
        "resnet18": [("layer2.0.conv2", "layer2.0.downsample.0")],
        # DenseNet: a dense layer's two recorded layers, and each dense layer after the last
        # one whose output it concatenates; the concatenation inputs arrive as skip edges
        "densenet121": [],
        "googlenet": [
            ("inception3a.branch1.conv", "inception3a.branch4.1.conv"),
            ("inception3a.branch2.0.conv", "inception3a.branch3.0.conv"),
            ("inception3a.branch2.1.conv", "inception3a.branch3.1.conv"),
        ],
    }[name]
    for a, b in pairs:
        assert boxes[a][1] == pytest.approx(boxes[b][1]), (a, b)  # one row
    by_row: dict[float, list] = {}
    for box in boxes.values():
        by_row.setdefault(round(float(box[1]), 3), []).append(box)
    for row in by_row.values():
        row.sort(key=lambda b: b[0])
        for p, q in zip(row, row[1:]):
            assert p[0] + p[2] <= q[0] + 1e-6  # side by side, no overlap


def test_collapse_expand_round_trip(real):
    _, _, data = real
    tree = group_tree(data)
    base = build_scene(data)
    state = set(base.meta["expanded"])
    group = next(n.name for t in tree for n in t.walk() if not n.is_leaf and n.name not in state)
    opened = build_scene(data, expanded=state | {group})
    assert len(opened.cluster_rects) > len(base.cluster_rects)
    back = build_scene(data, expanded=state)
    a, b = base.panels["overview"], back.panels["overview"]
    assert np.array_equal(a.rects.xywh, b.rects.xywh) and a.rects.ids == b.rects.ids
    assert np.array_equal(a.lines.points, b.lines.points) and a.labels.text == b.labels.text


def test_wide_layers_get_readable_cluster_counts(real):
    _, analysis, _ = real
    for layer in analysis.layers:
        n = analysis.recording.layer(layer).n_channels
        if n >= 128:
            k = analysis.n_clusters(layer)
            assert 9.5 <= n / k <= 40, (layer, n, k)


def _unit_boxes(scene) -> dict[str, np.ndarray]:
    ov = scene.panels["overview"]
    units = scene.meta["units"]
    return {
        i[1]: ov.rects.xywh[k]
        for k, i in enumerate(ov.rects.ids)
        if i[0] in ("band", "layer") and i[1] in units
    }


def _crossed(pts: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Which boxes (x, y, w, h), shrunk by 1, the polyline ``pts`` passes through."""
    t = np.linspace(0.0, 1.0, 9)[None, :, None]
    dense = (pts[:-1, None] + t * (pts[1:, None] - pts[:-1, None])).reshape(-1, 2)
    x, y = dense[:, :1], dense[:, 1:]
    bx, by, bw, bh = (boxes[:, i][None, :] for i in range(4))
    inside = (x > bx + 1) & (x < bx + bw - 1) & (y > by + 1) & (y < by + bh - 1)
    return inside.any(axis=0)


def test_connections_route_around_the_boxes_they_skip(real):
    """No connection crosses a box other than the two it joins: edges between neighbouring
    rows run in the gap, skip edges (identity shortcuts, DenseNet's concatenations) in lanes."""
    _, _, data = real
    scene = build_scene(data, expanded="all")
    boxes = _unit_boxes(scene)
    owner = {layer: unit for unit, layer in scene.meta["units"].items()}
    ov = scene.panels["overview"]
    names = list(boxes)
    xywh = np.array([boxes[u] for u in names], np.float64)
    tallest = xywh[:, 3].max()
    skips = 0
    for k, cid in enumerate(ov.lines.ids):
        pts = ov.lines.line(k).astype(np.float64)
        skips += pts[:, 1].max() - pts[:, 1].min() > 2 * tallest
        crossed = {names[i] for i in np.flatnonzero(_crossed(pts, xywh))}
        assert crossed <= {owner[cid[1]], owner[cid[2]]}, (cid, crossed)
    assert skips > 0  # every one of these networks has shortcuts


def test_transition_frames_move_boxes_from_the_old_scene_to_the_new(real):
    from cnnvis.scene.transition import transition_frame

    _, _, data = real
    base = build_scene(data, projection=False, legend=False)
    state = set(base.meta["expanded"])
    group = next(
        n.name for t in group_tree(data) for n in t.walk() if not n.is_leaf and n.name not in state
    )
    opened = build_scene(data, expanded=state | {group}, projection=False, legend=False)
    assert transition_frame(base, opened, 1.0) is opened
    with pytest.raises(ValueError, match="t must be"):
        transition_frame(base, opened, 1.5)
    old, new = base.panels["overview"], opened.panels["overview"]
    start = transition_frame(base, opened, 0.0).panels["overview"]
    half = transition_frame(base, opened, 0.5).panels["overview"]
    assert start.rects.ids == new.rects.ids and len(start.lines) == 0
    where = {i: k for k, i in enumerate(old.rects.ids) if i[0] == "cluster"}
    shared = [k for k, i in enumerate(new.rects.ids) if i in where]
    assert shared  # the clusters of the layer the closed group showed
    for k in shared:
        a, b = old.rects.xywh[where[new.rects.ids[k]]], new.rects.xywh[k]
        assert np.allclose(start.rects.xywh[k], a)
        assert np.allclose(half.rects.xywh[k], (a + b) / 2, atol=1e-3)
    appeared = [k for k, i in enumerate(new.rects.ids) if i[0] == "cluster" and i not in where]
    assert appeared and np.all(half.rects.fill[appeared, 3] < new.rects.fill[appeared, 3])
