"""Neuron and sample projections, the neighbourhood hit and trajectories (issue 17), on
hand-built recordings whose answers are known, and on the demo session."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import layer_record, recording

from cnnvis.analysis import (
    neighbourhood_hit,
    neuron_activation,
    neuron_grid,
    neuron_projection,
    projection_grid,
    sample_projection,
    trajectories,
)
from cnnvis.analysis.projections import (
    class_auc,
    classical_mds,
    correlation_distance,
    distance_rank_correlation,
    smacof,
)

N, CLASSES = 40, 4
LABELS = np.arange(N) % CLASSES


def _rec(*pooled, snapshots=None):
    """A hand-built recording of layers ``l0, l1, ...`` with these pooled activations."""
    layers = [
        layer_record(f"l{i}", "conv", np.zeros((p.shape[1], CLASSES)), pooled=p)
        for i, p in enumerate(pooled)
    ]
    rec = recording(layers, n_classes=CLASSES)
    rec.snapshots = snapshots or []
    return rec


def _blobs(dim, seed, spread=0.3):
    """Samples around one prototype per class: the classes sit apart in any faithful map."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(CLASSES, dim)) * 3.0
    return protos[LABELS] + spread * rng.normal(size=(N, dim))


def _planted():
    """Neurons 0-9 copy one signal, 10-19 another (each with a little noise of its own)."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, N))
    noise = 0.05 * rng.normal(size=(N, 20))
    return np.concatenate([np.repeat(a[:, None], 10, 1), np.repeat(b[:, None], 10, 1)], 1) + noise


@pytest.mark.parametrize("method", ["mds", "tsne"])
def test_planted_groups_sit_together(method):
    proj = neuron_projection(_rec(_planted()), "l0", method=method)
    assert proj.coords.shape == (20, 2)
    d = np.linalg.norm(proj.coords[:, None] - proj.coords[None], axis=2)
    group = np.arange(20) // 10
    same = group[:, None] == group[None]
    assert d[same].max() < d[~same].min()


def test_a_neuron_firing_only_for_class_3_gets_class_3():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N, 5))
    x[:, 2] = (LABELS == 3) * rng.uniform(1.0, 2.0, N)
    x[:, 4] = 7.0  # constant: tells no class apart
    proj = neuron_projection(_rec(x), "l0")
    assert proj.best_class[2] == 3
    assert proj.score[2] == pytest.approx(1.0)
    assert proj.best_class[4] == -1 and proj.score[4] == 0.0
    assert np.all((proj.score >= 0) & (proj.score <= 1))


def test_a_picked_neuron_gives_exactly_its_pooled_activation():
    rng = np.random.default_rng(7)
    snaps = [{"epoch": 0, "pooled": {"l0": rng.normal(size=(N, 5)).astype(np.float32)}}]
    rec = _rec(rng.normal(size=(N, 5)), snapshots=snaps)
    assert np.array_equal(neuron_activation(rec, "l0", 3), rec.pooled("l0")[:, 3])
    assert np.array_equal(neuron_activation(rec, "l0", 3, 0), snaps[0]["pooled"]["l0"][:, 3])
    with pytest.raises(ValueError, match="channels 0..4"):
        neuron_activation(rec, "l0", 5)


def test_class_auc_against_counting_pairs():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(N, 3)).astype(float)  # many ties
    auc = class_auc(x, LABELS, CLASSES)
    for j in range(3):
        for c in range(CLASSES):
            pos, neg = x[LABELS == c, j], x[LABELS != c, j]
            wins = (pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()
            assert auc[j, c] == pytest.approx(wins / (pos.size * neg.size))


def test_correlation_distance_and_mds_faithfulness():
    x = _planted()
    x[:, 5] = -x[:, 5]  # anti-correlated is as close as correlated
    x[:, 19] = 0.0
    d = correlation_distance(x)
    assert d[0, 5] < 0.05 and np.allclose(np.diag(d), 0) and np.allclose(d, d.T)
    assert np.all(d[19, :19] == 1.0)
    from sklearn.manifold import MDS

    y = smacof(d, classical_mds(d))
    anchor = MDS(metric="precomputed", init="random", n_init=1, random_state=0).fit_transform(d)
    assert distance_rank_correlation(y, d) >= distance_rank_correlation(anchor, d) - 1e-9


def test_neighbourhood_hit_by_hand():
    # on a line: 0, 1, 2.2 | 10, 11, 12.5; labels 0 0 1 | 1 1 0; with k = 2 the hits are
    # 1/2, 1/2, 0, 1/2, 1/2, 0 (each point's two nearest others, counted by hand)
    y = np.array([[0, 0], [1, 0], [2.2, 0], [10, 0], [11, 0], [12.5, 0]])
    labels = np.array([0, 0, 1, 1, 1, 0])
    assert neighbourhood_hit(y, labels, k=2) == pytest.approx(1 / 3)
    assert neighbourhood_hit(y, np.zeros(6), k=6) == 1.0  # k capped at n - 1
    with pytest.raises(ValueError, match="one label per row"):
        neighbourhood_hit(y, labels[:5])
    with pytest.raises(ValueError, match="k must be"):
        neighbourhood_hit(y, labels, k=0)
    with pytest.raises(ValueError, match="NaN"):
        neighbourhood_hit(np.full((6, 2), np.nan), labels)


def test_neighbourhood_hit_with_duplicates_never_counts_a_point_itself():
    y = np.zeros((4, 2))  # all on one spot: every neighbour is a tie
    assert neighbourhood_hit(y, np.array([0, 1, 1, 1]), k=1) < 1.0
    assert neighbourhood_hit(y, np.array([0, 1, 2, 3]), k=3) == 0.0


def test_sample_projection_separates_blobs():
    rec = _rec(_blobs(8, 4))
    proj = sample_projection(rec, "l0")
    assert proj.coords.shape == (N, 2)
    assert proj.neighbourhood_hit >= 0.95
    assert np.array_equal(proj.labels, LABELS) and proj.k == 6


def test_snapshots_and_bad_input():
    snaps = [{"epoch": 0, "pooled": {"l0": np.random.default_rng(5).normal(size=(N, 8))}}]
    rec = _rec(_blobs(8, 4), snapshots=snaps)
    early, late = sample_projection(rec, "l0", -1), sample_projection(rec, "l0")
    assert early.neighbourhood_hit < late.neighbourhood_hit
    with pytest.raises(ValueError, match="holds 1 snapshots"):
        sample_projection(rec, "l0", 3)
    with pytest.raises(KeyError, match="not recorded"):
        neuron_projection(rec, "nope")
    with pytest.raises(ValueError, match="method must be"):
        neuron_projection(rec, "l0", method="pca")
    with pytest.raises(TypeError, match="Recording or an Analysis"):
        neuron_projection(np.zeros(3), "l0")
    bad = _rec(np.full((N, 3), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        neuron_projection(bad, "l0")


def _three_layers():
    """Three layers of blobs; sample 4 equals sample 0 (both class 0), and sample 5 (class 1)
    sits with class 2 at the middle layer."""
    layers = [_blobs(6 + i, 10 + i) for i in range(3)]
    for x in layers:
        x[4] = x[0]
    layers[1][5] = layers[1][2]
    return _rec(*layers)


def test_trajectories_shape_twins_and_outlier():
    tr = trajectories(_three_layers())
    assert tr.positions.shape == (N, 3, 2)
    assert [s for s, _ in tr.stops] == ["l0", "l1", "l2"]
    assert np.array_equal(tr.positions[0], tr.positions[4])
    assert tr.polylines.shape[0] == N and tr.polylines.shape[2] == 2
    assert np.allclose(tr.polylines[:, 0], tr.positions[:, 0])  # bundling keeps the ends
    assert np.allclose(tr.polylines[:, -1], tr.positions[:, -1])
    assert int(np.argmax(tr.outlier)) == 5
    rms = np.sqrt(np.mean(np.sum(tr.positions**2, axis=2), axis=0))
    assert np.allclose(rms, 1.0, atol=0.05)  # exactly 1 over the distinct samples


@pytest.mark.parametrize("align", ["procrustes", "dynamic"])
def test_trajectories_alignments_and_subsets(align):
    tr = trajectories(_three_layers(), ["l0", "l2"], samples=np.arange(0, N, 2), align=align)
    assert tr.positions.shape == (N // 2, 2, 2) and np.array_equal(tr.rows, np.arange(0, N, 2))
    assert tr.align == align and len(tr.kl) == 2 and np.isfinite(tr.outlier).all()


def test_trajectories_through_snapshots_and_errors():
    rng = np.random.default_rng(6)
    snaps = [{"epoch": e, "pooled": {"l0": rng.normal(size=(N, 8))}} for e in (0, 1)]
    rec = _rec(_blobs(8, 4), snapshots=snaps)
    tr = trajectories(rec, snapshots=[0, 1, None], bundle=False)
    assert tr.stops == [("l0", 0), ("l0", 1), ("l0", None)] and tr.polylines is None
    assert tr.positions.shape == (N, 3, 2)
    assert len(trajectories(rec, snapshots="all", bundle=False).stops) == 2
    with pytest.raises(ValueError, match="at least two stops"):
        trajectories(rec, ["l0"])
    with pytest.raises(ValueError, match="align must be"):
        trajectories(_three_layers(), align="joint")
    with pytest.raises(ValueError, match="rows of the pooled sample"):
        trajectories(_three_layers(), samples=[N])
    with pytest.raises(ValueError, match="integer rows or a boolean mask"):
        trajectories(_three_layers(), samples=[1.5, 2.5, 3.0, 4.0])
    mask = LABELS < 2
    tr = trajectories(_three_layers(), samples=mask, bundle=False)
    assert np.array_equal(tr.rows, np.flatnonzero(mask))


def test_grid_rotates_panels_alike():
    rec = _three_layers()
    grid = projection_grid(rec, ["l0", "l2"], [None])
    assert [[p.layer for p in row] for row in grid] == [["l0"], ["l2"]]
    for row in grid:
        assert np.allclose(row[0].coords.mean(axis=0), 0.0)


def test_neuron_grid_rotates_the_same_neurons_alike():
    x = _planted()
    snaps = [{"epoch": 0, "pooled": {"l0": x[:, ::-1].copy()}}]  # neurons renumbered
    grid = neuron_grid(_rec(x, snapshots=snaps), ["l0"], [None, None, 0])
    a, b, c = (p.coords for p in grid[0])
    assert np.allclose(a, b)  # the same projection twice lands on itself
    assert not np.allclose(b, c)
    rms = np.sqrt(np.mean(np.sum(a**2, axis=1)))
    assert rms == pytest.approx(1.0)


def test_demo_training_gathers_neurons_and_separates_classes(demo_session):
    import cnnvis

    rec = cnnvis.load(demo_session)
    layer = "head.relu"
    untrained, trained = (neuron_projection(rec, layer, snapshot=s) for s in (0, None))
    assert trained.score.mean() > untrained.score.mean()
    assert sample_projection(rec, layer).neighbourhood_hit > 0.9
    analysis = cnnvis.analyze(rec)  # given an Analysis, the panel is the analysis' own projection
    assert np.array_equal(
        sample_projection(analysis, layer).coords, analysis.projection(layer).coords
    )
    assert sample_projection(rec, layer, 0).neighbourhood_hit < 0.9
    # the samples whose representation strays from their class's are the misclassified ones:
    # 7 of 450 are, 3 of them among the 10 top outliers (chance: 0.16)
    tr = trajectories(rec, bundle=False)
    wrong = rec.pooled_labels != rec.predictions[rec.pooled_index]
    assert wrong[np.argsort(-tr.outlier)[:10]].sum() >= 2
