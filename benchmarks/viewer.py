"""Frames per second of the offscreen render loop (pan/zoom: move the camera, render) under
software OpenGL, for a demo-sized scene and a ResNet-18-sized scene, against drawing the same
scene with matplotlib (Agg) and moving its axes limits.

    EGL_PLATFORM=surfaceless PYTHONPATH=python python benchmarks/viewer.py [--frames 20]
"""

from __future__ import annotations

import argparse
import os
import time

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


def scenes():
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
    return {"demo": build_scene(demo), "resnet18": build_scene(big)}


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


def vispy_fps(scene, frames):
    from cnnvis.export.png import offscreen_app
    from cnnvis.viewer.canvas import SceneCanvas

    app = offscreen_app()
    canvas = SceneCanvas(scene, size=SIZE, app=app)
    canvas.render(alpha=False)  # compile shaders, upload
    path = camera_path(scene.panels["overview"].bounds, frames)
    cams = {n: v.camera for n, v in canvas.views.items()}
    for xa, xb, ya, yb in path[:4]:  # warm the glyph cache for the labels these zooms show
        cams["overview"].set_range(x=(xa, xb), y=(ya, yb), z=(-1, 1), margin=0)
        canvas.render(alpha=False)
    t0 = time.perf_counter()
    for k, (xa, xb, ya, yb) in enumerate(path):
        cams["overview"].set_range(x=(xa, xb), y=(ya, yb), z=(-1, 1), margin=0)
        if "projection" in cams and k % 2:
            pb = scene.panels["projection"].bounds
            f = 1.0 + 0.3 * (k % 3)
            cams["projection"].zoom(1.0 / f if k % 4 == 1 else f)
        canvas.render(alpha=False)
    dt = time.perf_counter() - t0
    canvas.close()
    del pb
    return frames / dt


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=20)
    args = ap.parse_args()
    rows = []
    for name, scene in scenes().items():
        ov = scene.panels["overview"]
        what = (
            f"{sum(1 for i in ov.rects.ids if i[0] == 'cluster')} clusters, "
            f"{len(ov.lines)} curves, {len(scene.panels['projection'].points)} points"
        )
        v = vispy_fps(scene, args.frames)
        m = matplotlib_fps(scene, max(4, args.frames // 4))
        rows.append((name, what, v, m))
    print(f"pan/zoom frames per second, offscreen {SIZE[0]}x{SIZE[1]}, software GL (llvmpipe)")
    print("| scene | contents | cnnvis (vispy) fps | matplotlib (Agg) fps | ratio |")
    print("|---|---|---:|---:|---:|")
    for name, what, v, m in rows:
        print(f"| {name} | {what} | {v:.1f} | {m:.2f} | {v / m:.1f}x |")


if __name__ == "__main__":
    main()
