"""Hidden activity the Rauber way (issue 17): neuron projections against scikit-learn's MDS, and
the alignments of trajectories through layers and through training, side by side.

Neuron projection: the 512 ReLU units of an MLP hidden layer (untrained, and trained on the
digits) over 2,000 samples (the 1,797 digits and 203 of them with noise added), distance
``1 - |Pearson r|``. Faithfulness is Spearman's rank correlation between the 2-D distances and
the matrix over all pairs; the anchor is ``sklearn.manifold.MDS(metric="precomputed")`` with one
init (random, and classical MDS).

Trajectories: the same 2,000 samples through the 5 hidden layers of a trained MLP, and the 1,797
digits through 5 epochs of training of a 64-unit hidden layer; every alignment of
``cnnvis.analysis.trajectories`` (``embed_stops``), then FDEB bundling. Movement: mean distance
of a sample between consecutive stops (each stop centred, at unit RMS radius); KL: each stop's
t-SNE's own KL divergence (at its own scale), mean over stops; NH: the neighbourhood hit
(k = 6), mean over stops. Wall and CPU (process) time; the box is shared, so wall time carries
the other sessions' load and CPU time what the work itself costs.

Usage::

    EGL_PLATFORM=surfaceless python benchmarks/projections.py [--write PATH] [--grid-only]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

from cnnvis.analysis.projections import (  # noqa: E402
    classical_mds,
    correlation_distance,
    distance_rank_correlation,
    neighbourhood_hit,
    smacof,
)
from cnnvis.analysis.trajectories import embed_stops  # noqa: E402
from cnnvis.layout import bundle_edges  # noqa: E402


def digits_2000() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    rng = np.random.default_rng(0)
    extra = np.clip(x[:203] + 0.1 * rng.normal(size=(203, 64)), 0, 1)
    return np.vstack([x, extra]), np.concatenate([y, y[:203]])


def hidden(mlp, x: np.ndarray) -> list[np.ndarray]:
    """The ReLU activations of every hidden layer of a scikit-learn MLP."""
    out, h = [], x
    for w, b in zip(mlp.coefs_[:-1], mlp.intercepts_[:-1]):
        h = np.maximum(0.0, h @ w + b)
        out.append(h)
    return out


def mlp(sizes: tuple[int, ...], x, y, epochs: int):
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(hidden_layer_sizes=sizes, random_state=0, max_iter=max(epochs, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if epochs == 0:
            model.partial_fit(x[:1], y[:1], classes=np.unique(y))  # initialised, 1 sample seen
        else:
            model.fit(x, y)
    return model


def table_neurons(lines: list[str]) -> None:
    from sklearn.manifold import MDS

    x, y = digits_2000()
    lines += [
        "\n### Neuron projection: 512 hidden ReLU units over 2,000 digit samples\n",
        "| layer | method | wall s | CPU s | rank correlation |",
        "|---|---|---:|---:|---:|",
    ]
    for name, epochs in (("untrained", 0), ("trained", 50)):
        acts = hidden(mlp((512,), x, y, epochs), x)[0]
        t0, c0 = time.perf_counter(), time.process_time()
        d = correlation_distance(acts)
        t_dist, c_dist = time.perf_counter() - t0, time.process_time() - c0
        methods = [
            (
                "cnnvis: classical MDS + SMACOF (<= 300 steps)",
                lambda d: smacof(d, classical_mds(d)),
            ),
            ("classical MDS alone", classical_mds),
            (
                "scikit-learn MDS, random init",
                lambda d: MDS(metric="precomputed", init="random", random_state=0).fit_transform(d),
            ),
            (
                "scikit-learn MDS, classical init",
                lambda d: MDS(metric="precomputed", init="classical_mds").fit_transform(d),
            ),
        ]
        for label, fn in methods:
            t0, c0 = time.perf_counter(), time.process_time()
            coords = fn(d)
            wall = time.perf_counter() - t0 + t_dist
            cpu = time.process_time() - c0 + c_dist
            rho = distance_rank_correlation(coords, d)
            print(f"  {name:<9} {label:<48} {wall:6.2f} s {cpu:6.2f} s  rho {rho:.4f}", flush=True)
            lines.append(f"| {name} | {label} | {wall:.2f} | {cpu:.2f} | {rho:.4f} |")


def layer_frames() -> tuple[list[np.ndarray], np.ndarray]:
    x, y = digits_2000()
    return hidden(mlp((256, 128, 128, 64, 64), x, y, 50), x), y


def epoch_frames() -> tuple[list[np.ndarray], np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    model = MLPClassifier(hidden_layer_sizes=(64,), random_state=0)
    rng = np.random.default_rng(0)
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(1, 17):
            for b in np.array_split(rng.permutation(len(x)), 14):
                model.partial_fit(x[b], y[b], classes=np.unique(y))
            if epoch in (1, 2, 4, 8, 16):
                frames.append(hidden(model, x)[0])
    return frames, y


VARIANTS = [
    ("procrustes (independent t-SNEs)", "procrustes", {"n_iter": 1000}),
    ("sequence (fit_sequence, warm start)", "sequence", {"n_iter": 1000}),
    ("dynamic, movement_penalty=0.1", "dynamic", {"movement_penalty": 0.1, "n_iter": 1000}),
    ("dynamic, movement_penalty=1", "dynamic", {"movement_penalty": 1.0, "n_iter": 1000}),
    ("default: sequence, 750 iterations (500 warm)", "sequence", {}),
    ("sequence, 500 iterations (250 warm)", "sequence", {"n_iter": 500}),
    ("sequence, 500 iterations, 2 threads", "sequence", {"n_iter": 500, "n_jobs": 2}),
]


def table_trajectories(title: str, frames: list[np.ndarray], y: np.ndarray, lines: list[str]):
    lines += [
        f"\n### Trajectories: {title}\n",
        "| alignment | t-SNE s | bundle s | total wall s | total CPU s | movement | mean KL"
        " | mean NH |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, align, options in VARIANTS:
        t0, c0 = time.perf_counter(), time.process_time()
        pos, kls = embed_stops(frames, align, **options)
        t1 = time.perf_counter()
        bundle_edges(pos, directed=True, n_jobs=options.get("n_jobs", 1))
        t2, cpu = time.perf_counter(), time.process_time() - c0
        move = float(np.mean(np.linalg.norm(np.diff(pos, axis=1), axis=2)))
        nh = np.mean([neighbourhood_hit(pos[:, t], y) for t in range(pos.shape[1])])
        kl = float(np.mean(kls))
        print(f"  {label:<48} {t2 - t0:6.2f} s  move {move:.3f}  KL {kl:.4f}  NH {nh:.3f}")
        lines.append(
            f"| {label} | {t1 - t0:.2f} | {t2 - t1:.2f} | {t2 - t0:.2f} | {cpu:.2f} | {move:.3f}"
            f" | {kl:.4f} | {nh:.3f} |"
        )


def table_panel_overhead(lines: list[str]) -> None:
    """What a small-multiples panel adds to its t-SNE: the neighbourhood hit and the rotation
    onto its neighbour, at 10,000 samples (the t-SNE itself is ``TSNE.fit_transform``, timed
    in ``tsne.py``)."""
    from cnnvis.analysis.projections import align_onto

    rng = np.random.default_rng(0)
    y, ref = rng.normal(size=(2, 10_000, 2))
    labels = rng.integers(0, 10, 10_000)
    neighbourhood_hit(y[:10], labels[:10])  # imports scikit-learn's neighbours outside the clock
    t0, c0 = time.perf_counter(), time.process_time()
    neighbourhood_hit(y, labels)
    align_onto(y, ref)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  panel overhead at 10,000 samples: {wall:.3f} s wall, {cpu:.3f} s CPU")
    lines += [
        "\n### A small-multiples panel beyond its t-SNE, 10,000 samples\n",
        "| step | wall s | CPU s |",
        "|---|---:|---:|",
        f"| neighbourhood hit (k = 6) + Procrustes rotation | {wall:.3f} | {cpu:.3f} |",
    ]


def _grid_frame(canvas, fbo) -> None:
    """One frame into ``fbo`` and wait for the GL: the cost of an on-screen frame."""
    canvas.set_current()
    canvas.push_fbo(fbo, (0, 0), canvas.size)
    try:
        canvas._draw_scene()
        canvas.context.finish()
    finally:
        canvas.pop_fbo()


def grid_fps(
    n_panels: int, n_points: int, frames: int, shared: bool, pan_all: bool = True
) -> tuple[float, float]:
    """Frames per second (wall) and CPU ms per frame while the panels of a small-multiples grid
    are panned (``pan_all``) or only the first: one canvas with a ViewBox per panel
    (``shared``, what the viewer does; every frame draws every panel), or a canvas per panel
    (a frame draws the canvases whose panel moved)."""
    from vispy import gloo, scene

    from cnnvis.render.offscreen import offscreen_app
    from cnnvis.viewer.grid import PanelData, PanelSpec, PanelView, sample_style

    app = offscreen_app()
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n_points)
    style = sample_style(labels, labels, np.random.default_rng(1).random((10, 3)), None)
    cols = int(np.ceil(np.sqrt(n_panels)))
    side = 400
    views, canvases = [], []
    for k in range(n_panels):
        if shared and canvases:
            canvas, grid = canvases[0]
        else:
            size = (side * cols, side * int(np.ceil(n_panels / cols))) if shared else (side, side)
            canvas = scene.SceneCanvas(app=app, size=size, show=False, bgcolor="white")
            grid = canvas.central_widget.add_grid(spacing=3)
            canvases.append((canvas, grid))
        v = PanelView(PanelSpec(), own_canvas=False)
        grid.add_widget(v.view, row=k // cols if shared else 0, col=k % cols if shared else 0)
        v.set_data(PanelData(rng.normal(size=(n_points, 2)).astype(np.float32), f"panel {k}"))
        v.draw_samples(style, np.zeros(0, np.int64), None)
        views.append(v)
    fbos = []
    for canvas, _ in canvases:
        w, h = canvas.size
        fbos.append(gloo.FrameBuffer(gloo.RenderBuffer((h, w)), gloo.RenderBuffer((h, w))))
        _grid_frame(canvas, fbos[-1])  # compile and upload outside the clock
    moving = views if pan_all else views[:1]
    drawn = list(zip(canvases, fbos)) if pan_all or shared else [(canvases[0], fbos[0])]
    t0, c0 = time.perf_counter(), time.process_time()
    for f in range(frames):
        for v in moving:
            v.view.camera.rect = (-4 + 0.05 * f, -4, 8, 8)
        for (canvas, _), fbo in drawn:
            _grid_frame(canvas, fbo)
    fps = frames / (time.perf_counter() - t0)
    cpu_ms = 1e3 * (time.process_time() - c0) / frames
    for canvas, _ in canvases:
        canvas.close()
    return fps, cpu_ms


def table_grid_fps(lines: list[str], frames: int = 40) -> None:
    """The viewer grid's pan frame rate: one canvas of ViewBoxes against a canvas per panel."""
    rows = []
    for n_panels, n_points in ((4, 2_000), (4, 10_000), (9, 2_000)):
        cells = []
        for pan_all in (True, False):
            for shared in (True, False):
                fps, cpu = grid_fps(n_panels, n_points, frames, shared, pan_all)
                cells.append(f"{fps:.1f} ({cpu:.0f})")
        print(f"  grid {n_panels} x {n_points}: " + ", ".join(cells))
        rows.append(f"| {n_panels} | {n_points:,} | " + " | ".join(cells) + " |")
    lines += [
        f"\n### The viewer's grid of small multiples panned ({frames} frames, 400 x 400 px a"
        " panel, offscreen EGL)\n",
        "| panels | samples a panel | all panned: one canvas fps (CPU ms/frame) | all panned: a"
        " canvas a panel | one panned: one canvas | one panned: a canvas a panel |",
        "|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="PATH", help="also write the markdown tables here")
    ap.add_argument("--grid-only", action="store_true", help="only the viewer grid's frame rate")
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    lines = [
        "Command: `python benchmarks/projections.py`"
        f" ({platform.machine()}, {os.cpu_count()} cores, shared, load {load:.1f}); one thread"
        " unless stated.",
    ]
    table_grid_fps(lines)
    if args.grid_only:
        print("\n".join(lines))
        return
    table_neurons(lines)
    table_panel_overhead(lines)
    frames, y = layer_frames()
    table_trajectories(
        "2,000 digit samples through the 5 hidden layers of an MLP", frames, y, lines
    )
    frames, y = epoch_frames()
    table_trajectories(
        "1,797 digits, a 64-unit hidden layer after epochs 1, 2, 4, 8, 16", frames, y, lines
    )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    sys.exit(main())
