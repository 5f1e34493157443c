"""``python -m cnnvis viewer [SESSION] [--screenshot F] [--size WxH]``: the interactive window.

Qt and vispy are imported inside :func:`run`, so building the CLI's help stays cheap.
"""

from __future__ import annotations

import argparse
import re
import sys


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x800"`` -> ``(1280, 800)``; a clear error for anything else."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"size must look like 1280x800, got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (200 <= w <= 8192 and 200 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"size {w}x{h} is out of range (200..8192 per side)")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "session",
        nargs="?",
        default=None,
        help="session folder (default: the built-in demo, created on first use)",
    )
    parser.add_argument(
        "--screenshot",
        metavar="FILE",
        default=None,
        help="open the window, save a PNG screenshot of it to FILE and exit",
    )
    parser.add_argument(
        "--size", metavar="WxH", type=parse_size, default=None, help="window size, e.g. 1920x1080"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar while creating the demo"
    )


def run(args: argparse.Namespace) -> int:
    import os

    if (
        sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        and os.environ.get("QT_QPA_PLATFORM") is None
    ):
        print(
            "cnnvis viewer: no display found (DISPLAY is not set). Run it on a desktop, under"
            " `xvfb-run -a`, or use `python -m cnnvis export png SESSION --out F` instead.",
            file=sys.stderr,
        )
        return 2
    from cnnvis.viewer.app import run_viewer

    return run_viewer(
        args.session,
        screenshot=args.screenshot,
        size=args.size,
        progress=not args.no_progress,
    )
