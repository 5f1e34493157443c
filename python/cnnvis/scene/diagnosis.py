"""Diagnosis mode as plain geometry: a chosen statistic per layer over the epochs (colours and
sparklines), the training curves and the findings.

Pure: a :class:`~cnnvis.Recording` (or an Analysis) in, a :class:`TrainingView` of numbers,
RGBA colours and unit-box polylines out; the viewer (:mod:`cnnvis.viewer.diagnosis`) only draws
it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnvis.analysis.diagnosis import Finding, diagnose
from cnnvis.scene.colors import colormap
from cnnvis.scene.model import LabelRows, Labels, Polylines, Rects, Scene

__all__ = [
    "STATISTICS",
    "TrainingView",
    "cluster_dead_fraction",
    "diagnosis_overlay",
    "sparkline",
    "training_view",
]

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


_INK, _MUTED, _SPARK_BOX = (0.16, 0.18, 0.21, 1.0), (0.38, 0.41, 0.46, 1.0), (1.0, 1.0, 1.0, 0.9)


def cluster_dead_fraction(source: Any, layer: str, labels: np.ndarray) -> np.ndarray:
    """Per cluster of ``layer``, the fraction of its units that are dead: all their class means
    (``rec.class_means``) within 1e-6 of 0 (a ReLU never active on the recorded samples)."""
    rec = getattr(source, "recording", source)
    means = np.asarray(rec.class_means(layer), np.float64)
    dead = np.all(np.abs(means) <= 1e-6, axis=1).astype(np.float64)
    labels = np.asarray(labels, np.int64)
    n = int(labels.max()) + 1 if labels.size else 0
    return np.bincount(labels, dead, n) / np.maximum(np.bincount(labels, minlength=n), 1)


def _layer_boxes(scene: Scene, view: TrainingView) -> dict[int, tuple[int, tuple]]:
    """Overview rect index -> (row of ``view``, box) for every unit drawing a layer of ``view``."""
    units = scene.meta.get("units", {})
    row = {name: i for i, name in enumerate(view.layers)}
    out = {}
    for k, rid in enumerate(scene.panels["overview"].rects.ids):
        if len(rid) == 2 and rid[0] in ("band", "layer") and units.get(rid[1]) in row:
            out[k] = (
                row[units[rid[1]]],
                tuple(float(v) for v in scene.panels["overview"].rects.xywh[k]),
            )
    return out


def diagnosis_overlay(
    scene: Scene, view: TrainingView, cluster_values: dict[str, np.ndarray] | None = None
) -> Scene:
    """``scene`` with diagnosis mode drawn on its overview: each unit drawing a layer of ``view``
    filled with that layer's colour, its sparkline in a column at the right of the rows (with its
    last value), and, given ``cluster_values`` (layer -> value per cluster in [0, 1], e.g.
    :func:`cluster_dead_fraction`), each cluster's outline in that value's colour.

    Pure: ``scene`` is not changed (the returned one shares its untouched parts, its highlight
    included), so showing ``scene`` again gives back the plain overview.
    """
    ov = scene.panels["overview"]
    x0, y0, x1, y1 = ov.bounds
    width = x1 - x0
    fill, stroke, swidth = (
        ov.rects.fill.copy(),
        ov.rects.stroke.copy(),
        ov.rects.stroke_width.copy(),
    )
    boxes = _layer_boxes(scene, view)
    for k, (i, _box) in boxes.items():
        fill[k] = view.colors[i] / 255.0
    for k, rid in enumerate(ov.rects.ids):
        values = (cluster_values or {}).get(rid[1]) if rid[0] == "cluster" else None
        if values is not None and rid[2] < len(values):
            stroke[k] = colormap(np.array([values[rid[2]]]), 0.0, 1.0)[0] / 255.0
            swidth[k] = max(float(swidth[k]), 2.5)
    sx, sw = x1 + 0.04 * width, 0.22 * width
    line_w = max(width, y1 - y0) / 450.0
    pts, offsets, colors, ids, boxes_xywh = [], [0], [], [], []
    labels = LabelRows()
    for i, (_x, by, _w, bh) in (v for _, v in sorted(boxes.items())):
        layer, sh = view.layers[i], 0.6 * bh
        top = by + 0.2 * bh
        boxes_xywh.append((sx, top, sw, sh))
        line = view.sparklines[i]
        pts += [(sx + px * sw, top + (1.0 - py) * sh) for px, py in line]
        offsets.append(len(pts))
        colors.append(_INK)
        ids.append(("layer", layer))
        last = view.values[i, -1] if view.values.shape[1] else math.nan
        labels.add(f"{last:.3g}", (sx + sw + 0.01 * width, by + bh / 2), 8.0, _INK,
                   ("left", "center"), id=("layer", layer))  # fmt: skip
    title = dict(STATISTICS)[view.statistic].split(" (")[0]  # short: the dock says the rest
    labels.add(title, (sx, min((b[1] for b in boxes_xywh), default=y0) - 0.01 * width), 9.0,
               _INK, ("left", "bottom"), bold=True)  # fmt: skip
    if len(view.epochs) and boxes_xywh:  # the epoch axis, under the last sparkline
        bottom = max(b[1] + b[3] for b in boxes_xywh) + 0.005 * width
        for text, x, side in ((f"epoch {int(view.epochs.min())}", sx, "left"),
                              (f"{int(view.epochs.max())}", sx + sw, "right")):  # fmt: skip
            labels.add(text, (x, bottom), 7.5, _MUTED, (side, "top"))
    lines = _append_lines(ov.lines, pts, offsets, colors, line_w, ids)
    rects = Rects.from_lists(  # the sparklines' boxes under them, after the overview's rects
        [*ov.rects.xywh, *boxes_xywh],
        [*fill, *([_SPARK_BOX] * len(ids))],
        [*stroke, *([_MUTED] * len(ids))],
        [*swidth, *([0.5 * line_w] * len(ids))],
        [*ov.rects.ids, *ids],
        ov.rects.pickable,
    )
    merged = Labels()
    merged.extend(ov.labels)
    merged.extend(labels.build())
    panel = dataclasses.replace(
        ov, bounds=(x0, y0, sx + sw + 0.25 * width, y1), rects=rects, lines=lines,
        labels=merged,
    )  # fmt: skip
    meta = {**scene.meta, "diagnosis": view.statistic}
    return dataclasses.replace(scene, panels={**scene.panels, "overview": panel}, meta=meta)


def _append_lines(lines: Polylines, pts, offsets, colors, width: float, ids) -> Polylines:
    n = len(ids)
    base = int(lines.offsets[-1])
    return Polylines(
        points=np.concatenate([lines.points, np.asarray(pts, np.float32).reshape(-1, 2)]),
        offsets=np.concatenate([lines.offsets, base + np.asarray(offsets[1:], np.int64)]),
        color=np.concatenate([lines.color, np.asarray(colors, np.float32).reshape(n, 4)]),
        width=np.concatenate([lines.width, np.full(n, width, np.float32)]),
        sign=np.concatenate([lines.sign, np.zeros(n, np.int8)]),
        strength=np.concatenate([lines.strength, np.zeros(n, np.float32)]),
        ids=[*lines.ids, *ids],
    )
