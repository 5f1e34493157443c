"""Fixtures of the toolbox tests: the demo CNN trained briefly on the digits, and a ResNet-18."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cnnvis.data.digits import DigitsDataset
from cnnvis.models.demo import DemoCNN


@pytest.fixture(scope="session")
def digits():
    """``(x_train, y_train, x_test, y_test)`` of the digits, the demo's split (seed 0)."""
    train, test = DigitsDataset("train", seed=0), DigitsDataset("test", seed=0)
    return train.images, train.targets, test.images, test.targets


@pytest.fixture(scope="session")
def trained_demo(digits):
    """DemoCNN after 6 epochs of Adam on the 1,347 training digits (about 97% held out; 2-4 s),
    in eval mode."""
    x, y, xt, yt = digits
    torch.manual_seed(0)
    model = DemoCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds synchronisation
    try:
        for _ in range(6):
            for idx in torch.randperm(len(y), generator=gen).split(32):
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        accuracy = float((model(xt).argmax(1) == yt).float().mean())
    assert accuracy > 0.9, accuracy
    return model


@pytest.fixture(scope="session")
def resnet():
    """torchvision's ResNet-18 with random weights (in-place ReLUs, one module reused twice per
    block), 10 classes, eval mode."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=10).eval()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for these tests: their tensors are small, and the machine is shared.
    Restored after each module, so the rest of the suite keeps its own setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
