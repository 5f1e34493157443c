"""Occlusion against a brute-force loop over the patch positions."""

from __future__ import annotations

import pytest
import torch
from interpret_helpers import hook_count

from cnnvis.interpret import occlusion, occlusion_grid, spread


def brute_force(model, image, read, window, stride, fill):
    h, w = image.shape[-2:]
    out = []
    for r in range(0, h - window + 1, stride):
        row = []
        for c in range(0, w - window + 1, stride):
            z = image.clone()
            z[:, r : r + window, c : c + window] = fill
            with torch.no_grad():
                row.append(float(read(z[None])))
        out.append(row)
    return torch.tensor(out)


@pytest.mark.parametrize(("window", "stride", "batch"), [(3, 1, 7), (4, 2, 64), (2, 3, 1)])
def test_occlusion_equals_a_brute_force_loop(trained_demo, digits, window, stride, batch):
    x = digits[2][:3]
    got = occlusion(trained_demo, x, 4, window=window, stride=stride, fill=0.5, batch_size=batch)
    for b in range(3):
        expected = brute_force(
            trained_demo,
            x[b],
            lambda z: torch.softmax(trained_demo(z), 1)[0, 4],
            window,
            stride,
            0.5,
        )
        assert got[b].shape == expected.shape
        assert torch.allclose(got[b], expected, atol=1e-5)


def test_occlusion_of_a_neuron_and_of_the_predicted_class(trained_demo, digits):
    x = digits[2][:2]
    acts = {}
    handle = trained_demo.block3.relu.register_forward_hook(lambda m, i, o: acts.update(a=o))
    try:
        read = lambda z: (trained_demo(z), acts["a"][0, [2, 9]].mean())[1]  # noqa: E731
        expected = brute_force(trained_demo, x[1], read, 4, 2, 0.0)
    finally:
        handle.remove()
    got = occlusion(trained_demo, x, ("block3.relu", [2, 9]), window=4, stride=2)
    assert torch.allclose(got[1], expected, atol=1e-5)
    assert hook_count(trained_demo) == 0
    predicted = trained_demo(x).argmax(1)
    by_class = occlusion(trained_demo, x[1], int(predicted[1]), window=4, stride=2)
    assert torch.equal(occlusion(trained_demo, x, None, window=4, stride=2)[1], by_class[0])


def test_occlusion_on_resnet18_with_a_fill_per_channel(resnet):
    x = torch.rand(2, 3, 48, 48)
    out = occlusion(resnet, x, 0, window=16, stride=8, fill=torch.tensor([0.4, 0.5, 0.6]))
    assert out.shape == (2, 5, 5) and ((out >= 0) & (out <= 1)).all()
    assert hook_count(resnet) == 0


def test_occlusion_rejects_bad_arguments(trained_demo):
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(ValueError, match="does not fit"):
        occlusion(trained_demo, x, 1, window=9)
    with pytest.raises(ValueError, match="stride"):
        occlusion(trained_demo, x, 1, stride=0)
    with pytest.raises(ValueError, match="fill"):
        occlusion(trained_demo, x, 1, fill=torch.zeros(3))
    with pytest.raises(ValueError, match="batch_size"):
        occlusion(trained_demo, x, 1, batch_size=0)
    with pytest.raises(ValueError, match="out of range"):
        occlusion(trained_demo, x, ("block1.relu", 16))
    assert hook_count(trained_demo) == 0
    assert occlusion_grid((8, 8), 3, 2) == ([0, 2, 4], [0, 2, 4])


def test_spread_averages_the_patches_over_each_pixel():
    grid = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    pixels = spread(grid, (3, 3), window=2, stride=1)
    assert pixels[0, 0, 0] == 1 and pixels[0, 2, 2] == 4 and pixels[0, 1, 1] == 2.5
    assert pixels[0, 0, 1] == 1.5
    with pytest.raises(ValueError, match="positions"):
        spread(grid, (4, 4), window=2, stride=1)
