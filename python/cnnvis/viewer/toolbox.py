"""What the inspector's tabs show, computed without Qt, and their cache in the session folder.

:class:`Toolbox` holds a session's model and data set (loaded once, on first use) and computes
each tab of :data:`TABS` for one sample as a :class:`TabResult`: pictures with captions, lines of
text and optional bars. Results are kept in ``SESSION/inspector/<checkpoint sha256>/`` as one
``.npz`` per entry, written atomically through :mod:`cnnvis.io` and carrying the sha256 of its
own arrays; a read that fails or whose checksum differs is treated as missing, and the entry is
computed again (a damaged cache is never trusted). A new checkpoint gets a new folder.

Every computation takes ``progress(done, total)`` and ``should_stop`` (see
:mod:`cnnvis.interpret.progress`), so the window can show a bar and cancel it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnvis.io import SessionError, read_arrays, read_manifest, write_arrays_atomic
from cnnvis.viewer import toolbox_tabs
from cnnvis.viewer.toolbox_tabs import TABS, TabResult

__all__ = ["TABS", "TabResult", "ResultCache", "Toolbox"]

#: Bumped when what a tab computes changes, so old cache entries are not read.
CACHE_VERSION = 2


class ResultCache:
    """Checked ``.npz`` entries in ``folder`` (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        if not key.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise ValueError(f"a cache key is letters, digits, '.', '_' and '-', got {key!r}")
        return self.folder / f"{key}.npz"

    def get(self, key: str) -> TabResult | None:
        """The entry, or None when it is missing, unreadable or fails its checksum."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            return TabResult.from_arrays(read_arrays(path))
        except (SessionError, ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None  # recomputed and overwritten by the caller

    def put(self, key: str, result: TabResult) -> None:
        try:
            write_arrays_atomic(self.path(key), result.to_arrays())
        except OSError:
            pass  # a read-only session: the result is shown, just not kept


class Toolbox:
    """The toolbox of one session: its model, data set and result cache. ``steps``: of each
    ascent (maximisation, inversion); the tabs' other settings follow the input's size.
    ``projection(layer)``: the session's sample projection of a layer, ``(n_pooled, 2)``, or None
    (the viewer passes its analysis'; otherwise the same t-SNE is computed here)."""

    def __init__(
        self, session: str | Path, recording: Any, *, steps: int = 256, projection=None
    ) -> None:
        self.session = Path(session)
        self.rec = recording
        self.steps = int(steps)
        self._model = self._data = None
        self._projection = projection
        self._references: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        dr = recording.meta.get("display_range") or {}
        self.display = (dr.get("low"), dr.get("high"))
        low, high = self.display
        self.bounds = (min(low), max(high)) if low and high else None

    def load(self) -> None:
        """Load the model and data set (once); SessionError/ValueError say why they cannot be."""
        if self._model is None:
            from cnnvis.session import session_model_and_data

            _, self._model, self._data = session_model_and_data(self.session)
            import captum.attr  # noqa: F401  (what the first tab would otherwise import)
            import scipy.stats  # noqa: F401

    @property
    def model(self) -> torch.nn.Module:
        self.load()
        return self._model

    @property
    def data(self) -> Any:
        if self._data is None:
            from cnnvis.session import session_dataset

            self._data = session_dataset(self.rec)
        return self._data

    def references(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per recorded layer, its pooled activations and their projected coordinates: where
        the adversarial tab places a sample (:func:`cnnvis.interpret.paths.sample_paths`)."""
        from cnnvis.analysis.facets import project_pooled

        for layer in self.rec.layer_names:
            if layer not in self._references:
                coords = None if self._projection is None else self._projection(layer)
                if coords is None:
                    coords = project_pooled(layer, self.rec.pooled(layer), 30.0, 0).coords
                pooled = np.asarray(self.rec.pooled(layer), np.float64)
                self._references[layer] = (pooled, np.asarray(coords, np.float64))
        return self._references

    def cache(self) -> ResultCache:
        """The cache folder of this session's checkpoint."""
        rel = self.rec.meta.get("checkpoint", "")
        entry = read_manifest(self.session)["files"].get(rel, {})
        return ResultCache(self.session / "inspector" / str(entry.get("sha256", "none"))[:16])

    def image(self, sample: int) -> np.ndarray:
        """The sample as float RGB in [0, 1] (the recording's display range)."""
        from cnnvis.interpret.picture import image_rgb

        return image_rgb(self.data[sample][0], *self.display)

    def result(self, key: str, compute, progress=None, should_stop=None) -> TabResult:
        """The cached entry ``key``, else ``compute(progress, should_stop)``, stored."""
        cache = self.cache()
        key = f"{key}-v{CACHE_VERSION}"
        hit = cache.get(key)
        if hit is not None:
            return hit
        out = compute(progress, should_stop)
        cache.put(key, out)
        return out

    def tab(self, name: str, sample: int, progress=None, should_stop=None) -> TabResult:
        """Tab ``name`` of :data:`TABS` for data-set sample ``sample`` (cached)."""
        if name not in TABS:
            raise ValueError(f"unknown tab {name!r}; choose from {', '.join(TABS)}")
        if not 0 <= int(sample) < len(self.data):
            raise ValueError(f"sample must be in 0..{len(self.data) - 1}, got {sample}")
        fn, sample = getattr(toolbox_tabs, name), int(sample)
        key = f"sample{sample}-{name}-{self.steps}"
        return self.result(key, lambda p, s: fn(self, sample, p, s), progress, should_stop)

    def maximization(self, layer: str, channels, progress=None, should_stop=None) -> TabResult:
        """The activation maximisation of a neuron or a cluster (its channels' mean), cached."""
        chans = sorted(int(c) for c in np.atleast_1d(channels))
        tag = hashlib.sha256(",".join(map(str, chans)).encode()).hexdigest()[:12]
        return self.result(f"unit-{layer}-{tag}-{self.steps}",
                           lambda p, s: toolbox_tabs.maximize_unit(self, layer, chans, p, s),
                           progress, should_stop)  # fmt: skip
