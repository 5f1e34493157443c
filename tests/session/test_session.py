"""Sessions: round trip, atomic writes, parts, and the errors for damaged or future sessions."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
import torch
from torch import nn

import cnnvis
from child_env import child_env
from cnnvis import session
from cnnvis.data.digits import DigitsDataset
from cnnvis.record import record
from cnnvis.record.recording import LayerPatches
from cnnvis.session import SessionError


@pytest.fixture(scope="module")
def rec():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True),
        nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(8 * 16, 10),
    ).eval()  # fmt: skip
    r = record(model, DigitsDataset("test"), progress=False, top_k=4, patch_size=6,
               max_samples=200, max_pooled=50)  # fmt: skip
    r.snapshots = [
        {
            "epoch": 0,
            "accuracy": 0.1,
            "pooled": {n: np.ones_like(lr.pooled) for n, lr in r.layers.items()},
        },  # fmt: skip
        {"epoch": 3, "accuracy": 0.5, "pooled": {n: lr.pooled * 2 for n, lr in r.layers.items()}},
    ]
    r.meta["data"] = "digits:test"
    return r


@pytest.fixture(scope="module")
def lazy_rec():
    """Patches of 16x16 from 8x8 digits: the images take fewer bytes, so they are kept."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 8, 3, padding=1), nn.Flatten(),
                          nn.Linear(8 * 16, 10)).eval()  # fmt: skip
    return record(model, DigitsDataset("test"), progress=False, top_k=4, patch_size=16,
                  max_samples=200, max_pooled=50)  # fmt: skip


def assert_same(a, b):
    for field in ("model_name", "class_names", "input_shape", "meta"):
        assert getattr(a, field) == getattr(b, field), field
    for field in ("labels", "predictions", "confidences", "pooled_index", "pooled_images"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.dtype == y.dtype and x.shape == y.shape, field
        np.testing.assert_array_equal(x, y, err_msg=field)
    assert list(a.layers) == list(b.layers)
    for name in a.layers:
        la, lb = a.layers[name], b.layers[name]
        assert la.name == lb.name and la.op == lb.op
        for f in ("class_means", "pooled", "top_values", "top_samples", "top_boxes",
                  "top_patches"):  # fmt: skip
            x, y = getattr(la, f), getattr(lb, f)
            assert x.dtype == y.dtype, (name, f)
            np.testing.assert_array_equal(x, y, err_msg=f"{name}.{f}")
    assert list(a.weights) == list(b.weights)
    for m in a.weights:
        assert list(a.weights[m]) == list(b.weights[m])
        for p in a.weights[m]:
            np.testing.assert_array_equal(a.weights[m][p], b.weights[m][p])
    assert len(a.snapshots) == len(b.snapshots)
    for sa, sb in zip(a.snapshots, b.snapshots):
        assert {k: v for k, v in sa.items() if k != "pooled"} == {
            k: v for k, v in sb.items() if k != "pooled"
        }
        assert list(sa["pooled"]) == list(sb["pooled"])
        for n in sa["pooled"]:
            np.testing.assert_array_equal(sa["pooled"][n], sb["pooled"][n])
    assert nx.utils.graphs_equal(a.graph, b.graph)


def test_round_trip_is_exact(rec, tmp_path):
    path = rec.save(tmp_path / "s")
    back = cnnvis.load(path)
    assert_same(rec, back)
    assert back.session_path == (tmp_path / "s").absolute()
    np.testing.assert_array_equal(back.confusion_matrix(), rec.confusion_matrix())
    assert back.accuracy == rec.accuracy
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["format_version"] == session.FORMAT_VERSION
    assert set(manifest["files"]) == {"recording.json", "recording.npz"}
    for entry in manifest["files"].values():
        assert len(entry["sha256"]) == 64
    # saving again gives the same array bytes (determinism)
    rec.save(tmp_path / "t")
    a = (tmp_path / "s" / "recording.npz").read_bytes()
    b = (tmp_path / "t" / "recording.npz").read_bytes()
    assert a == b


def test_patch_images_saved_instead_of_patches(lazy_rec, tmp_path):
    """A recording whose patches are still to be cut saves the images once (format 2); one with
    cut patches saves the patches; both load to the same bytes."""
    assert isinstance(lazy_rec.layer("1").top_patches, LayerPatches)
    path = lazy_rec.save(tmp_path / "lazy")
    with np.load(path / "recording.npz") as z:
        assert "patch_images" in z.files and not any(f.endswith("top_patches") for f in z.files)
    back = cnnvis.load(path)
    assert isinstance(back.layer("1").top_patches, LayerPatches)
    assert_same(lazy_rec, back)
    cut = copy.copy(lazy_rec)
    cut.layers = {n: dataclasses.replace(lr, top_patches=np.asarray(lr.top_patches))
                  for n, lr in lazy_rec.layers.items()}  # fmt: skip
    path2 = cut.save(tmp_path / "cut")
    with np.load(path2 / "recording.npz") as z:
        assert "patch_images" not in z.files and "layer0/top_patches" in z.files
    assert_same(cnnvis.load(path2), back)


def _resave_arrays(path, change):
    """Rewrite recording.npz with ``change(arrays)`` applied and a matching manifest, as a
    hostile writer could (the checksums then hold)."""
    with np.load(path / "recording.npz") as z:
        arrays = {k: z[k] for k in z.files}
    change(arrays)
    session.write_arrays_atomic(path / "recording.npz", arrays)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["recording.npz"] = session._file_entry(path, "recording.npz")
    (path / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.__setitem__("patch_samples", a["patch_samples"][::-1].copy()),
         "strictly increasing"),
        (lambda a: a.__setitem__("patch_samples", a["patch_samples"] + 10_000), "no patch image"),
        (lambda a: a["layer1/top_boxes"].__setitem__((0, 0, 2), 99), "outside"),
        (lambda a: a.__setitem__("patch_images", a["patch_images"][:-1]), "shape"),
        (lambda a: a.__setitem__("patch_images", a["patch_images"].astype(np.float32)), "uint8"),
    ],
)  # fmt: skip
def test_hostile_patch_images_are_refused(lazy_rec, tmp_path, change, message):
    path = lazy_rec.save(tmp_path / "s")
    _resave_arrays(path, change)
    with pytest.raises(SessionError, match=message):
        cnnvis.load(path)


def test_overwrite_rules_and_nothing_half_written(rec, tmp_path):
    target = tmp_path / "s"
    rec.save(target)
    with pytest.raises(SessionError, match="already exists"):
        rec.save(target, overwrite=False)
    rec.save(target)  # replacing a session is fine
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(SessionError, match="not a cnnvis session"):
        rec.save(other)
    assert (other / "notes.txt").read_text() == "keep me"
    # a failure while writing leaves neither the target nor a temporary folder behind
    rec.meta["bad"] = object()
    try:
        with pytest.raises(TypeError):
            rec.save(tmp_path / "never")
    finally:
        del rec.meta["bad"]
    assert not (tmp_path / "never").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "s"]
    # and a failed overwrite keeps the old session intact
    rec.meta["bad"] = float("nan")
    try:
        with pytest.raises(ValueError):
            rec.save(target)
    finally:
        del rec.meta["bad"]
    assert_same(rec, cnnvis.load(target))


def test_check_writable_fails_before_any_work(rec, tmp_path):
    """A place a session cannot be saved at is refused up front, naming it; nothing is left."""
    from cnnvis.session import check_writable

    assert check_writable(tmp_path / "new" / "s") == (tmp_path / "new" / "s").absolute()
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == []  # the probe is gone
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    session_path = rec.save(tmp_path / "s")
    for path, kwargs, match in [
        (blocker / "s", {}, re.escape(f"cannot write {blocker / 's'}: {blocker} is a file")),
        (blocker, {}, "is a file, not a session folder"),
        (mine, {}, "not a cnnvis session"),
        (session_path, {"overwrite": False}, "already exists"),
    ]:
        with pytest.raises(SessionError, match=match):
            check_writable(path, **kwargs)
    assert check_writable(session_path) == session_path  # replacing a session is fine
    with pytest.raises(SessionError, match=re.escape(f"cannot write {blocker / 's'}: {blocker}")):
        rec.save(blocker / "s")  # saving says the same
    from cnnvis.cli import main

    for command in (["demo", "--quiet"], ["record", "--model", str(session_path), "--data",
                                          "digits", "--quiet"]):  # fmt: skip
        assert main([*command, "--out", str(blocker / "s")]) in (1, 2)
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "mine", "new", "s"]


def test_tampered_session(rec, tmp_path):
    path = rec.save(tmp_path / "s")
    npz = path / "recording.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(SessionError, match="recording.npz is damaged: its sha256"):
        cnnvis.load(path)


def test_truncated_session(rec, tmp_path):
    path = rec.save(tmp_path / "s")
    npz = path / "recording.npz"
    npz.write_bytes(npz.read_bytes()[:1000])
    with pytest.raises(SessionError, match="truncated"):
        cnnvis.load(path)
    path2 = rec.save(tmp_path / "s2")
    (path2 / "recording.json").unlink()
    with pytest.raises(SessionError, match="incomplete: recording.json"):
        cnnvis.load(path2)
    path3 = rec.save(tmp_path / "s3")
    (path3 / "manifest.json").unlink()
    with pytest.raises(SessionError, match="no manifest.json"):
        cnnvis.load(path3)
    with pytest.raises(SessionError, match="does not exist"):
        cnnvis.load(tmp_path / "nothing")


def test_future_version(rec, tmp_path):
    path = rec.save(tmp_path / "s")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = session.FORMAT_VERSION + 1
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SessionError, match="newer than this cnnvis reads"):
        cnnvis.load(path)


def test_parts(rec, tmp_path):
    path = rec.save(tmp_path / "s")
    assert not session.has_part(path, "analysis")
    arrays = {
        "clusters": np.arange(10, dtype=np.int32),
        "xy": np.random.default_rng(0).random((5, 2)),
    }
    session.write_part(path, "analysis", json_obj={"k": 3, "names": ["a"]}, arrays=arrays)
    assert session.has_part(path, "analysis")
    obj, back = session.read_part(path, "analysis")
    assert obj == {"k": 3, "names": ["a"]}
    np.testing.assert_array_equal(back["xy"], arrays["xy"])
    manifest = session.verify(path)
    assert {"analysis.json", "analysis.npz"} <= set(manifest["files"])
    assert_same(rec, cnnvis.load(path))  # the recording is untouched
    # replacing with JSON only drops the old arrays
    session.write_part(path, "analysis", json_obj={"k": 4})
    obj, back = session.read_part(path, "analysis")
    assert obj == {"k": 4} and back is None and not (path / "analysis.npz").exists()
    (path / "analysis.json").write_text('{"k": 5}')
    with pytest.raises(SessionError, match="analysis.json is damaged"):
        session.read_part(path, "analysis")
    with pytest.raises(ValueError, match="not allowed"):
        session.write_part(path, "recording", json_obj={})
    with pytest.raises(SessionError, match="no part 'scene'"):
        session.read_part(path, "scene")


def test_atomic_helpers_refuse_pickle(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        session.write_arrays_atomic(tmp_path / "a.npz", {"x": np.array([{"a": 1}], dtype=object)})
    assert not list(tmp_path.iterdir())  # no temporary file left
    p = session.write_json_atomic(tmp_path / "x.json", {"a": np.float32(1.5), "b": np.arange(3)})
    assert session.read_json(p) == {"a": 1.5, "b": [0, 1, 2]}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SessionError, match="not valid JSON"):
        session.read_json(tmp_path / "bad.json")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(SessionError, match="cannot be read"):
        session.read_arrays(tmp_path / "bad.npz")
    mode = os.stat(p).st_mode & 0o777
    assert mode & 0o044  # readable by others under the usual umask, not mkstemp's 0600


def test_graph_json_round_trip():
    g = nx.DiGraph(method="fx", input_shape=(3, 32, 32))
    g.add_node("input", module=None, op="input", out_shape=(3, 32, 32), channels=3, order=0)
    g.add_node("conv1", module="conv1", op="conv", out_shape=(8, 16, 16), channels=8, order=1,
               stack=("", "conv1"))  # fmt: skip
    g.add_edge("input", "conv1", weight=1.0)
    back = session.graph_from_json(json.loads(json.dumps(session.graph_to_json(g))))
    assert nx.utils.graphs_equal(g, back)
    assert back.nodes["conv1"]["out_shape"] == (8, 16, 16)


def test_info_command(rec, tmp_path, capsys):
    from cnnvis.cli import main

    path = rec.save(tmp_path / "s")
    assert main(["info", str(path), "--verify"]) == 0
    out = capsys.readouterr().out
    assert f"accuracy   {rec.accuracy:.2%}" in out
    assert "samples    200 (10 classes; 50 kept" in out
    for name, lr in rec.layers.items():
        assert f"{lr.n_channels:5d} channels" in out and name in out
    assert "snapshots  2: epoch (accuracy) 0 (10%), 3 (50%)" in out
    # its output into a pipe nobody reads (``| head`` that stopped): a quiet exit, no traceback
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "cnnvis", "info", str(path)],
            stdout=write_end, stderr=subprocess.PIPE, text=True, env=child_env(), timeout=120,
        )  # fmt: skip
    finally:
        os.close(write_end)
    assert res.returncode == 141 and res.stderr == ""
    shutil.rmtree(path)
    assert main(["info", str(path)]) == 1
    assert "does not exist" in capsys.readouterr().err
