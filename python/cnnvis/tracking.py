"""Snapshots from any training loop: :class:`Tracker` (and a Lightning-style callback).

A snapshot measures the model on a fixed *probe set* (a few hundred samples) without changing
it: one pass in eval mode (batch norm reads its running statistics, dropout is off, no running
statistic is updated) with a backward pass for the gradients (``torch.autograd.grad``, so the
parameters' ``.grad`` are left alone). Per layer it keeps

* for every conv or linear module (a ``weight`` of two or more dimensions): the mean, standard
  deviation and L2 norm of the weight and of its gradient of the mean probe loss;
* for every tracked layer (by default the layers :func:`cnnvis.record` records): the mean and
  standard deviation of its activation, the fraction of *dead* units (constant over the probe
  set: a ReLU that never fires outputs 0 for every input) and of *saturated* units (a bounded
  activation such as a sigmoid that stays within 2% of one of its bounds, or a rectifier that is
  always on and so acts as a linear unit), each unit's mean per class and the spatially averaged
  activation of every probe sample;
* the loss and metrics the caller passes, and the accuracy on the probe set.

Non-finite weights, activations or losses give NaN statistics, never an error: a diverged run is
exactly the one to diagnose. :meth:`Tracker.save` writes a normal session (the final model
recorded on the probe set by :func:`cnnvis.record`, with ``Recording.snapshots`` filled) that
``info``, ``diagnose`` and the viewer open.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnnvis.graph.modules import model_device

__all__ = ["STAT_FIELDS", "Tracker", "TrackerCallback", "measure", "probe_tensors"]

#: The per-layer statistics of a snapshot, in the order the session stores them.
STAT_FIELDS = (
    "weight_mean",
    "weight_std",
    "weight_norm",
    "grad_mean",
    "grad_std",
    "grad_norm",
    "act_mean",
    "act_std",
    "dead",
    "saturated",
)

#: Output ranges of bounded activations, by module class name: a unit staying within
#: :data:`SATURATION_BAND` of the range from one bound is saturated (its gradient is ~0).
BOUNDED = {
    "Sigmoid": (0.0, 1.0),
    "Hardsigmoid": (0.0, 1.0),
    "Tanh": (-1.0, 1.0),
    "Hardtanh": (-1.0, 1.0),
    "Softsign": (-1.0, 1.0),
    "ReLU6": (0.0, 6.0),
}
#: Rectifiers: a unit whose output is positive for every probe input never rectifies (always on).
RECTIFIERS = {"ReLU", "LeakyReLU", "PReLU", "RReLU", "ELU", "CELU", "SELU", "GELU", "SiLU", "Mish",
              "Softplus"}  # fmt: skip
SATURATION_BAND = 0.02
#: A unit whose output varies by less than this (relative to its size, at least 1) is constant.
CONSTANT = 1e-6


def probe_tensors(data: Any, limit: int = 128) -> tuple[Any, Any]:
    """The first ``limit`` samples of ``data`` as two CPU tensors ``(x, y)``.

    ``data`` is a Dataset, a DataLoader, or an ``(inputs, labels)`` pair of tensors or arrays.
    """
    import torch

    from cnnvis.record.inputs import as_loader, split_batch

    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"the probe size must be a positive integer, got {limit!r}")
    xs, ys, n = [], [], 0
    for batch in as_loader(data, min(limit, 256)):
        x, y = split_batch(batch)
        xs.append(x.detach().cpu()[: limit - n])
        ys.append(torch.as_tensor(y).cpu()[: limit - n])
        n += len(xs[-1])
        if n >= limit:
            break
    if n == 0:
        raise ValueError("the probe data is empty")
    y = torch.cat(ys)
    if y.dim() != 1 or y.is_floating_point() or y.dtype == torch.bool:
        raise ValueError(f"probe labels must be one integer per sample, got {y.dtype} {y.shape}")
    return torch.cat(xs), y.long()


def weighted_modules(model: Any) -> list[str]:
    """Dotted names of the modules with a ``weight`` parameter of 2+ dimensions (conv, linear)."""
    import torch

    return [
        name
        for name, m in model.named_modules()
        if isinstance(getattr(m, "weight", None), torch.nn.Parameter) and m.weight.dim() >= 2
    ]


def default_tracked_layers(model: Any, x: Any) -> list[str]:
    """The layers :func:`cnnvis.record` records by default (one activation per conv/linear)."""
    from cnnvis.graph import default_layers, model_graph

    return list(default_layers(model_graph(model, x[:1].to(model_device(model)))))


class _Activations:
    """Forward hooks that fold each tracked layer's output into per-channel sums and extremes."""

    def __init__(self, layers: Sequence[str], n_classes: int) -> None:
        self.layers, self.n_classes = list(layers), n_classes
        self.sums: dict[str, dict[str, Any]] = {name: {} for name in self.layers}
        self.pooled: dict[str, list] = {name: [] for name in self.layers}
        self.labels: Any = None
        self.calls: dict[str, int] = {}

    def hook(self, name: str) -> Callable:
        def fold(_module, _inputs, out) -> None:
            import torch

            if not torch.is_tensor(out):
                raise ValueError(f"the layer {name!r} does not output a tensor")
            self.calls[name] = self.calls.get(name, 0) + 1
            t = out.detach().float()  # sums below accumulate in float64
            t = t.reshape(t.shape[0], t.shape[1] if t.dim() > 1 else 1, -1)  # (batch, ch, pos)
            spatial = t.mean(2)  # (batch, channels)
            s = self.sums[name]
            cm = torch.zeros(self.n_classes, t.shape[1], dtype=torch.float64, device=t.device)
            cm.index_add_(0, self.labels, spatial.double())
            lo, hi = torch.aminmax(t.transpose(0, 1).reshape(t.shape[1], -1), dim=1)
            part = {"total": t.sum(dtype=torch.float64), "count": t.numel(),
                    "squares": torch.linalg.vector_norm(t, dtype=torch.float64) ** 2,
                    "lo": lo, "hi": hi, "class_sums": cm}  # fmt: skip
            for key, v in part.items():
                if key not in s:
                    s[key] = v
                elif key == "lo":
                    s[key] = torch.minimum(s[key], v)
                elif key == "hi":
                    s[key] = torch.maximum(s[key], v)
                else:
                    s[key] = s[key] + v
            self.pooled[name].append(spatial.cpu())

        return fold


def _tensor_stats(t: Any) -> tuple[float, float, float]:
    if t is None:
        return math.nan, math.nan, math.nan
    t = t.detach().double()
    return float(t.mean()), float(t.std(unbiased=False)), float(t.norm())


def _unit_fractions(kind: str, lo: np.ndarray, hi: np.ndarray) -> tuple[float, float]:
    """Fractions of dead (constant) and saturated (bounded: near a bound; rectifier: always on)
    units, from each unit's extremes over the probe set; saturated is NaN for other layers."""
    dead = (hi - lo) <= CONSTANT * np.maximum(1.0, np.abs(hi))
    if kind in BOUNDED:
        b_lo, b_hi = BOUNDED[kind]
        band = SATURATION_BAND * (b_hi - b_lo)
        sat = ((hi <= b_lo + band) | (lo >= b_hi - band)) & ~dead
    elif kind in RECTIFIERS:
        sat = (lo > 0) & ~dead
    else:
        return float(dead.mean()), math.nan
    return float(dead.mean()), float(sat.mean())


def _layer_stats(acts: _Activations, name: str, kind: str) -> dict[str, float]:
    s = acts.sums[name]
    if not s:
        raise ValueError(f"the tracked layer {name!r} was not called by the model's forward")
    mean = float(s["total"]) / s["count"]
    var = float(s["squares"]) / s["count"] - mean * mean
    dead, sat = _unit_fractions(kind, s["lo"].cpu().numpy(), s["hi"].cpu().numpy())
    return {"act_mean": mean, "act_std": math.sqrt(max(var, 0.0)) if math.isfinite(var) else var,
            "dead": dead, "saturated": sat}  # fmt: skip


def _passes(model, x, y, acts, params, loss_fn, batch_size) -> tuple[list, int, float]:
    """Forward and backward over the probe in batches: summed gradients, hits, summed loss."""
    import torch

    from cnnvis.record.inputs import pick_logits

    device = model_device(model)
    grads: list = [None] * len(params)
    correct, loss_sum = 0, 0.0
    with torch.enable_grad():
        for i in range(0, len(x), batch_size):
            xb, yb = x[i : i + batch_size].to(device), y[i : i + batch_size].to(device)
            acts.labels = yb
            out = pick_logits(model(xb), None)
            loss = loss_fn(out, yb)
            loss_sum += float(loss.detach())
            correct += int((out.detach().argmax(1) == yb).sum())
            if params and loss.requires_grad:
                got = torch.autograd.grad(loss, params, allow_unused=True)
                grads = [g if a is None else (a if g is None else a + g)
                         for a, g in zip(grads, got)]  # fmt: skip
    return grads, correct, loss_sum


def _sum_loss(out: Any, target: Any) -> Any:
    import torch.nn.functional as F

    return F.cross_entropy(out, target, reduction="sum")


def measure(
    model: Any,
    x: Any,
    y: Any,
    layers: Sequence[str],
    n_classes: int,
    *,
    batch_size: int = 256,
    loss_fn: Callable[[Any, Any], Any] | None = None,
) -> dict[str, Any]:
    """One snapshot's measurements of ``model`` on the probe samples ``x``, ``y``.

    The model is neither moved nor changed: eval mode during the pass (each module's mode is
    restored), gradients by ``torch.autograd.grad`` of ``loss_fn(logits, labels)`` (default:
    cross-entropy summed over the batch), divided by the number of samples.

    Returns
    -------
    dict
        ``{"stats": {layer: {field: float}}, "class_means": {layer: (n_channels, n_classes)
        float32}, "pooled": {layer: (n, n_channels) float32}, "accuracy": float,
        "probe_loss": float}``; ``stats`` lists the conv/linear modules and the tracked layers in
        ``named_modules`` order, with NaN for the fields that do not apply (see
        :data:`STAT_FIELDS`); a class without probe samples has NaN class means.
    """
    import torch

    from cnnvis.record.inputs import hooks

    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules]
    if unknown:
        raise ValueError(f"unknown layer name(s) {unknown}")
    weighted = weighted_modules(model)
    trainable = [w for w in weighted if modules[w].weight.requires_grad]
    acts = _Activations(layers, n_classes)
    modes = {m: m.training for m in model.modules()}
    n = int(len(x))
    try:
        model.eval()
        with hooks(model, list(layers), acts.hook):
            grads, correct, loss_sum = _passes(
                model, x, y, acts, [modules[w].weight for w in trainable], loss_fn or _sum_loss,
                batch_size,
            )  # fmt: skip
    finally:
        for m, mode in modes.items():
            m.training = mode
    twice = [name for name, c in acts.calls.items() if c > math.ceil(n / batch_size)]
    if twice:
        raise ValueError(f"the layer {twice[0]!r} runs more than once per forward; track another")
    grad_of = {w: None if g is None else g / n for w, g in zip(trainable, grads)}
    stats: dict[str, dict[str, float]] = {}
    for name, module in modules.items():
        if name not in weighted and name not in acts.sums:
            continue
        row = dict.fromkeys(STAT_FIELDS, math.nan)
        if name in weighted:
            row["weight_mean"], row["weight_std"], row["weight_norm"] = _tensor_stats(module.weight)
            row["grad_mean"], row["grad_std"], row["grad_norm"] = _tensor_stats(grad_of.get(name))
        if name in acts.sums:
            row.update(_layer_stats(acts, name, type(module).__name__))
        stats[name] = row
    counts = torch.bincount(y, minlength=n_classes).double().numpy()[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        class_means = {name: (acts.sums[name]["class_sums"].cpu().numpy() / counts).T
                       for name in layers}  # fmt: skip
    return {
        "stats": stats,
        "class_means": {k: v.astype(np.float32) for k, v in class_means.items()},
        "pooled": {name: torch.cat(acts.pooled[name]).numpy() for name in layers},
        "accuracy": correct / n,
        "probe_loss": loss_sum / n,
    }


def _finite_number(v: Any, what: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{what} must be a number, got {type(v).__name__}") from None


def _weights_finite(model: Any) -> bool:
    import torch

    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise TypeError(f"metrics must be a mapping of names to numbers, got {type(metrics)}")
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str):
            raise TypeError(f"metric names must be strings, got {k!r}")
        out[k] = _finite_number(v, f"the metric {k!r}")
    return out


class Tracker:
    """Snapshots of a model during any training loop, saved as a cnnvis session.

    >>> tracker = cnnvis.Tracker(model, (x_probe, y_probe))      # doctest: +SKIP
    >>> for epoch in range(epochs):                               # doctest: +SKIP
    ...     loss = train_one_epoch(model)
    ...     tracker.snapshot(epoch=epoch, loss=loss, metrics={"val_accuracy": acc})
    >>> tracker.save("run.cnnvis")                                # doctest: +SKIP

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained; read, never moved or changed.
    probe_data : Dataset, DataLoader or (inputs, labels)
        The samples every snapshot is measured on; the first ``probe_size`` are kept (on the CPU).
    layers : list of str, optional
        Layers whose activations are tracked; default the layers :func:`cnnvis.record` records
        (the activation after each conv and linear module, and the logits).
    every : int
        Measure every ``every``-th call of :meth:`snapshot` (the first one included); a call
        with a non-finite loss is always measured.
    probe_size : int
        How many probe samples to keep. 128 by default: about a tenth of an epoch of the demo
        CNN on the digits (benchmarks/tracker.py), and enough samples to tell dead units apart.
    class_names : list of str, optional
        Default: the data set's ``classes``, else ``"0"``, ``"1"``, ...
    loss_fn : callable, optional
        ``loss_fn(logits, labels)`` summed over the batch, for the gradients; default
        cross-entropy.
    keep_state : bool
        Keep a CPU copy of the weights at the last snapshot whose weights were finite, so that
        :meth:`save` can record that model when the run ends with NaN weights.

    Attributes
    ----------
    snapshots : list of dict
        One entry per measured call, oldest first: ``epoch``, ``loss``, ``metrics`` (with
        ``probe_loss``, the mean loss on the probe, unless given), ``accuracy`` (on the probe),
        ``stats``, ``class_means``, ``pooled`` (see :func:`measure`).
    """

    def __init__(
        self,
        model: Any,
        probe_data: Any,
        layers: Sequence[str] | None = None,
        every: int = 1,
        *,
        probe_size: int = 128,
        class_names: Sequence[str] | None = None,
        loss_fn: Callable[[Any, Any], Any] | None = None,
        keep_state: bool = True,
    ) -> None:
        from cnnvis.data import class_names_of

        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.model, self.every, self.loss_fn, self.keep_state = model, every, loss_fn, keep_state
        import torch

        with torch.random.fork_rng(devices=[]):  # a DataLoader draws a seed: keep the run's RNG
            self.x, self.y = probe_tensors(probe_data, probe_size)
        names = class_names or class_names_of(probe_data)
        n_classes = max(len(names or []), int(self.y.max()) + 1)
        if int(self.y.min()) < 0:
            raise ValueError("probe labels must be non-negative class indices")
        self.class_names = [str(c) for c in names] if names else [str(i) for i in range(n_classes)]
        if len(self.class_names) < n_classes:
            raise ValueError(
                f"{len(self.class_names)} class names for labels up to {n_classes - 1}"
            )
        if layers is None:
            with torch.random.fork_rng(devices=[]):
                layers = default_tracked_layers(model, self.x)
        self.layers = list(layers)
        self.snapshots: list[dict[str, Any]] = []
        self._calls = 0
        self._finite_state: tuple[Any, dict] | None = None

    def __repr__(self) -> str:
        return (f"Tracker({type(self.model).__name__}, {len(self.x)} probe samples, "
                f"{len(self.layers)} layers, {len(self.snapshots)} snapshots)")  # fmt: skip

    def snapshot(
        self, epoch: int | None = None, loss: Any = None, metrics: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """Measure the model now (see the module docstring); returns the entry, or None for a
        call that :attr:`every` skips. ``epoch`` defaults to the number of earlier calls."""
        loss = None if loss is None else _finite_number(loss, "loss")
        metrics = _metrics(metrics)
        call, self._calls = self._calls, self._calls + 1
        diverged = loss is not None and not math.isfinite(loss)
        if call % self.every and not diverged:
            return None
        entry = measure(self.model, self.x, self.y, self.layers, len(self.class_names),
                        loss_fn=self.loss_fn)  # fmt: skip
        metrics.setdefault("probe_loss", entry.pop("probe_loss"))
        entry.update(epoch=int(call if epoch is None else epoch), loss=loss, metrics=metrics)
        if self.keep_state and _weights_finite(self.model):
            state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            self._finite_state = (entry["epoch"], state)
        self.snapshots.append(entry)
        return entry

    def _recordable_model(self) -> tuple[Any, int | None]:
        """The model itself, or a copy at the last finite snapshot when its weights are not."""
        if _weights_finite(self.model):
            return self.model, None
        if self._finite_state is None:
            raise ValueError(
                "the model's weights are not finite and no snapshot had finite weights to record "
                "instead; the snapshots stay in tracker.snapshots for diagnose()"
            )
        epoch, state = self._finite_state
        model = copy.deepcopy(self.model)
        model.load_state_dict(state)
        return model, epoch

    def recording(self, *, progress: bool = False, **record_kwargs: Any) -> Any:
        """The :class:`~cnnvis.Recording` :meth:`save` writes: the final model (or the last
        finite one) recorded on the probe set by :func:`cnnvis.record`, with the snapshots."""
        from cnnvis.record import RecordError, record

        if not self.snapshots:
            raise ValueError("no snapshot taken yet: call tracker.snapshot() first")
        model, epoch = self._recordable_model()
        record_kwargs.setdefault("max_pooled", len(self.x))
        modes = {m: m.training for m in model.modules()}
        try:
            model.eval()  # recorded as it would be evaluated, like the snapshots; restored below
            rec = record(model, (self.x, self.y), layers=self.layers, progress=progress,
                         class_names=self.class_names, **record_kwargs)  # fmt: skip
        except RecordError as exc:
            raise RecordError(
                f"the tracker cannot write a session for this model: cnnvis.record says: {exc}. "
                "The snapshots stay in tracker.snapshots; "
                "cnnvis.analysis.diagnosis.diagnose(tracker.snapshots) diagnoses them"
            ) from None
        finally:
            for m, mode in modes.items():
                m.training = mode
        rec.snapshots = [session_entry(s, rec.pooled_index) for s in self.snapshots]
        rec.meta["tracker"] = {"probe_samples": len(self.x), "every": self.every,
                               "recorded_epoch": epoch}  # fmt: skip
        return rec

    def save(self, path: str | os.PathLike, *, overwrite: bool = True, **kwargs: Any) -> Path:
        """Write the session (:meth:`recording`) to the folder ``path``; returns it."""
        return self.recording(**kwargs).save(path, overwrite=overwrite)


def session_entry(snap: Mapping[str, Any], pooled_index: Any) -> dict[str, Any]:
    """A snapshot as ``Recording.snapshots`` keeps it: the pooled rows of the recorded sample."""
    entry = {k: v for k, v in snap.items() if k != "pooled"}
    entry["pooled"] = {k: np.ascontiguousarray(v[pooled_index]) for k, v in snap["pooled"].items()}
    return entry


class TrackerCallback:
    """A Lightning-style callback around a :class:`Tracker` (no Lightning import needed).

    ``Trainer(callbacks=[TrackerCallback(tracker)])``: at the end of every training epoch it
    takes a snapshot with the epoch number, the ``loss_key`` entry of
    ``trainer.callback_metrics`` as the loss and the other scalar entries as metrics.
    """

    def __init__(self, tracker: Tracker, loss_key: str = "train_loss") -> None:
        self.tracker, self.loss_key = tracker, loss_key

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        found = dict(getattr(trainer, "callback_metrics", {}) or {})
        loss = found.pop(self.loss_key, None)
        metrics = {}
        for k, v in found.items():
            try:
                metrics[str(k)] = float(v)
            except (TypeError, ValueError):
                continue  # a non-scalar entry is not a metric to plot
        self.tracker.snapshot(epoch=int(trainer.current_epoch), loss=loss, metrics=metrics)


def _history_row(history: Mapping[str, Any] | None, epoch: int) -> tuple[Any, dict[str, float]]:
    """The loss and metrics ``training.train``'s history gives for ``epoch`` (0: untrained)."""
    if not history:
        return None, {}
    if epoch == 0:
        row = {f"test_{k}": v for k, v in (history.get("initial") or {}).items()}
    else:
        row = next((r for r in history.get("epochs", []) if r.get("epoch") == epoch), {})
    keys = ("train_accuracy", "test_loss", "test_accuracy")
    metrics = {k: float(row[k]) for k in keys if isinstance(row.get(k), (int, float))}
    return row.get("train_loss"), metrics


def checkpoint_snapshots(
    rec: Any,
    data: Any,
    checkpoints: Sequence[str | os.PathLike],
    load: Callable[[Path], Any],
    history: Mapping[str, Any] | None = None,
    *,
    batch_size: int = 256,
) -> list[dict[str, Any]]:
    """Snapshot entries of saved checkpoints, measured on the recording's pooled samples.

    Parameters
    ----------
    rec : Recording
        Recorded from ``data``: its layers are tracked, its ``pooled_index`` samples (read from
        ``data``, which must index them) are the probe set.
    checkpoints : paths
        ``epoch_NNN.pt`` files (:func:`cnnvis.training.snapshot_paths`); the epoch is read from
        the name.
    load : callable
        ``load(path) -> model`` with the checkpoint's weights.
    history : dict, optional
        ``training.train``'s history (``history.json``): each epoch's training loss becomes the
        snapshot's loss, its train and test accuracy and test loss its metrics.
    """
    import torch

    from cnnvis.record.inputs import split_batch

    items = [split_batch(data[int(i)]) for i in rec.pooled_index]
    if not items:
        raise ValueError("the recording keeps no pooled samples to measure the checkpoints on")
    x = torch.stack([torch.as_tensor(a) for a, _ in items])
    y = torch.as_tensor([int(b) for _, b in items], dtype=torch.long)
    out = []
    for path in checkpoints:
        path = Path(path)
        epoch = int(path.stem.rpartition("_")[2]) if path.stem.startswith("epoch_") else len(out)
        entry = measure(load(path), x, y, rec.layer_names, rec.n_classes, batch_size=batch_size)
        loss, metrics = _history_row(history, epoch)
        metrics.setdefault("probe_loss", entry.pop("probe_loss"))
        entry.update(epoch=epoch, loss=loss, metrics=metrics, checkpoint=path.name)
        out.append(entry)
    return out
