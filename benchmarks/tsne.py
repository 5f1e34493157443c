"""t-SNE side by side: cnnvis (1 and 2 threads) against openTSNE (Barnes-Hut, FFT) and scikit-learn.

Every method runs perplexity 30 with 250 early-exaggeration + 750 iterations, PCA init, and one
thread unless stated. Quality is measured the same way for all: the exact KL divergence (O(n^2)
normalisation) against one shared P (cnnvis' exact-kNN affinities at perplexity 30), and 10-NN
preservation (the fraction of each point's 10 exact nearest neighbours in the input that are among
its 10 nearest neighbours in the embedding).

Tables: digits (1,797 x 64) and 10-cluster Gaussian mixtures in 50-D (n = 5,000 and 20,000); a 3-D
timing; and fit_sequence on the hidden layer of an MLP trained on digits (frames after several
epochs): movement between consecutive frames (after Procrustes alignment) against independent runs.

Usage::

    python benchmarks/tsne.py            # full (about 15 minutes on 2 shared cores)
    python benchmarks/tsne.py --quick    # digits and n = 5,000 only, fewer anchors
    python benchmarks/tsne.py --write benchmarks/results/tsne.md
    python benchmarks/tsne.py --large 250000x64   # vs openTSNE FFT, 2 threads, child processes
    python benchmarks/tsne.py --large 1000000x50 --data digits   # augmented digits, PCA to 50-D
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from cnnvis import _core  # noqa: E402
from cnnvis.layout import TSNE  # noqa: E402
from cnnvis.layout.tsne import _pca, _procrustes  # noqa: E402


def mixture(n: int, d: int = 50, k: int = 10, seed: int = 0) -> np.ndarray:
    """k Gaussian clusters (unit variance) with centres drawn from N(0, 3^2) in d dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    return centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))


def digits_augmented(n: int, seed: int = 0, chunk: int = 50_000) -> np.ndarray:
    """n 8x8 digits (64-D, MNIST-like structure at any n): scikit-learn's 1,797 digits under random
    rotations (+-15 degrees), scalings (0.9-1.1) and shifts (+-1 pixel), bilinear, plus pixel
    noise (sd 0.5 on the 0-16 scale). Unlike the mixture, its neighbourhoods carry structure, so
    10-NN preservation tells embeddings apart at any n."""
    from scipy import ndimage
    from sklearn.datasets import load_digits

    base = load_digits().images.astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, 64))
    yy, xx = np.mgrid[0:8, 0:8].astype(np.float32) - 3.5
    for b in range(0, n, chunk):
        m = min(chunk, n - b)
        src = rng.integers(0, len(base), m)
        turn = np.deg2rad(rng.uniform(-15, 15, m)).astype(np.float32)[:, None, None]
        scale = rng.uniform(0.9, 1.1, m).astype(np.float32)[:, None, None]
        shift = rng.uniform(-1, 1, (2, m, 1, 1)).astype(np.float32)
        c, s = np.cos(turn) / scale, np.sin(turn) / scale
        rows = c * yy - s * xx + 3.5 + shift[0]
        cols = s * yy + c * xx + 3.5 + shift[1]
        which = np.broadcast_to(np.arange(m, dtype=np.float32)[:, None, None], rows.shape)
        img = ndimage.map_coordinates(base[src], [which, rows, cols], order=1, mode="constant")
        img += rng.normal(scale=0.5, size=img.shape).astype(np.float32)
        out[b : b + m] = img.reshape(m, 64)
    return out


def digits_pca(n: int, d: int) -> np.ndarray:
    """The augmented digits, on their first d principal axes when d < 64 (the usual step before
    t-SNE at scale)."""
    X = digits_augmented(n)
    return X if d >= X.shape[1] else _pca(X, d)[0]


LARGE_DATA = {"mixture": mixture, "digits": digits_pca}


def digits() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().data.astype(np.float64)


def shared_p(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx, d2 = _core._tsne_knn(X, 90, 2)
    p, _ = _core._tsne_conditional_p(d2, 30.0, 2)
    return _core._tsne_joint_p(idx, p)


def knn_preservation(nn_x: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    nn_y, _ = _core._tsne_knn(np.ascontiguousarray(Y, dtype=np.float64), k, 2)
    hits = (nn_x[:, :, None] == nn_y[:, None, :]).any(-1).sum()
    return hits / nn_x.size


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    Y = fn()
    return np.asarray(Y, dtype=np.float64), time.perf_counter() - t0, time.process_time() - c0


def ours(X: np.ndarray, n_jobs: int = 1, dim: int = 2) -> np.ndarray:
    return TSNE(n_components=dim, perplexity=30, n_iter=1000, n_jobs=n_jobs).fit_transform(X)


def open_bh(X: np.ndarray, dim: int = 2) -> np.ndarray:
    import openTSNE

    return openTSNE.TSNE(
        n_components=dim,
        perplexity=30,
        n_iter=750,
        early_exaggeration_iter=250,
        negative_gradient_method="bh",
        n_jobs=1,
        random_state=0,
    ).fit(X)


def open_fft(X: np.ndarray, n_jobs: int = 1, verbose: bool = False) -> np.ndarray:
    import openTSNE

    return openTSNE.TSNE(
        perplexity=30,
        n_iter=750,
        early_exaggeration_iter=250,
        negative_gradient_method="fft",
        n_jobs=n_jobs,
        random_state=0,
        verbose=verbose,
    ).fit(X)


def sklearn_bh(X: np.ndarray, dim: int = 2) -> np.ndarray:
    from sklearn.manifold import TSNE as SKTSNE

    return SKTSNE(
        n_components=dim, perplexity=30, max_iter=1000, init="pca", n_jobs=1, random_state=0
    ).fit_transform(X)


def have(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def table_2d(name: str, X: np.ndarray, methods: list[tuple[str, Callable]], lines: list[str]):
    P = shared_p(X)
    nn_x, _ = _core._tsne_knn(X, 10, 2)
    rows = []
    for label, fn in methods:
        Y, wall, cpu = timed(lambda fn=fn: fn(X))
        kl = _core._tsne_exact_kl(*P, Y, 2)
        pres = knn_preservation(nn_x, Y)
        rows.append((label, wall, cpu, kl, pres))
        print(f"  {name:>10} {label:<24} {wall:7.1f} s  KL {kl:.4f}  10-NN {pres:.3f}", flush=True)
    ref = next((r for r in rows if r[0].startswith("openTSNE BH")), None)
    lines.append(f"\n### {name} (n = {X.shape[0]:,}, {X.shape[1]}-D)\n")
    lines.append(
        "| method | wall s | CPU s | speed-up vs openTSNE BH (wall / CPU) | exact KL"
        " | KL vs openTSNE BH | 10-NN preservation |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for label, wall, cpu, kl, pres in rows:
        if ref is not None:
            sp = f"{ref[1] / wall:.2f}x / {ref[2] / cpu:.2f}x"
            dkl = f"{100 * (kl / ref[3] - 1):+.2f}%"
        else:
            sp, dkl = "-", "-"
        lines.append(f"| {label} | {wall:.2f} | {cpu:.2f} | {sp} | {kl:.4f} | {dkl} | {pres:.3f} |")
    return rows


def table_3d(X: np.ndarray, lines: list[str]):
    P = shared_p(X)
    nn_x, _ = _core._tsne_knn(X, 10, 2)
    methods = [("cnnvis 3-D, 1 thread", lambda X: ours(X, 1, 3))]
    methods.append(("cnnvis 3-D, 2 threads", lambda X: ours(X, 2, 3)))
    if have("openTSNE"):
        methods.append(("openTSNE BH 3-D", lambda X: open_bh(X, 3)))
    lines.append(f"\n### 3-D (mixture, n = {X.shape[0]:,}, 50-D)\n")
    lines.append("| method | wall s | CPU s | exact KL | 10-NN preservation |")
    lines.append("|---|---:|---:|---:|---:|")
    for label, fn in methods:
        Y, wall, cpu = timed(lambda fn=fn: fn(X))
        kl = _core._tsne_exact_kl(*P, Y, 2)
        pres = knn_preservation(nn_x, Y)
        print(f"  3-D {label:<24} {wall:7.1f} s  KL {kl:.4f}  10-NN {pres:.3f}", flush=True)
        lines.append(f"| {label} | {wall:.2f} | {cpu:.2f} | {kl:.4f} | {pres:.3f} |")


def mlp_frames(epochs: list[int]) -> list[np.ndarray]:
    """Hidden-layer (64 ReLU units) activations of an MLP on digits after the given epochs."""
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    mlp = MLPClassifier(hidden_layer_sizes=(64,), random_state=0, learning_rate_init=1e-3)
    frames, done = [], 0
    classes = np.unique(y)
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in range(1, max(epochs) + 1):
            for b in np.array_split(rng.permutation(len(X)), 14):  # mini-batches of ~128
                mlp.partial_fit(X[b], y[b], classes=classes)
            done = e
            if done in epochs:
                frames.append(np.maximum(0.0, X @ mlp.coefs_[0] + mlp.intercepts_[0]))
    return frames


def table_sequence(lines: list[str]):
    epochs = [1, 2, 4, 8, 16]
    frames = mlp_frames(epochs)
    Ps = [shared_p(F) for F in frames]

    def movement(fs):
        return [np.linalg.norm(b - a, axis=1).mean() / a.std() for a, b in zip(fs, fs[1:])]

    def independent(init):
        out = []
        for i, F in enumerate(frames):
            Y = TSNE(perplexity=30, init=init, random_state=i).fit_transform(F)
            out.append(Y if not out else _procrustes(Y, out[-1]))
        return out

    variants = []
    t0 = time.perf_counter()
    variants.append(("independent runs (random init), Procrustes", independent("random")))
    t_ind = time.perf_counter() - t0
    variants.append(("independent runs (PCA init), Procrustes", independent("pca")))
    t0 = time.perf_counter()
    variants.append(("fit_sequence (warm start)", TSNE(perplexity=30).fit_sequence(frames)))
    t_seq = time.perf_counter() - t0
    for lam in (0.1, 1.0):
        seq = TSNE(perplexity=30).fit_sequence(frames, movement_penalty=lam)
        variants.append((f"fit_sequence, movement_penalty={lam:g}", seq))
    lines.append(
        f"\n### fit_sequence: MLP hidden layer (64 ReLU) on digits after epochs {epochs}\n"
    )
    lines.append(
        "Movement: mean displacement between consecutive frames / embedding std (after"
        " orthogonal Procrustes). KL: exact, mean over frames 2-5 (frame 1 is the same fit for"
        f" the warm-started variants). Time for 5 frames: independent {t_ind:.1f} s,"
        f" fit_sequence {t_seq:.1f} s.\n"
    )
    lines.append("| variant | mean movement | max movement | mean KL (frames 2-5) |")
    lines.append("|---|---:|---:|---:|")
    for label, fs in variants:
        mv = movement(fs)
        kl = np.mean([_core._tsne_exact_kl(*P, Y, 2) for P, Y in zip(Ps[1:], fs[1:])])
        print(f"  seq {label:<44} movement {np.mean(mv):.3f} KL {kl:.4f}", flush=True)
        lines.append(f"| {label} | {np.mean(mv):.3f} | {np.max(mv):.3f} | {kl:.4f} |")


def table_threads(n: int, repeats: int, lines: list[str]) -> None:
    """cnnvis end to end on 1 and 2 threads, back to back, `repeats` times (same bytes checked)."""
    X = mixture(n)
    ours(X[:2000], 1)  # warm-up (imports, page faults)
    rows, ratios = [], []
    for r in range(repeats):
        load = os.getloadavg()[0]
        Y1, w1, c1 = timed(lambda: ours(X, 1))
        Y2, w2, c2 = timed(lambda: ours(X, 2))
        if Y1.tobytes() != Y2.tobytes():
            raise AssertionError("1 and 2 threads gave different bytes")
        ratios.append(w1 / w2)
        rows.append(
            f"| {r + 1} | {load:.2f} | {w1:.2f} | {w2:.2f} | {w1 / w2:.2f}x | {c1:.2f} | {c2:.2f} |"
        )
        print(
            f"  run {r + 1}: load {load:.2f}, 1 thread {w1:.2f} s, 2 threads {w2:.2f} s, "
            f"{w1 / w2:.2f}x (CPU {c1:.2f} s, {c2:.2f} s)",
            flush=True,
        )
    lines += [
        "",
        f"### Thread scaling (mixture, n = {n:,}, 50-D, cnnvis end to end)",
        "",
        "| run | load (1 min) | 1 thread s | 2 threads s | speed-up | CPU s, 1 thread | CPU s, 2 threads |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Best {max(ratios):.2f}x, median {float(np.median(ratios)):.2f}x; identical bytes on both.",
    ]


LARGE_METHODS = ("cnnvis", "openTSNE FFT")


def _large_child(method: str, data: str, n: int, d: int, out: str) -> None:
    """One large run in a fresh process (so that its peak RSS is its own), 2 threads, with the
    method's own phase timings printed (verbose)."""
    import json
    import resource

    X = LARGE_DATA[data](n, d)
    load0 = os.getloadavg()[0]
    if method == "cnnvis":
        fit = TSNE(perplexity=30, n_jobs=2, verbose=True, callback_every=250).fit_transform
    else:
        fit = lambda X: open_fft(X, n_jobs=2, verbose=True)  # noqa: E731
    Y, wall, cpu = timed(lambda: fit(X))
    np.save(out + ".npy", Y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    row = dict(wall=wall, cpu=cpu, peak=peak, load=[load0, os.getloadavg()[0]])
    with open(out + ".json", "w") as fh:
        json.dump(row, fh)


def sampled_preservation(X: np.ndarray, Y: np.ndarray, m: int = 10000, k: int = 10) -> float:
    """10-NN preservation on m random points (exact neighbours of the sample among all n in
    both spaces; an unbiased estimate of the full average, whose exact kNN is O(n^2))."""
    q = np.sort(np.random.default_rng(1).choice(len(X), size=min(m, len(X)), replace=False))
    nn_x, _ = _core._tsne_knn(X, k + 1, 2, X[q])
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    nn_y, _ = _core._tsne_knn(Y, k + 1, 2, Y[q])
    hits = [len(np.intersect1d(a[a != i], b[b != i])) for i, a, b in zip(q, nn_x, nn_y)]
    return float(np.sum(hits)) / (len(q) * k)


def table_large(data: str, n: int, d: int, only: str | None, folder: str, lines: list[str]) -> None:
    """cnnvis against openTSNE's FFT at large n on 2 threads; each run in a child process whose
    results (time, peak RSS, embedding) stay in `folder`, so the rows can be run apart."""
    import json
    import multiprocessing as mp

    os.makedirs(folder, exist_ok=True)
    tag = "" if data == "mixture" else f"{data}_"  # the mixture's row files keep their names
    stem = lambda m: os.path.join(folder, f"tsne_{tag}{n}x{d}_{m.split()[0]}")  # noqa: E731
    for method in () if only == "none" else LARGE_METHODS if only is None else (only,):
        ctx = mp.get_context("spawn")
        child = ctx.Process(target=_large_child, args=(method, data, n, d, stem(method)))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"{method} at n = {n} failed ({child.exitcode})")
    X = LARGE_DATA[data](n, d)
    rows = {}
    for method in LARGE_METHODS:
        if os.path.exists(stem(method) + ".json"):
            with open(stem(method) + ".json") as fh:
                rows[method] = json.load(fh)
            rows[method]["pres"] = sampled_preservation(X, np.load(stem(method) + ".npy"))
    ref = rows.get("openTSNE FFT")
    lines += [
        f"\n### Large n: {data}, n = {n:,}, {X.shape[1]}-D, 2 threads\n",
        "| method | wall s | CPU s | speed-up vs openTSNE FFT | peak RSS GB"
        " | 10-NN preservation (10,000 sampled) | load avg (start, end) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for method, r in rows.items():
        sp = f"{ref['wall'] / r['wall']:.2f}x" if ref else "-"
        lines.append(
            f"| {method} | {r['wall']:.1f} | {r['cpu']:.1f} | {sp} | {r['peak'] / 2**30:.2f}"
            f" | {r['pres']:.3f} | {r['load'][0]:.1f}, {r['load'][1]:.1f} |"
        )


def gradient_row(n: int, d: int, iters: int) -> tuple[float, float, float, float]:
    """Wall and CPU seconds of `iters` gradient steps, Barnes-Hut then FFT, on the same P and
    from the same embedding (ours after 250 exaggerated + 50 plain iterations)."""
    import openTSNE

    X = mixture(n, d)
    ts = TSNE(perplexity=30, n_iter=300, n_jobs=2)
    Y0 = ts.fit_transform(X)
    P = ts.affinities_
    opt = _core._TsneOptimizer(P.indptr, P.indices, P.data, Y0, 0.5, 2)
    _, bh_wall, bh_cpu = timed(lambda: (opt.run(iters, 1.0, n, 0.8, 5.0), Y0)[1])
    affinities = openTSNE.affinity.PrecomputedAffinities(P)
    emb = openTSNE.TSNEEmbedding(Y0.copy(), affinities, negative_gradient_method="fft", n_jobs=2)
    kw = dict(n_iter=iters, exaggeration=1, momentum=0.8, learning_rate=n, inplace=True)
    _, fft_wall, fft_cpu = timed(lambda: emb.optimize(**kw))
    return bh_wall, bh_cpu, fft_wall, fft_cpu


def table_gradient(sizes: list[int], d: int, lines: list[str], iters: int = 30) -> None:
    """Seconds per iteration (wall and CPU, 2 threads) of the gradient step alone: our
    Barnes-Hut (theta 0.5) against openTSNE's FFT interpolation."""
    lines += [
        f"\n### Gradient step alone: Barnes-Hut vs FFT (mixture {d}-D, 2 threads, {iters} its)\n",
        "| n | BH wall s/it | BH CPU s/it | FFT wall s/it | FFT CPU s/it | FFT/BH (CPU) | load |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        bw, bc, fw, fc = gradient_row(n, d, iters)
        lines.append(
            f"| {n:,} | {bw / iters:.4f} | {bc / iters:.4f} | {fw / iters:.4f} | {fc / iters:.4f}"
            f" | {fc / bc:.2f}x | {os.getloadavg()[0]:.1f} |"
        )
        print(lines[-1], flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="digits and n = 5,000 only")
    ap.add_argument("--write", metavar="PATH", help="also write the markdown tables here")
    ap.add_argument("--no-sklearn", action="store_true", help="skip scikit-learn")
    ap.add_argument(
        "--threads-only",
        type=int,
        metavar="REPEATS",
        help="only cnnvis at n = 20,000 on 1 and 2 threads, back to back, this many times",
    )
    ap.add_argument(
        "--large", metavar="NxD", help="cnnvis vs openTSNE FFT at n x d, e.g. 250000x64"
    )
    ap.add_argument(
        "--only",
        choices=(*LARGE_METHODS, "none"),
        help="with --large: run this row only (none: tabulate the rows already in --results)",
    )
    ap.add_argument(
        "--data",
        choices=sorted(LARGE_DATA),
        default="mixture",
        help="with --large: 10 Gaussians, or augmented digits (64-D, or PCA to fewer)",
    )
    ap.add_argument("--results", default="benchmarks/results", help="with --large: row files")
    ap.add_argument("--gradient", metavar="N,N,...", help="BH vs FFT seconds per iteration")
    args = ap.parse_args(argv)
    if args.gradient:
        lines = [f"Command: `python benchmarks/tsne.py --gradient {args.gradient}`"]
        table_gradient([int(v) for v in args.gradient.split(",")], 64, lines)
        print("\n".join(lines))
        return
    if args.large:
        n, d = (int(v) for v in args.large.lower().split("x"))
        lines = [f"Command: `python benchmarks/tsne.py --large {args.large} --data {args.data}`"]
        table_large(args.data, n, d, args.only, args.results, lines)
        print("\n".join(lines))
        return
    if args.threads_only:
        lines = [f"Command: `python benchmarks/tsne.py --threads-only {args.threads_only}`"]
        table_threads(20000, args.threads_only, lines)
        text = "\n".join(lines) + "\n"
        print(text)
        if args.write:
            with open(args.write, "w") as fh:
                fh.write(text)
        return

    methods: list[tuple[str, Callable]] = [
        ("cnnvis, 1 thread", lambda X: ours(X, 1)),
        ("cnnvis, 2 threads", lambda X: ours(X, 2)),
    ]
    if have("openTSNE"):
        methods += [("openTSNE BH", open_bh), ("openTSNE FFT", open_fft)]
    if not args.no_sklearn:
        methods.append(("scikit-learn BH", sklearn_bh))

    lines = [
        "# t-SNE benchmark",
        "",
        f"Command: `python benchmarks/tsne.py{' --quick' if args.quick else ''}`"
        f" ({platform.machine()}, {os.cpu_count()} cores, shared; Python"
        f" {platform.python_version()}). Perplexity 30, 250 + 750 iterations, PCA init, one"
        " thread unless stated; exact KL on one shared P; wall and CPU (process) time.",
    ]
    sizes = [("digits", digits())]
    sizes.append(("mixture", mixture(5000)))
    if not args.quick:
        sizes.append(("mixture", mixture(20000)))
    for name, X in sizes:
        table_2d(name, X, methods, lines)
    table_3d(mixture(5000), lines)
    table_sequence(lines)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        with open(args.write, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    sys.exit(main())
