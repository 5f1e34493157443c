"""The overview as a PNG, rendered offscreen with vispy (EGL, falling back to OSMesa).

``python -m cnnvis export png SESSION --out F [--size WxH]`` calls :func:`export_png`;
:func:`render_png` draws any :class:`~cnnvis.scene.Scene` into a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["export_png", "offscreen_app", "parse_size", "render_array", "render_png"]

_APP: Any = None


def parse_size(size: str | tuple[int, int] | None, default: tuple[int, int] = (1920, 1080)):
    """``"1920x1080"`` (or a pair) to ``(1920, 1080)``, with a clear error for bad sizes."""
    if size is None:
        return default
    if isinstance(size, str):
        parts = size.lower().replace("\u00d7", "x").split("x")
        try:
            w, h = (int(p) for p in parts)
        except ValueError:
            raise ValueError(f"size must look like 1920x1080, got {size!r}") from None
    else:
        w, h = (int(v) for v in size)
    if not (16 <= w <= 16384 and 16 <= h <= 16384):
        raise ValueError(f"size must be between 16 and 16384 pixels a side, got {w}x{h}")
    return w, h


def offscreen_app():
    """A vispy application that can render without a display.

    Uses the already selected vispy application if there is one (for example the Qt viewer's);
    otherwise tries EGL (``EGL_PLATFORM=surfaceless``) and then OSMesa.
    """
    global _APP
    if _APP is not None:
        return _APP
    from vispy.app import use_app

    import cnnvis.viewer  # noqa: F401 - loads triton before GL (see there)

    try:
        from vispy.app import _default_app

        if _default_app.default_app is not None:
            _APP = _default_app.default_app
            return _APP
    except ImportError:  # pragma: no cover - vispy internals moved
        pass
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


def render_array(scene, size: tuple[int, int] = (1920, 1080), canvas=None) -> np.ndarray:
    """Render ``scene`` offscreen and return the RGB image, shape ``(H, W, 3)`` uint8."""
    w, h = parse_size(size)
    app = offscreen_app()
    from cnnvis.viewer.canvas import SceneCanvas

    own = canvas is None
    if own:
        canvas = SceneCanvas(scene, size=(w, h), show=False, app=app)
    try:
        return np.ascontiguousarray(canvas.render(alpha=False))
    finally:
        if own:
            canvas.close()


def render_png(scene, path: str | os.PathLike, size: tuple[int, int] | str = (1920, 1080)) -> Path:
    """Render ``scene`` offscreen at ``size`` (``(W, H)`` or ``"WxH"``) into the PNG ``path``."""
    from PIL import Image

    from cnnvis.session import atomic_file

    image = render_array(scene, parse_size(size))
    path = Path(path)
    with atomic_file(path) as f:
        Image.fromarray(image).save(f, format="PNG")
    return path


def export_png(session: Any, out: str | os.PathLike, args: Any = None) -> Path:
    """Render the overview of a session (folder or loaded session) to the PNG ``out``.

    ``args`` (the CLI namespace) may carry ``size`` (``"WxH"``), ``facet`` and ``palette``.
    """
    size = parse_size(getattr(args, "size", None))
    options = {}
    for name in ("facet", "palette"):
        value = getattr(args, name, None)
        if value is not None:
            options[name] = value
    scene = _load(session, options, cli=args is not None)
    return render_png(scene, out, size)


def _load(session: Any, options: dict, cli: bool):
    """The session's scene; on the command line a bad session is a message, not a traceback."""
    from cnnvis.scene import load_scene

    if not cli:
        return load_scene(session, **options)
    try:
        return load_scene(session, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(
            f"cnnvis export: cannot read the session {str(session)!r}: {exc}"
        ) from None
