"""``export weights`` and ``export confusion`` (cnnvis.export.toolbox): pictures that are not
blank, whose pixels are the weights (a linear classifier's templates) and the confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image
from torch import nn

from cnnvis.cli import main
from cnnvis.data.digits import DigitsDataset
from cnnvis.export.toolbox import NEGATIVE, POSITIVE, weights_picture


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.fixture(scope="module")
def linear_classifier():
    """A linear classifier on the 8x8 digits' pixels (about 95% held out after 30 epochs)."""
    train = DigitsDataset("train", seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(30):
        loss = F.cross_entropy(model(train.images), train.targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_linear_classifier_templates_are_its_reshaped_weights(linear_classifier):
    picture = weights_picture(linear_classifier, "1", input_shape=(1, 8, 8))
    w = linear_classifier[1].weight.detach().numpy().reshape(10, 8, 8)
    unit = 0.5 + 0.5 * w / np.abs(w).reshape(10, -1).max(axis=1)[:, None, None]
    expected = (colormaps["RdBu_r"](unit)[..., :3] * 255).round().astype(int)
    # 10 templates of 8x8 in a grid of 4 columns with 1-pixel gaps, each pixel 24x24, the grid
    # at (x 10, y 30): read the centre of every enlarged weight
    scale, got = 24, np.zeros_like(expected)
    for i in range(10):
        r, c = divmod(i, 4)
        ys = 30 + (1 + r * 9 + np.arange(8)) * scale + scale // 2
        xs = 10 + (1 + c * 9 + np.arange(8)) * scale + scale // 2
        got[i] = picture[ys[:, None], xs[None, :]]
    np.testing.assert_array_equal(got, expected)
    # a classifier that learned the digits has templates, not noise: the "0" template is
    # positive on the ring and negative in its hole
    assert w[0, 4, 1] > 0 > w[0, 4, 4] or w[0, 3, 1] > 0 > w[0, 3, 4]


def test_a_hidden_layer_gets_bars_of_the_output_weights_per_class():
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU(), nn.Linear(12, 10)).eval()
    with_bars = weights_picture(mlp, "1", input_shape=(1, 8, 8))
    output_only = weights_picture(mlp, "3", input_shape=(1, 8, 8))  # reads the hidden units
    bars = with_bars[with_bars.shape[0] - 22 * 10 :]
    for colour in (POSITIVE, NEGATIVE):
        assert (bars == np.array(colour)).all(axis=2).sum() > 50
    # a 10 x 12 matrix (240 pixels high), not 10 templates of the input (672)
    assert output_only.shape[0] == 30 + 10 * 24 + 10


def test_export_weights_and_confusion_of_the_demo(demo_session, tmp_path, capsys):
    out = tmp_path / "w.png"
    assert main(["export", "weights", str(demo_session), "--layer", "block1.conv",
                 "--out", str(out)]) == 0  # fmt: skip
    assert f"wrote {out}" in capsys.readouterr().out
    pic = _png(out)
    body = pic[30:-10]
    assert body.std() > 20 and (body[..., 0] > body[..., 2] + 60).any()  # red and blue weights
    assert (body[..., 2] > body[..., 0] + 60).any()

    out = tmp_path / "c.png"
    assert main(["export", "confusion", str(demo_session), "--out", str(out)]) == 0
    pic = _png(out)
    from cnnvis.interpret import confusion
    from cnnvis.session import load

    conf = confusion(load(demo_session))
    for (t, p), n in np.ndenumerate(conf.matrix):  # cell (t, p) at (40 + 56 p, 40 + 56 t)
        r, g, b = pic[40 + 56 * t + 2, 40 + 56 * p + 2]
        if n == 0:
            assert min(r, g, b) >= 245
        elif t == p:
            assert g > r + 40 and g > b + 40  # green diagonal
        else:
            assert r > g + 20 and r > b + 20  # red mistakes
        if n:  # the most confident example is drawn in the cell: dark and light pixels
            cell = pic[40 + 56 * t + 4 : 40 + 56 * t + 40, 40 + 56 * p + 8 : 40 + 56 * p + 46]
            assert cell.max() - cell.min() > 150


def test_export_errors_are_one_line(demo_session, tmp_path, capsys):
    out = str(tmp_path / "x.png")
    assert main(["export", "weights", str(demo_session), "--out", out]) == 2
    assert "needs --layer" in capsys.readouterr().err
    assert main(["export", "weights", str(demo_session), "--layer", "block1.relu",
                 "--out", out]) == 2  # fmt: skip
    assert "not a Conv2d or Linear" in capsys.readouterr().err
    assert main(["export", "weights", str(demo_session), "--layer", "nope", "--out", out]) == 2
    assert "no module 'nope'" in capsys.readouterr().err
