"""``python -m cnnvis export``: the command maps each kind to its library function, and a bad
session or size to one line on stderr and status 2."""

from __future__ import annotations

import numpy as np
from PIL import Image

from cnnvis.cli import main


def test_export_svg_and_facets_of_the_demo(demo_session, tmp_path, capsys):
    out = tmp_path / "o.svg"
    assert main(["export", "svg", str(demo_session), "--out", str(out), "--size", "800x500"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("<?xml") and 'width="800" height="500"' in text
    assert main(["export", "facets", str(demo_session), "--out", str(tmp_path / "f")]) == 0
    pngs = sorted((tmp_path / "f").glob("*_matrix.png"))
    assert pngs and np.asarray(Image.open(pngs[0])).size > 0


def test_a_missing_session_is_one_line_and_status_2(tmp_path, capsys):
    for kind, out in (("png", "x.png"), ("svg", "x.svg"), ("facets", "f")):
        code = main(["export", kind, str(tmp_path / "nope"), "--out", str(tmp_path / out)])
        err = capsys.readouterr().err
        assert code == 2
        assert err.startswith("cnnvis export: error:") and "nope" in err
        assert err.count("\n") == 1
    assert not any(tmp_path.iterdir())


def test_a_bad_size_is_one_line_and_status_2(demo_session, tmp_path, capsys):
    code = main(["export", "svg", str(demo_session), "--out", str(tmp_path / "o.svg"),
                 "--size", "huge"])  # fmt: skip
    assert code == 2
    assert "size must look like 1920x1080, got 'huge'" in capsys.readouterr().err
    assert not (tmp_path / "o.svg").exists()
