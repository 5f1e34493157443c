"""The hooks on the recorded layers: each output reduced to per-channel summaries (spatial mean,
maximum and its location) for the C++ fold, without keeping the feature maps."""

from __future__ import annotations

import numpy as np

from cnnvis.record.inputs import RecordError


def device_stats(out) -> tuple:
    """(mean, max, argmax) over the spatial axes, with torch, where ``out`` is."""
    b, c = int(out.shape[0]), int(out.shape[1])
    flat = out.detach().reshape(b, c, -1).float()
    mx, arg = flat.max(dim=2)
    return flat.mean(dim=2), mx, arg


def torch_stats(out) -> tuple:
    """(mean, max, argmax) over the spatial axes, with torch: other devices and dtypes."""
    import torch

    return tuple(
        np.ascontiguousarray(a.to("cpu", dt).numpy())
        for a, dt in zip(device_stats(out), (torch.float32, torch.float32, torch.int64))
    )


def check_calls(name: str, calls: int) -> None:
    """A recorded layer must run once per forward pass: a reused module has no single output."""
    if calls != 1:
        raise RecordError(
            f"layer {name!r} ran {calls} times in one forward pass; record a module that is "
            "called exactly once (a shared module such as a reused ReLU has no single output)"
        )


class Reduction:
    """How one layer's output is reduced on every batch after the first, which checked it (a
    tensor of 2 to 4 dimensions, on which device, of which dtype): in its hook, before any
    later op can change it in place, so the hooks then do no checks at all."""

    __slots__ = ("fold", "index", "native", "calls", "on_device")

    def __init__(self, fold, index: int, native: bool) -> None:
        self.fold = fold  # the _core.Fold the summaries go to, as its layer ``index``
        self.index = index
        self.native = native  # float32 on the CPU: summarised by the C++ fold itself
        self.calls = 0
        self.on_device = None  # summaries made by torch, until LayerWatch.copy_back

    def reduce(self, out) -> None:
        """Summarise the output of one batch into the fold, or (other devices and dtypes) into
        summaries where the output is, given to the fold by :meth:`LayerWatch.copy_back`."""
        if self.native:
            self.fold.stats(self.index, out.detach().contiguous().numpy())
        else:
            self.on_device = device_stats(out)


class LayerWatch:
    """The forward hooks of one recording and what they saw.

    On the first batch each hook checks its output (a tensor of 2 to 4 dimensions) and keeps its
    summaries in ``first`` (name -> (mean, max, argmax, spatial shape)), in execution order.
    :meth:`plan` then gives every layer its :class:`Reduction`, and from the next batch on the
    hooks only follow those. Every output is reduced in its hook, before a later op can change it
    in place (a following in-place ReLU): letting unchanged outputs wait for the end of the
    forward pass, proved unchanged by torch's version counters, was measured at 2.7% slower to
    3% faster on the target rows (benchmarks/README.md), below the 5% that would pay for it.
    """

    def __init__(self, model) -> None:
        self.model = model
        self.first: dict[str, tuple] = {}
        self.calls: dict[str, int] = {}  # first batch only; later batches count in their plans
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
        layer gets its reduction."""
        for i, n in enumerate(order):
            fold.set_stats(i, *self.first[n][:3])
        for n in order:
            check_calls(n, self.calls.get(n, 0))
        self.plan_list = [Reduction(fold, i, self.native[n]) for i, n in enumerate(order)]
        self.plans = dict(zip(order, self.plan_list))
        self.order = order
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

    def copy_back(self, z) -> np.ndarray:
        """The logits ``z`` as float32 numpy, and the summaries the hooks left on the GPU given to
        the fold: one copy to the host for the whole batch (every tensor packed, bit for bit,
        as int32), so the pass waits for the GPU once per batch."""
        import torch

        pending = [p for p in self.plan_list if p.on_device is not None]
        if z.device.type == "cpu" and not pending:
            return z.detach().to("cpu", torch.float32).contiguous().numpy()
        parts = [z.detach().float()] + [t for p in pending for t in p.on_device]
        flat = [t.contiguous().reshape(-1).view(torch.int32) for t in parts]
        host = torch.cat(flat).cpu().numpy()
        pieces = np.split(host, np.cumsum([len(f) for f in flat])[:-1])
        for i, p in enumerate(pending):
            mean, mx, arg = pieces[1 + 3 * i : 4 + 3 * i]
            b = p.on_device[0].shape
            p.fold.set_stats(p.index, mean.view(np.float32).reshape(b),
                             mx.view(np.float32).reshape(b), arg.view(np.int64).reshape(b))  # fmt: skip
            p.on_device = None
        return pieces[0].view(np.float32).reshape(z.shape)

    def forward(self, x):
        """The model's output on x; its recorded outputs are summarised in the fold (or, on the
        first batch, in ``first``)."""
        out = self._run(x)
        for n, p in zip(self.order, self.plan_list):
            check_calls(n, p.calls)
        return out
