"""Linking samples and neurons (P3): which neurons respond to a selection of samples or to a
class, and which samples a cluster responds to most. Plain numpy on a recording's arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["class_scores", "sample_scores", "top_rows", "zscore_columns"]


def zscore_columns(x: np.ndarray) -> np.ndarray:
    """Each column minus its mean, over its standard deviation (0 for a constant column)."""
    sd = x.std(axis=0)
    sd[sd == 0] = np.inf
    return (x - x.mean(axis=0)) / sd


def sample_scores(pooled: np.ndarray, sample_rows: Any) -> np.ndarray:
    """Per neuron (column of ``pooled``), its mean standardised activation over ``sample_rows``.

    Shape ``(n_channels,)``, float64; zeros for an empty selection.
    """
    x = np.asarray(pooled, dtype=np.float64)
    rows = np.asarray(sample_rows, dtype=np.int64).reshape(-1)
    if rows.size == 0:
        return np.zeros(x.shape[1])
    if rows.min() < 0 or rows.max() >= x.shape[0]:
        raise ValueError(f"sample rows must be in 0..{x.shape[0] - 1}")
    return zscore_columns(x)[rows].mean(axis=0)


def class_scores(class_means: np.ndarray, cls: int) -> np.ndarray:
    """Per neuron (row of ``class_means``), its class mean for ``cls`` minus its mean over
    classes, over its standard deviation over classes (0 for a neuron that does not tell
    classes apart)."""
    cm = np.asarray(class_means, dtype=np.float64)
    cls = int(cls)
    if not 0 <= cls < cm.shape[1]:
        raise ValueError(f"class {cls} does not exist (0..{cm.shape[1] - 1})")
    sd = cm.std(axis=1)
    out = np.zeros(cm.shape[0])
    ok = sd > 0
    out[ok] = (cm[ok, cls] - cm[ok].mean(axis=1)) / sd[ok]
    return out


def top_rows(pooled: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows of ``pooled`` with the highest mean standardised activation over the
    columns ``members``, strongest first."""
    x = np.asarray(pooled, dtype=np.float64)
    score = zscore_columns(x)[:, members].mean(axis=1)
    order = np.argsort(-score, kind="stable")
    return order[: max(0, int(n))].astype(np.int64)
