"""Model graphs: a model's layers as a DAG of the data flow (C1) and its layer groups (C2)."""

from __future__ import annotations

from cnnvis.graph.dag import OPS, GraphTraceWarning, model_graph

__all__ = ["OPS", "GraphTraceWarning", "model_graph"]
