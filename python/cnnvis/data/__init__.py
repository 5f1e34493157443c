"""Data: the built-in digits, torchvision data sets read from a local folder, and adapters.

Everything in cnnvis that takes data accepts a ``torch.utils.data.Dataset`` or a ``DataLoader``
yielding ``(images, labels)``; :func:`as_loader` turns either into a loader and
:func:`class_names_of` finds the class names carried by it (the ``classes`` attribute of the
data set, looked up through ``Subset``/``ConcatDataset``/``DataLoader`` wrappers).

:func:`load_dataset` reads a data set named by a short spec string:

``"digits"``
    scikit-learn's 8x8 digits (:class:`DigitsDataset`), split by a fixed seed.
``"cifar10:PATH"``, ``"mnist:PATH"``, ``"svhn:PATH"``
    the torchvision data set in the folder ``PATH`` (never downloaded). When files are missing the
    error lists which files were expected where.
``"imagefolder:PATH"``
    ``PATH/<class>/<image>`` (or ``PATH/train/<class>/...`` and ``PATH/test/<class>/...``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cnnvis.data.digits import DIGIT_CLASSES, DigitsDataset
from cnnvis.data.disk import DatasetFilesMissing, expected_files, load_dataset

__all__ = [
    "DIGIT_CLASSES",
    "DatasetFilesMissing",
    "DigitsDataset",
    "as_loader",
    "class_names_of",
    "collate_same_size",
    "expected_files",
    "load_dataset",
]


def _unwrap(data: Any) -> Any:
    """Follow DataLoader/Subset/ConcatDataset wrappers to the data set that holds the classes."""
    from torch.utils.data import ConcatDataset, DataLoader, Subset

    seen = 0
    while seen < 32:
        seen += 1
        if getattr(data, "classes", None) is not None:
            return data
        if isinstance(data, DataLoader):
            data = data.dataset
        elif isinstance(data, Subset):
            data = data.dataset
        elif isinstance(data, ConcatDataset) and len(data.datasets) > 0:
            data = data.datasets[0]
        else:
            return data
    return data


def class_names_of(data: Any, num_classes: int | None = None) -> list[str] | None:
    """Class names carried by a data set or loader.

    Parameters
    ----------
    data : Dataset or DataLoader
        Anything with a ``classes`` attribute, possibly wrapped in ``DataLoader``, ``Subset`` or
        ``ConcatDataset``.
    num_classes : int, optional
        When given and the data carries no names, ``["0", "1", ...]`` is returned instead of None.

    Returns
    -------
    list of str or None
        The names, in label order.
    """
    names = getattr(_unwrap(data), "classes", None)
    if names is not None:
        if isinstance(names, dict):  # some data sets map name -> index
            names = [n for n, _ in sorted(names.items(), key=lambda kv: kv[1])]
        return [str(n) for n in names]
    if num_classes is not None:
        return [str(i) for i in range(int(num_classes))]
    return None


def collate_same_size(batch: list) -> Any:
    """torch's ``default_collate``, with a clear error when the images of a batch differ in size
    (where it says "stack expects each tensor to be equal size")."""
    from torch.utils.data import default_collate

    if batch and all(isinstance(item, (tuple, list)) and item for item in batch):
        shapes = sorted({tuple(getattr(item[0], "shape", ())) for item in batch})
        if len(shapes) > 1:
            raise ValueError(
                f"the images of one batch differ in size ({', '.join(map(str, shapes))}): give "
                "the data set a transform that resizes them to the model's input size "
                "(load_dataset('imagefolder:PATH') resizes an image folder to its first image)"
            )
    return default_collate(batch)


def as_loader(
    data: Any,
    batch_size: int = 64,
    *,
    shuffle: bool = False,
    seed: int = 0,
    num_workers: int = 0,
    drop_last: bool = False,
) -> Any:
    """Turn a ``Dataset`` (or a ``DataLoader``, returned as it is) into a ``DataLoader``.

    Parameters
    ----------
    data : Dataset, DataLoader or sequence of (image, label) pairs
        The data. A ``DataLoader`` is returned unchanged (its own batch size wins).
    batch_size : int
        Batch size of a new loader.
    shuffle : bool
        Shuffle with a generator seeded by ``seed`` (the same order for the same seed).
    seed : int
        Seed of the shuffling.
    num_workers : int
        Worker processes of a new loader.
    drop_last : bool
        Drop the last incomplete batch.

    Returns
    -------
    torch.utils.data.DataLoader
        A new loader batches with :func:`collate_same_size`.
    """
    import torch
    from torch.utils.data import DataLoader, Dataset

    if isinstance(data, DataLoader):
        return data
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(data, (Dataset, Sequence)):
        raise TypeError(
            "data must be a torch Dataset, a DataLoader or a sequence of (image, label) pairs, "
            f"got {type(data).__name__}"
        )
    try:
        n = len(data)
    except TypeError:
        n = None
    if n == 0:
        raise ValueError("the data set is empty")
    generator = None
    if shuffle:
        generator = torch.Generator()
        generator.manual_seed(int(seed))
    return DataLoader(
        data,
        batch_size=int(batch_size),
        shuffle=shuffle,
        generator=generator,
        num_workers=num_workers,
        drop_last=drop_last,
        collate_fn=collate_same_size,
    )
