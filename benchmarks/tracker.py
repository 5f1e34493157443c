"""Cost of a Tracker snapshot against an epoch of training, and the time to diagnose a session.

Anchor: one epoch of the demo CNN's training (the 1,347 training digits, batch 32, AdamW, one
torch thread as ``python -m cnnvis demo`` trains). Claim (issue 18): a snapshot
(``Tracker.snapshot``: forward and backward over the probe set, per-layer statistics) costs at
most 10% of that epoch, at the default probe size (128) and below; diagnosing a 20-snapshot
session takes under 1 s.

Times are medians of ``--repeats`` runs, epochs and snapshots alternating so that a busy shared
machine slows both alike. The diagnosis rows time ``diagnose`` on an opened session (the
analysis it reads is built when the session is first opened, as the viewer does) and the whole
``python -m cnnvis diagnose`` in-process (opening, reading and diagnosing).

Usage::

    PYTHONPATH=python python benchmarks/tracker.py [--repeats 7] [--probe-sizes 64,128,256]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnvis.analysis.diagnosis import diagnose
from cnnvis.cli import main
from cnnvis.data.digits import DigitsDataset
from cnnvis.models.demo import DemoCNN
from cnnvis.session import open_session
from cnnvis.tracking import Tracker


def _epoch(model, opt, train, gen) -> float:
    """One training epoch as the demo runs it; returns its mean loss."""
    model.train()
    perm, total = torch.randperm(len(train), generator=gen), 0.0
    for i in range(0, len(train), 32):
        idx = perm[i : i + 32]
        loss = F.cross_entropy(model(train.images[idx]), train.targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(idx)
    return total / len(train)


def _timed(f) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def snapshot_rows(repeats: int, probe_sizes: list[int]) -> list[tuple]:
    train, test = DigitsDataset("train"), DigitsDataset("test")
    torch.manual_seed(0)
    model = DemoCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    trackers = {n: Tracker(model, test, probe_size=n) for n in probe_sizes}
    for t in trackers.values():
        t.snapshot()  # warm-up
    epochs: list[float] = []
    snaps: dict[int, list[float]] = {n: [] for n in probe_sizes}
    for _ in range(repeats):
        epochs.append(_timed(lambda: _epoch(model, opt, train, gen)))
        for n, t in trackers.items():
            snaps[n].append(_timed(lambda t=t: t.snapshot(loss=1.0)))
    epoch = statistics.median(epochs)
    return [(n, epoch, statistics.median(snaps[n])) for n in probe_sizes]


def diagnosis_rows(repeats: int, n_snapshots: int = 20) -> list[tuple[str, float]]:
    train, test = DigitsDataset("train"), DigitsDataset("test")
    torch.manual_seed(0)
    model = DemoCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    tracker = Tracker(model, test)
    for e in range(n_snapshots):
        tracker.snapshot(epoch=e, loss=_epoch(model, opt, train, gen))
    with tempfile.TemporaryDirectory() as tmp:
        path = tracker.save(Path(tmp) / "session")
        analysis = open_session(path)  # the first opening analyses and saves the analysis
        pure = [_timed(lambda: diagnose(analysis)) for _ in range(repeats)]
        with contextlib.redirect_stdout(io.StringIO()):
            command = [_timed(lambda: main(["diagnose", str(path)])) for _ in range(repeats)]
    return [
        (f"diagnose(analysis), {n_snapshots} snapshots", statistics.median(pure)),
        (f"python -m cnnvis diagnose (in-process), {n_snapshots} snapshots",
         statistics.median(command)),
    ]  # fmt: skip


def main_(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--probe-sizes", default="64,128,256")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sizes = [int(s) for s in args.probe_sizes.split(",")]
    print(
        "| probe samples | epoch of training (s) | snapshot (s) | snapshot / epoch | target <= 10% |"
    )
    print("|---:|---:|---:|---:|---|")
    for n, epoch, snap in snapshot_rows(args.repeats, sizes):
        ok = "met" if snap <= 0.10 * epoch else "missed"
        print(f"| {n} | {epoch:.3f} | {snap:.4f} | {snap / epoch:.1%} | {ok} |")
    print()
    print("| diagnosis | time (s) | target < 1 s |")
    print("|---|---:|---|")
    for what, t in diagnosis_rows(args.repeats):
        print(f"| {what} | {t:.4f} | {'met' if t < 1 else 'missed'} |")


if __name__ == "__main__":
    main_()
