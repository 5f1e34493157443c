"""Cluster connections are saved with the analysis and read back, never trusted when the
clusters or the recording they were computed for changed; learned-feature facets hold each
neuron's own top patches however the recording keeps them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import cnnvis
from cnnvis.analysis import load_analysis
from cnnvis.analysis.connections import aggregate


@pytest.fixture
def saved(demo_session, tmp_path):
    """The demo's recording and a plain folder holding its analysis with every connection."""
    rec = cnnvis.load(demo_session)
    an = cnnvis.analyze(rec)
    fresh = {pair: an.connections(*pair) for pair in an.layer_pairs}
    assert an.unsaved_row_orders  # connections computed: the next save keeps them
    an.save(tmp_path)
    assert not an.unsaved_row_orders
    return rec, tmp_path, fresh


def _assert_same(got, want) -> None:
    for name in ("positive", "negative", "counts", "direct_edges", "labels_a", "labels_b"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        assert getattr(got, name).dtype == getattr(want, name).dtype
    assert (got.threshold, got.layout, got.notes) == (want.threshold, want.layout, want.notes)
    assert len(got.biclusters) == len(want.biclusters)
    for b, w in zip(got.biclusters, want.biclusters):
        assert b.sign == w.sign
        for name in ("rows", "cols", "edges"):
            np.testing.assert_array_equal(getattr(b, name), getattr(w, name))


def test_saved_connections_are_read_back_with_their_strengths(saved):
    rec, folder, fresh = saved
    back = load_analysis(folder, rec)
    for pair, want in fresh.items():
        _assert_same(back.connections(*pair), want)
    assert not back.unsaved_row_orders  # every connection came from the file
    for pair, want in fresh.items():  # the neuron strengths are computed when read
        np.testing.assert_array_equal(back.connections(*pair).strength, want.strength)


def test_an_edit_recomputes_the_connections_and_undo_reads_them_again(saved):
    rec, folder, fresh = saved
    back = load_analysis(folder, rec)
    a, b = next(p for p in back.layer_pairs if back.n_clusters(p[0]) >= 2)
    back.merge_clusters(a, [0, 1])
    got = back.connections(a, b)
    want = aggregate(back.neuron_strengths(a, b), back.labels[a], back.labels[b])
    _assert_same(got, want)
    assert back.unsaved_row_orders and got.positive.shape[0] == fresh[(a, b)].positive.shape[0] - 1
    back.undo()  # the saved clusters again: the saved connection holds again
    _assert_same(back.connections(a, b), fresh[(a, b)])


def test_damaged_or_foreign_saved_connections_are_computed_afresh(saved):
    rec, folder, fresh = saved
    path = folder / "analysis.json"
    doc = json.loads(path.read_text())
    assert len(doc["connections"]) == len(fresh)
    doc["connections"][0]["biclusters"] = [[[999], [0], 1, [[999, 0]]]]  # no such cluster
    doc["connections"][1]["stamp"] = "0" * 32  # computed for other clusters or data
    doc["connections"][2]["direct"] = "not a list of edges"
    path.write_text(json.dumps(doc))
    back = load_analysis(folder, rec)
    for pair, want in fresh.items():
        _assert_same(back.connections(*pair), want)
    assert back.unsaved_row_orders  # the three were computed again


def test_learned_features_hold_each_neurons_first_valid_patches(demo_session, tmp_path):
    rec = cnnvis.load(demo_session)
    an = cnnvis.analyze(rec)
    layer = an.layers[1]
    top = rec.layer(layer)
    patches = np.asarray(top.top_patches)
    images = []
    for c in range(an.n_clusters(layer)):
        lf = an.learned_features(layer, c, patches_per_neuron=3)
        images.append(lf.image)
        for i, ch in enumerate(lf.neurons):
            ok = np.flatnonzero((top.top_samples[ch] >= 0) & np.isfinite(top.top_values[ch]))[:3]
            np.testing.assert_array_equal(lf.patch_samples[i], top.top_samples[ch][ok])
            for (x, y, w, h), j in zip(lf.patch_boxes[i], ok):
                want = patches[ch, j]
                want = np.repeat(want, 3, axis=2) if want.shape[2] == 1 else want[:, :, :3]
                np.testing.assert_array_equal(lf.image[y : y + h, x : x + w], want)
    # the same recording with its patches cut beforehand gives the same pictures
    copy = tmp_path / "copy"
    shutil.copytree(demo_session, copy)
    rec2 = cnnvis.load(copy)
    rec2.layer(layer).top_patches = np.asarray(rec2.layer(layer).top_patches)
    an2 = cnnvis.analyze(rec2)
    for c, img in enumerate(images):
        np.testing.assert_array_equal(
            an2.learned_features(layer, c, patches_per_neuron=3).image, img
        )


def _all_facets(an) -> list[bytes]:
    return [
        an.learned_features(layer, c).image.tobytes()
        for layer in an.layers
        for c in range(an.n_clusters(layer))
    ]


def test_small_patch_tables_are_saved_and_read_back(demo_session, tmp_path, monkeypatch):
    from cnnvis.analysis import patchcache

    rec = cnnvis.load(demo_session)
    an = cnnvis.analyze(rec)
    want = _all_facets(an)
    an.save(tmp_path)
    doc = json.loads((tmp_path / "analysis.json").read_text())
    assert sorted(layer for layer, *_ in doc["patches"]) == sorted(an.layers)
    back = load_analysis(tmp_path, rec)
    assert _all_facets(back) == want
    assert not back.unsaved_row_orders  # no layer was cut again
    # a table saved for other top-k entries (another recording) is cut afresh
    doc["patches"][0][2] = "0" * 32
    (tmp_path / "analysis.json").write_text(json.dumps(doc))
    other = load_analysis(tmp_path, rec)
    assert _all_facets(other) == want and other.unsaved_row_orders
    # too big to keep: nothing saved, the facets are cut at every opening
    monkeypatch.setattr(patchcache, "LIMIT_BYTES", 0)
    other.save(tmp_path)
    assert json.loads((tmp_path / "analysis.json").read_text())["patches"] == []
