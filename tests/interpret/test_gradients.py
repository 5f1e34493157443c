"""Gradient maps against autograd and a hand-written ReLU rule; hooks; the randomisation test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from interpret_helpers import hook_count
from torch import nn

from cnnvis.interpret import (
    METHODS,
    deconvnet,
    grad_cam,
    guided_backprop,
    heatmap,
    randomization_check,
    saliency,
)


def test_saliency_equals_autograd_for_a_class_and_a_neuron(trained_demo, digits):
    x = digits[2][:6].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(trained_demo(x)[:, 7].sum(), x)
    assert torch.allclose(saliency(trained_demo, x.detach(), 7), grad.abs(), atol=1e-6)

    acts = {}
    handle = trained_demo.block2.relu.register_forward_hook(lambda m, i, o: acts.update(a=o))
    trained_demo(x)
    handle.remove()
    (grad,) = torch.autograd.grad(acts["a"][:, [3, 5]].mean(dim=(1, 2, 3)).sum(), x)
    got = saliency(trained_demo, x.detach(), ("block2.relu", [3, 5]))
    assert torch.allclose(got, grad.abs(), atol=1e-6)


def test_saliency_of_the_predicted_class_by_default(trained_demo, digits):
    x = digits[2][:4]
    predicted = trained_demo(x).argmax(1)
    expected = torch.cat([saliency(trained_demo, x[i], int(c)) for i, c in enumerate(predicted)])
    assert torch.allclose(saliency(trained_demo, x), expected, atol=1e-6)


class TwoRelus(nn.Module):
    """Linear layers with an in-place ``nn.ReLU`` and a functional ``F.relu`` between them."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(6, 5), nn.Linear(5, 4), nn.Linear(4, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(self.relu(self.fc1(x.flatten(1))))))


@pytest.mark.parametrize("guided", [True, False])
def test_guided_backprop_and_deconvnet_follow_the_relu_rule_by_hand(guided):
    torch.manual_seed(1)
    net = TwoRelus().eval()
    x = torch.randn(5, 1, 2, 3)
    w1, w2, w3 = net.fc1.weight, net.fc2.weight, net.fc3.weight
    h1 = x.flatten(1) @ w1.T + net.fc1.bias
    h2 = h1.clamp(min=0) @ w2.T + net.fc2.bias
    c = 2
    # backward by hand: at each ReLU keep the positive part of the signal, and for guided
    # backprop also only where the forward input was positive
    g2 = w3[c].clamp(min=0).expand(5, -1) * ((h2 > 0) if guided else 1)
    g1 = (g2 @ w2).clamp(min=0) * ((h1 > 0) if guided else 1)
    expected = (g1 @ w1).reshape(5, 1, 2, 3)
    got = (guided_backprop if guided else deconvnet)(net, x, c)
    assert torch.allclose(got, expected.detach(), atol=1e-6)
    # the rule is gone afterwards: plain gradients are plain again
    xr = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(net(xr)[:, c].sum(), xr)
    assert torch.allclose(saliency(net, x, c), plain.abs(), atol=1e-6)


def test_grad_cam_of_a_neuron_at_its_own_layer_is_its_relu_map(trained_demo, digits):
    x = digits[2][:3]
    acts = {}
    handle = trained_demo.block2.relu.register_forward_hook(lambda m, i, o: acts.update(a=o))
    with torch.no_grad():
        trained_demo(x)
    handle.remove()
    # d mean(A_c) / dA = 1/(h w) on channel c: Grad-CAM weighs A_c alone by that
    a = acts["a"][:, 4:5]
    expected = F.interpolate(a.clamp(min=0) / a[0, 0].numel(), size=(8, 8), mode="bilinear")
    assert torch.allclose(grad_cam(trained_demo, x, ("block2.relu", 4)), expected[:, 0], atol=1e-6)


def test_every_method_on_resnet18_leaves_no_hook_and_keeps_the_mode(resnet):
    x = torch.rand(2, 3, 64, 64)
    resnet.train()
    try:
        for fn in METHODS.values():
            for target in (3, ("layer2.0.relu", 5), ("layer3", [0, 1, 2])):
                out = fn(resnet, x, target)
                assert out.shape[0] == 2 and out.shape[-2:] == (64, 64)
                assert torch.isfinite(out).all() and heatmap(out).shape == (2, 64, 64)
        assert hook_count(resnet) == 0 and resnet.training
    finally:
        resnet.eval()


def test_hooks_are_removed_on_error(resnet):
    x = torch.rand(1, 3, 32, 32)
    for fn in METHODS.values():
        with pytest.raises(ValueError, match="out of range"):
            fn(resnet, x, ("layer1.0.relu", 999))
        assert hook_count(resnet) == 0
    with pytest.raises(ValueError, match="does not lead to the target"):
        grad_cam(resnet, x, ("layer1", 0), layer="layer4")
    assert hook_count(resnet) == 0
    # the ReLU rule's mode is gone: F.relu has its ordinary gradient again
    t = torch.tensor([-1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad(F.relu(t).sum() * -1, t)
    assert g.tolist() == [0.0, -1.0]


@pytest.mark.parametrize(
    ("target", "error"),
    [
        (("nope", 1), KeyError),
        (("block1.relu", []), ValueError),
        ((1, 2), TypeError),
        (True, TypeError),
        (-3, ValueError),
        (10, ValueError),
    ],
)
def test_bad_targets_are_clear_errors(trained_demo, target, error):
    with pytest.raises(error):
        saliency(trained_demo, torch.rand(1, 1, 8, 8), target)
    assert hook_count(trained_demo) == 0


def test_bad_inputs_are_clear_errors(trained_demo):
    with pytest.raises(ValueError, match="shape"):
        saliency(trained_demo, torch.rand(8, 8), 1)
    with pytest.raises(TypeError, match="floating"):
        saliency(trained_demo, torch.ones(1, 1, 8, 8, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="NaN"):
        saliency(trained_demo, torch.full((1, 1, 8, 8), float("nan")), 1)


def test_guided_backprop_fails_the_randomisation_test_and_saliency_passes(trained_demo, digits):
    """Adebayo et al. (2018): randomising the top layers should change an honest map. Guided
    backprop's map barely changes (it mostly reconstructs the input); saliency's does."""
    x = digits[2][:16]
    guided = randomization_check(trained_demo, x, "guided_backprop", top=2)
    plain = randomization_check(trained_demo, x, "saliency", top=2)
    assert guided.randomized == ["head.fc1", "head.fc2"]
    assert guided.spearman.shape == (16,)
    assert guided.spearman.mean() > 0.7
    assert plain.spearman.mean() < guided.spearman.mean() - 0.3
    assert hook_count(trained_demo) == 0
    with pytest.raises(ValueError, match="top"):
        randomization_check(trained_demo, x, "saliency", top=99)


def test_guided_backprop_reaches_the_functional_relus_that_captum_misses():
    """torchvision's GoogLeNet calls ``F.relu`` only (no ``nn.ReLU`` module): Captum's
    GuidedBackprop finds nothing to hook and returns the plain gradient; ours applies the rule."""
    import torchvision
    from captum.attr import GuidedBackprop

    torch.manual_seed(0)
    net = torchvision.models.googlenet(num_classes=10, aux_logits=False, init_weights=True).eval()
    assert not any(isinstance(m, nn.ReLU) for m in net.modules())
    x = torch.rand(1, 3, 64, 64)
    xr = x.clone().requires_grad_(True)
    (plain,) = torch.autograd.grad(net(xr)[:, 1].sum(), xr)
    captum = GuidedBackprop(net).attribute(x.clone().requires_grad_(True), target=1)
    ours = guided_backprop(net, x, 1)

    def same(a, b):
        return torch.allclose(a / a.abs().max(), b / b.abs().max(), atol=1e-4)

    assert same(captum, plain)
    assert not same(ours, plain)
    assert hook_count(net) == 0
