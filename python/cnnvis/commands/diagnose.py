"""``python -m cnnvis diagnose SESSION [--json]``: what went wrong in a model or its training.

Prints one line per finding of :func:`cnnvis.analysis.diagnosis.diagnose` (the kind, the layer,
the epoch it began, the value and a one-line explanation), or with ``--json`` a list of
``{"kind", "layer", "epoch", "value", "message"}`` objects (``value`` null where not finite).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="session folder")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")


def _line(f, width: int) -> str:
    layer = f.layer if f.layer is not None else "-"
    epoch = f"epoch {f.epoch}" if f.epoch is not None else "model"
    return f"{f.kind:<24} {layer:<{width}} {epoch:<10} {f.value:<9.3g} {f.message}"


def run(args: argparse.Namespace) -> int:
    from cnnvis.analysis.diagnosis import diagnose
    from cnnvis.session import SessionError, open_session

    try:
        analysis = open_session(args.session)
    except SessionError as exc:
        print(f"cnnvis diagnose: {exc}", file=sys.stderr)
        return 1
    findings = diagnose(analysis)
    if args.json:
        print(json.dumps([f.to_dict() for f in findings], indent=1))
        return 0
    rec = analysis.recording
    with_stats = sum("stats" in s for s in rec.snapshots)
    print(f"session    {args.session}: {rec.model_name}, {len(rec.snapshots)} snapshots "
          f"({with_stats} with layer statistics)")  # fmt: skip
    if not findings:
        print("no finding: nothing diagnosed looks wrong")
    width = max((len(f.layer or "-") for f in findings), default=1)
    for f in findings:
        print(_line(f, width))
    return 0
