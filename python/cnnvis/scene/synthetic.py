"""Synthetic overview inputs of realistic size, for tests, benchmarks and documentation.

:func:`synthetic_overview` makes an :class:`~cnnvis.scene.OverviewInput` shaped like the analysis
of a real network (layer widths, cluster counts, patch facets, activation matrices, biclustered
connections, a clustered 2-D projection) without running one. Deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

from .inputs import (
    BiclusterInput,
    ClusterInput,
    ConnectionInput,
    LayerInput,
    OverviewInput,
    ProjectionInput,
)

__all__ = ["RESNET18_LAYERS", "synthetic_overview"]

# (group, layer, channels) of a ResNet-18's analysed convolutions, input first
RESNET18_LAYERS: list[tuple[str, str, int]] = [
    ("stem", "conv1", 64),
    ("layer1", "layer1.0.conv2", 64),
    ("layer1", "layer1.1.conv2", 64),
    ("layer2", "layer2.0.conv2", 128),
    ("layer2", "layer2.1.conv2", 128),
    ("layer3", "layer3.0.conv2", 256),
    ("layer3", "layer3.1.conv2", 256),
    ("layer4", "layer4.0.conv2", 512),
    ("layer4", "layer4.1.conv2", 512),
    ("head", "fc", 1000),
]


def _patch_image(rng: np.random.Generator, n_neurons: int, patch: int, k: int) -> tuple:
    """A packed grid of smooth random patches (k per neuron) and each neuron's box."""
    cells = n_neurons * k
    cols = int(np.ceil(np.sqrt(cells)))
    rows = int(np.ceil(cells / cols))
    img = np.full((rows * patch, cols * patch, 3), 245, np.uint8)
    boxes = np.zeros((n_neurons, 4), np.float64)
    base = rng.uniform(40, 215, size=(n_neurons, 3))
    yy, xx = np.mgrid[0:patch, 0:patch] / patch
    for cell in range(cells):
        nrn = cell // k
        r, c = divmod(cell, cols)
        fx, fy, ph = rng.uniform(1, 4), rng.uniform(1, 4), rng.uniform(0, 6.28)
        wave = np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)[..., None]
        tile = np.clip(base[nrn] + 40 * wave * rng.uniform(0.5, 1.5, 3), 0, 255)
        img[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch] = tile.astype(np.uint8)
    for nrn in range(n_neurons):
        first, last = nrn * k, nrn * k + k - 1
        r0, c0 = divmod(first, cols)
        r1, _ = divmod(last, cols)
        c_lo = 0 if r1 > r0 else c0
        c_hi = cols if r1 > r0 else divmod(last, cols)[1] + 1
        boxes[nrn] = (c_lo * patch, r0 * patch, c_hi * patch, (r1 + 1) * patch)
    return img, boxes


def synthetic_overview(
    layers: list[tuple[str, str, int]] | None = None,
    *,
    clusters_per_layer: int | list[int] = 10,
    n_classes: int = 10,
    n_points: int = 2000,
    patch: int = 12,
    top_k: int = 4,
    biclusters_per_gap: int = 6,
    seed: int = 0,
) -> OverviewInput:
    """A realistic-looking overview input.

    Parameters
    ----------
    layers : list of (group, layer, channels), optional
        Defaults to :data:`RESNET18_LAYERS`.
    clusters_per_layer : int or list of int
        Clusters per layer (capped by its channels).
    n_classes, n_points : int
        Classes and projected samples.
    patch, top_k : int
        Patch side in pixels and patches per neuron in the features facet.
    biclusters_per_gap : int
        Biclusters between each pair of consecutive layers (about a third of them negative).
    seed : int
    """
    rng = np.random.default_rng(seed)
    layers = list(RESNET18_LAYERS if layers is None else layers)
    if isinstance(clusters_per_layer, int):
        clusters_per_layer = [clusters_per_layer] * len(layers)
    class_names = [f"class {k}" for k in range(n_classes)]
    out_layers = []
    for (group, name, channels), n_cl in zip(layers, clusters_per_layer):
        n_cl = max(1, min(n_cl, channels))
        weights = rng.dirichlet(np.full(n_cl, 2.0))
        sizes = np.maximum(1, np.floor(weights * channels).astype(int))
        sizes[-1] += channels - sizes.sum()
        while sizes[-1] < 1:
            i = int(np.argmax(sizes))
            sizes[i] -= 1
            sizes[-1] += 1
        perm = rng.permutation(channels)
        clusters, start = [], 0
        for c, s in enumerate(sizes):
            neurons = np.sort(perm[start : start + s])
            start += s
            feat, boxes = _patch_image(rng, int(s), patch, top_k)
            centre = rng.uniform(0, 1, n_classes)
            matrix = np.clip(centre + rng.normal(0, 0.25, (s, n_classes)), 0, None)
            clusters.append(ClusterInput(c, neurons, feat, matrix, boxes))
        out_layers.append(LayerInput(name, clusters, group=group, n_channels=channels))
    conns = []
    for a, b in zip(out_layers[:-1], out_layers[1:]):
        na, nb = len(a.clusters), len(b.clusters)
        strength = rng.normal(0, 1, (na, nb))
        bics, covered = [], np.zeros((na, nb), bool)
        for k in range(biclusters_per_gap):
            sign = -1 if k % 3 == 2 else 1
            rows = np.sort(rng.choice(na, size=min(na, rng.integers(1, 4)), replace=False))
            cols = np.sort(rng.choice(nb, size=min(nb, rng.integers(1, 4)), replace=False))
            if covered[np.ix_(rows, cols)].any():
                continue
            covered[np.ix_(rows, cols)] = True
            strength[np.ix_(rows, cols)] = sign * rng.uniform(0.5, 2.0, (len(rows), len(cols)))
            bics.append(BiclusterInput(rows, cols, sign))
        free = np.argwhere(~covered)
        direct = free[rng.choice(len(free), size=min(len(free), 4), replace=False)]
        direct = direct[np.lexsort((direct[:, 1], direct[:, 0]))]
        conns.append(ConnectionInput(a.name, b.name, strength, bics, direct))
    labels = rng.integers(0, n_classes, n_points)
    centres = rng.normal(0, 10, (n_classes, 2))
    xy = centres[labels] + rng.normal(0, 2.2, (n_points, 2))
    preds = labels.copy()
    wrong = rng.random(n_points) < 0.08
    preds[wrong] = rng.integers(0, n_classes, int(wrong.sum()))
    projection = ProjectionInput(out_layers[-1].name, xy, labels, preds)
    return OverviewInput(class_names, out_layers, conns, projection, model_name="synthetic")
