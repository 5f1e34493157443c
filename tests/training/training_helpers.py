"""Small real training runs for the tracker and diagnosis tests: the demo CNN and a deep sigmoid
MLP trained on the digits, a Tracker snapshot after every epoch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnvis.data.digits import DigitsDataset
from cnnvis.models.demo import DemoCNN
from cnnvis.tracking import Tracker

TRAIN = DigitsDataset("train")
TEST = DigitsDataset("test")


def demo_cnn() -> nn.Module:
    torch.manual_seed(0)
    return DemoCNN()


def sigmoid_mlp(depth: int = 10, width: int = 64) -> nn.Module:
    """``depth`` linear + sigmoid layers on the flattened 8x8 digits, no normalisation."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Flatten()]
    for i in range(depth):
        layers += [nn.Linear(64 if i == 0 else width, width), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def tracked_run(model, lr: float, epochs: int, *, optimizer: str = "adam", **tracker_kw) -> Tracker:
    """Train ``model`` on the 1,347 training digits (batch 64, seed 0), snapshotting the untrained
    model and every epoch with its mean training loss and the test accuracy."""
    torch.set_num_threads(1)
    tracker = Tracker(model, TEST, **tracker_kw)
    opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    tracker.snapshot(epoch=0)
    for epoch in range(1, epochs + 1):
        model.train()
        perm, total = torch.randperm(len(TRAIN), generator=gen), 0.0
        for i in range(0, len(TRAIN), 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(model(TRAIN.images[idx]), TRAIN.targets[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            acc = float((model(TEST.images).argmax(1) == TEST.targets).float().mean())
        tracker.snapshot(epoch=epoch, loss=total / len(TRAIN), metrics={"test_accuracy": acc})
    return tracker


def kinds(findings) -> set[str]:
    return {f.kind for f in findings}
