"""Row orders of the activation matrices, kept with the saved analysis.

Ordering the rows of a cluster's matrix is a path search (:func:`cnnvis.analysis.facets.row_order`):
on ResNet-50 it is 353 heuristic searches, 14-20 s of an opening. The result depends only on the
cluster's members and their response profiles, so it is saved with the analysis (per layer: a
fingerprint of the profiles and, per cluster, its neurons in row order) and read back instead of
searched again. A cluster whose members changed, or a layer whose profiles changed (another
recording), misses the cache and is ordered afresh: the orders are the same either way.

The tile positions of the learned-features facets (:func:`cnnvis.analysis.facets.pack_tiles`, a
hierarchical packing: 2-9 s of a ResNet-50 opening) are kept the same way, per cluster with the
tile sizes they were packed for: other sizes (another ``patches_per_neuron``) are packed afresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnvis.analysis.facets import pack_tiles, row_order

__all__ = ["RowOrders", "array_stamp"]


def fingerprint(profiles: np.ndarray) -> str:
    """A short hash of a layer's profiles (float64 bytes)."""
    data = np.ascontiguousarray(profiles, dtype=np.float64).tobytes()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def array_stamp(*arrays: Any, salt: str = "") -> str:
    """A short hash of what a saved cache entry was computed from: ``salt``, then each array's
    dtype, shape and bytes (the caches of connections and patch tables stamp their entries)."""
    h = hashlib.blake2b(salt.encode(), digest_size=16)
    for arr in arrays:
        a = np.ascontiguousarray(arr)
        h.update(repr((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class RowOrders:
    """``order, how = cache.get(layer, members, profiles)``, computed once per member set."""

    def __init__(self, saved: dict[str, Any] | None = None) -> None:
        self._orders: dict[tuple[str, bytes], tuple[np.ndarray, str]] = {}
        # (layer, neurons in facet order, tile sizes) -> (tile positions, what placed them)
        self._tiles: dict[tuple[str, bytes, bytes], tuple[np.ndarray, str]] = {}
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

    def tiles(
        self,
        layer: str,
        profiles: np.ndarray,
        neurons: np.ndarray,
        sizes: np.ndarray,
        pack: Callable,
    ) -> tuple[np.ndarray, str]:
        """Tile positions of a facet of ``neurons`` with tiles ``sizes``; ``pack()`` places
        them when none are kept (``profiles``: the layer's, for the saved ones' fingerprint)."""
        key = (
            layer,
            np.asarray(neurons, np.int64).tobytes(),
            np.asarray(sizes, np.int64).tobytes(),
        )
        if key not in self._tiles:
            self._take_saved(layer, profiles)
            if key not in self._tiles:
                self._tiles[key] = pack()
                self.unsaved += 1
        return self._tiles[key]

    def packer(self, layer: str, profiles: np.ndarray, neurons: np.ndarray) -> Callable:
        """A ``pack(sizes, features, gap)`` for :func:`~cnnvis.analysis.facets.build_learned_features`
        that reads kept positions and keeps what :func:`~cnnvis.analysis.facets.pack_tiles`
        places (``profiles``: the layer's)."""

        def pack(sizes: np.ndarray, features: np.ndarray, gap: int) -> tuple[np.ndarray, str]:
            place = lambda: pack_tiles(sizes, features, gap)  # noqa: E731
            return self.tiles(layer, profiles, neurons, sizes, place)

        return pack

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
        for entry in doc.get("tiles", []):
            try:
                how, neurons, sizes, pos = entry
                pos = np.asarray(pos, dtype=np.int64).reshape(-1, 2)
                neurons = np.asarray(neurons, np.int64)
                sizes = np.asarray(sizes, np.int64).reshape(-1, 2)
            except (TypeError, ValueError):
                continue  # damaged: packed afresh
            if len(pos) == len(neurons) == len(sizes) and (pos >= 0).all():
                self._tiles[(layer, neurons.tobytes(), sizes.tobytes())] = (pos, str(how))

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
            current = {np.asarray(m, dtype=np.int64).tobytes() for m in members_list}
            tiles = [
                [how, np.frombuffer(n, np.int64).tolist(), np.frombuffer(sz, np.int64).tolist(),
                 pos.tolist()]
                for (name, n, sz), (pos, how) in self._tiles.items()
                if name == layer and np.sort(np.frombuffer(n, np.int64)).tobytes() in current
            ]  # fmt: skip
            if rows or tiles:
                fp = fingerprint(profiles(layer))
                out[layer] = {"fingerprint": fp, "clusters": rows, "tiles": tiles}
        return out
