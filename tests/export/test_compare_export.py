"""``python -m cnnvis compare``: the demo CNN untrained against trained, as printed, as JSON and
as a PNG rendered offscreen (both overviews, the projections, the table), and the errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from cnnvis.cli import main
from cnnvis.session import open_session
from comparison_sessions import other_data_session, untrained_demo_session


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    return untrained_demo_session(tmp_path_factory.mktemp("cmp") / "untrained")


def test_command_prints_the_table_and_json(untrained, demo_session, capsys):
    assert main(["compare", str(untrained), str(demo_session)]) == 0
    text = capsys.readouterr().out
    a, b = open_session(untrained).recording, open_session(demo_session).recording
    assert f"{a.accuracy:.1%}" in text and f"{b.accuracy:.1%}" in text
    for layer in a.layer_names:
        assert layer in text
    assert "neighbour agreement" in text
    assert main(["compare", str(untrained), str(demo_session), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["a"]["accuracy"], data["b"]["accuracy"]) == (a.accuracy, b.accuracy)
    assert [r["layer"] for r in data["rows"]] == a.layer_names
    assert data["projection"]["layer_a"] == "head.relu"  # the viewer's projection layer
    assert main(["compare", str(untrained), str(demo_session), "--layers", "block3.relu"]) == 0
    assert "A at block3.relu" in capsys.readouterr().out


def test_command_refuses_other_data_in_one_line(demo_session, tmp_path, capsys):
    other = other_data_session(tmp_path / "fewer", "fewer")
    assert main(["compare", str(demo_session), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cnnvis compare: error: compare needs two sessions recorded on the same")
    assert "\n" not in err
    assert main(["compare", str(demo_session), str(tmp_path / "missing")]) == 2
    assert "no session at" in capsys.readouterr().err
    assert main(["compare", str(demo_session), str(demo_session), "--layers", "a,b,c"]) == 2


@pytest.mark.gl
def test_png_shows_both_overviews_projections_and_table(untrained, demo_session, tmp_path):
    from PIL import Image

    from cnnvis.export.compare import _TITLE_H, compare_shown, export_compare
    from cnnvis.render.offscreen import offscreen_app
    from cnnvis.scene.colors import class_colors

    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    try:
        offscreen_app()
    except RuntimeError as exc:  # pragma: no cover - machines without any offscreen GL
        pytest.skip(str(exc))
    a, b = open_session(untrained), open_session(demo_session)
    cmp = compare_shown(a, b)
    out = export_compare(a, b, tmp_path / "cmp.png", comparison=cmp, size="1200x600")
    img = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert img.shape[1] == 1200 and img.shape[0] > 600 + _TITLE_H + 300
    inked = np.any(img < 235, axis=2)  # anything drawn on the white background
    top = slice(_TITLE_H, _TITLE_H + 600)
    for half in (slice(0, 600), slice(600, 1200)):  # an overview in each half, not a blank
        assert inked[top, half].mean() > 0.05
        assert len(np.unique(img[top, half].reshape(-1, 3), axis=0)) > 100
    # every class's discs are drawn in each of A's and B's projections (their colour at the
    # discs' opacity over white, which the legend's opaque swatches do not have)
    below = img[_TITLE_H + 600 :]
    rgb = np.rint(class_colors(10)[:, :3] * 210 + 45).astype(int)
    for panel in (below[:, :400], below[:, 400:800]):
        for colour in rgb:
            assert np.any(np.all(np.abs(panel - colour) <= 2, axis=2)), colour
    # the table's rows are at the bottom: ink in the last rows but above the note's margin
    assert inked[-150:].mean() > 0.01
    # the command writes it too, both overviews opened alike
    out = tmp_path / "cli" / "cmp.png"
    args = ["compare", str(untrained), str(demo_session), "--out", str(out)]
    assert main([*args, "--size", "960x480", "--depth", "1"]) == 0
    assert Image.open(out).size[0] == 960
