"""``python -m cnnvis <command>``.

Each command lives in the module that owns its work and registers itself here through
``COMMANDS``: a name mapped to ``(module, help)``; the module provides ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs (or when building
the help), so ``python -m cnnvis info`` does not pay for torch or Qt.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cnnvis.commands.demo", "train the built-in demo CNN on the digits and record it"),
    "train": (
        "cnnvis.commands.train",
        "train a case-study CNN on a data set on disk, with snapshots",
    ),
    "record": ("cnnvis.commands.record", "record a saved model on a data set into a session"),
    "info": ("cnnvis.commands.info", "print a summary of a session"),
    "diagnose": ("cnnvis.commands.diagnose", "find what went wrong in a model and its training"),
    "explain": (
        "cnnvis.commands.explain",
        "explain one sample: gradient maps, occlusion or an adversarial example, as a PNG",
    ),
    "compare": (
        "cnnvis.commands.compare",
        "two models recorded on the same data side by side: table, projections, picture",
    ),
    "export": ("cnnvis.commands.export", "write facets, PNG or SVG pictures of a session"),
    "animate": (
        "cnnvis.commands.animate",
        "play CSV files of any model's representations as an MP4 or GIF (the epoch animation)",
    ),
    "viewer": (
        "cnnvis.commands.viewer",
        "open the interactive viewer on a session (default: the demo)",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnnvis", description="See inside convolutional networks."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        code = int(importlib.import_module(args._module).run(args) or 0)
        sys.stdout.flush()  # a reader that went away shows here, where it is caught
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the output went to a pipe whose reader stopped (``cnnvis info S | head -1``): stop
        # quietly, as other command-line tools do; nothing more may be written to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError, KeyError) as exc:
        # Bad input (a missing file, a damaged session, an unknown layer) deserves one clear line,
        # not a traceback; CNNVIS_DEBUG=1 shows the traceback for bug reports.
        if os.environ.get("CNNVIS_DEBUG"):
            raise
        print(f"cnnvis {args.command}: error: {exc}", file=sys.stderr)
        return 2
