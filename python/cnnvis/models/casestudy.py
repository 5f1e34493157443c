"""The case-study networks of CNNVis (C9): BaseCNN, ShallowCNN, DeepCNN and width variants.

All three are plain stacks of 3x3 convolutions (padding 1, each followed by batch norm and ReLU)
in blocks that end with a 2x2 max-pool, then two fully connected layers. Sized for 32x32 inputs
(CIFAR-10, SVHN); other square sizes work (``input_size``), the flattened size follows it.

==========  ==============================  =====  =====  =======================================
model       convs per block                 conv   pool   channels per block (``width=1``)
==========  ==============================  =====  =====  =======================================
BaseCNN     2, 2, 3, 3                      10     4      32, 64, 128, 256
ShallowCNN  2, 2, 3                         7      3      32, 64, 128
DeepCNN     4, 4, 6, 6                      20     4      32, 64, 128, 256
==========  ==============================  =====  =====  =======================================

BaseCNN follows CNNVis (10 convolutional, 4 pooling and 2 fully connected layers). ShallowCNN has
three convolutional layers and one pooling layer fewer (it drops BaseCNN's last block). DeepCNN
has twice BaseCNN's convolutional layers; it keeps four pooling layers rather than adding more,
because a 32x32 input halved four times is already 2x2 (a fifth pool would leave 1x1 maps and a
sixth nothing), so every block doubles its convolutions instead. ``width=w`` multiplies every
layer's channels (and the hidden fully connected units) by ``w`` (BaseCNN x w). The classifier
is ``fc1`` (512 x w units) -> ReLU -> dropout -> ``fc2`` (one unit per class).

Modules are named for reading: ``features.block1.conv1``, ``features.block1.bn1``,
``features.block1.relu1``, ``features.block1.pool``, ..., ``classifier.fc1``,
``classifier.fc2``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import nn

__all__ = ["MODELS", "BaseCNN", "CaseStudyCNN", "DeepCNN", "ShallowCNN", "build_model"]


def _scaled(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


class CaseStudyCNN(nn.Module):
    """A plain conv stack in pooled blocks, then two fully connected layers.

    Parameters
    ----------
    blocks : sequence of (int, int)
        ``(number of convs, channels)`` per block; each block ends with a 2x2 max-pool.
    num_classes : int
        Output units.
    in_channels : int
        Input channels (3 for colour images, 1 for MNIST).
    width : float
        Multiplies every layer's channels and the hidden units.
    input_size : int
        Side of the square input images.
    hidden : int
        Units of the first fully connected layer at ``width=1``.
    batch_norm : bool
        Batch norm after every conv (``False`` gives the plain conv/ReLU stacks of 2016).
    dropout : float
        Dropout before the last layer.
    """

    def __init__(
        self,
        blocks: list[tuple[int, int]],
        num_classes: int = 10,
        in_channels: int = 3,
        width: float = 1.0,
        input_size: int = 32,
        hidden: int = 512,
        batch_norm: bool = True,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        for name, v in (("num_classes", num_classes), ("in_channels", in_channels)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not (isinstance(width, (int, float)) and 0 < width <= 64):
            raise ValueError(f"width must be a number in (0, 64], got {width!r}")
        side = int(input_size)
        for _ in blocks:
            side //= 2
        if side < 1:
            raise ValueError(
                f"input_size {input_size} is too small for {len(blocks)} 2x2 poolings "
                f"(needs at least {2 ** len(blocks)})"
            )
        self.width = float(width)
        self.input_size = int(input_size)
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        feats: OrderedDict[str, nn.Module] = OrderedDict()
        c_in = int(in_channels)
        for b, (n_conv, channels) in enumerate(blocks, start=1):
            c = _scaled(channels, width)
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for i in range(1, n_conv + 1):
                layers[f"conv{i}"] = nn.Conv2d(c_in, c, 3, padding=1, bias=not batch_norm)
                if batch_norm:
                    layers[f"bn{i}"] = nn.BatchNorm2d(c)
                layers[f"relu{i}"] = nn.ReLU(inplace=True)
                c_in = c
            layers["pool"] = nn.MaxPool2d(2)
            feats[f"block{b}"] = nn.Sequential(layers)
        self.features = nn.Sequential(feats)
        h = _scaled(hidden, width)
        self.classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(c_in * side * side, h),
                relu=nn.ReLU(inplace=True),
                dropout=nn.Dropout(dropout),
                fc2=nn.Linear(h, int(num_classes)),
            )
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BaseCNN(CaseStudyCNN):
    """CNNVis's BaseCNN: 10 conv (blocks of 2, 2, 3, 3), 4 max-pool, 2 FC layers.

    Parameters are those of :class:`CaseStudyCNN` except ``blocks``.
    """

    BLOCKS = [(2, 32), (2, 64), (3, 128), (3, 256)]

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(self.BLOCKS, num_classes, in_channels, width, **kwargs)


class ShallowCNN(CaseStudyCNN):
    """BaseCNN with three conv layers and one pooling layer fewer: 7 conv, 3 max-pool, 2 FC."""

    BLOCKS = [(2, 32), (2, 64), (3, 128)]

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(self.BLOCKS, num_classes, in_channels, width, **kwargs)


class DeepCNN(CaseStudyCNN):
    """BaseCNN with twice the conv layers: 20 conv (blocks of 4, 4, 6, 6), 4 max-pool, 2 FC.

    The pooling stays at four 2x2 layers, as a 32x32 input leaves 2x2 maps after four.
    """

    BLOCKS = [(4, 32), (4, 64), (6, 128), (6, 256)]

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0, **kwargs: Any
    ) -> None:
        super().__init__(self.BLOCKS, num_classes, in_channels, width, **kwargs)


MODELS: dict[str, type[CaseStudyCNN]] = {
    "basecnn": BaseCNN,
    "shallowcnn": ShallowCNN,
    "deepcnn": DeepCNN,
}


def build_model(
    name: str,
    num_classes: int = 10,
    in_channels: int = 3,
    width: float = 1.0,
    **kwargs: Any,
) -> CaseStudyCNN:
    """A case-study model by name.

    Parameters
    ----------
    name : {"basecnn", "shallowcnn", "deepcnn"}
        Case-insensitive.
    num_classes, in_channels, width
        See :class:`CaseStudyCNN`.
    **kwargs
        ``input_size``, ``hidden``, ``batch_norm``, ``dropout``.

    Returns
    -------
    CaseStudyCNN
    """
    key = str(name).strip().lower().replace("-", "").replace("_", "")
    cls = MODELS.get(key)
    if cls is None:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODELS)}")
    return cls(num_classes=num_classes, in_channels=in_channels, width=width, **kwargs)
