"""Receptive-field patches: crops of input images resized to a square.

One function cuts them, :func:`cut_patches`, whether :func:`cnnvis.record` cuts them during a
pass or a :class:`~cnnvis.record.recording.PatchSource` cuts them on demand, so a patch has the
same bytes either way.
"""

from __future__ import annotations

import numpy as np


def cut_patches(
    images: np.ndarray,
    image_rows: np.ndarray,
    boxes: np.ndarray,
    patch_size: int,
    out: np.ndarray | None = None,
    out_rows: np.ndarray | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Crop box ``i`` out of ``images[image_rows[i]]`` and resize it to ``patch_size`` squared.

    Parameters
    ----------
    images : ndarray, shape (n_images, H, W, c), uint8, C-contiguous
    image_rows : ndarray, shape (n,), int
    boxes : ndarray, shape (n, 4), int
        ``(y0, x0, y1, x1)``, end-exclusive, inside the image and not empty.
    patch_size : int
    out, out_rows : optional
        Write patch ``i`` to ``out[out_rows[i]]`` instead of a new ``(n, P, P, c)`` array.

    Returns
    -------
    ndarray
        ``out`` (or the new array). Resizing is bilinear with antialiasing, uint8 in and out;
        entries that share (image, box) are cut once, and boxes of one size are resized together.
    """
    import torch
    import torch.nn.functional as F

    from cnnvis import _core

    n_img, h, w, c = images.shape
    rows = np.asarray(image_rows, dtype=np.int64)
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if out is None:
        out = np.zeros((len(rows), patch_size, patch_size, c), dtype=np.uint8)
        out_rows = np.arange(len(rows))
    if len(rows) == 0:
        return out
    table = np.concatenate([rows[:, None], boxes], axis=1)
    keys, key_of = _unique_rows(table, h + 1, w + 1)
    by_key = np.argsort(key_of, kind="stable")
    # the entries of key j are by_key[first[j] : first[j] + count[j]]
    key_count = np.bincount(key_of, minlength=len(keys))
    key_first = np.cumsum(key_count) - key_count
    sizes, size_of = np.unique(keys[:, 3:5] - keys[:, 1:3], axis=0, return_inverse=True)
    size_of = size_of.reshape(-1)
    for g, (bh, bw) in enumerate(sizes):
        members = np.flatnonzero(size_of == g)
        for lo in range(0, len(members), chunk):
            m = members[lo : lo + chunk]
            # one memcpy per box row (C++, no per-pixel indices)
            win = torch.from_numpy(
                _core.gather_boxes(images, keys[m, 0], keys[m, 1], keys[m, 2], int(bh), int(bw))
            )
            # uint8 in, uint8 out: torch's fast channels-last path, no float copies
            crop = F.interpolate(
                win.permute(0, 3, 1, 2), size=(patch_size, patch_size), mode="bilinear",
                antialias=True, align_corners=False,
            ).permute(0, 2, 3, 1)  # fmt: skip
            counts = key_count[m]
            entries = by_key[np.repeat(key_first[m], counts) + _ranges(counts)]
            if not np.all(counts == 1):  # a (image, box) shared by several entries
                crop = crop.index_select(0, torch.from_numpy(np.repeat(np.arange(len(m)), counts)))
            out[out_rows[entries]] = crop.numpy()
    return out


def _unique_rows(table: np.ndarray, ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of ``(image, y0, x0, y1, x1)`` and each row's index among them.

    The rows are packed into one int64 key (boxes lie in ``0..ny-1`` x ``0..nx-1``) when it
    fits, which is several times faster than ``np.unique(axis=0)``; same order either way.
    """
    n_images = int(table[:, 0].max()) + 1 if len(table) else 1
    if n_images * ny * nx * ny * nx >= 2**62:
        keys, key_of = np.unique(table, axis=0, return_inverse=True)
        return keys, key_of.reshape(-1)
    key = table[:, 0] * ny + table[:, 1]
    for col, m in ((2, nx), (3, ny), (4, nx)):
        key = key * m + table[:, col]
    _uniq, first, key_of = np.unique(key, return_index=True, return_inverse=True)
    return table[first], key_of.reshape(-1)


def _ranges(counts: np.ndarray) -> np.ndarray:
    """``[0..c0-1, 0..c1-1, ...]`` for counts ``[c0, c1, ...]``."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total, dtype=np.int64) - starts
