"""Pictures and files of a session: PNG (drawn by :mod:`cnnvis.render`), SVG (straight from the
scene) and the facet images.

Every exporter is a library function with plain arguments that raises exceptions;
``python -m cnnvis export`` (:mod:`cnnvis.commands.export`) turns them into messages and exit codes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["overview_scene"]


def overview_scene(session: Any, **options: Any):
    """The overview :class:`~cnnvis.scene.Scene` of ``session`` (a folder or a loaded session),
    built with ``options`` (``facet``, ``palette``; None means the default)."""
    from cnnvis.scene import load_scene

    return load_scene(session, **{k: v for k, v in options.items() if v is not None})
