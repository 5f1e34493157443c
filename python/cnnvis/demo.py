"""The built-in demo: train :class:`~cnnvis.models.demo.DemoCNN` on the digits and record it.

``make_demo_session(out)`` is what ``python -m cnnvis demo`` runs and what the viewer calls when it
is opened without a session. It is deterministic (fixed seeds, a fixed thread count) and takes
well under a minute on two CPU cores.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_demo_session", "default_demo_dir", "load_checkpoint", "DEMO_EPOCHS"]

DEMO_EPOCHS = 12
SNAPSHOT_EPOCHS = (0, 1, 2, 4, 8)  # kept beside the final model (0 = untrained)


def default_demo_dir() -> Path:
    """Where the demo session goes by default: ``$CNNVIS_CACHE/demo``, else
    ``$XDG_CACHE_HOME/cnnvis/demo``, else ``~/.cache/cnnvis/demo``."""
    if os.environ.get("CNNVIS_CACHE"):
        return Path(os.environ["CNNVIS_CACHE"]) / "demo"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnnvis" / "demo"


def _checkpoint_bytes(state_dict: dict, epoch: int, arch_kwargs: dict) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"arch": "demo", "arch_kwargs": dict(arch_kwargs), "epoch": int(epoch),
                "state_dict": state_dict}, buf)  # fmt: skip
    return buf.getvalue()


def load_checkpoint(path: str | os.PathLike[str]):
    """Rebuild a model from a checkpoint written by the demo (``weights_only=True``).

    The checkpoint is a dict ``{"arch": "demo", "arch_kwargs": {...}, "epoch": int,
    "state_dict": {...}}``. Returns the model in eval mode.
    """
    import torch

    from cnnvis.models.demo import DemoCNN

    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("arch") != "demo":
        raise ValueError(f"{path} is not a demo checkpoint")
    model = DemoCNN(**ckpt.get("arch_kwargs", {}))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def _evaluate(model, images, targets) -> float:
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        pred = model(images).argmax(dim=1)
    model.train(was)
    return float((pred == targets).double().mean())


def make_demo_session(
    out: str | os.PathLike[str] | None = None,
    *,
    progress: bool = True,
    epochs: int = DEMO_EPOCHS,
    seed: int = 0,
    threads: int = 1,
) -> Path:
    """Train the demo CNN on the digits, record it on the held-out split, save the session.

    Training: :class:`~cnnvis.models.demo.DemoCNN` on the 1,347 training digits (the stratified
    75% of :class:`~cnnvis.data.digits.DigitsDataset` with ``seed``), AdamW (lr 3e-3, weight decay
    1e-4) with a one-cycle schedule, batch 32, random shifts of up to one pixel, ``epochs`` epochs,
    fixed seeds and ``threads`` threads. The untrained model and the models after epochs 1, 2, 4 and 8 are
    kept as snapshots beside the final one.

    Recording: the final model on the 450 held-out digits (:func:`cnnvis.record`, layers
    :data:`~cnnvis.models.demo.DEMO_LAYERS`, patches of 16 pixels); every snapshot's pooled
    activations at those layers for the same pooled samples go to ``Recording.snapshots`` (with
    the snapshot's held-out accuracy), and its state dict to ``checkpoints/epoch_NNN.pt``.

    Parameters
    ----------
    out : path-like, optional
        Session folder; default :func:`default_demo_dir`. An existing session there is replaced.
    progress : bool
        Print one line per epoch and show the recording's progress bar.
    epochs : int
        Training epochs.
    seed : int
        Seed of the split, the initialisation, the batch order and the augmentation.
    threads : int
        Torch threads during the run (restored afterwards). One by default: the demo's tensors
        are so small that a second thread only adds synchronisation, and on a busy two-core
        machine ``threads=2`` made a training step ten times slower (74 ms against 6 ms).
        The same seed and thread count give the same session.

    Returns
    -------
    pathlib.Path
        The session folder.
    """
    import torch
    import torch.nn.functional as F

    from cnnvis.data.digits import DIGIT_CLASSES, DigitsDataset
    from cnnvis.models.demo import DEMO_LAYERS, DemoCNN
    from cnnvis.record import record, snapshot_activations
    from cnnvis.session import check_writable, save_recording

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    out = Path(out) if out is not None else default_demo_dir()
    check_writable(out)  # before the training, not after it
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        torch.manual_seed(seed)
        train = DigitsDataset("train", seed=seed)
        test = DigitsDataset("test", seed=seed)
        model = DemoCNN(in_channels=1, n_classes=10)
        arch = dict(model.arch_kwargs)

        def snapshot_state() -> dict:
            return {k: v.detach().clone() for k, v in model.state_dict().items()}

        states: dict[int, dict] = {0: snapshot_state()}
        gen = torch.Generator().manual_seed(seed)
        x_train, y_train = train.images, train.targets
        n = len(train)
        batch = 32
        steps = epochs * ((n + batch - 1) // batch)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
        history = []
        for epoch in range(1, epochs + 1):
            model.train()
            perm = torch.randperm(n, generator=gen)
            total_loss = 0.0
            for i in range(0, n, batch):
                idx = perm[i : i + batch]
                xb = x_train[idx]
                # random shift by up to one pixel (zero padding), the only augmentation
                shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
                xb = torch.roll(F.pad(xb, (1, 1, 1, 1)), shifts=shift, dims=(2, 3))[
                    :, :, 1:-1, 1:-1
                ]
                loss = F.cross_entropy(model(xb), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total_loss += float(loss.detach()) * len(idx)
            acc = _evaluate(model, test.images, test.targets)
            history.append({"epoch": epoch, "loss": total_loss / n, "test_accuracy": acc})
            if progress:
                print(f"  epoch {epoch:2d}/{epochs}  loss {total_loss / n:.4f}  "
                      f"held-out accuracy {acc:.1%}", flush=True)  # fmt: skip
            if epoch in SNAPSHOT_EPOCHS:
                states[epoch] = snapshot_state()
        states[epochs] = snapshot_state()
        train_seconds = time.perf_counter() - t0

        model.eval()
        rec = record(
            model, test, layers=DEMO_LAYERS, top_k=9, batch_size=128, patch_size=16,
            progress=progress, class_names=DIGIT_CLASSES, model_name="DemoCNN", seed=seed,
        )  # fmt: skip

        files: dict[str, bytes] = {}
        snapshots: list[dict[str, Any]] = []
        for epoch in sorted(states):
            rel = f"checkpoints/epoch_{epoch:03d}.pt"
            files[rel] = _checkpoint_bytes(states[epoch], epoch, arch)
            snap_model = DemoCNN(**arch)
            snap_model.load_state_dict(states[epoch])
            snap_model.eval()
            pooled, preds = snapshot_activations(
                snap_model, test, DEMO_LAYERS, indices=rec.pooled_index, batch_size=256
            )
            snapshots.append({
                "epoch": int(epoch),
                "accuracy": float(np.mean(preds == rec.labels)),
                "final": epoch == epochs,
                "checkpoint": rel,
                "pooled": pooled,
            })  # fmt: skip
        rec.snapshots = snapshots
        rec.meta.update(
            {
                "data": "digits:test",
                "data_split": {"name": "digits", "split": "test", "seed": seed},
                "model_spec": {"arch": "demo", "arch_kwargs": arch},
                "checkpoint": f"checkpoints/epoch_{epochs:03d}.pt",
                "training": {
                    "epochs": epochs,
                    "optimizer": "AdamW lr 3e-3 wd 1e-4, one-cycle",
                    "batch_size": batch,
                    "augmentation": "random shift of up to 1 pixel",
                    "seed": seed,
                    "threads": int(threads),
                    "seconds": round(train_seconds, 2),
                    "history": history,
                },
            }
        )
        path = save_recording(rec, out, files=files)
    finally:
        torch.set_num_threads(threads)
    if progress:
        print(f"  total {time.perf_counter() - t0:.1f} s", flush=True)
    return path
