"""Fixtures shared by the whole suite.

``demo_session`` (session scope)
    Path of a demo session built once per test run by
    :func:`cnnvis.commands.demo.make_demo_session`: DemoCNN trained on the digits (12 epochs, seed 0),
    recorded on the 450 held-out digits at layers ``block1.relu, block2.relu, block3.relu,
    head.relu, head.fc2``, with 6 training snapshots (epochs 0, 1, 2, 4, 8, 12) and their
    checkpoints. Building it takes 10-20 s on two cores, the first time a test asks for it.
    Its default analysis and first projection are saved into it when it is built, as the viewer
    does on a first opening, so opening it later only reads it whatever test comes first. Treat it
    as read-only: copy it (``shutil.copytree``) before writing parts into it.

vispy allows one application backend per process. Under a display (``xvfb-run``) the suite
selects PySide6 up front, so the Qt viewer tests and the in-process offscreen renders share it;
``tests/export/test_png_cli.py`` covers the EGL path in a child process without a display.
"""

from __future__ import annotations

import os
import signal

import pytest


def pytest_configure(config):
    # The Ctrl-C tests raise KeyboardInterrupt through Python's SIGINT handler, which Python does
    # not install when it starts with SIGINT ignored, as a shell starts its background jobs.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.environ.get("DISPLAY"):
        import vispy

        vispy.use(app="pyside6")


@pytest.fixture(scope="session")
def demo_session(tmp_path_factory):
    from cnnvis.commands.demo import make_demo_session
    from cnnvis.viewer.app import prepare_session

    path = make_demo_session(tmp_path_factory.mktemp("demo") / "session", progress=False)
    prepare_session(path)
    return path
