"""Level of detail of large sample panels (issue 20), under a display: a panel of 60,000 points
shows a class-coloured density image at fit and its markers when zoomed in; the image's pixels
carry the class colours where the points are; the selection stays drawn as markers on top; a
demo-sized panel never switches."""

from __future__ import annotations

import numpy as np
import pytest

from qt_support import QT_MARKS, skip_without_display

pytestmark = QT_MARKS

skip_without_display()

N = 60_000
CENTRES = np.array([[-20.0, -20.0], [20.0, -20.0], [0.0, 20.0]])


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_blobs

    xy, labels = make_blobs(N, centers=CENTRES, cluster_std=2.0, random_state=0)
    return xy.astype(np.float32), labels


def _panel(xy, labels, selected=None, preds=None):
    """A panel of its own canvas showing ``xy`` in class colours, ``selected`` rows active."""
    from cnnvis.viewer.app import qt_app
    from cnnvis.viewer.grid import PanelData, PanelSpec, PanelView, sample_style
    from cnnvis.viewer.qtutil import class_palette

    qt_app()
    view = PanelView(PanelSpec())
    view.canvas.native.resize(500, 450)
    view.canvas.native.show()
    view.set_data(PanelData(xy, "blobs"))
    colors = class_palette(3)
    active = None
    if selected is not None:
        active = np.zeros(len(labels), bool)
        active[selected] = True
    style = sample_style(labels, labels if preds is None else preds, colors, active)
    view.draw_samples(style, np.zeros(0, np.int64), None)
    return view, colors


def test_large_panel_switches_to_density_at_fit_and_back(blobs):
    xy, labels = blobs
    view, colors = _panel(xy, labels)
    try:
        view.fit()
        assert view.lod and view.density.image.visible
        assert view.points.visible and view.points._n == 0  # all classified right: no marks
        from cnnvis.viewer.density import marker_look

        # a marker's fill mixed with its white outline, as the markers look from afar
        look = marker_look(view._style)[:, :3]
        order = view._style["order"]
        expected = [look[np.flatnonzero(labels[order] == c)[0]] for c in range(3)]
        img = view.density.image._data
        tr = view.density.image.transform
        for c, centre in enumerate(CENTRES):  # the pixel at each blob's centre
            col, row = ((centre - np.array(tr.translate[:2])) / np.array(tr.scale[:2])).astype(int)
            px = img[row, col]
            assert px[3] == 255
            assert np.abs(px[:3] / 255.0 - expected[c]).max() < 0.02
            assert np.argmin(np.abs(colors - px[:3] / 255.0).sum(1)) == c  # its class's colour
        shot = view.canvas.render(alpha=False)  # what the panel shows: the class colours
        scale = shot.shape[1] / view.canvas.size[0]
        for c, (x, y) in enumerate(view.to_canvas(CENTRES) * scale):
            assert np.abs(shot[int(y), int(x), :3] / 255.0 - expected[c]).max() < 0.02
        between = ((np.array([0.0, -20.0]) - tr.translate[:2]) / tr.scale[:2]).astype(int)
        assert img[between[1], between[0], 3] < 20  # empty space stays empty
        view.view.camera.set_range(x=(19.0, 21.0), y=(-21.0, -19.0), margin=0)
        assert not view.lod and not view.density.image.visible
        assert view.points.visible and view.points._n == N
        view.fit()
        assert view.lod and view.points._n == 0
    finally:
        view.close()


def test_selection_stays_as_markers_on_top(blobs):
    xy, labels = blobs
    picked = np.flatnonzero(labels == 1)[:50]
    view, colors = _panel(xy, labels, picked)
    try:
        view.fit()
        assert view.lod and view.points._n == len(picked)
        faded = view.density.image._data[..., 3].astype(float).mean()
        from cnnvis.viewer.grid import sample_style

        view.draw_samples(sample_style(labels, labels, colors, None), picked[:0], None)
        assert view.lod and view.points._n == 0
        assert faded < 0.8 * view.density.image._data[..., 3].astype(float).mean()
    finally:
        view.close()


def test_small_panel_keeps_markers(blobs):
    xy, labels = blobs
    view, _ = _panel(xy[:450], labels[:450])
    try:
        view.fit()
        assert not view.lod and not view.density.image.visible and view.points._n == 450
    finally:
        view.close()


def test_misclassified_stay_as_marks_on_top(blobs):
    xy, labels = blobs
    preds = labels.copy()
    wrong = np.arange(0, N, 600)
    preds[wrong] = (labels[wrong] + 1) % 3
    view, _ = _panel(xy, labels, preds=preds)
    try:
        view.fit()
        assert view.lod and view.points._n == len(wrong)
        view.view.camera.set_range(x=(19.0, 21.0), y=(-21.0, -19.0), margin=0)
        assert not view.lod and view.points._n == N
    finally:
        view.close()


def test_the_switch_back_waits_for_fewer_points(blobs):
    """Between 80% and 100% of LOD_POINTS in view, the panel keeps what it showed."""
    from cnnvis.viewer.density import LOD_POINTS, points_in_rect

    xy, labels = blobs
    view, _ = _panel(xy, labels)
    try:

        def look_at(r: float) -> int:
            view.view.camera.set_range(x=(20 - r, 20 + r), y=(-20 - r, -20 + r), margin=0)
            return int(np.count_nonzero(points_in_rect(xy, view._view_rect()[0])))

        lo, hi = 0.5, 30.0
        for _ in range(40):  # a view of 90% of LOD_POINTS around one blob
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if look_at(mid) < 0.9 * LOD_POINTS else (lo, mid)
        view.fit()
        assert view.lod
        assert 0.8 * LOD_POINTS < look_at(hi) <= LOD_POINTS and view.lod
        look_at(1.0)
        assert not view.lod
        look_at(hi)
        assert not view.lod
    finally:
        view.close()
