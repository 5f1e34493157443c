"""``python -m cnnvis explain`` on the demo session: each method writes its picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from cnnvis.cli import main
from cnnvis.commands.explain import parse_neuron


@pytest.mark.parametrize(
    ("method", "extra", "panels", "says"),
    [
        ("saliency", [], 3, "Spearman"),
        ("guided_backprop", ["--neuron", "block2.relu:3,4"], 3, "block2.conv"),
        ("grad_cam", ["--target", "2"], 3, "Spearman"),
        ("occlusion", ["--window", "3", "--stride", "1"], 3, "window 3, stride 1"),
        ("deepfool", [], 3, "representation distance: block1.conv"),
        ("maximize", ["--neuron", "block3.relu:9", "--steps", "16"], 3, "Fourier"),
        ("invert", ["--steps", "20"], 5, "invert head.relu: code loss"),
    ],
)
def test_explain_writes_the_panels(demo_session, tmp_path, capsys, method, extra, panels, says):
    out = tmp_path / f"{method}.png"
    assert main(["explain", method, str(demo_session), "--sample", "3", "--size", "64",
                 "--out", str(out), *extra]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert says in printed and "sample 3: label 2" in printed
    picture = np.asarray(Image.open(out))
    # panels of 64 pixels (an 8x8 digit enlarged 8 times) with 8-pixel gaps on white
    assert picture.shape == (64 + 16, panels * 64 + (panels + 1) * 8, 3)
    assert picture[8:72, 8:72].std() > 0


def test_explain_reports_bad_input_in_one_line(demo_session, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["explain", "saliency", str(demo_session), "--sample", "9999", "--out", out]) == 2
    assert "--sample must be in 0..449" in capsys.readouterr().err
    args = ["explain", "saliency", str(demo_session), "--sample", "0", "--out", out]
    assert main([*args, "--neuron", "block9.relu:1"]) == 2
    assert "no module 'block9.relu'" in capsys.readouterr().err
    assert main([*args, "--neuron", "block1.relu"]) == 2
    assert "LAYER:CHANNEL" in capsys.readouterr().err
    args[1] = "maximize"
    assert main(args) == 2
    assert "maximize needs --target" in capsys.readouterr().err


def test_parse_neuron():
    assert parse_neuron("head.fc1:5") == ("head.fc1", 5)
    assert parse_neuron("a.b:1,2,3") == ("a.b", [1, 2, 3])
    with pytest.raises(ValueError):
        parse_neuron("a.b:x")
