"""Fixtures the viewer's tests share."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="module")
def qapp():
    from cnnvis.viewer.app import qt_app

    return qt_app()


@pytest.fixture(scope="module")
def one_thread():
    """Small tensors on a shared machine: one torch thread (restored after the module)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def toolbox(demo_session, tmp_path):
    """The inspector's toolbox on a private copy of the demo session (its cache goes there)."""
    from cnnvis.session import load
    from cnnvis.viewer.toolbox import Toolbox

    path = tmp_path / "session"
    shutil.copytree(demo_session, path)
    return Toolbox(path, load(path), steps=24)  # fewer ascent steps than the viewer's 256
