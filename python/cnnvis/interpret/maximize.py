"""Activation maximisation (T5): the image that drives a class, a neuron or a cluster.

Two parameterisations of the image, both ascended with Adam on the target's objective:

* ``"fourier"`` (default, after Olah et al. 2017): the image is the inverse real FFT of a
  learned spectrum scaled by ``1 / frequency ** decay``, so every frequency starts with the energy of
  natural images and high frequencies must earn theirs; colour goes through a fixed orthonormal
  opponent basis (luminance, red-green, blue-yellow), so the channels are decorrelated; a
  sigmoid maps the result into the input's value range.
* ``"pixel"``, the simple baseline (Yosinski et al. 2015): the pixels themselves, with an L2
  penalty, a Gaussian blur every few steps and clipping to the value range.

At every step the image is randomly shifted, scaled and rotated before the model sees it
(transformation robustness), so the ascent cannot rely on exact pixel positions.

:func:`deepdream` amplifies what a layer (or target) sees in a given image, octave by octave.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cnnvis.interpret._targets import (
    Reached,
    Target,
    as_batch,
    device_of,
    evaluating,
    hooked,
    module_of,
    objective_function,
    parse_target,
)
from cnnvis.interpret.progress import Progress, StopFlag, step

__all__ = ["Maximized", "maximize", "deepdream", "high_frequency_energy"]


@dataclass
class Maximized:
    """The image ``(1, C, H, W)`` and the objective's value on it (untransformed) after each
    step (``history``); ``value`` is the last."""

    image: torch.Tensor
    history: list[float]

    @property
    def value(self) -> float:
        return self.history[-1]


def _opponent_basis(channels: int, device) -> torch.Tensor:
    """An orthonormal ``(C, C)`` basis: luminance, red-green, blue-yellow for RGB; identity else."""
    if channels != 3:
        return torch.eye(channels, device=device)
    basis = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0], [1.0, 1.0, -2.0]], device=device)
    return (basis / basis.norm(dim=1, keepdim=True)).T  # columns are the basis vectors


class _FourierImage(nn.Module):
    def __init__(self, shape, value_range, generator, device, decay: float) -> None:
        super().__init__()
        c, h, w = shape
        fy = torch.fft.fftfreq(h, device=device)[:, None]
        fx = torch.fft.rfftfreq(w, device=device)[None, :]
        freq = torch.sqrt(fx**2 + fy**2).clamp(min=1.0 / max(h, w))
        self.register_buffer("scale", (freq**-decay)[None] / max(h, w) ** decay)
        # a visible random start: from a flat grey image a ReLU unit may be dead, with no
        # gradient to follow
        noise = torch.randn((c, h, w // 2 + 1, 2), generator=generator)
        self.spectrum = nn.Parameter(noise.to(device))
        self.register_buffer("basis", _opponent_basis(c, device))
        self.lo, self.hi, self.size = value_range[0], value_range[1], (h, w)

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex(self.spectrum) * self.scale
        t = torch.fft.irfft2(spectrum, s=self.size, norm="ortho")  # (C, H, W)
        t = torch.einsum("ij,jhw->ihw", self.basis, t)
        return (self.lo + (self.hi - self.lo) * torch.sigmoid(t))[None]


class _PixelImage(nn.Module):
    def __init__(self, shape, value_range, generator, device) -> None:
        super().__init__()
        lo, hi = value_range
        start = lo + (hi - lo) * (0.5 + 0.2 * torch.randn(shape, generator=generator)).clamp(0, 1)
        self.pixels = nn.Parameter(start[None].to(device))

    def forward(self) -> torch.Tensor:
        return self.pixels


def random_transform(img: torch.Tensor, generator, *, jitter, scale, degrees) -> torch.Tensor:
    """``img`` shifted by up to ``jitter`` pixels, scaled in ``scale`` and rotated by up to
    ``degrees``, in one bilinear resampling with reflected borders."""
    h, w = img.shape[-2:]
    u = torch.rand(4, generator=generator).tolist()
    s = scale[0] + (scale[1] - scale[0]) * u[0]
    a = math.radians(degrees * (2 * u[1] - 1))
    tx, ty = (2 * u[2] - 1) * jitter * 2 / w, (2 * u[3] - 1) * jitter * 2 / h
    theta = torch.tensor(
        [[math.cos(a) / s, -math.sin(a) / s, tx], [math.sin(a) / s, math.cos(a) / s, ty]],
        dtype=img.dtype,
        device=img.device,
    )
    grid = F.affine_grid(
        theta[None].expand(img.shape[0], 2, 3), list(img.shape), align_corners=False
    )
    return F.grid_sample(img, grid, padding_mode="reflection", align_corners=False)


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2 * sigma)))
    k = torch.exp(-(torch.arange(-radius, radius + 1, device=img.device) ** 2) / (2 * sigma**2))
    k = (k / k.sum()).to(img.dtype)
    c = img.shape[1]
    img = F.pad(img, (radius,) * 4, mode="reflect" if min(img.shape[-2:]) > radius else "replicate")
    img = F.conv2d(img, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(img, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def maximize(
    model: nn.Module,
    target: Target,
    *,
    shape: tuple[int, int, int],
    steps: int = 512,
    param: str = "fourier",
    lr: float = 0.1,
    decay: float = 2.0,
    value_range: tuple[float, float] = (0.0, 1.0),
    jitter: float = 1.0,
    scale: tuple[float, float] = (0.95, 1.05),
    degrees: float = 5.0,
    l2: float = 1e-3,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    seed: int = 0,
    progress: Progress = None,
    should_stop: StopFlag = None,
) -> Maximized:
    """Ascend ``target``'s objective over images of ``shape`` ``(C, H, W)`` for ``steps`` steps.

    ``param``: ``"fourier"`` (amplitudes scaled by ``frequency ** -decay``; natural images
    have ``decay`` about 1, and a larger one keeps a small image such as an 8x8 digit smooth) or
    ``"pixel"`` (with ``l2`` and a blur of ``blur_sigma`` every ``blur_every`` steps). ``jitter`` (pixels), ``scale`` and ``degrees`` bound the random
    transformation of each step (``jitter=0, scale=(1, 1), degrees=0``: none).
    ``progress(done, steps)`` is called after each step; ``should_stop`` (a callable or a
    :class:`threading.Event`) is checked before each, and stops the ascent with
    :class:`~cnnvis.interpret.Cancelled`.
    """
    if param not in ("fourier", "pixel"):
        raise ValueError(f"param must be 'fourier' or 'pixel', got {param!r}")
    if steps < 1 or len(shape) != 3:
        raise ValueError(f"need steps >= 1 and shape (C, H, W); got {steps}, {shape}")
    obj = parse_target(model, target)
    device = device_of(model)
    gen = torch.Generator().manual_seed(seed)

    def start() -> nn.Module:
        if param == "fourier":
            return _FourierImage(tuple(shape), value_range, gen, device, decay)
        return _PixelImage(tuple(shape), value_range, gen, device)

    history: list[float] = []
    with evaluating(model), objective_function(model, obj) as f:
        image = _live_start(start, f)
        opt = torch.optim.Adam(image.parameters(), lr=lr)
        for i in range(steps):
            step(i, steps, progress, should_stop, "maximize")
            img = image()
            seen = random_transform(img, gen, jitter=jitter, scale=scale, degrees=degrees)
            loss = -f(seen).sum()
            if param == "pixel":
                loss = loss + l2 * (img - sum(value_range) / 2).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                if param == "pixel":
                    if blur_every and (i + 1) % blur_every == 0:
                        image.pixels.copy_(_gaussian_blur(image.pixels, blur_sigma))
                    image.pixels.clamp_(*value_range)
                history.append(float(f(image()).sum()))
        step(steps, steps, progress, None, "maximize")
        final = image().detach()
    return Maximized(final, history)


def _live_start(start, f, tries: int = 8) -> nn.Module:
    """A random start whose objective has a gradient: behind a ReLU a unit can be dead for a
    given image, and ascent from there never moves. Up to ``tries`` starts are drawn."""
    for _ in range(tries):
        image = start()
        (grad,) = torch.autograd.grad(f(image()).sum(), list(image.parameters()))
        if grad.abs().max() > 0:
            break
    return image


def high_frequency_energy(img: torch.Tensor) -> float:
    """Share of the image's (mean-removed) spectral power above half the Nyquist frequency."""
    x = img.detach().double()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.rfft2(x).abs() ** 2
    fy = torch.fft.fftfreq(x.shape[-2])[:, None].abs()
    fx = torch.fft.rfftfreq(x.shape[-1])[None, :]
    high = torch.sqrt(fx**2 + fy**2) > 0.25
    total = float(power.sum())
    return float(power[..., high].sum()) / total if total > 0 else 0.0


def deepdream(
    model: nn.Module,
    x: torch.Tensor,
    target: Target | str,
    *,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps: int = 10,
    lr: float = 0.02,
    value_range: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """DeepDream (Mordvintsev et al. 2015) on ``x``: normalised gradient ascent on ``target``
    (a layer name: the mean square of its output; or any target), from the smallest octave up,
    each octave's detail carried to the next. The model must accept the smaller sizes (a layer
    target stops the forward pass at its layer, so fully connected heads do not matter)."""
    x = as_batch(model, x)
    if octaves < 1 or octave_scale <= 1:
        raise ValueError("need octaves >= 1 and octave_scale > 1")
    sizes = [
        tuple(max(1, round(s / octave_scale**k)) for s in x.shape[-2:]) for k in range(octaves)
    ]
    detail = torch.zeros_like(F.interpolate(x, size=sizes[-1], mode="bilinear"))
    with evaluating(model), _dream_objective(model, target) as f:
        for size in reversed(sizes):
            base = F.interpolate(x, size=size, mode="bilinear") if size != x.shape[-2:] else x
            img = base + F.interpolate(detail, size=size, mode="bilinear")
            for _ in range(steps):
                img = img.detach().requires_grad_(True)
                (g,) = torch.autograd.grad(f(img).sum(), img)
                img = img + lr * g / (g.abs().mean() + 1e-8)
                if value_range is not None:
                    img = img.clamp(*value_range)
            detail = img.detach() - base
    return img.detach()


def _dream_objective(model: nn.Module, target: Target | str):
    """A layer name dreams its whole output (mean square); a target, its own objective."""
    if isinstance(target, str):
        return _layer_energy(model, target)
    return objective_function(model, parse_target(model, target), stop=True)


@contextlib.contextmanager
def _layer_energy(model: nn.Module, layer: str):
    """``f(x) -> (B,)``: the mean square of ``layer``'s output; the forward pass stops there."""
    out: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        out["a"] = output
        raise Reached

    def f(x: torch.Tensor) -> torch.Tensor:
        try:
            model(x)
        except Reached:
            pass
        return out.pop("a").flatten(1).pow(2).mean(dim=1)

    with hooked([module_of(model, layer).register_forward_hook(keep)]):
        yield f
