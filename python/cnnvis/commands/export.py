"""``python -m cnnvis export {facets,png,svg} SESSION --out PATH``.

Each kind is written by a library function (``cnnvis.export.<kind>.export_<kind>``) with plain
arguments; an error it raises becomes one line and exit status 2 in :func:`cnnvis.cli.main`.
"""

from __future__ import annotations

import argparse

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


def run(args: argparse.Namespace) -> int:
    if args.kind == "facets":
        from cnnvis.export.facets import export_facets

        out = export_facets(args.session, args.out)
    elif args.kind == "png":
        from cnnvis.export.png import export_png

        out = export_png(args.session, args.out, size=args.size)
    else:
        from cnnvis.export.svg import export_svg

        out = export_svg(args.session, args.out, size=args.size)
    print(f"wrote {out}")
    return 0
