"""In-between scenes for an animated change of the overview (expanding or collapsing a group).

:func:`transition_frame` blends two scenes of the same analysis: every rectangle, image and label
of the new overview that the old one also has (same id, same text) moves from its old place to
its new one; what is new fades in where it will end; connections, which would cross moving boxes,
are left out until the last frame (``t == 1`` gives the new scene itself). It is pure geometry,
so the viewer animates with it and a test can check it without a window.
"""

from __future__ import annotations

import copy
from collections import Counter

import numpy as np

from cnnvis.scene.model import Images, Labels, Panel, Polylines, Rects, Scene

__all__ = ["transition_frame"]


def _keys(ids, texts=None) -> list[tuple]:
    """A key per element: its id, its text for labels, and how many came before with both (ids
    are not unique: a band's frame and title share one)."""
    seen: Counter = Counter()
    out = []
    for i, pid in enumerate(ids):
        base = (pid, None if texts is None else texts[i])
        out.append((base, seen[base]))
        seen[base] += 1
    return out


def _blend_xy(old_xy, old_keys, new_xy, new_keys, t: float) -> tuple[np.ndarray, np.ndarray]:
    """New positions moved back towards the old ones by ``1 - t``, and whether each was there."""
    where = {k: i for i, k in enumerate(old_keys)}
    idx = np.array([where.get(k, -1) for k in new_keys], dtype=np.int64)
    had = idx >= 0
    xy = np.asarray(new_xy, np.float32).copy()
    if had.any():
        start = np.asarray(old_xy, np.float32)[idx[had]]
        xy[had] = start + (xy[had] - start) * np.float32(t)
    return xy, had


def _fade(color: np.ndarray, had: np.ndarray, t: float) -> np.ndarray:
    out = np.asarray(color, np.float32).copy()
    if len(out):
        out[~had, 3] *= np.float32(t)
    return out


def _rects(old: Rects, new: Rects, t: float) -> Rects:
    xywh, had = _blend_xy(old.xywh, _keys(old.ids), new.xywh, _keys(new.ids), t)
    return Rects(
        xywh, _fade(new.fill, had, t), _fade(new.stroke, had, t), new.stroke_width.copy(),
        list(new.ids), new.pickable,
    )  # fmt: skip


def _images(old: Images, new: Images, t: float) -> Images:
    xywh, had = _blend_xy(old.xywh, _keys(old.ids), new.xywh, _keys(new.ids), t)
    # an image that was not there appears at once when it lands (images have no alpha here)
    zoom = np.where(had | (t >= 1.0), new.min_zoom, np.float32(np.inf)).astype(np.float32)
    return Images(list(new.data), xywh, list(new.interpolation), zoom, list(new.ids))


def _labels(old: Labels, new: Labels, t: float) -> Labels:
    pos, had = _blend_xy(
        old.pos, _keys(old.ids, old.text), new.pos, _keys(new.ids, new.text), t
    )  # fmt: skip
    out = copy.copy(new)
    out.pos = pos
    out.color = _fade(new.color, had, t)
    out.background = _fade(new.background, had, t)
    return out


def _panel(old: Panel, new: Panel, t: float) -> Panel:
    bounds = tuple(float(a + (b - a) * t) for a, b in zip(old.bounds, new.bounds))
    return Panel(
        new.name, bounds, _rects(old.rects, new.rects, t), _images(old.images, new.images, t),
        Polylines(), new.points, _labels(old.labels, new.labels, t),
        _rects(old.top_rects, new.top_rects, t), new.background, new.interactive,
    )  # fmt: skip


def transition_frame(old: Scene, new: Scene, t: float, panel: str = "overview") -> Scene:
    """The scene a fraction ``t`` (0 to 1) of the way from ``old`` to ``new``.

    Only ``panel`` moves; the other panels are ``new``'s. ``t >= 1`` returns ``new`` itself.
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    if t >= 1.0 or panel not in old.panels or panel not in new.panels:
        return new
    frame = copy.copy(new)
    frame.panels = dict(new.panels)
    frame.panels[panel] = _panel(old.panels[panel], new.panels[panel], t)
    return frame
