"""The classic toolbox of network visualisation (T1-T8), on any ``nn.Module``.

Every function takes the model and plain tensors, uses the model's device, puts the model in eval
mode for the call (its mode is restored) and returns batch-first tensors or arrays; every hook it
registers is removed however the call ends. Targets: a class index, ``(layer, channel)`` for a
neuron of the overview, or ``(layer, [channels])`` for a cluster (their mean).

=========================  ==================================================================
T1 weights as images       :func:`weight_images`, :func:`to_unit`, :func:`tile`
T2 confusion               :func:`confusion` (cell examples, most confident mistakes)
T3 occlusion               :func:`occlusion`, :func:`spread`
T4 gradient maps           :func:`saliency`, :func:`deconvnet`, :func:`guided_backprop`,
                           :func:`grad_cam`, :func:`integrated_gradients`, :func:`heatmap`;
                           :func:`randomization_check` (Adebayo et al.'s sanity check)
T5 maximisation            :func:`maximize`, :func:`deepdream`, :func:`high_frequency_energy`
T6 inversion               :func:`invert`
T7 adversarial             :func:`adversarial`, :func:`deepfool`
T8 style                   :func:`gram`, :func:`style_transfer`
long loops                 ``progress(done, total)``, ``should_stop``; :class:`Cancelled`
=========================  ==================================================================

:mod:`cnnvis.interpret.picture` turns results into RGB arrays (used by ``python -m cnnvis
explain`` and meant for the viewer's inspector tabs).
"""

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
from cnnvis.interpret.progress import Cancelled
from cnnvis.interpret.weights import WeightImages, tile, to_unit, weight_images

__all__ = [
    "Cancelled",
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
