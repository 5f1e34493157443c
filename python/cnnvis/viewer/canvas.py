"""Draw a :class:`cnnvis.scene.Scene` with vispy: shared by the Qt viewer and the PNG export.

:class:`SceneCanvas` is a ``vispy.scene.SceneCanvas`` with one view (and pan/zoom camera) per
panel of the scene. It batches the primitives: one mesh for the rectangles' fills and one line
visual for their outlines, one textured mesh per atlas for all facet images, one ribbon mesh for
all edges, one ``Markers`` visual per point cloud, and one ``Text`` visual per label style.
Level of detail (labels and facets shown only when large enough) is applied before each frame
from the zoom of each view; highlights are overlays updated without re-uploading the rest.

No Qt here: the viewer embeds ``canvas.native``; exports create the canvas offscreen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vispy import scene as vscene
from vispy.gloo import Texture2D
from vispy.visuals.filters import TextureFilter
from vispy.visuals.text.text import FontManager

from cnnvis.scene.model import Images, Labels, Panel, Points, Polylines, Rects, Scene

__all__ = ["SceneCanvas", "build_atlas"]

HIGHLIGHT = (0.84, 0.1, 0.55, 1.0)  # magenta: apart from class, sign and matrix colours
ATLAS_MAX_SIDE = {"linear": 384, "nearest": 512}
ATLAS_WIDTH = 4096


def build_atlas(images: list[np.ndarray], max_side: int, width: int = ATLAS_WIDTH):
    """Pack RGBA images (downscaled to ``max_side``) into one texture, shelf by shelf.

    Returns the atlas (H, W, 4) uint8 and per image its texture box ``(u0, v0, u1, v1)`` in
    ``[0, 1]``, inset by half a texel so neighbours never bleed in.
    """
    from PIL import Image as PILImage

    tiles = []
    for img in images:
        h, w = img.shape[:2]
        f = min(1.0, max_side / max(h, w))
        if f < 1.0:
            nw, nh = max(1, round(w * f)), max(1, round(h * f))
            img = np.asarray(PILImage.fromarray(img).resize((nw, nh), PILImage.BILINEAR))
        # one pixel of edge padding around each tile
        tiles.append(np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge"))
    width = max(width, max((t.shape[1] for t in tiles), default=1))
    order = sorted(range(len(tiles)), key=lambda i: (-tiles[i].shape[0], i))
    places = [None] * len(tiles)
    x = y = shelf = 0
    for i in order:
        h, w = tiles[i].shape[:2]
        if x + w > width:
            x, y, shelf = 0, y + shelf, 0
        places[i] = (x, y)
        x += w
        shelf = max(shelf, h)
    height = max(1, y + shelf)
    atlas = np.zeros((height, width, 4), np.uint8)
    boxes = np.zeros((len(tiles), 4), np.float32)
    for i, (tile, (px, py)) in enumerate(zip(tiles, places)):
        h, w = tile.shape[:2]
        atlas[py : py + h, px : px + w] = tile
        boxes[i] = (
            (px + 1.0) / width,
            (py + 1.0) / height,
            (px + w - 1.0) / width,
            (py + h - 1.0) / height,
        )
    return atlas, boxes


def _quads(xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (4 per rectangle) and faces (2 triangles per rectangle)."""
    n = len(xywh)
    x, y, w, h = (xywh[:, k].astype(np.float32) for k in range(4))
    v = np.empty((n, 4, 2), np.float32)
    v[:, 0] = np.stack([x, y], 1)
    v[:, 1] = np.stack([x + w, y], 1)
    v[:, 2] = np.stack([x + w, y + h], 1)
    v[:, 3] = np.stack([x, y + h], 1)
    base = (np.arange(n, dtype=np.uint32) * 4)[:, None]
    f = np.concatenate([base + [0, 1, 2], base + [0, 2, 3]], axis=1).reshape(-1, 3)
    return v.reshape(-1, 2), f.astype(np.uint32)


def _outline_segments(xywh: np.ndarray) -> np.ndarray:
    """Line segments (pairs of points) tracing each rectangle."""
    v, _ = _quads(xywh)
    v = v.reshape(-1, 4, 2)
    seg = np.stack([v, np.roll(v, -1, axis=1)], axis=2)  # (n, 4 edges, 2 ends, 2)
    return seg.reshape(-1, 2)


def _ribbons(lines: Polylines) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangle-strip ribbons (world width) for every polyline, as one indexed mesh."""
    p = lines.points.astype(np.float64)
    if len(p) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 3), np.uint32), np.zeros((0, 4))
    off = lines.offsets
    owner = np.repeat(np.arange(len(lines)), np.diff(off))
    # tangent per vertex from its neighbours within the same line
    prev_i = np.arange(len(p)) - 1
    next_i = np.arange(len(p)) + 1
    first = np.zeros(len(p), bool)
    last = np.zeros(len(p), bool)
    first[off[:-1]] = True
    last[off[1:] - 1] = True
    prev_i[first] = np.flatnonzero(first)
    next_i[last] = np.flatnonzero(last)
    t = p[np.clip(next_i, 0, len(p) - 1)] - p[np.clip(prev_i, 0, len(p) - 1)]
    t /= np.maximum(np.hypot(t[:, 0], t[:, 1]), 1e-12)[:, None]
    nrm = np.stack([-t[:, 1], t[:, 0]], 1) * (0.5 * lines.width[owner])[:, None]
    verts = np.empty((len(p), 2, 2))
    verts[:, 0] = p + nrm
    verts[:, 1] = p - nrm
    verts = verts.reshape(-1, 2)
    seg = np.flatnonzero(~last)  # vertex k joins k+1
    a0, a1, b0, b1 = 2 * seg, 2 * seg + 1, 2 * seg + 2, 2 * seg + 3
    faces = np.concatenate([np.stack([a0, a1, b0], 1), np.stack([a1, b1, b0], 1)]).astype(np.uint32)
    colors = np.repeat(lines.color[owner], 2, axis=0)
    return verts.astype(np.float32), faces, colors


def _hairlines(lines: Polylines, which: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Segment pairs and colours of the polylines ``which`` (default all), for 1-pixel drawing."""
    p = lines.points
    if len(p) == 0:
        return np.zeros((0, 2), np.float32), np.zeros((0, 4), np.float32)
    off = lines.offsets
    last = np.zeros(len(p), bool)
    last[off[1:] - 1] = True
    owner = np.repeat(np.arange(len(lines)), np.diff(off))
    keep = ~last if which is None else (~last & which[owner])
    k = np.flatnonzero(keep)
    seg = np.stack([p[k], p[k + 1]], 1).reshape(-1, 2)
    col = np.repeat(lines.color[owner[k]], 2, axis=0)
    return seg.astype(np.float32), col.astype(np.float32)


class _PanelVisuals:
    """The vispy visuals of one panel, and the LOD state last applied."""

    def __init__(self, canvas: SceneCanvas, panel: Panel) -> None:
        self.panel = panel
        self.view = vscene.widgets.ViewBox(parent=canvas.scene, border_color=None)
        self.view.bgcolor = panel.background
        cam = vscene.PanZoomCamera(aspect=1.0, flip=(False, True))
        cam.interactive = panel.interactive
        self.view.camera = cam
        parent = self.view.scene
        self.label_mask: np.ndarray | None = None
        self.image_mask: np.ndarray | None = None
        self.hairline_on: bool | None = None
        self.rect_fill = self._rect_mesh(panel.rects, parent, order=0)
        self.rect_edge = self._rect_lines(panel.rects, parent, order=1)
        self.atlases = self._image_meshes(panel.images, parent, order=2)
        self.ribbons, self.hairlines = self._line_visuals(panel.lines, parent, order=3)
        self.top_fill = self._rect_mesh(panel.top_rects, parent, order=4)
        self.top_edge = self._rect_lines(panel.top_rects, parent, order=5)
        self.markers, self.rings = self._point_visuals(panel.points, parent, order=6)
        # highlight overlays (empty until set)
        self.hl_lines = vscene.visuals.Line(
            pos=np.zeros((2, 2), np.float32), color=HIGHLIGHT, connect="segments", parent=parent
        )
        self.hl_lines.order = 7
        self.hl_lines.visible = False
        self.hl_fill = vscene.visuals.Mesh(parent=parent)
        self.hl_fill.order = 7
        self.hl_fill.visible = False
        self.hl_points = vscene.visuals.Markers(parent=parent)
        self.hl_points.order = 8
        self.hl_points.visible = False
        self.label_bg = None
        if len(panel.labels) and (panel.labels.background[:, 3] > 0).any():
            self.label_bg = vscene.visuals.Mesh(parent=parent)
            self.label_bg.order = 9
            self.label_bg.visible = False
        self.bg_zoom: float | None = None
        self.texts = self._text_visuals(panel.labels, parent, 10, canvas.font_manager)
        # 2-D drawing: painter's order by `order`, alpha blending, no depth test
        for node in parent.children:
            if hasattr(node, "set_gl_state"):
                node.set_gl_state("translucent", depth_test=False, cull_face=False)

    # -- construction ----------------------------------------------------------------------------
    @staticmethod
    def _rect_mesh(rects: Rects, parent, order: int):
        if not len(rects):
            return None
        v, f = _quads(rects.xywh)
        colors = np.repeat(rects.fill, 4, axis=0)
        mesh = vscene.visuals.Mesh(vertices=v, faces=f, vertex_colors=colors, parent=parent)
        mesh.order = order
        return mesh

    @staticmethod
    def _rect_lines(rects: Rects, parent, order: int):
        keep = rects.stroke[:, 3] > 0 if len(rects) else np.zeros(0, bool)
        if not keep.any():
            return None
        seg = _outline_segments(rects.xywh[keep])
        col = np.repeat(rects.stroke[keep], 8, axis=0)
        line = vscene.visuals.Line(pos=seg, color=col, connect="segments", parent=parent)
        line.order = order
        return line

    def _image_meshes(self, images: Images, parent, order: int) -> list[dict[str, Any]]:
        out = []
        for interp in ("linear", "nearest"):
            idx = [i for i, m in enumerate(images.interpolation) if m == interp]
            if not idx:
                continue
            atlas, boxes = build_atlas([images.data[i] for i in idx], ATLAS_MAX_SIDE[interp])
            mesh = vscene.visuals.Mesh(parent=parent, color="white")
            mesh.order = order
            out.append(
                {
                    "index": np.asarray(idx),
                    "atlas": atlas,
                    "boxes": boxes,
                    "mesh": mesh,
                    "interp": interp,
                    "filter": None,
                }
            )
        return out

    def _set_images(self, mask: np.ndarray) -> None:
        images = self.panel.images
        for entry in self.atlases:
            sel = mask[entry["index"]]
            mesh = entry["mesh"]
            if not sel.any():
                mesh.visible = False
                continue
            v, f = _quads(images.xywh[entry["index"][sel]])
            b = entry["boxes"][sel]
            tc = np.empty((len(b), 4, 2), np.float32)
            tc[:, 0] = b[:, [0, 1]]
            tc[:, 1] = b[:, [2, 1]]
            tc[:, 2] = b[:, [2, 3]]
            tc[:, 3] = b[:, [0, 3]]
            tc = tc.reshape(-1, 2)
            mesh.set_data(vertices=v, faces=f, color="white")
            if entry["filter"] is None:
                filt = TextureFilter(entry["atlas"], tc)
                mesh.attach(filt)
                filt.fshader["u_texture"] = Texture2D(
                    entry["atlas"], interpolation=entry["interp"], wrapping="clamp_to_edge"
                )
                entry["filter"] = filt
            else:
                entry["filter"].texcoords = tc
            mesh.visible = True

    def _line_visuals(self, lines: Polylines, parent, order: int):
        if not len(lines):
            return None, None
        v, f, c = _ribbons(lines)
        self.ribbon_vertices, self.ribbon_faces, self.ribbon_colors = v, f, c
        self.ribbon_owner = np.repeat(np.repeat(np.arange(len(lines)), np.diff(lines.offsets)), 2)
        ribbons = vscene.visuals.Mesh(vertices=v, faces=f, vertex_colors=c, parent=parent)
        ribbons.order = order
        seg, col = _hairlines(lines)
        hair = vscene.visuals.Line(pos=seg, color=col, connect="segments", parent=parent)
        hair.order = order
        return ribbons, hair

    @staticmethod
    def _point_visuals(points: Points, parent, order: int):
        if not len(points):
            return None, None
        markers = vscene.visuals.Markers(parent=parent)
        markers.set_data(
            points.xy, face_color=points.color, edge_width=0, size=points.size, symbol="disc"
        )
        markers.order = order
        rings = None
        if points.marked.any():
            rings = vscene.visuals.Markers(parent=parent)
            rings.set_data(
                points.xy[points.marked],
                face_color=(0, 0, 0, 0),
                edge_color=points.mark_color,
                edge_width=1.2,
                size=points.size + 3.5,
                symbol="disc",
            )
            rings.order = order
        return markers, rings

    @staticmethod
    def _text_visuals(labels: Labels, parent, order: int, fonts) -> list[dict[str, Any]]:
        groups: dict[tuple, list[int]] = {}
        for i in range(len(labels)):
            key = (float(labels.size[i]), bool(labels.bold[i]), *labels.anchor[i])
            groups.setdefault(key, []).append(i)
        out = []
        for (size, bold, ax, ay), idx in groups.items():
            text = vscene.visuals.Text(
                parent=parent,
                font_size=size,
                bold=bold,
                anchor_x=ax,
                # the camera flips y (world y runs down), which swaps vispy's vertical anchors
                anchor_y={"top": "bottom", "bottom": "top"}.get(ay, ay),
                face="DejaVu Sans",
                font_manager=fonts,
            )
            text.order = order
            out.append({"index": np.asarray(idx), "visual": text})
        return out

    # -- level of detail -------------------------------------------------------------------------
    def zoom(self) -> float:
        rect = self.view.camera.rect
        w, h = self.view.size
        return float(min(w / max(rect.width, 1e-9), h / max(abs(rect.height), 1e-9)))

    def apply_lod(self) -> None:
        z = self.zoom()
        labels = self.panel.labels
        mask = labels.min_zoom <= z
        if self.label_mask is None or not np.array_equal(mask, self.label_mask):
            self.label_mask = mask
            for entry in self.texts:
                idx = entry["index"][mask[entry["index"]]]
                vis = entry["visual"]
                if len(idx) == 0:
                    vis.visible = False
                    continue
                vis.text = [labels.text[i] for i in idx]
                vis.pos = labels.pos[idx]
                vis.color = labels.color[idx]
                vis.visible = True
        if self.label_bg is not None and (self.bg_zoom != z or self.label_mask is not mask):
            self.bg_zoom = z
            sel = np.flatnonzero(self.label_mask & (labels.background[:, 3] > 0))
            if len(sel):
                pad = 2.0 / z
                box = labels.screen_boxes(z)[sel]
                xywh = np.stack(
                    [
                        box[:, 0] - pad,
                        box[:, 1],
                        box[:, 2] - box[:, 0] + 2 * pad,
                        box[:, 3] - box[:, 1],
                    ],
                    axis=1,
                )
                v, f = _quads(xywh)
                colors = np.repeat(labels.background[sel], 4, axis=0)
                self.label_bg.set_data(vertices=v, faces=f, vertex_colors=colors)
                self.label_bg.visible = True
            else:
                self.label_bg.visible = False
        imask = self.panel.images.min_zoom <= z
        if self.image_mask is None or not np.array_equal(imask, self.image_mask):
            self.image_mask = imask
            self._set_images(imask)
        if self.hairlines is not None:
            # lines thinner than a pixel on screen are drawn as 1-pixel lines instead
            thin = self.panel.lines.width * z < 1.0
            if self.hairline_on is None or not np.array_equal(thin, self.hairline_on):
                self.hairline_on = thin
                if thin.any():
                    seg, col = _hairlines(self.panel.lines, thin)
                    self.hairlines.set_data(pos=seg, color=col)
                    self.hairlines.visible = True
                    ribbon_col = self.ribbon_colors.copy()
                    owner = self.ribbon_owner
                    ribbon_col[thin[owner], 3] = 0.0
                    self.ribbons.set_data(
                        vertices=self.ribbon_vertices,
                        faces=self.ribbon_faces,
                        vertex_colors=ribbon_col,
                    )
                else:
                    self.hairlines.visible = False
                    self.ribbons.set_data(
                        vertices=self.ribbon_vertices,
                        faces=self.ribbon_faces,
                        vertex_colors=self.ribbon_colors,
                    )


class SceneCanvas(vscene.SceneCanvas):
    """A vispy canvas that draws a :class:`~cnnvis.scene.Scene`, one view per panel.

    Parameters
    ----------
    scene : Scene, optional
        What to draw (see :meth:`set_scene`).
    size : (int, int)
        Canvas size in pixels.
    show : bool
        Show a window (False for offscreen rendering and for embedding).
    **kwargs
        Passed to ``vispy.scene.SceneCanvas``.

    Attributes
    ----------
    views : dict of str to ViewBox
        The view of each panel; ``views[name].camera`` is its ``PanZoomCamera``.
    """

    def __init__(
        self,
        scene: Scene | None = None,
        size: tuple[int, int] = (1920, 1080),
        show: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("bgcolor", "white")
        kwargs.setdefault("keys", None)
        super().__init__(size=size, show=show, **kwargs)
        self.unfreeze()
        self.model: Scene | None = None
        self._panels: dict[str, _PanelVisuals] = {}
        # one glyph atlas for the canvas's lifetime, so a rebuilt scene (after an edit) does not
        # rasterise its glyphs again
        self.font_manager = FontManager(method="cpu")
        self.freeze()
        if scene is not None:
            self.set_scene(scene)

    # -- scene -----------------------------------------------------------------------------------
    @property
    def views(self) -> dict[str, vscene.widgets.ViewBox]:
        return {name: pv.view for name, pv in self._panels.items()}

    def set_scene(self, scene: Scene) -> None:
        """Replace what is drawn by ``scene`` (all visuals rebuilt; cameras fitted)."""
        for pv in self._panels.values():
            pv.view.parent = None
        self._panels = {name: _PanelVisuals(self, panel) for name, panel in scene.panels.items()}
        self.model = scene
        self._layout_panels()
        self.fit()
        self.update_highlight()

    def _layout_panels(self) -> None:
        if self.model is None:
            return
        w, h = self.size
        for name, (x, y, pw, ph) in self.model.panel_layout(w, h).items():
            view = self._panels[name].view
            view.pos = (x, y)
            view.size = (pw, ph)

    def on_resize(self, event) -> None:
        super().on_resize(event)
        self._layout_panels()

    def fit(self, panel: str | None = None) -> None:
        """Fit the camera of ``panel`` (default: every panel) to its bounds."""
        names = [panel] if panel is not None else list(self._panels)
        for name in names:
            pv = self._panels[name]
            x0, y0, x1, y1 = pv.panel.bounds
            pv.view.camera.set_range(x=(x0, x1), y=(y0, y1), z=(-1.0, 1.0), margin=0.01)

    def zoom(self, panel: str) -> float:
        """Screen pixels per world unit in the view of ``panel``."""
        return self._panels[panel].zoom()

    def panel_at(self, x: float, y: float) -> tuple[str, float, float] | None:
        """The panel under canvas pixel ``(x, y)`` and the world point there."""
        if self.model is None:
            return None
        w, h = self.size
        for name, (px, py, pw, ph) in self.model.panel_layout(w, h).items():
            if px <= x < px + pw and py <= y < py + ph:
                view = self._panels[name].view
                tr = view.scene.transform
                wx, wy = tr.imap(np.array([x - px, y - py, 0, 1], np.float64))[:2]
                return name, float(wx), float(wy)
        return None

    def world_to_pixel(self, panel: str, xy: np.ndarray) -> np.ndarray:
        """Canvas pixel positions ``(n, 2)`` of world points ``xy`` of ``panel``."""
        xy = np.atleast_2d(np.asarray(xy, np.float64))
        view = self._panels[panel].view
        pts = np.column_stack([xy, np.zeros(len(xy)), np.ones(len(xy))])
        mapped = view.scene.transform.map(pts)
        mapped = mapped[:, :2] / mapped[:, 3:4]
        return mapped + np.asarray(view.pos, np.float64)[None, :]

    def pick(self, x: float, y: float, tolerance_px: float = 3.0):
        """The scene id under canvas pixel ``(x, y)``, or None."""
        hit = self.panel_at(x, y)
        if hit is None:
            return None
        name, wx, wy = hit
        return self.model.pick(name, wx, wy, zoom=self.zoom(name), tolerance_px=tolerance_px)

    # -- level of detail and highlight -----------------------------------------------------------
    def apply_lod(self) -> None:
        """Show the labels and facets whose size on screen is enough at the current zooms."""
        for pv in self._panels.values():
            pv.apply_lod()

    def on_draw(self, event) -> None:
        self.apply_lod()
        super().on_draw(event)

    def render(self, *args: Any, **kwargs: Any) -> np.ndarray:
        self.apply_lod()
        return super().render(*args, **kwargs)

    def update_highlight(self) -> None:
        """Redraw the highlight overlays from ``scene.highlight`` (nothing else is re-uploaded)."""
        scene = self.model
        if scene is None:
            return
        hl = scene.highlight
        ov = self._panels.get("overview")
        if ov is not None:
            boxes = [scene.neuron_boxes[n] for n in sorted(hl.neurons) if n in scene.neuron_boxes]
            boxes += [
                scene.cluster_rects[c] for c in sorted(hl.clusters) if c in scene.cluster_rects
            ]
            if boxes:
                arr = np.asarray(boxes, np.float32)
                ov.hl_lines.set_data(pos=_outline_segments(arr), color=HIGHLIGHT, width=2.0)
                v, f = _quads(arr)
                ov.hl_fill.set_data(vertices=v, faces=f, color=(*HIGHLIGHT[:3], 0.28))
                ov.hl_lines.visible = ov.hl_fill.visible = True
            else:
                ov.hl_lines.visible = ov.hl_fill.visible = False
        pr = self._panels.get("projection")
        if pr is not None and len(pr.panel.points):
            pts = pr.panel.points
            sel = np.zeros(len(pts), bool)
            if len(hl.samples):
                sel |= np.isin(scene.sample_ids(), hl.samples)
            if hl.classes:
                sel |= np.isin(pts.labels, sorted(hl.classes))
            if sel.any():
                pr.hl_points.set_data(
                    pts.xy[sel],
                    face_color=pts.color[sel],
                    edge_color=HIGHLIGHT,
                    edge_width=1.5,
                    size=pts.size + 4.0,
                    symbol="disc",
                )
                pr.hl_points.visible = True
                if pr.markers is not None:
                    dim = pts.color.copy()
                    dim[:, 3] = 0.18
                    pr.markers.set_data(
                        pts.xy, face_color=dim, edge_width=0, size=pts.size, symbol="disc"
                    )
                    pr._dimmed = True
            else:
                pr.hl_points.visible = False
                if getattr(pr, "_dimmed", False) and pr.markers is not None:
                    pr.markers.set_data(
                        pts.xy, face_color=pts.color, edge_width=0, size=pts.size, symbol="disc"
                    )
                    pr._dimmed = False
        self.update()
