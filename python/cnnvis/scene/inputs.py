"""What the scene needs from an analysis, as plain data.

:func:`overview_input` reads an :class:`cnnvis.Analysis` into an :class:`OverviewInput`; tests and
users can also build an :class:`OverviewInput` by hand. :func:`cnnvis.scene.build_scene` accepts
either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BiclusterInput",
    "ClusterInput",
    "ConnectionInput",
    "LayerInput",
    "OverviewInput",
    "ProjectionInput",
    "overview_input",
]


@dataclass
class ClusterInput:
    """One neuron cluster of one layer.

    Attributes
    ----------
    index : int
        Cluster index within its layer.
    neurons : ndarray of int, shape (n,)
        Channels of the cluster, in facet order (the matrix's row order).
    features : ndarray, shape (H, W, 3 or 4), uint8, optional
        Packed learned-feature image (C4).
    matrix : ndarray, shape (n, n_classes), float, optional
        Activation matrix, a row per neuron in ``neurons`` order, columns in the shared class order
        (C5).
    feature_boxes : ndarray, shape (n, 4), optional
        Per neuron, its region ``(x0, y0, x1, y1)`` in pixels of ``features``.
    """

    index: int
    neurons: np.ndarray
    features: np.ndarray | None = None
    matrix: np.ndarray | None = None
    feature_boxes: np.ndarray | None = None

    @property
    def size(self) -> int:
        return int(len(self.neurons))


@dataclass
class LayerInput:
    """An analysed layer: its name, its layer group and its clusters."""

    name: str
    clusters: list[ClusterInput]
    group: str | None = None
    n_channels: int | None = None

    def __post_init__(self) -> None:
        if self.group is None:
            self.group = self.name
        if self.n_channels is None:
            self.n_channels = int(sum(c.size for c in self.clusters))


@dataclass
class BiclusterInput:
    """A bicluster of cluster-level connections: source clusters ``rows``, target ``cols``."""

    rows: np.ndarray
    cols: np.ndarray
    sign: int


@dataclass
class ConnectionInput:
    """Connections between the clusters of two analysed layers.

    Attributes
    ----------
    src, dst : str
        Layer names.
    strength : ndarray, shape (n_src_clusters, n_dst_clusters), float
        Signed aggregated strength between clusters (positive part minus negative part is fine;
        what matters is that a bicluster's sign and the entries it covers agree).
    biclusters : list of BiclusterInput
    direct : ndarray, shape (k, 2), int
        Cluster pairs drawn as direct edges.
    direct_sign : ndarray, shape (k,), int, optional
        Sign of each direct edge (default: the sign of ``strength``).
    """

    src: str
    dst: str
    strength: np.ndarray
    biclusters: list[BiclusterInput] = field(default_factory=list)
    direct: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))
    direct_sign: np.ndarray | None = None
    positive: np.ndarray | None = None
    negative: np.ndarray | None = None


@dataclass
class ProjectionInput:
    """A 2-D projection of the recorded samples at one layer (P1)."""

    layer: str
    xy: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    samples: np.ndarray | None = None
    method: str = "t-SNE"

    def __post_init__(self) -> None:
        self.xy = np.asarray(self.xy, dtype=np.float64)
        if self.xy.ndim != 2 or self.xy.shape[1] < 2:
            raise ValueError(f"projection xy must have shape (n, 2), got {self.xy.shape}")
        self.xy = self.xy[:, :2]
        n = len(self.xy)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        self.predictions = np.asarray(self.predictions, dtype=np.int64)
        if self.labels.shape != (n,) or self.predictions.shape != (n,):
            raise ValueError("projection labels and predictions need one entry per point")
        if self.samples is None:
            self.samples = np.arange(n, dtype=np.int64)
        self.samples = np.asarray(self.samples, dtype=np.int64)


@dataclass
class OverviewInput:
    """Everything :func:`~cnnvis.scene.build_scene` draws.

    ``layers`` are in network order (input first). ``groups`` lists the layer groups in order as
    ``(group_name, [layer names])``; by default each layer is its own group.
    """

    class_names: list[str]
    layers: list[LayerInput]
    connections: list[ConnectionInput] = field(default_factory=list)
    projection: ProjectionInput | None = None
    model_name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def groups(self) -> list[tuple[str, list[str]]]:
        out: list[tuple[str, list[str]]] = []
        for layer in self.layers:
            if out and out[-1][0] == layer.group:
                out[-1][1].append(layer.name)
            else:
                out.append((str(layer.group), [layer.name]))
        return out

    def layer(self, name: str) -> LayerInput:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"layer {name!r} is not in the overview")

    def connection(self, src: str, dst: str) -> ConnectionInput | None:
        for conn in self.connections:
            if conn.src == src and conn.dst == dst:
                return conn
        return None


def default_projection_layer(analysis: Any) -> str:
    """The layer the projection shows first: the last hidden layer with at least 8 neurons.

    Late layers separate the classes best; the output layer (as many neurons as classes, the
    logits) is skipped when there is another, since its classes collapse into tight blobs.
    """
    rec = analysis.recording
    names = list(analysis.layers)
    if len(names) > 1 and rec.layer(names[-1]).n_channels == rec.n_classes:
        names = names[:-1]
    for name in reversed(names):
        if rec.layer(name).n_channels >= 8:
            return name
    return names[-1]


def overview_input(
    analysis: Any,
    *,
    facet: str = "features",
    facet_overrides: dict[tuple[str, int], str] | None = None,
    projection: bool = True,
    projection_layer: str | None = None,
    patches_per_neuron: int = 4,
) -> OverviewInput:
    """Read a :class:`cnnvis.Analysis` into an :class:`OverviewInput` (or pass one through).

    Only what the picture needs is computed: learned-feature images for the clusters that show
    them (``facet`` and ``facet_overrides``), activation matrices for every cluster (they are
    cheap and give the neuron rows), connections for the analysis' adjacent layer pairs, and the
    projection of ``projection_layer`` (default: :func:`default_projection_layer`, as the viewer) when ``projection``.
    """
    if isinstance(analysis, OverviewInput):
        return analysis
    needed = ("recording", "layers", "groups", "clusters", "activation_matrix", "connections")
    if not all(hasattr(analysis, name) for name in needed):
        raise TypeError(
            f"build_scene needs a cnnvis.Analysis or a cnnvis.scene.OverviewInput, "
            f"got {type(analysis).__name__}"
        )
    overrides = dict(facet_overrides or {})
    rec = analysis.recording
    layers: list[LayerInput] = []
    for group in analysis.groups:
        for name in group.layers:
            clusters = []
            for c in range(len(analysis.clusters(name))):
                am = analysis.activation_matrix(name, c)
                neurons = np.asarray(am.neurons, dtype=np.int64)
                features = boxes = None
                if overrides.get((name, c), facet) == "features":
                    lf = analysis.learned_features(name, c, patches_per_neuron=patches_per_neuron)
                    features = lf.image
                    place = {
                        int(n): (x, y, x + w, y + h)
                        for n, (x, y, w, h) in zip(lf.neurons, np.asarray(lf.placements))
                    }
                    if all(int(n) in place for n in neurons):
                        boxes = np.array([place[int(n)] for n in neurons], dtype=np.float64)
                clusters.append(ClusterInput(c, neurons, features, np.asarray(am.values), boxes))
            n_channels = int(rec.layer(name).n_channels)
            layers.append(LayerInput(name, clusters, group=group.name, n_channels=n_channels))
    connections: list[ConnectionInput] = []
    for a, b in analysis.layer_pairs:
        cc = analysis.connections(a, b)
        pos = np.asarray(cc.positive, dtype=np.float64)
        neg = np.asarray(cc.negative, dtype=np.float64)
        direct = np.asarray(cc.direct_edges, dtype=np.int64).reshape(-1, 3)
        connections.append(
            ConnectionInput(
                a,
                b,
                pos + neg,
                [BiclusterInput(bc.rows, bc.cols, int(bc.sign)) for bc in cc.biclusters],
                direct=direct[:, :2],
                direct_sign=direct[:, 2],
                positive=pos,
                negative=neg,
            )
        )
    proj = None
    if projection:
        layer = projection_layer or default_projection_layer(analysis)
        p = analysis.projection(layer)
        idx = np.asarray(rec.pooled_index, dtype=np.int64)
        method = {"tsne": "t-SNE", "pca": "PCA"}.get(p.method, p.method)
        proj = ProjectionInput(
            layer, p.coords, rec.labels[idx], rec.predictions[idx], samples=idx, method=method
        )
    return OverviewInput(
        list(rec.class_names), layers, connections, proj, model_name=str(rec.model_name)
    )
