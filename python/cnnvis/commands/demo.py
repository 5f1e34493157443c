"""``python -m cnnvis demo [--out DIR]``: train the demo CNN on the digits and record it.

:func:`make_demo_session` is what the command runs and what ``python -m cnnvis viewer`` calls when
it is opened without a session. It is deterministic (fixed seeds, a fixed thread count) and takes
well under a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["DEMO_EPOCHS", "default_demo_dir", "make_demo_session"]

DEMO_EPOCHS = 12
SNAPSHOT_EPOCHS = (0, 1, 2, 4, 8)  # kept beside the final model (0 = untrained)
BATCH = 32


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        help="session folder to write (default: ~/.cache/cnnvis/demo, or $CNNVIS_CACHE/demo)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 12)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="print only where the session is")


def run(args: argparse.Namespace) -> int:
    from cnnvis.session import SessionError, check_writable, load

    out = args.out if args.out is not None else default_demo_dir()
    epochs = DEMO_EPOCHS if args.epochs is None else args.epochs
    try:
        check_writable(out)
    except SessionError as exc:
        print(f"cnnvis demo: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"cnnvis demo: training DemoCNN on the 8x8 digits ({epochs} epochs), then recording")
    try:
        path = make_demo_session(out, progress=not args.quiet, epochs=epochs, seed=args.seed)
        rec = load(path)
    except (SessionError, ValueError) as exc:
        print(f"cnnvis demo: {exc}", file=sys.stderr)
        return 1
    q = shlex.quote(str(path))
    print(f"session written to {path}")
    if not args.quiet:
        print(
            f"  held-out accuracy {rec.accuracy:.1%} on {rec.n_samples} digits; "
            f"{len(rec.layers)} layers, {len(rec.snapshots)} training snapshots"
        )
        print("next:")
        print(f"  python -m cnnvis viewer {q}")
        print(f"  python -m cnnvis export png {q} --out demo.png")
        print(f"  python -m cnnvis info {q}")
    return 0


def default_demo_dir() -> Path:
    """Where the demo session goes by default: ``$CNNVIS_CACHE/demo``, else
    ``$XDG_CACHE_HOME/cnnvis/demo``, else ``~/.cache/cnnvis/demo``."""
    if os.environ.get("CNNVIS_CACHE"):
        return Path(os.environ["CNNVIS_CACHE"]) / "demo"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnnvis" / "demo"


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

    from cnnvis.session import check_writable, save_recording

    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    out = Path(out) if out is not None else default_demo_dir()
    check_writable(out)  # before the training, not after it
    t0 = time.perf_counter()
    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        rec, files = _train_and_record(epochs, seed, threads, progress)
        path = save_recording(rec, out, files=files)
    finally:
        torch.set_num_threads(previous)
    if progress:
        print(f"  total {time.perf_counter() - t0:.1f} s", flush=True)
    return path


def _train_and_record(epochs: int, seed: int, threads: int, progress: bool):
    """The trained demo CNN recorded on the held-out digits, with its snapshots; and the files
    (checkpoints) that go into the session beside the recording."""
    import torch

    from cnnvis.data.digits import DIGIT_CLASSES, DigitsDataset
    from cnnvis.models.demo import DEMO_LAYERS, DemoCNN
    from cnnvis.record import record

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    train = DigitsDataset("train", seed=seed)
    test = DigitsDataset("test", seed=seed)
    model = DemoCNN(in_channels=1, n_classes=10)
    states, history = _train(model, train, test, epochs, seed, progress)
    train_seconds = time.perf_counter() - t0
    model.eval()
    rec = record(
        model, test, layers=DEMO_LAYERS, top_k=9, batch_size=128, patch_size=16,
        progress=progress, class_names=DIGIT_CLASSES, model_name="DemoCNN", seed=seed,
    )  # fmt: skip
    arch = dict(model.arch_kwargs)
    files, rec.snapshots = _snapshots(states, arch, test, rec, epochs)
    rec.meta.update(
        {
            "data": "digits:test",
            "data_split": {"name": "digits", "split": "test", "seed": seed},
            "model_spec": {"arch": "demo", "arch_kwargs": arch},
            "checkpoint": f"checkpoints/epoch_{epochs:03d}.pt",
            "training": {
                "epochs": epochs,
                "optimizer": "AdamW lr 3e-3 wd 1e-4, one-cycle",
                "batch_size": BATCH,
                "augmentation": "random shift of up to 1 pixel",
                "seed": seed,
                "threads": int(threads),
                "seconds": round(train_seconds, 2),
                "history": history,
            },
        }
    )
    return rec, files


def _train(model, train, test, epochs: int, seed: int, progress: bool):
    """Train ``model`` in place; returns the kept state dicts by epoch and the history."""
    import torch
    import torch.nn.functional as F

    def snapshot_state() -> dict:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    states: dict[int, dict] = {0: snapshot_state()}
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train = train.images, train.targets
    n = len(train)
    steps = epochs * ((n + BATCH - 1) // BATCH)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total_loss = 0.0
        for i in range(0, n, BATCH):
            idx = perm[i : i + BATCH]
            xb = x_train[idx]
            # random shift by up to one pixel (zero padding), the only augmentation
            shift = torch.randint(-1, 2, (2,), generator=gen).tolist()
            xb = torch.roll(F.pad(xb, (1, 1, 1, 1)), shifts=shift, dims=(2, 3))[:, :, 1:-1, 1:-1]
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
    return states, history


def _evaluate(model, images, targets) -> float:
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        pred = model(images).argmax(dim=1)
    model.train(was)
    return float((pred == targets).double().mean())


def _snapshots(states: dict[int, dict], arch: dict, test, rec, epochs: int):
    """Per kept epoch: its checkpoint file, and its pooled activations and held-out accuracy on
    the recording's pooled samples."""
    import numpy as np

    from cnnvis.models.checkpoints import demo_checkpoint_bytes
    from cnnvis.models.demo import DEMO_LAYERS, DemoCNN
    from cnnvis.record import snapshot_activations

    files: dict[str, bytes] = {}
    snapshots: list[dict[str, Any]] = []
    for epoch in sorted(states):
        rel = f"checkpoints/epoch_{epoch:03d}.pt"
        files[rel] = demo_checkpoint_bytes(states[epoch], epoch, arch)
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
    return files, snapshots
