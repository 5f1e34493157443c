"""The projection area's small multiples (issue 17): a grid of panels in one vispy canvas.

Each panel shows a :class:`PanelSpec`: the samples' t-SNE at a layer and training snapshot, the
neurons' projection (MDS of ``1 - |r|``), or the samples' trajectories through the layers
(:mod:`cnnvis.analysis.trajectories`). Every panel is a :class:`PanelView`: a vispy ViewBox in a
canvas of its own, so that panning one panel redraws that panel alone; one canvas holding a
ViewBox per panel costs the same when every panel changes and about the number of panels times
more when one is panned (``benchmarks/projections.py``).

This module computes what a panel shows (:class:`PanelData`, from the analysis, cached) and draws
it; the mouse, the menus and the shared sample selection are the
:class:`~cnnvis.viewer.projection.ProjectionPanel`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets
from vispy import scene
from vispy.scene.cameras import PanZoomCamera

from cnnvis.render.glvisuals import Sprites, TexturedQuads
from cnnvis.render.panel import MARK_SCALE, MARK_SHAPE
from cnnvis.viewer.density import LOD_POINTS, DensityImage, marker_look, points_in_rect

__all__ = [
    "KINDS",
    "PRESETS",
    "GridMenus",
    "HoverCard",
    "PanelData",
    "PanelSpec",
    "PanelView",
    "preset_specs",
]

KINDS = ("samples", "neurons", "trajectories")
#: The grids the Grid menu lays out in one go (the current layer is the layer box's).
PRESETS = (
    "single panel",
    "untrained vs trained",
    "first vs last layer",
    "every layer",
    "samples and neurons",
    "samples and trajectories",
)
_FADED = 0.18  # alpha of the samples outside a selection
_BORDER = (0.78, 0.78, 0.8, 1.0)


@dataclass(frozen=True)
class PanelSpec:
    """What one panel shows: ``kind`` (one of :data:`KINDS`) of ``layer`` (None: the current
    layer, the one the layer box shows) at training snapshot ``snapshot`` (a position in
    ``rec.snapshots``; None: the recorded model). A trajectories panel follows the samples
    through every analysed layer and ignores both."""

    kind: str = "samples"
    layer: str | None = None
    snapshot: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a panel shows one of {', '.join(KINDS)}, not {self.kind!r}")

    def resolved(self, current: str) -> PanelSpec:
        """The spec with the current layer filled in."""
        return PanelSpec(self.kind, self.layer or current, self.snapshot)


def preset_specs(name: str, layers: list[str], n_snapshots: int) -> tuple[list[PanelSpec], int]:
    """The panels (row by row) and the number of columns of the preset grid ``name``.

    ``"untrained vs trained"`` is the paper's picture: samples (top) and neurons (bottom) of the
    current layer at the first snapshot (left) and the recorded model (right); without
    snapshots it is the current layer's samples and neurons.
    """
    if name not in PRESETS:
        raise ValueError(f"no grid preset {name!r}; presets: {', '.join(PRESETS)}")
    if name == "single panel":
        return [PanelSpec()], 1
    if name == "untrained vs trained" and n_snapshots:
        snaps = (0, None)
        return [PanelSpec(k, None, s) for k in ("samples", "neurons") for s in snaps], 2
    if name in ("untrained vs trained", "samples and neurons"):
        return [PanelSpec("samples"), PanelSpec("neurons")], 2
    if name == "first vs last layer":
        return [PanelSpec("samples", layers[0]), PanelSpec("samples", layers[-1])], 2
    if name == "every layer":
        return [PanelSpec("samples", layer) for layer in layers], math.ceil(math.sqrt(len(layers)))
    return [PanelSpec("samples"), PanelSpec("trajectories")], 2


@dataclass
class PanelData:
    """What a panel draws. ``coords`` (n, 2) are its points (samples, neurons, or the samples at
    the last stop of their trajectories); ``title`` its caption."""

    coords: np.ndarray
    title: str
    best_class: np.ndarray | None = None  # neurons: the class each tells apart best (-1: none)
    score: np.ndarray | None = None  # neurons: how well (0..1)
    positions: np.ndarray | None = None  # trajectories: (n, stops, 2)
    polylines: np.ndarray | None = None  # trajectories: bundled curves (n, m, 2)
    outlier: np.ndarray | None = None  # trajectories: outlier score per sample
    extra: dict = field(default_factory=dict)


def align_like(y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``y`` rotated/reflected onto ``ref`` and put at its centre and scale, so that a panel
    beside the main one shows the same samples in the same corner."""
    from cnnvis.analysis.projections import align_onto

    centre = ref.mean(axis=0)
    rms = float(np.sqrt(np.mean(np.sum((ref - centre) ** 2, axis=1)))) or 1.0
    return align_onto(y, align_onto(ref, None)) * rms + centre


def panel_data(analysis: Any, spec: PanelSpec, main: np.ndarray | None) -> PanelData:
    """Compute a resolved ``spec`` from ``analysis``; sample panels are aligned onto ``main``
    (the main panel's coordinates)."""
    from cnnvis.analysis import neuron_projection, sample_projection
    from cnnvis.analysis.projections import stop_name

    if spec.kind == "samples":
        proj = sample_projection(analysis, spec.layer, spec.snapshot)
        coords = proj.coords if main is None else align_like(proj.coords, main)
        title = (
            f"{stop_name(analysis, spec.layer, spec.snapshot)} · NH {proj.neighbourhood_hit:.2f}"
        )
        return PanelData(np.asarray(coords, np.float32), title)
    if spec.kind == "neurons":
        proj = neuron_projection(analysis, spec.layer, snapshot=spec.snapshot)
        name = stop_name(analysis, spec.layer, spec.snapshot)
        return PanelData(
            np.asarray(proj.coords, np.float32),
            f"neurons of {name}",
            best_class=proj.best_class,
            score=proj.score,
        )
    from cnnvis.analysis import trajectories

    traj = trajectories(analysis, list(analysis.layers))
    return PanelData(
        np.asarray(traj.positions[:, -1], np.float32),
        f"trajectories through {len(traj.stops)} layers",
        positions=traj.positions,
        polylines=traj.polylines,
        outlier=traj.outlier,
    )


def sample_style(
    labels: np.ndarray,
    preds: np.ndarray,
    colors: np.ndarray,
    active: np.ndarray | None,
    values_rgb: np.ndarray | None = None,
) -> dict:
    """Sprite data for samples: class colours (or ``values_rgb``, a neuron's activation), the
    misclassified ones as the export's mark, the inactive ones faded; misclassified last."""
    n = len(labels)
    fill = np.ones((n, 4), np.float32)
    if values_rgb is not None:
        fill[:, :3] = values_rgb
    elif n:
        fill[:, :3] = colors[np.clip(labels, 0, len(colors) - 1)]
    on = np.ones(n, bool) if active is None else active
    fill[~on, 3] = _FADED
    wrong = labels != preds
    edge = np.zeros((n, 4), np.float32)
    edge[:, 3] = np.where(on, 0.9, 0.15)
    edge[~wrong, :3] = 1.0
    size = 8.0 if n <= 2000 else 5.0
    order = np.argsort(wrong, kind="stable")
    w = wrong[order]
    return {
        "order": order,
        "wrong": w,  # misclassified, in drawing order (the marks kept over a density image)
        "face_color": fill[order],
        "edge_color": edge[order],
        "size": np.where(w, size * MARK_SCALE, size),
        "edge_width": np.where(w, 1.5, 0.8),
        "shape": np.where(w, MARK_SHAPE, "disc"),
    }


def rows_in_box(coords: np.ndarray, p0, p1) -> np.ndarray:
    """Rows of ``coords`` in the axis-aligned box with corners ``p0``, ``p1`` (data units)."""
    lo = np.minimum(p0, p1)
    hi = np.maximum(p0, p1)
    return np.flatnonzero(np.all((coords >= lo) & (coords <= hi), axis=1))


class Camera(PanZoomCamera):
    """Pan/zoom camera that leaves left-button drags alone while a selection tool is active."""

    select_mode = False
    on_view_change = None  # called after every change of the view (the panel's level of detail)

    def view_changed(self):
        super().view_changed()
        if self.on_view_change is not None:
            self.on_view_change()

    def viewbox_mouse_event(self, event):
        if (
            self.select_mode
            and event.type == "mouse_move"
            and event.press_event is not None
            and 1 in (event.buttons or [])
        ):
            return
        super().viewbox_mouse_event(event)


class PanelView:
    """One panel of the grid: a ViewBox with its points, rings, curves, thumbnails and title."""

    def __init__(self, spec: PanelSpec, own_canvas: bool = True, app=None) -> None:
        self.spec = spec
        self.data: PanelData | None = None
        self.image_map = False
        self.snap = True
        self.shown = np.zeros((0, 2), np.float32)  # where the points are drawn (hit tests)
        # a canvas of its own: panning a panel redraws it alone (benchmarks/projections.py);
        # without, the caller puts the ViewBox in a canvas
        self.canvas = None
        self.view = scene.widgets.ViewBox(border_color=_BORDER, bgcolor=(1, 1, 1, 1))
        if own_canvas:
            self.canvas = scene.SceneCanvas(keys=None, bgcolor="white", size=(300, 260), app=app)
            self.canvas.native.setMinimumSize(120, 100)
            self.canvas.native.setMouseTracking(True)
            self.canvas.central_widget.add_widget(self.view)
        self.view.camera = Camera(aspect=1)
        self.view.camera.select_mode = True
        self.view.camera.on_view_change = self._apply_lod
        s = self.view.scene
        # large panels zoomed out: one density image instead of the markers (issue 20)
        self.density = DensityImage(s)
        self.density.image.order = 0
        self.lod = False  # whether the density image is shown
        self._restyle = False  # the markers are to be set again (a new style)
        self._style: dict | None = None  # the samples' style while the panel shows samples
        self.points = Sprites(parent=s)
        self.ring = Sprites(parent=s)
        self.curves = scene.visuals.Line(parent=s, width=2.0, method="gl", connect="segments")
        self.path = scene.visuals.Line(parent=s, color=(0.1, 0.1, 0.1, 0.9), width=1.5)
        self.title = scene.visuals.Text(
            "", parent=self.view, color=(0.15, 0.15, 0.15, 1), font_size=8, bold=True,
            anchor_x="left", anchor_y="bottom", pos=(6, 16),
        )  # fmt: skip
        self.thumbs = None  # TexturedQuads, made when the image map is first shown
        for v, z in ((self.thumbs, 0), (self.points, 1), (self.curves, 2), (self.ring, 3)):
            if v is not None:
                v.order = z
        self.path.order = 4
        self.path.visible = self.curves.visible = False

    # -- geometry -----------------------------------------------------------------------------
    def _transform(self):
        return self.view.scene.node_transform(self.view.canvas.scene)

    def to_canvas(self, xy: np.ndarray) -> np.ndarray:
        """Data coordinates ``(n, 2)`` to pixels of the panel's canvas."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        px = self._transform().map(np.c_[xy, np.zeros(len(xy)), np.ones(len(xy))])
        return px[:, :2] / px[:, 3:4]

    def to_data(self, pos) -> np.ndarray:
        """A pixel of the panel's canvas to data coordinates."""
        return np.asarray(self._transform().imap(np.array([pos[0], pos[1], 0, 1], float)))[:2]

    def close(self) -> None:
        if self.canvas is not None:
            self.canvas.native.hide()
            self.canvas.native.deleteLater()
            self.canvas = None

    def fit(self) -> None:
        c = self.shown
        if len(c):
            lo, hi = c.min(0), c.max(0)
            pad = 0.06 * float(max(hi - lo)) + 1e-6
            self.view.camera.set_range(
                x=(float(lo[0] - pad), float(hi[0] + pad)),
                y=(float(lo[1] - pad), float(hi[1] + 2.5 * pad)),  # room for the title
                margin=0,
            )

    # -- drawing ------------------------------------------------------------------------------
    def set_data(self, data: PanelData) -> None:
        self.data = data
        self.title.text = data.title
        self._place()
        self.fit()

    def _place(self) -> None:
        """Where the points go: their coordinates, or the cells of the snapped image map."""
        c = self.data.coords
        if self.image_map and self.snap and self.spec.kind != "neurons" and len(c):
            from cnnvis.analysis.projections import snap_to_grid

            cells = snap_to_grid(c)
            side = int(cells.max()) + 1
            lo, span = c.min(0), float(max(np.ptp(c, axis=0).max(), 1e-9))
            step = span / side
            c = np.stack(
                [lo[0] + (cells[:, 1] + 0.5) * step, lo[1] + span - (cells[:, 0] + 0.5) * step], 1
            )
        self.shown = np.asarray(c, np.float32)
        self.density.invalidate()

    def draw_samples(self, style: dict, emphasis: np.ndarray, images: np.ndarray | None) -> None:
        self._style = style
        self._restyle = True
        self.density.invalidate()
        self._apply_lod()
        self._draw_thumbs(images, style)
        self._draw_ring(emphasis, float(style["size"].min(initial=8.0)) * 2.2)

    def _view_rect(self) -> tuple[tuple[float, float, float, float], tuple[int, int]]:
        r = self.view.camera.rect
        size = self.view.size
        return (r.left, r.bottom, r.width, r.height), (int(size[0]), int(size[1]))

    def _wants_density(self, rect) -> bool:
        """Many points in view: more than :data:`LOD_POINTS` (once shown, the image stays down to
        80% of it, so a zoom around the threshold does not flip it every frame), in a panel
        without an image map."""
        if self.image_map or len(self.shown) <= LOD_POINTS:
            return False
        limit = LOD_POINTS * (0.8 if self.lod else 1.0)
        return int(np.count_nonzero(points_in_rect(self.shown, rect))) > limit

    def _apply_lod(self) -> None:
        """Markers or the density image, as many points as the view holds; the markers are set
        again only when that choice (or the style) changes, the image when the view moved out of
        it (:meth:`DensityImage.stale`)."""
        style = self._style
        if style is None or self.data is None:
            return
        rect, px = self._view_rect()
        lod = self._wants_density(rect)
        order = style["order"]
        if lod and self.density.stale(rect, px):
            marker = float(style["size"].min(initial=5.0))
            self.density.update(self.shown[order], marker_look(style), rect, px, marker)
        if lod == self.lod and not self._restyle:
            return
        kw = {k: v for k, v in style.items() if k not in ("order", "wrong")}
        keep = slice(None)
        if lod:  # on top of the image: the selection (or, without one, the misclassified)
            faded = style["face_color"][:, 3] < 0.5
            keep = np.flatnonzero(~faded if faded.any() else style["wrong"])
            kw = {k: v[keep] for k, v in kw.items()}
        self.points.set_data(self.shown[order][keep], **kw)
        self.points.visible = not self.image_map
        self.density.image.visible = lod
        self.lod, self._restyle = lod, False

    def draw_neurons(self, colors: np.ndarray, picked: np.ndarray) -> None:
        d = self.data
        n = len(d.coords)
        fill = np.full((n, 4), 0.75, np.float32)
        known = d.best_class >= 0
        fill[known, :3] = colors[d.best_class[known]]
        fill[:, 3] = 0.35 + 0.65 * np.clip(d.score, 0, 1)
        size = 6.0 + 14.0 * np.clip(d.score, 0, 1)
        self.points.set_data(
            self.shown, face_color=fill, edge_color=(0.2, 0.2, 0.2, 0.8), size=size,
            edge_width=0.8,
        )  # fmt: skip
        self.points.visible = True
        self._style, self.lod = None, False
        self.density.image.visible = False
        self._draw_ring(picked, 22.0)

    def draw_curves(self, rows: np.ndarray, colors: np.ndarray, labels: np.ndarray) -> None:
        """The trajectories of ``rows`` (bundled where the data has curves), darker at the first
        stop and lighter at the last, in their class colour."""
        d = self.data
        curves = d.polylines if d.polylines is not None else d.positions
        rows = rows[rows < len(curves)] if curves is not None else rows[:0]
        if not len(rows):
            self.curves.visible = False
            return
        pts = curves[rows]  # (r, m, 2)
        m = pts.shape[1]
        seg = np.stack([pts[:, :-1], pts[:, 1:]], axis=2).reshape(-1, 2)
        t = np.repeat(np.linspace(0.0, 1.0, m - 1), 2)[None, :].repeat(len(rows), 0).reshape(-1)
        base = colors[np.clip(labels[rows], 0, len(colors) - 1)]
        rgb = np.repeat(base, 2 * (m - 1), axis=0)
        shade = (0.45 + 0.55 * t)[:, None]  # dark (first stop) to the class colour (last)
        rgba = np.c_[rgb * shade, np.full(len(rgb), 0.85 if len(rows) < 60 else 0.4)]
        self.curves.set_data(pos=seg.astype(np.float32), color=rgba.astype(np.float32))
        self.curves.visible = True

    def _draw_ring(self, rows: np.ndarray, size: float) -> None:
        rows = rows[rows < len(self.shown)]
        if len(rows):
            self.ring.set_data(
                self.shown[rows], face_color=(0, 0, 0, 0), edge_color=(0.84, 0.1, 0.55, 1.0),
                size=size, edge_width=2.0,
            )  # fmt: skip
        self.ring.visible = bool(len(rows))

    def _draw_thumbs(self, images: np.ndarray | None, style: dict) -> None:
        if not self.image_map or images is None or len(images) < len(self.shown):
            if self.thumbs is not None:
                self.thumbs.visible = False
            return
        n = len(self.shown)
        if self.thumbs is None:
            atlas, self._uv = thumbnail_atlas(images[:n])
            self.thumbs = TexturedQuads(atlas, parent=self.view.scene)
            self.thumbs.order = 0
        span = float(max(np.ptp(self.shown, axis=0).max(), 1e-9))
        side = span / max(1.0, math.ceil(math.sqrt(n)))
        s = side * (0.92 if self.snap else 1.3)
        xywh = np.c_[self.shown - s / 2, np.full((n, 2), s)]
        faded = np.zeros(n, bool)
        faded[style["order"]] = style["face_color"][:, 3] < 0.5
        self.thumbs.set_data(xywh[~faded], self._uv[~faded])
        self.thumbs.visible = True


def thumbnail_atlas(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The thumbnails ``(n, h, w, c)`` uint8 side by side in one RGBA texture, and each one's
    ``(u0, v0, u1, v1)`` box in it, flipped so that a quad with y up shows it upright."""
    n, h, w, c = images.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    atlas = np.zeros((rows * h, cols * w, 4), np.uint8)
    r, q = np.divmod(np.arange(n), cols)
    rgb = np.repeat(images, 3, axis=3) if c == 1 else images[..., :3]
    for i in range(n):
        atlas[r[i] * h : (r[i] + 1) * h, q[i] * w : (q[i] + 1) * w, :3] = rgb[i]
    atlas[..., 3] = 255
    u0, v0 = q * w / atlas.shape[1], r * h / atlas.shape[0]
    u1, v1 = (q + 1) * w / atlas.shape[1], (r + 1) * h / atlas.shape[0]
    return atlas, np.stack([u0, v1, u1, v0], axis=1).astype(np.float32)


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


class GridMenus:
    """The Grid menu and each panel's menu of a :class:`~cnnvis.viewer.projection.ProjectionPanel`
    (a mixin: it calls the panel's grid methods)."""

    def _layers(self) -> list[str]:
        return [self.layer_box.itemText(i) for i in range(self.layer_box.count())]

    def _stops(self) -> list[tuple[str, int | None]]:
        n = len(self._source.rec.snapshots) if self._source is not None else 0
        return [("recorded model", None)] + [(f"snapshot {k}", k) for k in range(n)]

    def _fill_grid_menu(self) -> None:
        m = self.grid_menu
        m.clear()
        for name in PRESETS:
            m.addAction(name.capitalize(), lambda n=name: self._guard(self.apply_preset, n))
        m.addSeparator()
        for kind in ("samples", "neurons"):
            sub = m.addMenu(f"Add {kind} panel")
            for layer in self._layers():
                for label, snap in self._stops():
                    spec = PanelSpec(kind, layer, snap)
                    sub.addAction(
                        f"{layer}, {label}", lambda s=spec: self._guard(self.add_panel, s)
                    )
        m.addAction("Add trajectories panel", lambda: self.add_panel(PanelSpec("trajectories")))
        m.addAction("Swap rows and columns", self.transpose)
        m.addAction("Trajectories of the top outliers", lambda: self._guard(self.top_outliers))
        m.addSeparator()
        for i, v in enumerate(self.views):
            self._panel_menu(m.addMenu(f"Panel {i + 1}: {v.title.text or v.spec.kind}"), i)

    def _panel_menu(self, menu: QtWidgets.QMenu, i: int) -> None:
        v = self.views[i]
        menu.addAction("Remove", lambda: self._guard(self.remove_panel, i))
        swap = menu.addMenu("Swap with")
        for j, w in enumerate(self.views):
            if j != i:
                swap.addAction(f"panel {j + 1}: {w.title.text}", lambda j=j: self.swap_panels(i, j))
        if v.spec.kind == "samples":
            snaps = menu.addMenu("Snapshot")
            for label, snap in self._stops():
                spec = PanelSpec("samples", v.spec.layer, snap)
                snaps.addAction(label, lambda s=spec: self._guard(self.set_panel, i, s))
            for label, on, snap in (("Image map", not v.image_map, v.snap),
                                    ("Snap image map to a grid", v.image_map, not v.snap)):  # fmt: skip
                act = menu.addAction(label, lambda o=on, s=snap: self.set_image_map(i, o, s))
                act.setCheckable(True)
                act.setChecked(v.image_map if label == "Image map" else v.image_map and v.snap)

    def _context_menu(self, view: PanelView, point: QtCore.QPoint) -> None:
        if view in self.views:
            menu = QtWidgets.QMenu(self)
            self._panel_menu(menu, self.views.index(view))
            menu.exec(view.canvas.native.mapToGlobal(point))

    def _guard(self, fn, *args) -> None:
        """Run a grid change; a readable message instead of a traceback."""
        try:
            fn(*args)
        except (ValueError, KeyError) as exc:
            self.status.setText(str(exc))
