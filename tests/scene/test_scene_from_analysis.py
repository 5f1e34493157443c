"""The scene of a real recording's analysis, and of a saved session folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cnnvis
from cnnvis.record import record
from cnnvis.scene import build_scene


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(12 * 4, 5)

    def forward(self, x):
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


@pytest.fixture(scope="module")
def analysis():
    torch.manual_seed(0)
    model = Small().eval()
    x = torch.randn(60, 1, 10, 10)
    y = torch.arange(60) % 5
    rec = record(
        model, (x, y), layers=["relu1", "relu2", "fc"], top_k=3, progress=False, patch_size=6
    )
    return cnnvis.analyze(rec)


def test_scene_has_the_analysis_objects(analysis):
    scene = build_scene(analysis, facet="features")
    ov = scene.panels["overview"]
    want = {
        ("cluster", name, c) for name in analysis.layers for c in range(analysis.n_clusters(name))
    }
    assert {i for i in ov.rects.ids if i[0] == "cluster"} == want
    n_curves = 0
    for a, b in analysis.layer_pairs:
        cc = analysis.connections(a, b)
        n_curves += sum(len(bc.rows) + len(bc.cols) for bc in cc.biclusters) + len(cc.direct_edges)
    assert len(ov.lines) == n_curves
    rec = analysis.recording
    pts = scene.panels["projection"].points
    assert pts.ids == [("sample", int(i)) for i in rec.pooled_index]
    assert np.array_equal(
        pts.marked, rec.labels[rec.pooled_index] != rec.predictions[rec.pooled_index]
    )
    # every neuron of every layer has a box in its cluster
    for name in analysis.layers:
        n = rec.layer(name).n_channels
        assert all((name, ch) in scene.neuron_boxes for ch in range(n))
    # the matrix facet shows each cluster's activation matrix, rows in the analysis' order
    mat = build_scene(analysis, facet="matrix", projection=False)
    imgs = mat.panels["overview"].images
    am = analysis.activation_matrix("relu2", 0)
    k = imgs.ids.index(("cluster", "relu2", 0))
    assert imgs.data[k].shape[:2] == am.values.shape


def test_scene_and_export_take_an_analysis_and_load_nothing(analysis, tmp_path):
    """Opening a session is the caller's (cnnvis.session.open_session): a path given to the
    scene or an exporter is a TypeError that says so, never a quiet load."""
    from cnnvis.export.facets import export_facets
    from cnnvis.export.png import export_png
    from cnnvis.export.svg import export_svg
    from cnnvis.session import open_session, save_recording

    path = save_recording(analysis.recording, tmp_path / "s")
    scene = build_scene(open_session(path), projection=False)
    assert {c[0] for c in scene.cluster_rects} == set(analysis.layers)
    for export in (export_svg, export_png):
        with pytest.raises(TypeError, match="open_session"):
            export(str(path), tmp_path / "o.svg", size="640x400")
    with pytest.raises(TypeError, match="open_session"):
        export_facets(path, tmp_path / "f")
    with pytest.raises(TypeError, match="Analysis"):
        build_scene(str(path))
    assert not (tmp_path / "o.svg").exists() and not (tmp_path / "f").exists()
