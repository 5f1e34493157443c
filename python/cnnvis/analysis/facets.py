"""The two facets of a neuron cluster (C4, C5) and the sample projection (P1): plain data objects.

Layout work goes through :mod:`cnnvis.layout` (Held-Karp / local-search row orders, hierarchical
rectangle packing, t-SNE); each object names what laid it out in its ``layout`` field. There is
no stand-in: the C++ core is part of every install, and a failure in it is raised, not hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ActivationMatrix",
    "LearnedFeatures",
    "Projection",
    "row_order",
    "build_learned_features",
    "pack_tiles",
    "patch_table",
]


@dataclass
class ActivationMatrix:
    """The activation-matrix facet of one cluster (C5).

    Attributes
    ----------
    layer : str
    cluster : int
    neurons : ndarray of int64, shape (n_rows,)
        The cluster's channels, in the row order (adjacent rows alike: a shortest open
        Hamiltonian path over the Euclidean distances of the neurons' response profiles, i.e. of
        their centred, unit-length class-mean rows; ``cnnvis.layout.hamiltonian_path``).
    class_order : ndarray of int64, shape (n_classes,)
        Column order, the same for every cluster of every layer of the analysis: a shortest path
        over the classes, each class described by the profile values of all neurons of all analysed
        layers.
    values : ndarray of float32, shape (n_rows, n_classes)
        Mean activation (``rec.class_means``) of each row's neuron on each column's class.
    normalized : ndarray of float32, shape (n_rows, n_classes)
        ``values`` mapped to [0, 1] by the *layer's* range ``(values - vmin) / (vmax - vmin)``, so
        colours compare across the clusters of a layer (0.5 everywhere when the layer is constant).
    vmin, vmax : float
        The layer's smallest and largest class mean (the colour bar's ends).
    layout : str
        What ordered the rows: ``"hamiltonian_path"`` (``"trivial"`` for one or two rows).
    """

    layer: str
    cluster: int
    neurons: np.ndarray
    class_order: np.ndarray
    values: np.ndarray
    normalized: np.ndarray
    vmin: float
    vmax: float
    layout: str = "hamiltonian_path"


@dataclass
class LearnedFeatures:
    """The learned-features facet of one cluster (C4).

    Attributes
    ----------
    layer : str
    cluster : int
    image : ndarray of uint8, shape (H, W, 3)
        The cluster's neuron tiles packed into one picture on a light grey background.
    neurons : ndarray of int64, shape (n,)
        The cluster's channels, in the order of ``placements``: the same order as the rows of
        the cluster's :class:`ActivationMatrix`.
    placements : ndarray of int64, shape (n, 4)
        Each neuron's tile in ``image`` as ``(x, y, w, h)`` in pixels, origin top left.
    patch_boxes : list of ndarray of int64, shape (k_i, 4)
        Per neuron, its patches within ``image`` as ``(x, y, w, h)``, strongest first. A tile
        holds the neuron's top ``patches_per_neuron`` receptive-field crops (fewer when fewer
        were recorded) in a near-square grid.
    patch_samples : list of ndarray of int64, shape (k_i,)
        Per neuron, the sample position of each patch.
    layout : str
        What placed the tiles: ``"pack_hierarchy"`` (``"single"`` for one neuron).
    """

    layer: str
    cluster: int
    image: np.ndarray
    neurons: np.ndarray
    placements: np.ndarray
    patch_boxes: list[np.ndarray] = field(default_factory=list)
    patch_samples: list[np.ndarray] = field(default_factory=list)
    layout: str = "pack_hierarchy"


@dataclass
class Projection:
    """A 2-D projection of the recorded samples' pooled activations at one layer (P1).

    Attributes
    ----------
    layer : str
    coords : ndarray of float32, shape (n_pooled, 2)
        One point per row of ``rec.pooled(layer)`` (sample positions ``rec.pooled_index``).
    method : str
        ``"tsne"`` (``cnnvis.layout.TSNE``) or ``"pca"`` (fewer than 4 samples, too few for
        t-SNE).
    params : dict
        The parameters used (perplexity, random_state, ...).
    """

    layer: str
    coords: np.ndarray
    method: str
    params: dict = field(default_factory=dict)


# -- row orders ---------------------------------------------------------------------------------
def row_order(x: np.ndarray) -> tuple[np.ndarray, str]:
    """Order of the rows of ``x`` whose open path of Euclidean distances is shortest.

    Returns the order and the name of what computed it.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if n <= 2:
        return np.arange(n, dtype=np.int64), "trivial"
    sq = np.sum(x * x, axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0))
    np.fill_diagonal(dist, 0.0)
    from cnnvis.layout import hamiltonian_path

    return np.asarray(hamiltonian_path(dist), dtype=np.int64), "hamiltonian_path"


def build_activation_matrix(
    layer: str,
    cluster: int,
    members: np.ndarray,
    profiles: np.ndarray,
    class_means: np.ndarray,
    class_order: np.ndarray,
    rows: tuple[np.ndarray, str] | None = None,
) -> ActivationMatrix:
    """The activation matrix of the cluster ``members`` of ``layer`` (C5): rows in the order of
    :func:`row_order` on their ``profiles`` (or ``rows``, its result kept from before), columns
    in ``class_order``, normalised to the layer's range of ``class_means`` (neurons x classes)."""
    order, how = row_order(profiles) if rows is None else rows
    neurons = np.asarray(members)[order]
    cm = np.asarray(class_means, dtype=np.float64)
    vmin, vmax = float(cm.min()), float(cm.max())
    values = cm[neurons][:, class_order]
    if vmax > vmin:
        norm = (values - vmin) / (vmax - vmin)
    else:
        norm = np.full_like(values, 0.5)
    return ActivationMatrix(
        layer,
        cluster,
        neurons.astype(np.int64),
        np.asarray(class_order).copy(),
        values.astype(np.float32),
        norm.astype(np.float32),
        vmin,
        vmax,
        how,
    )


# -- learned features ---------------------------------------------------------------------------
BACKGROUND = 235
TILE_GAP = 1  # pixels between the patches of a neuron's tile


@dataclass
class PatchTable:
    """The patches a layer's learned-features facets show: per channel its first ``k`` valid
    top-k entries (a sample, a finite value), strongest first.

    ``patches`` holds each distinct (sample, box) crop once, as ``(m, P, P, 3)`` uint8; ``index``
    ``(n_channels, k)`` points into it (-1: no patch), ``samples`` ``(n_channels, k)`` gives the
    sample of each and ``count`` ``(n_channels,)`` how many a channel has.
    """

    patches: np.ndarray
    index: np.ndarray
    samples: np.ndarray
    count: np.ndarray


def _first_valid(rec_layer, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Channel, top-k slot and rank of the first ``k`` valid entries of each channel."""
    samples = np.asarray(rec_layer.top_samples)
    valid = (samples >= 0) & np.isfinite(np.asarray(rec_layer.top_values))
    rank = np.cumsum(valid, axis=1) - 1
    ch, slot = np.nonzero(valid & (rank < k))
    return ch, slot, rank[ch, slot]


def _as_rgb(patches: np.ndarray) -> np.ndarray:
    """``(m, P, P[, c])`` patches as ``(m, P, P, 3)`` uint8 (grey repeated; a fourth channel
    dropped), cast as an assignment into a uint8 tile casts."""
    if patches.ndim == 3:
        patches = patches[..., None]
    if patches.shape[3] == 1:
        patches = np.repeat(patches, 3, axis=3)
    out = np.empty(patches.shape[:3] + (3,), dtype=np.uint8)
    out[...] = patches[..., :3]
    return out


def patch_table(rec_layer, k: int) -> PatchTable:
    """The :class:`PatchTable` of a recorded layer for tiles of ``k`` patches.

    Patches still to be cut (a ``LayerPatches`` with its ``source``) are cut here, only those
    shown and each distinct (sample, box) once, instead of the layer's whole top-k; a patch
    has the same bytes whoever cuts it (:func:`cnnvis.record.patches.cut_patches`).
    """
    n = len(rec_layer.top_samples)
    ch, slot, rank = _first_valid(rec_layer, int(k))
    samples = np.asarray(rec_layer.top_samples, dtype=np.int64)[ch, slot]
    top = rec_layer.top_patches
    source = getattr(top, "source", None)
    if source is not None:
        boxes = np.asarray(top.top_boxes, dtype=np.int64)[ch, slot]
        keys, which = np.unique(np.column_stack([samples, boxes]), axis=0, return_inverse=True)
        patches = _as_rgb(source.cut(keys[:, 0], keys[:, 1:]))
        which = which.reshape(-1)
    else:
        patches = _as_rgb(np.asarray(top[ch, slot]))
        which = np.arange(len(ch))
    index = np.full((n, int(k)), -1, dtype=np.int64)
    index[ch, rank] = which
    sample_of = np.full((n, int(k)), -1, dtype=np.int64)
    sample_of[ch, rank] = samples
    return PatchTable(patches, index, sample_of, np.bincount(ch, minlength=n).astype(np.int64))


def _tile_shapes(count: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """Columns of each neuron's near-square grid of ``count`` patches, and its tile (w, h)."""
    n = np.maximum(count, 1)
    cols = np.ceil(np.sqrt(n)).astype(np.int64)
    rows = -(-n // cols)
    w = cols * p + (cols - 1) * TILE_GAP
    h = rows * p + (rows - 1) * TILE_GAP
    return cols, np.column_stack([w, h])


def pack_tiles(sizes: np.ndarray, features: np.ndarray, gap: int) -> tuple[np.ndarray, str]:
    """Top-left positions of tiles ``sizes`` (w, h), similar features close together."""
    n = sizes.shape[0]
    if n == 1:
        return np.zeros((1, 2), dtype=np.int64), "single"
    from cnnvis.layout import pack_hierarchy

    padded = sizes + gap
    pos = np.asarray(pack_hierarchy(padded, features).positions, dtype=np.float64)
    pos = np.rint(pos[:, :2]).astype(np.int64)
    # the packer works bottom-left origin; flip to image rows
    top = int((pos[:, 1] + padded[:, 1]).max())
    pos[:, 1] = top - (pos[:, 1] + padded[:, 1])
    pos -= pos.min(axis=0)
    return pos, "pack_hierarchy"


def build_learned_features(
    layer: str,
    cluster: int,
    rec_layer,
    neurons: np.ndarray,
    profiles: np.ndarray,
    *,
    patches_per_neuron: int = 4,
    gap: int = 4,
    table: PatchTable | None = None,
    pack: Callable | None = None,
) -> LearnedFeatures:
    """Pack the tiles of ``neurons`` (ordered) into one image: each neuron's tile holds its top
    ``patches_per_neuron`` patches in a near-square grid (``table``: the layer's
    :func:`patch_table`, made here when not given), the tiles placed by ``pack`` (default
    :func:`pack_tiles`, similar neurons close together)."""
    neurons = np.asarray(neurons, dtype=np.int64)
    if table is None:
        table = patch_table(rec_layer, patches_per_neuron)
    p = table.patches.shape[1] if len(table.patches) else rec_layer.top_patches.shape[2]
    count = table.count[neurons]
    cols, sizes = _tile_shapes(count, p)
    pos, how = (pack or pack_tiles)(sizes, profiles, gap)
    w = int((pos[:, 0] + sizes[:, 0]).max())
    h = int((pos[:, 1] + sizes[:, 1]).max())
    image = np.full((h, w, 3), BACKGROUND, dtype=np.uint8)
    placements = np.column_stack([pos, sizes]).astype(np.int64)
    # every patch of the facet at once: its neuron, its slot in the tile, its place in the image
    owner = np.repeat(np.arange(len(neurons)), count)
    slot = np.arange(len(owner)) - np.repeat(np.cumsum(count) - count, count)
    r, c = np.divmod(slot, cols[owner])
    xs, ys = pos[owner, 0] + c * (p + TILE_GAP), pos[owner, 1] + r * (p + TILE_GAP)
    for x, y, k in zip(xs.tolist(), ys.tolist(), table.index[neurons[owner], slot].tolist()):
        image[y : y + p, x : x + p] = table.patches[k]
    cuts = np.cumsum(count)[:-1]
    boxes = np.split(np.column_stack([xs, ys, np.full((len(owner), 2), p)]).astype(np.int64), cuts)
    samples = np.split(table.samples[neurons[owner], slot], cuts)
    return LearnedFeatures(
        layer, int(cluster), image, neurons.copy(), placements, boxes, samples, how
    )


# -- projections ----------------------------------------------------------------------------------
def project_pooled(layer: str, pooled: np.ndarray, perplexity: float, random_state: int):
    """The :class:`Projection` of a layer's pooled activations: a 2-D t-SNE
    (``cnnvis.layout.TSNE``), or a 2-D PCA for fewer than 4 samples (too few for t-SNE)."""
    x = np.asarray(pooled, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"layer {layer!r} has no pooled activations to project")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"pooled activations of {layer!r} hold NaN or inf")
    params = {"perplexity": float(perplexity), "random_state": int(random_state)}
    if x.shape[0] < 4:
        return Projection(layer, _pca2(x).astype(np.float32), "pca", params)
    from cnnvis.layout import TSNE

    perp = min(float(perplexity), (x.shape[0] - 1) / 3.0)
    params["perplexity_used"] = perp
    tsne = TSNE(n_components=2, perplexity=perp, random_state=int(random_state))
    return Projection(layer, np.asarray(tsne.fit_transform(x), dtype=np.float32), "tsne", params)


def _pca2(x: np.ndarray) -> np.ndarray:
    xc = x - x.mean(axis=0)
    if xc.shape[0] < 2 or not np.any(xc):
        return np.zeros((x.shape[0], 2))
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    out = np.zeros((x.shape[0], 2))
    m = min(2, s.size)
    out[:, :m] = u[:, :m] * s[:m]
    return out
