"""Recording: one streaming pass of a model over data (see :func:`record`, :class:`Recording`).

Importing this package does not import torch; :func:`record` imports it when called.

``cnnvis.record`` names both this package and the function: the package is callable and calls
:func:`record`, so ``cnnvis.record(model, data)`` works however ``cnnvis.record`` was reached
(``import cnnvis.record`` binds the package to that name).
"""

import sys
import types

from cnnvis.record.record import RecordError, record, snapshot_activations
from cnnvis.record.recording import LayerPatches, LayerRecord, PatchSource, Recording


class _CallableModule(types.ModuleType):
    """Importing this subpackage rebinds ``cnnvis.record`` to it (Python's import rule); making
    the package callable keeps ``cnnvis.record(model, data)`` working whatever was imported."""

    def __call__(self, *args, **kwargs):
        return record(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "LayerPatches",
    "LayerRecord",
    "PatchSource",
    "Recording",
    "record",
    "snapshot_activations",
    "RecordError",
]
