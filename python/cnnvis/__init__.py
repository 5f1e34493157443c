"""cnnvis: see inside convolutional networks.

The pipeline runs one way: ``record`` (model + data -> Recording) -> ``analysis`` (clustered DAG,
facets, projections) -> ``scene`` (plain geometry) -> ``viewer`` / ``export``. The layout
algorithms of the C++ core are in :mod:`cnnvis.layout` and work on plain numpy arrays.
Sessions (saved recordings) are loaded with :func:`load` and opened as an analysis with
:func:`open_session` (both from :mod:`cnnvis.session`).

``import cnnvis`` stays cheap (no numpy, networkx, torch or scikit-learn): the public names are
imported on first use. Code inside the package imports them from their modules, never through
this namespace; the ``TYPE_CHECKING`` block below lets static tools see where each comes from.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnvis import layout
    from cnnvis.analysis import Analysis, analyze
    from cnnvis.graph import layer_groups, model_graph
    from cnnvis.record import LayerRecord, Recording, record
    from cnnvis.session import SessionError, load, open_session
    from cnnvis.tracking import Tracker

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
    "open_session": "cnnvis.session",
    "SessionError": "cnnvis.session",
    "analyze": "cnnvis.analysis",
    "Analysis": "cnnvis.analysis",
    "Tracker": "cnnvis.tracking",
}

__all__ = [
    "__version__",
    "layout",
    "model_graph",
    "layer_groups",
    "record",
    "Recording",
    "LayerRecord",
    "load",
    "open_session",
    "SessionError",
    "analyze",
    "Analysis",
    "Tracker",
]


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
