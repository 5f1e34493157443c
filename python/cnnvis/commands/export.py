"""``python -m cnnvis export {facets,png,svg} SESSION --out PATH``.

The session is opened here with :func:`cnnvis.session.open_session`; each kind is then written
from its analysis by a library function (``cnnvis.export.<kind>.export_<kind>``) with plain
arguments. An error it raises becomes one line and exit status 2 in :func:`cnnvis.cli.main`.
``png`` and ``svg`` take ``--expand all|GROUP[,GROUP...]`` (the layer groups shown open; a nested
group opens with the groups that hold it) or ``--depth N`` (the first N nesting levels open).
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--size", default="1920x1080", help="WxH in pixels (png, svg)")
    parser.add_argument(
        "--expand",
        metavar="all|GROUP[,GROUP...]",
        help="layer groups shown open (png, svg): 'all', or names such as layer2,layer3.1 (a "
        "nested group opens with the groups that hold it); default: the viewer's default depth",
    )
    parser.add_argument(
        "--depth", type=int, metavar="N", help="open the first N nesting levels (png, svg)"
    )


def overview_options(args: argparse.Namespace, analysis) -> dict:
    """``expanded`` and ``depth`` for export_png/export_svg from ``--expand`` and ``--depth``."""
    if args.expand is not None and args.depth is not None:
        raise ValueError("give --expand or --depth, not both")
    expand = args.expand
    if expand is None or expand == "all":
        return {"expanded": expand, "depth": args.depth}
    from cnnvis.scene.overview import groups_holding

    names = [n.strip() for n in expand.split(",") if n.strip()]
    if not names:
        raise ValueError("--expand needs 'all' or group names separated by commas")
    flat = [(g.name, g.layers) for g in analysis.groups]
    return {"expanded": groups_holding(flat, names), "depth": None}


def run(args: argparse.Namespace) -> int:
    from cnnvis.session import SessionError, open_session

    try:
        analysis = open_session(args.session)
    except SessionError as exc:
        print(f"cnnvis export: error: cannot read the session: {exc}", file=sys.stderr)
        return 2
    if args.kind == "facets":
        from cnnvis.export.facets import export_facets

        out = export_facets(analysis, args.out)
    elif args.kind == "png":
        from cnnvis.export.png import export_png

        out = export_png(analysis, args.out, size=args.size, **overview_options(args, analysis))
    else:
        from cnnvis.export.svg import export_svg

        out = export_svg(analysis, args.out, size=args.size, **overview_options(args, analysis))
    print(f"wrote {out}")
    return 0
