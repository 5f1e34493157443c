"""Recording: one streaming pass of a model over data (see :class:`Recording`)."""

from cnnvis.record.recording import LayerRecord, Recording

__all__ = ["LayerRecord", "Recording"]
