"""A small, deterministic training loop with per-epoch snapshots.

Used by ``python -m cnnvis train`` (the case-study models) and by the built-in demo. Snapshots
are plain ``state_dict`` files written with ``torch.save`` (atomically: temp file + rename) and
read back with :func:`load_snapshot`, which uses ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from cnnvis.graph.modules import model_device

__all__ = ["LossNotFinite", "evaluate", "load_snapshot", "save_snapshot", "snapshot_paths", "train"]

HISTORY_FILE = "history.json"


class LossNotFinite(ValueError):
    """The training loss became NaN or infinite (``epoch``, ``loss`` say when and what)."""

    def __init__(self, message: str, epoch: int, loss: float) -> None:
        super().__init__(message)
        self.epoch, self.loss = epoch, loss


def save_snapshot(model: Any, path: str | os.PathLike) -> Path:
    """Write ``model.state_dict()`` (moved to CPU) to ``path`` atomically.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_snapshot(model: Any, path: str | os.PathLike, *, strict: bool = True) -> Any:
    """Load a snapshot written by :func:`save_snapshot` into ``model`` (in place; returned).

    The file is read by :func:`cnnvis.models.checkpoints.read_state` (``weights_only=True``)
    onto the model's device; a missing file (``FileNotFoundError``), a file that is not a state
    dict or one that does not fit the model (``ValueError``) gives a clear error.
    """
    from cnnvis.models.checkpoints import load_state, read_state

    state = read_state(path, map_location=model_device(model))
    return load_state(model, state, path, strict=strict)


def snapshot_paths(snapshot_dir: str | os.PathLike) -> list[Path]:
    """The epoch snapshots in a folder, in epoch order (``epoch_000.pt`` is the untrained model);
    ``final.pt`` is not included."""
    d = Path(snapshot_dir)
    return sorted(d.glob("epoch_[0-9][0-9][0-9].pt"))


def _batches(data: Any, batch_size: int, shuffle: bool, seed: int) -> Any:
    from cnnvis.data import as_loader

    return as_loader(data, batch_size, shuffle=shuffle, seed=seed)


def evaluate(model: Any, data: Any, batch_size: int = 256, device: Any = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` on ``data`` (eval mode, no gradients).

    The model's train/eval mode is restored afterwards.

    Returns
    -------
    dict
        ``{"loss": float, "accuracy": float, "samples": int}``.
    """
    import torch
    import torch.nn.functional as F

    device = model_device(model) if device is None else torch.device(device)
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    try:
        with torch.no_grad():
            for x, y in _batches(data, batch_size, False, 0):
                x, y = x.to(device), torch.as_tensor(y).to(device)
                out = model(x)
                loss_sum += float(F.cross_entropy(out, y, reduction="sum"))
                correct += int((out.argmax(1) == y).sum())
                total += int(y.shape[0])
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("cannot evaluate on an empty data set")
    return {"loss": loss_sum / total, "accuracy": correct / total, "samples": total}


def _check_settings(epochs: Any, lr: Any, optimizer: str) -> None:
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")


def _make_optimizer(
    model: Any, optimizer: str, lr: float, weight_decay: float, momentum: float
) -> Any:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def _train_epoch(
    model: Any, batches: Any, opt: Any, device: Any, epoch: int, lr: float
) -> tuple[float, float]:
    """One pass over ``batches``; returns the epoch's mean training loss and accuracy."""
    import torch
    import torch.nn.functional as F

    model.train()
    total, correct, loss_sum = 0, 0, 0.0
    for b, (x, y) in enumerate(batches):
        x, y = x.to(device), torch.as_tensor(y).to(device)
        out = model(x)
        loss = F.cross_entropy(out, y)
        if not torch.isfinite(loss):
            raise LossNotFinite(
                f"the training loss became {float(loss.detach())} at epoch {epoch}, batch {b}; "
                f"try a smaller lr (now {lr})",
                epoch,
                float(loss.detach()),
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n = int(y.shape[0])
        loss_sum += float(loss.detach()) * n
        correct += int((out.detach().argmax(1) == y).sum())
        total += n
    if total == 0:
        raise ValueError("the training data set is empty")
    return loss_sum / total, correct / total


def _run_epoch(
    model: Any,
    loader: Any,
    opt: Any,
    device: Any,
    epoch: int,
    epochs: int,
    lr: float,
    test_data: Any,
    snap: Path | None,
    progress: bool,
    tracker: Any = None,
) -> dict[str, Any]:
    """Train one epoch, score it on ``test_data`` and snapshot it: the epoch's history row."""
    t0 = time.perf_counter()
    batches = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc=f"epoch {epoch}/{epochs}", leave=False, unit="batch")
    try:
        train_loss, train_accuracy = _train_epoch(model, batches, opt, device, epoch, lr)
    except LossNotFinite as exc:
        if tracker is not None:  # the moment a diagnosis is wanted: keep it
            tracker.snapshot(epoch=epoch, loss=exc.loss)
        raise
    row: dict[str, Any] = {
        "epoch": epoch,
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": None,
        "test_accuracy": None,
    }
    if test_data is not None:
        ev = evaluate(model, test_data, device=device)
        row["test_loss"], row["test_accuracy"] = ev["loss"], ev["accuracy"]
    row["seconds"] = time.perf_counter() - t0
    if tracker is not None:
        metrics = {k: row[k] for k in ("train_accuracy", "test_loss", "test_accuracy")}
        tracker.snapshot(epoch=epoch, loss=train_loss,
                         metrics={k: v for k, v in metrics.items() if v is not None})  # fmt: skip
    row["snapshot"] = None
    if snap is not None:
        row["snapshot"] = str(save_snapshot(model, snap / f"epoch_{epoch:03d}.pt"))
    if progress:
        _print_epoch(row, epochs)
    return row


def _print_epoch(row: dict[str, Any], epochs: int) -> None:
    test = "" if row["test_accuracy"] is None else f"  test acc {row['test_accuracy']:.4f}"
    print(
        f"epoch {row['epoch']}/{epochs}  loss {row['train_loss']:.4f}  "
        f"train acc {row['train_accuracy']:.4f}{test}  ({row['seconds']:.1f} s)",
        flush=True,
    )


def _write_final(model: Any, snap: Path, history: dict[str, Any]) -> None:
    save_snapshot(model, snap / "final.pt")
    tmp = snap / f".{HISTORY_FILE}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(history, indent=2))
    os.replace(tmp, snap / HISTORY_FILE)


# Over 80 lines only by its 47-line numpydoc docstring: signature and body are 67.
def train(
    model: Any,
    train_data: Any,
    test_data: Any = None,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    device: Any = None,
    snapshot_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    tracker: Any = None,
) -> dict[str, Any]:
    """Train ``model`` with cross-entropy, saving a snapshot after every epoch.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place. Left in eval mode when done.
    train_data, test_data : Dataset or DataLoader
        ``(image, label)`` pairs. A Dataset is batched by ``batch_size`` and shuffled with a
        generator seeded by ``seed``; a DataLoader is used as it is. ``test_data`` may be None.
    epochs : int
        Number of passes over ``train_data`` (0 only saves the untrained snapshot).
    lr : float
        Learning rate.
    batch_size : int
        Batch size for Dataset inputs.
    seed : int
        Seeds the shuffling and the torch RNG (dropout); the model's initial weights are the
        caller's. Same seed, data, model and thread count give the same weights.
    device : str or torch.device, optional
        Where to train; the model is moved there. Default: the model's own device.
    snapshot_dir : path, optional
        When given: ``epoch_000.pt`` (the untrained model), ``epoch_001.pt`` ... after each
        epoch, ``final.pt`` (the last epoch) and ``history.json`` are written there.
    progress : bool
        Show a progress bar over each epoch's batches (stderr) and print one line per epoch.
    optimizer : {"adam", "sgd"}
        Adam, or SGD with ``momentum``.
    weight_decay, momentum : float
        Optimiser settings.
    tracker : cnnvis.Tracker, optional
        Snapshots the untrained model and every epoch (with the epoch's training loss, train
        and test accuracy and test loss), and the epoch whose loss stops being finite.

    Returns
    -------
    dict
        ``{"epochs": [{"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy",
        "seconds", "snapshot"}, ...], "initial": {...}, "final_test_accuracy": float or None,
        "snapshots": [paths], "settings": {...}}`` (JSON-serialisable). ``epochs`` holds one row
        per trained epoch; ``initial`` the untrained model's test scores.

    Raises
    ------
    ValueError
        Bad settings, an empty data set, or a non-finite loss (the message names the epoch and
        batch).
    """
    import torch

    _check_settings(epochs, lr, optimizer)
    epochs = int(epochs)
    device = model_device(model) if device is None else torch.device(device)
    model.to(device)
    snap = Path(snapshot_dir) if snapshot_dir is not None else None

    torch.manual_seed(int(seed))
    loader = _batches(train_data, batch_size, True, seed)
    opt = _make_optimizer(model, optimizer, lr, weight_decay, momentum)

    history: dict[str, Any] = {
        "settings": {
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "optimizer": optimizer,
            "weight_decay": weight_decay,
            "device": str(device),
            "model": type(model).__name__,
        },
        "epochs": [],
        "snapshots": [],
        "initial": None,
        "final_test_accuracy": None,
    }
    if test_data is not None:
        history["initial"] = evaluate(model, test_data, device=device)
    if snap is not None:
        history["snapshots"].append(str(save_snapshot(model, snap / "epoch_000.pt")))
    if tracker is not None:
        initial = history["initial"] or {}
        tracker.snapshot(epoch=0, metrics={f"test_{k}": initial[k] for k in ("loss", "accuracy")
                                           if k in initial})  # fmt: skip

    for epoch in range(1, epochs + 1):
        row = _run_epoch(
            model, loader, opt, device, epoch, epochs, lr, test_data, snap, progress, tracker
        )
        if row["test_accuracy"] is not None:
            history["final_test_accuracy"] = row["test_accuracy"]
        if row["snapshot"] is not None:
            history["snapshots"].append(row["snapshot"])
        history["epochs"].append(row)
    model.eval()
    if snap is not None:
        _write_final(model, snap, history)
    return history
