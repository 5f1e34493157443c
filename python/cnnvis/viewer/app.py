"""The interactive window: ``python -m cnnvis viewer [SESSION]``.

Layout: the legend (classes, marks) on the left, the overview of the clustered network in the
middle (the scene's vispy canvas, :mod:`cnnvis.render.canvas`), the projection of the samples and
the details of the selected cluster or neuron on the right. Everything the user does goes through
the :class:`~cnnvis.viewer.controller.Controller`; the widgets only show its state.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cnnvis.viewer.animation import SceneAnimation
from cnnvis.viewer.compare import compare_dialog
from cnnvis.viewer.controller import Controller
from cnnvis.viewer.diagnosis import toggle_diagnosis
from cnnvis.viewer.inspector import ToolboxUI
from cnnvis.viewer.overview import OverviewMouse
from cnnvis.viewer.panels import DetailsPanel, LegendPanel
from cnnvis.viewer.player import open_player
from cnnvis.viewer.projection import ProjectionPanel

__all__ = [
    "ViewerWindow",
    "image_to_array",
    "open_session",
    "prepare_session",
    "qt_app",
]


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


class ViewerWindow(OverviewMouse, QtWidgets.QMainWindow):
    """The main window on one session (see the module docstring for its layout); the mouse on
    the overview is handled by :class:`~cnnvis.viewer.overview.OverviewMouse`."""

    def __init__(self, analysis: Any = None, session_path: str | None = None) -> None:
        super().__init__()
        self.controller: Controller | None = None
        self.overview = None
        self.session_path = session_path
        self.setWindowTitle("cnnvis")
        self.resize(1600, 900)
        self._build_widgets()
        self._build_menus()
        self.toolbox = ToolboxUI(self)  # the sample inspector, confusion dock, maximisation
        self.animation = SceneAnimation(self._show_scene, self._move_scene, self)
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
        self.projection.neuron_picked.connect(self._on_neuron_picked)

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
        file_menu.addAction("&Compare with another session…", lambda: compare_dialog(self))
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
        self.act_drill = edit.addAction(
            "&Drill into selected cluster", self._drill_selected, QtGui.QKeySequence("D")
        )
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
        self.act_expand_all = view.addAction(
            "&Expand all", lambda: self._set_expanded("all"), QtGui.QKeySequence("E")
        )
        self.act_collapse = view.addAction(
            "&Collapse to default", lambda: self._set_expanded(None), QtGui.QKeySequence("C")
        )
        self.act_collapse.setToolTip("the default depth (click a group's band or title to open it)")
        view.addAction("&Reset view", self.reset_view, QtGui.QKeySequence("R"))
        view.addSeparator()
        self.act_player = view.addAction("Training &animation…", lambda: open_player(self))
        self.act_player.setToolTip("the projection's layer through the training snapshots, played")
        view.addAction(
            "&Diagnosis (training)", lambda: toggle_diagnosis(self), QtGui.QKeySequence("T")
        )
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
        self.projection.set_source(ctl)
        self.projection.set_layers(ctl.layers, ctl.projection_layer)
        self._install_overview()
        self._show_projection(ctl.projection_layer)
        self.details.show_info(None)
        if getattr(self, "diagnosis_dock", None) is not None:
            self.diagnosis_dock.widget().set_source(analysis)
        self.toolbox.set_controller(ctl, session_path)
        self.statusBar().showMessage(
            f"{rec.model_name}: {len(ctl.layers)} layers, {rec.n_samples} samples, accuracy"
            f" {acc:.1%}  ·  click a cluster, a class or lasso samples"
        )
        self._update_actions()

    def _install_overview(self) -> None:
        from cnnvis.render.canvas import SceneCanvas

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
        ctl = self.controller
        if self.overview is not None:
            if ctl.last_change == "expand" and ctl.previous_scene is not None:
                self._zoomed = False  # an opened group is shown whole: fit the new layout
                self.animation.start(ctl.previous_scene, ctl.scene)
            else:
                self._show_scene(ctl.scene)
        self._update_info()
        self._update_actions()

    def _move_scene(self, scene) -> None:
        self.overview.move_scene(scene)

    def _show_scene(self, scene) -> None:
        """Draw ``scene`` in the overview, keeping the user's pan and zoom if they moved it."""
        cam = self.overview.views["overview"].camera
        rect = cam.rect
        self.overview.set_scene(scene)
        if getattr(self, "_zoomed", False):
            self.overview.views["overview"].camera.rect = rect

    def _on_highlight_changed(self) -> None:
        if self.overview is not None:
            self.overview.update_highlight()

    def _on_selection_changed(self) -> None:
        ctl = self.controller
        sel = ctl.selection
        self.details.show_info(ctl.details())
        self.legend.set_current(sel.class_index)
        self.projection.emphasize(sel.top_samples)
        self.projection.show_neuron(sel.neuron)  # samples coloured by a picked neuron
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
        self.act_drill.setEnabled(has_cluster)

    # -- user actions -----------------------------------------------------------------------------
    def _guard(self, fn, *args) -> None:
        """Run an edit or selection; show a readable message instead of a traceback."""
        try:
            fn(*args)
        except (ValueError, KeyError) as exc:
            self.statusBar().showMessage(str(exc))
            QtWidgets.QMessageBox.information(self, "cnnvis", str(exc))

    def _on_neuron_picked(self, layer: str, channel: int) -> None:
        if self.controller is not None:
            self._guard(self.controller.select_neuron, layer, channel)

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

    def _set_expanded(self, groups) -> None:
        if self.controller is not None:
            self._guard(self.controller.set_expanded, groups)

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

    def _drill_selected(self) -> None:
        ctl = self.controller
        if ctl is None or ctl.selection.cluster is None:
            return
        self._guard(ctl.drill_cluster, *ctl.selection.cluster)

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


def prepare_session(path: str | os.PathLike, *, announce=None) -> Any:
    """Analyse a session and compute the projection the viewer shows first, saved into it.

    What the first opening of a session would do; afterwards opening only reads files.
    Returns the analysis.
    """
    from cnnvis.scene.inputs import default_projection_layer, overview_input

    analysis = open_session(path, announce=announce)
    analysis.projection(default_projection_layer(analysis))
    for layer in analysis.layers:  # their row orders are saved: the window only reads them
        for c in range(analysis.n_clusters(layer)):
            analysis.activation_matrix(layer, c)
    overview_input(analysis, projection=False)  # connections and tile caches, saved below
    analysis.save(Path(path).expanduser())
    return analysis
