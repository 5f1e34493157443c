"""Two models side by side (issue 18, part 5): what CNNVis reads off ShallowCNN, BaseCNN, DeepCNN
and BaseCNN x w, and what Rauber et al. read off untrained against trained networks.

:func:`compare_models` takes the Analyses of two sessions recorded on the same data and returns
a :class:`ModelComparison`, a plain data object:

* a table per model (:class:`ModelStats`): accuracy, parameters, and per analysed layer its
  channels, parameters, :func:`~cnnvis.analysis.diagnosis.redundancy` and
  :func:`~cnnvis.analysis.diagnosis.sign_balance`; :attr:`ModelComparison.rows` lines the two
  tables up by layer name (a layer only one model has gets a row of its own);
* the t-SNE projections of the samples both sessions kept, B's started from A's and rotated
  onto it (:func:`aligned_projections`), so that :meth:`ModelComparison.morph` moves each
  sample from where model A puts it to where model B does, and
  :attr:`ModelComparison.displacement` says how far.

Numpy in, numpy out; the pictures are :mod:`cnnvis.export.compare` and
:mod:`cnnvis.viewer.compare`.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cnnvis.analysis.diagnosis import redundancy, sign_balance
from cnnvis.analysis.projections import activations, align_onto, neighbourhood_hit

__all__ = [
    "LayerStats",
    "ModelComparison",
    "ModelStats",
    "aligned_projections",
    "check_same_data",
    "compare_models",
    "model_stats",
    "neighbour_agreement",
]

#: The recording keeps the parameters and the floating-point buffers (batch norm's running mean
#: and variance) of conv, linear and batch-norm modules; their parameters are these two.
PARAMETER_NAMES = ("weight", "bias")

#: Fewest samples kept by both sessions that a projection comparison needs.
MIN_COMMON_SAMPLES = 4


@dataclass
class LayerStats:
    """One analysed layer of one model.

    ``parameters`` counts the weights and biases of the conv, linear and batch-norm modules
    that feed the layer since the analysed layer before it (None when the recording has no
    graph to tell). ``redundancy`` is the share of near-identical activation-matrix rows,
    ``sign_balance`` the share of positive connection weight from the layer before (None for
    the first layer, or where the connections cannot be computed).
    """

    layer: str
    channels: int
    parameters: int | None
    redundancy: float
    sign_balance: float | None


@dataclass
class ModelStats:
    """One model's side of the comparison: who it is and its per-layer table.

    ``parameters`` counts the weights and biases of the conv, linear and batch-norm modules,
    the modules whose weights a recording keeps: every parameter of a plain CNN (the demo and
    case-study CNNs, torchvision's VGG and ResNets); other modules' (a LayerNorm, a PReLU) are
    not recorded and not counted.
    """

    name: str
    model: str
    session: str | None
    accuracy: float
    parameters: int
    n_samples: int
    layers: list[LayerStats]

    def layer(self, name: str) -> LayerStats:
        for stats in self.layers:
            if stats.layer == name:
                return stats
        raise KeyError(f"layer {name!r} is not in the table of {self.name}")


def _parameter_counts(rec: Any) -> dict[str, int]:
    return {
        module: sum(int(a.size) for key, a in arrays.items() if key in PARAMETER_NAMES)
        for module, arrays in rec.weights.items()
    }


def _parameters_by_layer(rec: Any, layers: list[str]) -> dict[str, int | None]:
    """Per layer, the parameters of the weighted modules upstream of it in the DAG and not
    upstream of an earlier layer: each parameter is counted once, at the first layer it feeds."""
    import networkx as nx

    counts = _parameter_counts(rec)
    graph = rec.graph
    nodes_of: dict[str, list] = {}
    for node, data in graph.nodes(data=True):
        nodes_of.setdefault(data.get("module") or node, []).append(node)
    counted: set[str] = set()
    out: dict[str, int | None] = {}
    for layer in layers:
        nodes = nodes_of.get(layer)
        if not nodes:
            out[layer] = None
            continue
        upstream = set(nodes).union(*(nx.ancestors(graph, n) for n in nodes))
        modules = {graph.nodes[n].get("module") for n in upstream} & counts.keys()
        out[layer] = sum(counts[m] for m in modules - counted)
        counted |= modules
    return out


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _sign_balance(analysis: Any, layer: str) -> float | None:
    try:
        return _finite_or_none(sign_balance(analysis, layer))
    except ValueError:  # an op on the path into the layer has no signed strength: no value
        return None


def model_stats(analysis: Any, name: str | None = None) -> ModelStats:
    """The comparison table of one Analysis: accuracy, parameters and per-layer statistics.

    ``name`` labels the model (default: the session folder's name, else the model's)."""
    rec = analysis.recording
    session = rec.session_path
    if name is None:
        name = session.name if session is not None else rec.model_name
    params = _parameters_by_layer(rec, list(analysis.layers))
    layers = [
        LayerStats(
            layer,
            rec.layer(layer).n_channels,
            params[layer],
            float(redundancy(analysis, layer)),
            _sign_balance(analysis, layer),
        )
        for layer in analysis.layers
    ]
    return ModelStats(
        str(name),
        rec.model_name,
        None if session is None else str(session),
        float(rec.accuracy),
        sum(_parameter_counts(rec).values()),
        rec.n_samples,
        layers,
    )


def check_same_data(rec_a: Any, rec_b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check that two recordings saw the same samples in the same order (the same number and
    the same labels), and return the samples both kept for projections: their positions and
    their rows in each recording's pooled arrays.

    Raises
    ------
    ValueError
        Naming what differs: the number of samples, of classes, the labels (how many and the
        first), or too few samples kept by both.
    """
    what = "compare needs two sessions recorded on the same data"
    if rec_a.n_samples != rec_b.n_samples:
        raise ValueError(
            f"{what}: A holds {rec_a.n_samples} samples, B {rec_b.n_samples}; record both "
            "models on the same data set and split"
        )
    if rec_a.n_classes != rec_b.n_classes:
        raise ValueError(f"{what}: A has {rec_a.n_classes} classes, B {rec_b.n_classes}")
    differ = np.flatnonzero(np.asarray(rec_a.labels) != np.asarray(rec_b.labels))
    if len(differ):
        raise ValueError(
            f"{what}: the labels differ on {len(differ)} of {rec_a.n_samples} samples (first at "
            f"sample {int(differ[0])}); the data or its order is not the same"
        )
    samples, rows_a, rows_b = np.intersect1d(
        rec_a.pooled_index, rec_b.pooled_index, assume_unique=True, return_indices=True
    )
    if len(samples) < MIN_COMMON_SAMPLES:
        raise ValueError(
            f"{what}: only {len(samples)} samples were kept for projections by both (at least "
            f"{MIN_COMMON_SAMPLES} needed); record both with the same seed and max_pooled"
        )
    return samples.astype(np.int64), rows_a.astype(np.int64), rows_b.astype(np.int64)


def neighbour_agreement(y_a: np.ndarray, y_b: np.ndarray, k: int = 6) -> float:
    """The mean share of each point's ``k`` nearest neighbours in ``y_a`` that are also among
    its ``k`` nearest in ``y_b``: 1 when the two projections group the samples alike,
    about ``k / n`` for unrelated ones. Rotation, scale and reflection do not change it."""
    from sklearn.neighbors import NearestNeighbors

    n = len(y_a)
    k = min(int(k), n - 1)
    if k < 1:
        raise ValueError("neighbour agreement needs at least two points")

    def neighbours(y: np.ndarray) -> np.ndarray:
        idx = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y, return_distance=False)
        return np.sort(idx[:, 1:], axis=1)

    na, nb = neighbours(y_a), neighbours(y_b)
    shared = [len(np.intersect1d(p, q, assume_unique=True)) for p, q in zip(na, nb)]
    return float(np.mean(shared)) / k


@dataclass
class ModelComparison:
    """Models A and B compared (see :func:`compare_models`).

    Attributes
    ----------
    a, b : ModelStats
        Each model's table.
    rows : list of (LayerStats or None, LayerStats or None)
        The two tables lined up by layer name, in layer order; None where a model lacks the
        layer.
    layer_a, layer_b : str
        The layers whose projections are compared.
    samples : ndarray of int64, shape (n,)
        The sample positions both sessions kept for projections.
    rows_a, rows_b : ndarray of int64, shape (n,)
        Their rows in each recording's pooled arrays (``rec.pooled_images[rows_a]`` ...).
    labels, predictions_a, predictions_b : ndarray of int64, shape (n,)
    coords_a, coords_b : ndarray of float64, shape (n, 2)
        The two t-SNEs (:func:`aligned_projections`): A's centred and scaled to unit RMS
        radius; B's started from A's, scaled alike and rotated (or reflected) onto A's.
    neighbourhood_hit_a, neighbourhood_hit_b : float
        How well each projection keeps the classes apart (k nearest neighbours).
    neighbour_agreement : float
        :func:`neighbour_agreement` of the two projections.
    class_names : list of str
    k : int
    """

    a: ModelStats
    b: ModelStats
    rows: list[tuple[LayerStats | None, LayerStats | None]]
    layer_a: str
    layer_b: str
    samples: np.ndarray
    rows_a: np.ndarray
    rows_b: np.ndarray
    labels: np.ndarray
    predictions_a: np.ndarray
    predictions_b: np.ndarray
    coords_a: np.ndarray
    coords_b: np.ndarray
    neighbourhood_hit_a: float
    neighbourhood_hit_b: float
    neighbour_agreement: float
    class_names: list[str]
    k: int = 6

    @property
    def displacement(self) -> np.ndarray:
        """How far each sample moves from A's projection to B's, ``(n,)`` (units: A's RMS
        radius)."""
        return np.linalg.norm(self.coords_b - self.coords_a, axis=1)

    def morph(self, t: float) -> np.ndarray:
        """The samples' places a fraction ``t`` of the way from A (0) to B (1), ``(n, 2)``."""
        t = float(t)
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"t must be between 0 (model A) and 1 (model B), got {t}")
        return (1.0 - t) * self.coords_a + t * self.coords_b

    def to_dict(self) -> dict[str, Any]:
        """The table and the projection's numbers, JSON-ready (NaN as None; no coordinates):
        ``{"a": model, "b": model, "rows": [{"layer", "a", "b"}], "projection": {...}}``."""

        def model(m: ModelStats) -> dict[str, Any]:
            d = {k: v for k, v in asdict(m).items() if k != "layers"}  # the layers: in "rows"
            return {**d, "accuracy": _finite_or_none(m.accuracy)}

        moved = self.displacement
        return {
            "a": model(self.a),
            "b": model(self.b),
            "rows": [
                {
                    "layer": (ra or rb).layer,
                    "a": None if ra is None else _row_dict(ra),
                    "b": None if rb is None else _row_dict(rb),
                }
                for ra, rb in self.rows
            ],
            "projection": {
                "layer_a": self.layer_a,
                "layer_b": self.layer_b,
                "n_samples": int(len(self.samples)),
                "k": self.k,
                "neighbourhood_hit_a": self.neighbourhood_hit_a,
                "neighbourhood_hit_b": self.neighbourhood_hit_b,
                "neighbour_agreement": self.neighbour_agreement,
                "mean_displacement": float(moved.mean()),
                "max_displacement": float(moved.max()),
            },
        }


def _row_dict(row: LayerStats) -> dict[str, Any]:
    return {**asdict(row), "redundancy": _finite_or_none(row.redundancy)}


def aligned_projections(
    x_a: np.ndarray, x_b: np.ndarray, perplexity: float = 30.0, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNEs of the same samples' activations in two models, ``x_a`` ``(n, d_a)`` and
    ``x_b`` ``(n, d_b)``, B's started from A's (:meth:`cnnvis.layout.TSNE.fit_sequence`): each
    sample starts where model A put it and moves only as far as its neighbours in B differ, so
    a class keeps its corner whenever B keeps it together. Both are then centred and scaled to
    unit RMS radius, B rotated (or reflected) onto A (orthogonal Procrustes). The same
    activations twice settle a little further (on the demo, 4% of the radius on average)."""
    from cnnvis.layout import TSNE

    perplexity = min(float(perplexity), (len(x_a) - 1) / 3.0)
    frames = TSNE(perplexity=perplexity, random_state=random_state).fit_sequence([x_a, x_b])
    coords_a = align_onto(frames[0], None)
    return coords_a, align_onto(frames[1], coords_a)


def _line_up(a: list[LayerStats], b: list[LayerStats]) -> list[tuple[Any, Any]]:
    """The two layer lists lined up by name (the longest common subsequences, difflib's)."""
    names_a, names_b = [s.layer for s in a], [s.layer for s in b]
    matcher = difflib.SequenceMatcher(None, names_a, names_b, autojunk=False)
    rows: list[tuple[Any, Any]] = []
    for op, i0, i1, j0, j1 in matcher.get_opcodes():
        if op == "equal":
            rows += list(zip(a[i0:i1], b[j0:j1]))
        else:  # a layer only one model has: a row of its own, A's first
            rows += [(s, None) for s in a[i0:i1]] + [(None, s) for s in b[j0:j1]]
    return rows


def compare_models(
    a: Any,
    b: Any,
    *,
    layer_a: str | None = None,
    layer_b: str | None = None,
    names: tuple[str, str] | None = None,
    k: int = 6,
    perplexity: float = 30.0,
    random_state: int = 0,
) -> ModelComparison:
    """Compare the models of two Analyses recorded on the same data.

    Parameters
    ----------
    a, b : Analysis
        The two models' analyses (:func:`cnnvis.session.open_session` of each session).
    layer_a, layer_b : str, optional
        The layers whose sample projections are compared (default: each model's last analysed
        layer; ``python -m cnnvis compare`` picks the viewer's projection layer instead).
    names : (str, str), optional
        Labels for A and B (default: the session folders' names, else the model names).
    k : int
        Neighbours for the neighbourhood hit and the neighbour agreement.
    perplexity, random_state
        Of the t-SNE (:func:`aligned_projections`).

    Raises
    ------
    ValueError
        If the two sessions were not recorded on the same data (:func:`check_same_data`).
    KeyError
        For a layer that was not analysed.
    TypeError
        For anything but two Analyses (a session's path, a Recording).
    """
    for x in (a, b):
        if not (hasattr(x, "recording") and hasattr(x, "layers")):
            raise TypeError(
                f"compare_models takes two Analyses (cnnvis.open_session(path)), got "
                f"{type(x).__name__}"
            )
    rec_a, rec_b = a.recording, b.recording
    samples, rows_a, rows_b = check_same_data(rec_a, rec_b)
    layer_a = a.layers[-1] if layer_a is None else layer_a
    layer_b = b.layers[-1] if layer_b is None else layer_b
    for analysis, layer in ((a, layer_a), (b, layer_b)):
        analysis.recording.layer(layer)  # a clear KeyError before any work
    names = names or (None, None)
    stats_a, stats_b = model_stats(a, names[0]), model_stats(b, names[1])
    coords_a, coords_b = aligned_projections(
        activations(a, layer_a)[rows_a], activations(b, layer_b)[rows_b], perplexity, random_state
    )
    labels = np.asarray(rec_a.labels[samples], dtype=np.int64)
    return ModelComparison(
        a=stats_a,
        b=stats_b,
        rows=_line_up(stats_a.layers, stats_b.layers),
        layer_a=layer_a,
        layer_b=layer_b,
        samples=samples,
        rows_a=rows_a,
        rows_b=rows_b,
        labels=labels,
        predictions_a=np.asarray(rec_a.predictions[samples], dtype=np.int64),
        predictions_b=np.asarray(rec_b.predictions[samples], dtype=np.int64),
        coords_a=coords_a,
        coords_b=coords_b,
        neighbourhood_hit_a=neighbourhood_hit(coords_a, labels, k),
        neighbourhood_hit_b=neighbourhood_hit(coords_b, labels, k),
        neighbour_agreement=neighbour_agreement(coords_a, coords_b, k),
        class_names=list(rec_a.class_names),
        k=int(k),
    )
