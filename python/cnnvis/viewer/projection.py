"""The projection panel (P1, P3): t-SNE of the recorded samples at one layer, linked to the overview.

Points are coloured by class; misclassified samples are larger discs with a dark ring, as in the
exported picture.
Every sample is one point sprite (:class:`~cnnvis.render.glvisuals.Sprites`: the fill and the
outline in one fragment shader), drawn in one call, misclassified ones last.
Box or lasso selection (toolbar, or Shift-drag for a box and Ctrl-drag for a lasso in pan mode)
emits :attr:`ProjectionPanel.samples_selected` with the selected sample rows; hovering a point
shows its image, label and prediction in a card next to the cursor. Hit testing runs on the CPU on
the panel's own copy of the coordinates (no GL picking).
"""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets
from vispy import scene
from vispy.scene.cameras import PanZoomCamera

from cnnvis.render.glvisuals import Sprites
from cnnvis.render.panel import MARK_SCALE, MARK_SHAPE
from cnnvis.scene.model import points_in_polygon
from cnnvis.viewer.qtutil import array_to_pixmap, class_palette, qcolor

BACKGROUND = (1.0, 1.0, 1.0, 1.0)


class _Camera(PanZoomCamera):
    """Pan/zoom camera that leaves left-button drags alone while a selection tool is active."""

    select_mode = False

    def viewbox_mouse_event(self, event):
        if (
            self.select_mode
            and event.type == "mouse_move"
            and event.press_event is not None
            and 1 in (event.buttons or [])
        ):
            return
        super().viewbox_mouse_event(event)


class HoverCard(QtWidgets.QFrame):
    """A small floating card: the sample's image, its label and the prediction."""

    def __init__(self, parent: QtWidgets.QWidget) -> None:
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            "HoverCard { background: #fdfdfd; border: 1px solid #9a9a9a; border-radius: 4px; }"
        )
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(6, 6, 8, 6)
        self.image = QtWidgets.QLabel()
        self.text = QtWidgets.QLabel()
        self.text.setTextFormat(QtCore.Qt.TextFormat.RichText)
        lay.addWidget(self.image)
        lay.addWidget(self.text)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()


class ProjectionPanel(QtWidgets.QWidget):
    """A 2-D scatter of samples with box/lasso selection and hover cards.

    Signals
    -------
    samples_selected(object)
        ``ndarray`` of selected row indices (into the arrays given to :meth:`set_data`), possibly
        empty when the selection is cleared.
    layer_changed(str)
        The user picked another layer in the panel's layer box.
    """

    samples_selected = QtCore.Signal(object)
    layer_changed = QtCore.Signal(str)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._coords = np.zeros((0, 2), np.float32)
        self._labels = np.zeros(0, np.int64)
        self._preds = np.zeros(0, np.int64)
        self._images = None
        self._class_names: list[str] = []
        self._colors = class_palette(10)
        self._selected = np.zeros(0, np.int64)
        self._emphasis = np.zeros(0, np.int64)
        self._drag: list[tuple[float, float]] = []
        self._drag_tool: str | None = None

        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 0)
        self.title = QtWidgets.QLabel("<b>Samples</b>")
        bar.addWidget(self.title)
        self.layer_box = QtWidgets.QComboBox()
        self.layer_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.layer_box.setToolTip("the layer whose activations are projected")
        self.layer_box.currentTextChanged.connect(self._on_layer_box)
        bar.addWidget(self.layer_box)
        bar.addStretch(1)
        self._tools = QtWidgets.QButtonGroup(self)
        for name, tip in (
            ("Pan", "drag to pan, wheel to zoom"),
            ("Box", "drag a rectangle to select samples"),
            ("Lasso", "draw around samples to select them"),
        ):
            b = QtWidgets.QToolButton()
            b.setText(name)
            b.setToolTip(tip)
            b.setCheckable(True)
            self._tools.addButton(b)
            bar.addWidget(b)
            if name == "Lasso":
                b.setChecked(True)
        self._tools.buttonToggled.connect(self._on_tool)
        clear = QtWidgets.QToolButton()
        clear.setText("Clear")
        clear.setToolTip("clear the sample selection")
        clear.clicked.connect(lambda: self.select(np.zeros(0, np.int64), emit=True))
        bar.addWidget(clear)
        lay.addLayout(bar)

        self.canvas = scene.SceneCanvas(keys=None, bgcolor=BACKGROUND, size=(400, 300))
        self.canvas.native.setMinimumSize(200, 160)
        self.canvas.native.setMouseTracking(True)
        lay.addWidget(self.canvas.native, 1)
        self.view = self.canvas.central_widget.add_view()
        # every sample in one visual; the emphasis rings in a second one above it
        self._points = Sprites(parent=self.view.scene)
        self._ring = Sprites(parent=self.view.scene)
        self._path = scene.visuals.Line(
            parent=self.view.scene, color=(0.1, 0.1, 0.1, 0.9), width=1.5, method="gl"
        )
        self._path.visible = False
        self.view.camera = _Camera(aspect=1)
        self.view.camera.select_mode = True
        for v, z in ((self._points, 0), (self._ring, 2), (self._path, 3)):
            v.order = z
        self.status = QtWidgets.QLabel("")
        self.status.setStyleSheet("color: #555; padding: 0 4px;")
        lay.addWidget(self.status)
        self.card = HoverCard(self)

        self.canvas.events.mouse_press.connect(self._on_press)
        self.canvas.events.mouse_move.connect(self._on_move)
        self.canvas.events.mouse_release.connect(self._on_release)

    # -- data ---------------------------------------------------------------------------------
    def set_layers(self, names: list[str], current: str | None = None) -> None:
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems(list(names))
        if current is not None:
            self.layer_box.setCurrentText(current)
        self.layer_box.blockSignals(False)

    def set_data(
        self,
        coords: np.ndarray,
        labels: np.ndarray,
        predictions: np.ndarray,
        class_names: list[str],
        colors: np.ndarray | None = None,
        images: np.ndarray | None = None,
        title: str = "Samples",
    ) -> None:
        """Show ``coords`` (n, 2) coloured by ``labels``; ``images[i]`` is shown on hover."""
        coords = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
        self._coords = coords
        self._labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self._preds = np.asarray(predictions, dtype=np.int64).reshape(-1)
        self._class_names = list(class_names)
        self._colors = (
            np.asarray(colors, np.float32)[:, :3]
            if colors is not None
            else class_palette(len(class_names))
        )
        self._images = images
        self._selected = np.zeros(0, np.int64)
        self._emphasis = np.zeros(0, np.int64)
        n_wrong = int(np.sum(self._labels != self._preds))
        self.title.setText(f"<b>{title}</b>")
        self.status.setText(
            f"{len(coords)} samples, {n_wrong} misclassified (ringed)  ·  hover a point to see it"
        )
        self._redraw()
        if len(coords):
            lo, hi = coords.min(0), coords.max(0)
            pad = 0.06 * float(max(hi - lo)) + 1e-6
            self.view.camera.set_range(
                x=(float(lo[0] - pad), float(hi[0] + pad)),
                y=(float(lo[1] - pad), float(hi[1] + pad)),
                margin=0,
            )

    @property
    def coords(self) -> np.ndarray:
        return self._coords

    @property
    def selected(self) -> np.ndarray:
        return self._selected

    def select(self, rows, emit: bool = False) -> None:
        """Mark ``rows`` as selected (others fade); emit :attr:`samples_selected` if asked."""
        self._selected = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        self._redraw()
        if emit:
            self.samples_selected.emit(self._selected)

    def emphasize(self, rows) -> None:
        """Ring ``rows`` (e.g. a cluster's top samples) without changing the selection."""
        self._emphasis = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        self._redraw()

    def _redraw(self) -> None:
        n = len(self._coords)
        fill = np.ones((n, 4), np.float32)
        if n:
            lab = np.clip(self._labels, 0, len(self._colors) - 1)
            fill[:, :3] = self._colors[lab]
        active = np.ones(n, bool)
        if len(self._selected) or len(self._emphasis):
            active[:] = False
            active[self._selected[self._selected < n]] = True
            active[self._emphasis[self._emphasis < n]] = True
        fill[~active, 3] = 0.18
        wrong = self._labels != self._preds
        edge = np.zeros((n, 4), np.float32)
        edge[:, 3] = np.where(active, 0.9, 0.15)
        edge[~wrong, :3] = 1.0
        size = 8.0
        if n > 2000:
            size = 5.0
        # correct samples: discs with a thin white rim; misclassified ones: the export's mark (a
        # larger disc with a dark ring), drawn after the others so that none hides them
        order = np.argsort(wrong, kind="stable")
        w = wrong[order]
        self._points.set_data(
            self._coords[order],
            face_color=fill[order],
            edge_color=edge[order],
            size=np.where(w, size * MARK_SCALE, size),
            edge_width=np.where(w, 1.5, 0.8),
            shape=np.where(w, MARK_SHAPE, "disc"),
        )
        emph = self._emphasis[self._emphasis < n]
        if len(emph):
            self._ring.set_data(
                self._coords[emph],
                face_color=(0, 0, 0, 0),
                edge_color=(0.84, 0.1, 0.55, 1.0),
                size=size * 2.2,
                edge_width=2.0,
            )
            self._ring.visible = True
        else:
            self._ring.visible = False
        self.canvas.update()

    # -- interaction ----------------------------------------------------------------------------
    def _tool(self) -> str:
        b = self._tools.checkedButton()
        return b.text() if b is not None else "Pan"

    def _on_tool(self, *_args) -> None:
        self.view.camera.select_mode = self._tool() != "Pan"

    def _on_layer_box(self, name: str) -> None:
        if name:
            self.layer_changed.emit(name)

    def _to_data(self, pos) -> np.ndarray:
        tr = self.view.scene.transform
        return np.asarray(tr.imap(np.array([pos[0], pos[1], 0, 1], np.float64)))[:2]

    def _on_press(self, event) -> None:
        if event.button != 1:
            return
        tool = self._tool()
        mods = {m.name for m in (event.modifiers or ())}
        if tool == "Pan":
            tool = "Box" if "Shift" in mods else "Lasso" if "Control" in mods else None
        self._drag_tool = tool
        self._drag = [tuple(self._to_data(event.pos))] if tool else []
        self._press_pos = np.asarray(event.pos[:2], float)

    def _on_move(self, event) -> None:
        if self._drag_tool and event.is_dragging:
            p = tuple(self._to_data(event.pos))
            if self._drag_tool == "Lasso":
                self._drag.append(p)
                path = np.array(self._drag + [self._drag[0]], np.float32)
            else:
                self._drag = [self._drag[0], p]
                (x0, y0), (x1, y1) = self._drag
                path = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], np.float32)
            self._path.set_data(pos=path)
            self._path.visible = True
            self.canvas.update()
            self.card.hide()
            return
        self._hover(event.pos)

    def _on_release(self, event) -> None:
        tool, self._drag_tool = self._drag_tool, None
        if not tool:
            return
        self._path.visible = False
        moved = float(np.hypot(*(np.asarray(event.pos[:2], float) - self._press_pos)))
        if moved < 3:  # a click: select the point under the cursor, or clear
            hit = self.point_at(event.pos)
            rows = np.array([hit] if hit is not None else [], np.int64)
        elif tool == "Lasso" and len(self._drag) >= 3:
            rows = np.flatnonzero(points_in_polygon(self._coords, np.array(self._drag)))
        elif tool == "Box" and self._drag:
            rows = self.rows_in_box(self._drag[0], tuple(self._to_data(event.pos)))
        else:
            rows = np.zeros(0, np.int64)
        self._drag = []
        self.select(rows, emit=True)

    def rows_in_box(self, p0, p1) -> np.ndarray:
        """Rows whose point lies in the axis-aligned box with corners ``p0``, ``p1`` (data units)."""
        lo = np.minimum(p0, p1)
        hi = np.maximum(p0, p1)
        c = self._coords
        return np.flatnonzero(np.all((c >= lo) & (c <= hi), axis=1))

    def point_at(self, pos, radius_px: float = 7.0) -> int | None:
        """The row drawn nearest to canvas pixel ``pos`` within ``radius_px``, or None."""
        if not len(self._coords):
            return None
        tr = self.view.scene.transform
        px = tr.map(np.c_[self._coords, np.zeros(len(self._coords)), np.ones(len(self._coords))])
        px = px[:, :2] / px[:, 3:4]
        d = np.hypot(px[:, 0] - pos[0], px[:, 1] - pos[1])
        i = int(np.argmin(d))
        return i if d[i] <= radius_px else None

    def _hover(self, pos) -> None:
        i = self.point_at(pos)
        if i is None:
            self.card.hide()
            return
        names = self._class_names
        lab, pred = int(self._labels[i]), int(self._preds[i])

        def nm(k: int) -> str:
            return names[k] if 0 <= k < len(names) else str(k)

        col = qcolor(self._colors[min(max(lab, 0), len(self._colors) - 1)]).name()
        ok = "correct" if lab == pred else "<span style='color:#b00020'>misclassified</span>"
        self.card.text.setText(
            f"<b>sample {i}</b><br>label: <span style='color:{col}'>■</span> {nm(lab)}"
            f"<br>predicted: {nm(pred)}<br>{ok}"
        )
        if self._images is not None and i < len(self._images):
            self.card.image.setPixmap(array_to_pixmap(self._images[i], 72))
            self.card.image.show()
        else:
            self.card.image.hide()
        self.card.adjustSize()
        origin = self.canvas.native.mapTo(self, QtCore.QPoint(int(pos[0]), int(pos[1])))
        x = origin.x() + 14
        y = origin.y() + 14
        if x + self.card.width() > self.width():
            x = origin.x() - self.card.width() - 14
        if y + self.card.height() > self.height():
            y = origin.y() - self.card.height() - 14
        self.card.move(max(0, x), max(0, y))
        self.card.show()
        self.card.raise_()

    def hovered_card_text(self) -> str:
        """Plain text of the hover card (for tests and accessibility)."""
        doc = QtGui.QTextDocument()
        doc.setHtml(self.card.text.text())
        return doc.toPlainText()
