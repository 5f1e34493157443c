"""The projection area's small multiples (issue 17) on the real demo session, under a display.

A neuron picked in the overview or clicked in a neuron panel colours every sample panel by exactly
its pooled activation, with a colour bar; a lasso drawn with real mouse events in one panel
selects the same samples in every panel and in the controller; panels are added, removed,
swapped and transposed; trajectories of the top outliers; a panel as an image map.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from qt_support import QT_MARKS, skip_without_display

pytestmark = QT_MARKS

skip_without_display()


@pytest.fixture(scope="module")
def window(demo_session, tmp_path_factory):
    from cnnvis.viewer.app import ViewerWindow, open_session, qt_app

    qt_app()
    dst = tmp_path_factory.mktemp("grid") / "demo"
    shutil.copytree(demo_session, dst)
    win = ViewerWindow(open_session(dst), str(dst))
    win.resize(1600, 900)
    win.show()
    _settle()
    yield win
    win.close()


def _settle(seconds: float = 0.3) -> None:
    from PySide6 import QtWidgets

    app = QtWidgets.QApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def _points(proj, i: int, xy: np.ndarray):
    from PySide6 import QtCore

    px = proj.views[i].to_canvas(xy)
    return [QtCore.QPoint(round(x), round(y)) for x, y in px]


def _expected_rgb(values: np.ndarray) -> np.ndarray:
    from cnnvis.scene.colors import colormap

    return colormap(values)[:, :3].astype(np.float32) / 255.0


def test_a_picked_neuron_colours_every_sample_panel_by_its_activation(window):
    from cnnvis.analysis import neuron_activation

    proj, ctl = window.projection, window.controller
    proj.apply_preset("untrained vs trained")
    _settle()
    assert [s.kind for s in proj.specs] == ["samples", "samples", "neurons", "neurons"]
    layer, channel = ctl.layers[2], 5
    ctl.select_neuron(layer, channel)
    _settle()
    assert ctl.projection_layer == layer
    want = _expected_rgb(neuron_activation(ctl.analysis, layer, channel))
    for i in (0, 1):
        assert np.allclose(proj.sample_colors(i)[:, :3], want, atol=1e-6)
    assert proj.colour_bar.isVisible()
    assert f"{layer} n{channel}" in proj.status.text()
    # another neuron: other colours; clearing: the class colours again
    ctl.select_neuron(layer, 6)
    _settle(0.1)
    other = _expected_rgb(neuron_activation(ctl.analysis, layer, 6))
    assert np.allclose(proj.sample_colors(0)[:, :3], other, atol=1e-6)
    ctl.clear_selection()
    _settle(0.1)
    classes = ctl.class_colors()[ctl.sample_labels]
    assert np.allclose(proj.sample_colors(0)[:, :3], classes, atol=1e-6)
    assert not proj.colour_bar.isVisible()


def test_clicking_a_neuron_in_a_neuron_panel_picks_it(window):
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from cnnvis.analysis import neuron_activation

    proj, ctl = window.projection, window.controller
    proj.apply_preset("samples and neurons")
    _settle()
    neurons = proj.views[1]
    assert neurons.spec.kind == "neurons"
    layer = proj.specs[1].resolved(ctl.projection_layer).layer
    # the neuron farthest from the others, so that the click hits it alone
    d = np.linalg.norm(neurons.shown[:, None] - neurons.shown[None], axis=2)
    j = int(np.argmax(np.sort(d, axis=1)[:, 1]))
    (p,) = _points(proj, 1, neurons.shown[j])
    left, no_mod = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    QTest.mouseClick(neurons.canvas.native, left, no_mod, p)
    _settle()
    assert ctl.selection.neuron == (layer, j)
    want = _expected_rgb(neuron_activation(ctl.analysis, layer, j))
    assert np.allclose(proj.sample_colors(0)[:, :3], want, atol=1e-6)
    assert ctl.scene.highlight.clusters == {(layer, int(ctl.clusters(layer)[j]))}  # overview
    ctl.clear_selection()


def test_a_lasso_in_one_panel_selects_in_every_panel(window):
    from PySide6 import QtWidgets

    qapp = QtWidgets.QApplication.instance()
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from cnnvis.scene.model import points_in_polygon

    proj, ctl = window.projection, window.controller
    proj.apply_preset("first vs last layer")
    _settle()
    assert len(proj.views) == 2
    second = proj.views[1]
    # a lasso around most of one class's samples in the second panel (the last layer)
    from scipy.spatial import ConvexHull

    cls = 4
    pts = second.shown[ctl.sample_labels == cls]
    core = pts[np.linalg.norm(pts - np.median(pts, 0), axis=1).argsort()[: int(0.8 * len(pts))]]
    hull = core[ConvexHull(core).vertices]
    hull = hull.mean(0) + 1.1 * (hull - hull.mean(0))
    path = _points(proj, 1, np.r_[hull, hull[:1]])
    left, no_mod = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    native = second.canvas.native
    QTest.mousePress(native, left, no_mod, path[0])
    for q in path[1:]:
        QTest.mouseMove(native, q)
        qapp.processEvents()
    QTest.mouseRelease(native, left, no_mod, path[-1])
    _settle()
    drawn = second.to_canvas(second.shown)
    inside = np.flatnonzero(points_in_polygon(drawn, np.array([[q.x(), q.y()] for q in path])))
    sel = ctl.selection.samples
    assert len(sel) >= 0.7 * len(pts)
    assert abs(len(sel) - len(inside)) <= 2  # pixel rounding of the lasso's corners
    assert np.mean(ctl.sample_labels[sel] == cls) > 0.8
    assert ctl.selection.n_highlighted > 0  # the overview lights the neurons up
    for i in (0, 1):  # both panels show the selection: the others faded
        alpha = proj.sample_colors(i)[:, 3]
        assert np.all(alpha[sel] == 1.0)
        assert np.all(np.delete(alpha, sel) < 0.5)
    ctl.clear_selection()


def test_panels_are_added_removed_swapped_and_transposed(window):
    from cnnvis.viewer.grid import PanelSpec

    proj, ctl = window.projection, window.controller
    proj.apply_preset("single panel")
    _settle(0.1)
    assert proj.specs == [PanelSpec()]
    layers = ctl.layers
    proj.add_panel(PanelSpec("samples", layers[0], 0))
    proj.add_panel(PanelSpec("neurons", layers[1]))
    assert [s.kind for s in proj.specs] == ["samples", "samples", "neurons"]
    assert proj.views[1].data.title.startswith(f"{layers[0]}, epoch")
    _settle(0.2)

    def places():
        return [(v.canvas.native.x(), v.canvas.native.y()) for v in proj.views]

    first = places()  # two columns: (0, 0), (x, 0), (0, y)
    assert first[0] == (0, 0) and first[1][1] == 0 < first[1][0] and first[2][1] > 0
    # swapping two panels swaps their places in the canvas
    before = proj.specs
    proj.swap_panels(0, 2)
    _settle(0.2)
    assert proj.specs == [before[2], before[1], before[0]]
    assert places() == first
    assert proj.views[2].spec == before[0]
    # two columns of three panels, transposed: two rows
    proj.transpose()
    assert proj._cols == 2 and len(proj.views) == 3
    proj.remove_panel(1)
    assert len(proj.specs) == 2
    proj.remove_panel(0)
    with pytest.raises(ValueError, match="last panel"):
        proj.remove_panel(0)
    # the Grid menu offers the presets and one menu per panel
    proj._fill_grid_menu()
    names = [a.text() for a in proj.grid_menu.actions()]
    assert "Untrained vs trained" in names and "Panel 1: " in " ".join(names)
    next(a for a in proj.grid_menu.actions() if a.text() == "Every layer").trigger()
    _settle(0.1)
    assert [s.layer for s in proj.specs] == layers


def test_trajectories_of_the_top_outliers(window):
    proj, ctl = window.projection, window.controller
    proj.apply_preset("samples and trajectories")
    _settle()
    traj = proj.views[1]
    assert traj.data.positions.shape == (len(ctl.sample_labels), len(ctl.layers), 2)
    rows = proj.top_outliers(5)
    _settle()
    assert len(rows) == 5
    assert np.array_equal(np.sort(rows), ctl.selection.samples)
    assert np.all(traj.data.outlier[rows] >= np.sort(traj.data.outlier)[-5])
    assert traj.curves.visible
    ctl.clear_selection()
    _settle(0.1)
    assert not traj.curves.visible


def test_a_sample_panel_as_an_image_map(window, tmp_path):
    from cnnvis.viewer.app import image_to_array

    proj = window.projection
    proj.apply_preset("single panel")
    _settle(0.1)
    plain = proj.coords.copy()
    proj.set_image_map(0, True, snap=True)
    _settle()
    snapped = proj.coords
    # one sample per cell: no two thumbnails overlap
    assert len(np.unique(np.round(snapped, 5), axis=0)) == len(snapped)
    assert not np.allclose(snapped, plain)
    assert proj.views[0].thumbs.visible and not proj.views[0].points.visible
    img = image_to_array(window.screenshot(str(tmp_path / "map.png")))
    w = proj.canvas.native
    tl = w.mapTo(window, w.rect().topLeft())
    area = img[tl.y() : tl.y() + w.height(), tl.x() : tl.x() + w.width(), :3]
    grey = (np.abs(area.astype(int) - area.mean(axis=2, keepdims=True)) < 8).all(axis=2)
    assert (grey & (area[..., 0] < 128)).mean() > 0.05  # dark digit strokes, in grey levels
    proj.set_image_map(0, False)
    assert np.allclose(proj.coords, plain)


def test_a_box_around_neurons_colours_the_samples_by_their_mean(window):
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from cnnvis.analysis import neuron_activation

    proj, ctl = window.projection, window.controller
    proj.apply_preset("samples and neurons")
    _settle()
    next(b for b in proj._tools.buttons() if b.text() == "Box").setChecked(True)
    neurons = proj.views[1]
    layer = proj.specs[1].resolved(ctl.projection_layer).layer
    lo, hi = neurons.shown.min(0), neurons.shown.max(0)
    corners = _points(proj, 1, np.array([lo - 0.01, [(lo[0] + hi[0]) / 2, hi[1] + 0.01]]))
    left, no_mod = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    QTest.mousePress(neurons.canvas.native, left, no_mod, corners[0])
    QTest.mouseMove(neurons.canvas.native, corners[1])
    QTest.mouseRelease(neurons.canvas.native, left, no_mod, corners[1])
    _settle()
    px = neurons.to_canvas(neurons.shown)
    (x0, y0), (x1, y1) = [(q.x(), q.y()) for q in corners]
    inside = np.flatnonzero(
        (px[:, 0] >= min(x0, x1)) & (px[:, 0] <= max(x0, x1))
        & (px[:, 1] >= min(y0, y1)) & (px[:, 1] <= max(y0, y1))
    )  # fmt: skip
    assert len(inside) >= 2
    mean = np.mean([neuron_activation(ctl.analysis, layer, int(c)) for c in inside], axis=0)
    assert np.allclose(proj.sample_colors(0)[:, :3], _expected_rgb(mean), atol=1e-6)
    assert f"{layer}, {len(inside)} neurons" in proj.status.text()
    next(b for b in proj._tools.buttons() if b.text() == "Lasso").setChecked(True)
    proj.show_neuron(None)


def test_presets_specs_and_the_thumbnail_atlas():
    from cnnvis.viewer.grid import PRESETS, PanelSpec, preset_specs, thumbnail_atlas

    layers = ["a", "b", "c"]
    for name in PRESETS:
        specs, cols = preset_specs(name, layers, 2)
        assert 1 <= cols <= len(specs)
    assert preset_specs("untrained vs trained", layers, 2)[0] == [
        PanelSpec("samples", None, 0), PanelSpec("samples", None, None),
        PanelSpec("neurons", None, 0), PanelSpec("neurons", None, None),
    ]  # fmt: skip
    assert [s.kind for s in preset_specs("untrained vs trained", layers, 0)[0]] == [
        "samples", "neurons",
    ]  # fmt: skip
    assert preset_specs("every layer", layers, 0) == ([PanelSpec("samples", x) for x in layers], 2)
    with pytest.raises(ValueError, match="no grid preset"):
        preset_specs("diagonal", layers, 0)
    with pytest.raises(ValueError, match="one of samples, neurons, trajectories"):
        PanelSpec("weights")
    images = (np.arange(5, dtype=np.uint8)[:, None, None, None] * 40 + 10).repeat(4, 1)
    images = images.repeat(3, 2)  # (5, 4, 3, 1): 4 rows, 3 columns, one grey level each
    atlas, uv = thumbnail_atlas(images)
    assert atlas.shape == (8, 9, 4) and uv.shape == (5, 4)
    h, w = atlas.shape[:2]
    for i, (u0, v1, u1, v0) in enumerate(uv):  # flipped: v of the image's bottom row first
        tile = atlas[round(v0 * h) : round(v1 * h), round(u0 * w) : round(u1 * w), 0]
        assert tile.shape == (4, 3) and np.all(tile == 40 * i + 10)
