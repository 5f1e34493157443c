"""Shortest open path (row reordering): cnnvis against python-tsp, scipy and LKH-3, in one run.

Instances: n random points in the unit square, Euclidean distances (seeded). For each n the table
shows wall and CPU time and the path length relative to the best found by any method.

* cnnvis exact: Held-Karp in C++ (``hamiltonian_path(method='exact')``).
* cnnvis heuristic: CNNVis hierarchical start + iterated 2-opt/Or-opt (default budget).
* cnnvis hierarchy only: the CNNVis construction without local search.
* python-tsp DP: ``solve_tsp_dynamic_programming`` on the instance plus a dummy point at
  distance 0 (a closed tour through it is an open path), in a subprocess with a time limit.
* scipy OLO: average-linkage dendrogram with ``optimal_leaf_ordering``; its leaf order.
* nearest neighbour: greedy from point 0.
* LKH-3 (``elkai``, reference only, never a dependency): the dummy-point tour, distances scaled to
  integers (1e6 per unit); ``runs`` as printed.

Run: ``PYTHONPATH=python python benchmarks/reorder.py --out benchmarks/results/reorder.md``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time

import numpy as np
from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
from scipy.spatial.distance import cdist, squareform

from cnnvis import _core
from cnnvis.layout.reorder import hamiltonian_path, path_length


def instance(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(1000 * n + seed).random((n, 2))
    return cdist(x, x)


def timed(fn, *a, **kw):
    w, c = time.perf_counter(), time.process_time()
    out = fn(*a, **kw)
    return out, time.perf_counter() - w, time.process_time() - c


def with_dummy(d: np.ndarray) -> np.ndarray:
    n = d.shape[0]
    m = np.zeros((n + 1, n + 1))
    m[:n, :n] = d
    return m


def open_from_tour(tour: list[int], n: int) -> list[int]:
    k = tour.index(n)
    return list(tour[k + 1 :]) + list(tour[:k])


def lkh(d: np.ndarray, runs: int) -> list[int]:
    import elkai

    m = np.rint(with_dummy(d) * 1e6).astype(np.int64)
    return open_from_tour(elkai.DistanceMatrix(m.tolist()).solve_tsp(runs=runs)[:-1], len(d))


def _python_tsp_worker(d, q):
    from python_tsp.exact import solve_tsp_dynamic_programming

    w, c = time.perf_counter(), time.process_time()
    perm, _ = solve_tsp_dynamic_programming(with_dummy(d))
    q.put((list(perm), time.perf_counter() - w, time.process_time() - c))


def python_tsp(d: np.ndarray, limit: float):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_python_tsp_worker, args=(d, q))
    p.start()
    p.join(limit)
    if p.is_alive():
        p.terminate()
        p.join()
        return None
    perm, w, c = q.get()
    return open_from_tour(perm, len(d)), w, c


def olo(d: np.ndarray) -> list[int]:
    z = linkage(squareform(d, checks=False), method="average")
    return list(leaves_list(optimal_leaf_ordering(z, squareform(d, checks=False))))


def run_case(n: int, seeds: range, args) -> list[tuple]:
    rows: dict[str, list] = {}

    def add(name, order, w, c, d):
        rows.setdefault(name, []).append((path_length(d, order), w, c))

    for seed in seeds:
        d = instance(n, seed)
        if n <= 20:
            o, w, c = timed(hamiltonian_path, d, method="exact")
            add("cnnvis exact (Held-Karp)", o, w, c, d)
        o, w, c = timed(hamiltonian_path, d, method="heuristic")
        add("cnnvis heuristic", o, w, c, d)
        o, w, c = timed(_core.hierarchical_path, d)
        add("cnnvis hierarchy only (CNNVis)", o, w, c, d)
        if n <= args.python_tsp_max:
            got = python_tsp(d, args.python_tsp_limit)
            if got is None:
                rows.setdefault("python-tsp DP", []).append(None)
            else:
                add("python-tsp DP", got[0], got[1], got[2], d)
        o, w, c = timed(olo, d)
        add("scipy optimal leaf ordering", o, w, c, d)
        o, w, c = timed(_core.nearest_neighbour_path, d, 0)
        add("nearest neighbour", o, w, c, d)
        if not args.no_lkh:
            runs = 1 if n >= 500 else 10
            o, w, c = timed(lkh, d, runs)
            add(f"LKH-3 (elkai, runs={runs})", o, w, c, d)
    # Best per seed over all methods.
    best = []
    for k in range(len(seeds)):
        vals = [r[k][0] for r in rows.values() if r[k] is not None]
        best.append(min(vals))
    out = []
    for name, r in rows.items():
        if any(v is None for v in r):
            out.append((n, name, None, None, None))
            continue
        ratio = np.mean([v[0] / b for v, b in zip(r, best)])
        out.append((n, name, np.mean([v[1] for v in r]), np.mean([v[2] for v in r]), ratio))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="12,14,16,18,20,200,1000")
    ap.add_argument("--seeds", type=int, default=3, help="instances per size")
    ap.add_argument("--python-tsp-max", type=int, default=18)
    ap.add_argument("--python-tsp-limit", type=float, default=60.0, help="seconds per call")
    ap.add_argument("--no-lkh", action="store_true")
    ap.add_argument("--out", help="also write the table (markdown) here")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = [
        "| n | method | wall s | CPU s | length / best |",
        "|---:|---|---:|---:|---:|",
    ]
    print(lines[0])
    print(lines[1])
    for n in sizes:
        seeds = range(1 if n <= 20 else args.seeds)
        for n_, name, w, c, ratio in run_case(n, seeds, args):
            if w is None:
                line = f"| {n_} | {name} | > {args.python_tsp_limit:.0f} (stopped) | | |"
            else:
                line = f"| {n_} | {name} | {w:.4f} | {c:.4f} | {ratio:.4f} |"
            print(line, flush=True)
            lines.append(line)
    if args.out:
        load = os.getloadavg()
        with open(args.out, "w") as f:
            f.write("# Reordering benchmark (shortest open path)\n\n")
            f.write(
                "Command: `PYTHONPATH=python python benchmarks/reorder.py "
                f"--out {args.out}`\n\n"
                f"Machine: {platform.machine()}, {os.cpu_count()} cores, load average "
                f"{load[0]:.1f} at the end (shared; wall times are inflated, CPU times less so).\n"
                f"Random points in the unit square; one instance per n up to 20, mean over {args.seeds} "
                "above. python-tsp solves the closed tour with a dummy point, i.e. n + 1 "
                "cities, and is stopped after the limit shown.\n\n"
            )
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
