"""``python -m cnnvis viewer``: the window size, the missing display, and the demo session the
command prepares when no session is given (no window is opened here)."""

from __future__ import annotations

import argparse
import shutil

import pytest

from cnnvis.commands import viewer


def test_window_size():
    assert viewer.window_size("1280x800") == (1280, 800)
    assert viewer.window_size(" 1920 × 1080 ") == (1920, 1080)
    for bad in ("1280", "axb", "100x800", "9000x800"):
        with pytest.raises(argparse.ArgumentTypeError, match="size"):
            viewer.window_size(bad)


def test_no_display_is_a_clear_message(monkeypatch, capsys):
    monkeypatch.setattr(viewer.sys, "platform", "linux")
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    args = argparse.Namespace(session=None, screenshot=None, size=None, no_progress=True)
    assert viewer.run(args) == 2
    assert "no display found" in capsys.readouterr().err


def test_ensure_demo_session_prepares_an_existing_demo(demo_session, tmp_path, monkeypatch):
    """A demo session in the cache is not trained again: it is analysed and its first projection
    saved, so that the window only reads files."""
    from cnnvis.analysis.core import ANALYSIS_FILE, PROJECTIONS_FILE
    from cnnvis.commands.demo import default_demo_dir

    monkeypatch.setenv("CNNVIS_CACHE", str(tmp_path))
    shutil.copytree(demo_session, default_demo_dir())
    before = (default_demo_dir() / "recording.npz").stat().st_mtime_ns
    path = viewer.ensure_demo_session(progress=False)
    assert path == str(tmp_path / "demo")
    assert (tmp_path / "demo" / ANALYSIS_FILE).is_file()
    assert (tmp_path / "demo" / PROJECTIONS_FILE).is_file()
    assert (default_demo_dir() / "recording.npz").stat().st_mtime_ns == before
