"""cnnvis: see inside convolutional networks.

The pipeline runs one way: ``record`` (model + data -> Recording) -> ``analysis`` (clustered DAG,
facets, projections) -> ``scene`` (plain geometry) -> ``viewer`` / ``export``. The layout
algorithms of the C++ core are in :mod:`cnnvis.layout` and work on plain numpy arrays.

Heavy dependencies (torch, vispy) are imported only when the names that need them are used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "layout": "cnnvis.layout",
    "model_graph": "cnnvis.graph",
    "layer_groups": "cnnvis.graph",
    "record": "cnnvis.record",
    "Recording": "cnnvis.record",
    "LayerRecord": "cnnvis.record",
    "load": "cnnvis.session",
    "SessionError": "cnnvis.session",
    "analyze": "cnnvis.analysis",
    "Analysis": "cnnvis.analysis",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'cnnvis' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module == f"cnnvis.{name}" else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
