"""Diagnosis of a model and its training run (C8): findings read off a Recording or Analysis.

Pure: an :class:`~cnnvis.analysis.Analysis` (or a :class:`~cnnvis.record.Recording`) in, plain
numbers and a list of :class:`Finding` out; nothing is loaded, trained or drawn here.

Two measures of the finished model are also the columns of the comparison table:

* :func:`redundancy`: how many neurons of a layer have a twin in their cluster (CNNVis reads it
  off near-identical rows of the activation matrices of an over-wide network);
* :func:`sign_balance`: how much of the connection weight into a layer is positive (CNNVis finds
  the top layers of a too-deep network joined by almost only positive connections).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["KINDS", "NEAR_IDENTICAL", "Finding", "diagnose", "redundancy", "sign_balance"]

#: Two activation-matrix rows are *near-identical* when the root mean square of their difference,
#: over the classes, is at most this fraction of the layer's range of class means. The matrices
#: are drawn with the layer's range mapped onto one colour ramp; 5% of it is a step of about one
#: shade of the ramp's twenty or so that the eye tells apart, so such rows look the same.
NEAR_IDENTICAL = 0.05

#: A row whose class means spread over less than this fraction of the layer's range is *flat*: it
#: tells no class from another (a dead or constant unit, reported as such by the diagnosis) and
#: is never counted as a twin, so that redundancy measures duplicated information, not silence.
FLAT_ROW = 0.01


def _normalized_class_means(rec: Any, layer: str) -> np.ndarray:
    """Class means of ``layer`` mapped to [0, 1] by the layer's range, as the matrices draw them
    (zeros for a constant layer)."""
    cm = np.asarray(rec.class_means(layer), dtype=np.float64)
    finite = cm[np.isfinite(cm)]
    if finite.size == 0:
        return np.zeros_like(cm)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        return np.zeros_like(cm)
    return np.nan_to_num((cm - lo) / (hi - lo), nan=0.0)


def redundancy(analysis: Any, layer: str) -> float:
    """Fraction of ``layer``'s neurons whose activation-matrix row is near-identical to another
    row of the same cluster.

    A row is the neuron's mean activation on each class (``recording.class_means``), mapped to
    [0, 1] by the layer's range as the activation matrix draws it. Two rows are near-identical
    when the root mean square of their difference is at most :data:`NEAR_IDENTICAL` (5% of the
    range); flat rows (spread under :data:`FLAT_ROW` of the range: dead or constant units) never
    count. The clusters are the analysis' current ones (edits included).

    Returns
    -------
    float
        In [0, 1]; 0 for a layer with fewer than two neurons.

    Raises
    ------
    KeyError
        If ``layer`` is not analysed.
    """
    members_by_cluster = analysis.clusters(layer)
    rows = _normalized_class_means(analysis.recording, layer)
    n = len(rows)
    if n < 2:
        return 0.0
    flat = np.ptp(rows, axis=1) < FLAT_ROW
    twins = np.zeros(n, dtype=bool)
    n_classes = max(rows.shape[1], 1)
    for members in members_by_cluster:
        live = members[~flat[members]]
        if len(live) < 2:
            continue
        r = rows[live]
        sq = np.sum(r * r, axis=1)
        d2 = (sq[:, None] + sq[None, :] - 2.0 * r @ r.T) / n_classes
        np.fill_diagonal(d2, np.inf)
        twins[live] = d2.min(axis=1) <= NEAR_IDENTICAL**2
    return float(twins.mean())


def sign_balance(analysis: Any, layer: str) -> float:
    """Fraction of positive connection weight into ``layer`` from the previous analysed layer.

    Uses the signed neuron-to-neuron strengths of :meth:`Analysis.neuron_strengths` (kernel
    sums, batch norm folded in) over every :attr:`Analysis.layer_pairs` pair ending at ``layer``:
    ``sum(positive strengths) / sum(|strengths|)``. 0.5 is balanced; near 1 the layer is joined
    to the one before by almost only positive connections.

    Returns
    -------
    float
        In [0, 1]; NaN when no analysed layer feeds ``layer`` (the first one) or every strength
        into it is zero.

    Raises
    ------
    KeyError
        If ``layer`` is not analysed.
    ValueError
        If the strengths cannot be computed (an op on the path that is not expressible).
    """
    if layer not in analysis.labels:
        raise KeyError(f"layer {layer!r} is not analysed; analysed layers: {analysis.layers}")
    positive = total = 0.0
    for a, b in analysis.layer_pairs:
        if b != layer:
            continue
        s = analysis.neuron_strengths(a, b).strength
        positive += float(s[s > 0].sum())
        total += float(np.abs(s).sum())
    return positive / total if total > 0 else float("nan")


# -- findings -------------------------------------------------------------------------------------

#: The kinds of finding, in the order :func:`diagnose` reports them.
KINDS = (
    "loss_diverged",
    "loss_plateau",
    "overfitting",
    "vanishing_gradients",
    "exploding_gradients",
    "dead_units",
    "frozen_layer",
    "redundant_neurons",
    "all_positive_connections",
)

#: A layer whose units are dead (constant over the probe set; a ReLU that never fires) for this
#: fraction or more at the last snapshot. Below it, a few silent units are common and harmless
#: (an untrained demo CNN starts with about a third of its hidden ReLUs silent on 128 digits); at
#: half the layer, the layer has lost half its capacity and rarely wins it back, since a dead ReLU
#: gets no gradient.
DEAD_FRACTION = 0.5
#: First-to-last gradient norm ratio below which gradients vanish: the first layer learns a
#: thousand times slower than the last. Batch-normalised CNNs stay within 0.1-10 (the demo CNN:
#: about 0.4); a ten-layer sigmoid MLP falls below 1e-5.
VANISHING_RATIO = 1e-3
#: Ratio above which gradients explode (the mirror of :data:`VANISHING_RATIO`), or a gradient
#: norm (of the mean loss) above :data:`EXPLODED_NORM`, far beyond the order-one gradients of a
#: cross-entropy that is learning: one step of any usual learning rate would wreck the weights.
EXPLODING_RATIO = 1e3
EXPLODED_NORM = 1e3
#: Weights whose mean, standard deviation and norm all change by less than this (relative) are
#: unchanged; a layer is frozen when they stay unchanged over :data:`FROZEN_SPAN` consecutive
#: snapshot intervals while another layer's weights change in them (so a learning rate annealed
#: to zero, which stops every layer at once, is no finding). One Adam step of lr 1e-5 already
#: changes a weight norm by about 1e-5.
UNCHANGED = 1e-7
FROZEN_SPAN = 2
#: The loss diverged at the first snapshot where it is not finite or exceeds this multiple of the
#: lowest loss before it and the first loss: a run that is learning never doubles its loss.
DIVERGED_FACTOR = 2.0
#: The loss plateaus when it fell by less than :data:`PLATEAU_DROP` (relative) over the last
#: :data:`PLATEAU_SPAN` snapshots while still above :data:`PLATEAU_LEVEL` of the first loss: a
#: run stuck before it learned much. A converged run also stops improving, at a low loss: that
#: is no finding.
PLATEAU_SPAN = 5
PLATEAU_DROP = 0.01
PLATEAU_LEVEL = 0.5
#: Train accuracy above test accuracy by this much (10 points) at the last snapshot: the model
#: fits its training set clearly better than data it has not seen.
OVERFIT_GAP = 0.10
#: A layer with this fraction of its neurons redundant (:func:`redundancy`): a third of the
#: layer repeats another neuron of its cluster, capacity that a narrower layer would keep.
REDUNDANT_FRACTION = 1 / 3
#: Redundancy is reported only with this many classes or more: with fewer, an activation-matrix
#: row has too few entries for two rows being alike to say much (two classes: any two units that
#: prefer the same class look alike).
REDUNDANCY_MIN_CLASSES = 5
#: Sign balance (:func:`sign_balance`) at or above this: nine tenths of the connection weight
#: into the layer is positive, so it mostly sums its inputs instead of contrasting them.
ALL_POSITIVE = 0.9

_TRAIN_ACC = ("train_accuracy", "train_acc")
_TEST_ACC = ("test_accuracy", "val_accuracy", "test_acc", "val_acc")


@dataclass
class Finding:
    """One finding: ``kind`` (one of :data:`KINDS`), the ``layer`` (None for the whole run), the
    ``epoch`` it began (None for the recorded model), its ``value`` and a one-line ``message``."""

    kind: str
    layer: str | None
    epoch: int | None
    value: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["value"] = None if not math.isfinite(self.value) else float(self.value)
        return d


def _series(snaps: list[dict], layer: str, field: str) -> np.ndarray:
    return np.array([s.get("stats", {}).get(layer, {}).get(field, math.nan) for s in snaps])


def _epochs(snaps: list[dict]) -> list[int]:
    return [int(s.get("epoch", i)) for i, s in enumerate(snaps)]


def _since(flags: np.ndarray) -> int | None:
    """Index where the trailing run of True in ``flags`` starts (None if the last is False)."""
    if len(flags) == 0 or not flags[-1]:
        return None
    i = len(flags) - 1
    while i > 0 and flags[i - 1]:
        i -= 1
    return i


def _stat_layers(snaps: list[dict], field: str) -> list[str]:
    """Layers with a finite ``field`` in some snapshot, in the snapshots' (module) order."""
    names: dict[str, None] = {}
    for s in snaps:
        for name, row in s.get("stats", {}).items():
            if math.isfinite(row.get(field, math.nan)):
                names[name] = None
    return list(names)


def _losses(snaps: list[dict], given: bool) -> tuple[np.ndarray, list[int]]:
    """The losses given to the snapshots (a training loss, ``given``) or their probe losses,
    each series alone (they measure different things), with their epochs."""
    loss, epochs = [], []
    for s, e in zip(snaps, _epochs(snaps)):
        value = s.get("loss") if given else s.get("metrics", {}).get("probe_loss")
        if value is not None:
            loss.append(float(value))
            epochs.append(e)
    return np.asarray(loss, dtype=np.float64), epochs


def _diverged(loss: np.ndarray, epochs: list[int]) -> Finding | None:
    """The first snapshot whose loss is not finite or above :data:`DIVERGED_FACTOR` times both the
    lowest loss before it and the first loss."""
    for i in range(len(loss)):
        floor = np.fmin.reduce(loss[:i], initial=math.inf)
        bad = not math.isfinite(loss[i])
        if bad or (math.isfinite(floor) and loss[i] > DIVERGED_FACTOR * max(floor, loss[0])):
            how = "is not finite" if bad else f"rose to {loss[i]:.3g} from a low of {floor:.3g}"
            return Finding("loss_diverged", None, epochs[i], float(loss[i]),
                           f"the loss {how} at epoch {epochs[i]}: lower the learning rate")  # fmt: skip
    return None


def _plateau(loss: np.ndarray, epochs: list[int]) -> Finding | None:
    if len(loss) <= PLATEAU_SPAN or not (math.isfinite(loss[0]) and loss[0] > 0):
        return None
    before, recent = loss[-PLATEAU_SPAN - 1], loss[-PLATEAU_SPAN:]
    drop = (before - recent.min()) / abs(before)
    if drop >= PLATEAU_DROP or recent[-1] <= PLATEAU_LEVEL * loss[0]:
        return None
    e = epochs[-PLATEAU_SPAN - 1]
    return Finding("loss_plateau", None, e, float(recent[-1]),
                   f"the loss has stalled at {recent[-1]:.3g} since epoch {e} ({drop:.1%} lower "
                   f"over {PLATEAU_SPAN} snapshots), above half its first value {loss[0]:.3g}: "
                   "check the learning rate and the data")  # fmt: skip


def _loss_findings(snaps: list[dict]) -> list[Finding]:
    """Divergence in either loss series (the earliest); a plateau of the given loss, else of the
    probe loss."""
    series = [_losses(snaps, given) for given in (True, False)]
    diverged = [f for f in (_diverged(*s) for s in series) if f is not None]
    if diverged:
        return [min(diverged, key=lambda f: f.epoch)]
    main = series[0] if len(series[0][0]) else series[1]
    plateau = _plateau(*main)
    return [] if plateau is None else [plateau]


def _overfitting(snaps: list[dict]) -> list[Finding]:
    metrics = [s.get("metrics", {}) for s in snaps]
    if not metrics:
        return []
    train = next((k for k in _TRAIN_ACC if k in metrics[-1]), None)
    test = next((k for k in _TEST_ACC if k in metrics[-1]), None)
    if train is None or test is None:
        return []
    gap = np.array([m.get(train, math.nan) - m.get(test, math.nan) for m in metrics])
    start = _since(gap >= OVERFIT_GAP)
    if start is None:
        return []
    e = _epochs(snaps)[start]
    return [Finding("overfitting", None, e, float(gap[-1]),
                    f"{train} exceeds {test} by {gap[-1]:.1%} (since epoch {e}): more data, "
                    "augmentation, regularisation or a smaller model")]  # fmt: skip


def _gradient_findings(snaps: list[dict]) -> list[Finding]:
    layers = _stat_layers(snaps, "grad_norm")
    if len(layers) < 2:
        return []
    first, last = layers[0], layers[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = _series(snaps, first, "grad_norm") / _series(snaps, last, "grad_norm")
    peak = np.fmax.reduce([_series(snaps, n, "grad_norm") for n in layers], axis=0, initial=0.0)
    epochs, out = _epochs(snaps), []
    start = _since(ratio < VANISHING_RATIO)
    if start is not None:
        trend = ratio[-1] / ratio[start] if ratio[start] > 0 else math.nan
        out.append(Finding("vanishing_gradients", first, epochs[start], float(ratio[-1]),
                           f"the gradient norm of {first!r} is {ratio[-1]:.2g} times that of "
                           f"{last!r} since epoch {epochs[start]} (x{trend:.2g} since then): the "
                           "first layers barely learn; use ReLU, normalisation or residuals"))  # fmt: skip
    start = _since((ratio > EXPLODING_RATIO) | (peak > EXPLODED_NORM))
    if start is not None:
        out.append(Finding("exploding_gradients", first, epochs[start], float(ratio[-1]),
                           f"gradients explode since epoch {epochs[start]}: first/last norm ratio "
                           f"{ratio[-1]:.2g}, largest norm {peak[-1]:.3g}; clip gradients or "
                           "lower the learning rate"))  # fmt: skip
    return out


def _dead_units(snaps: list[dict], rec: Any) -> list[Finding]:
    out = []
    if snaps and any("stats" in s for s in snaps):
        epochs = _epochs(snaps)
        for layer in _stat_layers(snaps, "dead"):
            dead = _series(snaps, layer, "dead")
            start = _since(dead >= DEAD_FRACTION)
            if start is not None:
                out.append(Finding("dead_units", layer, epochs[start], float(dead[-1]),
                                   f"{dead[-1]:.0%} of the units of {layer!r} are dead (never "
                                   f"active on the probe set) since epoch {epochs[start]}: "
                                   "lower the learning rate or use LeakyReLU"))  # fmt: skip
        return out
    for name, layer in [] if rec is None else rec.layers.items():
        if layer.op != "act" or layer.top_values.shape[1] == 0:
            continue
        dead = float(np.mean(~(layer.top_values[:, 0] > 0)))  # never above 0 on the data
        if dead >= DEAD_FRACTION:
            out.append(Finding("dead_units", name, None, dead,
                               f"{dead:.0%} of the units of {name!r} never fire on the recorded "
                               "data"))  # fmt: skip
    return out


def _frozen_layers(snaps: list[dict]) -> list[Finding]:
    layers = _stat_layers(snaps, "weight_norm")
    if len(snaps) <= FROZEN_SPAN or len(layers) < 2:
        return []
    stats = np.stack(
        [
            [_series(snaps, n, f) for f in ("weight_mean", "weight_std", "weight_norm")]
            for n in layers
        ]
    )  # fmt: skip  (layers, 3, snapshots)
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.abs(np.diff(stats, axis=2)) / np.maximum(np.abs(stats[..., :-1]), 1e-12)
    unchanged = np.all(change < UNCHANGED, axis=1)  # (layers, intervals)
    epochs, out = _epochs(snaps), []
    for i, layer in enumerate(layers):
        start = _since(unchanged[i])
        if start is None or len(unchanged[i]) - start < FROZEN_SPAN:
            continue
        others_move = ~np.delete(unchanged, i, axis=0)[:, start:].all(axis=0)
        if others_move.any():
            out.append(Finding("frozen_layer", layer, epochs[start], float(change[i, 2, -1]),
                               f"the weights of {layer!r} have not changed since epoch "
                               f"{epochs[start]} while other layers still learn: frozen, or no "
                               "gradient reaches it"))  # fmt: skip
    return out


def _structure_findings(analysis: Any) -> list[Finding]:
    out = []
    for layer in analysis.layers if analysis.recording.n_classes >= REDUNDANCY_MIN_CLASSES else []:
        r = redundancy(analysis, layer)
        if r >= REDUNDANT_FRACTION:
            out.append(Finding("redundant_neurons", layer, None, r,
                               f"{r:.0%} of the neurons of {layer!r} have a near-identical twin "
                               "in their cluster: the layer could be narrower"))  # fmt: skip
    for layer in analysis.layers[1:]:
        try:
            b = sign_balance(analysis, layer)
        except ValueError:
            continue  # strengths that cannot be expressed (the overview draws none either)
        if b >= ALL_POSITIVE:
            out.append(Finding("all_positive_connections", layer, None, b,
                               f"{b:.0%} of the connection weight into {layer!r} is positive: "
                               "it sums its inputs rather than contrasting them"))  # fmt: skip
    return out


def diagnose(source: Any) -> list[Finding]:
    """The findings about a model and its training run, in the order of :data:`KINDS`.

    Parameters
    ----------
    source : Analysis, Recording or list of snapshot dicts
        An :class:`~cnnvis.analysis.Analysis` gives every finding; a Recording all but
        ``redundant_neurons`` and ``all_positive_connections`` (which need clusters); a list
        of snapshots (``Tracker.snapshots``, ``Recording.snapshots``) the training findings.
        Snapshots without statistics (older sessions) give only the loss and metric findings,
        and dead units from the recording's top activations.

    Every threshold is a module constant, documented with its reason.
    """
    analysis = source if hasattr(source, "recording") else None
    rec = analysis.recording if analysis is not None else None
    if rec is None and hasattr(source, "snapshots"):
        rec = source
    if rec is not None:
        snaps = list(rec.snapshots)
    elif isinstance(source, list) and all(isinstance(s, dict) for s in source):
        snaps = source
    else:
        raise TypeError(
            f"diagnose takes an Analysis, a Recording or a list of snapshots, got "
            f"{type(source).__name__}"
        )
    found = (_loss_findings(snaps) + _overfitting(snaps) + _gradient_findings(snaps)
             + _dead_units(snaps, rec) + _frozen_layers(snaps))  # fmt: skip
    if analysis is not None:
        found += _structure_findings(analysis)
    return sorted(found, key=lambda f: KINDS.index(f.kind))
