"""The classic toolbox in the window: the sample inspector, the confusion panel and the details'
maximisation images.

* :class:`InspectorWindow`: clicking one sample (in the projection, or a confusion cell's or a
  mistake's example) opens it; one tab per entry of :data:`~cnnvis.viewer.toolbox.TABS`, each
  computed when first shown, in a worker thread, with a progress bar and a Cancel button, and
  cached in the session (:class:`~cnnvis.viewer.toolbox.Toolbox`).
* :class:`ToolboxUI`: what the main window owns: the inspector, the confusion dock, the menu
  entry, and the maximisation image of the selected cluster or neuron in the details panel.

All model work runs on one worker thread (:class:`Worker`): the toolbox's hooks on the shared
model must not interleave.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from cnnvis.interpret.progress import Cancelled
from cnnvis.viewer.panels import BarChart
from cnnvis.viewer.qtutil import array_to_pixmap
from cnnvis.viewer.toolbox import TABS, TabResult, Toolbox

__all__ = ["Job", "Worker", "ResultView", "TabPage", "InspectorWindow", "ToolboxUI"]


class Job(QtCore.QRunnable):
    """``fn(progress, should_stop)`` on the worker thread.

    The thread only stores what happens (the last progress report, the outcome); the GUI thread
    reads it through :meth:`deliver` (the :class:`Worker`'s timer) and calls ``on_progress(done,
    total)``, then one of ``on_finished(result)``, ``on_failed(message)``, ``on_cancelled()``.
    No Qt signal crosses the threads (PySide has crashed on cross-thread signals to Python
    callables; see PYSIDE-3124).
    """

    def __init__(self, fn) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python keeps it until it is delivered
        self.fn = fn
        self.stop = threading.Event()
        self.done = threading.Event()
        self.progress: tuple[int, int] | None = None
        self.outcome: tuple[str, Any] = ("cancelled", None)
        self.on_progress = self.on_finished = self.on_failed = self.on_cancelled = None
        self._shown: tuple[int, int] | None = None

    def cancel(self) -> None:
        self.stop.set()

    def _report(self, done: int, total: int) -> None:
        self.progress = (int(done), int(total))  # one assignment: atomic for the reader

    def run(self) -> None:
        try:
            if self.stop.is_set():
                raise Cancelled("cancelled before it started")
            self.outcome = ("finished", self.fn(self._report, self.stop))
        except Cancelled:
            self.outcome = ("cancelled", None)
        except Exception as exc:  # noqa: BLE001 - shown in the tab instead of lost in a thread
            self.outcome = ("failed", f"{type(exc).__name__}: {exc}")
        finally:
            self.done.set()

    def deliver(self) -> bool:
        """On the GUI thread: report new progress, and the outcome once done (True then)."""
        progress = self.progress
        if progress is not None and progress != self._shown and self.on_progress is not None:
            self._shown = progress
            self.on_progress(*progress)
        if not self.done.is_set():
            return False
        kind, payload = self.outcome
        callback = getattr(self, f"on_{kind}")
        if callback is not None:
            callback() if kind == "cancelled" else callback(payload)
        return True


class Worker(QtCore.QObject):
    """One thread for every toolbox job, run in the order they are asked for; a timer on the
    GUI thread delivers their progress and outcomes."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QtCore.QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.jobs: list[Job] = []
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(15)
        self.timer.timeout.connect(self.deliver)

    def start(self, fn) -> Job:
        job = Job(fn)
        self.jobs.append(job)
        self.pool.start(job)
        self.timer.start()
        return job

    def deliver(self) -> None:
        self.jobs = [job for job in self.jobs if not job.deliver()]
        if not self.jobs:
            self.timer.stop()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel every job and wait for the thread to finish."""
        for job in self.jobs:
            job.cancel()
        return self.pool.waitForDone(timeout_ms)


class ResultView(QtWidgets.QWidget):
    """A :class:`TabResult`: its pictures with captions in a row, its text, its bars."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.grid = QtWidgets.QGridLayout()
        self.grid.setHorizontalSpacing(10)
        self.grid.setAlignment(QtCore.Qt.AlignmentFlag.AlignLeft)
        lay.addLayout(self.grid)
        self.text = QtWidgets.QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.text.setStyleSheet("color: #333; margin-top: 6px;")
        lay.addWidget(self.text)
        self.bars_title = QtWidgets.QLabel()
        self.bars_title.setStyleSheet("margin-top: 8px;")
        self.bars = BarChart()
        lay.addWidget(self.bars_title)
        lay.addWidget(self.bars)
        lay.addStretch(1)
        self.show_result(None)

    def show_result(self, result: TabResult | None, size: int = 160) -> None:
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        result = result or TabResult([], [])
        # the adversarial tab's one projection per layer makes a second row, under its pictures
        wrap = len(result.panels) - (0 if result.paths is None else len(result.paths))
        for i, (panel, caption) in enumerate(zip(result.panels, result.captions, strict=True)):
            row, col = (0, i) if i < wrap or wrap <= 0 else (2, i - wrap)
            img = QtWidgets.QLabel()
            img.setPixmap(array_to_pixmap(panel, size))
            img.setStyleSheet("border: 1px solid #bbb;")
            cap = QtWidgets.QLabel(caption)
            cap.setAlignment(QtCore.Qt.AlignmentFlag.AlignHCenter)
            cap.setStyleSheet("color: #333;")
            self.grid.addWidget(img, row, col, QtCore.Qt.AlignmentFlag.AlignHCenter)
            self.grid.addWidget(cap, row + 1, col, QtCore.Qt.AlignmentFlag.AlignTop)
        self.text.setText("".join(f"<p>{line}</p>" for line in result.lines))
        self.bars_title.setText(f"<b>{result.bars_title}</b>")
        self.bars.set_bars([b[0] for b in result.bars], [b[1] for b in result.bars])
        for w in (self.bars_title, self.bars):
            w.setVisible(bool(result.bars))


class TabPage(QtWidgets.QWidget):
    """One tab: a status line with a progress bar and Cancel/Compute buttons above the result.

    ``state`` is ``"idle"``, ``"running"``, ``"done"``, ``"cancelled"`` or ``"failed"``."""

    compute_requested = QtCore.Signal()

    def __init__(self, key: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.state = "idle"
        self.result: TabResult | None = None
        self.job: Job | None = None
        lay = QtWidgets.QVBoxLayout(self)
        row = QtWidgets.QHBoxLayout()
        self.status = QtWidgets.QLabel()
        self.status.setStyleSheet("color: #555;")
        self.bar = QtWidgets.QProgressBar()
        self.bar.setMaximumWidth(260)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.compute_button = QtWidgets.QPushButton("Compute")
        self.cancel_button.clicked.connect(self.cancel)
        self.compute_button.clicked.connect(self.compute_requested.emit)
        for w in (self.status, self.bar, self.cancel_button, self.compute_button):
            row.addWidget(w)
        row.addStretch(1)
        lay.addLayout(row)
        self.view = ResultView()
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setWidget(self.view)
        lay.addWidget(scroll, 1)
        self.set_state("idle")

    def set_state(self, state: str, message: str = "") -> None:
        self.state = state
        running = state == "running"
        self.bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.compute_button.setVisible(state in ("cancelled", "failed"))
        self.status.setText(message)
        self.status.setVisible(bool(message))

    def run(self, job: Job) -> None:
        """Show ``job``'s progress, then its result (results of an older job are ignored)."""
        self.job, self.result = job, None
        self.view.show_result(None)
        self.bar.setRange(0, 0)  # busy until the first report
        self.set_state("running", f"computing {TABS[self.key].lower()}…")
        job.on_progress = functools.partial(self._on_progress, job)
        job.on_finished = functools.partial(self._on_finished, job)
        job.on_failed = functools.partial(self._on_ended, job, "failed")
        job.on_cancelled = functools.partial(self._on_ended, job, "cancelled", "cancelled")

    def cancel(self) -> None:
        if self.job is not None and self.state == "running":
            self.job.cancel()
            self.status.setText("cancelling…")

    def _on_progress(self, job: Job, done: int, total: int) -> None:
        if job is self.job and self.state == "running":
            self.bar.setRange(0, max(1, total))
            self.bar.setValue(done)

    def _on_ended(self, job: Job, state: str, message: str) -> None:
        if job is self.job:
            self.set_state(state, message)

    def _on_finished(self, job: Job, result: TabResult) -> None:
        if job is not self.job:
            return
        self.result = result
        self.view.show_result(result)
        self.set_state("done", "from the session's cache" if result.from_cache else "")


class InspectorWindow(QtWidgets.QWidget):
    """The tabs of one sample (a window of its own; see the module docstring)."""

    def __init__(self, worker: Worker, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent, QtCore.Qt.WindowType.Window)
        self.setWindowTitle("cnnvis — inspector")
        self.resize(1080, 560)
        self.worker = worker
        self.toolbox: Toolbox | None = None
        self.sample: int | None = None
        lay = QtWidgets.QVBoxLayout(self)
        self.header = QtWidgets.QLabel()
        self.header.setStyleSheet("font-size: 12pt;")
        lay.addWidget(self.header)
        self.tabs = QtWidgets.QTabWidget()
        self.pages = {key: TabPage(key) for key in TABS}
        for key, page in self.pages.items():
            self.tabs.addTab(page, TABS[key])
            page.compute_requested.connect(lambda k=key: self.compute(k, again=True))
        self.tabs.currentChanged.connect(lambda _i: self.compute(self.current_key))
        lay.addWidget(self.tabs, 1)

    @property
    def current_key(self) -> str:
        return list(TABS)[self.tabs.currentIndex()]

    def inspect(self, toolbox: Toolbox, sample: int) -> None:
        """Show ``sample`` (a data-set index); the current tab starts computing."""
        for page in self.pages.values():
            page.cancel()
            page.job = None
            page.result = None
            page.view.show_result(None)
            page.set_state("idle")
        self.toolbox, self.sample = toolbox, int(sample)
        rec = toolbox.rec
        label = int(rec.labels[self.sample])
        pred = int(rec.predictions[self.sample])
        mark = "" if label == pred else "  <span style='color:#b00'>(misclassified)</span>"
        self.header.setText(
            f"<b>Sample {self.sample}</b>: label <b>{rec.class_names[label]}</b>, predicted "
            f"<b>{rec.class_names[pred]}</b> ({float(rec.confidences[self.sample]):.0%}){mark}"
        )
        self.setWindowTitle(f"cnnvis — sample {self.sample}")
        self.compute(self.current_key)

    def compute(self, key: str, *, again: bool = False) -> None:
        """Start tab ``key`` unless it is shown, running, or nothing is being inspected; a
        cancelled or failed tab starts only ``again`` (its Compute button), not when shown."""
        page = self.pages[key]
        if self.toolbox is None or page.state in ("running", "done"):
            return
        if page.state != "idle" and not again:
            return
        tb, sample = self.toolbox, self.sample
        page.run(self.worker.start(lambda p, s: tb.tab(key, sample, p, s)))


class ToolboxUI(QtCore.QObject):
    """The toolbox's part of the main window (its only entry points are in ``viewer/app.py``:
    created after the menus, told the controller in ``set_analysis``)."""

    def __init__(self, window: QtWidgets.QMainWindow) -> None:
        from cnnvis.viewer.confusion import ConfusionPanel

        super().__init__(window)
        self.window = window
        self.worker = Worker(self)
        self.inspector = InspectorWindow(self.worker, window)
        self.toolbox: Toolbox | None = None
        self.controller: Any = None
        self._unit_job: Job | None = None
        self.confusion = ConfusionPanel()
        self.dock = QtWidgets.QDockWidget("Confusion matrix", window)
        self.dock.setWidget(self.confusion)
        window.addDockWidget(QtCore.Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
        view.addSeparator()
        act = self.dock.toggleViewAction()
        act.setText("Confusion matri&x")
        act.setShortcut(QtGui.QKeySequence("X"))
        view.addAction(act)
        self.confusion.cell_clicked.connect(self.select_cell)
        self.confusion.sample_clicked.connect(self.inspect)
        window.projection.samples_selected.connect(self._on_projection_pick)
        QtWidgets.QApplication.instance().aboutToQuit.connect(self.worker.shutdown)

    def set_controller(self, controller: Any, session_path: str | None) -> None:
        self.controller = controller
        self.toolbox = None
        if session_path:  # the adversarial tab's paths are drawn on the viewer's own projections
            analysis = controller.analysis
            self.toolbox = Toolbox(session_path, controller.rec,
                                   projection=lambda layer: analysis.projection(layer).coords
                                   if layer in analysis.labels else None)  # fmt: skip
        controller.selection_changed.connect(self._on_selection)
        self.confusion.set_data(controller.rec, self.toolbox)
        if self.toolbox is not None:  # the model loads in the background: the first tab is quick
            tb = self.toolbox
            self.worker.start(lambda _p, _s: tb.load())

    def inspect(self, sample: int) -> None:
        """Open the inspector on data-set sample ``sample``."""
        if self.toolbox is None:
            self.window.statusBar().showMessage("the inspector needs a session folder")
            return
        self.inspector.inspect(self.toolbox, sample)
        self.inspector.show()
        self.inspector.raise_()

    def select_cell(self, true: int, predicted: int) -> np.ndarray:
        """Select, everywhere, the samples of confusion cell (true, predicted) that the
        projection shows; returns their rows."""
        ctl = self.controller
        rows = np.flatnonzero((ctl.sample_labels == true) & (ctl.sample_predictions == predicted))
        ctl.select_samples(rows)
        return rows

    def _on_projection_pick(self, rows) -> None:
        if len(rows) == 1 and self.controller is not None:  # a click on one sample
            self.inspect(int(self.controller.rec.pooled_index[int(rows[0])]))

    def _on_selection(self) -> None:
        """Start the maximisation of the selected neuron or cluster, beside its patches."""
        ctl, details = self.controller, self.window.details
        if self._unit_job is not None:
            self._unit_job.cancel()
            self._unit_job = None
        sel = ctl.selection
        if self.toolbox is None or sel.cluster is None:
            details.set_maximization(None)
            return
        layer, cluster = sel.cluster
        chans = [sel.neuron[1]] if sel.neuron is not None else ctl.members(layer, cluster)
        tb = self.toolbox
        job = self.worker.start(lambda p, s: tb.maximization(layer, chans, p, s))
        details.set_maximization("computing…")
        job.on_finished = functools.partial(self._show_unit, job)
        job.on_failed = functools.partial(self._show_unit, job)
        self._unit_job = job

    def _show_unit(self, job: Job, result: TabResult | str) -> None:
        if job is not self._unit_job:
            return  # another unit was selected meanwhile
        if isinstance(result, str):
            self.window.details.set_maximization(result)
        else:
            self.window.details.set_maximization(result.panels[0], result.captions[0])
