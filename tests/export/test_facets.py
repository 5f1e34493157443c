"""`python -m cnnvis export facets SESSION --out DIR` on a saved session."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import cnnvis
from child_env import child_env
from cnnvis.analysis import load_analysis
from cnnvis.export.facets import colormap, render_matrix
from cnnvis.record.recording import LayerRecord, Recording


def _recording():
    rng = np.random.default_rng(0)
    protos = rng.random((3, 10)) * 2
    cm = np.vstack([protos[i % 3] + rng.normal(0, 0.03, 10) for i in range(12)]).astype(np.float32)
    n, k, p = 12, 4, 8
    layer = LayerRecord(
        "features.0",
        "conv",
        cm,
        rng.normal(size=(50, n)).astype(np.float32),
        np.sort(rng.random((n, k)), axis=1)[:, ::-1].astype(np.float32),
        rng.integers(0, 50, (n, k)),
        np.tile(np.array([0, 0, p, p], np.int32), (n, k, 1)),
        rng.integers(0, 256, (n, k, p, p, 1), dtype=np.uint8),
    )
    import networkx as nx

    return Recording(
        model_name="Tiny",
        class_names=[str(i) for i in range(10)],
        input_shape=(1, 8, 8),
        labels=np.arange(50) % 10,
        predictions=np.arange(50) % 10,
        confidences=np.ones(50, np.float32),
        pooled_index=np.arange(50),
        pooled_images=np.zeros((50, 8, 8, 1), np.uint8),
        layers={"features.0": layer},
        weights={},
        graph=nx.DiGraph(),
    )


@pytest.fixture
def session(tmp_path):
    from cnnvis.session import save_recording

    path = tmp_path / "sess"
    save_recording(_recording(), path)
    return path


def test_cli_writes_legible_pngs_that_follow_the_saved_edits(session, tmp_path):
    rec = cnnvis.load(session)
    an = cnnvis.analyze(rec)
    assert an.n_clusters("features.0") == 3
    an.extract_neuron("features.0", 4)  # a fourth cluster, saved with the session
    an.save(session)
    out = tmp_path / "facets"
    env = child_env()
    res = subprocess.run(
        [sys.executable, "-m", "cnnvis", "export", "facets", str(session), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    index = json.loads((out / "facets.json").read_text())
    assert len(index["facets"]) == 4
    assert [f["neurons"] for f in index["facets"] if f["cluster"] == 3] == [[4]]
    for f in index["facets"]:
        for key in ("matrix", "features"):
            with Image.open(out / f[key]) as im:
                assert im.mode == "RGB"
                assert 150 <= im.width <= 2000 and 80 <= im.height <= 2000
    # the matrix PNG shows the facet's colours: cell centres carry colormap(normalized)
    back = load_analysis(session, rec)
    m = back.activation_matrix("features.0", 0)
    img = np.asarray(render_matrix(m, rec.class_names))
    want = colormap(m.normalized)
    found = 0
    for r in range(want.shape[0]):
        for c in range(want.shape[1]):
            hits = np.all(img == want[r, c], axis=2)
            found += bool(hits.sum() >= 100)  # a cell of >= 10x10 pixels in that colour
    assert found == want.shape[0] * want.shape[1]


def test_missing_session_is_a_clear_error(tmp_path):
    env = child_env()
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnvis",
            "export",
            "facets",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode != 0
    assert "does not exist" in res.stderr + res.stdout
