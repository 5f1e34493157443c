"""The epoch animation (P5): the same samples' representations at several moments (training
snapshots, or two models) as aligned 2-D frames, and the in-between positions that play them.

The "neural embedding animation" idea: a point is a sample, a keyframe is its t-SNE position at
one snapshot, and the animation glides every point from keyframe to keyframe, so the eye follows
classes forming and samples changing sides. Pure numpy; the export, the ``animate`` command and
the viewer's player all play what these functions return.

* :func:`aligned_frames` - keyframes ``(n_frames, n, 2)``: the t-SNE of each matrix, aligned by
  :func:`cnnvis.analysis.trajectories.embed_stops` (warm-started ``TSNE.fit_sequence``, then
  each frame centred, scaled to unit RMS radius and rotated onto the one before);
* :func:`ease`, :func:`frame_at` - positions at a fractional time ``t`` in ``[0, n_frames - 1]``
  (keyframe ``i`` at ``t = i``), eased so that points start and stop gently at each keyframe;
* :func:`timeline` - the times of a video's frames, with a short hold on every keyframe;
* :func:`trails` - the recent path of tracked points, for their faint trails.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "aligned_frames",
    "check_representations",
    "ease",
    "frame_at",
    "keyframe_at",
    "timeline",
    "trails",
]


def check_representations(matrices: Any) -> list[np.ndarray]:
    """``matrices`` as float64 2-D arrays, checked: at least two, the same number of rows (the
    same samples) in each, every value finite. Columns may differ (two models' layers).

    Raises ``ValueError`` naming the matrix (by position) that breaks a rule.
    """
    out = [np.asarray(m, dtype=np.float64) for m in matrices]
    if len(out) < 2:
        raise ValueError(f"an animation needs at least two representations, got {len(out)}")
    for i, m in enumerate(out):
        if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(f"representation {i} must be a non-empty 2-D matrix, got {m.shape}")
        if m.shape[0] != out[0].shape[0]:
            raise ValueError(
                f"representation {i} has {m.shape[0]} rows, representation 0 has "
                f"{out[0].shape[0]}: every representation needs the same samples as rows"
            )
        if not np.all(np.isfinite(m)):
            row = int(np.flatnonzero(~np.all(np.isfinite(m), axis=1))[0])
            raise ValueError(f"representation {i} holds NaN or inf (row {row})")
    return out


def aligned_frames(
    matrices: Any,
    *,
    align: str = "sequence",
    perplexity: float = 30.0,
    random_state: int = 0,
    n_jobs: int = 1,
    **tsne_options: Any,
) -> np.ndarray:
    """Aligned 2-D keyframes of a sequence of representations of the same samples.

    Parameters
    ----------
    matrices : sequence of array-like, each ``(n, d_i)``
        One matrix per moment, row ``j`` always the same sample (see
        :func:`check_representations`).
    align : str
        ``"sequence"``, ``"dynamic"`` or ``"procrustes"``, as in
        :func:`cnnvis.analysis.trajectories.embed_stops` (which also gets ``perplexity``,
        ``random_state``, ``n_jobs`` and the t-SNE options).

    Returns
    -------
    ndarray of float64, shape ``(n_frames, n, 2)``
        Every frame centred and at unit RMS radius, rotated onto the one before.
    """
    from cnnvis.analysis.trajectories import embed_stops

    frames = check_representations(matrices)
    positions, _ = embed_stops(
        frames,
        align,
        perplexity=perplexity,
        random_state=random_state,
        n_jobs=n_jobs,
        **tsne_options,
    )
    return np.ascontiguousarray(positions.transpose(1, 0, 2))


def ease(u: Any) -> np.ndarray:
    """Smoothstep ``3u^2 - 2u^3`` of ``u`` clipped to ``[0, 1]``: zero speed at both ends, so a
    point eases out of one keyframe and settles into the next."""
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def _split(n_frames: int, t: Any) -> tuple[np.ndarray, np.ndarray]:
    """Keyframe index ``i`` (at most ``n_frames - 2``) and fraction ``t - i`` of times ``t``."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, n_frames - 1)
    i = np.minimum(np.floor(t).astype(np.int64), max(n_frames - 2, 0))
    return i, t - i


def frame_at(frames: np.ndarray, t: float) -> np.ndarray:
    """Positions ``(n, 2)`` at time ``t`` in ``[0, n_frames - 1]`` (clipped): keyframe ``i`` at
    ``t = i``, eased linear moves in between."""
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[0] == 0 or frames.shape[2] != 2:
        raise ValueError(f"frames must have shape (n_frames, n, 2), got {frames.shape}")
    if frames.shape[0] == 1:
        return frames[0].copy()
    i, f = _split(frames.shape[0], float(t))
    a, b = frames[int(i)], frames[int(i) + 1]
    e = ease(f).astype(frames.dtype)
    return a * (1 - e) + b * e  # exactly a keyframe at both ends


def keyframe_at(n_frames: int, t: float) -> int:
    """The keyframe nearest to time ``t`` (what the epoch caption shows)."""
    return int(np.clip(np.rint(t), 0, n_frames - 1))


def timeline(n_frames: int, count: int, hold: float = 0.25) -> np.ndarray:
    """The times of ``count`` evenly spaced video frames over ``n_frames`` keyframes: each move
    from keyframe ``i`` to ``i + 1`` first holds still for a fraction ``hold`` of its share of
    the video (time to read the epoch), then moves; the last video frame is the last keyframe.
    Returns ``(count,)`` float64 times for :func:`frame_at`."""
    if n_frames < 1 or count < 1:
        raise ValueError(f"need at least one keyframe and one frame, got {n_frames}, {count}")
    if not 0.0 <= hold < 1.0:
        raise ValueError(f"hold must be in [0, 1), got {hold}")
    if n_frames == 1 or count == 1:
        return np.zeros(count) if n_frames == 1 else np.array([n_frames - 1.0])
    u = np.linspace(0.0, n_frames - 1.0, count)
    i, f = _split(n_frames, u)
    return i + np.clip((f - hold) / (1.0 - hold), 0.0, 1.0)


def trails(frames: np.ndarray, rows: Any, t: float, span: float = 1.0, steps: int = 24):
    """The path of samples ``rows`` over the time ``[t - span, t]`` (clipped at 0), as
    ``(len(rows), steps, 2)`` positions oldest first; a faint trail drawn through them shows
    where a tracked point came from."""
    frames = np.asarray(frames)
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= frames.shape[1]):
        raise ValueError(f"tracked rows must be in 0..{frames.shape[1] - 1}, got {rows.tolist()}")
    times = np.linspace(max(0.0, t - span), t, steps)
    if frames.shape[0] == 1:
        return np.repeat(frames[0][rows][:, None, :], steps, axis=1)
    i, f = _split(frames.shape[0], times)
    a = frames[i][:, rows]  # (steps, k, 2)
    b = frames[i + 1][:, rows]
    e = ease(f)[:, None, None]
    path = a * (1 - e) + b * e
    return path.transpose(1, 0, 2)
