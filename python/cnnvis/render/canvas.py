"""Draw a :class:`cnnvis.scene.Scene` with vispy: shared by the Qt viewer and the PNG export.

:class:`SceneCanvas` is a ``vispy.scene.SceneCanvas`` with one view (and pan/zoom camera) per
panel of the scene. It batches the primitives: one mesh for the rectangles' fills and one line
visual for their outlines, one textured quad visual per atlas for all facet images, one ribbon
visual for all edges (never thinner than a pixel), one sprite visual per point cloud (a disc, a
larger ringed one for a misclassified sample), and one ``Text`` visual per label style.
Everything is uploaded once per scene: panning and zooming change only the camera transform,
and the level of detail (labels and facets shown only when large enough) only flips per-item
visibility flags or label alphas when the zoom crosses a label's or facet's threshold, never
shader code or geometry (see :mod:`.glvisuals` and :mod:`.panel`). Highlights are overlays updated without
re-uploading the rest.

No Qt here: the viewer embeds ``canvas.native``; exports create the canvas offscreen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vispy import gloo
from vispy import scene as vscene
from vispy.visuals.text.text import FontManager

from cnnvis.scene.colors import HIGHLIGHT
from cnnvis.scene.model import Scene

from .geometry import outline_segments, quads
from .panel import MARK_SCALE, MARK_SHAPE, PanelVisuals

__all__ = ["SceneCanvas"]

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
        self._panels: dict[str, PanelVisuals] = {}
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
        self._panels = {name: PanelVisuals(self, panel) for name, panel in scene.panels.items()}
        self._view_names = {id(pv.view): name for name, pv in self._panels.items()}
        self._layers = {}
        self._dirty = set(self._panels)
        self.model = scene
        self._layout_panels()
        self.fit()
        self.update_highlight()

    def move_scene(self, scene: Scene, panel: str = "overview") -> None:
        """Show ``scene``, whose ``panel`` holds the objects drawn now in other places (a frame
        of an animation, :func:`cnnvis.scene.transition_frame`), without rebuilding visuals."""
        self._panels[panel].move(scene.panels[panel])
        self.model = scene
        self.fit(panel)
        self._dirty.add(panel)
        self.update()

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
                ov.hl_lines.set_data(pos=outline_segments(arr), color=HIGHLIGHT, width=2.0)
                v, f = quads(arr)
                ov.hl_fill.set_data(vertices=v, faces=f, color=(*HIGHLIGHT[:3], 0.28))
                ov.hl_lines.visible = ov.hl_fill.visible = True
            else:
                ov.hl_lines.visible = ov.hl_fill.visible = False
        pr = self._panels.get("projection")
        if pr is not None and len(pr.panel.points):
            pts = pr.panel.points
            sel = scene.highlighted_points()
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
