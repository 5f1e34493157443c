"""The Analysis: neuron clusters, facets, connections and projections of a Recording.

A plain data object (numpy, networkx, lists, dicts): no vispy, no Qt, no torch. The scene and the
viewer read it; the viewer turns clicks into its edit methods.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from cnnvis.analysis.bands import LayerBand, layer_bands
from cnnvis.analysis.clusters import cluster_layer, response_profiles
from cnnvis.analysis.conncache import SavedConnections, stamp
from cnnvis.analysis.connections import (
    ClusterConnections,
    NeuronStrengths,
    adjacent_pairs,
    aggregate,
    chain_graph,
    neuron_strengths,
)
from cnnvis.analysis.edits import ClusterEdits
from cnnvis.analysis.facets import (
    ActivationMatrix,
    LearnedFeatures,
    Projection,
    build_activation_matrix,
    build_learned_features,
    project_pooled,
    row_order,
)
from cnnvis.analysis.linking import class_scores, sample_scores, top_rows
from cnnvis.analysis.patchcache import PatchTables
from cnnvis.analysis.rowcache import RowOrders
from cnnvis.analysis.store import (
    ANALYSIS_FILE,
    FORMAT,
    FORMAT_VERSION,
    PROJECTIONS_FILE,
    has_analysis,
    read_analysis,
    write_analysis,
)

__all__ = [
    "ANALYSIS_FILE",
    "PROJECTIONS_FILE",
    "Analysis",
    "LayerBand",
    "analyze",
    "has_analysis",
    "load_analysis",
]


class Analysis(ClusterEdits):
    """Clusters, facets, connections and projections of a :class:`~cnnvis.Recording`.

    Build it with :func:`analyze` (or :func:`load_analysis`). Everything derived (facets,
    connections, projections) is computed on first use and cached; an edit drops the caches of
    the layer it touches (and of the connections into and out of it), nothing else.

    Attributes
    ----------
    recording : Recording
        The recording analysed (never modified).
    layers : list of str
        The analysed layers, in recording (execution) order.
    labels : dict of str to ndarray of int64
        ``labels[layer][channel]`` is the neuron's cluster id, ``0..n_clusters(layer)-1``.
    method : str
        ``"kmeans"`` or ``"meanshift"``.
    random_state : int
    cluster_info : dict of str to dict
        Per layer, how its clustering was chosen (criterion, k, silhouette scores).
    history : list of dict
        The edits applied, oldest first (each a JSON-serialisable dict with ``op`` and ``layer``).
    revision : int
        Incremented by every edit, undo and redo (lets a scene know it is stale).
    layer_revision : dict of str to int
        Per layer, the revision of its last change.
    """

    def __init__(
        self,
        recording: Any,
        layers: list[str],
        labels: dict[str, np.ndarray],
        *,
        method: str = "kmeans",
        n_clusters: int | dict[str, int] | None = None,
        random_state: int = 0,
        cluster_info: dict[str, dict] | None = None,
    ) -> None:
        self.recording = recording
        self.layers = list(layers)
        self.method = method
        self.n_clusters_requested = n_clusters
        self.random_state = int(random_state)
        self._base_labels = {k: np.asarray(v, dtype=np.int64).copy() for k, v in labels.items()}
        self.labels = {k: v.copy() for k, v in self._base_labels.items()}
        self.cluster_info = dict(cluster_info or {})
        self.history: list[dict[str, Any]] = []
        self._redo: list[dict[str, Any]] = []
        self.revision = 0
        self.layer_revision = {name: 0 for name in self.layers}
        self._profiles: dict[str, np.ndarray] = {}
        self._matrix: dict[tuple[str, int], ActivationMatrix] = {}
        self._rows = RowOrders()  # row orders of the matrices, saved with the analysis
        self._features: dict[tuple[str, int, int], LearnedFeatures] = {}
        self._patches = PatchTables()  # the facets' patches, cut once per layer (or read back)
        self._strengths: dict[tuple[str, str, str], NeuronStrengths] = {}
        self._connections: dict[tuple, ClusterConnections] = {}
        self._saved_connections = SavedConnections()  # read back from the saved analysis
        self._projections: dict[str, Projection] = {}
        self._class_order: np.ndarray | None = None
        self._graph: nx.DiGraph | None = None
        self._groups: list[LayerBand] | None = None
        self.graph_notes: list[str] = []

    # -- structure ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        ks = ", ".join(f"{name}: {self.n_clusters(name)}" for name in self.layers)
        return (
            f"Analysis({self.recording.model_name!r}, clusters {{{ks}}}, {len(self.history)} edits)"
        )

    def _check_layer(self, layer: str) -> str:
        if layer not in self.labels:
            raise KeyError(
                f"layer {layer!r} is not analysed; analysed layers: {', '.join(self.layers)}"
            )
        return layer

    @property
    def graph(self) -> nx.DiGraph:
        """The model's DAG (``recording.graph``), or a chain over the recorded layers if empty."""
        if self._graph is None:
            g = self.recording.graph
            if g is None or g.number_of_nodes() == 0:
                names = self.recording.layer_names
                g = chain_graph(names, {n: self.recording.layer(n).op for n in names})
                self.graph_notes.append(
                    "the recording has no model graph: the recorded layers are taken as a chain"
                )
            self._graph = g
        return self._graph

    @property
    def groups(self) -> list[LayerBand]:
        """The bands of the overview (C2): :func:`cnnvis.analysis.bands.layer_bands`.

        Groups of :func:`cnnvis.layer_groups` without an analysed layer are left out; an
        analysed layer in no group is a band of its own.
        """
        if self._groups is None:
            self._groups = layer_bands(self.graph, self.layers)
        return self._groups

    @property
    def layer_pairs(self) -> list[tuple[str, str]]:
        """Pairs of analysed layers joined in the DAG by a path avoiding the other analysed layers.

        These are the connections an overview draws (:meth:`connections`).
        """
        return adjacent_pairs(self.graph, self.layers)

    def n_clusters(self, layer: str) -> int:
        """Number of clusters of ``layer``."""
        return int(self.labels[self._check_layer(layer)].max()) + 1

    def clusters(self, layer: str) -> list[np.ndarray]:
        """Members (channel indices, ascending) of each cluster of ``layer``, by cluster id."""
        lab = self.labels[self._check_layer(layer)]
        return [np.flatnonzero(lab == c) for c in range(int(lab.max()) + 1)]

    def cluster_of(self, layer: str, neuron: int) -> int:
        """Cluster id of channel ``neuron`` of ``layer``."""
        return int(self.labels[self._check_layer(layer)][int(neuron)])

    def profiles(self, layer: str) -> np.ndarray:
        """Response profiles (centred, unit-length class-mean rows) of ``layer``'s neurons."""
        if layer not in self._profiles:
            self._profiles[layer] = response_profiles(self.recording.class_means(layer), layer)
        return self._profiles[layer]

    # -- facets ---------------------------------------------------------------------------------
    @property
    def class_order(self) -> np.ndarray:
        """Column order of every activation matrix (C5), chosen once for the whole analysis.

        Each class is described by the profile values of all neurons of all analysed layers
        (a column of the stacked profiles); the order is the shortest open path over the
        Euclidean distances of those descriptions (``cnnvis.layout.hamiltonian_path``).
        """
        if self._class_order is None:
            cols = np.vstack([self.profiles(n) for n in self.layers]).T
            self._class_order, _ = row_order(cols)
        return self._class_order

    def _check_cluster(self, layer: str, cluster: int) -> int:
        k = self.n_clusters(layer)
        if not 0 <= int(cluster) < k:
            raise ValueError(f"cluster {cluster} does not exist in {layer!r} (0..{k - 1})")
        return int(cluster)

    def activation_matrix(self, layer: str, cluster: int) -> ActivationMatrix:
        """The activation-matrix facet of a cluster (C5): rows reordered, shared column order."""
        cluster = self._check_cluster(layer, cluster)
        key = (layer, cluster)
        if key not in self._matrix:
            members = np.flatnonzero(self.labels[layer] == cluster)  # clusters(layer)[cluster]
            self._matrix[key] = build_activation_matrix(
                layer,
                cluster,
                members,
                self.profiles(layer)[members],
                self.recording.class_means(layer),
                self.class_order,
                self._rows.get(layer, members, self.profiles(layer)),
            )
        return self._matrix[key]

    def learned_features(
        self, layer: str, cluster: int, *, patches_per_neuron: int = 4
    ) -> LearnedFeatures:
        """The learned-features facet of a cluster (C4): top patches of its neurons, packed.

        Each neuron's tile holds its ``patches_per_neuron`` strongest crops in a near-square grid;
        ``cnnvis.layout.pack_hierarchy`` places tiles of similar response profiles together.
        """
        cluster = self._check_cluster(layer, cluster)
        if patches_per_neuron < 1:
            raise ValueError(f"patches_per_neuron must be >= 1, got {patches_per_neuron}")
        key = (layer, cluster, int(patches_per_neuron))
        if key not in self._features:
            neurons = self.activation_matrix(layer, cluster).neurons
            rec_layer, profiles = self.recording.layer(layer), self.profiles(layer)
            self._features[key] = build_learned_features(
                layer,
                cluster,
                rec_layer,
                neurons,
                profiles[neurons],
                patches_per_neuron=key[2],
                table=self._patches.get(layer, key[2], rec_layer),
                pack=self._rows.packer(layer, profiles, neurons),
            )
        return self._features[key]

    # -- connections ----------------------------------------------------------------------------
    def neuron_strengths(self, layer_a: str, layer_b: str, kind: str = "weight") -> NeuronStrengths:
        """Signed neuron-to-neuron strengths from ``layer_a`` to ``layer_b`` (cached).

        See :mod:`cnnvis.analysis.connections` for the rules (kernel sums, folded batch norm, ...).
        """
        self._check_layer(layer_a)
        self._check_layer(layer_b)
        key = (layer_a, layer_b, kind)
        if key not in self._strengths:
            self._strengths[key] = neuron_strengths(
                self.recording, layer_a, layer_b, graph=self.graph, analysed=self.layers, kind=kind
            )
        return self._strengths[key]

    def incoming(self, layer: str, neuron: int, kind: str = "weight") -> dict[str, np.ndarray]:
        """Strengths into channel ``neuron`` of ``layer`` from each layer feeding it.

        ``{source layer: ndarray (n_source_channels,)}`` over the :attr:`layer_pairs` ending at
        ``layer`` (for a neuron's details panel).
        """
        self._check_neuron(layer, neuron)
        return {
            a: self.neuron_strengths(a, b, kind).strength[:, int(neuron)].copy()
            for a, b in self.layer_pairs
            if b == layer
        }

    def outgoing(self, layer: str, neuron: int, kind: str = "weight") -> dict[str, np.ndarray]:
        """Strengths from channel ``neuron`` of ``layer`` into each layer it feeds.

        ``{target layer: ndarray (n_target_channels,)}`` over the :attr:`layer_pairs` starting at
        ``layer``.
        """
        self._check_neuron(layer, neuron)
        return {
            b: self.neuron_strengths(a, b, kind).strength[int(neuron)].copy()
            for a, b in self.layer_pairs
            if a == layer
        }

    def _check_neuron(self, layer: str, neuron: int) -> int:
        n = self.labels[self._check_layer(layer)].shape[0]
        if not 0 <= int(neuron) < n:
            raise ValueError(f"neuron {neuron} does not exist in {layer!r} (channels 0..{n - 1})")
        return int(neuron)

    def connections(
        self,
        layer_a: str,
        layer_b: str,
        *,
        kind: str = "weight",
        rel_threshold: float = 0.1,
        min_density: float = 0.8,
    ) -> ClusterConnections:
        """Connections between the clusters of two layers (C6), biclustered per sign.

        Parameters
        ----------
        layer_a, layer_b : str
            Source and target (usually a pair of :attr:`layer_pairs`).
        kind : {'weight', 'effective'}
            Weights alone, or weights times the source neuron's mean activation.
        rel_threshold : float
            Cluster edges weaker than this fraction of the strongest are not drawn.
        min_density : float
            Passed to ``cnnvis.layout.bicluster_edges``.
        """
        key = (layer_a, layer_b, kind, float(rel_threshold), float(min_density))
        if key not in self._connections:
            labels = tuple(self.labels[self._check_layer(n)] for n in (layer_a, layer_b))
            cc = self._saved_connections.get(
                key, self._stamp(key), labels, lambda: self.neuron_strengths(*key[:3]).strength
            )
            if cc is None:
                ns = self.neuron_strengths(layer_a, layer_b, kind)
                cc = aggregate(ns, *labels, rel_threshold=rel_threshold, min_density=min_density)
                self._saved_connections.unsaved += 1
            self._connections[key] = cc
        return self._connections[key]

    def _stamp(self, key: tuple) -> str:
        """What a saved connection must have been computed from (:mod:`.conncache`)."""
        a, b, means = key[0], key[1], self.recording.class_means
        return stamp(self.labels[a], self.labels[b], means(a), means(b))

    # -- projections ----------------------------------------------------------------------------
    def projection(
        self, layer: str, *, perplexity: float = 30.0, random_state: int | None = None
    ) -> Projection:
        """2-D t-SNE of ``recording.pooled(layer)`` (P1), cached and saved with the session.

        Uses ``cnnvis.layout.TSNE(perplexity=..., random_state=...)``; fewer than 4 samples (too
        few for t-SNE) get a 2-D PCA (``method == "pca"``). ``random_state`` defaults to the
        analysis'.
        """
        layer = self._check_layer(layer)
        rs = self.random_state if random_state is None else int(random_state)
        params = {"perplexity": float(perplexity), "random_state": rs}
        cached = self._projections.get(layer)
        if cached is not None and {k: cached.params.get(k) for k in params} == params:
            return cached
        proj = project_pooled(layer, self.recording.pooled(layer), perplexity, rs)
        self._projections[layer] = proj
        return proj

    # -- linking (P3) ---------------------------------------------------------------------------
    def neurons_for_samples(self, layer: str, sample_rows: Any) -> np.ndarray:
        """How strongly each neuron of ``layer`` responds to a selection of samples.

        ``sample_rows`` index the rows of ``recording.pooled(layer)`` (the points of
        :meth:`projection`). The score of a neuron is the mean of its pooled activation over the
        selection minus its mean over all kept samples, in units of its standard deviation
        (0 for a constant neuron). Shape ``(n_channels,)``, float64.
        """
        return sample_scores(self.recording.pooled(self._check_layer(layer)), sample_rows)

    def neurons_for_class(self, layer: str, cls: int) -> np.ndarray:
        """How selective each neuron of ``layer`` is for class ``cls``.

        The neuron's class mean for ``cls`` minus its mean over classes, over its standard
        deviation over classes (0 for a neuron that does not tell classes apart).
        """
        return class_scores(self.recording.class_means(self._check_layer(layer)), cls)

    def top_samples_for_cluster(self, layer: str, cluster: int, n: int = 20) -> np.ndarray:
        """Rows of ``recording.pooled(layer)`` the cluster responds to most, strongest first.

        Ranked by the mean over the cluster's neurons of their standardised pooled activation.
        """
        members = self.clusters(layer)[self._check_cluster(layer, cluster)]
        return top_rows(self.recording.pooled(layer), members, n)

    # -- save / load ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The JSON document saved as ``analysis.json``."""
        rec = self.recording
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "recording": {
                "model_name": rec.model_name,
                "n_samples": rec.n_samples,
                "channels": {n: rec.layer(n).n_channels for n in self.layers},
            },
            "layers": self.layers,
            "method": self.method,
            "n_clusters": self.n_clusters_requested,
            "random_state": self.random_state,
            "cluster_info": self.cluster_info,
            "base_labels": {n: self._base_labels[n].tolist() for n in self.layers},
            "labels": {n: self.labels[n].tolist() for n in self.layers},
            "history": self.history,
            "redo": self._redo,
            "projections": {
                n: {"method": p.method, "params": p.params} for n, p in self._projections.items()
            },
            "row_orders": self._rows.to_dict(
                {n: self.clusters(n) for n in self.layers}, self.profiles
            ),
        }

    @property
    def unsaved_row_orders(self) -> bool:
        """Whether row orders, tiles, connections or patches are new since the last save."""
        return any(c.unsaved > 0 for c in (self._rows, self._saved_connections, self._patches))

    def save(self, session_dir: str | os.PathLike) -> Path:
        """Save the analysis into a session folder: ``analysis.json`` and ``analysis.npz``.

        In a session (a folder with ``manifest.json``) they are written as the part
        ``"analysis"`` with :func:`cnnvis.io.write_part` (atomic, checksummed); in any other
        existing folder as plain files, each written atomically. ``analysis.npz`` holds the
        projections and what openings reuse (connections, small patch tables; :mod:`.conncache`,
        :mod:`.patchcache`). Returns the path of ``analysis.json``.
        """
        d = Path(session_dir)
        if not d.is_dir():
            raise FileNotFoundError(f"session folder {str(d)!r} does not exist")
        arrays = {n: p.coords for n, p in self._projections.items()}
        saved, conns = self._saved_connections.to_saved(self._connections, self._stamp)
        patches, cut = self._patches.to_saved()
        doc = {**self.to_dict(), "connections": saved, "patches": patches}
        write_analysis(d, doc, {**arrays, **conns, **cut})
        self._rows.unsaved = self._saved_connections.unsaved = self._patches.unsaved = 0
        return d / ANALYSIS_FILE


def _resolve_layers(rec: Any, layers: list[str] | None) -> list[str]:
    if layers is None:
        names = rec.layer_names
    else:
        if isinstance(layers, str):
            layers = [layers]
        names = []
        for n in layers:
            rec.layer(n)  # raises a clear KeyError
            if n not in names:
                names.append(n)
        order = {n: i for i, n in enumerate(rec.layer_names)}
        names.sort(key=order.__getitem__)
    if not names:
        raise ValueError("no layers to analyse: the recording holds none")
    return names


def analyze(
    rec: Any,
    *,
    layers: list[str] | None = None,
    n_clusters: int | dict[str, int] | None = None,
    method: str = "kmeans",
    random_state: int = 0,
    session: str | os.PathLike | None = None,
) -> Analysis:
    """Cluster the neurons of a recording's layers (C3) and return an :class:`Analysis`.

    Parameters
    ----------
    rec : Recording
    layers : list of str, optional
        Layers to analyse (dotted module paths); all recorded layers by default.
    n_clusters : int, dict of str to int, or None
        Clusters per layer; None chooses k per layer (clusters of about 10-40 neurons) by the silhouette criterion of
        :func:`cnnvis.analysis.clusters.cluster_layer`.
        A dict gives k for some layers (the others are chosen).
    method : {'kmeans', 'meanshift'}
    random_state : int
    session : path, optional
        A session folder: if it holds an ``analysis.json`` made with the same layers, method,
        n_clusters and random_state, that analysis (with its edits) is loaded instead.

    Raises
    ------
    ValueError
        On NaN/inf class means, n_clusters out of range, or an unknown method.
    KeyError
        On a layer that was not recorded.
    """
    names = _resolve_layers(rec, layers)
    if session is not None and has_analysis(session):
        prev = load_analysis(session, rec)
        nc = n_clusters if not isinstance(n_clusters, dict) else dict(n_clusters)
        if (
            prev.layers == names
            and prev.method == method
            and prev.n_clusters_requested == nc
            and prev.random_state == int(random_state)
        ):
            return prev
    if method not in ("kmeans", "meanshift"):
        raise ValueError(f"method must be 'kmeans' or 'meanshift', got {method!r}")
    labels, info = {}, {}
    for name in names:
        k = n_clusters.get(name) if isinstance(n_clusters, dict) else n_clusters
        labels[name], info[name] = cluster_layer(
            rec.class_means(name),
            n_clusters=k,
            method=method,
            random_state=random_state,
            layer=name,
        )
    return Analysis(
        rec,
        names,
        labels,
        method=method,
        n_clusters=n_clusters,
        random_state=random_state,
        cluster_info=info,
    )


def load_analysis(session_dir: str | os.PathLike, rec: Any) -> Analysis:
    """Load ``analysis.json`` (and projections) from a session folder, for the recording ``rec``.

    The base clustering is read back and the recorded edits are re-applied (so undo works after a
    load); the result is checked against the saved labels.

    Raises
    ------
    FileNotFoundError
        If the folder holds no analysis.
    ValueError
        If the file is corrupt, of a future version, or does not match ``rec``.
    """
    d = Path(session_dir)
    path = d / ANALYSIS_FILE
    doc, arrays = read_analysis(d)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a cnnvis analysis file")
    if int(doc.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} has format version {doc['version']}, newer than this cnnvis "
            f"({FORMAT_VERSION}): upgrade cnnvis"
        )
    try:
        layers = list(doc["layers"])
        for n in layers:
            if n not in rec.layers:
                raise ValueError(f"layer {n!r} of the saved analysis is not in the recording")
            got = len(doc["base_labels"][n])
            if got != rec.layer(n).n_channels:
                raise ValueError(
                    f"the saved analysis has {got} neurons for {n!r}, the recording "
                    f"{rec.layer(n).n_channels}: it belongs to another recording"
                )
        base = {n: np.asarray(doc["base_labels"][n], dtype=np.int64) for n in layers}
        nc = doc.get("n_clusters")
        a = Analysis(
            rec,
            layers,
            base,
            method=str(doc.get("method", "kmeans")),
            n_clusters=nc,
            random_state=int(doc.get("random_state", 0)),
            cluster_info=doc.get("cluster_info", {}),
        )
        for e in doc.get("history", []):
            a.apply(e)
        a._redo = [dict(e) for e in doc.get("redo", [])]
        a._rows = RowOrders(doc.get("row_orders"))
        a._saved_connections = SavedConnections(doc.get("connections"), arrays)
        a._patches = PatchTables(doc.get("patches"), arrays)
        for n in layers:
            saved = np.asarray(doc["labels"][n], dtype=np.int64)
            if not np.array_equal(saved, a.labels[n]):
                warnings.warn(
                    f"re-applying the edits of {n!r} did not give the saved clusters; "
                    "using the saved ones",
                    RuntimeWarning,
                    stacklevel=2,
                )
                a.labels[n] = saved
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} is incomplete or corrupt ({exc!r})") from None
    for n, meta in doc.get("projections", {}).items():
        if n in arrays and n in a.labels:
            a._projections[n] = Projection(
                n, np.asarray(arrays[n], dtype=np.float32), meta["method"], meta["params"]
            )
    a.revision = 0
    return a
