"""The Tracker: what a snapshot measures, that it leaves the model alone, that it survives NaN,
and how its statistics are saved and checked in a session."""

from __future__ import annotations

import io
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from training_helpers import TEST, demo_cnn, sigmoid_mlp

import cnnvis
from cnnvis import Tracker, load
from cnnvis.analysis.diagnosis import diagnose
from cnnvis.io import sha256
from cnnvis.session import SessionError
from cnnvis.tracking import STAT_FIELDS, TrackerCallback

pytestmark = pytest.mark.timeout(120)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_snapshot_measures_without_changing_the_model():
    model = demo_cnn().train()
    before = _state(model)
    for p in model.parameters():
        p.grad = torch.full_like(p, 7.0)
    tracker = Tracker(model, (TEST.images[:100], TEST.targets[:100]), every=2)
    entry = tracker.snapshot(epoch=3, loss=torch.tensor(1.5), metrics={"val_acc": 0.25})
    assert tracker.snapshot() is None  # every=2 skips the second call
    assert len(tracker.snapshots) == 1 and entry["epoch"] == 3 and entry["loss"] == 1.5
    # weights, batch-norm running statistics, mode and the caller's gradients are untouched
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and model.training
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in model.parameters())
    stats = entry["stats"]
    w = model.block1.conv.weight.detach().double()
    assert stats["block1.conv"]["weight_norm"] == pytest.approx(float(w.norm()))
    assert stats["block1.conv"]["weight_std"] == pytest.approx(float(w.std(unbiased=False)))
    assert math.isnan(stats["block1.conv"]["act_mean"])  # not a tracked layer
    # the gradient is that of the mean cross-entropy on the probe in eval mode
    model.eval()
    loss = torch.nn.functional.cross_entropy(model(TEST.images[:100]), TEST.targets[:100])
    (g,) = torch.autograd.grad(loss, [model.head.fc2.weight])
    assert stats["head.fc2"]["grad_norm"] == pytest.approx(float(g.norm()), rel=1e-5)
    # activations: the recorded layers, with their class means and every probe sample's row
    assert tracker.layers == ["block1.relu", "block2.relu", "block3.relu", "head.relu", "head.fc2"]
    assert entry["pooled"]["block2.relu"].shape == (100, 32)
    assert entry["class_means"]["head.fc2"].shape == (10, 10)
    with torch.no_grad():
        logits = model(TEST.images[:100])
    mean0 = logits[TEST.targets[:100] == 0].mean(0).numpy()
    np.testing.assert_allclose(entry["class_means"]["head.fc2"][:, 0], mean0, rtol=1e-4, atol=1e-6)
    assert entry["accuracy"] == pytest.approx(
        float((logits.argmax(1) == TEST.targets[:100]).float().mean())
    )
    assert set(stats["head.relu"]) == set(STAT_FIELDS)


def test_tracking_leaves_the_random_number_generator_alone():
    """Adding a tracker to a training loop does not change the run (dropout masks, shuffling)."""
    model = demo_cnn()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    Tracker(model, TEST, probe_size=32).snapshot()
    assert torch.equal(torch.rand(3), expected)


def test_dead_and_saturated_units_are_counted():
    model = sigmoid_mlp(depth=2, width=8)
    with torch.no_grad():
        model[1].bias[:2] = 7.0  # units 0, 1 of the first sigmoid: always above 0.99, not constant
        model[3].weight[:4] = 0.0  # units 0..3 of the second: constant sigmoid(bias)
    tracker = Tracker(model, TEST)
    stats = tracker.snapshot()["stats"]
    assert stats["2"]["saturated"] == pytest.approx(2 / 8)
    assert stats["4"]["dead"] == pytest.approx(4 / 8)
    assert stats["2"]["dead"] == 0.0 and stats["4"]["saturated"] == 0.0


def test_nan_loss_and_nan_weights_survive_into_a_session(tmp_path):
    model = demo_cnn().eval()
    tracker = Tracker(model, TEST, probe_size=64)
    tracker.snapshot(epoch=0, loss=2.3)
    with torch.no_grad():
        model.head.fc1.weight[0, 0] = float("nan")
    entry = tracker.snapshot(epoch=1, loss=float("nan"), metrics={"val_loss": float("inf")})
    assert math.isnan(entry["stats"]["head.fc1"]["weight_mean"])
    path = tracker.save(tmp_path / "nan")
    rec = load(path)
    assert rec.meta["tracker"]["recorded_epoch"] == 0  # the last model with finite weights
    assert (
        math.isnan(rec.snapshots[1]["loss"]) and rec.snapshots[1]["metrics"]["val_loss"] == math.inf
    )
    assert math.isnan(rec.snapshots[1]["stats"]["head.fc1"]["weight_mean"])
    found = diagnose(rec)
    assert [(f.kind, f.epoch) for f in found if f.kind == "loss_diverged"] == [("loss_diverged", 1)]
    assert json.dumps([f.to_dict() for f in found], allow_nan=False)  # NaN values become null


def test_session_keeps_the_statistics_exactly(tmp_path):
    tracker = Tracker(demo_cnn(), TEST, probe_size=128)
    for e in range(3):
        tracker.snapshot(epoch=e, loss=1.0 / (e + 1), metrics={"test_accuracy": 0.5})
    rec = load(tracker.save(tmp_path / "s"))
    assert len(rec.snapshots) == 3
    for saved, mine in zip(rec.snapshots, tracker.snapshots):
        assert saved["stats"].keys() == mine["stats"].keys()
        for layer, row in mine["stats"].items():
            np.testing.assert_array_equal(list(saved["stats"][layer].values()), list(row.values()))
        for layer, cm in mine["class_means"].items():
            np.testing.assert_array_equal(saved["class_means"][layer], cm)
        assert saved["pooled"]["head.relu"].shape == (len(rec.pooled_index), 64)
        np.testing.assert_array_equal(
            saved["pooled"]["head.relu"], mine["pooled"]["head.relu"][rec.pooled_index]
        )
        assert saved["metrics"]["test_accuracy"] == 0.5


def _rewrite(session, change_doc=None, change_arrays=None):
    """Damage the recording on purpose and make the manifest agree, so the codec's checks (not
    the checksums) must catch it."""
    manifest = json.loads((session / "manifest.json").read_text())
    if change_doc:
        doc = json.loads((session / "recording.json").read_text())
        change_doc(doc)
        (session / "recording.json").write_text(json.dumps(doc))
    if change_arrays:
        with np.load(session / "recording.npz") as z:
            arrays = {k: z[k] for k in z.files}
        change_arrays(arrays)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        (session / "recording.npz").write_bytes(buf.getvalue())
    for rel in ("recording.json", "recording.npz"):
        manifest["files"][rel] = {
            "bytes": (session / rel).stat().st_size,
            "sha256": sha256(session / rel),
        }
    (session / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    "doc, arrays, match",
    [
        (
            None,
            lambda a: a.__setitem__("snapshot0/stats", a["snapshot0/stats"][:-1]),
            "snapshot0/stats",
        ),
        (
            None,
            lambda a: a.__setitem__("snapshot0/stats", a["snapshot0/stats"].astype(np.float32)),
            "float64",
        ),
        (None, lambda a: a.pop("snapshot1/stats"), "lacks the array"),
        (lambda d: d["snapshots"][0].__setitem__("stats_fields", ["a", "a"]), None, "twice"),
        (lambda d: d["snapshots"][0].__setitem__("stats_layers", "x"), None, "stats_layers"),
        (lambda d: d["snapshots"][0].__setitem__("loss", "big"), None, "loss of snapshot 0"),
        (lambda d: d["snapshots"][0].__setitem__("metrics", [1]), None, "metrics"),
        (lambda d: d["snapshots"][1]["metrics"].__setitem__("m", {}), None, "metric 'm'"),
        (
            lambda d: d["snapshots"][0].__setitem__("class_means_layers", ["nope"]),
            None,
            "unrecorded",
        ),
        (
            None,
            lambda a: a.__setitem__("snapshot0/class_means/0", np.zeros((3, 10), np.float32)),
            "class_means",
        ),
    ],
)
def test_corrupt_statistics_give_a_session_error(tmp_path, doc, arrays, match):
    tracker = Tracker(demo_cnn(), TEST, probe_size=32)
    tracker.snapshot(epoch=0, loss=2.0)
    tracker.snapshot(epoch=1, loss=1.0, metrics={"m": 1.0})
    path = tracker.save(tmp_path / "s")
    _rewrite(path, doc, arrays)
    with pytest.raises(SessionError, match=match):
        load(path)


def test_sessions_without_statistics_still_load(demo_session):
    rec = load(demo_session)
    assert rec.snapshots and all("stats" not in s for s in rec.snapshots)
    assert diagnose(rec) == []


def test_bad_arguments_are_clear_errors():
    model = demo_cnn()
    with pytest.raises(ValueError, match="every"):
        Tracker(model, TEST, every=0)
    with pytest.raises(ValueError, match="empty"):
        Tracker(model, (TEST.images[:0], TEST.targets[:0]))
    with pytest.raises(ValueError, match="unknown layer"):
        Tracker(model, TEST, layers=["nope"]).snapshot()
    tracker = Tracker(model, TEST, probe_size=16)
    with pytest.raises(TypeError, match="metrics"):
        tracker.snapshot(metrics=[1.0])
    with pytest.raises(TypeError, match="loss"):
        tracker.snapshot(loss="low")
    with pytest.raises(ValueError, match="no snapshot"):
        tracker.save("/nonexistent/never")


def test_lightning_style_callback_snapshots_each_epoch():
    tracker = Tracker(demo_cnn(), TEST, probe_size=16)
    callback = TrackerCallback(tracker)
    for epoch in range(2):
        trainer = SimpleNamespace(
            current_epoch=epoch,
            callback_metrics={
                "train_loss": torch.tensor(1.0 - epoch / 2),
                "val_acc": torch.tensor(0.5),
                "text": "x",
            },
        )
        callback.on_train_epoch_end(trainer, tracker.model)
    assert [s["epoch"] for s in tracker.snapshots] == [0, 1]
    assert tracker.snapshots[1]["loss"] == 0.5 and tracker.snapshots[1]["metrics"]["val_acc"] == 0.5
    assert "text" not in tracker.snapshots[1]["metrics"]


def test_an_mlp_on_flat_vectors_is_tracked_and_saved(tmp_path):
    """An MLP on flat vectors: snapshots, diagnosis and a session that keeps them."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    tracker = Tracker(model, (TEST.images.flatten(1), TEST.targets), layers=["1", "2"])
    stats = tracker.snapshot(epoch=0, loss=2.3)["stats"]
    assert list(stats) == ["0", "1", "2"] and stats["1"]["dead"] < 0.5
    assert diagnose(tracker.snapshots) == []
    rec = cnnvis.load(tracker.save(tmp_path / "flat"))
    assert rec.input_shape == (64,) and len(rec.snapshots) == 1


def test_a_model_record_cannot_take_is_tracked_and_save_says_why(tmp_path):
    """Sequences (N, L, D): snapshots and diagnosis work; a session needs images or vectors."""
    from cnnvis.record import RecordError

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.head = torch.nn.Linear(8, 16), torch.nn.Linear(16, 10)

        def forward(self, x):
            return self.head(torch.relu(self.embed(x)).mean(1))

    torch.manual_seed(0)
    x = TEST.images.reshape(len(TEST.targets), 8, 8)  # each image as 8 rows of 8 values
    tracker = Tracker(Pooled(), (x, TEST.targets), layers=["embed", "head"])
    assert set(tracker.snapshot(epoch=0, loss=2.3)["stats"]) == {"embed", "head"}
    with pytest.raises(RecordError, match=r"cannot write a session.*diagnose\(tracker.snapshots\)"):
        tracker.save(tmp_path / "seq")
    assert not (tmp_path / "seq").exists()
