"""The Recording's codec: a :class:`~cnnvis.record.Recording` as a session folder and back.

``recording.json`` holds the scalars, the layer list, the graph and meta; ``recording.npz`` the
arrays (keys ``labels``, ``layer{i}/pooled``, ``weight{i}/{j}``, ``snapshot{s}/{j}`` ...;
a snapshot's statistics are one float64 table ``snapshot{s}/stats``, layers by fields as its
``stats_layers`` and ``stats_fields`` name them, a NaN loss is the JSON string ``"nan"``). The
folder itself (manifest, checksums, atomic writes, safe reads) is :mod:`cnnvis.io`'s.

Reading checks everything a damaged or hostile session could get wrong, before any of it is
used: the type of every JSON field, the dtype and shape of every array against the JSON and
``n_samples``, and that every index (labels, predictions, samples) points at something that
exists. A failure is one :class:`~cnnvis.io.SessionError` naming the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from cnnvis.io import (
    SessionError,
    atomic_session,
    read_checked_arrays,
    read_checked_json,
    read_manifest,
    write_arrays_atomic,
    write_json_atomic,
)

__all__ = ["graph_from_json", "graph_to_json", "read_recording", "save_recording"]

# -- graphs as JSON --------------------------------------------------------------------------------


_TUPLE = "__tuple__"


def _to_json_value(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, tuple):  # kept apart from lists so that shapes come back as tuples
        return {_TUPLE: [_to_json_value(x) for x in v]}
    if isinstance(v, list):
        return [_to_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_json_value(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return _to_json_value(v.tolist())
    return str(v)


def _from_json_value(v: Any) -> Any:
    if isinstance(v, list):
        return [_from_json_value(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1 and _TUPLE in v:
            return tuple(_from_json_value(x) for x in v[_TUPLE])
        return {k: _from_json_value(x) for k, x in v.items()}
    return v


def graph_to_json(graph: nx.DiGraph) -> dict[str, Any]:
    """A directed graph as plain JSON: node ids and attributes, edges in insertion order.

    Tuples are written as ``{"__tuple__": [...]}`` and come back as tuples, lists as lists; numpy
    values become Python numbers; other objects become their ``str``.
    """
    return {
        "directed": bool(graph.is_directed()),
        "graph": _to_json_value(dict(graph.graph)),
        "nodes": [[_to_json_value(n), _to_json_value(dict(a))] for n, a in graph.nodes(data=True)],
        "edges": [
            [_to_json_value(u), _to_json_value(v), _to_json_value(dict(a))]
            for u, v, a in graph.edges(data=True)
        ],
    }


def graph_from_json(obj: dict[str, Any]) -> nx.DiGraph:
    """Inverse of :func:`graph_to_json`."""
    g = nx.DiGraph() if obj.get("directed", True) else nx.Graph()
    g.graph.update(_from_json_value(obj.get("graph", {})))
    for n, attrs in obj.get("nodes", []):
        g.add_node(_from_json_value(n), **_from_json_value(attrs))
    for u, v, attrs in obj.get("edges", []):
        g.add_edge(_from_json_value(u), _from_json_value(v), **_from_json_value(attrs))
    return g


# -- writing a Recording -----------------------------------------------------------------------------


def _recording_payload(rec: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {
        "labels": np.asarray(rec.labels, dtype=np.int64),
        "predictions": np.asarray(rec.predictions, dtype=np.int64),
        "confidences": np.asarray(rec.confidences, dtype=np.float32),
        "pooled_index": np.asarray(rec.pooled_index, dtype=np.int64),
        "pooled_images": np.asarray(rec.pooled_images, dtype=np.uint8),
    }
    # patches still to be cut from one shared set of images: save the images, not the patches
    sources = {getattr(lr.top_patches, "source", None) for lr in rec.layers.values()}
    lazy = len(sources) == 1 and None not in sources
    patch_size = None
    if lazy:
        (source,) = sources
        arrays["patch_images"] = source.images
        arrays["patch_samples"] = source.samples
        patch_size = source.patch_size
    layers = []
    for i, (name, lr) in enumerate(rec.layers.items()):
        if name != lr.name:
            raise ValueError(f"layer key {name!r} differs from its record's name {lr.name!r}")
        layers.append({"name": name, "op": lr.op})
        arrays[f"layer{i}/class_means"] = np.asarray(lr.class_means, dtype=np.float32)
        arrays[f"layer{i}/pooled"] = np.asarray(lr.pooled, dtype=np.float32)
        arrays[f"layer{i}/top_values"] = np.asarray(lr.top_values, dtype=np.float32)
        arrays[f"layer{i}/top_samples"] = np.asarray(lr.top_samples, dtype=np.int64)
        arrays[f"layer{i}/top_boxes"] = np.asarray(lr.top_boxes, dtype=np.int32)
        if not lazy:
            arrays[f"layer{i}/top_patches"] = np.asarray(lr.top_patches, dtype=np.uint8)
    weights = []
    for i, (module, params) in enumerate(rec.weights.items()):
        weights.append({"module": module, "arrays": list(params)})
        for j, value in enumerate(params.values()):
            arrays[f"weight{i}/{j}"] = np.asarray(value)
    snapshots = [
        _snapshot_payload(s, snap, rec.layers, arrays) for s, snap in enumerate(rec.snapshots)
    ]
    doc = {
        "model_name": rec.model_name,
        "class_names": list(rec.class_names),
        "input_shape": [int(x) for x in rec.input_shape],
        "n_samples": int(rec.n_samples),
        "accuracy": None if rec.n_samples == 0 else float(rec.accuracy),
        "layers": layers,
        "weights": weights,
        "snapshots": snapshots,
        "meta": rec.meta,
        "graph": graph_to_json(rec.graph),
    }
    if patch_size is not None:
        doc["patch_source"] = {"patch_size": patch_size}
    return doc, arrays


def _json_number(v: Any) -> Any:
    """A number as JSON: NaN and the infinities (a diverged loss) as the strings "nan", "inf",
    "-inf", which JSON cannot hold as numbers."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else str(v)


def _snapshot_payload(s: int, snap: dict, layers: Any, arrays: dict[str, np.ndarray]) -> dict:
    """Snapshot ``s``'s JSON entry; its arrays go into ``arrays`` (``snapshot{s}/...``)."""
    entry = {k: v for k, v in snap.items() if k not in ("pooled", "stats", "class_means")}
    for key, values in (
        ("pooled", snap.get("pooled", {})),
        ("class_means", snap.get("class_means")),
    ):
        if values is None:
            continue
        entry[f"{key}_layers"] = list(values)
        for j, (layer, value) in enumerate(values.items()):
            if layer not in layers:
                raise ValueError(f"snapshot {s} has {key} of unrecorded layer {layer!r}")
            name = f"snapshot{s}/{j}" if key == "pooled" else f"snapshot{s}/{key}/{j}"
            arrays[name] = np.asarray(value, dtype=np.float32)
    if "loss" in snap:
        entry["loss"] = _json_number(snap["loss"])
    if "metrics" in snap:
        entry["metrics"] = {str(k): _json_number(v) for k, v in snap["metrics"].items()}
    stats = snap.get("stats")
    if stats is not None:
        fields = list(next(iter(stats.values()), {}))
        entry["stats_layers"], entry["stats_fields"] = list(stats), fields
        table = [[row[f] for f in fields] for row in stats.values()]
        arrays[f"snapshot{s}/stats"] = np.asarray(table, dtype=np.float64).reshape(
            len(stats), len(fields)
        )
    return entry


def save_recording(
    rec: Any,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a :class:`~cnnvis.record.Recording` as a new session folder at ``path``, atomically.

    Usually called as ``rec.save(path)``. An existing session at ``path`` is replaced as a whole
    (its additional parts too); ``overwrite=False`` refuses instead. Returns the folder.

    ``files`` adds more files to the session (relative POSIX path -> content), e.g.
    ``{"checkpoints/final.pt": ...}``; they are listed in the manifest with their checksums and
    can be read back checked with :func:`read_file`.
    """
    doc, arrays = _recording_payload(rec)
    with atomic_session(path, overwrite=overwrite) as tmp:
        write_json_atomic(tmp / "recording.json", doc)
        write_arrays_atomic(tmp / "recording.npz", arrays)
        for rel, content in (files or {}).items():
            p = Path(rel)
            if p.is_absolute() or ".." in p.parts or rel in ("recording.json", "recording.npz"):
                raise ValueError(f"extra file {rel!r} must be a relative path inside the session")
            (tmp / p).parent.mkdir(parents=True, exist_ok=True)
            (tmp / p).write_bytes(content)
    return Path(path)


# -- reading a Recording ---------------------------------------------------------------------------

_MAX_SIDE = 1 << 16  # an input side, in pixels or channels
_MAX_INPUT = 1 << 31  # values in one input


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_names(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


class _Checked:
    """Takes the pieces of a recording's JSON and arrays, checking each; errors name the file."""

    def __init__(self, doc: Any, arrays: dict[str, np.ndarray], root: Path) -> None:
        self.json, self.npz = root / "recording.json", root / "recording.npz"
        if not isinstance(doc, dict):
            raise SessionError(f"{self.json} is not a JSON object")
        self.doc, self.arrays = doc, arrays

    def field(self, key: str, ok: Any, want: str, doc: Any = None) -> Any:
        doc = self.doc if doc is None else doc
        if not isinstance(doc, dict) or key not in doc:
            raise SessionError(f"{self.json} lacks the field {key!r}")
        value = doc[key]
        if not (ok(value) if callable(ok) and not isinstance(ok, type) else isinstance(value, ok)):
            shown = repr(value)[:60]
            raise SessionError(f"{self.json}: {key!r} is {shown}, expected {want}")
        return value

    def array(self, key: str, dtype: Any, shape: tuple, bounds: tuple | None = None) -> np.ndarray:
        """The array ``key``: exactly ``dtype``, ``shape`` (None: any size), values in ``bounds``
        (``lo <= v < hi``)."""
        a = self.arrays.get(key)
        if a is None:
            raise SessionError(f"{self.npz} lacks the array {key!r}")
        if (
            a.dtype != np.dtype(dtype)
            or a.ndim != len(shape)
            or any(s is not None and s != d for s, d in zip(shape, a.shape))
        ):
            sizes = ["any" if s is None else str(s) for s in shape]
            want = f"({', '.join(sizes)}{',' if len(sizes) == 1 else ''})"
            raise SessionError(
                f"{self.npz}: the array {key!r} is {a.dtype} of shape {a.shape}, expected "
                f"{np.dtype(dtype)} of shape {want}"
            )
        if bounds is not None and a.size and (a.min() < bounds[0] or a.max() >= bounds[1]):
            raise SessionError(
                f"{self.npz}: the array {key!r} holds values outside {bounds[0]}..{bounds[1] - 1}"
            )
        return a


def _input_shape(c: _Checked) -> tuple[int, ...]:
    shape = c.field(
        "input_shape",
        lambda v: isinstance(v, list) and 1 <= len(v) <= 4 and all(_is_count(x) for x in v),
        "a list of 1 to 4 sizes",
    )
    if any(not 1 <= x <= _MAX_SIDE for x in shape) or math.prod(shape) > _MAX_INPUT:
        raise SessionError(f"{c.json}: input_shape {shape} is not a size an input can have")
    return tuple(shape)


def _patch_source(c: _Checked) -> dict[str, Any] | None:
    spec = c.doc.get("patch_source")
    if spec is None:
        return None
    size = c.field("patch_size", _is_count, "a patch side in pixels", doc=spec)
    images = c.array("patch_images", np.uint8, (None, None, None, None))
    samples = c.array("patch_samples", np.int64, (len(images),))
    return {"images": images, "samples": samples, "patch_size": size}


def _layers(c: _Checked, n: int, n_classes: int, n_pooled: int, lazy: bool) -> dict[str, dict]:
    """Each layer's fields; ``top_patches`` is None where they are cut from the patch source."""
    entries = c.field("layers", list, "a list of layers")
    layers: dict[str, dict] = {}
    for i, entry in enumerate(entries):
        name = c.field("name", str, "a layer name", doc=entry)
        if name in layers:
            raise SessionError(f"{c.json}: the layer {name!r} appears twice")
        means = c.array(f"layer{i}/class_means", np.float32, (None, n_classes))
        ch = len(means)
        top_values = c.array(f"layer{i}/top_values", np.float32, (ch, None))
        k = top_values.shape[1]
        samples = c.array(f"layer{i}/top_samples", np.int64, (ch, k), (-1, max(n, 1)))
        boxes = c.array(f"layer{i}/top_boxes", np.int32, (ch, k, 4), (0, _MAX_SIDE + 1))
        patches = None
        if not lazy:
            patches = c.array(f"layer{i}/top_patches", np.uint8, (ch, k, None, None, None))
        layers[name] = dict(
            name=name,
            op=c.field("op", str, "a layer kind", doc=entry),
            class_means=means,
            pooled=c.array(f"layer{i}/pooled", np.float32, (n_pooled, ch)),
            top_values=top_values,
            top_samples=samples,
            top_boxes=boxes,
            top_patches=patches,
        )
    return layers


def _weights(c: _Checked) -> dict[str, dict[str, np.ndarray]]:
    weights: dict[str, dict[str, np.ndarray]] = {}
    for i, entry in enumerate(c.field("weights", list, "a list of modules")):
        module = c.field("module", str, "a module name", doc=entry)
        names = c.field("arrays", _is_names, "a list of parameter names", doc=entry)
        weights[module] = {}
        for j, pname in enumerate(names):
            key = f"weight{i}/{j}"
            if key not in c.arrays:
                raise SessionError(f"{c.npz} lacks the array {key!r}")
            weights[module][pname] = c.arrays[key]
    return weights


_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _number(c: _Checked, v: Any, what: str, s: int) -> float:
    """A number written by :func:`_json_number` (NaN and infinities as strings)."""
    if _is_number(v):
        return float(v)
    if isinstance(v, str) and v in _SPECIAL:
        return _SPECIAL[v]
    raise SessionError(f"{c.json}: the {what} of snapshot {s} is not a number")


def _snapshot_layers(c: _Checked, entry: Any, key: str, layers: dict, s: int) -> list[str] | None:
    """The recorded layers a snapshot keeps ``key`` arrays of (None when it keeps none)."""
    if key not in entry and key != "pooled_layers":
        return None
    names = c.field(key, _is_names, "a list of recorded layers", doc=entry)
    unknown = [name for name in names if name not in layers]
    if unknown:
        raise SessionError(f"{c.json}: snapshot {s} names the unrecorded layer {unknown[0]!r}")
    if len(set(names)) != len(names):
        raise SessionError(f"{c.json}: snapshot {s} names a layer twice in {key!r}")
    return names


def _snapshot_stats(c: _Checked, entry: dict, s: int) -> dict[str, dict[str, float]]:
    names = c.field("stats_layers", _is_names, "a list of layer names", doc=entry)
    fields = c.field("stats_fields", _is_names, "a list of statistic names", doc=entry)
    if len(set(names)) != len(names) or len(set(fields)) != len(fields):
        raise SessionError(f"{c.json}: snapshot {s} names a layer or statistic twice")
    table = c.array(f"snapshot{s}/stats", np.float64, (len(names), len(fields)))
    return {name: dict(zip(fields, map(float, row))) for name, row in zip(names, table)}


def _snapshot(c: _Checked, entry: Any, s: int, layers: dict[str, dict], n_classes: int) -> dict:
    if not isinstance(entry, dict):
        raise SessionError(f"{c.json}: snapshot {s} is not an object")
    for key in ("epoch", "accuracy"):
        if key in entry and not _is_number(entry[key]):
            raise SessionError(f"{c.json}: the {key} of snapshot {s} is not a number")
    drop = ("pooled_layers", "class_means_layers", "stats_layers", "stats_fields")
    snap = {k: v for k, v in entry.items() if k not in drop}
    width = {name: len(layer["class_means"]) for name, layer in layers.items()}
    pooled = _snapshot_layers(c, entry, "pooled_layers", layers, s) or []
    snap["pooled"] = {
        name: c.array(f"snapshot{s}/{j}", np.float32, (None, width[name]))
        for j, name in enumerate(pooled)
    }
    means = _snapshot_layers(c, entry, "class_means_layers", layers, s)
    if means is not None:
        snap["class_means"] = {
            name: c.array(f"snapshot{s}/class_means/{j}", np.float32, (width[name], n_classes))
            for j, name in enumerate(means)
        }
    if "stats_layers" in entry:
        snap["stats"] = _snapshot_stats(c, entry, s)
    if entry.get("loss") is not None:
        snap["loss"] = _number(c, entry["loss"], "loss", s)
    if "metrics" in entry:
        metrics = c.field("metrics", dict, "an object of metrics", doc=entry)
        snap["metrics"] = {str(k): _number(c, v, f"metric {k!r}", s) for k, v in metrics.items()}
    return snap


def _snapshots(c: _Checked, layers: dict[str, dict], n_classes: int) -> list[dict]:
    entries = c.field("snapshots", list, "a list of snapshots")
    return [_snapshot(c, entry, s, layers, n_classes) for s, entry in enumerate(entries)]


def _graph(c: _Checked) -> nx.DiGraph:
    try:
        return graph_from_json(c.field("graph", dict, "a graph"))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        if isinstance(e, SessionError):
            raise
        raise SessionError(f"{c.json}: 'graph' is not a valid graph ({e})") from None


def _recording_fields(doc: Any, arrays: dict[str, np.ndarray], root: Path) -> dict[str, Any]:
    c = _Checked(doc, arrays, root)
    class_names = c.field("class_names", _is_names, "a list of class names")
    n = c.field("n_samples", _is_count, "a number of samples")
    k = len(class_names)
    confidences = c.array("confidences", np.float32, (n,))
    if not np.all((confidences >= 0) & (confidences <= 1)):  # NaN fails too
        raise SessionError(f"{c.npz}: the array 'confidences' holds values outside [0, 1]")
    pooled_index = c.array("pooled_index", np.int64, (None,), (0, max(n, 1)))
    m = len(pooled_index)
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise SessionError(f"{c.json}: 'meta' is not an object")
    source = _patch_source(c)
    layers = _layers(c, n, k, m, lazy=source is not None)
    return dict(
        model_name=c.field("model_name", str, "a model name"),
        class_names=list(class_names),
        input_shape=_input_shape(c),
        labels=c.array("labels", np.int64, (n,), (0, k)),
        predictions=c.array("predictions", np.int64, (n,), (0, k)),
        confidences=confidences,
        pooled_index=pooled_index,
        pooled_images=c.array("pooled_images", np.uint8, (m, None, None, None)),
        layers=layers,
        patch_source=source,
        weights=_weights(c),
        graph=_graph(c),
        snapshots=_snapshots(c, layers, k),
        meta=dict(meta),
    )


def read_recording(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked fields of the recording in a session folder (module docstring): the keyword
    arguments of :class:`~cnnvis.record.Recording`, with each layer as a dict of
    :class:`~cnnvis.record.LayerRecord`'s and ``patch_source`` (None, or the images, samples and
    patch size that cut patches share). :func:`cnnvis.record.recording.load_recording` builds
    the objects; this module stays below them so that ``Recording.save`` can use it.

    Raises
    ------
    SessionError
        If the folder is not a session, lacks a file, a file is truncated, altered or
        inconsistent, or the session was written by a newer format version.
    """
    root = Path(path)
    manifest = read_manifest(root)
    doc = read_checked_json(root, manifest, "recording.json")
    arrays = read_checked_arrays(root, manifest, "recording.npz")
    return _recording_fields(doc, arrays, root)
