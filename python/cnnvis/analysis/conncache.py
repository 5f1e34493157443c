"""Cluster-level connections, kept with the saved analysis.

Aggregating the neuron strengths of two layers to their clusters and biclustering the result
(:func:`cnnvis.analysis.connections.aggregate`) takes 3-8 s of an opening on ResNet-50, and the
neuron strengths it starts from 2-4 s more. What the overview draws of it (per cluster pair the
mean positive and negative strength, the threshold, the biclusters and the direct edges) is small,
so it is saved with the analysis and read back. Each saved connection carries a stamp of what it
was computed from: the cluster labels of both layers and their class means (another recording
has other ones). A connection whose layers were edited since, or saved for another recording,
misses the stamp and is computed afresh, to the same result.

The neuron-to-neuron ``strength`` of a connection read back is computed when first read (a
neuron's details need it, the overview does not).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnvis.analysis.connections import ClusterConnections, SignedBicluster
from cnnvis.analysis.rowcache import array_stamp

__all__ = ["SavedConnections", "stamp"]

#: Prefix of the connection arrays among the analysis' arrays (no layer name starts with it).
PREFIX = "#connections."


def stamp(labels_a: np.ndarray, labels_b: np.ndarray, means_a: Any, means_b: Any) -> str:
    """A short hash of what a connection between two layers is computed from."""
    return array_stamp(
        np.asarray(labels_a, np.int64), np.asarray(labels_b, np.int64),
        np.asarray(means_a, np.float64), np.asarray(means_b, np.float64),
    )  # fmt: skip


class _Read(ClusterConnections):
    """A connection read back: its neuron strengths are computed on first read of ``strength``."""

    def __init__(self, compute: Callable[[], np.ndarray], **fields: Any) -> None:
        self._compute = compute
        super().__init__(strength=None, **fields)

    @property
    def strength(self) -> np.ndarray:
        if self._strength is None:
            self._strength = np.asarray(self._compute())
        return self._strength

    @strength.setter
    def strength(self, value: Any) -> None:
        self._strength = value


def _key(key: tuple) -> list:
    a, b, kind, rel, density = key
    return [str(a), str(b), str(kind), float(rel), float(density)]


class SavedConnections:
    """The connections saved with an analysis: :meth:`get` one back, :meth:`to_saved` them all.

    ``doc`` is the ``"connections"`` entry of ``analysis.json`` (a list), ``arrays`` the
    analysis' arrays (each connection's ``positive`` and ``negative`` stacked, ``(2, k_a, k_b)``).
    A damaged or foreign entry is never used: it is computed afresh.
    """

    def __init__(self, doc: Any = None, arrays: dict[str, np.ndarray] | None = None) -> None:
        self._saved: dict[str, tuple[dict, np.ndarray]] = {}
        arrays = arrays or {}
        for entry in doc if isinstance(doc, list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("array"), str):
                arr = arrays.get(PREFIX + entry["array"])
                if arr is not None:
                    self._saved[repr(entry.get("key"))] = (entry, arr)
        #: Connections computed since the analysis was last saved (its ``save`` resets this).
        self.unsaved = 0

    def get(
        self, key: tuple, stamp_: str, labels: tuple[np.ndarray, np.ndarray], compute: Callable
    ) -> ClusterConnections | None:
        """The saved connection of ``key`` (layers, kind, thresholds) if it was saved for this
        ``stamp_``; ``compute()`` gives its neuron strengths when they are read."""
        hit = self._saved.get(repr(_key(key)))
        if hit is None or hit[0].get("stamp") != stamp_:
            return None
        try:
            return _decode(key, hit[0], hit[1], labels, compute)
        except (KeyError, TypeError, ValueError, IndexError):
            return None  # damaged: computed afresh

    def to_saved(
        self, computed: dict[tuple, ClusterConnections], stamp_of: Callable[[tuple], str]
    ) -> tuple[list, dict[str, np.ndarray]]:
        """The ``"connections"`` document and arrays of the ``computed`` connections (key ->
        connection, each stamped by ``stamp_of(key)``) and of the saved ones that still hold."""
        doc, arrays = [], {}
        todo = {repr(_key(k)): (k, cc) for k, cc in computed.items()}
        for name, (entry, arr) in self._saved.items():
            if name not in todo and entry.get("stamp") == _stamp_or_none(stamp_of, entry):
                doc.append(dict(entry, array=str(len(doc))))
                arrays[PREFIX + str(len(arrays))] = arr
        for key, cc in todo.values():
            entry, arr = _encode(key, cc, stamp_of(key))
            doc.append(dict(entry, array=str(len(doc))))
            arrays[PREFIX + str(len(arrays))] = arr
        return doc, arrays


def _stamp_or_none(stamp_of: Callable[[tuple], str], entry: dict) -> str | None:
    try:
        key = entry["key"]
        return stamp_of((key[0], key[1], key[2], float(key[3]), float(key[4])))
    except (KeyError, TypeError, ValueError, IndexError):
        return None  # a layer no longer analysed, or a damaged entry: dropped


def _encode(key: tuple, cc: ClusterConnections, stamp_: str) -> tuple[dict, np.ndarray]:
    threshold = float(cc.threshold)
    entry = {
        "key": _key(key),
        "stamp": stamp_,
        "threshold": threshold if np.isfinite(threshold) else None,
        "biclusters": [
            [b.rows.tolist(), b.cols.tolist(), int(b.sign), b.edges.tolist()] for b in cc.biclusters
        ],
        "direct": np.asarray(cc.direct_edges, dtype=np.int64).tolist(),
        "layout": cc.layout,
        "notes": list(cc.notes),
    }
    pos = np.asarray(cc.positive, dtype=np.float64)
    return entry, np.stack([pos, np.asarray(cc.negative, dtype=np.float64)])


def _decode(key, entry, arr, labels, compute) -> ClusterConnections:
    la, lb = (np.asarray(x, dtype=np.int64) for x in labels)
    na, nb = np.bincount(la), np.bincount(lb)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.shape != (2, len(na), len(nb)):
        raise ValueError("the saved connection has other clusters")
    biclusters = []
    for rows, cols, sign, edges in entry["biclusters"]:
        b = SignedBicluster(
            np.asarray(rows, dtype=np.int64),
            np.asarray(cols, dtype=np.int64),
            int(sign),
            np.asarray(edges, dtype=np.int64).reshape(-1, 2),
        )
        _check_range(b.rows, len(na))
        _check_range(b.cols, len(nb))
        biclusters.append(b)
    direct = np.asarray(entry["direct"], dtype=np.int64).reshape(-1, 3)
    _check_range(direct[:, 0], len(na))
    _check_range(direct[:, 1], len(nb))
    threshold = entry["threshold"]
    return _Read(
        compute,
        layer_a=key[0],
        layer_b=key[1],
        kind=key[2],
        labels_a=la.copy(),
        labels_b=lb.copy(),
        positive=arr[0].copy(),
        negative=arr[1].copy(),
        counts=np.outer(na, nb).astype(np.int64),
        threshold=np.inf if threshold is None else float(threshold),
        biclusters=biclusters,
        direct_edges=direct,
        layout=str(entry["layout"]),
        notes=[str(n) for n in entry["notes"]],
    )


def _check_range(idx: np.ndarray, n: int) -> None:
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError("a saved cluster index is out of range")
