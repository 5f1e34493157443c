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
