"""Pictures and files of a session: PNG (drawn by :mod:`cnnvis.render`), SVG (straight from the
scene) and the facet images.

Every exporter is a library function with plain arguments that raises exceptions;
``python -m cnnvis export`` (:mod:`cnnvis.commands.export`) turns them into messages and exit codes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["overview_scene"]


def overview_scene(analysis: Any, **options: Any):
    """The overview :class:`~cnnvis.scene.Scene` of an Analysis (or an OverviewInput), built
    with ``options`` (``facet``, ``palette``, ``expanded``, ``depth``; None means the default).

    Export loads nothing: a session folder is opened by the caller
    (:func:`cnnvis.session.open_session`, as ``python -m cnnvis export`` does).
    """
    import os

    from cnnvis.scene import build_scene

    if isinstance(analysis, (str, bytes, os.PathLike)):
        raise TypeError(
            f"export takes an Analysis, not the path {os.fsdecode(analysis)!r}: open the session "
            "with cnnvis.session.open_session first"
        )
    return build_scene(analysis, **{k: v for k, v in options.items() if v is not None})
