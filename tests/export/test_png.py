"""The PNG export: a scene or a session written to a PNG file, and bad sizes and places refused."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

pytestmark = pytest.mark.gl

from cnnvis.scene import build_scene  # noqa: E402
from cnnvis.scene.synthetic import synthetic_overview  # noqa: E402


@pytest.fixture(scope="module")
def data():
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    from cnnvis.render.offscreen import offscreen_app

    try:
        offscreen_app()
    except RuntimeError as exc:  # pragma: no cover - machines without any offscreen GL
        pytest.skip(str(exc))
    return synthetic_overview(
        [("g1", "a", 16), ("g2", "b", 40), ("g3", "c", 64)],
        clusters_per_layer=[3, 5, 6],
        n_points=700,
        seed=11,
    )


def test_render_png_and_export_png(tmp_path, data):
    from PIL import Image

    from cnnvis.export.png import export_png, render_png
    from cnnvis.render.offscreen import parse_size

    scene = build_scene(data, facet="features")
    out = render_png(scene, tmp_path / "a.png", "640x400")
    img = np.asarray(Image.open(out))
    assert img.shape[:2] == (400, 640)
    assert len(np.unique(img.reshape(-1, img.shape[2]), axis=0)) > 50  # a picture, not a blank
    out2 = export_png(data, tmp_path / "sub" / "b.png", size="320x200", facet="matrix")
    assert np.asarray(Image.open(out2)).shape[:2] == (200, 320)
    # readable as any file made here (the umask's mode, not a temporary file's 0600)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(out2).st_mode & 0o777 == 0o666 & ~umask
    # a file where its folder should be: one error naming both, and nothing written
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OSError, match=re.escape(f"{tmp_path / 'afile'} is a file")):
        render_png(scene, tmp_path / "afile" / "c.png", "64x40")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "afile", "sub"]
    assert parse_size("1920x1080") == (1920, 1080)
    for bad in ("1920", "axb", "0x100", "100000x10"):
        with pytest.raises(ValueError, match="size"):
            parse_size(bad)
