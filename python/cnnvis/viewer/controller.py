"""The viewer's controller: selections, highlights and edits, without any widget.

The window and the tests drive the viewer through a :class:`Controller`. It owns the
:class:`cnnvis.Analysis` of the open session and the :class:`cnnvis.scene.Scene` built from it,
turns clicks into analysis edits (move a neuron, merge, split; undo and redo) and into selections
(samples, a class, a cluster), and tells the views what changed through Qt signals. Everything it
computes is plain data, so the tests can check it without looking at pixels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6 import QtCore

from cnnvis.scene.inputs import default_projection_layer

FACET_NAMES = {"features": "learned features", "matrix": "activation matrix"}
#: How many neurons light up for a sample or class selection, per layer, at most.
TOP_NEURONS_PER_LAYER = 8
#: How many samples of the projection are ringed for a selected cluster.
TOP_SAMPLES = 20


@dataclass
class Selection:
    """What is selected now. ``neurons`` maps a layer to the highlighted channels."""

    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    class_index: int = -1
    cluster: tuple[str, int] | None = None
    neuron: tuple[str, int] | None = None
    neurons: dict[str, np.ndarray] = field(default_factory=dict)
    top_samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_highlighted(self) -> int:
        return int(sum(len(v) for v in self.neurons.values()))


def strongest_neurons(
    scores: np.ndarray, top: int = TOP_NEURONS_PER_LAYER, min_z: float = 1.0
) -> np.ndarray:
    """Channels whose score stands out: at most ``top`` with a z-score of at least ``min_z``.

    ``scores`` is one value per channel (how much a channel responds to the selection compared with
    its usual response). Returns the channels sorted by decreasing score.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64).reshape(-1), nan=-np.inf)
    if s.size == 0:
        return np.zeros(0, np.int64)
    finite = np.isfinite(s)
    if not finite.any():
        return np.zeros(0, np.int64)
    mu, sd = float(s[finite].mean()), float(s[finite].std())
    z = (s - mu) / (sd if sd > 1e-12 else 1.0)
    order = np.argsort(-s, kind="stable")
    keep = [int(i) for i in order[:top] if finite[i] and z[i] >= min_z]
    return np.array(keep, dtype=np.int64)


class Controller(QtCore.QObject):
    """Selections and edits on an open session.

    Parameters
    ----------
    analysis : cnnvis.Analysis
        The analysis of the session (its recording is ``analysis.recording``).
    session_path : str or None
        Folder the session was loaded from; edits are saved there.

    Signals
    -------
    scene_changed()
        The scene was rebuilt (after an edit, undo/redo or a facet switch).
    highlight_changed()
        The highlighted neurons or selected cluster changed (the scene's highlight state).
    selection_changed()
        Any part of :attr:`selection` changed.
    projection_changed(str)
        The projection panel should show this layer.
    message(str)
        A line for the status bar.
    """

    scene_changed = QtCore.Signal()
    highlight_changed = QtCore.Signal()
    selection_changed = QtCore.Signal()
    projection_changed = QtCore.Signal(str)
    message = QtCore.Signal(str)

    def __init__(self, analysis: Any, session_path: str | None = None) -> None:
        super().__init__()
        self.analysis = analysis
        self.session_path = session_path
        self.rec = analysis.recording
        # a flat input (an MLP) has no feature images worth a facet: its matrices say more
        self.facet = "matrix" if len(self.rec.input_shape) == 1 else "features"
        #: Per-cluster exceptions to :attr:`facet`, ``{(layer, cluster): facet}``.
        self.facet_overrides: dict[tuple[str, int], str] = {}
        #: Layer groups shown with all their layers (None: every group expanded).
        self.expanded: set[str] | None = None
        self.selection = Selection()
        self.projection_layer = default_projection_layer(analysis)
        self._projection_cache: dict[str, np.ndarray] = {}
        self.scene = None
        #: The scene before the last change (the window animates from it after an expand).
        self.previous_scene = None
        #: What the last scene change was: ``"edit"`` or ``"expand"`` (groups opened or closed).
        self.last_change = "edit"
        #: The overview's input read from the analysis once per edit or facet switch (expanding
        #: a group only lays it out again).
        self._overview_input = None
        self.last_rebuild_s = 0.0
        self.rebuild_scene()
        if analysis.unsaved_row_orders:  # the next opening reads them instead of searching
            self.save()

    # -- model facts --------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return list(self.rec.class_names)

    @property
    def layers(self) -> list[str]:
        """The analysed layers, in network order."""
        return list(self.analysis.layers)

    def clusters(self, layer: str) -> np.ndarray:
        """Cluster id of every channel of ``layer``."""
        return np.asarray(self.analysis.labels[layer], dtype=np.int64)

    def n_clusters(self, layer: str) -> int:
        lab = self.clusters(layer)
        return int(lab.max()) + 1 if lab.size else 0

    def members(self, layer: str, cluster: int) -> np.ndarray:
        return np.flatnonzero(self.clusters(layer) == int(cluster))

    # -- scene --------------------------------------------------------------------------------
    def rebuild_scene(self, *, layout_only: bool = False) -> None:
        """Rebuild the scene from the analysis (after an edit or a facet switch), or only lay it
        out again from the cached overview input (``layout_only``: groups opened or closed)."""
        from cnnvis.scene import build_scene, overview_input

        t0 = time.perf_counter()
        if not layout_only or self._overview_input is None:
            self._overview_input = overview_input(
                self.analysis,
                facet=self.facet,
                facet_overrides=self.facet_overrides,
                projection=False,
            )
        self.previous_scene = self.scene
        self.last_change = "expand" if layout_only else "edit"
        # the overview only: the projection and the legend are Qt panels of their own
        self.scene = build_scene(
            self._overview_input,
            facet=self.facet,
            facet_overrides=self.facet_overrides,
            expanded=self.expanded,
            projection=False,
            legend=False,
        )
        self._apply_highlight()
        self.last_rebuild_s = time.perf_counter() - t0
        self.scene_changed.emit()

    def export_scene(self):
        """The full scene (overview, projection, legend) as shown, with the current highlight."""
        import copy

        from cnnvis.scene import build_scene

        scene = build_scene(
            self.analysis,
            facet=self.facet,
            facet_overrides=self.facet_overrides,
            expanded=self.expanded,
        )
        scene.highlight = copy.deepcopy(self.scene.highlight)
        return scene

    def _apply_highlight(self) -> None:
        """Write the selection into the scene's highlight state (the canvas draws it)."""
        sel = self.selection
        h = self.scene.highlight
        h.clear()
        h.neurons = {(layer, int(c)) for layer, chans in sel.neurons.items() for c in chans}
        if sel.cluster is not None:
            h.clusters = {sel.cluster}
        if sel.neuron is not None:
            h.neurons.add(sel.neuron)
        if sel.class_index >= 0:
            h.classes = {sel.class_index}
        pooled_index = np.asarray(self.rec.pooled_index, dtype=np.int64)
        h.samples = pooled_index[sel.samples[sel.samples < len(pooled_index)]]

    def set_facet(self, facet: str) -> None:
        """Show ``'features'`` (learned patches, C4) or ``'matrix'`` (activations, C5)."""
        if facet not in ("features", "matrix"):
            raise ValueError(f"facet must be 'features' or 'matrix', got {facet!r}")
        if facet != self.facet or self.facet_overrides:
            self.facet = facet
            self.facet_overrides = {}
            self.rebuild_scene()
            self.message.emit(f"every cluster shows its {FACET_NAMES[facet]}")

    def cluster_facet(self, layer: str, cluster: int) -> str:
        """The facet a cluster shows now."""
        return self.facet_overrides.get((layer, int(cluster)), self.facet)

    def toggle_cluster_facet(self, layer: str, cluster: int) -> None:
        """Switch one cluster between its learned features and its activation matrix."""
        key = (layer, int(cluster))
        other = "matrix" if self.cluster_facet(*key) == "features" else "features"
        if other == self.facet:
            self.facet_overrides.pop(key, None)
        else:
            self.facet_overrides[key] = other
        self.rebuild_scene()
        self.message.emit(f"{layer} cluster {cluster} shows its {FACET_NAMES[other]}")

    @property
    def group_names(self) -> list[str]:
        """Every nested layer group that can be opened (stages, blocks, ...), outermost first."""
        from cnnvis.scene.hierarchy import group_tree

        tree = group_tree(self._overview_input)
        return [node.name for top in tree for node in top.walk() if not node.is_leaf]

    def set_expanded(self, groups) -> None:
        """Open these layer groups (``"all"``: every one; None: the default depth)."""
        self.expanded = groups if groups is None or groups == "all" else set(groups)
        self.rebuild_scene(layout_only=True)
        shown = "every group open" if groups == "all" else "groups at the default depth"
        if groups is None or groups == "all":
            self.message.emit(f"{shown} ({1000 * self.last_rebuild_s:.0f} ms)")

    def toggle_group(self, group: str) -> None:
        """Expand a collapsed layer group or collapse an expanded one (C2)."""
        names = self.group_names
        if group not in names:
            raise ValueError(f"no layer group {group!r}; groups: {', '.join(names)}")
        current = set(self.scene.meta["expanded"]) ^ {group}
        self.set_expanded(current)
        state = "expanded" if group in current else "collapsed"
        self.message.emit(f"layer group {group} {state} ({1000 * self.last_rebuild_s:.0f} ms)")

    def edge_colors(self) -> list[tuple[str, tuple]]:
        """``(label, rgba)`` of the connection colours the scene uses (for the legend)."""
        from cnnvis.scene import SIGN_PALETTES
        from cnnvis.scene.colors import hex_to_rgba

        pos, neg = SIGN_PALETTES["blue-orange"]
        return [
            ("positive weight", tuple(hex_to_rgba(pos))),
            ("negative weight", tuple(hex_to_rgba(neg))),
        ]

    # -- projection ---------------------------------------------------------------------------
    def projection(self, layer: str | None = None) -> np.ndarray:
        """2-D t-SNE of the pooled samples at ``layer`` (cached in the session by the analysis)."""
        layer = layer or self.projection_layer
        if layer not in self._projection_cache:
            proj = self.analysis.projection(layer)
            self._projection_cache[layer] = np.asarray(proj.coords, dtype=np.float32)[:, :2]
            self.save()  # the analysis keeps its projections in the session
        return self._projection_cache[layer]

    def set_projection_layer(self, layer: str) -> None:
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} is not analysed; analysed: {', '.join(self.layers)}")
        if layer != self.projection_layer:
            self.projection_layer = layer
            self.projection_changed.emit(layer)

    @property
    def sample_labels(self) -> np.ndarray:
        return np.asarray(self.rec.labels)[self.rec.pooled_index]

    @property
    def sample_predictions(self) -> np.ndarray:
        return np.asarray(self.rec.predictions)[self.rec.pooled_index]

    @property
    def sample_images(self) -> np.ndarray:
        return self.rec.pooled_images

    # -- selections (P3, C7) -------------------------------------------------------------------
    def _set_neurons(self, neurons: dict[str, np.ndarray]) -> None:
        self.selection.neurons = {k: np.asarray(v, np.int64) for k, v in neurons.items() if len(v)}
        self._apply_highlight()
        self.highlight_changed.emit()
        self.selection_changed.emit()

    def neurons_for_samples(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Per layer, the channels that respond most to the pooled samples ``rows``.

        A channel's score is the mean of its pooled activation over the rows minus its mean over
        all samples, divided by its standard deviation; the channels standing out are kept
        (:func:`strongest_neurons`).
        """
        rows = np.asarray(rows, dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        if rows.size == 0:
            return out
        for layer in self.layers:
            out[layer] = strongest_neurons(self.analysis.neurons_for_samples(layer, rows))
        return out

    def neurons_for_class(self, c: int) -> dict[str, np.ndarray]:
        """Per layer, the channels whose mean activation on class ``c`` stands out."""
        out: dict[str, np.ndarray] = {}
        for layer in self.layers:
            out[layer] = strongest_neurons(self.analysis.neurons_for_class(layer, c))
        return out

    def select_samples(self, rows) -> None:
        """Select pooled samples (rows of the projection); their strongest neurons light up."""
        rows = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        self.selection.samples = rows
        self.selection.class_index = -1
        self._set_neurons(self.neurons_for_samples(rows))
        if rows.size:
            self.message.emit(
                f"{rows.size} samples selected: {self.selection.n_highlighted} neurons respond"
                " most strongly (highlighted)"
            )
        else:
            self.message.emit("selection cleared")

    def select_class(self, c: int) -> None:
        """Select class ``c`` (-1 clears); the neurons that respond strongly to it light up."""
        c = int(c)
        if c >= len(self.class_names):
            raise ValueError(f"class {c} does not exist ({len(self.class_names)} classes)")
        self.selection.class_index = c
        self.selection.samples = np.zeros(0, np.int64)
        if c < 0:
            self._set_neurons({})
            self.message.emit("class selection cleared")
            return
        self._set_neurons(self.neurons_for_class(c))
        self.message.emit(
            f"class {self.class_names[c]!r}: {self.selection.n_highlighted} neurons respond"
            " strongly (highlighted)"
        )

    def top_samples(self, layer: str, channels) -> np.ndarray:
        """Pooled samples (rows) on which the standardised activation of ``channels`` is highest."""
        x = np.asarray(self.rec.pooled(layer), dtype=np.float64)
        sd = x.std(axis=0)
        z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, np.inf)
        score = z[:, np.asarray(channels, dtype=np.int64)].mean(axis=1)
        n = min(TOP_SAMPLES, len(score))
        return np.argsort(-score, kind="stable")[:n].astype(np.int64)

    def select_cluster(self, layer: str, cluster: int | None) -> None:
        """Select a cluster (None clears): details, and its top samples ringed in the projection."""
        if cluster is None:
            self.selection.cluster = None
            self.selection.neuron = None
            self.selection.top_samples = np.zeros(0, np.int64)
        else:
            cluster = int(cluster)
            k = self.n_clusters(layer)
            if not 0 <= cluster < k:
                raise ValueError(f"cluster {cluster} does not exist in {layer!r} (0..{k - 1})")
            self.selection.cluster = (layer, cluster)
            self.selection.neuron = None
            self.set_projection_layer(layer)
            self.selection.top_samples = np.asarray(
                self.analysis.top_samples_for_cluster(layer, cluster, TOP_SAMPLES), np.int64
            )
            self.message.emit(
                f"{layer} cluster {cluster}: {len(self.members(layer, cluster))} neurons;"
                f" its top {len(self.selection.top_samples)} samples are ringed in the projection"
            )
        self._apply_highlight()
        self.highlight_changed.emit()
        self.selection_changed.emit()

    def select_neuron(self, layer: str, channel: int) -> None:
        """Select one neuron: its cluster is selected and the details show the neuron."""
        channel = int(channel)
        lab = self.clusters(layer)
        if not 0 <= channel < lab.size:
            raise ValueError(f"neuron {channel} does not exist in {layer!r} (0..{lab.size - 1})")
        self.select_cluster(layer, int(lab[channel]))
        self.selection.neuron = (layer, channel)
        self.selection.top_samples = self.top_samples(layer, [channel])
        self.selection_changed.emit()

    def clear_selection(self) -> None:
        self.selection = Selection()
        self._apply_highlight()
        self.highlight_changed.emit()
        self.selection_changed.emit()

    # -- details ------------------------------------------------------------------------------
    def strengths(self, layer: str, cluster: int) -> tuple[list, list]:
        """Incoming and outgoing ``(label, strength)`` of a cluster, strongest first (C6).

        The strength of a cluster pair is the analysis' mean positive plus mean negative
        neuron-to-neuron strength (so its sign says which dominates).
        """
        incoming, outgoing = [], []
        for src, dst in self.analysis.layer_pairs:
            if layer not in (src, dst):
                continue
            conn = self.analysis.connections(src, dst)
            net = np.asarray(conn.positive, np.float64) + np.asarray(conn.negative, np.float64)
            if dst == layer and cluster < net.shape[1]:
                incoming += [(f"{src} c{i}", float(v)) for i, v in enumerate(net[:, cluster])]
            if src == layer and cluster < net.shape[0]:
                outgoing += [(f"{dst} c{j}", float(v)) for j, v in enumerate(net[cluster])]
        incoming.sort(key=lambda r: -abs(r[1]))
        outgoing.sort(key=lambda r: -abs(r[1]))
        return incoming[:8], outgoing[:8]

    def details(self) -> dict | None:
        """What the details panel shows for the current cluster or neuron (None: nothing)."""
        sel = self.selection
        if sel.cluster is None:
            return None
        layer, cluster = sel.cluster
        lr = self.rec.layer(layer)
        members = self.members(layer, cluster)
        if sel.neuron is not None:
            chans = np.array([sel.neuron[1]])
            title = f"{layer} · neuron {sel.neuron[1]}"
            subtitle = f"in cluster {cluster} of {self.n_clusters(layer)} ({len(members)} neurons)"
            patches = [
                p for p, s in zip(lr.top_patches[chans[0]], lr.top_samples[chans[0]]) if s >= 0
            ]
            captions = [
                f"{v:.2f}"
                for v, s in zip(lr.top_values[chans[0]], lr.top_samples[chans[0]])
                if s >= 0
            ]
        else:
            chans = members
            title = f"{layer} · cluster {cluster}"
            subtitle = (
                f"{len(members)} of {lr.n_channels} neurons: "
                + ", ".join(str(int(c)) for c in members[:24])
                + (" …" if len(members) > 24 else "")
            )
            # the strongest patch of each of the cluster's strongest neurons
            best = np.nan_to_num(lr.top_values[members, 0], nan=-np.inf)
            order = members[np.argsort(-best, kind="stable")][:9]
            patches = [lr.top_patches[c, 0] for c in order if lr.top_samples[c, 0] >= 0]
            captions = [f"n{c}" for c in order if lr.top_samples[c, 0] >= 0]
        values = np.asarray(lr.class_means[chans], dtype=np.float64).mean(axis=0)
        incoming, outgoing = self.strengths(layer, cluster)
        return {
            "title": title,
            "subtitle": subtitle,
            "patches": patches,
            "patch_captions": captions,
            "class_names": self.class_names,
            "class_values": values,
            "class_colors": self.class_colors(),
            "incoming": incoming,
            "outgoing": outgoing,
        }

    def class_colors(self) -> np.ndarray:
        """``(n_classes, 3)`` RGB in [0, 1]: the scene's class colours."""
        from cnnvis.scene.colors import class_colors

        return np.asarray(class_colors(len(self.class_names)))[:, :3]

    # -- edits (C7) ---------------------------------------------------------------------------
    def _edit(self, edit: dict) -> None:
        t0 = time.perf_counter()
        self._forget_overrides(edit.get("layer"))
        self.analysis.apply(edit)
        self._after_edit()
        dt = time.perf_counter() - t0
        self.message.emit(f"{describe_edit(edit)} ({dt:.2f} s)")

    def _after_edit(self) -> None:
        sel = self.selection
        if sel.cluster is not None:
            layer, c = sel.cluster
            if c >= self.n_clusters(layer):
                sel.cluster = None
                sel.neuron = None
        self.rebuild_scene()
        self.save()
        self.selection_changed.emit()

    def _forget_overrides(self, layer: str | None) -> None:
        """Cluster ids of a layer change with its edits: its per-cluster facets are dropped."""
        self.facet_overrides = {k: v for k, v in self.facet_overrides.items() if k[0] != layer}

    def move_neuron(self, layer: str, channel: int, to_cluster: int) -> None:
        """Move neuron ``channel`` of ``layer`` into cluster ``to_cluster``."""
        self._edit({"op": "move", "layer": layer, "neuron": int(channel), "to": int(to_cluster)})

    def extract_neuron(self, layer: str, channel: int) -> None:
        """Make neuron ``channel`` a cluster of its own."""
        self._edit({"op": "extract", "layer": layer, "neuron": int(channel)})

    def merge_clusters(self, layer: str, clusters) -> None:
        """Merge the given clusters of ``layer`` into one."""
        self._edit({"op": "merge", "layer": layer, "clusters": [int(c) for c in clusters]})

    def split_cluster(self, layer: str, cluster: int, k: int = 2) -> None:
        """Split cluster ``cluster`` of ``layer`` into ``k`` by K-Means on its members."""
        self._edit({"op": "split", "layer": layer, "cluster": int(cluster), "k": int(k)})

    def drill_cluster(self, layer: str, cluster: int) -> None:
        """Split cluster ``cluster`` of ``layer`` into sub-clusters by the default rule."""
        self._edit({"op": "split", "layer": layer, "cluster": int(cluster), "k": None})

    def undo(self) -> bool:
        if not self.can_undo:
            self.message.emit("nothing to undo")
            return False
        edit = self.analysis.undo()
        self._forget_overrides((edit or {}).get("layer"))
        self._after_edit()
        self.message.emit(f"undone: {describe_edit(edit)}" if edit else "undone")
        return True

    def redo(self) -> bool:
        if not self.can_redo:
            self.message.emit("nothing to redo")
            return False
        edit = self.analysis.redo()
        self._forget_overrides((edit or {}).get("layer"))
        self._after_edit()
        self.message.emit(f"redone: {describe_edit(edit)}" if edit else "redone")
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self.analysis.can_undo)

    @property
    def can_redo(self) -> bool:
        return bool(self.analysis.can_redo)

    def save(self) -> None:
        """Save the edits with the session (no-op for a session without a folder)."""
        if self.session_path:
            try:
                self.analysis.save(self.session_path)
            except OSError as exc:  # a read-only session still works, unsaved
                self.message.emit(f"could not save the edits: {exc}")


def describe_edit(edit: dict) -> str:
    op, layer = edit.get("op"), edit.get("layer")
    if op == "move":
        return f"moved neuron {edit['neuron']} of {layer} to cluster {edit['to']}"
    if op == "extract":
        return f"extracted neuron {edit['neuron']} of {layer} into its own cluster"
    if op == "merge":
        return f"merged clusters {', '.join(map(str, edit['clusters']))} of {layer}"
    if op == "split" and edit.get("k", 2) is None:
        return f"drilled into cluster {edit['cluster']} of {layer}"
    if op == "split":
        return f"split cluster {edit['cluster']} of {layer} into {edit.get('k', 2)}"
    return f"{op} on {layer}"
