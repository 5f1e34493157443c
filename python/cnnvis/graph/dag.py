"""A model's layers as a DAG of the data flow (C1): torch.fx where the model traces, hooks where not.

One node per layer call: every *leaf* module (a module without children, or a standard
``torch.nn`` layer) and every tensor-valued functional op between them (``x + identity``,
``torch.cat``, ``torch.flatten``, ``F.relu`` ...). Edges carry tensors from producer to consumer,
so residual additions, concatenations and parallel branches show as nodes with several inputs or
outputs. Shape-only work (``x.size(0)``) and pure pass-throughs (``getitem`` on a tuple,
``contiguous``, ``nn.Identity``) are folded away; functional ops whose result never reaches the
output are dropped.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Iterable
from typing import Any

import networkx as nx

from cnnvis.graph.modules import model_device, module_kind

__all__ = ["GraphTraceWarning", "OPS", "model_graph"]

#: the op kinds a node can have
OPS = (
    "input",
    "output",
    "conv",
    "linear",
    "norm",
    "act",
    "pool",
    "add",
    "mul",
    "concat",
    "split",
    "flatten",
    "reshape",
    "dropout",
    "pad",
    "interpolate",
    "other",
)


class GraphTraceWarning(UserWarning):
    """torch.fx could not trace the model; the graph was built from hooks instead."""


# -- classification -------------------------------------------------------------------------

_FUNCTION_KINDS: dict[str, str] = {}
for _kind, _names in {
    "add": "add iadd radd sub isub rsub",
    "mul": "mul imul rmul div truediv itruediv rtruediv",
    "concat": "cat concat concatenate stack hstack vstack",
    "act": "relu relu6 gelu silu sigmoid tanh hardswish hardsigmoid leaky_relu elu selu celu "
    "softmax log_softmax mish softplus hardtanh clamp clip prelu glu logsigmoid",
    "pool": "max_pool1d max_pool2d max_pool3d avg_pool1d avg_pool2d avg_pool3d "
    "adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d adaptive_max_pool1d "
    "adaptive_max_pool2d adaptive_max_pool3d lp_pool1d lp_pool2d mean amax",
    "flatten": "flatten",
    "reshape": "view reshape permute transpose squeeze unsqueeze unflatten expand expand_as "
    "repeat t movedim",
    "split": "split chunk unbind tensor_split",
    "dropout": "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout",
    "conv": "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d",
    "linear": "linear matmul mm bmm addmm bilinear",
    "norm": "batch_norm layer_norm group_norm instance_norm local_response_norm normalize",
    "pad": "pad",
    "interpolate": "interpolate upsample upsample_nearest upsample_bilinear",
    "pass": "getitem contiguous clone detach to float double half type cpu cuda data type_as "
    "requires_grad_ identity",
}.items():
    for _n in _names.split():
        _FUNCTION_KINDS[_n] = _kind


def _function_name(target: Any) -> str:
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    if name == "__get__":  # a Tensor property such as .data or .T
        owner = getattr(target, "__self__", None)
        name = getattr(owner, "__name__", "attr")
    return name


def _function_kind(name: str) -> str:
    base = name.strip("_")
    kind = _FUNCTION_KINDS.get(base)
    if kind is None and base.endswith("_"):
        kind = _FUNCTION_KINDS.get(base.rstrip("_"))
    return kind or "other"


def _is_leaf(m: Any) -> bool:
    from torch import nn

    if next(iter(m.children()), None) is None:
        return True
    containers = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
    return type(m).__module__.startswith("torch.nn.modules") and not isinstance(m, containers)


# -- small helpers -----------------------------------------------------------------------------


def _tensors_in(obj: Any) -> list[Any]:
    import torch

    found: list[Any] = []

    def walk(o: Any, depth: int) -> None:
        if depth > 4:
            return
        if isinstance(o, torch.Tensor):
            found.append(o)
        elif isinstance(o, (list, tuple)):
            for v in o:
                walk(v, depth + 1)
        elif isinstance(o, dict):
            for v in o.values():
                walk(v, depth + 1)

    walk(obj, 0)
    return found


def _add_input(b, position: int, value) -> str:
    """The node of the model's ``position``-th input (``input``, ``input1``, ...)."""
    return b.add(
        "input" if position == 0 else f"input{position}",
        module=None,
        op="input",
        type_name="input",
        stack=[],
        shape=_shape_of(value),
    )


def _shape_of(value: Any) -> tuple[int, ...] | None:
    import torch

    if isinstance(value, torch.Tensor):
        return tuple(int(s) for s in value.shape[1:]) if value.dim() >= 1 else ()
    return None


def _as_inputs(model: Any, example_input: Any) -> tuple[Any, ...]:
    import torch

    inputs = tuple(example_input) if isinstance(example_input, (tuple, list)) else (example_input,)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise TypeError(
            "example_input must be a tensor (or a tuple of tensors) with a batch dimension, "
            f"got {type(example_input).__name__}"
        )
    device = model_device(model)
    return tuple(t.to(device) for t in inputs)


def _shapes_text(inputs: Iterable[Any]) -> str:
    return ", ".join(str(tuple(t.shape)) for t in inputs)


class _Builder:
    """Collects nodes and edges with unique, readable ids."""

    def __init__(self, module_types: dict[str, str]) -> None:
        self.g = nx.DiGraph()
        self.module_types = module_types
        self.used: set[str] = set(module_types)  # functional ids avoid module paths

    def unique(self, base: str) -> str:
        if base not in self.g:
            return base
        k = 1
        while f"{base}@{k}" in self.g:
            k += 1
        return f"{base}@{k}"

    def add(
        self,
        base_id: str,
        *,
        module: str | None,
        op: str,
        type_name: str,
        stack: list[str],
        shape: tuple[int, ...] | None,
        call: int = 0,
    ) -> str:
        if module is None and base_id in self.used:
            base_id = base_id + "()"
        nid = self.unique(base_id)
        self.g.add_node(
            nid,
            module=module,
            op=op,
            type=type_name,
            scope=stack[-1] if stack else "",
            stack=list(stack),
            out_shape=shape,
            channels=(int(shape[0]) if shape else None),
            call=call,
            order=self.g.number_of_nodes(),
        )
        return nid

    def finish(self, method: str, model: Any, inputs: tuple[Any, ...]) -> nx.DiGraph:
        g = self.g
        # fold pass-through nodes into edges
        for n in [n for n, d in g.nodes(data=True) if d["op"] == "pass"]:
            preds, succs = list(g.predecessors(n)), list(g.successors(n))
            g.remove_node(n)
            g.add_edges_from((p, s) for p in preds for s in succs if p != s)
        # drop functional ops that never reach an output (shape checks, unused values)
        outputs = [n for n, d in g.nodes(data=True) if d["op"] == "output"]
        alive: set[str] = set(outputs)
        for o in outputs:
            alive |= nx.ancestors(g, o)
        dead = [n for n, d in g.nodes(data=True) if n not in alive and d["module"] is None]
        dead = [n for n in dead if g.nodes[n]["op"] != "input"]
        g.remove_nodes_from(dead)
        for i, n in enumerate(sorted(g.nodes, key=lambda n: g.nodes[n]["order"])):
            g.nodes[n]["order"] = i
        g.graph.update(
            method=method,
            model=type(model).__name__,
            input_shape=[tuple(int(s) for s in t.shape) for t in inputs],
            module_types=dict(self.module_types),
        )
        if not nx.is_directed_acyclic_graph(g):  # pragma: no cover - a bug guard
            raise RuntimeError("internal error: the model graph has a cycle")
        return g


def _all_module_types(model: Any) -> dict[str, str]:
    return {name: type(m).__name__ for name, m in model.named_modules() if name}


# -- torch.fx ----------------------------------------------------------------------------------


def _fx_graph(model: Any, inputs: tuple[Any, ...]) -> nx.DiGraph:
    import torch
    import torch.fx as fx

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return _is_leaf(m)

    tracer = Tracer()
    graph = tracer.trace(model)
    values: dict[str, Any] = {}

    class Probe(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            out = super().run_node(n)
            values[n.name] = out
            return out

    with torch.no_grad():  # the traced graph runs on the model itself (no generated code)
        Probe(tracer.root, graph=graph).run(*inputs)

    modules = dict(model.named_modules())
    b = _Builder(_all_module_types(model))
    ids: dict[str, str] = {}
    calls: dict[str, int] = {}
    n_inputs = 0
    for node in graph.nodes:
        value = values.get(node.name)
        stack_meta = node.meta.get("nn_module_stack") or {}
        stack = [v[0] if isinstance(v, tuple) else k for k, v in stack_meta.items()]
        if node.op == "placeholder":
            nid = _add_input(b, n_inputs, value)
            n_inputs += 1
        elif node.op == "output":
            nid = b.add(
                "output", module=None, op="output", type_name="output", stack=[], shape=None
            )
            outs = _tensors_in(value)
            if len(outs) == 1:
                b.g.nodes[nid]["out_shape"] = _shape_of(outs[0])
                b.g.nodes[nid]["channels"] = int(outs[0].shape[1]) if outs[0].dim() >= 2 else None
        elif node.op == "get_attr":
            continue  # parameters and buffers used functionally are constants here
        else:
            if not _tensors_in(value):
                continue  # shape arithmetic, not data flow
            shape = _shape_of(value)
            if node.op == "call_module":
                path = str(node.target)
                call = calls.get(path, 0)
                calls[path] = call + 1
                m = modules[path]
                nid = b.add(
                    path if call == 0 else f"{path}@{call}",
                    module=path,
                    op=module_kind(m),
                    type_name=type(m).__name__,
                    stack=[s for s in stack if s != path],
                    shape=shape,
                    call=call,
                )
            else:
                fname = _function_name(node.target)
                if node.target is operator.getitem:
                    fname = "getitem"
                scope = stack[-1] if stack else ""
                base = f"{scope}.{fname.strip('_')}" if scope else fname.strip("_")
                nid = b.add(
                    base,
                    module=None,
                    op=_function_kind(fname),
                    type_name=fname.strip("_"),
                    stack=stack,
                    shape=shape,
                )
        ids[node.name] = nid
        for src in node.all_input_nodes:
            if src.name in ids:
                b.g.add_edge(ids[src.name], nid)
    return b.finish("fx", model, inputs)


# -- hooks and a torch-function mode ------------------------------------------------------------


class _HookTracer:
    """What the module hooks and the torch-function mode share during one forward pass."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.b = _Builder(_all_module_types(model))
        self.producer: dict[int, str] = {}  # id(tensor) -> node id of its latest writer
        self.keep: list[Any] = []  # keeps every tensor alive so ids stay unique during the pass
        self.stack: list[str] = []
        self.leaf_depth = 0
        self.calls: dict[str, int] = {}
        self.names = {m: name for name, m in model.named_modules()}

    def connect(self, nid: str, args: Any) -> None:
        for t in _tensors_in(args):
            src = self.producer.get(id(t))
            if src is not None and src != nid:
                self.b.g.add_edge(src, nid)

    def publish(self, nid: str, out: Any) -> None:
        for t in _tensors_in(out):
            self.producer[id(t)] = nid
            self.keep.append(t)

    def function_called(self, func: Any, args: Any, kwargs: Any, result: Any) -> None:
        if self.leaf_depth > 0:
            return
        fname = _function_name(func)
        # x[i] = y returns None but writes y into x: x is the op's output
        out = args[0] if fname == "__setitem__" and args else result
        outs = _tensors_in(out)
        if outs:
            scope = self.stack[-1] if self.stack else ""
            base = f"{scope}.{fname.strip('_')}" if scope else fname.strip("_")
            nid = self.b.add(
                base,
                module=None,
                op=_function_kind(fname),
                type_name=fname.strip("_"),
                stack=list(self.stack),
                shape=_shape_of(outs[0]) if len(outs) == 1 else None,
            )
            self.connect(nid, (args, kwargs))
            self.publish(nid, out)

    def leaf(self, m: Any) -> bool:
        return m is not self.model and _is_leaf(m)  # the root's forward is always looked into

    def pre(self, m: Any, args: Any, kwargs: Any) -> None:
        name = self.names.get(m, "")
        if self.leaf(m):
            self.leaf_depth += 1
        if name:
            self.stack.append(name)

    def post(self, m: Any, args: Any, kwargs: Any, out: Any) -> None:
        name = self.names.get(m, "")
        if name and self.stack and self.stack[-1] == name:
            self.stack.pop()
        if not self.leaf(m):
            return
        self.leaf_depth -= 1
        if self.leaf_depth > 0:
            return
        call = self.calls.get(name, 0)
        self.calls[name] = call + 1
        outs = _tensors_in(out)
        nid = self.b.add(
            name if call == 0 else f"{name}@{call}",
            module=name or None,
            op=module_kind(m),
            type_name=type(m).__name__,
            stack=list(self.stack),
            shape=_shape_of(outs[0]) if len(outs) == 1 else None,
            call=call,
        )
        self.connect(nid, (args, kwargs))
        self.publish(nid, out)

    def add_output(self, out: Any) -> None:
        outs = _tensors_in(out)
        nid = self.b.add(
            "output",
            module=None,
            op="output",
            type_name="output",
            stack=[],
            shape=_shape_of(outs[0]) if len(outs) == 1 else None,
        )
        if len(outs) == 1:
            self.b.g.nodes[nid]["channels"] = int(outs[0].shape[1]) if outs[0].dim() >= 2 else None
        self.connect(nid, out)


def _hook_graph(model: Any, inputs: tuple[Any, ...]) -> nx.DiGraph:
    import torch
    from torch.overrides import TorchFunctionMode

    tracer = _HookTracer(model)

    class Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            result = func(*args, **kwargs)
            tracer.function_called(func, args, kwargs, result)
            return result

    handles = []
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(tracer.pre, with_kwargs=True))
            handles.append(m.register_forward_hook(tracer.post, with_kwargs=True))
        for i, t in enumerate(inputs):
            nid = _add_input(tracer.b, i, t)
            tracer.publish(nid, t)
        with torch.no_grad(), Mode():
            out = model(*inputs)
    finally:
        for h in handles:
            h.remove()
    tracer.add_output(out)
    return tracer.b.finish("hooks", model, inputs)


# -- public ------------------------------------------------------------------------------------


def model_graph(model: Any, example_input: Any, *, method: str = "auto") -> nx.DiGraph:
    """The data-flow DAG of a model's layers.

    Parameters
    ----------
    model : torch.nn.Module
        Any model; it is neither moved nor left in a different train/eval mode (it runs in eval
        mode, without gradients, during the call, and every submodule's mode is restored).
    example_input : Tensor or tuple of Tensor
        An input batch, e.g. ``torch.zeros(1, 3, 32, 32)``; moved to the model's device.
    method : {"auto", "fx", "hooks"}
        ``"auto"`` traces with torch.fx and, when the model does not trace (data-dependent
        control flow, unsupported Python), falls back to hooks with a
        :class:`GraphTraceWarning` naming the reason. ``"fx"`` raises instead of falling back;
        ``"hooks"`` skips fx.

    Returns
    -------
    networkx.DiGraph
        Nodes are layer calls, keyed by the dotted module path (``"layer1.0.conv1"``; a module
        called again gets ``"@1"``, ``"@2"`` ...) or, for a functional op, by the path of the
        module whose ``forward`` calls it plus the function name (``"layer1.0.add"``); the
        model's input is ``"input"`` and its output ``"output"``. Node attributes:

        ``module``
            dotted ``named_modules()`` path, or None for a functional op, input and output.
        ``op``
            one of :data:`OPS`: conv, linear, norm, act, pool, add, mul, concat, split, flatten,
            reshape, dropout, pad, interpolate, other (plus input, output).
        ``type``
            module class name or function name.
        ``out_shape``
            output shape without the batch dimension (None for several outputs).
        ``channels``
            ``out_shape[0]`` (channels of a feature map, units of a linear layer) or None.
        ``order``
            execution order, 0 .. n-1.
        ``scope``, ``stack``, ``call``
            enclosing module path, all enclosing module paths (outermost first), and which
            call of a reused module this is.

        Edges point from producer to consumer. ``graph.graph`` holds ``method`` ("fx" or
        "hooks"), ``model``, ``input_shape`` and ``module_types`` (path -> class name).

    Raises
    ------
    ValueError
        The model's forward fails on the example input (the message gives its shape).
    TypeError
        ``model`` is not a module or ``example_input`` is not a tensor.
    RuntimeError
        ``method="fx"`` and the model does not trace.
    """
    from torch import nn

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if method not in ("auto", "fx", "hooks"):
        raise ValueError(f"method must be 'auto', 'fx' or 'hooks', got {method!r}")
    inputs = _as_inputs(model, example_input)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        fx_error = None
        if method in ("auto", "fx"):
            try:
                return _fx_graph(model, inputs)
            except Exception as exc:  # noqa: BLE001 - fx raises many kinds
                fx_error = exc
        # fx failed or was not asked for: a forward that fails by itself is the user's error
        _check_forward(model, inputs)
        if fx_error is not None:
            _fx_failed(model, method, fx_error)
        return _hook_graph(model, inputs)
    finally:
        for m, training in modes.items():
            m.training = training


def _check_forward(model: Any, inputs: tuple[Any, ...]) -> None:
    import torch

    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as exc:  # noqa: BLE001 - report any failure of the user's forward
        raise ValueError(
            f"{type(model).__name__}'s forward fails on an example input of shape "
            f"{_shapes_text(inputs)}: {type(exc).__name__}: {exc}"
        ) from exc


def _fx_failed(model: Any, method: str, exc: Exception) -> None:
    """Raise for ``method="fx"``; else warn that the graph comes from hooks instead.

    ``stacklevel=3`` points the warning at the caller of :func:`model_graph`, not at it.
    """
    if method == "fx":
        raise RuntimeError(
            f"torch.fx cannot trace {type(model).__name__}: {type(exc).__name__}: {exc}"
        ) from exc
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    warnings.warn(
        f"torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}: "
        f"{reason[:200]}); building its graph from forward hooks instead",
        GraphTraceWarning,
        stacklevel=3,
    )
