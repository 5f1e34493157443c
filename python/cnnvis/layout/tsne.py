"""Barnes-Hut t-SNE on the C++ core: 2-D and 3-D, any thread count, the same bytes.

:class:`TSNE` follows scikit-learn's conventions (``fit``, ``fit_transform``, fitted attributes
ending in ``_``) and adds what projections of network activity need: ``transform`` for new
points against a fixed embedding, ``fit_sequence`` for snapshots of the same samples over
training (warm-started and Procrustes-aligned frames), and a callback for animation.

The pipeline: exact k nearest neighbours (k = 3 * perplexity) by a blocked brute-force distance
kernel; per-point Gaussian bandwidths by binary search so that each point's perplexity matches;
the symmetric joint affinities P as a sparse matrix; gradient descent where the attraction runs
over the non-zeros of P and the repulsion uses Barnes-Hut on a flat Morton-ordered quadtree
(octree in 3-D).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnvis import _core
from cnnvis.layout._checks import INT32_MAX, integer, real
from cnnvis.layout.neighbors import as_points as _as_points
from cnnvis.layout.neighbors import nearest_neighbors, resolve_method
from cnnvis.parallel import resolve_n_jobs

__all__ = ["TSNE"]

Callback = Callable[[int, float, np.ndarray], Any]


def _finite(Y: np.ndarray, what: str) -> np.ndarray:
    """Y, or an error: large finite hyperparameters (learning_rate, early_exaggeration with
    max_step_norm=0) can still make the optimisation diverge, and an embedding of NaN is never
    an answer."""
    if not np.all(np.isfinite(Y)):
        raise ValueError(
            f"t-SNE {what} diverged to non-finite positions; use a smaller learning_rate or "
            "early_exaggeration, or max_step_norm > 0"
        )
    return Y


def _pca(X: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """Projection of centred X on its leading principal axes (deterministic signs).

    Returns the projection and the variances along the axes.
    """
    Xc = X - X.mean(axis=0)
    cov = Xc.T @ Xc
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1][:n_components]
    vecs = vecs[:, order]
    # sign convention: the largest-magnitude loading of each axis is positive
    signs = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])])
    signs[signs == 0] = 1.0
    vecs = vecs * signs
    proj = Xc @ vecs
    if proj.shape[1] < n_components:  # fewer features than components
        proj = np.hstack([proj, np.zeros((proj.shape[0], n_components - proj.shape[1]))])
    return np.ascontiguousarray(proj), vals[order]


def _procrustes(Y: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Rotates/reflects centred Y onto centred ref (orthogonal Procrustes, no scaling)."""
    Yc = Y - Y.mean(axis=0)
    Rc = ref - ref.mean(axis=0)
    U, _, Vt = np.linalg.svd(Yc.T @ Rc)
    return Yc @ (U @ Vt)


class TSNE:
    """t-distributed stochastic neighbour embedding with Barnes-Hut gradients.

    Parameters
    ----------
    n_components : {2, 3}
        Dimension of the embedding.
    perplexity : float
        Effective number of neighbours of each point. Each point uses its ``3 * perplexity``
        nearest neighbours (exact or approximate, see ``neighbors``). Clamped, with a warning,
        to ``(n_samples - 1) / 3`` on small inputs.
    theta : float
        Barnes-Hut accuracy: a tree cell is summarised by its centre of mass when its full side
        length is below ``theta`` times the distance from its centre of mass to the bounding box
        of the group of points being evaluated (the convention of scikit-learn and openTSNE;
        bhtsne, MulticoreTSNE and FIt-SNE compare half the side, a factor 2 apart). Since the
        distance is taken to the nearest point of the group, this is never looser than the
        per-point test. ``0`` computes the exact O(n^2) gradient.
    n_iter : int
        Total iterations, including the ``early_exaggeration_iter`` first ones.
    early_exaggeration : float
        Factor on P during the first ``early_exaggeration_iter`` iterations.
    early_exaggeration_iter : int
        Length of the early exaggeration phase.
    learning_rate : float or "auto"
        Step size on the gradient written without its conventional factor 4 (as openTSNE).
        ``"auto"`` uses ``max(n / exaggeration, 50)``: ``n / 12`` during early exaggeration,
        then ``n``.
    momentum : float
        Momentum in both phases (0.8, as openTSNE; bhtsne uses 0.5 then 0.8).
    max_step_norm : float
        A point moves at most this far in one iteration (step clipping), ``0`` to disable.
    init : "pca", "random" or array of shape (n_samples, n_components)
        Start. ``"pca"`` projects on the leading principal axes scaled so that the first axis
        has standard deviation 1e-4; ``"random"`` draws N(0, 1e-4^2). An array is used as is.
    pca_components : int or None
        Reduce the input to this many principal components before the neighbour search
        (recommended above a few hundred features). ``None`` keeps all features.
    neighbors : {"auto", "exact", "approx"}
        Neighbour search: ``"exact"`` (blocked brute force, O(n^2 d)), ``"approx"`` (random-projection
        forest refined by NN-descent in the C++ core, about O(n k d), recall above 0.95), or
        ``"auto"``: exact below 40,000 samples, approximate from there on (the measured
        crossover; results below it are the exact search's, unchanged).
    random_state : int, numpy Generator or None
        Seed for ``init="random"`` and the approximate neighbour search (``None``: seed 0 for
        the search); the rest is deterministic.
    n_jobs : int
        Threads. The output is bit-identical for any value. ``-1`` uses all cores.
    callback : callable or None
        ``callback(iteration, kl_divergence, embedding)`` every ``callback_every`` iterations;
        returning ``True`` stops the optimisation early. ``embedding`` is a copy.
    callback_every : int
        Iterations between callbacks.
    verbose : bool
        Print timings and the KL divergence along the way.

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
    kl_divergence_ : float
        KL(P || Q) of the final embedding (Q normalised with the Barnes-Hut estimate).
    n_iter_ : int
        Iterations run.
    perplexity_ : float
        Perplexity used (after clamping).
    neighbors_ : {"exact", "approx"}
        The neighbour search used.
    affinities_ : scipy.sparse.csr_matrix
        The joint affinities P (symmetric, sums to 1).
    embeddings_, kl_divergences_ : list
        Set by :meth:`fit_sequence`, one entry per frame.

    Notes
    -----
    Memory: about ``n * 3 * perplexity * 2 * 12`` bytes for P (CSR with int32 columns and float64
    values; ~2.2 GB for 1M points at perplexity 30), plus ``n * 3 * perplexity * 12`` bytes
    transiently for the neighbours (~1.1 GB at 1M), plus the input and ``~100 * n_components``
    bytes per point of optimiser state. The exact neighbour search costs O(n^2 d): seconds at
    20,000 points, hours at 1M points; the approximate one (the default from 40,000 points)
    grows about linearly. The work releases the GIL; Ctrl-C stops it between
    iterations (within a fraction of a second) with ``KeyboardInterrupt``.

    Examples
    --------
    >>> from cnnvis.layout import TSNE
    >>> Y = TSNE(perplexity=30, random_state=0).fit_transform(X)  # doctest: +SKIP
    """

    def __init__(
        self,
        n_components: int = 2,
        *,
        perplexity: float = 30.0,
        theta: float = 0.5,
        n_iter: int = 1000,
        early_exaggeration: float = 12.0,
        early_exaggeration_iter: int = 250,
        learning_rate: float | str = "auto",
        momentum: float = 0.8,
        max_step_norm: float = 5.0,
        init: str | np.ndarray = "pca",
        pca_components: int | None = None,
        neighbors: str = "auto",
        random_state: int | np.random.Generator | None = None,
        n_jobs: int = 1,
        callback: Callback | None = None,
        callback_every: int = 50,
        verbose: bool = False,
    ) -> None:
        self.n_components = n_components
        self.perplexity = perplexity
        self.theta = theta
        self.n_iter = n_iter
        self.early_exaggeration = early_exaggeration
        self.early_exaggeration_iter = early_exaggeration_iter
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.max_step_norm = max_step_norm
        self.init = init
        self.pca_components = pca_components
        self.neighbors = neighbors
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.callback = callback
        self.callback_every = callback_every
        self.verbose = verbose

    # ------------------------------------------------------------------------------------------
    # validation

    def _check_params(self) -> None:
        if self.n_components not in (2, 3):
            raise ValueError(f"n_components must be 2 or 3, got {self.n_components!r}")
        real(self.perplexity, "perplexity", 0.0, lo_open=True)
        real(self.theta, "theta", 0.0)
        integer(self.n_iter, "n_iter", 0, INT32_MAX)
        integer(self.early_exaggeration_iter, "early_exaggeration_iter", 0, INT32_MAX)
        real(self.early_exaggeration, "early_exaggeration", 0.0, lo_open=True)
        if isinstance(self.learning_rate, str):
            if self.learning_rate != "auto":
                raise ValueError(
                    f"learning_rate must be 'auto' or a number, got {self.learning_rate!r}"
                )
        else:
            real(self.learning_rate, "learning_rate", 0.0, lo_open=True)
        real(self.momentum, "momentum", 0.0, 1.0, hi_open=True)
        real(self.max_step_norm, "max_step_norm", 0.0)
        integer(self.callback_every, "callback_every", 1, INT32_MAX)
        if self.callback is not None and not callable(self.callback):
            raise ValueError("callback must be callable")
        if self.pca_components is not None:
            integer(self.pca_components, "pca_components", 1)
        resolve_method(self.neighbors, 0)
        if isinstance(self.init, str) and self.init not in ("pca", "random"):
            raise ValueError(f"init must be 'pca', 'random' or an array, got {self.init!r}")

    def _threads(self) -> int:
        return resolve_n_jobs(self.n_jobs)

    def _log(self, msg: str) -> None:
        if self.verbose:
            print(f"[TSNE] {msg}", flush=True)

    # ------------------------------------------------------------------------------------------
    # affinities

    def _prepare(self, X: Any) -> np.ndarray:
        X = _as_points(X)
        self.n_features_in_ = X.shape[1]
        self._pca_mean = None
        if self.pca_components is not None and X.shape[1] > int(self.pca_components):
            self._pca_mean = X.mean(axis=0)
            Xc = X - self._pca_mean
            vals, vecs = np.linalg.eigh(Xc.T @ Xc)
            order = np.argsort(vals)[::-1][: int(self.pca_components)]
            vecs = vecs[:, order]
            signs = np.sign(vecs[np.argmax(np.abs(vecs), axis=0), np.arange(vecs.shape[1])])
            signs[signs == 0] = 1.0
            self._pca_axes = vecs * signs
            X = np.ascontiguousarray(Xc @ self._pca_axes)
        return X

    def _reduce(self, X: np.ndarray) -> np.ndarray:
        if self._pca_mean is None:
            return X
        return np.ascontiguousarray((X - self._pca_mean) @ self._pca_axes)

    def _effective_perplexity(self, n: int) -> tuple[float, int]:
        perplexity = float(self.perplexity)
        if 3 * perplexity > n - 1:
            clamped = max(1.0, (n - 1) / 3.0)
            warnings.warn(
                f"perplexity {perplexity:g} is too large for {n} samples; using {clamped:g}",
                UserWarning,
                stacklevel=3,
            )
            perplexity = clamped
        k = min(n - 1, max(1, int(math.floor(3 * perplexity))))
        return perplexity, k

    def _affinities(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = X.shape[0]
        threads = self._threads()
        self.perplexity_, k = self._effective_perplexity(n)
        self.neighbors_ = resolve_method(self.neighbors, n)
        t0 = time.perf_counter()
        idx, d2 = nearest_neighbors(
            X, k, method=self.neighbors_, n_jobs=threads, random_state=self.random_state
        )
        t1 = time.perf_counter()
        pcond, _ = _core._tsne_conditional_p(d2, self.perplexity_, threads)
        del d2  # n x k doubles (0.7 GB at 10^6 points) not needed while P is built
        indptr, indices, data = _core._tsne_joint_p(idx, pcond, threads)
        self._log(
            f"{k} {self.neighbors_} neighbours in {t1 - t0:.2f} s, affinities in {time.perf_counter() - t1:.2f} s"
        )
        return indptr, indices, data

    def _initial(self, X: np.ndarray, init: Any) -> np.ndarray:
        n, D = X.shape[0], self.n_components
        if not isinstance(init, str):
            Y0 = np.asarray(init, dtype=np.float64)
            if Y0.shape != (n, D):
                raise ValueError(f"init array must have shape ({n}, {D}), got {Y0.shape}")
            if not np.isfinite(Y0).all():
                raise ValueError("init contains NaN or infinite values")
            return np.ascontiguousarray(Y0)
        if init == "pca":
            Y0, _ = _pca(X, D)
            std = Y0[:, 0].std()
            if std > 0 and np.isfinite(std):
                return np.ascontiguousarray(Y0 / std * 1e-4)
            # constant data: fall through to a tiny random start
        rng = np.random.default_rng(self.random_state)
        return rng.normal(scale=1e-4, size=(n, D))

    # ------------------------------------------------------------------------------------------
    # optimisation

    def _optimize(
        self,
        P: tuple[np.ndarray, np.ndarray, np.ndarray],
        Y0: np.ndarray,
        anchor: np.ndarray | None = None,
        penalty: float = 0.0,
        warm: bool = False,
    ) -> tuple[np.ndarray, float, int]:
        n = Y0.shape[0]
        threads = self._threads()
        opt = _core._TsneOptimizer(*P, Y0, float(self.theta), threads)
        ee_iter = min(int(self.early_exaggeration_iter), int(self.n_iter))
        phases = [
            (0 if warm else ee_iter, float(self.early_exaggeration), None),
            (int(self.n_iter) - ee_iter, 1.0, anchor),
        ]
        chunk = int(self.callback_every) if (self.callback or self.verbose) else None
        done = 0
        t0 = time.perf_counter()
        for length, exaggeration, anch in phases:
            lr = (
                max(n / exaggeration, 50.0)
                if self.learning_rate == "auto"
                else float(self.learning_rate)
            )
            left = length
            while left > 0:
                step = left if chunk is None else min(chunk, left)
                opt.run(
                    step,
                    exaggeration,
                    lr,
                    float(self.momentum),
                    float(self.max_step_norm),
                    anch,
                    float(penalty) if anch is not None else 0.0,
                )
                left -= step
                done += step
                if chunk is not None:
                    kl = opt.kl_divergence()
                    self._log(f"iteration {done}: KL {kl:.4f} ({time.perf_counter() - t0:.1f} s)")
                    if self.callback is not None and self.callback(done, kl, opt.embedding()):
                        return _finite(opt.embedding(), "fit"), opt.kl_divergence(), done
        return _finite(opt.embedding(), "fit"), opt.kl_divergence(), done

    # ------------------------------------------------------------------------------------------
    # public API

    def fit(self, X: Any, y: Any = None) -> TSNE:
        """Embeds X; see :meth:`fit_transform`."""
        self.fit_transform(X)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """Embeds X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Any real dtype and memory layout (converted to float64); NaN or infinite values
            raise ``ValueError``.
        y : ignored

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        self._check_params()
        X = self._prepare(X)
        Y, kl, n_iter = self._fit_frame(X, self.init)
        self.embedding_, self.kl_divergence_, self.n_iter_ = Y, kl, n_iter
        return Y

    def _fit_frame(
        self,
        X: np.ndarray,
        init: Any,
        anchor: np.ndarray | None = None,
        penalty: float = 0.0,
        warm: bool = False,
    ) -> tuple[np.ndarray, float, int]:
        n = X.shape[0]
        self._X_fit = X
        if n == 1:
            self.perplexity_, self.neighbors_ = float(self.perplexity), "exact"
            self._P = (np.zeros(2, np.int64), np.zeros(0, np.int32), np.zeros(0))
            self.affinities_ = self._sparse(self._P, n)
            return np.zeros((1, self.n_components)), 0.0, 0
        P = self._affinities(X)
        self._P = P
        self.affinities_ = self._sparse(P, n)
        Y0 = self._initial(X, init)
        return self._optimize(P, Y0, anchor, penalty, warm)

    @staticmethod
    def _sparse(P: tuple[np.ndarray, np.ndarray, np.ndarray], n: int) -> Any:
        import scipy.sparse as sp

        indptr, indices, data = P
        return sp.csr_matrix((data, indices, indptr), shape=(n, n))

    def transform(
        self,
        X: Any,
        *,
        perplexity: float = 5.0,
        n_iter: int = 250,
        learning_rate: float = 1.0,
    ) -> np.ndarray:
        """Places new points against the fitted embedding, which does not move.

        Each new point gets affinities to its ``3 * perplexity`` nearest training points, starts
        at their affinity-weighted mean position and is optimised alone: attracted to its
        neighbours, repelled from all training points (Barnes-Hut), minimising its own
        KL(p_i || q_i).

        Parameters
        ----------
        X : array-like of shape (n_new, n_features)
        perplexity : float
            Perplexity of the new points' affinities (small values keep them close to their
            nearest training points).
        n_iter : int
            Optimisation steps.
        learning_rate : float
            Step size.

        Returns
        -------
        ndarray of shape (n_new, n_components)
        """
        if not hasattr(self, "embedding_"):
            raise ValueError("this TSNE instance is not fitted yet; call fit or fit_transform")
        X = _as_points(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but TSNE was fitted with {self.n_features_in_}"
            )
        perplexity = real(perplexity, "perplexity", 0.0, lo_open=True)
        n_iter = integer(n_iter, "n_iter", 0, INT32_MAX)
        learning_rate = real(learning_rate, "learning_rate", 0.0, lo_open=True)
        Xr = self._reduce(X)
        Yref = np.ascontiguousarray(self._Y_ref())
        n = self._X_fit.shape[0]
        k = min(n, max(1, int(math.floor(3 * perplexity))))
        perplexity = min(float(perplexity), max(1.0, k / 3.0))
        threads = self._threads()
        idx, d2 = _core._tsne_knn(self._X_fit, k, threads, Xr)
        p, _ = _core._tsne_conditional_p(d2, perplexity, threads)
        Y0 = np.einsum("mk,mkd->md", p, Yref[idx])
        Y = _core._tsne_transform(
            Yref,
            idx,
            p,
            np.ascontiguousarray(Y0),
            n_iter,
            learning_rate,
            float(self.theta),
            threads,
        )
        return _finite(Y, "transform")

    def _Y_ref(self) -> np.ndarray:
        return self.embedding_

    def fit_sequence(
        self,
        Xs: Sequence[Any],
        *,
        movement_penalty: float = 0.0,
        align: bool = True,
    ) -> list[np.ndarray]:
        """Embeds snapshots of the same samples (e.g. a layer's activations after each epoch).

        The first frame runs the full schedule from ``init``. Each later frame starts from the
        previous frame's embedding rescaled to standard deviation 1e-4 and runs the
        ``n_iter - early_exaggeration_iter`` iterations without exaggeration (the global layout is
        inherited, so early exaggeration is not needed): it keeps the previous arrangement where
        the data allow, moves far less than independent runs at equal or lower KL, and costs a
        quarter less. With ``movement_penalty`` = lambda > 0 each step is followed by the
        proximal step of ``lambda / (2 n) * sum_i |y_i - y_i(previous)|^2`` (the movement term of
        dynamic t-SNE), which pulls points towards their previous positions; useful values are
        about 0.01 to 1 (larger ones pin the points and cost KL).
        With ``align`` each frame is rotated/reflected (orthogonal Procrustes, no scaling) onto
        the previous one for display.

        Parameters
        ----------
        Xs : sequence of array-like, each of shape (n_samples, n_features_t)
            The frames; all must have the same number of samples (features may differ).
        movement_penalty : float
            Weight of the movement penalty, 0 to disable.
        align : bool
            Procrustes-align the frames.

        Returns
        -------
        list of ndarray of shape (n_samples, n_components)
            Also stored in ``embeddings_``; ``kl_divergences_`` holds each frame's KL and
            ``embedding_`` the last frame.
        """
        self._check_params()
        if len(Xs) == 0:
            raise ValueError("Xs must contain at least one frame")
        if movement_penalty < 0:
            raise ValueError("movement_penalty must be >= 0")
        frames: list[np.ndarray] = []
        kls: list[float] = []
        prev_raw: np.ndarray | None = None
        n0 = None
        for t, Xt in enumerate(Xs):
            X = self._prepare(Xt)
            if n0 is None:
                n0 = X.shape[0]
            elif X.shape[0] != n0:
                raise ValueError(f"frame {t} has {X.shape[0]} samples, frame 0 has {n0}")
            if prev_raw is None:
                Y, kl, n_iter = self._fit_frame(X, self.init)
            else:
                std = prev_raw[:, 0].std()
                init = prev_raw / std * 1e-4 if std > 0 else self.init
                anchor = prev_raw if movement_penalty > 0 else None
                Y, kl, n_iter = self._fit_frame(X, init, anchor, movement_penalty, warm=True)
            prev_raw = Y
            if align and frames:
                Y = _procrustes(Y, frames[-1])
            elif align:
                Y = Y - Y.mean(axis=0)
            frames.append(Y)
            kls.append(kl)
            self._log(f"frame {t}: KL {kl:.4f}")
        self.embeddings_, self.kl_divergences_ = frames, kls
        self.embedding_, self.kl_divergence_, self.n_iter_ = frames[-1], kls[-1], n_iter
        return frames
