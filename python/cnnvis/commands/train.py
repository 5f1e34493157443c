"""`python -m cnnvis train`: train a case-study CNN on a data set from disk, with snapshots.

Writes to ``--out``: ``epoch_000.pt`` (untrained) ... ``epoch_NNN.pt``, ``final.pt`` (state
dicts, load with ``cnnvis.training.load_snapshot``), ``history.json`` (per-epoch loss and
accuracy), ``session/`` (a session with every epoch's :class:`~cnnvis.Tracker` snapshot, for
``info``, ``diagnose`` and the viewer; written also when the loss diverges) and ``model.json``
(what rebuilds the model: ``{"model", "width", "num_classes", "in_channels", "input_size",
"batch_norm", "classes", "data"}``; pass its fields to ``cnnvis.models.build_model``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

#: The session ``train`` writes into ``--out``: the final model recorded on the probe samples
#: (the first 128 test images), with every epoch's snapshot statistics.
SESSION = "session"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default="basecnn",
        help="basecnn, shallowcnn or deepcnn (default: basecnn)",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="data set spec: cifar10:PATH, mnist:PATH, svhn:PATH, imagefolder:PATH or digits",
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs to train (default: 10)")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (default: 1)")
    parser.add_argument("--out", required=True, help="folder for snapshots and history")
    parser.add_argument("--lr", type=float, default=1e-3, help="learning rate (default: 1e-3)")
    parser.add_argument("--batch-size", type=int, default=128, help="batch size (default: 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument(
        "--no-batch-norm", action="store_true", help="plain conv/ReLU stacks without batch norm"
    )
    parser.add_argument(
        "--max-samples",
        type=int,
        default=None,
        help="train on the first N training samples only (quick runs)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")


def run(args: argparse.Namespace) -> int:
    import torch

    from cnnvis.data import DatasetFilesMissing
    from cnnvis.tracking import Tracker
    from cnnvis.training import LossNotFinite, train

    if args.epochs < 0:
        print("cnnvis train: --epochs must be >= 0", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(int(args.threads))
    try:
        train_data, test_data, spec = _data(args)
        model = _model(args, spec)
    except (DatasetFilesMissing, ValueError) as exc:
        print(f"cnnvis train: {exc}", file=sys.stderr)
        return 2
    from cnnvis.session import prepare_folder

    prepare_folder(args.out, args.out)  # before the training; a clear error if it cannot be
    with open(os.path.join(args.out, "model.json"), "w") as fh:
        json.dump(spec, fh, indent=2)
    if not args.quiet:
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"training {type(model).__name__} (width {args.width:g}, {n_params:,} parameters) "
            f"on {args.data}: {len(train_data)} train / {len(test_data)} test images, "
            f"{spec['num_classes']} classes",
            flush=True,
        )
    tracker = Tracker(model, test_data if len(test_data) else train_data,
                      class_names=spec["classes"])  # fmt: skip
    session = os.path.join(args.out, SESSION)
    try:
        history = train(
            model, train_data, test_data if len(test_data) else None, epochs=args.epochs,
            lr=args.lr, batch_size=args.batch_size, seed=args.seed, device=args.device,
            snapshot_dir=args.out, progress=not args.quiet, optimizer=args.optimizer,
            tracker=tracker,
        )  # fmt: skip
    except LossNotFinite as exc:
        tracker.save(session)
        print(f"cnnvis train: {exc}\nsnapshots up to then in {session}: "
              f"python -m cnnvis diagnose {session}", file=sys.stderr)  # fmt: skip
        return 1
    tracker.save(session)
    acc = history["final_test_accuracy"]
    if not args.quiet:
        tail = "" if acc is None else f"; test accuracy {acc:.4f}"
        print(f"snapshots and history in {args.out}{tail}")
        print(f"session with the snapshots' statistics: {session} (python -m cnnvis diagnose)")
    return 0


def _data(args: argparse.Namespace):
    """The training and test splits of ``--data`` and the ``model.json`` fields they fix."""
    from torch.utils.data import Subset

    from cnnvis.data import class_names_of, load_dataset

    train_data = load_dataset(args.data, "train", seed=args.seed)
    test_data = load_dataset(args.data, "test", seed=args.seed)
    if len(train_data) == 0:
        raise ValueError(f"the training split of {args.data} is empty")
    classes = class_names_of(train_data)
    x0, _ = train_data[0]
    if x0.dim() != 3 or x0.shape[1] != x0.shape[2]:
        raise ValueError(
            f"the case-study models take square images (C, S, S); "
            f"{args.data} gives {tuple(x0.shape)}"
        )
    if args.max_samples is not None:
        train_data = Subset(train_data, range(min(args.max_samples, len(train_data))))
    spec = {
        "model": args.model.lower(),
        "width": args.width,
        "num_classes": len(classes),
        "in_channels": int(x0.shape[0]),
        "input_size": int(x0.shape[1]),
        "batch_norm": not args.no_batch_norm,
        "classes": classes,
        "data": args.data,
    }
    return train_data, test_data, spec


def _model(args: argparse.Namespace, spec: dict):
    """The case-study model ``model.json`` describes, seeded with ``--seed``."""
    import torch

    from cnnvis.models import build_model

    torch.manual_seed(args.seed)
    return build_model(
        args.model,
        num_classes=spec["num_classes"],
        in_channels=spec["in_channels"],
        width=args.width,
        input_size=spec["input_size"],
        batch_norm=spec["batch_norm"],
    )
