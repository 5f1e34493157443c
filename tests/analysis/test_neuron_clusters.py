"""Neuron clusters (C3): validity, determinism, the choice of k, degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
from analysis_helpers import blobs_class_means, layer_record, recording
from sklearn.metrics import adjusted_rand_score

import cnnvis
from cnnvis.analysis.clusters import candidate_ks, cluster_layer, legible_ks, response_profiles


def _planted(sizes=(6, 9, 5, 4), seed=0):
    cm = blobs_class_means(list(sizes), n_classes=8, seed=seed, noise=0.02)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return cm, truth


def test_profiles_are_centred_unit_rows_and_scale_free():
    cm, _ = _planted()
    p = response_profiles(cm)
    np.testing.assert_allclose(p.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(p, axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(response_profiles(cm.astype(np.float64) * 7.0 + 3.0), p, atol=1e-12)


def test_kmeans_recovers_planted_groups_with_silhouette_choice():
    cm, truth = _planted()
    labels, info = cluster_layer(cm)
    assert info["criterion"] == "silhouette" and info["k"] == 4
    assert set(info["scores"]) == {str(k) for k in candidate_ks(cm.shape[0])}
    assert adjusted_rand_score(truth, labels) == 1.0
    # canonical ids: contiguous, numbered by smallest member
    assert labels[0] == 0
    firsts = [np.flatnonzero(labels == c)[0] for c in range(labels.max() + 1)]
    assert firsts == sorted(firsts)


def test_clusters_are_deterministic_and_given_k_is_used():
    cm, _ = _planted(seed=3)
    a, _ = cluster_layer(cm, random_state=0)
    b, _ = cluster_layer(cm, random_state=0)
    np.testing.assert_array_equal(a, b)
    c, info = cluster_layer(cm, n_clusters=6)
    assert info["criterion"] == "given" and c.max() + 1 == 6
    with pytest.raises(ValueError, match="exceeds"):
        cluster_layer(cm, n_clusters=cm.shape[0] + 1)
    with pytest.raises(ValueError, match=">= 1"):
        cluster_layer(cm, n_clusters=0)


def test_k_range_aims_at_legible_cluster_sizes():
    assert list(candidate_ks(2)) == []
    assert list(candidate_ks(16)) == list(range(2, 11))  # narrow: small k, structure decides
    for n in (256, 512, 2048):  # wide: clusters of about 10-40 neurons
        ks = legible_ks(n)
        assert n / max(ks) >= 9.5 and n / min(ks) <= 40 and len(ks) <= 5
        assert candidate_ks(n) == ks


def test_wide_layers_get_readable_clusters():
    rng = np.random.default_rng(0)
    for n in (256, 512):
        labels, info = cluster_layer(rng.normal(size=(n, 4)))  # no structure: legibility rules
        sizes = np.bincount(labels)
        assert 10 <= n / info["k"] <= 40 and sizes.max() < n / 2


def test_meanshift_finds_planted_groups():
    cm, truth = _planted()
    labels, info = cluster_layer(cm, method="meanshift")
    assert adjusted_rand_score(truth, labels) > 0.9
    with pytest.raises(ValueError, match="MeanShift"):
        cluster_layer(cm, method="meanshift", n_clusters=3)
    with pytest.raises(ValueError, match="kmeans"):
        cluster_layer(cm, method="dbscan")


def test_degenerate_layers():
    one, info = cluster_layer(np.array([[1.0, 2.0, 3.0]]))
    assert one.tolist() == [0] and info["k"] == 1
    const, info = cluster_layer(np.full((12, 5), 0.3))
    assert const.tolist() == [0] * 12
    two, _ = cluster_layer(np.array([[1.0, 0.0], [0.0, 1.0]]))
    assert two.tolist() == [0, 0]
    bad = np.ones((4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf for channels \[2\]"):
        cluster_layer(bad, layer="conv9")
    with pytest.raises(ValueError, match="empty"):
        cluster_layer(np.zeros((0, 3)))


def test_analyze_per_layer_dict_and_layer_selection():
    cm1, _ = _planted()
    cm2, _ = _planted(sizes=(5, 5), seed=1)
    rec = recording(
        [
            layer_record("l1", "conv", cm1),
            layer_record("l2", "conv", cm2),
            layer_record("l3", "conv", cm2[:1]),
        ]
    )
    a = cnnvis.analyze(rec, n_clusters={"l1": 2})
    assert a.layers == ["l1", "l2", "l3"]
    assert a.n_clusters("l1") == 2 and a.n_clusters("l2") == 2 and a.n_clusters("l3") == 1
    members = np.sort(np.concatenate(a.clusters("l1")))
    np.testing.assert_array_equal(members, np.arange(cm1.shape[0]))
    b = cnnvis.analyze(rec, layers=["l2", "l1"])
    assert b.layers == ["l1", "l2"]
    with pytest.raises(KeyError, match="not recorded"):
        cnnvis.analyze(rec, layers=["nope"])


def test_silhouette_matches_scikit_learn():
    from scipy.spatial.distance import cdist
    from sklearn.metrics import silhouette_score

    from cnnvis.analysis.clusters import silhouette

    rng = np.random.default_rng(5)
    x = rng.random((60, 4))
    lab = rng.integers(0, 5, 60)
    lab[3] = 9  # a singleton cluster scores 0
    assert silhouette(cdist(x, x), lab) == pytest.approx(silhouette_score(x, lab), abs=1e-12)
