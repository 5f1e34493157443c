"""cnnvis.io: arrays and JSON read back exactly as numpy and json write them, and strictly."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from cnnvis.io import SessionError, parse_json, read_arrays, read_json, write_arrays_atomic


@pytest.mark.parametrize("compress", [False, True])
def test_arrays_read_back_as_np_load_reads_them(tmp_path, compress):
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.normal(size=(7, 5)).astype(np.float32),
        "fortran": np.asfortranarray(rng.integers(0, 99, (4, 6))),
        "empty": np.zeros((0, 3), np.int64),
        "flags": rng.random(9) > 0.5,
        "scalar": np.float64(2.5),
        "big_endian": np.arange(5, dtype=">i4"),
        "complex": np.array([1 + 2j], np.complex64),
        "nested/key": np.arange(3, dtype=np.uint8),
    }
    path = write_arrays_atomic(tmp_path / "a.npz", arrays, compress=compress)
    got = read_arrays(path)
    with np.load(path, allow_pickle=False) as z:
        want = {k: z[k] for k in z.files}
    assert list(got) == list(want) == list(arrays)
    for key, a in want.items():
        assert got[key].dtype == a.dtype and got[key].shape == a.shape, key
        assert got[key].flags.f_contiguous == a.flags.f_contiguous, key
        assert got[key].flags.writeable, key
        np.testing.assert_array_equal(got[key], a, err_msg=key)


def test_arrays_that_need_pickle_are_neither_written_nor_read(tmp_path):
    with pytest.raises(TypeError, match="object"):
        write_arrays_atomic(tmp_path / "o.npz", {"o": np.array([{}], dtype=object)})
    buf = io.BytesIO()
    np.savez(buf, o=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(SessionError, match="o.npy: dtype object is not a plain numeric dtype"):
        read_arrays(io.BytesIO(buf.getvalue()), "mem.npz")


def test_json_is_read_strictly(tmp_path):
    assert parse_json(b'{"a": [1, 2.5, null, "x"]}', "f") == {"a": [1, 2.5, None, "x"]}
    for text, message in [
        (b'{"a": 1, "a": 2}', "appears twice"),
        (b'{"a": NaN}', "NaN is not a number"),
        (b'{"a": -Infinity}', "Infinity"),
        (b"[" * 200_000, "nested too deeply"),
        (b'{"a": 1', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
    ]:
        with pytest.raises(SessionError, match=message):
            parse_json(text, "f")
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"k": 1}))
    assert read_json(path) == {"k": 1}
    os.symlink(path, tmp_path / "link.json")
    with pytest.raises(SessionError, match="link.json is not a regular file"):
        read_json(tmp_path / "link.json")
    with pytest.raises(SessionError, match="is missing"):
        read_json(tmp_path / "none.json")
    os.mkfifo(tmp_path / "fifo.json")
    with pytest.raises(SessionError, match="not a regular file"):
        read_json(tmp_path / "fifo.json")
