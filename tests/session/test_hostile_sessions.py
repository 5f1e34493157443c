"""A hostile-session corpus: a real session, damaged on purpose in many ways.

Each case must give one clear :class:`SessionError` naming the file, from ``cnnvis.load``,
``open_session``, ``python -m cnnvis info --verify`` and ``python -m cnnvis export``: never a
traceback, a hang, wrong data loaded silently, or a word about files outside the session.
Where a damage would be caught by the checksums, the manifest is rewritten to match it, so that
the check behind them is what is tested.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from child_env import child_env
from cnnvis.data.digits import DigitsDataset
from cnnvis.io import sha256
from cnnvis.models.demo import DemoCNN
from cnnvis.record import record
from cnnvis.session import SessionError, load, open_session

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """The demo CNN (untrained, seeded) recorded on 450 held-out digits, opened once."""
    torch.manual_seed(0)
    rec = record(DemoCNN().eval(), DigitsDataset("test"), max_samples=450, top_k=4,
                 patch_size=8, max_pooled=100, progress=False)  # fmt: skip
    path = rec.save(tmp_path_factory.mktemp("base") / "session")
    open_session(path)  # adds the analysis part
    return path


# -- ways to damage a copy ---------------------------------------------------------------------


def _manifest(s: Path) -> dict:
    return json.loads((s / "manifest.json").read_text())


def _put_manifest(s: Path, manifest: dict) -> None:
    (s / "manifest.json").write_text(json.dumps(manifest))


def _put(s: Path, rel: str, data: bytes) -> None:
    """Write ``data`` as the file ``rel`` and make the manifest agree (size and checksum)."""
    (s / rel).unlink()
    (s / rel).write_bytes(data)
    m = _manifest(s)
    m["files"][rel] = {"bytes": len(data), "sha256": sha256(s / rel)}
    _put_manifest(s, m)


def _json(change):
    def apply(s: Path) -> None:
        doc = json.loads((s / "recording.json").read_text())
        change(doc)
        _put(s, "recording.json", json.dumps(doc).encode())

    return apply


def _arrays(change):
    def apply(s: Path) -> None:
        with np.load(s / "recording.npz") as z:
            arrays = {k: z[k] for k in z.files}
        change(arrays)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        _put(s, "recording.npz", buf.getvalue())

    return apply


def _members(change):
    """Rewrite the raw members of recording.npz: ``change(list of (name, bytes))``."""

    def apply(s: Path) -> None:
        with zipfile.ZipFile(s / "recording.npz") as z:
            members = [(i.filename, z.read(i)) for i in z.infolist()]
        change(members)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a duplicate name is one of the damages
            for name, data in members:
                z.writestr(name, data)
        _put(s, "recording.npz", buf.getvalue())

    return apply


def _replace_member(name: str, data: bytes):
    return _members(lambda ms: ms.__setitem__([n for n, _ in ms].index(name), (name, data)))


def _npy_header(dtype: str, shape: tuple) -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def _member_claiming_more(s: Path) -> None:
    """labels.npy, first in the archive, declares 10**8 values and its zip entry claims their
    800 MB, but holds 3600 bytes: refused at its end without taking the 800 MB first."""
    header = _npy_header("<i8", (10**8,))
    with zipfile.ZipFile(s / "recording.npz") as z:
        others = [(i.filename, z.read(i)) for i in z.infolist() if i.filename != "labels.npy"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in [("labels.npy", header + bytes(3600)), *others]:
            z.writestr(name, data)
    raw = bytearray(buf.getvalue())
    claim = struct.pack("<I", 8 * 10**8 + len(header))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # first entries
        at = raw.index(signature) + offset
        raw[at : at + 4] = claim
    _put(s, "recording.npz", bytes(raw))


def _manifest_change(change):
    def apply(s: Path) -> None:
        m = _manifest(s)
        change(m)
        _put_manifest(s, m)

    return apply


def _raw_manifest(text: str):
    return lambda s: (s / "manifest.json").write_text(text)


def _link_outside(rel: str, target: str | None):
    """``rel`` becomes a symlink to ``target`` (default: an identical copy outside the folder,
    so size and checksum agree)."""

    def apply(s: Path) -> None:
        where = target
        if where is None:
            where = str(s.parent / f"outside-{rel}")
            shutil.copy(s / rel, where)
        (s / rel).unlink()
        os.symlink(where, s / rel)

    return apply


def _fifo(rel: str):
    def apply(s: Path) -> None:
        (s / rel).unlink()
        os.mkfifo(s / rel)

    return apply


def _flip_byte(s: Path) -> None:
    data = bytearray((s / "recording.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (s / "recording.npz").write_bytes(bytes(data))


def _listed(rel: str):
    return _manifest_change(lambda m: m["files"].__setitem__(rel, {"bytes": 1, "sha256": "0" * 64}))


def _layer_entry_as_string(doc):
    doc["layers"][0] = "block1.conv"


CASES = {
    # the manifest and its paths
    "absolute path in manifest": (_listed("/dev/zero"), "not a path inside"),
    "parent path in manifest": (_listed("../../../../etc/passwd"), "not a path inside"),
    "manifest path with a dot part": (_listed("a/./b"), "not a path inside"),
    "symlink to an outside copy": (_link_outside("recording.json", None), "outside the session"),
    "symlink to /dev/zero": (_link_outside("recording.npz", "/dev/zero"), "outside the session"),
    "symlink to a missing outside file": (
        _link_outside("recording.npz", "/nonexistent/x"),
        "outside the session",
    ),
    "fifo as array file": (_fifo("recording.npz"), "not a regular file"),
    "fifo as manifest": (_fifo("manifest.json"), "not a regular file"),
    "manifest is a list": (_raw_manifest("[1, 2]"), "no format_version"),
    "manifest is not json": (_raw_manifest("{ not json"), "not valid JSON"),
    "manifest deeply nested": (_raw_manifest("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "manifest duplicate keys": (
        _raw_manifest('{"format_version": 2, "format_version": 1, "files": {}}'),
        "appears twice",
    ),
    "manifest NaN": (_raw_manifest('{"format_version": NaN, "files": {}}'), "NaN"),
    "format_version true": (
        _manifest_change(lambda m: m.__setitem__("format_version", True)),
        "format_version True",
    ),
    "format_version newer": (
        _manifest_change(lambda m: m.__setitem__("format_version", 99)),
        "newer",
    ),
    "file list missing": (_manifest_change(lambda m: m.pop("files")), "no file list"),
    "file entry a string": (
        _manifest_change(lambda m: m["files"].__setitem__("recording.json", "abc")),
        "not an object",
    ),
    "file size negative": (
        _manifest_change(lambda m: m["files"]["recording.npz"].__setitem__("bytes", -1)),
        "not a byte count",
    ),
    "file size a bool": (
        _manifest_change(lambda m: m["files"]["recording.npz"].__setitem__("bytes", True)),
        "not a byte count",
    ),
    "checksum not hex": (
        _manifest_change(lambda m: m["files"]["recording.npz"].__setitem__("sha256", "zz")),
        "not a sha256",
    ),
    "wrong checksum": (_flip_byte, "sha256 checksum does not match"),
    "recording file missing": (lambda s: (s / "recording.json").unlink(), "missing"),
    "truncated npz": (
        lambda s: _put(s, "recording.npz", (s / "recording.npz").read_bytes()[:5000]),
        "cannot be read as arrays",
    ),
    # recording.json
    "n_samples negative": (_json(lambda d: d.__setitem__("n_samples", -5)), "n_samples"),
    "n_samples a string": (_json(lambda d: d.__setitem__("n_samples", "450")), "n_samples"),
    "n_samples too large": (_json(lambda d: d.__setitem__("n_samples", 451)), "shape"),
    "huge input_shape": (_json(lambda d: d.__setitem__("input_shape", [1, 10**12, 8])), "input"),
    "input_shape of floats": (_json(lambda d: d.__setitem__("input_shape", [1.0, 8, 8])), "input"),
    "class_names shorter than classes": (
        _json(lambda d: d.__setitem__("class_names", ["0", "1"])),
        "class_means",
    ),
    "class_names not strings": (
        _json(lambda d: d.__setitem__("class_names", list(range(10)))),
        "class_names",
    ),
    "layer entry a string": (_json(_layer_entry_as_string), "name"),
    "duplicate layer": (_json(lambda d: d["layers"].__setitem__(1, d["layers"][0])), "twice"),
    "meta a list": (_json(lambda d: d.__setitem__("meta", [1])), "meta"),
    "graph nodes garbage": (_json(lambda d: d["graph"].__setitem__("nodes", [1, 2])), "graph"),
    "graph deeply nested": (
        lambda s: _put(
            s,
            "recording.json",
            (s / "recording.json")
            .read_bytes()
            .replace(
                b'"graph": {', b'"graph": {"deep": ' + b"[" * 50_000 + b"]" * 50_000 + b",", 1
            ),
        ),
        "nested too deeply",
    ),
    "recording.json is a list": (lambda s: _put(s, "recording.json", b"[]"), "not a JSON object"),
    "snapshot of an unknown layer": (
        _json(lambda d: d["snapshots"].append({"epoch": 0, "pooled_layers": ["nope"]})),
        "unrecorded layer",
    ),
    "snapshot accuracy a string": (
        _json(lambda d: d["snapshots"].append({"accuracy": "high", "pooled_layers": []})),
        "accuracy",
    ),
    # recording.npz
    "confidences of shape (1,)": (
        _arrays(lambda a: a.__setitem__("confidences", a["confidences"][:1])),
        "confidences",
    ),
    "confidences NaN": (
        _arrays(lambda a: a["confidences"].__setitem__(3, np.nan)),
        "confidences",
    ),
    "labels as floats": (
        _arrays(lambda a: a.__setitem__("labels", a["labels"].astype(np.float64))),
        "labels",
    ),
    "labels big-endian": (
        _arrays(lambda a: a.__setitem__("labels", a["labels"].astype(">i8"))),
        "labels",
    ),
    "prediction out of range": (
        _arrays(lambda a: a["predictions"].__setitem__(0, 10)),
        "values outside",
    ),
    "pooled_index out of range": (
        _arrays(lambda a: a["pooled_index"].__setitem__(0, 10**9)),
        "pooled_index",
    ),
    "pooled of the wrong shape": (
        _arrays(lambda a: a.__setitem__("layer0/pooled", a["layer0/pooled"][:, :3])),
        "layer0/pooled",
    ),
    "top_samples out of range": (
        _arrays(lambda a: a["layer1/top_samples"].__setitem__((0, 0), 450)),
        "top_samples",
    ),
    "missing array": (_arrays(lambda a: a.pop("predictions")), "lacks the array"),
    "pickle in place of an array": (
        _replace_member("labels.npy", pickle.dumps(np.arange(450))),
        "cannot be read as arrays",
    ),
    "member that is not .npy": (
        _members(lambda ms: ms.append(("extra", b"raw bytes"))),
        "not an array",
    ),
    "header declaring 1e11 values": (
        _replace_member("labels.npy", _npy_header("<i8", (10**11,)) + bytes(3600)),
        "declares",
    ),
    "member claiming 800 MB it does not hold": (_member_claiming_more, "labels.npy: truncated"),
    "object array": (
        _replace_member("labels.npy", _npy_header("|O", (450,)) + bytes(3600)),
        "not a plain numeric dtype",
    ),
    "two members of one name": (
        _members(lambda ms: ms.append(ms[0])),
        "two members",
    ),
}


@pytest.fixture(params=sorted(CASES))
def damaged(request, base, tmp_path):
    s = tmp_path / "s"
    shutil.copytree(base, s, symlinks=True)
    damage, message = CASES[request.param]
    damage(s)
    return s, message


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnvis", *args], capture_output=True,
                          text=True, env=child_env(), timeout=60)  # fmt: skip


def test_every_way_in_gives_one_session_error(damaged, tmp_path):
    s, message = damaged
    with pytest.raises(SessionError, match=message) as loaded:
        load(s)
    assert str(s) in str(loaded.value)  # names the session (and the file)
    with pytest.raises(SessionError, match=message):
        open_session(s)
    for args in (["info", "--verify", str(s)], ["export", "facets", str(s), "--out",
                                                 str(tmp_path / "out")]):  # fmt: skip
        r = _cli(*args)
        assert r.returncode in (1, 2), (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr and r.stdout == "", r.stderr
        assert r.stderr.startswith(f"cnnvis {args[0]}: ") and str(s) in r.stderr, r.stderr


def test_nothing_is_said_about_files_outside(base, tmp_path):
    """An outside target that exists and one that does not get the same answer: no size, no
    existence is disclosed."""
    answers = []
    for target in ("/etc/passwd", "/nonexistent/passwd"):
        s = tmp_path / target.replace("/", "_")
        shutil.copytree(base, s)
        _link_outside("recording.json", target)(s)
        with pytest.raises(SessionError) as e:
            load(s)
        answers.append(str(e.value).replace(str(s), "S"))
    assert answers[0] == answers[1]
    assert str(os.path.getsize("/etc/passwd")) not in answers[0]
    for rel in ("/etc/passwd", "../../../../etc/passwd"):
        s = tmp_path / f"listed{len(rel)}"
        shutil.copytree(base, s)
        _listed(rel)(s)
        r = _cli("info", "--verify", str(s))
        assert r.returncode == 1 and "not a path inside the session" in r.stderr
        assert "bytes" not in r.stderr


def test_the_undamaged_copy_opens(base, tmp_path):
    """The corpus's base is a valid session: a damage, not the copy, is what each case refuses."""
    s = tmp_path / "s"
    shutil.copytree(base, s, symlinks=True)
    _put(s, "recording.json", (s / "recording.json").read_bytes())  # rewrites the manifest
    rec = load(s)
    assert rec.n_samples == 450 and rec.confidences.shape == (450,)
    assert open_session(s).recording.n_samples == 450
    r = _cli("info", "--verify", str(s))
    assert r.returncode == 0 and "samples    450" in r.stdout, r.stderr


@pytest.mark.parametrize(
    "content",
    [b"[]", b'{"format": "cnnvis-analysis", "version": 1}', b'{"format": "cnnvis-analysis", '
     b'"version": 1, "layers": 5, "labels": "x"}', b"[" * 50_000 + b"]" * 50_000],
)  # fmt: skip
def test_a_damaged_analysis_part_is_one_session_error(base, tmp_path, content):
    """The recording is sound; the analysis saved beside it (checksums matching) is not."""
    s = tmp_path / "s"
    shutil.copytree(base, s)
    _put(s, "analysis.json", content)
    assert load(s).n_samples == 450
    with pytest.raises(SessionError, match="analysis"):
        open_session(s)
    r = _cli("export", "facets", str(s), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "analysis.json" in r.stderr
