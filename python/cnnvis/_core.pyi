"""cnnvis C++ core: t-SNE, row reordering, rectangle packing, edge bundling, recording kernels.

Type stub generated from the bindings with pybind11-stubgen; regenerate after changing
cpp/bindings/ (tests/test_core_stub.py checks it lists every function).
"""

from __future__ import annotations

import collections.abc
import typing

import numpy
import numpy.typing

__all__: list[str] = [
    "Fold",
    "bicluster_edges",
    "bundle_edges",
    "gather_boxes",
    "held_karp_bytes",
    "held_karp_max_n",
    "held_karp_path",
    "heuristic_path",
    "hierarchical_path",
    "nearest_neighbour_path",
    "pack_in_box",
    "pack_rectangles",
    "quantize_images",
    "resample_polylines",
    "reservoir_offer",
    "shelf_pack",
    "softmax_top",
    "spatial_stats",
]

class _TsneOptimizer:
    def __init__(
        self,
        indptr: typing.Annotated[numpy.typing.ArrayLike, numpy.int64],
        indices: typing.Annotated[numpy.typing.ArrayLike, numpy.int32],
        data: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
        Y0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
        theta: typing.SupportsFloat | typing.SupportsIndex,
        n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
    ) -> None: ...
    def embedding(self) -> numpy.typing.NDArray[numpy.float64]: ...
    def kl_divergence(self) -> float: ...
    def run(
        self,
        n_iter: typing.SupportsInt | typing.SupportsIndex,
        exaggeration: typing.SupportsFloat | typing.SupportsIndex,
        learning_rate: typing.SupportsFloat | typing.SupportsIndex,
        momentum: typing.SupportsFloat | typing.SupportsIndex,
        max_step_norm: typing.SupportsFloat | typing.SupportsIndex = 5.0,
        anchor: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None,
        penalty: typing.SupportsFloat | typing.SupportsIndex = 0.0,
    ) -> int: ...
    @property
    def last_z(self) -> float: ...

class Fold:
    """
    The running state of the recorded layers, folded batch by batch. Built once from a list of layers, each a tuple (values, samples, locs, slots, class_sums, pooled, pending) of numpy arrays updated in place: the top-k lists (channels x k: float32 values, int64 sample positions, locations of the maxima and patch slots, each slot row a permutation of 0..k-1), the class sums (float64, classes x channels), the reservoir rows (float32, pooled rows x channels) and the pending flags (uint8, channels x k, by slot); and the reservoir's arrays (seen, caps, offset, position, rng) as reservoir_offer takes them. No two of these arrays may overlap. Per batch: stats() or set_stats() of every layer, then fold().
    """
    def __init__(self, layers: collections.abc.Sequence, reservoir: typing.Any) -> None: ...
    def fold(
        self,
        start: typing.SupportsIndex,
        labels: numpy.ndarray,
        need: numpy.ndarray,
        pooled_row: numpy.ndarray,
        offer: bool = True,
    ) -> int:
        """
        Folds the batch of samples start.. (labels: integers in 0..classes-1) into every layer, in order, after stats() or set_stats() of each. The batch is first offered to the class-stratified reservoir (Algorithm R per class, as reservoir_offer): pooled_row[i] (int64, written) is the reservoir row sample i holds, or -1. Each mean goes to its class's sums by label and to its reservoir row; a maximum enters the top-k lists only above the k-th, after every equal value (a stable descending sort of [lists; batch] cut to k), taking the slot of the entry it evicts, which becomes pending; need[i] = 1 (uint8, batch) for each sample of the batch that entered a list. Returns the index of the first layer with a NaN or infinite mean, which is left unchanged (the layers before it are folded), or -1. With offer=False the batch is not offered to the reservoir: pooled_row (-1 or a row) holds the rows the caller drew, e.g. from a reservoir over the samples of all processes.
        """
    def set_stats(
        self,
        layer: typing.SupportsIndex,
        mean: typing.Annotated[numpy.typing.ArrayLike, numpy.float32],
        max: typing.Annotated[numpy.typing.ArrayLike, numpy.float32],
        loc: numpy.ndarray,
    ) -> None:
        """
        Summaries computed elsewhere (batch x channels: mean, max, flat index of the max).
        """
    def stats(self, layer: typing.SupportsIndex, x: numpy.ndarray) -> None:
        """
        Summaries of the layer's output x for this batch (float32, C-contiguous, (batch, channels, ...)): per (sample, channel) the mean and the maximum, and the first index of the maximum where it beats the k-th entry of the channel's list (only there can it enter).
        """

def _knn_approx(
    X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    k: typing.SupportsInt | typing.SupportsIndex,
    n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
    seed: typing.SupportsInt | typing.SupportsIndex = 0,
    n_trees: typing.SupportsInt | typing.SupportsIndex = 0,
    leaf_size: typing.SupportsInt | typing.SupportsIndex = 0,
    max_candidates: typing.SupportsInt | typing.SupportsIndex = 0,
    max_iter: typing.SupportsInt | typing.SupportsIndex = 3,
    exact_below: typing.SupportsInt | typing.SupportsIndex = 4096,
) -> tuple[numpy.typing.NDArray[numpy.int32], numpy.typing.NDArray[numpy.float64]]:
    """
    Approximate k nearest neighbours (random-projection forest + NN-descent; exact below 4096 points): int32 indices and squared distances, rows sorted by distance.
    """

def _tsne_conditional_p(
    d2: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    perplexity: typing.SupportsFloat | typing.SupportsIndex,
    n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]:
    """
    Row-normalised Gaussian affinities with bandwidths calibrated to the perplexity.
    """

def _tsne_exact_kl(
    indptr: typing.Annotated[numpy.typing.ArrayLike, numpy.int64],
    indices: typing.Annotated[numpy.typing.ArrayLike, numpy.int32],
    data: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    Y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
) -> float:
    """
    KL(P || Q) with the exact O(n^2) normalisation of Q.
    """

def _tsne_gradient(
    indptr: typing.Annotated[numpy.typing.ArrayLike, numpy.int64],
    indices: typing.Annotated[numpy.typing.ArrayLike, numpy.int32],
    data: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    Y: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    theta: typing.SupportsFloat | typing.SupportsIndex,
    exaggeration: typing.SupportsFloat | typing.SupportsIndex = 1.0,
    n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
) -> tuple[numpy.typing.NDArray[numpy.float64], float]:
    """
    t-SNE gradient without the factor 4 (Barnes-Hut repulsion) and the normalisation Z.
    """

def _tsne_joint_p(
    idx: typing.Annotated[numpy.typing.ArrayLike, numpy.int32],
    pcond: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
) -> tuple[
    numpy.typing.NDArray[numpy.int64],
    numpy.typing.NDArray[numpy.int32],
    numpy.typing.NDArray[numpy.float64],
]:
    """
    Symmetric joint affinities (p_j|i + p_i|j) / 2n as CSR (indptr, indices, data).
    """

def _tsne_knn(
    X: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    k: typing.SupportsInt | typing.SupportsIndex,
    n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
    queries: typing.Annotated[numpy.typing.ArrayLike, numpy.float64] | None = None,
) -> tuple[numpy.typing.NDArray[numpy.int32], numpy.typing.NDArray[numpy.float64]]:
    """
    Exact k nearest neighbours (int32 indices, squared distances), rows sorted by distance.
    """

def _tsne_transform(
    Yref: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    idx: typing.Annotated[numpy.typing.ArrayLike, numpy.int32],
    p: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    Y0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    n_iter: typing.SupportsInt | typing.SupportsIndex,
    learning_rate: typing.SupportsFloat | typing.SupportsIndex,
    theta: typing.SupportsFloat | typing.SupportsIndex,
    n_jobs: typing.SupportsInt | typing.SupportsIndex = 1,
) -> numpy.typing.NDArray[numpy.float64]:
    """
    Optimises new points against a fixed reference embedding.
    """

def bicluster_edges(
    weights: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    threshold: typing.SupportsFloat | typing.SupportsIndex,
    min_density: typing.SupportsFloat | typing.SupportsIndex,
    min_gain: typing.SupportsInt | typing.SupportsIndex,
    max_refine: typing.SupportsInt | typing.SupportsIndex,
    patience: typing.SupportsInt | typing.SupportsIndex,
    n_threads: typing.SupportsInt | typing.SupportsIndex,
) -> tuple:
    """
    Biclusters of a signed weight matrix: (list of (rows, cols, sign, n_edges), direct (k, 2), n_edges).
    """

def bundle_edges(
    edges: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    n_cycles: typing.SupportsInt | typing.SupportsIndex,
    n_iter: typing.SupportsInt | typing.SupportsIndex,
    iter_rate: typing.SupportsFloat | typing.SupportsIndex,
    step: typing.SupportsFloat | typing.SupportsIndex,
    step_rate: typing.SupportsFloat | typing.SupportsIndex,
    stiffness: typing.SupportsFloat | typing.SupportsIndex,
    bandwidth: typing.SupportsFloat | typing.SupportsIndex,
    compat_threshold: typing.SupportsFloat | typing.SupportsIndex,
    max_neighbors: typing.SupportsInt | typing.SupportsIndex,
    directed: bool,
    n_points: typing.SupportsInt | typing.SupportsIndex,
    n_threads: typing.SupportsInt | typing.SupportsIndex,
) -> tuple:
    """
    Force-directed edge bundling: (polylines (m, n_points, 2), compatible pairs).
    """

def gather_boxes(
    store: numpy.ndarray,
    slot: numpy.ndarray,
    y0: numpy.ndarray,
    x0: numpy.ndarray,
    h: typing.SupportsInt | typing.SupportsIndex,
    w: typing.SupportsInt | typing.SupportsIndex,
) -> numpy.typing.NDArray[numpy.uint8]:
    """
    Copies n boxes of h x w pixels out of a uint8 image store (images, height, width, channels): box i is store[slot[i], y0[i]:y0[i]+h, x0[i]:x0[i]+w]; returns (n, h, w, channels) uint8.
    """

def held_karp_bytes(n: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Bytes of the Held-Karp table for n rows.
    """

def held_karp_max_n(memory_limit: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Largest n whose Held-Karp table fits in memory_limit bytes.
    """

def held_karp_path(
    dist: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    memory_limit: typing.SupportsInt | typing.SupportsIndex,
    n_threads: typing.SupportsInt | typing.SupportsIndex = 1,
) -> numpy.typing.NDArray[numpy.int64]:
    """
    Exact shortest open path (Held-Karp).
    """

def heuristic_path(
    dist: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    max_iter: typing.SupportsInt | typing.SupportsIndex = -1,
    time_budget: typing.SupportsFloat | typing.SupportsIndex = 2.0,
    seed: typing.SupportsInt | typing.SupportsIndex = 0,
    neighbours: typing.SupportsInt | typing.SupportsIndex = 10,
    group_size: typing.SupportsInt | typing.SupportsIndex = 9,
    fan_out: typing.SupportsInt | typing.SupportsIndex = 8,
    kick_size: typing.SupportsInt | typing.SupportsIndex = 100,
) -> tuple[numpy.typing.NDArray[numpy.int64], dict]:
    """
    Hierarchical start + iterated 2-opt/Or-opt local search.
    """

def hierarchical_path(
    dist: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    group_size: typing.SupportsInt | typing.SupportsIndex = 9,
    fan_out: typing.SupportsInt | typing.SupportsIndex = 8,
) -> numpy.typing.NDArray[numpy.int64]:
    """
    CNNVis hierarchical order (no local search).
    """

def nearest_neighbour_path(
    dist: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    start: typing.SupportsInt | typing.SupportsIndex = 0,
) -> numpy.typing.NDArray[numpy.int64]:
    """
    Greedy nearest-neighbour open path.
    """

def pack_in_box(
    sizes: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    width: typing.SupportsFloat | typing.SupportsIndex,
    height: typing.SupportsFloat | typing.SupportsIndex,
    n_threads: typing.SupportsInt | typing.SupportsIndex = 1,
) -> tuple:
    """
    Packs into a fixed box or raises ValueError: (xy, width, height, variant).
    """

def pack_rectangles(
    sizes: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    aspect: typing.SupportsFloat | typing.SupportsIndex = 1.0,
    tolerance: typing.SupportsFloat | typing.SupportsIndex = 0.1,
    integral: bool = False,
    steps: typing.SupportsInt | typing.SupportsIndex = 7,
    n_threads: typing.SupportsInt | typing.SupportsIndex = 1,
    effort: typing.SupportsInt | typing.SupportsIndex = 1,
    variant: typing.SupportsInt | typing.SupportsIndex = -1,
) -> tuple:
    """
    MaxRects variants with a bisection over the box area: (xy, width, height, variant).
    """

def quantize_images(
    x: numpy.ndarray,
    low: numpy.ndarray,
    high: numpy.ndarray,
    index: numpy.ndarray,
    out: typing.Any = None,
) -> numpy.ndarray:
    """
    Images index[i] of a float32 batch (batch, channels, height, width) as uint8 (n, height, width, channels): round((v - low) / (high - low), clamped to [0, 1], * 255) per channel, half to even, bytes equal to the same float32 arithmetic in torch; NaN becomes 0. Written into out (uint8, C-contiguous, writeable) if given, else into a new array; returns it.
    """

def resample_polylines(
    polylines: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    n_points: typing.SupportsInt | typing.SupportsIndex,
) -> numpy.typing.NDArray[numpy.float64]:
    """
    Resamples polylines (m, p, 2) to n_points each, equally spaced by arc length.
    """

def reservoir_offer(
    labels: numpy.ndarray,
    start: typing.SupportsInt | typing.SupportsIndex,
    seen: numpy.ndarray,
    caps: numpy.ndarray,
    offset: numpy.ndarray,
    position: numpy.ndarray,
    rng: numpy.ndarray,
) -> numpy.typing.NDArray[numpy.int64]:
    """
    Offers samples start .. start + len(labels) - 1 to a class-stratified reservoir (Algorithm R per class), in place: class c keeps at most caps[c] samples, in rows offset[c] .. offset[c] + caps[c] - 1 of position (int64: the sample each row holds, -1 while free); seen (int64) counts each class's samples; rng (uint64, one value) is the state of the splitmix64 generator that draws. Returns the row each sample holds after the batch, or -1.
    """

def shelf_pack(
    sizes: typing.Annotated[numpy.typing.ArrayLike, numpy.float64],
    aspect: typing.SupportsFloat | typing.SupportsIndex = 1.0,
    tolerance: typing.SupportsFloat | typing.SupportsIndex = 0.1,
) -> tuple:
    """
    Shelf packer (rows, tallest first), the reference floor: (xy, width, height, variant).
    """

def softmax_top(z: numpy.ndarray, top: numpy.ndarray, probability: numpy.ndarray) -> bool:
    """
    Per row of z (float32, rows x logits): top[r] = the first index of the maximum (int64) and probability[r] = its softmax probability, 1 / sum(exp(z - max)) (float32), written in place. Returns False, writing nothing, if a logit is NaN or infinite.
    """

def spatial_stats(
    x: numpy.ndarray,
) -> tuple[
    numpy.typing.NDArray[numpy.float32],
    numpy.typing.NDArray[numpy.float32],
    numpy.typing.NDArray[numpy.int64],
]:
    """
    Per (sample, channel) of a C-contiguous float32 array (batch, channels, length): the mean, the maximum and the first index of the maximum; returns (mean, max, argmax), each (batch, channels).
    """
