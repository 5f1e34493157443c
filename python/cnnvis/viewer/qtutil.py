"""Small Qt helpers shared by the viewer's panels: arrays to pixmaps, colours, a palette."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui

from cnnvis.scene.colors import class_colors


def class_palette(n: int) -> np.ndarray:
    """``(n, 3)`` float RGB colours in ``[0, 1]``, one per class: the scene's class colours."""
    return class_colors(n)[:, :3].copy()


def to_rgb01(colors, n: int) -> np.ndarray:
    """Normalise a colour table (floats in [0,1], ints in [0,255], or hex strings) to ``(n, 3)``."""
    if colors is None:
        return class_palette(n)
    if len(colors) and isinstance(colors[0], str):
        out = np.array(
            [
                [QtGui.QColor(c).redF(), QtGui.QColor(c).greenF(), QtGui.QColor(c).blueF()]
                for c in colors
            ],
            np.float32,
        )
    else:
        out = np.asarray(colors, dtype=np.float32)[:, :3]
        if out.size and out.max() > 1.0:
            out = out / 255.0
    if out.shape[0] < n:
        out = np.vstack([out, class_palette(n)[out.shape[0] :]])
    return out[:n]


def qcolor(rgb) -> QtGui.QColor:
    r, g, b = (float(v) for v in list(rgb)[:3])
    return QtGui.QColor.fromRgbF(
        min(max(r, 0.0), 1.0), min(max(g, 0.0), 1.0), min(max(b, 0.0), 1.0)
    )


def array_to_qimage(arr: np.ndarray) -> QtGui.QImage:
    """An ``(h, w)``, ``(h, w, 1)``, ``(h, w, 3)`` or ``(h, w, 4)`` image to a QImage (copied)."""
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        a = a.astype(np.float32)
        lo, hi = float(np.nanmin(a)) if a.size else 0.0, float(np.nanmax(a)) if a.size else 1.0
        a = np.nan_to_num((a - lo) / (hi - lo if hi > lo else 1.0)) * 255.0
        a = a.clip(0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.ascontiguousarray(a)
        h, w = a.shape
        img = QtGui.QImage(a.data, w, h, a.strides[0], QtGui.QImage.Format.Format_Grayscale8)
    elif a.ndim == 3 and a.shape[2] in (3, 4):
        a = np.ascontiguousarray(a)
        h, w, c = a.shape
        fmt = QtGui.QImage.Format.Format_RGB888 if c == 3 else QtGui.QImage.Format.Format_RGBA8888
        img = QtGui.QImage(a.data, w, h, a.strides[0], fmt)
    else:
        raise ValueError(f"cannot show an image of shape {a.shape}")
    return img.copy()  # detach from the numpy buffer


def array_to_pixmap(arr: np.ndarray, size: int | None = None) -> QtGui.QPixmap:
    """A pixmap of an image array, scaled (pixelated, aspect kept) so its long side is ``size``."""
    pm = QtGui.QPixmap.fromImage(array_to_qimage(arr))
    if size is not None and pm.width() and pm.height():
        pm = pm.scaled(
            size,
            size,
            QtCore.Qt.AspectRatioMode.KeepAspectRatio,
            QtCore.Qt.TransformationMode.FastTransformation,
        )
    return pm
