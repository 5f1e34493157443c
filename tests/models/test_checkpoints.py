"""The one checkpoint home: every file read weights-only, every failure one ValueError naming the
file, and each kind of ``--model`` built into the right network with the right weights."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from cnnvis.models import ShallowCNN
from cnnvis.models.checkpoints import (
    build_architecture,
    demo_checkpoint_bytes,
    load_demo_checkpoint,
    load_model,
    read_state,
)
from cnnvis.models.demo import DemoCNN
from cnnvis.training import save_snapshot

SHAPE = {"num_classes": 10, "in_channels": 3, "input_size": 32}


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_pickle_is_refused_and_a_missing_file_named(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump(Payload(), fh, protocol=2)
    with pytest.raises(ValueError, match="evil.pt cannot be read as a weights-only checkpoint"):
        read_state(tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt cannot be read"):
        load_model(str(tmp_path / "evil.pt"), **SHAPE, arch="shallowcnn")
    with pytest.raises(FileNotFoundError, match="none.pt"):
        read_state(tmp_path / "none.pt")
    with pytest.raises(ValueError, match="no checkpoint at"):
        load_model(str(tmp_path / "none.pt"), **SHAPE)


def test_a_training_folder_gives_its_final_weights(tmp_path):
    torch.manual_seed(0)
    trained = ShallowCNN(num_classes=4, in_channels=1, width=0.125, input_size=16)
    save_snapshot(trained, tmp_path / "final.pt")
    spec = {"model": "shallowcnn", "width": 0.125, "num_classes": 4, "in_channels": 1,
            "input_size": 16, "batch_norm": True}  # fmt: skip
    (tmp_path / "model.json").write_text(json.dumps(spec))
    for where in (tmp_path, tmp_path / "final.pt"):
        model, name = load_model(str(where), **SHAPE)
        assert name == "ShallowCNN" and _same_weights(model, trained)
    # the same file without model.json beside it is a bare state dict: it needs an architecture
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "w.pt").write_bytes((tmp_path / "final.pt").read_bytes())
    with pytest.raises(ValueError, match="pass --arch NAME"):
        load_model(str(bare / "w.pt"), **SHAPE)
    with pytest.raises(ValueError, match="do not fit the model"):
        load_model(str(bare / "w.pt"), **SHAPE, arch="shallowcnn")


def test_demo_checkpoints_and_architecture_names(tmp_path):
    torch.manual_seed(1)
    demo = DemoCNN(in_channels=1, n_classes=10)
    path = tmp_path / "epoch_003.pt"
    path.write_bytes(demo_checkpoint_bytes(demo.state_dict(), 3, demo.arch_kwargs))
    again = load_demo_checkpoint(path)
    assert not again.training and _same_weights(again, demo)
    model, name = load_model(str(path), **SHAPE)
    assert name == "DemoCNN" and _same_weights(model, demo)
    torch.save(demo.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a demo checkpoint"):
        load_demo_checkpoint(tmp_path / "plain.pt")
    with pytest.warns(UserWarning, match="random weights"):
        model, name = load_model("basecnn", **SHAPE)
    assert name == "BaseCNN"
    with pytest.raises(ValueError, match="unknown architecture 'nosuchnet'"):
        build_architecture("nosuchnet", **SHAPE)
