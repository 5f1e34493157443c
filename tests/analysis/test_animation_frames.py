"""The epoch animation's frames (``cnnvis.analysis.animation``) on the demo session's snapshots:
aligned keyframes, eased in-betweens, the video timeline and the trails of tracked points."""

from __future__ import annotations

import numpy as np
import pytest

from cnnvis.analysis.animation import (
    aligned_frames,
    check_representations,
    ease,
    frame_at,
    keyframe_at,
    timeline,
    trails,
)
from cnnvis.analysis.projections import activations, neighbourhood_hit


@pytest.fixture(scope="module")
def snapshots(demo_session):
    import cnnvis

    rec = cnnvis.load(demo_session)
    mats = [activations(rec, "head.relu", s) for s in (0, 2, 5)]
    return mats, np.asarray(rec.pooled_labels)


@pytest.fixture(scope="module")
def frames(snapshots):
    return aligned_frames(snapshots[0], n_iter=500)


def test_keyframes_are_aligned_projections_of_every_snapshot(snapshots, frames):
    mats, labels = snapshots
    assert frames.shape == (3, len(labels), 2)
    # each keyframe centred at unit RMS radius
    assert np.allclose(frames.mean(axis=1), 0.0, atol=1e-9)
    assert np.allclose(np.sqrt(np.mean(np.sum(frames**2, axis=2), axis=1)), 1.0)
    # the trained network's frame separates the classes, the untrained one's much less
    assert neighbourhood_hit(frames[-1], labels, 6) > 0.9
    assert neighbourhood_hit(frames[0], labels, 6) < neighbourhood_hit(frames[-1], labels, 6)
    # aligned: the same samples stay closer than under a rotation of the next frame
    moved = np.mean(np.linalg.norm(frames[2] - frames[1], axis=1))
    turned = frames[2] @ np.array([[0.0, -1.0], [1.0, 0.0]])
    assert moved < np.mean(np.linalg.norm(turned - frames[1], axis=1))


def test_the_same_representation_twice_does_not_move(snapshots):
    x = snapshots[0][2]
    f = aligned_frames([x, x], n_iter=500)
    spread = np.mean(np.linalg.norm(f[0], axis=1))
    assert np.mean(np.linalg.norm(f[1] - f[0], axis=1)) < 0.1 * spread


def test_bad_representations_are_named():
    x = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match="at least two"):
        check_representations([x])
    with pytest.raises(ValueError, match="representation 1 has 19 rows"):
        check_representations([x, x[:19]])
    bad = x.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"representation 1 holds NaN or inf \(row 7\)"):
        check_representations([x, bad])
    with pytest.raises(ValueError, match="2-D"):
        check_representations([x, x[:, 0]])


def test_in_betweens_ease_from_keyframe_to_keyframe(frames):
    for i in range(3):
        assert np.array_equal(frame_at(frames, i), frames[i])
    assert np.allclose(frame_at(frames, 0.5), (frames[0] + frames[1]) / 2)
    assert np.array_equal(frame_at(frames, -1), frames[0])
    assert np.array_equal(frame_at(frames, 9), frames[2])
    u = np.linspace(0, 1, 101)
    e = ease(u)
    assert e[0] == 0 and e[-1] == 1 and np.all(np.diff(e) >= 0)
    # slow at the ends (points settle into each keyframe), fastest in the middle
    assert e[1] < 0.01 and 1 - e[-2] < 0.01 and e[51] - e[50] > 0.014
    assert keyframe_at(3, 1.4) == 1 and keyframe_at(3, 1.6) == 2


def test_timeline_holds_on_every_keyframe_and_ends_on_the_last():
    t = timeline(4, 91, hold=0.25)
    assert t[0] == 0 and t[-1] == 3 and np.all(np.diff(t) >= 0)
    for k in (0, 1, 2):
        assert np.sum(t == k) >= 7  # a quarter of each move's 30 frames holds still
    assert np.array_equal(timeline(1, 5), np.zeros(5))
    with pytest.raises(ValueError):
        timeline(3, 10, hold=1.0)


def test_trails_end_where_the_points_are(frames):
    rows = [0, 10, 20]
    path = trails(frames, rows, 1.7, span=1.0, steps=12)
    assert path.shape == (3, 12, 2)
    assert np.allclose(path[:, -1], frame_at(frames, 1.7)[rows])
    assert np.allclose(path[:, 0], frame_at(frames, 0.7)[rows])
    start = trails(frames, rows, 0.0)
    assert np.allclose(start, frames[0][rows][:, None, :])
    with pytest.raises(ValueError, match="tracked rows"):
        trails(frames, [len(frames[0])], 1.0)
