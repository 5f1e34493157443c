"""Gradient maps (T4): saliency, deconvnet, guided backprop, Grad-CAM, integrated gradients.

Every function takes ``(model, x, target)`` with ``x`` one image ``(C, H, W)`` or a batch
``(B, C, H, W)`` and ``target`` a class, ``(layer, channel)`` for a neuron or
``(layer, [channels])`` for a cluster (see :mod:`cnnvis.interpret._targets`); ``target=None``
explains each sample's predicted class. They return detached tensors on the model's device:
``(B, C, H, W)`` attributions (:func:`heatmap` folds them to ``(B, H, W)``), or ``(B, H, W)`` for
Grad-CAM. The model is put in eval mode for the call and its mode restored.

Saliency, Grad-CAM and integrated gradients come from Captum. Deconvnet and guided backprop are
written here: they replace the backward rule of every ReLU, and Captum's versions hook
``nn.ReLU`` modules only, so they miss the functional ``F.relu`` that some torchvision models
call. Here a :class:`~torch.overrides.TorchFunctionMode` catches every ReLU call during the
forward pass, whichever way it is made: ``nn.ReLU`` (in place or not, reused or not),
``F.relu``, ``F.relu_``, ``torch.relu`` and ``Tensor.relu``/``relu_``.

Not supported, because the rule would not reach them: a ReLU written as ``clamp(min=0)``,
``torch.maximum(x, 0)`` or ``F.threshold``; code that relies on the side effect of an in-place
ReLU without using its result (``F.relu_(x); return x``); other activations (GELU, SiLU,
ReLU6, LeakyReLU) keep their own gradient; and scripted or compiled models (TorchScript,
``torch.compile``), whose calls bypass the mode.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from cnnvis.interpret._targets import (
    Objective,
    Target,
    as_batch,
    check_class,
    evaluating,
    hooked,
    module_of,
    objective_function,
    parse_target,
    predicted_classes,
)

__all__ = [
    "saliency",
    "deconvnet",
    "guided_backprop",
    "grad_cam",
    "integrated_gradients",
    "heatmap",
    "randomization_check",
    "SanityCheck",
    "METHODS",
]


def _resolve(model: nn.Module, x: torch.Tensor, target: Target | None):
    """The objective, and the class per sample Captum should read (None for a layer target)."""
    if target is None:
        return Objective(None, (-1,)), predicted_classes(model, x)
    obj = parse_target(model, target)
    return obj, (check_class(model, x, obj.channels[0]) if obj.is_class else None)


def _attribute(model: nn.Module, x: torch.Tensor, target: Target | None, make, **kwargs):
    """Run a Captum method built by ``make(forward_func)`` on the target's objective."""
    x = as_batch(model, x).requires_grad_(True)  # Captum warns when it has to set this
    with evaluating(model):
        obj, classes = _resolve(model, x, target)
        if obj.is_class:
            return make(model).attribute(x, target=classes, **kwargs).detach()
        with objective_function(model, obj) as f:
            return make(f).attribute(x, **kwargs).detach()


def saliency(model: nn.Module, x: torch.Tensor, target: Target | None = None) -> torch.Tensor:
    """``|d target / d x|`` (Simonyan et al. 2014), through Captum's ``Saliency``."""
    from captum.attr import Saliency

    return _attribute(model, x, target, Saliency, abs=True)


def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: Target | None = None,
    *,
    baseline: float | torch.Tensor = 0.0,
    steps: int = 32,
) -> torch.Tensor:
    """Integrated gradients (Sundararajan et al. 2017) from ``baseline``, through Captum."""
    from captum.attr import IntegratedGradients

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return _attribute(model, x, target, IntegratedGradients, baselines=baseline, n_steps=steps)


def grad_cam(
    model: nn.Module, x: torch.Tensor, target: Target | None = None, *, layer: str | None = None
) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) at ``layer``, upsampled bilinearly to the input's size;
    shape ``(B, H, W)``, ReLU applied.

    The default layer is the last module with a 4-D output for a class, and the target's own
    layer for a neuron or cluster (there Grad-CAM is the ReLU of its channels' mean map). The
    layer must run before the target's.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    x = as_batch(model, x)
    if layer is None:
        own = parse_target(model, target).layer if target is not None else None
        layer = own if own is not None else last_spatial_layer(model, x)
    module = module_of(model, layer)
    try:
        cam = _attribute(
            model, x, target, lambda f: LayerGradCam(f, module), relu_attributions=True
        )
    except RuntimeError as exc:
        if "not have been used in the graph" not in str(exc):
            raise
        raise ValueError(f"the Grad-CAM layer {layer!r} does not lead to the target") from None
    if cam.dim() != 4:
        raise ValueError(f"Grad-CAM needs a layer with (B, C, H, W) output; {layer!r} is not one")
    return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), "bilinear")[:, 0].detach()


def last_spatial_layer(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the last module, in execution order, whose output is ``(B, C, H, W)``."""
    order: list[str] = []

    def note(name: str):
        return lambda _m, _i, out: (
            order.append(name) if torch.is_tensor(out) and out.dim() == 4 else None
        )

    with hooked([]) as handles, evaluating(model), torch.no_grad():
        for name, m in model.named_modules():
            if name:
                handles.append(m.register_forward_hook(note(name)))
        model(x[:1])
    if not order:
        raise ValueError("the model has no module with a (B, C, H, W) output for Grad-CAM")
    return order[-1]


class _RuleReLU(torch.autograd.Function):
    """ReLU forward; backward by the deconvnet or guided-backprop rule."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, guided: bool) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.guided = guided
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        g = grad.clamp(min=0)  # both rules pass positive signals only
        if ctx.guided:
            g = g * (x > 0)  # guided backprop also keeps the forward pass's mask
        return g, None


_RELUS = {F.relu, F.relu_, torch.relu, torch.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class _ReluRule(TorchFunctionMode):
    """Inside this mode every ReLU call becomes :class:`_RuleReLU` (out of place)."""

    def __init__(self, guided: bool) -> None:
        super().__init__()
        self.guided = guided
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _RELUS:
            self.calls += 1
            return _RuleReLU.apply(args[0], self.guided)
        return func(*args, **(kwargs or {}))


def _relu_rule_map(model: nn.Module, x: torch.Tensor, target: Target | None, guided: bool):
    x = as_batch(model, x).requires_grad_(True)
    with evaluating(model):
        obj, classes = _resolve(model, x, target)
        with objective_function(model, obj) as f, _ReluRule(guided) as mode:
            value = model(x).gather(1, _per_sample(classes, x)) if obj.is_class else f(x)
            if mode.calls == 0:
                raise ValueError("the model calls no ReLU: the deconvnet/guided rule has no effect")
        (grad,) = torch.autograd.grad(value.sum(), x)
    return grad.detach()


def _per_sample(classes, x: torch.Tensor) -> torch.Tensor:
    if isinstance(classes, int):
        return torch.full((x.shape[0], 1), classes, dtype=torch.long, device=x.device)
    return classes.reshape(-1, 1)


def guided_backprop(
    model: nn.Module, x: torch.Tensor, target: Target | None = None
) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015): at each ReLU the gradient passes where
    both it and the forward input are positive."""
    return _relu_rule_map(model, x, target, guided=True)


def deconvnet(model: nn.Module, x: torch.Tensor, target: Target | None = None) -> torch.Tensor:
    """Deconvnet (Zeiler & Fergus 2014): at each ReLU the gradient passes where it is positive,
    whatever the forward input was."""
    return _relu_rule_map(model, x, target, guided=False)


def heatmap(attribution: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` attributions folded to ``(B, H, W)``: the largest magnitude over channels
    (a ``(B, H, W)`` map, such as Grad-CAM's, is returned as is)."""
    if attribution.dim() == 3:
        return attribution
    if attribution.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) or (B, H, W), got {tuple(attribution.shape)}")
    return attribution.abs().amax(dim=1)


#: name -> map function, for the command line and the viewer
METHODS = {
    "saliency": saliency,
    "deconvnet": deconvnet,
    "guided_backprop": guided_backprop,
    "grad_cam": grad_cam,
    "integrated_gradients": integrated_gradients,
}


@dataclass
class SanityCheck:
    """The model-randomisation test of Adebayo et al. (2018) for one method.

    ``spearman[b]`` is the rank correlation between sample ``b``'s heat map on the trained
    model and on a copy whose ``randomized`` modules got fresh random weights. A method that
    explains the model gives a low correlation; one near 1 ignores the weights it was shown.
    """

    method: str
    randomized: list[str]
    spearman: np.ndarray
    original: torch.Tensor
    randomized_map: torch.Tensor


def randomization_check(
    model: nn.Module,
    x: torch.Tensor,
    method: str,
    target: Target | None = None,
    *,
    top: int = 2,
    seed: int = 0,
) -> SanityCheck:
    """Randomise the weights of the ``top`` last parameterised modules of a deep copy of
    ``model`` (cascading from the output, or from a neuron target's layer down) and compare
    ``method``'s heat maps, by rank."""
    from scipy.stats import spearmanr

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    fn = METHODS[method]
    x = as_batch(model, x)
    if target is None:  # the trained model's prediction, on both models
        target_for = predicted_classes_eval(model, x)
        run = functools.partial(_per_class_maps, fn, x=x, classes=target_for)
    else:
        run = functools.partial(_fixed_target_map, fn, x=x, target=target)
    original = run(model)
    below = parse_target(model, target).layer if target is not None else None
    shuffled, names = _randomized_copy(model, top, seed, below)
    after = run(shuffled)
    rho = [
        spearmanr(a.flatten().cpu().numpy(), b.flatten().cpu().numpy()).statistic
        for a, b in zip(original, after, strict=True)
    ]
    return SanityCheck(method, names, np.asarray(rho, dtype=np.float64), original, after)


def predicted_classes_eval(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with evaluating(model):
        return predicted_classes(model, x)


def _fixed_target_map(fn, model, *, x, target):
    return heatmap(fn(model, x, target))


def _per_class_maps(fn, model, *, x, classes):
    return torch.cat([heatmap(fn(model, x[i : i + 1], int(c))) for i, c in enumerate(classes)])


def _randomized_copy(
    model: nn.Module, top: int, seed: int, below: str | None
) -> tuple[nn.Module, list[str]]:
    """A deep copy with the ``top`` last modules that own parameters re-drawn; for a neuron's
    map, the last ones defined before its layer ``below`` (later ones cannot change it)."""
    names = [n for n, _ in model.named_modules()]
    end = names.index(below) if below is not None else len(names)
    owners = [
        (n, m)
        for n, m in list(model.named_modules())[:end]
        if n and any(True for _ in m.parameters(recurse=False)) and hasattr(m, "reset_parameters")
    ]
    if not 1 <= top <= len(owners):
        raise ValueError(f"top must be between 1 and {len(owners)}, got {top}")
    clone = copy.deepcopy(model)
    modules = dict(clone.named_modules())
    names = [n for n, _ in owners[-top:]]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for n in reversed(names):
            modules[n].reset_parameters()
    return clone, names
