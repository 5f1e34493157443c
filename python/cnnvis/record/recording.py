"""The Recording: what one streaming pass of a model over a data set keeps.

A plain data object (numpy arrays, a networkx graph, lists and dicts). It can be saved and loaded
(:mod:`cnnvis.record.codec`), compared in a test, and built by hand in a test. Nothing here imports
torch. Later stages (``analysis``) read it and never write to it.

Conventions
-----------
* Layers are named by their dotted ``named_modules()`` path (``"features.3"``, ``"layer3.1.conv2"``).
* A neuron is ``(layer, channel)``.
* Classes are indices ``0..n_classes-1`` into ``class_names``.
* "Samples" are positions ``0..n_samples-1`` in the order the data was read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from cnnvis.io import SessionError
from cnnvis.record import codec


class PatchSource:
    """The input images that top-k patches are cut from, on demand.

    A short recording keeps these instead of its patches when they take fewer bytes: each image
    once, rather than one resized crop per top-k entry of every layer.

    Parameters
    ----------
    images : ndarray, shape (n, H, W, c), uint8
        The images (display range, as in ``Recording.pooled_images``).
    samples : ndarray, shape (n,), int64
        Their sample positions, strictly increasing.
    patch_size : int
        Side ``P`` of the square patches.
    """

    def __init__(self, images: np.ndarray, samples: np.ndarray, patch_size: int) -> None:
        images = np.ascontiguousarray(images)
        samples = np.asarray(samples)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                f"patch images must be a uint8 array (n, H, W, c), got {images.dtype} "
                f"{images.shape}"
            )
        if samples.ndim != 1 or samples.dtype.kind not in "iu" or len(samples) != len(images):
            raise ValueError(
                f"patch image samples must be {len(images)} integers, got {samples.dtype} "
                f"{samples.shape}"
            )
        if len(samples) and (samples[0] < 0 or np.any(np.diff(samples) <= 0)):
            raise ValueError("patch image samples must be non-negative and strictly increasing")
        if not isinstance(patch_size, (int, np.integer)) or not 1 <= patch_size <= 512:
            raise ValueError(f"patch_size must be an integer in 1..512, got {patch_size!r}")
        self.images = images
        self.samples = samples.astype(np.int64)
        self.patch_size = int(patch_size)

    def rows_of(self, samples: np.ndarray) -> np.ndarray:
        """Row of each sample in ``images``; ValueError for a sample that is not there."""
        samples = np.asarray(samples, dtype=np.int64)
        rows = np.searchsorted(self.samples, samples)
        found = rows < len(self.samples)
        found[found] = self.samples[rows[found]] == samples[found]
        if not found.all():
            raise ValueError(
                f"no patch image for sample {int(samples[~found][0])} referred to by a top-k entry"
            )
        return rows

    def cut(self, samples: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``(n, P, P, c)`` uint8: box ``i`` (``y0, x0, y1, x1``) of sample ``samples[i]``."""
        from cnnvis.record.patches import cut_patches

        return cut_patches(self.images, self.rows_of(samples), boxes, self.patch_size)


class LayerPatches:
    """A layer's top-k patches, ``(n_channels, k, P, P, c)`` uint8, cut from a
    :class:`PatchSource` when read.

    The first read (indexing, ``np.asarray``) cuts the whole layer in one bulk pass and keeps
    it; a layer never read is never cut. Entries without a sample (``top_samples == -1``) are
    zeros, as in a cut array.
    """

    dtype = np.dtype(np.uint8)
    ndim = 5

    def __init__(self, source: PatchSource, top_samples: np.ndarray, top_boxes: np.ndarray) -> None:
        top_samples = np.asarray(top_samples)
        top_boxes = np.asarray(top_boxes)
        if top_samples.ndim != 2 or top_boxes.shape != (*top_samples.shape, 4):
            raise ValueError(
                f"top_samples {top_samples.shape} and top_boxes {top_boxes.shape} must be "
                "(n_channels, k) and (n_channels, k, 4)"
            )
        valid = top_samples >= 0
        source.rows_of(top_samples[valid])
        _n, h, w, _c = source.images.shape
        y0, x0, y1, x1 = (top_boxes[..., i][valid] for i in range(4))
        if np.any((y0 < 0) | (x0 < 0) | (y1 > h) | (x1 > w) | (y1 <= y0) | (x1 <= x0)):
            raise ValueError(f"a top-k box lies outside the {h}x{w} images or is empty")
        self.source = source
        self.top_samples = top_samples
        self.top_boxes = top_boxes
        p = source.patch_size
        self.shape = (*top_samples.shape, p, p, source.images.shape[3])
        self._cut: np.ndarray | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if self._cut is None:
            cut = np.zeros(self.shape, dtype=np.uint8)
            valid = self.top_samples >= 0
            if valid.any():
                cut[valid] = self.source.cut(self.top_samples[valid], self.top_boxes[valid])
            self._cut = cut
        return self._cut if dtype is None else self._cut.astype(dtype)

    def __getitem__(self, key):
        return np.asarray(self)[key]

    def __repr__(self) -> str:
        return (
            f"LayerPatches(shape={self.shape}, cut={'yes' if self._cut is not None else 'on read'})"
        )


@dataclass
class LayerRecord:
    """Per-channel summaries of one recorded layer.

    Attributes
    ----------
    name : str
        Dotted module path.
    op : str
        Kind of layer (``"conv"``, ``"linear"``, ``"norm"``, ``"act"``, ``"pool"``, ...).
    class_means : ndarray, shape (n_channels, n_classes), float32
        Mean over samples of each class of the channel's spatially averaged activation (C5).
    pooled : ndarray, shape (n_pooled, n_channels), float32
        Spatially averaged activation of each channel for the bounded, class-stratified sample
        whose sample positions are ``Recording.pooled_index`` (P1, C3).
    top_values : ndarray, shape (n_channels, k), float32
        The k largest spatial-maximum activations of each channel, descending; NaN where fewer
        than k samples were seen.
    top_samples : ndarray, shape (n_channels, k), int64
        Sample positions of those activations; -1 where fewer than k samples were seen.
    top_boxes : ndarray, shape (n_channels, k, 4), int32
        Receptive field of the maximum location in input pixels: ``(y0, x0, y1, x1)``, clipped to
        the image, end-exclusive.
    top_patches : ndarray or LayerPatches, shape (n_channels, k, P, P, C), uint8
        The receptive-field crops out of the input images, resized to ``P x P`` (C4, T2); a
        :class:`LayerPatches` cuts them from the images on read (``np.asarray`` gives the array).
    """

    name: str
    op: str
    class_means: np.ndarray
    pooled: np.ndarray
    top_values: np.ndarray
    top_samples: np.ndarray
    top_boxes: np.ndarray
    top_patches: np.ndarray | LayerPatches

    @property
    def n_channels(self) -> int:
        return int(self.class_means.shape[0])


@dataclass
class Recording:
    """Everything later stages need from a model run over a data set.

    Attributes
    ----------
    model_name : str
        Class name of the recorded model (or a name given by the user).
    class_names : list of str
        Names of the classes, indexed by label.
    input_shape : tuple of int
        ``(C, H, W)`` of one input.
    labels : ndarray, shape (n_samples,), int64
        True label of every sample seen.
    predictions : ndarray, shape (n_samples,), int64
        Predicted class of every sample seen.
    confidences : ndarray, shape (n_samples,), float32
        Softmax probability of the predicted class.
    pooled_index : ndarray, shape (n_pooled,), int64
        Sample positions of the bounded class-stratified sample kept for projections.
    pooled_images : ndarray, shape (n_pooled, h, w, c), uint8
        Thumbnails of those samples (for hover and tooltips).
    layers : dict of str to LayerRecord
        The recorded layers, in execution order.
    weights : dict of str to dict of str to ndarray
        Parameters and buffers of the modules whose weights define connections (conv, linear,
        batch norm): ``weights["features.0"]["weight"]`` etc. (C6, T1).
    graph : networkx.DiGraph
        The model's DAG (C1); see :func:`cnnvis.model_graph`.
    snapshots : list of dict
        Training snapshots, oldest first: ``{"epoch": int, "accuracy": float, "pooled": {layer:
        ndarray (n_pooled, n_channels)}}`` with the same ``pooled_index`` samples (P5). May be empty.
        Snapshots of a :class:`cnnvis.Tracker` (or of ``record --model TRAINING_FOLDER``) also
        hold ``"loss"`` (float or None, NaN allowed), ``"metrics"`` ({name: float}),
        ``"class_means"`` ({recorded layer: ndarray (n_channels, n_classes) float32}) and
        ``"stats"`` ({layer: {statistic: float}}, the conv/linear modules and the recorded layers,
        statistics as in :data:`cnnvis.tracking.STAT_FIELDS`, NaN where one does not apply).
    meta : dict
        Free-form JSON-serialisable facts (data set name, seeds, training history, ...).
        :func:`cnnvis.record` fills ``n_samples_seen``, ``top_k``, ``patch_size``,
        ``max_pooled``, ``seed``, ``display_range`` (per input channel, the values mapped to 0 and
        255 in patches and thumbnails), ``receptive_fields`` (per layer: ``lo``, ``hi``, ``jump``
        per axis and the ``method``, "analytic" or "gradient") and ``patch_flushes``.
    session_path : pathlib.Path or None
        The folder it was loaded from (set by :func:`cnnvis.load`; not saved, not compared).
    """

    model_name: str
    class_names: list[str]
    input_shape: tuple[int, ...]
    labels: np.ndarray
    predictions: np.ndarray
    confidences: np.ndarray
    pooled_index: np.ndarray
    pooled_images: np.ndarray
    layers: dict[str, LayerRecord]
    weights: dict[str, dict[str, np.ndarray]]
    graph: nx.DiGraph
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    #: Folder the recording was loaded from (set by :func:`cnnvis.load`; not saved, not compared).
    session_path: Path | None = field(default=None, compare=False, repr=False)

    # -- accessors -------------------------------------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[0])

    @property
    def accuracy(self) -> float:
        """Share of samples whose prediction equals the label."""
        if self.n_samples == 0:
            return float("nan")
        return float(np.mean(self.labels == self.predictions))

    def layer(self, name: str) -> LayerRecord:
        try:
            return self.layers[name]
        except KeyError:
            raise KeyError(
                f"layer {name!r} was not recorded; recorded layers: {', '.join(self.layers)}"
            ) from None

    def class_means(self, layer: str) -> np.ndarray:
        """Mean activation per channel and class, shape ``(n_channels, n_classes)``."""
        return self.layer(layer).class_means

    def pooled(self, layer: str) -> np.ndarray:
        """Pooled activations of the kept sample, shape ``(n_pooled, n_channels)``."""
        return self.layer(layer).pooled

    @property
    def pooled_labels(self) -> np.ndarray:
        return self.labels[self.pooled_index]

    @property
    def class_counts(self) -> np.ndarray:
        """Number of samples of each class, shape ``(n_classes,)``."""
        return np.bincount(self.labels, minlength=self.n_classes)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
        """Write this recording as a session folder (see :func:`cnnvis.record.codec.save_recording`).

        The folder is written atomically; an existing session at ``path`` is replaced unless
        ``overwrite=False``. Returns the folder's path.
        """
        return codec.save_recording(self, path, overwrite=overwrite)

    def confusion_matrix(self) -> np.ndarray:
        """Counts ``[true, predicted]``, shape ``(n_classes, n_classes)``."""
        k = self.n_classes
        return np.bincount(self.labels * k + self.predictions, minlength=k * k).reshape(k, k)


def load_recording(path: str | os.PathLike[str]) -> Recording:
    """Load the :class:`Recording` of a session folder, every field and array checked first
    (:func:`cnnvis.record.codec.read_recording`).

    Raises
    ------
    SessionError
        If the folder is not a session, lacks a file, a file is truncated, altered or
        inconsistent, or the session was written by a newer format version.
    """
    fields = codec.read_recording(path)
    try:
        source = fields.pop("patch_source")
        if source is not None:
            source = PatchSource(source["images"], source["samples"], source["patch_size"])
        for name, layer in fields["layers"].items():
            if source is not None:
                layer["top_patches"] = LayerPatches(
                    source, layer["top_samples"], layer["top_boxes"]
                )
            fields["layers"][name] = LayerRecord(**layer)
        rec = Recording(**fields)
    except (ValueError, TypeError) as e:
        if isinstance(e, SessionError):
            raise
        # PatchSource and LayerPatches refuse pieces that do not fit together with these
        raise SessionError(
            f"{Path(path) / 'recording.json'}: not a valid recording ({e})"
        ) from None
    rec.session_path = Path(path).absolute()
    return rec
