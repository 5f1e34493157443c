"""``python -m cnnvis export {facets,png,svg} SESSION --out PATH``.

The session is opened with :func:`cnnvis.session.open_session`; each kind is written from its
analysis by ``cnnvis.export.<kind>.export_<kind>(analysis, out, args=args)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

KINDS = {
    "facets": "per cluster, the packed learned-feature image and the reordered activation matrix",
    "png": "the overview the viewer shows, rendered offscreen",
    "svg": "the overview as vector graphics, straight from the scene",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=list(KINDS), help="what to write")
    parser.add_argument("session", help="session folder (see `python -m cnnvis demo`)")
    parser.add_argument("--out", required=True, help="output file (png, svg) or folder (facets)")
    parser.add_argument("--size", default="1920x1080", help="WxH in pixels (png)")


def run(args: argparse.Namespace) -> int:
    from cnnvis.session import SessionError, open_session

    try:
        analysis = open_session(args.session)
    except SessionError as exc:
        print(f"cnnvis export: cannot read the session: {exc}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"cnnvis.export.{args.kind}")
    out = getattr(module, f"export_{args.kind}")(analysis, args.out, args=args)
    print(f"wrote {out}")
    return 0
