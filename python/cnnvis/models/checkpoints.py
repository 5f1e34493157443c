"""Checkpoints: the one place cnnvis reads model weights from disk, and builds a model by name.

One rule for every checkpoint: :func:`read_state` reads it with ``torch.load(...,
weights_only=True)`` (never arbitrary pickles) and :func:`load_state` puts it into a model; both
turn torch's many failures into one ``ValueError`` naming the file. On top of them:

* :func:`load_demo_checkpoint` - a checkpoint written by the demo (``{"arch": "demo",
  "arch_kwargs", "epoch", "state_dict"}``), see :func:`demo_checkpoint_bytes`;
* :func:`load_model` - a training folder (``model.json`` + ``final.pt`` or the last
  ``epoch_NNN.pt``), one of its files, a demo checkpoint, a bare state dict with an architecture
  name, or an architecture name alone (random weights, with a warning);
* :func:`build_architecture` - ``demo``, a case-study model or a torchvision model by name.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

__all__ = [
    "build_architecture",
    "demo_checkpoint_bytes",
    "load_demo_checkpoint",
    "load_model",
    "load_state",
    "read_state",
]


def read_state(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """What ``torch.save`` wrote to ``path``, read with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file cannot be read as a weights-only checkpoint.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
        raise ValueError(f"{path} cannot be read as a weights-only checkpoint: {exc}") from None


def load_state(model: Any, state: Any, where: str | os.PathLike, *, strict: bool = True) -> Any:
    """``model.load_state_dict(state)``; a state that is not a dict or does not fit the model is a
    ``ValueError`` naming ``where``. Returns the model."""
    if not isinstance(state, dict):
        raise ValueError(f"{where} does not hold a state dict (got {type(state).__name__})")
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise ValueError(f"the weights in {where} do not fit the model: {exc}") from None
    return model


def demo_checkpoint_bytes(state_dict: dict, epoch: int, arch_kwargs: dict) -> bytes:
    """A demo checkpoint: ``{"arch": "demo", "arch_kwargs", "epoch", "state_dict"}``, as bytes."""
    import torch

    buf = io.BytesIO()
    torch.save({"arch": "demo", "arch_kwargs": dict(arch_kwargs), "epoch": int(epoch),
                "state_dict": state_dict}, buf)  # fmt: skip
    return buf.getvalue()


def _is_demo(state: Any) -> bool:
    return isinstance(state, dict) and state.get("arch") == "demo" and "state_dict" in state


def _demo_model(state: dict, where: str | os.PathLike) -> Any:
    from cnnvis.models.demo import DemoCNN

    model = DemoCNN(**state.get("arch_kwargs", {}))
    return load_state(model, state["state_dict"], where)


def load_demo_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Rebuild the :class:`~cnnvis.models.demo.DemoCNN` of a demo checkpoint; in eval mode."""
    state = read_state(path, map_location)
    if not _is_demo(state):
        raise ValueError(f"{path} is not a demo checkpoint")
    return _demo_model(state, path).eval()


def build_architecture(
    arch: str, num_classes: int, in_channels: int, input_size: int, width: float = 1.0,
    **kwargs: Any,
) -> Any:  # fmt: skip
    """A model with random weights: ``demo``, a case-study name (``basecnn`` ...) or a
    torchvision model name (``resnet18`` ...)."""
    from cnnvis.models.casestudy import MODELS, build_model
    from cnnvis.models.demo import DemoCNN

    key = arch.strip().lower().replace("-", "").replace("_", "")
    if key in ("demo", "democnn"):
        return DemoCNN(in_channels=in_channels, n_classes=num_classes, **kwargs)
    if key in MODELS:
        return build_model(key, num_classes=num_classes, in_channels=in_channels, width=width,
                           input_size=input_size, **kwargs)  # fmt: skip
    import torchvision

    try:
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
    except ValueError:
        raise ValueError(
            f"unknown architecture {arch!r}: use demo, {', '.join(MODELS)} or a torchvision "
            "model name (resnet18, ...)"
        ) from None


def _training_file(folder: Path) -> Path:
    """The final weights of a folder written by ``cnnvis train``."""
    if not (folder / "model.json").exists():
        raise ValueError(f"{folder} has neither model.json (a training folder) nor a manifest")
    candidates = [folder / "final.pt", *sorted(folder.glob("epoch_[0-9][0-9][0-9].pt"))[::-1]]
    found = [p for p in candidates if p.is_file()]
    if not found:
        raise ValueError(f"{folder} has model.json but no final.pt or epoch_NNN.pt")
    return found[0]


def _model_for_state(path: Path, arch: str | None, shape: dict[str, Any]) -> Any:
    """The architecture a state dict at ``path`` belongs to: ``model.json`` beside it (written by
    ``cnnvis train``) unless ``arch`` names one."""
    info = path.parent / "model.json"
    if arch is None and info.exists():
        fields = json.loads(info.read_text())
        return build_architecture(
            fields.get("model", "basecnn"),
            num_classes=int(fields.get("num_classes", shape["num_classes"])),
            in_channels=int(fields.get("in_channels", shape["in_channels"])),
            input_size=int(fields.get("input_size", shape["input_size"])),
            width=float(fields.get("width", 1.0)),
            batch_norm=bool(fields.get("batch_norm", True)),
        )
    if arch is None:
        raise ValueError(
            f"{path} is a bare state dict: pass --arch NAME (demo, basecnn, resnet18, ...) or "
            "keep the model.json written by `cnnvis train` beside it"
        )
    return build_architecture(arch, **shape)


def load_model(
    spec: str | os.PathLike,
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    arch: str | None = None,
    width: float = 1.0,
    device: str = "cpu",
) -> tuple[Any, str]:
    """The model named by ``spec`` on ``device``; returns ``(model, class name)``.

    ``spec`` is a training folder, a checkpoint file (demo, training or a bare state dict, which
    needs ``arch`` unless ``model.json`` is beside it) or an architecture name (random weights:
    a ``UserWarning`` says so). ``num_classes``, ``in_channels``, ``input_size`` and ``width``
    size a model that ``model.json`` does not describe.
    """
    path = Path(spec)
    if path.is_dir():
        path = _training_file(path)
    if path.is_file():
        state = read_state(path, device)
        if _is_demo(state):
            return _demo_model(state, path).to(device), "DemoCNN"
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        shape = {"num_classes": num_classes, "in_channels": in_channels,
                 "input_size": input_size, "width": width}  # fmt: skip
        model = _model_for_state(path, arch, shape)
        return load_state(model, state, path).to(device), type(model).__name__
    if path.suffix in (".pt", ".pth") or "/" in str(spec):
        raise ValueError(f"no checkpoint at {spec}")
    model = build_architecture(str(spec), num_classes, in_channels, input_size, width)
    warnings.warn(f"{spec!r} names an architecture only: recording it with random weights",
                  UserWarning, stacklevel=2)  # fmt: skip
    return model.to(device), type(model).__name__
