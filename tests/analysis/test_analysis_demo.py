"""End to end on the built-in demo session (``demo_session`` fixture, tests/conftest.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import cnnvis
from child_env import child_env
from cnnvis.analysis import load_analysis


@pytest.fixture
def demo_copy(demo_session, tmp_path):
    """A private copy: the analysis written here must not leak into other tests' demo."""
    dst = tmp_path / "demo"
    shutil.copytree(demo_session, dst)
    return dst


@pytest.mark.slow
def test_demo_analysis_edit_save_export(demo_copy, tmp_path):
    rec = cnnvis.load(demo_copy)
    an = cnnvis.analyze(rec)
    for layer in an.layers:
        lab = an.labels[layer]
        assert lab.shape == (rec.layer(layer).n_channels,)
        assert set(np.unique(lab)) == set(range(an.n_clusters(layer)))
        assert 1 <= an.n_clusters(layer) <= 10
    np.testing.assert_array_equal(cnnvis.analyze(rec).labels[an.layers[1]], an.labels[an.layers[1]])
    assert len(an.layer_pairs) >= len(an.layers) - 1
    for a, b in an.layer_pairs:
        cc = an.connections(a, b)
        assert cc.layout == "bicluster_edges" and cc.notes == []
        assert np.abs(cc.strength).max() > 0
    # a move, refreshed for the viewer: facets of the layer and every connection (how fast:
    # benchmarks/edits.py)
    layer = an.layers[2]
    src = an.cluster_of(layer, 5)
    dst = (src + 1) % an.n_clusters(layer)
    for c in range(an.n_clusters(layer)):
        an.learned_features(layer, c)
    an.move_neuron(layer, 5, dst)
    dst = an.cluster_of(layer, 5)
    for c in range(an.n_clusters(layer)):
        an.activation_matrix(layer, c)
        an.learned_features(layer, c)
    for a, b in an.layer_pairs:
        an.connections(a, b)
    assert 5 in an.activation_matrix(layer, dst).neurons
    proj = an.projection(an.layers[-2])
    assert proj.method == "tsne"
    assert proj.coords.shape == (rec.pooled(an.layers[-2]).shape[0], 2)
    # classes separate in the t-SNE of the trained penultimate layer: 10-NN votes in 2-D
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    acc = cross_val_score(KNeighborsClassifier(10), proj.coords, rec.pooled_labels, cv=3).mean()
    assert acc > 0.85
    an.save(demo_copy)

    back = load_analysis(demo_copy, cnnvis.load(demo_copy))
    assert back.cluster_of(layer, 5) == dst and back.history == an.history
    out = tmp_path / "facets"
    env = child_env()
    res = subprocess.run(
        [sys.executable, "-m", "cnnvis", "export", "facets", str(demo_copy), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    index = json.loads((out / "facets.json").read_text())
    entry = [f for f in index["facets"] if f["layer"] == layer and f["cluster"] == dst]
    assert len(entry) == 1 and 5 in entry[0]["neurons"]
    assert len(index["facets"]) == sum(back.n_clusters(n) for n in back.layers)
    for f in index["facets"]:
        with Image.open(out / f["features"]) as im:
            assert 300 <= im.width <= 4000 and im.height >= 100
        with Image.open(out / f["matrix"]) as im:
            assert im.width >= 200 and im.height >= 100
