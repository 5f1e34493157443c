"""The scene canvas drawn offscreen: the pixels show the scene's colours where the scene puts them."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.gl

from cnnvis.scene import build_scene  # noqa: E402
from cnnvis.scene.build import BAND_FILL, BAND_FILL_ALT, CLUSTER_FILL  # noqa: E402
from cnnvis.scene.synthetic import synthetic_overview  # noqa: E402

SIZE = (1280, 800)


def _gl():
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    from cnnvis.render.offscreen import offscreen_app

    try:
        return offscreen_app()
    except RuntimeError as exc:  # pragma: no cover - machines without any offscreen GL
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def data():
    return synthetic_overview(
        [("g1", "a", 16), ("g2", "b", 40), ("g3", "c", 64)],
        clusters_per_layer=[3, 5, 6],
        n_points=700,
        seed=11,
    )


@pytest.fixture(scope="module")
def rendered(data):
    app = _gl()
    from cnnvis.render.canvas import SceneCanvas

    scene = build_scene(data, facet="matrix")
    canvas = SceneCanvas(scene, size=SIZE, app=app)
    image = canvas.render(alpha=False).astype(np.int32)
    yield scene, canvas, image
    canvas.close()


def _px(canvas, panel, xy):
    return np.round(canvas.world_to_pixel(panel, np.asarray(xy, float))).astype(int)


def test_canvas_mapping_is_the_fitted_view(rendered):
    scene, canvas, image = rendered
    assert image.shape == (SIZE[1], SIZE[0], 3)
    layout = scene.panel_layout(*SIZE)
    for name, panel in scene.panels.items():
        x0, y0, x1, y1 = panel.bounds
        corners = canvas.world_to_pixel(name, [[x0, y0], [x1, y1]])
        px, py, pw, ph = layout[name]
        # the whole panel is inside its viewport and fills it along one axis (1% margin)
        assert corners[0, 0] >= px - 0.5 and corners[1, 0] <= px + pw + 0.5
        assert corners[0, 1] >= py - 0.5 and corners[1, 1] <= py + ph + 0.5
        fill = max((corners[1, 0] - corners[0, 0]) / pw, (corners[1, 1] - corners[0, 1]) / ph)
        assert fill == pytest.approx(1 / 1.02, abs=0.01)
        assert canvas.zoom(name) == pytest.approx(
            scene.fit_zoom(panel, layout[name]) / 1.02, rel=0.02
        )


def test_matrix_cells_have_their_colormap_colours(rendered):
    scene, canvas, image = rendered
    imgs = scene.panels["overview"].images
    z = canvas.zoom("overview")
    checked = 0
    for k in np.flatnonzero(imgs.min_zoom <= z):
        x, y, w, h = imgs.xywh[k]
        data = imgs.data[k]
        nr, nc = data.shape[:2]
        if w / nc * z < 5 or h / nr * z < 5:
            continue
        for i, j in ((0, 0), (nr - 1, nc - 1), (nr // 2, nc // 3)):
            cx, cy = x + (j + 0.5) * w / nc, y + (i + 0.5) * h / nr
            px, py = _px(canvas, "overview", [[cx, cy]])[0]
            assert np.abs(image[py, px] - data[i, j, :3]).max() <= 6, (k, i, j)
            checked += 1
    assert checked >= 9


def test_points_have_their_class_colours(rendered):
    scene, canvas, image = rendered
    pts = scene.panels["projection"].points
    pix = canvas.world_to_pixel("projection", pts.xy)
    checked = 0
    for k in range(len(pts)):
        d = np.hypot(*(pix - pix[k]).T)
        d[k] = np.inf
        if pts.marked[k] or d.min() < 2 * pts.size + 4:
            continue
        px, py = np.round(pix[k]).astype(int)
        c = pts.color[k]
        want = 255 * (c[3] * c[:3] + (1 - c[3]))
        assert np.abs(image[py, px] - want).max() <= 12, k
        checked += 1
    assert checked >= 5


def test_misclassified_samples_show_their_mark(rendered):
    """A misclassified (marked) sample shows its class colour in the middle and the mark colour
    on a ring around it, at its place; an unmarked sample has no ring."""
    from cnnvis.render.panel import MARK_SCALE

    scene, canvas, image = rendered
    pts = scene.panels["projection"].points
    pix = canvas.world_to_pixel("projection", pts.xy)
    r_mark = 0.5 * MARK_SCALE * pts.size
    dark = 255 * pts.mark_color[:3]
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    checked = {True: 0, False: 0}
    for k in range(len(pts)):
        d = np.hypot(*(pix - pix[k]).T)
        d[k] = np.inf
        if d.min() < 2 * r_mark + 6:
            continue
        cx, cy = pix[k]
        c = pts.color[k]
        want = 255 * (c[3] * c[:3] + (1 - c[3]))
        assert np.abs(image[round(cy), round(cx)] - want).max() <= 12, k
        # how near each of 16 points of the ring comes to the mark colour (within a pixel)
        near = []
        for a in ang:
            x, y = round(cx + r_mark * np.cos(a)), round(cy + r_mark * np.sin(a))
            win = image[y - 1 : y + 2, x - 1 : x + 2].reshape(-1, 3)
            near.append(np.abs(win - dark).max(axis=1).min())
        near = np.asarray(near)
        if pts.marked[k]:
            assert (near <= 40).all(), (k, near)
        else:
            assert (near > 100).all(), (k, near)
        checked[bool(pts.marked[k])] += 1
    assert checked[True] >= 2 and checked[False] >= 5, checked


def test_bands_edges_and_empty_squares(rendered):
    scene, canvas, image = rendered
    ov = scene.panels["overview"]
    bands = [k for k, i in enumerate(ov.rects.ids) if i[0] == "band"]
    for n, k in enumerate(bands):
        x, y, w, h = ov.rects.xywh[k]
        px, py = _px(canvas, "overview", [[x + 6, y + h - 6]])[0]
        want = 255 * np.array((BAND_FILL if n % 2 == 0 else BAND_FILL_ALT)[:3])
        assert np.abs(image[py, px] - want).max() <= 3
    # clusters too small for their facet at this zoom show their plain fill
    z = canvas.zoom("overview")
    hidden = [i for k, i in enumerate(ov.images.ids) if ov.images.min_zoom[k] > z]
    for cid in hidden:
        x, y, w, h = scene.cluster_rects[cid[1:]]
        px, py = _px(canvas, "overview", [[x + w / 2, y + h / 2]])[0]
        assert np.abs(image[py, px] - 255 * np.array(CLUSTER_FILL[:3])).max() <= 3
    # thick, isolated edges are drawn in their sign colour at their midpoint
    lines = ov.lines
    checked = 0
    for k in range(len(lines)):
        if lines.width[k] * z < 2.0:
            continue
        pts = lines.line(k)
        mid = pts[len(pts) // 2]
        d = lines.segment_distance(*mid)
        d[k] = np.inf
        if d.min() < 0.5 * (lines.width[k] + lines.width.max()) + 3.0 / z:
            continue
        px, py = _px(canvas, "overview", [mid])[0]
        c = lines.color[k]
        inside_band = any(
            ov.rects.xywh[b, 1] <= mid[1] <= ov.rects.xywh[b, 1] + ov.rects.xywh[b, 3]
            for b in bands
        )
        bg = 0.95 if inside_band else 1.0
        want = 255 * (c[3] * c[:3] + (1 - c[3]) * bg)
        assert np.abs(image[py, px] - want).max() <= 14, k
        checked += 1
    assert checked >= 2


def test_highlight_and_zoom_change_the_picture(rendered):
    scene, canvas, image = rendered
    from cnnvis.scene.colors import HIGHLIGHT

    (layer, c), (x, y, w, h) = max(scene.cluster_rects.items(), key=lambda kv: kv[1][2])
    sample = scene.panels["projection"].points.ids[0][1]
    scene.highlight.clusters = {(layer, c)}
    scene.highlight.samples = np.array([sample])
    canvas.update_highlight()
    lit = canvas.render(alpha=False).astype(np.int32)
    px, py = _px(canvas, "overview", [[x + w / 2, y]])[0]  # on the square's top border
    assert np.abs(lit[py, px] - 255 * np.array(HIGHLIGHT[:3])).max() <= 40
    assert np.abs(image[py, px] - 255 * np.array(HIGHLIGHT[:3])).max() > 80
    pts = scene.panels["projection"].points
    qx, qy = _px(canvas, "projection", [pts.xy[0]])[0]
    r = int(pts.size / 2 + 2)
    ring = lit[qy - r - 2 : qy + r + 3, qx - r - 2 : qx + r + 3].reshape(-1, 3)
    assert (np.abs(ring - 255 * np.array(HIGHLIGHT[:3])).max(axis=1) <= 60).any()
    # everything else in the overview is unchanged
    mask = np.ones(lit.shape[:2], bool)
    rx0, ry0 = _px(canvas, "overview", [[x - 4, y - 4]])[0]
    rx1, ry1 = _px(canvas, "overview", [[x + w + 4, y + h + 4]])[0]
    mask[ry0 : ry1 + 1, rx0 : rx1 + 1] = False
    layout = scene.panel_layout(*SIZE)
    mask[:, layout["overview"][2] :] = False
    assert np.abs(lit - image)[mask].max() <= 2
    scene.highlight.clear()
    canvas.update_highlight()
    # zooming out hides the facets (plain fill instead) and the captions that no longer fit
    ov = scene.panels["overview"]
    z = canvas.zoom("overview")
    shown_before = int((ov.images.min_zoom <= z).sum())
    x0, y0, x1, y1 = ov.bounds
    w0, h0 = x1 - x0, y1 - y0
    cam = canvas.views["overview"].camera
    cam.set_range(x=(x0 - 2 * w0, x1 + 2 * w0), y=(y0 - 2 * h0, y1 + 2 * h0), z=(-1, 1), margin=0)
    far = canvas.render(alpha=False).astype(np.int32)
    zf = canvas.zoom("overview")
    assert zf == pytest.approx(z / 5, rel=0.05)
    hidden = [k for k in range(len(ov.images)) if ov.images.min_zoom[k] > zf]
    assert 0 < len(hidden) and len(ov.images) - len(hidden) < shown_before
    for k in hidden:
        # the box's inside is its plain fill, or the grey of a group title drawn over it at this
        # zoom: no facet colour (the matrices are viridis, far from grey)
        x, y, w, h = scene.cluster_rects[ov.images.ids[k][1:]]
        (ax, ay), (bx, by) = _px(canvas, "overview", [[x, y], [x + w, y + h]])
        inside = far[min(ay, by) + 2 : max(ay, by) - 1, ax + 2 : bx - 1].reshape(-1, 3)
        plain = np.abs(inside - 255 * np.array(CLUSTER_FILL[:3])).max(axis=1) <= 3
        grey = inside.max(axis=1) - inside.min(axis=1) <= 16
        assert inside.size and plain.mean() > 0.3 and grey.all()
    assert canvas._panels["overview"].label_mask.sum() < scene.visible_labels("overview", z).sum()
    canvas.fit()
    back = canvas.render(alpha=False).astype(np.int32)
    assert np.abs(back - image).max() <= 2


def test_moving_the_drawn_scene_in_place_ends_on_the_same_pixels():
    """An animation frame moves the visuals made for the new scene (no new visual); its last
    frame, the new scene, draws the pixels a fresh canvas draws for it."""
    app = _gl()
    from cnnvis.render.canvas import SceneCanvas
    from cnnvis.scene.transition import transition_frame

    data = synthetic_overview(
        [("g1", "a", 16), ("g1", "b", 24), ("g2", "c", 40)],
        clusters_per_layer=[2, 3, 4], n_points=50, seed=5,
    )  # fmt: skip
    old = build_scene(data, expanded=(), projection=False, legend=False)
    new = build_scene(data, expanded="all", projection=False, legend=False)
    fresh = SceneCanvas(new, size=SIZE, app=app)
    want = fresh.render(alpha=False).astype(np.int32)
    fresh.close()
    canvas = SceneCanvas(new, size=SIZE, app=app)
    visuals = canvas._panels["overview"]
    start = canvas.move_scene(transition_frame(old, new, 0.0)) or canvas.render(alpha=False)
    assert canvas._panels["overview"] is visuals
    assert np.abs(start.astype(np.int32) - want).max(axis=2).astype(bool).mean() > 0.01
    canvas.move_scene(new)
    got = canvas.render(alpha=False).astype(np.int32)
    canvas.close()
    assert np.abs(got - want).max() <= 2
