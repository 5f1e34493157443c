"""A failure inside cnnvis's own layout code is raised, never turned into a quiet stand-in.

The analysis used to catch ``ImportError``, ``AttributeError`` and ``NotImplementedError`` around
the C++ core's row orders, packing, biclustering and t-SNE, and around the layer groups, and
fell back to a greedy path, a grid, direct edges, PCA or one band per layer: a typo in our own
code looked like a missing optional feature. Here each layout function is replaced by one that
fails the way a bug would, and the error must reach the caller.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import cnnvis.graph
import cnnvis.layout
from cnnvis.analysis.bands import layer_bands
from cnnvis.analysis.connections import NeuronStrengths, aggregate
from cnnvis.analysis.facets import project_pooled, row_order


def _bug(*_args, **_kwargs):
    raise AttributeError("'NoneType' object has no attribute 'rows' (a bug in our own code)")


def _strengths() -> NeuronStrengths:
    rng = np.random.default_rng(0)
    return NeuronStrengths("a", "b", "weight", rng.normal(size=(6, 8)))


def test_the_real_layout_functions_are_used():
    cc = aggregate(_strengths(), np.arange(6) % 3, np.arange(8) % 4)
    assert cc.layout == "bicluster_edges" and len(cc.edges()) > 0
    x = np.random.default_rng(1).normal(size=(7, 5))
    order, how = row_order(x)
    assert how == "hamiltonian_path" and sorted(order.tolist()) == list(range(7))
    proj = project_pooled("a", np.random.default_rng(2).normal(size=(30, 4)), 5.0, 0)
    assert proj.method == "tsne" and proj.coords.shape == (30, 2)


def test_a_bug_in_biclustering_is_raised_not_turned_into_direct_edges(monkeypatch):
    monkeypatch.setattr(cnnvis.layout, "bicluster_edges", _bug, raising=False)
    with pytest.raises(AttributeError, match="a bug in our own code"):
        aggregate(_strengths(), np.arange(6) % 3, np.arange(8) % 4)


def test_a_bug_in_the_row_order_is_raised_not_turned_into_a_greedy_path(monkeypatch):
    def not_implemented(*_args, **_kwargs):
        raise NotImplementedError("hamiltonian_path: method 'auto' is not implemented")

    monkeypatch.setattr(cnnvis.layout, "hamiltonian_path", not_implemented, raising=False)
    with pytest.raises(NotImplementedError, match="hamiltonian_path"):
        row_order(np.random.default_rng(1).normal(size=(7, 5)))


def test_a_bug_in_tsne_is_raised_not_turned_into_pca(monkeypatch):
    monkeypatch.setattr(cnnvis.layout, "TSNE", _bug, raising=False)
    with pytest.raises(AttributeError, match="a bug in our own code"):
        project_pooled("a", np.random.default_rng(2).normal(size=(30, 4)), 5.0, 0)


def test_a_bug_in_the_layer_groups_is_raised_not_turned_into_one_band_per_layer(monkeypatch):
    g = nx.DiGraph()
    g.add_edge("a", "b")
    for n in g:
        g.nodes[n]["op"] = "conv"
    monkeypatch.setattr(cnnvis.graph, "layer_groups", _bug)
    with pytest.raises(AttributeError, match="a bug in our own code"):
        layer_bands(g, ["a", "b"])
