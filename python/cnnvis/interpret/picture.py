"""Arrays -> RGB pictures for the toolbox's results (uint8, ``(h, w, 3)``): an input image, a
heat map over it, panels side by side. The viewer's tabs and the ``explain`` command share them."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["image_rgb", "heat_rgb", "overlay", "side_by_side", "enlarge"]


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def image_rgb(image, low=None, high=None) -> np.ndarray:
    """One input ``(C, H, W)`` as RGB in [0, 1]: ``low``/``high`` per channel (a recording's
    ``display_range``) map to 0 and 1, else the image's own range. One channel is grey."""
    a = _numpy(image).astype(np.float64)
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1 or 3, H, W) image, got shape {a.shape}")
    lo = np.asarray(low if low is not None else a.min(axis=(1, 2)), dtype=np.float64)
    hi = np.asarray(high if high is not None else a.max(axis=(1, 2)), dtype=np.float64)
    lo, hi = lo.reshape(-1, 1, 1), hi.reshape(-1, 1, 1)
    a = np.clip((a - lo) / np.where(hi > lo, hi - lo, 1.0), 0, 1).transpose(1, 2, 0)
    return np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a


def heat_rgb(heat, *, symmetric: bool = False, cmap: str | None = None) -> np.ndarray:
    """A ``(H, W)`` map as RGB in [0, 1] through a matplotlib colour map: 0..max (``inferno``),
    or -m..m around white for signed maps (``symmetric``, ``RdBu_r``)."""
    from matplotlib import colormaps

    h = _numpy(heat).astype(np.float64)
    if h.ndim != 2:
        raise ValueError(f"expected a (H, W) map, got shape {h.shape}")
    if symmetric:
        m = np.abs(h).max()
        unit = 0.5 + 0.5 * h / (m if m > 0 else 1.0)
    else:
        lo, hi = h.min(), h.max()
        unit = (h - lo) / (hi - lo if hi > lo else 1.0)
    name = cmap or ("RdBu_r" if symmetric else "inferno")
    return colormaps[name](unit)[..., :3]


def enlarge(rgb: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour enlargement so the longer side is about ``size`` pixels (pixels stay
    square and sharp: an 8x8 digit is shown as blocks, not blurred)."""
    factor = max(1, size // max(rgb.shape[:2]))
    return np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)


def overlay(image_rgb_: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The heat map's colours over the image (both ``(H, W, 3)`` in [0, 1])."""
    return (1 - alpha) * image_rgb_ + alpha * heat


def side_by_side(panels: list[np.ndarray], *, size: int = 256, gap: int = 8) -> np.ndarray:
    """Panels in [0, 1], enlarged to ``size`` and set in a row on white, as uint8 RGB."""
    big = [enlarge(p, size) for p in panels]
    height = max(p.shape[0] for p in big)
    width = sum(p.shape[1] for p in big) + gap * (len(big) + 1)
    out = np.ones((height + 2 * gap, width, 3))
    x = gap
    for p in big:
        out[gap : gap + p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)
