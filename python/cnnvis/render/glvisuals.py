"""Small vispy visuals whose per-frame state is uniforms and attribute data, never shader code.

vispy's ``Mesh.set_data`` and ``Markers`` rebuild (and, under llvmpipe, re-JIT) their shader
program whenever their data change, and ``Markers`` shades a large point sprite per marker with a
general fragment shader. The overview changes what it shows with the zoom (level of detail), so
those rebuilds landed in the pan/zoom loop. These visuals upload their geometry once and change
only attribute buffers (``Program.__setitem__`` re-uses the buffer, no rebuild) or uniforms:

* :class:`Sprites`: disc or diamond markers, each with an optional outline, one point sprite
  each, just large enough for it;
* :class:`Ribbons`: polylines as triangle ribbons of world width, never thinner than a pixel
  (so no separate hairline pass is needed when zoomed out);
* :class:`PixelQuads`: rectangles anchored at world points with sides in screen pixels (label
  backgrounds), each shown or hidden by a flag;
* :class:`TexturedQuads`: world rectangles textured from one atlas, each shown or hidden by a flag.
"""

from __future__ import annotations

import numpy as np
from vispy.gloo import IndexBuffer, Texture2D
from vispy.scene.visuals import create_visual_node
from vispy.visuals import Visual

__all__ = ["PixelQuads", "Ribbons", "SHAPES", "Sprites", "TexturedQuads"]

# vertex position of a hidden vertex: outside the clip volume, so its triangles are dropped
_HIDE = "gl_Position = vec4(-2.0, -2.0, -2.0, 1.0);"

# what the sprite vertex shader hands its fragment shader
_SPRITE_VARYINGS = """
varying vec4 v_fill;
varying vec4 v_edge;
varying float v_radius;
varying float v_reach;
varying float v_offset;
varying float v_outlined;
varying float v_hollow;
varying float v_total;
varying float v_shape;
"""

_SPRITE_VERT = """
attribute vec2 a_pos;
attribute vec4 a_fill;
attribute vec4 a_edge;
attribute float a_size;
attribute float a_edge_width;
attribute float a_shape;
uniform float u_px_scale;
VARYINGS
void main() {
    float size = a_size * u_px_scale;
    float ew = a_edge_width * u_px_scale;
    float outlined = ew > 0.0 ? 1.0 : 0.0;
    v_fill = a_fill;
    // without an outline the border fades in the fill colour
    v_edge = outlined > 0.5 ? vec4(a_edge.rgb, min(ew, 1.0) * a_edge.a) : a_fill;
    v_shape = a_shape;
    v_radius = 0.5 * size;
    v_reach = 0.5 * ew + 1.0;
    v_outlined = outlined;
    // where the fade starts: the outline's solid core (ew > 2), or a pixel inside a bare border
    v_offset = outlined > 0.5 ? max(0.5 * ew - 1.0, 0.0) : -1.0;
    // an outline without fill has nothing to draw well inside it (alpha there below 1/500)
    v_hollow = a_fill.a == 0.0 ? v_offset + 2.5 : 1e30;
    // the shape, half its outline outside it and one pixel of antialiasing: a disc needs that
    // much more diameter, a diamond (whose margin is measured across its sides) sqrt(2) times it
    float margin = ew + 2.0;
    v_total = size + (a_shape > 0.5 ? 1.41421356 * margin : margin);
    gl_Position = $transform(vec4(a_pos, 0.0, 1.0));
    gl_PointSize = v_total;
}
""".replace("VARYINGS\n", _SPRITE_VARYINGS)

# the coverage of vispy's "disc" and "diamond" markers (antialias 1 px), without their symbol
# dispatch, lighting and the 4x edge margin of their sprites; a point and its outline are one
# sprite, so an outlined (misclassified) sample costs no second primitive. Software GL runs both
# sides of every branch, so the shader is branch-free after the discards, with one exp().
_SPRITE_FRAG = """
VARYINGS
void main() {
    vec2 p = (gl_PointCoord - vec2(0.5)) * v_total;
    // signed distance (pixels) to the border: a disc of diameter 2 v_radius, or a diamond (a
    // square turned by 45 degrees) whose diagonal is 2 v_radius
    float r = v_shape > 0.5 ? (abs(p.x) + abs(p.y) - v_radius) * 0.70710678
                            : length(p) - v_radius;
    if (r > v_reach || r < -v_hollow)
        discard;
    // an outline is centred on the border and fades on both sides; a bare border fades outwards
    float s = max((v_outlined > 0.5 ? abs(r) : r) - v_offset, 0.0);
    float t = exp(-s * s);
    gl_FragColor = (v_outlined > 0.5 && r <= 0.0) ? mix(v_fill, v_edge, t)
                                                  : vec4(v_edge.rgb, t * v_edge.a);
}
""".replace("VARYINGS\n", _SPRITE_VARYINGS)

SHAPES = {"disc": 0.0, "diamond": 1.0}


def _rgba(color, n: int) -> np.ndarray:
    c = np.asarray(color, np.float32)
    if c.ndim == 1:
        c = np.tile(c, (n, 1))
    if c.shape != (n, 4):
        raise ValueError(f"need one RGBA colour or {n} of them, got shape {c.shape}")
    return np.ascontiguousarray(c)


def _column(value, n: int) -> np.ndarray:
    v = np.asarray(value, np.float32)
    if v.ndim > 1 or (v.ndim == 1 and len(v) != n):
        raise ValueError(f"need one value or {n} of them, got shape {v.shape}")
    return np.ascontiguousarray(np.broadcast_to(v, (n,)))


def _shapes(shape, n: int) -> np.ndarray:
    if isinstance(shape, str):
        if shape not in SHAPES:
            raise ValueError(f"unknown marker shape {shape!r}; known: {', '.join(SHAPES)}")
        return np.full(n, SHAPES[shape], np.float32)
    s = np.asarray(shape)
    if s.dtype == bool:  # a flag per point: diamond where true
        s = s.astype(np.float32)
    elif s.dtype.kind in "US":
        unknown = set(s.tolist()) - set(SHAPES)
        if unknown:
            raise ValueError(f"unknown marker shapes {sorted(unknown)}; known: {', '.join(SHAPES)}")
        s = np.array([SHAPES[k] for k in s.tolist()], np.float32)
    return _column(s, n)


class _UploadedVisual(Visual):
    """What every visual here shares: ``_n`` primitives uploaded once, drawn without depth test
    (in the order given), nothing drawn while empty, and no bounds (the cameras are set from
    the scene's layout, never from the data)."""

    def __init__(self, vcode: str, fcode: str, draw_mode: str) -> None:
        super().__init__(vcode=vcode, fcode=fcode)
        self._draw_mode = draw_mode
        self._n = 0
        self.set_gl_state("translucent", depth_test=False, cull_face=False)

    def _prepare_draw(self, view) -> bool:
        return self._n > 0

    def _compute_bounds(self, axis, view):
        return None


class _QuadsVisual(_UploadedVisual):
    """Quads of four vertices each, every one shown or hidden by a flag."""

    def __init__(self, vcode: str, fcode: str) -> None:
        super().__init__(vcode, fcode, "triangles")

    def _upload_quads(self, n: int) -> None:
        self.shared_program["a_shown"] = np.ones(4 * n, np.float32)
        self._index_buffer = IndexBuffer(_quad_faces(n))

    def set_shown(self, shown) -> None:
        """Show the quads where ``shown`` (n,) is true, hide the others (no re-upload)."""
        if self._n:
            flags = np.repeat(np.asarray(shown, bool), 4).astype(np.float32)
            self.shared_program["a_shown"] = flags
            self.update()


def _quad_faces(n: int) -> np.ndarray:
    base = (np.arange(n, dtype=np.uint32) * 4)[:, None]
    return (
        np.concatenate([base + [0, 1, 2], base + [0, 2, 3]], axis=1).reshape(-1).astype(np.uint32)
    )


def _prepare_doc_transforms(view) -> None:
    """Visuals that offset vertices in pixels: visual -> document, then document -> render."""
    view.view_program.vert["visual_to_doc"] = view.get_transform("visual", "document")
    view.view_program.vert["doc_to_render"] = view.get_transform("document", "render")


class SpritesVisual(_UploadedVisual):
    """Screen-sized markers, one point sprite each: a disc of diameter ``size`` pixels or a
    diamond of diagonal ``size`` (``shape`` per point), filled with ``face_color`` and outlined
    by a line of ``edge_width`` pixels centred on the shape's border. A fill of alpha 0 gives a
    ring (or a hollow diamond). Points are drawn in the order given."""

    def __init__(self) -> None:
        super().__init__(_SPRITE_VERT, _SPRITE_FRAG, "points")

    def set_data(
        self, pos, face_color, size, edge_color=(0, 0, 0, 0), edge_width=0.0, shape="disc"
    ) -> None:
        """``pos`` (n, 2); colours one RGBA or (n, 4); ``size`` and ``edge_width`` one value or
        (n,); ``shape`` ``"disc"``, ``"diamond"``, n names, or n flags (true: diamond)."""
        pos = np.ascontiguousarray(np.asarray(pos, np.float32).reshape(-1, 2))
        n = len(pos)
        self._n = n
        if n == 0:
            self.update()
            return
        p = self.shared_program
        p["a_pos"] = pos
        p["a_fill"] = _rgba(face_color, n)
        p["a_edge"] = _rgba(edge_color, n)
        p["a_size"] = _column(size, n)
        p["a_edge_width"] = _column(edge_width, n)
        p["a_shape"] = _shapes(shape, n)
        self.update()

    def set_face_color(self, face_color) -> None:
        """Change the fill colours only (same number of points)."""
        if self._n:
            self.shared_program["a_fill"] = _rgba(face_color, self._n)
            self.update()

    def set_edge_color(self, edge_color) -> None:
        """Change the outline colours only (same number of points)."""
        if self._n:
            self.shared_program["a_edge"] = _rgba(edge_color, self._n)
            self.update()

    def _prepare_transforms(self, view) -> None:
        view.view_program.vert["transform"] = view.get_transform()

    def _prepare_draw(self, view) -> bool:
        if self._n == 0:
            return False
        view.view_program["u_px_scale"] = view.transforms.pixel_scale
        return True


_RIBBON_VERT = """
attribute vec2 a_pos;
attribute vec2 a_normal;
attribute vec4 a_color;
uniform float u_min_half;
varying vec4 v_color;
void main() {
    v_color = a_color;
    vec4 c = $visual_to_doc(vec4(a_pos, 0.0, 1.0));
    vec4 e = $visual_to_doc(vec4(a_pos + a_normal, 0.0, 1.0));
    c.xy /= c.w;
    vec2 d = e.xy / e.w - c.xy;
    float l = length(d);
    // a ribbon thinner than a pixel on screen is widened to one pixel (a hairline)
    if (l < u_min_half)
        d = l > 0.0 ? d * (u_min_half / l) : vec2(0.0);
    gl_Position = $doc_to_render(vec4(c.xy + d, 0.0, 1.0));
}
"""

_COLOR_FRAG = """
varying vec4 v_color;
void main() {
    gl_FragColor = v_color;
}
"""


class RibbonsVisual(_UploadedVisual):
    """Triangle ribbons: each vertex is a centre point plus a signed half-width normal (world)."""

    def __init__(self, min_width_px: float = 1.0) -> None:
        super().__init__(_RIBBON_VERT, _COLOR_FRAG, "triangles")
        self.min_width_px = float(min_width_px)

    def set_data(self, pos, normal, color, faces) -> None:
        pos = np.ascontiguousarray(np.asarray(pos, np.float32).reshape(-1, 2))
        faces = np.ascontiguousarray(np.asarray(faces, np.uint32).reshape(-1))
        self._n = len(faces)
        if self._n == 0:
            self.update()
            return
        p = self.shared_program
        p["a_pos"] = pos
        p["a_normal"] = np.ascontiguousarray(np.asarray(normal, np.float32).reshape(-1, 2))
        p["a_color"] = _rgba(color, len(pos))
        self._index_buffer = IndexBuffer(faces)
        self.update()

    _prepare_transforms = staticmethod(_prepare_doc_transforms)

    def _prepare_draw(self, view) -> bool:
        if self._n == 0:
            return False
        view.view_program["u_min_half"] = 0.5 * self.min_width_px
        return True


_PIXEL_QUAD_VERT = """
attribute vec2 a_pos;
attribute vec2 a_offset;
attribute vec4 a_color;
attribute float a_shown;
varying vec4 v_color;
void main() {
    v_color = a_color;
    if (a_shown < 0.5) {
        HIDE_VERTEX
        return;
    }
    vec4 c = $visual_to_doc(vec4(a_pos, 0.0, 1.0));
    gl_Position = $doc_to_render(vec4(c.xy / c.w + a_offset, 0.0, 1.0));
}
""".replace("HIDE_VERTEX", _HIDE)


class PixelQuadsVisual(_QuadsVisual):
    """Rectangles at world anchors whose corners are pixel offsets from the anchor."""

    def __init__(self) -> None:
        super().__init__(_PIXEL_QUAD_VERT, _COLOR_FRAG)

    def set_data(self, anchor, box_px, color) -> None:
        """``anchor`` (n, 2) world points; ``box_px`` (n, 4) ``(x0, y0, x1, y1)`` pixel offsets
        (y down); ``color`` one or n RGBA colours. Every quad starts shown."""
        anchor = np.asarray(anchor, np.float32).reshape(-1, 2)
        box = np.asarray(box_px, np.float32).reshape(-1, 4)
        n = len(anchor)
        self._n = n
        if n == 0:
            self.update()
            return
        off = np.stack(
            [box[:, [0, 1]], box[:, [2, 1]], box[:, [2, 3]], box[:, [0, 3]]], axis=1
        ).reshape(-1, 2)
        p = self.shared_program
        p["a_pos"] = np.ascontiguousarray(np.repeat(anchor, 4, axis=0))
        p["a_offset"] = np.ascontiguousarray(off)
        p["a_color"] = np.ascontiguousarray(np.repeat(_rgba(color, n), 4, axis=0))
        self._upload_quads(n)
        self.update()

    _prepare_transforms = staticmethod(_prepare_doc_transforms)


_TEX_QUAD_VERT = """
attribute vec2 a_pos;
attribute vec2 a_texcoord;
attribute float a_shown;
varying vec2 v_texcoord;
void main() {
    v_texcoord = a_texcoord;
    if (a_shown < 0.5) {
        HIDE_VERTEX
        return;
    }
    gl_Position = $transform(vec4(a_pos, 0.0, 1.0));
}
""".replace("HIDE_VERTEX", _HIDE)

_TEX_QUAD_FRAG = """
uniform sampler2D u_texture;
varying vec2 v_texcoord;
void main() {
    gl_FragColor = texture2D(u_texture, v_texcoord);
}
"""


class TexturedQuadsVisual(_QuadsVisual):
    """World rectangles ``(x, y, w, h)`` each showing a box ``(u0, v0, u1, v1)`` of one texture."""

    def __init__(self, texture: np.ndarray, interpolation: str = "linear") -> None:
        super().__init__(_TEX_QUAD_VERT, _TEX_QUAD_FRAG)
        self.shared_program["u_texture"] = Texture2D(
            texture, interpolation=interpolation, wrapping="clamp_to_edge"
        )

    def set_data(self, xywh, uv_boxes) -> None:
        xywh = np.asarray(xywh, np.float32).reshape(-1, 4)
        b = np.asarray(uv_boxes, np.float32).reshape(-1, 4)
        n = len(xywh)
        self._n = n
        if n == 0:
            self.update()
            return
        x, y, w, h = xywh.T
        v = np.stack(
            [np.stack([x, y], 1), np.stack([x + w, y], 1), np.stack([x + w, y + h], 1),
             np.stack([x, y + h], 1)], axis=1
        )  # fmt: skip
        tc = np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)
        p = self.shared_program
        p["a_pos"] = np.ascontiguousarray(v.reshape(-1, 2))
        p["a_texcoord"] = np.ascontiguousarray(tc.reshape(-1, 2))
        self._upload_quads(n)
        self.update()

    def _prepare_transforms(self, view) -> None:
        view.view_program.vert["transform"] = view.get_transform()


Sprites = create_visual_node(SpritesVisual)
Ribbons = create_visual_node(RibbonsVisual)
PixelQuads = create_visual_node(PixelQuadsVisual)
TexturedQuads = create_visual_node(TexturedQuadsVisual)
