"""Recording: one streaming pass of a model over data (see :func:`record`, :class:`Recorder`,
:class:`Recording`).

Importing this package does not import torch; :func:`record` imports it when called. The pass
lives in :mod:`cnnvis.record.recorder`; its parts in ``inputs`` (options, batches, logits,
weights), ``watch`` (the hooks), ``summaries`` (the running state), ``store`` (images and
patches), ``images`` and ``receptive``.

``cnnvis.record`` names both this package and the function: the package is callable and calls
:func:`record`, so ``cnnvis.record(model, data)`` works however ``cnnvis.record`` was reached
(``import cnnvis.record`` binds the package to that name).
"""

import sys
import types

from cnnvis.record.inputs import RecordError
from cnnvis.record.recorder import Recorder, record
from cnnvis.record.recording import LayerPatches, LayerRecord, PatchSource, Recording
from cnnvis.record.snapshot import snapshot_activations


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
    "Recorder",
    "Recording",
    "record",
    "snapshot_activations",
    "RecordError",
]
