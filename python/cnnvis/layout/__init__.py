"""Layout computations of the C++ core, numpy in and numpy out, scikit-learn conventions.

* :class:`TSNE` - Barnes-Hut t-SNE in 2-D and 3-D, ``fit_transform``, ``transform``,
  ``fit_sequence`` for training snapshots.
* :func:`nearest_neighbors` - exact or approximate (random-projection forest + NN-descent) kNN.
* :func:`hamiltonian_path`, :func:`reorder_rows`, :func:`reorder_columns` - row orders whose neighbours are alike
  (exact Held-Karp where feasible, local search beyond).
* :func:`pack_rectangles`, :func:`pack_hierarchy` - compact non-overlapping placements.
* :func:`bicluster_edges`, :func:`route_bicluster_edges`, :func:`bundle_edges` - edge
  biclustering, curves through the in-between nodes, and force-directed bundling.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TSNE": "cnnvis.layout.tsne",
    "nearest_neighbors": "cnnvis.layout.neighbors",
    "hamiltonian_path": "cnnvis.layout.reorder",
    "reorder_rows": "cnnvis.layout.reorder",
    "pack_rectangles": "cnnvis.layout.packing",
    "pack_hierarchy": "cnnvis.layout.packing",
    "bicluster_edges": "cnnvis.layout.bundling",
    "route_bicluster_edges": "cnnvis.layout.bundling",
    "bundle_edges": "cnnvis.layout.bundling",
    "reorder_columns": "cnnvis.layout.reorder",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnvis.layout' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
