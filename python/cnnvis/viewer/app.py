"""The interactive window: ``python -m cnnvis viewer [SESSION]``.

Layout: the legend (classes, marks) on the left, the overview of the clustered network in the
middle (the scene's vispy canvas, :mod:`cnnvis.viewer.canvas`), the projection of the samples and
the details of the selected cluster or neuron on the right. Everything the user does goes through
the :class:`~cnnvis.viewer.controller.Controller`; the widgets only show its state.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cnnvis.viewer.controller import FACET_NAMES, Controller
from cnnvis.viewer.panels import DetailsPanel, LegendPanel
from cnnvis.viewer.projection import ProjectionPanel


@dataclass(frozen=True)
class Hit:
    """An overview object under the mouse: a neuron (with its cluster), a cluster, or a band."""

    kind: str
    layer: str | None = None
    cluster: int | None = None
    neuron: int | None = None
    group: str | None = None


def hit_from_id(pid: tuple | None, controller: Controller) -> Hit | None:
    """Turn a scene id (``("cluster", layer, c)``, ``("neuron", layer, ch)``, ...) into a Hit."""
    if not pid:
        return None
    kind = pid[0]
    if kind == "neuron":
        layer, ch = pid[1], int(pid[2])
        return Hit("neuron", layer, int(controller.clusters(layer)[ch]), ch)
    if kind == "cluster":
        return Hit("cluster", pid[1], int(pid[2]))
    if kind == "band":
        return Hit("band", group=pid[1])
    if kind == "layer":
        return Hit("layer", layer=pid[1])
    return None


class SessionOpenError(Exception):
    """A session could not be opened; the message says why, for a person."""


def open_session(path: str | os.PathLike, *, announce=None) -> Any:
    """:func:`cnnvis.session.open_session` for the window: its :class:`cnnvis.Analysis`.

    Raises
    ------
    SessionOpenError
        With a readable reason when the folder is missing, is not a session, or is damaged.
    """
    from cnnvis.session import SessionError
    from cnnvis.session import open_session as open_analysis

    try:
        return open_analysis(path, announce=announce)
    except SessionError as exc:
        raise SessionOpenError(f"cannot open the session: {exc}") from exc


def qt_app() -> QtWidgets.QApplication:
    """The QApplication (created on first use), with vispy set to its PySide6 backend."""
    import vispy

    vispy.use(app="pyside6")
    app = QtWidgets.QApplication.instance()
    if app is None:
        app = QtWidgets.QApplication([sys.argv[0] if sys.argv else "cnnvis"])
        app.setApplicationName("cnnvis")
    return app


class ViewerWindow(QtWidgets.QMainWindow):
    """The main window on one session (see the module docstring for its layout)."""

    def __init__(self, analysis: Any = None, session_path: str | None = None) -> None:
        super().__init__()
        self.controller: Controller | None = None
        self.overview = None
        self.session_path = session_path
        self.setWindowTitle("cnnvis")
        self.resize(1600, 900)
        self._build_widgets()
        self._build_menus()
        self.statusBar().showMessage("open a session (File > Open session…)")
        if analysis is not None:
            self.set_analysis(analysis, session_path)

    # -- construction ---------------------------------------------------------------------------
    def _build_widgets(self) -> None:
        self.legend = LegendPanel()
        self.legend.setMinimumWidth(140)
        self.legend.setMaximumWidth(260)
        self.projection = ProjectionPanel()
        self.details = DetailsPanel()
        self.overview_holder = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(self.overview_holder)
        lay.setContentsMargins(0, 0, 0, 0)
        self.right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.right.addWidget(self.projection)
        self.right.addWidget(self.details)
        self.right.setStretchFactor(0, 5)
        self.right.setStretchFactor(1, 4)
        self.split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        self.split.addWidget(self.legend)
        self.split.addWidget(self.overview_holder)
        self.split.addWidget(self.right)
        self.split.setStretchFactor(0, 0)
        self.split.setStretchFactor(1, 1)
        self.split.setStretchFactor(2, 0)
        self.split.setChildrenCollapsible(False)
        self.setCentralWidget(self.split)
        self._user_sized = False
        self.split.splitterMoved.connect(self._on_user_sized)
        self.right.splitterMoved.connect(self._on_user_sized)
        self.legend.class_clicked.connect(self._on_class_clicked)
        self.projection.samples_selected.connect(self._on_samples_selected)
        self.projection.layer_changed.connect(self._on_projection_layer)

    def _on_user_sized(self, *_args) -> None:
        self._user_sized = True

    def _fit_panels(self) -> None:
        """Share the width: a narrow legend, the overview, and a right column whose projection is
        about square; the details get the rest of the right column's height."""
        w, h = max(self.split.width(), 600), max(self.split.height(), 400)
        legend = 160 if w < 1600 else 200
        right = int(min(max(0.29 * w, 350), 560))
        self.split.setSizes([legend, w - legend - right, right])
        proj = int(min(right + 40, 0.58 * h))
        self.right.setSizes([proj, h - proj])

    def resizeEvent(self, event: QtGui.QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        if not self._user_sized:
            self._fit_panels()

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self.act_open = file_menu.addAction("&Open session…", self.open_dialog)
        self.act_open.setShortcut(QtGui.QKeySequence.StandardKey.Open)
        file_menu.addSeparator()
        file_menu.addAction("Export &PNG…", lambda: self.export_dialog("png"))
        file_menu.addAction("Export &SVG…", lambda: self.export_dialog("svg"))
        file_menu.addAction("Save &screenshot…", self.screenshot_dialog)
        file_menu.addSeparator()
        quit_act = file_menu.addAction("&Quit", self.close)
        quit_act.setShortcut(QtGui.QKeySequence.StandardKey.Quit)

        edit = mb.addMenu("&Edit")
        self.act_undo = edit.addAction("&Undo", self._undo)
        self.act_undo.setShortcut(QtGui.QKeySequence.StandardKey.Undo)
        self.act_redo = edit.addAction("&Redo", self._redo)
        self.act_redo.setShortcut(QtGui.QKeySequence.StandardKey.Redo)
        edit.addSeparator()
        self.act_merge = edit.addAction("&Merge selected cluster with…", self._merge_dialog)
        self.act_split = edit.addAction("S&plit selected cluster in two", self._split_selected)
        edit.addSeparator()
        edit.addAction("Clear selection", self._clear_selection, QtGui.QKeySequence("Esc"))

        view = mb.addMenu("&View")
        group = QtGui.QActionGroup(self)
        self.act_features = view.addAction("Learned &features facet")
        self.act_matrix = view.addAction("Activation &matrix facet")
        for act, key, facet in (
            (self.act_features, "F", "features"),
            (self.act_matrix, "M", "matrix"),
        ):
            act.setCheckable(True)
            act.setShortcut(QtGui.QKeySequence(key))
            group.addAction(act)
            act.triggered.connect(lambda _=False, f=facet: self._set_facet(f))
        self.act_features.setChecked(True)
        view.addSeparator()
        self.act_collapse = view.addAction("&Collapse layer groups")
        self.act_collapse.setCheckable(True)
        self.act_collapse.setToolTip(
            "show one layer per layer group (double-click a band to expand it)"
        )
        self.act_collapse.triggered.connect(self._set_collapsed)
        view.addAction("&Reset view", self.reset_view, QtGui.QKeySequence("R"))
        self._update_actions()

    # -- session --------------------------------------------------------------------------------
    def set_analysis(self, analysis: Any, session_path: str | None = None) -> None:
        """Show ``analysis`` (replacing what was shown)."""
        self.session_path = session_path
        ctl = Controller(analysis, session_path)
        self.controller = ctl
        ctl.scene_changed.connect(self._on_scene_changed)
        ctl.highlight_changed.connect(self._on_highlight_changed)
        ctl.selection_changed.connect(self._on_selection_changed)
        ctl.projection_changed.connect(self._show_projection)
        ctl.message.connect(lambda s: self.statusBar().showMessage(s))
        rec = ctl.rec
        name = Path(session_path).name if session_path else rec.model_name
        acc = rec.accuracy
        self.setWindowTitle(f"cnnvis — {name}")
        self.legend.set_classes(ctl.class_names, ctl.class_colors())
        self.legend.set_marks(ctl.edge_colors())
        self._update_info()
        self.projection.set_layers(ctl.layers, ctl.projection_layer)
        self._install_overview()
        self._show_projection(ctl.projection_layer)
        self.details.show_info(None)
        self.statusBar().showMessage(
            f"{rec.model_name}: {len(ctl.layers)} layers, {rec.n_samples} samples, accuracy"
            f" {acc:.1%}  ·  click a cluster, a class or lasso samples"
        )
        self._update_actions()

    def _install_overview(self) -> None:
        from cnnvis.viewer.canvas import SceneCanvas

        lay = self.overview_holder.layout()
        if self.overview is not None:
            lay.removeWidget(self.overview.native)
            self.overview.native.deleteLater()
            self.overview.close()
        self.overview = SceneCanvas(self.controller.scene, size=(800, 600), show=False)
        self.overview.native.setMinimumSize(320, 240)
        self.overview.native.setMouseTracking(True)
        lay.addWidget(self.overview.native)
        self.overview.events.mouse_press.connect(self._on_overview_press)
        self.overview.events.mouse_release.connect(self._on_overview_release)
        self.overview.events.mouse_double_click.connect(self._on_overview_double_click)
        self.overview.events.mouse_wheel.connect(self._on_overview_wheel)
        self.overview.native.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
        self.overview.native.customContextMenuRequested.connect(self._overview_menu)

    def open_dialog(self) -> None:
        start = str(Path(self.session_path).parent) if self.session_path else str(Path.home())
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a cnnvis session", start)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open the session at ``path``; a dialog explains what went wrong if it cannot."""
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            analysis = open_session(path)
        except SessionOpenError as exc:
            QtWidgets.QApplication.restoreOverrideCursor()
            QtWidgets.QMessageBox.warning(self, "Cannot open session", str(exc))
            return False
        QtWidgets.QApplication.restoreOverrideCursor()
        self.set_analysis(analysis, str(path))
        return True

    # -- views following the controller --------------------------------------------------------
    def _on_scene_changed(self) -> None:
        if self.overview is not None:
            # keep the user's pan and zoom across edits (the layout moves little)
            cam = self.overview.views["overview"].camera
            rect = cam.rect
            self.overview.set_scene(self.controller.scene)
            if getattr(self, "_zoomed", False):
                self.overview.views["overview"].camera.rect = rect
        self._update_info()
        self._update_actions()

    def _on_highlight_changed(self) -> None:
        if self.overview is not None:
            self.overview.update_highlight()

    def _on_selection_changed(self) -> None:
        ctl = self.controller
        sel = ctl.selection
        self.details.show_info(ctl.details())
        self.legend.set_current(sel.class_index)
        self.projection.emphasize(sel.top_samples)
        shown = self._projection_rows()
        if not np.array_equal(self.projection.selected, shown):
            self.projection.select(shown)
        self._update_actions()

    def _projection_rows(self) -> np.ndarray:
        """Rows the projection shows as selected: the selected samples, or a selected class's."""
        ctl = self.controller
        sel = ctl.selection
        if len(sel.samples) or sel.class_index < 0:
            return sel.samples
        return np.flatnonzero(ctl.sample_labels == sel.class_index).astype(np.int64)

    def _show_projection(self, layer: str) -> None:
        ctl = self.controller
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            xy = ctl.projection(layer)
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self.projection.set_layers(ctl.layers, layer)
        self.projection.set_data(
            xy,
            ctl.sample_labels,
            ctl.sample_predictions,
            ctl.class_names,
            ctl.class_colors(),
            ctl.sample_images,
            title="t-SNE at",
        )
        self.projection.select(self._projection_rows())
        self.projection.emphasize(ctl.selection.top_samples)

    def _update_info(self) -> None:
        ctl = self.controller
        if ctl is None:
            return
        rec = ctl.rec
        n_clusters = sum(ctl.n_clusters(name) for name in ctl.layers)
        n_neurons = sum(len(ctl.clusters(name)) for name in ctl.layers)
        self.legend.set_info(
            [
                f"model: {rec.model_name}",
                f"accuracy: {rec.accuracy:.1%} on {rec.n_samples} samples",
                f"{len(ctl.layers)} layers, {n_neurons} neurons, {n_clusters} clusters",
                f"edits: {len(ctl.analysis.history)}",
            ]
        )

    def _update_actions(self) -> None:
        ctl = self.controller
        has = ctl is not None
        self.act_undo.setEnabled(has and ctl.can_undo)
        self.act_redo.setEnabled(has and ctl.can_redo)
        has_cluster = has and ctl.selection.cluster is not None
        self.act_merge.setEnabled(has_cluster)
        self.act_split.setEnabled(has_cluster)

    # -- user actions -----------------------------------------------------------------------------
    def _guard(self, fn, *args) -> None:
        """Run an edit or selection; show a readable message instead of a traceback."""
        try:
            fn(*args)
        except (ValueError, KeyError) as exc:
            self.statusBar().showMessage(str(exc))
            QtWidgets.QMessageBox.information(self, "cnnvis", str(exc))

    def _on_class_clicked(self, c: int) -> None:
        if self.controller is not None:
            self._guard(self.controller.select_class, c)

    def _on_samples_selected(self, rows) -> None:
        if self.controller is not None:
            self._guard(self.controller.select_samples, rows)

    def _on_projection_layer(self, layer: str) -> None:
        if self.controller is not None:
            self._guard(self.controller.set_projection_layer, layer)

    def _set_facet(self, facet: str) -> None:
        if self.controller is not None:
            self._guard(self.controller.set_facet, facet)

    def _set_collapsed(self, collapsed: bool) -> None:
        if self.controller is not None:
            self._guard(self.controller.set_expanded, set() if collapsed else None)

    def _undo(self) -> None:
        if self.controller is not None:
            self._guard(self.controller.undo)

    def _redo(self) -> None:
        if self.controller is not None:
            self._guard(self.controller.redo)

    def _clear_selection(self) -> None:
        if self.controller is not None:
            self.controller.clear_selection()

    def reset_view(self) -> None:
        if self.overview is not None:
            self.overview.fit()
            self._zoomed = False

    def _split_selected(self) -> None:
        ctl = self.controller
        if ctl is None or ctl.selection.cluster is None:
            return
        self._guard(ctl.split_cluster, *ctl.selection.cluster)

    def _merge_dialog(self) -> None:
        ctl = self.controller
        if ctl is None or ctl.selection.cluster is None:
            return
        layer, c = ctl.selection.cluster
        others = [str(i) for i in range(ctl.n_clusters(layer)) if i != c]
        if not others:
            self.statusBar().showMessage(f"{layer} has a single cluster")
            return
        other, ok = QtWidgets.QInputDialog.getItem(
            self, "Merge clusters", f"Merge cluster {c} of {layer} with cluster:", others, 0, False
        )
        if ok:
            self._guard(ctl.merge_clusters, layer, [c, int(other)])

    # overview mouse: click selects, drag of a neuron onto another cluster moves it
    def _hit(self, pos) -> Hit | None:
        """What is under canvas pixel ``pos`` in the overview, as a :class:`Hit`."""
        if self.overview is None or self.controller is None:
            return None
        x, y = float(pos[0]), float(pos[1])
        hit = hit_from_id(self.overview.pick(x, y), self.controller)
        if hit is not None and hit.kind == "cluster":
            # the neurons' boxes inside a cluster's facet are data on the scene, not rectangles
            where = self.overview.panel_at(x, y)
            if where is not None and where[0] == "overview":
                _, wx, wy = where
                boxes = self.controller.scene.neuron_boxes
                for ch in self.controller.members(hit.layer, hit.cluster):
                    b = boxes.get((hit.layer, int(ch)))
                    if b is not None and b[0] <= wx <= b[0] + b[2] and b[1] <= wy <= b[1] + b[3]:
                        return Hit("neuron", hit.layer, hit.cluster, int(ch))
        return hit

    def _on_overview_wheel(self, _event) -> None:
        self._zoomed = True

    def _on_overview_press(self, event) -> None:
        hit = self._hit(event.pos)
        self._press = (np.asarray(event.pos[:2], float), event.button, hit)
        if event.button == 1 and hit is not None and hit.neuron is not None:
            # a drag that starts on a neuron moves the neuron, not the view
            self.overview.views["overview"].camera.interactive = False

    def _on_overview_release(self, event) -> None:
        press = getattr(self, "_press", None)
        self._press = None
        if self.overview is not None:
            self.overview.views["overview"].camera.interactive = True
        if press is None or event.button != 1 or self.controller is None:
            return
        pos0, _button, hit0 = press
        moved = float(np.hypot(*(np.asarray(event.pos[:2], float) - pos0)))
        if moved >= 4 and (hit0 is None or hit0.neuron is None):
            self._zoomed = True  # a drag pans the view
        hit1 = self._hit(event.pos)
        ctl = self.controller
        if moved < 4:
            if hit1 is None or hit1.cluster is None:
                if ctl.selection.cluster is not None:
                    ctl.select_cluster(None, None)  # a click on empty space clears it
                return
            if hit1.neuron is not None:
                self._guard(ctl.select_neuron, hit1.layer, hit1.neuron)
            elif hit1.cluster is not None:
                self._guard(ctl.select_cluster, hit1.layer, hit1.cluster)
            return
        # a drag from a neuron to another cluster of the same layer moves the neuron
        if (
            hit0 is not None
            and hit1 is not None
            and hit0.neuron is not None
            and hit1.cluster is not None
            and hit0.layer == hit1.layer
            and hit0.cluster != hit1.cluster
        ):
            self._guard(ctl.move_neuron, hit0.layer, hit0.neuron, hit1.cluster)

    def _on_overview_double_click(self, event) -> None:
        hit = self._hit(event.pos)
        if hit is not None and hit.kind == "band" and hit.group is not None:
            self._guard(self.controller.toggle_group, hit.group)

    def _overview_menu(self, qpos: QtCore.QPoint) -> None:
        if self.controller is None or self.overview is None:
            return
        menu = self.overview_menu(self._hit((qpos.x(), qpos.y())))
        if menu is not None:
            menu.exec(self.overview.native.mapToGlobal(qpos))

    def overview_menu(self, hit: Hit | None) -> QtWidgets.QMenu | None:
        """The context menu for ``hit``: move/extract a neuron, merge/split its cluster (C7)."""
        ctl = self.controller
        if ctl is None or hit is None or hit.cluster is None:
            return None
        layer, c = hit.layer, hit.cluster
        menu = QtWidgets.QMenu(self)
        k = ctl.n_clusters(layer)
        if hit.neuron is not None:
            n = hit.neuron
            menu.addAction(f"Neuron {n} of {layer}").setEnabled(False)
            menu.addAction("Show neuron details", lambda: self._guard(ctl.select_neuron, layer, n))
            move = menu.addMenu("Move to cluster")
            move.setEnabled(k > 1)
            for j in range(k):
                if j != c:
                    move.addAction(
                        f"cluster {j} ({len(ctl.members(layer, j))} neurons)",
                        lambda j=j: self._guard(ctl.move_neuron, layer, n, j),
                    )
            extract = menu.addAction(
                "Extract into its own cluster", lambda: self._guard(ctl.extract_neuron, layer, n)
            )
            extract.setEnabled(len(ctl.members(layer, c)) > 1)
            menu.addSeparator()
        menu.addAction(f"Cluster {c} of {layer}").setEnabled(False)
        menu.addAction("Show cluster details", lambda: self._guard(ctl.select_cluster, layer, c))
        other = "matrix" if ctl.cluster_facet(layer, c) == "features" else "features"
        menu.addAction(
            f"Show its {FACET_NAMES[other]}",
            lambda: self._guard(ctl.toggle_cluster_facet, layer, c),
        )
        merge = menu.addMenu("Merge with")
        merge.setEnabled(k > 1)
        for j in range(k):
            if j != c:
                merge.addAction(
                    f"cluster {j} ({len(ctl.members(layer, j))} neurons)",
                    lambda j=j: self._guard(ctl.merge_clusters, layer, [c, j]),
                )
        split = menu.addAction("Split in two", lambda: self._guard(ctl.split_cluster, layer, c))
        split.setEnabled(len(ctl.members(layer, c)) >= 2)
        return menu

    def canvas_pos(self, x: float, y: float, panel: str = "overview") -> tuple[float, float]:
        """The overview canvas pixel showing world point ``(x, y)`` of ``panel``."""
        cv = self.overview
        w, h = cv.size
        px, py, _, _ = cv.model.panel_layout(w, h)[panel]
        tr = cv.views[panel].scene.transform
        sx, sy = np.asarray(tr.map(np.array([x, y, 0.0, 1.0])))[:2]
        return float(sx + px), float(sy + py)

    # -- export ---------------------------------------------------------------------------------
    def export_dialog(self, kind: str) -> None:
        if self.controller is None:
            return
        filt = "PNG image (*.png)" if kind == "png" else "SVG drawing (*.svg)"
        out, _ = QtWidgets.QFileDialog.getSaveFileName(self, f"Export {kind.upper()}", "", filt)
        if not out:
            return
        try:
            self.export(kind, out)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a message, not a crash
            QtWidgets.QMessageBox.warning(self, "Export failed", f"{type(exc).__name__}: {exc}")

    def export(self, kind: str, out: str, size: tuple[int, int] = (1920, 1080)) -> str:
        """Write what the window shows as ``kind`` ('png' or 'svg') to ``out``.

        The picture is the full scene (overview, projection and legend, with the current facet,
        expanded groups and highlights) drawn by :mod:`cnnvis.export`, at ``size`` pixels.
        """
        if kind not in ("png", "svg"):
            raise ValueError(f"unknown export kind {kind!r}")
        scene = self.controller.export_scene()
        QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.CursorShape.WaitCursor)
        try:
            if kind == "png":
                from cnnvis.export.png import render_png

                written = render_png(scene, out, size)
            else:
                from cnnvis.export.svg import write_svg

                written = write_svg(scene, out, size)
        finally:
            QtWidgets.QApplication.restoreOverrideCursor()
        self.statusBar().showMessage(f"wrote {written}")
        return str(written)

    def screenshot_dialog(self) -> None:
        out, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Save a screenshot", "cnnvis.png", "PNG image (*.png)"
        )
        if out:
            self.screenshot(out)

    def screenshot(self, out: str | None = None) -> QtGui.QImage:
        """Render the whole window to an image (and save it to ``out`` if given)."""
        app = QtWidgets.QApplication.instance()
        for _ in range(3):
            app.processEvents()
        img = self.grab().toImage()
        if out is not None and not img.save(str(out)):
            raise OSError(f"could not write the screenshot to {out!r}")
        return img


def image_to_array(img: QtGui.QImage) -> np.ndarray:
    """A QImage as an ``(h, w, 4)`` uint8 RGBA array (for tests comparing screenshots)."""
    img = img.convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    h, w = img.height(), img.width()
    buf = np.frombuffer(img.constBits(), np.uint8, count=img.sizeInBytes())
    return buf.reshape(h, img.bytesPerLine())[:, : w * 4].reshape(h, w, 4).copy()


def run_viewer(
    session: str | None,
    *,
    screenshot: str | None = None,
    size: tuple[int, int] | None = None,
    progress: bool = True,
) -> int:
    """Open the viewer (the body of ``python -m cnnvis viewer``); returns the exit status."""
    if session is None:
        try:
            session = ensure_demo_session(progress=progress)
        except Exception as exc:  # noqa: BLE001 - a failed demo build is reported, not raised
            print(f"cnnvis viewer: could not create the demo session: {exc}", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    try:
        analysis = open_session(session, announce=lambda m: print(m, file=sys.stderr))
    except SessionOpenError as exc:
        print(f"cnnvis viewer: {exc}", file=sys.stderr)
        return 2
    app = qt_app()
    win = ViewerWindow(analysis, str(session))
    win.resize(*(size or _default_size(app)))
    win.show()
    for _ in range(3):
        app.processEvents()
    opened = time.perf_counter() - t0
    age = process_age()
    if age is not None:
        opened = max(opened, age)  # count the imports too: the time a user waits
    win.statusBar().showMessage(
        win.statusBar().currentMessage() + f"  ·  opened in {opened:.1f} s", 15000
    )
    if screenshot is not None:
        QtCore.QTimer.singleShot(50, lambda: _screenshot_and_quit(win, screenshot, app))
        app.exec()
        if not Path(screenshot).is_file():
            print(f"cnnvis viewer: could not write {screenshot}", file=sys.stderr)
            return 1
        print(f"wrote {screenshot} (opened in {opened:.2f} s)")
        return 0
    QtCore.QTimer.singleShot(1500, _warm_up_edits)
    app.exec()
    return 0


def process_age() -> float | None:
    """Seconds since this process started (Linux), or None where that is not known."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _warm_up_edits() -> None:
    """Import what the first split needs (scikit-learn's K-Means, seconds to import) in the
    background while the user looks at the window, so the first edit is as quick as the others."""
    import importlib
    import threading

    threading.Thread(
        target=lambda: importlib.import_module("sklearn.cluster"),
        name="cnnvis-warm-up",
        daemon=True,
    ).start()


def _screenshot_and_quit(win: ViewerWindow, out: str, app: QtWidgets.QApplication) -> None:
    try:
        win.screenshot(out)
    except OSError as exc:
        print(f"cnnvis viewer: {exc}", file=sys.stderr)
    finally:
        app.quit()


def _default_size(app: QtWidgets.QApplication) -> tuple[int, int]:
    """90% of the screen, at most 1920x1080 and at least 1024x700."""
    screen = app.primaryScreen()
    if screen is None:
        return (1600, 900)
    g = screen.availableGeometry()
    return (
        max(1024, min(1920, int(g.width() * 0.9))),
        max(700, min(1080, int(g.height() * 0.9))),
    )


def ensure_demo_session(progress: bool = True) -> str:
    """The built-in demo session, created (with a progress bar) when it does not exist yet.

    Creating it trains the demo CNN, records it, analyses it and computes the projection the
    viewer shows first, so that opening it later only reads files.
    """
    from cnnvis import demo

    path = Path(demo.default_demo_dir())
    if not (path / "manifest.json").exists():
        print(f"creating the demo session in {path} (once)…", file=sys.stderr)
        demo.make_demo_session(path, progress=progress)
    if not (path / "analysis.json").exists():
        prepare_session(path, announce=lambda m: print(m, file=sys.stderr))
    return str(path)


def prepare_session(path: str | os.PathLike, *, announce=None) -> Any:
    """Analyse a session and compute the projection the viewer shows first, saved into it.

    What the first opening of a session would do; afterwards opening only reads files.
    Returns the analysis.
    """
    from cnnvis.scene.inputs import default_projection_layer

    analysis = open_session(path, announce=announce)
    analysis.projection(default_projection_layer(analysis))
    analysis.save(Path(path).expanduser())
    return analysis
