"""The mouse on the overview: what is under it, clicks, drags and the context menu.

:class:`OverviewMouse` is mixed into the :class:`~cnnvis.viewer.app.ViewerWindow`: a click selects
a neuron or a cluster (empty space clears the selection), a neuron dragged onto another cluster of
its layer moves there (C7), a click on a group's band or title opens or closes it, and the
context menu offers the edits. Every edit goes through the window's controller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6 import QtCore, QtWidgets

from cnnvis.viewer.controller import FACET_NAMES, Controller

__all__ = ["Hit", "OverviewMouse", "hit_from_id"]


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


class OverviewMouse:
    """Mouse handling of the overview canvas, for a window with ``overview`` (the
    :class:`~cnnvis.render.canvas.SceneCanvas`), ``controller`` and ``_guard(fn, *args)``."""

    _zoomed = False
    _press = None

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
            if hit1 is not None and hit1.kind == "band" and hit1.group in ctl.group_names:
                self._guard(ctl.toggle_group, hit1.group)  # a group's band or title opens it
                return
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
        drill = menu.addAction(
            "Drill into cluster", lambda: self._guard(ctl.drill_cluster, layer, c)
        )
        drill.setEnabled(len(ctl.members(layer, c)) >= 2)
        return menu

    def canvas_pos(self, x: float, y: float, panel: str = "overview") -> tuple[float, float]:
        """The overview canvas pixel showing world point ``(x, y)`` of ``panel``."""
        cv = self.overview
        w, h = cv.size
        px, py, _, _ = cv.model.panel_layout(w, h)[panel]
        tr = cv.views[panel].scene.transform
        sx, sy = np.asarray(tr.map(np.array([x, y, 0.0, 1.0])))[:2]
        return float(sx + px), float(sy + py)
