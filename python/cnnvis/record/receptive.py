"""Receptive fields of layer outputs in input pixels: from the graph, or measured by gradients.

:func:`analytic_receptive_fields` follows the conv and pool arithmetic along the model's graph
(exact; branches take the union). It is what :func:`cnnvis.record` uses; the layers it cannot
tell (behind functional convs or pools, padding, interpolation, unknown ops) are measured with
:func:`measure_receptive_fields`. The two agree exactly on ResNet, DenseNet and GoogLeNet (tested);
on squeeze-excitation networks (MobileNetV3, EfficientNet) the gradient sees the whole image
through the global gate, which the analytic field leaves out on purpose: a crop of the image
would say nothing otherwise.

Measurement by gradients
------------------------
For a layer with a spatial output ``(C, h, w)``, the receptive field of the output location
``(y, x)`` is the set of input pixels its value depends on. We measure it instead of deriving it
from kernel sizes and strides, so that it holds for any architecture whose graph we can run
(residual adds, concatenations, parallel branches, dilations, functional ops, padding tricks):

1. One forward pass of a batch of 4 random ``N(0, 1)`` inputs at the recorded input size, with
   every chosen layer's output kept (cloned, so a later in-place ReLU does not alter it).
2. For each layer, one backward pass (:func:`torch.autograd.grad` w.r.t. the input only) of the sum
   over channels at four locations, one per sample: ``(0, 0)``, ``(1, 1)``, ``(h-2, w-2)`` and
   ``(h-1, w-1)`` (rows and columns clipped to the map). The bounding box of the non-zero input
   gradient of each sample is that location's receptive field, clipped to the image.
3. Receptive fields of convolutional networks are translation-equivariant: along each axis the
   field of index ``i`` is ``[lo + i*J, hi + i*J)`` clipped to ``[0, H)``, with ``J`` the product
   of the strides. The first location gives ``hi``, the last ``lo``, and the neighbouring pairs
   give ``J`` wherever the fields are not clipped; where they are clipped on both sides ``J`` is
   irrelevant inside and is set to the smallest value consistent with the measurements.

Summing over channels takes the union of the channels' fields, so a ReLU that is inactive for one
channel, or a max-pool that routes the gradient to one element of its window, shrinks the measured
box only where it does so for every channel at once (very unlikely with random inputs and more
than a handful of channels). Layers whose output has no spatial axes (linear layers) see the whole
image. Cost: one forward of 4 images and one input-only backward per layer, once per recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisField:
    """Receptive field along one axis: index ``i`` -> ``[max(0, lo + i*jump), min(size, hi + i*jump))``."""

    lo: int
    hi: int
    jump: int
    size: int

    def bounds(self, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        i = np.asarray(i, dtype=np.int64)
        lo = np.clip(self.lo + i * self.jump, 0, self.size)
        hi = np.clip(self.hi + i * self.jump, 0, self.size)
        hi = np.maximum(hi, np.minimum(lo + 1, self.size))  # never empty
        lo = np.minimum(lo, hi - 1)
        return lo, hi


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of every location of one layer's output map."""

    y: AxisField
    x: AxisField
    map_shape: tuple[int, int]

    def boxes(self, flat_index: np.ndarray) -> np.ndarray:
        """Boxes ``(y0, x0, y1, x1)`` (end-exclusive, int32) for flat spatial indices ``y*w + x``."""
        flat_index = np.asarray(flat_index, dtype=np.int64)
        w = self.map_shape[1]
        y0, y1 = self.y.bounds(flat_index // w)
        x0, x1 = self.x.bounds(flat_index % w)
        return np.stack([y0, x0, y1, x1], axis=-1).astype(np.int32)

    def to_json(self) -> dict[str, list[int]]:
        return {
            "map_shape": list(self.map_shape),
            "lo": [self.y.lo, self.x.lo],
            "hi": [self.y.hi, self.x.hi],
            "jump": [self.y.jump, self.x.jump],
        }


def whole_image(height: int, width: int) -> ReceptiveField:
    """The field of a non-spatial output: every location sees the whole image."""
    return ReceptiveField(
        AxisField(0, height, 0, height), AxisField(0, width, 0, width), map_shape=(1, 1)
    )


def _axis_from(lo_pts: dict[int, int], hi_pts: dict[int, int], n: int, size: int) -> AxisField:
    """Fit ``[lo + i*J, hi + i*J)`` to measured clipped bounds at indices ``0, 1, n-2, n-1``."""
    if n == 1:
        return AxisField(lo_pts[0], hi_pts[0], 0, size)
    hi0, hi1 = hi_pts[0], hi_pts[1]
    lo_last, lo_prev = lo_pts[n - 1], lo_pts[n - 2]
    if hi1 < size:
        jump = hi1 - hi0
    elif lo_prev > 0:
        jump = lo_last - lo_prev
    else:  # clipped on both sides in between: any jump consistent with the ends will do
        jump = max(int(round(size / n)), size - hi0, lo_last, 1)
    jump = max(int(jump), 0)
    return AxisField(int(lo_last - (n - 1) * jump), int(hi0), jump, size)


def measure_receptive_fields(
    model, layers: list[str], example, spatial: dict[str, tuple[int, int]], seed: int = 0
) -> dict[str, ReceptiveField]:
    """Measure the receptive field of each layer in ``spatial`` (name -> output ``(h, w)``).

    ``example`` is one input tensor ``(C, H, W)`` (only its shape, dtype and device are used).
    Layers not in ``spatial`` get the whole image.
    """
    import torch

    c, height, width = example.shape
    result: dict[str, ReceptiveField] = {
        name: whole_image(height, width) for name in layers if name not in spatial
    }
    names = [n for n in layers if n in spatial]
    if not names:
        return result
    modules = dict(model.named_modules())
    outputs: dict[str, torch.Tensor] = {}

    def make_hook(name):
        def hook(_module, _inputs, out):
            if torch.is_tensor(out) and name not in outputs:
                outputs[name] = out.clone()

        return hook

    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn((4, c, height, width), generator=gen).to(
        device=example.device, dtype=example.dtype
    )
    x.requires_grad_(True)
    handles = [modules[n].register_forward_hook(make_hook(n)) for n in names]
    try:
        with torch.enable_grad():
            model(x)
            for name in names:
                out = outputs.get(name)
                h, w = spatial[name]
                if out is None or out.dim() != 4 or not out.requires_grad:
                    result[name] = whole_image(height, width)
                    continue
                ys = [min(max(i, 0), h - 1) for i in (0, 1, h - 2, h - 1)]
                xs = [min(max(i, 0), w - 1) for i in (0, 1, w - 2, w - 1)]
                total = sum(out[i, :, ys[i], xs[i]].sum() for i in range(4))
                (grad,) = torch.autograd.grad(total, x, retain_graph=True, allow_unused=True)
                if grad is None:
                    result[name] = whole_image(height, width)
                    continue
                nz = (grad != 0).any(dim=1).cpu().numpy()  # (4, H, W)
                lo_y, hi_y, lo_x, hi_x = {}, {}, {}, {}
                ok = True
                for i in range(4):
                    rows = np.flatnonzero(nz[i].any(axis=1))
                    cols = np.flatnonzero(nz[i].any(axis=0))
                    if rows.size == 0:
                        ok = False
                        break
                    lo_y[ys[i]], hi_y[ys[i]] = int(rows[0]), int(rows[-1]) + 1
                    lo_x[xs[i]], hi_x[xs[i]] = int(cols[0]), int(cols[-1]) + 1
                if not ok:
                    result[name] = whole_image(height, width)
                    continue
                result[name] = ReceptiveField(
                    _axis_from(lo_y, hi_y, h, height),
                    _axis_from(lo_x, hi_x, w, width),
                    map_shape=(h, w),
                )
    finally:
        for handle in handles:
            handle.remove()
        outputs.clear()
    return result


# -- analytic fields from the graph ---------------------------------------------------------------

_GLOBAL = "global"  # a non-spatial value (after global pooling, flatten or a linear layer)
_ELEMENTWISE = {"norm", "act", "dropout", "add", "mul", "concat"}


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        return int(v[0]), int(v[-1])
    return int(v), int(v)


def _window(module) -> tuple[tuple[int, int], ...] | None:
    """(kernel, stride, padding, dilation) pairs of a 2-d conv or pool module, else None."""
    from torch import nn

    if isinstance(module, nn.Conv2d):
        k, s, d = _pair(module.kernel_size), _pair(module.stride), _pair(module.dilation)
        pad = module.padding
        if pad == "same":
            p = (d[0] * (k[0] - 1) // 2, d[1] * (k[1] - 1) // 2)
        elif pad == "valid":
            p = (0, 0)
        else:
            p = _pair(pad)
        return k, s, p, d
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        k = _pair(module.kernel_size)
        s = _pair(module.stride if module.stride is not None else module.kernel_size)
        d = _pair(getattr(module, "dilation", 1))
        return k, s, _pair(module.padding), d
    return None


def analytic_receptive_fields(model, graph, layers, height: int, width: int, spatial) -> dict:
    """Receptive fields from the graph's conv and pool arithmetic; None where it cannot tell.

    Each node's field is propagated in execution order: for index ``i`` of a map, input pixels
    ``[lo + i*J, hi + i*J)`` per axis. A conv or pool module with kernel k, stride s, padding p
    and dilation d maps ``(lo, hi, J)`` to ``(lo - p*J, hi + (d*(k-1) - p)*J, s*J)``; norm,
    activation, dropout, add, mul and concat take the union of their spatial inputs (a global
    input such as a squeeze-excitation gate adds no spatial extent); global pooling to 1x1,
    flatten and linear layers make the value global (the whole image). Functional convs and
    pools, padding, interpolation, splits and unknown ops give None, and the caller falls back
    to :func:`measure_receptive_fields` for the layers behind them.
    """
    modules = dict(model.named_modules())
    state: dict = {}
    for node in sorted(graph.nodes, key=lambda n: graph.nodes[n].get("order", 0)):
        attrs = graph.nodes[node]
        op = attrs.get("op")
        preds = [state.get(p) for p in graph.predecessors(node)]
        module = modules.get(attrs.get("module")) if attrs.get("module") else None
        shape = attrs.get("out_shape") or ()
        if op == "input":
            state[node] = (0, 1, 1, 0, 1, 1)
            continue
        if any(p is None for p in preds) or not preds:
            state[node] = None
            continue
        fields = [p for p in preds if p != _GLOBAL]
        if op in ("conv", "pool"):
            win = _window(module) if module is not None else None
            if len(preds) == 1 and preds[0] == _GLOBAL:
                state[node] = _GLOBAL  # e.g. the 1x1 convs of a squeeze-excitation gate
            elif win is not None and len(preds) == 1:
                (ky, kx), (sy, sx), (py, px), (dy, dx) = win
                lo_y, hi_y, jy, lo_x, hi_x, jx = fields[0]
                state[node] = (
                    lo_y - py * jy, hi_y + (dy * (ky - 1) - py) * jy, sy * jy,
                    lo_x - px * jx, hi_x + (dx * (kx - 1) - px) * jx, sx * jx,
                )  # fmt: skip
            elif op == "pool" and len(shape) == 3 and tuple(shape[1:]) == (1, 1):
                state[node] = _GLOBAL
            else:
                state[node] = None
        elif op in _ELEMENTWISE or attrs.get("type") == "Identity":
            if not fields:
                state[node] = _GLOBAL
            elif len({(f[2], f[5]) for f in fields}) != 1:
                state[node] = None  # inputs at different strides: not a single field
            else:
                state[node] = (
                    min(f[0] for f in fields), max(f[1] for f in fields), fields[0][2],
                    min(f[3] for f in fields), max(f[4] for f in fields), fields[0][5],
                )  # fmt: skip
        elif op in ("flatten", "linear") or (op == "reshape" and len(shape) <= 1):
            state[node] = _GLOBAL
        else:
            state[node] = None
    result: dict = {}
    for name in layers:
        s = state.get(name)
        if s is None:
            result[name] = None
        elif s == _GLOBAL or name not in spatial:
            result[name] = whole_image(height, width)
        else:
            lo_y, hi_y, jy, lo_x, hi_x, jx = s
            result[name] = ReceptiveField(
                AxisField(lo_y, hi_y, jy, height), AxisField(lo_x, hi_x, jx, width),
                map_shape=tuple(spatial[name]),
            )  # fmt: skip
    return result
