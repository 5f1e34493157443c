"""The hooks on the recorded layers: each output reduced to per-channel summaries (spatial mean,
maximum and its location) for the C++ fold, without keeping the feature maps."""

from __future__ import annotations

import numpy as np

from cnnvis.record.inputs import RecordError

# outputs are reduced after the forward pass only where all of a batch's recorded outputs take
# at most this many bytes: holding larger ones past their last use raised the peak memory of a
# ResNet-18 recording by 50 MB (the allocator then grows its heap), for no gain in speed
DEFER_BYTES = 8 << 20


def torch_stats(out) -> tuple:
    """(mean, max, argmax) over the spatial axes, with torch: other devices and dtypes."""
    import torch

    b, c = int(out.shape[0]), int(out.shape[1])
    flat = out.detach().reshape(b, c, -1).float()
    mx, arg = flat.max(dim=2)
    return tuple(
        np.ascontiguousarray(a.to("cpu", dt).numpy())
        for a, dt in ((flat.mean(dim=2), torch.float32), (mx, torch.float32), (arg, torch.int64))
    )


def check_calls(name: str, calls: int) -> None:
    """A recorded layer must run once per forward pass: a reused module has no single output."""
    if calls != 1:
        raise RecordError(
            f"layer {name!r} ran {calls} times in one forward pass; record a module that is "
            "called exactly once (a shared module such as a reused ReLU has no single output)"
        )


class Reduction:
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
            self.fold.set_stats(self.index, *torch_stats(out))

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


class LayerWatch:
    """The forward hooks of one recording and what they saw.

    On the first batch each hook checks its output (a tensor of 2 to 4 dimensions) and keeps its
    summaries in ``first`` (name -> (mean, max, argmax, spatial shape)), in execution order, with
    the output itself where it may wait for the end of the forward pass. :meth:`plan` then gives
    every layer its :class:`Reduction`, and from the next batch on the hooks only follow those.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.first: dict[str, tuple] = {}
        self.calls: dict[str, int] = {}  # first batch only; later batches count in their plans
        self.waiting: dict[str, tuple] = {}  # first batch: (output, version) that may wait
        self.first_bytes = 0
        self.native: dict[str, bool] = {}  # float32 on the CPU: reduced by the C++ pass
        self.plans: dict[str, Reduction] = {}
        self.plan_list: list[Reduction] = []  # the same, in execution order
        self.order: list[str] = []
        self.paused = False  # set while the receptive-field probe runs the model

    def hook(self, name: str):
        def on_output(_module, _inputs, out):
            plan = self.plans.get(name)
            if plan is not None:  # the first batch checked this layer's output
                plan.calls += 1
                if plan.deferred:
                    plan.out, plan.version = out, out._version
                else:
                    plan.reduce(out)
                return
            if not self.paused:
                self._first_output(name, out)

        return on_output

    def _first_output(self, name: str, out) -> None:
        import torch

        from cnnvis import _core

        self.calls[name] = self.calls.get(name, 0) + 1
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
        try:  # inference tensors have no version counter: never deferred
            version = out._version
        except RuntimeError:
            version = None
        self.first_bytes += out.numel() * out.element_size()
        if version is not None and self.first_bytes <= DEFER_BYTES:
            self.waiting[name] = (out, version)  # a candidate for waiting
        spatial = (int(out.shape[2]), int(out.shape[3])) if out.dim() == 4 else None
        b, c = int(out.shape[0]), int(out.shape[1])
        self.native[name] = (out.device.type == "cpu" and out.dtype == torch.float32
                             and out[0, 0].numel() > 0)  # fmt: skip
        if self.native[name]:
            # one C++ pass over the output for the mean, the max and its location (a copy only
            # for an output that is not contiguous)
            values = out.detach().contiguous().numpy().reshape(b, c, -1)
            self.first[name] = (*_core.spatial_stats(values), spatial)
        else:
            self.first[name] = (*torch_stats(out), spatial)

    def missing(self, names) -> list[str]:
        """The layers among ``names`` whose hook did not run on the first batch."""
        return [n for n in names if n not in self.first]

    def plan(self, fold, order: list[str]) -> None:
        """After the first batch: its summaries go to ``fold`` (layer i = ``order[i]``) and every
        layer gets its reduction; an output unchanged since its hook (nothing later changes it in
        place) may wait for the end of the forward pass."""
        for i, n in enumerate(order):
            fold.set_stats(i, *self.first[n][:3])
        for n in order:
            check_calls(n, self.calls.get(n, 0))
        for i, n in enumerate(order):
            o, version = self.waiting.get(n, (None, None))
            deferred = (self.first_bytes <= DEFER_BYTES and o is not None
                        and o._version == version)  # fmt: skip
            self.plans[n] = Reduction(fold, i, self.native[n], deferred)
        self.plan_list = [self.plans[n] for n in order]
        self.order = order
        self.waiting.clear()
        self.first.clear()

    def _run(self, x):
        self.first.clear()
        for plan in self.plan_list:
            plan.calls = 0
        try:
            return self.model(x)
        except RecordError:
            raise
        except Exception as e:
            raise RecordError(
                f"the model's forward pass fails on a batch of shape "
                f"{tuple(x.shape)}: {type(e).__name__}: {e}"
            ) from e

    def forward(self, x):
        """The model's output on x and, per layer, the output waiting to be summarised by the
        fold or None (None on the first batch, whose summaries are in ``first``)."""
        out = self._run(x)
        if not self.plans:
            return out, None
        changed = False
        for n, p in zip(self.order, self.plan_list):
            check_calls(n, p.calls)
            if p.deferred and p.out._version != p.version:
                # a later op changed the output in place after all: the batch runs again, with
                # this layer reduced in the hook
                p.deferred, p.out, changed = False, None, True
        if changed:
            return self.forward(x)
        return out, [p.release() for p in self.plan_list]
