"""Hidden activity, the Rauber way (P1, P2): neurons placed by how alike they fire, samples
placed by their activity, and how well a projection keeps the classes apart.

Rauber, Fadel, Falcão and Telea, *Visualizing the Hidden Activity of Artificial Neural Networks*
(TVCG 2017). Numpy in, numpy out: every function reads a :class:`~cnnvis.Recording` (or an
:class:`~cnnvis.analysis.Analysis`, whose recording is used) and returns plain data objects.

* :func:`neuron_projection` - neurons by MDS (or t-SNE) of ``1 - |Pearson r|`` over the samples,
  each with the class it tells apart best and how well;
* :func:`sample_projection` - the t-SNE of a layer's pooled activations with its
  :func:`neighbourhood_hit`;
* :func:`projection_grid`, :func:`neuron_grid` - sample or neuron projections for every
  (layer, snapshot) cell of a grid, rotated alike so that panels side by side compare (small
  multiples; what a viewer grid and ``export projections`` draw);
* :func:`neuron_activation` - a picked neuron's activation per sample, to colour samples by.

A *snapshot* is a position in ``rec.snapshots`` (negative counts from the end; ``None`` is the
recorded model itself). The samples are the rows of ``rec.pooled(layer)``: the bounded,
class-stratified sample whose positions are ``rec.pooled_index``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "NeuronProjection",
    "SampleProjection",
    "activations",
    "align_onto",
    "class_auc",
    "classical_mds",
    "correlation_distance",
    "distance_rank_correlation",
    "neighbourhood_hit",
    "neuron_activation",
    "neuron_grid",
    "neuron_projection",
    "projection_grid",
    "recording_of",
    "sample_projection",
    "smacof",
    "snap_to_grid",
    "stop_name",
]


# -- where the activations come from ------------------------------------------------------------
def recording_of(source: Any) -> Any:
    """The recording of ``source``: an Analysis' ``recording``, or ``source`` itself."""
    rec = getattr(source, "recording", source)
    if not (hasattr(rec, "layers") and hasattr(rec, "pooled_index")):
        raise TypeError(f"expected a Recording or an Analysis, got {type(source).__name__}")
    return rec


def _snapshot(rec: Any, snapshot: int | None) -> dict | None:
    if snapshot is None:
        return None
    if not isinstance(snapshot, (int, np.integer)) or isinstance(snapshot, bool):
        raise TypeError(f"snapshot must be an int position in rec.snapshots, got {snapshot!r}")
    n = len(rec.snapshots)
    if not -n <= int(snapshot) < n:
        raise ValueError(
            f"snapshot {snapshot} does not exist: the recording holds {n} snapshots"
            + (f" (0..{n - 1})" if n else "")
        )
    return rec.snapshots[int(snapshot)]


def activations(source: Any, layer: str, snapshot: int | None = None) -> np.ndarray:
    """The pooled activations of ``layer``, ``(n_pooled, n_channels)`` float64: of the recorded
    model, or of training snapshot ``snapshot`` (the same samples)."""
    rec = recording_of(source)
    rec.layer(layer)  # a clear KeyError for an unknown layer
    snap = _snapshot(rec, snapshot)
    if snap is None:
        x = rec.pooled(layer)
    else:
        pooled = snap.get("pooled", {})
        if layer not in pooled:
            raise KeyError(f"snapshot {snapshot} holds no activations of layer {layer!r}")
        x = pooled[layer]
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"layer {layer!r} has no pooled activations")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"pooled activations of {layer!r} hold NaN or inf")
    return x


def neuron_activation(
    source: Any, layer: str, neuron: int, snapshot: int | None = None
) -> np.ndarray:
    """Channel ``neuron`` of ``layer``: its pooled activation on every pooled sample,
    ``(n_pooled,)`` float64, what sample panels are coloured by when the neuron is picked
    (the paper's neuron 460, lit on the 3s it fires for)."""
    x = activations(source, layer, snapshot)
    if not isinstance(neuron, (int, np.integer)) or not 0 <= int(neuron) < x.shape[1]:
        raise ValueError(f"layer {layer!r} has channels 0..{x.shape[1] - 1}, got {neuron!r}")
    return x[:, int(neuron)].copy()


def stop_name(source: Any, layer: str, snapshot: int | None) -> str:
    """A panel title: ``"block1.relu"`` or ``"block1.relu, epoch 4"``."""
    snap = _snapshot(recording_of(source), snapshot)
    if snap is None:
        return layer
    return f"{layer}, epoch {snap.get('epoch', snapshot)}"


# -- neurons ------------------------------------------------------------------------------------
def correlation_distance(x: np.ndarray) -> np.ndarray:
    """``1 - |r|`` between the columns of ``x`` (Pearson r over the rows), ``(n, n)`` float64.

    A constant column correlates with nothing (r = 0, distance 1 to every other column).
    """
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=0)
    norm = np.sqrt(np.einsum("ij,ij->j", xc, xc))
    xc = np.divide(xc, norm, out=np.zeros_like(xc), where=norm > 0)
    d = 1.0 - np.minimum(np.abs(xc.T @ xc), 1.0)
    np.fill_diagonal(d, 0.0)
    return d


def classical_mds(d: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Torgerson's classical MDS of the distance matrix ``d``: the leading eigenvectors of the
    double-centred squared distances, scaled by the square roots of their (non-negative)
    eigenvalues; each axis' largest loading is positive, so the result is deterministic."""
    from scipy.linalg import eigh

    n = d.shape[0]
    m = min(n_components, n)
    sq = d * d
    b = -0.5 * (sq - sq.mean(axis=0) - sq.mean(axis=1)[:, None] + sq.mean())
    vals, vecs = eigh(b, subset_by_index=[n - m, n - 1])
    vals, vecs = vals[::-1], vecs[:, ::-1]
    vecs = vecs * np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(m)] + 0.0)
    y = np.zeros((n, n_components))
    y[:, :m] = vecs * np.sqrt(np.maximum(vals, 0.0))
    return y


def smacof(
    d: np.ndarray, init: np.ndarray, max_iter: int = 300, tol: float = 1e-6, check_every: int = 10
) -> np.ndarray:
    """Metric MDS by SMACOF (Guttman transforms) from ``init``, stopping when the raw stress,
    looked at every ``check_every`` steps, improves by less than ``tol`` of itself per step.

    The same iteration as ``sklearn.manifold.smacof`` with equal weights; written out because
    a step here costs a fraction of scikit-learn's (distances from the Gram matrix, the stress
    only now and then, ``B(Y) Y`` without forming ``B``), which keeps 512 neurons under a second.
    """
    n = d.shape[0]
    y = np.array(init, dtype=np.float64)
    old = np.inf
    for step in range(int(max_iter)):
        sq = np.einsum("ij,ij->i", y, y)
        dist = y @ (-2.0 * y.T)  # squared distances from the Gram matrix: faster than cdist
        dist += sq[:, None]
        dist += sq[None, :]
        np.sqrt(np.maximum(dist, 0.0, out=dist), out=dist)
        if step % check_every == 0:
            stress = float(np.sum((dist - d) ** 2)) / 2.0
            if old - stress < tol * check_every * stress:
                break
            old = stress
        # coincident points: a tiny distance pushes them apart (d is 0 on the diagonal)
        ratio = d / np.maximum(dist, 1e-9, out=dist)
        # B(Y) has off-diagonal -d/dist and the row sums of d/dist on its diagonal
        y = (ratio.sum(axis=1)[:, None] * y - ratio @ y) / n
    return y


def distance_rank_correlation(y: np.ndarray, d: np.ndarray) -> float:
    """Spearman's rank correlation between the 2-D distances of ``y`` and the matrix ``d``
    over all pairs: how faithfully a projection keeps the order of the distances."""
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    iu = np.triu_indices(d.shape[0], 1)
    return float(spearmanr(pdist(y), d[iu]).statistic)


def class_auc(x: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Per column of ``x`` and class, the area under the ROC curve of the column's values
    separating that class from the others, ``(n_columns, n_classes)``: the chance that a sample
    of the class activates the neuron more than a sample of another class (ties count half).
    0.5 for a class with no samples, or with every sample."""
    from scipy.stats import rankdata

    labels = np.asarray(labels, dtype=np.int64)
    ranks = rankdata(x, axis=0)
    onehot = np.zeros((labels.size, n_classes))
    onehot[np.arange(labels.size), labels] = 1.0
    n_c = onehot.sum(axis=0)
    n_other = labels.size - n_c
    u = onehot.T @ ranks - (n_c * (n_c + 1) / 2.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = u / (n_c * n_other)[:, None]
    auc[~np.isfinite(auc)] = 0.5
    return auc.T


@dataclass
class NeuronProjection:
    """The neurons of one layer placed so that neurons that fire alike sit together (P2).

    Attributes
    ----------
    layer : str
    snapshot : int or None
        Position in ``rec.snapshots``; None for the recorded model.
    coords : ndarray of float64, shape (n_neurons, 2)
        Row ``j`` places channel ``j``.
    distances : ndarray of float64, shape (n_neurons, n_neurons)
        ``1 - |r|``, the Pearson correlation of two neurons' pooled activations over the samples.
    best_class : ndarray of int64, shape (n_neurons,)
        The class each neuron tells apart best (highest :func:`class_auc`); -1 where it tells
        none apart better than chance (a constant neuron).
    score : ndarray of float64, shape (n_neurons,)
        Its discriminative score: ``max(0, 2 * AUC - 1)`` for the best class, the ROC area of
        the neuron's activation separating that class from all others, rescaled so that 0 is
        chance and 1 a neuron whose activation on every sample of the class is above its
        activation on every other sample. Rank-based, so a neuron's scale does not matter.
    auc : ndarray of float64, shape (n_neurons, n_classes)
        The ROC area for every class.
    method : str
        ``"mds"`` or ``"tsne"``.
    """

    layer: str
    snapshot: int | None
    coords: np.ndarray
    distances: np.ndarray
    best_class: np.ndarray
    score: np.ndarray
    auc: np.ndarray
    method: str


def neuron_projection(
    source: Any,
    layer: str,
    method: str = "mds",
    snapshot: int | None = None,
    *,
    max_iter: int = 300,
    random_state: int = 0,
) -> NeuronProjection:
    """Place the neurons of ``layer`` by the distance ``1 - |r|`` of their pooled activations.

    ``method="mds"`` is metric MDS: classical MDS, refined by at most ``max_iter`` SMACOF steps (:func:`smacof`).
    ``method="tsne"`` is a t-SNE (``cnnvis.layout.TSNE``) of the neurons' classical-MDS
    coordinates in up to 50 dimensions (a Euclidean stand-in for the distances), which shows
    groups more clearly and global distances less faithfully.
    """
    if method not in ("mds", "tsne"):
        raise ValueError(f"method must be 'mds' or 'tsne', got {method!r}")
    rec = recording_of(source)
    x = activations(rec, layer, snapshot)
    d = correlation_distance(x)
    n = d.shape[0]
    if method == "tsne" and n >= 4:
        from cnnvis.layout import TSNE

        features = classical_mds(d, min(50, n - 1))
        perplexity = min(30.0, (n - 1) / 3.0)
        coords = TSNE(perplexity=perplexity, random_state=random_state).fit_transform(features)
    else:  # MDS, also for t-SNE's request on fewer than 4 neurons (too few for it)
        coords, method = smacof(d, classical_mds(d), max_iter=max_iter), "mds"
    auc = class_auc(x, rec.pooled_labels, rec.n_classes)
    best = np.argmax(auc, axis=1).astype(np.int64)
    score = np.maximum(0.0, 2.0 * auc[np.arange(n), best] - 1.0)
    best[score == 0] = -1
    return NeuronProjection(layer, snapshot, np.asarray(coords), d, best, score, auc, method)


# -- samples ------------------------------------------------------------------------------------
def neighbourhood_hit(y: np.ndarray, labels: np.ndarray, k: int = 6) -> float:
    """The neighbourhood hit of a projection (Paulovich et al. 2008; Rauber et al. use k = 6):
    over all points, the mean share of a point's ``k`` nearest other points (Euclidean, in
    ``y``) that have its label. 1 when every class sits apart; ``k`` is capped at ``n - 1``."""
    from sklearn.neighbors import NearestNeighbors

    y = np.asarray(y, dtype=np.float64)
    labels = np.asarray(labels)
    if y.ndim != 2 or y.shape[0] != labels.shape[0]:
        raise ValueError(f"y {y.shape} must be (n, d) with one label per row ({labels.shape})")
    if not np.all(np.isfinite(y)):
        raise ValueError("y holds NaN or inf")
    n = y.shape[0]
    if n < 2:
        raise ValueError("the neighbourhood hit needs at least two points")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(int(k), n - 1)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y, return_distance=False)
    others = idx != np.arange(n)[:, None]
    # a point tied with duplicates may not come back first; then drop the farthest instead
    others[others.all(axis=1), -1] = False
    neighbours = idx[others].reshape(n, k)
    return float(np.mean(labels[neighbours] == labels[:, None]))


@dataclass
class SampleProjection:
    """A 2-D projection of the pooled samples' activity at one layer and snapshot (P1).

    Attributes
    ----------
    layer : str
    snapshot : int or None
    coords : ndarray of float64, shape (n_pooled, 2)
        Row ``i`` places the pooled sample ``rec.pooled_index[i]``.
    labels, predictions : ndarray of int64, shape (n_pooled,)
        True and predicted class (the recorded model's prediction, also for a snapshot).
    neighbourhood_hit : float
        :func:`neighbourhood_hit` of ``coords`` with ``labels`` and ``k``.
    k : int
    method : str
        ``"tsne"`` (``"pca"`` below 4 samples).
    """

    layer: str
    snapshot: int | None
    coords: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    neighbourhood_hit: float
    k: int = 6
    method: str = "tsne"
    params: dict = field(default_factory=dict)


def sample_projection(
    source: Any,
    layer: str,
    snapshot: int | None = None,
    *,
    perplexity: float = 30.0,
    random_state: int = 0,
    k: int = 6,
) -> SampleProjection:
    """The t-SNE of the pooled activations of ``layer`` (at ``snapshot``), with its
    neighbourhood hit. Given an Analysis that analysed ``layer``, the recorded model's
    projection is the analysis' own (:meth:`Analysis.projection`, cached and saved)."""
    from cnnvis.analysis.facets import project_pooled

    rec = recording_of(source)
    if snapshot is None and layer in getattr(source, "labels", {}):
        proj = source.projection(layer, perplexity=perplexity, random_state=random_state)
    else:
        proj = project_pooled(layer, activations(rec, layer, snapshot), perplexity, random_state)
    coords = np.asarray(proj.coords, dtype=np.float64)
    labels = np.asarray(rec.pooled_labels, dtype=np.int64)
    predictions = np.asarray(rec.predictions[rec.pooled_index], dtype=np.int64)
    hit = neighbourhood_hit(coords, labels, k) if len(coords) > 1 else float("nan")
    return SampleProjection(
        layer, snapshot, coords, labels, predictions, hit, k, proj.method, dict(proj.params)
    )


def align_onto(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``y`` centred, scaled to unit RMS radius and rotated/reflected onto ``ref`` (orthogonal
    Procrustes); ``ref=None`` only centres and scales."""
    from scipy.linalg import orthogonal_procrustes

    y = y - y.mean(axis=0)
    rms = np.sqrt(np.mean(np.sum(y * y, axis=1)))
    if rms > 0:
        y = y / rms
    if ref is None or not np.any(y):
        return y
    rotation, _ = orthogonal_procrustes(y, ref)
    return y @ rotation


def projection_grid(
    source: Any,
    layers: list[str],
    snapshots: list[int | None],
    **options: Any,
) -> list[list[SampleProjection]]:
    """Sample projections for a grid of small multiples: a row per layer, a column per
    snapshot (``None``: the recorded model). Each panel's coordinates are centred, scaled to
    unit RMS radius and rotated onto the panel before it (left, or above for a row's first), so
    that the same samples sit in the same corner from panel to panel. ``options`` go to
    :func:`sample_projection`."""
    if not layers or not snapshots:
        raise ValueError("a grid needs at least one layer and one snapshot")
    grid, prev = [], None
    for layer in layers:
        row = []
        for snapshot in snapshots:
            proj = sample_projection(source, layer, snapshot, **options)
            proj.coords = align_onto(proj.coords, prev)
            prev = proj.coords
            row.append(proj)
        grid.append(row)
        prev = row[0].coords
    return grid


def neuron_grid(
    source: Any, layers: list[str], snapshots: list[int | None], **options: Any
) -> list[list[NeuronProjection]]:
    """Neuron projections for a grid of small multiples: a row per layer, a column per
    snapshot. Along a row (the same neurons) each panel is centred, scaled to unit RMS radius
    and rotated onto the one before, so that a neuron moves only as its correlations change.
    ``options`` go to :func:`neuron_projection`."""
    if not layers or not snapshots:
        raise ValueError("a grid needs at least one layer and one snapshot")
    grid = []
    for layer in layers:
        row, prev = [], None
        for snapshot in snapshots:
            proj = neuron_projection(source, layer, snapshot=snapshot, **options)
            proj.coords = prev = align_onto(proj.coords, prev)
            row.append(proj)
        grid.append(row)
    return grid


def snap_to_grid(y: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Cells of a ``(rows, cols)`` grid for the points ``y``, one point per cell, so that the
    total squared distance from each point to its cell (both scaled to the unit square) is the
    least possible (``scipy.optimize.linear_sum_assignment``): an image map without overlap.

    ``shape`` defaults to the smallest square grid that holds every point. Returns ``(n, 2)``
    int64 ``(row, col)``; row 0 is the top (largest y).
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 2 or y.shape[1] != 2 or not np.all(np.isfinite(y)):
        raise ValueError(f"y must be finite 2-D points (n, 2), got shape {y.shape}")
    n = y.shape[0]
    if shape is None:
        side = max(1, int(np.ceil(np.sqrt(n))))
        shape = (side, side)
    rows, cols = (int(v) for v in shape)
    if rows < 1 or cols < 1 or rows * cols < n:
        raise ValueError(f"a {rows}x{cols} grid cannot hold {n} points")
    lo, span = y.min(axis=0), np.ptp(y, axis=0)
    unit = (y - lo) / np.where(span > 0, span, 1.0)
    r, c = np.divmod(np.arange(rows * cols), cols)
    centres = np.stack([(c + 0.5) / cols, 1.0 - (r + 0.5) / rows], axis=1)
    points, cells = linear_sum_assignment(cdist(unit, centres, "sqeuclidean"))
    out = np.empty((n, 2), dtype=np.int64)
    out[points] = np.stack([r[cells], c[cells]], axis=1)
    return out
