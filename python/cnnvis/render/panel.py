"""The vispy visuals of one panel of a :class:`~cnnvis.scene.Scene`, and its level of detail.

:class:`PanelVisuals` builds, for one panel, one mesh for the rectangles' fills and one line visual
for their outlines, one textured quad visual per atlas for all facet images, one ribbon visual for
all edges, one sprite visual for the points and one ``Text`` visual per label style, plus the
highlight overlays (empty until set). The level of detail only flips per-item visibility flags or
label alphas when the zoom crosses a threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from vispy import gloo
from vispy import scene as vscene

from cnnvis.scene.colors import HIGHLIGHT
from cnnvis.scene.model import Images, Labels, Panel, Points, Polylines, Rects

from .geometry import build_atlas, outline_segments, quads, ribbons
from .glvisuals import PixelQuads, Ribbons, Sprites, TexturedQuads

__all__ = ["MARK_SCALE", "MARK_SHAPE", "PanelVisuals"]

# a misclassified sample: a disc of this many times the point size, in its class colour, with
# an outline of the scene's mark colour (drawn in the same sprite as the fill)
MARK_SHAPE = "disc"
MARK_SCALE = 1.3
MARK_EDGE_WIDTH = 1.2
MARK_EDGE_ALPHA = 1.0
ATLAS_MAX_SIDE = {"linear": 384, "nearest": 512}


class PanelVisuals:
    """The vispy visuals of one panel, and the LOD state last applied."""

    def __init__(self, canvas: Any, panel: Panel) -> None:
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
        v, f = quads(rects.xywh)
        colors = np.repeat(rects.fill, 4, axis=0)
        mesh = vscene.visuals.Mesh(vertices=v, faces=f, vertex_colors=colors, parent=parent)
        mesh.order = order
        return mesh

    @staticmethod
    def _rect_lines(rects: Rects, parent, order: int):
        keep = rects.stroke[:, 3] > 0 if len(rects) else np.zeros(0, bool)
        if not keep.any():
            return None
        seg = outline_segments(rects.xywh[keep])
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
                    "uv": boxes,
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
        centre, normal, faces, colors = ribbons(lines)
        # lines thinner than a pixel on screen are drawn one pixel wide (hairlines)
        visual = Ribbons(min_width_px=1.0, parent=parent)
        visual.set_data(centre, normal, colors, faces)
        visual.order = order
        return visual

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

    # -- moving in place (animation) ------------------------------------------------------------
    def move(self, panel: Panel) -> None:
        """Show ``panel``, the same objects as the drawn one in other places and colours (a frame
        of :func:`cnnvis.scene.transition_frame`): vertices are uploaded again, no visual or
        shader is made. Its connections show only when it has them."""
        for rects, fill, edge in (
            (panel.rects, self.rect_fill, self.rect_edge),
            (panel.top_rects, self.top_fill, self.top_edge),
        ):
            if fill is not None:
                v, f = quads(rects.xywh)
                fill.set_data(vertices=v, faces=f, vertex_colors=np.repeat(rects.fill, 4, axis=0))
            keep = rects.stroke[:, 3] > 0
            if edge is not None:
                edge.visible = bool(keep.any())
            if edge is not None and keep.any():
                edge.set_data(
                    pos=outline_segments(rects.xywh[keep]),
                    color=np.repeat(rects.stroke[keep], 8, axis=0),
                )
        for entry in self.atlases:
            entry["visual"].set_data(panel.images.xywh[entry["index"]], entry["uv"])
        if self.ribbons is not None:
            self.ribbons.visible = len(panel.lines) > 0
        labels = panel.labels
        if self.label_bg is not None:
            box = labels.pixel_boxes()[self.label_bg_index] + np.array([-2.0, 0.0, 2.0, 0.0])
            sel = self.label_bg_index
            self.label_bg.set_data(labels.pos[sel], box, labels.background[sel])
        for entry in self.texts:
            entry["visual"].pos = labels.pos[entry["index"]]
        self.panel = panel
        self.label_mask = self.image_mask = None  # the level of detail is applied again

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
