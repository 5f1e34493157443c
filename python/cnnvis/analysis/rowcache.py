"""Row orders of the activation matrices, kept with the saved analysis.

Ordering the rows of a cluster's matrix is a path search (:func:`cnnvis.analysis.facets.row_order`):
on ResNet-50 it is 353 heuristic searches, 14-20 s of an opening. The result depends only on the
cluster's members and their response profiles, so it is saved with the analysis (per layer: a
fingerprint of the profiles and, per cluster, its neurons in row order) and read back instead of
searched again. A cluster whose members changed, or a layer whose profiles changed (another
recording), misses the cache and is ordered afresh: the orders are the same either way.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from cnnvis.analysis.facets import row_order

__all__ = ["RowOrders"]


def fingerprint(profiles: np.ndarray) -> str:
    """A short hash of a layer's profiles (float64 bytes)."""
    data = np.ascontiguousarray(profiles, dtype=np.float64).tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class RowOrders:
    """``order, how = cache.get(layer, members, profiles)``, computed once per member set."""

    def __init__(self, saved: dict[str, Any] | None = None) -> None:
        self._orders: dict[tuple[str, bytes], tuple[np.ndarray, str]] = {}
        self._saved = dict(saved or {})  # layer -> its saved document, checked on first use
        #: Orders searched since the analysis was last saved (its ``save`` resets this).
        self.unsaved = 0

    def get(self, layer: str, members: np.ndarray, profiles: np.ndarray) -> tuple[np.ndarray, str]:
        """Row order of ``profiles[members]`` (indices into ``members``) and what computed it."""
        members = np.asarray(members, dtype=np.int64)
        key = (layer, members.tobytes())
        if key not in self._orders:
            self._take_saved(layer, profiles)
            if key not in self._orders:
                self._orders[key] = row_order(profiles[members])
                self.unsaved += 1
        return self._orders[key]

    def _take_saved(self, layer: str, profiles: np.ndarray) -> None:
        doc = self._saved.pop(layer, None)
        if not isinstance(doc, dict) or doc.get("fingerprint") != fingerprint(profiles):
            return  # none saved, or saved for other profiles: order afresh
        n = profiles.shape[0]
        for how, rows in doc.get("clusters", []):
            neurons = np.asarray(rows, dtype=np.int64)
            members = np.sort(neurons)
            if members.size and (members[0] < 0 or members[-1] >= n):
                continue  # not this layer's neurons: ignore, never index out of range
            order = np.searchsorted(members, neurons)
            self._orders[(layer, members.tobytes())] = (order, str(how))

    def to_dict(self, clusters: dict[str, list[np.ndarray]], profiles) -> dict[str, Any]:
        """The orders of the current ``clusters`` (layer -> members of each cluster, ascending)
        that are known, for ``analysis.json``; ``profiles(layer)`` gives a layer's profiles."""
        out: dict[str, Any] = {}
        for layer, members_list in clusters.items():
            self._take_saved(layer, profiles(layer))
            rows = []
            for members in members_list:
                members = np.asarray(members, dtype=np.int64)
                hit = self._orders.get((layer, members.tobytes()))
                if hit is not None:
                    rows.append([hit[1], members[hit[0]].tolist()])
            if rows:
                out[layer] = {"fingerprint": fingerprint(profiles(layer)), "clusters": rows}
        return out
