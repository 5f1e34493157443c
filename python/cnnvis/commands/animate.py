"""``python -m cnnvis animate A.csv B.csv … [--labels L.csv] --out F.mp4|F.gif``.

The epoch animation for representations of any model (a CNN's, a language model's): each CSV
holds one row per sample and one column per feature, the same samples in the same order in
every file (the columns may differ, so two models can be morphed into each other). Their t-SNEs
are aligned (:func:`cnnvis.analysis.animation.aligned_frames`) and played into a video by
:func:`cnnvis.export.animation.write_animation`, as ``export animation`` does for a session.

A first line that is not all numbers is taken as a header. ``--labels`` is a CSV with one value
per sample (class indices, or names such as ``positive``), optionally under a header.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def add_video_arguments(parser: argparse.ArgumentParser, *, layer: bool = False) -> None:
    """The options every animation takes; ``export animation`` (``layer``) adds ``--layer``
    and tracks samples by their position in the data, ``animate`` by their row."""
    kind = "animation; " if layer else ""
    if layer:
        parser.add_argument(
            "--layer",
            help="the layer played (animation; default the last), drawn (imagemap; default the"
            " viewer's first) or whose weights are drawn (weights: a Conv2d or Linear module)",
        )
    parser.add_argument(
        "--fps", type=float, default=30.0, help=f"frames per second ({kind}default 30)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help=f"length of the video ({kind}default 10)"
    )
    which = "positions in the data" if layer else "rows of the CSV files, from 0"
    parser.add_argument(
        "--track",
        metavar="I,J,…|none",
        help=f"samples labelled A, B, … with trails ({kind}{which}); default: the three whose"
        " trajectories stray furthest from their class",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="CSV", help="representations, in order")
    parser.add_argument("--labels", help="CSV of one class (index or name) per sample")
    parser.add_argument("--out", required=True, help="the video: .mp4 or .gif")
    parser.add_argument(
        "--names", help="comma-separated caption per file (default: the file names)"
    )
    parser.add_argument("--title", default="", help="text at the top left")
    parser.add_argument("--size", default="1280x720", help="WxH in pixels (default 1280x720)")
    parser.add_argument("--jobs", type=int, default=1, help="t-SNE threads (default 1)")
    add_video_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from cnnvis.analysis.animation import aligned_frames
    from cnnvis.export.animation import FrameStyle, write_animation

    if len(args.files) < 2:
        raise ValueError("animate needs at least two CSV files of representations")
    matrices = [read_matrix(f) for f in args.files]
    for path, m in zip(args.files[1:], matrices[1:]):
        if m.shape[0] != matrices[0].shape[0]:
            raise ValueError(
                f"{path} has {m.shape[0]} rows and {args.files[0]} has {matrices[0].shape[0]}:"
                " every file needs the same samples, one per row"
            )
    n = matrices[0].shape[0]
    labels, names = read_labels(args.labels, n) if args.labels else (np.zeros(n, np.int64), [])
    captions = _captions(args.names, args.files)
    frames = aligned_frames(matrices, n_jobs=args.jobs)
    rows = parse_track(args.track)
    if rows is None:
        rows = _strays(frames, labels)
    style = FrameStyle(args.title, captions, names, rows)
    out = write_animation(
        frames, labels, args.out, style=style, fps=args.fps, seconds=args.seconds, size=args.size
    )
    print(f"wrote {out}")
    return 0


def export_animation_from(analysis, args: argparse.Namespace, snapshots=None):
    """``export animation``: :func:`cnnvis.export.animation.export_animation` with the options
    (``snapshots`` parsed from ``--snapshots`` by the export command)."""
    from cnnvis.export.animation import export_animation

    return export_animation(
        analysis,
        args.out,
        layer=args.layer,
        snapshots=snapshots,
        track=parse_track(args.track),
        fps=args.fps,
        seconds=args.seconds,
        size=args.size or "1280x720",
    )


def parse_track(text: str | None) -> list[int] | None:
    """``--track``: None (the default choice), ``[]`` for ``none``, or the integers given."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(
            f"--track takes integers separated by commas or 'none', got {text!r}"
        ) from None


def _strays(frames: np.ndarray, labels: np.ndarray) -> list[int]:
    """The three rows whose trajectories stray furthest from their class."""
    from cnnvis.analysis.trajectories import trajectory_outliers

    score = trajectory_outliers(frames.transpose(1, 0, 2), labels)
    return [int(r) for r in np.argsort(-score, kind="stable")[:3]]


def _captions(names: str | None, files: list[str]) -> list[str]:
    if names is None:
        return [Path(f).stem for f in files]
    captions = [s.strip() for s in names.split(",")]
    if len(captions) != len(files):
        raise ValueError(f"--names gives {len(captions)} captions for {len(files)} files")
    return captions


def _rows(path: str) -> list[tuple[int, list[str]]]:
    """The non-empty lines of a CSV file with their line numbers."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return [
                (i, row) for i, row in enumerate(csv.reader(f), 1) if any(c.strip() for c in row)
            ]
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text CSV file") from None


def read_matrix(path: str) -> np.ndarray:
    """A numeric CSV as a float64 ``(rows, columns)`` matrix; a first line that is not all
    numbers is a header. Ragged lines, cells that are not numbers, NaN and inf are a
    ``ValueError`` naming the file and the line."""
    lines = _rows(path)
    if lines and not all(_is_number(c) for c in lines[0][1]):
        lines = lines[1:]  # a header
    if not lines:
        raise ValueError(f"{path} holds no rows of numbers")
    width = len(lines[0][1])
    out = np.empty((len(lines), width))
    for r, (number, row) in enumerate(lines):
        if len(row) != width:
            raise ValueError(
                f"{path} line {number} has {len(row)} values, line {lines[0][0]} has {width}"
            )
        try:
            out[r] = [float(c) for c in row]
        except ValueError:
            bad = next(c for c in row if not _is_number(c))
            raise ValueError(f"{path} line {number}: {bad.strip()!r} is not a number") from None
        if not np.all(np.isfinite(out[r])):
            raise ValueError(f"{path} line {number} holds NaN or inf")
    return out


def read_labels(path: str, n: int) -> tuple[np.ndarray, list[str]]:
    """``n`` labels from a one-column CSV (optional header): class indices ``>= 0`` as they
    are, names as indices into their sorted list. Returns ``(labels, class names)``."""
    lines = _rows(path)
    values = [row[0].strip() for _, row in lines]
    if any(len(row) != 1 for _, row in lines):
        raise ValueError(f"{path} must hold one label per line")
    if len(values) == n + 1:
        values = values[1:]  # a header
    if len(values) != n:
        raise ValueError(f"{path} has {len(values)} labels for {n} samples")
    if all(v.isdigit() for v in values):
        labels = np.array([int(v) for v in values], dtype=np.int64)
        return labels, [str(c) for c in range(int(labels.max()) + 1)]
    names = sorted(set(values))
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
