"""``record``: one streaming pass of a model over a data set into a :class:`Recording`."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from cnnvis.record.patches import cut_patches
from cnnvis.record.receptive import (
    ReceptiveField,
    analytic_receptive_fields,
    measure_receptive_fields,
)
from cnnvis.record.recording import LayerPatches, LayerRecord, PatchSource, Recording

__all__ = ["record", "snapshot_activations", "RecordError"]

THUMBNAIL_MAX = 64  # longest side of the pooled-sample thumbnails, in pixels


class RecordError(ValueError):
    """The model, the data or the options cannot be recorded (the message says why)."""


# -- small helpers ---------------------------------------------------------------------------------


def _model_device(model):
    import torch

    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _layer_op(module) -> str:
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)):
        return "norm"
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.ELU, nn.Hardswish,
                           nn.Sigmoid, nn.Tanh, nn.PReLU, nn.Mish, nn.Hardsigmoid)):  # fmt: skip
        return "act"
    if isinstance(module, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd,
                           nn.modules.pooling._AdaptiveAvgPoolNd,
                           nn.modules.pooling._AdaptiveMaxPoolNd)):  # fmt: skip
        return "pool"
    return type(module).__name__.lower()


def _is_weighted(module) -> bool:
    from torch import nn

    return isinstance(
        module,
        (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase),
    )


def _collect_weights(model) -> dict[str, dict[str, np.ndarray]]:
    """Parameters and floating-point buffers of conv, linear and batch-norm modules (float32)."""
    import torch

    out: dict[str, dict[str, np.ndarray]] = {}
    for name, module in model.named_modules():
        if not name or not _is_weighted(module):
            continue
        arrays: dict[str, np.ndarray] = {}
        tensors = list(module.named_parameters(recurse=False)) + list(
            module.named_buffers(recurse=False)
        )
        for pname, t in tensors:
            if t is None or not t.is_floating_point():
                continue
            # one copy, by torch: the recording must not change when the model trains on
            arrays[pname] = t.detach().to("cpu", torch.float32, copy=True).numpy()
        if arrays:
            out[name] = arrays
    return out


def _as_loader(data, batch_size: int):
    import torch
    from torch.utils.data import DataLoader, Dataset, TensorDataset

    if isinstance(data, DataLoader):
        return data
    if isinstance(data, tuple) and len(data) == 2:
        x, y = (torch.as_tensor(np.asarray(v)) if not torch.is_tensor(v) else v for v in data)
        data = TensorDataset(x, y)
    if isinstance(data, Dataset) or hasattr(data, "__getitem__"):
        return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    raise RecordError(
        f"data must be a torch Dataset, a DataLoader or a tuple (inputs, labels); got "
        f"{type(data).__name__}"
    )


def _class_names_of(data, loader) -> list[str] | None:
    from cnnvis.data import class_names_of

    for obj in (data, loader):
        names = class_names_of(obj)
        if names:
            return [str(n) for n in names]
    return None


def _split_batch(batch) -> tuple[Any, Any]:
    import torch

    if isinstance(batch, dict):
        for xk, yk in (("image", "label"), ("input", "target"), ("x", "y"), ("inputs", "labels")):
            if xk in batch and yk in batch:
                return batch[xk], batch[yk]
        raise RecordError(f"cannot find inputs and labels in a batch with keys {sorted(batch)}")
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise RecordError(
            "each batch must be (inputs, labels); the data yields "
            f"{type(batch).__name__} (labels are needed for class means and accuracy)"
        )
    if not torch.is_tensor(x):
        raise RecordError(f"inputs must be tensors, got {type(x).__name__}")
    y = torch.as_tensor(y)
    return x, y


def _pick_logits(out, logits: Callable | None):
    import torch

    if logits is not None:
        out = logits(out)
    if not torch.is_tensor(out):
        raise RecordError(
            f"the model returned a {type(out).__name__}, not a tensor of logits; pass "
            "logits=<callable> that picks the logits (e.g. logits=lambda out: out[0] or "
            "logits=lambda out: out['logits'])"
        )
    if out.dim() != 2:
        raise RecordError(
            f"the logits must have shape (batch, n_classes); got {tuple(out.shape)} "
            "(pass logits=<callable> to select or reshape them)"
        )
    return out


def _display_range(x) -> tuple[Any, Any]:
    """Per-channel (low, high) of the first batch, used to map all images to 0..255."""
    flat = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
    low = flat.min(dim=1).values
    high = flat.max(dim=1).values
    high = high.where(high > low, low + 1.0)
    return low.cpu(), high.cpu()


def _images_uint8(x, low, high, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Images ``index`` of a (B, C, h, w) batch as (n, h, w, C) uint8 in the per-channel display
    range (written into ``out`` if given): one C++ pass for a float32 CPU batch, the same
    arithmetic in torch otherwise."""
    import torch

    if x.device.type == "cpu" and x.dtype == torch.float32:
        from cnnvis import _core

        xs = x.contiguous().numpy()
        return _core.quantize_images(xs, low.numpy(), high.numpy(), index, out=out)
    y = x[torch.from_numpy(index).to(x.device)].float() - low.to(x.device).view(1, -1, 1, 1)
    y.div_((high - low).to(x.device).view(1, -1, 1, 1)).clamp_(0.0, 1.0).mul_(255.0).round_()
    images = y.to(dtype=torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()
    if out is None:
        return images
    out[...] = images
    return out


def _thumbnails(x, index: np.ndarray, size: tuple[int, int], low, high) -> np.ndarray:
    """Images ``index`` of a batch scaled down to ``size`` (antialiased), as uint8."""
    import torch

    small = torch.nn.functional.interpolate(
        x[torch.from_numpy(index).to(x.device)].float(), size=size, mode="bilinear",
        antialias=True, align_corners=False,
    )  # fmt: skip
    return _images_uint8(small, low, high, np.arange(len(index)))


def _thumbnail_size(height: int, width: int) -> tuple[int, int]:
    longest = max(height, width)
    if longest <= THUMBNAIL_MAX:
        return height, width
    s = THUMBNAIL_MAX / longest
    return max(1, round(height * s)), max(1, round(width * s))


@contextlib.contextmanager
def _hooks(model, names: Sequence[str], hook_factory) -> Iterator[None]:
    modules = dict(model.named_modules())
    handles = []
    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(hook_factory(name)))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _eval_mode(model) -> Iterator[None]:
    """Eval mode for the pass (with a warning if the model was training), restored afterwards."""
    modes = {m: m.training for m in model.modules()}
    if model.training:
        warnings.warn(
            "the model is in training mode; recording it in eval mode (batch norm uses its running "
            "statistics, dropout is off) and restoring training mode afterwards. Call "
            "model.eval() before record() to silence this warning.",
            UserWarning,
            stacklevel=4,
        )
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode


def _resolve_layers(model, layers, example, graph) -> list[str]:
    modules = dict(model.named_modules())
    if layers is None:
        from cnnvis.graph import default_layers

        chosen = list(default_layers(graph))
        if not chosen:
            raise RecordError("the model has no conv or linear layers to record; pass layers=")
        return chosen
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise RecordError("layers is empty; pass None for the default layers")
    unknown = [n for n in layers if n not in modules or n == ""]
    if unknown:
        known = [n for n in modules if n]
        raise RecordError(
            f"unknown layer name(s) {unknown}; the model's modules are: {', '.join(known)}"
        )
    if len(set(layers)) != len(layers):
        raise RecordError(f"layers has duplicates: {layers}")
    return layers


def _op_from_graph(graph, name: str, module) -> str:
    for _node, attrs in graph.nodes(data=True):
        if attrs.get("module") == name and attrs.get("op"):
            return str(attrs["op"])
    return _layer_op(module)


class _Reservoir:
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


class _LayerState:
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


# outputs are reduced after the forward pass only where all of a batch's recorded outputs take
# at most this many bytes: holding larger ones past their last use raised the peak memory of a
# ResNet-18 recording by 50 MB (the allocator then grows its heap), for no gain in speed
DEFER_BYTES = 8 << 20


def _torch_stats(out) -> tuple:
    """(mean, max, argmax) over the spatial axes, with torch: other devices and dtypes."""
    import torch

    b, c = int(out.shape[0]), int(out.shape[1])
    flat = out.detach().reshape(b, c, -1).float()
    mx, arg = flat.max(dim=2)
    return tuple(
        np.ascontiguousarray(a.to("cpu", dt).numpy())
        for a, dt in ((flat.mean(dim=2), torch.float32), (mx, torch.float32), (arg, torch.int64))
    )


def _check_calls(name: str, calls: int) -> None:
    """A recorded layer must run once per forward pass: a reused module has no single output."""
    if calls != 1:
        raise RecordError(
            f"layer {name!r} ran {calls} times in one forward pass; record a module that is "
            "called exactly once (a shared module such as a reused ReLU has no single output)"
        )


class _Reduction:
    """How one layer's output is reduced on every batch after the first, which checked it.

    The first batch checks each output (a tensor of 2 to 4 dimensions, on which device, of
    which dtype) and watches its version counter: an output that no later op changes in place
    can wait until the forward pass is over, and the outputs that wait are reduced in one sweep
    (``deferred``). Reducing between the model's ops costs more: for the demo CNN 8 against
    5.5 ms a pass, as it evicts what the next op works on. The others (changed in place, or
    all of them when a batch's recorded outputs take more than ``DEFER_BYTES``) are reduced in
    the hook, before any later op runs. The hooks then do no checks at all.
    """

    __slots__ = ("fold", "index", "native", "deferred", "calls", "out", "version")

    def __init__(self, fold, index: int, native: bool, deferred: bool) -> None:
        self.fold = fold  # the _core.Fold the summaries go to, as its layer ``index``
        self.index = index
        self.native = native  # float32 on the CPU: summarised by the C++ fold itself
        self.deferred = deferred
        self.calls = 0
        self.out = None  # the output waiting for the sweep, and its version counter then
        self.version = 0

    def reduce(self, out) -> None:
        """Summarise the output of one batch into the fold."""
        if self.native:
            self.fold.stats(self.index, out.detach().contiguous().numpy())
        else:
            self.fold.set_stats(self.index, *_torch_stats(out))

    def release(self):
        """The output that waited, as an array for the fold to summarise (float32 on the CPU),
        or None once summarised here (or in the hook)."""
        out, self.out = self.out, None
        if out is None:  # reduced in the hook
            return None
        if self.native:
            return out.detach().contiguous().numpy()
        self.reduce(out)  # the torch path
        return None


class _Patches:
    """Receptive-field patches of all top-k entries, cut lazily from a bounded image store.

    While the images seen so far fit in the budget, the store simply holds all of them (uint8,
    display range), row = sample position (*direct*): one copy per batch and no bookkeeping. The
    first batch that does not fit ends that: the pending patches are cut from it and from then
    on only the image of a new top-k entry (a *pending* entry) is copied, into a slot of the
    store, whose slots are reused, so caching makes no allocations and the store never grows
    past its budget plus one batch. Pending patches are then cut in bulk (:meth:`flush`) when
    more images are stored than the budget holds and at the end; cutting deduplicates
    (sample, box) pairs across layers, gathers the boxes of one size together and resizes them
    on uint8. Memory: the patch block (``S * k * P^2 * c`` bytes, the result itself) plus the
    store (at most ``budget`` bytes + one batch of images).
    """

    def __init__(self, states, patch_size: int, image_shape, budget: int | None) -> None:
        self.states = states
        self.p = patch_size
        self.c, self.h, self.w = (int(v) for v in image_shape)
        total = 0
        for st in states:
            st.offset = total
            total += st.n_channels * st.top_slot.shape[1]
        self.total = total
        self.block: np.ndarray | None = None  # (total, P, P, c), made by the first flush
        self.pending = np.zeros(total, dtype=np.uint8)  # by slot row: 1 while still to cut
        patch_bytes = total * patch_size * patch_size * self.c
        self.budget = max(32 << 20, patch_bytes // 4) if budget is None else int(budget)
        self.budget_images = self.budget // (self.c * self.h * self.w)
        self.image_store: np.ndarray | None = None  # (capacity, H, W, c) uint8
        self.direct = True  # the store holds every image so far, by sample position
        self.slot_of: dict[int, int] = {}  # sample position -> store slot (once not direct)
        self.free: list[int] = []  # released slots below ``fresh``
        self.fresh = 0  # slots from here on were never used since the last flush
        self.flushes = 0

    def _rows(self, st) -> np.ndarray:
        k = st.top_slot.shape[1]
        base = st.offset + np.arange(st.n_channels)[:, None] * k
        return base + st.top_slot  # (C, k) slot rows, in top-k order

    def _slots(self, n: int) -> list[int]:
        """n free store slots: released ones first, then never used ones (``fresh`` onwards).

        The store is allocated (or grown) to the budget plus this batch; its pages are only
        touched as slots are first used.
        """
        reuse = [self.free.pop() for _ in range(min(n, len(self.free)))]
        more = n - len(reuse)
        cap = 0 if self.image_store is None else self.image_store.shape[0]
        if self.fresh + more > cap:
            old = self.image_store
            cap = max(self.budget_images + n, self.fresh + more)
            self.image_store = _zeroed((cap, self.h, self.w, self.c))
            if old is not None:
                self.image_store[: self.fresh] = old[: self.fresh]
        self.fresh += more
        return reuse + list(range(self.fresh - more, self.fresh))

    def _store_rows(self, samples: np.ndarray) -> np.ndarray:
        """The store slot of each sample's image."""
        if self.direct:
            return samples
        return np.fromiter((self.slot_of[v] for v in samples.tolist()), np.int64, len(samples))

    def fits(self, end: int) -> bool:
        """Whether the direct store has room for the images of samples 0..end-1."""
        return end <= self.budget_images

    def direct_rows(self, start: int, n: int) -> np.ndarray:
        """Rows start .. start + n - 1 of the direct store, for a batch's uint8 (n, H, W, c)
        images to be written into."""
        if self.image_store is None:  # pages are only touched as rows are written
            self.image_store = _zeroed((self.budget_images, self.h, self.w, self.c))
        return self.image_store[start : start + n]

    def kept_images(self, samples: np.ndarray) -> np.ndarray:
        """The images of samples (positions) from the direct store."""
        return self.image_store[samples]

    def end_direct(self) -> None:
        """Cut the pending patches from the images kept so far; from now on only the images of
        new top-k entries are stored (:meth:`store`)."""
        if self.image_store is None:  # nothing kept, nothing pending
            self.direct = False
        else:
            self.flush()

    def pending_of(self, st) -> np.ndarray:
        """The layer's pending flags, (C, k) by slot: a view the C++ fold writes into."""
        k = st.top_slot.shape[1]
        return self.pending[st.offset : st.offset + st.n_channels * k].reshape(-1, k)

    def store(self, start: int, idx: np.ndarray, images) -> None:
        """Keep the uint8 (n, H, W, c) ``images`` (numpy) of batch positions ``idx`` until cut."""
        slots = self._slots(int(idx.size))
        self.image_store[np.asarray(slots)] = images
        self.slot_of.update(zip((idx + start).tolist(), slots))
        if len(self.slot_of) > self.budget_images:
            self._collect()
            if len(self.slot_of) > self.budget_images // 2:
                self.flush()

    def _collect(self) -> None:
        """Free the store slots of images that no pending entry needs any more."""
        keep = set()
        for st in self.states:
            pend = self.pending[self._rows(st)].astype(bool)
            keep.update(st.top_samples[pend].tolist())
        for smp in [smp for smp in self.slot_of if smp not in keep]:
            self.free.append(self.slot_of.pop(smp))

    def flush(self, ranked: bool = False) -> None:
        """Cut the patches of all pending entries and free the image cache.

        They go to their slots in the patch block, or (``ranked``: at the end of a pass that
        never flushed before) straight to their rows in top-k order, so the block is the result.
        """
        if self.block is None:
            # every row of the block is written (it is the result): map its pages in at once
            self.block = _zeroed((self.total, self.p, self.p, self.c), populate=True)
        image_rows, boxes, targets = [], [], []
        for st in self.states:
            rows = self._rows(st)
            samples = st.top_samples
            pend = self.pending[rows].astype(bool) & (samples >= 0)
            if not pend.any():
                continue
            image_rows.append(self._store_rows(samples[pend]))
            boxes.append(st.rf.boxes(st.top_loc[pend]))
            if not ranked:
                targets.append(rows[pend])
            else:
                in_order = st.offset + np.arange(rows.size, dtype=np.int64).reshape(rows.shape)
                targets.append(in_order[pend])
        self.pending[:] = 0
        if image_rows:
            cut_patches(
                self.image_store, np.concatenate(image_rows), np.concatenate(boxes), self.p,
                out=self.block, out_rows=np.concatenate(targets),
            )  # fmt: skip
        self.slot_of = {}
        self.free = []
        self.fresh = 0
        self.flushes += 1
        self.direct = False

    def result(self) -> dict[str, np.ndarray] | PatchSource:
        """The patches: ``{layer: (C, k, P, P, c) uint8}`` in top-k order (zeros where no
        sample), or, when nothing was cut during the pass and the images the lists refer to take
        no more bytes than their patches would, those images as a :class:`PatchSource` to cut
        them from on demand (a short pass then cuts nothing and keeps less).

        The patch block becomes the result (each layer's array is a view of its rows): cut in
        top-k order at once if nothing was cut before, else cut into the slots and put in
        top-k order in place, one layer at a time (one layer's patches of extra memory).
        """
        if self.flushes == 0:
            samples = np.unique(np.concatenate([st.top_samples.reshape(-1) for st in self.states]))
            samples = samples[samples >= 0]
            if len(samples) * self.h * self.w <= self.total * self.p * self.p:
                source = PatchSource(self.image_store[self._store_rows(samples)], samples, self.p)
                self.image_store = None
                return source
            self.flush(ranked=True)
        else:
            self.flush()
            for st in self.states:
                rows = self._rows(st).reshape(-1)
                seg = self.block[st.offset : st.offset + rows.size]
                seg[:] = self.block[rows]  # the right side is a copy: no overlap problem
                seg[st.top_samples.reshape(-1) < 0] = 0
        out = {}
        for st in self.states:
            n = st.n_channels * st.top_slot.shape[1]
            out[st.name] = self.block[st.offset : st.offset + n].reshape(
                st.n_channels, -1, self.p, self.p, self.c
            )
        self.block = None
        self.image_store = None
        return out


class _Column:
    """A growing 1-D array of per-sample values, kept on anonymous memory maps.

    Keeping each batch's small arrays alive for the whole pass scattered long-lived blocks
    through the malloc heap between the forward pass's large temporaries; the heap then grew
    with the number of samples (free but unreturnable memory: +300 MB over 16,000 ResNet-18
    samples). Here the values live outside the heap and grow by doubling.
    """

    def __init__(self, dtype) -> None:
        self.dtype = np.dtype(dtype)
        self.data = _zeroed((4096 * self.dtype.itemsize,)).view(self.dtype)
        self.n = 0

    def extend(self, n: int) -> np.ndarray:
        """The next n values, to be written by the caller."""
        m = self.n + n
        if m > len(self.data):
            grown = _zeroed((2 * m * self.dtype.itemsize,)).view(self.dtype)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.n = m
        return self.data[m - n : m]

    def values(self) -> np.ndarray:
        return self.data[: self.n].copy()


def _zeroed(shape: tuple[int, ...], populate: bool = False) -> np.ndarray:
    """A zeroed uint8 array on its own anonymous memory map.

    Pages are only touched where written. Unlike ``np.zeros`` (which advises the kernel to back
    large arrays with huge pages), the map gets ordinary pages: on a long-running process the
    compaction the kernel does to find huge pages made the first writes into the patch block 4x
    slower than the copy itself (0.39 s against 0.10 s for 133 MB here). ``populate`` maps all
    pages in when the map is made (``MAP_POPULATE``), for an array that will be written in full:
    one call instead of a page fault per 4 KiB.
    """
    import mmap

    n = int(np.prod(shape, dtype=np.int64))
    flags = mmap.MAP_SHARED | mmap.MAP_ANONYMOUS  # the default of mmap(-1, n)
    if populate:
        flags |= getattr(mmap, "MAP_POPULATE", 0)
    buf = mmap.mmap(-1, max(n, 1), flags=flags)
    return np.frombuffer(buf, np.uint8, count=n).reshape(shape)


# -- the public function -----------------------------------------------------------------------------


def record(
    model,
    data,
    *,
    layers: Sequence[str] | str | None = None,
    max_samples: int | None = None,
    top_k: int = 9,
    batch_size: int = 64,
    device=None,
    progress: bool = True,
    max_pooled: int = 2000,
    patch_size: int = 32,
    class_names: Sequence[str] | None = None,
    logits: Callable[[Any], Any] | None = None,
    model_name: str | None = None,
    seed: int = 0,
    patch_budget: int | None = None,
) -> Recording:
    """Run ``model`` once over ``data`` and keep per-channel summaries of the chosen layers.

    For every channel (neuron) of every chosen layer the pass keeps: the mean of its spatially
    averaged activation per class; the spatially averaged activations of a bounded,
    class-stratified sample of inputs; its ``top_k`` inputs by spatial maximum, with the location
    of the maximum, the receptive-field box of that location in input pixels and the crop of that
    box resized to ``patch_size``; for every sample, the label, the prediction and its softmax
    confidence; the weights of conv, linear and batch-norm modules; and the model's DAG.

    Parameters
    ----------
    model : torch.nn.Module
        Any module mapping a batch ``(N, C, H, W)`` to logits ``(N, n_classes)`` (or to something
        ``logits`` picks them from). It is never moved: inputs go to the device of its parameters.
        A model in training mode is recorded in eval mode (with a warning) and put back in
        training mode afterwards; its parameters and buffers are not changed.
    data : Dataset, DataLoader or tuple (inputs, labels)
        Yields ``(inputs, labels)`` batches (tuples, lists, or dicts with ``image``/``label``
        keys). A ``Dataset`` is read in order with ``batch_size``.
    layers : list of str, optional
        Dotted module paths to record. Default: :func:`cnnvis.graph.default_layers` of the
        model's graph (the conv and linear layers).
    max_samples : int, optional
        Stop after this many samples.
    top_k : int
        How many top-activating samples to keep per channel.
    batch_size : int
        Batch size when ``data`` is a ``Dataset``.
    device : torch.device or str, optional
        Must match the model's device if given (the model is never moved).
    progress : bool
        Show a progress bar (tqdm) over the batches.
    max_pooled : int
        Most samples kept for pooled activation vectors: reservoir samples of
        ``max_pooled // n_classes`` (+1 for the first ``max_pooled % n_classes`` classes) per
        class, drawn with ``seed``, ordered by sample position.
    patch_size : int
        Side of the receptive-field crops, in pixels.
    class_names : list of str, optional
        Names of the classes; default: ``data.classes`` if present, else ``"0"``, ``"1"``, ...
        Its length must equal the number of logits.
    logits : callable, optional
        Picks the logits out of the model's output (for models returning tuples or dicts).
    model_name : str, optional
        Name stored in the recording; default: the model's class name.
    seed : int
        Seed of the pooled-sample reservoirs and of the receptive-field probe.
    patch_budget : int, optional
        Bytes of input images kept until the patches of new top-k entries are cut (in bulk, when
        the budget is exceeded and at the end): every image while all of them fit, then only
        those of new top-k entries. Default: a quarter of the size of the patches
        themselves, at least 32 MiB. A pass that never exceeds it and ends with the images of
        its top-k entries taking no more bytes than their patches keeps those images instead:
        each layer's ``top_patches`` is then a :class:`~cnnvis.record.recording.LayerPatches`
        that cuts the patches when read (same bytes), and a session saves the images.

    Returns
    -------
    Recording

    Raises
    ------
    RecordError
        (a ``ValueError``) for an empty data set, a forward pass that fails on the data's shape,
        labels out of range, non-finite activations (naming the first such layer), an unknown
        layer name (listing the known ones), logits of the wrong shape, or bad options.

    Notes
    -----
    Memory is bounded independently of the number of samples N, apart from 20 bytes per sample
    for labels, predictions and confidences (kept in arrays that grow by doubling, so at most
    40 bytes per sample, outside the malloc heap). With layers of C_l channels (S = sum of C_l),
    K classes, k = ``top_k``, P = ``patch_size``, B = batch size and input images of c x H x W,
    the pass holds: one batch of activations (the model's own forward; recorded outputs of at
    most 8 MiB in all are kept until the end of the forward pass); ``S * (8 K + 28 k)``
    bytes of running class sums and top-k entries; ``16 B S`` bytes of per-batch spatial
    summaries (mean, max, location); ``4 * max_pooled * S`` bytes of pooled
    vectors plus ``max_pooled`` thumbnails (longest side at most 64 pixels); a store of uint8
    copies of input images (all of them while they fit in ``patch_budget``, then those of
    top-k entries whose patches are not cut yet), with room for ``patch_budget`` bytes plus
    one batch, reused; the result's ``S * k * P^2 * c``
    bytes of patches (or, if fewer, the bytes of the images they are cut from); and a float32
    copy of the weights. Nothing else is kept from one batch to the next. Measured
    (``benchmarks/record.py``): the peak resident memory of a ResNet-18 recording is the same at
    8,000 and at 16,000 samples, and lower at 2,000 (whose patches are kept as images).

    Hooked outputs are reduced to their spatial mean, spatial max and its location; the full
    feature maps are never stored. An output that a later op changes in place (a following
    in-place ReLU) is reduced inside the hook, before the next module runs. When a batch's
    recorded outputs take at most 8 MiB in all, the others are reduced after the forward pass
    (their version counters prove them unchanged; a batch that changes one after all is run
    again with it reduced in the hook). Receptive fields come from the conv and pool arithmetic
    along the model's graph (branches take the union; a global gate such as squeeze-excitation
    adds no spatial extent); layers behind ops that arithmetic does not know (functional convs or
    pools, padding, interpolation) are measured instead with input gradients of a random probe. See
    :mod:`cnnvis.record.receptive`; ``meta["receptive_fields"]`` says which method each layer got.
    """
    import torch

    if not isinstance(top_k, int) or top_k < 1 or top_k > 1000:
        raise RecordError(f"top_k must be an integer in 1..1000, got {top_k!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise RecordError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(max_pooled, int) or max_pooled < 0:
        raise RecordError(f"max_pooled must be a non-negative integer, got {max_pooled!r}")
    if not isinstance(patch_size, int) or not 1 <= patch_size <= 512:
        raise RecordError(f"patch_size must be an integer in 1..512, got {patch_size!r}")
    if max_samples is not None and (not isinstance(max_samples, int) or max_samples < 1):
        raise RecordError(f"max_samples must be a positive integer or None, got {max_samples!r}")
    if not isinstance(model, torch.nn.Module):
        raise RecordError(f"model must be a torch.nn.Module, got {type(model).__name__}")

    model_device = _model_device(model)
    if device is not None:
        want = torch.device(device)
        if want.type != model_device.type or want.index not in (None, model_device.index):
            raise RecordError(
                f"device={device!s} but the model is on {model_device}; record() never moves the "
                "model: move it yourself or leave device=None"
            )
    device = model_device

    loader = _as_loader(data, batch_size)
    names_known = list(class_names) if class_names is not None else _class_names_of(data, loader)

    batches = iter(loader)
    try:
        first = next(batches)
    except StopIteration:
        raise RecordError("the data set is empty: nothing to record") from None
    x0, _ = _split_batch(first)
    if x0.dim() != 4 or x0.shape[0] == 0:
        raise RecordError(
            f"record() expects image batches of shape (N, C, H, W); got {tuple(x0.shape)}"
        )
    if not x0.is_floating_point():
        raise RecordError(f"inputs must be floating point tensors, got dtype {x0.dtype}")
    input_shape = tuple(int(s) for s in x0.shape[1:])

    try:
        total = len(loader.dataset) if hasattr(loader, "dataset") else None
    except TypeError:
        total = None
    if max_samples is not None and total is not None:
        total = min(total, max_samples)

    with _eval_mode(model):
        example = x0[:1].to(device)
        from cnnvis.graph import model_graph

        try:  # a forward that fails on the example input surfaces here as a ValueError
            graph = model_graph(model, example)
        except ValueError as e:
            cause = e.__cause__ if e.__cause__ is not None else e
            raise RecordError(
                f"the model's forward pass fails on inputs of shape {tuple(example.shape)} "
                f"(batch, channels, height, width): {type(cause).__name__}: {cause}"
            ) from e
        chosen = _resolve_layers(model, layers, example, graph)
        modules = dict(model.named_modules())

        from cnnvis import _core

        # the first batch's summaries from the hooks: name -> (mean, max, argmax, spatial shape)
        current: dict[str, tuple] = {}
        calls: dict[str, int] = {}  # first batch only; later batches count in their plans
        # first batch: the outputs that may be reduced after the forward pass from the next
        # batch on, with their version counters at the hook, and the bytes of all outputs
        first_outputs: dict[str, tuple] = {}
        first_bytes = 0
        native: dict[str, bool] = {}  # float32 on the CPU: reduced by the C++ pass
        plans: dict[str, _Reduction] = {}  # made after the first batch
        plan_list: list[_Reduction] = []  # the same, in execution order
        paused = False  # set while the receptive-field probe runs the model

        def make_hook(name):
            def hook(_module, _inputs, out):
                nonlocal first_bytes
                plan = plans.get(name)
                if plan is not None:  # the first batch checked this layer's output
                    plan.calls += 1
                    if plan.deferred:
                        plan.out, plan.version = out, out._version
                    else:
                        plan.reduce(out)
                    return
                if paused:
                    return
                calls[name] = calls.get(name, 0) + 1
                if not torch.is_tensor(out):
                    raise RecordError(
                        f"layer {name!r} returns a {type(out).__name__}, not a tensor; record a "
                        "module that returns a tensor"
                    )
                if out.dim() not in (2, 3, 4):
                    raise RecordError(
                        f"layer {name!r} has output shape {tuple(out.shape)}; record() handles "
                        "(N, C), (N, C, L) and (N, C, H, W) outputs"
                    )
                size = out.numel() * out.element_size()
                try:  # inference tensors have no version counter: never deferred
                    version = out._version
                except RuntimeError:
                    version = None
                first_bytes += size
                if version is not None and first_bytes <= DEFER_BYTES:
                    first_outputs[name] = (out, version)  # a candidate for deferring
                spatial = (int(out.shape[2]), int(out.shape[3])) if out.dim() == 4 else None
                b, c = int(out.shape[0]), int(out.shape[1])
                native[name] = (out.device.type == "cpu" and out.dtype == torch.float32
                                and out[0, 0].numel() > 0)  # fmt: skip
                if native[name]:
                    # one C++ pass over the output for the mean, the max and its location (a
                    # copy only for an output that is not contiguous)
                    values = out.detach().contiguous().numpy().reshape(b, c, -1)
                    current[name] = (*_core.spatial_stats(values), spatial)
                    return
                current[name] = (*_torch_stats(out), spatial)

            return hook

        n_classes = None
        states: dict[str, _LayerState] = {}
        order: list[str] = []
        labels_all = _Column(np.int64)
        preds_all = _Column(np.int64)
        conf_all = _Column(np.float32)
        reservoir: _Reservoir | None = None
        patches: _Patches | None = None
        low = high = None
        thumbs = None
        thumb_hw = _thumbnail_size(input_shape[1], input_shape[2])
        full = thumb_hw == tuple(input_shape[1:])  # thumbnails are the images themselves
        start = 0

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, unit="img", desc="record", leave=False)

        def run(x):
            current.clear()
            for plan in plan_list:
                plan.calls = 0
            try:
                return model(x)
            except RecordError:
                raise
            except Exception as e:
                raise RecordError(
                    f"the model's forward pass fails on a batch of shape "
                    f"{tuple(x.shape)}: {type(e).__name__}: {e}"
                ) from e

        def forward(x):
            """The model's output on x and, per layer, the output waiting to be summarised by the
            fold or None; the other summaries of x are then in ``current`` (first batch) or in
            the fold (later batches)."""
            out = run(x)
            if not plans:
                return out, None
            changed = False
            for n, p in zip(order, plan_list):
                _check_calls(n, p.calls)
                if p.deferred and p.out._version != p.version:
                    # a later op changed the output in place after all: the batch runs again,
                    # with this layer reduced in the hook
                    p.deferred, p.out, changed = False, None, True
            if changed:
                return forward(x)
            return out, [p.release() for p in plan_list]

        def all_batches():
            yield first
            yield from batches

        try:
            with _hooks(model, chosen, make_hook), torch.no_grad():
                for batch in all_batches():
                    x, y = _split_batch(batch)
                    if max_samples is not None:
                        if start >= max_samples:
                            break
                        x, y = x[: max_samples - start], y[: max_samples - start]
                    b = int(x.shape[0])
                    if b == 0:
                        continue
                    if tuple(x.shape[1:]) != input_shape:
                        raise RecordError(
                            f"inputs change shape from {input_shape} to {tuple(x.shape[1:])} at "
                            f"sample {start}; all inputs must have one shape"
                        )
                    if y.dim() != 1 or y.shape[0] != b:
                        raise RecordError(
                            f"labels must have shape (batch,), got {tuple(y.shape)} for a batch "
                            f"of {b}"
                        )
                    if y.is_floating_point() or y.dtype == torch.bool:
                        raise RecordError(f"labels must be integers, got dtype {y.dtype}")
                    x = x.to(device)
                    out, outputs = forward(x)
                    z = _pick_logits(out, logits)
                    if n_classes is None:
                        n_out = int(z.shape[1])
                        if names_known is None:
                            names_known = [str(i) for i in range(n_out)]
                        if len(names_known) != n_out:
                            raise RecordError(
                                f"the model has {n_out} outputs but there are "
                                f"{len(names_known)} class names"
                            )
                        n_classes = n_out
                        reservoir = _Reservoir(max_pooled, n_classes, seed)
                        missing = [n for n in chosen if n not in current]
                        if missing:
                            raise RecordError(
                                f"layer(s) {missing} did not run during the forward pass"
                            )
                        order = sorted(chosen, key=lambda n: list(current).index(n))
                        low, high = _display_range(x)
                        spatial = {n: current[n][3] for n in order if current[n][3] is not None}
                        h_in, w_in = input_shape[1], input_shape[2]
                        rfs = analytic_receptive_fields(model, graph, order, h_in, w_in, spatial)
                        rf_method = {n: "analytic" for n in order if rfs[n] is not None}
                        unknown_rf = [n for n in order if rfs[n] is None]
                        if unknown_rf:
                            paused = True
                            try:
                                rfs.update(
                                    measure_receptive_fields(
                                        model, unknown_rf, x[0], spatial, seed=seed
                                    )
                                )
                            finally:
                                paused = False
                            rf_method.update({n: "gradient" for n in unknown_rf})
                        c_in = input_shape[0]
                        for n in order:
                            st = _LayerState(
                                n, int(current[n][0].shape[1]), n_classes, top_k, max_pooled
                            )
                            st.rf = rfs[n]
                            st.spatial = current[n][3]
                            states[n] = st
                        thumbs = np.zeros((max_pooled, *thumb_hw, c_in), dtype=np.uint8)
                        patches = _Patches([states[n] for n in order], patch_size,
                                           input_shape, patch_budget)  # fmt: skip
                        # the arrays the C++ fold updates, and the first batch's summaries
                        fold = _core.Fold([
                            (st.top_values, st.top_samples, st.top_loc, st.top_slot,
                             st.class_sums, st.pooled, patches.pending_of(st))
                            for st in (states[n] for n in order)
                        ], reservoir.arrays(), display_range=(low.numpy(), high.numpy()))  # fmt: skip
                        for i, n in enumerate(order):
                            fold.set_stats(i, *current[n][:3])
                        outputs = [None] * len(order)
                        for n in order:
                            _check_calls(n, calls.get(n, 0))
                        for i, n in enumerate(order):
                            # unchanged since its hook: nothing later changes it in place
                            o, version = first_outputs.get(n, (None, None))
                            deferred = (first_bytes <= DEFER_BYTES and o is not None
                                        and o._version == version)  # fmt: skip
                            plans[n] = _Reduction(fold, i, native[n], deferred)
                        plan_list.extend(plans[n] for n in order)
                        first_outputs.clear()
                        current.clear()
                    if y.dtype != torch.int64 or y.device.type != "cpu":
                        y = y.to("cpu", torch.int64)
                    labels_np = y.contiguous().numpy()
                    if patches.direct and not patches.fits(start + b):
                        # the store stops holding every image: it gives the thumbnails so far
                        # and the pending patches now, before this batch adds to either
                        if full and start:
                            rows_k, pos_k = reservoir.kept()
                            thumbs[rows_k] = patches.kept_images(pos_k)
                        patches.end_direct()
                    # one C++ call: the labels' check, the reservoir per class (Algorithm R,
                    # deterministic in the sample order: slot_rows), the summaries of the outputs
                    # that waited, for all layers the class sums, reservoir rows, top-k lists and
                    # the pending patches of new entries (need: the samples whose image is
                    # needed), the predictions and their softmax probabilities, and the images
                    # of a float32 CPU batch while the store holds every image
                    need_flags = np.zeros(b, dtype=np.uint8)
                    slot_rows = np.empty(b, dtype=np.int64)
                    zc = z.detach().to("cpu", torch.float32).contiguous().numpy()
                    quantized = (
                        patches.direct and x.device.type == "cpu" and x.dtype == torch.float32
                    )
                    images, image_rows = (
                        (x.contiguous().numpy(), patches.direct_rows(start, b)) if quantized
                        else (None, None)
                    )  # fmt: skip
                    try:
                        bad = fold.fold(start, labels_np, outputs, need_flags, slot_rows, zc,
                                        preds_all.extend(b), conf_all.extend(b), images,
                                        image_rows)  # fmt: skip
                    except ValueError as e:
                        if str(e).startswith("label "):
                            raise RecordError(f"{e} ({n_classes} classes)") from None
                        raise
                    if bad == len(order):
                        raise RecordError(
                            f"the model's logits contain NaN or inf (batch starting at sample "
                            f"{start})"
                        )
                    if bad >= 0:  # in execution order: the first bad layer is named
                        raise RecordError(
                            f"layer {order[bad]!r} produced NaN or inf activations (batch "
                            f"starting at sample {start}); check the inputs and the model's weights"
                        )
                    labels_all.extend(b)[:] = labels_np
                    # images: all of them while the store holds them (thumbnails and patches
                    # come from it at the end), else the thumbnails of the reservoir's new
                    # samples and the images of the new top-k entries; full-size thumbnails are
                    # the same images, converted once
                    take = None if patches.direct and full else np.flatnonzero(slot_rows >= 0)
                    if patches.direct:
                        if not quantized:
                            _images_uint8(
                                x, low, high, np.arange(b), out=patches.direct_rows(start, b)
                            )
                        if take is not None and take.size:
                            thumbs[slot_rows[take]] = _thumbnails(x, take, thumb_hw, low, high)
                    else:
                        need = np.flatnonzero(need_flags)
                        if full and take.size:
                            need_flags[take] = 1
                        conv = np.flatnonzero(need_flags)  # sorted batch positions to convert
                        at = np.cumsum(need_flags, dtype=np.int64) - 1  # position -> row of u8
                        u8 = _images_uint8(x, low, high, conv) if conv.size else None
                        if take.size:
                            thumbs[slot_rows[take]] = (
                                u8[at[take]] if full
                                else _thumbnails(x, take, thumb_hw, low, high)
                            )  # fmt: skip
                        if need.size:
                            patches.store(start, need, u8[at[need]])
                    start += b
                    if bar is not None:
                        bar.update(b)
                    if max_samples is not None and start >= max_samples:
                        break
        finally:
            if bar is not None:
                bar.close()

        if start == 0:
            raise RecordError("the data set is empty: nothing to record")

    labels = labels_all.values()
    predictions = preds_all.values()
    confidences = conf_all.values()
    counts = np.bincount(labels, minlength=n_classes)

    rows_a, pos_a = reservoir.kept()
    pooled_images = patches.kept_images(pos_a) if patches.direct and full else thumbs[rows_a]

    all_patches = patches.result()
    n_flushes = patches.flushes
    layer_records: dict[str, LayerRecord] = {}
    rf_meta = {}
    for n in order:
        st = states[n]
        k = top_k
        means = st.class_sums / np.maximum(counts, 1)[:, None]
        values = st.top_values.copy()
        samples = st.top_samples
        empty = samples < 0
        values[empty] = np.nan
        boxes = st.rf.boxes(st.top_loc.reshape(-1)).reshape(st.n_channels, k, 4)
        boxes[empty] = 0
        top_boxes = boxes.astype(np.int32)
        if isinstance(all_patches, PatchSource):
            patches = LayerPatches(all_patches, samples, top_boxes)
        else:
            patches = all_patches[n]
        layer_records[n] = LayerRecord(
            name=n,
            op=_op_from_graph(graph, n, modules[n]),
            class_means=np.ascontiguousarray(means.T, dtype=np.float32),
            pooled=st.pooled[rows_a],
            top_values=values,
            top_samples=samples.astype(np.int64),
            top_boxes=top_boxes,
            top_patches=patches,
        )
        rf_meta[n] = {**st.rf.to_json(), "method": rf_method[n]}

    meta = {
        "n_samples_seen": int(start),
        "top_k": int(top_k),
        "patch_size": int(patch_size),
        "max_pooled": int(max_pooled),
        "seed": int(seed),
        "display_range": {
            "low": [float(v) for v in low.cpu()],
            "high": [float(v) for v in high.cpu()],
        },
        "receptive_fields": rf_meta,
        "patch_flushes": int(n_flushes),
        "device": str(device),
    }
    weights = _collect_weights(model)
    return Recording(
        model_name=model_name or type(model).__name__,
        class_names=list(names_known),
        input_shape=input_shape,
        labels=labels.astype(np.int64),
        predictions=predictions.astype(np.int64),
        confidences=confidences,
        pooled_index=pos_a,
        pooled_images=pooled_images,
        layers=layer_records,
        weights=weights,
        graph=graph,
        snapshots=[],
        meta=meta,
    )


def snapshot_activations(
    model,
    data,
    layers: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    batch_size: int = 64,
    logits: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Spatially averaged activations of ``layers`` for the samples ``indices``, and predictions.

    Runs ``model`` over all of ``data`` (in order, in eval mode, restored afterwards) and returns
    ``({layer: (len(indices), n_channels) float32}, predictions of every sample)``: what a
    training snapshot needs to be compared with a :class:`Recording` (its ``pooled_index``).
    Memory: the rows for ``indices`` plus 8 bytes per sample.
    """
    import torch

    loader = _as_loader(data, batch_size)
    device = _model_device(model)
    modules = dict(model.named_modules())
    unknown = [n for n in layers if n not in modules]
    if unknown:
        raise RecordError(f"unknown layer name(s) {unknown}")
    current: dict[str, Any] = {}

    def make_hook(name):
        def hook(_m, _i, out):
            t = out.detach()
            current[name] = t.flatten(2).float().mean(2) if t.dim() > 2 else t.float()

        return hook

    wanted = None if indices is None else np.asarray(indices, dtype=np.int64)
    rows: dict[str, list] = {n: [] for n in layers}
    got: list[np.ndarray] = []
    preds = []
    start = 0
    with _eval_mode(model), _hooks(model, list(layers), make_hook), torch.no_grad():
        for batch in loader:
            x, _y = _split_batch(batch)
            b = int(x.shape[0])
            z = _pick_logits(model(x.to(device)), logits)
            preds.append(z.argmax(dim=1).cpu().numpy().astype(np.int64))
            pos = np.arange(start, start + b)
            sel = np.ones(b, bool) if wanted is None else np.isin(pos, wanted)
            if sel.any():
                got.append(pos[sel])
                for n in layers:
                    rows[n].append(current[n][torch.from_numpy(sel).to(current[n].device)].cpu())
            start += b
    got_a = np.concatenate(got) if got else np.zeros(0, np.int64)
    if wanted is not None and not np.array_equal(np.sort(wanted), got_a):
        raise RecordError("indices refer to samples the data set does not have")
    order = np.argsort(np.argsort(wanted)) if wanted is not None else None
    out = {}
    for n in layers:
        a = (
            torch.cat(rows[n]).numpy().astype(np.float32)
            if rows[n]
            else np.zeros((0, 0), np.float32)
        )
        # rows come in sample order; return them in the order of ``indices``
        out[n] = a[order] if order is not None else a
    return out, np.concatenate(preds) if preds else np.zeros(0, np.int64)
