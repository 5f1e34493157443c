"""The viewer's File > Compare window: two models recorded on the same data, side by side.

Above, the two overviews (each the scene the main window shows, in its own pan/zoom canvas).
Below left, the samples' projection morphing from model A's (slider at 0) to model B's (at 1),
B's t-SNE started from A's (:class:`~cnnvis.analysis.comparison.ModelComparison`); the slider and
Play/Pause drive it. Below right, the table: the models' accuracy and parameters, then per
layer channels, parameters, redundancy and sign balance (:mod:`cnnvis.export.compare`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from cnnvis.viewer.projection import ProjectionPanel

__all__ = ["CompareWindow", "MorphPanel", "compare_dialog", "compare_with"]

#: Seconds the Play button takes to morph from one model to the other.
MORPH_S = 2.0
_STEPS = 1000  # slider positions from A (0) to B (_STEPS)


class MorphPanel(ProjectionPanel):
    """A projection panel whose points can move without resetting the view or the selection."""

    def move_points(self, coords: np.ndarray, predictions: np.ndarray) -> None:
        """Draw the same samples at ``coords``, ringed where ``predictions`` are wrong."""
        self._main = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
        self._preds = np.asarray(predictions, dtype=np.int64).reshape(-1)
        first = self.views[0]  # the morph shows one panel; moved in place, the view kept
        first.data = replace(first.data, coords=self._main)
        first.shown = self._main
        self._redraw()

    def show_extent(self, *coords: np.ndarray) -> None:
        """Fit the view to every given set of points (all the places the morph passes)."""
        c = np.concatenate([np.asarray(x).reshape(-1, 2) for x in coords])
        lo, hi = c.min(axis=0), c.max(axis=0)
        pad = 0.06 * float(max(hi - lo)) + 1e-6
        x, y = (float(lo[0] - pad), float(hi[0] + pad)), (float(lo[1] - pad), float(hi[1] + pad))
        self.view.camera.set_range(x=x, y=y, margin=0)


def _model_title(label: str, m: Any, colour: str) -> QtWidgets.QLabel:
    title = QtWidgets.QLabel(
        f"<span style='color:{colour}; font-size:15px'><b>{label}&nbsp; {m.name}</b></span>"
        f"&nbsp;&nbsp;<span style='color:#555'>{m.model} · accuracy {m.accuracy:.1%} · "
        f"{m.parameters:,} parameters</span>"
    )
    title.setContentsMargins(6, 4, 6, 2)
    return title


class CompareWindow(QtWidgets.QMainWindow):
    """Models A and B side by side (see the module docstring).

    Parameters
    ----------
    a, b : Analysis
        The two models' analyses, recorded on the same data.
    comparison : ModelComparison, optional
        Made with :func:`cnnvis.export.compare.compare_shown` when not given.
    """

    def __init__(self, a: Any, b: Any, comparison: Any = None, parent=None) -> None:
        super().__init__(parent)
        from cnnvis.export.compare import compare_shown

        self.comparison = cmp = comparison if comparison is not None else compare_shown(a, b)
        self.setWindowTitle(f"cnnvis — compare {cmp.a.name} with {cmp.b.name}")
        self.resize(1600, 1000)
        self.overviews = [self._overview(x) for x in (a, b)]
        tops = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        for label, m, colour, canvas in zip(
            "AB", (cmp.a, cmp.b), ("#2166ac", "#b2182b"), self.overviews
        ):
            box = QtWidgets.QWidget()
            lay = QtWidgets.QVBoxLayout(box)
            lay.setContentsMargins(0, 0, 0, 0)
            lay.addWidget(_model_title(label, m, colour))
            lay.addWidget(canvas.native, 1)
            tops.addWidget(box)
        bottom = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        bottom.addWidget(self._morph_box(a))
        bottom.addWidget(self._table_box())
        bottom.setSizes([700, 900])
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(tops)
        split.addWidget(bottom)
        split.setSizes([520, 480])
        self.setCentralWidget(split)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(16)
        self._timer.timeout.connect(self._step)
        self._direction = 1
        self.set_t(0.0)

    # -- construction ---------------------------------------------------------------------------
    @staticmethod
    def _overview(analysis: Any):
        from cnnvis.render.canvas import SceneCanvas
        from cnnvis.scene import build_scene

        scene = build_scene(analysis, projection=False, legend=False)
        canvas = SceneCanvas(scene, size=(700, 500), show=False)
        canvas.native.setMinimumSize(300, 220)
        return canvas

    def _morph_box(self, a: Any) -> QtWidgets.QWidget:
        cmp = self.comparison
        self.morph = MorphPanel()
        images = a.recording.pooled_images[cmp.rows_a]
        title = f"Samples: A {cmp.layer_a} → B {cmp.layer_b}"
        self.morph.set_data(
            cmp.coords_a, cmp.labels, cmp.predictions_a, cmp.class_names, images=images, title=title
        )
        self.morph.show_extent(cmp.coords_a, cmp.coords_b)
        self.morph.layer_box.hide()  # the layers are the comparison's
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, _STEPS)
        self.slider.setToolTip("0: where model A puts each sample; 1: where model B does")
        self.slider.valueChanged.connect(lambda v: self.set_t(v / _STEPS))
        self.play = QtWidgets.QPushButton("Play")
        self.play.setCheckable(True)
        self.play.toggled.connect(self._on_play)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("<b>A</b>"))
        row.addWidget(self.slider, 1)
        row.addWidget(QtWidgets.QLabel("<b>B</b>"))
        row.addWidget(self.play)
        box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 4)
        lay.addWidget(self.morph, 1)
        lay.addLayout(row)
        return box

    def _table_box(self) -> QtWidgets.QWidget:
        from cnnvis.export.compare import summary_lines, table_lines

        cmp = self.comparison
        header, rows = table_lines(cmp)
        summary = summary_lines(cmp)
        self.table = QtWidgets.QTableWidget(len(summary) - 1 + len(rows), len(header))
        self.table.setHorizontalHeaderLabels(header)
        self.table.verticalHeader().hide()
        # the whole models first, each value across its model's four columns
        cells = [[r[0], r[1], "", "", "", r[2], "", "", ""] for r in summary[1:]] + rows
        right = QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        for i, cells_i in enumerate(cells):
            for j, text in enumerate(cells_i):
                item = QtWidgets.QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(
                        right if i >= len(summary) - 1 else QtCore.Qt.AlignmentFlag.AlignCenter
                    )
                self.table.setItem(i, j, item)
            if i < len(summary) - 1:
                self.table.setSpan(i, 1, 1, 4)
                self.table.setSpan(i, 5, 1, 4)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        head.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        moved = cmp.displacement
        note = QtWidgets.QLabel(
            f"projections of {len(cmp.samples)} samples: neighbourhood hit A "
            f"{cmp.neighbourhood_hit_a:.3f}, B {cmp.neighbourhood_hit_b:.3f}; neighbour "
            f"agreement {cmp.neighbour_agreement:.3f}; mean displacement {moved.mean():.3f}.<br>"
            "<span style='color:#666'>redundant: share of neurons with a near-identical "
            "activation-matrix row in their cluster; positive: share of positive connection "
            "weight from the layer before</span>"
        )
        note.setWordWrap(True)
        box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(box)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.table, 1)
        lay.addWidget(note)
        return box

    # -- the morph ------------------------------------------------------------------------------
    @property
    def t(self) -> float:
        return self._t

    def set_t(self, t: float) -> None:
        """Show the samples a fraction ``t`` of the way from model A (0) to model B (1)."""
        cmp = self.comparison
        self._t = t = float(np.clip(t, 0.0, 1.0))
        who, preds = ("A", cmp.predictions_a) if t < 0.5 else ("B", cmp.predictions_b)
        self.morph.move_points(cmp.morph(t), preds)
        wrong = int(np.sum(preds != cmp.labels))
        self.morph.status.setText(
            f"{t:.0%} of the way from A to B  ·  {len(preds)} samples, {wrong} misclassified by"
            f" {who} (ringed)  ·  hover a point to see it"
        )
        value = int(round(t * _STEPS))
        if self.slider.value() != value:
            self.slider.blockSignals(True)
            self.slider.setValue(value)
            self.slider.blockSignals(False)

    def _on_play(self, playing: bool) -> None:
        self.play.setText("Pause" if playing else "Play")
        if not playing:
            self._timer.stop()
            return
        if self._t >= 1.0:
            self._direction = -1  # at B: play back to A
        elif self._t <= 0.0:
            self._direction = 1
        self._timer.start()

    def _step(self) -> None:
        # a fixed step per tick, not per elapsed second: every frame of the morph is drawn, and a
        # slow frame slows the morph down instead of skipping part of it
        t = self._t + self._direction * self._timer.interval() / 1000.0 / MORPH_S
        self.set_t(t)
        if t >= 1.0 or t <= 0.0:
            self.play.setChecked(False)


def compare_with(window: Any, path: str) -> CompareWindow:
    """Open and show a :class:`CompareWindow` of the main ``window``'s session (A) and the
    session at ``path`` (B).

    Raises
    ------
    ValueError
        When the window shows no session, the folder is no session
        (:class:`~cnnvis.session.SessionError`), or the two were recorded on other data.
    """
    from cnnvis.session import open_session

    if window.controller is None:
        raise ValueError("open a session first, then compare it with another")
    compare = CompareWindow(window.controller.analysis, open_session(path), parent=window)
    compare.show()
    return compare


def compare_dialog(window: Any) -> CompareWindow | None:
    """File > Compare of the main ``window``: ask for a second session and open
    :func:`compare_with`; what goes wrong is said in a message box."""
    start = str(Path(window.session_path).parent) if window.session_path else str(Path.home())
    path = QtWidgets.QFileDialog.getExistingDirectory(
        window, "Compare with a session recorded on the same data", start
    )
    if not path:
        return None
    try:
        return compare_with(window, path)
    except (ValueError, KeyError) as exc:
        QtWidgets.QMessageBox.warning(window, "Cannot compare", str(exc))
        return None
