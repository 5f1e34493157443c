"""Sessions: a folder that holds a :class:`~cnnvis.record.Recording` and what later stages add.

Layout of a session folder::

    SESSION/
      manifest.json        format_version, created, and every file with its size and sha256
      recording.json       the Recording's scalars, layer list, graph and meta (JSON)
      recording.npz        the Recording's arrays (numpy .npz, read with allow_pickle=False)
      checkpoints/*.pt     optional: state dicts (the demo keeps its epoch snapshots here)
      <part>.json/.npz     optional: parts written by later stages (``analysis`` ...)

Rules
-----
* Everything is JSON or ``.npz``/``.npy`` arrays; nothing is ever unpickled. State dicts (``.pt``)
  are only read with ``torch.load(..., weights_only=True)``.
* Every write is atomic. A whole session is built in a temporary sibling folder and renamed into
  place (:func:`atomic_session`); a single file is written to a temporary file in the same folder
  and moved with :func:`os.replace` (:func:`write_json_atomic`, :func:`write_arrays_atomic`).
  A crash leaves either the old session or the new one, never a mix.
* ``manifest.json`` lists every file of the session with its size and sha256. Reading a file
  through :func:`read_part`, :func:`load` or :func:`verify` checks it; a missing, truncated or
  altered file raises :class:`SessionError` naming the file. Files not in the manifest are ignored.
* Additional parts: a later stage stores its results as ``<name>.json`` and/or ``<name>.npz``
  with :func:`write_part` (which also records their checksums in the manifest) and reads them back
  with :func:`read_part`. Part names are lower-case identifiers (``analysis``, ``layout_cache``);
  ``recording`` and ``manifest`` are reserved. Each part is replaced as a whole.
* ``format_version`` is an integer. A session written by a newer format is refused with a message
  that says so; older versions are read. Version 2 added ``patch_source``: a recording whose
  top-k patches are still to be cut stores the images they come from (``patch_images``,
  ``patch_samples``) instead of per-layer ``top_patches``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
_PART_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RESERVED = {"recording", "manifest"}

__all__ = [
    "FORMAT_VERSION",
    "SessionError",
    "load",
    "save_recording",
    "atomic_session",
    "atomic_file",
    "check_writable",
    "prepare_folder",
    "write_json_atomic",
    "write_arrays_atomic",
    "read_json",
    "read_arrays",
    "write_part",
    "read_part",
    "has_part",
    "verify",
    "read_file",
    "read_manifest",
    "graph_to_json",
    "graph_from_json",
]


class SessionError(ValueError):
    """A session folder is missing, incomplete, damaged or from a newer version of cnnvis."""


# -- single files -----------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def prepare_folder(folder: str | os.PathLike[str], what: str | os.PathLike[str]) -> Path:
    """Make ``folder`` (and its parents) to write ``what`` into, or raise an OSError that names
    ``what`` and the reason (a file in the way, a folder that cannot be made). Returns it."""
    folder = Path(folder)
    ancestor = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if ancestor is not None and not ancestor.is_dir():
        raise NotADirectoryError(f"cannot write {what}: {ancestor} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot write {what}: {exc.strerror or exc}") from exc
    return folder


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str]) -> Iterator[io.BufferedWriter]:
    """Open a temporary file beside ``path`` for writing bytes; on success fsync it, give it the
    usual permissions and move it onto ``path``; on an error remove it (``path`` is untouched).

    Raises
    ------
    OSError
        Naming ``path`` and the reason, when its folder or the temporary file cannot be made.
    """
    path = Path(path).absolute()
    prepare_folder(path.parent, path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OSError(
            f"cannot write {path}: no file can be made in {path.parent} ({exc.strerror or exc})"
        ) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as UTF-8 JSON to ``path`` atomically (temp file + :func:`os.replace`).

    numpy scalars and arrays are converted to Python numbers and lists. NaN and infinity are
    refused (they are not JSON).
    """
    text = json.dumps(obj, indent=1, default=_json_default, allow_nan=False, ensure_ascii=False)
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))
    return Path(path)


def write_arrays_atomic(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], *, compress: bool = False
) -> Path:
    """Write a dict of numeric arrays as an ``.npz`` file atomically.

    Object arrays are refused (they would need pickle to read back).
    """
    clean: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        a = np.asarray(value)
        if a.dtype.hasobject:
            raise TypeError(
                f"array {key!r} has dtype object, which cannot be stored without pickle"
            )
        clean[key] = a
    with atomic_file(path) as f:
        (np.savez_compressed if compress else np.savez)(f, **clean)
    return Path(path)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; a missing or unreadable file raises :class:`SessionError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SessionError(f"{path} is missing") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SessionError(f"{path} is not valid JSON (truncated or damaged?): {e}") from None


def read_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file into memory, without pickle."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {key: z[key] for key in z.files}
    except FileNotFoundError:
        raise SessionError(f"{path} is missing") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise SessionError(
            f"{path} cannot be read as arrays (truncated or damaged?): {e}"
        ) from None


# -- manifest ------------------------------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_entry(root: Path, rel: str) -> dict[str, Any]:
    p = root / rel
    return {"bytes": p.stat().st_size, "sha256": _sha256(p)}


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``manifest.json`` of a session folder (not the files it lists)."""
    root = Path(path)
    if not root.exists():
        raise SessionError(f"no session at {root}: the folder does not exist")
    if not root.is_dir():
        raise SessionError(f"{root} is not a session folder (it is a file)")
    if not (root / MANIFEST).exists():
        raise SessionError(
            f"{root} is not a cnnvis session: it has no {MANIFEST} (an interrupted write, or not "
            "a session folder)"
        )
    manifest = read_json(root / MANIFEST)
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise SessionError(f"{root / MANIFEST} has no format_version: not a cnnvis session")
    version = manifest["format_version"]
    if not isinstance(version, int) or version < 1:
        raise SessionError(f"{root / MANIFEST}: format_version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise SessionError(
            f"{root} was written with session format {version}, newer than this cnnvis reads "
            f"(format {FORMAT_VERSION}); upgrade cnnvis to open it"
        )
    if not isinstance(manifest.get("files"), dict):
        raise SessionError(f"{root / MANIFEST} has no file list")
    return manifest


def _check_file(root: Path, manifest: dict[str, Any], rel: str) -> Path:
    entry = manifest["files"].get(rel)
    if entry is None:
        raise SessionError(f"{root} has no {rel} in its manifest")
    p = root / rel
    if not p.exists():
        raise SessionError(f"{root} is incomplete: {rel} is listed in the manifest but missing")
    size = p.stat().st_size
    if size != entry.get("bytes"):
        raise SessionError(
            f"{root / rel} is damaged: {size} bytes where the manifest says {entry.get('bytes')} "
            "(truncated or changed after writing)"
        )
    if _sha256(p) != entry.get("sha256"):
        raise SessionError(
            f"{root / rel} is damaged: its sha256 checksum does not match the manifest "
            "(changed after writing)"
        )
    return p


def verify(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check the manifest and every file it lists; return the manifest."""
    root = Path(path)
    manifest = read_manifest(root)
    for rel in manifest["files"]:
        _check_file(root, manifest, rel)
    return manifest


def _write_manifest(root: Path, files: dict[str, Any], base: dict[str, Any] | None = None) -> None:
    manifest = dict(base or {})
    manifest.update(
        {
            "format": "cnnvis-session",
            "format_version": FORMAT_VERSION,
            "created": manifest.get("created", _now()),
            "files": dict(sorted(files.items())),
        }
    )
    write_json_atomic(root / MANIFEST, manifest)


# -- whole sessions --------------------------------------------------------------------------------


def _session_target(path: str | os.PathLike[str], overwrite: bool) -> Path:
    """The absolute ``path``, checked: a session may be written there (its parent made)."""
    target = Path(path).absolute()
    if target.exists():
        if not target.is_dir():
            raise SessionError(f"{target} exists and is a file, not a session folder")
        is_session = (target / MANIFEST).exists()
        if any(target.iterdir()) and not is_session:
            raise SessionError(
                f"{target} exists and is not a cnnvis session; refusing to overwrite it"
            )
        if is_session and not overwrite:
            raise SessionError(f"a session already exists at {target}")
    try:
        prepare_folder(target.parent, target)
    except OSError as exc:
        raise SessionError(str(exc)) from exc
    return target


def _temporary_folder(target: Path, suffix: str) -> Path:
    """A new hidden folder beside ``target`` (same file system, so it can be renamed to it)."""
    try:
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent))
    except OSError as exc:
        raise SessionError(
            f"cannot write {target}: no folder can be made in {target.parent} "
            f"({exc.strerror or exc})"
        ) from exc


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Fail now, not after a long run, if a session cannot be saved at ``path``.

    Makes the parent folder and a folder in it (removed at once), as saving will.

    Returns
    -------
    Path
        The absolute path.

    Raises
    ------
    SessionError
        ``path`` is a file, a folder that is not a session, an existing session while
        ``overwrite`` is False, or a place where folders cannot be made (naming the reason).
    """
    target = _session_target(path, overwrite)
    os.rmdir(_temporary_folder(target, ".probe"))
    return target


@contextlib.contextmanager
def atomic_session(
    path: str | os.PathLike[str], *, overwrite: bool = True, meta: dict[str, Any] | None = None
) -> Iterator[Path]:
    """Build a session in a temporary folder and move it to ``path`` when the block succeeds.

    Write the session's files into the yielded folder. On leaving the block the manifest (with the
    checksum of every file written) is added and the folder is renamed to ``path``. On an error the
    temporary folder is removed and ``path`` is left as it was.

    Parameters
    ----------
    path : path-like
        The session folder to create.
    overwrite : bool
        Replace an existing session at ``path``. A non-empty folder that is not a session is never
        replaced.
    meta : dict, optional
        Extra JSON entries for the manifest.
    """
    target = _session_target(path, overwrite)
    tmp = _temporary_folder(target, ".tmp")
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        yield tmp
        files = {
            p.relative_to(tmp).as_posix(): _file_entry(tmp, p.relative_to(tmp).as_posix())
            for p in sorted(tmp.rglob("*"))
            if p.is_file() and p.name != MANIFEST
        }
        _write_manifest(tmp, files, meta)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _check_part_name(name: str) -> None:
    if not _PART_NAME.match(name) or name in _RESERVED:
        raise ValueError(
            f"part name {name!r} is not allowed: use a lower-case identifier other than "
            f"{sorted(_RESERVED)}"
        )


def write_part(
    path: str | os.PathLike[str],
    name: str,
    *,
    json_obj: Any = None,
    arrays: Mapping[str, np.ndarray] | None = None,
) -> None:
    """Store a later stage's results in an existing session as ``<name>.json`` / ``<name>.npz``.

    Each file is written atomically, then the manifest is rewritten (atomically) with their
    checksums. A part is replaced as a whole: a previous ``<name>.npz`` is removed when only
    JSON is written now, and the other way round.
    """
    _check_part_name(name)
    if json_obj is None and arrays is None:
        raise ValueError("write_part needs json_obj, arrays or both")
    root = Path(path)
    manifest = read_manifest(root)
    files = dict(manifest["files"])
    for suffix, present in ((".json", json_obj is not None), (".npz", arrays is not None)):
        rel = name + suffix
        if present:
            if suffix == ".json":
                write_json_atomic(root / rel, json_obj)
            else:
                write_arrays_atomic(root / rel, arrays or {})
            files[rel] = _file_entry(root, rel)
        elif rel in files:
            del files[rel]
            with contextlib.suppress(FileNotFoundError):
                (root / rel).unlink()
    base = {k: v for k, v in manifest.items() if k != "files"}
    _write_manifest(root, files, base)


def has_part(path: str | os.PathLike[str], name: str) -> bool:
    """Whether the session at ``path`` holds the part ``name``."""
    files = read_manifest(path)["files"]
    return f"{name}.json" in files or f"{name}.npz" in files


def read_part(
    path: str | os.PathLike[str], name: str
) -> tuple[Any | None, dict[str, np.ndarray] | None]:
    """Read back ``(json_obj, arrays)`` of a part (``None`` for what it does not have).

    The files are checked against the manifest first; a missing part raises :class:`SessionError`.
    """
    root = Path(path)
    manifest = read_manifest(root)
    json_rel, npz_rel = f"{name}.json", f"{name}.npz"
    if json_rel not in manifest["files"] and npz_rel not in manifest["files"]:
        raise SessionError(f"the session at {root} has no part {name!r}")
    obj = arrays = None
    if json_rel in manifest["files"]:
        obj = read_json(_check_file(root, manifest, json_rel))
    if npz_rel in manifest["files"]:
        arrays = read_arrays(_check_file(root, manifest, npz_rel))
    return obj, arrays


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


# -- the Recording -----------------------------------------------------------------------------


def _recording_payload(rec: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {
        "labels": np.asarray(rec.labels, dtype=np.int64),
        "predictions": np.asarray(rec.predictions, dtype=np.int64),
        "confidences": np.asarray(rec.confidences, dtype=np.float32),
        "pooled_index": np.asarray(rec.pooled_index, dtype=np.int64),
        "pooled_images": np.asarray(rec.pooled_images, dtype=np.uint8),
    }
    from cnnvis.record.recording import LayerPatches

    # patches still to be cut from one shared set of images: save the images, not the patches
    sources = {
        lr.top_patches.source if isinstance(lr.top_patches, LayerPatches) else None
        for lr in rec.layers.values()
    }
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
    layer_index = {name: i for i, name in enumerate(rec.layers)}
    snapshots = []
    for s, snap in enumerate(rec.snapshots):
        entry = {k: v for k, v in snap.items() if k != "pooled"}
        pooled = snap.get("pooled", {})
        entry["pooled_layers"] = list(pooled)
        for j, (layer, value) in enumerate(pooled.items()):
            if layer not in layer_index:
                raise ValueError(
                    f"snapshot {s} has pooled activations of unrecorded layer {layer!r}"
                )
            arrays[f"snapshot{s}/{j}"] = np.asarray(value, dtype=np.float32)
        snapshots.append(entry)
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


def _recording_from(doc: dict[str, Any], arrays: dict[str, np.ndarray], where: Path) -> Any:
    from cnnvis.record.recording import LayerPatches, LayerRecord, PatchSource, Recording

    def arr(key: str) -> np.ndarray:
        try:
            return arrays[key]
        except KeyError:
            raise SessionError(f"{where}: recording.npz lacks the array {key!r}") from None

    try:
        source = None
        if doc.get("patch_source") is not None:
            source = PatchSource(
                arr("patch_images"), arr("patch_samples"), doc["patch_source"]["patch_size"]
            )

        def patches(i: int) -> Any:
            if source is None:
                return arr(f"layer{i}/top_patches")
            return LayerPatches(source, arr(f"layer{i}/top_samples"), arr(f"layer{i}/top_boxes"))

        layers = {}
        for i, entry in enumerate(doc["layers"]):
            layers[entry["name"]] = LayerRecord(
                name=entry["name"],
                op=entry["op"],
                class_means=arr(f"layer{i}/class_means"),
                pooled=arr(f"layer{i}/pooled"),
                top_values=arr(f"layer{i}/top_values"),
                top_samples=arr(f"layer{i}/top_samples"),
                top_boxes=arr(f"layer{i}/top_boxes"),
                top_patches=patches(i),
            )
        weights = {}
        for i, entry in enumerate(doc["weights"]):
            weights[entry["module"]] = {
                pname: arr(f"weight{i}/{j}") for j, pname in enumerate(entry["arrays"])
            }
        snapshots = []
        for s, entry in enumerate(doc["snapshots"]):
            snap = {k: v for k, v in entry.items() if k != "pooled_layers"}
            snap["pooled"] = {
                layer: arr(f"snapshot{s}/{j}") for j, layer in enumerate(entry["pooled_layers"])
            }
            snapshots.append(snap)
        return Recording(
            model_name=doc["model_name"],
            class_names=list(doc["class_names"]),
            input_shape=tuple(int(x) for x in doc["input_shape"]),
            labels=arr("labels"),
            predictions=arr("predictions"),
            confidences=arr("confidences"),
            pooled_index=arr("pooled_index"),
            pooled_images=arr("pooled_images"),
            layers=layers,
            weights=weights,
            graph=graph_from_json(doc["graph"]),
            snapshots=snapshots,
            meta=dict(doc.get("meta") or {}),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, SessionError):
            raise
        raise SessionError(f"{where}: recording.json is not a valid recording ({e!r})") from None


def read_file(path: str | os.PathLike[str], rel: str) -> Path:
    """Check one file of a session against its manifest and return its path.

    Use it for files added with ``save_recording(..., files=...)`` such as checkpoints.
    """
    root = Path(path)
    return _check_file(root, read_manifest(root), rel)


def load(path: str | os.PathLike[str]) -> Any:
    """Load the :class:`~cnnvis.record.Recording` of a session folder.

    The manifest's format version and the checksums of the recording files are checked first;
    arrays are read with ``allow_pickle=False``.

    Raises
    ------
    SessionError
        If the folder is not a session, lacks a file, a file is truncated or altered, or the
        session was written by a newer format version.
    """
    root = Path(path)
    manifest = read_manifest(root)
    doc = read_json(_check_file(root, manifest, "recording.json"))
    arrays = read_arrays(_check_file(root, manifest, "recording.npz"))
    rec = _recording_from(doc, arrays, root)
    rec.session_path = root.absolute()
    return rec
