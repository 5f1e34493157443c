"""``python -m cnnvis info SESSION``: print a summary of a session."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("session", help="session folder")
    parser.add_argument(
        "--verify", action="store_true", help="also check the checksum of every file"
    )


def summary(rec, manifest: dict | None = None) -> str:
    """A few lines about a :class:`~cnnvis.record.Recording` (and its session manifest)."""
    lines = []
    data = rec.meta.get("data")
    lines.append(f"model      {rec.model_name}")
    lines.append(
        f"data       {data if data else '(not named)'}; input {'x'.join(map(str, rec.input_shape))}"
    )
    lines.append(
        f"samples    {rec.n_samples} ({rec.n_classes} classes; {len(rec.pooled_index)} kept for "
        "projections)"
    )
    lines.append(f"accuracy   {rec.accuracy:.2%}")
    backend = rec.meta.get("backend")
    lines.append(
        f"processes  {rec.meta.get('processes', 1)}" + (f" ({backend})" if backend else "")
    )
    lines.append(f"layers     {len(rec.layers)}")
    width = max((len(n) for n in rec.layers), default=0)
    for name, layer in rec.layers.items():
        lines.append(f"  {name:<{width}}  {layer.op:<7} {layer.n_channels:5d} channels")
    first = next(iter(rec.layers.values()), None)
    if first is not None:
        k, p = first.top_values.shape[1], first.top_patches.shape[2]
        source = getattr(first.top_patches, "source", None)
        how = "cut" if source is None else f"cut when shown from {len(source.samples)} images"
        lines.append(f"patches    top {k} per channel, {p}x{p} pixels, {how}")
    n_weights = sum(a.size for params in rec.weights.values() for a in params.values())
    lines.append(f"weights    {len(rec.weights)} modules, {n_weights:,} values")
    lines.append(
        f"graph      {rec.graph.number_of_nodes()} nodes, {rec.graph.number_of_edges()} edges"
    )
    if rec.snapshots:
        snaps = ", ".join(
            f"{s.get('epoch', '?')} ({s['accuracy']:.0%})"
            if "accuracy" in s
            else str(s.get("epoch"))
            for s in rec.snapshots
        )
        lines.append(f"snapshots  {len(rec.snapshots)}: epoch (accuracy) {snaps}")
        lines.extend(_snapshot_stats(rec.snapshots))
    else:
        lines.append("snapshots  none")
    if manifest is not None:
        files = manifest.get("files", {})
        size = sum(int(e.get("bytes", 0)) for e in files.values())
        parts = sorted({f.split(".")[0] for f in files if "/" not in f} - {"recording"})
        lines.append(
            f"session    format {manifest.get('format_version')}, created {manifest.get('created')}, "
            f"{len(files)} files, {size / 1e6:.1f} MB"
        )
        lines.append(f"parts      {', '.join(parts) if parts else 'recording only'}")
    return "\n".join(lines)


def _snapshot_stats(snaps: list[dict]) -> list[str]:
    """What the snapshots measured beyond the pooled activations (layer statistics, losses)."""
    lines = []
    stats = [s["stats"] for s in snaps if s.get("stats")]
    if stats:
        lines.append(f"  statistics of {len(stats[-1])} layers in {len(stats)} snapshots (weights, "
                     "gradients, activations, dead units): python -m cnnvis diagnose")  # fmt: skip
    losses = [(s.get("epoch", "?"), s["loss"]) for s in snaps if s.get("loss") is not None]
    if losses:
        lines.append("  loss       " + ", ".join(f"{e}: {v:.4g}" for e, v in losses))
    return lines


def run(args: argparse.Namespace) -> int:
    from cnnvis.session import SessionError, load, read_manifest, verify

    try:
        manifest = verify(args.session) if args.verify else read_manifest(args.session)
        rec = load(args.session)
    except SessionError as exc:
        print(f"cnnvis info: {exc}", file=sys.stderr)
        return 1
    print(f"session    {args.session}")
    print(summary(rec, manifest))
    return 0
