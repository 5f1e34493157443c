"""Recording: one streaming pass of a model over data (see :func:`record`, :class:`Recording`).

Importing this package does not import torch; :func:`record` imports it when called.
"""

from cnnvis.record.record import RecordError, record, snapshot_activations
from cnnvis.record.recording import LayerRecord, Recording

__all__ = ["LayerRecord", "Recording", "record", "snapshot_activations", "RecordError"]
