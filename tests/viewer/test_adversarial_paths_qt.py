"""The inspector's adversarial tab shows the paths: a second row of pictures, one projection per
recorded layer, under the before / perturbation / after pictures (needs `xvfb-run -a`)."""

from __future__ import annotations

import shutil
import time

from qt_support import QT_MARKS, skip_without_display

pytestmark = QT_MARKS

skip_without_display()


def test_the_adversarial_tab_shows_a_projection_per_layer(demo_session, tmp_path):
    from PySide6 import QtWidgets

    from cnnvis.viewer.app import ViewerWindow, open_session, qt_app

    app = qt_app()
    path = tmp_path / "session"
    shutil.copytree(demo_session, path)
    win = ViewerWindow(open_session(path), str(path))
    win.show()
    try:
        ui = win.toolbox
        ui.inspect(3)
        insp = ui.inspector
        insp.tabs.setCurrentIndex(list(insp.pages).index("adversarial"))
        page = insp.pages["adversarial"]
        end = time.perf_counter() + 300
        while page.state != "done":
            assert time.perf_counter() < end, "timed out"
            app.processEvents()
            time.sleep(0.01)
        layers = list(win.controller.rec.layer_names)
        grid = page.view.grid
        second_row = [grid.itemAtPosition(2, c) for c in range(len(layers))]
        assert all(isinstance(i.widget(), QtWidgets.QLabel) for i in second_row)
        assert not second_row[0].widget().pixmap().isNull()
        captions = [grid.itemAtPosition(3, c).widget().text() for c in range(len(layers))]
        assert [c.split("\n")[0] for c in captions] == layers
        assert grid.itemAtPosition(0, 3) is None  # the first row keeps its three pictures
    finally:
        assert win.toolbox.worker.shutdown()
        win.toolbox.inspector.close()
        win.close()
