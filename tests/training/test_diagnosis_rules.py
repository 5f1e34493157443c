"""Each rule of the diagnosis at its threshold: a frozen layer in a real run, and hand-built
snapshot lists (plain dicts, as ``Tracker.snapshots`` holds) just inside and just outside each
documented threshold."""

from __future__ import annotations

import math

import pytest
from training_helpers import demo_cnn, kinds, tracked_run

from cnnvis.analysis import diagnosis as dg
from cnnvis.analysis.diagnosis import diagnose

pytestmark = pytest.mark.timeout(120)


def test_a_layer_that_cannot_learn_is_frozen():
    model = demo_cnn()
    model.block2.conv.weight.requires_grad_(False)
    found = [f for f in diagnose(tracked_run(model, lr=3e-3, epochs=3).snapshots)]
    assert [(f.kind, f.layer, f.epoch) for f in found] == [("frozen_layer", "block2.conv", 0)]


def _snaps(losses, **series):
    """Snapshots with the given losses and, per keyword, a metric or a layer statistic series
    (``grad_first``/``grad_last``: gradient norms of a first and a last layer)."""
    out = []
    for i, loss in enumerate(losses):
        metrics = {k: v[i] for k, v in series.items() if not k.startswith("grad")}
        stats = {}
        if "grad_first" in series:
            stats = {"first": {"grad_norm": series["grad_first"][i]},
                     "last": {"grad_norm": series["grad_last"][i]}}  # fmt: skip
        out.append({"epoch": i, "loss": loss, "metrics": metrics, "stats": stats})
    return out


def test_loss_rules():
    # above twice the low (0.5) but not above twice the first loss (2.0): a bumpy run
    assert kinds(diagnose(_snaps([2.0, 1.0, 0.5, 3.9]))) == set()
    found = diagnose(_snaps([2.0, 1.0, 0.5, 4.1]))  # above both
    assert [(f.kind, f.epoch) for f in found] == [("loss_diverged", 3)]
    assert diagnose(_snaps([2.0, math.inf]))[0].kind == "loss_diverged"
    stuck = [2.3, 2.0, 1.9] + [1.9 * (1 - 0.001 * i) for i in range(5)]
    assert [f.kind for f in diagnose(_snaps(stuck))] == ["loss_plateau"]
    converged = [2.3, 0.5, 0.2] + [0.1] * 5  # stalled, but far below the first loss
    assert diagnose(_snaps(converged)) == []
    learning = [2.3, 2.0, 1.9] + [1.9 * (1 - 0.01 * i) for i in range(1, 6)]
    assert diagnose(_snaps(learning)) == []


def test_overfitting_needs_both_accuracies_and_the_gap():
    train = [0.5, 0.8, 0.95, 0.99]
    found = diagnose(
        _snaps([1, 0.8, 0.6, 0.5], train_accuracy=train, val_acc=[0.5, 0.8, 0.84, 0.85])
    )
    assert [(f.kind, f.epoch) for f in found] == [("overfitting", 2)]
    assert found[0].value == pytest.approx(0.14)
    close = diagnose(_snaps([1, 0.8, 0.6, 0.5], train_accuracy=train, val_acc=[0.5, 0.8, 0.9, 0.9]))
    assert close == []
    assert diagnose(_snaps([1, 0.8, 0.6, 0.5], train_accuracy=train)) == []


def test_gradient_ratio_rules():
    ok = _snaps([1, 1], grad_first=[0.1, 0.1], grad_last=[1.0, 1.0])
    assert diagnose(ok) == []
    vanishing = _snaps([1, 1, 1], grad_first=[1e-2, 1e-4, 1e-5], grad_last=[1.0, 1.0, 1.0])
    found = diagnose(vanishing)
    assert [(f.kind, f.layer, f.epoch) for f in found] == [("vanishing_gradients", "first", 1)]
    assert found[0].value == pytest.approx(1e-5)
    exploding = _snaps([1, 1], grad_first=[1.0, 2e3], grad_last=[1.0, 1.0])
    assert [f.kind for f in diagnose(exploding)] == ["exploding_gradients"]
    assert dg.VANISHING_RATIO * dg.EXPLODING_RATIO == 1  # mirror thresholds


def test_findings_are_json_ready_and_kinds_are_the_issues():
    assert set(dg.KINDS) == {"dead_units", "vanishing_gradients", "exploding_gradients",
                             "frozen_layer", "loss_diverged", "loss_plateau", "redundant_neurons",
                             "all_positive_connections", "overfitting"}  # fmt: skip
    f = diagnose(_snaps([2.0, math.nan]))[0]
    assert f.to_dict() == {"kind": "loss_diverged", "layer": None, "epoch": 1, "value": None,
                           "message": f.message}  # fmt: skip
    with pytest.raises(TypeError, match="Analysis, a Recording or a list"):
        diagnose("session")
