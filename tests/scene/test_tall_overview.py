"""A network with more rows than the panel holds at any scale still uses the panel's width."""

from __future__ import annotations

from cnnvis.scene import build_scene
from cnnvis.scene.synthetic import synthetic_overview


def test_a_drawing_too_tall_for_the_panel_spreads_over_its_width():
    # 48 rows, every eighth a layer of more clusters than a line of the target holds (ResNet-50
    # opened: 50 rows, 145 clusters in each of its 2,048-neuron layers)
    layers = [(f"g{i // 8}", f"l{i}", 2048 if i % 8 == 7 else 32) for i in range(48)]
    clusters = [150 if i % 8 == 7 else 3 for i in range(48)]
    data = synthetic_overview(layers, clusters_per_layer=clusters, n_points=50, seed=2)
    scene = build_scene(data, expanded="all", projection=False, legend=False)
    ov = scene.panels["overview"]
    viewport = scene.panel_layout(1920, 1080)["overview"]
    zoom = scene.fit_zoom(ov, viewport)
    fill_w, fill_h = ov.width * zoom / viewport[2], ov.height * zoom / viewport[3]
    # issue 16's rule: all of one direction and >= 40% of the other (a thin column had 18%)
    assert fill_h > 0.99 and fill_w >= 0.4
    # the wide rows became fewer, longer lines of squares, all inside the panel
    x0, y0, x1, y1 = ov.bounds
    for x, y, w, h in scene.cluster_rects.values():
        assert x0 <= x and x + w <= x1 and y0 <= y and y + h <= y1


def test_group_titles_never_cover_a_box_at_any_zoom_they_show():
    layers = [(f"g{i // 4}", f"l{i}", 64 if i % 4 == 3 else 16) for i in range(24)]
    data = synthetic_overview(layers, clusters_per_layer=4, n_points=50, seed=3)
    for expanded in ("all", ["g1", "g3"]):
        scene = build_scene(data, expanded=expanded, projection=False, legend=False)
        labels = scene.panels["overview"].labels
        boxes = list(scene.cluster_rects.values())
        titles = [
            k for k in range(len(labels))
            if labels.ids[k] and labels.ids[k][0] == "band" and labels.anchor[k][1] == "bottom"
        ]  # fmt: skip
        assert titles
        for k in titles:
            zoom = float(labels.min_zoom[k])
            tx0, ty0, tx1, ty1 = labels.screen_boxes(zoom)[k]
            for x, y, w, h in boxes:
                overlap = min(tx1, x + w) - max(tx0, x) > 0 and min(ty1, y + h) - max(ty0, y) > 0
                assert not overlap, (labels.text[k], zoom)
