"""The built-in demo data: the 8x8 handwritten digits that ship with scikit-learn (1,797 images)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

DIGIT_CLASSES = [str(d) for d in range(10)]


class DigitsDataset(Dataset):
    """A class-stratified split of scikit-learn's digits as ``(1, 8, 8)`` float tensors in [0, 1].

    Parameters
    ----------
    split : {"train", "test", "all"}
        ``"test"`` is a fixed, stratified 25% hold-out chosen by ``seed``; ``"train"`` the rest.
    seed : int
        Seed of the split.
    """

    classes = DIGIT_CLASSES

    def __init__(self, split: str = "train", seed: int = 0) -> None:
        from sklearn.datasets import load_digits

        if split not in ("train", "test", "all"):
            raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
        bunch = load_digits()
        images = (bunch.images / 16.0).astype(np.float32)  # pixel values are 0..16
        labels = bunch.target.astype(np.int64)
        index = np.arange(len(labels))
        if split != "all":
            rng = np.random.default_rng(seed)
            test = np.zeros(len(labels), dtype=bool)
            for c in np.unique(labels):
                members = rng.permutation(index[labels == c])
                test[members[: int(round(0.25 * len(members)))]] = True
            index = index[test] if split == "test" else index[~test]
        self.images = torch.from_numpy(images[index, None])
        self.targets = torch.from_numpy(labels[index])

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.targets[i])
