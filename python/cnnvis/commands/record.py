"""``python -m cnnvis record --model MODEL --data SPEC --out DIR``: record a saved model.

``--model`` is one of

* a folder written by ``python -m cnnvis train`` (``model.json`` + ``final.pt``, or the last
  ``epoch_NNN.pt``), or one of its ``.pt`` files (``model.json`` is read from beside it);
* a demo checkpoint (``checkpoints/epoch_NNN.pt`` of a demo session) or a demo session folder;
* a bare state dict ``.pt`` together with ``--arch NAME``;
* a model name without weights: ``demo``, ``basecnn``, ``shallowcnn``, ``deepcnn`` or a
  torchvision model (``resnet18`` ...), built with random weights (a warning says so).

Checkpoints are always read with ``torch.load(..., weights_only=True)``
(:mod:`cnnvis.models.checkpoints`).

Under ``torchrun --nproc-per-node=N -m cnnvis record ...`` the N processes share the pass
(:mod:`cnnvis.record.distributed`): gloo on the CPU, NCCL with ``--device cuda`` (each process
on the GPU its ``LOCAL_RANK`` names); rank 0 writes the session, the others exit with 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


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
    parser.add_argument(
        "--device", default="cpu", help="device to load the model on (cpu); under torchrun, "
        "cuda means the GPU of the process's LOCAL_RANK"
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=None,
                        help="data loading processes (default: 0 on the CPU, 4 on a GPU)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed (data split, sampling)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def resolve_model_spec(spec: str) -> str:
    """A demo session folder stands for its final checkpoint; any other ``--model`` as given."""
    from cnnvis.session import MANIFEST, read_file, read_json

    path = Path(spec)
    if not (path.is_dir() and (path / MANIFEST).exists()):
        return spec
    doc = read_json(read_file(path, "recording.json"))
    rel = (doc.get("meta") or {}).get("checkpoint")
    if not rel:
        raise ValueError(f"the session {path} holds no checkpoint")
    return str(read_file(path, rel))


def _folder_snapshots(args: argparse.Namespace, rec, data, load) -> list:
    """A training folder's ``epoch_NNN.pt`` measured on the recorded samples (the losses and
    accuracies of its ``history.json`` with them); none for any other ``--model``."""
    import json

    from cnnvis.tracking import checkpoint_snapshots
    from cnnvis.training import HISTORY_FILE, snapshot_paths

    folder = Path(args.model)
    paths = snapshot_paths(folder) if folder.is_dir() else []
    if not paths:
        return []
    history_file = folder / HISTORY_FILE
    history = json.loads(history_file.read_text()) if history_file.is_file() else None
    return checkpoint_snapshots(rec, data, paths, load, history, batch_size=args.batch_size)


def run(args: argparse.Namespace) -> int:
    with _process_group(args) as rank:
        return _record(args, rank)


@contextlib.contextmanager
def _process_group(args: argparse.Namespace):
    """Under torchrun (``WORLD_SIZE`` > 1): the process group of the recording, gloo on the
    CPU and NCCL on GPUs (``--device cuda`` becomes this process's GPU); yields the rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield 0
        return
    import torch
    import torch.distributed as dist

    if dist.is_initialized():  # the caller's group (cli.main called inside one)
        yield dist.get_rank()
        return

    backend = "gloo"
    if args.device == "cuda":
        args.device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(args.device)
        backend = "nccl"
    dist.init_process_group(backend)
    try:
        yield dist.get_rank()
    finally:
        dist.destroy_process_group()


def _record(args: argparse.Namespace, rank: int) -> int:
    from cnnvis.data import DatasetFilesMissing, class_names_of, load_dataset
    from cnnvis.models.checkpoints import load_model
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
        shape = dict(num_classes=len(classes) if classes else 10, in_channels=int(x0.shape[0]),
                     input_size=int(x0.shape[-1]), arch=args.arch, width=args.width,
                     device=args.device)  # fmt: skip
        model, name = load_model(resolve_model_spec(args.model), **shape)
        model.eval()
        layers = [s.strip() for s in args.layers.split(",")] if args.layers else None
        rec = record(
            model, data, layers=layers, max_samples=args.max_samples, top_k=args.top_k,
            batch_size=args.batch_size, progress=not args.quiet, max_pooled=args.max_pooled,
            patch_size=args.patch_size, class_names=classes, model_name=name, seed=args.seed,
            num_workers=args.workers,
        )  # fmt: skip
        if rank != 0:  # every process has the merged recording: rank 0 writes it
            return 0
        rec.meta["data"] = f"{args.data} ({args.split})"
        rec.meta["model_source"] = str(args.model)
        rec.snapshots = _folder_snapshots(args, rec, data, lambda p: load_model(str(p), **shape)[0])
        path = rec.save(args.out, overwrite=args.overwrite)
    except (RecordError, SessionError, ValueError) as exc:
        print(f"cnnvis record: {exc}", file=sys.stderr)
        return 2
    print(f"session written to {path}: {rec.n_samples} samples, accuracy {rec.accuracy:.2%}, "
          f"{len(rec.layers)} layers")  # fmt: skip
    print(f"next: python -m cnnvis info {path}")
    return 0
