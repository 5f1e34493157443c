"""The classic toolbox of network visualisation (T1-T8), on any ``nn.Module``."""

from cnnvis.interpret.adversarial import ATTACKS, Adversarial, adversarial, deepfool
from cnnvis.interpret.confusion import Confusion, confusion
from cnnvis.interpret.gradients import (
    METHODS,
    SanityCheck,
    deconvnet,
    grad_cam,
    guided_backprop,
    heatmap,
    integrated_gradients,
    randomization_check,
    saliency,
)
from cnnvis.interpret.inversion import Inversion, gram, invert, style_transfer, total_variation
from cnnvis.interpret.maximize import Maximized, deepdream, high_frequency_energy, maximize
from cnnvis.interpret.occlusion import occlusion, occlusion_grid, spread
from cnnvis.interpret.weights import WeightImages, tile, to_unit, weight_images

__all__ = [
    "METHODS",
    "SanityCheck",
    "deconvnet",
    "grad_cam",
    "guided_backprop",
    "heatmap",
    "integrated_gradients",
    "randomization_check",
    "saliency",
    "occlusion",
    "occlusion_grid",
    "spread",
    "Confusion",
    "confusion",
    "WeightImages",
    "weight_images",
    "tile",
    "to_unit",
    "ATTACKS",
    "Adversarial",
    "adversarial",
    "deepfool",
    "Maximized",
    "maximize",
    "deepdream",
    "high_frequency_energy",
    "Inversion",
    "invert",
    "gram",
    "style_transfer",
    "total_variation",
]
