"""Level of detail for large sample panels (issue 20): a class-coloured density image.

Above :data:`LOD_POINTS` points in view, a panel's markers cost most of a frame under software
GL (one point sprite each, several per pixel when zoomed out). :class:`DensityImage` splats the
points in view (and a margin around it) into an RGBA texture at the panel's pixel size, drawn
as one vispy Image (cells of half a marker): each cell is the mean fill colour of the markers that cover it, as opaque
as that many markers stacked. It is recomputed only when the view leaves the area it covers or
the zoom changes by more than :data:`REZOOM`; zoomed in, the panel draws its markers again.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter
from vispy import scene
from vispy.visuals.transforms import STTransform

__all__ = ["LOD_POINTS", "DensityImage", "marker_look", "points_in_rect", "splat"]

#: more points than this in view: the density image instead of the markers
LOD_POINTS = 20_000
MARGIN = 0.25  # of the view's width and height on each side, so a pan reuses the image
REZOOM = 1.4  # a zoom by more than this factor (either way) recomputes the image


def points_in_rect(xy: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    """A mask of the rows of ``xy`` inside ``rect`` = ``(left, bottom, width, height)``."""
    x0, y0, w, h = rect
    return (xy[:, 0] >= x0) & (xy[:, 0] <= x0 + w) & (xy[:, 1] >= y0) & (xy[:, 1] <= y0 + h)


def marker_look(style: dict) -> np.ndarray:
    """The RGBA (n, 4) a sample marker of ``style`` (:func:`~cnnvis.viewer.grid.sample_style`)
    leaves on its square: its fill and outline mixed by their areas, its alpha times the share
    of the square a disc covers; so the density image is as light as the markers it stands for."""
    face, edge = style["face_color"], style["edge_color"]
    size = np.maximum(style["size"], 1e-6)
    inner = (np.clip((size - style["edge_width"]) / size, 0, 1) ** 2)[:, None]
    outline = edge[:, :3] * edge[:, 3:] + face[:, :3] * (1 - edge[:, 3:])
    out = np.empty((len(face), 4), np.float32)
    out[:, :3] = face[:, :3] * inner + outline * (1 - inner)
    out[:, 3] = face[:, 3] * (np.pi / 4)
    return out


def splat(
    xy: np.ndarray,
    rgba: np.ndarray,
    rect: tuple[float, float, float, float],
    shape: tuple[int, int],
    reach: int = 1,
) -> np.ndarray:
    """The points ``xy`` (n, 2) with colours ``rgba`` (n, 4, 0..1) drawn into an image of
    ``shape`` (rows, cols) covering ``rect`` (row 0 at the bottom), each as a square of
    ``reach`` pixels: uint8 RGBA, the mean colour of the covering points, alpha as that many
    markers of their alphas stacked (``1 - exp(-sum of alphas)``)."""
    rows, cols = shape
    if rows < 1 or cols < 1:
        raise ValueError(f"a density image needs at least one pixel, not {shape}")
    x0, y0, w, h = rect
    col = np.floor((xy[:, 0] - x0) * (cols / w)).astype(np.int64)
    row = np.floor((xy[:, 1] - y0) * (rows / h)).astype(np.int64)
    keep = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    cell = row[keep] * cols + col[keep]
    a = rgba[keep, 3].astype(np.float64)
    acc = np.empty((rows, cols, 4), np.float32)
    for k in range(3):  # colours weighted by alpha, then the alphas
        acc[..., k] = np.bincount(cell, a * rgba[keep, k], rows * cols).reshape(rows, cols)
    acc[..., 3] = np.bincount(cell, a, rows * cols).reshape(rows, cols)
    if reach > 1:  # a point covers a marker's square around it: sums, not means
        acc = uniform_filter(acc, size=(reach, reach, 1), mode="constant") * (reach * reach)
    total = acc[..., 3:]
    out = np.empty((rows, cols, 4), np.uint8)
    out[..., :3] = np.clip(acc[..., :3] / np.maximum(total, 1e-6) * 255 + 0.5, 0, 255)
    out[..., 3:] = np.clip((1 - np.exp(-total)) * 255 + 0.5, 0, 255)
    return out


class DensityImage:
    """The density image of a panel's points, kept in step with its camera."""

    def __init__(self, parent) -> None:
        self.image = scene.visuals.Image(
            np.zeros((1, 1, 4), np.uint8), parent=parent, interpolation="linear"
        )
        self.image.set_gl_state("translucent", depth_test=False)
        self.image.transform = STTransform()
        self.image.visible = False
        self.covered: tuple[float, float, float, float] | None = None  # the image's rect
        self._scale = 0.0  # data units per pixel when it was made

    def invalidate(self) -> None:
        self.covered = None

    def stale(self, rect: tuple[float, float, float, float], px: tuple[int, int]) -> bool:
        """Whether the view ``rect`` of ``px`` (cols, rows) pixels needs a new image."""
        if self.covered is None or px[0] < 1:
            return True
        ratio = (rect[2] / px[0]) / self._scale
        x0, y0, w, h = self.covered
        inside = (
            rect[0] >= x0 and rect[1] >= y0 and rect[0] + rect[2] <= x0 + w
            and rect[1] + rect[3] <= y0 + h
        )  # fmt: skip
        return not inside or not 1 / REZOOM <= ratio <= REZOOM

    def update(self, xy, rgba, rect, px: tuple[int, int], marker_px: float) -> None:
        """Draw ``xy`` coloured ``rgba`` for the view ``rect`` of ``px`` (cols, rows) pixels,
        with a margin around it."""
        x0, y0, w, h = rect
        cover = (x0 - MARGIN * w, y0 - MARGIN * h, w * (1 + 2 * MARGIN), h * (1 + 2 * MARGIN))
        # cells of half a marker, each point spread over a marker's width of them: the look of
        # the markers at a quarter of the pixels to fill
        cell = max(1.0, marker_px / 2)
        cols = max(1, round(px[0] * (1 + 2 * MARGIN) / cell))
        rows = max(1, round(px[1] * (1 + 2 * MARGIN) / cell))
        reach = max(1, round(marker_px / cell))
        self.image.set_data(splat(xy, rgba, cover, (rows, cols), reach))
        self.image.transform.scale = (cover[2] / cols, cover[3] / rows, 1)
        self.image.transform.translate = (cover[0], cover[1], 0)
        self.covered, self._scale = cover, w / px[0]
