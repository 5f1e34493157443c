"""What every Qt test module shares: its marks, the skip without a display, and letting Qt run."""

from __future__ import annotations

import os
import time

import pytest

#: pytestmark of a Qt test module; vispy's Qt backend calls QMouseEvent.pos(), deprecated in Qt 6.
QT_MARKS = [
    pytest.mark.qt,
    pytest.mark.filterwarnings("ignore:Function.*QMouseEvent.pos:DeprecationWarning"),
]


def skip_without_display() -> None:
    """Skip the calling module unless there is a display (Xvfb in CI)."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        pytest.skip(
            "the Qt tests need a display: run them under `xvfb-run -a`", allow_module_level=True
        )


def settle(app=None, seconds: float = 0.3) -> None:
    """Let Qt process events for ``seconds`` (timers, repaints, queued signals)."""
    from PySide6 import QtWidgets

    app = app or QtWidgets.QApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)
