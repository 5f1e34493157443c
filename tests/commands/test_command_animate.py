"""``python -m cnnvis animate A.csv B.csv … --labels L.csv --out F.mp4`` on CSV files of the demo
session's snapshots, and the one-line errors for ragged, non-numeric, NaN and mismatched files;
``export animation`` through the command line."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

from cnnvis.cli import main


@pytest.fixture(scope="module")
def csvs(demo_session, tmp_path_factory):
    import cnnvis

    rec = cnnvis.load(demo_session)
    folder = tmp_path_factory.mktemp("csv")
    paths = []
    for s in (0, 5):
        path = folder / f"epoch{s}.csv"
        x = rec.snapshots[s]["pooled"]["head.relu"]
        header = ",".join(f"f{i}" for i in range(x.shape[1]))
        np.savetxt(path, x, delimiter=",", header=header, comments="")
        paths.append(path)
    labels = folder / "labels.csv"
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])  # fmt: skip
    labels.write_text("label\n" + "\n".join(names[rec.pooled_labels]) + "\n")
    return paths, labels, len(rec.pooled_labels)


def test_animate_two_csv_files(csvs, tmp_path, capsys):
    (a, b), labels, n = csvs
    out = tmp_path / "a.mp4"
    args = [str(a), str(b), "--labels", str(labels), "--out", str(out)]
    assert main(["animate", *args, "--fps", "8", "--seconds", "2", "--size", "320x240"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    reader = imageio.get_reader(str(out))
    frames = [np.asarray(f) for f in reader]
    reader.close()
    assert len(frames) == 16 and frames[0].shape == (240, 320, 3)
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 2.0


def _error(capsys, *argv) -> str:
    assert main(list(argv)) == 2
    return capsys.readouterr().err


def test_bad_csv_files_get_one_clear_line(csvs, tmp_path, capsys):
    (a, _), labels, n = csvs
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("1,2,3\n4,5,6\n7,8\n")
    words = tmp_path / "words.csv"
    words.write_text("1,2,3\n4,five,6\n")
    nan = tmp_path / "nan.csv"
    nan.write_text("1,2\n3,nan\n")
    out = str(tmp_path / "x.mp4")
    err = _error(capsys, "animate", str(a), str(ragged), "--out", out)
    assert "ragged.csv line 3 has 2 values, line 1 has 3" in err
    assert "Traceback" not in err
    assert "'five' is not a number" in _error(capsys, "animate", str(a), str(words), "--out", out)
    assert "nan.csv line 2 holds NaN or inf" in _error(
        capsys, "animate", str(a), str(nan), "--out", out
    )
    short = tmp_path / "short.csv"
    short.write_text("1,2\n3,4\n")
    assert f"short.csv has 2 rows and {a} has {n}" in _error(
        capsys, "animate", str(a), str(short), "--out", out
    )
    two = tmp_path / "two.csv"
    two.write_text("1\n3\n")
    assert f"has 2 labels for {n} samples" in _error(
        capsys, "animate", str(a), str(a), "--labels", str(two), "--out", out
    )
    assert "at least two" in _error(capsys, "animate", str(a), "--out", out)
    assert "--track takes integers" in _error(
        capsys, "animate", str(a), str(a), "--track", "A", "--out", out
    )
    assert not (tmp_path / "x.mp4").exists()


def test_export_animation_command(demo_session, tmp_path, capsys):
    out = tmp_path / "e.gif"
    argv = ["export", "animation", str(demo_session), "--layer", "head.relu", "--out", str(out)]
    options = ["--fps", "4", "--seconds", "1", "--size", "160x120", "--track", "3"]
    assert main([*argv, *options, "--snapshots", "0,model"]) == 0
    reader = imageio.get_reader(str(out))
    frames = [np.asarray(f)[..., :3].astype(int) for f in reader]
    reader.close()
    assert len(frames) == 4 and np.abs(frames[0] - frames[-1]).mean() > 1.0
    err = _error(capsys, "export", "animation", str(demo_session), "--out", str(out), "--fps", "-1")
    assert "fps must be" in err
