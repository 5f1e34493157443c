"""Layer groups (C2) and the default layers to record, both read off a :func:`model_graph` DAG."""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

__all__ = [
    "GroupNode",
    "LayerGroup",
    "default_layers",
    "group_graph",
    "layer_groups",
    "nest_groups",
]

PLAIN_CONTAINERS = frozenset({"Sequential", "ModuleList", "ModuleDict"})
MERGE_OPS = frozenset({"add", "mul", "concat"})


@dataclass
class LayerGroup:
    """Consecutive layers shown as one box in the overview; ``nodes`` expand it again.

    Attributes
    ----------
    name : str
        The module path of a block group (``"layer1.0"``); for a run of layers, the module
        that holds exactly those layers (``"features.block1"``), else the id of its first conv
        or linear layer (``"conv1"``, ``"classifier.fc1"``), else of its first layer. Made
        unique with ``"@1"``, ``"@2"`` ... if needed.
    nodes : list of str
        Member node ids of the graph, in execution order.
    kind : str
        ``"block"`` (a module that groups several layers), ``"conv"`` (a run holding a
        convolution), ``"fc"`` (a run holding a linear layer), ``"input"``, ``"output"``, or the
        op of the run's first layer (``"pool"``, ``"concat"`` ...).
    module : str or None
        The module path of a block group.
    type : str or None
        That module's class name (``"BasicBlock"``, ``"Inception"``).
    """

    name: str
    nodes: list[str]
    kind: str
    module: str | None = None
    type: str | None = None
    ops: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.nodes)


def _chains(g: nx.DiGraph) -> dict[str, set[str]]:
    """Module path -> the graph nodes computed inside it (its own call included)."""
    members: dict[str, set[str]] = {}
    for n, d in g.nodes(data=True):
        chain = list(d.get("stack") or [])
        if d.get("module"):
            chain.append(d["module"])
        for p in chain:
            members.setdefault(p, set()).add(n)
    return members


def _children(paths: list[str]) -> dict[str, list[str]]:
    kids: dict[str, list[str]] = {"": []}
    known = set(paths)
    for p in paths:
        parent = p.rsplit(".", 1)[0] if "." in p else ""
        while parent and parent not in known:  # a skipped level; attach further up
            parent = parent.rsplit(".", 1)[0] if "." in parent else ""
        kids.setdefault(parent, []).append(p)
    return kids


def layer_groups(graph: nx.DiGraph) -> list[LayerGroup]:
    """Merge the layers of a model graph into groups for the overview.

    The rule, applied top-down from the model's children:

    1. A *unit* is a module that computes at least two graph nodes, is not itself a leaf layer,
       and is not a plain container (exactly ``nn.Sequential``, ``nn.ModuleList`` or
       ``nn.ModuleDict``: those are transparent; subclasses of them count as units). ResNet's
       ``BasicBlock``/``Bottleneck``, an ``Inception`` module, DenseNet's ``_DenseLayer`` and
       ``_Transition``, ``Conv2dNormActivation``, MobileNet/EfficientNet inverted residuals are
       units.
    2. A unit is a *stage* rather than a block, and is looked into like a container, when it
       holds at least two child units that merge tensors in their own ``forward``
       (add/mul/concat; e.g. a DenseNet ``_DenseBlock`` of dense layers), or at least two pooling
       layers (a whole feature extractor written as one module).
    3. Every other unit met on the way down becomes one group (kind ``"block"``) with all its
       nodes, so nested modules (a squeeze-excitation inside an inverted residual, the branches
       of an Inception module) stay inside their block.
    4. The remaining layers, in execution order, form runs that are cut after each pooling
       layer, before a linear layer when the run already holds a conv or linear layer, before
       a conv layer when the run already holds a linear one, and wherever a block group
       intervenes. So conv+bn+relu+pool is one group, ``flatten, fc1, relu, dropout`` another
       and ``fc2`` a third.

    The input and output nodes are groups of their own. Every node lies in exactly one group;
    groups are listed in the execution order of their first node.

    Parameters
    ----------
    graph : networkx.DiGraph
        From :func:`cnnvis.model_graph`.

    Returns
    -------
    list of LayerGroup
    """
    g = graph
    if g.number_of_nodes() == 0:
        return []
    types: dict[str, str] = dict(g.graph.get("module_types") or {})
    members = _chains(g)
    owner: dict[str, int] = {}
    groups: list[LayerGroup] = []
    for b in _block_modules(g, types, members):
        nodes = [n for n in members[b] if n not in owner]
        if len(nodes) < 1:
            continue
        for n in nodes:
            owner[n] = len(groups)
        groups.append(LayerGroup(name=b, nodes=nodes, kind="block", module=b, type=types.get(b)))
    _add_runs(g, owner, groups)
    _name_groups(g, groups, members)
    groups.sort(key=lambda grp: g.nodes[grp.nodes[0]]["order"])
    seen: dict[str, int] = {}
    for grp in groups:
        k = seen.get(grp.name, 0)
        seen[grp.name] = k + 1
        if k:
            grp.name = f"{grp.name}@{k}"
    return groups


def _block_modules(g: nx.DiGraph, types: dict[str, str], members: dict[str, set[str]]) -> list[str]:
    """The modules that become block groups (rules 1 to 3 of :func:`layer_groups`), top-down."""
    paths = sorted(p for p in types if p in members)
    kids = _children(paths)
    leaf_modules = {d["module"] for _, d in g.nodes(data=True) if d.get("module")}
    scope_merges: dict[str, int] = {}
    for _, d in g.nodes(data=True):
        if d["op"] in MERGE_OPS and d.get("module") is None:
            scope_merges[d.get("scope", "")] = scope_merges.get(d.get("scope", ""), 0) + 1

    def is_unit(p: str) -> bool:
        return (
            p not in leaf_modules
            and types.get(p) not in PLAIN_CONTAINERS
            and len(members.get(p, ())) >= 2
        )

    def child_units(p: str) -> list[str]:
        out: list[str] = []
        for c in kids.get(p, []):
            if is_unit(c):
                out.append(c)
            elif types.get(c) in PLAIN_CONTAINERS:
                out.extend(child_units(c))
        return out

    def is_stage(p: str) -> bool:
        merging = [c for c in child_units(p) if scope_merges.get(c, 0) > 0]
        pools = sum(1 for n in members[p] if g.nodes[n]["op"] == "pool")
        return len(merging) >= 2 or pools >= 2

    blocks: list[str] = []

    def select(p: str) -> None:
        for c in kids.get(p, []):
            if is_unit(c) and not is_stage(c):
                blocks.append(c)
            else:
                select(c)

    select("")
    return blocks


def _add_runs(g: nx.DiGraph, owner: dict[str, int], groups: list[LayerGroup]) -> None:
    """Append the runs of layers no block owns (rule 4 of :func:`layer_groups`) to ``groups``."""
    order = sorted(g.nodes, key=lambda n: g.nodes[n]["order"])
    run: list[str] = []

    def close() -> None:
        if run:
            idx = len(groups)
            for n in run:
                owner[n] = idx
            groups.append(LayerGroup(name="", nodes=list(run), kind=""))
            run.clear()

    for n in order:
        op = g.nodes[n]["op"]
        if n in owner:
            close()
            continue
        if op in ("input", "output"):
            close()
            run.append(n)
            close()
            continue
        ops = {g.nodes[m]["op"] for m in run}
        if run and (
            (op == "linear" and ops & {"conv", "linear"}) or (op == "conv" and "linear" in ops)
        ):
            close()
        run.append(n)
        if op == "pool":
            close()
    close()


def _name_groups(g: nx.DiGraph, groups: list[LayerGroup], members: dict[str, set[str]]) -> None:
    """Sort each group's nodes into execution order; give the runs their kind and name."""
    first = {n: g.nodes[n]["order"] for n in g.nodes}
    for grp in groups:
        grp.nodes.sort(key=first.__getitem__)
        grp.ops = [g.nodes[n]["op"] for n in grp.nodes]
        if grp.kind == "block":
            continue
        ops = set(grp.ops)
        if ops <= {"input"} or ops <= {"output"}:
            grp.kind = grp.ops[0]
        elif "conv" in ops:
            grp.kind = "conv"
        elif "linear" in ops:
            grp.kind = "fc"
        else:
            grp.kind = grp.ops[0]
        grp.name = _run_name(g, grp.nodes, members)


def _run_name(g: nx.DiGraph, nodes: list[str], members: dict[str, set[str]]) -> str:
    if len(nodes) == 1:
        return nodes[0]
    chains = []
    for n in nodes:
        d = g.nodes[n]
        c = list(d.get("stack") or [])
        if d.get("module"):
            c.append(d["module"])
        chains.append(c)
    common: str | None = None
    for i in range(min(len(c) for c in chains)):
        if all(c[i] == chains[0][i] for c in chains):
            common = chains[0][i]
        else:
            break
    if common and members.get(common, set()) == set(nodes):
        return common
    # a run made of whole sibling modules (two conv blocks up to a pool): name it by the first
    # and the last, so the name does not claim the run is just its first layer
    depth = 0 if common is None else chains[0].index(common) + 1
    parts = [c[depth] if len(c) > depth else None for c in chains]
    whole = [p for p in dict.fromkeys(parts) if p is not None]
    if (
        None not in parts
        and len(whole) > 1
        and all(len(members.get(p, ())) > 1 for p in whole)  # modules, not single layers
        and set().union(*(members.get(p, set()) for p in whole)) == set(nodes)
    ):
        return f"{whole[0]}-{whole[-1]}"
    for n in nodes:
        if g.nodes[n]["op"] in ("conv", "linear"):
            return n
    return nodes[0]


def group_graph(graph: nx.DiGraph, groups: list[LayerGroup] | None = None) -> nx.DiGraph:
    """The DAG of layer groups: one node per group (keyed by name), an edge where data flows.

    Node attributes: ``kind``, ``nodes`` (member node ids), ``order`` (position in ``groups``),
    ``out_shape`` and ``channels`` of the group's last member. Edge attribute ``count``: how
    many layer edges it stands for.
    """
    groups = layer_groups(graph) if groups is None else groups
    where: dict[str, str] = {}
    q = nx.DiGraph()
    for i, grp in enumerate(groups):
        last = graph.nodes[grp.nodes[-1]]
        q.add_node(
            grp.name,
            kind=grp.kind,
            nodes=list(grp.nodes),
            order=i,
            module=grp.module,
            out_shape=last.get("out_shape"),
            channels=last.get("channels"),
        )
        for n in grp.nodes:
            where[n] = grp.name
    for a, b in graph.edges:
        ga, gb = where.get(a), where.get(b)
        if ga is None or gb is None or ga == gb:
            continue
        if q.has_edge(ga, gb):
            q.edges[ga, gb]["count"] += 1
        else:
            q.add_edge(ga, gb, count=1)
    return q


def _is_one_by_one(d: dict) -> bool:
    shape = d.get("out_shape") or ()
    return len(shape) >= 2 and all(s == 1 for s in shape[1:])


def _is_gate(g: nx.DiGraph, node: str) -> bool:
    """Whether ``node`` (a conv) computes a gate: its 1x1 maps flow, through other 1x1 convs,
    activations and norms only, into a ``mul`` that scales a feature map."""
    if not _is_one_by_one(g.nodes[node]):
        return False
    frontier, seen = [node], {node}
    while frontier:
        cur = frontier.pop()
        for nxt in g.successors(cur):
            nd = g.nodes[nxt]
            if nd["op"] == "mul":
                return True
            if nxt not in seen and nd["op"] in ("conv", "act", "norm") and _is_one_by_one(nd):
                seen.add(nxt)
                frontier.append(nxt)
    return False


def default_layers(graph: nx.DiGraph) -> list[str]:
    """Dotted module names whose outputs are worth recording by default (one per conv/linear).

    For every conv and linear *module* in execution order: follow its output through a simple
    chain (one consumer, one producer) of norm layers to the first activation; when that
    activation is a module of its own called only once in the forward, its name is listed
    (so ``conv -> bn -> relu`` records the ReLU's rectified maps), otherwise the conv or linear
    module itself (a functional ``F.relu``, or a ReLU module reused across the block as in
    torchvision's ResNet, whose hook would fire twice). The model's last linear layer (the
    logits) is included; the gates of squeeze-excitation blocks (convs with 1x1 output maps
    whose result scales another tensor through a ``mul``) are left out, while ordinary convs
    that happen to reach 1x1 maps (ResNet's last stage on 32x32 inputs) are kept. Outputs are per-channel feature maps ``(C, H, W)`` or unit vectors
    ``(C,)``; names appear once, in execution order.

    Parameters
    ----------
    graph : networkx.DiGraph
        From :func:`cnnvis.model_graph`.

    Returns
    -------
    list of str
    """
    g = graph
    calls: dict[str, int] = {}
    for _, d in g.nodes(data=True):
        if d.get("module"):
            calls[d["module"]] = calls.get(d["module"], 0) + 1
    out: list[str] = []
    for n in sorted(g.nodes, key=lambda n: g.nodes[n]["order"]):
        d = g.nodes[n]
        if d["op"] not in ("conv", "linear") or not d.get("module"):
            continue
        if d["op"] == "conv" and _is_gate(g, n):
            continue  # squeeze-excitation's convs: a per-channel scale, not features
        chosen = d["module"]
        cur = n
        while g.out_degree(cur) == 1:
            nxt = next(iter(g.successors(cur)))
            if g.in_degree(nxt) != 1:
                break
            nd = g.nodes[nxt]
            if nd["op"] == "norm":
                cur = nxt
                continue
            if nd["op"] == "act" and nd.get("module") and calls.get(nd["module"]) == 1:
                chosen = nd["module"]
            break
        if chosen not in out:
            out.append(chosen)
    return out


# -- nested groups (C2) ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GroupNode:
    """One node of the nested layer groups: a group (stage, block, branch) or a single layer.

    Attributes
    ----------
    name : str
        A dotted module path (``"layer3"``, ``"layer3.1"``), a group name of
        :func:`layer_groups`, or, for a leaf, the layer's name.
    children : tuple of GroupNode
        Empty for a leaf (a single analysed layer).
    layers : tuple of str
        The analysed layers under this node, in network order.
    level : int
        Nesting depth: 0 for the top-level nodes.
    """

    name: str
    children: tuple[GroupNode, ...]
    layers: tuple[str, ...]
    level: int = 0

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def walk(self):
        """This node and all nodes below it, parents first."""
        yield self
        for c in self.children:
            yield from c.walk()


def _parent_path(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else ""


def _nest_paths(prefix: str, layers: list[str], level: int) -> list[GroupNode]:
    """Nest ``layers`` (all named below ``prefix``) by their dotted paths; a path becomes a group
    when it holds two or more of them and not all of them (a chain of one-child levels is one)."""
    out: list[GroupNode] = []
    i = 0
    while i < len(layers):
        rest = layers[i][len(prefix) + 1 :] if prefix else layers[i]
        head = rest.split(".", 1)[0]
        path = f"{prefix}.{head}" if prefix else head
        j = i
        while j < len(layers) and (layers[j] == path or layers[j].startswith(path + ".")):
            j += 1
        members = layers[i:j]
        if len(members) == 1:
            out.append(GroupNode(members[0], (), (members[0],), level))
        elif len(members) == len(layers) and path != prefix:
            return _nest_paths(path, layers, level)  # a one-child level: skip it
        else:
            kids = _nest_paths(path, members, level + 1)
            out.append(GroupNode(path, tuple(kids), tuple(members), level))
        i = j
    return out


def _relevel(node: GroupNode, level: int) -> GroupNode:
    kids = tuple(_relevel(c, level + 1) for c in node.children)
    return GroupNode(node.name, kids, node.layers, level)


def nest_groups(groups: list[tuple[str, list[str]]]) -> list[GroupNode]:
    """Nest flat layer groups into stage -> block -> layer (C2).

    ``groups`` are ``(group name, [layer names])`` in network order, as from
    :func:`layer_groups` (``Analysis.groups``). Three levels come out:

    * a *stage*: consecutive groups whose names share a dotted parent path hold together under
      it (ResNet-50's ``layer3.0`` ... ``layer3.5`` under ``layer3``); a parent that would hold
      a single group is no stage;
    * a *block*: a group of two or more layers; inside it, layers nest further by their dotted
      paths relative to the block (an Inception block's ``branch2`` holds its two convs);
    * a *layer*: a leaf. A group of one layer is that layer's leaf (named by the group).

    Returns the top-level nodes in network order; every layer lies under exactly one of them.
    """
    blocks: list[GroupNode] = []
    for name, layers in groups:
        layers = list(layers)
        if not layers:
            continue
        if len(layers) == 1:
            blocks.append(GroupNode(name, (), (layers[0],)))
            continue
        inside = all(n.startswith(name + ".") for n in layers)
        kids = (
            _nest_paths(name, layers, 1) if inside else [GroupNode(n, (), (n,), 1) for n in layers]
        )
        blocks.append(GroupNode(name, tuple(kids), tuple(layers)))
    top: list[GroupNode] = []
    i = 0
    while i < len(blocks):
        stage = _parent_path(blocks[i].name)
        j = i + 1
        while stage and j < len(blocks) and _parent_path(blocks[j].name) == stage:
            j += 1
        if j - i >= 2:
            kids = tuple(_relevel(b, 1) for b in blocks[i:j])
            layers = tuple(n for b in kids for n in b.layers)
            top.append(GroupNode(stage, kids, layers))
        else:
            top.append(blocks[i])
        i = max(j, i + 1)
    return top
