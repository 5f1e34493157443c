"""Two models compared (issue 18, part 5): the demo CNN untrained against trained, on the same
450 held-out digits; the table's numbers against the recordings and the models, the aligned
projections, and sessions recorded on other data refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnvis.analysis.comparison import compare_models, neighbour_agreement
from cnnvis.analysis.diagnosis import redundancy, sign_balance
from cnnvis.session import open_session
from comparison_sessions import other_data_session, untrained_demo_session


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    return untrained_demo_session(tmp_path_factory.mktemp("cmp") / "untrained")


@pytest.fixture(scope="module")
def comparison(untrained, demo_session):
    return compare_models(open_session(untrained), open_session(demo_session))


def test_table_holds_each_models_accuracy_parameters_and_measures(comparison, untrained):
    import torch

    from cnnvis.models.demo import DemoCNN

    a, b = open_session(untrained), open_session(comparison.b.session)
    assert comparison.a.accuracy == a.recording.accuracy
    assert comparison.b.accuracy == b.recording.accuracy
    assert comparison.a.accuracy < 0.3 < 0.9 < comparison.b.accuracy  # untrained, trained
    torch.manual_seed(0)
    n_params = sum(p.numel() for p in DemoCNN(in_channels=1, n_classes=10).parameters())
    assert comparison.a.parameters == comparison.b.parameters == n_params
    for stats, analysis in ((comparison.a, a), (comparison.b, b)):
        # every parameter is counted once, at the first analysed layer it feeds
        assert sum(row.parameters for row in stats.layers) == n_params
        for row in stats.layers:
            assert row.redundancy == redundancy(analysis, row.layer)
            s = sign_balance(analysis, row.layer)
            assert (row.sign_balance is None) if np.isnan(s) else row.sign_balance == s
    first = comparison.a.layer("block1.relu")  # conv 3x3 1->16 without bias, batch norm 16
    assert (first.channels, first.parameters, first.sign_balance) == (16, 16 * 9 + 2 * 16, None)
    # CNNVis reads redundancy off near-identical rows: training makes the neurons differ
    mean = [np.mean([r.redundancy for r in m.layers]) for m in (comparison.a, comparison.b)]
    assert mean[0] > 2 * mean[1]
    assert [(ra.layer, rb.layer) for ra, rb in comparison.rows] == [(n, n) for n in a.layers]


def test_projections_are_aligned_and_morph(comparison, demo_session):
    c = comparison
    rec = open_session(demo_session).recording
    assert np.array_equal(c.samples, rec.pooled_index)
    assert np.array_equal(c.labels, rec.labels[c.samples])
    assert np.array_equal(c.predictions_b, rec.predictions[c.samples])
    for coords in (c.coords_a, c.coords_b):  # centred, unit RMS radius
        assert np.allclose(coords.mean(axis=0), 0.0, atol=1e-9)
        assert np.sqrt(np.mean(np.sum(coords**2, axis=1))) == pytest.approx(1.0)
    # Procrustes: no other rotation or reflection brings B closer to A
    best = np.linalg.norm(c.coords_b - c.coords_a)
    for angle in np.linspace(0.1, 2 * np.pi - 0.1, 12):
        cos, sin = np.cos(angle), np.sin(angle)
        for flip in (1.0, -1.0):
            rotation = np.array([[cos, -sin], [sin, cos]]) @ np.diag([1.0, flip])
            assert np.linalg.norm(c.coords_b @ rotation - c.coords_a) > best
    assert np.array_equal(c.morph(0.0), c.coords_a)
    assert np.array_equal(c.morph(1.0), c.coords_b)
    assert np.allclose(c.morph(0.25), 0.75 * c.coords_a + 0.25 * c.coords_b)
    assert np.allclose(c.displacement, np.linalg.norm(c.coords_b - c.coords_a, axis=1))
    with pytest.raises(ValueError, match="between 0"):
        c.morph(1.5)
    assert c.neighbourhood_hit_b > c.neighbourhood_hit_a  # training separates the classes
    assert 0.0 < c.neighbour_agreement < 1.0
    data = json.loads(json.dumps(c.to_dict()))
    assert data["a"]["accuracy"] == c.a.accuracy
    assert data["rows"][0]["a"]["sign_balance"] is None


def test_a_model_compared_with_itself_barely_moves(demo_session):
    a = open_session(demo_session)
    c = compare_models(a, a, layer_a="head.relu", layer_b="head.relu")
    assert c.a.name == c.b.name == "session"  # the folder's name
    # B's t-SNE runs on from A's converged layout: the points settle a little, no more
    assert c.displacement.mean() < 0.1 and c.neighbour_agreement > 0.85
    assert all(ra == rb for ra, rb in c.rows)


def test_neighbour_agreement_of_unrelated_points_is_low():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(300, 2))
    assert neighbour_agreement(y, y @ np.array([[0.0, -1.0], [1.0, 0.0]]) * 3.0) == 1.0
    assert neighbour_agreement(y, rng.normal(size=(300, 2))) < 0.1


@pytest.mark.parametrize(
    ("how", "message"),
    [("fewer", "A holds 450 samples, B 300"), ("reversed", "the labels differ on")],
)
def test_sessions_on_other_data_are_refused(demo_session, tmp_path, how, message):
    other = open_session(other_data_session(tmp_path / how, how))
    with pytest.raises(ValueError, match=f"same data: {message}"):
        compare_models(open_session(demo_session), other)


def test_an_unknown_layer_and_a_path_are_refused(untrained, demo_session):
    with pytest.raises(KeyError, match="nope"):
        compare_models(open_session(untrained), open_session(demo_session), layer_b="nope")
    with pytest.raises(TypeError, match="two Analyses"):
        compare_models(str(untrained), open_session(demo_session))


def test_b_started_from_a_moves_less_than_an_independent_projection(demo_session):
    from cnnvis.analysis.comparison import aligned_projections
    from cnnvis.analysis.projections import activations, align_onto
    from cnnvis.layout import TSNE

    analysis = open_session(demo_session)
    x_a, x_b = activations(analysis, "head.relu"), activations(analysis, "head.fc2")
    a, b = aligned_projections(x_a, x_b)
    # A is the projection the viewer shows, centred and scaled
    shown = analysis.projection("head.relu").coords
    assert np.allclose(a, align_onto(np.asarray(shown, dtype=np.float64), None), atol=1e-6)
    alone = align_onto(TSNE(perplexity=30, random_state=0).fit_transform(x_b), a)
    moved, moved_alone = (np.linalg.norm(y - a, axis=1).mean() for y in (b, alone))
    assert moved < 0.5 * moved_alone  # each class keeps its corner
    assert neighbour_agreement(a, b) > 0.2
