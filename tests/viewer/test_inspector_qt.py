"""The toolbox in the window, on the demo session, under a display (``xvfb-run -a``): a click
on one sample opens the inspector, whose tabs compute in the worker thread and are read from
the session's cache the next time; Cancel stops a running maximisation; a confusion cell
selects exactly its samples; the details show a cluster's maximisation image."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from qt_support import QT_MARKS, skip_without_display

pytestmark = QT_MARKS

skip_without_display()


@pytest.fixture()
def window(qapp, demo_session, tmp_path):
    """The window on a private copy of the demo session (the cache is written into it)."""
    from cnnvis.viewer.app import ViewerWindow, open_session

    path = tmp_path / "session"
    shutil.copytree(demo_session, path)
    win = ViewerWindow(open_session(path), str(path))
    win.resize(1400, 850)
    win.show()
    win.toolbox.toolbox.steps = 32  # shorter ascents than the viewer's 256
    yield win
    assert win.toolbox.worker.shutdown()
    win.toolbox.inspector.close()
    win.close()


def _wait(qapp, condition, timeout: float = 120.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        assert time.perf_counter() < end, "timed out"
        qapp.processEvents()
        time.sleep(0.01)


def test_a_sample_click_opens_the_inspector_and_the_second_opening_reads_the_cache(qapp, window):
    ui = window.toolbox
    row = 17
    window.projection.select(np.array([row]), emit=True)  # what a click on one point does
    sample = int(window.controller.rec.pooled_index[row])
    insp = ui.inspector
    assert insp.isVisible() and insp.sample == sample
    page = insp.pages["gradients"]
    _wait(qapp, lambda: page.state == "done")
    assert not page.result.from_cache and len(page.result.panels) == 6
    assert f"Sample {sample}" in insp.header.text()
    insp.tabs.setCurrentIndex(list(insp.pages).index("occlusion"))  # computed when shown
    _wait(qapp, lambda: insp.pages["occlusion"].state == "done")
    assert insp.pages["adversarial"].state == "idle"  # never shown: never computed
    ui.inspect(sample)  # open it again: both tabs come from the session's cache
    _wait(qapp, lambda: insp.pages["occlusion"].state == "done")
    assert insp.pages["occlusion"].result.from_cache
    assert insp.pages["occlusion"].status.text() == "from the session's cache"
    insp.tabs.setCurrentIndex(0)
    _wait(qapp, lambda: page.state == "done")
    assert page.result.from_cache


def test_cancel_stops_a_running_maximisation(qapp, window):
    ui = window.toolbox
    ui.toolbox.steps = 1_000_000  # would run for hours
    ui.inspect(4)
    insp = ui.inspector
    page = insp.pages["maximize"]
    insp.tabs.setCurrentIndex(list(insp.pages).index("maximize"))
    _wait(qapp, lambda: page.state == "running" and page.bar.value() > 0)
    assert page.cancel_button.isVisible()
    page.cancel_button.click()
    _wait(qapp, lambda: page.state == "cancelled", timeout=30)
    assert page.job.done.wait(10) and page.result is None
    assert page.compute_button.isVisible()
    assert not list(ui.toolbox.cache().folder.glob("sample4-maximize-*"))  # nothing cached
    insp.tabs.setCurrentIndex(0)
    insp.tabs.setCurrentIndex(list(insp.pages).index("maximize"))
    assert page.state == "cancelled"  # shown again: not restarted by itself
    ui.toolbox.steps = 8
    page.compute_button.click()  # but on request
    _wait(qapp, lambda: page.state == "done")
    assert len(page.result.panels) == 5


@pytest.mark.parametrize(("true", "predicted"), [(9, 4), (3, 3), (0, 5)])
def test_a_confusion_cell_selects_exactly_its_samples(qapp, window, true, predicted):
    ui = window.toolbox
    ctl = window.controller
    ui.confusion.cells[(true, predicted)].click()
    qapp.processEvents()
    expected = np.flatnonzero((ctl.sample_labels == true) & (ctl.sample_predictions == predicted))
    np.testing.assert_array_equal(ctl.selection.samples, expected)
    np.testing.assert_array_equal(window.projection.selected, expected)
    # the demo pools every sample: the selection is the whole cell of the matrix
    assert len(expected) == ui.confusion.confusion.matrix[true, predicted]
    assert not ui.inspector.isVisible()  # selecting a cell does not open the inspector


def test_a_mistake_in_the_gallery_opens_the_inspector(qapp, window):
    ui = window.toolbox
    worst = int(ui.confusion.confusion.mistakes[0])
    ui.confusion.gallery[0].click()
    assert ui.inspector.isVisible() and ui.inspector.sample == worst
    assert "misclassified" in ui.inspector.header.text()
    _wait(qapp, lambda: ui.inspector.pages["gradients"].state == "done")


def test_a_cluster_shows_its_maximisation_beside_its_patches(qapp, window):
    details = window.details
    window.controller.select_cluster("block3.relu", 1)
    _wait(qapp, lambda: not details.maximization.pixmap().isNull())
    assert details.maximization.isVisible()
    first = details.maximization.pixmap().toImage()
    window.controller.select_neuron("block3.relu", 5)
    _wait(qapp, lambda: details.maximization.pixmap().toImage() != first)
