"""The activation matrices' row orders are saved with the analysis and read back, never trusted
when the profiles they were searched for changed."""

from __future__ import annotations

import json

from analysis_helpers import blobs_class_means, layer_record, recording

import cnnvis
from cnnvis.analysis import load_analysis
from cnnvis.analysis.facets import row_order


def _rec(seed: int = 0):
    cm = blobs_class_means([6, 8, 5], n_classes=6, noise=0.05, seed=seed)
    return recording([layer_record("a", "conv", cm)])


def _rows(an) -> list[list[int]]:
    return [an.activation_matrix("a", c).neurons.tolist() for c in range(an.n_clusters("a"))]


def test_saved_row_orders_are_read_back_not_searched(tmp_path):
    rec = _rec()
    an = cnnvis.analyze(rec)
    want = _rows(an)
    assert an.unsaved_row_orders
    an.save(tmp_path)
    assert not an.unsaved_row_orders
    doc = json.loads((tmp_path / "analysis.json").read_text())
    assert sorted(r for _how, r in doc["row_orders"]["a"]["clusters"]) == sorted(want)
    back = load_analysis(tmp_path, rec)
    assert _rows(back) == want
    assert not back.unsaved_row_orders  # every order came from the file
    # a cluster edited since is ordered afresh; the others still come from the file
    back.merge_clusters("a", [0, 1])
    merged = back.activation_matrix("a", 0).neurons
    assert back.unsaved_row_orders and sorted(merged.tolist()) == sorted(want[0] + want[1])


def test_orders_saved_for_other_profiles_or_other_neurons_are_ignored(tmp_path):
    rec = _rec()
    an = cnnvis.analyze(rec)
    want = _rows(an)
    an.save(tmp_path)
    path = tmp_path / "analysis.json"
    doc = json.loads(path.read_text())
    # another recording with the same shape: the fingerprint differs, the orders are searched
    other = load_analysis(tmp_path, _rec(seed=1))
    searched = []
    for members in other.clusters("a"):
        order, _how = row_order(other.profiles("a")[members])
        searched.append(members[order].tolist())
    assert _rows(other) == searched
    assert other.unsaved_row_orders
    # a damaged entry (a neuron the layer does not have) is skipped, never indexed
    doc["row_orders"]["a"]["clusters"][0][1][0] = 999
    path.write_text(json.dumps(doc))
    back = load_analysis(tmp_path, rec)
    assert _rows(back) == want
    # reversed orders in the file are used as they are: the file is what is read
    doc = json.loads(json.dumps(an.to_dict()))
    for entry in doc["row_orders"]["a"]["clusters"]:
        entry[1] = entry[1][::-1]
    path.write_text(json.dumps(doc))
    assert _rows(load_analysis(tmp_path, rec)) == [r[::-1] for r in want]


def _facets(an, k: int = 4) -> list:
    return [an.learned_features("a", c, patches_per_neuron=k) for c in range(an.n_clusters("a"))]


def test_tile_positions_are_saved_and_read_back_for_the_same_tiles(tmp_path):
    rec = _rec()
    an = cnnvis.analyze(rec)
    want = _facets(an)
    an.save(tmp_path)
    path = tmp_path / "analysis.json"
    doc = json.loads(path.read_text())
    assert len(doc["row_orders"]["a"]["tiles"]) == an.n_clusters("a")
    back = load_analysis(tmp_path, rec)
    for got, lf in zip(_facets(back), want):
        assert got.image.tobytes() == lf.image.tobytes()
        assert got.placements.tolist() == lf.placements.tolist() and got.layout == lf.layout
    assert not back.unsaved_row_orders  # every position came from the file
    _facets(back, k=1)  # other tile sizes: packed afresh
    assert back.unsaved_row_orders
    # damaged entries are packed afresh, never trusted
    doc["row_orders"]["a"]["tiles"][0] = "not an entry"
    doc["row_orders"]["a"]["tiles"][1][3] = [[-5, 0]] * len(doc["row_orders"]["a"]["tiles"][1][1])
    path.write_text(json.dumps(doc))
    again = load_analysis(tmp_path, rec)
    assert [f.image.tobytes() for f in _facets(again)] == [f.image.tobytes() for f in want]
    assert again.unsaved_row_orders
