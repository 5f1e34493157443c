"""Neuron clusters of one layer (C3) and the edits on them (C7).

The neurons (channels) of a layer are clustered by their *response profile*: the row of
``rec.class_means(layer)`` (mean activation per class), centred and scaled to unit length. Two
neurons are close when they prefer the same classes, whatever their absolute activation level
(the Euclidean distance of two such rows is a monotone function of their correlation).

Label arrays are ``int64`` of shape ``(n_channels,)`` with cluster ids ``0..k-1``, contiguous.
The initial clustering numbers clusters by their smallest member (cluster 0 holds neuron 0).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

__all__ = [
    "response_profiles",
    "candidate_ks",
    "legible_ks",
    "cluster_layer",
    "apply_edit",
    "canonical_labels",
]

#: Cluster sizes the automatic choice aims at (C3): big enough to mean something, small
#: enough to read as one box (no 2 boxes of 128 neurons, no 256 boxes of one).
TARGET_SIZE = (10, 40)
#: How many k values of the legible range are tried (spread evenly on a log scale).
N_LEGIBLE_KS = 5
#: A k outside the legible range wins only with a silhouette this much higher (clear structure).
STRUCTURE_MARGIN = 0.1


def response_profiles(class_means: np.ndarray, layer: str = "layer") -> np.ndarray:
    """Centred, unit-length class-mean rows, float64 of shape ``(n_channels, n_classes)``.

    A constant row (a dead neuron, or one that does not discriminate) becomes a zero row.

    Raises
    ------
    ValueError
        If the array is not 2-D, is empty, or holds NaN/inf.
    """
    x = np.asarray(class_means, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"class means of {layer!r} must be 2-D (channels, classes), got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"class means of {layer!r} are empty (shape {x.shape})")
    if not np.all(np.isfinite(x)):
        bad = np.unique(np.nonzero(~np.isfinite(x))[0])
        raise ValueError(
            f"class means of {layer!r} hold NaN or inf for channels {bad[:10].tolist()}"
            f"{' ...' if bad.size > 10 else ''}; re-record the layer (check the model for "
            "overflow) before clustering"
        )
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    scale = np.abs(x).max() if x.size else 0.0
    tiny = norm <= 1e-12 * max(scale, 1e-300)
    norm[tiny] = 1.0
    x = x / norm
    x[tiny[:, 0]] = 0.0
    return x


def legible_ks(n: int) -> list[int]:
    """The k values that give clusters of :data:`TARGET_SIZE` (10-40) neurons for ``n`` neurons.

    ``ceil(n / 40) .. max(that, n // 10)``, at least 2 and at most ``n - 1``, thinned to
    :data:`N_LEGIBLE_KS` values spread on a log scale. Empty for ``n < 3``.
    """
    if n < 3:
        return []
    lo = min(max(2, math.ceil(n / TARGET_SIZE[1])), n - 1)
    hi = min(max(lo, n // TARGET_SIZE[0]), n - 1)
    return sorted({int(round(k)) for k in np.geomspace(lo, hi, N_LEGIBLE_KS)})


def candidate_ks(n: int) -> list[int]:
    """Every k the automatic choice tries for a layer of ``n`` neurons: :func:`legible_ks`,
    plus, for a narrow layer of up to 64 neurons, ``2..10`` (there the data may show a few
    clear groups of fewer than 10 neurons). A wide layer keeps to the legible range: with few
    classes a silhouette always favours 2 huge clusters. Empty for ``n < 3``."""
    if n < 3:
        return []
    small = range(2, min(10, n - 1) + 1) if n <= 64 else range(0)
    return sorted(set(legible_ks(n)) | set(small))


def canonical_labels(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters ``0..k-1`` in order of their smallest member."""
    labels = np.asarray(labels)
    _, first = np.unique(labels, return_index=True)
    order = labels[np.sort(first)]
    remap = {int(old): new for new, old in enumerate(order)}
    return np.array([remap[int(v)] for v in labels], dtype=np.int64)


@functools.cache
def _threadpools():
    """The process's native thread pools, found once, after scikit-learn is imported (finding
    them reads every loaded library: ~7 ms, paid at each of the ~350 fits of a ResNet-50
    analysis before)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _kmeans(x: np.ndarray, k: int, random_state: int, n_init: int = 10) -> np.ndarray:
    """K-Means with ``n_init`` restarts on one thread.

    The profiles are small (neurons x classes): threads only cost here (OpenMP start-up and
    oversubscription made one fit 50x slower on a busy 2-core machine), and one thread keeps the
    result independent of the machine.
    """
    from sklearn.cluster import KMeans

    n_distinct = np.unique(np.round(x, 12), axis=0).shape[0]
    k = max(1, min(k, n_distinct))
    if k == 1:
        return np.zeros(x.shape[0], dtype=np.int64)
    with _threadpools().limit(limits=1):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=random_state)
        return km.fit_predict(x).astype(np.int64)


def cluster_layer(
    class_means: np.ndarray,
    *,
    n_clusters: int | None = None,
    method: str = "kmeans",
    random_state: int = 0,
    layer: str = "layer",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Cluster a layer's neurons by their response profiles.

    Parameters
    ----------
    class_means : ndarray, shape (n_channels, n_classes)
        ``rec.class_means(layer)``.
    n_clusters : int or None
        K-Means only. ``None`` chooses k for legibility *and* structure: the k of
        :func:`legible_ks` (clusters of 10-40 neurons) with the largest mean silhouette
        (Euclidean on the profiles, K-Means with 3 restarts per k; the smaller k wins ties),
        unless a k outside that range (:func:`candidate_ks`) scores a silhouette at least
        :data:`STRUCTURE_MARGIN` higher: then the data say otherwise and it wins. The chosen k
        is fitted again with 10 restarts. Layers with fewer than 3 neurons, or whose profiles
        are all equal, get one cluster. An int is used as given (capped at the number
        of distinct profiles).
    method : {'kmeans', 'meanshift'}
        ``'meanshift'`` uses scikit-learn's MeanShift; its bandwidth is estimated at the
        quantiles 0.1, 0.15, 0.2 and 0.3 of the pairwise distances and the one whose clustering
        has the largest silhouette wins (one cluster when none gives 2..n-1 clusters). Seeds are
        binned above 200 neurons, for speed. ``n_clusters`` must then be None.
    random_state : int
        Seed of K-Means (10 restarts).

    Returns
    -------
    labels : ndarray of int64, shape (n_channels,)
        Canonical cluster ids (see :func:`canonical_labels`).
    info : dict
        ``{"method", "k", "criterion", "scores"}`` describing the choice (JSON-serialisable).
    """
    x = response_profiles(class_means, layer)
    n = x.shape[0]
    info: dict[str, Any] = {"method": method}
    if method == "kmeans":
        if n_clusters is not None:
            k = int(n_clusters)
            if k < 1:
                raise ValueError(f"n_clusters for {layer!r} must be >= 1, got {n_clusters}")
            if k > n:
                raise ValueError(
                    f"n_clusters={k} for {layer!r} exceeds its number of neurons ({n})"
                )
            labels = _kmeans(x, k, random_state)
            info.update(criterion="given")
        else:
            sq = np.sum(x * x, axis=1)
            dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
            np.fill_diagonal(dist, 0.0)
            scores: dict[str, float] = {}
            fits: dict[int, np.ndarray] = {}
            for k in candidate_ks(n):
                lab = _kmeans(x, k, random_state, n_init=3)
                if np.unique(lab).size < 2 or np.unique(lab).size >= n:
                    continue
                scores[str(k)] = silhouette(dist, lab)
                fits[k] = lab
            best_k, labels = _choose_k(scores, fits, legible_ks(n), n)
            if best_k > 1:  # the winner again with 10 restarts
                labels = _kmeans(x, best_k, random_state)
            info.update(criterion="silhouette", scores=scores)
    elif method == "meanshift":
        if n_clusters is not None:
            raise ValueError(
                "MeanShift chooses the number of clusters itself: leave n_clusters=None"
            )
        labels, scores = _meanshift(x, random_state)
        info.update(criterion="meanshift, bandwidth quantile by silhouette", scores=scores)
    else:
        raise ValueError(f"method must be 'kmeans' or 'meanshift', got {method!r}")
    labels = canonical_labels(labels)
    info["k"] = int(labels.max()) + 1 if n else 0
    return labels, info


def _choose_k(
    scores: dict[str, float], fits: dict[int, np.ndarray], legible: list[int], n: int
) -> tuple[int, np.ndarray]:
    """The best legible k, or an outside k whose silhouette beats it by STRUCTURE_MARGIN."""

    def best(ks) -> tuple[float, int]:
        # the largest score; among equal scores (1e-12) the smaller k
        return max(((scores[str(k)], -k) for k in ks if str(k) in scores), default=(-np.inf, 0))

    s_in, k_in = best(legible)
    s_out, k_out = best(k for k in fits if k not in legible)
    if k_out and (not k_in or s_out >= s_in + STRUCTURE_MARGIN):
        k_in = k_out
    if not k_in:
        return 1, np.zeros(n, dtype=np.int64)
    lab = fits[-k_in]  # best() gives -k
    return int(np.unique(lab).size), lab


def _meanshift(x: np.ndarray, random_state: int) -> tuple[np.ndarray, dict[str, float]]:
    import warnings

    from sklearn.cluster import MeanShift, estimate_bandwidth
    from sklearn.metrics import silhouette_score
    from threadpoolctl import threadpool_limits

    n = x.shape[0]
    best, best_s, scores = np.zeros(n, dtype=np.int64), -np.inf, {}
    if n < 3:
        return best, scores
    with threadpool_limits(limits=1), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "binning data failed": seeds = points
        for q in (0.1, 0.15, 0.2, 0.3):
            bw = float(estimate_bandwidth(x, quantile=q, random_state=random_state))
            if not bw > 1e-9:
                continue
            lab = MeanShift(bandwidth=bw, bin_seeding=n > 200).fit_predict(x).astype(np.int64)
            k = np.unique(lab).size
            if not 2 <= k <= n - 1:
                continue
            s = float(silhouette_score(x, lab, metric="euclidean"))
            scores[str(q)] = s
            if s > best_s + 1e-12:
                best, best_s = lab, s
    return best, scores


def silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a clustering from its distance matrix.

    As scikit-learn's ``silhouette_score(..., metric="precomputed")`` (a point alone in its
    cluster scores 0), computed with one matrix product so the k search shares one distance matrix.
    """
    labels = np.asarray(labels)
    _, lab = np.unique(labels, return_inverse=True)
    k = int(lab.max()) + 1
    n = lab.size
    onehot = np.zeros((n, k))
    onehot[np.arange(n), lab] = 1.0
    sums = dist @ onehot  # (n, k): distance of each point to every cluster, summed
    counts = onehot.sum(axis=0)
    own = counts[lab]
    a = sums[np.arange(n), lab] / np.maximum(own - 1, 1)
    other = sums / counts
    other[np.arange(n), lab] = np.inf
    b = other.min(axis=1)
    denom = np.maximum(a, b)
    s = np.where(denom > 0, (b - a) / np.where(denom > 0, denom, 1.0), 0.0)
    s[own == 1] = 0.0
    return float(s.mean())


# -- edits --------------------------------------------------------------------------------------
def _check_cluster(labels: np.ndarray, c: int, layer: str) -> int:
    k = int(labels.max()) + 1
    c = int(c)
    if not 0 <= c < k:
        raise ValueError(f"cluster {c} does not exist in layer {layer!r} (clusters 0..{k - 1})")
    return c


def _check_neuron(labels: np.ndarray, i: int, layer: str) -> int:
    i = int(i)
    if not 0 <= i < labels.shape[0]:
        raise ValueError(
            f"neuron {i} does not exist in layer {layer!r} (channels 0..{labels.shape[0] - 1})"
        )
    return i


def _drop_empty(labels: np.ndarray) -> np.ndarray:
    """Close gaps in the ids left by emptied clusters (ids above shift down by one)."""
    present = np.unique(labels)
    remap = np.full(int(labels.max()) + 1, -1, dtype=np.int64)
    remap[present] = np.arange(present.size)
    return remap[labels]


def _split_members(member_means: np.ndarray, edit: dict[str, Any], what: str) -> np.ndarray:
    """Sub-cluster labels of one cluster's members for a ``split`` edit (``k`` None: drill)."""
    random_state = int(edit.get("random_state", 0))
    n = member_means.shape[0]
    parts = edit.get("k", 2)
    if parts is None:  # drill in: the default rule, on these neurons only
        if n < 2:
            raise ValueError(f"{what} has {n} neuron: cannot drill into it")
        sub, _ = cluster_layer(member_means, random_state=random_state, layer=what)
        if np.unique(sub).size >= 2:
            return sub
        parts = 2  # no structure found: the user still gets sub-clusters
    parts = int(parts)
    if parts < 2:
        raise ValueError(f"split needs k >= 2, got {parts}")
    if n < parts:
        raise ValueError(f"{what} has {n} neuron(s): cannot split into {parts}")
    x = response_profiles(member_means, what)
    sub = _kmeans(x, parts, random_state)
    if np.unique(sub).size < 2:
        # all profiles equal: split by position so the user still gets what was asked
        sub = (np.arange(n) * parts // n).astype(np.int64)
    return sub


def apply_edit(labels: np.ndarray, edit: dict[str, Any], class_means: np.ndarray) -> np.ndarray:
    """Return new labels after one edit (the input is not modified).

    Edits (dicts, JSON-serialisable; ``layer`` names the layer):

    * ``{"op": "move", "neuron": i, "to": c}`` - neuron ``i`` joins cluster ``c``. If its old
      cluster becomes empty, it is removed and the ids above it shift down by one.
    * ``{"op": "extract", "neuron": i}`` - neuron ``i`` becomes a new cluster with id ``k``
      (its old cluster, if emptied, is removed as above).
    * ``{"op": "merge", "clusters": [a, b, ...]}`` - all join the smallest id; the other ids are
      removed (ids above shift down).
    * ``{"op": "split", "cluster": c, "k": 2, "random_state": 0}`` - K-Means on the members'
      profiles; the part holding the cluster's smallest member keeps id ``c``, the others get new
      ids ``k_old, k_old+1, ...`` in order of their smallest member. ``"k": None`` drills into
      the cluster: its members are clustered by the rule of :func:`cluster_layer` (legible k,
      silhouette), in two when that rule finds no structure.
    * ``{"op": "recluster", "n_clusters": k or None, "method": "kmeans", "random_state": 0}`` -
      cluster the whole layer again (C3: "change the number of clusters").
    """
    layer = str(edit.get("layer", "layer"))
    op = edit.get("op")
    labels = np.asarray(labels, dtype=np.int64).copy()
    k = int(labels.max()) + 1
    if op == "move":
        i = _check_neuron(labels, edit["neuron"], layer)
        c = _check_cluster(labels, edit["to"], layer)
        labels[i] = c
        return _drop_empty(labels)
    if op == "extract":
        i = _check_neuron(labels, edit["neuron"], layer)
        if np.count_nonzero(labels == labels[i]) == 1:
            return labels  # already alone: nothing to do
        labels[i] = k
        return _drop_empty(labels)
    if op == "merge":
        cs = sorted({_check_cluster(labels, c, layer) for c in edit["clusters"]})
        if len(cs) < 2:
            raise ValueError(f"merge needs at least two different clusters, got {edit['clusters']}")
        labels[np.isin(labels, cs)] = cs[0]
        return _drop_empty(labels)
    if op == "split":
        c = _check_cluster(labels, edit["cluster"], layer)
        members = np.flatnonzero(labels == c)
        sub = _split_members(np.asarray(class_means)[members], edit, f"cluster {c} of {layer!r}")
        sub = canonical_labels(sub)
        labels[members] = np.where(sub == 0, c, k + sub - 1)
        return labels
    if op == "recluster":
        new, _ = cluster_layer(
            class_means,
            n_clusters=edit.get("n_clusters"),
            method=str(edit.get("method", "kmeans")),
            random_state=int(edit.get("random_state", 0)),
            layer=layer,
        )
        return new
    raise ValueError(f"unknown edit op {op!r} (move, extract, merge, split, recluster)")
