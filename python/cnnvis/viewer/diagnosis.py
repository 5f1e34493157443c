"""Diagnosis mode: a dock with the training curves, each layer's colour and sparkline for a chosen
statistic over the epochs, and the findings (View > Diagnosis, key T); while it is open the
overview shows the same colours on its layers and the sparklines beside them.

It draws :func:`cnnvis.scene.diagnosis.training_view` and
:func:`~cnnvis.scene.diagnosis.diagnosis_overlay`; nothing is computed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cnnvis.scene.diagnosis import (
    STATISTICS,
    TrainingView,
    cluster_dead_fraction,
    diagnosis_overlay,
    sparkline,
    training_view,
)

__all__ = ["DiagnosisPanel", "show_overview", "toggle_diagnosis"]

_CURVE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _polyline(points: np.ndarray, box: QtCore.QRectF) -> QtGui.QPolygonF:
    """Unit-box points (y up) placed in ``box`` (y down)."""
    return QtGui.QPolygonF(
        [QtCore.QPointF(box.left() + x * box.width(), box.bottom() - y * box.height())
         for x, y in points]
    )  # fmt: skip


class CurvesView(QtWidgets.QWidget):
    """Loss and metrics over the epochs, each on its own range, with a legend line."""

    def __init__(self) -> None:
        super().__init__()
        self.view: TrainingView | None = None
        self.setMinimumHeight(150)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt API)
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QtGui.QColor("white"))
        box = QtCore.QRectF(12, 38, max(10, self.width() - 24), max(10, self.height() - 62))
        p.setPen(QtGui.QColor("#bbb"))
        p.drawRect(box)
        view = self.view
        if view is None or not view.curves:
            p.drawText(box, QtCore.Qt.AlignmentFlag.AlignCenter, "no loss or metrics recorded")
            return
        x, y = 8.0, 14.0
        for i, (name, values) in enumerate(view.curves.items()):
            color = QtGui.QColor(_CURVE_COLORS[i % len(_CURVE_COLORS)])
            finite = values[np.isfinite(values)]
            p.setPen(QtGui.QPen(color, 2))
            p.drawPolyline(_polyline(sparkline(values, view.epochs), box))
            label = f"{name} {finite[-1]:.3g}" if len(finite) else f"{name} nan"
            w = p.fontMetrics().horizontalAdvance(label) + 14
            if x + w > self.width() and x > 8:  # the legend wraps onto a second line
                x, y = 8.0, y + 15
            p.drawText(QtCore.QPointF(x, y), label)
            x += w
        p.setPen(QtGui.QColor("#555"))
        e = view.epochs
        if len(e):
            p.drawText(QtCore.QPointF(box.left(), box.bottom() + 16), f"epoch {int(e.min())}")
            right = f"epoch {int(e.max())}"
            w = p.fontMetrics().horizontalAdvance(right)
            p.drawText(QtCore.QPointF(box.right() - w, box.bottom() + 16), right)
            note = "each curve on its own range"
            w = p.fontMetrics().horizontalAdvance(note)
            p.drawText(QtCore.QPointF(box.center().x() - w / 2, box.bottom() + 16), note)


class LayerSparks(QtWidgets.QWidget):
    """One row per layer: a swatch in the layer's colour, its name, its sparkline, its value."""

    ROW = 22

    def __init__(self) -> None:
        super().__init__()
        self.view: TrainingView | None = None

    def set_view(self, view: TrainingView) -> None:
        self.view = view
        self.setMinimumHeight(max(1, len(view.layers)) * self.ROW + 8)
        self.update()

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt API)
        p = QtGui.QPainter(self)
        p.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        view = self.view
        if view is None or not view.layers:
            p.drawText(self.rect(), QtCore.Qt.AlignmentFlag.AlignCenter,
                       "no layer statistics: record snapshots with cnnvis.Tracker")  # fmt: skip
            return
        fm = p.fontMetrics()
        name_w = min(max(fm.horizontalAdvance(n) for n in view.layers) + 12, self.width() // 3)
        spark_x, value_w = 22 + name_w, fm.horizontalAdvance("-0.000e+00") + 8
        spark_w = max(20, self.width() - spark_x - value_w - 8)
        for i, name in enumerate(view.layers):
            y = 4 + i * self.ROW
            r, g, b, _a = (int(c) for c in view.colors[i])
            p.fillRect(QtCore.QRectF(4, y + 3, 14, self.ROW - 6), QtGui.QColor(r, g, b))
            p.setPen(QtGui.QColor("#222"))
            p.drawText(QtCore.QRectF(22, y, name_w - 6, self.ROW),
                       QtCore.Qt.AlignmentFlag.AlignVCenter,
                       fm.elidedText(name, QtCore.Qt.TextElideMode.ElideMiddle, name_w - 6))  # fmt: skip
            box = QtCore.QRectF(spark_x, y + 4, spark_w, self.ROW - 8)
            p.setPen(QtGui.QPen(QtGui.QColor(r, g, b).darker(130), 1.5))
            p.drawPolyline(_polyline(view.sparklines[i], box))
            last = view.values[i, -1] if view.values.shape[1] else np.nan
            p.setPen(QtGui.QColor("#444"))
            p.drawText(QtCore.QRectF(spark_x + spark_w + 6, y, value_w, self.ROW),
                       QtCore.Qt.AlignmentFlag.AlignVCenter, f"{last:.3g}")  # fmt: skip


class DiagnosisPanel(QtWidgets.QWidget):
    """Curves, per-layer sparklines of the chosen statistic, and the findings."""

    def __init__(self, on_view=None) -> None:
        super().__init__()
        self.source: Any = None
        #: The view shown now, and who is told of each new one (the overview of the window).
        self.view: TrainingView | None = None
        self.on_view = on_view
        self.choice = QtWidgets.QComboBox()
        for key, label in STATISTICS:
            self.choice.addItem(label, key)
        self.choice.currentIndexChanged.connect(lambda _i: self.refresh())
        self.curves = CurvesView()
        self.sparks = LayerSparks()
        self.findings = QtWidgets.QListWidget()
        self.findings.setWordWrap(True)
        self.findings.setSpacing(3)
        self.findings.setAlternatingRowColors(True)
        self.setMinimumWidth(420)
        lay = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(QtWidgets.QLabel("Colour layers by"))
        row.addWidget(self.choice, 1)
        lay.addWidget(self.curves, 3)
        lay.addLayout(row)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.sparks)
        lay.addWidget(scroll, 2)
        lay.addWidget(QtWidgets.QLabel("Findings (python -m cnnvis diagnose)"))
        lay.addWidget(self.findings, 3)

    def set_source(self, source: Any) -> None:
        """Show the snapshots of an Analysis or Recording."""
        self.source = source
        self.refresh()

    def refresh(self) -> None:
        if self.source is None:
            return
        view = self.view = training_view(self.source, self.choice.currentData())
        self.curves.view = view
        self.curves.update()
        self.sparks.set_view(view)
        self.findings.clear()
        for f in view.findings or []:
            where = " · ".join(
                x for x in (f.layer, None if f.epoch is None else f"epoch {f.epoch}") if x
            )
            self.findings.addItem(f"{f.kind}{f' ({where})' if where else ''}: {f.message}")
        if not view.findings:
            self.findings.addItem("no finding")
        if self.on_view is not None:
            self.on_view(view)


def show_overview(window: Any) -> None:
    """Draw the window's overview with diagnosis mode on it while the dock is open, plain (the
    controller's own scene) otherwise; follows the controller's scene changes from then on."""
    ctl = getattr(window, "controller", None)
    dock = getattr(window, "diagnosis_dock", None)
    if ctl is None or window.overview is None or dock is None:
        return
    if getattr(dock, "followed", None) is not ctl:  # a new session: redraw after its edits
        dock.followed = ctl
        ctl.scene_changed.connect(lambda: dock.isVisible() and show_overview(window))
    view = dock.widget().view
    window.animation.finish()
    if not dock.isVisible() or view is None:
        if window.overview.model is not ctl.scene:  # plain already: nothing to redraw
            window._show_scene(ctl.scene)
        return
    dead = None
    if view.statistic == "dead":  # clusters outlined by their fraction of dead units
        dead = {name: cluster_dead_fraction(ctl.analysis, name, ctl.clusters(name))
                for name in ctl.layers}  # fmt: skip
    window._show_scene(diagnosis_overlay(ctl.scene, view, dead))


def toggle_diagnosis(window: Any) -> QtWidgets.QDockWidget:
    """Show (filled with the window's analysis) or hide the diagnosis dock of a ViewerWindow."""
    dock = getattr(window, "diagnosis_dock", None)
    if dock is None:
        dock = QtWidgets.QDockWidget("Diagnosis", window)
        dock.setObjectName("diagnosis")
        dock.setWidget(DiagnosisPanel(lambda _view: show_overview(window)))
        window.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, dock)
        window.diagnosis_dock = dock
        dock.hide()
        # closed by any means (its close button too): the overview is plain again
        dock.visibilityChanged.connect(lambda shown: shown or show_overview(window))
    if dock.isVisible():
        dock.hide()
    else:
        controller = getattr(window, "controller", None)
        dock.show()
        dock.widget().set_source(None if controller is None else controller.analysis)
    return dock
