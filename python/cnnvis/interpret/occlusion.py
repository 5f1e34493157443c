"""Occlusion maps (T3, Zeiler & Fergus 2014): slide a patch over the image, read the target.

For each position of a ``window`` sliding by ``stride``, the patch is set to ``fill`` and the
model is run again; the map holds the target's value there: the class's softmax probability, or
a neuron's (cluster's) mean activation. Occluded copies are built in place in one reusable buffer
and run ``batch_size`` at a time under :func:`torch.inference_mode`.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from cnnvis.interpret._targets import (
    Target,
    as_batch,
    check_class,
    evaluating,
    objective_function,
    parse_target,
    predicted_classes,
)
from cnnvis.interpret.progress import Progress, StopFlag, step

__all__ = ["occlusion", "occlusion_grid", "spread"]


def _pair(v: int | tuple[int, int], what: str) -> tuple[int, int]:
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(p, int) and p >= 1 for p in pair):
        raise ValueError(f"{what} must be a positive int or a pair of them, got {v!r}")
    return pair  # type: ignore[return-value]


def occlusion_grid(
    size: tuple[int, int], window: int | tuple[int, int], stride: int | tuple[int, int]
) -> tuple[list[int], list[int]]:
    """Top rows and left columns of the patch positions for an image of ``size`` (H, W)."""
    (wh, ww), (sh, sw) = _pair(window, "window"), _pair(stride, "stride")
    h, w = size
    if wh > h or ww > w:
        raise ValueError(f"window {wh}x{ww} does not fit in a {h}x{w} image")
    return list(range(0, h - wh + 1, sh)), list(range(0, w - ww + 1, sw))


def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: Target | None = None,
    *,
    window: int | tuple[int, int] = 4,
    stride: int | tuple[int, int] = 1,
    fill: float | torch.Tensor = 0.0,
    batch_size: int = 64,
    progress: Progress = None,
    should_stop: StopFlag = None,
) -> torch.Tensor:
    """The occlusion map of each image: shape ``(B, n_rows, n_cols)``.

    ``map[b, i, j]`` is the target's value for image ``b`` with the patch whose top-left corner
    is ``(rows[i], cols[j])`` of :func:`occlusion_grid` set to ``fill`` (a number, or one value
    per channel). ``target=None`` follows each image's predicted class.
    ``progress(done, total)`` counts the occluded copies run; ``should_stop`` (a callable or a
    :class:`threading.Event`) is checked before each batch (:class:`~cnnvis.interpret.Cancelled`).
    """
    x = as_batch(model, x)
    rows, cols = occlusion_grid(tuple(x.shape[-2:]), window, stride)
    (wh, ww) = _pair(window, "window")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    fill_t = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    if fill_t.dim() == 1 and fill_t.numel() == x.shape[1]:
        fill_t = fill_t[:, None, None]
    elif fill_t.dim() != 0:
        raise ValueError(
            f"fill must be a number or one value per channel, got {tuple(fill_t.shape)}"
        )
    corners = [(r, c) for r in rows for c in cols]
    out = torch.empty(x.shape[0], len(corners), device=x.device)
    with evaluating(model), torch.inference_mode(), contextlib.ExitStack() as hooks:
        read = _reader(model, x, target, hooks)
        for b in range(x.shape[0]):
            buffer = x[b].expand(min(batch_size, len(corners)), *x.shape[1:]).clone()
            for start in range(0, len(corners), batch_size):
                done = b * len(corners) + start
                step(done, x.shape[0] * len(corners), progress, should_stop, "occlusion")
                chunk = corners[start : start + batch_size]
                batch = buffer[: len(chunk)]
                for k, (r, c) in enumerate(chunk):
                    batch[k, :, r : r + wh, c : c + ww] = fill_t
                out[b, start : start + len(chunk)] = read(batch, b)
                for k, (r, c) in enumerate(chunk):  # restore the image for the next chunk
                    batch[k, :, r : r + wh, c : c + ww] = x[b, :, r : r + wh, c : c + ww]
    step(out.numel(), out.numel(), progress, None, "occlusion")
    return out.reshape(x.shape[0], len(rows), len(cols))


def _reader(model: nn.Module, x: torch.Tensor, target: Target | None, hooks):
    """``read(batch, b)``: the target's value for each image of ``batch`` (copies of image b).

    A layer target's hook goes on the ``hooks`` exit stack, which removes it however the map ends.
    """
    if target is None:
        classes = predicted_classes(model, x)
        return lambda batch, b: torch.softmax(model(batch), dim=1)[:, classes[b]]
    obj = parse_target(model, target)
    if obj.is_class:
        c = check_class(model, x, obj.channels[0])
        return lambda batch, b: torch.softmax(model(batch), dim=1)[:, c]
    f = hooks.enter_context(objective_function(model, obj))
    return lambda batch, b: f(batch)


def spread(
    grid: torch.Tensor,
    size: tuple[int, int],
    window: int | tuple[int, int],
    stride: int | tuple[int, int],
) -> torch.Tensor:
    """An occlusion map ``(B, n_rows, n_cols)`` as pixels ``(B, H, W)``: each pixel gets the mean
    value of the patches that covered it (NaN where none did)."""
    rows, cols = occlusion_grid(size, window, stride)
    (wh, ww) = _pair(window, "window")
    if tuple(grid.shape[-2:]) != (len(rows), len(cols)):
        raise ValueError(f"grid {tuple(grid.shape)} is not {len(rows)}x{len(cols)} positions")
    total = grid.new_zeros(grid.shape[0], *size)
    count = grid.new_zeros(size)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            total[:, r : r + wh, c : c + ww] += grid[:, i, j, None, None]
            count[r : r + wh, c : c + ww] += 1
    return total / count
