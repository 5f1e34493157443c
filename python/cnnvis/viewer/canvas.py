"""Draw a :class:`cnnvis.scene.Scene` with vispy: shared by the Qt viewer and the PNG export.

:class:`SceneCanvas` is a ``vispy.scene.SceneCanvas`` with one view (and pan/zoom camera) per
panel of the scene. It batches the primitives: one mesh for the rectangles' fills and one line
visual for their outlines, one textured quad visual per atlas for all facet images, one ribbon
visual for all edges (never thinner than a pixel), one sprite visual per point cloud (a disc, a
larger ringed one for a misclassified sample), and one ``Text`` visual per label style.
Everything is uploaded once per scene: panning and zooming change only the camera transform,
and the level of detail (labels and facets shown only when large enough) only flips per-item
visibility flags or label alphas when the zoom crosses a label's or facet's threshold, never
shader code or geometry (see :mod:`.glvisuals`). Highlights are overlays updated without
re-uploading the rest.

No Qt here: the viewer embeds ``canvas.native``; exports create the canvas offscreen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vispy import gloo
from vispy import scene as vscene
from vispy.visuals.text.text import FontManager

from cnnvis.scene.model import Images, Labels, Panel, Points, Polylines, Rects, Scene

from .glvisuals import PixelQuads, Ribbons, Sprites, TexturedQuads

__all__ = ["SceneCanvas", "build_atlas"]

HIGHLIGHT = (0.84, 0.1, 0.55, 1.0)  # magenta: apart from class, sign and matrix colours
# a misclassified sample: a disc of this many times the point size, in its class colour, with
# an outline of the scene's mark colour (drawn in the same sprite as the fill)
MARK_SHAPE = "disc"
MARK_SCALE = 1.3
MARK_EDGE_WIDTH = 1.2
MARK_EDGE_ALPHA = 1.0
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


def _ribbons(lines: Polylines) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Triangle-strip ribbons (world width) for every polyline, as one indexed mesh: per vertex
    its centre point and its signed half-width normal, then faces and colours."""
    p = lines.points.astype(np.float64)
    if len(p) == 0:
        z = np.zeros((0, 2), np.float32)
        return z, z, np.zeros((0, 3), np.uint32), np.zeros((0, 4))
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
    centre = np.repeat(p, 2, axis=0)
    normal = np.stack([nrm, -nrm], axis=1).reshape(-1, 2)
    seg = np.flatnonzero(~last)  # vertex k joins k+1
    a0, a1, b0, b1 = 2 * seg, 2 * seg + 1, 2 * seg + 2, 2 * seg + 3
    faces = np.concatenate([np.stack([a0, a1, b0], 1), np.stack([a1, b1, b0], 1)]).astype(np.uint32)
    colors = np.repeat(lines.color[owner], 2, axis=0)
    return centre.astype(np.float32), normal.astype(np.float32), faces, colors


_COMPOSITE_VERT = """
attribute vec2 a_pos;
attribute vec2 a_tc;
varying vec2 v_tc;
void main() {
    v_tc = a_tc;
    gl_Position = vec4(a_pos, 0.0, 1.0);
}
"""

_COMPOSITE_FRAG = """
uniform sampler2D u_tex;
varying vec2 v_tc;
void main() {
    gl_FragColor = texture2D(u_tex, v_tc);
}
"""


class _PanelVisuals:
    """The vispy visuals of one panel, and the LOD state last applied."""

    def __init__(self, canvas: SceneCanvas, panel: Panel) -> None:
        self.panel = panel
        self.view = vscene.widgets.ViewBox(parent=canvas.scene, border_color=None)
        # an opaque background is the clear colour of the panel's layer, not a quad drawn over
        # the whole panel at every redraw of it (see SceneCanvas._draw_layers)
        self.clear_color = panel.background if panel.background[3] >= 1.0 else None
        self.view.bgcolor = None if self.clear_color is not None else panel.background
        cam = vscene.PanZoomCamera(aspect=1.0, flip=(False, True))
        cam.interactive = panel.interactive
        self.view.camera = cam
        parent = self.view.scene
        self.label_mask: np.ndarray | None = None
        self.dimmed = False  # the points faded behind a highlight
        self.image_mask: np.ndarray | None = None
        self.rect_fill = self._rect_mesh(panel.rects, parent, order=0)
        self.rect_edge = self._rect_lines(panel.rects, parent, order=1)
        self.atlases = self._image_meshes(panel.images, parent, order=2)
        self.ribbons = self._line_visuals(panel.lines, parent, order=3)
        self.top_fill = self._rect_mesh(panel.top_rects, parent, order=4)
        self.top_edge = self._rect_lines(panel.top_rects, parent, order=5)
        self.markers = self._point_visuals(panel.points, parent, order=6)
        # highlight overlays (empty until set)
        self.hl_lines = vscene.visuals.Line(
            pos=np.zeros((2, 2), np.float32), color=HIGHLIGHT, connect="segments", parent=parent
        )
        self.hl_lines.order = 7
        self.hl_lines.visible = False
        self.hl_fill = vscene.visuals.Mesh(parent=parent)
        self.hl_fill.order = 7
        self.hl_fill.visible = False
        self.hl_points = Sprites(parent=parent)
        self.hl_points.order = 8
        self.hl_points.visible = False
        self.label_bg, self.label_bg_index = self._label_backgrounds(panel.labels, parent, 9)
        self.texts = self._text_visuals(panel.labels, parent, 10, canvas.font_manager)
        # 2-D drawing: painter's order by `order`, alpha blending, no depth test
        for node in parent.children:
            if hasattr(node, "set_gl_state"):
                node.set_gl_state("translucent", depth_test=False, cull_face=False)
        # opaque fills and facets replace what is under them: blending them would give the same
        # pixels at twice the memory traffic (software GL is bound by it)
        for rects, mesh in ((panel.rects, self.rect_fill), (panel.top_rects, self.top_fill)):
            if mesh is not None and (rects.fill[:, 3] >= 1.0).all():
                mesh.set_gl_state(blend=False, depth_test=False, cull_face=False)
        for entry in self.atlases:
            if entry["opaque"]:
                entry["visual"].set_gl_state(blend=False, depth_test=False, cull_face=False)

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
            quads = TexturedQuads(atlas, interp, parent=parent)
            quads.set_data(images.xywh[idx], boxes)
            quads.order = order
            quads.visible = False
            out.append(
                {
                    "index": np.asarray(idx),
                    "visual": quads,
                    "opaque": bool((atlas[..., 3] == 255).all()),
                }
            )
        return out

    def _set_images(self, mask: np.ndarray) -> None:
        for entry in self.atlases:
            sel = mask[entry["index"]]
            entry["visual"].set_shown(sel)
            entry["visual"].visible = bool(sel.any())

    def _line_visuals(self, lines: Polylines, parent, order: int):
        if not len(lines):
            return None
        centre, normal, faces, colors = _ribbons(lines)
        # lines thinner than a pixel on screen are drawn one pixel wide (hairlines)
        ribbons = Ribbons(min_width_px=1.0, parent=parent)
        ribbons.set_data(centre, normal, colors, faces)
        ribbons.order = order
        return ribbons

    def _point_visuals(self, points: Points, parent, order: int):
        """One sprite per sample; misclassified samples (``marked``) drawn last, larger and
        outlined in the mark colour (``MARK_SHAPE``), so that no other point covers their mark."""
        self.point_order = np.argsort(points.marked, kind="stable")
        if not len(points):
            return None
        m = points.marked[self.point_order]
        edge = np.zeros((len(points), 4), np.float32)
        edge[m] = points.mark_color
        edge[m, 3] *= MARK_EDGE_ALPHA
        self.point_edge = edge
        markers = Sprites(parent=parent)
        markers.set_data(
            points.xy[self.point_order],
            face_color=points.color[self.point_order],
            size=np.where(m, MARK_SCALE * points.size, points.size),
            edge_color=edge,
            edge_width=np.where(m, MARK_EDGE_WIDTH, 0.0),
            shape=np.where(m, MARK_SHAPE, "disc"),
        )
        markers.order = order
        return markers

    @staticmethod
    def _label_backgrounds(labels: Labels, parent, order: int):
        """Boxes behind the labels that have a background: anchored at the label, sized in
        pixels by :meth:`Labels.pixel_boxes` (plus 2 pixels each side)."""
        if not len(labels):
            return None, None
        sel = np.flatnonzero(labels.background[:, 3] > 0)
        if not len(sel):
            return None, None
        box = labels.pixel_boxes()[sel] + np.array([-2.0, 0.0, 2.0, 0.0])
        quads = PixelQuads(parent=parent)
        quads.set_data(labels.pos[sel], box, labels.background[sel])
        quads.order = order
        quads.visible = False
        return quads, sel

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
            font = text._font
            if isinstance(font._kernel, np.ndarray):
                # vispy re-uploads this filter kernel (an array) on every draw of every Text;
                # as a texture it is uploaded once per font
                font._kernel = gloo.Texture2D(font._kernel)
            # every label of the style is laid out once; the level of detail only sets the
            # alpha of the hidden ones to zero (a colour upload, no re-layout)
            text.text = [labels.text[i] for i in idx]
            text.pos = labels.pos[idx]
            text.color = labels.color[idx]
            text.visible = False
            out.append({"index": np.asarray(idx), "visual": text})
        return out

    # -- level of detail -------------------------------------------------------------------------
    def zoom(self) -> float:
        rect = self.view.camera.rect
        w, h = self.view.size
        return float(min(w / max(rect.width, 1e-9), h / max(abs(rect.height), 1e-9)))

    def apply_lod(self) -> None:
        """Show what is large enough at the current zoom; a no-op while no threshold is crossed."""
        z = self.zoom()
        labels = self.panel.labels
        mask = labels.min_zoom <= z
        if self.label_mask is None or not np.array_equal(mask, self.label_mask):
            self.label_mask = mask
            for entry in self.texts:
                shown = mask[entry["index"]]
                vis = entry["visual"]
                if not shown.any():
                    vis.visible = False
                    continue
                color = labels.color[entry["index"]].copy()
                color[~shown, 3] = 0.0
                vis.color = color
                vis.visible = True
            if self.label_bg is not None:
                shown = mask[self.label_bg_index]
                self.label_bg.set_shown(shown)
                self.label_bg.visible = bool(shown.any())
        imask = self.panel.images.min_zoom <= z
        if self.image_mask is None or not np.array_equal(imask, self.image_mask):
            self.image_mask = imask
            self._set_images(imask)


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
        # the offscreen frame buffer, kept while the canvas size stays the same
        self._frame_fbo: gloo.FrameBuffer | None = None
        self._frame_fbo_size: tuple[int, int] | None = None
        # each panel drawn into its own texture, redrawn only when something in it changed
        # (its camera, its level of detail, a highlight, its size): panning one panel leaves
        # the others as they were, as the viewer's separate widgets do
        self._layers: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._view_names: dict[int, str] = {}
        self._composite: gloo.Program | None = None
        self._plain_draw = False
        self._layering = False
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
        self._view_names = {id(pv.view): name for name, pv in self._panels.items()}
        self._layers = {}
        self._dirty = set(self._panels)
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

    # -- drawing: one cached layer per panel -----------------------------------------------------
    def update(self, node=None) -> None:
        """Request a redraw; ``node`` (when given) marks only its panel's layer as changed."""
        if getattr(self, "_layering", False):
            # switching frame buffers while drawing the layers changes the canvas transform of
            # every visual; that is no change of content, and must not schedule another frame
            return
        if not self._drawing and getattr(self, "_dirty", None) is not None:
            name = None
            n = node
            while n is not None and name is None:
                name = self._view_names.get(id(n))
                n = n.parent
            if name is None:
                self._dirty.update(self._panels)
            else:
                self._dirty.add(name)
        super().update(node)

    def _draw_scene(self, bgcolor=None) -> None:
        if self._plain_draw or not self._panels:
            super()._draw_scene(bgcolor)
            return
        if bgcolor is None:
            bgcolor = self._bgcolor
        self._layering = True
        try:
            self._draw_layers(bgcolor)
        finally:
            self._layering = False

    def _draw_layers(self, bgcolor) -> None:
        scale = self.pixel_scale
        W, H = self.size  # noqa: N806
        # every layer is a frame buffer of the canvas's size: then switching between them and
        # the canvas leaves the canvas transform as it is (vispy would otherwise signal a
        # transform change to every visual of every panel on each switch)
        size = (int(round(W * scale)), int(round(H * scale)))
        quads = []
        covered = 0.0
        for name, pv in self._panels.items():
            view = pv.view
            layer = self._layers.get(name)
            if layer is None or layer["size"] != size:
                tex = gloo.Texture2D(shape=(size[1], size[0], 4), interpolation="nearest")
                # no depth buffer: every visual here draws in painter's order without depth test
                fbo = gloo.FrameBuffer(color=tex)
                layer = self._layers[name] = {"size": size, "tex": tex, "fbo": fbo}
                self._dirty.add(name)
            if name in self._dirty:
                self._dirty.discard(name)
                self.push_fbo(layer["fbo"], (0, 0), size)
                try:
                    clear = pv.clear_color if pv.clear_color is not None else bgcolor
                    self.context.clear(color=clear, depth=False)
                    # vispy's draw_visual would build the draw order of the whole scene
                    self._draw_order[view] = self._generate_draw_order(view)
                    self.draw_visual(view)
                finally:
                    self.pop_fbo()
            (x, y), (w, h) = view.pos, view.size
            # the panel's rectangle in clip coordinates and in the layer's texture (y up)
            x0, x1 = 2.0 * x / W - 1.0, 2.0 * (x + w) / W - 1.0
            y0, y1 = 1.0 - 2.0 * (y + h) / H, 1.0 - 2.0 * y / H
            u0, u1 = x / W, (x + w) / W
            v0, v1 = 1.0 - (y + h) / H, 1.0 - y / H
            quads.append((layer["tex"], (x0, y0, x1, y1), (u0, v0, u1, v1)))
            covered += w * h
        if covered < W * H:  # the panels do not tile the canvas: clear what they leave
            self.context.clear(color=bgcolor, depth=True)
        if self._composite is None:
            self._composite = gloo.Program(_COMPOSITE_VERT, _COMPOSITE_FRAG)
        prog = self._composite
        gloo.set_state(blend=False, depth_test=False, cull_face=False)
        for tex, (x0, y0, x1, y1), (u0, v0, u1, v1) in quads:
            prog["a_pos"] = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float32)
            prog["a_tc"] = np.array([[u0, v0], [u1, v0], [u0, v1], [u1, v1]], np.float32)
            prog["u_tex"] = tex
            prog.draw("triangle_strip")

    def draw_offscreen(self, finish: bool = True, read: bool = False, crop=None):
        """Draw one frame into an offscreen frame buffer kept between frames: without ``read``
        it is not read back (the cost of an on-screen frame; ``finish`` waits until the GL has
        drawn it); with ``read`` the RGBA image (top row first) is returned."""
        self.set_current()
        size = (int(self.size[0] * self.pixel_scale), int(self.size[1] * self.pixel_scale))
        if self._frame_fbo is None or self._frame_fbo_size != size:
            shape = (size[1], size[0])
            self._frame_fbo = gloo.FrameBuffer(
                color=gloo.RenderBuffer(shape), depth=gloo.RenderBuffer(shape)
            )
            self._frame_fbo_size = size
        self.apply_lod()
        self.push_fbo(self._frame_fbo, (0, 0), self.size)
        try:
            self._draw_scene()
            if read:
                return self._frame_fbo.read(crop=crop)  # reads the bound frame buffer
            if finish:
                self.context.finish()
        finally:
            self.pop_fbo()
        return None

    def render(self, region=None, size=None, bgcolor=None, crop=None, alpha=True) -> np.ndarray:
        """Render to an RGBA (or RGB) array, as ``vispy.scene.SceneCanvas.render``; the whole
        canvas at its own size re-uses the frame buffer of :meth:`draw_offscreen`."""
        self.apply_lod()
        if region is not None or size is not None or bgcolor is not None:
            self._plain_draw = True  # the layers are made for the canvas at its own size
            cleared = [pv for pv in self._panels.values() if pv.clear_color is not None]
            for pv in cleared:  # without layers the views draw their backgrounds
                pv.view.bgcolor = pv.clear_color
            try:
                return super().render(region, size, bgcolor, crop, alpha)
            finally:
                self._plain_draw = False
                for pv in cleared:
                    pv.view.bgcolor = None
        image = self.draw_offscreen(read=True, crop=crop)
        return image if alpha else image[..., :3]

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
                # the highlighted samples again on top, in their own shape, outlined in magenta
                m = pts.marked[sel]
                pr.hl_points.set_data(
                    pts.xy[sel],
                    face_color=pts.color[sel],
                    edge_color=HIGHLIGHT,
                    edge_width=1.5,
                    size=np.where(m, MARK_SCALE * pts.size + 4.0, pts.size + 4.0),
                    shape=np.where(m, MARK_SHAPE, "disc"),
                )
                pr.hl_points.visible = True
                if pr.markers is not None:
                    dim = pts.color[pr.point_order].copy()
                    dim[:, 3] = 0.18
                    edge = pr.point_edge.copy()
                    edge[:, 3] *= 0.25
                    pr.markers.set_face_color(dim)
                    pr.markers.set_edge_color(edge)
                    pr.dimmed = True
            else:
                pr.hl_points.visible = False
                if pr.dimmed and pr.markers is not None:
                    pr.markers.set_face_color(pts.color[pr.point_order])
                    pr.markers.set_edge_color(pr.point_edge)
                    pr.dimmed = False
        self.update()
