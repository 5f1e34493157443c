"""Barnes-Hut t-SNE in the C++ core, checked against brute force and for its promises."""

from __future__ import annotations

import _thread
import threading
import time
import warnings

import numpy as np
import pytest

from cnnvis import _core
from cnnvis.layout import TSNE


def _blobs(n: int, d: int = 10, k: int = 3, sep: float = 12.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=sep, size=(k, d))
    labels = np.arange(n) % k
    return centres[labels] + rng.normal(size=(n, d)), labels


def _brute_gradient(P: np.ndarray, Y: np.ndarray, exaggeration: float = 1.0) -> np.ndarray:
    diff = Y[:, None, :] - Y[None, :, :]
    q = 1.0 / (1.0 + (diff**2).sum(-1))
    np.fill_diagonal(q, 0.0)
    Z = q.sum()
    attr = ((P * q)[:, :, None] * diff).sum(1)
    rep = ((q**2)[:, :, None] * diff).sum(1) / Z
    return exaggeration * attr - rep


def _knn_sets(Y: np.ndarray, k: int) -> np.ndarray:
    D = ((Y[:, None] - Y[None]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    return np.argsort(D, axis=1, kind="stable")[:, :k]


# --------------------------------------------------------------------------------------------
# neighbours and affinities


def test_knn_is_exact_against_brute_force():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(157, 13))
    idx, d2 = _core._tsne_knn(X, 9, 2)
    D = ((X[:, None] - X[None]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    ref = np.sort(D, axis=1)[:, :9]
    np.testing.assert_allclose(d2, ref, rtol=1e-12, atol=1e-12)
    assert (idx != np.arange(157)[:, None]).all()
    np.testing.assert_allclose(np.take_along_axis(D, idx.astype(np.int64), 1), d2, rtol=1e-12)
    # queries against the reference set (no self-exclusion)
    Q = rng.normal(size=(11, 13))
    qi, qd = _core._tsne_knn(X, 5, 1, Q)
    Dq = ((Q[:, None] - X[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(qi, np.argsort(Dq, axis=1, kind="stable")[:, :5])
    np.testing.assert_allclose(qd, np.sort(Dq, axis=1)[:, :5], rtol=1e-12)


def test_affinities_hit_perplexity_are_symmetric_and_sum_to_one():
    X, _ = _blobs(240, d=7)
    ts = TSNE(perplexity=20, n_iter=0)
    ts.fit(X)
    P = ts.affinities_
    assert abs(P.sum() - 1.0) < 1e-12
    assert abs(P - P.T).max() == 0.0
    # each row's conditional distribution reaches the perplexity (recomputed here)
    idx, d2 = _core._tsne_knn(X, 60, 1)
    pc, reached = _core._tsne_conditional_p(d2, 20.0, 1)
    np.testing.assert_allclose(pc.sum(1), 1.0, atol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        H = -np.where(pc > 0, pc * np.log(pc), 0.0).sum(1)
    assert np.abs(np.exp(H) - 20.0).max() < 1e-3
    assert np.abs(reached - 20.0).max() < 1e-3
    # P is (p_j|i + p_i|j) / 2n
    dense = np.zeros((240, 240))
    np.put_along_axis(dense, idx.astype(np.int64), pc, axis=1)
    np.testing.assert_allclose(P.toarray(), (dense + dense.T) / 480.0, rtol=1e-12, atol=1e-18)


# --------------------------------------------------------------------------------------------
# gradient


@pytest.mark.parametrize("dim", [2, 3])
def test_theta_zero_gradient_is_exact(dim):
    X, _ = _blobs(180, d=6)
    ts = TSNE(n_components=dim, perplexity=10, n_iter=0).fit(X)
    P = ts._P
    rng = np.random.default_rng(2)
    Y = rng.normal(scale=3.0, size=(180, dim))
    exact = _brute_gradient(ts.affinities_.toarray(), Y, exaggeration=3.0)
    g, Z = _core._tsne_gradient(*P, Y, 0.0, 3.0, 1)
    assert np.abs(g - exact).max() <= 1e-6 * np.abs(exact).max()
    # Barnes-Hut at theta = 0.5 stays close
    g5, Z5 = _core._tsne_gradient(*P, Y, 0.5, 3.0, 2)
    assert np.linalg.norm(g5 - exact) < 0.02 * np.linalg.norm(exact)
    diff = Y[:, None] - Y[None]
    q = 1 / (1 + (diff**2).sum(-1))
    np.fill_diagonal(q, 0)
    assert abs(Z / q.sum() - 1) < 1e-6  # single-precision kernel, double sums
    assert abs(Z5 / q.sum() - 1) < 0.02


def test_exact_kl_matches_numpy():
    X, _ = _blobs(120, d=5)
    ts = TSNE(perplexity=8, n_iter=0).fit(X)
    Y = np.random.default_rng(3).normal(size=(120, 2))
    Pd = ts.affinities_.toarray()
    diff = Y[:, None] - Y[None]
    q = 1 / (1 + (diff**2).sum(-1))
    np.fill_diagonal(q, 0)
    Q = q / q.sum()
    m = Pd > 0
    ref = (Pd[m] * np.log(Pd[m] / Q[m])).sum()
    assert abs(_core._tsne_exact_kl(*ts._P, Y, 1) - ref) < 1e-10


# --------------------------------------------------------------------------------------------
# embeddings


def _neighbourhood_hit(Y: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    nn = _knn_sets(Y, k)
    return float((labels[nn] == labels[:, None]).mean())


@pytest.mark.parametrize("dim", [2, 3])
def test_separated_clusters_stay_separated(dim):
    X, labels = _blobs(300, d=10, k=4)
    ts = TSNE(n_components=dim, perplexity=15, n_iter=400, random_state=0)
    Y = ts.fit_transform(X)
    assert Y.shape == (300, dim)
    assert _neighbourhood_hit(Y, labels) > 0.99
    # KL reported with the Barnes-Hut Z agrees with the exact one
    exact = _core._tsne_exact_kl(*ts._P, Y, 1)
    assert abs(ts.kl_divergence_ - exact) < 0.02 * exact
    assert ts.n_iter_ == 400


def test_embedding_preserves_neighbours_better_than_pca():
    X, _ = _blobs(400, d=20, k=6, sep=3.0, seed=5)
    Y = TSNE(perplexity=20, n_iter=500).fit_transform(X)
    from cnnvis.layout.tsne import _pca

    Ypca, _ = _pca(X, 2)
    ref = _knn_sets(X, 10)

    def preserved(Z):
        nn = _knn_sets(Z, 10)
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref, nn)])

    assert preserved(Y) > preserved(Ypca) + 0.1


@pytest.mark.parametrize("dim", [2, 3])
def test_identical_bytes_for_any_thread_count_and_repeated_runs(dim):
    X, _ = _blobs(500, d=8, k=5, sep=4.0)
    kw = dict(n_components=dim, perplexity=12, n_iter=120, early_exaggeration_iter=60)
    Y1 = TSNE(n_jobs=1, **kw).fit_transform(X)
    Y2 = TSNE(n_jobs=2, **kw).fit_transform(X)
    Y3 = TSNE(n_jobs=3, **kw).fit_transform(X)
    Y1b = TSNE(n_jobs=1, **kw).fit_transform(X)
    assert Y1.tobytes() == Y2.tobytes() == Y3.tobytes() == Y1b.tobytes()
    Yr = TSNE(init="random", random_state=7, n_jobs=2, **kw).fit_transform(X)
    Yr2 = TSNE(init="random", random_state=7, n_jobs=1, **kw).fit_transform(X)
    assert Yr.tobytes() == Yr2.tobytes()


def test_joint_p_is_the_symmetrised_conditional_matrix():
    # (C + C^T) / 2n with C[i, idx[i, a]] = p[i, a], as scipy builds it; rows sorted by column
    import scipy.sparse as sp

    X, _ = _blobs(9000, d=6, k=6, sep=6.0, seed=8)  # above the threshold: 2 threads really split
    idx, d2 = _core._tsne_knn(X, 12, 2)
    p, _ = _core._tsne_conditional_p(d2, 4.0, 2)
    n, k = idx.shape
    C = sp.csr_matrix((p.ravel(), idx.ravel(), np.arange(0, n * k + 1, k)), shape=(n, n))
    ref = ((C + C.T) / (2 * n)).tocsr()
    ref.sort_indices()
    indptr, indices, data = _core._tsne_joint_p(idx, p, 2)
    assert np.array_equal(indptr, ref.indptr) and np.array_equal(indices, ref.indices)
    np.testing.assert_allclose(data, ref.data, rtol=1e-15, atol=0)


def test_identical_bytes_for_any_thread_count_above_the_parallel_threshold():
    # from 8192 points the light passes (tree codes, symmetrised P) are split between threads too
    X, _ = _blobs(9000, d=6, k=6, sep=6.0, seed=5)
    idx, d2 = _core._tsne_knn(X, 15, 2)
    p, _ = _core._tsne_conditional_p(d2, 5.0, 2)
    P1 = _core._tsne_joint_p(idx, p, 1)
    P2 = _core._tsne_joint_p(idx, p, 2)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(P1, P2))
    assert P1[0][-1] == len(P1[1]) and abs(P1[2].sum() - 1.0) < 1e-12
    for dim in (2, 3):
        kw = dict(n_components=dim, perplexity=5, n_iter=12, early_exaggeration_iter=6)
        Y1 = TSNE(n_jobs=1, **kw).fit_transform(X)
        Y2 = TSNE(n_jobs=2, **kw).fit_transform(X)
        assert Y1.tobytes() == Y2.tobytes()


def test_transform_places_a_copy_next_to_its_original():
    X, labels = _blobs(300, d=10, k=3, sep=5.0, seed=3)
    ts = TSNE(perplexity=15, n_iter=300).fit(X)
    Y = ts.embedding_
    pick = np.arange(0, 300, 15)
    Ynew = ts.transform(X[pick])
    assert Ynew.shape == (len(pick), 2)
    D = ((Ynew[:, None] - Y[None]) ** 2).sum(-1)
    # the original is among the 3 nearest training points of its copy
    near = np.argsort(D, axis=1)[:, :3]
    assert np.mean([p in row for p, row in zip(pick, near)]) >= 0.9
    assert np.median(np.linalg.norm(Ynew - Y[pick], axis=1)) < 0.05 * Y.std()
    # new points of a cluster land in that cluster; the embedding did not move
    rng = np.random.default_rng(9)
    Xn = X[pick] + 0.3 * rng.normal(size=X[pick].shape)
    Yn = ts.transform(Xn)
    nn = np.argsort(((Yn[:, None] - Y[None]) ** 2).sum(-1), axis=1)[:, :10]
    assert (labels[nn] == labels[pick][:, None]).mean() > 0.95
    assert ts.embedding_ is Y


def test_fit_sequence_moves_less_than_independent_runs():
    X0, _ = _blobs(300, d=10, k=4, sep=3.0, seed=11)
    rng = np.random.default_rng(4)
    frames = [X0 + 0.15 * rng.normal(size=X0.shape) for _ in range(3)]
    kw = dict(perplexity=15, n_iter=300)
    ts = TSNE(**kw)
    seq = ts.fit_sequence(frames)
    assert len(seq) == 3
    from cnnvis.layout.tsne import _procrustes

    # independent runs (PCA init, itself consistent across similar frames), aligned the same way
    indep = [TSNE(**kw).fit_transform(F) for F in frames]
    for i in range(1, 3):
        indep[i] = _procrustes(indep[i], indep[i - 1])

    def movement(fs):
        return np.mean([np.linalg.norm(b - a, axis=1).mean() / a.std() for a, b in zip(fs, fs[1:])])

    assert movement(seq) < 0.75 * movement(indep)
    # at no worse KL than the independent runs
    kl_indep = [_core._tsne_exact_kl(*TSNE(**kw).fit(F)._P, Y, 1) for F, Y in zip(frames, indep)]
    assert np.mean(ts.kl_divergences_[1:]) < 1.03 * np.mean(kl_indep[1:])
    # a movement penalty moves even less
    ts2 = TSNE(**kw)
    pen = ts2.fit_sequence(frames, movement_penalty=1.0)
    assert movement(pen) < 0.5 * movement(seq)
    assert len(ts2.kl_divergences_) == 3 and ts2.embedding_ is pen[-1]


def test_callback_reports_and_can_stop():
    X, _ = _blobs(200, d=5)
    seen = []

    def cb(it, kl, Y):
        seen.append((it, kl, Y.shape))
        return it >= 150

    ts = TSNE(perplexity=10, n_iter=400, callback=cb, callback_every=50)
    ts.fit(X)
    assert [s[0] for s in seen] == [50, 100, 150]
    assert all(np.isfinite(s[1]) and s[2] == (200, 2) for s in seen)
    assert ts.n_iter_ == 150


def test_callbacks_do_not_change_the_result():
    X, _ = _blobs(200, d=5)
    kw = dict(perplexity=10, n_iter=120, early_exaggeration_iter=50)
    plain = TSNE(**kw).fit_transform(X)
    watched = TSNE(callback=lambda *a: None, callback_every=7, **kw).fit_transform(X)
    assert plain.tobytes() == watched.tobytes()


def test_ctrl_c_stops_within_a_second():
    X, _ = _blobs(4000, d=10, k=5)
    ts = TSNE(perplexity=10, n_iter=100000)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        ts.fit(X)
    assert time.perf_counter() - t0 < 3.0
    timer.cancel()


def _preservation(X: np.ndarray, Y: np.ndarray, k: int = 10) -> float:
    nn_x, nn_y = _core._tsne_knn(X, k, 2)[0], _core._tsne_knn(Y, k, 2)[0]
    return float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(nn_x, nn_y)])) / k


def test_exact_and_approximate_neighbours_preserve_the_same_neighbourhoods():
    X, _ = _blobs(5000, d=20, k=10, sep=3.0)  # above the 4,096 points where approx is exact
    kept = {}
    for method in ("exact", "approx"):
        ts = TSNE(neighbors=method, n_iter=500, n_jobs=2)
        kept[method] = _preservation(X, ts.fit_transform(X))
        assert ts.neighbors_ == method
    assert kept["exact"] > 0.2, kept  # the embedding does keep neighbourhoods
    assert abs(kept["exact"] - kept["approx"]) <= 0.01, kept


def test_auto_neighbours_are_exact_below_the_threshold_with_the_same_bytes():
    X, _ = _blobs(400)
    auto = TSNE(n_iter=100)
    Y = auto.fit_transform(X)
    assert auto.neighbors_ == "exact"
    assert Y.tobytes() == TSNE(n_iter=100, neighbors="exact").fit_transform(X).tobytes()


# --------------------------------------------------------------------------------------------
# robustness


def test_small_inputs_and_perplexity_clamp():
    Y1 = TSNE().fit_transform(np.ones((1, 4)))
    assert Y1.shape == (1, 2) and np.isfinite(Y1).all()
    for n in (2, 3, 4, 7):
        X = np.arange(n * 3, dtype=float).reshape(n, 3) ** 1.5
        with pytest.warns(UserWarning, match="perplexity"):
            ts = TSNE(perplexity=30)
            Y = ts.fit_transform(X)
        assert Y.shape == (n, 2) and np.isfinite(Y).all()
        assert ts.perplexity_ <= max(1.0, (n - 1) / 3)
    X, _ = _blobs(200)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TSNE(perplexity=30, n_iter=0).fit(X)  # 90 neighbours of 199: no warning


def test_duplicates_and_constant_columns():
    X, labels = _blobs(200, d=6, k=2)
    X = np.vstack([X, X[:50]])  # 50 exact duplicates
    X[:, 2] = 3.0  # a constant column
    Y = TSNE(perplexity=10, n_iter=300).fit_transform(X)
    assert np.isfinite(Y).all()
    # each duplicate lands next to its original (much closer than typical neighbours)
    gap = np.linalg.norm(Y[200:] - Y[:50], axis=1)
    D = ((Y[:200, None] - Y[None, :200]) ** 2).sum(-1)
    np.fill_diagonal(D, np.inf)
    assert np.median(gap) < 0.2 * np.median(np.sqrt(D.min(1)))
    same = np.ones((30, 5))
    Ys = TSNE(perplexity=5, n_iter=100).fit_transform(same)
    assert np.isfinite(Ys).all()


def test_dtypes_and_layouts_give_the_same_embedding():
    X, _ = _blobs(150, d=8)
    Xr = np.round(X, 3)
    kw = dict(perplexity=10, n_iter=100)
    ref = TSNE(**kw).fit_transform(Xr)
    F = np.asfortranarray(Xr)
    assert TSNE(**kw).fit_transform(F).tobytes() == ref.tobytes()
    strided = np.zeros((150, 16))
    strided[:, ::2] = Xr
    assert TSNE(**kw).fit_transform(strided[:, ::2]).tobytes() == ref.tobytes()
    Y32 = TSNE(**kw).fit_transform(Xr.astype(np.float32))
    assert Y32.shape == ref.shape and np.isfinite(Y32).all()
    Yl = TSNE(**kw).fit_transform(Xr.tolist())
    assert Yl.tobytes() == ref.tobytes()


@pytest.mark.parametrize(
    "X, match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), "NaN or infinite"),
        (np.zeros((0, 3)), "at least one sample"),
        (np.zeros((5, 0)), "at least one feature"),
        (np.zeros(5), "2-D"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_bad_input_is_a_clear_error(X, match):
    with pytest.raises(ValueError, match=match):
        TSNE().fit_transform(X)


@pytest.mark.parametrize(
    "kw",
    [
        dict(n_components=4),
        dict(perplexity=0),
        dict(perplexity=-3),
        dict(theta=-0.1),
        dict(n_iter=-1),
        dict(learning_rate=0),
        dict(learning_rate="fast"),
        dict(init="spectral"),
        dict(momentum=1.5),
        dict(n_jobs=0),
        dict(callback_every=0),
        dict(neighbors="annoy"),
        dict(neighbors=None),
    ],
)
def test_bad_parameters_are_clear_errors(kw):
    X, _ = _blobs(50)
    with pytest.raises(ValueError):
        TSNE(**kw).fit_transform(X)


def test_bad_init_and_transform_errors():
    X, _ = _blobs(60)
    with pytest.raises(ValueError, match="shape"):
        TSNE(init=np.zeros((59, 2))).fit(X)
    bad = np.zeros((60, 2))
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        TSNE(init=bad).fit(X)
    with pytest.raises(ValueError, match="not fitted"):
        TSNE().transform(X)
    ts = TSNE(perplexity=5, n_iter=50).fit(X)
    with pytest.raises(ValueError, match="features"):
        ts.transform(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        ts.transform(np.full((2, X.shape[1]), np.nan))
    with pytest.raises(ValueError, match="samples"):
        TSNE(perplexity=5, n_iter=10).fit_sequence([X, X[:30]])


def test_binding_boundary_checks():
    Y = np.zeros((3, 2))
    with pytest.raises(ValueError, match="indptr"):
        _core._tsne_gradient(np.array([0, 1, 1, 2]), np.array([0]), np.array([1.0]), Y, 0.5)
    with pytest.raises(ValueError, match="column index"):
        _core._tsne_gradient(
            np.array([0, 1, 1, 1]), np.array([7], np.int32), np.array([1.0]), Y, 0.5
        )
    with pytest.raises(ValueError, match="k must be"):
        _core._tsne_knn(np.zeros((4, 2)), 4)
    with pytest.raises(ValueError, match="2 or 3 columns"):
        _core._TsneOptimizer(
            np.array([0, 0]), np.zeros(0, np.int32), np.zeros(0), np.zeros((1, 4)), 0.5
        )


def test_pca_components_reduces_first():
    X, labels = _blobs(200, d=80, k=3)
    ts = TSNE(perplexity=10, n_iter=250, pca_components=20)
    Y = ts.fit_transform(X)
    assert ts._X_fit.shape == (200, 20)
    assert _neighbourhood_hit(Y, labels) > 0.98
    assert ts.transform(X[:5]).shape == (5, 2)
