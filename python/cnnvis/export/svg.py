"""The overview as SVG, written straight from the :class:`~cnnvis.scene.Scene` (no OpenGL).

The window layout, the fitted view of each panel and the level-of-detail rules are the ones the
canvas uses, so the SVG shows what the PNG shows: rectangles as ``<rect>``, facet images as
embedded PNGs, edges as ``<path>`` (world-unit widths), samples as ``<circle>``, labels as
``<text>``.

The overview is semantic, to be restyled in Inkscape: it lies in ``<svg id="panel-overview">``;
each layer group's band is a ``<g class="group" data-name>``, each layer's a ``<g class="layer"
data-name data-neurons>``; each cluster a ``<g class="cluster" data-layer data-index data-size>``
holding its box ``<rect>`` and its facet ``<image>`` s; connections are ``<path
class="connection" data-sign="positive|negative">`` and names ``<text class="label">``.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Collection
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from cnnvis.scene.colors import HIGHLIGHT, rgba_to_hex
from cnnvis.scene.model import Panel, Rects, Scene

__all__ = ["export_svg", "scene_to_svg", "write_svg"]

DPI = 96.0


def _num(v: float) -> str:
    return f"{float(v):.2f}".rstrip("0").rstrip(".")


def _fill(rgba) -> str:
    a = float(rgba[3])
    out = f'fill="{rgba_to_hex(rgba)}"'
    return out if a >= 0.999 else out + f' fill-opacity="{_num(a)}"'


def _stroke(rgba) -> str:
    a = float(rgba[3])
    out = f'stroke="{rgba_to_hex(rgba)}"'
    return out if a >= 0.999 else out + f' stroke-opacity="{_num(a)}"'


def _png_data_uri(rgba: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba)).save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _viewbox(panel: Panel, viewport: tuple[int, int, int, int]) -> tuple[float, ...]:
    """The world rectangle shown when the panel is fitted (1% margin, aspect kept)."""
    x0, y0, x1, y1 = panel.bounds
    w, h = x1 - x0, y1 - y0
    mx, my = 0.01 * w, 0.01 * h
    x0, y0, w, h = x0 - mx, y0 - my, w + 2 * mx, h + 2 * my
    _, _, vw, vh = viewport
    zoom = min(vw / w, vh / h)
    fw, fh = vw / zoom, vh / zoom
    return (x0 - (fw - w) / 2, y0 - (fh - h) / 2, fw, fh, zoom)


def _rects(out: list[str], rects: Rects, stroke_px: float, zoom: float) -> None:
    for (x, y, w, h), fill, stroke in zip(rects.xywh, rects.fill, rects.stroke):
        attrs = f'x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" {_fill(fill)}'
        if stroke[3] > 0:
            attrs += f' {_stroke(stroke)} stroke-width="{_num(stroke_px / zoom)}"'
        out.append(f"<rect {attrs}/>")


def _panel_svg(scene: Scene, name: str, viewport: tuple[int, int, int, int]) -> str:
    panel = scene.panels[name]
    vx, vy, vw, vh, zoom = _viewbox(panel, viewport)
    px, py, pw, ph = viewport
    out = [
        f'<svg x="{px}" y="{py}" width="{pw}" height="{ph}" '
        f'viewBox="{_num(vx)} {_num(vy)} {_num(vw)} {_num(vh)}" '
        f'preserveAspectRatio="xMidYMid meet" id={quoteattr("panel-" + name)}>'
    ]
    out.append(
        f'<rect x="{_num(vx)}" y="{_num(vy)}" width="{_num(vw)}" height="{_num(vh)}" '
        f"{_fill(panel.background)}/>"
    )
    shown = panel.images.min_zoom <= zoom if len(panel.images) else np.zeros(0, bool)
    if name == "overview":
        out += _overview_boxes(scene, panel, shown, zoom)
    else:
        out.append('<g class="rects">')
        _rects(out, panel.rects, 1.0, zoom)
        out.append("</g>")
        out.append('<g class="images">')
        out += [_image(panel.images, i) for i in np.flatnonzero(shown)]
        out.append("</g>")
    lines = panel.lines
    out.append('<g class="edges" fill="none" stroke-linecap="round">')
    for i in range(len(lines)):
        pts = lines.line(i)
        d = "M" + " L".join(f"{_num(x)} {_num(y)}" for x, y in pts)
        width = max(float(lines.width[i]), 1.0 / zoom)
        sign = "positive" if lines.sign[i] >= 0 else "negative"
        out.append(
            f'<path class="connection" data-sign="{sign}" d="{d}" {_stroke(lines.color[i])} '
            f'stroke-width="{_num(width)}"/>'
        )
    out.append("</g>")
    out.append('<g class="nodes">')
    _rects(out, panel.top_rects, 1.0, zoom)
    out.append("</g>")
    out += _points_svg(panel.points, zoom)
    out += _highlight_svg(scene, name, zoom)
    out += _labels_svg(panel.labels, zoom)
    out.append("</svg>")
    return "\n".join(out)


def _image(images, i: int) -> str:
    x, y, w, h = images.xywh[i]
    style = ' style="image-rendering:pixelated"' if images.interpolation[i] == "nearest" else ""
    return (
        f'<image x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
        f'preserveAspectRatio="none"{style} href="{_png_data_uri(images.data[i])}"/>'
    )


def _overview_boxes(scene: Scene, panel: Panel, shown: np.ndarray, zoom: float) -> list[str]:
    """The overview's bands and clusters as named groups: a layer group's band, a layer's band,
    each cluster with its box and the facet images shown at ``zoom`` (in painting order)."""
    units, neurons = scene.meta.get("units", {}), scene.meta.get("neurons", {})
    sizes = scene.meta.get("cluster_sizes", {})
    images: dict[tuple, list[int]] = {}
    for i in np.flatnonzero(shown):
        images.setdefault(panel.images.ids[i], []).append(int(i))
    out = ['<g class="boxes">']
    for k, pid in enumerate(panel.rects.ids):
        box = Rects(*(a[k : k + 1] for a in (panel.rects.xywh, panel.rects.fill,
                    panel.rects.stroke, panel.rects.stroke_width)), [pid])  # fmt: skip
        kind = pid[0] if pid else None
        if kind == "cluster":
            layer, c = pid[1], int(pid[2])
            out.append(
                f'<g class="cluster" data-layer={quoteattr(layer)} data-index="{c}" '
                f'data-size="{sizes.get((layer, c), 0)}">'
            )
            _rects(out, box, 1.0, zoom)
            out += [_image(panel.images, i) for i in images.pop(pid, [])]
        elif kind in ("band", "layer"):
            is_layer = kind == "layer" or units.get(pid[1]) == pid[1]
            attrs = f"data-name={quoteattr(pid[1])}"
            if is_layer:
                attrs += f' data-neurons="{neurons.get(pid[1], 0)}"'
            out.append(f'<g class="{"layer" if is_layer else "group"}" {attrs}>')
            _rects(out, box, 1.0, zoom)
        else:
            _rects(out, box, 1.0, zoom)
            continue
        out.append("</g>")
    out += [_image(panel.images, i) for rest in images.values() for i in rest]
    out.append("</g>")
    return out


def _points_svg(pts, zoom: float) -> list[str]:
    """The samples as circles; the misclassified ones ringed in the mark colour."""
    out: list[str] = []
    if len(pts):
        r = 0.5 * pts.size / zoom
        out.append('<g class="points">')
        for (x, y), col in zip(pts.xy, pts.color):
            out.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(r)}" {_fill(col)}/>')
        out.append("</g>")
        if pts.marked.any():
            rr = 0.5 * (pts.size + 3.5) / zoom
            out.append(
                f'<g class="marked" fill="none" {_stroke(pts.mark_color)} '
                f'stroke-width="{_num(1.2 / zoom)}">'
            )
            for x, y in pts.xy[pts.marked]:
                out.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(rr)}"/>')
            out.append("</g>")
    return out


def _labels_svg(labels, zoom: float) -> list[str]:
    """The labels shown at ``zoom``, each with its background box when it has one."""
    out: list[str] = []
    if len(labels):
        visible = labels.min_zoom <= zoom
        boxes = labels.screen_boxes(zoom, DPI)
        out.append('<g class="labels" font-family="DejaVu Sans, Verdana, sans-serif">')
        for i in np.flatnonzero(visible):
            if labels.background[i, 3] > 0:
                x0, y0, x1, y1 = boxes[i]
                pad = 2.0 / zoom
                out.append(
                    f'<rect x="{_num(x0 - pad)}" y="{_num(y0)}" width="{_num(x1 - x0 + 2 * pad)}" '
                    f'height="{_num(y1 - y0)}" {_fill(labels.background[i])}/>'
                )
            ha, va = labels.anchor[i]
            anchor = {"left": "start", "center": "middle", "right": "end"}[ha]
            dy = {"top": "0.8em", "center": "0.35em", "bottom": "-0.25em"}[va]
            font = labels.size[i] * DPI / 72.0 / zoom
            weight = ' font-weight="bold"' if labels.bold[i] else ""
            x, y = labels.pos[i]
            out.append(
                f'<text class="label" x="{_num(x)}" y="{_num(y)}" dy="{dy}" font-size="{_num(font)}" '
                f'text-anchor="{anchor}"{weight} {_fill(labels.color[i])}>'
                f"{escape(labels.text[i])}</text>"
            )
        out.append("</g>")
    return out


def _highlight_svg(scene: Scene, name: str, zoom: float) -> list[str]:
    hl = scene.highlight
    out: list[str] = []
    if name == "overview":
        boxes = [scene.neuron_boxes[n] for n in sorted(hl.neurons) if n in scene.neuron_boxes]
        boxes += [scene.cluster_rects[c] for c in sorted(hl.clusters) if c in scene.cluster_rects]
        if boxes:
            out.append(
                f'<g class="highlight" fill="{rgba_to_hex(HIGHLIGHT)}" fill-opacity="0.28" '
                f'stroke="{rgba_to_hex(HIGHLIGHT)}" stroke-width="{_num(2.0 / zoom)}">'
            )
            for x, y, w, h in boxes:
                out.append(
                    f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}"/>'
                )
            out.append("</g>")
    elif name == "projection":
        pts = scene.panels[name].points
        sel = scene.highlighted_points()
        if sel.any():
            r = 0.5 * (pts.size + 4.0) / zoom
            out.append(
                f'<g class="highlight" stroke="{rgba_to_hex(HIGHLIGHT)}" '
                f'stroke-width="{_num(1.5 / zoom)}">'
            )
            for (x, y), col in zip(pts.xy[sel], pts.color[sel]):
                out.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(r)}" {_fill(col)}/>')
            out.append("</g>")
    return out


def scene_to_svg(scene: Scene, size: tuple[int, int] = (1920, 1080)) -> str:
    """The SVG document of ``scene`` laid out in a ``size`` window."""
    w, h = (int(v) for v in size)
    layout = scene.panel_layout(w, h)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
    ]
    title = scene.meta.get("title")
    if title:
        parts.append(f"<title>{escape(str(title))}</title>")
    parts.append(f'<rect width="{w}" height="{h}" fill="#ffffff"/>')
    for name in ("overview", "projection", "legend"):
        if name in layout:
            parts.append(_panel_svg(scene, name, layout[name]))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write_svg(scene: Scene, path: str | os.PathLike, size: tuple[int, int] = (1920, 1080)) -> Path:
    """Write ``scene`` as SVG to ``path`` (atomically)."""
    from cnnvis.io import atomic_file

    text = scene_to_svg(scene, size)
    path = Path(path)
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))
    return path


def export_svg(
    analysis: Any,
    out: str | os.PathLike,
    *,
    size: tuple[int, int] | str | None = None,
    facet: str | None = None,
    palette: str | None = None,
    expanded: Collection[str] | str | None = None,
    depth: int | None = None,
) -> Path:
    """Write the overview of an Analysis as SVG to ``out``.

    The arguments are those of :func:`cnnvis.export.png.export_png`.
    """
    from cnnvis.export import overview_scene
    from cnnvis.render.offscreen import parse_size

    options = dict(facet=facet, palette=palette, expanded=expanded, depth=depth)
    return write_svg(overview_scene(analysis, **options), out, parse_size(size))
