"""The Qt viewer on the real demo session, under a display (``xvfb-run -a``).

The window is driven programmatically through its controller (a class selection, a sample
selection, a cluster merge, undo), and its screenshots must change where the overview is drawn.
The command line is run as a user would: a missing or corrupt session gives a clear message and a
non-zero exit, never a traceback; ``--screenshot`` writes a PNG of the window.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from child_env import child_env
from qt_support import QT_MARKS, skip_without_display

pytestmark = QT_MARKS

skip_without_display()

ENV = child_env()


@pytest.fixture(scope="module")
def prepared_demo(demo_session, tmp_path_factory):
    """The demo session as `python -m cnnvis viewer` leaves it after creating it: analysed, with
    its first projection saved (what the first opening of a session computes)."""
    from cnnvis.viewer.app import prepare_session

    dst = tmp_path_factory.mktemp("viewer") / "demo"
    shutil.copytree(demo_session, dst)
    prepare_session(dst)
    return dst


@pytest.fixture()
def session_copy(prepared_demo, tmp_path):
    """A private copy of the prepared demo session (edits are saved into it)."""
    dst = tmp_path / "session"
    shutil.copytree(prepared_demo, dst)
    return dst


def _settle(app, seconds: float = 0.3) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.02)


def _overview_pixels(win) -> np.ndarray:
    """The overview's pixels, cut out of a screenshot of the whole window."""
    from cnnvis.viewer.app import image_to_array

    img = image_to_array(win.screenshot())
    w = win.overview.native
    top_left = w.mapTo(win, w.rect().topLeft())
    x, y = top_left.x(), top_left.y()
    return img[y : y + w.height(), x : x + w.width(), :3].astype(np.int16)


def _changed(a: np.ndarray, b: np.ndarray) -> int:
    """Number of pixels that differ by more than a little in any channel."""
    return int(np.count_nonzero(np.abs(a - b).max(axis=2) > 24))


@pytest.mark.slow
def test_viewer_opens_demo_selects_and_edits(qapp, session_copy):
    from cnnvis.viewer.app import ViewerWindow, open_session

    analysis = open_session(session_copy)
    win = ViewerWindow(analysis, str(session_copy))
    win.resize(1280, 800)
    win.show()
    _settle(qapp)
    ctl = win.controller
    assert win.windowTitle().startswith("cnnvis")
    assert session_copy.name in win.windowTitle()
    assert len(win.projection.coords) == len(ctl.rec.pooled_index)
    base = _overview_pixels(win)
    assert base.std() > 5, "the overview is blank"

    # P3: a class lights up the neurons that respond strongly to it
    c = 3
    ctl.select_class(c)
    _settle(qapp)
    lit = ctl.selection.neurons
    assert ctl.selection.n_highlighted > 0
    assert ctl.scene.highlight.neurons == {(k, int(v)) for k, vs in lit.items() for v in vs}
    for layer, chans in lit.items():
        m = ctl.rec.class_means(layer)
        # every lit neuron responds more to class c than to the average class
        assert np.all(m[chans, c] > m[chans].mean(axis=1))
    after_class = _overview_pixels(win)
    assert _changed(base, after_class) > 50

    # P3: samples selected in the projection light up the neurons that respond most to them; at
    # the logits, the sevens light up at least the logit of class 7
    rows = np.flatnonzero(ctl.sample_labels == 7)
    win.projection.select(rows, emit=True)
    _settle(qapp)
    assert np.array_equal(ctl.selection.samples, rows)
    assert ctl.selection.class_index == -1
    assert ctl.selection.n_highlighted > 0
    layer = ctl.layers[-1]
    assert layer == "head.fc2"
    chans = ctl.selection.neurons.get(layer, np.zeros(0, int))
    assert 7 in chans
    x = ctl.rec.pooled(layer)
    assert np.all(x[rows][:, chans].mean(0) > x[:, chans].mean(0))

    # clicking a cluster shows its top samples in the projection and its details
    layer = next(name for name in ctl.layers if ctl.n_clusters(name) >= 2)
    ctl.clear_selection()
    ctl.select_cluster(layer, 0)
    _settle(qapp)
    assert ctl.projection_layer == layer
    assert len(ctl.selection.top_samples) > 0
    assert np.array_equal(win.projection._emphasis, np.sort(ctl.selection.top_samples))
    info = ctl.details()
    assert info["title"].startswith(layer)
    assert len(info["class_values"]) == len(ctl.class_names)
    ctl.clear_selection()
    _settle(qapp)
    before_edit = _overview_pixels(win)
    labels_before = ctl.clusters(layer).copy()
    k = ctl.n_clusters(layer)

    # C7: merge two clusters: the scene and the picture follow, saved with the session (how fast:
    # benchmarks/edits.py)
    ctl.merge_clusters(layer, [0, 1])
    qapp.processEvents()
    assert ctl.n_clusters(layer) == k - 1
    merged = ctl.clusters(layer)
    assert np.all(merged[np.isin(labels_before, [0, 1])] == 0)
    assert sum(1 for key in ctl.scene.cluster_rects if key[0] == layer) == k - 1
    _settle(qapp)
    after_edit = _overview_pixels(win)
    assert _changed(before_edit, after_edit) > 50
    reopened = open_session(session_copy)
    assert np.array_equal(np.asarray(reopened.labels[layer]), merged)

    # undo brings the clusters and the picture back; redo repeats the edit
    assert ctl.undo()
    _settle(qapp)
    assert np.array_equal(ctl.clusters(layer), labels_before)
    assert _changed(before_edit, _overview_pixels(win)) < _changed(before_edit, after_edit)
    assert ctl.redo()
    assert ctl.n_clusters(layer) == k - 1

    # a neuron moved to another cluster
    ctl.undo()
    n = int(np.flatnonzero(ctl.clusters(layer) == 0)[0])
    ctl.move_neuron(layer, n, 1)
    assert ctl.clusters(layer)[n] == ctl.clusters(layer)[np.flatnonzero(labels_before == 1)[0]]

    # facet switch rebuilds the overview
    pix_features = _overview_pixels(win)
    win.act_matrix.trigger()
    _settle(qapp)
    assert ctl.facet == "matrix"
    assert _changed(pix_features, _overview_pixels(win)) > 50
    win.close()


@pytest.mark.slow
def test_mouse_click_drag_and_context_menu_on_the_overview(qapp, session_copy):
    """Real Qt mouse events on the overview: click selects, a neuron dragged onto another cluster
    moves there, and the context menu's actions edit the clusters."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from cnnvis.viewer.app import ViewerWindow, open_session

    win = ViewerWindow(open_session(session_copy), str(session_copy))
    win.resize(1280, 800)
    win.show()
    _settle(qapp)
    ctl = win.controller
    layer = next(name for name in reversed(ctl.layers) if ctl.n_clusters(name) >= 2)
    left, no_mod = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier.NoModifier
    native = win.overview.native

    def centre_of(box):
        x, y, w, h = box
        cx, cy = win.canvas_pos(x + w / 2, y + h / 2)
        return QtCore.QPoint(round(cx), round(cy))

    # a click on a neuron selects it (and its cluster); the details panel shows it
    lab = ctl.clusters(layer)
    n = int(np.flatnonzero(lab == 0)[0])
    p_neuron = centre_of(ctl.scene.neuron_boxes[(layer, n)])
    hit = win._hit((p_neuron.x(), p_neuron.y()))
    assert (hit.kind, hit.layer, hit.neuron, hit.cluster) == ("neuron", layer, n, 0)
    QTest.mouseClick(native, left, no_mod, p_neuron)
    _settle(qapp, 0.1)
    assert ctl.selection.neuron == (layer, n)
    assert ctl.selection.cluster == (layer, 0)
    assert win.details.title.text() == f"<b>{layer} · neuron {n}</b>"

    # dragging the neuron onto cluster 1 moves it there (and does not pan the view)
    target = centre_of(ctl.scene.cluster_rects[(layer, 1)])
    members_1 = set(np.flatnonzero(lab == 1).tolist())
    QTest.mousePress(native, left, no_mod, p_neuron)
    for i in range(1, 7):
        step = p_neuron + (target - p_neuron) * (i / 6)
        QTest.mouseMove(native, step)
        qapp.processEvents()
    QTest.mouseRelease(native, left, no_mod, target)
    _settle(qapp, 0.1)
    after = ctl.clusters(layer)
    assert ctl.analysis.history[-1]["op"] == "move"
    moved_to = int(after[n])
    assert all(after[m] == moved_to for m in members_1)

    # the context menu of a cluster offers the edits; "Split in two" splits it
    k = ctl.n_clusters(layer)
    big = max(range(k), key=lambda c: len(ctl.members(layer, c)))
    p_big = centre_of(ctl.scene.cluster_rects[(layer, big)])
    menu = win.overview_menu(win._hit((p_big.x(), p_big.y())))
    texts = [a.text() for a in menu.actions()]
    assert "Split in two" in texts and "Merge with" in texts
    next(a for a in menu.actions() if a.text() == "Split in two").trigger()
    _settle(qapp, 0.1)
    assert ctl.n_clusters(layer) == k + 1
    assert ctl.analysis.history[-1]["op"] == "split"

    # "Drill into cluster" splits the widest cluster by the default rule (its neurons only, more
    # clusters); the Edit menu's undo brings the layer back
    before = ctl.clusters(layer).copy()
    k = ctl.n_clusters(layer)
    big = int(np.bincount(before).argmax())
    p_big = centre_of(ctl.scene.cluster_rects[(layer, big)])
    menu = win.overview_menu(win._hit((p_big.x(), p_big.y())))
    next(a for a in menu.actions() if a.text() == "Drill into cluster").trigger()
    _settle(qapp, 0.1)
    drilled = ctl.clusters(layer).copy()
    assert ctl.n_clusters(layer) > k and ctl.analysis.history[-1]["k"] is None
    assert drilled.size == before.size
    assert np.array_equal(drilled[before != big], before[before != big])
    assert np.all(before[drilled >= k] == big)
    win.act_undo.trigger()
    _settle(qapp, 0.1)
    assert np.array_equal(ctl.clusters(layer), before)
    # the Edit menu's "Drill into selected cluster" (key D) acts on the selected cluster
    ctl.select_cluster(layer, big)
    _settle(qapp, 0.1)
    assert win.act_drill.isEnabled()
    win.act_drill.trigger()
    _settle(qapp, 0.1)
    assert np.array_equal(ctl.clusters(layer), drilled)

    # hovering a projected sample shows its label and prediction
    proj = win.projection
    i = int(np.flatnonzero(ctl.sample_labels != ctl.sample_predictions)[0])
    tr = proj.view.scene.transform
    px, py = np.asarray(tr.map(np.array([*proj.coords[i], 0.0, 1.0])))[:2]
    QTest.mouseMove(proj.canvas.native, QtCore.QPoint(round(px), round(py)))
    _settle(qapp, 0.1)
    assert proj.card.isVisible()
    text = proj.hovered_card_text()
    hovered = int(text.split("sample ")[1].split()[0])
    assert f"label: ■ {ctl.class_names[ctl.sample_labels[hovered]]}" in text
    assert f"predicted: {ctl.class_names[ctl.sample_predictions[hovered]]}" in text

    # a box dragged around one class's samples (real mouse events, Box tool) selects them, and
    # the neurons responding most to them light up
    from cnnvis.scene.model import points_in_polygon

    next(b for b in proj._tools.buttons() if b.text() == "Box").setChecked(True)
    cls = int(ctl.sample_labels[0])
    pts = proj.coords[ctl.sample_labels == cls]
    pad = 0.01 * np.ptp(proj.coords, axis=0)
    corners = []
    for corner in (pts.min(0) - pad, pts.max(0) + pad):
        cx, cy = np.asarray(tr.map(np.array([*corner, 0.0, 1.0])))[:2]
        corners.append(QtCore.QPoint(round(cx), round(cy)))
    QTest.mousePress(proj.canvas.native, left, no_mod, corners[0])
    QTest.mouseMove(proj.canvas.native, corners[1])
    QTest.mouseRelease(proj.canvas.native, left, no_mod, corners[1])
    _settle(qapp, 0.1)
    sel = ctl.selection.samples
    assert set(np.flatnonzero(ctl.sample_labels == cls)) <= set(sel.tolist())
    box = np.array([pts.min(0) - pad, pts.max(0) + pad])
    inside = np.all((proj.coords >= box.min(0)) & (proj.coords <= box.max(0)), axis=1)
    assert abs(len(sel) - int(inside.sum())) <= 2  # pixel rounding at the box's edges
    assert ctl.selection.n_highlighted > 0
    # the lasso's polygon test, on a concave polygon
    u = np.array([[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], [0, 3]], float)
    probe = np.array([[0.5, 2.0], [1.5, 2.0], [2.5, 2.0], [1.5, 0.5], [4.0, 1.0]])
    assert points_in_polygon(probe, u).tolist() == [True, False, True, True, False]

    # another layer in the projection's box: its t-SNE is computed and cached in the session
    other = ctl.layers[1]
    proj.layer_box.setCurrentText(other)
    _settle(qapp, 0.1)
    assert ctl.projection_layer == other
    assert proj.coords.shape == (len(ctl.rec.pooled_index), 2)
    from cnnvis.analysis.core import PROJECTIONS_FILE

    with np.load(session_copy / PROJECTIONS_FILE) as saved:
        assert other in saved.files
        assert np.allclose(saved[other], proj.coords)
    win.close()


def _cli(*args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "cnnvis", "viewer", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=timeout,
    )


def _overview_state(ctl):
    ov = ctl.scene.panels["overview"]
    return ov.rects.xywh.copy(), list(ov.rects.ids), ov.lines.points.copy(), list(ov.labels.text)


def test_click_on_a_group_band_closes_and_opens_it_animated(qapp, prepared_demo):
    """A click on a layer group's band closes it (one row, animated through in-between frames);
    a click on the closed row opens it again: the same scene as before. The View menu's
    "Expand all" and "Collapse to default" set the state of every group."""
    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from cnnvis.viewer.app import ViewerWindow, open_session

    win = ViewerWindow(open_session(prepared_demo), None)
    win.resize(1280, 800)
    win.show()
    _settle(qapp)
    ctl = win.controller
    before = _overview_state(ctl)
    group = ctl.group_names[0]
    assert group in ctl.scene.meta["expanded"]  # the demo opens every group by default

    def click_band():
        ov = ctl.scene.panels["overview"]
        k = ov.labels.ids.index(("band", group))  # its title (the frame's or the row's)
        x, y = ov.labels.pos[k]
        dx = 0.5 if ov.labels.anchor[k][1] == "top" else -0.5
        px, py = win.canvas_pos(x, y)
        px, py = px + 8.0, py + dx * ov.labels.size[k]  # a few pixels into the text
        assert win._hit((px, py)).group == group
        QTest.mouseClick(
            win.overview.native, QtCore.Qt.MouseButton.LeftButton,
            QtCore.Qt.KeyboardModifier.NoModifier, QtCore.QPoint(round(px), round(py)),
        )  # fmt: skip
        assert ctl.last_change == "expand" and win.animation.running
        end = time.perf_counter() + 10.0  # 0.25 s of animation, however slow the frames
        while win.animation.running and time.perf_counter() < end:
            _settle(qapp, 0.05)
        assert not win.animation.running and win.animation.frames >= 2
        assert win.overview.model is ctl.scene

    click_band()
    assert group not in ctl.scene.meta["expanded"]
    assert len(ctl.scene.cluster_rects) < len(before[1])
    click_band()
    after = _overview_state(ctl)
    assert np.array_equal(before[0], after[0]) and before[1] == after[1]
    assert np.array_equal(before[2], after[2]) and before[3] == after[3]

    win.act_collapse.trigger()
    win.animation.finish()
    assert ctl.expanded is None
    win.act_expand_all.trigger()
    win.animation.finish()
    assert set(ctl.scene.meta["expanded"]) == set(ctl.group_names)
    win.close()


def test_missing_session_gives_a_clear_message(tmp_path):
    r = _cli(str(tmp_path / "nowhere"))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "nowhere" in r.stderr and "does not exist" in r.stderr


def test_corrupt_session_gives_a_clear_message(prepared_demo, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(prepared_demo, bad)
    (bad / "manifest.json").write_text("{ this is not json", encoding="utf-8")
    r = _cli(str(bad))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "cannot open the session" in r.stderr

    not_a_session = tmp_path / "empty"
    not_a_session.mkdir()
    r = _cli(str(not_a_session))
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "cannot open the session" in r.stderr


def test_missing_session_in_the_window_is_a_dialog_not_a_crash(qapp, tmp_path, monkeypatch):
    from PySide6 import QtWidgets

    from cnnvis.viewer.app import ViewerWindow

    shown = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", lambda *a, **k: shown.append(a[2]) or 0)
    win = ViewerWindow()
    assert win.open_path(str(tmp_path / "nowhere")) is False
    assert shown and "does not exist" in shown[0]
    assert win.controller is None
    win.close()


@pytest.mark.slow
def test_screenshot_cli_writes_a_png(prepared_demo, tmp_path):
    from PySide6 import QtGui

    out = tmp_path / "shot.png"
    session = tmp_path / "s"
    shutil.copytree(prepared_demo, session)
    r = _cli(str(session), "--screenshot", str(out), "--size", "1280x800")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    assert f"wrote {out}" in r.stdout
    img = QtGui.QImage(str(out))
    assert (img.width(), img.height()) == (1280, 800)
    from cnnvis.viewer.app import image_to_array

    a = image_to_array(img)[..., :3].astype(np.int16)
    assert a.std() > 10  # not a blank window
    assert len(np.unique(a.reshape(-1, 3) // 16, axis=0)) > 20  # panels, colours, patches
    json.dumps({"ok": True})
