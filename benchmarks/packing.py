"""Rectangle packing: cnnvis against rectangle-packer (rpack), rectpack and a shelf packer.

Instances: n rectangles with integer sides uniform in [10, 100] (seeded), no rotation. Density is
the rectangles' total area over the box area; aspect is the box's width / height (requested 1).

* cnnvis: ``pack_rectangles(sizes, aspect)`` (C++ MaxRects variants + box-area bisection),
  ``effort=1`` (default) and ``effort=2`` (all 20 variants).
* shelf: rows filled left to right, tallest first, best over a scan of strip widths (C++).
* rectpack: pure-Python MaxRects (best short side fit, sorted by area) given the same bisection
  over a square box's area (7 steps between density 0.80 and 1.00).
* rpack (rectangle-packer): minimal-area bounding box of any aspect (its own search), and with
  ``max_width = max_height = 1.1 sqrt(total area)`` to keep it near a square; only at n = 200, in a
  subprocess with a time limit (at 1,000 it takes minutes).

A second table packs items with planted clusters in their features with ``pack_hierarchy`` and
reports density and how well clusters stay together (see ``cnnvis.layout.packing.contiguity``).

Run: ``PYTHONPATH=python python benchmarks/packing.py --out benchmarks/results/packing.md``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time

import numpy as np

from cnnvis import _core
from cnnvis.layout.packing import contiguity, pack_hierarchy, pack_rectangles


def sizes_for(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(7 * n + seed).integers(10, 101, size=(n, 2))


def timed(fn, *a, **kw):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*a, **kw)
    return out, time.perf_counter() - w, time.process_time() - c


def box_of(sizes, xy):
    xy = np.asarray(xy, dtype=float)
    return float((xy[:, 0] + sizes[:, 0]).max()), float((xy[:, 1] + sizes[:, 1]).max())


def check(sizes, xy, w, h) -> None:
    xy = np.asarray(xy, dtype=float)
    x0, y0 = xy[:, 0], xy[:, 1]
    x1, y1 = x0 + sizes[:, 0], y0 + sizes[:, 1]
    assert x0.min() >= 0 and y0.min() >= 0 and x1.max() <= w + 1e-9 and y1.max() <= h + 1e-9
    ox = np.minimum(x1[:, None], x1[None, :]) - np.maximum(x0[:, None], x0[None, :])
    oy = np.minimum(y1[:, None], y1[None, :]) - np.maximum(y0[:, None], y0[None, :])
    bad = (ox > 0) & (oy > 0)
    np.fill_diagonal(bad, False)
    assert not bad.any(), "overlap"


def rectpack_in_box(sizes, side):
    import rectpack

    p = rectpack.newPacker(
        mode=rectpack.PackingMode.Offline,
        pack_algo=rectpack.MaxRectsBssf,
        sort_algo=rectpack.SORT_AREA,
        rotation=False,
    )
    p.add_bin(side, side)
    for i, (w, h) in enumerate(sizes):
        p.add_rect(int(w), int(h), rid=i)
    p.pack()
    placed = p.rect_list()
    if len(placed) < len(sizes):
        return None
    xy = np.zeros((len(sizes), 2))
    for _, x, y, _, _, rid in placed:
        xy[rid] = (x, y)
    return xy


def rectpack_search(sizes):
    area = float(np.prod(sizes, axis=1).sum())
    lo, hi, best = 0.80, 1.0, None
    side = int(max(np.ceil(np.sqrt(area / lo)), sizes.max()))
    best = rectpack_in_box(sizes, side)
    while best is None:  # widen until it fits
        lo *= 0.9
        side = int(max(np.ceil(np.sqrt(area / lo)), sizes.max()))
        best = rectpack_in_box(sizes, side)
    for _ in range(7):
        mid = 0.5 * (lo + hi)
        got = rectpack_in_box(sizes, int(max(np.ceil(np.sqrt(area / mid)), sizes.max())))
        if got is None:
            hi = mid
        else:
            lo, best = mid, got
    return best


def _rpack_worker(sizes, max_side, q):
    import rpack

    w, c = time.perf_counter(), time.process_time()
    xy = rpack.pack([(int(a), int(b)) for a, b in sizes], max_width=max_side, max_height=max_side)
    q.put((xy, time.perf_counter() - w, time.process_time() - c))


def rpack_limited(sizes, max_width, limit):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_rpack_worker, args=(sizes, max_width, q))
    p.start()
    p.join(limit)
    if p.is_alive():
        p.terminate()
        p.join()
        return None
    return q.get()


def flat_table(ns, seeds, aspect, args):
    rows = {}

    def add(n, name, sizes, xy, w, h, wall, cpu):
        check(sizes, xy, w, h)
        area = float(np.prod(sizes, axis=1).sum())
        rows.setdefault((n, name), []).append((wall, cpu, area / (w * h), w / h))

    for n in ns:
        for seed in range(seeds):
            s = sizes_for(n, seed)
            sf = s.astype(float)
            pack_rectangles(s[:20], aspect)  # warm-up
            for effort in (1, 2):
                p, w, c = timed(pack_rectangles, s, aspect, effort=effort)
                add(
                    n,
                    f"cnnvis pack_rectangles effort={effort}",
                    sf,
                    p.positions,
                    p.width,
                    p.height,
                    w,
                    c,
                )
            (xy, bw, bh, _), w, c = timed(_core.shelf_pack, sf, aspect, 0.1)
            add(n, "shelf (rows, tallest first)", sf, xy, bw, bh, w, c)
            if n <= args.rectpack_max:
                xy, w, c = timed(rectpack_search, s)
                add(n, "rectpack MaxRectsBssf + bisection", sf, xy, *box_of(sf, xy), w, c)
            if n <= args.rpack_max:
                area = float(np.prod(s, axis=1).sum())
                for label, mw in (
                    ("rpack (any aspect)", None),
                    ("rpack max_width=max_height=1.1 sqrt(A)", int(1.1 * np.sqrt(area))),
                ):
                    got = rpack_limited(s, mw, args.rpack_limit)
                    if got is None:
                        rows.setdefault((n, label), []).append(None)
                    else:
                        xy, w, c = got
                        add(n, label, sf, xy, *box_of(sf, xy), w, c)
    return rows


def hierarchy_table(ns, seeds, k):
    out = []
    for n in ns:
        acc = []
        pack_hierarchy(np.ones((8, 2)), np.arange(8.0))  # warm-up (scipy imports)
        for seed in range(seeds):
            rng = np.random.default_rng(n + seed)
            truth = rng.integers(0, k, size=n)
            feats = 10 * rng.normal(size=(k, 8))[truth] + rng.normal(size=(n, 8))
            for kind, s in (
                ("random sizes", sizes_for(n, seed)),
                ("equal 32 x 32", np.full((n, 2), 32)),
            ):
                (p, w, c) = timed(pack_hierarchy, s, feats, 1.0, n_clusters=k)
                check(p.sizes, p.positions, p.width, p.height)
                st = contiguity(p.positions, p.sizes, p.labels)
                flat = pack_rectangles(s)
                fst = contiguity(flat.positions, flat.sizes, p.labels)
                acc.append(
                    (
                        kind,
                        w,
                        c,
                        p.density,
                        p.aspect,
                        st["contiguous"],
                        st["same_cluster_contact"],
                        fst["same_cluster_contact"],
                        st["chance_contact"],
                        p.variant.split("/")[0],
                    )
                )
        for kind in ("random sizes", "equal 32 x 32"):
            a = [r for r in acc if r[0] == kind]
            m = [np.mean([r[i] for r in a]) for i in range(1, 9)]
            out.append((n, kind, *m, sorted({r[9] for r in a})))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="200,1000")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--aspect", type=float, default=1.0)
    ap.add_argument("--rectpack-max", type=int, default=1000)
    ap.add_argument("--rpack-max", type=int, default=200)
    ap.add_argument("--rpack-limit", type=float, default=300.0, help="seconds per rpack call")
    ap.add_argument("--out")
    args = ap.parse_args()
    ns = [int(v) for v in args.sizes.split(",")]
    rows = flat_table(ns, args.seeds, args.aspect, args)
    lines = [
        f"| n | method | wall s | CPU s | density | aspect (asked {args.aspect:g}) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for (n, name), vals in rows.items():
        if any(v is None for v in vals):
            lines.append(f"| {n} | {name} | > {args.rpack_limit:.0f} (stopped) | | | |")
            continue
        m = np.mean(np.array(vals), axis=0)
        lines.append(f"| {n} | {name} | {m[0]:.4f} | {m[1]:.4f} | {m[2]:.4f} | {m[3]:.3f} |")
    hlines = [
        "| n | items | wall s | CPU s | density | aspect | clusters contiguous | "
        "same-cluster contact | same, flat packing | same, by chance | layout |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in hierarchy_table(ns, args.seeds, k=8):
        hlines.append(
            f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:.3f} | "
            f"{r[6]:.2f} | {r[7]:.3f} | {r[8]:.3f} | {r[9]:.3f} | {', '.join(r[10])} |"
        )
    print("\n".join(lines))
    print()
    print("\n".join(hlines))
    if args.out:
        load = os.getloadavg()
        with open(args.out, "w") as f:
            f.write("# Packing benchmark\n\n")
            f.write(
                f"Command: `PYTHONPATH=python python benchmarks/packing.py --out {args.out}`\n\n"
                f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
                f"{load[0]:.1f} at the end (shared; wall times are inflated, CPU times less so).\n"
                f"Integer sides uniform in [10, 100], mean over {args.seeds} sets per n; every "
                "layout checked for overlap and box bounds. rpack runs only at n = 200 (the issue "
                "measured 199 s at 1,000), stopped after the limit shown.\n\n"
            )
            f.write("\n".join(lines) + "\n\n")
            f.write(
                "## Hierarchical packing (`pack_hierarchy`, 8 planted clusters, "
                "`n_clusters=8`)\n\n"
                "Contiguous: fraction of clusters whose rectangles form one touching region. "
                "Same-cluster contact: fraction of touching boundary length between rectangles "
                "of the same cluster, for the hierarchical packing, for the flat "
                "`pack_rectangles` of the same items, and expected by chance.\n\n"
            )
            f.write("\n".join(hlines) + "\n")


if __name__ == "__main__":
    main()
