"""Compact non-overlapping placements of rectangles (image patches) in a box.

* :func:`pack_rectangles` places axis-aligned, unrotated rectangles in a box of near-minimal area
  at a requested aspect ratio (width / height). The C++ core runs MaxRects (free space kept as the
  list of maximal empty rectangles) with placement rules (bottom-left, best short side, best area)
  and input orders (by height, area, long side, width), bisecting the box area for each variant,
  and keeps the densest result; a shelf packer (rows, tallest first) is the floor. On 1,000
  rectangles with sides 10-100 it reaches a density of about 0.99 in ~15 ms.
* :func:`pack_hierarchy` does the three CNNVis steps: a hierarchical clustering of the items by
  their features, an area per cluster, and packing within each cluster; so similar items (neurons'
  learned-feature patches) sit together.

Sizes are ``(width, height)`` pairs, integers or floats. Integer sizes (an integer dtype, or floats
that are all whole numbers) give a box with whole-number sides and integer corners, which is what
image patches need; float sizes give float corners. Corners are lower-left, ``(x, y)``, with ``y``
growing upwards (for an image with rows growing downwards use ``y`` as the top row: the layout is
the same mirrored, and still non-overlapping).

Examples
--------
>>> import numpy as np
>>> from cnnvis.layout import pack_rectangles
>>> p = pack_rectangles(np.full((4, 2), 10), aspect=1.0)
>>> (p.width, p.height, p.density)
(20.0, 20.0, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from cnnvis.layout._checks import real
from cnnvis.parallel import resolve_n_jobs

__all__ = ["Packing", "HierarchicalPacking", "pack_rectangles", "pack_hierarchy", "contiguity"]


@dataclass(frozen=True)
class Packing:
    """A placement of rectangles in a box.

    Attributes
    ----------
    positions : ndarray of shape (n, 2)
        Lower-left corners ``(x, y)``, in input order.
    sizes : ndarray of shape (n, 2)
        The ``(width, height)`` of each rectangle, as packed (float64).
    width, height : float
        The box, with its lower-left corner at the origin.
    variant : str
        Which placement rule and order won (``'maxrects/bottom-left/height'``, ``'shelf'``, ...).

    A packing unpacks as ``positions, (width, height) = packing``.
    """

    positions: np.ndarray
    sizes: np.ndarray
    width: float
    height: float
    variant: str = ""

    @property
    def density(self) -> float:
        """Sum of the rectangles' areas over the box area (0 for an empty box)."""
        box = self.width * self.height
        if box >= 1e-300:
            return float(np.prod(self.sizes, axis=1).sum() / box)
        if self.width > 0 and self.height > 0:  # tiny sides: areas would underflow to 0
            return float((self.sizes[:, 0] / self.width * (self.sizes[:, 1] / self.height)).sum())
        return 0.0

    @property
    def aspect(self) -> float:
        """Width over height of the box (NaN for an empty box)."""
        return self.width / self.height if self.height > 0 else float("nan")

    @property
    def rects(self) -> np.ndarray:
        """``(x, y, width, height)`` per rectangle, shape (n, 4)."""
        return np.hstack([self.positions, self.sizes])

    def __iter__(self):
        yield self.positions
        yield (self.width, self.height)


@dataclass(frozen=True)
class HierarchicalPacking(Packing):
    """A :class:`Packing` whose items were grouped by a hierarchical clustering.

    Attributes
    ----------
    labels : ndarray of int64, shape (n,)
        Cluster of each item, ``0 .. n_clusters - 1``.
    cluster_boxes : ndarray of shape (n_clusters, 4)
        ``(x, y, width, height)`` of the box each cluster was packed into.
    linkage : ndarray
        The scipy linkage matrix of the items (empty for fewer than 2 items).
    """

    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cluster_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    linkage: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    @property
    def contiguity(self) -> float:
        """Fraction of clusters whose rectangles form one touching region (see :func:`contiguity`)."""
        return contiguity(self.positions, self.sizes, self.labels)["contiguous"]


def _core() -> Any:
    from cnnvis import _core

    return _core


def _as_sizes(sizes: ArrayLike) -> tuple[np.ndarray, bool]:
    s = np.asarray(sizes)
    if s.dtype == object or not (
        np.issubdtype(s.dtype, np.floating) or np.issubdtype(s.dtype, np.integer)
    ):
        raise ValueError(f"sizes must be numeric, got dtype {s.dtype}")
    if s.ndim != 2 or s.shape[1] != 2:
        raise ValueError(f"sizes must have shape (n, 2) (width, height), got {s.shape}")
    f = np.ascontiguousarray(s, dtype=np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError("sizes contain NaN or infinite values")
    if f.size and f.min() <= 0:
        i = int(np.argmin(f.min(axis=1)))
        raise ValueError(f"sizes must be positive, rectangle {i} is {f[i, 0]:g} x {f[i, 1]:g}")
    if f.size and f.max() > 1e12:
        raise ValueError("sizes above 1e12 are not supported")
    if f.size and f.min() < 1e-100 * f.max():
        raise ValueError(
            f"sizes span more than 100 orders of magnitude ({f.min():g} to {f.max():g}); "
            "the smallest would vanish in the packing"
        )
    integral = bool(np.issubdtype(s.dtype, np.integer) or np.all(f == np.round(f)))
    return f, integral


def pack_rectangles(
    sizes: ArrayLike,
    aspect: float = 1.0,
    *,
    box: tuple[float, float] | None = None,
    tolerance: float = 0.1,
    effort: int = 1,
    n_jobs: int = 1,
) -> Packing:
    """Place rectangles without overlap in a compact box.

    Parameters
    ----------
    sizes : array-like of shape (n, 2)
        ``(width, height)`` of each rectangle; positive, finite, integers or floats.
    aspect : float, default=1.0
        Requested width / height of the box. The result is within ``tolerance`` of it (relative)
        unless one rectangle alone forces a different shape.
    box : (width, height), optional
        Pack into this fixed box instead; :class:`ValueError` when the rectangles do not fit.
    tolerance : float, default=0.1
        Accepted relative deviation of the box's aspect.
    effort : {0, 1, 2}, default=1
        0: one variant (bottom-left placement, tallest first; the best on large sets); 1: that
        plus three more for up to 400 rectangles; 2: all 20 rule/order variants.
    n_jobs : int, default=1
        Threads over variants (the result is the same for any value).

    Returns
    -------
    Packing
        Corners, sizes and box; ``.density`` and ``.aspect`` describe it.

    Raises
    ------
    ValueError
        For NaN, zero or negative sizes, a bad shape, or a fixed ``box`` the rectangles cannot
        fit in.
    """
    s, integral = _as_sizes(sizes)
    aspect = real(aspect, "aspect", 0.0, 1e12, lo_open=True)
    tolerance = real(tolerance, "tolerance", 0.0, 1e12)
    if effort not in (0, 1, 2):
        raise ValueError(f"effort must be 0, 1 or 2, got {effort}")
    n_jobs = resolve_n_jobs(n_jobs)
    n = s.shape[0]
    if box is not None:
        if len(box) != 2:
            raise ValueError(f"box must be (width, height), got {box!r}")
        bw, bh = (real(v, "box side", 0.0, 1e12, lo_open=True) for v in box)
        if n == 0:
            return Packing(np.zeros((0, 2)), s, bw, bh, "empty")
    elif n == 0:
        return Packing(np.zeros((0, 2)), s, 0.0, 0.0, "empty")
    # Sizes far below 1 are packed at a power-of-two scale (exact) where their areas do not
    # underflow, and the answer scaled back.
    shift = max(0, -int(np.frexp(s.max())[1]))
    scaled = np.ldexp(s, shift)
    if box is not None:
        box_scaled = float(np.ldexp(bw, shift)), float(np.ldexp(bh, shift))
        xy, w, h, variant = _core().pack_in_box(scaled, *box_scaled, n_jobs)
    else:
        xy, w, h, variant = _core().pack_rectangles(
            scaled, aspect, tolerance, integral, 7, n_jobs, int(effort)
        )
    xy = np.ldexp(np.asarray(xy), -shift)
    return Packing(xy, s, float(np.ldexp(w, -shift)), float(np.ldexp(h, -shift)), variant)


def contiguity(positions: ArrayLike, sizes: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """How well clusters of rectangles stay together.

    Two rectangles touch when they share a stretch of boundary of positive length.

    Returns
    -------
    dict
        ``contiguous``: fraction of clusters with two or more rectangles whose touch graph is
        connected (1.0 when there are none); ``same_cluster_contact``: fraction of the touching
        boundary length between rectangles of the same cluster; ``chance_contact``: that
        fraction expected if labels were shuffled (sum of squared cluster shares).
    """
    pos = np.asarray(positions, dtype=np.float64)
    siz = np.asarray(sizes, dtype=np.float64)
    lab = np.asarray(labels)
    n = pos.shape[0]
    if n == 0:
        return {"contiguous": 1.0, "same_cluster_contact": 1.0, "chance_contact": 1.0}
    x0, y0 = pos[:, 0], pos[:, 1]
    x1, y1 = x0 + siz[:, 0], y0 + siz[:, 1]
    tol = 1e-9 * max(float(np.abs(np.concatenate([x1, y1])).max()), 1.0)
    # Shared boundary lengths, pairwise in blocks of rows (O(n^2) time, O(512 n) memory).
    rows, cols, vals = [], [], []
    for b in range(0, n, 512):
        sl = slice(b, min(n, b + 512))
        ov_y = np.minimum(y1[sl, None], y1[None, :]) - np.maximum(y0[sl, None], y0[None, :])
        ov_x = np.minimum(x1[sl, None], x1[None, :]) - np.maximum(x0[sl, None], x0[None, :])
        vert = (np.abs(x1[sl, None] - x0[None, :]) <= tol) | (
            np.abs(x0[sl, None] - x1[None, :]) <= tol
        )
        horiz = (np.abs(y1[sl, None] - y0[None, :]) <= tol) | (
            np.abs(y0[sl, None] - y1[None, :]) <= tol
        )
        contact = np.where(vert & (ov_y > tol), ov_y, 0.0) + np.where(
            horiz & (ov_x > tol), ov_x, 0.0
        )
        r, c = np.nonzero(contact)
        keep = r + b != c
        rows.append(r[keep] + b)
        cols.append(c[keep])
        vals.append(contact[r[keep], c[keep]])
    ri, ci, cv = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    same = lab[ri] == lab[ci]
    total = cv.sum()
    same_frac = float(cv[same].sum() / total) if total > 0 else 1.0
    _, counts = np.unique(lab, return_counts=True)
    chance = float(((counts / n) ** 2).sum())
    # Connected components of the touch graph restricted to each cluster.
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(int(same.sum())), (ri[same], ci[same])), shape=(n, n)).tocsr()
    _, comp = connected_components(graph, directed=False)
    n_multi = 0
    n_connected = 0
    for c in np.unique(lab):
        idx = np.flatnonzero(lab == c)
        if idx.size < 2:
            continue
        n_multi += 1
        n_connected += int(np.unique(comp[idx]).size == 1)
    return {
        "contiguous": n_connected / n_multi if n_multi else 1.0,
        "same_cluster_contact": same_frac,
        "chance_contact": chance,
    }


def pack_hierarchy(
    sizes: ArrayLike,
    features: ArrayLike,
    aspect: float = 1.0,
    *,
    n_clusters: int | None = None,
    min_cluster_size: int = 4,
    method: str = "average",
    metric: str = "euclidean",
    tolerance: float = 0.1,
    effort: int = 1,
) -> HierarchicalPacking:
    """Pack rectangles so that items with similar features sit together (CNNVis).

    Three steps: (1) a hierarchical clustering of the items by ``features``
    (:func:`scipy.cluster.hierarchy.linkage`) cut into ``n_clusters`` groups, numbered along the
    dendrogram's leaves; (2) an area per cluster: the box at the requested ``aspect`` is cut
    recursively into a treemap, each cut splitting the clusters (in leaf order, so neighbouring
    cells hold similar clusters) into two runs of about equal area across the box's longer side;
    (3) each cluster's items are packed into its cell. The box's fill density is bisected for the
    largest at which every cluster fits. When that is less dense than packing each cluster on its
    own (all at one of a few aspects, for up to 400 items) and then packing the clusters' boxes (``variant``
    ``'nested/...'``), the latter is returned. Either way each cluster occupies one rectangle of the result. When all items have
    the same size (one layer's patches), they fill a grid at the requested aspect along a snake
    (boustrophedon) in dendrogram leaf order instead (``variant`` ``'snake-grid'``): every
    cluster is then one connected run and ``cluster_boxes`` are the runs' bounding boxes.

    Parameters
    ----------
    sizes : array-like of shape (n, 2)
        ``(width, height)`` of each item, as for :func:`pack_rectangles`.
    features : array-like of shape (n, d)
        What "similar" means, e.g. a neuron's class-mean activations.
    aspect, tolerance, effort
        As for :func:`pack_rectangles` (for the outer packing).
    n_clusters : int, optional
        Groups cut from the hierarchy; default ``round(sqrt(n / 2))`` (at least 1).
    min_cluster_size : int, default=4
        Smaller groups (outliers of the linkage) join their neighbour along the dendrogram's
        leaves, so there may be fewer than ``n_clusters`` clusters.
    method, metric : str
        Linkage method and distance metric for scipy.

    Returns
    -------
    HierarchicalPacking
        The packing plus ``labels``, ``cluster_boxes``, ``linkage``; ``.density`` and
        ``.contiguity`` (see :func:`contiguity`) report its quality.
    """
    s, integral = _as_sizes(sizes)
    n = s.shape[0]
    f = _as_features(features, n)
    if n_clusters is not None and (int(n_clusters) < 1):
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if n == 0:
        return HierarchicalPacking(np.zeros((0, 2)), s, 0.0, 0.0, "empty")
    k = max(1, round(np.sqrt(n / 2))) if n_clusters is None else min(int(n_clusters), n)
    Z, leaf_order, labels = _leaf_ordered_clusters(f, k, method, metric)
    labels = _merge_small_clusters(labels, max(1, min(int(min_cluster_size), n)))
    groups = [np.flatnonzero(labels == c) for c in range(int(labels.max()) + 1)]
    if np.all(s == s[0]):
        # Equal items (one layer's patches): a grid filled along a snake through the leaves, so
        # every cluster is one connected run.
        positions, cells, width, height = _snake_grid(s[0], leaf_order, labels, aspect)
        variant = "snake-grid"
    else:
        positions, cells, width, height, variant = _densest_clustered_packing(
            s, groups, aspect, integral, tolerance, effort
        )
    return HierarchicalPacking(
        positions,
        s,
        width,
        height,
        variant,
        labels=labels,
        cluster_boxes=cells,
        linkage=np.asarray(Z, dtype=np.float64),
    )


def _as_features(features: ArrayLike, n: int) -> np.ndarray:
    f = np.asarray(features)
    if f.ndim == 1:
        f = f.reshape(-1, 1)
    if f.ndim != 2 or f.shape[0] != n:
        raise ValueError(f"features must have shape ({n}, d), got {np.shape(features)}")
    if not (np.issubdtype(f.dtype, np.floating) or np.issubdtype(f.dtype, np.integer)):
        raise ValueError(f"features must be numeric, got dtype {f.dtype}")
    f = np.asarray(f, dtype=np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f


def _leaf_ordered_clusters(
    f: np.ndarray, k: int, method: str, metric: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The linkage, its leaf order and ``k`` cluster labels numbered along the leaves."""
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage

    n = f.shape[0]
    if n >= 2:
        Z = linkage(f, method=method, metric=metric)
        raw = fcluster(Z, t=k, criterion="maxclust") if k > 1 else np.ones(n, int)
        leaf_order = leaves_list(Z)
    else:
        Z = np.zeros((0, 4))
        raw = np.ones(n, int)
        leaf_order = np.arange(n)
    # Labels numbered in order of first appearance along the dendrogram's leaves.
    _, first = np.unique(raw[leaf_order], return_index=True)
    ordered = raw[leaf_order][np.sort(first)]
    remap = {int(c): i for i, c in enumerate(ordered)}
    labels = np.array([remap[int(c)] for c in raw], dtype=np.int64)
    return Z, leaf_order, labels


def _merge_small_clusters(labels: np.ndarray, min_size: int) -> np.ndarray:
    # Clusters too small to shape a cell (outliers of the linkage) join a neighbour along the
    # leaves: the previous one, or the next for the first.
    counts = np.bincount(labels)
    kept = np.flatnonzero(counts >= min_size)
    if kept.size == 0:  # every group is an outlier: they all become one cluster
        kept = np.array([0])
    # each group joins the nearest kept one at or before it, the leading ones the first kept
    before = np.searchsorted(kept, np.arange(len(counts)), side="right") - 1
    target = kept[np.maximum(before, 0)]
    _, labels = np.unique(target[labels], return_inverse=True)
    return labels.astype(np.int64)


def _densest_clustered_packing(s, groups, aspect, integral, tolerance, effort):
    """The smaller of the treemap packing and the nested packings tried."""
    inner = [pack_rectangles(s[idx], 1.0, effort=effort) for idx in groups]
    best = _treemap_packing(s, groups, aspect, integral, [p.density for p in inner])
    # Nested: each cluster packed on its own (all at one of a few aspects), then the boxes.
    for inner_aspect in (1.0, 0.5, 0.7, 1.4, 2.0) if s.shape[0] <= 400 else (1.0,):
        if inner_aspect != 1.0:
            inner = [pack_rectangles(s[idx], inner_aspect, effort=effort) for idx in groups]
        nested = _nested_packing(s, groups, inner, aspect, tolerance, effort)
        if best is None or nested[2] * nested[3] < best[2] * best[3]:
            best = nested
    return best


def _treemap(areas: np.ndarray, x: float, y: float, w: float, h: float, integral: bool) -> list:
    """Cells ``(x, y, w, h)`` for consecutive areas, split recursively across the longer side."""
    k = len(areas)
    if k == 1:
        return [(x, y, w, h)]
    cum = np.cumsum(areas)
    total = cum[-1]
    cut = int(np.argmin(np.abs(cum[:-1] - total / 2))) + 1
    frac = cum[cut - 1] / total
    if w >= h:
        wa = w * frac
        if integral:
            wa = float(np.clip(np.round(wa), 1, max(w - 1, 1)))
        return _treemap(areas[:cut], x, y, wa, h, integral) + _treemap(
            areas[cut:], x + wa, y, w - wa, h, integral
        )
    ha = h * frac
    if integral:
        ha = float(np.clip(np.round(ha), 1, max(h - 1, 1)))
    return _treemap(areas[:cut], x, y, w, ha, integral) + _treemap(
        areas[cut:], x, y + ha, w, h - ha, integral
    )


def _treemap_try(s, groups, areas, aspect, density, integral):
    total = float(areas.sum())
    H = np.sqrt(total / (aspect * density))
    W = aspect * H
    if integral:
        W, H = float(np.ceil(W)), float(np.ceil(H))
    cells = _treemap(areas, 0.0, 0.0, W, H, integral)
    positions = np.zeros((s.shape[0], 2))
    core = _core()
    for idx, (cx, cy, cw, ch) in zip(groups, cells):
        if cw <= 0 or ch <= 0 or s[idx, 0].max() > cw or s[idx, 1].max() > ch:
            return None
        try:
            xy, _, _, _ = core.pack_in_box(s[idx], cw, ch, 1)
        except ValueError:
            return None
        positions[idx] = np.asarray(xy) + (cx, cy)
    return positions, np.array(cells, dtype=np.float64), W, H


def _treemap_packing(s, groups, aspect, integral, own_density):
    # Cells share the box in proportion to each cluster's area over the density it reaches on
    # its own, so clusters that pack poorly (few or awkward items) get the room they need.
    areas = np.array([np.prod(s[idx], axis=1).sum() for idx in groups])
    weighted = areas / np.asarray(own_density)
    areas = weighted * (areas.sum() / weighted.sum())
    lo, hi, found = 0.3, 0.99, None
    got = _treemap_try(s, groups, areas, aspect, lo, integral)
    if got is None:
        return None
    found = got
    for _ in range(7):
        mid = 0.5 * (lo + hi)
        got = _treemap_try(s, groups, areas, aspect, mid, integral)
        if got is None:
            hi = mid
        else:
            lo, found = mid, got
    positions, cells, W, H = found
    used_w = float((positions[:, 0] + s[:, 0]).max())
    used_h = float((positions[:, 1] + s[:, 1]).max())
    cells[:, 2] = np.minimum(cells[:, 0] + cells[:, 2], used_w) - cells[:, 0]
    cells[:, 3] = np.minimum(cells[:, 1] + cells[:, 3], used_h) - cells[:, 1]
    return positions, cells, used_w, used_h, "treemap/maxrects"


def _nested_packing(s, groups, inner, aspect, tolerance, effort):
    boxes = np.array([(p.width, p.height) for p in inner], dtype=np.float64).reshape(-1, 2)
    outer = pack_rectangles(boxes, aspect, tolerance=tolerance, effort=effort)
    positions = np.zeros((s.shape[0], 2))
    cells = np.zeros((len(groups), 4))
    for c, (idx, p) in enumerate(zip(groups, inner)):
        positions[idx] = p.positions + outer.positions[c]
        cells[c] = (*outer.positions[c], p.width, p.height)
    return positions, cells, outer.width, outer.height, "nested/" + outer.variant


def _snake_grid(size, leaf_order, labels, aspect):
    w, h = float(size[0]), float(size[1])
    n = len(leaf_order)
    best = None
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        err = abs(np.log((cols * w) / (rows * h) / aspect))
        key = (rows * cols - n > max(cols, rows), err, rows * cols)
        if best is None or key < best[0]:
            best = (key, cols, rows)
    _, cols, rows = best
    positions = np.zeros((n, 2))
    for k, item in enumerate(leaf_order):
        r, c = divmod(k, cols)
        if r % 2:
            c = cols - 1 - c
        positions[item] = (c * w, r * h)
    n_groups = int(labels.max()) + 1 if n else 0
    cells = np.zeros((n_groups, 4))
    for g in range(n_groups):
        p = positions[labels == g]
        lo = p.min(axis=0)
        hi = p.max(axis=0) + (w, h)
        cells[g] = (*lo, *(hi - lo))
    return positions, cells, cols * w, rows * h
