"""Feature inversion, Gram matrices and style transfer."""

from __future__ import annotations

import pytest
import torch
from interpret_helpers import hook_count

from cnnvis.interpret import gram, invert, style_transfer, total_variation


@pytest.mark.parametrize("layer", ["block1.relu", "block2.relu"])
def test_inversion_brings_the_code_loss_below_a_fifth_of_its_start(trained_demo, digits, layer):
    x = digits[2][:2]
    out = invert(trained_demo, x, layer, steps=150)
    assert out.image.shape == x.shape and out.image.min() >= 0 and out.image.max() <= 1
    assert out.code_loss[-1] < 0.2 * out.code_loss[0]
    assert hook_count(trained_demo) == 0


def test_gram_matrices_equal_their_definition(resnet):
    x = torch.rand(2, 3, 32, 32)
    acts = {}
    handle = resnet.layer1.register_forward_hook(lambda m, i, o: acts.update(a=o.detach()))
    with torch.no_grad():
        resnet(x)
    handle.remove()
    a = acts["a"]
    expected = torch.einsum("bip,bjp->bij", a.flatten(2), a.flatten(2)) / a[0, 0].numel()
    got = gram(resnet, x, ["layer1", "layer2"])
    assert torch.allclose(got["layer1"], expected, rtol=1e-4, atol=1e-5)
    assert got["layer2"].shape == (2, 128, 128) and hook_count(resnet) == 0


def test_style_transfer_lowers_its_loss_on_resnet18_and_the_demo(resnet, trained_demo, digits):
    torch.manual_seed(0)
    content, style = torch.rand(3, 32, 32), torch.rand(3, 48, 48)
    image, losses = style_transfer(resnet, content, style, content_layer="layer2",
                                   style_layers=["relu", "layer1"], steps=6)  # fmt: skip
    assert image.shape == (1, 3, 32, 32) and losses[-1] < losses[0]
    image, losses = style_transfer(trained_demo, digits[2][0], digits[2][1],
                                   content_layer="block2.relu", style_layers=["block1.relu"],
                                   steps=30)  # fmt: skip
    assert losses[-1] < losses[0] and hook_count(trained_demo) == 0 and hook_count(resnet) == 0


def test_total_variation_of_flat_and_striped_images():
    assert total_variation(torch.ones(1, 1, 5, 5)).item() == 0
    stripes = (torch.arange(5) % 2).float().expand(5, 5)[None, None]
    assert total_variation(stripes).item() == pytest.approx(1.0)
