"""Facets (C4, C5), projections (P1) and the linking helpers (P3) on hand-built recordings."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import blobs_class_means, layer_record, recording
from scipy.spatial.distance import cdist

import cnnvis
from cnnvis.analysis import load_analysis
from cnnvis.layout import hamiltonian_path


@pytest.fixture
def rec():
    cm = blobs_class_means([7, 9, 5], n_classes=7, noise=0.05)
    cm2 = blobs_class_means([6, 6], n_classes=7, seed=2, noise=0.05)
    return recording(
        [
            layer_record("a", "conv", cm, k=6, patch=5),
            layer_record("b", "conv", cm2, k=3, patch=4, channels_rgb=1, seed=2),
        ]
    )


def test_activation_matrix_rows_follow_the_shortest_path(rec):
    an = cnnvis.analyze(rec)
    orders = set()
    for layer in an.layers:
        cm = rec.class_means(layer).astype(np.float64)
        p = cm - cm.mean(1, keepdims=True)
        p /= np.linalg.norm(p, axis=1, keepdims=True)
        for c, members in enumerate(an.clusters(layer)):
            m = an.activation_matrix(layer, c)
            expect = members[hamiltonian_path(cdist(p[members], p[members]))]
            np.testing.assert_array_equal(m.neurons, expect)
            assert m.layout == "hamiltonian_path"
            assert sorted(m.class_order.tolist()) == list(range(rec.n_classes))
            orders.add(tuple(m.class_order))
            np.testing.assert_allclose(m.values, cm[m.neurons][:, m.class_order], rtol=1e-6)
            assert m.vmin == pytest.approx(cm.min()) and m.vmax == pytest.approx(cm.max())
            np.testing.assert_allclose(
                m.normalized, (m.values - m.vmin) / (m.vmax - m.vmin), rtol=1e-5, atol=1e-6
            )
    assert len(orders) == 1  # one column order for every cluster of every layer


def test_learned_features_image_holds_the_patches_at_their_boxes(rec):
    an = cnnvis.analyze(rec)
    for layer in an.layers:
        lr = rec.layer(layer)
        for c in range(an.n_clusters(layer)):
            lf = an.learned_features(layer, c, patches_per_neuron=4)
            assert lf.image.dtype == np.uint8 and lf.image.ndim == 3 and lf.image.shape[2] == 3
            assert sorted(lf.neurons.tolist()) == an.clusters(layer)[c].tolist()
            assert lf.layout in ("pack_hierarchy", "single")
            h, w = lf.image.shape[:2]
            boxes = lf.placements
            assert np.all(boxes[:, 0] >= 0) and np.all(boxes[:, 1] >= 0)
            assert np.all(boxes[:, 0] + boxes[:, 2] <= w) and np.all(boxes[:, 1] + boxes[:, 3] <= h)
            for i in range(len(boxes)):  # tiles do not overlap
                for j in range(i + 1, len(boxes)):
                    xi, yi, wi, hi = boxes[i]
                    xj, yj, wj, hj = boxes[j]
                    assert xi + wi <= xj or xj + wj <= xi or yi + hi <= yj or yj + hj <= yi
            for i, ch in enumerate(lf.neurons):
                assert len(lf.patch_boxes[i]) == min(4, lr.top_patches.shape[1])
                for j, (x, y, pw, ph) in enumerate(lf.patch_boxes[i]):
                    patch = lr.top_patches[ch, j]
                    if patch.shape[2] == 1:
                        patch = np.repeat(patch, 3, axis=2)
                    np.testing.assert_array_equal(lf.image[y : y + ph, x : x + pw], patch)
                    assert lf.patch_samples[i][j] == lr.top_samples[ch, j]


def test_missing_top_patches_are_skipped(rec):
    lr = rec.layer("a")
    lr.top_samples[0, 1:] = -1
    lr.top_values[0, 1:] = np.nan
    an = cnnvis.analyze(rec)
    c = an.cluster_of("a", 0)
    lf = an.learned_features("a", c)
    i = int(np.flatnonzero(lf.neurons == 0)[0])
    assert len(lf.patch_boxes[i]) == 1
    with pytest.raises(ValueError, match="patches_per_neuron"):
        an.learned_features("a", c, patches_per_neuron=0)
    with pytest.raises(ValueError, match="does not exist"):
        an.activation_matrix("a", 99)


def test_projection_is_cached_and_saved(rec, tmp_path):
    an = cnnvis.analyze(rec)
    p = an.projection("a")
    assert p.method == "tsne" and p.params["perplexity_used"] == pytest.approx(13.0)
    assert p.coords.shape == (rec.pooled("a").shape[0], 2)
    assert np.all(np.isfinite(p.coords))
    assert an.projection("a") is p
    an.save(tmp_path)
    back = load_analysis(tmp_path, rec)
    q = back.projection("a")
    assert q.method == p.method and q.params == p.params
    np.testing.assert_array_equal(q.coords, p.coords)


def test_linking_helpers_point_at_planted_neurons():
    rng = np.random.default_rng(0)
    cm = rng.random((10, 5))
    cm[6, 3] = 5.0  # neuron 6 is selective for class 3
    pooled = rng.normal(size=(40, 10))
    pooled[5:9, 2] += 6.0  # neuron 2 fires for samples 5..8
    rec = recording([layer_record("a", "conv", cm, pooled=pooled)])
    an = cnnvis.analyze(rec)
    assert int(np.argmax(an.neurons_for_class("a", 3))) == 6
    scores = an.neurons_for_samples("a", [5, 6, 7, 8])
    assert scores.shape == (10,) and int(np.argmax(scores)) == 2
    np.testing.assert_array_equal(an.neurons_for_samples("a", []), np.zeros(10))
    with pytest.raises(ValueError, match="sample rows"):
        an.neurons_for_samples("a", [40])
    with pytest.raises(ValueError, match="class 5"):
        an.neurons_for_class("a", 5)
    an.extract_neuron("a", 2)
    top = an.top_samples_for_cluster("a", an.cluster_of("a", 2), n=4)
    assert sorted(top.tolist()) == [5, 6, 7, 8]


def test_degenerate_layers_give_obvious_facets_and_clear_errors(tmp_path):
    from analysis_helpers import graph

    from cnnvis.export.facets import export_facets

    one = layer_record("one", "conv", np.array([[0.2, 0.9, 0.1]]))
    flat = layer_record("flat", "conv", np.full((5, 3), 0.7), seed=1)
    g = graph([("x", "input", 1, []), ("one", "conv", 1, ["x"]), ("flat", "conv", 5, ["one"])])
    w = {"one": {"weight": np.ones((1, 1, 3, 3))}, "flat": {"weight": np.full((5, 1, 1, 1), -2.0)}}
    rec = recording([one, flat], graph=g, weights=w)
    an = cnnvis.analyze(rec)
    assert an.n_clusters("one") == 1 and an.n_clusters("flat") == 1
    m = an.activation_matrix("flat", 0)
    np.testing.assert_array_equal(m.normalized, np.full((5, 3), 0.5, np.float32))
    assert an.learned_features("one", 0).placements.shape == (1, 4)
    cc = an.connections("one", "flat")
    np.testing.assert_allclose(cc.strength, np.full((1, 5), -2.0))
    assert cc.positive.max() == 0 and cc.negative.min() == -2.0
    assert [(i, j, s) for i, j, s, _ in cc.edges()] == [(0, 0, -1)]
    assert np.all(an.neurons_for_class("flat", 1) == 0)  # constant: no class preference
    out = export_facets(an, tmp_path / "f")
    assert len(list(out.glob("*.png"))) == 4
    w["flat"]["weight"] = np.full((5, 1, 1, 1), np.nan)
    an2 = cnnvis.analyze(rec)
    with pytest.raises(ValueError, match="not finite"):
        an2.connections("one", "flat")
    rec.layer("flat").pooled[3, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or inf"):
        an2.projection("flat")
