"""The confusion matrix with examples (T2): each cell's most confident sample, and the most
confident mistakes.

Works on a :class:`~cnnvis.record.Recording` or anything with ``labels``, ``predictions``,
``confidences`` (softmax probability of the predicted class) and ``class_names``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Confusion", "confusion"]


@dataclass
class Confusion:
    """``matrix[t, p]``: samples of true class ``t`` predicted as ``p``. ``example[t, p]``: the
    sample of that cell with the highest confidence (-1 for an empty cell), ``example_confidence``
    its confidence (NaN for an empty cell). ``mistakes``: the misclassified samples, most
    confident first."""

    class_names: list[str]
    matrix: np.ndarray
    example: np.ndarray
    example_confidence: np.ndarray
    mistakes: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray

    def samples_in(self, true: int, predicted: int) -> np.ndarray:
        """The samples of cell ``(true, predicted)``, in sample order (for a selection)."""
        return np.flatnonzero((self.labels == true) & (self.predictions == predicted))


def confusion(recording, *, n_mistakes: int | None = None) -> Confusion:
    """The confusion matrix of ``recording`` with the most confident example of each cell and
    the ``n_mistakes`` most confident mistakes (all of them by default)."""
    labels = np.asarray(recording.labels, dtype=np.int64)
    predictions = np.asarray(recording.predictions, dtype=np.int64)
    conf = np.asarray(recording.confidences, dtype=np.float64)
    names = list(recording.class_names)
    k = len(names)
    if not labels.shape == predictions.shape == conf.shape or labels.ndim != 1:
        raise ValueError("labels, predictions and confidences must be 1-D and of one length")
    if labels.size and (
        min(labels.min(), predictions.min()) < 0 or max(labels.max(), predictions.max()) >= k
    ):
        raise ValueError(f"labels and predictions must lie in 0..{k - 1} ({k} class names)")
    cell = labels * k + predictions
    matrix = np.bincount(cell, minlength=k * k).reshape(k, k)
    # sort by cell, then by confidence descending (then sample, for ties): each cell's first
    order = np.lexsort((np.arange(cell.size), -conf, cell))
    first = order[np.r_[True, cell[order][1:] != cell[order][:-1]]] if cell.size else order
    example = np.full(k * k, -1, dtype=np.int64)
    example[cell[first]] = first
    example_conf = np.full(k * k, np.nan)
    example_conf[cell[first]] = conf[first]
    wrong = np.flatnonzero(labels != predictions)
    mistakes = wrong[np.lexsort((wrong, -conf[wrong]))][:n_mistakes]
    return Confusion(names, matrix, example.reshape(k, k), example_conf.reshape(k, k), mistakes,
                     labels, predictions)  # fmt: skip
