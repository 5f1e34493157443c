"""Input images as the recording keeps them: uint8 in a per-channel display range, and thumbnails."""

from __future__ import annotations

from typing import Any

import numpy as np

THUMBNAIL_MAX = 64  # longest side of the pooled-sample thumbnails, in pixels


def display_range(x) -> tuple[Any, Any]:
    """Per-channel (low, high) of the first batch, used to map all images to 0..255."""
    return widened(*channel_range(x))


def channel_range(x) -> tuple[Any, Any]:
    """Per-channel minimum and maximum of a batch, on the CPU."""
    flat = x.detach().float().transpose(0, 1).reshape(x.shape[1], -1)
    return flat.min(dim=1).values.cpu(), flat.max(dim=1).values.cpu()


def widened(low, high) -> tuple[Any, Any]:
    """A range of constant channels made one unit wide (no division by zero)."""
    return low, high.where(high > low, low + 1.0)


def images_uint8(x, low, high, index: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
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


def thumbnails(x, index: np.ndarray, size: tuple[int, int], low, high) -> np.ndarray:
    """Images ``index`` of a batch scaled down to ``size`` (antialiased), as uint8."""
    import torch

    small = torch.nn.functional.interpolate(
        x[torch.from_numpy(index).to(x.device)].float(), size=size, mode="bilinear",
        antialias=True, align_corners=False,
    )  # fmt: skip
    return images_uint8(small, low, high, np.arange(len(index)))


def thumbnail_size(height: int, width: int) -> tuple[int, int]:
    longest = max(height, width)
    if longest <= THUMBNAIL_MAX:
        return height, width
    s = THUMBNAIL_MAX / longest
    return max(1, round(height * s)), max(1, round(width * s))
