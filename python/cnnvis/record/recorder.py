"""One streaming pass of a model over data, in phases: :class:`Recorder` (``start``,
``fold(batch)``, ``finish``) and :func:`record`, the whole pass in one call.

Memory is bounded independently of the number of samples N, apart from 20 bytes per sample
for labels, predictions and confidences (kept in arrays that grow by doubling, so at most
40 bytes per sample, outside the malloc heap). With layers of C_l channels (S = sum of C_l),
K classes, k = ``top_k``, P = ``patch_size``, B = batch size and input images of c x H x W,
the pass holds: one batch of activations (the model's own forward); ``S * (8 K + 28 k)``
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

Hooked outputs are reduced to their spatial mean, spatial max and its location, inside the
hook (before a later op can change the output in place); the full feature maps are never
stored. Receptive fields come from the conv and pool arithmetic
along the model's graph (branches take the union; a global gate such as squeeze-excitation
adds no spatial extent); layers behind ops that arithmetic does not know (functional convs or
pools, padding, interpolation) are measured instead with input gradients of a random probe. See
:mod:`cnnvis.record.receptive`; ``meta["receptive_fields"]`` says which method each layer got.

On a GPU the hooks reduce each output where it is, and the summaries of a batch (with its
logits) come to the host in one copy (:meth:`LayerWatch.copy_back`), where the C++ fold keeps
the running state; the images kept are taken from the batch as the loader gave it (pinned host
memory), never copied back. Inside a process group the pass is sharded over the ranks and
merged at the end (:mod:`cnnvis.record.distributed`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnvis.record import inputs
from cnnvis.record.distributed import Shard, current_shard, shard_loader
from cnnvis.record.images import display_range, images_uint8, thumbnail_size, thumbnails
from cnnvis.record.inputs import RecordError
from cnnvis.record.receptive import analytic_receptive_fields, measure_receptive_fields
from cnnvis.record.recording import LayerPatches, LayerRecord, PatchSource, Recording
from cnnvis.record.store import PatchStore
from cnnvis.record.summaries import Column, LayerState, Reservoir
from cnnvis.record.watch import LayerWatch

__all__ = ["Recorder", "record"]


class Recorder:
    """One recording of ``model``, batch by batch: :meth:`start` with an example batch,
    :meth:`fold` every batch in order, :meth:`finish` for the :class:`Recording`.

    Between ``start`` and ``finish`` (or :meth:`close`) the model is in eval mode with hooks on
    the recorded layers; both are undone at the end, also on an error. :func:`record` shows
    the intended use; the module's docstring says what the pass holds in memory.

    Parameters
    ----------
    model : torch.nn.Module
        Any module mapping a batch ``(N, C, H, W)`` to logits ``(N, n_classes)`` (or to something
        ``logits`` picks them from). It is never moved: inputs go to the device of its parameters.
        A model in training mode is recorded in eval mode (with a warning) and put back in
        training mode afterwards; its parameters and buffers are not changed.
    layers : list of str, optional
        Dotted module paths to record. Default: :func:`cnnvis.graph.default_layers` of the
        model's graph (the conv and linear layers).
    top_k : int
        How many top-activating samples to keep per channel.
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
    device : torch.device or str, optional
        Must match the model's device if given (the model is never moved).
    """

    def __init__(self, model, *, layers=None, top_k: int = 9, max_pooled: int = 2000,
                 patch_size: int = 32, class_names: Sequence[str] | None = None,
                 logits: Callable[[Any], Any] | None = None, model_name: str | None = None,
                 seed: int = 0, patch_budget: int | None = None, device=None) -> None:  # fmt: skip
        inputs.check_options(top_k, max_pooled, patch_size)
        self.device = inputs.recording_device(model, device)
        self.model, self.layers, self.top_k, self.max_pooled = model, layers, top_k, max_pooled
        self.patch_size, self.logits, self.seed = patch_size, logits, seed
        self.model_name, self.patch_budget = model_name, patch_budget
        self.class_names = list(class_names) if class_names is not None else None
        self.start_of_batch = 0  # position of the next batch's first sample
        self.fold_ = None  # the _core.Fold, made by the first batch
        self.shard = Shard()  # which samples this process records (record() sets it)
        self._stack: contextlib.ExitStack | None = None

    # -- start ---------------------------------------------------------------------------------

    def start(self, example) -> Recorder:
        """Trace the model's graph on an example batch (N, C, H, W) of the data, pick the layers
        and put the model in eval mode with hooks on them, until :meth:`finish`."""
        self.input_shape = inputs.check_first_inputs(example)
        self.image_shape = inputs.image_shape(self.input_shape)  # (C, H, W), also of a vector
        self._stack = contextlib.ExitStack()
        try:
            # the warning names the caller of record() (or of start())
            self._stack.enter_context(inputs.eval_mode(self.model, stacklevel=6))
            self.graph = inputs.trace_graph(self.model, example[:1].to(self.device))
            self.chosen = inputs.resolve_layers(self.model, self.layers, self.graph)
            self.watch = LayerWatch(self.model)
            self._stack.enter_context(inputs.hooks(self.model, self.chosen, self.watch.hook))
        except BaseException:
            self.close()
            raise
        self.thumb_hw = thumbnail_size(self.image_shape[1], self.image_shape[2])
        self.full = self.thumb_hw == tuple(self.image_shape[1:])  # thumbnails are the images
        self.labels_all = Column(np.int64)
        self.preds_all = Column(np.int64)
        self.conf_all = Column(np.float32)
        return self

    def close(self) -> None:
        """Remove the hooks and restore the model's modes (also after an error)."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the first batch -------------------------------------------------------------------------

    def _setup(self, x, z) -> None:
        """Everything that needs the first batch's outputs: the classes, the layers in execution
        order, the display range, the receptive fields, the running state and the C++ fold."""
        from cnnvis import _core

        self.class_names = inputs.class_names_for(self.class_names, int(z.shape[1]))
        self.n_classes = len(self.class_names)
        self.reservoir = Reservoir(self.max_pooled, self.n_classes, self.seed)
        missing = self.watch.missing(self.chosen)
        if missing:
            raise RecordError(f"layer(s) {missing} did not run during the forward pass")
        first = self.watch.first
        self.order = sorted(self.chosen, key=list(first).index)
        self.low, self.high = (
            self.shard.display_range(x) if self.shard.distributed else display_range(x)
        )
        self.states = {}
        for n, rf in self._receptive_fields(x).items():
            st = LayerState(n, int(first[n][0].shape[1]), self.n_classes, self.top_k,
                            self.max_pooled)  # fmt: skip
            st.rf, st.spatial = rf, first[n][3]
            self.states[n] = st
        layer_states = [self.states[n] for n in self.order]
        self.thumbs = np.zeros((self.max_pooled, *self.thumb_hw, self.image_shape[0]), np.uint8)
        self.patches = PatchStore(layer_states, self.patch_size, self.image_shape,
                                  self.patch_budget)  # fmt: skip
        self.fold_ = _core.Fold([
            (st.top_values, st.top_samples, st.top_loc, st.top_slot, st.class_sums, st.pooled,
             self.patches.pending_of(st))
            for st in layer_states
        ], self.reservoir.arrays())  # fmt: skip
        self.watch.plan(self.fold_, self.order)

    def _receptive_fields(self, x) -> dict:
        """Each layer's receptive field (in execution order): from the conv and pool arithmetic
        along the graph where it knows every op, else measured with input gradients."""
        first = self.watch.first
        spatial = {n: first[n][3] for n in self.order if first[n][3] is not None}
        h_in, w_in = self.image_shape[1], self.image_shape[2]
        rfs = analytic_receptive_fields(self.model, self.graph, self.order, h_in, w_in, spatial)
        self.rf_method = {n: "analytic" for n in self.order if rfs[n] is not None}
        unknown = [n for n in self.order if rfs[n] is None]
        if unknown:
            self.watch.paused = True  # the probe's forward passes are not recorded
            try:
                rfs.update(measure_receptive_fields(self.model, unknown, x[0], spatial,
                                                    seed=self.seed))  # fmt: skip
            finally:
                self.watch.paused = False
            self.rf_method.update({n: "gradient" for n in unknown})
        return {n: rfs[n] for n in self.order}

    # -- every batch -----------------------------------------------------------------------------

    def fold(self, x, y) -> None:
        """Fold one batch: inputs ``x`` (N, C, H, W) and integer labels ``y`` (N,)."""
        import torch

        if self._stack is None:
            raise RecordError("fold() needs start() first (and no finish() yet)")
        b = int(x.shape[0])
        if b == 0:
            if self.shard.distributed and self.fold_ is not None:  # the other ranks' last step
                self.shard.draw_rows(self.reservoir, np.empty(0, np.int64), self.start_of_batch)
            return
        inputs.check_batch(x, y, self.input_shape, self.start_of_batch)
        with torch.no_grad():
            # a pinned batch goes to the GPU while the host goes on; the images the recording
            # keeps are taken from the batch where it already is (no copy back)
            xd = x.to(self.device, non_blocking=True)
            z = inputs.pick_logits(self.watch.forward(xd), self.logits)
            # kept as pictures from here on (flat vectors as H x W)
            xd, x = inputs.image_view(xd, self.input_shape), inputs.image_view(x, self.input_shape)
            if self.fold_ is None:
                self._setup(xd, z)
            if y.dtype != torch.int64 or y.device.type != "cpu":
                y = y.to("cpu", torch.int64)
            labels = y.contiguous().numpy()
            need, slot_rows = self._fold_summaries(xd, z, labels)
            self.labels_all.extend(b)[:] = labels
            self._keep_images(x, need, slot_rows)
        self.start_of_batch += b

    def _fold_summaries(self, x, z, labels) -> tuple[np.ndarray, np.ndarray]:
        """The batch into the running state: one C++ call checks the labels, offers the samples
        to the reservoir per class (Algorithm R, deterministic in the sample order: slot_rows)
        and folds every layer's summaries (made in the hooks) into the class sums, reservoir
        rows, top-k lists and pending patches of new entries (need: the samples whose image is
        needed); a second writes the predictions and their softmax probabilities."""
        from cnnvis import _core

        start, b, patches = self.start_of_batch, int(x.shape[0]), self.patches
        if patches.direct and not patches.fits(start + b):
            # the store stops holding every image: it gives the thumbnails so far and the
            # pending patches now, before this batch adds to either
            if self.full and start:
                self._thumbs_from_store(*self.reservoir.kept())
            patches.end_direct()
        zc = self.watch.copy_back(z)  # the one copy of the batch's summaries to the host
        need = np.zeros(b, dtype=np.uint8)
        shared = self.shard.distributed  # the reservoir is drawn over every rank's samples
        try:
            if shared:
                slot_rows = self.shard.draw_rows(self.reservoir, labels, start)
            else:
                slot_rows = np.empty(b, dtype=np.int64)
            bad = self.fold_.fold(start, labels, need, slot_rows, offer=not shared)
        except ValueError as e:
            if str(e).startswith("label "):
                raise RecordError(f"{e} ({self.n_classes} classes)") from None
            raise
        if bad >= 0:  # in execution order: the first bad layer is named
            raise RecordError(
                f"layer {self.order[bad]!r} produced NaN or inf activations (batch starting at "
                f"sample {start}); check the inputs and the model's weights"
            )
        if not _core.softmax_top(zc, self.preds_all.extend(b), self.conf_all.extend(b)):
            raise RecordError(
                f"the model's logits contain NaN or inf (batch starting at sample {start})"
            )
        return need, slot_rows

    def _keep_images(self, x, need: np.ndarray, slot_rows: np.ndarray) -> None:
        """All images while the store holds them (thumbnails and patches come from it at the
        end), else the thumbnails of the reservoir's new samples and the images of the new top-k
        entries; full-size thumbnails are the same images, converted once."""
        start, b, patches = self.start_of_batch, int(x.shape[0]), self.patches
        low, high, hw = self.low, self.high, self.thumb_hw
        take = None if patches.direct and self.full else np.flatnonzero(slot_rows >= 0)
        if patches.direct:
            images_uint8(x, low, high, np.arange(b), out=patches.direct_rows(start, b))
            if take is not None and take.size:
                self.thumbs[slot_rows[take]] = thumbnails(x, take, hw, low, high)
            return
        entered = np.flatnonzero(need)
        if self.full and take.size:
            need[take] = 1
        conv = np.flatnonzero(need)  # sorted batch positions to convert
        at = np.cumsum(need, dtype=np.int64) - 1  # batch position -> row of u8
        u8 = images_uint8(x, low, high, conv) if conv.size else None
        if take.size:
            self.thumbs[slot_rows[take]] = (
                u8[at[take]] if self.full else thumbnails(x, take, hw, low, high)
            )
        if entered.size:
            patches.store(start, entered, u8[at[entered]])

    # -- finish ----------------------------------------------------------------------------------

    def finish(self) -> Recording:
        """End the pass (hooks removed, modes restored) and assemble the :class:`Recording`
        (merged over the ranks of a process group: :mod:`cnnvis.record.distributed`)."""
        self.close()
        if self.fold_ is None:
            raise RecordError("the data set is empty: nothing to record")
        shard = self.shard
        n = shard.total(self.start_of_batch)
        labels = shard.column(self.labels_all.values(), n)
        counts = np.bincount(labels, minlength=self.n_classes)
        rows_a, pos_a = self.reservoir.kept()
        patches = self.patches
        if patches.direct and self.full:  # the thumbnails are the images the store holds
            self._thumbs_from_store(rows_a, pos_a)
        pooled_images = shard.merge_rows(self.thumbs[rows_a], pos_a, 0)
        cut = patches.result()
        flushes = shard.total(patches.flushes)
        if shard.distributed:
            cut = self._merge(cut, rows_a, pos_a)
        modules = dict(self.model.named_modules())
        layer_records = {n: self._layer_record(n, cut, counts, rows_a, modules) for n in self.order}
        return Recording(
            model_name=self.model_name or type(self.model).__name__,
            class_names=list(self.class_names),
            input_shape=self.input_shape,
            labels=labels.astype(np.int64),
            predictions=shard.column(self.preds_all.values(), n).astype(np.int64),
            confidences=shard.column(self.conf_all.values(), n),
            pooled_index=pos_a,
            pooled_images=pooled_images,
            layers=layer_records,
            weights=inputs.collect_weights(self.model),
            graph=self.graph,
            snapshots=[],
            meta=self._meta(n, flushes),
        )

    def _thumbs_from_store(self, rows: np.ndarray, positions: np.ndarray) -> None:
        """The thumbnails of reservoir ``rows`` from the direct image store (full-size
        thumbnails are the images), for this rank's samples among their ``positions``."""
        mine = self.shard.owned(positions)
        self.thumbs[rows[mine]] = self.patches.kept_images(self.shard.local(positions[mine]))

    def _merge(self, cut, rows_a: np.ndarray, pos_a: np.ndarray):
        """Merge the running state of every rank into this one's (class sums, top-k lists,
        pooled rows) and return the merged patches (see :class:`Shard`)."""
        shard, states = self.shard, [self.states[n] for n in self.order]
        local_boxes = {st.name: (st.top_samples.copy(), st.boxes()) for st in states}
        sources = shard.merge_top_k(states)
        for st in states:
            shard.sum(st.class_sums)
            st.pooled[rows_a] = shard.merge_rows(st.pooled[rows_a], pos_a, -np.inf)
        return shard.merge_patches(states, cut, local_boxes, sources, self.input_shape[1:])

    def _layer_record(self, n, cut, counts, rows_a, modules) -> LayerRecord:
        st = self.states[n]
        values = st.top_values.copy()
        samples = st.top_samples
        values[samples < 0] = np.nan
        top_boxes = st.boxes()
        means = st.class_sums / np.maximum(counts, 1)[:, None]
        if not isinstance(cut, PatchSource):
            top_patches = cut[n]
        else:
            top_patches = LayerPatches(cut, samples, top_boxes)
            if not self.patches.images_pay(len(cut.samples)):  # merged lists: cut them now
                top_patches = np.asarray(top_patches)
        return LayerRecord(
            name=n,
            op=inputs.layer_op(self.graph, n, modules[n]),
            class_means=np.ascontiguousarray(means.T, dtype=np.float32),
            pooled=st.pooled[rows_a],
            top_values=values,
            top_samples=samples.astype(np.int64),
            top_boxes=top_boxes,
            top_patches=top_patches,
        )

    def _meta(self, n_samples: int, flushes: int) -> dict:
        meta = {
            "n_samples_seen": int(n_samples),
            "top_k": int(self.top_k),
            "patch_size": int(self.patch_size),
            "max_pooled": int(self.max_pooled),
            "seed": int(self.seed),
            "display_range": {
                "low": [float(v) for v in self.low.cpu()],
                "high": [float(v) for v in self.high.cpu()],
            },
            "receptive_fields": {
                n: {**self.states[n].rf.to_json(), "method": self.rf_method[n]} for n in self.order
            },
            "patch_flushes": int(flushes),
            "device": str(self.device),
        }
        if self.shard.distributed:
            meta["processes"] = self.shard.world
            meta["backend"] = self.shard.backend
        return meta


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
    num_workers: int | None = None,
) -> Recording:
    """Run ``model`` once over ``data`` and keep per-channel summaries of the chosen layers.

    For every channel (neuron) of every chosen layer the pass keeps: the mean of its spatially
    averaged activation per class; the spatially averaged activations of a bounded,
    class-stratified sample of inputs; its ``top_k`` inputs by spatial maximum, with the location
    of the maximum, the receptive-field box of that location in input pixels and the crop of that
    box resized to ``patch_size``; for every sample, the label, the prediction and its softmax
    confidence; the weights of conv, linear and batch-norm modules; and the model's DAG. Memory
    stays bounded in the number of samples (see :mod:`cnnvis.record.recorder`).

    Parameters
    ----------
    model : torch.nn.Module
        See :class:`Recorder`, which documents the other keywords too.
    data : Dataset, DataLoader or tuple (inputs, labels)
        Yields ``(inputs, labels)`` batches (tuples, lists, or dicts with ``image``/``label``
        keys). A ``Dataset`` is read in order with ``batch_size``.
    max_samples : int, optional
        Stop after this many samples.
    batch_size : int
        Batch size when ``data`` is a ``Dataset``.
    progress : bool
        Show a progress bar (tqdm) over the samples, with the time left.
    num_workers : int, optional
        Worker processes loading a ``Dataset``. Default: none on the CPU; on a GPU up to 4 per
        process, with pinned memory so that batches go to the GPU while the host goes on.

    Inside an initialised ``torch.distributed`` process group of several processes, every
    process records every world-th sample of ``data`` (a ``Dataset``, or a ``DataLoader``
    whose dataset is used) and gets the merged recording, which equals the one-process
    recording: the same predictions, top-k lists, boxes, patches and pooled samples, class
    means within float error (see :mod:`cnnvis.record.distributed`).

    Returns
    -------
    Recording

    Raises
    ------
    RecordError
        (a ``ValueError``) for an empty data set, a forward pass that fails on the data's shape,
        labels out of range, non-finite activations (naming the first such layer), an unknown
        layer name (listing the known ones), logits of the wrong shape, or bad options.
    """
    inputs.check_pass_options(batch_size, max_samples)
    recorder = Recorder(model, layers=layers, top_k=top_k, max_pooled=max_pooled,
                        patch_size=patch_size, class_names=class_names, logits=logits,
                        model_name=model_name, seed=seed, patch_budget=patch_budget,
                        device=device)  # fmt: skip
    shard = recorder.shard = current_shard()
    shard.batch_size = batch_size
    first, batches, total = _batches(recorder, data, batch_size, max_samples, num_workers)
    show = progress and shard.rank == 0
    with recorder.start(inputs.split_batch(first)[0]), _progress_bar(show, total) as bar:
        for x, y in batches:
            recorder.fold(x, y)
            if bar is not None:  # samples done by all ranks: those before every rank's next
                bar.update(min(total or np.inf, recorder.start_of_batch * shard.world) - bar.n)
    return recorder.finish()


def _batches(recorder: Recorder, data, batch_size: int, max_samples, num_workers):
    """(the first batch, all batches as (inputs, labels), the number of samples of all ranks
    if known) of this process's loader over ``data``; sets the recorder's class names from the
    data where it has none."""
    shard = recorder.shard
    options = _loader_options(recorder.device, num_workers, shard.world)
    loader = inputs.as_loader(data, batch_size)  # checked; a given DataLoader as it is
    if shard.distributed:
        loader, total = shard_loader(shard, loader.dataset, batch_size, max_samples, options)
    else:
        if loader is not data:  # ours: made with the device's options
            loader = options(loader.dataset, batch_size)
        total = inputs.loader_length(loader, max_samples)
    if recorder.class_names is None:
        recorder.class_names = inputs.class_names_of(data, loader)
    batches = iter(loader)
    try:
        first = next(batches)
    except StopIteration:
        raise RecordError("the data set is empty: nothing to record") from None
    batches = itertools.chain([first], batches)
    if not shard.distributed:
        return first, _limited(batches, recorder, max_samples), total
    # every rank takes part in every step: as many as rank 0, which has the most samples
    return first, _steps(batches, math.ceil(math.ceil(total / shard.world) / batch_size)), total


def _loader_options(device, num_workers: int | None, world: int):
    """A function making a (rank's) loader over a data set: on a GPU with worker processes and
    pinned memory (batches then go to the GPU asynchronously)."""
    import os

    from torch.utils.data import DataLoader

    from cnnvis.data import as_loader

    cuda = device.type == "cuda"
    if num_workers is None:
        num_workers = min(4, (os.cpu_count() or 1) // world) if cuda else 0

    def make(dataset, batch_size: int):
        loader = as_loader(dataset, batch_size, num_workers=num_workers)
        if cuda:
            loader = DataLoader(dataset, batch_size, num_workers=num_workers, pin_memory=True,
                                collate_fn=loader.collate_fn)  # fmt: skip
        return loader

    return make


def _steps(batches, n_steps: int):
    """``n_steps`` batches: those of this rank, then empty ones (the last step of the ranks
    with one batch fewer), each a step that every rank folds in turn."""
    empty = None
    for _ in range(n_steps):
        batch = next(batches, None)
        if batch is None:
            x, y = empty
            yield x[:0], y[:0]
        else:
            x, y = inputs.split_batch(batch)
            empty = (x, y)
            yield x, y


def _limited(batches, recorder: Recorder, max_samples: int | None):
    """The batches as (inputs, labels), the last one cut to end at ``max_samples``; no batch is
    read after that."""
    for batch in batches:
        x, y = inputs.split_batch(batch)
        if max_samples is not None:
            left = max_samples - recorder.start_of_batch
            x, y = x[:left], y[:left]
        yield x, y
        if max_samples is not None and recorder.start_of_batch >= max_samples:
            return


@contextlib.contextmanager
def _progress_bar(show: bool, total: int | None):
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    eta = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, ETA {remaining}, {rate_fmt}]"
    bar = tqdm(total=total, unit="img", desc="record", leave=False,
               bar_format=eta if total else None)  # fmt: skip
    try:
        yield bar
    finally:
        bar.close()
