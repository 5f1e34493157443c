"""Adversarial examples on the trained demo CNN: DeepFool flips almost every digit, minimally."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from interpret_helpers import hook_count

from cnnvis.interpret import adversarial


def test_deepfool_flips_at_least_95_percent_with_small_steps(trained_demo, digits):
    x = digits[2][:100]
    out = adversarial(trained_demo, x, "deepfool", bounds=(0.0, 1.0))
    assert out.flip_rate >= 0.95
    with torch.no_grad():
        assert np.array_equal(trained_demo(out.x_adv).argmax(1).numpy(), out.class_after)
        assert np.array_equal(trained_demo(x).argmax(1).numpy(), out.class_before)
    assert torch.allclose(out.perturbation, out.x_adv - x)
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    # the digits' pixels span [0, 1] over 64 pixels: a flip needs far less than a new digit
    assert np.median(out.l2) < 1.5
    assert list(out.layer_distance) == ["block1.conv", "block2.conv", "block3.conv",
                                        "head.fc1", "head.fc2"]  # fmt: skip
    assert all(d.shape == (100,) and (d >= 0).all() for d in out.layer_distance.values())
    assert hook_count(trained_demo) == 0


@pytest.mark.parametrize("method", ["fgsm", "pgd"])
def test_fgsm_and_pgd_stay_in_their_ball(trained_demo, digits, method):
    x = digits[2][:20]
    out = adversarial(
        trained_demo, x, method, epsilon=0.1, bounds=(0.0, 1.0), layers=["block2.relu"]
    )
    assert (out.linf <= 0.1 + 1e-6).all()
    assert out.x_adv.min() >= 0 and out.x_adv.max() <= 1
    assert list(out.layer_distance) == ["block2.relu"]
    confident = adversarial(trained_demo, x, method, epsilon=0.01, bounds=(0.0, 1.0))
    assert out.flip_rate >= confident.flip_rate  # a larger ball flips at least as many


def test_pgd_flips_more_than_fgsm_at_the_same_epsilon(trained_demo, digits):
    x = digits[2][:60]
    fgsm = adversarial(trained_demo, x, "fgsm", epsilon=0.08, bounds=(0.0, 1.0))
    pgd = adversarial(trained_demo, x, "pgd", epsilon=0.08, steps=20, bounds=(0.0, 1.0))
    assert pgd.flip_rate >= fgsm.flip_rate


def test_adversarial_rejects_bad_arguments(trained_demo):
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="unknown method"):
        adversarial(trained_demo, x, "cw")
    with pytest.raises(ValueError, match="epsilon"):
        adversarial(trained_demo, x, "fgsm", epsilon=0)
    with pytest.raises(KeyError, match="no module"):
        adversarial(trained_demo, x, "fgsm", layers=["nope"])
    assert hook_count(trained_demo) == 0


def test_deepfool_steps_no_further_than_needed(trained_demo, digits):
    """95% of DeepFool's perturbation no longer flips: it stops at the boundary, not beyond."""
    x = digits[2][100:140]
    out = adversarial(trained_demo, x, "deepfool", bounds=(0.0, 1.0), layers=[])
    with torch.no_grad():
        short = trained_demo((x + 0.95 * out.perturbation).clamp(0, 1)).argmax(1).numpy()
    kept = (short == out.class_before)[out.flipped]
    assert kept.mean() >= 0.9
