"""Model graphs: a model's layers as a DAG of the data flow (C1) and its layer groups (C2).

:func:`model_graph` builds the DAG, :func:`layer_groups` merges its layers into groups (the rule
is in its docstring), :func:`group_graph` gives the DAG of those groups, and
:func:`default_layers` lists the modules whose outputs are recorded by default;
:func:`model_device` and :func:`module_kind` are the one rule for a model's device and a module's
op kind.
"""

from __future__ import annotations

from cnnvis.graph.dag import OPS, GraphTraceWarning, model_graph
from cnnvis.graph.groups import LayerGroup, default_layers, group_graph, layer_groups
from cnnvis.graph.modules import model_device, module_kind

__all__ = [
    "OPS",
    "GraphTraceWarning",
    "LayerGroup",
    "default_layers",
    "group_graph",
    "layer_groups",
    "model_device",
    "model_graph",
    "module_kind",
]
