"""Recording with 2 processes (torchrun, gloo) equals recording with one; a Ctrl-C leaves no
session; the progress bar shows the time left."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnvis
from cnnvis.cli import main
from cnnvis.session import load

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from distributed_worker import CLI_ARGS, library_recording  # noqa: E402

sys.path.remove(str(HERE))


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    """A demo CNN for the 8x8 digits with seeded random weights, as a bare state dict."""
    from cnnvis.models.demo import DemoCNN

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "demo.pt"
    torch.save(DemoCNN(in_channels=1, n_classes=10).state_dict(), path)
    return str(path)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory, model_path) -> Path:
    """The worker's sessions, recorded by 2 processes under torchrun (a free port of its own)."""
    out = tmp_path_factory.mktemp("two")
    env = {**os.environ, "PYTHONPATH": str(Path(cnnvis.__file__).parents[1]),
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(HERE / "distributed_worker.py"), str(out), model_path]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def assert_same_recording(one, two, exact_forward: bool) -> None:
    """Equal selections (predictions, top-k samples and boxes, pooled samples) and equal bytes of
    the images and patches; class means (float64 sums added in another order) within float
    error. Activations are equal bytes where the forward pass is (``exact_forward``): a batch of
    another size may take another kernel and differ in the last bits."""
    assert two.n_samples == one.n_samples
    for field in ("labels", "predictions", "pooled_index", "pooled_images"):
        np.testing.assert_array_equal(getattr(two, field), getattr(one, field), err_msg=field)
    same = np.testing.assert_array_equal if exact_forward else np.testing.assert_allclose
    same(two.confidences, one.confidences)
    assert list(two.layers) == list(one.layers)
    for name, a in one.layers.items():
        b = two.layers[name]
        for field in ("top_samples", "top_boxes"):
            np.testing.assert_array_equal(getattr(b, field), getattr(a, field), err_msg=name)
        np.testing.assert_array_equal(np.asarray(b.top_patches), np.asarray(a.top_patches))
        same(b.top_values, a.top_values, err_msg=name)
        same(b.pooled, a.pooled, err_msg=name)
        np.testing.assert_allclose(b.class_means, a.class_means, rtol=1e-5, atol=1e-7)
    assert one.meta["display_range"] == two.meta["display_range"]


def test_cli_two_processes_equal_one(two_processes, model_path, tmp_path, capsys):
    """``cnnvis record`` under torchrun: rank 0 writes the session one process writes (257
    samples in batches of 32: the ranks get 129 and 128, so one rank has a batch fewer), and
    ``info`` says it."""
    assert main(["record", "--model", model_path, "--out", str(tmp_path / "one"), *CLI_ARGS]) == 0
    one, two = load(tmp_path / "one"), load(two_processes / "cli")
    assert isinstance(one.layers[next(iter(one.layers))].top_patches, cnnvis.record.LayerPatches)
    assert_same_recording(one, two, exact_forward=False)
    # the ranks of the last batches differ, and so do the top-k samples of many channels
    owners = np.concatenate([lr.top_samples.ravel() % 2 for lr in two.layers.values()])
    assert 0.2 < owners.mean() < 0.8
    # equal values (channels that are 0 everywhere) were ordered by sample, as one process does
    assert any((np.diff(lr.top_values, axis=1) == 0).any() for lr in two.layers.values())
    capsys.readouterr()
    assert main(["info", str(two_processes / "cli")]) == 0
    assert "processes  2 (gloo)" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "one")]) == 0
    assert "processes  1\n" in capsys.readouterr().out


def test_library_two_processes_equal_one_with_patches_cut_during_the_pass(two_processes,
                                                                          model_path):  # fmt: skip
    """``record()`` inside a process group, one sample per batch (the same forward pass as one
    process), with a patch budget that makes every rank cut its patches during the pass: equal
    bytes but for the class means."""
    one, two = library_recording(model_path), load(two_processes / "cut")
    assert one.meta["patch_flushes"] > 0
    assert two.meta["processes"] == 2 and two.meta["backend"] == "gloo"
    assert_same_recording(one, two, exact_forward=True)


class Interrupting(torch.utils.data.Dataset):
    """The digits, with a Ctrl-C (KeyboardInterrupt) when sample ``stop`` is read."""

    def __init__(self, stop: int) -> None:
        from cnnvis.data import load_dataset

        self.data, self.stop = load_dataset("digits", "test"), stop
        self.classes = self.data.classes

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int):
        if i == self.stop:
            raise KeyboardInterrupt
        return self.data[i]


def test_ctrl_c_leaves_no_session(tmp_path, model_path, monkeypatch, capsys):
    """A Ctrl-C in the middle of ``cnnvis record`` leaves nothing at --out (nor beside it)."""
    import cnnvis.data

    interrupting = Interrupting(200)
    monkeypatch.setattr(cnnvis.data, "load_dataset", lambda *a, **k: interrupting)
    out = tmp_path / "session"
    rc = main(["record", "--model", model_path, "--out", str(out), *CLI_ARGS[:-1]])
    assert rc == 130
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_progress_bar_shows_the_time_left(capsys):
    """The bar shows an ETA once a few batches are done (samples read at most 1000 a second, so
    that the bar is drawn more than once)."""
    from cnnvis.models.demo import DemoCNN

    class Slow(Interrupting):
        def __getitem__(self, i: int):
            time.sleep(0.001)
            return super().__getitem__(i)

    torch.manual_seed(0)
    cnnvis.record(DemoCNN(in_channels=1, n_classes=10).eval(), Slow(-1), batch_size=8)
    err = capsys.readouterr().err
    assert "ETA 00:0" in err, err[-500:]


def test_loader_workers_give_the_same_recording(model_path):
    """A data set read by a worker process records the same bytes as one read in this one."""
    kw = {"max_samples": 64, "batch_size": 16, "top_k": 3, "max_pooled": 20, "progress": False}
    from cnnvis.data import load_dataset
    from cnnvis.models.checkpoints import load_model

    model, _ = load_model(model_path, num_classes=10, in_channels=1, input_size=8, arch="demo")
    data = load_dataset("digits", "test")
    here = cnnvis.record(model.eval(), data, num_workers=0, **kw)
    workers = cnnvis.record(model, data, num_workers=1, **kw)
    assert_same_recording(here, workers, exact_forward=True)
