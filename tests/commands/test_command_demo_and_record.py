"""``python -m cnnvis demo`` and ``record``: where the demo goes, a place it cannot go, and a demo
session given as ``--model``."""

from __future__ import annotations

from pathlib import Path

from cnnvis import session
from cnnvis.cli import main
from cnnvis.commands.demo import default_demo_dir
from cnnvis.commands.record import resolve_model_spec


def test_default_demo_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNVIS_CACHE", str(tmp_path / "c"))
    assert default_demo_dir() == tmp_path / "c" / "demo"
    monkeypatch.delenv("CNNVIS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_demo_dir() == tmp_path / "x" / "cnnvis" / "demo"


def test_demo_refuses_a_place_it_cannot_write_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker / "s"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cnnvis demo:") and str(blocker) in err


def test_a_demo_session_as_model_is_its_final_checkpoint(demo_session, tmp_path):
    checkpoint = resolve_model_spec(str(demo_session))
    rec = session.load(demo_session)
    assert Path(checkpoint) == session.read_file(demo_session, rec.meta["checkpoint"])
    assert resolve_model_spec("resnet18") == "resnet18"
    assert resolve_model_spec(str(tmp_path)) == str(tmp_path)  # not a session: as given
