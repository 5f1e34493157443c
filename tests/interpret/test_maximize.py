"""Activation maximisation and DeepDream on the trained demo CNN."""

from __future__ import annotations

import pytest
import torch
from interpret_helpers import hook_count

from cnnvis.interpret import deepdream, high_frequency_energy, maximize
from cnnvis.interpret._targets import objective_function, parse_target


def _value(model, target, x):
    with torch.no_grad(), objective_function(model, parse_target(model, target)) as f:
        return f(x)


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_maximize_drives_a_neuron_beyond_the_typical_digit(trained_demo, digits, param):
    target = ("head.relu", [1, 2])
    out = maximize(trained_demo, target, shape=(1, 8, 8), steps=96, param=param)
    assert out.image.shape == (1, 1, 8, 8)
    assert out.image.min() >= 0 and out.image.max() <= 1
    assert len(out.history) == 96
    assert out.value == pytest.approx(float(_value(trained_demo, target, out.image)), rel=1e-4)
    assert out.value > out.history[0] and out.value > float(
        _value(trained_demo, target, digits[0]).mean()
    )
    again = maximize(trained_demo, target, shape=(1, 8, 8), steps=96, param=param)
    assert torch.equal(again.image, out.image)  # the seed fixes the start and the transforms
    assert hook_count(trained_demo) == 0


def test_maximize_a_class_on_resnet18_in_colour(resnet):
    out = maximize(resnet, 4, shape=(3, 32, 32), steps=4)
    assert out.image.shape == (1, 3, 32, 32) and hook_count(resnet) == 0


def test_maximize_rejects_bad_arguments(trained_demo):
    with pytest.raises(ValueError, match="param"):
        maximize(trained_demo, 1, shape=(1, 8, 8), param="wavelet")
    with pytest.raises(ValueError, match="steps"):
        maximize(trained_demo, 1, shape=(1, 8, 8), steps=0)
    with pytest.raises(KeyError):
        maximize(trained_demo, ("nope", 1), shape=(1, 8, 8))


def test_high_frequency_energy_of_a_checkerboard_and_a_ramp():
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    assert high_frequency_energy(checker[None, None].float()) == pytest.approx(1.0)
    ramp = torch.linspace(0, 1, 8)[None, :].expand(8, 8)
    assert high_frequency_energy(ramp[None, None]) < 0.2
    assert high_frequency_energy(torch.ones(1, 1, 8, 8)) == 0.0


def test_deepdream_amplifies_its_layer_at_every_octave(trained_demo, digits):
    x = digits[2][:2]
    dreamed = deepdream(trained_demo, x, "block2.relu", octaves=2, steps=8)
    assert dreamed.shape == x.shape and dreamed.min() >= 0 and dreamed.max() <= 1
    energy = []
    handle = trained_demo.block2.relu.register_forward_hook(
        lambda m, i, o: energy.append(o.pow(2).mean().item())  # returns None: output unchanged
    )
    with torch.no_grad():
        trained_demo(x)
        trained_demo(dreamed)
    handle.remove()
    assert energy[1] > 1.2 * energy[0]
    neuron = deepdream(trained_demo, x, ("block3.relu", 5), octaves=1, steps=4)
    assert (
        _value(trained_demo, ("block3.relu", 5), neuron)
        >= _value(trained_demo, ("block3.relu", 5), x)
    ).all()
    assert hook_count(trained_demo) == 0
