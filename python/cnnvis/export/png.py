"""The overview as a PNG, drawn offscreen by :mod:`cnnvis.render`.

:func:`render_png` writes any :class:`~cnnvis.scene.Scene` to a file; :func:`export_png` does it
for an Analysis (``python -m cnnvis export png SESSION --out F [--size WxH] [--expand all]``).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from cnnvis.export import overview_scene
from cnnvis.render.offscreen import parse_size, render_array

__all__ = ["export_png", "render_png"]


def render_png(scene, path: str | os.PathLike, size: tuple[int, int] | str = (1920, 1080)) -> Path:
    """Render ``scene`` offscreen at ``size`` (``(W, H)`` or ``"WxH"``) into the PNG ``path``.

    Written atomically; a folder that cannot be made is an ``OSError`` naming it.
    """
    from PIL import Image

    from cnnvis.io import atomic_file

    image = render_array(scene, parse_size(size))
    path = Path(path)
    with atomic_file(path) as f:
        Image.fromarray(image).save(f, format="PNG")
    return path


def export_png(
    analysis: Any,
    out: str | os.PathLike,
    *,
    size: tuple[int, int] | str | None = None,
    facet: str | None = None,
    palette: str | None = None,
    expanded: Collection[str] | str | None = None,
    depth: int | None = None,
) -> Path:
    """Render the overview of an Analysis to the PNG ``out``.

    ``size`` is ``(W, H)`` or ``"WxH"`` (default 1920x1080); ``facet``, ``palette``, ``expanded``
    (``"all"`` or group names) and ``depth`` go to :func:`~cnnvis.scene.build_scene`. A session
    folder is opened first with :func:`cnnvis.session.open_session`; a path here is a TypeError.
    """
    options = dict(facet=facet, palette=palette, expanded=expanded, depth=depth)
    return render_png(overview_scene(analysis, **options), out, parse_size(size))
