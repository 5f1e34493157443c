"""Render a :class:`~cnnvis.scene.Scene` without a display: EGL, falling back to OSMesa.

:func:`render_array` draws a scene into an RGB array; :mod:`cnnvis.export.png` writes it to a file.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["offscreen_app", "parse_size", "render_array"]

_APP: Any = None


def parse_size(
    size: str | tuple[int, int] | None,
    default: tuple[int, int] = (1920, 1080),
    limits: tuple[int, int] = (16, 16384),
) -> tuple[int, int]:
    """``"1920x1080"`` (or a pair) to ``(1920, 1080)``; None gives ``default``.

    Raises ``ValueError`` naming the size for anything that is not ``WxH`` with both sides
    within ``limits``.
    """
    if size is None:
        return default
    if isinstance(size, str):
        parts = size.strip().lower().replace("\u00d7", "x").split("x")
        try:
            w, h = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"size must look like 1920x1080, got {size!r}") from None
    else:
        w, h = (int(v) for v in size)
    lo, hi = limits
    if not (lo <= w <= hi and lo <= h <= hi):
        raise ValueError(f"size must be between {lo} and {hi} pixels a side, got {w}x{h}")
    return w, h


def offscreen_app():
    """A vispy application that can render without a display.

    Uses the already selected vispy application if there is one (for example the Qt viewer's);
    otherwise tries EGL (``EGL_PLATFORM=surfaceless``) and then OSMesa.

    Raises
    ------
    RuntimeError
        When neither works, naming what each backend reported and what to install.
    """
    global _APP
    if _APP is not None:
        return _APP
    from vispy.app import use_app

    try:
        from vispy.app import _default_app
    except ImportError:  # pragma: no cover - vispy's internals moved: choose a backend below
        _default_app = None
    if _default_app is not None and _default_app.default_app is not None:
        _APP = _default_app.default_app
        return _APP
    errors = []
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    for backend in ("egl", "osmesa"):
        try:
            app = use_app(backend)
            _probe(app)
            _APP = app
            return app
        except Exception as exc:  # noqa: BLE001 - report every backend's failure together
            errors.append(f"{backend}: {exc}")
    raise RuntimeError(
        "no offscreen OpenGL: " + "; ".join(errors) + ". Install EGL (libegl1 libegl-mesa0 "
        "libgl1-mesa-dri) or OSMesa (and set OSMESA_LIBRARY)."
    )


def _probe(app) -> None:
    from vispy import gloo
    from vispy.app import Canvas

    canvas = Canvas(app=app, show=False, size=(8, 8))
    try:
        canvas.set_current()
        gloo.clear("white")
    finally:
        canvas.close()


def render_array(scene, size: tuple[int, int] | str = (1920, 1080), canvas=None) -> np.ndarray:
    """Render ``scene`` offscreen and return the RGB image, shape ``(H, W, 3)`` uint8.

    ``canvas`` (a :class:`~cnnvis.render.canvas.SceneCanvas`) is drawn instead of a new one when
    given.
    """
    w, h = parse_size(size)
    app = offscreen_app()
    from cnnvis.render.canvas import SceneCanvas

    own = canvas is None
    if own:
        canvas = SceneCanvas(scene, size=(w, h), show=False, app=app)
    try:
        return np.ascontiguousarray(canvas.render(alpha=False))
    finally:
        if own:
            canvas.close()
