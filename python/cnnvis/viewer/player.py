"""The epoch animation player (P5): a layer's projection through training, played.

:class:`EpochPlayer` shows aligned keyframes (:func:`cnnvis.analysis.animation.aligned_frames`)
and glides between them (:func:`~cnnvis.analysis.animation.frame_at`, eased): a slider over
the epochs with in-between positions, play/pause, the epoch and accuracy of the nearest keyframe.
A click on a point tracks it (a ring, a letter A, B, … and a faint trail of where it came from);
a click on a tracked point lets it go. Drag pans, the wheel zooms.

Every sample is one point sprite of one visual (:class:`~cnnvis.render.glvisuals.Sprites`), so
a frame is one upload of the positions and one draw call; time is kept by the clock, not by
the frame count, so a slow machine shows fewer frames rather than a slower animation. With
10,000 points under Xvfb (Mesa's llvmpipe, no GPU) a frame costs ~26 CPU ms, most of it the
software rasteriser and Qt's copy of the canvas: 33 fps with a core free, fewer on a loaded box
(``benchmarks/animation.py``).
:func:`open_player` opens it from the viewer (View > Training animation) on the projection
panel's layer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets
from vispy import scene
from vispy.scene.cameras import PanZoomCamera

from cnnvis.analysis.animation import frame_at, keyframe_at, trails
from cnnvis.render.glvisuals import Sprites
from cnnvis.scene.colors import HIGHLIGHT, class_colors

__all__ = ["EpochPlayer", "open_player"]

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: Seconds the animation takes from one keyframe to the next.
SECONDS_PER_KEYFRAME = 1.5
#: Slider positions between two keyframes.
STEPS = 100
#: How near (screen pixels) a click must be to a point to pick it.
PICK_PX = 8.0


class EpochPlayer(QtWidgets.QWidget):
    """Plays keyframes ``frames`` ``(n_frames, n, 2)`` of ``n`` samples with class ``labels``.

    ``captions`` has one text per keyframe (``"epoch 3 · accuracy 97.1%"``). ``time`` is the
    position in keyframes (keyframe ``i`` at ``i``); ``tracked`` the rows followed, in the order
    of their letters; ``frames_drawn`` counts the canvas' draws (what the benchmark's fps is).
    """

    def __init__(
        self,
        frames: np.ndarray,
        labels: np.ndarray,
        captions: Sequence[str] = (),
        title: str = "",
        class_names: Sequence[str] = (),
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.frames = np.asarray(frames, dtype=np.float32)
        if self.frames.ndim != 3 or self.frames.shape[2] != 2 or self.frames.shape[1] == 0:
            raise ValueError(f"frames must have shape (n_frames, n, 2), got {self.frames.shape}")
        labels = np.asarray(labels, dtype=np.int64)
        palette = class_colors(max(int(labels.max()) + 1, len(class_names)))
        self.colors = palette[labels]
        self.captions = list(captions)
        self._legend = _legend_html(palette, class_names)
        # larger discs when there are few points, 4 px at 10,000
        self._size = float(np.clip(150.0 / np.sqrt(len(labels)), 4.0, 7.0))
        self.tracked: list[int] = []
        self.time = 0.0
        self.frames_drawn = 0
        self._clock: float | None = None
        self._build(title)
        self.set_time(0.0)

    # -- construction ---------------------------------------------------------------------------
    def _build(self, title: str) -> None:
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.canvas = scene.SceneCanvas(keys=None, bgcolor="white", size=(800, 600))
        self.canvas.native.setMinimumSize(240, 180)
        self.view = self.canvas.central_widget.add_view()
        self._trails = scene.visuals.Line(parent=self.view.scene, connect="segments", width=2.0)
        self._points = Sprites(parent=self.view.scene)
        self._marks = Sprites(parent=self.view.scene)
        self._letters = scene.visuals.Text(
            parent=self.view.scene,
            color=(0.16, 0.16, 0.16, 1.0),
            font_size=12,
            bold=True,
            anchor_x="center",
            anchor_y="center",
        )
        self._tags = Sprites(parent=self.view.scene)  # a white disc behind each letter
        layers = (self._trails, self._points, self._marks, self._tags, self._letters)
        for z, v in enumerate(layers):
            v.order = z
        self.view.camera = PanZoomCamera(aspect=1)
        lo, hi = self.frames.min(axis=(0, 1)), self.frames.max(axis=(0, 1))
        self.view.camera.set_range(x=(lo[0], hi[0]), y=(lo[1], hi[1]), margin=0.04)
        self.canvas.events.draw.connect(self._count_draw)
        # letters sit a fixed number of pixels from their points: place them again on zoom
        self.view.scene.transform.changed.connect(lambda _event: self._draw_tracks())
        self.canvas.events.mouse_press.connect(self._on_press)
        self.canvas.events.mouse_release.connect(self._on_release)
        lay.addWidget(self.canvas.native, 1)
        if self._legend:
            legend = QtWidgets.QLabel(self._legend)
            legend.setWordWrap(True)
            lay.addWidget(legend)
        lay.addLayout(self._controls(title))
        self._timer = QtCore.QTimer(self)
        # a tick per 15 ms at most (more would move the points between two draws for nothing);
        # the clock, not the tick count, sets the pace
        self._timer.setInterval(15)
        self._timer.timeout.connect(self._tick)

    def _controls(self, title: str) -> QtWidgets.QHBoxLayout:
        bar = QtWidgets.QHBoxLayout()
        self.play_button = QtWidgets.QToolButton()
        self.play_button.setText("Play")
        self.play_button.setToolTip("play the epochs (Space)")
        self.play_button.setShortcut("Space")
        self.play_button.clicked.connect(self.toggle)
        bar.addWidget(self.play_button)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, (self.frames.shape[0] - 1) * STEPS)
        self.slider.setPageStep(STEPS)
        self.slider.setTickInterval(STEPS)
        self.slider.setTickPosition(QtWidgets.QSlider.TickPosition.TicksBelow)
        self.slider.valueChanged.connect(lambda v: self.set_time(v / STEPS))
        self.slider.sliderPressed.connect(self.pause)  # the hand on the slider takes over
        bar.addWidget(self.slider, 1)
        self.caption = QtWidgets.QLabel()
        self.caption.setMinimumWidth(220)
        bar.addWidget(self.caption)
        clear = QtWidgets.QToolButton()
        clear.setText("Clear tracks")
        clear.setToolTip("stop following the picked points (click a point to follow it)")
        clear.clicked.connect(self.clear_tracks)
        bar.addWidget(clear)
        self._title = title
        return bar

    # -- time -----------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def play(self) -> None:
        """Play from here (from the start when at the end)."""
        if self.time >= self.frames.shape[0] - 1:
            self.set_time(0.0)
        self._clock = time.perf_counter() - self.time * SECONDS_PER_KEYFRAME
        self._timer.start()
        self.play_button.setText("Pause")

    def pause(self) -> None:
        self._timer.stop()
        self.play_button.setText("Play")

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def _tick(self) -> None:
        t = (time.perf_counter() - self._clock) / SECONDS_PER_KEYFRAME
        end = self.frames.shape[0] - 1
        self.set_time(min(t, end))
        if t >= end:
            self.pause()

    def set_time(self, t: float) -> None:
        """Show the samples at time ``t`` (keyframe ``i`` at ``i``; clipped)."""
        self.time = float(np.clip(t, 0.0, self.frames.shape[0] - 1))
        self.positions = frame_at(self.frames, self.time)
        self._points.set_data(self.positions, face_color=self.colors, size=self._size)
        self._draw_tracks()
        self.slider.blockSignals(True)
        self.slider.setValue(int(round(self.time * STEPS)))
        self.slider.blockSignals(False)
        i = keyframe_at(self.frames.shape[0], self.time)
        text = self.captions[i] if i < len(self.captions) else f"frame {i}"
        text = f"<b>{self._title}</b>&nbsp;&nbsp;{text}"
        if self.caption.text() != text:  # a new label lays the bar out again: only when it changes
            self.caption.setText(text)
        self.canvas.update()

    def _count_draw(self, _event: Any) -> None:
        self.frames_drawn += 1

    # -- tracking -------------------------------------------------------------------------------
    def track(self, row: int) -> None:
        """Follow sample ``row`` (a row of ``frames``), or stop following it if it is tracked."""
        row = int(row)
        if not 0 <= row < self.frames.shape[1]:
            raise ValueError(f"row must be in 0..{self.frames.shape[1] - 1}, got {row}")
        if row in self.tracked:
            self.tracked.remove(row)
        elif len(self.tracked) < len(LETTERS):
            self.tracked.append(row)
        self._draw_tracks()
        self.canvas.update()

    def clear_tracks(self) -> None:
        self.tracked = []
        self._draw_tracks()
        self.canvas.update()

    def letter_positions(self) -> np.ndarray:
        """Where each tracked point's letter is anchored, ``(k, 2)`` in data units."""
        rows = np.asarray(self.tracked, dtype=np.int64)
        return self.positions[rows] + self._letter_offset()

    def _letter_offset(self) -> np.ndarray:
        """Twelve pixels up and right of the point, in data units at the current zoom."""
        return np.array([12.0, 12.0], dtype=np.float32) * self._data_per_pixel()

    def _data_per_pixel(self) -> float:
        """Data units per screen pixel at the current zoom (the same along x and y)."""
        to_data = self.canvas.scene.node_transform(self.view.scene)
        a, b = to_data.map(np.array([[0.0, 0.0], [100.0, 0.0]]))[:, :2]
        return float(np.hypot(*(b - a))) / 100.0

    def _draw_tracks(self) -> None:
        visible = bool(self.tracked)
        for v in (self._trails, self._marks, self._tags, self._letters):
            v.visible = visible
        if not visible:
            return
        rows = np.asarray(self.tracked, dtype=np.int64)
        color = self.colors[rows]
        self._marks.set_data(
            self.positions[rows], color, size=self._size + 6, edge_color=HIGHLIGHT, edge_width=2.0
        )
        letters = [LETTERS[k] for k in range(len(rows))]
        if self._letters.text != letters:  # new glyphs only when the tracked points change
            self._letters.text = letters
        tags = self.letter_positions()
        self._letters.pos = tags
        self._tags.set_data(tags, (1, 1, 1, 0.92), size=17.0, edge_color=HIGHLIGHT, edge_width=1.5)
        paths = trails(self.frames, rows, self.time, span=1.0, steps=16)  # (k, steps, 2)
        fade = np.linspace(0.05, 0.55, paths.shape[1] - 1, dtype=np.float32)
        seg = np.stack([paths[:, :-1], paths[:, 1:]], axis=2).reshape(-1, 2)
        rgba = np.repeat(color[:, None, :], paths.shape[1] - 1, axis=1).copy()
        rgba[..., 3] = fade
        self._trails.set_data(
            pos=seg.astype(np.float32), color=np.repeat(rgba.reshape(-1, 4), 2, 0)
        )

    def _on_press(self, event: Any) -> None:
        self._press_at = np.asarray(event.pos[:2], dtype=np.float64)

    def _on_release(self, event: Any) -> None:
        """A click (not a drag) picks the nearest point within :data:`PICK_PX` pixels."""
        start = getattr(self, "_press_at", None)
        if event.button != 1 or start is None or np.hypot(*(event.pos[:2] - start)) > 3:
            return
        row = self.pick(event.pos[:2])
        if row is not None:
            self.track(row)

    def pick(self, canvas_xy: Any) -> int | None:
        """The row of the point nearest to the canvas pixel ``canvas_xy``, or None when no
        point is within :data:`PICK_PX` pixels."""
        to_data = self.canvas.scene.node_transform(self.view.scene)
        x, y = to_data.map(np.asarray(canvas_xy, dtype=np.float64)[:2])[:2]
        d = np.hypot(self.positions[:, 0] - x, self.positions[:, 1] - y)
        row = int(np.argmin(d))
        return row if d[row] <= PICK_PX * self._data_per_pixel() else None

    def data_to_canvas(self, xy: Any) -> np.ndarray:
        """Canvas pixel positions of data positions ``xy`` ``(k, 2)``."""
        to_canvas = self.view.scene.node_transform(self.canvas.scene)
        return np.asarray(to_canvas.map(np.asarray(xy, dtype=np.float64))[:, :2])


def _legend_html(palette: np.ndarray, names: Sequence[str]) -> str:
    """A line of class swatches (coloured discs) and names."""
    from cnnvis.scene.colors import rgba_to_hex

    return "&nbsp;&nbsp; ".join(
        f'<span style="color:{rgba_to_hex(palette[c])}; font-size:15px">&#9679;</span>&nbsp;{name}'
        for c, name in enumerate(names)
    )


def open_player(window: Any) -> EpochPlayer | None:
    """Open a player on the viewer ``window``'s session at its projection panel's layer, in a
    window of its own; says in the status bar why not when the session has under two
    snapshots."""
    from cnnvis.analysis.animation import aligned_frames
    from cnnvis.analysis.projections import activations

    ctl = getattr(window, "controller", None)
    if ctl is None:
        return None
    rec, layer = ctl.rec, ctl.projection_layer
    if len(rec.snapshots) < 2:
        window.statusBar().showMessage("the training animation needs two or more snapshots")
        return None
    QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
    try:
        frames = aligned_frames([activations(rec, layer, s) for s in range(len(rec.snapshots))])
    finally:
        QtWidgets.QApplication.restoreOverrideCursor()
    captions = [
        f"epoch {s.get('epoch', i)}  ·  accuracy {100.0 * float(s.get('accuracy', np.nan)):.1f}%"
        for i, s in enumerate(rec.snapshots)
    ]
    names = [str(c) for c in ctl.class_names]
    player = EpochPlayer(frames, rec.pooled_labels, captions, layer, names, parent=window)
    player.setWindowFlag(QtCore.Qt.WindowType.Window)
    player.setWindowTitle(f"Training animation — {layer}")
    player.resize(900, 760)
    player.show()
    window.player = player
    return player
