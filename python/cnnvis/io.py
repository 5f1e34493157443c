"""The ground floor: files written atomically, JSON and arrays read back safely, checksummed folders.

Nothing here imports the rest of cnnvis, so every stage may use it.

Why the checksummed folder lives here
-------------------------------------
A session is a folder whose ``manifest.json`` lists every file with its size and sha256. Three
stages write into it: ``record/`` (the Recording and its codec), ``analysis/`` (its part) and the
demo (checkpoints). ``session.py`` comes after all of them in the pipeline, so the folder
primitives they share (manifest, parts, checksums, atomic folders) live on this floor;
``session.py`` keeps the session as a whole (loading, opening, caching) and re-exports them.

Reading what a folder lists is hostile-input safe:

* a manifest entry must be a relative path inside the folder: no absolute path, no ``..``, no
  symlink that leads outside; the refusal never says whether an outside file exists;
* only regular files are opened (``os.lstat`` first, then ``O_NOFOLLOW | O_NONBLOCK`` and a check
  of the open file): never a device, a FIFO or a symlink;
* a file is read only when its size is the declared one and its sha256 matches;
* JSON must be valid, without NaN or duplicate keys; too deep a nesting is an error, not a crash;
* an ``.npz`` holds only ``.npy`` members of plain numeric dtypes whose header agrees with their
  byte count, read with no pickle (a non-array member is refused, not returned as bytes).

Every failure is one :class:`SessionError` naming the file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
#: The largest JSON file read (a recording's JSON holds its graph and meta, a few MB at most).
MAX_JSON_BYTES = 1 << 28
_PART_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RESERVED = {"recording", "manifest"}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ARRAY_KINDS = "biufc"  # bool, integers, floats, complex: nothing that needs pickle


class SessionError(ValueError):
    """A session folder is missing, incomplete, damaged or from a newer version of cnnvis."""


# -- writing single files ---------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes."""
    with open(path, "rb") as f:
        return _sha256_of(f)


def _sha256_of(f: IO[bytes], limit: int = 1 << 62) -> str:
    """The sha256 of the next ``limit`` bytes of ``f`` (or of all that is left)."""
    h = hashlib.sha256()
    while limit > 0 and (chunk := f.read(min(1 << 20, limit))):
        h.update(chunk)
        limit -= len(chunk)
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


# -- reading single files -------------------------------------------------------------------------


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open ``path`` for reading bytes if it is a regular file (not a link, device or FIFO);
    else a :class:`SessionError` naming it (missing, not a regular file, or unreadable)."""
    path = Path(path)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise SessionError(f"{path} is not a regular file")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise SessionError(f"{path} is missing") from None
    except OSError as exc:
        raise SessionError(f"{path} cannot be read: {exc.strerror or exc}") from None
    f = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # replaced between the two looks
        f.close()
        raise SessionError(f"{path} is not a regular file")
    return f


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"the key {dup!r} appears twice in one object")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def parse_json(data: bytes, where: str | os.PathLike[str]) -> Any:
    """Parse JSON bytes strictly (no NaN, no duplicate keys); errors name ``where``."""
    try:
        return json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant
        )
    except RecursionError:
        raise SessionError(f"{where} is nested too deeply to be read") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise SessionError(f"{where} is not valid JSON (truncated or damaged?): {e}") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file (see :func:`parse_json`); any failure raises :class:`SessionError`."""
    with open_regular(path) as f:
        data = f.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise SessionError(
            f"{path} is larger than the {MAX_JSON_BYTES >> 20} MB a JSON file may be"
        )
    return parse_json(data, path)


def _read_npy(member: IO[bytes], size: int, where: str) -> np.ndarray:
    """One ``.npy`` member of ``size`` bytes: header checked against the size, no pickle."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"{where}: .npy format version {version} is not supported")
    if dtype.hasobject or dtype.kind not in _ARRAY_KINDS or dtype.names is not None:
        raise ValueError(f"{where}: dtype {dtype} is not a plain numeric dtype")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes != size - member.tell():
        raise ValueError(
            f"{where}: its header declares {math.prod(shape)} values ({nbytes} bytes) but it "
            f"holds {size - member.tell()} bytes"
        )
    # np.empty, not zeros: pages are touched only as data arrives, so a member that claims more
    # bytes than it holds fails at its end without first taking that memory
    out = np.empty(nbytes, np.uint8)
    view, got = memoryview(out), 0
    while got < nbytes:
        n = member.readinto(view[got : got + (1 << 24)])
        if not n:
            raise ValueError(f"{where}: truncated")
        got += n
    return out.view(dtype).reshape(shape, order="F" if fortran else "C")


def _read_npz(f: IO[bytes]) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(f) as z:
        infos = z.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise ValueError("it has two members of the same name")
        arrays = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise ValueError(f"member {info.filename!r} is not an array (.npy)")
            with z.open(info) as member:
                arrays[info.filename[:-4]] = _read_npy(member, info.file_size, info.filename)
        return arrays


def read_arrays(
    source: str | os.PathLike[str] | IO[bytes], where: str | os.PathLike[str] | None = None
) -> dict[str, np.ndarray]:
    """Read every array of an ``.npz`` file (a path, or an open binary file read from ``where``)
    into memory. Only ``.npy`` members of numeric dtypes are accepted; nothing is unpickled."""
    path = source if where is None else where
    f = source if hasattr(source, "read") else open_regular(source)
    try:
        return _read_npz(f)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error, NotImplementedError,
            MemoryError, OverflowError) as e:  # fmt: skip
        raise SessionError(
            f"{path} cannot be read as arrays (truncated or damaged?): {e}"
        ) from None
    finally:
        if f is not source:
            f.close()


# -- checksummed folders: the manifest --------------------------------------------------------------


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _file_entry(root: Path, rel: str) -> dict[str, Any]:
    p = root / rel
    return {"bytes": p.stat().st_size, "sha256": sha256(p)}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_entry(where: Path, rel: Any, entry: Any) -> None:
    """A manifest file entry: a plain relative path, its byte count and sha256."""
    parts = rel.split("/") if isinstance(rel, str) else []
    if not parts or any(p in ("", ".", "..") for p in parts) or "\\" in rel or "\0" in rel:
        raise SessionError(f"{where} lists {rel!r}, which is not a path inside the session")
    if not isinstance(entry, dict):
        raise SessionError(f"{where}: the entry of {rel!r} is not an object with bytes and sha256")
    size, digest = entry.get("bytes"), entry.get("sha256")
    if not _is_int(size) or size < 0:
        raise SessionError(f"{where}: the size of {rel!r} is not a byte count ({size!r})")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise SessionError(f"{where}: the checksum of {rel!r} is not a sha256 ({digest!r})")


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``manifest.json`` of a session folder (not the files it lists)."""
    root = Path(path)
    if not root.exists():
        raise SessionError(f"no session at {root}: the folder does not exist")
    if not root.is_dir():
        raise SessionError(f"{root} is not a session folder (it is a file)")
    where = root / MANIFEST
    if not os.path.lexists(where):
        raise SessionError(
            f"{root} is not a cnnvis session: it has no {MANIFEST} (an interrupted write, or not "
            "a session folder)"
        )
    manifest = read_json(where)
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise SessionError(f"{where} has no format_version: not a cnnvis session")
    version = manifest["format_version"]
    if not _is_int(version) or version < 1:
        raise SessionError(f"{where}: format_version {version!r} is not valid")
    if version > FORMAT_VERSION:
        raise SessionError(
            f"{root} was written with session format {version}, newer than this cnnvis reads "
            f"(format {FORMAT_VERSION}); upgrade cnnvis to open it"
        )
    if not isinstance(manifest.get("files"), dict):
        raise SessionError(f"{where} has no file list")
    for rel, entry in manifest["files"].items():
        _check_entry(where, rel, entry)
    return manifest


def open_checked(root: Path, manifest: dict[str, Any], rel: str) -> IO[bytes]:
    """Open the file ``rel`` of a session, checked against its manifest entry (path inside the
    folder, a regular file, the declared size and sha256); positioned at its start."""
    entry = manifest["files"].get(rel)
    if entry is None:
        raise SessionError(f"{root} has no {rel} in its manifest")
    p = root / rel
    inside = os.path.realpath(root)
    if os.path.commonpath([inside, os.path.realpath(p)]) != inside:
        raise SessionError(f"{root / MANIFEST} lists {rel!r}, which leads outside the session")
    if not os.path.lexists(p):
        raise SessionError(f"{root} is incomplete: {rel} is listed in the manifest but missing")
    f = open_regular(p)
    try:
        size = os.fstat(f.fileno()).st_size
        if size != entry["bytes"]:
            raise SessionError(
                f"{p} is damaged: {size} bytes where the manifest says {entry['bytes']} "
                "(truncated or changed after writing)"
            )
        if _sha256_of(f, size) != entry["sha256"] or f.read(1):  # (a file that grew: changed)
            raise SessionError(
                f"{p} is damaged: its sha256 checksum does not match the manifest "
                "(changed after writing)"
            )
        f.seek(0)
        return f
    except BaseException:
        f.close()
        raise


def _check_file(root: Path, manifest: dict[str, Any], rel: str) -> Path:
    open_checked(root, manifest, rel).close()
    return root / rel


def read_checked_json(root: Path, manifest: dict[str, Any], rel: str) -> Any:
    """The JSON file ``rel`` of a session, checked (see :func:`open_checked`)."""
    if manifest["files"].get(rel, {}).get("bytes", 0) > MAX_JSON_BYTES:
        raise SessionError(f"{root / rel} is larger than a JSON file may be")
    with open_checked(root, manifest, rel) as f:
        return parse_json(f.read(), root / rel)


def read_checked_arrays(root: Path, manifest: dict[str, Any], rel: str) -> dict[str, np.ndarray]:
    """The arrays of ``rel`` of a session, checked (see :func:`open_checked`)."""
    with open_checked(root, manifest, rel) as f:
        return read_arrays(f, root / rel)


def verify(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check the manifest and every file it lists; return the manifest."""
    root = Path(path)
    manifest = read_manifest(root)
    for rel in manifest["files"]:
        _check_file(root, manifest, rel)
    return manifest


def read_file(path: str | os.PathLike[str], rel: str) -> Path:
    """Check one file of a session against its manifest and return its path (for files added
    with ``save_recording(..., files=...)`` such as checkpoints)."""
    root = Path(path)
    return _check_file(root, read_manifest(root), rel)


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


# -- checksummed folders: writing ------------------------------------------------------------------


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
    """Fail now, not after a long run, if a session cannot be saved at ``path``: makes the
    parent folder and a folder in it (removed at once), as saving will. Returns the absolute path.

    Raises :class:`SessionError` when ``path`` is a file, a folder that is not a session, an
    existing session while ``overwrite`` is False, or where folders cannot be made (and why).
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
        obj = read_checked_json(root, manifest, json_rel)
    if npz_rel in manifest["files"]:
        arrays = read_checked_arrays(root, manifest, npz_rel)
    return obj, arrays
