"""Where a new sample falls in the session's sample projections, layer by layer (T7's paths).

A t-SNE has no transform for a point it was not fitted on, and refitting it per click would move
every reference point. So a new point is placed out of sample by its neighbours: at each layer it
goes to the mean projected position of the ``k`` recorded samples nearest to it in that layer's
pooled activations (the space the projection was made from). A recorded sample is placed among
its own neighbourhood; a point whose activations sit among another class's is placed there.
Following the original sample and its adversarial version through the layers gives two paths
that run together while the perturbation is still small in the representation and part where
the attack takes hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.distance import cdist

from cnnvis.interpret._targets import captured

__all__ = ["SamplePaths", "place", "pooled_activations", "sample_paths"]


@dataclass
class SamplePaths:
    """Two samples followed through the layers' projections.

    ``positions[l, 0]`` places the original at layer ``layers[l]``, ``positions[l, 1]`` the
    adversarial; ``neighbours[l, j]`` are the rows of the reference samples each was placed
    among, ``(n_layers, 2, k)``."""

    layers: list[str]
    positions: np.ndarray
    neighbours: np.ndarray

    @property
    def gap(self) -> np.ndarray:
        """Distance of the two placed points at each layer, ``(n_layers,)``."""
        return np.linalg.norm(self.positions[:, 0] - self.positions[:, 1], axis=1)


def place(
    reference: np.ndarray, coords: np.ndarray, points: np.ndarray, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``coords`` over the ``k`` rows of ``reference`` nearest (Euclidean) to each row of
    ``points``. Returns the positions ``(m, 2)`` and the neighbour rows ``(m, k)``, nearest first
    (ties by row)."""
    reference = np.asarray(reference, dtype=np.float64)
    coords = np.asarray(coords, dtype=np.float64)
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    if reference.ndim != 2 or coords.shape != (reference.shape[0], 2):
        raise ValueError(
            f"reference must be (n, d) and coords (n, 2); got {reference.shape} and {coords.shape}"
        )
    if points.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"points have {points.shape[1:]} features, reference {reference.shape[1:]}"
        )
    if not 1 <= int(k) <= reference.shape[0]:
        raise ValueError(f"k must be in 1..{reference.shape[0]}, got {k}")
    if not (np.all(np.isfinite(reference)) and np.all(np.isfinite(points))):
        raise ValueError("activations hold NaN or inf")
    d = cdist(points, reference, "sqeuclidean")  # (m, n): no (m, n, d) intermediate
    rows = np.argsort(d, axis=1, kind="stable")[:, : int(k)]
    return coords[rows].mean(axis=1), rows


def pooled_activations(model: torch.nn.Module, x: torch.Tensor, layers: Sequence[str]):
    """Each layer's output for the batch ``x`` pooled as the recorder pools it (the mean over
    positions per channel): ``{layer: (b, channels) float64}``."""
    with torch.no_grad(), captured(model, list(layers)) as acts:
        model(x)
        return {
            n: acts[n].detach().flatten(2).float().mean(2).cpu().double().numpy()
            if acts[n].dim() > 2
            else acts[n].detach().float().cpu().double().numpy()
            for n in layers
        }


def sample_paths(
    model: torch.nn.Module,
    x: torch.Tensor,
    x_adv: torch.Tensor,
    references: Mapping[str, tuple[np.ndarray, np.ndarray]],
    k: int = 5,
) -> SamplePaths:
    """Place the sample ``x`` and its adversarial ``x_adv`` (one sample each, without the batch
    axis) in each layer's projection: ``references[layer] = (pooled activations (n, c), projected
    coordinates (n, 2))`` of the recorded samples, in layer order."""
    if x.shape != x_adv.shape:
        raise ValueError(f"x and x_adv differ in shape: {tuple(x.shape)} vs {tuple(x_adv.shape)}")
    layers = list(references)
    if not layers:
        raise ValueError("sample_paths needs at least one layer's reference")
    device = next(model.parameters()).device
    acts = pooled_activations(model, torch.stack([x, x_adv]).to(device), layers)
    placed = [place(*references[n], acts[n], k) for n in layers]
    return SamplePaths(layers, np.stack([p for p, _ in placed]), np.stack([r for _, r in placed]))
