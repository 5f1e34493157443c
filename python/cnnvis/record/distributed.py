"""Recording over the ranks of a ``torch.distributed`` process group.

Rank ``r`` of ``W`` takes the samples at positions ``r, r + W, r + 2W, ...`` (no
``DistributedSampler``, whose padding repeats samples), in batches of the one-process batch
size, so local position ``p`` is global position ``p * W + r`` and step ``t`` of every rank
together covers the contiguous global positions ``t * B * W ..``. That makes every merge exact
or within float error of the one-process pass:

* the pooled-sample reservoir is drawn over the global label sequence (the labels of each step
  are exchanged, a few bytes), so every rank holds the same reservoir and fills the rows of its
  own samples;
* the display range is the one of global samples ``0 .. B - 1`` (a min/max reduction);
* per-class sums are summed in float64 (the only inexact merge: the order of the additions);
* top-k candidates are gathered and merged by value, then global sample position, which is how
  one process breaks ties; the images or patches of the winners come from their ranks;
* labels, predictions and confidences are gathered into global order.

Every rank gets the merged :class:`~cnnvis.record.Recording` (the CLI saves it on rank 0). The
merges run on CPU tensors, through a gloo group made beside an NCCL one.
"""

from __future__ import annotations

import numpy as np

from cnnvis.record.inputs import RecordError
from cnnvis.record.recording import PatchSource


class Shard:
    """Which samples this process records: rank ``rank`` of ``world`` (one process: 0 of 1).

    Every method is a no-op or an identity for one process, so the recorder calls them always.
    """

    def __init__(self, rank: int = 0, world: int = 1, group=None, backend: str | None = None):
        self.rank, self.world, self.group, self.backend = rank, world, group, backend
        self.batch_size = 0  # the one-process batch size, set by the pass

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def global_positions(self, local: np.ndarray) -> np.ndarray:
        """Global positions of local ones (``-1`` stays ``-1``)."""
        local = np.asarray(local, dtype=np.int64)
        return np.where(local >= 0, local * self.world + self.rank, -1)

    def owned(self, positions: np.ndarray) -> np.ndarray:
        """Which global positions are this rank's samples."""
        return np.asarray(positions) % self.world == self.rank

    def local(self, positions: np.ndarray) -> np.ndarray:
        """Local positions of this rank's global ``positions``."""
        return np.asarray(positions, dtype=np.int64) // self.world

    # -- collectives on CPU tensors ----------------------------------------------------------------

    def _all_gather(self, values: np.ndarray) -> np.ndarray:
        """``(world, *values.shape)``: every rank's ``values`` (all of one shape)."""
        import torch
        import torch.distributed as dist

        t = torch.from_numpy(np.ascontiguousarray(values))
        out = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(out, t, group=self.group)
        return torch.stack(out).numpy()

    def _all_reduce(self, values: np.ndarray, op: str) -> np.ndarray:
        """``values`` reduced over the ranks (``"sum"``, ``"min"`` or ``"max"``), in place."""
        import torch
        import torch.distributed as dist

        if not self.distributed:
            return values
        ops = {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}
        t = torch.from_numpy(values)
        dist.all_reduce(t, op=ops[op], group=self.group)
        return values

    def sum(self, values: np.ndarray) -> np.ndarray:
        """``values`` summed over the ranks, in place."""
        return self._all_reduce(values, "sum")

    def total(self, value: int) -> int:
        return int(self._all_reduce(np.array([value], dtype=np.int64), "sum")[0])

    # -- during the pass -------------------------------------------------------------------------

    def draw_rows(self, reservoir, labels: np.ndarray, start: int) -> np.ndarray:
        """The reservoir rows of this rank's batch at local ``start`` (``-1``: not kept), drawn
        over the labels of every rank's batch of this step in global order, so all ranks keep
        the same reservoir as one process."""
        from cnnvis import _core

        b = self.batch_size
        mine = np.full(b + 1, -1, dtype=np.int64)
        mine[0], mine[1 : 1 + len(labels)] = len(labels), labels
        every = self._all_gather(mine)  # (world, 1 + b)
        present = np.arange(b)[:, None] < every[:, 0][None, :]  # (b, world): [j, r]
        in_order = every[:, 1:].T[present]  # global order: position (start + j) * world + r
        rows = _core.reservoir_offer(in_order, start * self.world, *reservoir.arrays())
        flat = np.cumsum(present.reshape(-1)) - 1  # [j, r] -> index in in_order
        return rows[flat[np.arange(len(labels)) * self.world + self.rank]]

    def display_range(self, x):
        """The per-channel display range of global samples ``0 .. B - 1`` (one process's first
        batch), from this rank's first batch ``x``."""
        import torch

        from cnnvis.record.images import channel_range, widened

        m = max(0, -(-(self.batch_size - self.rank) // self.world))  # local j: j*W + r < B
        lo = np.full(x.shape[1], np.inf, np.float32)
        hi = np.full(x.shape[1], -np.inf, np.float32)
        if m:
            lo, hi = (v.numpy().copy() for v in channel_range(x[:m]))
        lo, hi = self._all_reduce(lo, "min"), self._all_reduce(hi, "max")
        return widened(torch.from_numpy(lo), torch.from_numpy(hi))

    # -- at the end ------------------------------------------------------------------------------

    def column(self, values: np.ndarray, n_total: int) -> np.ndarray:
        """Every rank's per-sample ``values`` in global order (``n_total`` of them)."""
        if not self.distributed:
            return values
        n_max = -(-n_total // self.world)
        padded = np.zeros(n_max, dtype=values.dtype)
        padded[: len(values)] = values
        return self._all_gather(padded).T.reshape(-1)[:n_total].copy()

    def merge_rows(self, rows: np.ndarray, positions: np.ndarray, fill) -> np.ndarray:
        """Reservoir rows (by buffer row) whose global sample ``positions`` say which rank holds
        each: every rank fills its own, the rest are taken from their ranks (a max over ``fill``,
        a value below any other, so the bytes stay)."""
        if not self.distributed:
            return rows
        merged = np.ascontiguousarray(rows).copy()
        merged[~self.owned(positions)] = fill
        return self._all_reduce(merged, "max")

    def merge_top_k(self, states) -> list[tuple[np.ndarray, np.ndarray]]:
        """Merge every layer's top-k lists in place (global positions), as one process would have
        kept them: by value, ties to the earlier sample, empty entries last. Returns, per layer,
        ``(rank, entry)`` of where each merged entry came from."""
        sources = []
        for st in states:
            k = st.top_values.shape[1]
            samples = self.global_positions(st.top_samples)
            v, s, loc = (
                self._all_gather(a).transpose(1, 0, 2).reshape(a.shape[0], -1)
                for a in (st.top_values, samples, st.top_loc)
            )
            order = np.lexsort((s, -v, s < 0), axis=-1)[:, :k]  # last key first
            st.top_values[:] = np.take_along_axis(v, order, 1)
            st.top_samples[:] = np.take_along_axis(s, order, 1)
            st.top_loc[:] = np.take_along_axis(loc, order, 1)
            sources.append((order // k, order % k))
        return sources

    def merge_patches(self, states, cut, local_boxes, sources, image_hw):
        """The patches of the merged lists: a :class:`PatchSource` of the winners' images if
        every rank kept images, else ``{layer: patches}``; each winner's bytes from its rank."""
        if self._all_reduce(np.array([isinstance(cut, PatchSource)], np.int64), "min")[0]:
            samples = np.unique(np.concatenate([st.top_samples.reshape(-1) for st in states]))
            samples = samples[samples >= 0]
            mine = self.owned(samples)
            images = np.zeros((len(samples), *image_hw, cut.images.shape[3]), np.uint8)
            images[mine] = cut.images[cut.rows_of(self.local(samples[mine]))]
            return PatchSource(self._all_reduce(images, "max"), samples, cut.patch_size)
        if isinstance(cut, PatchSource):  # another rank cut its patches: cut ours too
            from cnnvis.record.recording import LayerPatches

            cut = {n: np.asarray(LayerPatches(cut, s, b)) for n, (s, b) in local_boxes.items()}
        out = {}
        for st, (rank, entry) in zip(states, sources):
            local = cut[st.name]
            merged = np.zeros_like(local)
            ch, j = np.nonzero(rank == self.rank)
            merged[ch, j] = local[ch, entry[ch, j]]
            out[st.name] = self._all_reduce(merged, "max")
        return out


def current_shard() -> Shard:
    """The shard of this process: its rank in the default process group where one is initialised
    with more than one process, else one process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return Shard()
    backend = str(dist.get_backend())
    # the merges are of CPU arrays: a gloo group beside an NCCL one (made by every rank)
    group = None if backend == "gloo" else dist.new_group(backend="gloo")
    return Shard(dist.get_rank(), dist.get_world_size(), group, backend)


def shard_loader(shard: Shard, dataset, batch_size: int, max_samples: int | None, make_loader):
    """This rank's DataLoader (``make_loader(dataset, batch_size)``) over samples
    ``rank, rank + W, ...`` of the first ``max_samples`` of ``dataset``, and the number of
    samples of all ranks."""
    from torch.utils.data import IterableDataset, Subset

    if isinstance(dataset, IterableDataset) or not hasattr(dataset, "__len__"):
        raise RecordError(
            "recording with several processes needs a data set with a length and indexing "
            "(each process takes every world-th sample), not an iterable data set"
        )
    n = len(dataset) if max_samples is None else min(len(dataset), max_samples)
    if n < shard.world:
        raise RecordError(
            f"{n} samples cannot be shared by {shard.world} processes: each needs at least one"
        )
    return make_loader(Subset(dataset, range(shard.rank, n, shard.world)), batch_size), n
