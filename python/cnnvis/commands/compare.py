"""``python -m cnnvis compare SESSION_A SESSION_B [--out F.png] [--json]``: two models recorded on
the same data, side by side (issue 18).

Prints the models' accuracy and parameters and, per layer, channels, parameters, redundancy and
sign balance of each, lined up by layer name, then how the two projections of the same samples
differ (``--json``: the same as one JSON object, :meth:`ModelComparison.to_dict`). ``--out``
also writes the picture (:func:`cnnvis.export.compare.export_compare`, sized by ``--size``,
overviews opened ``--depth`` levels): both overviews, both projections and the per-sample
displacement, and the table.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session_a", help="session folder of model A")
    parser.add_argument("session_b", help="session folder of model B (recorded on the same data)")
    parser.add_argument("--out", help="also write the comparison picture to this PNG")
    parser.add_argument(
        "--size",
        default="1920x900",
        help="WxH: the picture's width and the overviews' height (default 1920x900)",
    )
    parser.add_argument(
        "--layers",
        metavar="LAYER_A[,LAYER_B]",
        help="the layers whose sample projections are compared (default: the layer each "
        "viewer projects first; one name for both models)",
    )
    parser.add_argument(
        "--depth",
        type=int,
        metavar="N",
        help="open the first N nesting levels of both overviews alike (--out; default: each "
        "as the viewer opens it)",
    )
    parser.add_argument("--json", action="store_true", help="print the table as JSON")


def _layers(text: str | None) -> dict[str, str | None]:
    if text is None:
        return {"layer_a": None, "layer_b": None}
    names = [s.strip() for s in text.split(",")]
    if not 1 <= len(names) <= 2 or not all(names):
        raise ValueError(f"--layers takes LAYER or LAYER_A,LAYER_B, got {text!r}")
    return {"layer_a": names[0], "layer_b": names[-1]}


def run(args: argparse.Namespace) -> int:
    from cnnvis.export.compare import compare_shown, export_compare, format_table
    from cnnvis.session import open_session

    layers = _layers(args.layers)
    a, b = open_session(args.session_a), open_session(args.session_b)
    comparison = compare_shown(a, b, **layers)
    if args.json:
        print(json.dumps(comparison.to_dict(), indent=2))
    else:
        print(format_table(comparison))
    if args.out:
        out = export_compare(
            a, b, args.out, comparison=comparison, size=args.size, depth=args.depth
        )
        print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)  # JSON stays clean
    return 0
