"""``export animation`` on the demo session's 6 training snapshots: an MP4 and a GIF read back
with the right number of frames, frames that differ, tracked samples ringed where they are, and
clear errors for what cannot be written."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

from cnnvis.export.animation import FrameStyle, Rasteriser, export_animation, write_animation
from cnnvis.scene.colors import HIGHLIGHT


@pytest.fixture(scope="module")
def analysis(demo_session):
    from cnnvis.session import open_session

    return open_session(demo_session)


def _read(path):
    reader = imageio.get_reader(str(path))
    try:
        return [np.asarray(f) for f in reader]
    finally:
        reader.close()


def test_mp4_reads_back_with_every_frame_and_moving_points(analysis, tmp_path):
    out = export_animation(
        analysis, tmp_path / "a.mp4", layer="head.relu", fps=12, seconds=2, size=(320, 240)
    )
    frames = _read(out)
    assert len(frames) == 24
    assert frames[0].shape == (240, 320, 3)
    diff = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 2.0
    assert sum(d > 0.5 for d in diff) >= 10  # the points move through most of the video
    # white background with class-coloured points: many saturated pixels, mostly white
    assert (frames[-1].min(axis=2) > 240).mean() > 0.5
    assert (np.ptp(frames[-1].astype(int), axis=2) > 80).sum() > 200


def test_gif_reads_back_too(analysis, tmp_path):
    out = export_animation(
        analysis, tmp_path / "a.gif", layer="block3.relu", fps=5, seconds=2, size=(200, 150),
        track=[],
    )  # fmt: skip
    frames = _read(out)
    assert len(frames) == 10
    assert frames[0].shape[:2] == (150, 200)
    assert np.abs(frames[0][..., :3].astype(int) - frames[-1][..., :3].astype(int)).mean() > 1.0


def test_tracked_points_are_ringed_where_they_are(analysis):
    rng = np.random.default_rng(0)
    keyframes = rng.normal(size=(3, 200, 2))
    labels = rng.integers(0, 10, 200)
    style = FrameStyle("t", ["a", "b", "c"], [str(c) for c in range(10)], track=[5, 17])
    raster = Rasteriser(keyframes, labels, (640, 360), style)
    magenta = np.array(HIGHLIGHT[:3]) * 255
    for t in (0.0, 1.3, 2.0):
        image = raster.draw(t).astype(float)
        from cnnvis.analysis.animation import frame_at

        xy = raster.to_pixels(frame_at(keyframes, t), t)
        for row in (5, 17):
            x, y = np.round(xy[row]).astype(int)
            patch = image[y - 10 : y + 11, x - 10 : x + 11]
            near = np.linalg.norm(patch - magenta, axis=2) < 60
            assert near.sum() >= 4, (t, row)


def test_what_cannot_be_written_is_a_clear_error(analysis, tmp_path):
    frames = np.zeros((2, 10, 2))
    frames[1] += 1.0
    labels = np.arange(10) % 3
    with pytest.raises(ValueError, match="even width and height"):
        write_animation(frames, labels, tmp_path / "a.mp4", size=(321, 240))
    with pytest.raises(ValueError, match=r"\.mp4 or \.gif"):
        write_animation(frames, labels, tmp_path / "a.avi")
    with pytest.raises(ValueError, match="fps"):
        write_animation(frames, labels, tmp_path / "a.mp4", fps=0)
    with pytest.raises(ValueError, match="labels must be 10"):
        write_animation(frames, labels[:9], tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="not in the projection sample"):
        export_animation(analysis, tmp_path / "b.mp4", track=[10**6], seconds=1)
    with pytest.raises(KeyError):
        export_animation(analysis, tmp_path / "b.mp4", layer="no.such.layer")
    assert not list(tmp_path.iterdir())  # nothing half-written left behind
