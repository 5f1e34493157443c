"""MLPs (issue 17, P5): an ``nn.Sequential`` of Linear + ReLU, trained on the digits, records
and gives every projection: neurons, samples, trajectories through layers and training, and
the exported pictures."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def mlp_recording():
    import cnnvis
    from cnnvis.data import load_dataset
    from cnnvis.record import snapshot_activations
    from cnnvis.training import train

    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)
    )
    untrained = copy.deepcopy(model).eval()
    train_data, test_data = (
        load_dataset("digits", split="train"),
        load_dataset("digits", split="test"),
    )
    train(model, train_data, epochs=8, lr=3e-3, progress=False)
    rec = cnnvis.record(model, test_data, progress=False)
    pooled, _ = snapshot_activations(
        untrained, test_data, rec.layer_names, indices=rec.pooled_index
    )
    rec.snapshots = [{"epoch": 0, "accuracy": float("nan"), "pooled": pooled}]
    return rec


def test_the_mlp_records_its_linear_and_relu_layers(mlp_recording):
    rec = mlp_recording
    assert len(rec.layer_names) >= 3
    assert rec.accuracy > 0.85


def test_every_projection_of_an_mlp(mlp_recording):
    from cnnvis.analysis import neuron_projection, sample_projection, trajectories

    rec = mlp_recording
    hidden = [n for n in rec.layer_names if rec.layer(n).n_channels in (64, 32)]
    last = hidden[-1]
    trained, untrained = neuron_projection(rec, last), neuron_projection(rec, last, snapshot=0)
    assert trained.coords.shape == (rec.layer(last).n_channels, 2)
    assert trained.score.mean() > untrained.score.mean()
    assert sample_projection(rec, last).neighbourhood_hit > 0.85
    assert (
        sample_projection(rec, last, 0).neighbourhood_hit
        < sample_projection(rec, last).neighbourhood_hit
    )
    through_layers = trajectories(rec, rec.layer_names)
    assert through_layers.positions.shape == (len(rec.pooled_index), len(rec.layer_names), 2)
    through_training = trajectories(rec, last, snapshots=[0, None], bundle=False)
    assert through_training.positions.shape == (len(rec.pooled_index), 2, 2)


def test_an_mlp_session_exports_its_pictures(mlp_recording, tmp_path):
    from PIL import Image

    from cnnvis.export.projections import export_projections

    out = export_projections(mlp_recording, tmp_path / "p", size=240, projector=False)
    pngs = sorted(out.glob("*.png"))
    assert {p.name.split("__")[0] for p in pngs} >= {"samples", "neurons", "trajectories"}
    for p in pngs:
        img = np.asarray(Image.open(p).convert("RGB"))
        assert (img != 255).any(axis=2).mean() > 0.01, p.name


@pytest.fixture(scope="module")
def flat_analysis():
    """An MLP on the digits as flat 64-vectors (no image shape anywhere), trained, recorded and
    analysed."""
    import cnnvis
    from cnnvis.data import load_dataset
    from cnnvis.training import train

    nn = torch.nn

    def flat(split):
        data = load_dataset("digits", split=split)
        x = torch.stack([data[i][0].reshape(-1) for i in range(len(data))])
        y = torch.tensor([int(data[i][1]) for i in range(len(data))])
        return torch.utils.data.TensorDataset(x, y)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 24), nn.ReLU())
    model.append(nn.Linear(24, 10))
    train(model, flat("train"), epochs=8, lr=3e-3, progress=False)
    rec = cnnvis.record(model.eval(), flat("test"), progress=False)
    return cnnvis.analyze(rec)


def test_an_mlp_on_flat_vectors_records(flat_analysis):
    rec = flat_analysis.recording
    assert rec.input_shape == (64,)
    assert rec.accuracy > 0.85
    # its pictures are the vectors laid out as the 8 x 8 digits they came from
    assert rec.pooled_images.shape[1:] == (8, 8, 1)
    assert len(rec.layer_names) >= 2
    assert all(rec.layer(n).n_channels in (48, 24, 10) for n in rec.layer_names)


def test_an_mlp_on_flat_vectors_analyses_and_renders(flat_analysis, tmp_path):
    from PIL import Image

    from cnnvis.analysis import neuron_projection, sample_projection
    from cnnvis.export.png import export_png

    analysis = flat_analysis
    hidden = analysis.layers[-2]
    assert analysis.activation_matrix(hidden, 0).values.shape[1] == 10
    assert sample_projection(analysis, hidden).neighbourhood_hit > 0.8
    assert neuron_projection(analysis, hidden).coords.shape[1] == 2
    out = export_png(analysis, tmp_path / "mlp.png", size="640x400", facet="matrix")
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[:2] == (400, 640)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # a picture, not a blank


def test_inputs_of_another_rank_are_refused():
    import cnnvis
    from cnnvis.record import RecordError

    data = torch.utils.data.TensorDataset(torch.rand(8, 4, 4), torch.zeros(8, dtype=torch.int64))
    with pytest.raises(RecordError, match=r"\(N, C, H, W\) or feature vectors of shape \(N, D\)"):
        cnnvis.record(torch.nn.Linear(4, 2), data, progress=False)


def test_image_shape_of_a_vector():
    from cnnvis.record.inputs import image_shape

    assert image_shape((64,)) == (1, 8, 8)
    assert image_shape((10,)) == (1, 2, 5)
    assert image_shape((7,)) == (1, 1, 7)
    assert image_shape((3, 32, 32)) == (3, 32, 32)


def test_a_functional_mlp_on_vectors_that_are_not_square_records():
    """Ten features are kept as 2 x 5 pictures; a layer behind functional ops (its receptive
    field measured by gradients on the vectors) records too."""
    import cnnvis

    nn, functional = torch.nn, torch.nn.functional

    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(10, 16), nn.Linear(16, 3)

        def forward(self, x):
            return self.fc2(functional.gelu(self.fc1(x)) * torch.sigmoid(x.sum(1, keepdim=True)))

    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.rand(30, 10), torch.arange(30) % 3)
    rec = cnnvis.record(Gated().eval(), data, progress=False)
    assert rec.layer_names == ["fc1", "fc2"]
    assert rec.input_shape == (10,) and rec.pooled_images.shape == (30, 2, 5, 1)
    assert rec.pooled(rec.layer_names[0]).shape == (30, 16)
