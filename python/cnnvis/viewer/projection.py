"""The projection area (P1-P4): a grid of small multiples of the recorded samples and neurons,
linked to each other and to the overview.

The panels (:mod:`cnnvis.viewer.grid`: samples' t-SNE per layer and snapshot, neurons' MDS,
trajectories through the layers) each have a vispy canvas, laid out in a Qt grid (panning one
panel redraws it alone: ``benchmarks/projections.py``). With one panel it is the
classic sample projection. Points are coloured by class; misclassified samples are larger discs
with a dark ring, as in the exported picture; a picked neuron colours every sample panel by its
pooled activation, with a colour bar.
Box or lasso selection (toolbar, or Shift-drag for a box and Ctrl-drag for a lasso in pan mode)
works in every panel: in a sample or trajectories panel it emits
:attr:`ProjectionPanel.samples_selected` and every panel shows the selection; in a neuron panel a
click emits :attr:`ProjectionPanel.neuron_picked` and a lasso colours the samples by the lassoed
neurons' mean activation. Hovering a point shows its image, label and prediction (or the neuron's
best class) in a card next to the cursor. Hit testing runs on the CPU on each panel's own copy of
the coordinates (no GL picking). The Grid menu lays panels out, adds them; a panel's right-click
menu removes, swaps, re-targets it and turns it into an image map.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cnnvis.scene.colors import colormap
from cnnvis.scene.model import points_in_polygon
from cnnvis.viewer.grid import (
    GridMenus,
    HoverCard,
    PanelData,
    PanelSpec,
    PanelView,
    panel_data,
    preset_specs,
    rows_in_box,
    sample_style,
)
from cnnvis.viewer.qtutil import array_to_pixmap, class_palette, qcolor

#: How many samples "Trajectories of the top outliers" selects.
TOP_OUTLIERS = 12


class ProjectionPanel(GridMenus, QtWidgets.QWidget):
    """The projection area: a grid of small multiples with box/lasso selection and hover cards.

    Signals
    -------
    samples_selected(object)
        ``ndarray`` of selected row indices (into the arrays given to :meth:`set_data`), possibly
        empty when the selection is cleared; from any sample or trajectories panel.
    layer_changed(str)
        The user picked another layer in the panel's layer box.
    neuron_picked(str, int)
        A neuron was clicked in a neuron panel: ``(layer, channel)``.
    """

    samples_selected = QtCore.Signal(object)
    layer_changed = QtCore.Signal(str)
    neuron_picked = QtCore.Signal(str, int)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self._source = None  # the viewer's controller: panels beyond the main one need it
        self._current = ""
        self._main = np.zeros((0, 2), np.float32)
        self._labels = np.zeros(0, np.int64)
        self._preds = np.zeros(0, np.int64)
        self._images = None
        self._class_names: list[str] = []
        self._colors = class_palette(10)
        self._selected = np.zeros(0, np.int64)
        self._emphasis = np.zeros(0, np.int64)
        self._neuron: tuple[str, tuple[int, ...]] | None = None
        self._values: np.ndarray | None = None  # the picked neurons' activation per sample
        self._cache: dict[PanelSpec, PanelData] = {}
        self._drag: list[tuple[float, float]] = []
        self._drag_tool: str | None = None
        self._drag_view: PanelView | None = None
        self._build_bar()
        self.holder = QtWidgets.QWidget()
        self.holder.setMinimumSize(200, 160)
        self._grid = QtWidgets.QGridLayout(self.holder)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(3)
        self.layout().addWidget(self.holder, 1)
        self.views: list[PanelView] = []
        self._cols = 1
        self._build_footer()
        self.card = HoverCard(self)
        self.set_grid([PanelSpec()], 1)

    def _new_view(self, spec: PanelSpec) -> PanelView:
        """A panel with a canvas of its own, its mouse wired to this widget."""
        v = PanelView(spec)
        native = v.canvas.native
        native.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        native.customContextMenuRequested.connect(lambda p, v=v: self._context_menu(v, p))
        v.canvas.events.mouse_press.connect(lambda e, v=v: self._on_press(e, v))
        v.canvas.events.mouse_move.connect(lambda e, v=v: self._on_move(e, v))
        v.canvas.events.mouse_release.connect(lambda e, v=v: self._on_release(e))
        v.view.camera.select_mode = self._tool() != "Pan"
        return v

    def _build_bar(self) -> None:
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
        self.grid_button = QtWidgets.QToolButton()
        self.grid_button.setText("Grid")
        self.grid_button.setToolTip("lay out, add, remove and swap projection panels")
        self.grid_button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.grid_menu = QtWidgets.QMenu(self.grid_button)
        self.grid_menu.aboutToShow.connect(self._fill_grid_menu)
        self.grid_button.setMenu(self.grid_menu)
        bar.addWidget(self.grid_button)
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
            b.setChecked(name == "Lasso")
        self._tools.buttonToggled.connect(self._on_tool)
        clear = QtWidgets.QToolButton()
        clear.setText("Clear")
        clear.setToolTip("clear the sample selection")
        clear.clicked.connect(lambda: self.select(np.zeros(0, np.int64), emit=True))
        bar.addWidget(clear)
        lay.addLayout(bar)

    def _build_footer(self) -> None:
        row = QtWidgets.QHBoxLayout()
        row.setContentsMargins(4, 0, 4, 2)
        self.status = QtWidgets.QLabel("")
        self.status.setStyleSheet("color: #555; padding: 0 4px;")
        # long texts are cut, never widen the panel (and so narrow the overview beside it)
        ignored = QtWidgets.QSizePolicy.Policy.Ignored
        self.status.setSizePolicy(ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        row.addWidget(self.status, 1)
        self.colour_bar = QtWidgets.QLabel()
        self.colour_bar.setToolTip("the picked neuron's pooled activation")
        row.addWidget(self.colour_bar)
        self.colour_bar.hide()
        self.layout().addLayout(row)

    # -- data ---------------------------------------------------------------------------------
    def set_source(self, source) -> None:
        """The controller whose analysis the panels beyond the main one are computed from."""
        self._source = source
        self._cache = {}
        self._neuron, self._values = None, None
        for v in self.views:  # another session: one panel again (its layers may not exist)
            v.close()
        self.views, self._cols = [self._new_view(PanelSpec())], 1
        self._relayout()

    def set_layers(self, names: list[str], current: str | None = None) -> None:
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems(list(names))
        if current is not None:
            self.layer_box.setCurrentText(current)
            self._current = current
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
        """Show ``coords`` (n, 2) of the current layer in the main panels, coloured by
        ``labels``; ``images[i]`` is shown on hover (and in image maps)."""
        self._main = np.asarray(coords, dtype=np.float32).reshape(-1, 2)
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
        self._current = self.layer_box.currentText() or self._current
        self._cache = {k: v for k, v in self._cache.items() if k.kind != "samples"}
        n_wrong = int(np.sum(self._labels != self._preds))
        self.title.setText(f"<b>{title}</b>")
        self._status = (
            f"{len(self._main)} samples, {n_wrong} misclassified (ringed)  ·  hover a point to"
            " see it"
        )
        self.status.setText(self._status)
        self._load_panels()

    @property
    def canvas(self):
        """The first panel's canvas."""
        return self.views[0].canvas

    @property
    def view(self):
        """The first panel's ViewBox."""
        return self.views[0].view

    @property
    def coords(self) -> np.ndarray:
        """Where the first panel draws its points."""
        return self.views[0].shown

    @property
    def selected(self) -> np.ndarray:
        return self._selected

    @property
    def specs(self) -> list[PanelSpec]:
        return [v.spec for v in self.views]

    def select(self, rows, emit: bool = False) -> None:
        """Mark ``rows`` as selected in every panel (others fade); emit :attr:`samples_selected`
        if asked."""
        self._selected = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        self._redraw()
        if emit:
            self.samples_selected.emit(self._selected)

    def emphasize(self, rows) -> None:
        """Ring ``rows`` (e.g. a cluster's top samples) without changing the selection."""
        self._emphasis = np.unique(np.asarray(rows, dtype=np.int64).reshape(-1))
        self._redraw()

    def show_neuron(self, neuron: tuple[str, int] | None) -> None:
        """Colour every sample panel by neuron ``(layer, channel)``'s pooled activation (None:
        by class again)."""
        if neuron is None:
            self.colour_by_neurons(None, ())
        else:
            self.colour_by_neurons(neuron[0], (int(neuron[1]),))

    def colour_by_neurons(self, layer: str | None, channels) -> None:
        """Colour the samples of every panel by the mean pooled activation of ``channels`` of
        ``layer`` in the recorded model (:func:`cnnvis.analysis.neuron_activation`; one channel:
        exactly its activation)."""
        from cnnvis.analysis import neuron_activation

        channels = tuple(int(c) for c in channels)
        if layer is None or not channels or self._source is None:
            self._neuron, self._values = None, None
        elif self._neuron != (layer, channels):
            analysis = self._source.analysis
            acts = [neuron_activation(analysis, layer, c) for c in channels]
            self._neuron, self._values = (layer, channels), np.mean(acts, axis=0)
        self._update_colour_bar()
        self._redraw()

    def sample_colors(self, i: int = 0) -> np.ndarray:
        """Panel ``i``'s fill colours (RGBA, in sample-row order) as drawn now."""
        style = self._style()
        out = np.empty_like(style["face_color"])
        out[style["order"]] = style["face_color"]
        return out

    # -- the grid -----------------------------------------------------------------------------
    def set_grid(self, specs: list[PanelSpec], cols: int) -> None:
        """Lay out ``specs`` row by row, ``cols`` panels a row."""
        if not specs:
            raise ValueError("the grid needs at least one panel")
        old = {id(v.spec): v for v in self.views}
        self.views = [old.pop(id(s), None) or self._new_view(s) for s in specs]
        for v in old.values():
            v.close()
        self._cols = max(1, min(int(cols), len(specs)))
        self._relayout()
        self._load_panels()

    def apply_preset(self, name: str) -> None:
        """One of :data:`~cnnvis.viewer.grid.PRESETS` (e.g. ``"untrained vs trained"``)."""
        layers = [self.layer_box.itemText(i) for i in range(self.layer_box.count())]
        n_snapshots = len(self._source.rec.snapshots) if self._source is not None else 0
        self.set_grid(*preset_specs(name, layers or [self._current], n_snapshots))

    def add_panel(self, spec: PanelSpec) -> None:
        self.set_grid([*self.specs, spec], self._cols if len(self.views) > 1 else 2)

    def remove_panel(self, i: int) -> None:
        if len(self.views) == 1:
            raise ValueError("the last panel cannot be removed")
        specs = [s for k, s in enumerate(self.specs) if k != i]
        self.set_grid(specs, min(self._cols, len(specs)))

    def swap_panels(self, i: int, j: int) -> None:
        self.views[i], self.views[j] = self.views[j], self.views[i]
        self._relayout()
        self._redraw()

    def transpose(self) -> None:
        """Swap rows and columns."""
        n, cols = len(self.views), self._cols
        rows = math.ceil(n / cols)
        order = [r * cols + c for c in range(cols) for r in range(rows) if r * cols + c < n]
        self.views = [self.views[k] for k in order]
        self._cols = rows
        self._relayout()

    def set_panel(self, i: int, spec: PanelSpec) -> None:
        """Show ``spec`` in panel ``i``."""
        self.views[i].close()
        self.views[i] = self._new_view(spec)
        self._relayout()
        self._load_panels()

    def set_image_map(self, i: int, on: bool = True, snap: bool = True) -> None:
        """Draw panel ``i``'s samples as their thumbnails, snapped to a grid if asked."""
        v = self.views[i]
        v.image_map, v.snap = bool(on), bool(snap)
        if v.data is not None:
            v._place()
            v.fit()
        self._redraw()

    def _relayout(self) -> None:
        for v in self.views:
            self._grid.removeWidget(v.canvas.native)
        for k in range(max(self._grid.rowCount(), self._grid.columnCount())):
            self._grid.setRowStretch(k, 0)
            self._grid.setColumnStretch(k, 0)
        for k, v in enumerate(self.views):
            row, col = divmod(k, self._cols)
            self._grid.addWidget(v.canvas.native, row, col)
            self._grid.setRowStretch(row, 1)
            self._grid.setColumnStretch(col, 1)
            v.canvas.native.show()

    def _load_panels(self) -> None:
        if not len(self._main):
            return
        cursor = QtCore.Qt.CursorShape.WaitCursor
        QtWidgets.QApplication.setOverrideCursor(cursor)
        try:
            for v in self.views:
                data = self._data_for(v.spec.resolved(self._current))
                if data is not v.data:
                    v.set_data(data)
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self._redraw()

    def _data_for(self, spec: PanelSpec) -> PanelData:
        from cnnvis.analysis import neighbourhood_hit

        main = spec == PanelSpec("samples", self._current, None)
        if main or self._source is None:
            if PanelSpec("samples", self._current) not in self._cache:
                hit = neighbourhood_hit(self._main, self._labels) if len(self._main) > 1 else 0
                title = f"{self._current} · NH {hit:.2f}"
                self._cache[PanelSpec("samples", self._current)] = PanelData(self._main, title)
            return self._cache[PanelSpec("samples", self._current)]
        if self._source is None:
            raise ValueError("panels beyond the main one need a session (set_source)")
        if spec.kind == "trajectories":
            spec = PanelSpec("trajectories")
        if spec not in self._cache:
            self._cache[spec] = panel_data(self._source.analysis, spec, self._main)
        return self._cache[spec]

    # -- drawing ------------------------------------------------------------------------------
    def _active(self) -> np.ndarray | None:
        emphasis = self._emphasis if self._values is None else self._emphasis[:0]
        if not (len(self._selected) or len(emphasis)):
            return None
        n = len(self._labels)
        active = np.zeros(n, bool)
        active[self._selected[self._selected < n]] = True
        active[emphasis[emphasis < n]] = True
        return active

    def _style(self) -> dict:
        rgb = None
        if self._values is not None:
            rgb = colormap(self._values)[:, :3].astype(np.float32) / 255.0
        return sample_style(self._labels, self._preds, self._colors, self._active(), rgb)

    def _redraw(self) -> None:
        if not len(self._labels) or any(v.data is None for v in self.views):
            return
        style = self._style()
        picked = np.zeros(0, np.int64)
        for v in self.views:
            spec = v.spec.resolved(self._current)
            if spec.kind == "neurons":
                if self._neuron is not None and self._neuron[0] == spec.layer:
                    picked = np.array(self._neuron[1], np.int64)
                v.draw_neurons(self._colors, picked)
                continue
            v.draw_samples(style, self._emphasis, self._images)
            if spec.kind == "trajectories":
                v.draw_curves(self._selected, self._colors, self._labels)
        for v in self.views:
            v.canvas.update()

    def _update_colour_bar(self) -> None:
        if self._values is None:
            self.colour_bar.hide()
            self.status.setText(getattr(self, "_status", ""))
            return
        layer, chans = self._neuron
        ramp = colormap(np.tile(np.linspace(0, 1, 120), (10, 1)))
        img = array_to_pixmap(np.ascontiguousarray(ramp))
        name = f"{layer} n{chans[0]}" if len(chans) == 1 else f"{layer}, {len(chans)} neurons"
        lo, hi = float(self._values.min()), float(self._values.max())
        self.colour_bar.setPixmap(img)
        self.colour_bar.setToolTip(f"{name}: pooled activation {lo:.2f} … {hi:.2f}")
        self.status.setText(f"coloured by {name}: {lo:.2f} (dark) … {hi:.2f} (yellow)")
        self.colour_bar.show()

    def top_outliers(self, n: int = TOP_OUTLIERS) -> np.ndarray:
        """Select the ``n`` samples whose trajectories stray furthest from their class's (a
        trajectories panel is added if none is shown) and return them."""
        if not any(v.spec.kind == "trajectories" for v in self.views):
            self.add_panel(PanelSpec("trajectories"))
        data = self._data_for(PanelSpec("trajectories"))
        rows = np.argsort(-data.outlier, kind="stable")[:n].astype(np.int64)
        self.select(rows, emit=True)
        return rows

    # -- interaction ----------------------------------------------------------------------------
    def _tool(self) -> str:
        b = self._tools.checkedButton()
        return b.text() if b is not None else "Pan"

    def _on_tool(self, *_args) -> None:
        for v in self.views:
            v.view.camera.select_mode = self._tool() != "Pan"

    def _on_layer_box(self, name: str) -> None:
        if name:
            self.layer_changed.emit(name)

    def _on_press(self, event, view: PanelView) -> None:
        self._drag_view = view = view if event.button == 1 else None
        if view is None:
            self._drag_tool = None
            return
        tool = self._tool()
        mods = {m.name for m in (event.modifiers or ())}
        if tool == "Pan":
            tool = "Box" if "Shift" in mods else "Lasso" if "Control" in mods else None
        self._drag_tool = tool
        self._drag = [tuple(view.to_data(event.pos))] if tool else []
        self._press_pos = np.asarray(event.pos[:2], float)
        self._moved = 0.0  # the farthest the drag went from the press (a click: < 3 px)

    def _on_move(self, event, hovered: PanelView) -> None:
        view = self._drag_view
        if self._drag_tool and event.is_dragging and view is not None:
            p = tuple(view.to_data(event.pos))
            away = float(np.hypot(*(np.asarray(event.pos[:2], float) - self._press_pos)))
            self._moved = max(self._moved, away)
            if self._drag_tool == "Lasso":
                self._drag.append(p)
                path = np.array(self._drag + [self._drag[0]], np.float32)
            else:
                self._drag = [self._drag[0], p]
                (x0, y0), (x1, y1) = self._drag
                path = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]], np.float32)
            view.path.set_data(pos=path)
            view.path.visible = True
            view.canvas.update()
            self.card.hide()
            return
        self._hover(event.pos, hovered)

    def _on_release(self, event) -> None:
        tool, self._drag_tool = self._drag_tool, None
        view = self._drag_view
        if not tool or view is None:
            return
        view.path.visible = False
        away = float(np.hypot(*(np.asarray(event.pos[:2], float) - self._press_pos)))
        moved = max(self._moved, away)
        if moved < 3:  # a click: the point under the cursor, or nothing
            hit = self.point_at(event.pos, view=view)
            rows = np.array([hit] if hit is not None else [], np.int64)
        elif tool == "Lasso" and len(self._drag) >= 3:
            rows = np.flatnonzero(points_in_polygon(view.shown, np.array(self._drag)))
        elif tool == "Box" and self._drag:
            rows = rows_in_box(view.shown, self._drag[0], view.to_data(event.pos))
        else:
            rows = np.zeros(0, np.int64)
        self._drag = []
        if view.spec.kind != "neurons":
            self.select(rows, emit=True)
            return
        layer = view.spec.resolved(self._current).layer
        if moved < 3 and len(rows):
            self.neuron_picked.emit(layer, int(rows[0]))
        self.colour_by_neurons(layer, rows)

    def rows_in_box(self, p0, p1) -> np.ndarray:
        """Rows whose point in the first panel lies in the box with corners ``p0``, ``p1``."""
        return rows_in_box(self.coords, p0, p1)

    def point_at(self, pos, radius_px: float = 7.0, view: PanelView | None = None) -> int | None:
        """The row drawn nearest to pixel ``pos`` of ``view``'s canvas (default: the first
        panel) within ``radius_px``, or None."""
        view = view or self.views[0]
        if not len(view.shown):
            return None
        px = view.to_canvas(view.shown)
        d = np.hypot(px[:, 0] - pos[0], px[:, 1] - pos[1])
        i = int(np.argmin(d))
        return i if d[i] <= radius_px else None

    def _hover(self, pos, view: PanelView) -> None:
        i = self.point_at(pos, view=view)
        if i is None:
            self.card.hide()
            return
        if view.spec.kind == "neurons":
            self._neuron_card(view, i)
        else:
            self._sample_card(i)
        self.card.adjustSize()
        origin = view.canvas.native.mapTo(self, QtCore.QPoint(int(pos[0]), int(pos[1])))
        x = origin.x() + 14
        y = origin.y() + 14
        if x + self.card.width() > self.width():
            x = origin.x() - self.card.width() - 14
        if y + self.card.height() > self.height():
            y = origin.y() - self.card.height() - 14
        self.card.move(max(0, x), max(0, y))
        self.card.show()
        self.card.raise_()

    def _name(self, k: int) -> str:
        return self._class_names[k] if 0 <= k < len(self._class_names) else str(k)

    def _swatch(self, k: int) -> str:
        col = qcolor(self._colors[min(max(k, 0), len(self._colors) - 1)]).name()
        return f"<span style='color:{col}'>■</span>"

    def _sample_card(self, i: int) -> None:
        lab, pred = int(self._labels[i]), int(self._preds[i])
        ok = "correct" if lab == pred else "<span style='color:#b00020'>misclassified</span>"
        value = ""
        if self._values is not None:
            value = f"<br>activation: {self._values[i]:.3f}"
        self.card.text.setText(
            f"<b>sample {i}</b><br>label: {self._swatch(lab)} {self._name(lab)}"
            f"<br>predicted: {self._name(pred)}<br>{ok}{value}"
        )
        if self._images is not None and i < len(self._images):
            self.card.image.setPixmap(array_to_pixmap(self._images[i], 72))
            self.card.image.show()
        else:
            self.card.image.hide()

    def _neuron_card(self, view: PanelView, i: int) -> None:
        d = view.data
        best = int(d.best_class[i])
        tells = f"{self._swatch(best)} {self._name(best)}" if best >= 0 else "none"
        self.card.text.setText(
            f"<b>{view.spec.resolved(self._current).layer} · neuron {i}</b>"
            f"<br>tells apart best: {tells}<br>score: {d.score[i]:.2f}<br>click: colour the"
            " samples by it"
        )
        self.card.image.hide()

    def hovered_card_text(self) -> str:
        """Plain text of the hover card (for tests and accessibility)."""
        doc = QtGui.QTextDocument()
        doc.setHtml(self.card.text.text())
        return doc.toPlainText()
