"""``python -m cnnvis record --model MODEL --data SPEC --out DIR``: record a saved model.

``--model`` is one of

* a folder written by ``python -m cnnvis train`` (``model.json`` + ``final.pt``, or the last
  ``epoch_NNN.pt``), or one of its ``.pt`` files (``model.json`` is read from beside it);
* a demo checkpoint (``checkpoints/epoch_NNN.pt`` of a demo session) or a demo session folder;
* a bare state dict ``.pt`` together with ``--arch NAME``;
* a model name without weights: ``demo``, ``basecnn``, ``shallowcnn``, ``deepcnn`` or a
  torchvision model (``resnet18`` ...), built with random weights (a warning says so).

Checkpoints are always read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint, training folder or model name")
    parser.add_argument(
        "--data",
        required=True,
        help="digits, cifar10:PATH, mnist:PATH, svhn:PATH, imagefolder:PATH",
    )
    parser.add_argument("--out", required=True, help="session folder to write")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a session that exists at --out"
    )
    parser.add_argument("--split", default="test", choices=("train", "test"), help="default: test")
    parser.add_argument("--arch", default=None, help="architecture of a bare state dict")
    parser.add_argument("--width", type=float, default=1.0, help="width of a case-study --arch")
    parser.add_argument("--layers", default=None, help="comma-separated module names to record")
    parser.add_argument("--max-samples", type=int, default=None, help="record the first N only")
    parser.add_argument("--top-k", type=int, default=9, help="top samples per channel (9)")
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (64)")
    parser.add_argument("--max-pooled", type=int, default=2000, help="pooled sample bound (2000)")
    parser.add_argument("--patch-size", type=int, default=32, help="patch side in pixels (32)")
    parser.add_argument("--device", default="cpu", help="device to load the model on (cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed (data split, sampling)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _build(arch: str, num_classes: int, in_channels: int, input_size: int, width: float = 1.0,
           **kwargs: Any):  # fmt: skip
    from cnnvis.models import MODELS, build_model
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


def _read_state(path: Path, device: str) -> Any:
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
        raise ValueError(f"{path} cannot be read as a weights-only checkpoint: {exc}") from None


def _load_state(model, state: dict, where: Path):
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"the weights in {where} do not fit the model: {exc}") from None
    return model


def load_model(
    spec: str,
    *,
    num_classes: int,
    in_channels: int,
    input_size: int,
    arch: str | None = None,
    width: float = 1.0,
    device: str = "cpu",
):
    """Build the model named by ``spec`` (see the module docstring); returns ``(model, name)``."""
    import warnings

    from cnnvis.session import MANIFEST, read_file, read_json

    path = Path(spec)
    if path.is_dir() and (path / MANIFEST).exists():  # a demo session: its final checkpoint
        doc = read_json(read_file(path, "recording.json"))
        rel = (doc.get("meta") or {}).get("checkpoint")
        if not rel:
            raise ValueError(f"the session {path} holds no checkpoint")
        path = read_file(path, rel)
    if path.is_dir():
        if not (path / "model.json").exists():
            raise ValueError(f"{path} has neither model.json (a training folder) nor a manifest")
        candidates = [path / "final.pt", *sorted(path.glob("epoch_[0-9][0-9][0-9].pt"))[::-1]]
        found = [p for p in candidates if p.is_file()]
        if not found:
            raise ValueError(f"{path} has model.json but no final.pt or epoch_NNN.pt")
        path = found[0]
    if path.is_file():
        state = _read_state(path, device)
        if isinstance(state, dict) and state.get("arch") == "demo" and "state_dict" in state:
            from cnnvis.models.demo import DemoCNN

            model = DemoCNN(**state.get("arch_kwargs", {}))
            return _load_state(model, state["state_dict"], path).to(device), "DemoCNN"
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a state dict")
        if isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        info = path.parent / "model.json"
        if arch is None and info.exists():
            fields = json.loads(info.read_text())
            name = fields.get("model", "basecnn")
            model = _build(
                name,
                num_classes=int(fields.get("num_classes", num_classes)),
                in_channels=int(fields.get("in_channels", in_channels)),
                input_size=int(fields.get("input_size", input_size)),
                width=float(fields.get("width", 1.0)),
                batch_norm=bool(fields.get("batch_norm", True)),
            )
            return _load_state(model, state, path).to(device), type(model).__name__
        if arch is None:
            raise ValueError(
                f"{path} is a bare state dict: pass --arch NAME (demo, basecnn, resnet18, ...) or "
                "keep the model.json written by `cnnvis train` beside it"
            )
        model = _build(arch, num_classes, in_channels, input_size, width)
        return _load_state(model, state, path).to(device), type(model).__name__
    if path.suffix in (".pt", ".pth") or "/" in spec:
        raise ValueError(f"no checkpoint at {spec}")
    model = _build(spec, num_classes, in_channels, input_size, width)
    warnings.warn(f"{spec!r} names an architecture only: recording it with random weights",
                  UserWarning, stacklevel=2)  # fmt: skip
    return model.to(device), type(model).__name__


def run(args: argparse.Namespace) -> int:
    from cnnvis.data import DatasetFilesMissing, class_names_of, load_dataset
    from cnnvis.record import RecordError, record
    from cnnvis.session import SessionError, check_writable

    try:  # before a pass that may take long, not after it
        check_writable(args.out, overwrite=args.overwrite)
    except SessionError as exc:
        hint = "; pass --overwrite to replace it" if "already exists" in str(exc) else ""
        print(f"cnnvis record: {exc}{hint}", file=sys.stderr)
        return 2
    try:
        data = load_dataset(args.data, args.split, seed=args.seed)
    except (DatasetFilesMissing, ValueError) as exc:
        print(f"cnnvis record: {exc}", file=sys.stderr)
        return 2
    if len(data) == 0:
        print(f"cnnvis record: the {args.split} split of {args.data} is empty", file=sys.stderr)
        return 2
    classes = class_names_of(data)
    x0, _ = data[0]
    try:
        model, name = load_model(
            args.model,
            num_classes=len(classes) if classes else 10,
            in_channels=int(x0.shape[0]),
            input_size=int(x0.shape[-1]),
            arch=args.arch,
            width=args.width,
            device=args.device,
        )
        model.eval()
        layers = [s.strip() for s in args.layers.split(",")] if args.layers else None
        rec = record(
            model, data, layers=layers, max_samples=args.max_samples, top_k=args.top_k,
            batch_size=args.batch_size, progress=not args.quiet, max_pooled=args.max_pooled,
            patch_size=args.patch_size, class_names=classes, model_name=name, seed=args.seed,
        )  # fmt: skip
        rec.meta["data"] = f"{args.data} ({args.split})"
        rec.meta["model_source"] = str(args.model)
        path = rec.save(args.out, overwrite=args.overwrite)
    except (RecordError, SessionError, ValueError) as exc:
        print(f"cnnvis record: {exc}", file=sys.stderr)
        return 2
    print(f"session written to {path}: {rec.n_samples} samples, accuracy {rec.accuracy:.2%}, "
          f"{len(rec.layers)} layers")  # fmt: skip
    print(f"next: python -m cnnvis info {path}")
    return 0
