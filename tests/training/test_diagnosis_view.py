"""Diagnosis mode: the pure view (scene/diagnosis.py) of a tracked run, and its Qt dock under a
display."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from training_helpers import demo_cnn, tracked_run

from cnnvis.scene.diagnosis import STATISTICS, sparkline, training_view

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def dead_run():
    """The demo CNN at a learning rate that kills its ReLUs, recorded with its snapshots."""
    return tracked_run(demo_cnn(), lr=0.5, epochs=3).recording()


def test_view_follows_the_chosen_statistic(dead_run):
    view = training_view(dead_run, "dead")
    assert view.layers == ["block1.relu", "block2.relu", "block3.relu", "head.relu", "head.fc2"]
    assert view.values.shape == (5, 4) and list(view.epochs) == [0, 1, 2, 3]
    expected = [s["stats"]["head.relu"]["dead"] for s in dead_run.snapshots]
    np.testing.assert_array_equal(view.values[3], expected)
    # the deadest layer at the last snapshot gets the far end of the colormap, the least the near
    last = view.values[:, -1]
    assert not np.array_equal(view.colors[np.argmax(last)], view.colors[np.argmin(last)])
    assert "dead_units" in {f.kind for f in view.findings}
    assert set(view.curves) >= {"loss", "probe_loss", "test_accuracy"}
    assert math.isnan(view.curves["loss"][0])  # no training loss before the first epoch
    grads = training_view(dead_run, "grad_norm")
    assert grads.layers[0] == "block1.conv"  # conv/linear modules carry the gradients
    for key, _label in STATISTICS:
        assert len(training_view(dead_run, key).sparklines) == len(
            training_view(dead_run, key).layers
        )
    with pytest.raises(ValueError, match="statistic"):
        training_view(dead_run, "nope")


def test_sparkline_spans_the_unit_box():
    pts = sparkline(np.array([2.0, np.nan, 4.0, 3.0]), np.array([0, 1, 2, 4]))
    np.testing.assert_allclose(pts, [[0, 0], [0.5, 1], [1, 0.5]])
    assert sparkline(np.array([np.nan]), np.array([0])).shape == (0, 2)
    np.testing.assert_allclose(sparkline(np.array([1.0, 1.0]), np.array([0, 1]))[:, 1], 0.5)


@pytest.mark.qt
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display (xvfb-run -a)")
def test_dock_shows_the_findings_and_follows_the_choice(dead_run):
    from cnnvis.analysis import analyze
    from cnnvis.viewer.app import ViewerWindow, qt_app
    from cnnvis.viewer.diagnosis import toggle_diagnosis

    app = qt_app()
    window = ViewerWindow(analyze(dead_run), None)
    window.resize(1600, 900)
    window.show()
    dock = toggle_diagnosis(window)
    panel = dock.widget()
    app.processEvents()
    assert dock.isVisible()
    texts = [panel.findings.item(i).text() for i in range(panel.findings.count())]
    assert any(t.startswith("dead_units (head.relu") for t in texts)
    panel.choice.setCurrentIndex([k for k, _ in STATISTICS].index("grad_norm"))
    assert panel.sparks.view.statistic == "grad_norm"
    before = window.screenshot()
    toggle_diagnosis(window)
    app.processEvents()
    assert not dock.isVisible()
    assert window.screenshot() != before
    window.close()


def _tinted(scene, view):
    """Overview rect index -> the row of ``view`` of every unit drawing one of its layers."""
    units = scene.meta["units"]
    rows = {name: i for i, name in enumerate(view.layers)}
    ids = scene.panels["overview"].rects.ids
    return {
        k: rows[units[rid[1]]]
        for k, rid in enumerate(ids)
        if rid[0] in ("band", "layer") and units.get(rid[1]) in rows
    }


def test_overlay_tints_the_layers_and_leaves_the_scene_alone(dead_run):
    from cnnvis.analysis import analyze
    from cnnvis.scene import build_scene
    from cnnvis.scene.diagnosis import cluster_dead_fraction, diagnosis_overlay

    analysis = analyze(dead_run)
    scene = build_scene(analysis, projection=False, legend=False)
    plain = scene.panels["overview"]
    before = (plain.rects.fill.copy(), len(plain.lines), len(plain.labels), plain.bounds)
    view = training_view(analysis, "dead")
    dead = {
        layer: cluster_dead_fraction(analysis, layer, analysis.labels[layer])
        for layer in analysis.layers
    }
    over = diagnosis_overlay(scene, view, dead)
    ov = over.panels["overview"]
    tinted = _tinted(scene, view)
    assert {view.layers[i] for i in tinted.values()} == set(analysis.layers) & set(view.layers)
    for k, i in tinted.items():  # the dock's colour of the layer, exactly
        np.testing.assert_array_equal(ov.rects.fill[k], (view.colors[i] / 255).astype(np.float32))
    # one sparkline per tinted unit, right of every row, inside the wider bounds
    assert len(ov.lines) == len(plain.lines) + len(tinted)
    spark_x = ov.lines.points[plain.lines.offsets[-1] :, 0]
    assert spark_x.min() > plain.bounds[2] and spark_x.max() < ov.bounds[2]
    assert "dead units" in ov.labels.text and over.meta["diagnosis"] == "dead"
    assert over.highlight is scene.highlight  # the controller's selection still shows
    # head.relu is all dead at the end, block1.relu not at all: their clusters say so
    assert np.all(dead["head.relu"] == 1.0) and np.all(dead["block1.relu"] == 0.0)
    # the plain scene is untouched
    np.testing.assert_array_equal(plain.rects.fill, before[0])
    assert (len(plain.lines), len(plain.labels), plain.bounds) == before[1:]
    assert scene.panels["overview"] is plain and "diagnosis" not in scene.meta


def test_mlp_sessions_open_with_the_matrix_facet():
    import torch
    from torch import nn
    from training_helpers import TEST

    from cnnvis.analysis import analyze
    from cnnvis.tracking import Tracker
    from cnnvis.viewer.controller import Controller

    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    tracker = Tracker(mlp, (TEST.images.flatten(1), TEST.targets))
    tracker.snapshot(epoch=0)
    rec = tracker.recording()
    assert len(rec.input_shape) == 1
    assert Controller(analyze(rec)).facet == "matrix"


@pytest.mark.qt
@pytest.mark.skipif(not os.environ.get("DISPLAY"), reason="needs a display (xvfb-run -a)")
def test_overview_shows_diagnosis_mode_while_it_is_on(dead_run):
    from cnnvis.analysis import analyze
    from cnnvis.viewer.app import ViewerWindow, qt_app
    from cnnvis.viewer.diagnosis import toggle_diagnosis

    app = qt_app()
    window = ViewerWindow(analyze(dead_run), None)
    window.resize(1600, 900)
    window.show()
    ctl = window.controller
    assert ctl.facet == "features"  # an image model keeps the feature facet
    plain = ctl.scene
    panel = toggle_diagnosis(window).widget()
    app.processEvents()
    shown = window.overview.model
    assert shown is not plain and shown.meta["diagnosis"] == "dead"
    for k, i in _tinted(plain, panel.view).items():
        want = (panel.view.colors[i] / 255).astype(np.float32)
        np.testing.assert_array_equal(shown.panels["overview"].rects.fill[k], want)
    panel.choice.setCurrentIndex([k for k, _ in STATISTICS].index("act_std"))
    app.processEvents()
    assert window.overview.model.meta["diagnosis"] == "act_std"
    ctl.set_facet("matrix")  # a rebuilt scene keeps the mode
    app.processEvents()
    assert window.overview.model.meta["diagnosis"] == "act_std"
    assert window.overview.model.panels["overview"] is not ctl.scene.panels["overview"]
    toggle_diagnosis(window)
    app.processEvents()
    assert window.overview.model is ctl.scene  # off: exactly the controller's plain scene
    window.close()
