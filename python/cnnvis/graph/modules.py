"""What a module is and where a model lives: the one rule for each, used by every stage."""

from __future__ import annotations

from typing import Any

__all__ = ["model_device", "module_kind"]


def model_device(model: Any) -> Any:
    """The device of the model's first parameter (or buffer); the CPU for a model with neither.

    cnnvis never moves a model: inputs go to this device.
    """
    import torch

    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def module_kind(m: Any) -> str:
    """The op kind (one of :data:`cnnvis.graph.OPS`) of a module: ``conv``, ``linear``, ``norm``,
    ``act``, ``pool`` ...; ``other`` for a module it does not know, a container included."""
    from torch import nn

    checks: list[tuple[tuple[type, ...], str]] = [
        ((nn.modules.conv._ConvNd,), "conv"),
        ((nn.Linear, nn.Bilinear), "linear"),
        (
            (
                nn.modules.batchnorm._NormBase,
                nn.GroupNorm,
                nn.LayerNorm,
                nn.LocalResponseNorm,
                nn.CrossMapLRN2d,
            ),
            "norm",
        ),
        (
            (
                nn.modules.pooling._MaxPoolNd,
                nn.modules.pooling._AvgPoolNd,
                nn.modules.pooling._AdaptiveAvgPoolNd,
                nn.modules.pooling._AdaptiveMaxPoolNd,
                nn.modules.pooling._LPPoolNd,
            ),
            "pool",
        ),
        ((nn.modules.dropout._DropoutNd,), "dropout"),
        ((nn.Flatten,), "flatten"),
        ((nn.Unflatten,), "reshape"),
        ((nn.Identity,), "pass"),
        ((nn.Upsample,), "interpolate"),
        (
            (
                nn.modules.padding._ConstantPadNd,
                nn.modules.padding._ReflectionPadNd,
                nn.modules.padding._ReplicationPadNd,
                nn.ZeroPad2d,
            ),
            "pad",
        ),
    ]
    for types, kind in checks:
        if isinstance(m, types):
            return kind
    if type(m).__module__.startswith("torch.nn.modules.activation"):
        return "act"
    cname = type(m).__name__.lower()
    if "dropout" in cname or "stochasticdepth" in cname or "droppath" in cname:
        return "dropout"
    return "other"
