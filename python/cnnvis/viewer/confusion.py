"""The confusion panel (T2): the session's confusion matrix, each cell showing its count over
its most confident example, and the most confident mistakes as a gallery.

Click a cell: its samples are selected everywhere (``cell_clicked(true, predicted)``).
Double-click a cell, or click a mistake: the inspector opens on that sample
(``sample_clicked(sample)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cnnvis import interpret
from cnnvis.viewer.qtutil import array_to_pixmap

__all__ = ["ConfusionPanel"]

#: Side of a cell's example picture, and how many mistakes the gallery shows.
CELL, MISTAKES = 30, 12


class _Cell(QtWidgets.QToolButton):
    double_clicked = QtCore.Signal()

    def mouseDoubleClickEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt API)
        self.double_clicked.emit()


def _tint(share: float, diagonal: bool) -> str:
    """A cell's background: green on the diagonal, red off it, stronger for a larger share of
    its true class."""
    base = np.array([46, 160, 67] if diagonal else [214, 39, 40], float)
    rgb = 255 - (255 - base) * min(1.0, 0.12 + 0.88 * share) if share > 0 else np.full(3, 250.0)
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


class ConfusionPanel(QtWidgets.QWidget):
    """See the module docstring. ``confusion`` is the shown :class:`cnnvis.interpret.Confusion`;
    ``cells[(t, p)]`` its buttons."""

    cell_clicked = QtCore.Signal(int, int)
    sample_clicked = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.confusion: interpret.Confusion | None = None
        self.cells: dict[tuple[int, int], _Cell] = {}
        self.gallery: list[_Cell] = []
        lay = QtWidgets.QHBoxLayout(self)
        left = QtWidgets.QVBoxLayout()
        head = QtWidgets.QLabel(
            "<b>Confusion matrix</b><br><span style='color:#666'>rows: true class, columns: "
            "predicted; each cell shows its most confident example.<br>Click a cell: select its "
            "samples everywhere; double-click: inspect the example.</span>"
        )
        left.addWidget(head)
        self.matrix = QtWidgets.QGridLayout()
        self.matrix.setSpacing(1)
        self.matrix.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop
        )
        left.addLayout(self.matrix)
        left.addStretch(1)
        right = QtWidgets.QVBoxLayout()
        right.addWidget(QtWidgets.QLabel(
            "<b>Most confident mistakes</b><br><span style='color:#666'>click: inspect</span>"
        ))  # fmt: skip
        self.mistakes = QtWidgets.QGridLayout()
        self.mistakes.setSpacing(4)
        self.mistakes.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop
        )
        right.addLayout(self.mistakes)
        right.addStretch(1)
        lay.addLayout(left)
        lay.addSpacing(24)
        lay.addLayout(right)
        lay.addStretch(1)

    def set_data(self, recording: Any, toolbox: Any = None) -> None:
        """Show the confusion of ``recording``; pictures come from its pooled images, else from
        ``toolbox``'s data set (a :class:`~cnnvis.viewer.toolbox.Toolbox`)."""
        for grid in (self.matrix, self.mistakes):
            while grid.count():
                w = grid.takeAt(0).widget()
                if w is not None:
                    w.deleteLater()
        conf = self.confusion = interpret.confusion(recording, n_mistakes=MISTAKES)
        rows = {int(s): r for r, s in enumerate(recording.pooled_index)}

        def picture(sample: int) -> np.ndarray | None:
            if sample in rows:
                return recording.pooled_images[rows[sample]]
            try:
                return toolbox.image(sample) if toolbox is not None else None
            except (ValueError, OSError):
                return None  # no data set to read it from: the count alone is shown

        self._fill_matrix(conf, picture)
        self._fill_mistakes(conf, picture, np.asarray(recording.confidences))

    def _button(self, image, text: str, tip: str, background: str) -> _Cell:
        b = _Cell()
        b.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextUnderIcon)
        if image is not None:
            b.setIcon(QtGui.QIcon(array_to_pixmap(image, CELL)))
            b.setIconSize(QtCore.QSize(CELL, CELL))
        b.setText(text)
        b.setToolTip(tip)
        b.setFixedSize(CELL + 22, CELL + 22)
        b.setStyleSheet(f"QToolButton {{ background: {background}; border: 1px solid #ddd; "
                        "font-size: 8pt; }")  # fmt: skip
        return b

    def _fill_matrix(self, conf, picture) -> None:
        names = conf.class_names
        k = len(names)
        totals = conf.matrix.sum(axis=1)
        for j, name in enumerate(names):
            head = QtWidgets.QLabel(f"<b>{name}</b>")
            head.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            self.matrix.addWidget(head, 0, j + 1)
            side = QtWidgets.QLabel(f"<b>{name}</b>")
            self.matrix.addWidget(side, j + 1, 0)
        self.cells = {}
        for t in range(k):
            for p in range(k):
                n = int(conf.matrix[t, p])
                ex = int(conf.example[t, p])
                share = n / totals[t] if totals[t] else 0.0
                tip = f"true {names[t]}, predicted {names[p]}: {n} samples"
                if ex >= 0:
                    tip += f"; most confident: sample {ex} ({conf.example_confidence[t, p]:.0%})"
                b = self._button(picture(ex) if ex >= 0 else None, str(n) if n else "", tip,
                                 _tint(share, t == p))  # fmt: skip
                b.clicked.connect(lambda _=False, t=t, p=p: self.cell_clicked.emit(t, p))
                if ex >= 0:
                    b.double_clicked.connect(lambda ex=ex: self.sample_clicked.emit(ex))
                self.matrix.addWidget(b, t + 1, p + 1)
                self.cells[(t, p)] = b

    def _fill_mistakes(self, conf, picture, confidences) -> None:
        names = conf.class_names
        self.gallery = []
        for i, s in enumerate(conf.mistakes):
            s = int(s)
            t, p = int(conf.labels[s]), int(conf.predictions[s])
            b = self._button(picture(s), f"{names[t]}→{names[p]}",
                             f"sample {s}: true {names[t]}, predicted {names[p]} "
                             f"({confidences[s]:.0%})", "#fff")  # fmt: skip
            b.setFixedSize(CELL + 34, CELL + 24)
            b.clicked.connect(lambda _=False, s=s: self.sample_clicked.emit(s))
            self.mistakes.addWidget(b, i // 4, i % 4)
            self.gallery.append(b)
        if not self.gallery:
            self.mistakes.addWidget(QtWidgets.QLabel("no mistakes"), 0, 0)
