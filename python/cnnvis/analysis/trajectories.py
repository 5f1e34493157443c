"""Trajectories (P4): the same samples followed through the layers or through training, on
aligned projections, joined by edge-bundled curves, with an outlier score per sample.

Rauber et al. (TVCG 2017) draw a sample's positions in consecutive projections joined by a
curve, bundled so that the flow of a class reads as one stroke and a sample whose representation
jumps stands out. Numpy in, numpy out; the t-SNE and the bundling are the C++ core's
(``cnnvis.layout.TSNE``, ``cnnvis.layout.bundle_edges``).

Alignment (``align``), measured in ``benchmarks/projections.py``:

* ``"sequence"`` - ``TSNE.fit_sequence``: each stop starts from the previous one's layout;
* ``"dynamic"`` - the same with the movement penalty of dynamic t-SNE (``movement_penalty``);
* ``"procrustes"`` - independent t-SNEs, each rotated/reflected onto the one before.

Every stop is then centred, scaled to unit RMS radius and rotated onto the one before.

The default is ``"sequence"`` with 750 t-SNE iterations (250 exaggerated + 500; 500 on the
warm-started stops). On 2,000 digits through the 5 hidden layers of an MLP (the benchmark's
table) it moves the samples 3.2x less than independent t-SNEs aligned by Procrustes (0.088 vs
0.273 of the RMS radius per stop) at the same neighbourhood hit (0.996) and a KL 2% higher
(0.645 vs 0.633; 1,000 iterations: equal KL, 37% more CPU time); the movement penalty moves
less still but costs 4-22% KL. Through training the picture is the same (0.101 vs 0.394).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnvis.analysis.projections import activations, align_onto, recording_of

__all__ = ["ALIGNMENTS", "Trajectories", "embed_stops", "trajectories", "trajectory_outliers"]

ALIGNMENTS = ("sequence", "dynamic", "procrustes")


@dataclass
class Trajectories:
    """Samples followed through a sequence of stops (layers, or snapshots of one layer).

    Attributes
    ----------
    stops : list of (str, int or None)
        ``(layer, snapshot)`` of each stop, in order.
    rows : ndarray of int64, shape (n,)
        The samples, as rows of ``rec.pooled(layer)`` (sample positions ``rec.pooled_index[rows]``).
    labels : ndarray of int64, shape (n,)
    positions : ndarray of float64, shape (n, n_stops, 2)
        Each sample's place at each stop; every stop centred and at unit RMS radius over the
        distinct samples, and aligned.
    polylines : ndarray of float64, shape (n, n_points, 2) or None
        The curves through the positions, edge-bundled (directed FDEB); their ends are the
        first and last stops. None when not bundled.
    outlier : ndarray of float64, shape (n,)
        :func:`trajectory_outliers`: about 1 for a sample that moves with its class, larger the
        further it strays from it.
    kl : list of float
        KL divergence of each stop's t-SNE.
    align : str
    """

    stops: list[tuple[str, int | None]]
    rows: np.ndarray
    labels: np.ndarray
    positions: np.ndarray
    polylines: np.ndarray | None
    outlier: np.ndarray
    kl: list[float]
    align: str


def embed_stops(
    frames: list[np.ndarray],
    align: str = "sequence",
    *,
    movement_penalty: float = 0.1,
    perplexity: float = 30.0,
    random_state: int = 0,
    n_jobs: int = 1,
    **tsne_options: Any,
) -> tuple[np.ndarray, list[float]]:
    """t-SNE of each frame (same samples, any features), aligned by ``align``; ``tsne_options``
    go to ``cnnvis.layout.TSNE`` (``n_iter`` 750 unless given).

    Returns positions ``(n, n_frames, 2)`` (each frame centred, unit RMS radius, rotated onto
    the one before) and the KL divergence of each frame.
    """
    from cnnvis.layout import TSNE

    tsne_options.setdefault("n_iter", 750)
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {', '.join(ALIGNMENTS)}, got {align!r}")
    n = frames[0].shape[0]
    if n < 4:
        raise ValueError(f"trajectories need at least 4 samples for t-SNE, got {n}")
    perplexity = min(float(perplexity), (n - 1) / 3.0)

    def tsne() -> TSNE:
        return TSNE(perplexity=perplexity, random_state=random_state, n_jobs=n_jobs, **tsne_options)

    if align == "procrustes":
        ys, kls = [], []
        for x in frames:
            model = tsne()
            ys.append(model.fit_transform(x))
            kls.append(float(model.kl_divergence_))
    else:
        model = tsne()
        penalty = movement_penalty if align == "dynamic" else 0.0
        ys = model.fit_sequence(frames, movement_penalty=penalty)
        kls = [float(k) for k in model.kl_divergences_]
    out, prev = [], None
    for y in ys:
        prev = align_onto(np.asarray(y, dtype=np.float64), prev)
        out.append(prev)
    return np.stack(out, axis=1), kls


def trajectory_outliers(positions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How far each sample's trajectory departs from its class's, ``(n,)``.

    At every stop the class's place is the coordinate-wise median of its samples' positions and
    its spread the median distance of its samples from that place; a sample's score is the mean
    over stops of its distance from its class's place in units of that spread. About 1 for a
    typical member; a sample that sits with another class, or jumps there at some stop, scores
    high. Classes of one sample score 0.
    """
    positions = np.asarray(positions, dtype=np.float64)
    labels = np.asarray(labels)
    score = np.zeros(positions.shape[0])
    for c in np.unique(labels):
        members = labels == c
        p = positions[members]
        dist = np.linalg.norm(p - np.median(p, axis=0), axis=2)  # (members, stops)
        spread = np.median(dist, axis=0)
        spread[spread <= 0] = 1.0
        score[members] = np.mean(dist / spread, axis=1)
    return score


def _stops(rec: Any, layers: Any, snapshots: Any) -> list[tuple[str, int | None]]:
    if snapshots is None:
        names = (
            rec.layer_names if layers is None else ([layers] if isinstance(layers, str) else layers)
        )
        return [(rec.layer(n).name, None) for n in names]
    if layers is None:
        layer = rec.layer_names[-1]
    elif isinstance(layers, str):
        layer = layers
    elif len(layers) == 1:
        layer = layers[0]
    else:
        raise ValueError("follow samples through layers or through snapshots, not both")
    rec.layer(layer)
    if isinstance(snapshots, str) and snapshots == "all":
        snapshots = list(range(len(rec.snapshots)))
    return [(layer, s) for s in snapshots]


def trajectories(
    source: Any,
    layers: str | list[str] | None = None,
    snapshots: list[int | None] | str | None = None,
    samples: Any = None,
    *,
    align: str = "sequence",
    bundle: bool = True,
    n_jobs: int = 1,
    **options: Any,
) -> Trajectories:
    """Follow samples through layers (``snapshots=None``: the recorded model at ``layers``,
    default all recorded layers) or through training (``snapshots``: positions in
    ``rec.snapshots``, ``None`` for the recorded model, or ``"all"``; at the one layer
    ``layers``, default the last recorded).

    ``samples`` are rows of the pooled sample, or a boolean mask over it (default all); they
    are the ones embedded.
    ``align`` is one of :data:`ALIGNMENTS`; ``options`` go to :func:`embed_stops` (perplexity,
    movement_penalty, random_state, t-SNE settings). With ``bundle`` the curves are bundled by
    ``cnnvis.layout.bundle_edges(..., directed=True)``.
    """
    rec = recording_of(source)
    stops = _stops(rec, layers, snapshots)
    if len(stops) < 2:
        raise ValueError(f"a trajectory needs at least two stops, got {len(stops)}")
    rows = _rows(samples, len(rec.pooled_index))
    frames = [activations(rec, layer, snap)[rows] for layer, snap in stops]
    positions, kls = _embed_unique(frames, align, n_jobs=n_jobs, **options)
    labels = np.asarray(rec.pooled_labels, dtype=np.int64)[rows]
    polylines = None
    if bundle:
        from cnnvis.layout import bundle_edges

        polylines = bundle_edges(positions, directed=True, n_jobs=n_jobs)
    outlier = trajectory_outliers(positions, labels)
    return Trajectories(stops, rows, labels, positions, polylines, outlier, kls, align)


def _rows(samples: Any, n_pooled: int) -> np.ndarray:
    """``samples`` (integer rows or a boolean mask over the pooled sample) as int64 rows."""
    if samples is None:
        return np.arange(n_pooled, dtype=np.int64)
    rows = np.asarray(samples)
    if rows.dtype == bool and rows.shape == (n_pooled,):
        return np.flatnonzero(rows)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise ValueError(f"samples must be integer rows or a boolean mask of {n_pooled}")
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n_pooled):
        raise ValueError(f"samples must be rows of the pooled sample, 0..{n_pooled - 1}")
    return rows


def _embed_unique(frames: list[np.ndarray], align: str, **options: Any):
    """:func:`embed_stops` on the distinct samples (equal activations at every stop) and spread
    back, so that identical samples get identical trajectories whatever t-SNE does with ties."""
    joined = np.concatenate(frames, axis=1)
    _, first, inverse = np.unique(joined, axis=0, return_index=True, return_inverse=True)
    keep = np.sort(first)  # the distinct samples in their original order
    where = np.empty(len(joined), dtype=np.int64)
    where[keep] = np.arange(len(keep))
    positions, kls = embed_stops([f[keep] for f in frames], align, **options)
    return positions[where[first[inverse.reshape(-1)]]], kls
