"""Spatially averaged activations of chosen samples: what a training snapshot compares with a
:class:`~cnnvis.record.recording.Recording`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnnvis.graph import model_device
from cnnvis.record.inputs import (
    RecordError,
    as_loader,
    eval_mode,
    hooks,
    pick_logits,
    split_batch,
)

__all__ = ["snapshot_activations"]


def snapshot_activations(
    model,
    data,
    layers: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    batch_size: int = 64,
    logits: Callable[[Any], Any] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Spatially averaged activations of ``layers`` for the samples ``indices``, and predictions.

    Runs ``model`` over all of ``data`` (in order, in eval mode, restored afterwards) and returns
    ``({layer: (len(indices), n_channels) float32}, predictions of every sample)``: what a
    training snapshot needs to be compared with a :class:`Recording` (its ``pooled_index``).
    Memory: the rows for ``indices`` plus 8 bytes per sample.
    """
    import torch

    loader = as_loader(data, batch_size)
    device = model_device(model)
    modules = dict(model.named_modules())
    unknown = [n for n in layers if n not in modules]
    if unknown:
        raise RecordError(f"unknown layer name(s) {unknown}")
    current: dict[str, Any] = {}

    def make_hook(name):
        def hook(_m, _i, out):
            t = out.detach()
            current[name] = t.flatten(2).float().mean(2) if t.dim() > 2 else t.float()

        return hook

    wanted = None if indices is None else np.asarray(indices, dtype=np.int64)
    rows: dict[str, list] = {n: [] for n in layers}
    got: list[np.ndarray] = []
    preds = []
    start = 0
    with eval_mode(model), hooks(model, list(layers), make_hook), torch.no_grad():
        for batch in loader:
            x, _y = split_batch(batch)
            b = int(x.shape[0])
            z = pick_logits(model(x.to(device)), logits)
            preds.append(z.argmax(dim=1).cpu().numpy().astype(np.int64))
            pos = np.arange(start, start + b)
            sel = np.ones(b, bool) if wanted is None else np.isin(pos, wanted)
            if sel.any():
                got.append(pos[sel])
                for n in layers:
                    rows[n].append(current[n][torch.from_numpy(sel).to(current[n].device)].cpu())
            start += b
    got_a = np.concatenate(got) if got else np.zeros(0, np.int64)
    if wanted is not None and not np.array_equal(np.sort(wanted), got_a):
        raise RecordError("indices refer to samples the data set does not have")
    order = np.argsort(np.argsort(wanted)) if wanted is not None else None
    out = {}
    for n in layers:
        a = (
            torch.cat(rows[n]).numpy().astype(np.float32)
            if rows[n]
            else np.zeros((0, 0), np.float32)
        )
        # rows come in sample order; return them in the order of ``indices``
        out[n] = a[order] if order is not None else a
    return out, np.concatenate(preds) if preds else np.zeros(0, np.int64)
