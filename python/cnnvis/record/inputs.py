"""What a recording reads: the model's options, the data's batches, the logits, the weights."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["RecordError"]


class RecordError(ValueError):
    """The model, the data or the options cannot be recorded (the message says why)."""


def check_options(top_k, max_pooled, patch_size) -> None:
    """RecordError for an option of the recording outside its range."""
    if not isinstance(top_k, int) or top_k < 1 or top_k > 1000:
        raise RecordError(f"top_k must be an integer in 1..1000, got {top_k!r}")
    if not isinstance(max_pooled, int) or max_pooled < 0:
        raise RecordError(f"max_pooled must be a non-negative integer, got {max_pooled!r}")
    if not isinstance(patch_size, int) or not 1 <= patch_size <= 512:
        raise RecordError(f"patch_size must be an integer in 1..512, got {patch_size!r}")


def check_pass_options(batch_size, max_samples) -> None:
    """RecordError for an option of the pass over the data outside its range."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise RecordError(f"batch_size must be a positive integer, got {batch_size!r}")
    if max_samples is not None and (not isinstance(max_samples, int) or max_samples < 1):
        raise RecordError(f"max_samples must be a positive integer or None, got {max_samples!r}")


def recording_device(model, device) -> Any:
    """The model's device; ``device``, if given, must name it (a recording never moves a model)."""
    import torch

    from cnnvis.graph import model_device

    if not isinstance(model, torch.nn.Module):
        raise RecordError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    found = model_device(model)
    if device is not None:
        want = torch.device(device)
        if want.type != found.type or want.index not in (None, found.index):
            raise RecordError(
                f"device={device!s} but the model is on {found}; record() never moves the "
                "model: move it yourself or leave device=None"
            )
    return found


def as_loader(data, batch_size: int):
    """A ``DataLoader`` over ``data``; an ``(inputs, labels)`` pair becomes a ``TensorDataset``.
    New loaders come from :func:`cnnvis.data.as_loader`, whose collate names the files' sizes
    when the images of a batch differ."""
    import torch
    from torch.utils.data import DataLoader, Dataset, TensorDataset

    from cnnvis.data import as_loader as data_loader

    if isinstance(data, tuple) and len(data) == 2:
        x, y = (torch.as_tensor(np.asarray(v)) if not torch.is_tensor(v) else v for v in data)
        data = TensorDataset(x, y)
    if not isinstance(data, (DataLoader, Dataset)) and not hasattr(data, "__getitem__"):
        raise RecordError(
            f"data must be a torch Dataset, a DataLoader or a tuple (inputs, labels); got "
            f"{type(data).__name__}"
        )
    try:
        return data_loader(data, batch_size)
    except (TypeError, ValueError) as exc:
        raise RecordError(str(exc)) from None


def loader_length(loader, max_samples: int | None) -> int | None:
    """The number of samples a pass will see, where the loader knows it (for the progress bar)."""
    try:
        total = len(loader.dataset) if hasattr(loader, "dataset") else None
    except TypeError:
        total = None
    if max_samples is not None and total is not None:
        total = min(total, max_samples)
    return total


def class_names_of(data, loader) -> list[str] | None:
    from cnnvis.data import class_names_of as names_of

    for obj in (data, loader):
        names = names_of(obj)
        if names:
            return [str(n) for n in names]
    return None


def split_batch(batch) -> tuple[Any, Any]:
    import torch

    if isinstance(batch, dict):
        for xk, yk in (("image", "label"), ("input", "target"), ("x", "y"), ("inputs", "labels")):
            if xk in batch and yk in batch:
                return batch[xk], batch[yk]
        raise RecordError(f"cannot find inputs and labels in a batch with keys {sorted(batch)}")
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        x, y = batch[0], batch[1]
    else:
        raise RecordError(
            "each batch must be (inputs, labels); the data yields "
            f"{type(batch).__name__} (labels are needed for class means and accuracy)"
        )
    if not torch.is_tensor(x):
        raise RecordError(f"inputs must be tensors, got {type(x).__name__}")
    y = torch.as_tensor(y)
    return x, y


def check_first_inputs(x) -> tuple[int, ...]:
    """The shape of every input, from the first batch: ``(C, H, W)`` for images, ``(D,)`` for
    flat feature vectors (an MLP's input, e.g. the digits as 64-vectors)."""
    if x.dim() not in (2, 4) or x.shape[0] == 0:
        raise RecordError(
            "record() expects image batches of shape (N, C, H, W) or feature vectors of shape "
            f"(N, D); got {tuple(x.shape)}"
        )
    if not x.is_floating_point():
        raise RecordError(f"inputs must be floating point tensors, got dtype {x.dtype}")
    return tuple(int(s) for s in x.shape[1:])


def image_shape(input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)`` of the pictures a recording keeps of its inputs (thumbnails, patches): the
    input's own shape for images; for a vector of ``D`` features one channel of ``H x W = D``
    with ``H`` the largest divisor of ``D`` up to its square root (64 -> 8 x 8, 10 -> 2 x 5),
    so that a flattened image is shown as the image it was."""
    if len(input_shape) == 3:
        return tuple(input_shape)
    (d,) = input_shape
    h = max(k for k in range(1, math.isqrt(d) + 1) if d % k == 0)
    return (1, h, d // h)


def image_view(x, input_shape: tuple[int, ...]):
    """The batch ``x`` as pictures ``(N, C, H, W)`` (:func:`image_shape`): a view, no copy."""
    return x if x.dim() == 4 else x.reshape(x.shape[0], *image_shape(input_shape))


def check_batch(x, y, input_shape, start: int) -> None:
    """RecordError unless the batch's inputs have the first batch's shape and its labels are one
    integer per input."""
    import torch

    b = int(x.shape[0])
    if tuple(x.shape[1:]) != input_shape:
        raise RecordError(
            f"inputs change shape from {input_shape} to {tuple(x.shape[1:])} at "
            f"sample {start}; all inputs must have one shape"
        )
    if y.dim() != 1 or y.shape[0] != b:
        raise RecordError(
            f"labels must have shape (batch,), got {tuple(y.shape)} for a batch of {b}"
        )
    if y.is_floating_point() or y.dtype == torch.bool:
        raise RecordError(f"labels must be integers, got dtype {y.dtype}")


def pick_logits(out, logits: Callable | None):
    import torch

    if logits is not None:
        out = logits(out)
    if not torch.is_tensor(out):
        raise RecordError(
            f"the model returned a {type(out).__name__}, not a tensor of logits; pass "
            "logits=<callable> that picks the logits (e.g. logits=lambda out: out[0] or "
            "logits=lambda out: out['logits'])"
        )
    if out.dim() != 2:
        raise RecordError(
            f"the logits must have shape (batch, n_classes); got {tuple(out.shape)} "
            "(pass logits=<callable> to select or reshape them)"
        )
    return out


def class_names_for(names: list[str] | None, n_out: int) -> list[str]:
    """The class names, one per logit (``"0"``, ``"1"``, ... where none are known)."""
    if names is None:
        return [str(i) for i in range(n_out)]
    if len(names) != n_out:
        raise RecordError(f"the model has {n_out} outputs but there are {len(names)} class names")
    return names


def resolve_layers(model, layers, graph) -> list[str]:
    """The names of the modules to record: ``layers`` checked, or the graph's default layers."""
    modules = dict(model.named_modules())
    if layers is None:
        from cnnvis.graph import default_layers

        chosen = list(default_layers(graph))
        if not chosen:
            raise RecordError("the model has no conv or linear layers to record; pass layers=")
        return chosen
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise RecordError("layers is empty; pass None for the default layers")
    unknown = [n for n in layers if n not in modules or n == ""]
    if unknown:
        known = [n for n in modules if n]
        raise RecordError(
            f"unknown layer name(s) {unknown}; the model's modules are: {', '.join(known)}"
        )
    if len(set(layers)) != len(layers):
        raise RecordError(f"layers has duplicates: {layers}")
    return layers


def trace_graph(model, example):
    """The model's DAG on ``example``; a forward pass that fails on it is a RecordError."""
    from cnnvis.graph import model_graph

    try:  # a forward that fails on the example input surfaces here as a ValueError
        return model_graph(model, example)
    except ValueError as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        raise RecordError(
            f"the model's forward pass fails on inputs of shape {tuple(example.shape)} "
            f"(batch, channels, height, width): {type(cause).__name__}: {cause}"
        ) from e


def layer_op(graph, name: str, module) -> str:
    """The op kind of a recorded layer: its node's in the graph, else the module's own."""
    from cnnvis.graph import module_kind

    for _node, attrs in graph.nodes(data=True):
        if attrs.get("module") == name and attrs.get("op"):
            return str(attrs["op"])
    return module_kind(module)


def _has_recorded_weights(module) -> bool:
    from torch import nn

    return isinstance(
        module,
        (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase),
    )


def collect_weights(model) -> dict[str, dict[str, np.ndarray]]:
    """Parameters and floating-point buffers of conv, linear and batch-norm modules (float32)."""
    import torch

    out: dict[str, dict[str, np.ndarray]] = {}
    for name, module in model.named_modules():
        if not name or not _has_recorded_weights(module):
            continue
        arrays: dict[str, np.ndarray] = {}
        tensors = list(module.named_parameters(recurse=False)) + list(
            module.named_buffers(recurse=False)
        )
        for pname, t in tensors:
            if t is None or not t.is_floating_point():
                continue
            # one copy, by torch: the recording must not change when the model trains on
            arrays[pname] = t.detach().to("cpu", torch.float32, copy=True).numpy()
        if arrays:
            out[name] = arrays
    return out


@contextlib.contextmanager
def hooks(model, names: Sequence[str], hook_factory) -> Iterator[None]:
    """Forward hooks ``hook_factory(name)`` on the named modules, always removed afterwards."""
    modules = dict(model.named_modules())
    handles = []
    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(hook_factory(name)))
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def eval_mode(model, stacklevel: int = 4) -> Iterator[None]:
    """Eval mode for the pass (with a warning if the model was training), restored afterwards."""
    modes = {m: m.training for m in model.modules()}
    if model.training:
        warnings.warn(
            "the model is in training mode; recording it in eval mode (batch norm uses its running "
            "statistics, dropout is off) and restoring training mode afterwards. Call "
            "model.eval() before record() to silence this warning.",
            UserWarning,
            stacklevel=stacklevel,
        )
    try:
        model.eval()
        yield
    finally:
        for m, mode in modes.items():
            m.training = mode
