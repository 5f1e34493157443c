"""Progress and cancellation for the toolbox's long loops (maximize, invert, occlusion, attacks).

A loop is given ``progress``, a plain callable ``progress(done, total)``, and ``should_stop``,
a callable returning True or a :class:`threading.Event`; it calls :func:`step` between its
iterations. When the caller asks to stop, the loop ends by raising :class:`Cancelled` (its hooks
are removed and the model's mode restored on the way out, as on any error).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["Cancelled", "Progress", "StopFlag", "step"]

Progress = Callable[[int, int], object] | None
StopFlag = Callable[[], bool] | threading.Event | None


class Cancelled(Exception):
    """A toolbox computation stopped early because its caller asked it to (``should_stop``)."""


def step(done: int, total: int, progress: Progress, should_stop: StopFlag, what: str) -> None:
    """Raise :class:`Cancelled` if ``should_stop`` says so, else report ``done`` of ``total``."""
    if should_stop is not None:
        stop = should_stop.is_set() if isinstance(should_stop, threading.Event) else should_stop()
        if stop:
            raise Cancelled(f"{what} cancelled after {done} of {total} steps")
    if progress is not None:
        progress(done, total)
