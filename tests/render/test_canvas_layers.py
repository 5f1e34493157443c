"""The canvas's per-panel layers: a panel is redrawn when (and only when) something in it changes,
and a frame from the layers equals a frame drawn straight from the scene graph."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.gl

from cnnvis.scene import build_scene  # noqa: E402
from cnnvis.scene.synthetic import synthetic_overview  # noqa: E402

SIZE = (960, 600)


@pytest.fixture(scope="module")
def canvas():
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    from cnnvis.render.offscreen import offscreen_app

    try:
        app = offscreen_app()
    except RuntimeError as exc:  # pragma: no cover - machines without any offscreen GL
        pytest.skip(str(exc))
    from cnnvis.render.canvas import SceneCanvas

    data = synthetic_overview(
        [("g1", "a", 16), ("g2", "b", 40)], clusters_per_layer=[3, 4], n_points=400, seed=5
    )
    c = SceneCanvas(build_scene(data), size=SIZE, app=app)
    yield c
    c.close()


def _panel_pixels(canvas, image, name):
    x, y, w, h = canvas.model.panel_layout(*SIZE)[name]
    return image[y : y + h, x : x + w]


def test_layers_match_a_direct_draw(canvas):
    canvas.fit()
    layered = canvas.render(alpha=False).astype(int)
    # the same canvas drawn straight from the scene graph, through vispy's own path
    direct = canvas.render(size=SIZE, alpha=False).astype(int)
    assert np.abs(layered - direct).max() <= 1


def test_pan_redraws_only_its_panel(canvas):
    canvas.fit()
    before = canvas.render(alpha=False).astype(int)
    assert not canvas._dirty
    x0, y0, x1, y1 = canvas.model.panels["overview"].bounds
    canvas.views["overview"].camera.set_range(
        x=(x0, x0 + (x1 - x0) / 2), y=(y0, y0 + (y1 - y0) / 2), margin=0
    )
    assert canvas._dirty == {"overview"}
    after = canvas.render(alpha=False).astype(int)
    assert np.abs(_panel_pixels(canvas, after, "overview") - _panel_pixels(canvas, before, "overview")).max() > 50  # fmt: skip
    for name in ("projection", "legend"):
        assert np.array_equal(
            _panel_pixels(canvas, after, name), _panel_pixels(canvas, before, name)
        )
    # zooming back shows the first picture again
    canvas.fit()
    assert np.abs(canvas.render(alpha=False).astype(int) - before).max() <= 1


def test_highlight_redraws_the_projection(canvas):
    canvas.fit()
    before = canvas.render(alpha=False).astype(int)
    canvas.model.highlight.classes = {0}
    canvas.update_highlight()
    try:
        after = canvas.render(alpha=False).astype(int)
        diff = np.abs(_panel_pixels(canvas, after, "projection") - _panel_pixels(canvas, before, "projection"))  # fmt: skip
        assert diff.max() > 50
    finally:
        canvas.model.highlight.clear()
        canvas.update_highlight()
    assert np.abs(canvas.render(alpha=False).astype(int) - before).max() <= 1


def test_thin_edges_stay_visible_when_zoomed_out(canvas):
    # zoomed far out every edge is thinner than a pixel: it is drawn one pixel wide, not dropped
    x0, y0, x1, y1 = canvas.model.panels["overview"].bounds
    w, h = x1 - x0, y1 - y0
    canvas.views["overview"].camera.set_range(x=(x0 - 4 * w, x1 + 4 * w), y=(y0 - 4 * h, y1 + 4 * h), margin=0)  # fmt: skip
    image = canvas.render(alpha=False).astype(int)
    canvas.fit()
    ov = _panel_pixels(canvas, image, "overview")
    colors = canvas.model.panels["overview"].lines.color[:, :3]
    bg = np.asarray(canvas.model.panels["overview"].background[:3])
    # some pixel carries an edge colour (blended at its alpha over the background or a band)
    alpha = canvas.model.panels["overview"].lines.color[:, 3:4]
    expected = np.unique(np.round(255 * (alpha * colors + (1 - alpha) * bg)).astype(int), axis=0)
    flat = ov.reshape(-1, 3)
    hit = [(np.abs(flat - e).max(axis=1) <= 12).any() for e in expected]
    assert any(hit)
