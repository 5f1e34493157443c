"""Feature inversion (T6) and style (T8): images rebuilt from what layers see.

* :func:`invert` (Mahendran & Vedaldi 2015): the image whose code at a layer matches a given
  image's, under an alpha-norm and a total-variation prior.
* :func:`gram` (Gatys et al. 2016): the channel correlations of layers, the "style".
* :func:`style_transfer`: an image with one image's content and another's style.

Layers are dotted module names; a module called more than once is read at its last call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cnnvis.interpret._targets import as_batch, device_of, evaluating, hooked, module_of
from cnnvis.interpret.progress import Progress, StopFlag, step

__all__ = ["Inversion", "invert", "gram", "style_transfer", "total_variation"]


@contextlib.contextmanager
def _codes(model: nn.Module, layers: Sequence[str]) -> Iterator:
    """``f(x) -> {layer: output}`` for the named modules (the model runs to the end)."""
    out: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(_m, _i, output):
            out[name] = output.clone()  # an in-place ReLU after the layer would change it

        return hook

    def f(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out.clear()
        model(x)
        return dict(out)

    with hooked([module_of(model, n).register_forward_hook(keep(n)) for n in layers]):
        yield f


def total_variation(x: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Per image, the mean over pixels of ``((dx)^2 + (dy)^2) ** (beta / 2)``."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx.pow(2) + dy.pow(2)).pow(beta / 2).flatten(1).mean(dim=1)


@dataclass
class Inversion:
    """The reconstruction ``(B, C, H, W)`` and, per step, the code loss
    ``||phi(image) - phi(x)||^2 / ||phi(x)||^2`` (summed over the batch)."""

    image: torch.Tensor
    code_loss: list[float]


def invert(
    model: nn.Module,
    x: torch.Tensor,
    layer: str,
    *,
    steps: int = 200,
    lr: float = 0.05,
    alpha: float = 6.0,
    alpha_weight: float = 1e-3,
    tv_weight: float = 1e-2,
    beta: float = 2.0,
    value_range: tuple[float, float] | None = (0.0, 1.0),
    seed: int = 0,
    progress: Progress = None,
    should_stop: StopFlag = None,
) -> Inversion:
    """Rebuild ``x`` from its code at ``layer``, starting from noise.

    The loss is the code loss plus ``alpha_weight`` times the mean ``|image - centre|^alpha``
    (centre: the middle of ``value_range``, else 0) plus ``tv_weight`` times
    :func:`total_variation` with ``beta``; Adam with ``lr`` for ``steps`` steps.
    ``progress(done, steps)`` and ``should_stop`` as for :func:`~cnnvis.interpret.maximize`.
    """
    x = as_batch(model, x)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    centre = sum(value_range) / 2 if value_range is not None else 0.0
    gen = torch.Generator().manual_seed(seed)
    start = centre + 0.1 * torch.randn(x.shape, generator=gen)
    image = start.to(device_of(model)).requires_grad_(True)
    opt = torch.optim.Adam([image], lr=lr)
    history: list[float] = []
    with evaluating(model), _codes(model, [layer]) as codes:
        with torch.no_grad():
            reference = codes(x)[layer].flatten(1)
        scale = reference.pow(2).sum(dim=1).clamp(min=1e-12)
        for i in range(steps):
            step(i, steps, progress, should_stop, "invert")
            code = codes(image)[layer].flatten(1)
            code_loss = ((code - reference).pow(2).sum(dim=1) / scale).sum()
            prior = alpha_weight * (image - centre).abs().pow(alpha).flatten(1).mean(dim=1).sum()
            prior = prior + tv_weight * total_variation(image, beta).sum()
            opt.zero_grad()
            (code_loss + prior).backward()
            opt.step()
            if value_range is not None:
                with torch.no_grad():
                    image.clamp_(*value_range)
            history.append(float(code_loss.detach()))
    step(steps, steps, progress, None, "invert")
    return Inversion(image.detach(), history)


def _gram(a: torch.Tensor) -> torch.Tensor:
    """``(B, C, C)``: channel correlations of a ``(B, C, ...)`` output, divided by positions."""
    f = a.flatten(2)
    return f @ f.transpose(1, 2) / f.shape[2]


def gram(model: nn.Module, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Per layer, the Gram matrix ``G[b, i, j] = sum_p a[b, i, p] a[b, j, p] / n_positions``."""
    x = as_batch(model, x)
    with evaluating(model), torch.no_grad(), _codes(model, list(layers)) as codes:
        return {n: _gram(a) for n, a in codes(x).items()}


def style_transfer(
    model: nn.Module,
    content: torch.Tensor,
    style: torch.Tensor,
    *,
    content_layer: str,
    style_layers: Sequence[str],
    steps: int = 200,
    lr: float = 0.02,
    style_weight: float = 1e3,
    value_range: tuple[float, float] | None = (0.0, 1.0),
) -> tuple[torch.Tensor, list[float]]:
    """Gatys et al.: from ``content``, descend the content layer's squared error plus
    ``style_weight`` times the style layers' Gram errors against ``style``. Returns the image
    ``(1, C, H, W)`` and the total loss per step. The two images may differ in size."""
    content, style = as_batch(model, content)[:1], as_batch(model, style)[:1]
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    layers = [content_layer, *style_layers]
    image = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([image], lr=lr)
    history: list[float] = []
    with evaluating(model), _codes(model, layers) as codes:
        with torch.no_grad():
            target_content = codes(content)[content_layer]
            target_style = {n: _gram(a) for n, a in codes(style).items() if n in style_layers}
        for _ in range(steps):
            got = codes(image)
            loss = (got[content_layer] - target_content).pow(2).mean()
            for n in style_layers:
                loss = loss + style_weight * (_gram(got[n]) - target_style[n]).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if value_range is not None:
                with torch.no_grad():
                    image.clamp_(*value_range)
            history.append(float(loss.detach()))
    return image.detach(), history
