"""Cluster edits with undo and redo (C7), mixed into :class:`~cnnvis.analysis.Analysis`.

Every edit is a JSON-serialisable dict (``op``, ``layer`` and its arguments) applied by
:func:`cnnvis.analysis.clusters.apply_edit` and kept in ``history``, so an analysis saved with
its session replays them on loading and can still undo them. Undo replays a layer's edits from its
base clustering; redo applies the undone edit again.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnvis.analysis.clusters import apply_edit

__all__ = ["ClusterEdits"]


class ClusterEdits:
    """The edit methods of an analysis, on its ``labels`` (per layer, the cluster of each neuron).

    The analysis provides ``recording``, ``labels``, ``_base_labels``, ``history``, ``_redo``,
    ``revision``, ``layer_revision``, ``_check_layer``, ``cluster_of`` and ``n_clusters``, and the
    caches an edit invalidates (``_matrix``, ``_features``, ``_connections``).
    """

    def apply(self, edit: dict[str, Any]) -> None:
        """Apply one edit (see :func:`cnnvis.analysis.clusters.apply_edit`) and record it."""
        edit = dict(edit)
        layer = self._check_layer(str(edit.get("layer")))
        new = apply_edit(self.labels[layer], edit, self.recording.class_means(layer))
        self.history.append(edit)
        self._redo.clear()
        self._set_labels(layer, new)

    def move_neuron(self, layer: str, neuron: int, to: int) -> None:
        """Move channel ``neuron`` of ``layer`` into cluster ``to``."""
        self.apply({"op": "move", "layer": layer, "neuron": int(neuron), "to": int(to)})

    def extract_neuron(self, layer: str, neuron: int) -> int:
        """Put channel ``neuron`` into a new cluster of its own; returns its id."""
        self.apply({"op": "extract", "layer": layer, "neuron": int(neuron)})
        return self.cluster_of(layer, neuron)

    def merge_clusters(self, layer: str, clusters: list[int]) -> int:
        """Merge ``clusters`` of ``layer`` into the smallest id (ids above shift down); returns it."""
        self.apply({"op": "merge", "layer": layer, "clusters": [int(c) for c in clusters]})
        return min(int(c) for c in clusters)

    def split_cluster(self, layer: str, cluster: int, k: int | None = 2) -> list[int]:
        """Split a cluster into ``k`` by K-Means on its members (None: see
        :meth:`drill_cluster`); returns the ids of the parts."""
        before = self.n_clusters(layer)
        self.apply(
            {
                "op": "split",
                "layer": layer,
                "cluster": int(cluster),
                "k": None if k is None else int(k),
                "random_state": self.random_state,
            }
        )
        return [int(cluster), *range(before, self.n_clusters(layer))]

    def drill_cluster(self, layer: str, cluster: int) -> list[int]:
        """Split a cluster into sub-clusters chosen as a layer's clusters are (legible k, best
        silhouette; in two when its members show no structure); returns the parts' ids."""
        return self.split_cluster(layer, cluster, k=None)

    def recluster(
        self, layer: str, n_clusters: int | None = None, method: str | None = None
    ) -> None:
        """Cluster ``layer`` again with ``n_clusters`` (None: chosen automatically)."""
        self.apply(
            {
                "op": "recluster",
                "layer": layer,
                "n_clusters": None if n_clusters is None else int(n_clusters),
                "method": method or self.method,
                "random_state": self.random_state,
            }
        )

    @property
    def can_undo(self) -> bool:
        return bool(self.history)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> dict[str, Any] | None:
        """Undo the last edit; returns it (None when there is nothing to undo)."""
        if not self.history:
            return None
        edit = self.history.pop()
        self._redo.append(edit)
        layer = edit["layer"]
        self._set_labels(layer, self._replay(layer))
        return edit

    def redo(self) -> dict[str, Any] | None:
        """Apply again the last undone edit; returns it (None when there is nothing to redo)."""
        if not self._redo:
            return None
        edit = self._redo.pop()
        layer = edit["layer"]
        new = apply_edit(self.labels[layer], edit, self.recording.class_means(layer))
        self.history.append(edit)
        self._set_labels(layer, new)
        return edit

    def _replay(self, layer: str) -> np.ndarray:
        lab = self._base_labels[layer]
        cm = self.recording.class_means(layer)
        for e in self.history:
            if e["layer"] == layer:
                lab = apply_edit(lab, e, cm)
        return lab

    def _set_labels(self, layer: str, labels: np.ndarray) -> None:
        self.labels[layer] = np.asarray(labels, dtype=np.int64)
        self.revision += 1
        self.layer_revision[layer] = self.revision
        self._matrix = {k: v for k, v in self._matrix.items() if k[0] != layer}
        self._features = {k: v for k, v in self._features.items() if k[0] != layer}
        self._connections = {k: v for k, v in self._connections.items() if layer not in k[:2]}
