"""Image data sets read from a local folder, in the on-disk formats torchvision uses.

Nothing is downloaded. The folder layouts are those that torchvision's own data sets create with
``download=True`` (so a folder torchvision downloaded works as it is), and a few flatter ones:

=============  ===========================================================================
spec           files (``PATH`` may also be the inner folder)
=============  ===========================================================================
cifar10:PATH   ``PATH/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``
               (the "python version" pickle batches)
mnist:PATH     ``PATH/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``
svhn:PATH      ``PATH/{train,test}_32x32.mat`` (the "cropped digits" format 2)
imagefolder:P  ``P/<class>/<image>``, or ``P/train/<class>/...`` and ``P/test/<class>/...``
=============  ===========================================================================

The CIFAR, MNIST and SVHN readers here parse those files directly rather than through
torchvision's classes, because those verify the MD5 sums of the official archives and reject a
re-packed or cut-down copy with a bare "not found or corrupted"; they also need MNIST unpacked.
CIFAR batches are Python pickles (that is the format): they are read with an unpickler that only
admits the handful of builtins and numpy reconstructors such a batch contains, so a tampered
batch cannot run code. Before anything is read, every expected file is checked, and a
:class:`DatasetFilesMissing` error lists which files were expected where.

Images come out as float32 tensors ``(C, H, W)`` in ``[0, 1]`` (pass ``transform`` to change
that), labels as ints. An image folder may mix image sizes: every image is brought to the size of
its first one (in file order), bilinearly with antialiasing, since a model takes inputs of one
size and a batch needs them; images of that size are left as they are; every data set carries ``.classes`` (names in label order) and
``.targets``.
"""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ArrayImageDataset", "DatasetFilesMissing", "expected_files", "load_dataset"]

KINDS = ("digits", "cifar10", "mnist", "svhn", "imagefolder")
SPLITS = ("train", "test")

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}
CIFAR10_META = "batches.meta"
MNIST_FILES = {
    "train": ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
    "test": ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
}
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
DIGIT_NAMES = [str(d) for d in range(10)]


class DatasetFilesMissing(FileNotFoundError):
    """A data set folder lacks files; ``.expected`` lists the paths that were looked for."""

    def __init__(self, message: str, expected: list[str]) -> None:
        super().__init__(message)
        self.expected = expected


class ArrayImageDataset(Dataset):
    """Images held in memory as a uint8 array ``(N, H, W, C)`` with integer labels.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, H, W, C)
    targets : ndarray of int, shape (N,)
    classes : list of str
        Class names in label order.
    transform : callable, optional
        Applied to each image instead of the default conversion (a float32 tensor ``(C, H, W)``
        in ``[0, 1]``); it receives the ``(H, W, C)`` uint8 array.
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        classes: list[str],
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        images = np.ascontiguousarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(
                f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}"
            )
        targets = np.asarray(targets, dtype=np.int64).reshape(-1)
        if targets.shape[0] != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {targets.shape[0]} labels")
        if targets.size and (targets.min() < 0 or targets.max() >= len(classes)):
            raise ValueError(
                f"labels must lie in [0, {len(classes)}), found {targets.min()}..{targets.max()}"
            )
        self.data = images
        self.targets = targets
        self.classes = list(classes)
        self.transform = transform

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, i: int) -> tuple[Any, int]:
        img = self.data[i]
        if self.transform is not None:
            return self.transform(img), int(self.targets[i])
        x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)
        return x, int(self.targets[i])

    def __repr__(self) -> str:
        n, h, w, c = self.data.shape
        return f"ArrayImageDataset({n} images {c}x{h}x{w}, {len(self.classes)} classes)"


# --------------------------------------------------------------------------------------------
# spec parsing and expected files
# --------------------------------------------------------------------------------------------


def _parse_spec(spec: str, root: str | os.PathLike | None) -> tuple[str, Path | None]:
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"a data set spec must be a non-empty string like 'cifar10:PATH', got {spec!r}"
        )
    kind, sep, path = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ValueError(
            f"unknown data set {kind!r} in {spec!r}; expected one of "
            + ", ".join(k if k == "digits" else f"{k}:PATH" for k in KINDS)
        )
    if kind == "digits":
        return kind, None
    if sep and path:
        p = Path(os.path.expanduser(path))
        if root is not None and not p.is_absolute():
            p = Path(root) / p
    elif root is not None:
        p = Path(root)
    else:
        raise ValueError(f"{kind} needs a folder: write '{kind}:PATH' or pass root=")
    return kind, p


def _cifar_dir(path: Path) -> Path:
    inner = path / CIFAR10_FOLDER
    if inner.is_dir() or not (path / CIFAR10_META).exists():
        return inner
    return path


def _mnist_dir(path: Path) -> Path:
    for cand in (path / "MNIST" / "raw", path / "raw", path):
        if any((cand / f).exists() or (cand / (f + ".gz")).exists() for f in MNIST_FILES["train"]):
            return cand
    return path / "MNIST" / "raw"


def expected_files(
    spec: str, split: str = "train", root: str | os.PathLike | None = None
) -> list[str]:
    """The files :func:`load_dataset` reads for ``spec`` and ``split`` (MNIST: ``.gz`` optional).

    Returns
    -------
    list of str
        Paths; empty for ``digits`` and ``imagefolder``.
    """
    kind, path = _parse_spec(spec, root)
    _check_split(split)
    if kind == "cifar10":
        d = _cifar_dir(path)
        return [str(d / f) for f in [*CIFAR10_FILES[split], CIFAR10_META]]
    if kind == "mnist":
        d = _mnist_dir(path)
        return [str(d / f) for f in MNIST_FILES[split]]
    if kind == "svhn":
        return [str(path / SVHN_FILES[split])]
    return []


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def _require(kind: str, path: Path, split: str, files: list[Path]) -> None:
    if not path.exists():
        raise DatasetFilesMissing(
            f"{kind}: the folder {path} does not exist (nothing is downloaded); expected "
            + ", ".join(str(f) for f in files),
            [str(f) for f in files],
        )
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DatasetFilesMissing(
            f"{kind} ({split} split): {len(missing)} of {len(files)} expected files are missing "
            f"under {path}:\n  "
            + "\n  ".join(str(f) for f in missing)
            + "\n(nothing is downloaded; put the data set's files there, in torchvision's layout)",
            [str(f) for f in files],
        )


# --------------------------------------------------------------------------------------------
# CIFAR-10: pickle batches, read with a restricted unpickler
# --------------------------------------------------------------------------------------------


class _BatchUnpickler(pickle.Unpickler):
    """Admits only what a CIFAR batch holds: builtin containers and numpy array reconstruction."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data batch")


def _load_batch(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            obj = _BatchUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{path} is not a readable CIFAR batch: {exc}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path} is not a CIFAR batch (a dict), got {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _load_cifar10(path: Path, split: str) -> ArrayImageDataset:
    d = _cifar_dir(path)
    files = [d / f for f in [*CIFAR10_FILES[split], CIFAR10_META]]
    _require("cifar10", path, split, files)
    meta = _load_batch(d / CIFAR10_META)
    names = meta.get("label_names")
    if names is None:
        raise ValueError(f"{d / CIFAR10_META} has no 'label_names'")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    images, labels = [], []
    for f in files[:-1]:
        batch = _load_batch(f)
        if "data" not in batch or ("labels" not in batch and "fine_labels" not in batch):
            raise ValueError(f"{f} lacks 'data' or 'labels'")
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{f}: 'data' must be (N, 3072) uint8 rows, got {data.shape}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64))
    return ArrayImageDataset(np.concatenate(images), np.concatenate(labels), names)


# --------------------------------------------------------------------------------------------
# MNIST: idx files, optionally gzipped
# --------------------------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte idx files are supported (type {raw[2]:#x})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    count = int(np.prod(dims)) if dims else 0
    if len(raw) - header != count:
        raise ValueError(
            f"{path}: header says {dims} ({count} bytes) but holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _load_mnist(path: Path, split: str) -> ArrayImageDataset:
    d = _mnist_dir(path)
    files = []
    for f in MNIST_FILES[split]:
        gz = d / (f + ".gz")
        files.append(gz if not (d / f).exists() and gz.exists() else d / f)
    _require("mnist", path, split, files)
    images = _read_idx(files[0])
    labels = _read_idx(files[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(f"mnist: images {images.shape} and labels {labels.shape} do not match")
    return ArrayImageDataset(images[..., None], labels.astype(np.int64), DIGIT_NAMES)


# --------------------------------------------------------------------------------------------
# SVHN: MATLAB files
# --------------------------------------------------------------------------------------------


def _load_svhn(path: Path, split: str) -> ArrayImageDataset:
    import scipy.io

    f = path / SVHN_FILES[split]
    _require("svhn", path, split, [f])
    mat = scipy.io.loadmat(str(f))
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{f} lacks the variables 'X' and 'y'")
    x = np.asarray(mat["X"])
    y = np.asarray(mat["y"], dtype=np.int64).reshape(-1)
    if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != y.shape[0]:
        raise ValueError(f"{f}: 'X' must be (32, 32, 3, N) with N labels, got {x.shape}, {y.shape}")
    y = np.where(y == 10, 0, y)  # SVHN writes the digit 0 as label 10
    return ArrayImageDataset(x.transpose(3, 0, 1, 2).astype(np.uint8), y, DIGIT_NAMES)


# --------------------------------------------------------------------------------------------
# ImageFolder
# --------------------------------------------------------------------------------------------


def _load_imagefolder(path: Path, split: str) -> Any:
    from torchvision import datasets, transforms

    if not path.is_dir():
        raise DatasetFilesMissing(
            f"imagefolder: the folder {path} does not exist; expected {path}/<class>/<image> "
            f"or {path}/{split}/<class>/<image>",
            [str(path)],
        )
    folder = path
    aliases = {"train": ("train", "training"), "test": ("test", "val", "valid", "validation")}
    for name in aliases[split]:
        if (path / name).is_dir():
            folder = path / name
            break
    else:
        other = [n for s in SPLITS if s != split for n in aliases[s]]
        if any((path / n).is_dir() for n in other):
            raise DatasetFilesMissing(
                f"imagefolder: {path} has split folders but none for {split!r}; expected one of "
                + ", ".join(str(path / n) for n in aliases[split]),
                [str(path / n) for n in aliases[split]],
            )
    try:
        data = datasets.ImageFolder(str(folder), transform=transforms.ToTensor())
    except FileNotFoundError as exc:
        raise DatasetFilesMissing(
            f"imagefolder: {folder} holds no class folders with images ({exc}); expected "
            f"{folder}/<class>/<image>.png|jpg|...",
            [str(folder)],
        ) from None
    data.transform = SameSize(_image_size(data.samples[0][0]))
    return data


def _image_size(path: str) -> tuple[int, int]:
    """``(H, W)`` of an image file, from its header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"imagefolder: {path} cannot be read as an image: {exc}") from None


class SameSize:
    """PIL image -> float32 tensor ``(C, H, W)`` in ``[0, 1]`` of the given ``(H, W)``; an image
    of another size is resized to it (bilinear, antialiased)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, image: Any) -> torch.Tensor:
        from torchvision.transforms import functional

        x = functional.to_tensor(image)
        if tuple(x.shape[-2:]) != self.size:
            x = functional.resize(x, list(self.size), antialias=True)
        return x

    def __repr__(self) -> str:
        return f"SameSize({self.size[0]}x{self.size[1]})"


def load_dataset(
    spec: str, split: str = "train", root: str | os.PathLike | None = None, *, seed: int = 0
) -> Any:
    """Load a data set named by a spec string; nothing is downloaded.

    Parameters
    ----------
    spec : str
        ``"digits"``, ``"cifar10:PATH"``, ``"mnist:PATH"``, ``"svhn:PATH"`` or
        ``"imagefolder:PATH"`` (see the module docstring for the file layouts). The kind alone
        (``"cifar10"``) reads from ``root``.
    split : {"train", "test"}
        Which split. An image folder without ``train``/``test`` subfolders serves both.
    root : path, optional
        Folder for a spec without a path, and the base of a relative ``PATH``.
    seed : int
        Seed of the digits' train/test split.

    Returns
    -------
    torch.utils.data.Dataset
        Yields ``(image, label)`` with images as float32 ``(C, H, W)`` in ``[0, 1]``; carries
        ``.classes`` (names in label order) and ``.targets``.

    Raises
    ------
    DatasetFilesMissing
        A subclass of ``FileNotFoundError`` listing the expected files.
    ValueError
        An unknown spec or split, or files in the wrong format.
    """
    kind, path = _parse_spec(spec, root)
    _check_split(split)
    if kind == "digits":
        from cnnvis.data.digits import DigitsDataset

        return DigitsDataset(split, seed=seed)
    assert path is not None
    if kind == "cifar10":
        return _load_cifar10(path, split)
    if kind == "mnist":
        return _load_mnist(path, split)
    if kind == "svhn":
        return _load_svhn(path, split)
    return _load_imagefolder(path, split)
