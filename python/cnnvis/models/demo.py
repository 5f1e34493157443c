"""The built-in demo network: a small CNN for the 1x8x8 handwritten digits."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class DemoCNN(nn.Module):
    """Three conv blocks (16-32-64 channels) and two fully connected layers for 8x8 inputs.

    ======== ========================================= ===================
    module   layers                                    output of the block
    ======== ========================================= ===================
    block1   conv 3x3 (16), batch norm, ReLU           16 x 8 x 8
    block2   conv 3x3 (32), batch norm, ReLU, max 2x2  32 x 4 x 4
    block3   conv 3x3 (64), batch norm, ReLU, max 2x2  64 x 2 x 2
    head     flatten, fc1 (64), ReLU, dropout, fc2     n_classes
    ======== ========================================= ===================

    Layer names follow :meth:`~torch.nn.Module.named_modules`: ``block1.conv``, ``block2.relu``,
    ``head.fc1``, ... About 45k parameters.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_classes : int
        Number of outputs (logits).
    width : int
        Channels of the first block; the others have 2x and 4x as many.
    """

    def __init__(self, in_channels: int = 1, n_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        c1, c2, c3 = width, 2 * width, 4 * width

        def block(cin: int, cout: int, pool: bool) -> nn.Sequential:
            layers = OrderedDict(
                conv=nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                bn=nn.BatchNorm2d(cout),
                relu=nn.ReLU(inplace=True),
            )
            if pool:
                layers["pool"] = nn.MaxPool2d(2)
            return nn.Sequential(layers)

        self.block1 = block(in_channels, c1, pool=False)
        self.block2 = block(c1, c2, pool=True)
        self.block3 = block(c2, c3, pool=True)
        self.head = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(c3 * 2 * 2, 64),
                relu=nn.ReLU(inplace=True),
                dropout=nn.Dropout(0.25),
                fc2=nn.Linear(64, n_classes),
            )
        )
        self.arch_kwargs = {"in_channels": in_channels, "n_classes": n_classes, "width": width}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block3(self.block2(self.block1(x))))


#: Layers the demo records: each conv block after its ReLU (before pooling: 8x8, 8x8, 4x4 maps),
#: the hidden fully connected layer after its ReLU, and the logits.
DEMO_LAYERS = ["block1.relu", "block2.relu", "block3.relu", "head.relu", "head.fc2"]
