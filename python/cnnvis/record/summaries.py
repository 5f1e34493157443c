"""The running state of a recording: per-layer summaries, the pooled-sample reservoir, and
per-sample columns, all numpy arrays the C++ fold (``_core.Fold``) updates in place."""

from __future__ import annotations

import numpy as np

from cnnvis.record.receptive import ReceptiveField


class Reservoir:
    """Class-stratified reservoir sample (Algorithm R per class) of sample positions.

    Class ``c`` keeps at most ``max_pooled // n_classes`` samples (one more for the first
    ``max_pooled % n_classes`` classes), so at most ``max_pooled`` in all. Rows
    ``offset[c] .. offset[c] + cap[c]`` of the pooled buffers belong to class ``c``. The draws
    come from a generator seeded with ``seed`` (``_core.reservoir_offer``, which the fold runs).
    """

    def __init__(self, max_pooled: int, n_classes: int, seed: int) -> None:
        base, extra = divmod(max_pooled, n_classes)
        self.caps = base + (np.arange(n_classes) < extra).astype(np.int64)
        self.offset = np.concatenate([[0], np.cumsum(self.caps)[:-1]]).astype(np.int64)
        self.seen = np.zeros(n_classes, dtype=np.int64)
        self.position = np.full(max_pooled, -1, dtype=np.int64)  # buffer row -> sample position
        self.rng = np.array([seed & (2**64 - 1)], dtype=np.uint64)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays the C++ fold offers each batch to, in place (``_core.Fold``)."""
        return self.seen, self.caps, self.offset, self.position, self.rng

    def kept(self) -> tuple[np.ndarray, np.ndarray]:
        """``(buffer rows, sample positions)`` of the kept samples, by sample position."""
        rows_a = np.flatnonzero(self.position >= 0)
        pos_a = self.position[rows_a]
        order = np.argsort(pos_a, kind="stable")
        return rows_a[order], pos_a[order]


class LayerState:
    """Running per-channel summaries of one layer.

    All live on the CPU as numpy arrays that the C++ fold (``_core.Fold``) updates in place,
    once per batch.
    """

    def __init__(self, name, n_channels, n_classes, k, n_pool_rows):
        self.name = name
        self.n_channels = n_channels
        self.class_sums = np.zeros((n_classes, n_channels), dtype=np.float64)
        self.pooled = np.zeros((n_pool_rows, n_channels), dtype=np.float32)
        self.top_values = np.full((n_channels, k), -np.inf, dtype=np.float32)
        self.top_samples = np.full((n_channels, k), -1, dtype=np.int64)
        self.top_loc = np.zeros((n_channels, k), dtype=np.int64)
        # each entry's patch lives in a fixed slot; a new entry takes the slot of the one it evicts
        self.top_slot = np.tile(np.arange(k, dtype=np.int64), (n_channels, 1))
        self.offset = 0  # first row of this layer's slots in the shared patch block
        self.rf: ReceptiveField | None = None
        self.spatial: tuple[int, int] | None = None

    def boxes(self) -> np.ndarray:
        """``(C, k, 4)`` int32 receptive-field boxes of the top-k entries, in input pixels
        (zeros where a list has no sample)."""
        boxes = self.rf.boxes(self.top_loc.reshape(-1)).reshape(*self.top_loc.shape, 4)
        boxes[self.top_samples < 0] = 0
        return boxes.astype(np.int32)


class Column:
    """A growing 1-D array of per-sample values, kept on anonymous memory maps.

    Keeping each batch's small arrays alive for the whole pass scattered long-lived blocks
    through the malloc heap between the forward pass's large temporaries; the heap then grew
    with the number of samples (free but unreturnable memory: +300 MB over 16,000 ResNet-18
    samples). Here the values live outside the heap and grow by doubling.
    """

    def __init__(self, dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.data = zeroed((4096 * self.dtype.itemsize,)).view(self.dtype)
        self.n = 0

    def extend(self, n: int) -> np.ndarray:
        """The next n values, to be written by the caller."""
        m = self.n + n
        if m > len(self.data):
            grown = zeroed((2 * m * self.dtype.itemsize,)).view(self.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.n = m
        return self.data[m - n : m]

    def values(self) -> np.ndarray:
        return self.data[: self.n].copy()


def zeroed(shape: tuple[int, ...]) -> np.ndarray:
    """A zeroed uint8 array on its own anonymous memory map.

    Pages are only touched where written. Unlike ``np.zeros`` (which advises the kernel to back
    large arrays with huge pages), the map gets ordinary pages: the compaction the kernel does to
    find huge pages slowed the writes into the image store and the patch block. Measured
    (benchmarks/README.md): ResNet-18 over 1,024 images records 1.16x slower with ``np.zeros``
    here (median of 4 alternating pairs), so this trick stays; mapping the pages in at once
    (``MAP_POPULATE``) gained nothing (1.00x) and went.
    """
    import mmap

    n = int(np.prod(shape, dtype=np.int64))
    buf = mmap.mmap(-1, max(n, 1))  # MAP_SHARED | MAP_ANONYMOUS
    return np.frombuffer(buf, np.uint8, count=n).reshape(shape)
