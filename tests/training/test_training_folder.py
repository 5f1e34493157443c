"""``train`` writes a diagnosable session; ``record --model TRAINING_FOLDER`` keeps every epoch's
snapshot (the issue: ``info`` said "snapshots none")."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cnnvis import load
from cnnvis.cli import main

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """An ImageFolder of 16x16 tiles cut from scikit-learn's two sample photos (a class each)."""
    from sklearn.datasets import load_sample_images

    root = tmp_path_factory.mktemp("photos")
    for name, img in zip(("china", "flower"), load_sample_images().images):
        tiles = [
            img[y : y + 32 : 2, x : x + 32 : 2]
            for y in range(0, 320, 32)
            for x in range(0, 320, 32)
        ]
        for i, tile in enumerate(tiles[:36]):
            d = root / ("train" if i < 24 else "test") / name
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(tile)).save(d / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def trained(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    args = ["train", "--model", "shallowcnn", "--data", f"imagefolder:{photos}", "--epochs", "2",
            "--out", str(out), "--threads", "1", "--quiet", "--batch-size", "16"]  # fmt: skip
    assert main(args) == 0
    return out


def test_train_writes_a_session_with_the_statistics(trained, capsys):
    rec = load(trained / "session")
    assert [s["epoch"] for s in rec.snapshots] == [0, 1, 2]
    assert all("grad_norm" in row for row in rec.snapshots[1]["stats"].values())
    history = json.loads((trained / "history.json").read_text())
    assert rec.snapshots[2]["loss"] == pytest.approx(history["epochs"][1]["train_loss"])
    assert main(["info", str(trained / "session")]) == 0
    assert "statistics of" in capsys.readouterr().out


def test_record_from_a_training_folder_keeps_every_snapshot(trained, photos, tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["record", "--model", str(trained), "--data", f"imagefolder:{photos}",
                 "--out", str(out), "--quiet"]) == 0  # fmt: skip
    rec = load(out)
    assert [s["epoch"] for s in rec.snapshots] == [0, 1, 2]
    assert [s["checkpoint"] for s in rec.snapshots] == [f"epoch_00{i}.pt" for i in range(3)]
    history = json.loads((trained / "history.json").read_text())
    for snap, row in zip(rec.snapshots[1:], history["epochs"]):
        assert snap["loss"] == pytest.approx(row["train_loss"])
        assert snap["metrics"]["test_accuracy"] == pytest.approx(row["test_accuracy"])
    for snap in rec.snapshots:
        assert set(snap["pooled"]) == set(rec.layers) and set(snap["stats"]) >= set(rec.layers)
        assert snap["pooled"][rec.layer_names[0]].shape[0] == len(rec.pooled_index)
    # the last checkpoint is the recorded model: its snapshot matches the recording
    last = rec.snapshots[-1]
    for name in rec.layers:
        np.testing.assert_allclose(last["pooled"][name], rec.pooled(name), rtol=1e-4, atol=1e-5)
    assert last["accuracy"] == pytest.approx(
        float(np.mean(rec.predictions[rec.pooled_index] == rec.labels[rec.pooled_index]))
    )
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    assert "snapshots  3" in capsys.readouterr().out
    assert main(["diagnose", str(out), "--json"]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
