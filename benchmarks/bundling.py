"""Benchmark: biclustering (edges drawn) against scikit-learn SpectralCoclustering, and
force-directed bundling (ink, displacement, time) against datashader's hammer_bundle.

Run: OMP_NUM_THREADS=2 PYTHONPATH=python python benchmarks/bundling.py [--fdeb-only]
         [--pictures out.png]
     PYTHONPATH=python python benchmarks/bundling.py --scaling   (FDEB on 1 vs 2 threads)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import time  # noqa: E402

import numpy as np  # noqa: E402

from cnnvis.layout.bundling import (  # noqa: E402
    bicluster_edges,
    bundle_edges,
    edge_ink,
    mean_displacement,
    polyline_length,
)

THREADS = 2


def planted(n, n_blocks, seed, noise=0.08, fill=0.9):
    """Signed n x n matrix: sparse noise plus planted blocks of alternating sign."""
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.3, (n, n)) * (rng.random((n, n)) < noise)
    r, c = rng.permutation(n), rng.permutation(n)
    size = n // (2 * max(n_blocks, 1))
    truth = []
    for k in range(n_blocks):
        rows, cols = r[k * size : (k + 1) * size], c[k * size : (k + 1) * size]
        s = 1 if k % 2 == 0 else -1
        mask = rng.random((size, size)) < fill
        blk = w[np.ix_(rows, cols)]
        blk[mask] = s * rng.uniform(0.5, 1.0, mask.sum())
        w[np.ix_(rows, cols)] = blk
        truth.append((rows, cols, s))
    return w, truth


def drawn_from_blocks(w, thr, blocks, min_density=0.8):
    """Drawn edges when given (rows, cols, sign) blocks partition the edges of their sign."""
    edge = (w != 0) & (np.abs(w) >= thr)
    claimed = np.zeros_like(edge)
    drawn = 0
    for rows, cols, s in blocks:
        if len(rows) == 0 or len(cols) == 0:
            continue
        sub = (w[np.ix_(rows, cols)] * s > 0) & edge[np.ix_(rows, cols)]
        sub &= ~claimed[np.ix_(rows, cols)]
        e = int(sub.sum())
        if e / (len(rows) * len(cols)) >= min_density and e - len(rows) - len(cols) >= 1:
            drawn += len(rows) + len(cols)
            blk = claimed[np.ix_(rows, cols)]
            blk |= sub
            claimed[np.ix_(rows, cols)] = blk
    return drawn + int((edge & ~claimed).sum())


def spectral(w, thr, k):
    from sklearn.cluster import SpectralCoclustering

    blocks = []
    for s in (1, -1):
        a = ((w * s > 0) & (np.abs(w) >= thr)).astype(np.float64) + 1e-6
        model = SpectralCoclustering(n_clusters=k, random_state=0).fit(a)
        for b in range(k):
            blocks.append((np.flatnonzero(model.rows_[b]), np.flatnonzero(model.columns_[b]), s))
    return blocks


def recovery(truth, blocks):
    """Mean over planted blocks of the best Jaccard (rows x cols) with a found block."""
    out = []
    for rows, cols, s in truth:
        best = 0.0
        for r2, c2, s2 in blocks:
            if s2 != s:
                continue
            inter = len(np.intersect1d(rows, r2)) * len(np.intersect1d(cols, c2))
            union = len(rows) * len(cols) + len(r2) * len(c2) - inter
            best = max(best, inter / union if union else 0.0)
        out.append(best)
    return float(np.mean(out)) if out else float("nan")


def bench_bicluster():
    print("## Biclustering: drawn edges (lower is better), min_density 0.8, threshold 0.2\n")
    print(
        "| graph | edges | ours drawn | ours removed | ours s | spectral drawn | spectral removed"
        " | spectral s | removed ratio | recovery ours / spectral |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, nb in ((64, 0), (64, 4), (256, 0), (256, 4), (512, 0), (512, 4), (512, 8)):
        w, truth = planted(n, nb, seed=n + nb)
        thr = 0.2
        t = time.perf_counter()
        res = bicluster_edges(w, thr, 0.8, n_jobs=THREADS)
        t_ours = time.perf_counter() - t
        k = max(nb // 2, 2) + 1
        t = time.perf_counter()
        blocks = spectral(w, thr, k)
        t_sp = time.perf_counter() - t
        sp_drawn = drawn_from_blocks(w, thr, blocks)
        ours_blocks = [(b.rows, b.cols, b.sign) for b in res.biclusters]
        rec = (
            f"{recovery(truth, ours_blocks):.2f} / {recovery(truth, blocks):.2f}" if truth else "-"
        )
        rem_o = res.n_removed
        rem_s = res.n_edges - sp_drawn
        ratio = f"{rem_o / rem_s:.1f}x" if rem_s > 0 else "inf"
        name = f"{n}x{n} random" if nb == 0 else f"{n}x{n} + {nb} planted"
        print(
            f"| {name} | {res.n_edges} | {res.n_drawn_after} | {rem_o} | {t_ours:.3f} | {sp_drawn}"
            f" | {rem_s} | {t_sp:.3f} | {ratio} | {rec} |"
        )


def hub_edges(m, seed=0, k=8):
    rng = np.random.default_rng(seed)
    ang = np.arange(k) * 2 * np.pi / k
    hubs = np.c_[np.cos(ang), np.sin(ang)] * 400 + 500
    a = rng.integers(0, k, m)
    b = (a + rng.integers(1, k, m)) % k
    return np.stack([hubs[a] + rng.normal(0, 60, (m, 2)), hubs[b] + rng.normal(0, 60, (m, 2))], 1)


def hammer(seg):
    import pandas as pd
    from datashader.bundling import hammer_bundle

    m = len(seg)
    nodes = pd.DataFrame({"x": seg[:, :, 0].ravel(), "y": seg[:, :, 1].ravel()})
    edges = pd.DataFrame({"source": np.arange(m) * 2, "target": np.arange(m) * 2 + 1})
    df = hammer_bundle(nodes, edges)
    xy = df[["x", "y"]].to_numpy()
    # split at the NaN rows that separate edges; resample each to a polyline of 34 points
    breaks = np.flatnonzero(np.isnan(xy[:, 0]))
    polys, start = [], 0
    for b in breaks:
        part = xy[start:b]
        start = b + 1
        if len(part) >= 2:
            polys.append(part)
    from cnnvis import _core

    out = np.stack([_core.resample_polylines(p[None], 34)[0] for p in polys])
    return out


def through_hubs(seg, k=8):
    """Reference drawing: every edge runs straight to its hub's centre, then hub to hub."""
    ang = np.arange(k) * 2 * np.pi / k
    hubs = np.c_[np.cos(ang), np.sin(ang)] * 400 + 500
    near = [
        hubs[np.argmin(np.hypot(*(seg[:, j, None] - hubs).transpose(2, 0, 1)), 1)] for j in (0, 1)
    ]
    return np.stack([seg[:, 0], near[0], near[1], seg[:, 1]], 1)


def bench_fdeb():
    print("\n## Edge bundling: 8-hub graph, 2 threads (ink: union length on a 512 grid)\n")
    print(
        "| edges | method | time s | cpu s | length | ink | ink / straight | mean displacement"
        " | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        import dask  # noqa: F401
        import datashader  # noqa: F401
        import skimage  # noqa: F401

        have_ds = True
        hammer(hub_edges(100, seed=1))  # compile its numba kernels outside the timing
    except ImportError:
        have_ds = False
    for m in (2000, 10000):
        seg = hub_edges(m)
        lo = seg.reshape(-1, 2).min(0) - 100
        hi = seg.reshape(-1, 2).max(0) + 100
        ink0 = edge_ink(seg, extent=(lo, hi))
        print(
            f"| {m} | straight | - | - | {polyline_length(seg):.0f} | {ink0:.0f} | 1.00 | 0 | - |"
        )
        ref = through_hubs(seg)
        ink_r = edge_ink(ref, extent=(lo, hi))
        print(
            f"| {m} | reference: straight to the hub centres, hub to hub | - | - |"
            f" {polyline_length(ref):.0f} | {ink_r:.0f} | {ink_r / ink0:.2f} | - | - |"
        )
        t, c = time.perf_counter(), time.process_time()
        ours = bundle_edges(seg, n_jobs=THREADS)
        t_o, c_o = time.perf_counter() - t, time.process_time() - c
        ink = edge_ink(ours, extent=(lo, hi))
        row = (
            f"| {m} | cnnvis FDEB | {t_o:.2f} | {c_o:.2f} | {polyline_length(ours):.0f} | {ink:.0f} |"
            f" {ink / ink0:.2f} | {mean_displacement(seg, ours):.1f} |"
        )
        if have_ds:
            t, c = time.perf_counter(), time.process_time()
            hb = hammer(seg)
            t_h, c_h = time.perf_counter() - t, time.process_time() - c
            print(row + f" {t_h / t_o:.1f}x |")
            ink_h = edge_ink(hb, extent=(lo, hi))
            disp = mean_displacement(seg, hb) if len(hb) == m else float("nan")
            print(
                f"| {m} | datashader hammer_bundle | {t_h:.2f} | {c_h:.2f} |"
                f" {polyline_length(hb):.0f} | {ink_h:.0f} | {ink_h / ink0:.2f} | {disp:.1f} | 1.0x |"
            )
        else:
            print(row + " - |")
            print(f"| {m} | datashader hammer_bundle | not installed | - | - | - | - | - | - |")


def bench_scaling(m=10000):
    """Wall and CPU time of the default bundling on 1 and 2 threads, alternating, twice."""
    seg = hub_edges(m)
    bundle_edges(seg[:100])
    print(f"\n## FDEB thread scaling, {m} edges\n")
    print("| threads | wall s | cpu s |\n|---|---|---|")
    for j in (1, 2, 1, 2):
        t, c = time.perf_counter(), time.process_time()
        bundle_edges(seg, n_jobs=j)
        print(f"| {j} | {time.perf_counter() - t:.2f} | {time.process_time() - c:.2f} |")


def save_pictures(path):
    """Straight, cnnvis FDEB and hammer_bundle drawings of the 2,000-edge graph, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seg = hub_edges(2000)
    panels = [("straight", seg), ("cnnvis FDEB (defaults)", bundle_edges(seg, n_jobs=THREADS))]
    try:
        panels.append(("datashader hammer_bundle", hammer(seg)))
    except ImportError:
        pass
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 5))
    for ax, (title, lines) in zip(axes, panels):
        for pl in lines:
            ax.plot(pl[:, 0], pl[:, 1], "k-", lw=0.3, alpha=0.15)
        ax.set_title(title)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.savefig(path, dpi=60, bbox_inches="tight")


if __name__ == "__main__":
    import sys

    if "--scaling" in sys.argv:
        bench_scaling()
        sys.exit(0)
    if "--fdeb-only" not in sys.argv:
        bench_bicluster()
    bench_fdeb()
    if "--pictures" in sys.argv:
        save_pictures(sys.argv[sys.argv.index("--pictures") + 1])
