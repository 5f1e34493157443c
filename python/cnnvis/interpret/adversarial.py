"""Adversarial examples (T7): FGSM and PGD through Captum, and DeepFool, which Captum lacks.

:func:`adversarial` reports, per sample, the perturbation, the class before and after with its
confidence, and how far the sample's representation moved at each layer (the distance between
the layer's output on the clean and on the perturbed input, relative to the clean one's norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from cnnvis.interpret._targets import as_batch, captured, evaluating
from cnnvis.interpret.progress import Progress, StopFlag, step

__all__ = ["Adversarial", "adversarial", "deepfool", "ATTACKS"]

ATTACKS = ("deepfool", "fgsm", "pgd")


@dataclass
class Adversarial:
    """The outcome of an attack on a batch; arrays have the batch first.

    ``perturbation = x_adv - x``; ``l2`` and ``linf`` its norms per sample; ``flipped`` whether
    the predicted class changed. ``layer_distance[name][b]`` is
    ``||a(x_adv) - a(x)|| / ||a(x)||`` for the output ``a`` of module ``name``.
    """

    method: str
    x: torch.Tensor
    x_adv: torch.Tensor
    perturbation: torch.Tensor
    class_before: np.ndarray
    confidence_before: np.ndarray
    class_after: np.ndarray
    confidence_after: np.ndarray
    l2: np.ndarray
    linf: np.ndarray
    flipped: np.ndarray
    layer_distance: dict[str, np.ndarray]

    @property
    def flip_rate(self) -> float:
        return float(self.flipped.mean()) if self.flipped.size else float("nan")


def _clamp(x: torch.Tensor, bounds: tuple[float, float] | None) -> torch.Tensor:
    return x if bounds is None else x.clamp(*bounds)


def deepfool(
    model: nn.Module,
    x: torch.Tensor,
    *,
    overshoot: float = 0.02,
    max_iter: int = 50,
    candidates: int = 10,
    bounds: tuple[float, float] | None = None,
    refine: int = 10,
    progress: Progress = None,
    should_stop: StopFlag = None,
) -> torch.Tensor:
    """DeepFool (Moosavi-Dezfooli et al. 2016): the smallest L2 step across the nearest linearised
    decision boundary, repeated until the predicted class changes (or ``max_iter``).

    Only the ``candidates`` classes with the highest initial scores are considered, as in the
    paper's ImageNet experiments. Samples are independent, so the batch runs together (the
    model is in eval mode: batch norm does not mix samples). The summed step is then shortened
    by ``refine`` bisections to the smallest multiple that still flips (0: no refinement).
    ``progress(done, max_iter)`` and ``should_stop`` as for :func:`~cnnvis.interpret.maximize`.
    Returns the perturbed batch.
    """
    x = as_batch(model, x)
    with evaluating(model):
        with torch.no_grad():
            logits = model(x)
        k = min(int(candidates), logits.shape[1])
        if k < 2:
            raise ValueError("DeepFool needs at least two classes")
        ranked = logits.argsort(dim=1, descending=True)[:, :k]  # column 0 is the prediction
        r_total = torch.zeros_like(x)
        rows = torch.arange(x.shape[0], device=x.device)
        for i in range(max_iter):
            step(i, max_iter, progress, should_stop, "deepfool")
            xi = _clamp(x + (1 + overshoot) * r_total, bounds).requires_grad_(True)
            scores = model(xi).gather(1, ranked)
            active = scores.argmax(1) == 0  # still classified as before
            if not active.any():
                break
            grads = torch.stack(
                [
                    torch.autograd.grad(scores[:, j].sum(), xi, retain_graph=j < k - 1)[0]
                    for j in range(k)
                ],
                dim=1,
            )
            w = (grads[:, 1:] - grads[:, :1]).flatten(2)  # (B, k-1, D)
            f = (scores[:, 1:] - scores[:, :1]).detach()  # (B, k-1), negative while not flipped
            norm = w.norm(dim=2) + 1e-8
            nearest = (f.abs() / norm).argmin(dim=1)
            size = (f.abs()[rows, nearest] + 1e-4) / norm[rows, nearest] ** 2
            r = (size[:, None] * w[rows, nearest]).reshape(x.shape)
            r_total = r_total + r * active.reshape(-1, *[1] * (x.dim() - 1))
        step(max_iter, max_iter, progress, None, "deepfool")
        scale = _shortest_flip(model, x, r_total, ranked[:, 0], 1 + overshoot, bounds, refine)
    return _clamp(x + scale * r_total, bounds).detach()


def _shortest_flip(model, x, r, original, top: float, bounds, steps: int) -> torch.Tensor:
    """Per sample, the smallest multiple of ``r`` in ``[0, top]`` that still flips the class,
    by ``steps`` bisections (DeepFool's linear steps can overshoot the boundary); ``top`` where
    even ``top`` does not flip. Shape ``(B, 1, ..., 1)``."""
    shape = (-1, *[1] * (x.dim() - 1))
    lo = torch.zeros(x.shape[0], device=x.device)
    hi = torch.full_like(lo, top)
    with torch.no_grad():
        flips = model(_clamp(x + hi.reshape(shape) * r, bounds)).argmax(1) != original
        for _ in range(steps):
            mid = (lo + hi) / 2
            now = model(_clamp(x + mid.reshape(shape) * r, bounds)).argmax(1) != original
            hi = torch.where(flips & now, mid, hi)
            lo = torch.where(flips & ~now, mid, lo)
    return hi.reshape(shape)


def _captum_attack(model, x, method, labels, epsilon, steps, step_size, bounds, progress, stop):
    from captum.robust import FGSM, PGD

    total, calls = (1 if method == "fgsm" else steps), [0]

    def forward(z: torch.Tensor) -> torch.Tensor:  # Captum runs it once per step
        step(min(calls[0], total), total, progress, stop, method)
        calls[0] += 1
        return model(z)

    lo, hi = bounds if bounds is not None else (float("-inf"), float("inf"))
    x = x.detach().requires_grad_(True)  # Captum warns when it has to set this
    if method == "fgsm":
        out = FGSM(forward, lower_bound=lo, upper_bound=hi).perturb(x, epsilon, labels)
    else:
        size = step_size if step_size is not None else 2.5 * epsilon / steps
        out = PGD(forward, lower_bound=lo, upper_bound=hi).perturb(
            x, radius=epsilon, step_size=size, step_num=steps, target=labels
        )
    step(total, total, progress, None, method)
    return out.detach()


def adversarial(
    model: nn.Module,
    x: torch.Tensor,
    method: str = "deepfool",
    *,
    epsilon: float = 0.05,
    steps: int = 10,
    step_size: float | None = None,
    bounds: tuple[float, float] | None = None,
    layers: Sequence[str] | None = None,
    progress: Progress = None,
    should_stop: StopFlag = None,
    **deepfool_options,
) -> Adversarial:
    """Attack each sample of ``x`` away from its predicted class and report what changed.

    ``method``: ``"deepfool"`` (options of :func:`deepfool`), ``"fgsm"`` (one signed-gradient
    step of size ``epsilon``) or ``"pgd"`` (``steps`` steps of ``step_size``, default
    ``2.5 * epsilon / steps``, projected on the L-infinity ball of radius ``epsilon``).
    ``bounds`` clamp the input's values (``(0, 1)`` for the digits). ``layers``: modules whose
    representation distance is reported (default: every ``Conv2d`` and ``Linear``).
    ``progress(done, total)`` counts the attack's steps; ``should_stop`` (a callable or a
    :class:`threading.Event`) ends it with :class:`~cnnvis.interpret.Cancelled`.
    """
    if method not in ATTACKS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(ATTACKS)}")
    if method != "deepfool" and not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    x = as_batch(model, x)
    with evaluating(model):
        with torch.no_grad():
            before = torch.softmax(model(x), dim=1)
        labels = before.argmax(1)
        if method == "deepfool":
            x_adv = deepfool(model, x, bounds=bounds, progress=progress,
                             should_stop=should_stop, **deepfool_options)  # fmt: skip
        else:
            x_adv = _captum_attack(model, x, method, labels, epsilon, steps, step_size, bounds,
                                   progress, should_stop)  # fmt: skip
        names = list(layers) if layers is not None else _default_layers(model)
        distance, after = _layer_distances(model, x, x_adv, names)
    delta = x_adv - x

    def numpy(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy()

    cls_after = after.argmax(1)
    return Adversarial(
        method, x, x_adv, delta,
        numpy(labels), numpy(before.max(1).values), numpy(cls_after), numpy(after.max(1).values),
        numpy(delta.flatten(1).norm(dim=1)), numpy(delta.flatten(1).abs().amax(dim=1)),
        numpy(cls_after != labels), distance,
    )  # fmt: skip


def _default_layers(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _layer_distances(model, x, x_adv, names):
    """Per layer, the relative distance of the representations; and the softmax on ``x_adv``."""
    with torch.no_grad(), captured(model, names) as acts:
        model(x)
        clean = {n: a.flatten(1) for n, a in acts.items()}
        after = torch.softmax(model(x_adv), dim=1)
        distance = {
            n: ((acts[n].flatten(1) - clean[n]).norm(dim=1) / (clean[n].norm(dim=1) + 1e-12))
            .cpu()
            .numpy()
            for n in names
        }
    return distance, after
