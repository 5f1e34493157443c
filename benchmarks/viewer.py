"""Frames per second of the offscreen render loop (pan/zoom: move the camera, render) under
software OpenGL, for the demo session and a ResNet-18 session, against drawing the same scene
with matplotlib (Agg) and moving its axes limits.

The ResNet-18 session is recorded once and cached (``--cache``, default
``$XDG_CACHE_HOME/cnnvis/bench`` or ``~/.cache/cnnvis/bench``): torchvision's ``resnet18`` with
random weights (seed 0, 10 classes) over 10,000 structured 3x64x64 images (one oriented grating
and one coloured blob per class, random phase, position jitter and noise per image), every conv
and linear layer (21 layers, 4,810 neurons), all 10,000 samples pooled for the projection. It is
analysed with ``cnnvis.analyze`` (5 clusters per layer: 104 clusters) and its t-SNE is saved with it.
``--synthetic`` draws a synthetic scene of the same size instead (``cnnvis.scene.synthetic``).
``--expand SESSION`` times expanding and collapsing each layer group of a session's overview.

``--large`` measures issue 20's "viewer and sessions at 100,000 samples" instead: the trained demo
CNN (the built-in demo session's model) recorded on 100,000 digits-derived 8x8 images (digit
``i % 1797`` of scikit-learn's digits, shifted by up to one pixel and with pixel noise, seed 0),
every sample pooled, analysed and its t-SNE saved (cached like the ResNet-18 session). It
prints the session's opening in a fresh process (imports, ``open_session``, ``build_scene`` with
the 100,000-point projection), the projection's frames per second while it is panned and zoomed,
and a lasso over the 100,000 points (``scene.model.points_in_polygon`` and ``select_lasso``).

``--lod`` measures the Qt viewer's projection panel (``cnnvis.viewer.grid.PanelView``) on the same
100,000 samples, with its level of detail (a density image above ``LOD_POINTS`` points in view)
and with markers only (``LOD_POINTS`` raised above the sample count): frames per second while it
is panned and zoomed around the fit, and zoomed in far enough for markers; needs a display
(``xvfb-run -a``).

    EGL_PLATFORM=surfaceless PYTHONPATH=python python benchmarks/viewer.py [--frames 40] [--large]
    xvfb-run -a -s "-screen 0 1920x1080x24" python benchmarks/viewer.py --lod
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("EGL_PLATFORM", "surfaceless")

from cnnvis.scene import build_scene  # noqa: E402
from cnnvis.scene.synthetic import synthetic_overview  # noqa: E402

SIZE = (1280, 800)


def resnet18_layers():
    layers = [("stem", "conv1", 64)]
    for stage, ch in ((1, 64), (2, 128), (3, 256), (4, 512)):
        for block in (0, 1):
            for conv in (1, 2):
                layers.append((f"layer{stage}", f"layer{stage}.{block}.conv{conv}", ch))
    layers.append(("head", "fc", 1000))
    return layers


SESSION_SAMPLES = 10000
SESSION_NAME = "resnet18_structured64_n10000_v1"
CLUSTERS_PER_LAYER = 5


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnvis" / "bench"


class StructuredImages:
    """``n`` RGB images of ``side`` pixels made from their index; class ``i % 10``.

    Each class has its own grating orientation and frequency and its own blob colour and place;
    every image draws a random phase, a jitter of the blob and pixel noise from its index, so the
    data set is deterministic and takes no memory.
    """

    def __init__(self, n: int, side: int = 64, n_classes: int = 10) -> None:
        self.n, self.side, self.n_classes = n, side, n_classes
        self.classes = [f"class {c}" for c in range(n_classes)]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        import torch

        if not 0 <= i < self.n:
            raise IndexError(i)
        c = i % self.n_classes
        rng = np.random.default_rng(1000003 * (i + 1))
        yy, xx = np.mgrid[0 : self.side, 0 : self.side] / self.side
        angle = np.pi * c / self.n_classes
        freq = 3.0 + 1.5 * (c % 4)
        phase = rng.uniform(0, 2 * np.pi)
        grating = np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
        bx = 0.25 + 0.5 * ((c * 3) % 10) / 10 + rng.normal(0, 0.05)
        by = 0.25 + 0.5 * ((c * 7) % 10) / 10 + rng.normal(0, 0.05)
        blob = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / 0.02)
        hue = np.array([np.cos(c), np.cos(c + 2.1), np.cos(c + 4.2)])
        img = 0.5 + 0.25 * grating[None] + 0.4 * blob[None] * hue[:, None, None]
        img = img + rng.normal(0, 0.1, img.shape)
        return torch.from_numpy(np.clip(img, 0, 1).astype(np.float32)), c


def resnet18_session(cache: Path, n: int = SESSION_SAMPLES) -> Path:
    """The cached ResNet-18 session folder (recorded, analysed and projected on first use)."""
    import cnnvis
    from cnnvis.analysis.core import has_analysis, load_analysis

    path = cache / (SESSION_NAME if n == SESSION_SAMPLES else f"{SESSION_NAME}_{n}")
    if path.is_dir() and has_analysis(path):
        prev = load_analysis(path, cnnvis.load(path))
        if prev.n_clusters_requested == CLUSTERS_PER_LAYER and prev._projections:
            return path
    t0 = time.perf_counter()
    if not (path / "recording.json").is_file():
        import torch
        import torchvision

        torch.manual_seed(0)
        model = torchvision.models.resnet18(num_classes=10).eval()
        data = StructuredImages(n)
        print(f"recording a ResNet-18 session over {n} images into {path} (once) ...", flush=True)
        rec = cnnvis.record(
            model, data, batch_size=100, max_pooled=n, patch_size=32, progress=True,
            class_names=data.classes, model_name="ResNet-18", seed=0,
        )  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        rec.save(path)
    rec = cnnvis.load(path)
    # a fixed k: with random weights the silhouette criterion picks k = 2 for most layers
    analysis = cnnvis.analyze(rec, n_clusters=CLUSTERS_PER_LAYER, session=path)
    analysis.projection(analysis.layers[-1])  # the t-SNE the scene shows, saved with it
    analysis.save(path)
    print(f"  session ready in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


def resnet18_scene(cache: Path):
    from cnnvis.scene import build_scene
    from cnnvis.session import open_session

    return build_scene(open_session(resnet18_session(cache)))


def demo_scene():
    """The built-in demo session's scene (the demo is created first when missing)."""
    from cnnvis.commands.viewer import ensure_demo_session
    from cnnvis.scene import build_scene
    from cnnvis.session import open_session

    return build_scene(open_session(ensure_demo_session(progress=False)))


def synthetic_scenes():
    demo = synthetic_overview(
        [
            ("block1", "features.2", 16),
            ("block2", "features.5", 32),
            ("block3", "features.8", 64),
            ("head", "classifier.1", 10),
        ],
        clusters_per_layer=[4, 5, 6, 3],
        n_points=1500,
        seed=0,
    )
    big = synthetic_overview(resnet18_layers(), clusters_per_layer=6, n_points=10000, seed=0)
    return {"demo (synthetic)": build_scene(demo), "resnet18 (synthetic)": build_scene(big)}


def camera_path(bounds, n):
    """Alternating pans and zooms around the panel's bounds."""
    x0, y0, x1, y1 = bounds
    w, h = x1 - x0, y1 - y0
    out = []
    for i in range(n):
        s = 1.0 / (1.0 + 0.5 * (i % 4))  # zoom in steps
        cx = x0 + w * (0.3 + 0.4 * ((i * 37) % 10) / 10)
        cy = y0 + h * (0.3 + 0.4 * ((i * 53) % 10) / 10)
        out.append((cx - s * w / 2, cx + s * w / 2, cy - s * h / 2, cy + s * h / 2))
    return out


def move(cams, scene, k, view, projection=True):
    """Frame ``k`` of the path: pan/zoom the overview; zoom the projection every other frame."""
    xa, xb, ya, yb = view
    cams["overview"].set_range(x=(xa, xb), y=(ya, yb), z=(-1, 1), margin=0)
    if projection and "projection" in cams and k % 2:
        f = 1.0 + 0.3 * (k % 3)
        cams["projection"].zoom(1.0 / f if k % 4 == 1 else f)


def vispy_fps(scene, frames):
    """Frames per second (wall) and CPU ms per frame (this process, GL threads included) of
    three loops over the same camera path: drawing into the canvas's persistent frame buffer
    and waiting for the GL (``glFinish``), as an on-screen frame costs, with the projection
    zoomed every other frame ("frame") and without ("overview"); and ``render()`` with the
    read-back to an array (exports)."""
    from cnnvis.render.canvas import SceneCanvas
    from cnnvis.render.offscreen import offscreen_app

    app = offscreen_app()
    canvas = SceneCanvas(scene, size=SIZE, app=app)
    canvas.render(alpha=False)  # compile shaders, upload
    path = camera_path(scene.panels["overview"].bounds, frames)
    cams = {n: v.camera for n, v in canvas.views.items()}
    for k, view in enumerate(path[:4]):  # lay out the glyphs once (the first frame at a zoom)
        move(cams, scene, k, view)
        canvas.render(alpha=False)
    out = {}
    for mode in ("frame", "overview", "read-back"):
        canvas.fit()
        t0, c0 = time.perf_counter(), time.process_time()
        for k, view in enumerate(path):
            move(cams, scene, k, view, projection=mode != "overview")
            if mode != "read-back":
                canvas.draw_offscreen(finish=True)
            else:
                canvas.render(alpha=False)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        out[mode] = (frames / dt, 1e3 * dc / frames)
    canvas.close()
    return out


def matplotlib_fps(scene, frames):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection, PatchCollection
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(SIZE[0] / 100, SIZE[1] / 100), dpi=100)
    layout = scene.panel_layout(*SIZE)
    axes = {}
    for name, (x, y, w, h) in layout.items():
        ax = fig.add_axes([x / SIZE[0], 1 - (y + h) / SIZE[1], w / SIZE[0], h / SIZE[1]])
        ax.set_axis_off()
        panel = scene.panels[name]
        for rects in (panel.rects, panel.top_rects):
            if len(rects):
                pc = PatchCollection(
                    [Rectangle((r[0], r[1]), r[2], r[3]) for r in rects.xywh],
                    facecolors=rects.fill,
                    edgecolors=rects.stroke,
                    linewidths=0.8,
                )
                ax.add_collection(pc)
        for k in range(len(panel.images)):
            x0, y0, iw, ih = panel.images.xywh[k]
            ax.imshow(
                panel.images.data[k],
                extent=(x0, x0 + iw, y0 + ih, y0),
                interpolation=panel.images.interpolation[k].replace("linear", "bilinear"),
            )
        if len(panel.lines):
            segs = [panel.lines.line(k) for k in range(len(panel.lines))]
            ax.add_collection(
                LineCollection(segs, colors=panel.lines.color, linewidths=panel.lines.width * 0.75)
            )
        if len(panel.points):
            ax.scatter(
                panel.points.xy[:, 0],
                panel.points.xy[:, 1],
                s=panel.points.size**2 * 0.4,
                c=panel.points.color,
                linewidths=0,
            )
        vis = panel.labels.min_zoom <= scene.fit_zoom(panel, layout[name])
        for k in np.flatnonzero(vis):
            ha, va = panel.labels.anchor[k]
            ax.text(
                *panel.labels.pos[k],
                panel.labels.text[k],
                fontsize=panel.labels.size[k],
                ha=ha,
                va={"center": "center_baseline"}.get(va, va),
                color=panel.labels.color[k],
                clip_on=True,
            )
        x0, y0, x1, y1 = panel.bounds
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)
        ax.set_aspect("equal", adjustable="datalim")
        axes[name] = ax
    fig.canvas.draw()
    path = camera_path(scene.panels["overview"].bounds, frames)
    t0 = time.perf_counter()
    for xa, xb, ya, yb in path:
        axes["overview"].set_xlim(xa, xb)
        axes["overview"].set_ylim(yb, ya)
        fig.canvas.draw()
        np.asarray(fig.canvas.buffer_rgba())
    dt = time.perf_counter() - t0
    plt.close(fig)
    return frames / dt


def expand_times(session: Path, repeats: int = 5) -> None:
    """Expanding and collapsing each group of a session's overview (C2): milliseconds of
    ``build_scene`` from the OverviewInput the viewer keeps (the analysis and the facets are
    made once, timed apart). Prints a table row per group: median expand and collapse times."""
    import cnnvis
    from cnnvis.scene import overview_input
    from cnnvis.scene.hierarchy import group_tree

    t0 = time.perf_counter()
    rec = cnnvis.load(session)
    analysis = cnnvis.analyze(rec)
    t1 = time.perf_counter()
    data = overview_input(analysis, projection=False)
    t2 = time.perf_counter()
    base = build_scene(data, projection=False, legend=False)
    state = set(base.meta["expanded"])
    print(
        f"{session}: {len(analysis.layers)} layers, {len(base.meta['units'])} boxes at the default "
        f"depth; analyse {t1 - t0:.1f} s, facets {t2 - t1:.1f} s"
    )
    print("| group | expand ms (median) | collapse ms (median) | clusters drawn expanded |")
    print("|---|---:|---:|---:|")
    for node in (n for t in group_tree(data) for n in t.walk()):
        if node.is_leaf:
            continue
        opened, closed = state | {node.name}, state - {node.name}
        times = {}
        for label, want in (("expand", opened), ("collapse", closed)):
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                s = build_scene(data, expanded=want, projection=False, legend=False)
                ts.append(1000 * (time.perf_counter() - t))
            times[label] = (float(np.median(ts)), len(s.cluster_rects))
        print(
            f"| {node.name} | {times['expand'][0]:.0f} | {times['collapse'][0]:.0f} "
            f"| {times['expand'][1]} |"
        )


LARGE_SAMPLES = 100_000
LARGE_NAME = "demo_digits_n100000_v1"


def shifted_digits(n: int):
    """``n`` samples made from scikit-learn's 1,797 digits, as a TensorDataset: digit ``i % 1797``,
    rolled by up to one pixel each way and with Gaussian pixel noise (sd 0.05), drawn with seed 0."""
    import torch
    from sklearn.datasets import load_digits

    bunch = load_digits()
    j = np.arange(n) % len(bunch.target)
    rng = np.random.default_rng(0)
    shifts = rng.integers(-1, 2, (n, 2))
    base = (bunch.images / 16.0).astype(np.float32)
    x = np.empty((n, 8, 8), np.float32)
    for dy in (-1, 0, 1):  # one roll per shift, not per sample
        for dx in (-1, 0, 1):
            sel = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            x[sel] = np.roll(base[j[sel]], (dy, dx), axis=(1, 2))
    x = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
    return torch.utils.data.TensorDataset(
        torch.from_numpy(x[:, None]), torch.from_numpy(bunch.target[j].astype(np.int64))
    )


def large_session(cache: Path, n: int = LARGE_SAMPLES) -> Path:
    """The cached 100,000-sample session (recorded, analysed and projected on first use)."""
    import cnnvis
    from cnnvis.analysis.core import has_analysis

    path = cache / (LARGE_NAME if n == LARGE_SAMPLES else f"{LARGE_NAME}_{n}")
    if path.is_dir() and has_analysis(path):
        return path
    from cnnvis.commands.viewer import ensure_demo_session
    from cnnvis.data.digits import DIGIT_CLASSES
    from cnnvis.models.checkpoints import load_demo_checkpoint
    from cnnvis.models.demo import DEMO_LAYERS
    from cnnvis.scene import overview_input
    from cnnvis.viewer.app import prepare_session

    t0 = time.perf_counter()
    demo = Path(ensure_demo_session(progress=False))
    model = load_demo_checkpoint(demo / cnnvis.load(demo).meta["checkpoint"])
    print(f"recording the demo CNN on {n} digits-derived images into {path} (once) ...", flush=True)
    rec = cnnvis.record(
        model, shifted_digits(n), layers=DEMO_LAYERS, top_k=9, batch_size=1000, patch_size=16,
        max_pooled=n, progress=True, class_names=DIGIT_CLASSES, model_name="DemoCNN", seed=0,
    )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    rec.save(path)
    analysis = prepare_session(path)  # the analysis and the t-SNE the viewer shows first, saved
    overview_input(analysis)  # the viewer's first opening: facet layouts and connections, saved
    analysis.save(path)
    print(f"  session ready in {time.perf_counter() - t0:.0f} s", flush=True)
    return path


OPEN_CHILD = """
import json, sys, time
t0 = time.perf_counter()
from cnnvis.session import open_session
from cnnvis.scene import build_scene
t1 = time.perf_counter(); a = open_session(sys.argv[1])
t2 = time.perf_counter(); s = build_scene(a)
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "open_session": t2 - t1, "build_scene": t3 - t2,
                  "total": t3 - t0, "points": len(s.panels["projection"].points)}))
"""


def lasso_polygon(bounds, n: int = 200) -> np.ndarray:
    """A wavy closed lasso of ``n`` vertices over the middle of a panel's bounds."""
    x0, y0, x1, y1 = bounds
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = 0.3 * (1 + 0.25 * np.sin(7 * t))
    return np.column_stack(
        [(x0 + x1) / 2 + r * (x1 - x0) * np.cos(t), (y0 + y1) / 2 + r * (y1 - y0) * np.sin(t)]
    )


def projection_fps(scene, frames: int) -> float:
    """Frames per second while the projection is panned and zoomed every frame (drawn into the
    canvas's frame buffer, waiting for the GL)."""
    from cnnvis.render.canvas import SceneCanvas
    from cnnvis.render.offscreen import offscreen_app

    canvas = SceneCanvas(scene, size=SIZE, app=offscreen_app())
    canvas.render(alpha=False)
    cam = canvas.views["projection"].camera
    for _ in range(3):
        canvas.draw_offscreen(finish=True)
    t0 = time.perf_counter()
    for k in range(frames):
        cam.zoom(0.8 if k % 4 < 2 else 1.25)
        cam.pan((3.0 if k % 2 else -3.0, 2.0))
        canvas.draw_offscreen(finish=True)
    fps = frames / (time.perf_counter() - t0)
    canvas.close()
    return fps


def large_rows(cache: Path, frames: int, repeats: int = 3) -> None:
    """Issue 20's viewer targets at 100,000 samples (see the module doc)."""
    import json
    import subprocess
    import sys

    from cnnvis.scene.model import points_in_polygon
    from cnnvis.session import open_session

    path = large_session(cache)
    opens = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", OPEN_CHILD, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        opens.append(json.loads(out.stdout.strip().splitlines()[-1]))
    scene = build_scene(open_session(path))
    proj = scene.panels["projection"]
    poly = lasso_polygon(proj.bounds)
    lasso, select = [], []
    for _ in range(10):
        t = time.perf_counter()
        hit = points_in_polygon(proj.points.xy, poly)
        lasso.append(1e3 * (time.perf_counter() - t))
        t = time.perf_counter()
        ids = scene.select_lasso("projection", poly)
        select.append(1e3 * (time.perf_counter() - t))
    fps = projection_fps(scene, frames)
    load = os.getloadavg()
    print(f"{path.name}: {len(proj.points):,} projected points; load {load[0]:.2f}")
    print("| what | measured | target |")
    print("|---|---:|---:|")
    for key in ("total", "open_session", "build_scene", "import"):
        vals = ", ".join(f"{o[key]:.2f}" for o in opens)
        print(
            f"| opening: {key} s ({repeats} fresh processes) | {vals} | {'< 3' * (key == 'total')} |"
        )
    print(f"| projection pan/zoom fps ({frames} frames, {SIZE[0]}x{SIZE[1]}) | {fps:.1f} | >= 30 |")
    print(f"| lasso, points_in_polygon ms (median of 10; {int(hit.sum()):,} inside) "
          f"| {np.median(lasso):.1f} | < 50 |")  # fmt: skip
    print(
        f"| lasso, select_lasso ms (median of 10; {len(ids):,} ids) | {np.median(select):.1f} | < 50 |"
    )


def panel_fps(view, frames: int, zoom_in: float) -> tuple[float, bool, int]:
    """Frames per second of ``view`` (a PanelView) panned and zoomed around its fit zoomed in by
    ``zoom_in``, each frame painted and the GL finished; whether it showed the density image
    and how many times it was made."""
    from vispy.gloo import gl

    view.fit()
    cam = view.view.camera
    cam.zoom(1.0 / zoom_in)
    w = cam.rect.width

    def frame(k: int) -> None:
        cam.zoom(0.9 if k % 4 < 2 else 1 / 0.9)
        cam.pan((0.02 * w if k % 2 else -0.02 * w, 0.01 * w if k % 4 < 2 else -0.01 * w))
        view.canvas.native.repaint()
        gl.glFinish()

    for k in range(4):
        frame(k)
    made, update = [0], view.density.update

    def counted(*args) -> None:
        made[0] += 1
        update(*args)

    view.density.update = counted
    t0 = time.perf_counter()
    for k in range(frames):
        frame(k)
    fps = frames / (time.perf_counter() - t0)
    view.density.update = update
    return fps, bool(view.lod), made[0]


def lod_rows(cache: Path, frames: int) -> None:
    """The viewer's projection panel at 100,000 samples with and without its level of detail."""
    import cnnvis.viewer.grid as grid
    from cnnvis.session import open_session
    from cnnvis.viewer.app import qt_app
    from cnnvis.viewer.controller import Controller
    from cnnvis.viewer.density import LOD_POINTS

    path = large_session(cache)
    ctl = Controller(open_session(path), str(path))
    xy = ctl.projection()
    labels, preds = ctl.sample_labels, ctl.sample_predictions
    app = qt_app()
    rows = []
    for mode, threshold in (("markers only (before)", len(xy) + 1), ("level of detail", None)):
        grid.LOD_POINTS = threshold or LOD_POINTS
        view = grid.PanelView(grid.PanelSpec())
        view.canvas.native.resize(*SIZE)
        view.canvas.native.show()
        for _ in range(20):  # let the window be mapped: before, a repaint draws nothing
            app.processEvents()
            time.sleep(0.02)
        view.set_data(grid.PanelData(xy, "t-SNE"))
        style = grid.sample_style(labels, preds, ctl.class_colors(), None)
        view.draw_samples(style, np.zeros(0, np.int64), None)
        for what, zoom in (("around the fit", 1.0), ("zoomed in 8x", 8.0)):
            fps, dense, made = panel_fps(view, frames, zoom)
            rows.append((mode, what, fps, f"density image (made {made}x)" if dense else "markers"))
        view.fit()
        made_ms = []
        for _ in range(3):  # making the image at the fit (a zoom by REZOOM or a pan past it)
            view.density.invalidate()
            t = time.perf_counter()
            view._apply_lod()
            made_ms.append(1e3 * (time.perf_counter() - t))
        view.close()
    load = os.getloadavg()
    print(f"{path.name}: {len(xy):,} points, panel {SIZE[0]}x{SIZE[1]}; load {load[0]:.2f}")
    print("| panel | view | fps | drawn as |")
    print("|---|---|---:|---|")
    for mode, what, fps, dense in rows:
        print(f"| {mode} | {what} | {fps:.1f} | {dense} |")
    print(
        f"| level of detail | the density image made (median of 3) | {np.median(made_ms):.0f} ms | |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--expand", type=Path, default=None, help="time expand/collapse on this session folder"
    )
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--cache", type=Path, default=None, help="where the ResNet-18 session is kept")
    ap.add_argument(
        "--synthetic", action="store_true", help="synthetic scenes of the same sizes instead"
    )
    ap.add_argument("--large", action="store_true", help="issue 20: a 100,000-sample session")
    ap.add_argument(
        "--lod", action="store_true", help="issue 20: the viewer panel's level of detail"
    )
    args = ap.parse_args()
    if args.lod:
        lod_rows(args.cache or default_cache(), args.frames)
        return
    if args.large:
        large_rows(args.cache or default_cache(), args.frames)
        return
    if args.expand is not None:
        expand_times(args.expand)
        return
    if args.synthetic:
        todo = synthetic_scenes()
    else:
        cache = args.cache or default_cache()
        todo = {"demo": demo_scene(), "resnet18": resnet18_scene(cache)}
    rows = []
    for name, scene in todo.items():
        ov = scene.panels["overview"]
        pts = scene.panels["projection"].points if "projection" in scene.panels else []
        what = (
            f"{sum(1 for i in ov.rects.ids if i and i[0] == 'cluster')} clusters, "
            f"{len(ov.lines)} curves, {len(pts)} points"
        )
        v = vispy_fps(scene, args.frames)
        m = matplotlib_fps(scene, max(4, args.frames // 8))
        rows.append((name, what, v, m))
    load = os.getloadavg()
    print(
        f"pan/zoom frames per second, offscreen {SIZE[0]}x{SIZE[1]}, software GL (llvmpipe), "
        f"{args.frames} frames; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        "| scene | contents | cnnvis fps: overview + projection (CPU ms/frame) "
        "| overview only (CPU ms/frame) | with read-back | matplotlib (Agg) fps "
        "| cnnvis / matplotlib |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, what, v, m in rows:
        (f, fc), (o, oc), (r, _) = v["frame"], v["overview"], v["read-back"]
        print(
            f"| {name} | {what} | {f:.1f} ({fc:.0f}) | {o:.1f} ({oc:.0f}) | {r:.1f} | {m:.2f} "
            f"| {f / m:.1f}x |"
        )


if __name__ == "__main__":
    main()
