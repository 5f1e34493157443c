"""The animated move of the overview when a layer group opens or closes.

:class:`SceneAnimation` draws in-between scenes (:func:`cnnvis.scene.transition_frame`) for
:data:`DURATION_S` seconds, timed by the clock rather than by the frame count, so a slow frame
shortens the animation instead of stretching it. The new scene's visuals are made once, at the
start; each frame only moves them (``move``). The last frame is the new scene itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6 import QtCore

from cnnvis.scene.transition import transition_frame

__all__ = ["DURATION_S", "SceneAnimation"]

#: How long the boxes take to move to their new places.
DURATION_S = 0.25


class SceneAnimation(QtCore.QObject):
    """Moves the overview from one scene to the next: ``show(scene)`` draws a scene anew,
    ``move(scene)`` moves what is drawn to the places of a frame of the same objects."""

    def __init__(self, show: Callable, move: Callable, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._show = show
        self._move = move
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(16)
        self._timer.timeout.connect(self._step)
        self._scenes = None
        self._t0: float | None = None
        #: Frames drawn by the last animation (the last one is the new scene).
        self.frames = 0

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def start(self, old, new) -> None:
        """Animate from ``old`` to ``new`` (a running animation jumps to its end first)."""
        self.finish()
        self._scenes = (old, new)
        self.frames = 0
        self._show(new)  # the visuals, made once; drawn first at the old places (t = 0)
        self.frames = 1
        self._move(transition_frame(old, new, 0.0))
        # the clock starts at the next tick: the first draw of new visuals compiles their shaders
        self._t0 = None
        self._timer.start()

    def finish(self) -> None:
        """Draw the last frame now and stop."""
        if self._scenes is not None:
            self._timer.stop()
            _, new = self._scenes
            self._scenes = None
            self.frames += 1
            self._move(new)

    def _step(self) -> None:
        if self._scenes is None:
            return
        if self._t0 is None:
            self._t0 = time.perf_counter()
            return
        t = (time.perf_counter() - self._t0) / DURATION_S
        if t >= 1.0:
            self.finish()
            return
        old, new = self._scenes
        # ease out: fast at first, settling into place
        self.frames += 1
        self._move(transition_frame(old, new, 1.0 - (1.0 - t) ** 2))
