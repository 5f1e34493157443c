"""The viewer's File > Compare window on the demo CNN untrained (A) against trained (B), under a
display (``xvfb-run -a``): it opens from the main window, its slider and Play move the
projected samples from A's places to B's, and a session on other data is refused."""

from __future__ import annotations

import numpy as np
import pytest

from comparison_sessions import other_data_session, untrained_demo_session
from qt_support import QT_MARKS, skip_without_display

pytestmark = QT_MARKS

skip_without_display()


@pytest.fixture(scope="module")
def window(qapp, demo_session, tmp_path_factory):
    """The main window on the untrained demo CNN, and its compare window with the trained one."""
    from cnnvis.session import open_session
    from cnnvis.viewer.app import ViewerWindow
    from cnnvis.viewer.compare import compare_with

    path = untrained_demo_session(tmp_path_factory.mktemp("cmp") / "untrained")
    main = ViewerWindow(open_session(path), str(path))
    main.show()
    compare = compare_with(main, str(demo_session))
    compare.resize(1400, 900)
    _settle(qapp)
    yield main, compare
    compare.close()
    main.close()


def _settle(app, rounds: int = 5) -> None:
    for _ in range(rounds):
        app.processEvents()


def _points_image(panel) -> np.ndarray:
    return np.asarray(panel.canvas.render(alpha=False))


def test_compare_is_in_the_file_menu(window):
    main, compare = window
    file_menu = main.menuBar().actions()[0].menu()
    assert any(a.text().startswith("&Compare") for a in file_menu.actions())
    assert compare.isVisible() and compare.parent() is main
    assert "untrained" in compare.windowTitle()
    # the table: the whole models, then a row per layer of the demo CNN
    table = compare.table
    cells = [
        [table.item(i, j).text() for j in range(table.columnCount())]
        for i in range(table.rowCount())
    ]
    cmp = compare.comparison
    assert cells[1][1] == f"{cmp.a.accuracy:.1%}" and cells[1][5] == f"{cmp.b.accuracy:.1%}"
    assert [row[0] for row in cells[4:]] == [ra.layer for ra, _ in cmp.rows]


def test_slider_and_play_morph_the_points(qapp, window):
    _main, compare = window
    cmp, panel = compare.comparison, compare.morph
    assert np.allclose(panel.coords, cmp.coords_a, atol=1e-6)
    before = _points_image(panel)
    compare.slider.setValue(compare.slider.maximum())  # as a user drags it to B
    _settle(qapp)
    assert compare.t == 1.0
    assert np.allclose(panel.coords, cmp.coords_b, atol=1e-6)
    after = _points_image(panel)
    assert np.mean(np.any(before != after, axis=2)) > 0.01  # the drawn points moved
    compare.slider.setValue(compare.slider.maximum() // 4)
    assert np.allclose(panel.coords, cmp.morph(0.25), atol=1e-5)
    assert "misclassified by A" in panel.status.text()
    compare.set_t(1.0)
    compare.play.setChecked(True)  # at B, Play goes back to A and stops there
    for _ in range(2000):
        if not compare.play.isChecked():
            break
        qapp.processEvents()
        compare._timer.timeout.emit()  # drive the clock without waiting on it
    assert not compare.play.isChecked() and compare.t == 0.0
    assert compare.slider.value() == 0
    assert np.allclose(panel.coords, cmp.coords_a, atol=1e-6)


def test_a_session_on_other_data_is_refused(window, tmp_path):
    from cnnvis.viewer.compare import compare_with

    main, _compare = window
    other = other_data_session(tmp_path / "reversed", "reversed")
    with pytest.raises(ValueError, match="recorded on the same data: the labels differ"):
        compare_with(main, str(other))
    with pytest.raises(ValueError, match="no session at"):
        compare_with(main, str(tmp_path / "missing"))
