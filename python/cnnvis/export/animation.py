"""The epoch animation as a video (P5): aligned projections of the same samples played from
keyframe to keyframe, points coloured by class, the epoch and accuracy shown, a few tracked
samples labelled A, B, C … with faint trails.

:func:`write_animation` plays any aligned keyframes (:func:`cnnvis.analysis.animation.
aligned_frames`) into an MP4 or a GIF; :func:`export_animation` does it for a session's training
snapshots (``python -m cnnvis export animation SESSION --layer L --out F.mp4``) and
``python -m cnnvis animate`` for CSV files of any model's representations.

**Drawing.** Frames are rasterised with numpy (anti-aliased discs splatted at sub-pixel
positions, overlapping discs averaged by coverage: one ``bincount`` per channel) and annotated
with Pillow (text, trails, legend), not drawn offscreen through :mod:`cnnvis.render`. Measured
in ``benchmarks/animation.py`` at 1280x720 with 10,000 points: 20 CPU ms a whole frame, against
16 CPU ms for vispy (EGL, llvmpipe) drawing and reading back the points alone, without the
text, trails and legend it would still need. At that cost the numpy route keeps what matters
more for an exporter: no OpenGL context at all, so a video is written on any server.

**Writing.** MP4 goes through **imageio-ffmpeg**: its pip wheel bundles a static ffmpeg, so
nothing has to be installed on the system, and it pipes raw RGB frames to an ffmpeg process (H.264,
yuv420p, CRF 20: plays everywhere), so encoding runs on a second core while the next frame is
drawn. PyAV links FFmpeg's libraries into our process: a larger wheel, encoding competing with
the drawing in one process, and a lower-level API (streams, packets) for nothing we need here.
GIF goes through Pillow, every frame quantised to the first frame's 255-colour palette so that
colours do not flicker; a GIF holds all its frames (one byte a pixel) in memory until written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnnvis.analysis.animation import frame_at, keyframe_at, timeline, trails
from cnnvis.render.offscreen import parse_size
from cnnvis.scene.colors import HIGHLIGHT, class_colors

__all__ = ["FrameStyle", "Rasteriser", "export_animation", "write_animation"]

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INK = (40, 40, 40)  # text and outlines
_MUTED = (110, 110, 110)
POINT_OPACITY = 0.9  # a little of what is under a point shows through


@dataclass
class FrameStyle:
    """What is written on every frame: ``title`` (top left), one caption per keyframe (``"epoch
    3 · accuracy 97.1%"``), the class names of the legend, the tracked rows and the labels of
    the time bar's ticks."""

    title: str = ""
    captions: Sequence[str] = ()
    class_names: Sequence[str] = ()
    track: Sequence[int] = ()
    ticks: Sequence[str] = ()  # a short label under each keyframe's tick (the epoch)


def _font(px: float):
    from PIL import ImageFont

    return ImageFont.load_default(size=max(8, int(round(px))))


class Rasteriser:
    """Draws frames of one animation at ``size`` ``(W, H)``: keyframes ``(n_frames, n, 2)``,
    ``labels`` (n,) class indices. The view is fixed over all keyframes (the camera never
    moves), square units, with a legend column on the right when there are class names."""

    def __init__(self, frames: np.ndarray, labels: np.ndarray, size: tuple[int, int], style):
        self.frames = np.asarray(frames, dtype=np.float64)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.size = size
        self.style = style
        w, h = size
        self.unit = h / 720.0  # font and stroke sizes follow the height
        n_classes = int(self.labels.max()) + 1 if self.labels.size else 1
        self.palette = class_colors(max(n_classes, len(style.class_names), 1))[:, :3]
        self.rgb = (self.palette[self.labels] * 255.0).astype(np.float32)
        legend = 150 * self.unit if len(style.class_names) else 0.0
        top, bottom, side = 56 * self.unit, 52 * self.unit, 24 * self.unit
        self._fit(side, top, w - legend - side, h - bottom)
        area = (w - legend - 2 * side) * (h - top - bottom)
        n = max(self.frames.shape[1], 1)
        self.radius = float(np.clip(0.3 * np.sqrt(area / n), 1.6, 5.0))
        self.base = self._background()

    def _fit(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """Each keyframe's bounds and the pixel box they are fitted into (square units)."""
        self.box = (x0, y0, x1, y1)
        self.bounds = np.stack([self.frames.min(axis=1), self.frames.max(axis=1)], axis=1)

    def to_pixels(self, xy: np.ndarray, t: float) -> np.ndarray:
        """Data positions to pixel positions (y down) at time ``t``: the view eases from one
        keyframe's bounds to the next's with the points, so a frame whose points huddle together
        is not drawn small."""
        (x0, y0, x1, y1), pad = self.box, 8 * self.unit
        lo, hi = frame_at(self.bounds, t)
        span = np.maximum(hi - lo, 1e-12)
        scale = float(min((x1 - x0 - 2 * pad) / span[0], (y1 - y0 - 2 * pad) / span[1]))
        centre = (lo + hi) / 2.0
        offset = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0]) - centre * [1, -1] * scale
        return np.asarray(xy) * [scale, -scale] + offset

    def _background(self) -> np.ndarray:
        from PIL import Image, ImageDraw

        w, h = self.size
        im = Image.new("RGB", (w, h), "white")
        draw = ImageDraw.Draw(im)
        u = self.unit
        draw.text((24 * u, 16 * u), self.style.title, fill=_INK, font=_font(22 * u))
        x = w - 140 * u
        font = _font(15 * u)
        for c, name in enumerate(self.style.class_names[:20]):
            y = 64 * u + c * 24 * u
            color = tuple(int(v * 255) for v in self.palette[c])
            r = 6 * u
            draw.ellipse((x, y + 9 * u - r, x + 2 * r, y + 9 * u + r), fill=color)
            draw.text((x + 22 * u, y), str(name), fill=_INK, font=font)
        return np.asarray(im).copy()

    def points(self, img: np.ndarray, xy: np.ndarray, rgb: np.ndarray, radius: float) -> None:
        """Splat anti-aliased discs of ``radius`` px at pixel positions ``xy`` into the RGB
        uint8 image ``img`` (H, W, 3). A pixel's coverage by a disc is how far inside it the
        pixel's centre lies (a one-pixel ramp at the edge); where discs overlap, their colours
        are averaged by coverage (order-free, so one ``bincount`` per channel does a frame)."""
        h, w = img.shape[:2]
        reach = int(np.ceil(radius + 0.5))
        d = np.arange(-reach, reach + 1)
        dx, dy = (v.ravel() for v in np.meshgrid(d, d))
        base = np.floor(xy).astype(np.int64)
        px = base[:, :1] + dx  # (n, stamp)
        py = base[:, 1:] + dy
        # from the point to each pixel centre of its stamp, in float32 (np.hypot is 10x slower)
        frac = (base + 0.5 - xy).astype(np.float32)
        ox = frac[:, :1] + dx.astype(np.float32)
        oy = frac[:, 1:] + dy.astype(np.float32)
        a = np.clip(np.float32(radius + 0.5) - np.sqrt(ox * ox + oy * oy), 0.0, 1.0)
        keep = (a > 0) & (px >= 0) & (px < w) & (py >= 0) & (py < h)
        idx = (py * w + px)[keep]
        a_kept = a[keep]
        point = np.broadcast_to(np.arange(len(xy))[:, None], a.shape)[keep]
        cover = np.bincount(idx, a_kept, minlength=h * w)
        touched = np.flatnonzero(cover)
        total = cover[touched]
        color = np.stack(
            [np.bincount(idx, a_kept * rgb[point, c], minlength=h * w)[touched] for c in range(3)],
            axis=1,
        )
        alpha = (np.minimum(total, 1.0) * POINT_OPACITY).astype(np.float32)[:, None]
        color = (color / total[:, None]).astype(np.float32)
        flat = img.reshape(-1, 3)
        under = flat[touched].astype(np.float32)
        flat[touched] = under + (color - under) * alpha + np.float32(0.5)  # rounded

    def draw(self, t: float) -> np.ndarray:
        """The frame at time ``t`` (keyframe ``i`` at ``t = i``) as RGB uint8 ``(H, W, 3)``."""
        from PIL import Image

        img = self.base.copy()
        xy = self.to_pixels(frame_at(self.frames, t), t)
        self.points(img, xy, self.rgb, self.radius)
        im = Image.fromarray(img)
        self._annotate(im, t, xy)
        return np.asarray(im)

    def _annotate(self, im, t: float, xy: np.ndarray) -> None:
        from PIL import ImageDraw

        draw = ImageDraw.Draw(im, "RGBA")
        u = self.unit
        n_frames = self.frames.shape[0]
        captions = list(self.style.captions)
        if captions:
            title_w = draw.textlength(self.style.title, font=_font(22 * u))
            x = 24 * u + title_w + (24 * u if self.style.title else 0)
            text = captions[keyframe_at(n_frames, t)]
            draw.text((x, 19 * u), text, fill=_MUTED, font=_font(18 * u))
        self._progress(draw, t)
        track = np.asarray(self.style.track, dtype=np.int64)
        if track.size:
            self._tracked(draw, t, xy, track)

    def _progress(self, draw, t: float) -> None:
        """A thin time bar along the bottom with a tick per keyframe."""
        u, (w, h) = self.unit, self.size
        n_frames = self.frames.shape[0]
        x0, x1, y = 24 * u, w - 24 * u, h - 34 * u
        draw.line((x0, y, x1, y), fill=(210, 210, 210, 255), width=max(1, int(3 * u)))
        frac = t / max(n_frames - 1, 1)
        width = max(1, int(3 * u))
        draw.line((x0, y, x0 + (x1 - x0) * frac, y), fill=(120, 120, 120, 255), width=width)
        for i in range(n_frames):
            x = x0 + (x1 - x0) * i / max(n_frames - 1, 1)
            r = 4 * u
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255, 255), outline=_MUTED)
            if i < len(self.style.ticks):
                font = _font(13 * u)
                draw.text((x, y + 8 * u), self.style.ticks[i], fill=_MUTED, font=font, anchor="mt")

    def _tracked(self, draw, t: float, xy: np.ndarray, track: np.ndarray) -> None:
        """Each tracked sample: a faint trail over the last keyframe's worth of time, a ringed
        disc and its letter on a small white tag."""
        u = self.unit
        paths = self.to_pixels(trails(self.frames, track, t, span=1.0, steps=24), t)
        mark = tuple(int(v * 255) for v in HIGHLIGHT[:3])
        font = _font(16 * u)
        for k, row in enumerate(track):
            color = tuple(int(v) for v in self.rgb[row])
            path = paths[k]
            for s in range(1, len(path)):  # older segments fainter
                alpha = int(30 + 120 * s / len(path))
                seg = (*path[s - 1], *path[s])
                draw.line(seg, fill=(*color, alpha), width=max(1, int(round(2.5 * u))))
            x, y = xy[row]
            r = self.radius + 3 * u
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(*color, 255), outline=mark, width=2)
            letter = LETTERS[k % len(LETTERS)] + ("" if k < len(LETTERS) else str(k))
            tx, ty = x + r + 3 * u, y - r - 18 * u
            box = draw.textbbox((tx, ty), letter, font=font)
            pad = 3 * u
            draw.rounded_rectangle(
                (box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad),
                radius=4 * u,
                fill=(255, 255, 255, 225),
                outline=mark,
            )
            draw.text((tx, ty), letter, fill=_INK, font=font)


def _frames_of(raster: Rasteriser, count: int) -> Iterator[np.ndarray]:
    for t in timeline(raster.frames.shape[0], count):
        yield raster.draw(float(t))


def write_animation(
    frames: np.ndarray,
    labels: Any,
    out: str | os.PathLike,
    *,
    style: FrameStyle | None = None,
    fps: float = 30.0,
    seconds: float = 10.0,
    size: tuple[int, int] | str = (1280, 720),
) -> Path:
    """Play the aligned keyframes ``frames`` ``(n_frames, n, 2)`` into the video ``out``.

    ``labels`` (n,) are class indices (colours of :func:`cnnvis.scene.colors.class_colors`);
    ``style`` gives the title, a caption per keyframe, the legend's class names and the
    tracked rows. The format follows the suffix: ``.mp4`` (H.264; width and height even) or
    ``.gif``. ``fps * seconds`` frames are written, the first at the first keyframe and the last
    at the last, atomically (a temporary file beside ``out``, renamed when complete).
    """
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim != 3 or frames.shape[2] != 2 or frames.shape[1] == 0:
        raise ValueError(f"frames must have shape (n_frames, n, 2), got {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise ValueError("frames hold NaN or inf")
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != frames.shape[1] or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"labels must be {frames.shape[1]} class indices, one per point")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be class indices >= 0")
    style = style or FrameStyle()
    count = _frame_count(fps, seconds)
    w, h = parse_size(size, default=(1280, 720))
    out = Path(out)
    kind = out.suffix.lower()
    if kind not in (".mp4", ".gif"):
        raise ValueError(f"the animation is written as .mp4 or .gif, got {out.name!r}")
    if kind == ".mp4" and (w % 2 or h % 2):
        raise ValueError(f"an MP4 (H.264, yuv420p) needs an even width and height, got {w}x{h}")
    raster = Rasteriser(frames, labels, (w, h), style)
    writer = _write_mp4 if kind == ".mp4" else _write_gif
    return _atomic(out, lambda tmp: writer(tmp, _frames_of(raster, count), (w, h), fps))


def _frame_count(fps: float, seconds: float) -> int:
    if not (np.isfinite(fps) and 0 < fps <= 120):
        raise ValueError(f"fps must be in (0, 120], got {fps}")
    if not (np.isfinite(seconds) and 0 < seconds <= 3600):
        raise ValueError(f"seconds must be in (0, 3600], got {seconds}")
    return max(2, int(round(fps * seconds)))


def _atomic(out: Path, write) -> Path:
    """Run ``write(tmp)`` on a temporary path beside ``out`` (same suffix) and rename it."""
    from cnnvis.io import prepare_folder

    out = out.absolute()
    prepare_folder(out.parent, out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def _write_mp4(path: str, frames: Iterator[np.ndarray], size: tuple[int, int], fps: float):
    import imageio_ffmpeg

    writer = imageio_ffmpeg.write_frames(
        path,
        size,
        fps=fps,
        codec="libx264",
        quality=None,
        macro_block_size=2,
        output_params=["-crf", "20", "-preset", "faster", "-movflags", "+faststart"],
    )
    writer.send(None)  # start ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()


def _write_gif(path: str, frames: Iterator[np.ndarray], size: tuple[int, int], fps: float):
    from PIL import Image

    first = None
    images = []
    for frame in frames:
        im = Image.fromarray(frame)
        if first is None:
            first = im.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
            images.append(first)
        else:
            images.append(im.quantize(palette=first, dither=Image.Dither.NONE))
    duration = max(20, int(round(1000.0 / fps)))
    images[0].save(
        path, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0
    )


def export_animation(
    analysis: Any,
    out: str | os.PathLike,
    *,
    layer: str | None = None,
    snapshots: Sequence[int | None] | None = None,
    track: Sequence[int] | None = None,
    fps: float = 30.0,
    seconds: float = 10.0,
    size: tuple[int, int] | str = (1280, 720),
    n_jobs: int = 1,
    random_state: int = 0,
) -> Path:
    """The training snapshots' projections of ``layer`` (default the last recorded) as the
    video ``out`` (``.mp4`` or ``.gif``): one keyframe per snapshot (``snapshots``: positions
    in ``rec.snapshots``, or None for the recorded model; default all snapshots), aligned by :func:`~cnnvis.analysis.animation.
    aligned_frames`, captioned with each snapshot's epoch and accuracy.

    ``track`` are samples to label A, B, C … (positions in the recorded data, as ``explain
    --sample``; they must be in the projection sample); default: the three whose trajectories
    stray furthest from their class (:func:`~cnnvis.analysis.trajectories.trajectory_outliers`);
    ``[]`` tracks none.
    """
    from cnnvis.analysis.animation import aligned_frames
    from cnnvis.analysis.projections import activations, recording_of
    from cnnvis.analysis.trajectories import trajectory_outliers

    rec = recording_of(analysis)
    layer = rec.layer_names[-1] if layer is None else layer
    rec.layer(layer)  # a clear KeyError for an unknown layer
    if snapshots is None:
        snapshots = list(range(len(rec.snapshots)))
    if len(snapshots) < 2:
        raise ValueError(
            f"an animation needs at least two training snapshots; the session holds "
            f"{len(rec.snapshots)} (record a training run: `python -m cnnvis demo`, `train`)"
        )
    rows = None if track is None else _pooled_rows(rec.pooled_index, track)
    matrices = [activations(rec, layer, s) for s in snapshots]
    frames = aligned_frames(matrices, n_jobs=n_jobs, random_state=random_state)
    labels = np.asarray(rec.pooled_labels, dtype=np.int64)
    if rows is None:
        score = trajectory_outliers(frames.transpose(1, 0, 2), labels)
        rows = np.argsort(-score, kind="stable")[:3]
    model = {"epoch": "model", "accuracy": rec.accuracy}  # the recorded model itself
    stops = [model if s is None else rec.snapshots[s] for s in snapshots]
    captions = [_caption(stop, s) for stop, s in zip(stops, snapshots)]
    names = list(getattr(rec, "class_names", None) or range(int(labels.max()) + 1))
    ticks = [str(stop.get("epoch", s)) for stop, s in zip(stops, snapshots)]
    style = FrameStyle(layer, captions, [str(c) for c in names], [int(r) for r in rows], ticks)
    return write_animation(frames, labels, out, style=style, fps=fps, seconds=seconds, size=size)


def _caption(snapshot: dict, position: int | None) -> str:
    epoch = snapshot.get("epoch", position)
    text = "trained model" if epoch == "model" else f"epoch {epoch}"
    acc = snapshot.get("accuracy")
    if acc is not None and np.isfinite(acc):
        text += f"  ·  accuracy {100.0 * float(acc):.1f}%"
    return text


def _pooled_rows(pooled_index: np.ndarray, samples: Sequence[int]) -> np.ndarray:
    """Rows of the projection sample for data positions ``samples`` (a clear error for one that
    is not in it)."""
    where = {int(p): r for r, p in enumerate(np.asarray(pooled_index).tolist())}
    missing = [int(s) for s in samples if int(s) not in where]
    if missing:
        some = ", ".join(str(p) for p in sorted(where)[:8])
        raise ValueError(
            f"samples {missing} are not in the projection sample; tracked samples must be among "
            f"its {len(where)} (for example {some})"
        )
    return np.array([where[int(s)] for s in samples], dtype=np.int64)
