"""Side panels of the viewer: details of a neuron or cluster, and the legend of classes and colours.

The panels only display plain data handed to them by the window (dicts of numpy arrays and
strings built by :class:`cnnvis.viewer.controller.Controller`); they never touch the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cnnvis.scene.colors import HIGHLIGHT, SIGN_PALETTES, hex_to_rgba
from cnnvis.viewer.qtutil import array_to_pixmap, qcolor

#: Side of the activation-maximisation picture in the details.
MAXIMIZATION = 96
# connection colours (C6), as the scene draws them by default (colour-blind-safe blue/orange)
POSITIVE, NEGATIVE = (tuple(hex_to_rgba(h)[:3]) for h in SIGN_PALETTES["blue-orange"])


class BarChart(QtWidgets.QWidget):
    """Horizontal bars with a label and a value each; negative values extend to the left."""

    clicked = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._labels: list[str] = []
        self._values = np.zeros(0)
        self._colors: list[QtGui.QColor] = []
        self._row = 17
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed
        )

    def set_bars(self, labels: Sequence[str], values, colors=None) -> None:
        self._labels = [str(s) for s in labels]
        self._values = np.nan_to_num(np.asarray(values, dtype=np.float64).reshape(-1))
        if colors is None:
            self._colors = [qcolor(POSITIVE if v >= 0 else NEGATIVE) for v in self._values]
        else:
            self._colors = [c if isinstance(c, QtGui.QColor) else qcolor(c) for c in colors]
        self.setFixedHeight(max(1, len(self._labels)) * self._row + 4)
        self.update()

    def sizeHint(self) -> QtCore.QSize:  # noqa: N802 (Qt API)
        return QtCore.QSize(240, max(1, len(self._labels)) * self._row + 4)

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:  # noqa: N802 (Qt API)
        i = int(event.position().y() // self._row)
        if 0 <= i < len(self._labels):
            self.clicked.emit(i)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt API)
        if not self._labels:
            return
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        fm = p.fontMetrics()
        label_w = min(max(fm.horizontalAdvance(s) for s in self._labels) + 8, self.width() // 3)
        value_w = fm.horizontalAdvance("-0.000") + 8
        x0 = label_w
        w = max(10, self.width() - label_w - value_w - 4)
        vmax = float(np.max(np.abs(self._values))) if len(self._values) else 1.0
        vmax = vmax if vmax > 0 else 1.0
        has_neg = bool(np.any(self._values < 0))
        zero = x0 + (w / 2 if has_neg else 0)
        scale = (w / 2 if has_neg else w) / vmax
        for i, (s, v, c) in enumerate(zip(self._labels, self._values, self._colors)):
            y = 2 + i * self._row
            p.setPen(self.palette().color(QtGui.QPalette.ColorRole.WindowText))
            p.drawText(
                QtCore.QRectF(0, y, label_w - 6, self._row),
                QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter,
                fm.elidedText(s, QtCore.Qt.TextElideMode.ElideRight, label_w - 6),
            )
            bw = abs(v) * scale
            bx = zero if v >= 0 else zero - bw
            p.fillRect(QtCore.QRectF(bx, y + 3, bw, self._row - 6), c)
            p.setPen(QtGui.QColor("#444"))
            p.drawText(
                QtCore.QRectF(x0 + w + 4, y, value_w, self._row),
                QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter,
                f"{v:.3g}",
            )
        if has_neg:
            p.setPen(QtGui.QColor("#999"))
            p.drawLine(QtCore.QPointF(zero, 0), QtCore.QPointF(zero, self.height()))
        p.end()


class PatchGrid(QtWidgets.QWidget):
    """Image patches shown large in a wrapping grid, each with a small caption."""

    clicked = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._grid = QtWidgets.QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(6)
        self._grid.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop
        )

    def set_patches(self, patches, captions: Sequence[str] = (), size: int = 64, cols: int = 3):
        while self._grid.count():
            w = self._grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        for i, patch in enumerate(patches):
            box = QtWidgets.QVBoxLayout()
            img = QtWidgets.QLabel()
            img.setPixmap(array_to_pixmap(patch, size))
            img.setFixedSize(size, size)
            img.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            img.setStyleSheet("border: 1px solid #ccc;")
            cell = QtWidgets.QWidget()
            v = QtWidgets.QVBoxLayout(cell)
            v.setContentsMargins(0, 0, 0, 0)
            v.setSpacing(1)
            v.addWidget(img)
            if i < len(captions):
                cap = QtWidgets.QLabel(captions[i])
                cap.setStyleSheet("color: #555; font-size: 9pt;")
                cap.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
                v.addWidget(cap)
            del box
            self._grid.addWidget(cell, i // cols, i % cols)


class DetailsPanel(QtWidgets.QScrollArea):
    """Details of the selected neuron or cluster: top patches, class activations, strengths."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        body = QtWidgets.QWidget()
        self._lay = QtWidgets.QVBoxLayout(body)
        self._lay.setContentsMargins(8, 8, 8, 8)
        self._lay.setSpacing(6)
        self.title = QtWidgets.QLabel("<b>Details</b>")
        self.title.setWordWrap(True)
        self.subtitle = QtWidgets.QLabel(
            "Click a cluster or neuron in the overview to see what it responds to."
        )
        self.subtitle.setWordWrap(True)
        self.subtitle.setStyleSheet("color: #555;")
        self.patches = PatchGrid()
        self.maximization = QtWidgets.QLabel()
        self.maximization.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.maximization.setWordWrap(True)
        self.maximization.setFixedSize(MAXIMIZATION + 8, MAXIMIZATION + 8)
        self.maximization.setToolTip(
            "activation maximisation: the image that excites this neuron (cluster) most"
        )
        features = QtWidgets.QWidget()
        beside = QtWidgets.QHBoxLayout(features)
        beside.setContentsMargins(0, 0, 0, 0)
        beside.addWidget(self.patches, 1, QtCore.Qt.AlignmentFlag.AlignTop)
        beside.addWidget(self.maximization, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        self.classes = BarChart()
        self.incoming = BarChart()
        self.outgoing = BarChart()
        self._heads = {}
        self._lay.addWidget(self.title)
        self._lay.addWidget(self.subtitle)
        for key, text, w in (
            ("patches", "Top-activating patches · its maximisation image", features),
            ("classes", "Mean activation per class", self.classes),
            ("incoming", "Incoming connections (strength)", self.incoming),
            ("outgoing", "Outgoing connections (strength)", self.outgoing),
        ):
            head = QtWidgets.QLabel(f"<b>{text}</b>")
            head.setStyleSheet("margin-top: 6px;")
            self._heads[key] = head
            self._lay.addWidget(head)
            self._lay.addWidget(w)
        self._lay.addStretch(1)
        self.setWidget(body)
        self.show_info(None)

    def show_info(self, info: dict | None) -> None:
        """Show ``info`` (see :meth:`Controller.details`) or the empty hint when None."""
        sections = ("patches", "classes", "incoming", "outgoing")
        if not info:
            self.title.setText("<b>Details</b>")
            self.subtitle.setText(
                "Click a cluster or neuron in the overview to see what it responds to."
            )
            for key in sections:
                self._heads[key].hide()
            for w in (self.patches.parentWidget(), self.classes, self.incoming, self.outgoing):
                w.hide()
            return
        self.title.setText(f"<b>{info.get('title', '')}</b>")
        self.subtitle.setText(info.get("subtitle", ""))
        patches = info.get("patches") or []
        self.patches.set_patches(patches, info.get("patch_captions", ()), size=64, cols=4)
        vals = info.get("class_values")
        if vals is not None:
            self.classes.set_bars(info["class_names"], vals, info.get("class_colors"))
        for key, chart in (("incoming", self.incoming), ("outgoing", self.outgoing)):
            rows = info.get(key) or []
            chart.set_bars([r[0] for r in rows], [r[1] for r in rows])
        shown = {
            "patches": bool(len(patches)),
            "classes": vals is not None,
            "incoming": bool(info.get("incoming")),
            "outgoing": bool(info.get("outgoing")),
        }
        widgets = {
            "patches": self.patches.parentWidget(),
            "classes": self.classes,
            "incoming": self.incoming,
            "outgoing": self.outgoing,
        }
        for key in sections:
            self._heads[key].setVisible(shown[key])
            widgets[key].setVisible(shown[key])

    def set_maximization(self, image: np.ndarray | str | None, caption: str = "") -> None:
        """The selected unit's activation-maximisation picture beside its patches (an RGB
        array), a message while it is computed or when it cannot be (a string), or nothing."""
        if image is None or isinstance(image, str):
            self.maximization.setPixmap(QtGui.QPixmap())
            self.maximization.setText(f"<span style='color:#777'>{image or ''}</span>")
            return
        pm = array_to_pixmap(image, MAXIMIZATION)
        self.maximization.setText("")
        self.maximization.setPixmap(pm)
        self.maximization.setToolTip(f"activation maximisation ({caption})")


def _swatch(color, shape: str = "square", size: int = 14) -> QtGui.QIcon:
    pm = QtGui.QPixmap(size, size)
    pm.fill(QtCore.Qt.GlobalColor.transparent)
    p = QtGui.QPainter(pm)
    p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    c = color if isinstance(color, QtGui.QColor) else qcolor(color)
    p.setBrush(c)
    p.setPen(QtGui.QPen(QtGui.QColor("#333"), 1))
    if shape == "disc":
        p.drawEllipse(2, 2, size - 4, size - 4)
    elif shape == "ring":  # the misclassified mark: a disc in a dark ring
        p.setPen(QtGui.QPen(QtGui.QColor("#111"), 2))
        p.drawEllipse(2, 2, size - 4, size - 4)
    elif shape == "line":
        p.setPen(QtGui.QPen(c, 3))
        p.drawLine(1, size // 2, size - 1, size // 2)
    else:
        p.drawRect(1, 1, size - 2, size - 2)
    p.end()
    return QtGui.QIcon(pm)


class LegendPanel(QtWidgets.QWidget):
    """Classes (clickable: highlights the neurons that respond strongly to the class) and colours.

    Signals
    -------
    class_clicked(int)
        The class index clicked, or -1 when the class selection is cleared.
    """

    class_clicked = QtCore.Signal(int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(4)
        head = QtWidgets.QLabel(
            "<b>Classes</b><br><span style='color:#666'>click: light up its neurons</span>"
        )
        head.setWordWrap(True)
        lay.addWidget(head)
        self.list = QtWidgets.QListWidget()
        self.list.setIconSize(QtCore.QSize(14, 14))
        self.list.setUniformItemSizes(True)
        self.list.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.list.itemClicked.connect(self._on_item)
        self.list.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        lay.addWidget(self.list)
        self.keys = QtWidgets.QListWidget()
        self.keys.setIconSize(QtCore.QSize(14, 14))
        self.keys.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.keys.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.keys.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.keys.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay.addSpacing(6)
        lay.addWidget(QtWidgets.QLabel("<b>Marks</b>"))
        lay.addWidget(self.keys)
        lay.addSpacing(6)
        lay.addWidget(QtWidgets.QLabel("<b>Session</b>"))
        self.info = QtWidgets.QLabel("")
        self.info.setWordWrap(True)
        self.info.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.info.setStyleSheet("color: #333;")
        lay.addWidget(self.info)
        lay.addStretch(1)
        hints = QtWidgets.QLabel(
            "<b>Mouse</b><br>"
            "click: details<br>"
            "right-click: edit clusters<br>"
            "drag a neuron: move it<br>"
            "click a group's band: open/close<br>"
            "wheel / drag: zoom / pan<br>"
            "lasso samples: lit neurons"
        )
        hints.setStyleSheet("color: #666; font-size: 8pt;")
        hints.setWordWrap(True)
        lay.addWidget(hints)
        self.set_marks([("positive weight", POSITIVE), ("negative weight", NEGATIVE)])
        self._current = -1

    def set_marks(self, edge_colors) -> None:
        """The colour keys: ``edge_colors`` is ``[(label, rgb), ...]`` for connections."""
        self.keys.clear()
        rows = [(label, color, "line") for label, color in edge_colors]
        rows += [
            ("correct sample", (0.6, 0.6, 0.6), "disc"),
            ("misclassified", (0.6, 0.6, 0.6), "ring"),
            ("selected / lit", HIGHLIGHT, "square"),
        ]
        for text, color, shape in rows:
            self.keys.addItem(QtWidgets.QListWidgetItem(_swatch(color, shape), text))
        self.keys.setFixedHeight(len(rows) * 20 + 6)

    def set_info(self, lines: Sequence[str]) -> None:
        """Facts about the open session (model, accuracy, layers, edits)."""
        self.info.setText("<br>".join(lines))

    def set_classes(self, names: Sequence[str], colors) -> None:
        self.list.clear()
        for i, name in enumerate(names):
            item = QtWidgets.QListWidgetItem(_swatch(colors[i]), str(name))
            item.setData(QtCore.Qt.ItemDataRole.UserRole, i)
            self.list.addItem(item)
        self._current = -1
        row = self.list.sizeHintForRow(0) if self.list.count() else 18
        self.list.setMaximumHeight(min(len(names), 24) * row + 2 * self.list.frameWidth() + 4)
        self.list.setMinimumHeight(min(len(names), 6) * row + 2 * self.list.frameWidth() + 4)

    def set_current(self, index: int) -> None:
        """Show ``index`` as the selected class (-1: none) without emitting."""
        self._current = index
        self.list.blockSignals(True)
        self.list.clearSelection()
        if 0 <= index < self.list.count():
            self.list.item(index).setSelected(True)
        self.list.blockSignals(False)

    def _on_item(self, item: QtWidgets.QListWidgetItem) -> None:
        i = int(item.data(QtCore.Qt.ItemDataRole.UserRole))
        if i == self._current:  # a second click on the same class clears it
            self.set_current(-1)
            self.class_clicked.emit(-1)
        else:
            self._current = i
            self.class_clicked.emit(i)
