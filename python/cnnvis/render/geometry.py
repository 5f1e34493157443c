"""Plain numpy geometry for the GL visuals: quads, outlines, ribbons and the facet atlas.

No GL here: these functions turn the scene's rectangles, polylines and images into the vertex,
face and texture arrays that :mod:`cnnvis.render.panel` uploads.
"""

from __future__ import annotations

import numpy as np

from cnnvis.scene.model import Polylines

__all__ = ["ATLAS_WIDTH", "build_atlas", "outline_segments", "quads", "ribbons"]

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


def quads(xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def outline_segments(xywh: np.ndarray) -> np.ndarray:
    """Line segments (pairs of points) tracing each rectangle."""
    v, _ = quads(xywh)
    v = v.reshape(-1, 4, 2)
    seg = np.stack([v, np.roll(v, -1, axis=1)], axis=2)  # (n, 4 edges, 2 ends, 2)
    return seg.reshape(-1, 2)


def ribbons(lines: Polylines) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
