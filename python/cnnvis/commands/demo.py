"""``python -m cnnvis demo [--out DIR]``: train the demo CNN on the digits and record it."""

from __future__ import annotations

import argparse
import shlex
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out",
        default=None,
        help="session folder to write (default: ~/.cache/cnnvis/demo, or $CNNVIS_CACHE/demo)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 12)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="print only where the session is")


def run(args: argparse.Namespace) -> int:
    from cnnvis.demo import DEMO_EPOCHS, default_demo_dir, make_demo_session
    from cnnvis.session import SessionError, check_writable, load

    out = args.out if args.out is not None else default_demo_dir()
    epochs = DEMO_EPOCHS if args.epochs is None else args.epochs
    try:
        check_writable(out)
    except SessionError as exc:
        print(f"cnnvis demo: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"cnnvis demo: training DemoCNN on the 8x8 digits ({epochs} epochs), then recording")
    try:
        path = make_demo_session(out, progress=not args.quiet, epochs=epochs, seed=args.seed)
        rec = load(path)
    except (SessionError, ValueError) as exc:
        print(f"cnnvis demo: {exc}", file=sys.stderr)
        return 1
    q = shlex.quote(str(path))
    print(f"session written to {path}")
    if not args.quiet:
        print(
            f"  held-out accuracy {rec.accuracy:.1%} on {rec.n_samples} digits; "
            f"{len(rec.layers)} layers, {len(rec.snapshots)} training snapshots"
        )
        print("next:")
        print(f"  python -m cnnvis viewer {q}")
        print(f"  python -m cnnvis export png {q} --out demo.png")
        print(f"  python -m cnnvis info {q}")
    return 0
