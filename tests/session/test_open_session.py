"""open_session: one way from a folder to an Analysis (load, analyse once, cache); record --out."""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnvis
from cnnvis.analysis.core import has_analysis
from cnnvis.data.digits import DigitsDataset
from cnnvis.models.demo import DemoCNN
from cnnvis.record import record
from cnnvis.session import SessionError, open_session

PACKAGE = Path(cnnvis.__file__).parent


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    rec = record(DemoCNN().eval(), DigitsDataset("test"), max_samples=120, top_k=3,
                 patch_size=8, progress=False)  # fmt: skip
    return rec, rec.save(tmp_path_factory.mktemp("open") / "session")


def test_first_opening_analyses_and_saves_later_ones_read(saved, tmp_path):
    rec, base = saved
    s = tmp_path / "s"
    shutil.copytree(base, s)
    told = []
    first = open_session(s, announce=told.append)
    assert len(told) == 1 and "first opening" in told[0]
    assert has_analysis(s)
    np.testing.assert_array_equal(first.recording.labels, rec.labels)
    again = open_session(str(s), announce=told.append)
    assert len(told) == 1  # read back, not analysed again
    assert again is not first  # each caller gets its own analysis to edit
    for layer in first.layers:
        np.testing.assert_array_equal(again.labels[layer], first.labels[layer])
    # the recording is cached while the session is unchanged on disk ...
    assert again.recording is open_session(s).recording
    # ... and read again once it changes
    rec.save(s)
    assert open_session(s).recording is not again.recording


def test_a_read_only_session_opens_all_the_same(saved, tmp_path):
    _rec, base = saved
    s = tmp_path / "s"
    shutil.copytree(base, s)
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    s.chmod(0o555)
    try:
        assert open_session(s).layers
        assert not has_analysis(s)
    finally:
        s.chmod(0o755)


def test_what_is_not_a_session(tmp_path):
    with pytest.raises(SessionError, match="does not exist"):
        open_session(tmp_path / "nowhere")
    (tmp_path / "f").write_text("x")
    with pytest.raises(SessionError, match="is a file"):
        open_session(tmp_path / "f")
    with pytest.raises(SessionError, match="no manifest.json"):
        open_session(tmp_path)


def test_record_refuses_an_existing_session_without_overwrite(saved, tmp_path, capsys):
    from cnnvis.cli import main

    out = tmp_path / "s"
    args = ["record", "--model", "demo", "--data", "digits", "--out", str(out), "--quiet",
            "--max-samples", "40", "--top-k", "2", "--patch-size", "6"]  # fmt: skip
    with pytest.warns(UserWarning, match="random weights"):
        assert main(args) == 0
    before = (out / "manifest.json").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err
    assert (out / "manifest.json").read_bytes() == before  # untouched
    with pytest.warns(UserWarning, match="random weights"):
        assert main([*args, "--overwrite"]) == 0
    assert cnnvis.load(out).n_samples == 40


def _cnnvis_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n == "cnnvis" or n.startswith("cnnvis.")}


def test_io_is_the_ground_floor_and_record_does_not_reach_for_sessions():
    assert _cnnvis_imports(PACKAGE / "io.py") == set()
    for path in (PACKAGE / "record").glob("*.py"):
        reached = {
            n for n in _cnnvis_imports(path) if n.split(".")[1:2] in (["session"], ["analysis"])
        }
        assert not reached, (path.name, reached)
