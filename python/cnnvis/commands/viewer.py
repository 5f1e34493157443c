"""``python -m cnnvis viewer [SESSION] [--screenshot F] [--size WxH]``: the interactive window.

Without a session it opens the built-in demo, created (trained, recorded, analysed) on first
use. Qt and vispy are imported inside :func:`run`, so building the CLI's help stays cheap.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def window_size(text: str) -> tuple[int, int]:
    """``"1280x800"`` -> ``(1280, 800)``; argparse's error for anything else."""
    from cnnvis.render.offscreen import parse_size

    try:
        return parse_size(text, limits=(200, 8192))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
        "--size", metavar="WxH", type=window_size, default=None, help="window size, e.g. 1920x1080"
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar while creating the demo"
    )


def run(args: argparse.Namespace) -> int:
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
    session = args.session
    if session is None:
        try:
            session = ensure_demo_session(progress=not args.no_progress)
        except Exception as exc:  # noqa: BLE001 - a failed demo build is reported, not raised
            print(f"cnnvis viewer: could not create the demo session: {exc}", file=sys.stderr)
            return 2
    return run_viewer(session, screenshot=args.screenshot, size=args.size)


def ensure_demo_session(progress: bool = True) -> str:
    """The built-in demo session, created (with a progress bar) when it does not exist yet.

    Creating it trains the demo CNN, records it, analyses it and computes the projection the
    viewer shows first, so that opening it later only reads files.
    """
    from cnnvis.analysis.core import PROJECTIONS_FILE
    from cnnvis.commands.demo import default_demo_dir, make_demo_session
    from cnnvis.viewer.app import prepare_session

    path = default_demo_dir()
    if not (path / "manifest.json").exists():
        print(f"creating the demo session in {path} (once)…", file=sys.stderr)
        make_demo_session(path, progress=progress)
    # the projection is saved last: an analysis saved without it (by export, say) is not enough
    if not (path / PROJECTIONS_FILE).exists():
        prepare_session(path, announce=lambda m: print(m, file=sys.stderr))
    return str(path)


def run_viewer(
    session: str | os.PathLike,
    *,
    screenshot: str | None = None,
    size: tuple[int, int] | None = None,
) -> int:
    """Open the viewer on the session folder ``session``; returns the exit status."""
    from PySide6 import QtCore

    from cnnvis.viewer.app import SessionOpenError, ViewerWindow, open_session, qt_app

    t0 = time.perf_counter()
    try:
        analysis = open_session(session, announce=lambda m: print(m, file=sys.stderr))
    except SessionOpenError as exc:
        print(f"cnnvis viewer: {exc}", file=sys.stderr)
        return 2
    app = qt_app()
    win = ViewerWindow(analysis, str(session))
    win.resize(*(size or _default_size(app)))
    win.show()
    for _ in range(3):
        app.processEvents()
    opened = time.perf_counter() - t0
    age = process_age()
    if age is not None:
        opened = max(opened, age)  # count the imports too: the time a user waits
    win.statusBar().showMessage(
        win.statusBar().currentMessage() + f"  ·  opened in {opened:.1f} s", 15000
    )
    if screenshot is not None:
        QtCore.QTimer.singleShot(50, lambda: _screenshot_and_quit(win, screenshot, app))
        app.exec()
        if not Path(screenshot).is_file():
            print(f"cnnvis viewer: could not write {screenshot}", file=sys.stderr)
            return 1
        print(f"wrote {screenshot} (opened in {opened:.2f} s)")
        return 0
    QtCore.QTimer.singleShot(1500, _warm_up_edits)
    app.exec()
    return 0


def process_age() -> float | None:
    """Seconds since this process started (Linux), or None where that is not known."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _warm_up_edits() -> None:
    """Import what the first split needs (scikit-learn's K-Means, seconds to import) in the
    background while the user looks at the window, so the first edit is as quick as the others."""
    import importlib
    import threading

    threading.Thread(
        target=lambda: importlib.import_module("sklearn.cluster"),
        name="cnnvis-warm-up",
        daemon=True,
    ).start()


def _screenshot_and_quit(win, out: str, app) -> None:
    try:
        win.screenshot(out)
    except OSError as exc:
        print(f"cnnvis viewer: {exc}", file=sys.stderr)
    finally:
        app.quit()


def _default_size(app) -> tuple[int, int]:
    """90% of the screen, at most 1920x1080 and at least 1024x700."""
    screen = app.primaryScreen()
    if screen is None:
        return (1600, 900)
    g = screen.availableGeometry()
    return (
        max(1024, min(1920, int(g.width() * 0.9))),
        max(700, min(1080, int(g.height() * 0.9))),
    )
