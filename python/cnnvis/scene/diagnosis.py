"""Diagnosis mode as plain geometry: a chosen statistic per layer over the epochs (colours and
sparklines), the training curves and the findings.

Pure: a :class:`~cnnvis.Recording` (or an Analysis) in, a :class:`TrainingView` of numbers,
RGBA colours and unit-box polylines out; the viewer (:mod:`cnnvis.viewer.diagnosis`) only draws
it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnvis.analysis.diagnosis import Finding, diagnose
from cnnvis.scene.colors import colormap

__all__ = ["STATISTICS", "TrainingView", "sparkline", "training_view"]

#: The statistics a user can colour the layers by: (key in the snapshot stats, label).
STATISTICS = (
    ("dead", "dead units (fraction)"),
    ("saturated", "saturated / always-on units"),
    ("grad_norm", "gradient norm (log10)"),
    ("weight_norm", "weight norm"),
    ("act_mean", "activation mean"),
    ("act_std", "activation std"),
)
_LOG = {"grad_norm"}  # spans orders of magnitude: shown as log10


@dataclass
class TrainingView:
    """What diagnosis mode shows.

    Attributes
    ----------
    statistic : str
        The statistic of :data:`STATISTICS` the layers are coloured by.
    epochs : ndarray (n_snapshots,)
    layers : list of str
        Layers with that statistic, in model order.
    values : ndarray (n_layers, n_snapshots), float64
        The statistic (log10 for gradient norms); NaN where not measured.
    colors : ndarray (n_layers, 4), uint8
        Each layer's colour: its value at the last snapshot on the sequential colormap, over the
        range of all layers' last values.
    sparklines : list of ndarray (k, 2), float64
        Each layer's values over the epochs in a unit box (x: epoch, y: value over the layer's
        own range; NaN points left out).
    curves : dict of str to ndarray (n_snapshots,)
        Loss and metrics over the epochs (NaN where a snapshot lacks one).
    findings : list of Finding
    """

    statistic: str
    epochs: np.ndarray
    layers: list[str]
    values: np.ndarray
    colors: np.ndarray
    sparklines: list[np.ndarray]
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def sparkline(values: np.ndarray, epochs: np.ndarray) -> np.ndarray:
    """The finite ``values`` as points in the unit box: x by epoch, y by the values' own range
    (a constant series sits at mid-height)."""
    v, e = np.asarray(values, np.float64), np.asarray(epochs, np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return np.zeros((0, 2))
    e_span = (e.max() - e.min()) or 1.0
    lo, hi = v[ok].min(), v[ok].max()
    y = (v[ok] - lo) / (hi - lo) if hi > lo else np.full(int(ok.sum()), 0.5)
    return np.column_stack([(e[ok] - e.min()) / e_span, y])


def _curves(snaps: list[dict]) -> dict[str, np.ndarray]:
    names: dict[str, None] = {}
    if any(s.get("loss") is not None for s in snaps):
        names["loss"] = None
    for s in snaps:
        names.update(dict.fromkeys(s.get("metrics", {})))
    out = {}
    for name in names:
        got = [s.get("loss") if name == "loss" else s.get("metrics", {}).get(name) for s in snaps]
        out[name] = np.array([math.nan if v is None else float(v) for v in got])
    return out


def training_view(source: Any, statistic: str = "dead") -> TrainingView:
    """Diagnosis mode's view of a Recording or Analysis (``source.recording``).

    Raises
    ------
    ValueError
        For a statistic not in :data:`STATISTICS`.
    """
    if statistic not in dict(STATISTICS):
        raise ValueError(
            f"statistic must be one of {[k for k, _ in STATISTICS]}, got {statistic!r}"
        )
    rec = getattr(source, "recording", source)
    snaps = list(rec.snapshots)
    epochs = np.array([int(s.get("epoch", i)) for i, s in enumerate(snaps)], dtype=np.float64)
    layers: dict[str, None] = {}
    for s in snaps:
        for name, row in s.get("stats", {}).items():
            if math.isfinite(row.get(statistic, math.nan)):
                layers[name] = None
    values = np.array(
        [[s.get("stats", {}).get(n, {}).get(statistic, math.nan) for s in snaps] for n in layers],
        dtype=np.float64,
    ).reshape(len(layers), len(snaps))
    if statistic in _LOG:
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.log10(values)
        values[~np.isfinite(values)] = math.nan
    last = values[:, -1] if values.size else np.zeros(0)
    return TrainingView(
        statistic=statistic,
        epochs=epochs,
        layers=list(layers),
        values=values,
        colors=colormap(last) if len(last) else np.zeros((0, 4), np.uint8),
        sparklines=[sparkline(v, epochs) for v in values],
        curves=_curves(snaps),
        findings=diagnose(source),
    )
