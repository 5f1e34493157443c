"""``python -m cnnvis export {facets,png,svg,projections,animation,weights,confusion} SESSION
--out PATH``.

The session is opened here with :func:`cnnvis.session.open_session`; each kind is then written
from its analysis by a library function (``cnnvis.export.<kind>.export_<kind>``) with plain
arguments. An error it raises becomes one line and exit status 2 in :func:`cnnvis.cli.main`.
``png`` and ``svg`` take ``--expand all|GROUP[,GROUP...]`` (the layer groups shown open; a nested
group opens with the groups that hold it) or ``--depth N`` (the first N nesting levels open).
"""

from __future__ import annotations

import argparse

KINDS = {
    "facets": "per cluster, the packed learned-feature image and the reordered activation matrix",
    "png": "the overview the viewer shows, rendered offscreen",
    "svg": "the overview as vector graphics, straight from the scene",
    "projections": "sample and neuron projections per layer and snapshot, trajectories, an image"
    " map, a CSV of positions and TensorBoard projector files",
    "animation": "the training snapshots' projections of --layer played as an MP4 or GIF",
    "weights": "a layer's weights as images: filters, or a dense layer's templates (--layer)",
    "confusion": "the confusion matrix with each cell's most confident example, and the mistakes",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=list(KINDS), help="what to write")
    parser.add_argument("session", help="session folder (see `python -m cnnvis demo`)")
    parser.add_argument(
        "--out",
        required=True,
        help="output file (png, svg, animation .mp4/.gif) or folder (facets, projections)",
    )
    parser.add_argument(
        "--size", help="WxH in pixels (png, svg: default 1920x1080; animation: 1280x720)"
    )
    parser.add_argument(
        "--layers", help="comma-separated layers, the grid's rows (projections; default all)"
    )
    parser.add_argument(
        "--snapshots",
        help="comma-separated snapshot positions or 'model', the grid's columns (projections;"
        " default: the first snapshot and the model, untrained against trained) or the"
        " keyframes (animation; default: every snapshot)",
    )
    parser.add_argument(
        "--neuron",
        help="LAYER:CHANNEL, also colour every sample panel by this neuron's activation"
        " (projections)",
    )
    parser.add_argument(
        "--expand",
        metavar="all|GROUP[,GROUP...]",
        help="layer groups shown open (png, svg): 'all', or names such as layer2,layer3.1 (a "
        "nested group opens with the groups that hold it); default: the viewer's default depth",
    )
    parser.add_argument(
        "--depth", type=int, metavar="N", help="open the first N nesting levels (png, svg)"
    )
    from cnnvis.commands.animate import add_video_arguments

    add_video_arguments(parser, layer=True)
    parser.add_argument(
        "--view",
        choices=("overview", "imagemap"),
        default="overview",
        help="png, svg: the overview, or a sample projection as an image map",
    )


def overview_options(args: argparse.Namespace, analysis) -> dict:
    """``expanded`` and ``depth`` for export_png/export_svg from ``--expand`` and ``--depth``."""
    if args.expand is not None and args.depth is not None:
        raise ValueError("give --expand or --depth, not both")
    expand = args.expand
    if expand is None or expand == "all":
        return {"expanded": expand, "depth": args.depth}
    from cnnvis.scene.overview import groups_holding

    names = _names(expand)
    if not names:
        raise ValueError("--expand needs 'all' or group names separated by commas")
    flat = [(g.name, g.layers) for g in analysis.groups]
    return {"expanded": groups_holding(flat, names), "depth": None}


def run(args: argparse.Namespace) -> int:
    from cnnvis.session import open_session

    if args.kind in ("weights", "confusion"):  # the model's and the recording's, no analysis
        from cnnvis.export.toolbox import export_confusion, export_weights

        out = export_weights(args.session, args.out, args.layer) if args.kind == "weights" else (
            export_confusion(args.session, args.out))  # fmt: skip
        print(f"wrote {out}")
        return 0
    analysis = open_session(args.session)
    if args.kind == "facets":
        from cnnvis.export.facets import export_facets

        out = export_facets(analysis, args.out)
    elif args.kind == "projections":
        from cnnvis.export.projections import export_projections

        out = export_projections(
            analysis,
            args.out,
            layers=_names(args.layers),
            snapshots=_snapshots(args.snapshots),
            neuron=_neuron(args.neuron),
        )
    elif args.kind == "animation":
        from cnnvis.commands.animate import export_animation_from

        out = export_animation_from(analysis, args, _snapshots(args.snapshots))
    elif args.view == "imagemap" and args.kind in ("png", "svg"):
        from cnnvis.export.projections import write_image_map
        from cnnvis.scene.inputs import default_projection_layer

        layer = args.layer or default_projection_layer(analysis)
        out = write_image_map(analysis, layer, args.out, kind=args.kind)
    elif args.kind == "png":
        from cnnvis.export.png import export_png

        out = export_png(analysis, args.out, size=args.size, **overview_options(args, analysis))
    else:
        from cnnvis.export.svg import export_svg

        out = export_svg(analysis, args.out, size=args.size, **overview_options(args, analysis))
    print(f"wrote {out}")
    return 0


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [s.strip() for s in text.split(",") if s.strip()]


def _snapshots(text: str | None) -> list[int | None] | None:
    names = _names(text)
    if names is None:
        return None
    try:
        return [None if s == "model" else int(s) for s in names]
    except ValueError:
        raise ValueError(f"--snapshots takes integers or 'model', got {text!r}") from None


def _neuron(text: str | None) -> tuple[str, int] | None:
    if text is None:
        return None
    layer, _, channel = text.rpartition(":")
    if not layer or not channel.isdigit():
        raise ValueError(f"--neuron takes LAYER:CHANNEL, e.g. head.relu:12, got {text!r}")
    return layer, int(channel)
