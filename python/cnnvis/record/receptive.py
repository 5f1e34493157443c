"""Receptive fields of layer outputs in input pixels, measured by gradients.

Method
------
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
