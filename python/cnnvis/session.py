"""Sessions: a folder that holds a :class:`~cnnvis.record.Recording` and what later stages add,
and :func:`open_session`, the one place that turns such a folder into an Analysis.

Layout of a session folder::

    SESSION/
      manifest.json        format_version, created, and every file with its size and sha256
      recording.json       the Recording's scalars, layer list, graph and meta (JSON)
      recording.npz        the Recording's arrays (numpy .npz, read without pickle)
      checkpoints/*.pt     optional: state dicts (the demo keeps its epoch snapshots here)
      <part>.json/.npz     optional: parts written by later stages (``analysis`` ...)

Rules
-----
* Everything is JSON or ``.npz`` arrays; nothing is ever unpickled. State dicts (``.pt``) are
  only read with ``torch.load(..., weights_only=True)``.
* Every write is atomic. A whole session is built in a temporary sibling folder and renamed into
  place (:func:`atomic_session`); a single file is written to a temporary file in the same folder
  and moved with :func:`os.replace`. A crash leaves either the old session or the new one.
* ``manifest.json`` lists every file with its size and sha256. A file is read only through it:
  a path inside the folder, a regular file, the declared size and checksum (:mod:`cnnvis.io`).
  A recording is checked field by field and array by array (:mod:`cnnvis.record.codec`).
  Every failure is one :class:`SessionError` naming the file. Files not listed are ignored.
* Additional parts: a later stage stores its results as ``<name>.json`` and/or ``<name>.npz``
  with :func:`write_part` and reads them back with :func:`read_part`. Part names are lower-case
  identifiers (``analysis``, ``layout_cache``); ``recording`` and ``manifest`` are reserved.
* ``format_version`` is an integer. A session written by a newer format is refused with a message
  that says so; older versions are read. Version 2 added ``patch_source``: a recording whose
  top-k patches are still to be cut stores the images they come from (``patch_images``,
  ``patch_samples``) instead of per-layer ``top_patches``.

Where the code lives: the folder primitives (manifest, parts, checksums, safe reads) are on the
ground floor, :mod:`cnnvis.io`, because ``record/`` and ``analysis/`` write into sessions and come
before this module; the Recording's codec is :mod:`cnnvis.record.codec`. Both are re-exported here.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cnnvis.io import (
    FORMAT_VERSION,
    MANIFEST,
    SessionError,
    atomic_file,
    atomic_session,
    check_writable,
    has_part,
    open_regular,
    prepare_folder,
    read_arrays,
    read_file,
    read_json,
    read_manifest,
    read_part,
    verify,
    write_arrays_atomic,
    write_json_atomic,
    write_part,
)
from cnnvis.io import _file_entry as _file_entry  # noqa: F401  (tests rebuild manifest entries)
from cnnvis.record.codec import graph_from_json, graph_to_json, save_recording
from cnnvis.record.recording import load_recording

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "SessionError",
    "load",
    "open_session",
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

#: Recordings kept by :func:`open_session` (a few: each may hold hundreds of MB).
CACHE_SIZE = 4
_cache: OrderedDict[tuple, Any] = OrderedDict()
_cache_lock = threading.Lock()


def load(path: str | os.PathLike[str]) -> Any:
    """Load the :class:`~cnnvis.record.Recording` of a session folder.

    The manifest's format version, the checksums of the recording files, and every field and
    array of the recording are checked first; arrays are read without pickle.

    Raises
    ------
    SessionError
        If the folder is not a session, lacks a file, a file is truncated, altered or
        inconsistent, or the session was written by a newer format version.
    """
    return load_recording(path)


def _cache_key(root: Path) -> tuple:
    """What identifies a recording on disk: the folder, its manifest's bytes, and the identity of
    the two recording files (a file replaced without the manifest is noticed too)."""
    key: list[Any] = [os.path.realpath(root)]
    for name in (MANIFEST, "recording.json", "recording.npz"):
        try:
            st = os.lstat(root / name)
        except OSError:
            return ()  # not cached: load() says what is wrong
        key.append((st.st_ino, st.st_size, st.st_mtime_ns))
    try:
        with open_regular(root / MANIFEST) as f:  # never a FIFO or a device
            key.append(hashlib.sha256(f.read(1 << 24)).hexdigest())
    except SessionError:
        return ()
    return tuple(key)


def _recording(root: Path) -> Any:
    key = _cache_key(root)
    with _cache_lock:
        if key and key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    rec = load_recording(root)  # read-only by contract: later stages never write to it
    if key:
        with _cache_lock:
            _cache[key] = rec
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return rec


def _analysis(root: Path, rec: Any, announce: Callable[[str], Any] | None) -> tuple[Any, bool]:
    from cnnvis.analysis.core import ANALYSIS_FILE, analyze, has_analysis, load_analysis

    if has_analysis(root):
        try:
            return load_analysis(root, rec), False
        except SessionError:
            raise
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as exc:
            # a damaged analysis part fails in these ways (load_analysis checks it against rec)
            raise SessionError(f"{root / ANALYSIS_FILE} is not a valid analysis: {exc}") from None
    if announce is not None:
        announce(f"analysing {root.name} (first opening only)…")
    try:
        return analyze(rec), True
    except (ValueError, KeyError) as exc:
        raise SessionError(f"the recording in {root} cannot be analysed: {exc}") from None


def open_session(
    path: str | os.PathLike[str], *, announce: Callable[[str], Any] | None = None
) -> Any:
    """Open the session at ``path`` and return its :class:`~cnnvis.analysis.Analysis`.

    The recording is loaded and checked (and kept in a small cache keyed by the folder and its
    manifest, so opening the same unchanged session again does not read it again). A saved
    analysis (with its edits and projections) is read back; a session opened for the first time
    is analysed with the defaults and the analysis is saved into it, so later openings only read
    it (a read-only session is analysed all the same). ``announce(str)`` is told when that
    happens.

    Raises
    ------
    SessionError
        With a reason for a person: the folder is missing, is not a session, is damaged or
        inconsistent, or cannot be analysed.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        what = "the folder does not exist" if not root.exists() else "it is a file"
        raise SessionError(f"no session at {root}: {what}")
    rec = _recording(root)
    analysis, fresh = _analysis(root, rec, announce)
    if fresh:
        try:
            analysis.save(root)
        except OSError:
            pass  # a read-only session is shown all the same
    return analysis


def session_model_and_data(path: str | os.PathLike[str]) -> tuple[Any, Any, Any]:
    """``(recording, model, dataset)`` of a session: its recording, its model rebuilt from the
    checkpoint the recording names (read through the manifest, ``weights_only``), in eval mode,
    and the data set it recorded (``meta["data_split"]``).

    Raises
    ------
    SessionError
        If the session is damaged or names no checkpoint; ValueError if it names no data set.
    """
    from cnnvis.models.checkpoints import load_model

    root = Path(path).expanduser()
    rec = _recording(root)
    rel = rec.meta.get("checkpoint")
    if not rel:
        raise SessionError(f"the session {root} holds no checkpoint")
    c, h, _ = rec.input_shape
    model, _ = load_model(
        read_file(root, rel), num_classes=rec.n_classes, in_channels=c, input_size=h
    )
    return rec, model.eval(), session_dataset(rec)


def session_dataset(rec: Any) -> Any:
    """The data set a recording was made on (``meta["data_split"]``), in the recording's order.

    Raises
    ------
    ValueError
        If the recording does not say which data set it recorded.
    """
    from cnnvis.data import load_dataset

    split = rec.meta.get("data_split")
    if not split:
        raise ValueError("the session does not say which data set it recorded")
    return load_dataset(split["name"], split["split"], seed=split.get("seed", 0))
