"""What a method explains (a class, a neuron, a cluster) and the hooks that read it.

A *target* is one of

* an ``int``: a class, i.e. the model's output (logit) of that index;
* ``(layer, channel)``: a neuron of the overview, the mean over positions of that channel of the
  module named ``layer`` (a dotted name of :meth:`~torch.nn.Module.named_modules`);
* ``(layer, [channels])``: a cluster, the mean of its neurons.

Every hook this package registers goes through :func:`hooked`, a context manager that removes it
however the block ends, errors included.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Target = int | tuple[str, int] | tuple[str, Sequence[int]]


@dataclass(frozen=True)
class Objective:
    """A parsed target: ``layer`` None means the model's output; ``channels`` are averaged."""

    layer: str | None
    channels: tuple[int, ...]

    @property
    def is_class(self) -> bool:
        return self.layer is None

    def describe(self) -> str:
        if self.layer is None:
            return f"class {self.channels[0]}"
        what = "neuron" if len(self.channels) == 1 else f"cluster of {len(self.channels)}"
        return f"{what} {list(self.channels)} of {self.layer}"


def parse_target(model: nn.Module, target: Target) -> Objective:
    """Check ``target`` against ``model`` and turn it into an :class:`Objective`."""
    if isinstance(target, bool):
        raise TypeError("a target is a class index, (layer, channel) or (layer, [channels])")
    if isinstance(target, int):
        if target < 0:
            raise ValueError(f"class index must be >= 0, got {target}")
        return Objective(None, (int(target),))
    if not (isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], str)):
        raise TypeError(
            f"a target is a class index, (layer, channel) or (layer, [channels]); got {target!r}"
        )
    layer, channels = target
    module_of(model, layer)  # a clear KeyError for an unknown name
    chans = (channels,) if isinstance(channels, int) else tuple(channels)
    if not chans or not all(isinstance(c, int) and not isinstance(c, bool) for c in chans):
        raise ValueError(f"channels of {layer!r} must be one or more ints, got {channels!r}")
    if min(chans) < 0:
        raise ValueError(f"channels must be >= 0, got {list(chans)}")
    return Objective(layer, tuple(int(c) for c in chans))


def module_of(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` (a KeyError listing a few names if there is none)."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        some = ", ".join(n for n in list(modules)[1:12])
        raise KeyError(f"the model has no module {name!r}; its modules include {some}, ...")
    return modules[name]


def device_of(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def as_batch(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` as a float batch ``(B, C, H, W)`` on the model's device (one image gains B = 1)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"x must be (C, H, W) or (B, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError("x holds NaN or infinite values")
    return x.detach().to(device_of(model))


@contextlib.contextmanager
def hooked(handles: list) -> Iterator[list]:
    """Yield ``handles`` (a list the block appends hook handles to); remove them all at the end."""
    try:
        yield handles
    finally:
        for h in handles:
            h.remove()
        handles.clear()


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode for the block (dropout off, batch norm on its running statistics);
    its training flag is restored afterwards."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


@contextlib.contextmanager
def captured(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """During the block, ``out[name]`` is the latest output of each named module.

    A clone is kept: an in-place ReLU after the module would otherwise change it.
    """
    out: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable:
        def hook(_module, _inputs, output):
            out[name] = output.clone()

        return hook

    with hooked([]) as handles:
        for name in names:
            handles.append(module_of(model, name).register_forward_hook(keep(name)))
        yield out


def reduce_channels(act: torch.Tensor, channels: Sequence[int], layer: str) -> torch.Tensor:
    """Per sample, the mean over ``channels`` and over positions of a layer's output ``act``."""
    if act.dim() < 2:
        raise ValueError(f"the output of {layer!r} has shape {tuple(act.shape)}: no channels")
    if max(channels) >= act.shape[1]:
        raise ValueError(
            f"channel {max(channels)} is out of range: {layer!r} has {act.shape[1]} channels"
        )
    picked = act[:, list(channels)]
    return picked.reshape(picked.shape[0], -1).mean(dim=1)


class Reached(Exception):
    """Raised by a hook to stop the forward pass once the layer it reads has run."""


@contextlib.contextmanager
def objective_function(
    model: nn.Module, objective: Objective, *, stop: bool = False
) -> Iterator[Callable[[torch.Tensor], torch.Tensor]]:
    """A function ``f(x) -> (B,)``: the objective's value for each sample of a batch.

    For a neuron or cluster a forward hook reads the layer and the model runs to the end (its
    last call, for a module called more than once), or, with ``stop``, stops right there (its
    first call): faster, and the input may then have any size the layers up to it accept.
    """
    if objective.is_class:
        c = objective.channels[0]

        def of_class(x: torch.Tensor) -> torch.Tensor:
            logits = model(x)
            if logits.dim() != 2:
                raise ValueError(f"the model's output has shape {tuple(logits.shape)}, not (B, K)")
            if c >= logits.shape[1]:
                raise ValueError(f"class {c} is out of range: the model has {logits.shape[1]}")
            return logits[:, c]

        yield of_class
        return
    acts: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output):
        acts["out"] = output.clone()  # an in-place ReLU after the layer would change it
        if stop:
            raise Reached

    def of_layer(x: torch.Tensor) -> torch.Tensor:
        try:
            model(x)
        except Reached:
            pass
        return reduce_channels(acts.pop("out"), objective.channels, objective.layer)

    with hooked([module_of(model, objective.layer).register_forward_hook(keep)]):
        yield of_layer


def check_class(model: nn.Module, x: torch.Tensor, c: int) -> int:
    """``c`` if the model has an output of that index (one forward pass of one sample)."""
    with torch.no_grad():
        out = model(x[:1])
    if out.dim() != 2:
        raise ValueError(f"the model's output has shape {tuple(out.shape)}, not (B, K)")
    if not 0 <= c < out.shape[1]:
        raise ValueError(f"class {c} is out of range: the model has {out.shape[1]} outputs")
    return c


def predicted_classes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The arg-max class of each sample."""
    with torch.no_grad():
        return model(x).argmax(dim=1)
