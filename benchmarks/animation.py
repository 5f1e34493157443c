"""The epoch animation (issue 18, P5): a 10 s MP4 of 10,000 points at 1280x720, and the viewer's
player, timed.

Data: 10,000 real representations. The 1,797 scikit-learn digits, each also shifted by one pixel
in the four directions (8,985 images) and the first 1,015 again with light noise, go through a
64-128-10 MLP trained for 5 epochs; its 128 hidden ReLU units are taken before training and after
each epoch (6 keyframes, the demo session's count).

Timed: the aligned keyframes (``aligned_frames``: warm-started t-SNE of the 6 matrices, 2
threads); the MP4 (``write_animation``: 300 frames rasterised with numpy and Pillow, piped to
imageio-ffmpeg's H.264); one frame drawn by that rasteriser against the same 10,000 discs drawn
by vispy offscreen (one point-sprite visual, EGL) and read back, the route through ``render/``;
a 640x360 GIF at 15 fps. With ``--player`` (run under ``xvfb-run``) also the viewer's
``EpochPlayer``: frames drawn per second while it plays, 900x760, 3 tracked points.

Usage::

    EGL_PLATFORM=surfaceless xvfb-run -a -s "-screen 0 1920x1080x24" \\
        python benchmarks/animation.py --player
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("EGL_PLATFORM", "surfaceless")

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from cnnvis.analysis.animation import aligned_frames, timeline  # noqa: E402
from cnnvis.export.animation import FrameStyle, Rasteriser, write_animation  # noqa: E402

N = 10_000
SIZE = (1280, 720)


def representations(n: int = N, epochs: int = 5, seed: int = 0):
    """The hidden layer of an MLP on ``n`` digit images, before training and after each epoch."""
    import torch
    from sklearn.datasets import load_digits

    torch.manual_seed(seed)
    digits = load_digits()
    img, y = digits.images / 16.0, digits.target
    shifted = [img] + [np.roll(img, s, axis=a) for a in (1, 2) for s in (-1, 1)]
    x = np.concatenate(shifted)
    labels = np.tile(y, len(shifted))
    extra = n - len(x)
    rng = np.random.default_rng(seed)
    x = np.concatenate([x, img[:extra] + rng.normal(0, 0.1, img[:extra].shape)])
    labels = np.concatenate([labels, y[:extra]])
    xt = torch.tensor(x.reshape(n, 64), dtype=torch.float32)
    yt = torch.tensor(labels)
    hidden = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU())
    model = torch.nn.Sequential(hidden, torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    out = []
    for epoch in range(epochs + 1):
        with torch.no_grad():
            out.append(hidden(xt).numpy().astype(np.float64))
        if epoch == epochs:
            break
        for batch in torch.randperm(n).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[batch]), yt[batch]).backward()
            opt.step()
    return out, labels.astype(np.int64)


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished children (ffmpeg)."""
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def vispy_frame_ms(frames: np.ndarray, labels: np.ndarray, repeats: int = 20) -> float:
    """Milliseconds per frame for the same discs through vispy offscreen, with read-back."""
    from vispy import scene

    from cnnvis.render.glvisuals import Sprites
    from cnnvis.render.offscreen import offscreen_app
    from cnnvis.scene.colors import class_colors

    canvas = scene.SceneCanvas(size=SIZE, show=False, app=offscreen_app(), bgcolor="white")
    view = canvas.central_widget.add_view()
    points = Sprites(parent=view.scene)
    view.camera = scene.PanZoomCamera(aspect=1)
    view.camera.set_range(x=(-3, 3), y=(-3, 3))
    colors = class_colors(10)[labels]
    times = timeline(len(frames), repeats + 1)
    from cnnvis.analysis.animation import frame_at

    points.set_data(frame_at(frames, 0.0), colors, size=5.0)
    canvas.render(alpha=False)  # compile the shaders
    start, cpu = time.perf_counter(), time.process_time()
    for t in times[1:]:
        points.set_data(frame_at(frames, t), colors, size=5.0)
        canvas.render(alpha=False)
    ms = (time.perf_counter() - start) / repeats * 1000.0
    cpu_ms = (time.process_time() - cpu) / repeats * 1000.0
    canvas.close()
    return ms, cpu_ms


def raster_frame_ms(frames: np.ndarray, labels: np.ndarray, repeats: int = 20) -> float:
    style = FrameStyle("hidden", [f"epoch {i}" for i in range(len(frames))], list("0123456789"))
    style.track = [0, 1, 2]
    raster = Rasteriser(frames, labels, SIZE, style)
    times = timeline(len(frames), repeats)
    start, cpu = time.perf_counter(), time.process_time()
    for t in times:
        raster.draw(float(t))
    ms = (time.perf_counter() - start) / repeats * 1000.0
    return ms, (time.process_time() - cpu) / repeats * 1000.0


def player_fps(frames: np.ndarray, labels: np.ndarray, seconds: float = 5.0) -> tuple:
    """Frames the viewer's player draws per second while playing, and the process' CPU
    milliseconds per frame drawn (Mesa's llvmpipe threads included: the load-free cost)."""
    from cnnvis.viewer.app import qt_app
    from cnnvis.viewer.player import EpochPlayer

    app = qt_app()
    player = EpochPlayer(frames, labels, [f"epoch {i}" for i in range(len(frames))], "hidden")
    player.resize(900, 760)
    player.show()
    for row in (0, 1, 2):
        player.track(row)
    for _ in range(20):
        app.processEvents()
    player.play()
    drawn, start, cpu = player.frames_drawn, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        app.processEvents()
        if not player.playing:
            player.play()
    count = player.frames_drawn - drawn
    cpu_ms = (time.process_time() - cpu) / max(count, 1) * 1000.0
    return count / (time.perf_counter() - start), cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--player", action="store_true", help="also time the Qt player (Xvfb)")
    parser.add_argument("--player-only", metavar="NPZ", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.player_only:  # a child process: vispy takes one backend per process (Qt here)
        data = np.load(args.player_only)
        fps, cpu_ms = player_fps(data["frames"], data["labels"])
        print(f"{fps:.1f} fps ({cpu_ms:.1f} CPU ms a frame)", flush=True)
        os._exit(0)  # no teardown of the Qt and GL objects: the answer is out
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    matrices, labels = representations()
    print(
        f"representations: {len(matrices)} x {matrices[0].shape} in {time.perf_counter() - t0:.1f} s"
    )
    print("| what | time |\n|---|---|", flush=True)

    def row(what: str, value: str) -> None:
        print(f"| {what} | {value} |", flush=True)

    t0, c0 = time.perf_counter(), cpu_seconds()
    frames = aligned_frames(matrices, n_jobs=2)
    t_frames = time.perf_counter() - t0
    row(
        "aligned keyframes: 6 t-SNEs of 10,000 x 128, 2 threads",
        f"{t_frames:.1f} s (CPU {cpu_seconds() - c0:.1f} s)",
    )
    style = FrameStyle("hidden", [f"epoch {i}" for i in range(len(frames))], list("0123456789"))
    style.track = [0, 1, 2]
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), cpu_seconds()
        write_animation(frames, labels, f"{tmp}/a.mp4", style=style, seconds=10, size=SIZE)
        t_mp4 = time.perf_counter() - t0
        mb = os.path.getsize(f"{tmp}/a.mp4") / 1e6
        cpu = cpu_seconds() - c0
        row(
            "MP4 10 s, 30 fps, 1280x720 (300 frames)",
            f"{t_mp4:.1f} s (CPU {cpu:.1f} s, {mb:.1f} MB)",
        )
        row("whole export: keyframes + MP4", f"{t_frames + t_mp4:.1f} s")
        t0 = time.perf_counter()
        write_animation(frames, labels, f"{tmp}/a.gif", style=style, fps=15, size=(640, 360))
        mb = os.path.getsize(f"{tmp}/a.gif") / 1e6
        row(
            "GIF 10 s, 15 fps, 640x360 (150 frames)",
            f"{time.perf_counter() - t0:.1f} s ({mb:.1f} MB)",
        )
        ms, cpu_ms = raster_frame_ms(frames, labels)
        row("one frame, numpy + Pillow rasteriser", f"{ms:.1f} ms (CPU {cpu_ms:.1f} ms)")
        try:
            ms, cpu_ms = vispy_frame_ms(frames, labels)
            ms = f"{ms:.1f} ms (CPU {cpu_ms:.1f} ms, points only)"
        except RuntimeError as exc:  # no offscreen OpenGL on this machine
            ms = f"skipped ({exc})"
        row("one frame, vispy offscreen (EGL) + read-back", ms)
        if args.player:
            np.savez(f"{tmp}/frames.npz", frames=frames, labels=labels)
            cmd = [sys.executable, __file__, "--player-only", f"{tmp}/frames.npz"]
            fps = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
            row("viewer player, 10,000 points, 900x760, Xvfb", fps.splitlines()[-1])
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
