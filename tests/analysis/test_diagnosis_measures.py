"""redundancy and sign_balance (analysis/diagnosis.py) on hand-built recordings with known answers,
and on the demo session."""

from __future__ import annotations

import math

import numpy as np
import pytest
from analysis_helpers import graph, layer_record, recording

from cnnvis.analysis import Analysis
from cnnvis.analysis.diagnosis import NEAR_IDENTICAL, redundancy, sign_balance


def _analysis(cm_a, cm_b, w_b, labels_a=None, labels_b=None):
    g = graph([("x", "input", 3, []), ("a", "linear", len(cm_a), ["x"]),
               ("b", "linear", len(cm_b), ["a"])])  # fmt: skip
    rec = recording(
        [layer_record("a", "linear", cm_a), layer_record("b", "linear", cm_b)],
        graph=g,
        weights={"a": {"weight": np.ones((len(cm_a), 3))}, "b": {"weight": np.asarray(w_b)}},
    )
    labels = {
        "a": np.zeros(len(cm_a), np.int64) if labels_a is None else np.asarray(labels_a),
        "b": np.zeros(len(cm_b), np.int64) if labels_b is None else np.asarray(labels_b),
    }
    return Analysis(rec, ["a", "b"], labels)


def test_redundancy_counts_twins_within_a_cluster_only():
    rng = np.random.default_rng(0)
    base = rng.random((6, 5))
    cm = np.vstack([base, base[:2] + NEAR_IDENTICAL * 0.2])  # rows 6, 7 twin rows 0, 1
    a = _analysis(cm, rng.random((4, 5)), rng.normal(size=(4, 8)))
    assert redundancy(a, "a") == pytest.approx(4 / 8)
    # the twins split into other clusters than their originals are no longer counted
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    b = _analysis(cm, rng.random((4, 5)), rng.normal(size=(4, 8)), labels_a=labels)
    assert redundancy(b, "a") == 0.0


def test_redundancy_ignores_flat_rows_and_distinct_rows():
    cm = np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0.5] * 4, [0.5] * 4])
    a = _analysis(cm, np.eye(4), np.ones((4, 5)))
    assert redundancy(a, "a") == 0.0  # two flat (dead) rows are not twins
    far = cm.copy()
    far[1] = far[0] + np.array([0, 0, 0.3, 0])  # 15% of the range apart: not near
    assert redundancy(_analysis(far, np.eye(4), np.ones((4, 5))), "a") == 0.0


def test_sign_balance_is_the_positive_share_of_incoming_weight():
    w = np.array([[1.0, -1.0, 2.0], [3.0, -1.0, 0.0]])  # 6 positive of 8
    a = _analysis(np.eye(3), np.eye(2), w)
    assert sign_balance(a, "b") == pytest.approx(6 / 8)
    assert math.isnan(sign_balance(a, "a"))  # nothing analysed feeds the first layer
    assert sign_balance(_analysis(np.eye(3), np.eye(2), np.abs(w)), "b") == 1.0
    with pytest.raises(KeyError, match="not analysed"):
        sign_balance(a, "nope")
    with pytest.raises(KeyError, match="not analysed"):
        redundancy(a, "nope")


def test_demo_measures_are_in_range(demo_session):
    from cnnvis import open_session

    a = open_session(demo_session)
    for layer in a.layers:
        assert 0.0 <= redundancy(a, layer) <= 1.0
    balances = [sign_balance(a, layer) for layer in a.layers[1:]]
    assert all(0.0 < b < 1.0 for b in balances)  # a trained CNN mixes both signs
