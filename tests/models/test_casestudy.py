"""Case-study models (C9), the training loop with snapshots, and `python -m cnnvis train`."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from cnnvis.cli import main
from cnnvis.graph import default_layers, layer_groups, model_graph
from cnnvis.models import BaseCNN, DeepCNN, ShallowCNN, build_model
from cnnvis.training import evaluate, load_snapshot, snapshot_paths, train


def counts(model, size=32, channels=3):
    g = model_graph(model, torch.zeros(1, channels, size, size))
    ops = [d["op"] for _, d in g.nodes(data=True)]
    return ops.count("conv"), ops.count("pool"), ops.count("linear"), g


@pytest.mark.parametrize(
    ("cls", "conv", "pool"), [(BaseCNN, 10, 4), (ShallowCNN, 7, 3), (DeepCNN, 20, 4)]
)
def test_layer_counts_follow_cnnvis(cls, conv, pool):
    model = cls(width=0.25)
    n_conv, n_pool, n_fc, g = counts(model)
    assert (n_conv, n_pool, n_fc) == (conv, pool, 2)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # groups: one per pooled block, then the two fully connected layers
    names = [grp.name for grp in layer_groups(g)]
    assert names == [
        "input",
        *[f"features.block{b + 1}" for b in range(pool)],
        "classifier.fc1",
        "classifier.fc2",
        "output",
    ]
    # default layers: the ReLU after every conv, then fc1's ReLU and the logits
    layers = default_layers(g)
    assert len(layers) == conv + 2 and layers[0] == "features.block1.relu1"
    assert layers[-2:] == ["classifier.relu", "classifier.fc2"]


def test_width_multiplies_channels():
    base = BaseCNN()
    wide = BaseCNN(width=2)
    narrow = build_model("BaseCNN", width=0.5)
    for name in ("features.block1.conv1", "features.block4.conv3", "classifier.fc1"):
        c = dict(base.named_modules())[name].weight.shape[0]
        assert dict(wide.named_modules())[name].weight.shape[0] == 2 * c
        assert dict(narrow.named_modules())[name].weight.shape[0] == c // 2
    assert base.features.block1.conv1.out_channels == 32
    assert base.features.block4.conv1.out_channels == 256
    n = [sum(p.numel() for p in m.parameters()) for m in (narrow, base, wide)]
    assert 3.5 < n[1] / n[0] < 4.1 and 3.5 < n[2] / n[1] < 4.1  # conv weights grow as w^2


def test_other_inputs_and_bad_arguments():
    model = build_model("shallowcnn", num_classes=5, in_channels=1, input_size=28, width=0.25)
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 5)
    plain = build_model("deepcnn", batch_norm=False, width=0.25)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    with pytest.raises(ValueError, match="too small"):
        build_model("basecnn", input_size=8)
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg")
    with pytest.raises(ValueError, match="width"):
        BaseCNN(width=0)


def stripes(n, seed):
    """Two classes: a bright left half or a bright right half, plus noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g) * 0.5
    y = torch.arange(n) % 2
    x[y == 0, :, :, :16] += 0.5
    x[y == 1, :, :, 16:] += 0.5
    return TensorDataset(x, y)


def test_training_learns_saves_snapshots_and_is_deterministic(tmp_path):
    train_set, test_set = stripes(48, 0), stripes(32, 1)

    def run(out):
        torch.manual_seed(3)
        model = ShallowCNN(num_classes=2, width=0.125)
        hist = train(
            model,
            train_set,
            test_set,
            epochs=3,
            lr=3e-3,
            batch_size=16,
            seed=7,
            device="cpu",
            snapshot_dir=out,
            progress=False,
        )
        return model, hist

    model, hist = run(tmp_path / "a")
    assert [row["epoch"] for row in hist["epochs"]] == [1, 2, 3]
    assert hist["initial"]["accuracy"] <= 0.75
    assert hist["final_test_accuracy"] >= 0.9
    assert hist["epochs"][-1]["train_loss"] < hist["epochs"][0]["train_loss"]
    assert not model.training
    paths = snapshot_paths(tmp_path / "a")
    assert [p.name for p in paths] == [
        "epoch_000.pt",
        "epoch_001.pt",
        "epoch_002.pt",
        "epoch_003.pt",
    ]
    assert (
        json.loads((tmp_path / "a" / "history.json").read_text())["final_test_accuracy"]
        == hist["final_test_accuracy"]
    )
    # the final snapshot reloads (weights_only) to the same scores; the untrained one to others
    fresh = ShallowCNN(num_classes=2, width=0.125)
    load_snapshot(fresh, tmp_path / "a" / "final.pt")
    assert evaluate(fresh, test_set)["accuracy"] == hist["final_test_accuracy"]
    load_snapshot(fresh, paths[0])
    assert evaluate(fresh, test_set)["accuracy"] == hist["initial"]["accuracy"]
    # same seeds: the same weights, bit for bit
    again, _ = run(tmp_path / "b")
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_training_errors(tmp_path):
    model = ShallowCNN(num_classes=2, width=0.125)
    bad = TensorDataset(torch.full((4, 3, 32, 32), float("nan")), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="epoch 1, batch 0"):
        train(model, bad, epochs=1, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train(model, bad, epochs=-1)
    with pytest.raises(ValueError, match="lr"):
        train(model, bad, epochs=1, lr=float("inf"))
    with pytest.raises(FileNotFoundError):
        load_snapshot(model, tmp_path / "none.pt")
    torch.save({"features.block1.conv1.weight": torch.zeros(1)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="do not fit the model"):
        load_snapshot(model, tmp_path / "wrong.pt")

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump(Payload(), fh, protocol=2)
    with pytest.raises(ValueError, match="cannot be read as a weights-only checkpoint"):
        load_snapshot(model, tmp_path / "evil.pt")


def write_cifar10(root, n, seed):
    rng = np.random.default_rng(seed)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        with open(d / name, "wb") as fh:
            pickle.dump({b"labels": labels, b"data": data}, fh, protocol=2)
    with open(d / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh, protocol=2)


def test_train_command_on_cifar10_files(tmp_path, capsys):
    write_cifar10(tmp_path / "data", n=8, seed=0)
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--model",
            "shallowcnn",
            "--data",
            f"cifar10:{tmp_path / 'data'}",
            "--epochs",
            "1",
            "--width",
            "0.125",
            "--out",
            str(out),
            "--batch-size",
            "16",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "40 train / 8 test images" in printed and "epoch 1/1" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "epoch_000.pt",
        "epoch_001.pt",
        "final.pt",
        "history.json",
        "model.json",
        "session",  # the Tracker's snapshots, for info and diagnose
    ]
    spec = json.loads((out / "model.json").read_text())
    assert spec["classes"][3] == "c3" and spec["input_size"] == 32 and spec["width"] == 0.125
    hist = json.loads((out / "history.json").read_text())
    model = build_model(spec["model"], spec["num_classes"], spec["in_channels"], spec["width"])
    load_snapshot(model, out / "final.pt")
    from cnnvis.data import load_dataset

    test = load_dataset(spec["data"], "test")
    assert evaluate(model, test)["accuracy"] == hist["final_test_accuracy"]
    # an output folder that cannot be made: one line naming it, before any training
    (tmp_path / "afile").write_text("x")
    bad = tmp_path / "afile" / "run"
    argv = ["train", "--model", "shallowcnn", "--data", f"cifar10:{tmp_path / 'data'}",
            "--epochs", "1", "--width", "0.125", "--out", str(bad)]  # fmt: skip
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert f"cannot write {bad}: {tmp_path / 'afile'} is a file" in captured.err
    assert "epoch" not in captured.out


def test_train_command_reports_missing_files(tmp_path, capsys):
    rc = main(
        ["train", "--data", f"cifar10:{tmp_path}", "--epochs", "1", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err
    assert rc == 2 and "data_batch_1" in err and "batches.meta" in err
    assert not (tmp_path / "o").exists()
