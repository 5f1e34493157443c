"""Which rows the overview shows: nested layer groups, their expansion, and rows by DAG depth.

Everything here is pure and cheap (names and small graphs, no images), so expanding or
collapsing a group is one call of :func:`cnnvis.scene.build_scene` with another ``expanded``.

* The layer DAG has an edge ``a -> b`` for every connection of the overview input (the analysis'
  :attr:`~cnnvis.Analysis.layer_pairs`: analysed layers joined by a path that avoids the others).
* A *unit* is what one box of the overview stands for: a collapsed group or a single layer of an
  expanded one. A collapsed group shows the clusters of its *representative* layer
  (:func:`representative_layer`).
* Rows come from the DAG of units: a unit's row is its longest path from an input; a unit whose
  successors all lie further down is then moved down to the row just above its first successor,
  so a shortcut (ResNet's ``downsample``) stands beside the convs it bypasses, and an identity
  shortcut becomes an edge that skips rows.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import networkx as nx

from cnnvis.graph.groups import GroupNode, nest_groups

__all__ = [
    "MAX_AUTO_ROWS",
    "Unit",
    "default_expanded",
    "group_tree",
    "layer_dag",
    "representative_layer",
    "visible_units",
]

#: The automatic expansion opens levels while the overview keeps at most this many rows.
MAX_AUTO_ROWS = 14


@dataclass(frozen=True)
class Unit:
    """One box of the overview: a collapsed group, or a layer of an expanded one (a leaf)."""

    name: str
    layer: str  # the layer whose clusters are drawn
    layers: tuple[str, ...]  # every layer it stands for
    is_group: bool
    parents: tuple[str, ...]  # expanded groups it lies in, outermost first
    order: int  # network order of its first layer

    @property
    def title(self) -> str:
        """Its name as shown: a layer's relative to the open group it lies in (``conv1``
        inside ``layer2.0``); a group's (``layer2.3``, not ``3``) and a top-level layer's whole."""
        if not self.is_group and self.parents and self.name.startswith(self.parents[-1] + "."):
            return self.name[len(self.parents[-1]) + 1 :]
        return self.name


def layer_dag(data) -> nx.DiGraph:
    """The DAG of the analysed layers of an :class:`~cnnvis.scene.OverviewInput`.

    Edges are the input's connections; without any (a hand-built input), consecutive layers.
    """
    g = nx.DiGraph()
    names = [lay.name for lay in data.layers]
    for i, n in enumerate(names):
        g.add_node(n, order=i)
    for c in data.connections:
        if c.src in g and c.dst in g and c.src != c.dst:
            g.add_edge(c.src, c.dst)
    if g.number_of_edges() == 0:
        g.add_edges_from(zip(names[:-1], names[1:]))
    if not nx.is_directed_acyclic_graph(g):
        raise ValueError("the connections between the analysed layers form a cycle")
    return g


def group_tree(data) -> list[GroupNode]:
    """The nested layer groups of an overview input (:func:`cnnvis.graph.nest_groups`)."""
    return nest_groups([(name, list(layers)) for name, layers in data.groups])


def representative_layer(layers: Collection[str], dag: nx.DiGraph) -> str:
    """The layer a collapsed group shows: its output layer.

    Among the group's layers that feed no other layer of the group (its outputs), the deepest
    one (longest path from the network's input; ties: more neurons, then later). It is what the
    group computed, what the next group reads: a ResNet block's last conv (not its
    ``downsample`` shortcut, which is shallower), an Inception module's longest branch, the last
    layer of a chain.
    """
    layers = list(layers)
    inside = set(layers)
    outs = [n for n in layers if not any(s in inside for s in dag.successors(n))] or layers
    depth = _depths(dag)
    width = {n: dag.nodes[n].get("channels", 0) for n in layers}
    return max(outs, key=lambda n: (depth[n], width[n], dag.nodes[n]["order"]))


def _depths(dag: nx.DiGraph) -> dict[str, int]:
    cached = dag.graph.get("_depth")
    if cached is None:
        cached = {}
        for n in nx.topological_sort(dag):
            cached[n] = max((cached[p] + 1 for p in dag.predecessors(n)), default=0)
        dag.graph["_depth"] = cached
    return cached


def default_expanded(tree: list[GroupNode], dag: nx.DiGraph, max_rows: int = MAX_AUTO_ROWS):
    """The groups the overview opens by default: whole levels, while the rows stay few.

    Level by level from the top, every group of the next level is expanded as long as the
    overview still has at most ``max_rows`` rows (the 5-layer demo opens fully; ResNet-18 shows
    its blocks; ResNet-50 and GoogLeNet their stages and modules). Returns a set of names.
    """
    groups = [n for t in tree for n in t.walk() if not n.is_leaf]
    expanded: set[str] = set()
    for level in range(max((n.level for n in groups), default=-1) + 1):
        trial = expanded | {n.name for n in groups if n.level == level}
        rows = max(assign_rows(visible_units(tree, trial, dag), dag).values(), default=0) + 1
        if rows > max_rows:
            break
        expanded = trial
    return expanded


def visible_units(
    tree: list[GroupNode], expanded: Collection[str] | None, dag: nx.DiGraph
) -> list[Unit]:
    """The units shown for an expansion state (``None``: every group expanded).

    A group is open when it and all groups above it are in ``expanded``.
    """
    out: list[Unit] = []

    def visit(node: GroupNode, parents: tuple[str, ...]) -> None:
        open_ = not node.is_leaf and (expanded is None or node.name in expanded)
        if open_:
            for c in node.children:
                visit(c, parents + (node.name,))
            return
        layer = node.layers[0] if node.is_leaf else representative_layer(node.layers, dag)
        order = min(dag.nodes[n]["order"] for n in node.layers)
        out.append(Unit(node.name, layer, node.layers, not node.is_leaf, parents, order))

    for t in tree:
        visit(t, ())
    return out


def unit_graph(units: list[Unit], dag: nx.DiGraph) -> nx.DiGraph:
    """Units joined where their layers are; an edge that bypasses a collapsed group it also
    enters and leaves (the identity shortcut inside a block) belongs to that group: dropped."""
    where = {n: u.name for u in units for n in u.layers}
    q = nx.DiGraph()
    for u in units:
        q.add_node(u.name, unit=u)
    for a, b in dag.edges:
        ua, ub = where[a], where[b]
        if ua != ub:
            q.add_edge(ua, ub)
    drop = [
        (a, b)
        for a, b in q.edges
        if any(q.nodes[w]["unit"].is_group and q.has_edge(w, b) for w in q.successors(a))
    ]
    q.remove_edges_from(drop)
    return q


def assign_rows(units: list[Unit], dag: nx.DiGraph) -> dict[str, int]:
    """Row of each unit: longest path from an input, then moved down to sit just above its
    nearest successor when all its successors lie further down (a shortcut beside the path)."""
    q = unit_graph(units, dag)
    topo = list(nx.lexicographical_topological_sort(q, key=lambda n: q.nodes[n]["unit"].order))
    row: dict[str, int] = {}
    for n in topo:
        row[n] = max((row[p] + 1 for p in q.predecessors(n)), default=0)
    for n in reversed(topo):
        succ = [row[s] for s in q.successors(n)]
        if succ and min(succ) - 1 > row[n]:
            row[n] = min(succ) - 1
    return row
