"""The built-in demo end to end, as `python -m cnnvis demo` makes it (uses the session-scoped
``demo_session`` fixture), and `record` on its checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnvis
from cnnvis import session
from cnnvis.data.digits import DigitsDataset
from cnnvis.models.checkpoints import load_demo_checkpoint
from cnnvis.models.demo import DEMO_LAYERS, DemoCNN


def test_demo_session_accuracy_and_contents(demo_session):
    rec = cnnvis.load(demo_session)
    assert rec.model_name == "DemoCNN"
    assert rec.n_samples == 450 and rec.input_shape == (1, 8, 8)
    assert rec.accuracy >= 0.95
    assert rec.class_names == [str(d) for d in range(10)]
    assert rec.layer_names == DEMO_LAYERS
    channels = [rec.layer(n).n_channels for n in DEMO_LAYERS]
    assert channels == [16, 32, 64, 64, 10]
    # all 450 held-out digits fit in the pooled sample (45 per class at most < 200 per class)
    np.testing.assert_array_equal(rec.pooled_index, np.arange(450))
    assert rec.pooled_images.shape == (450, 8, 8, 1)
    # the class means separate the classes at the logits: the diagonal dominates
    logits_means = rec.class_means("head.fc2")
    assert np.all(np.argmax(logits_means, axis=0) == np.arange(10))
    # top patches of the first block: 3x3 receptive fields resized to 16x16
    assert rec.layer("block1.relu").top_patches.shape == (16, 9, 16, 16, 1)
    boxes = rec.layer("block1.relu").top_boxes
    assert np.all(boxes[..., 2] - boxes[..., 0] <= 3)
    # training history and snapshots: untrained near chance, then learning
    epochs = [s["epoch"] for s in rec.snapshots]
    assert epochs == [0, 1, 2, 4, 8, 12]
    accs = [s["accuracy"] for s in rec.snapshots]
    assert accs[0] < 0.3 and accs[-1] == rec.accuracy
    for s in rec.snapshots:
        for n in DEMO_LAYERS:
            assert s["pooled"][n].shape == rec.pooled(n).shape
    np.testing.assert_allclose(rec.snapshots[-1]["pooled"]["block3.relu"],
                               rec.pooled("block3.relu"), rtol=1e-5, atol=1e-6)  # fmt: skip
    assert not np.allclose(rec.snapshots[0]["pooled"]["block3.relu"], rec.pooled("block3.relu"))
    assert rec.meta["training"]["history"][-1]["test_accuracy"] == pytest.approx(rec.accuracy)


def test_demo_checkpoints_reproduce_the_recording(demo_session):
    rec = cnnvis.load(demo_session)
    path = session.read_file(demo_session, rec.meta["checkpoint"])  # checksum-verified
    model = load_demo_checkpoint(path)
    assert isinstance(model, DemoCNN) and not model.training
    test = DigitsDataset("test", seed=0)
    with torch.no_grad():
        pred = model(test.images).argmax(1).numpy()
    np.testing.assert_array_equal(pred, rec.predictions)
    untrained = load_demo_checkpoint(session.read_file(demo_session, "checkpoints/epoch_000.pt"))
    with torch.no_grad():
        acc0 = float((untrained(test.images).argmax(1) == test.targets).float().mean())
    assert acc0 == pytest.approx(rec.snapshots[0]["accuracy"])


def test_demo_command_output_and_record_command(demo_session, tmp_path, capsys):
    from cnnvis.cli import main

    # `record` re-records the demo's final model from its session: same predictions
    out = tmp_path / "again"
    assert main(["record", "--model", str(demo_session), "--data", "digits", "--out", str(out),
                 "--quiet", "--patch-size", "8"]) == 0  # fmt: skip
    assert "session written to" in capsys.readouterr().out
    again = cnnvis.load(out)
    rec = cnnvis.load(demo_session)
    np.testing.assert_array_equal(again.predictions, rec.predictions)
    assert again.meta["data"] == "digits (test)"
    # a bare state dict needs --arch
    bare = tmp_path / "bare.pt"
    torch.save(load_demo_checkpoint(demo_session / "checkpoints/epoch_012.pt").state_dict(), bare)
    assert main(["record", "--model", str(bare), "--data", "digits", "--out",
                 str(tmp_path / "x"), "--quiet"]) == 2  # fmt: skip
    assert "--arch" in capsys.readouterr().err
    assert main(["record", "--model", str(bare), "--arch", "demo", "--data", "digits",
                 "--out", str(tmp_path / "y"), "--quiet", "--max-samples", "50"]) == 0  # fmt: skip
    assert cnnvis.load(tmp_path / "y").n_samples == 50
