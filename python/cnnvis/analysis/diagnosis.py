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

from typing import Any

import numpy as np

__all__ = ["NEAR_IDENTICAL", "redundancy", "sign_balance"]

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
