"""Colours of the scene: class palettes, edge-sign palettes and the activation colormap.

All colours are RGBA floats in ``[0, 1]``. Nothing here draws; the viewer and the exporters read
these values from the :class:`~cnnvis.scene.Scene`.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "HIGHLIGHT",
    "SIGN_PALETTES",
    "class_colors",
    "colormap",
    "hex_to_rgba",
    "rgba_to_hex",
]


def hex_to_rgba(value: str, alpha: float = 1.0) -> np.ndarray:
    """``"#rrggbb"`` to an RGBA float array."""
    value = value.lstrip("#")
    if len(value) != 6:
        raise ValueError(f"expected a colour as #rrggbb, got {value!r}")
    rgb = [int(value[i : i + 2], 16) / 255.0 for i in (0, 2, 4)]
    return np.array([*rgb, alpha], dtype=np.float32)


def rgba_to_hex(rgba: np.ndarray) -> str:
    """RGBA floats to ``"#rrggbb"`` (alpha dropped)."""
    r, g, b = (int(round(float(np.clip(c, 0, 1)) * 255)) for c in rgba[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


# A qualitative palette of ten well separated hues (the widely used "category 10" values), and ten
# lighter companions for classes eleven to twenty.
_QUALITATIVE = (
    "#1f77b4 #ff7f0e #2ca02c #d62728 #9467bd #8c564b #e377c2 #7f7f7f #bcbd22 #17becf "
    "#aec7e8 #ffbb78 #98df8a #ff9896 #c5b0d5 #c49c94 #f7b6d2 #c7c7c7 #dbdb8d #9edae5"
).split()

# What is selected or lit up, everywhere it is drawn (canvas, SVG, legend): a magenta apart from
# the class, sign and matrix colours.
HIGHLIGHT = (0.84, 0.1, 0.55, 1.0)

# Edge colours by sign: (positive, negative). The default pair stays distinct under the common
# forms of colour blindness; "paper" is the green/red of the CNNVis paper.
SIGN_PALETTES: dict[str, tuple[str, str]] = {
    "blue-orange": ("#0072b2", "#e69f00"),
    "paper": ("#1a9641", "#d7191c"),
}


def class_colors(n_classes: int) -> np.ndarray:
    """One colour per class, shape ``(n_classes, 4)``.

    Up to 20 classes get the fixed qualitative palette; beyond that hues are spread evenly
    around the colour wheel at two lightness levels.
    """
    if n_classes < 0:
        raise ValueError(f"n_classes must be >= 0, got {n_classes}")
    if n_classes <= len(_QUALITATIVE):
        return np.stack([hex_to_rgba(h) for h in _QUALITATIVE[:n_classes]]).reshape(-1, 4)
    hue = (np.arange(n_classes) * 0.618033988749895) % 1.0
    light = np.where(np.arange(n_classes) % 2 == 0, 0.45, 0.65)
    return _hls_to_rgba(hue, light, np.full(n_classes, 0.65))


def _hls_to_rgba(h: np.ndarray, lum: np.ndarray, s: np.ndarray) -> np.ndarray:
    def channel(n: float) -> np.ndarray:
        k = (n + h * 12.0) % 12.0
        a = s * np.minimum(lum, 1.0 - lum)
        return lum - a * np.maximum(-1.0, np.minimum(np.minimum(k - 3.0, 9.0 - k), 1.0))

    rgb = np.stack([channel(0.0), channel(8.0), channel(4.0)], axis=1)
    return np.concatenate([rgb, np.ones((len(h), 1))], axis=1).astype(np.float32)


# A perceptually ordered sequential map (dark blue-purple -> teal -> green -> yellow), given by
# anchor colours and interpolated linearly in RGB.
_SEQUENTIAL = np.array(
    [
        [0.267, 0.005, 0.329],
        [0.283, 0.141, 0.458],
        [0.254, 0.265, 0.530],
        [0.207, 0.372, 0.553],
        [0.164, 0.471, 0.558],
        [0.128, 0.567, 0.551],
        [0.135, 0.659, 0.518],
        [0.267, 0.749, 0.441],
        [0.478, 0.821, 0.318],
        [0.741, 0.873, 0.150],
        [0.993, 0.906, 0.144],
    ],
    dtype=np.float64,
)


def colormap(
    values: np.ndarray, vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map values to RGBA uint8 with the sequential activation colormap.

    Parameters
    ----------
    values : ndarray
        Any shape; NaN maps to light grey.
    vmin, vmax : float, optional
        Value range mapped to the ends of the map (default: the finite min and max).

    Returns
    -------
    ndarray, shape ``values.shape + (4,)``, uint8
    """
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    if vmin is None:
        vmin = float(v[finite].min()) if finite.any() else 0.0
    if vmax is None:
        vmax = float(v[finite].max()) if finite.any() else 1.0
    span = vmax - vmin if vmax > vmin else 1.0
    t = np.clip((np.where(finite, v, vmin) - vmin) / span, 0.0, 1.0)
    pos = t * (len(_SEQUENTIAL) - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), len(_SEQUENTIAL) - 2)
    f = (pos - i0)[..., None]
    rgb = _SEQUENTIAL[i0] * (1.0 - f) + _SEQUENTIAL[i0 + 1] * f
    out = np.empty(v.shape + (4,), dtype=np.uint8)
    out[..., :3] = np.round(rgb * 255.0).astype(np.uint8)
    out[..., 3] = 255
    out[~finite] = (220, 220, 220, 255)
    return out
