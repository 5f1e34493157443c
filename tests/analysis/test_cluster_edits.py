"""Edits (C7): move, extract, merge, split, recluster; undo/redo; save/load re-applies them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from analysis_helpers import blobs_class_means, layer_record, recording

import cnnvis
from cnnvis.analysis import load_analysis


@pytest.fixture
def rec():
    cm = blobs_class_means([6, 8, 5], n_classes=6, noise=0.02)
    cm2 = blobs_class_means([4, 4], n_classes=6, seed=1, noise=0.02)
    return recording([layer_record("a", "conv", cm), layer_record("b", "conv", cm2, seed=1)])


def test_move_then_facets_follow_and_survive_save_load(rec, tmp_path):
    an = cnnvis.analyze(rec)
    assert an.n_clusters("a") == 3
    before = an.activation_matrix("a", 2)
    assert 0 not in before.neurons
    an.move_neuron("a", 0, 2)
    assert an.cluster_of("a", 0) == 2
    assert 0 in an.activation_matrix("a", 2).neurons  # cache dropped for the touched layer
    assert 0 in an.learned_features("a", 2).neurons
    assert 0 not in an.activation_matrix("a", 0).neurons
    an.save(tmp_path)
    doc = json.loads((tmp_path / "analysis.json").read_text())
    assert doc["history"] == [{"op": "move", "layer": "a", "neuron": 0, "to": 2}]
    back = load_analysis(tmp_path, rec)
    np.testing.assert_array_equal(back.labels["a"], an.labels["a"])
    assert 0 in back.activation_matrix("a", 2).neurons
    assert 0 in back.learned_features("a", 2).neurons
    # the edit is undoable after a load, back to the original clustering
    back.undo()
    np.testing.assert_array_equal(back.labels["a"], cnnvis.analyze(rec).labels["a"])
    # analyze(session=...) picks the saved analysis up when the parameters match
    again = cnnvis.analyze(rec, session=tmp_path)
    assert again.history == an.history
    fresh = cnnvis.analyze(rec, session=tmp_path, n_clusters=2)
    assert fresh.history == [] and fresh.n_clusters("a") == 2


def test_undo_redo_sequence(rec):
    an = cnnvis.analyze(rec)
    states = [an.labels["a"].copy()]
    an.extract_neuron("a", 3)
    states.append(an.labels["a"].copy())
    assert an.n_clusters("a") == 4 and an.clusters("a")[3].tolist() == [3]
    an.merge_clusters("a", [1, 2])
    states.append(an.labels["a"].copy())
    assert an.n_clusters("a") == 3
    parts = an.split_cluster("a", 1, k=2)
    states.append(an.labels["a"].copy())
    assert parts == [1, 3] and an.n_clusters("a") == 4
    rev = an.revision
    for expect in states[-2::-1]:
        an.undo()
        np.testing.assert_array_equal(an.labels["a"], expect)
    assert an.revision > rev and not an.can_undo and an.undo() is None
    for expect in states[1:]:
        an.redo()
        np.testing.assert_array_equal(an.labels["a"], expect)
    assert an.redo() is None
    an.undo()
    an.move_neuron("b", 0, 1)  # a new edit clears the redo stack
    assert not an.can_redo
    assert an.layer_revision["b"] == an.revision


def test_merge_and_split_recover_planted_groups(rec):
    an = cnnvis.analyze(rec)
    original = [c.tolist() for c in an.clusters("a")]
    an.merge_clusters("a", [0, 2])
    assert an.n_clusters("a") == 2
    an.split_cluster("a", 0)
    got = sorted(c.tolist() for c in an.clusters("a"))
    assert got == sorted(original)


def test_emptied_cluster_is_removed_and_ids_shift(rec):
    an = cnnvis.analyze(rec, n_clusters=3)
    an.extract_neuron("a", 0)  # cluster 3 = [0]
    an.move_neuron("a", 0, 1)  # cluster 3 empties and disappears
    assert an.n_clusters("a") == 3
    an.recluster("a", n_clusters=2)
    assert an.n_clusters("a") == 2


def test_bad_edits_raise_and_record_nothing(rec):
    an = cnnvis.analyze(rec)
    with pytest.raises(ValueError, match="cluster 9 does not exist"):
        an.move_neuron("a", 0, 9)
    with pytest.raises(ValueError, match="neuron 99 does not exist"):
        an.move_neuron("a", 99, 0)
    with pytest.raises(ValueError, match="at least two"):
        an.merge_clusters("a", [1, 1])
    with pytest.raises(ValueError, match="cannot split"):
        an.extract_neuron("a", 0)
        an.split_cluster("a", an.cluster_of("a", 0))
    with pytest.raises(KeyError, match="not analysed"):
        an.move_neuron("zz", 0, 0)
    assert [e["op"] for e in an.history] == ["extract"]


def test_corrupt_or_foreign_analysis_files(rec, tmp_path):
    with pytest.raises(FileNotFoundError):
        load_analysis(tmp_path, rec)
    (tmp_path / "analysis.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_analysis(tmp_path, rec)
    an = cnnvis.analyze(rec)
    an.save(tmp_path)
    doc = json.loads((tmp_path / "analysis.json").read_text())
    doc["version"] = 99
    (tmp_path / "analysis.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="newer"):
        load_analysis(tmp_path, rec)
    other = recording([layer_record("a", "conv", np.random.default_rng(0).random((5, 6)))])
    an.save(tmp_path)
    with pytest.raises(ValueError, match="another recording"):
        load_analysis(tmp_path, other)
    assert not list(tmp_path.glob("*.tmp"))


def test_saved_as_a_checksummed_session_part(rec, tmp_path):
    from cnnvis.session import SessionError, save_recording, verify

    sess = tmp_path / "sess"
    save_recording(rec, sess)
    an = cnnvis.analyze(rec)
    an.move_neuron("a", 1, 2)
    an.projection("b")
    an.save(sess)
    verify(sess)  # the manifest lists the part with its checksums
    loaded = cnnvis.load(sess)
    back = load_analysis(sess, loaded)
    np.testing.assert_array_equal(back.labels["a"], an.labels["a"])
    np.testing.assert_array_equal(back.projection("b").coords, an.projection("b").coords)
    assert cnnvis.analyze(loaded, session=sess).history == an.history
    doc = json.loads((sess / "analysis.json").read_text())
    doc["labels"]["a"][0] = 5
    (sess / "analysis.json").write_text(json.dumps(doc))
    with pytest.raises(SessionError, match="analysis.json"):
        load_analysis(sess, loaded)


def test_drill_into_a_merged_cluster_finds_the_planted_groups(rec):
    an = cnnvis.analyze(rec)
    original = sorted(c.tolist() for c in an.clusters("a"))
    an.merge_clusters("a", [0, 2])
    parts = an.drill_cluster("a", 0)
    assert parts == [0, 2]
    assert an.history[-1] == {
        "op": "split",
        "layer": "a",
        "cluster": 0,
        "k": None,
        "random_state": an.random_state,
    }
    assert sorted(c.tolist() for c in an.clusters("a")) == original


def test_drill_into_a_cluster_of_the_demo_recording(demo_session, tmp_path):
    """Drilling into the widest cluster of the demo's widest layer gives legible sub-clusters of
    the same neurons, the same ones every time; undo restores the layer and a saved drill is
    replayed on loading."""
    import shutil

    from cnnvis.session import open_session

    path = tmp_path / "demo"
    shutil.copytree(demo_session, path)
    an = open_session(path)
    layer = max(an.layers, key=lambda name: an.labels[name].size)
    before = an.labels[layer].copy()
    big = int(np.bincount(before).argmax())
    members = np.flatnonzero(before == big)
    parts = an.drill_cluster(layer, big)
    after = an.labels[layer]
    assert len(parts) >= 2 and an.n_clusters(layer) == before.max() + len(parts)
    assert np.array_equal(np.sort(np.flatnonzero(np.isin(after, parts))), members)
    assert np.array_equal(after[before != big], before[before != big])  # others untouched
    sizes = np.bincount(after[members])[parts]
    assert sizes.min() >= 1 and sizes.sum() == members.size
    an.save(path)
    again = open_session(path)  # replays the drill from the saved history
    assert again is not an
    np.testing.assert_array_equal(again.labels[layer], after)
    an.undo()
    np.testing.assert_array_equal(an.labels[layer], before)
    with pytest.raises(ValueError, match="cannot drill"):
        an.extract_neuron(layer, int(members[0]))
        an.drill_cluster(layer, an.cluster_of(layer, int(members[0])))
