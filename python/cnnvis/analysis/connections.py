"""Connection strengths between the neurons of two layers (C6), aggregated to clusters.

The strength of neuron ``i`` of layer ``a`` on neuron ``j`` of layer ``b`` is the coefficient of a
*linear* model of the network between the two layers, channel by channel, spatially summed:

* a convolution ``weight[out, in, kh, kw]`` contributes ``weight.sum((kh, kw))`` (the kernel's total
  weight: the response of an output channel to a unit, spatially constant input channel). Grouped
  and depthwise convolutions are exact: an output channel only sees the input channels of its
  group. A transposed convolution's weight ``[in, out, kh, kw]`` is read transposed (groups 1);
* a Linear after a flatten of ``C`` channels sums its ``in_features = C * P`` columns over each
  channel's ``P`` positions (channel-major, as ``torch.flatten`` lays them out);
* batch norm contributes its scale ``gamma / sqrt(running_var + eps)`` (eps 1e-5 unless the graph
  node says otherwise); other norms without running statistics contribute ``gamma`` alone (their
  data-dependent scale cannot be folded);
* activations, pooling, dropout, flatten, reshape, identity and every other op that keeps the
  channel count pass channels through unchanged (identity). Where such an op is not one we know,
  the choice is listed in :attr:`NeuronStrengths.notes`;
* a residual add sums the paths (identity on the skip); a subtraction subtracts (first operand
  minus the others); a channel split raises (which part reaches ``b`` is not recorded); a concatenation
  stacks the channels of its inputs in order (index ranges); a product (attention gating, e.g.
  squeeze-excitation) passes the feature map (the operand from ``a`` with the largest spatial
  extent, by the graph's ``out_shape``) through and ignores the gate, noted;
* only paths from ``a`` to ``b`` that avoid the other analysed layers count (so each drawn edge
  is between neighbours). An op that changes the channel count in a way none of the rules above
  describes raises :class:`ValueError` naming the node.

``kind="effective"`` multiplies each source column by the source neuron's mean activation (the mean
over classes of ``rec.class_means(a)``, classes weighted equally): how much the neuron *does* push,
on average, rather than how much it could.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

__all__ = [
    "NeuronStrengths",
    "neuron_strengths",
    "layer_node",
    "adjacent_pairs",
    "chain_graph",
    "SignedBicluster",
    "ClusterConnections",
    "aggregate",
]

_PASS = (
    "act",
    "relu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "elu",
    "softplus",
    "hardswish",
    "mish",
    "leaky",
    "prelu",
    "pool",
    "dropout",
    "flatten",
    "view",
    "reshape",
    "identity",
    "input",
    "output",
    "placeholder",
    "contiguous",
    "clone",
    "mean",
    "softmax",
    "upsample",
    "interpolate",
    "pad",
    "getitem",
    "getattr",
    "to",
    "float",
    "squeeze",
    "unsqueeze",
)


@dataclass
class NeuronStrengths:
    """Signed strength of every neuron pair of two layers.

    Attributes
    ----------
    layer_a, layer_b : str
        Source and target layer.
    kind : str
        ``"weight"`` or ``"effective"``.
    strength : ndarray, float64, shape (n_a, n_b)
        ``strength[i, j]``: neuron ``i`` of ``layer_a`` on neuron ``j`` of ``layer_b``.
    path : list of str
        The graph nodes between (and including) the two layers, in topological order.
    notes : list of str
        Choices made on the way (unknown ops passed through, gates ignored, ...).
    """

    layer_a: str
    layer_b: str
    kind: str
    strength: np.ndarray
    path: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _attr(graph: nx.DiGraph, node: Any, key: str, default: Any = None) -> Any:
    return graph.nodes[node].get(key, default)


def layer_node(graph: nx.DiGraph, layer: str) -> Any:
    """The graph node that produces the recorded layer ``layer``.

    A node whose id is ``layer``, else the first node (in topological order) whose ``module``
    attribute is ``layer``.
    """
    if layer in graph:
        mod = _attr(graph, layer, "module")
        if mod in (None, layer):
            return layer
    for node in nx.topological_sort(graph):
        if _attr(graph, node, "module") == layer:
            return node
    raise KeyError(f"layer {layer!r} is not a node of the model graph")


def chain_graph(layers: list[str], ops: dict[str, str]) -> nx.DiGraph:
    """A chain graph over ``layers`` (used when a recording has no graph: a sequential model)."""
    g = nx.DiGraph()
    for name in layers:
        g.add_node(name, module=name, op=ops.get(name, ""))
    for a, b in zip(layers[:-1], layers[1:]):
        g.add_edge(a, b)
    return g


def adjacent_pairs(graph: nx.DiGraph, layers: list[str]) -> list[tuple[str, str]]:
    """Pairs ``(a, b)`` of analysed layers joined by a path that avoids the other analysed layers.

    Ordered by the position of ``a`` then ``b`` in ``layers``.
    """
    node_of = {name: layer_node(graph, name) for name in layers}
    layer_of = {v: k for k, v in node_of.items()}
    pos = {name: i for i, name in enumerate(layers)}
    pairs = []
    for a in layers:
        seen = {node_of[a]}
        stack = list(graph.successors(node_of[a]))
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            if v in layer_of:
                pairs.append((a, layer_of[v]))
                continue
            stack.extend(graph.successors(v))
    return sorted(set(pairs), key=lambda p: (pos[p[0]], pos[p[1]]))


def _ordered_preds(graph: nx.DiGraph, node: Any) -> list[Any]:
    """Inputs of ``node`` in argument order (node attr ``inputs`` or edge attr ``index``)."""
    inputs = _attr(graph, node, "inputs")
    preds = list(graph.predecessors(node))
    if inputs:
        ordered = [p for p in inputs if p in preds]
        if len(ordered) == len(preds):
            return ordered
    for key in ("index", "arg_index", "order", "port"):
        vals = [graph.edges[p, node].get(key) for p in preds]
        if all(v is not None for v in vals):
            return [p for _, p in sorted(zip(vals, preds), key=lambda t: t[0])]
    return preds  # insertion order of the edges


def _channels(graph: nx.DiGraph, node: Any) -> int | None:
    c = _attr(graph, node, "channels")
    if c is not None:
        return int(c)
    shape = _attr(graph, node, "out_shape")
    if shape is not None and len(shape) >= 2:
        return int(shape[1]) if len(shape) in (2, 4, 5) else int(shape[0])
    return None


def _spatial(graph: nx.DiGraph, node: Any) -> int:
    """Number of positions of a node's output (1 for vectors or an unknown shape)."""
    shape = _attr(graph, node, "out_shape")
    if not shape or len(shape) < 2:
        return 1
    return int(np.prod(shape[1:]))


def _kind(graph: nx.DiGraph, node: Any) -> str:
    op = str(_attr(graph, node, "op", "") or "").lower()
    mtype = str(_attr(graph, node, "type", "") or _attr(graph, node, "module_type", "") or "")
    return f"{op} {mtype.lower()}".strip()


def _weights_for(rec: Any, graph: nx.DiGraph, node: Any) -> dict[str, np.ndarray]:
    mod = _attr(graph, node, "module") or node
    w = rec.weights.get(mod)
    if w is None:
        raise ValueError(
            f"the recording holds no weights for {mod!r} (node {node!r}): connection strengths "
            "through it cannot be computed; re-record with its weights"
        )
    return w


def _conv_matrix(w: np.ndarray, c_in: int, node: Any, transposed: bool) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim < 3:
        raise ValueError(f"convolution {node!r} has a weight of shape {w.shape}")
    ws = w.sum(axis=tuple(range(2, w.ndim)))  # [out, in/groups] (or [in, out/groups] transposed)
    if transposed:  # weight [in, out, ...]; grouped transposed convolutions are not handled
        if ws.shape[0] != c_in:
            raise ValueError(
                f"transposed convolution {node!r} expects {ws.shape[0]} channels, got {c_in}"
            )
        return ws.T.copy()
    out, in_per = ws.shape
    if c_in % in_per != 0:
        raise ValueError(
            f"convolution {node!r} takes {in_per} channels per group but receives {c_in}"
        )
    groups = c_in // in_per
    if out % groups != 0:
        raise ValueError(f"convolution {node!r}: {out} outputs do not divide into {groups} groups")
    out_per = out // groups
    m = np.zeros((out, c_in))
    for g in range(groups):
        m[g * out_per : (g + 1) * out_per, g * in_per : (g + 1) * in_per] = ws[
            g * out_per : (g + 1) * out_per
        ]
    return m


def _linear_matrix(w: np.ndarray, c_in: int, node: Any) -> np.ndarray:
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"linear layer {node!r} has a weight of shape {w.shape}")
    out, fin = w.shape
    if fin == c_in:
        return w
    if fin % c_in != 0:
        raise ValueError(
            f"linear layer {node!r} has {fin} inputs, not a multiple of the {c_in} channels that "
            "reach it: the flatten before it cannot be expressed per channel"
        )
    return w.reshape(out, c_in, fin // c_in).sum(axis=2)


def _norm_scale(w: dict[str, np.ndarray], eps: float) -> np.ndarray | None:
    gamma = w.get("weight")
    var = w.get("running_var")
    if var is not None:
        s = 1.0 / np.sqrt(np.asarray(var, dtype=np.float64) + eps)
        if gamma is not None:
            s = s * np.asarray(gamma, dtype=np.float64)
        return s
    if gamma is not None:
        return np.asarray(gamma, dtype=np.float64).reshape(-1)
    return None


def neuron_strengths(
    rec: Any,
    layer_a: str,
    layer_b: str,
    *,
    graph: nx.DiGraph | None = None,
    analysed: list[str] | None = None,
    kind: str = "weight",
) -> NeuronStrengths:
    """Signed strength of each neuron of ``layer_a`` on each neuron of ``layer_b``.

    See the module docstring for the rules. ``analysed`` lists the layers whose nodes the paths
    must avoid (other than ``layer_a`` and ``layer_b``).

    Raises
    ------
    ValueError
        If no path joins the layers, a weight is missing, or an op on the way is not expressible.
    """
    if kind not in ("weight", "effective"):
        raise ValueError(f"kind must be 'weight' or 'effective', got {kind!r}")
    g = rec.graph if graph is None else graph
    na = rec.layer(layer_a).n_channels
    nb = rec.layer(layer_b).n_channels
    src, dst = layer_node(g, layer_a), layer_node(g, layer_b)
    blocked = {layer_node(g, name) for name in (analysed or []) if name not in (layer_a, layer_b)}
    h = g.subgraph([v for v in g if v not in blocked])
    if src == dst or not nx.has_path(h, src, dst):
        raise ValueError(
            f"no path from {layer_a!r} to {layer_b!r} in the model graph that avoids the other "
            "analysed layers"
        )
    nodes = (nx.descendants(h, src) & nx.ancestors(h, dst)) | {src, dst}
    order = [v for v in nx.topological_sort(h) if v in nodes]
    notes: list[str] = []
    maps: dict[Any, np.ndarray] = {src: np.eye(na)}
    for v in order:
        if v == src:
            continue
        preds = [p for p in _ordered_preds(g, v) if p in nodes and p not in blocked]
        if any(p in maps for p in preds):
            maps[v] = _node_map(rec, g, v, preds, maps, nodes, na, layer_b, notes)
    s = maps[dst]
    if s.shape != (nb, na):
        raise ValueError(
            f"the path from {layer_a!r} to {layer_b!r} gives {s.shape[0]} target channels, but "
            f"{layer_b!r} has {nb}"
        )
    strength = s.T.copy()
    if kind == "effective":
        mean_act = np.asarray(rec.class_means(layer_a), dtype=np.float64).mean(axis=1)
        strength *= mean_act[:, None]
    if not np.all(np.isfinite(strength)):
        raise ValueError(f"connection strengths {layer_a!r} -> {layer_b!r} are not finite")
    return NeuronStrengths(layer_a, layer_b, kind, strength, [str(v) for v in order], notes)


def _node_map(rec, g, v, preds, maps, nodes, na: int, layer_b: str, notes: list[str]):
    """The map from the source layer's ``na`` channels to the output channels of node ``v``,
    from the maps of its inputs ``preds`` (see the module docstring for the rules)."""
    kd = _kind(g, v)
    ins = [maps[p] for p in preds if p in maps]
    if "cat" in kd:
        parts = []
        for p in _ordered_preds(g, v):
            if p in maps and p in nodes:
                parts.append(maps[p])
            else:
                c = _channels(g, p)
                if c is None:
                    raise ValueError(
                        f"concatenation {v!r}: the channel count of its input {p!r} is unknown"
                    )
                parts.append(np.zeros((c, na)))
        return np.vstack(parts)
    if "split" in kd or "chunk" in kd:
        raise ValueError(
            f"node {v!r} splits channels: the part that reaches {layer_b!r} is not known, "
            "so the connection is not expressible per channel"
        )
    if "sub" in kd:
        sign = [1.0 if i == 0 else -1.0 for i in range(len(preds))]
        return _sum_same([s * maps[p] for s, p in zip(sign, preds) if p in maps], v)
    if "add" in kd or kd.startswith("sum"):
        return _sum_same(ins, v)
    if "mul" in kd:
        # a gate (squeeze-excitation: a (C, 1, 1) scale computed from the same input) is
        # ignored: keep the operands with the largest spatial extent, the feature maps
        live = [p for p in preds if p in maps]
        extent = [_spatial(g, p) for p in live]
        keep = [maps[p] for p, e in zip(live, extent) if e == max(extent)]
        notes.append(f"{v}: product; the feature map passed through, the gate ignored")
        return _sum_same(keep, v)
    return _transfer(rec, g, v, kd, _sum_same(ins, v), notes)


def _transfer(rec, g, v, kd: str, x: np.ndarray, notes: list[str]) -> np.ndarray:
    """The map after a one-input node ``v`` of op ``kd`` whose input map is ``x``: a conv or
    linear layer's channel sums, a norm's folded scale, or the identity for ops that keep the
    channels."""
    if "conv" in kd:
        w = _weights_for(rec, g, v)
        return _after(_conv_matrix(w["weight"], x.shape[0], v, "transpose" in kd), x)
    if "linear" in kd or "dense" in kd or kd.startswith("fc"):
        w = _weights_for(rec, g, v)
        return _after(_linear_matrix(w["weight"], x.shape[0], v), x)
    if "norm" in kd or kd.startswith("bn"):
        mod = _attr(g, v, "module") or v
        w = rec.weights.get(mod, {})
        s = _norm_scale(w, float(_attr(g, v, "eps", 1e-5)))
        if s is None:
            notes.append(f"{v}: norm without weights, passed through")
            return x
        if s.shape[0] != x.shape[0]:
            raise ValueError(f"norm {v!r} scales {s.shape[0]} channels but receives {x.shape[0]}")
        if "running_var" not in w:
            notes.append(f"{v}: norm without running statistics, folded gamma only")
        return s[:, None] * x
    c = _channels(g, v)
    known = any(tok in kd for tok in _PASS)
    if c is not None and c != x.shape[0] and "flatten" not in kd and not known:
        raise ValueError(
            f"node {v!r} (op {kd or '?'}) changes the channel count from "
            f"{x.shape[0]} to {c}: not expressible as a per-channel connection"
        )
    if not known:
        notes.append(f"{v}: op {kd or '?'} passed through as identity")
    return x


def _after(m: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``m @ x``, as a scaling of ``m``'s columns when ``x`` is diagonal (the source layer's
    own map, or it through a batch norm: the input of the first conv after it). A look at
    ``x`` costs n^2, the product n^3 (about 1 s at 2,048 channels); the values are the same."""
    n = x.shape[0]
    if x.shape == (n, n):
        d = np.diagonal(x)
        if np.count_nonzero(x) == np.count_nonzero(d):
            return np.asarray(m, dtype=np.float64) * d[None, :]
    return m @ x


def _sum_same(ins: list[np.ndarray], node: Any) -> np.ndarray:
    rows = {m.shape[0] for m in ins}
    if len(rows) != 1:
        raise ValueError(f"node {node!r} joins inputs of different channel counts {sorted(rows)}")
    if len(ins) == 1:
        return ins[0]  # maps are never changed in place: no copy (2,048 x 2,048 on ResNet-50)
    out = ins[0].copy()
    for m in ins[1:]:
        out += m
    return out


# -- aggregated to clusters ---------------------------------------------------------------------
@dataclass
class SignedBicluster:
    """A group of cluster-to-cluster edges of one sign drawn through one in-between node (C6).

    Built from a :class:`cnnvis.layout.bundling.Bicluster` of one sign's edges, with that sign
    and the edges it claims.

    ``rows`` are cluster ids of ``layer_a``, ``cols`` cluster ids of ``layer_b``, ``sign`` +1 / -1;
    ``edges`` the ``(cluster_a, cluster_b)`` pairs it claims (a bicluster may be less than fully
    dense: at least ``min_density`` of ``rows x cols`` are edges of its sign).
    """

    rows: np.ndarray
    cols: np.ndarray
    sign: int
    edges: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))


@dataclass
class ClusterConnections:
    """Connections between the neuron clusters of two layers (C6), signs kept apart.

    Attributes
    ----------
    layer_a, layer_b : str
    kind : str
        ``"weight"`` or ``"effective"`` (see :func:`neuron_strengths`).
    strength : ndarray, float64, shape (n_a, n_b)
        Signed neuron-to-neuron strengths (``NeuronStrengths.strength``).
    labels_a, labels_b : ndarray of int64
        The cluster of each neuron of either layer when this was computed.
    positive : ndarray, float64, shape (k_a, k_b)
        Per cluster pair, the mean over its neuron pairs of the positive part of the strength
        (``sum(max(s, 0)) / (n_i * n_j)``): the mean keeps big clusters from dominating.
    negative : ndarray, float64, shape (k_a, k_b)
        The same for the negative part (values <= 0).
    counts : ndarray of int64, shape (k_a, k_b)
        Number of neuron pairs per cluster pair.
    threshold : float
        Cluster edges with ``|positive|`` or ``|negative|`` at least this are drawn
        (``rel_threshold`` times the largest magnitude of either matrix).
    biclusters : list of SignedBicluster
        From ``cnnvis.layout.bicluster_edges`` run on ``positive`` and on ``negative`` apart.
    direct_edges : ndarray of int64, shape (m, 3)
        Drawn edges no bicluster covers: ``(cluster_a, cluster_b, sign)``.
    layout : str
        What laid the edges out: ``"bicluster_edges"``.
    notes : list of str
        From the strength computation.
    """

    layer_a: str
    layer_b: str
    kind: str
    strength: np.ndarray
    labels_a: np.ndarray
    labels_b: np.ndarray
    positive: np.ndarray
    negative: np.ndarray
    counts: np.ndarray
    threshold: float
    biclusters: list[SignedBicluster]
    direct_edges: np.ndarray
    layout: str = "bicluster_edges"
    notes: list[str] = field(default_factory=list)

    def edges(self) -> list[tuple[int, int, int, float]]:
        """Every drawn cluster edge ``(cluster_a, cluster_b, sign, mean strength)``."""
        out = []
        for sign, m in ((1, self.positive), (-1, self.negative)):
            ii, jj = np.nonzero((np.abs(m) >= self.threshold) & (m != 0))
            out.extend((int(i), int(j), sign, float(m[i, j])) for i, j in zip(ii, jj))
        return out


def aggregate(
    ns: NeuronStrengths,
    labels_a: np.ndarray,
    labels_b: np.ndarray,
    *,
    rel_threshold: float = 0.1,
    min_density: float = 0.8,
) -> ClusterConnections:
    """Aggregate neuron strengths to clusters and bicluster the cluster edges of each sign."""
    from cnnvis.layout import bicluster_edges

    if not 0.0 <= rel_threshold <= 1.0:
        raise ValueError(f"rel_threshold must be in [0, 1], got {rel_threshold}")
    s = ns.strength
    la = np.asarray(labels_a, dtype=np.int64)
    lb = np.asarray(labels_b, dtype=np.int64)
    ka, kb = int(la.max()) + 1, int(lb.max()) + 1
    oa = np.zeros((ka, s.shape[0]))
    oa[la, np.arange(s.shape[0])] = 1.0
    ob = np.zeros((s.shape[1], kb))
    ob[np.arange(s.shape[1]), lb] = 1.0
    counts = np.outer(np.bincount(la, minlength=ka), np.bincount(lb, minlength=kb))
    pos = oa @ np.maximum(s, 0.0) @ ob / counts
    neg = oa @ np.minimum(s, 0.0) @ ob / counts
    top = float(max(np.abs(pos).max(initial=0.0), np.abs(neg).max(initial=0.0)))
    threshold = rel_threshold * top
    if top == 0.0:
        threshold = np.inf  # nothing to draw
    biclusters: list[SignedBicluster] = []
    direct: list[tuple[int, int, int]] = []
    for sign, m in ((1, pos), (-1, neg)):
        mask = (np.abs(m) >= threshold) & (m != 0)
        if not mask.any():
            continue
        res = bicluster_edges(m, threshold, min_density=min_density)
        for q, b in enumerate(res.biclusters):
            biclusters.append(
                SignedBicluster(
                    np.asarray(b.rows, dtype=np.int64),
                    np.asarray(b.cols, dtype=np.int64),
                    sign,
                    np.asarray(res.edges_of(q), dtype=np.int64).reshape(-1, 2),
                )
            )
        for i, j in np.asarray(res.direct_edges, dtype=np.int64).reshape(-1, 2):
            direct.append((int(i), int(j), sign))
    return ClusterConnections(
        ns.layer_a,
        ns.layer_b,
        ns.kind,
        s,
        la.copy(),
        lb.copy(),
        pos,
        neg,
        counts.astype(np.int64),
        float(threshold),
        biclusters,
        np.asarray(direct, dtype=np.int64).reshape(-1, 3),
        "bicluster_edges",
        list(ns.notes),
    )
