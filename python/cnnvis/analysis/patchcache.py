"""The patches of the learned-features facets, kept with the analysis of a small recording.

Cutting a layer's patches (:func:`cnnvis.analysis.facets.patch_table`) resizes receptive-field
crops with torch, so the first facet of an opening pays torch's import (2-7 s) and the cut.
Where all of an analysis' patch tables together are small (at most :data:`LIMIT_BYTES`: the demo,
a digits session of 100,000 samples), they are saved with the analysis and read back instead.
Each carries a stamp of the layer's top-k entries it was cut from; another recording misses it
and is cut afresh. A ResNet-50 session (118 MB of distinct patches) is not saved: its patches
are cut, as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnvis.analysis.facets import PatchTable, patch_table
from cnnvis.analysis.rowcache import array_stamp

__all__ = ["LIMIT_BYTES", "PatchTables"]

#: Saved only when all patch tables of an analysis together hold at most this many bytes.
LIMIT_BYTES = 32 * 2**20
#: Prefix of the patch arrays among the analysis' arrays (no layer name starts with it).
PREFIX = "#patches."
FIELDS = ("patches", "index", "samples", "count")


def stamp(rec_layer: Any, k: int) -> str:
    """A short hash of what a layer's patch table is cut from: its top-k entries and patch shape."""
    top = rec_layer.top_patches
    boxes = getattr(top, "top_boxes", np.zeros(0))
    salt = repr((int(k), tuple(top.shape)))
    return array_stamp(rec_layer.top_samples, rec_layer.top_values, boxes, salt=salt)


class PatchTables:
    """The patch tables of an analysis by ``(layer, k)``: :meth:`get` reads a saved one or cuts
    it; :meth:`to_saved` gives what to save (nothing when they are too big)."""

    def __init__(self, doc: Any = None, arrays: dict[str, np.ndarray] | None = None) -> None:
        self._tables: dict[tuple[str, int], PatchTable] = {}
        self._stamps: dict[tuple[str, int], str] = {}
        self._saved: dict[tuple[str, int], tuple[str, str]] = {}
        self._arrays = arrays or {}
        for entry in doc if isinstance(doc, list) else []:
            if isinstance(entry, list) and len(entry) == 4:
                layer, k, stamp_, name = entry
                self._saved[(str(layer), int(k))] = (str(stamp_), str(name))
        #: Tables cut since the analysis was last saved (its ``save`` resets this).
        self.unsaved = 0

    def get(self, layer: str, k: int, rec_layer: Any) -> PatchTable:
        key = (layer, int(k))
        if key not in self._tables:
            self._stamps[key] = stamp(rec_layer, key[1])
            table = self._read(key, rec_layer)
            if table is None:
                table = patch_table(rec_layer, key[1])
                self.unsaved += 1
            self._tables[key] = table
        return self._tables[key]

    def _read(self, key: tuple[str, int], rec_layer: Any) -> PatchTable | None:
        saved = self._saved.get(key)
        if saved is None or saved[0] != self._stamps[key]:
            return None
        try:
            t = PatchTable(*(self._arrays[f"{PREFIX}{saved[1]}.{f}"] for f in FIELDS))
        except KeyError:
            return None
        n, k = len(rec_layer.top_samples), key[1]
        shapes_ok = (
            t.patches.dtype == np.uint8 and t.patches.ndim == 4 and t.patches.shape[3] == 3
            and t.index.shape == t.samples.shape == (n, k) and t.count.shape == (n,)
        )  # fmt: skip
        if (
            not shapes_ok
            or t.index.min(initial=-1) < -1
            or t.index.max(initial=-1) >= len(t.patches)
        ):
            return None  # damaged: cut afresh
        if t.count.min(initial=0) < 0 or t.count.max(initial=0) > k:
            return None
        return PatchTable(t.patches, t.index.astype(np.int64), t.samples.astype(np.int64),
                          t.count.astype(np.int64))  # fmt: skip

    def to_saved(self) -> tuple[list, dict[str, np.ndarray]]:
        """The ``"patches"`` document and arrays of the tables cut or read so far; nothing when
        they hold more than :data:`LIMIT_BYTES`."""
        found = {key: (self._stamps[key], [getattr(t, f) for f in FIELDS])
                 for key, t in self._tables.items()}  # fmt: skip
        for key, (stamp_, name) in self._saved.items():  # saved, not read this time: kept
            arrays = [self._arrays.get(f"{PREFIX}{name}.{f}") for f in FIELDS]
            if key not in found and all(a is not None for a in arrays):
                found[key] = (stamp_, arrays)
        if sum(a.nbytes for _, arrays in found.values() for a in arrays) > LIMIT_BYTES:
            return [], {}
        doc, out = [], {}
        for i, (key, (stamp_, arrays)) in enumerate(found.items()):
            doc.append([key[0], key[1], stamp_, str(i)])
            out.update({f"{PREFIX}{i}.{f}": a for f, a in zip(FIELDS, arrays)})
        return doc, out
