"""The bands of the overview (C2): the analysed layers grouped as the model's blocks group them.

A :class:`LayerBand` is what the overview draws as one band: the analysed layers of one group of
:func:`cnnvis.graph.layer_groups` (a block of the model, or a run of layers outside any block).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import networkx as nx

__all__ = ["LayerBand", "layer_bands"]


@dataclass
class LayerBand:
    """A layer group of the overview (C2): consecutive analysed layers shown as one band.

    ``layers`` are the analysed layers of the group, in order; ``nodes`` all its graph nodes.
    (Not :class:`cnnvis.graph.LayerGroup`, the group of graph nodes it comes from.)
    """

    name: str
    layers: list[str]
    nodes: list[Any]


def layer_bands(graph: nx.DiGraph, layers: list[str]) -> list[LayerBand]:
    """The bands of the analysed ``layers`` (in network order) of ``graph``, in that order.

    Each group of :func:`cnnvis.graph.layer_groups` that holds analysed layers is a band; an
    analysed layer in no group is a band of its own.
    """
    from cnnvis.analysis.connections import layer_node
    from cnnvis.graph import layer_groups

    node_to_layer = {}
    for name in layers:
        try:
            node_to_layer[layer_node(graph, name)] = name
        except KeyError:
            pass  # a layer the graph does not know: it gets a band of its own below
    analysed = set(layers)
    bands: list[LayerBand] = []
    for group in layer_groups(graph):
        nodes = list(group.nodes)
        members = []
        for v in nodes:
            layer = node_to_layer.get(v, v if v in analysed else None)
            if layer is not None and layer not in members:
                members.append(layer)
        if members:
            members.sort(key=layers.index)
            bands.append(LayerBand(str(group.name), members, nodes))
    covered = {m for band in bands for m in band.layers}
    bands.extend(LayerBand(n, [n], [n]) for n in layers if n not in covered)
    bands.sort(key=lambda band: layers.index(band.layers[0]))
    return bands
