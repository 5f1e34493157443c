"""End to end on a real recording: a small branching torch model recorded with cnnvis.record."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import cnnvis
from cnnvis.record import record


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.relu2 = nn.ReLU()
        self.a = nn.Conv2d(8, 4, 1)
        self.b = nn.Conv2d(8, 5, 3, padding=1)
        self.relu3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(9 * 4, 6)

    def forward(self, x):
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)) + x)
        x = self.relu3(torch.cat([self.a(x), self.b(x)], 1))
        return self.fc(torch.flatten(self.pool(x), 1))


@pytest.fixture(scope="module")
def rec():
    torch.manual_seed(0)
    model = Branchy()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for bn in (model.bn1, model.bn2):
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    model.eval()
    x = torch.randn(96, 1, 12, 12)
    y = torch.arange(96) % 6
    return record(
        model,
        (x, y),
        layers=["relu1", "relu2", "relu3", "fc"],
        top_k=4,
        progress=False,
        patch_size=8,
    ), model


def test_connections_on_a_recorded_branching_model(rec):
    rec, model = rec
    an = cnnvis.analyze(rec)
    assert an.layers == ["relu1", "relu2", "relu3", "fc"]
    assert an.layer_pairs == [("relu1", "relu2"), ("relu2", "relu3"), ("relu3", "fc")]

    def ksum(conv):
        return conv.weight.detach().double().sum((2, 3)).numpy()

    bn2 = model.bn2
    s2 = (bn2.weight / torch.sqrt(bn2.running_var + bn2.eps)).detach().double().numpy()
    expect12 = (s2[:, None] * ksum(model.conv2) + np.eye(8)).T  # branch + identity skip
    np.testing.assert_allclose(an.neuron_strengths("relu1", "relu2").strength, expect12, rtol=1e-5)
    expect23 = np.vstack([ksum(model.a), ksum(model.b)]).T  # concatenated index ranges
    np.testing.assert_allclose(an.neuron_strengths("relu2", "relu3").strength, expect23, rtol=1e-5)
    wfc = model.fc.weight.detach().double().numpy()
    expect3f = wfc.reshape(6, 9, 4).sum(-1).T  # linear after flatten, summed per channel
    np.testing.assert_allclose(an.neuron_strengths("relu3", "fc").strength, expect3f, rtol=1e-5)
    for a, b in an.layer_pairs:
        cc = an.connections(a, b)
        assert cc.positive.shape == (an.n_clusters(a), an.n_clusters(b))
        assert np.all(cc.positive >= 0) and np.all(cc.negative <= 0)
        drawn = {(i, j, s) for i, j, s, _ in cc.edges()}
        assert cc.layout == "bicluster_edges"
        covered = [tuple(int(v) for v in e) for e in cc.direct_edges]
        for bc in cc.biclusters:
            covered += [(int(i), int(j), bc.sign) for i, j in bc.edges]
            assert set(bc.edges[:, 0]) <= set(bc.rows) and set(bc.edges[:, 1]) <= set(bc.cols)
        assert sorted(covered) == sorted(drawn)  # every drawn edge exactly once
    inc = an.incoming("relu3", 2)
    assert list(inc) == ["relu2"]
    np.testing.assert_allclose(inc["relu2"], expect23[:, 2])
    out = an.outgoing("relu3", 7)
    assert list(out) == ["fc"]
    np.testing.assert_allclose(out["fc"], expect3f[7])
    with pytest.raises(ValueError, match="neuron 9 does not exist"):
        an.incoming("relu3", 9)
    groups = an.groups
    assert [m for g in groups for m in g.layers] == an.layers


def test_facets_and_export_on_a_recorded_model(rec, tmp_path):
    from PIL import Image

    from cnnvis.export.facets import export_facets

    rec, _ = rec
    an = cnnvis.analyze(rec)
    lf = an.learned_features("relu1", 0)
    lr = rec.layer("relu1")
    for i, ch in enumerate(lf.neurons):
        x, y, w, h = lf.patch_boxes[i][0]
        patch = lr.top_patches[ch, 0]
        patch = np.repeat(patch, 3, axis=2) if patch.shape[2] == 1 else patch
        np.testing.assert_array_equal(lf.image[y : y + h, x : x + w], patch)
    out = export_facets(an, tmp_path / "facets")
    files = sorted(p.name for p in out.glob("*.png"))
    assert len(files) == 2 * sum(an.n_clusters(n) for n in an.layers)
    with Image.open(out / "relu1__c00_matrix.png") as im:
        assert im.mode == "RGB" and im.width >= 150 and im.height >= 100
    with Image.open(out / "relu1__c00_features.png") as im:
        assert im.width >= 300
