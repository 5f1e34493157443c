"""Planted failures found by the diagnosis on real (small) training runs, and a healthy run with
no finding: the issue's acceptance tests."""

from __future__ import annotations

import json

import pytest
from training_helpers import demo_cnn, kinds, sigmoid_mlp, tracked_run

from cnnvis.analysis.diagnosis import KINDS, diagnose
from cnnvis.cli import main

pytestmark = pytest.mark.timeout(120)


def test_healthy_demo_run_has_no_finding(tmp_path):
    tracker = tracked_run(demo_cnn(), lr=3e-3, epochs=4)
    assert diagnose(tracker.snapshots) == []
    last = tracker.snapshots[-1]
    assert last["metrics"]["test_accuracy"] > 0.9 and last["loss"] < 0.2
    # saved and read back, the recording (snapshots and all) is still healthy
    from cnnvis import load

    assert diagnose(load(tracker.save(tmp_path / "s", progress=False))) == []


def test_ten_layer_sigmoid_mlp_has_vanishing_gradients(tmp_path, capsys):
    tracker = tracked_run(sigmoid_mlp(), lr=1e-2, epochs=2, optimizer="sgd")
    found = {f.kind: f for f in diagnose(tracker.snapshots)}
    assert "vanishing_gradients" in found
    f = found["vanishing_gradients"]
    assert f.layer == "1" and f.epoch == 0 and f.value < 1e-5  # the first linear layer
    # the MLP on image inputs is recordable: the session says the same through the command line
    path = tracker.save(tmp_path / "mlp", progress=False)
    assert main(["diagnose", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "vanishing_gradients" in {d["kind"] for d in out}
    assert all(set(d) == {"kind", "layer", "epoch", "value", "message"} for d in out)
    assert all(d["kind"] in KINDS for d in out)


def test_learning_rate_that_kills_relus_gives_dead_units():
    tracker = tracked_run(demo_cnn(), lr=0.5, epochs=3)
    dead = [f for f in diagnose(tracker.snapshots) if f.kind == "dead_units"]
    assert dead and all(f.value >= 0.5 for f in dead)
    assert "head.relu" in {f.layer for f in dead}
    # a healthy run keeps those ReLUs alive
    assert tracker.snapshots[0]["stats"]["head.relu"]["dead"] < 0.5


def test_learning_rate_10_gives_loss_diverged():
    tracker = tracked_run(demo_cnn(), lr=10.0, epochs=2)
    found = [f for f in diagnose(tracker.snapshots) if f.kind == "loss_diverged"]
    assert len(found) == 1 and found[0].epoch == 1 and found[0].layer is None
    assert "loss_diverged" in kinds(diagnose(tracker.snapshots))
